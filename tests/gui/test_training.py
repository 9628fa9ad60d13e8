"""Train from the app: annotate, train on the saved masks, watch it, cancel it, use the model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from core.model.checkpoints import load_checkpoint
from core.io.masks import default_mask_path, write_mask
from core.training.synthetic import SHAPE_CLASSES, generate_scene
from gui.jobs.training_runner import FINE_TUNE, NEW_SMALL
from gui.infra.workers import live_threads
from tests.helpers import write_checkpoint

RUN_TIMEOUT = 90_000
LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def annotated(tmp_path):
    """Six synthetic scenes; the first five have a mask saved the way the app saves them."""
    folder = tmp_path / "scenes"
    folder.mkdir()
    for i in range(6):
        rgb, labels = generate_scene(i, 64, 64)
        Image.fromarray(rgb).save(folder / f"scene{i}.png")
        if i < 5:
            write_mask(default_mask_path(folder / f"scene{i}.png"), labels, "index", SHAPE_CLASSES)
    return folder


@pytest.fixture
def tiny_model(tmp_path):
    (tmp_path / "models").mkdir()
    return write_checkpoint(tmp_path / "models" / "tiny.safetensors", "small", 5)


def load(qtbot, window, spec):
    with qtbot.waitSignal(window.model_ready, timeout=RUN_TIMEOUT):
        window.load_model(spec)


def open_training(window):
    window.commands.train.trigger()
    return window.training.dialog


def quick(dialog, epochs=2, steps=2):
    """Settings for a run of a few seconds on a CPU."""
    dialog.epochs_spin.setValue(epochs)
    dialog.steps_spin.setValue(steps)
    dialog.patch_spin.setValue(64)
    dialog.batch_spin.setValue(4)
    dialog.device_combo.setCurrentIndex(dialog.device_combo.findData("cpu"))


def test_fine_tune_on_saved_masks_then_switch_to_the_new_model(qtbot, window, dialogs, annotated,
                                                               tiny_model, tmp_path):
    window.open_folder(annotated)
    load(qtbot, window, tiny_model)
    window.document.set_classes(SHAPE_CLASSES)  # the user named the classes
    dialog = open_training(window)
    assert dialog is not None and dialog.isVisible() and dialog.isModal()
    summary = dialog.findChild(type(dialog.result_label), "training_summary").text()
    assert "5 annotated images</b>" in summary and "1 without a saved mask is left out" in summary
    assert "ellipse, rectangle, triangle, star" in summary
    out = annotated / "unetseg_model.safetensors"
    assert dialog.output_edit.text() == str(out)
    assert dialog.mode == FINE_TUNE and "tiny.safetensors" in dialog.mode_combo.currentText()
    assert (dialog.epochs_spin.value(), dialog.lr_spin.value()) == (10, 1e-3)
    dialog.set_mode(NEW_SMALL)
    assert (dialog.epochs_spin.value(), dialog.lr_spin.value()) == (30, 3e-3)
    dialog.set_mode(FINE_TUNE)
    quick(dialog)
    assert not dialog.augment_check.isChecked()
    qtbot.mouseClick(dialog.augment_check, LEFT)  # the user wants scale and colour varied
    steps = []
    with qtbot.waitSignal(dialog.run_finished, timeout=RUN_TIMEOUT) as blocker:
        qtbot.mouseClick(dialog.start_button, LEFT)
        dialog.task.progress.connect(lambda done, total: steps.append((done, total)))
        assert dialog.running and not dialog.epochs_spin.isEnabled() and dialog.cancel_button.isEnabled()
        assert not dialog.start_button.isEnabled() and not dialog.use_button.isEnabled()
    outcome = blocker.args[0]
    assert not outcome.stopped_early and outcome.epochs_run == 2 and outcome.path == out
    assert steps[-1] == (4, 4)  # 2 epochs x 2 steps, reported step by step
    assert len(dialog.plot.losses) == 2 and len(dialog.plot.mious) == 2
    assert all(math.isfinite(v) and v > 0 for v in dialog.plot.losses)
    assert all(0 <= v <= 1 for v in dialog.plot.mious)
    log = dialog.log.toPlainText()
    assert "training UNetSmall (5 classes) on cpu" in log and "epoch 2/2" in log
    result = dialog.result_label.text()
    assert "Training finished" in result and str(out) in result and f"{outcome.best_miou:.3f}" in result
    assert "refinement" not in result + log  # nothing was held out, so nothing to fit it on
    assert "Trained on all 5 images and kept the weights of the latest epoch (2 of 2)" in result  # and why

    checkpoint = load_checkpoint(out)
    recipe = checkpoint.metadata["training"]
    assert recipe["config"]["init"] == str(tiny_model) and recipe["epochs_planned"] == 2
    assert recipe["config"]["augment"] is True
    assert recipe["train_images"] + recipe["val_images"] == 5
    assert [c.name for c in checkpoint.classes] == [c.name for c in SHAPE_CLASSES]
    assert checkpoint.classes == SHAPE_CLASSES  # colours too
    assert "scenes" in recipe["command"] and "fine-tune tiny.safetensors" in recipe["command"]
    assert recipe["dataset"]["images"] == 5 and checkpoint.summary == "trained on 5 images of scenes"
    assert checkpoint.description.startswith("Recognises ellipse, rectangle, triangle, star. Trained on 5 "
                                              "annotated images from ")

    dialogs.answers["ask_model_save_path"] = tmp_path / "copy.safetensors"
    qtbot.mouseClick(dialog.save_copy_button, LEFT)
    assert (tmp_path / "copy.safetensors").read_bytes() == out.read_bytes()

    assert dialog.use_button.isEnabled() and dialog.use_button.isDefault()
    with qtbot.waitSignal(window.model_ready, timeout=RUN_TIMEOUT):
        qtbot.mouseClick(dialog.use_button, LEFT)
    assert window.training.dialog is None
    assert window.models.spec == str(out) and window.settings.model == str(out)
    assert window.seg.menu.custom.isChecked()
    assert window.seg.menu.custom.text() == f"{out.name}: trained on 5 images of scenes"
    assert window.models.segmenter.classes == SHAPE_CLASSES
    assert window.seg.menu.refine.isChecked() == (checkpoint.refine is not None)  # its fitted default
    assert dialogs.errors() == []
    qtbot.waitUntil(lambda: not live_threads(), timeout=10_000)  # the loader thread ends just after


def test_cancel_keeps_the_model_so_far_and_the_app_stays_usable(qtbot, window, dialogs, annotated,
                                                                 tiny_model):
    window.open_folder(annotated)
    load(qtbot, window, tiny_model)
    dialog = open_training(window)
    quick(dialog, epochs=2, steps=500)
    steps = []
    assert dialog.start()
    dialog.task.progress.connect(lambda done, total: steps.append((done, total)))
    with qtbot.waitSignal(dialog.task.progress, timeout=RUN_TIMEOUT):
        pass
    with qtbot.waitSignal(dialog.run_finished, timeout=RUN_TIMEOUT) as blocker:
        qtbot.mouseClick(dialog.cancel_button, LEFT)
        assert dialog.state == "stopping" and not dialog.cancel_button.isEnabled()
        assert "Stopping" in dialog.progress.format()
    outcome = blocker.args[0]
    assert outcome.stopped_early and steps[-1][0] < steps[-1][1] == 1000
    assert "Stopped early" in dialog.result_label.text() and "best model so far is kept" in dialog.result_label.text()
    kept = load_checkpoint(outcome.path)
    assert kept.metadata["training"]["epochs"] < 2
    assert kept.num_classes == 5  # the document knew 4 classes, the masks and the model use 5
    assert dialog.start_button.isEnabled() and dialog.start_button.text() == "Train Again"
    assert dialog.use_button.isEnabled() and dialog.epochs_spin.isEnabled()
    qtbot.waitUntil(lambda: not live_threads(), timeout=10_000)

    qtbot.mouseClick(dialog.close_button, LEFT)  # nothing running: closes without asking
    assert window.training.dialog is None and dialogs.of("confirm") == []
    assert window.commands.train.isEnabled() and window.commands.segment.isEnabled()
    window.document.set_active_class(2)
    window.commands.fill.trigger()
    qtbot.mouseClick(window.canvas.viewport(), LEFT, pos=window.canvas.mapFromScene(2, 2))
    assert window.document.dirty  # still editable
    assert window.models.spec == str(tiny_model)  # not switched unasked


def test_closing_during_a_run_asks_then_stops_and_closes(qtbot, window, dialogs, annotated):
    window.open_folder(annotated)
    dialog = open_training(window)
    assert dialog.mode == NEW_SMALL  # no model loaded: fine-tuning is not offered
    quick(dialog, epochs=3, steps=500)
    assert dialog.start()
    with qtbot.waitSignal(dialog.task.progress, timeout=RUN_TIMEOUT):
        pass
    dialogs.answers["confirm"] = False
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert dialog.isVisible() and dialog.state == "running"  # "keep training"
    dialogs.answers["confirm"] = True
    with qtbot.waitSignal(dialog.finished, timeout=RUN_TIMEOUT):
        dialog.close()
        assert dialog.state == "stopping"
    assert len(dialogs.of("confirm")) == 2 and "still running" in dialogs.of("confirm")[0][2]
    assert window.training.dialog is None
    qtbot.waitUntil(lambda: not live_threads(), timeout=10_000)


def test_no_saved_masks_says_what_is_missing(qtbot, window, dialogs, tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(generate_scene(i, 48, 48)[0]).save(folder / f"cells{i}.png")
    window.open_folder(folder)
    window.commands.train.trigger()
    assert window.training.dialog is None
    assert len(dialogs.errors()) == 1
    message = dialogs.errors()[0]
    assert "None of the 3 listed images" in message and "has a saved mask" in message
    assert "cells0_mask.png" in message and "Ctrl+S" in message


def test_unreadable_mask_fails_with_one_message_in_the_dialog(qtbot, window, dialogs, annotated):
    (annotated / "scene3_mask.png").write_bytes(b"this is not a PNG file at all")
    window.open_folder(annotated)
    dialog = open_training(window)
    quick(dialog)
    with qtbot.waitSignal(dialog.run_failed, timeout=RUN_TIMEOUT) as blocker:
        dialog.start_button.click()
    message = blocker.args[0]
    assert message.startswith("scene3_mask.png:")
    assert dialog.result_label.text() == f"Training failed: {message}"
    assert dialog.start_button.isEnabled() and not dialog.use_button.isEnabled()
    assert not (annotated / "unetseg_model.safetensors").exists()
    assert dialogs.errors() == []  # shown in the dialog, not as another box
    dialog.reject()


def test_unsaved_edits_are_offered_for_saving_first(qtbot, window, dialogs, annotated):
    window.open_folder(annotated)
    entry = window.store.entries[5]  # the scene without a mask
    window.show_entry(entry)
    labels = np.zeros((64, 64), np.uint8)
    labels[10:30, 10:30] = 1
    window.document.apply_labels(labels)
    dialogs.answers["ask_save_before_training"] = "cancel"
    window.commands.train.trigger()
    assert window.training.dialog is None and window.document.dirty

    dialogs.answers["ask_save_before_training"] = "save"
    dialog = open_training(window)
    assert dialogs.of("ask_save_before_training")[-1][1] == 1
    assert not window.document.dirty and default_mask_path(entry.path).is_file()
    assert len(dialog.context.pairs) == 6 and dialog.context.missing == 0

    # settings that cannot work are refused in the dialog, before any thread starts
    dialog.output_edit.setText(str(annotated / "no such folder" / "model"))
    assert not dialog.start() and dialog.task is None
    assert "does not exist" in dialog.result_label.text()
    (annotated / "taken.safetensors").write_bytes(b"x")
    dialog.output_edit.setText(str(annotated / "taken"))
    dialogs.answers["confirm"] = False
    assert not dialog.start() and "taken.safetensors already exists" in dialogs.of("confirm")[-1][2]
    dialog.reject()
    assert window.training.dialog is None


def test_the_outcome_says_what_fitting_edge_refinement_found(tmp_path):
    from gui.jobs.training_runner import TrainingOutcome, outcome_text

    outcome = TrainingOutcome(tmp_path / "m.safetensors", 0.71, 9, 10, 10, False, train_images=40, val_images=5,
                              seconds=75, refinement="edge refinement on (guided filter, radius 8 px, eps 0.001): "
                                                     "mIoU 0.7100 -> 0.7600 on 5 images")
    text = outcome_text(outcome)
    assert "validation mIoU 0.710 (best at epoch 9 of 10)." in text and "1 min" in text
    assert "\nEdge refinement on (guided filter, radius 8 px, eps 0.001): mIoU 0.7100 -> 0.7600 on 5 images." in text
