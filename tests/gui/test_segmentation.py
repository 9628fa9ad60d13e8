"""Segmenting on the worker thread: real model, progressive tiles, cancel, failure, Segment All."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from core.io.masks import default_mask_path, read_mask, write_mask
from tests.gui.helpers import MODEL_CLASSES, FakeSegmenter, drag, write_image

MODEL_TIMEOUT = 60_000


def load(qtbot, window, spec):
    with qtbot.waitSignal(window.model_ready, timeout=MODEL_TIMEOUT):
        window.load_model(spec)


def test_real_model_segments_on_the_worker(qtbot, window, checkpoint, tmp_path):
    window.open_images([write_image(tmp_path / "cells.png", 72, 96)])
    doc = window.document
    load(qtbot, window, checkpoint)
    assert [c.name for c in doc.classes] == [c.name for c in MODEL_CLASSES]  # empty mask adopts them
    assert window.class_panel.class_list.count() == len(MODEL_CLASSES)
    assert window.seg.menu.custom.isChecked() and window.seg.menu.custom.text() == f"{checkpoint.name}: no description"
    with qtbot.waitSignal(window.segmentation_finished, timeout=MODEL_TIMEOUT) as blocker:
        qtbot.keyClick(window.canvas, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    seconds, device = blocker.args
    assert device == "cpu" and seconds > 0
    assert f"Segmented in {seconds:.2f} s on cpu" == window.statusBar().currentMessage()
    assert window.mask.max() < len(MODEL_CLASSES) and len(np.unique(window.mask)) >= 2
    assert len(doc.history) == 1 and doc.dirty
    window.commands.undo.trigger()
    assert not window.mask.any()
    assert window.commands.brush.isEnabled() and window.canvas.editing_enabled


def test_model_classes_replace_the_documents(qtbot, window, checkpoint, tmp_path):
    window.open_images([write_image(tmp_path / "cells.png", 40, 40)])
    window.document.apply_labels(np.ones((40, 40), np.uint8))  # not empty: keeps its classes for now
    load(qtbot, window, checkpoint)
    assert len(window.document.classes) == 2
    window.models.set_segmenter(FakeSegmenter(classes=MODEL_CLASSES, value=3))
    with qtbot.waitSignal(window.segmentation_finished, timeout=10_000):
        window.commands.segment.trigger()
    assert window.document.classes == MODEL_CLASSES
    assert "debris" in window.class_panel.class_list.item(3).text()


def test_test_time_augmentation_follows_the_model_and_the_menu(qtbot, window, tmp_path):
    window.open_images([write_image(tmp_path / "cells.png", 32, 32)])
    fake = FakeSegmenter(classes=MODEL_CLASSES)
    fake.tta = True  # a model that asks for TTA by default, like the built-in small one
    window.models.set_segmenter(fake)
    tta = window.findChild(type(window.commands.segment), "action_tta")
    assert tta.isChecked()
    with qtbot.waitSignal(window.segmentation_finished, timeout=10_000):
        window.commands.segment.trigger()
    assert fake.last_tta is True
    tta.trigger()  # the user turns it off for speed
    with qtbot.waitSignal(window.segmentation_finished, timeout=10_000):
        window.commands.segment.trigger()
    assert fake.last_tta is False


def test_edge_refinement_follows_the_model_and_the_menu(qtbot, window, tmp_path):
    from core.model.refine import Refinement

    window.open_images([write_image(tmp_path / "cells.png", 32, 32)])
    refine = window.findChild(type(window.commands.segment), "action_refine")
    calibrated = FakeSegmenter(classes=MODEL_CLASSES)
    calibrated.refine = Refinement(16, 1e-4)  # fitted by `unetseg calibrate`, like the built-in models
    window.models.set_segmenter(calibrated)
    assert refine.isChecked() and "radius 16 px" in refine.toolTip()
    with qtbot.waitSignal(window.segmentation_finished, timeout=10_000):
        window.commands.segment.trigger()
    assert calibrated.last_refine is True  # the segmenter applies its own fitted setting
    refine.trigger()  # the user wants the network's raw edges
    with qtbot.waitSignal(window.segmentation_finished, timeout=10_000):
        window.commands.segment.trigger()
    assert calibrated.last_refine is False

    plain = FakeSegmenter(classes=MODEL_CLASSES)  # a model never calibrated: off until asked
    window.models.set_segmenter(plain)
    assert not refine.isChecked() and "off by default" in refine.toolTip()


def test_tiles_appear_as_they_finish_and_tools_wait(qtbot, window, tmp_path, dialogs):
    window.open_images([write_image(tmp_path / "cells.png", 64, 64)])
    fake = FakeSegmenter(tile=16, delay=0.15)
    window.models.set_segmenter(fake)
    with qtbot.waitSignal(window.segmentation_finished, timeout=20_000):
        window.commands.segment.trigger()
        qtbot.waitUntil(lambda: window.mask[:16, :16].all(), timeout=5000)
        assert not window.mask[48:, 48:].any()  # later tiles not there yet
        assert window.status.progress.isVisible() and window.status.cancel.isVisible()
        assert not window.commands.brush.isEnabled() and not window.commands.segment.isEnabled()
        window.commands.brush.setEnabled(True)  # even if a tool is forced on, edits are refused
        before = window.mask.copy()
        drag(qtbot, window, [(40, 40), (50, 50)])
        assert (window.mask[40:51, 40:51] == before[40:51, 40:51]).all()
        assert "paused" in window.statusBar().currentMessage()
    assert (window.mask == 2).all() and not window.status.progress.isVisible()


def test_cancel_leaves_the_previous_mask(qtbot, window, tmp_path):
    window.open_images([write_image(tmp_path / "cells.png", 64, 64)])
    doc = window.document
    previous = np.zeros((64, 64), np.uint8)
    previous[5:20, 5:20] = 1
    doc.apply_labels(previous)
    fake = FakeSegmenter(tile=8, delay=0.05)
    window.models.set_segmenter(fake)
    window.commands.segment.trigger()
    qtbot.waitUntil(lambda: fake.tiles_done >= 1 and doc.preview_active, timeout=5000)
    with qtbot.waitSignal(window.segmentation_cancelled, timeout=10_000):
        qtbot.keyClick(window.canvas, Qt.Key.Key_Escape)
    assert (window.mask == previous).all()
    assert fake.tiles_done < 64
    assert len(doc.history) == 1 and not doc.preview_active
    assert "cancelled" in window.statusBar().currentMessage()
    window.commands.undo.trigger()
    assert not window.mask.any()  # the step before segmenting is still the last one


def test_cancel_button_in_status_bar(qtbot, window, tmp_path):
    window.open_images([write_image(tmp_path / "cells.png", 64, 64)])
    fake = FakeSegmenter(tile=8, delay=0.05)
    window.models.set_segmenter(fake)
    window.commands.segment.trigger()
    qtbot.waitUntil(lambda: fake.tiles_done >= 1, timeout=5000)
    with qtbot.waitSignal(window.segmentation_cancelled, timeout=10_000):
        qtbot.mouseClick(window.status.cancel, Qt.MouseButton.LeftButton)
    assert not window.mask.any()


def test_failing_worker_shows_one_message_and_app_stays_usable(qtbot, window, tmp_path, dialogs):
    window.open_images([write_image(tmp_path / "cells.png", 64, 64)])
    window.models.set_segmenter(FakeSegmenter(tile=16, fail_after=2))
    with qtbot.waitSignal(window.segmentation_failed, timeout=10_000) as blocker:
        window.commands.segment.trigger()
    assert "broke on purpose" in blocker.args[0]
    assert len(dialogs.errors()) == 1 and "broke on purpose" in dialogs.errors()[0]
    assert not window.mask.any() and not window.document.preview_active
    drag(qtbot, window, [(10, 10), (20, 10)])
    assert window.mask.any()
    window.models.set_segmenter(FakeSegmenter(tile=16))
    with qtbot.waitSignal(window.segmentation_finished, timeout=10_000):
        window.commands.segment.trigger()


def test_bad_weights_keep_the_previous_model(qtbot, window, dialogs, checkpoint, tmp_path):
    load(qtbot, window, checkpoint)
    previous = window.models.segmenter
    bad = tmp_path / "x.pt"
    bad.write_bytes(b"definitely not a checkpoint")
    dialogs.answers["ask_weights_path"] = bad
    with qtbot.waitSignal(window.model_failed, timeout=MODEL_TIMEOUT):
        window.commands.load_weights.trigger()
    errors = dialogs.errors()
    assert len(errors) == 1 and errors[0].startswith("x.pt")
    assert window.models.segmenter is previous
    assert window.seg.menu.custom.isChecked() and window.seg.menu.custom.text() == f"{checkpoint.name}: no description"


def test_segment_without_a_model_explains_what_to_do(qtbot, window, dialogs, tmp_path, monkeypatch):
    monkeypatch.setattr("gui.state.model_names.builtin_model_path", lambda name: tmp_path / f"{name}.missing")
    window.open_images([write_image(tmp_path / "cells.png")])
    window.commands.segment.trigger()
    errors = dialogs.errors()
    assert len(errors) == 1 and "load a weights file" in errors[0]


def test_startup_load_is_quiet_when_the_builtin_model_is_missing(qtbot, window, dialogs, tmp_path,
                                                                 monkeypatch):
    for where in ("core.segment.inference.builtin_model_path", "gui.state.model_names.builtin_model_path"):
        monkeypatch.setattr(where, lambda name: tmp_path / "none.safetensors")
    with qtbot.waitSignal(window.model_failed, timeout=MODEL_TIMEOUT):
        window.start_background_loading()
    assert dialogs.errors() == []
    assert "not installed" in window.statusBar().currentMessage()
    assert window.status.model.text() == "No model"


def test_builtin_models_are_disabled_with_a_reason_when_missing(qtbot, window, monkeypatch, tmp_path):
    monkeypatch.setattr("gui.state.model_names.builtin_model_path", lambda name: tmp_path / f"{name}.safetensors")
    window.seg.menu.refresh_builtins()
    small = window.seg.menu.model_actions["small"]
    assert not small.isEnabled() and "Load Weights" in small.toolTip()
    (tmp_path / "small.safetensors").write_bytes(b"x")
    window.seg.menu.refresh_builtins()
    assert small.isEnabled()


def test_device_menu_follows_availability(qtbot, window, checkpoint):
    with qtbot.waitSignal(window.models.devices_ready, timeout=MODEL_TIMEOUT) as blocker:
        load(qtbot, window, checkpoint)
    devices = blocker.args[0]
    menu = window.seg.menu
    for key in ("cuda", "mps"):
        ok, reason = devices[key]
        assert menu.device_actions[key].isEnabled() == ok
        if not ok:
            assert menu.device_actions[key].toolTip() == reason
    with qtbot.waitSignal(window.model_ready, timeout=MODEL_TIMEOUT):
        menu.device_actions["cpu"].trigger()
    assert window.models.segmenter.device == "cpu" and window.settings.device == "cpu"
    assert "cpu" in window.status.model.text()


@pytest.mark.parametrize("answer, expected", [("skip", 3), ("overwrite", 4), ("cancel", 0)])
def test_segment_all_saves_each_mask(qtbot, window, dialogs, folder, answer, expected):
    existing = np.ones((40, 50), np.uint8)
    write_mask(default_mask_path(folder / "img0.png"), existing, "index", MODEL_CLASSES)
    window.open_folder(folder)
    assert (window.mask == 1).all()  # img0's mask was loaded
    window.models.set_segmenter(FakeSegmenter(tile=32, value=2))
    dialogs.answers["ask_overwrite_skip_cancel"] = answer
    if answer == "cancel":
        window.commands.segment_all.trigger()
        assert not window.segmentation.running
        return
    with qtbot.waitSignal(window.segment_all_finished, timeout=20_000) as blocker:
        window.commands.segment_all.trigger()
    assert blocker.args == [expected, expected]
    assert dialogs.of("ask_overwrite_skip_cancel")[0][1:] == (
        1, 4, "Segment All saves each result beside its image as <name>_mask.png.")
    for i in range(1, 4):
        path = default_mask_path(folder / f"img{i}.png")
        assert (read_mask(path) == 2).all()
        assert window.file_panel.state_of(window.store.get(folder / f"img{i}.png")) == "saved"
    img0 = read_mask(default_mask_path(folder / "img0.png"))
    assert (img0 == (2 if answer == "overwrite" else 1)).all()
    assert (window.mask == (2 if answer == "overwrite" else 1)).all()
    assert not window.document.dirty
    assert "masks saved beside the images" in window.statusBar().currentMessage()


def test_segment_while_the_model_loads_runs_when_it_is_ready(qtbot, window, checkpoint, tmp_path):
    window.open_images([write_image(tmp_path / "cells.png", 40, 48)])
    window.settings.model = str(checkpoint)
    window.start_background_loading()
    assert window.models.is_loading
    with qtbot.waitSignal(window.segmentation_finished, timeout=MODEL_TIMEOUT):
        window.commands.segment.trigger()
        assert "still loading" in window.statusBar().currentMessage()
    assert window.document.classes == MODEL_CLASSES and window.settings.model == str(checkpoint)


def test_startup_falls_back_to_an_installed_builtin(qtbot, window, checkpoint, monkeypatch, tmp_path):
    paths = {"small": tmp_path / "missing.safetensors", "large": checkpoint}
    for where in ("core.segment.inference.builtin_model_path", "gui.state.model_names.builtin_model_path"):
        monkeypatch.setattr(where, lambda name: paths[name])
    assert window.settings.model == "small"
    with qtbot.waitSignal(window.model_ready, timeout=MODEL_TIMEOUT):
        window.start_background_loading()
    assert window.models.spec == "large" and window.seg.menu.model_actions["large"].isChecked()
    assert window.settings.model == "small"  # the fallback does not replace the saved choice
    with qtbot.waitSignal(window.model_ready, timeout=MODEL_TIMEOUT):
        window.seg.menu.model_actions["large"].trigger()  # choosing it does
    assert window.settings.model == "large"


def test_the_built_in_model_segments_the_bundled_sample_better_with_refined_edges(qtbot, window):
    from core.resources import sample_images
    from core.training.samples import ground_truth_path
    from core.metrics import mean_iou

    sample = sample_images()[0]
    truth = read_mask(ground_truth_path(sample))
    window.open_images([sample])
    load(qtbot, window, "small")
    refine = window.findChild(type(window.commands.segment), "action_refine")
    window.findChild(type(window.commands.segment), "action_tta").setChecked(False)  # 8x faster, same point
    scores = {}
    for on in (True, False):
        refine.setChecked(on)
        with qtbot.waitSignal(window.segmentation_finished, timeout=60_000):
            window.commands.segment.trigger()
        scores[on] = mean_iou(window.document.labels, truth)[0]
    assert scores[True] > scores[False] + 0.02, scores


def test_segment_counts_the_models_objects_and_points_to_objects_mode_only_while_it_is_off(qtbot, window, tmp_path):
    from PIL import Image

    from tests.gui.stack_helpers import SplittingPlaneSegmenter

    pixels = np.zeros((40, 64, 3), np.uint8)
    pixels[:, :24] = 200  # bright on the left only: the model's one object, left of its cut
    Image.fromarray(pixels).save(tmp_path / "one.png")
    window.open_images([tmp_path / "one.png"])
    window.models.set_segmenter(SplittingPlaneSegmenter(classes=MODEL_CLASSES, value=2))

    def segment() -> str:
        with qtbot.waitSignal(window.segmentation_finished, timeout=20_000):
            window.commands.segment.trigger()
        return window.statusBar().currentMessage()

    assert segment().endswith("; 1 object (Objects mode, Shift+O, shows and measures them)")
    window.commands.objects_mode.trigger()
    assert window.commands.objects_mode.isChecked()
    assert segment().endswith(" s on cpu; 1 object")  # the objects are in view: no hint
