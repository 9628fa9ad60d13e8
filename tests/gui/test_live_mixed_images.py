"""Live Training on a folder that mixes 8-bit and 16-bit grey images trains, as ``unetseg train``
does (one raw channel each), and the preview of raw 8-bit channels works zoomed out: one channel,
or four of which none is alpha."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.classes import default_classes
from core.document.editing import Box
from core.document.strokes import write_strokes
from core.io.mask_naming import strokes_path
from gui.jobs.live_preview import read_view
from tests.gui.test_live_training import FAST, stroke


def grey_halves(path, bits: int, seed: int = 0):
    """A 64 x 64 grey image, dark textured left half and bright right half, in 8 or 16 bits."""
    rng = np.random.default_rng(seed)
    grey = rng.integers(20, 70, (64, 64)).astype(np.float64)
    grey[:, 32:] = rng.integers(170, 230, (64, 32))
    if bits == 16:
        grey = grey * 16 + 300  # a 12-bit camera's range
    Image.fromarray(grey.astype(np.uint8 if bits == 8 else np.uint16)).save(path)
    return path


def test_8bit_and_16bit_grey_images_train_together_and_preview_zoomed_out(qtbot, window, tmp_path):
    folder = tmp_path / "grey"
    folder.mkdir()
    eight, sixteen = grey_halves(folder / "g8.png", 8), grey_halves(folder / "g16.png", 16, seed=1)
    labels = np.full((64, 64), 255, np.uint8)
    labels[10:14, 5:25], labels[30:34, 40:60] = 0, 1
    write_strokes(strokes_path(sixteen), labels, default_classes(2))  # strokes from an earlier session
    window.open_folder(folder)
    window.show_entry(window.store.get(eight))
    window.state.set_brush_size(4)
    stroke(qtbot, window, 1, [(40, 10), (56, 20), (44, 50)])
    stroke(qtbot, window, 0, [(8, 12), (24, 22), (12, 52)])
    items, used = window.live.training_items()
    assert {name for name, _ in used} == {"g8.png", "g16.png"}
    assert sorted(px.dtype.name for px, _ in items) == ["uint16", "uint8"]
    assert all(px.shape == (64, 64, 1) for px, _ in items)  # one raw channel each, as the CLI trains them

    live, state = window.live, window.state.live
    shown, failed = [], []
    live.preview_shown.connect(shown.append)
    live.preview.failed.connect(failed.append)
    live.config_changes = dict(FAST)
    window.commands.live_training.trigger()
    qtbot.waitUntil(lambda: bool(state.history), timeout=30_000)
    checkpoint = state.history[-1].snapshot.checkpoint
    assert checkpoint.in_channels == 1 and checkpoint.normalization.reads_raw

    window.canvas.set_scale(0.25)  # zoomed out: the 8-bit channel is read at one sample per 4 pixels
    qtbot.waitUntil(lambda: any(p.factor == 4 for p in shown) or bool(failed), timeout=30_000)
    assert not failed and "failed" not in window.state.live.status
    zoomed = next(p for p in shown if p.factor == 4)
    assert zoomed.image == eight and zoomed.labels.shape == (16, 16)
    window.commands.live_training.trigger()
    qtbot.waitUntil(lambda: not live.trainer.running, timeout=10_000)


def test_a_zoomed_out_view_of_raw_8bit_channels_is_box_filtered_channel_by_channel():
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (40, 52, 3), dtype=np.uint8)
    box = Box(0, 0, 40, 52)
    reduced = read_view(rgb, box, 4)  # an RGB view, reduced as before
    assert reduced.shape == (10, 13, 3)
    one = read_view(rgb[..., :1], box, 4)  # one channel: it raised TypeError
    assert one.shape == (10, 13, 1) and np.array_equal(one[..., 0], reduced[..., 0])
    assert abs(float(one[2, 3, 0]) - float(rgb[8:12, 12:16, 0].mean())) <= 0.5
    four = np.dstack([rgb, np.zeros((40, 52), np.uint8)])  # a 4th channel of zeros is data, not alpha
    assert np.array_equal(read_view(four, box, 4), np.dstack([reduced, np.zeros((10, 13), np.uint8)]))
    two = read_view(rgb[..., 1:], box, 4)
    assert np.array_equal(two, reduced[..., 1:])


@pytest.mark.slow  # a real (two-step) training run; it passed before this fix too
def test_the_training_dialog_trains_on_the_same_mixed_folder(qtbot, window, dialogs, tmp_path):
    """Train on Annotated Images already accepted such a folder (the rule is the training loop's)."""
    from PySide6.QtCore import Qt

    from core.io.masks import default_mask_path, write_mask
    from core.model.checkpoints import load_checkpoint
    from core.training.synthetic import SHAPE_CLASSES
    from gui.jobs.training_runner import NEW_SMALL

    folder = tmp_path / "grey"
    folder.mkdir()
    halves = np.zeros((64, 64), np.uint8)
    halves[:, 32:] = 1
    for path in (grey_halves(folder / "g8.png", 8), grey_halves(folder / "g16.png", 16, seed=1)):
        write_mask(default_mask_path(path), halves, "index", SHAPE_CLASSES[:2])
    window.open_folder(folder)
    window.commands.train.trigger()
    dialog = window.training.dialog
    dialog.set_mode(NEW_SMALL)
    dialog.epochs_spin.setValue(1)
    dialog.steps_spin.setValue(2)
    dialog.patch_spin.setValue(32)
    dialog.batch_spin.setValue(2)
    dialog.device_combo.setCurrentIndex(dialog.device_combo.findData("cpu"))
    with qtbot.waitSignal(dialog.run_finished, timeout=90_000) as blocker:
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    checkpoint = load_checkpoint(blocker.args[0].path)
    assert checkpoint.in_channels == 1 and checkpoint.normalization.reads_raw
    dialog.reject()
