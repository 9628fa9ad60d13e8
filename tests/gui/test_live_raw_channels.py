"""Live Training on a 16-bit 2-channel image, through the app: the strokes' image goes to the
trainer as its raw channels (not the 8-bit view), each scaled by its own percentiles; the model
learns a difference of 25 counts in one channel, which the preview shows, Apply to Image writes
what Segmenter gives for the raw channels, and a new checkpoint scales the view by the
statistics measured once for the image."""

from __future__ import annotations

import numpy as np
import tifffile

from core.model.normalize import channel_statistics
from core.segment.inference import Segmenter
from gui.jobs.live_preview import whole_image_statistics
from tests.gui.test_live_training import FAST, agreement, stroke


def test_a_16bit_images_raw_channels_train_preview_and_apply(qtbot, window, tmp_path):
    rng = np.random.default_rng(0)
    img = 1000 + rng.normal(0, 4, (64, 64, 2))
    img[:, 32:, 1] += 25  # the halves differ by 25 counts in channel 2 only
    raw = img.round().astype(np.uint16)
    path = tmp_path / "faint.tif"
    tifffile.imwrite(path, raw.transpose(2, 0, 1), metadata={"axes": "CYX"})
    window.open_images([path])
    window.state.set_brush_size(4)
    stroke(qtbot, window, 1, [(40, 10), (56, 20), (44, 50)])
    stroke(qtbot, window, 0, [(8, 12), (24, 22), (12, 52)])
    items, _used = window.live.training_items()
    assert len(items) == 1 and np.array_equal(items[0][0], raw)  # the raw channels, as the file holds them

    live, state = window.live, window.state.live
    shown = []
    live.preview_shown.connect(shown.append)
    live.config_changes = dict(FAST)
    window.commands.live_training.trigger()
    qtbot.waitUntil(lambda: bool(shown) and agreement(shown[-1].labels) > 0.9, timeout=60_000)
    qtbot.waitUntil(lambda: len(state.history) >= 2, timeout=30_000)
    window.commands.live_training.trigger()
    qtbot.waitUntil(lambda: not live.trainer.running, timeout=10_000)

    first, newest = state.history[0].snapshot.checkpoint, state.history[-1].snapshot.checkpoint
    norm = newest.normalization
    assert newest.in_channels == 2 and norm.reads_raw and norm.percentiles == (1.0, 99.8)
    assert norm.channels is None and norm.channel_names == ("Channel 1", "Channel 2")
    entry = window.store.current
    older, newer = Segmenter(first, device="cpu"), Segmenter(newest, device="cpu")
    stats = whole_image_statistics(newer, entry.image)
    assert stats == channel_statistics(raw, norm.percentiles)  # each channel by its own percentiles
    assert whole_image_statistics(older, entry.image) is stats  # measured once for the image

    with qtbot.waitSignal(live.applied, timeout=20_000):
        window.live_panel.apply.click()
    expected = newer.segment(raw, tile_size=0, tta=False, refine=False)
    assert np.array_equal(np.asarray(window.mask), expected) and agreement(expected) > 0.9
