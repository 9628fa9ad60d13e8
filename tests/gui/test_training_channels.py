"""Training on multi-channel images from the app: the dialog offers the channel choice of
``unetseg train --channels`` (which channels, in which order), and refuses one that the images do
not have with one sentence; RGB photographs keep the dialog as it was."""

from __future__ import annotations

import numpy as np
import pytest

from core.io.masks import default_mask_path, write_mask
from core.training.synthetic import SHAPE_CLASSES
from tests.channel_images import NAMES, blobs, write_ome_tiff


@pytest.fixture
def fluo_folder(tmp_path):
    folder = tmp_path / "fluo"
    folder.mkdir()
    for i in range(3):
        pixels = blobs(64, 64, 3, seed=i)
        image = write_ome_tiff(folder / f"cells{i}.ome.tif", pixels)
        labels = (pixels[..., 0] > np.percentile(pixels[..., 0], 70)).astype(np.uint8)
        write_mask(default_mask_path(image), labels, "index", SHAPE_CLASSES[:2])
    return folder


def test_the_dialog_offers_the_channels_and_refuses_one_that_does_not_exist(window, dialogs, fluo_folder):
    window.open_folder(fluo_folder)
    window.commands.train.trigger()
    dialog = window.training.dialog
    assert dialog.context.channel_names == list(NAMES)
    assert dialog.channels_edit.isVisibleTo(dialog) and "1 GFP" in dialog.channels_edit.toolTip()
    dialog.channels_edit.setText("0,5")
    assert dialog.make_job() is None
    assert "channel 5 does not exist, the image has 3 channels (0-2)" in dialog.result_label.text()
    dialog.channels_edit.setText("2, 0")
    assert dialog.make_job().channels == [2, 0]
    dialog.channels_edit.setText("")
    assert dialog.make_job().channels is None  # all of them
    dialog.reject()


def test_rgb_photographs_have_no_channel_choice(window, dialogs, tmp_path):
    from PIL import Image

    from core.training.synthetic import generate_scene

    folder = tmp_path / "rgb"
    folder.mkdir()
    rgb, labels = generate_scene(0, 48, 48)
    Image.fromarray(rgb).save(folder / "scene.png")
    write_mask(default_mask_path(folder / "scene.png"), labels, "index", SHAPE_CLASSES)
    window.open_folder(folder)
    window.commands.train.trigger()
    dialog = window.training.dialog
    assert dialog.context.channel_names == [] and not dialog.channels_edit.isVisibleTo(dialog)
    assert dialog.make_job().channels is None
    dialog.reject()


@pytest.mark.slow  # a real (two-step) training run: about 7 s on the 2-core CPU
def test_a_model_trained_from_the_app_reads_the_channels_picked(qtbot, window, dialogs, fluo_folder):
    from PySide6.QtCore import Qt

    from core.model.checkpoints import load_checkpoint
    from gui.jobs.training_runner import NEW_SMALL

    window.open_folder(fluo_folder)
    window.commands.train.trigger()
    dialog = window.training.dialog
    dialog.set_mode(NEW_SMALL)
    dialog.epochs_spin.setValue(1)
    dialog.steps_spin.setValue(2)
    dialog.patch_spin.setValue(32)
    dialog.batch_spin.setValue(2)
    dialog.device_combo.setCurrentIndex(dialog.device_combo.findData("cpu"))
    dialog.channels_edit.setText("2,0")
    with qtbot.waitSignal(dialog.run_finished, timeout=90_000) as blocker:
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    checkpoint = load_checkpoint(blocker.args[0].path)
    assert checkpoint.in_channels == 2
    assert checkpoint.normalization.channels == (2, 0)
    assert checkpoint.normalization.channel_names == ("mCherry", "DAPI")
    dialog.reject()
