"""Live Training on a 16-bit 2-channel image: the strokes' image goes to the trainer as its raw
channels (not the 8-bit view), and the live preview gives the raw-channel snapshot the pixels it reads."""

from __future__ import annotations

import numpy as np
import tifffile

from core.document.editing import Box
from core.training.live import LiveConfig, LiveTrainer
from gui.jobs.live_preview import PreviewRunner, view_request
from tests.gui.test_live_training import stroke


def test_a_16bit_images_raw_channels_train_and_preview(qtbot, window, tmp_path):
    rng = np.random.default_rng(0)
    img = 1000 + rng.normal(0, 4, (64, 64, 2))
    img[:, 32:, 1] += 25
    path = tmp_path / "faint.tif"
    tifffile.imwrite(path, img.round().astype(np.uint16).transpose(2, 0, 1), metadata={"axes": "CYX"})
    window.open_images([path])
    window.state.set_brush_size(4)
    stroke(qtbot, window, 1, [(40, 10), (56, 20), (44, 50)])
    stroke(qtbot, window, 0, [(8, 12), (24, 22), (12, 52)])
    items, used = window.live.training_items()
    assert len(items) == 1 and items[0][0].dtype == np.uint16 and items[0][0].shape == (64, 64, 2)

    trainer = LiveTrainer(LiveConfig(init=None, patch=32, batch=4, threads=1, snapshot_every=0.5, device="cpu"))
    trainer.set_data(items)
    snap = trainer.run(lambda s: None, lambda: False, time_budget=0.6)
    assert snap.checkpoint.in_channels == 2 and snap.checkpoint.normalization.reads_raw

    entry = window.store.current
    runner = PreviewRunner()
    with qtbot.waitSignal(runner.ready, timeout=20_000) as got:
        runner.request(view_request(entry.path, entry.image, snap, Box(0, 0, 64, 64), 1.0, (64, 64)))
    assert got.args[0].labels.shape == (64, 64)
    runner.shutdown()
