"""Live Training as a user meets it: strokes of two classes, one action, the view shows what the
model learned, a roll back, Apply to Image (one undo step) and Save Model."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from core.document.editing import Box
from core.model.checkpoints import load_checkpoint
from gui.state.live import FROM_MODEL, FROM_SCRATCH
from tests.gui.live_helpers import FAST, dclick, expected_view, segmented, stroke, two_halves, weights_equal
from tests.gui.test_large_images import SIDE, slide  # noqa: F401 - a fixture


def agreement(labels, factor=1):
    """Share of predicted pixels that match the halves (0 on the left, 1 on the right)."""
    w = labels.shape[1]
    truth = np.zeros(labels.shape, np.uint8)
    truth[:, (32 + factor - 1) // factor:] = 1
    return float((labels == truth).mean()) if w else 0.0


@pytest.mark.slow  # trains for several seconds (CI runs it)
def test_live_training_flow(qtbot, window, dialogs, tmp_path):
    image = two_halves(tmp_path / "halves.png")
    window.open_images([image])
    window.state.set_brush_size(4)
    stroke(qtbot, window, 1, [(40, 10), (56, 20), (44, 50)])
    stroke(qtbot, window, 0, [(8, 12), (24, 22), (12, 52)])
    live, panel, state = window.live, window.live_panel, window.state.live
    assert window.canvas.prediction_layer.labels is None  # nothing predicted before it starts
    live.config_changes = dict(FAST)
    window.commands.live_training.trigger()
    assert state.on and window.live_dock.isVisible() and live.trainer.running

    # the view comes first: a prediction of the region in view, from checkpoints, that learns the halves
    shown = []
    live.preview_shown.connect(shown.append)
    qtbot.waitUntil(lambda: bool(shown) and agreement(shown[-1].labels) > 0.9, timeout=60_000)
    first = shown[0]
    # ... and refreshes from newer checkpoints (nothing is scored with so few strokes: the newest is marked)
    qtbot.waitUntil(lambda: len({p.uid for p in shown}) >= 3, timeout=30_000)
    uids = [p.uid for p in shown]
    assert uids == sorted(uids)  # the view never goes back to an older checkpoint by itself
    assert window.canvas.prediction_layer.labels is shown[-1].labels
    assert shown[-1].box.height == 64 and shown[-1].box.width == 64  # the whole image is in view
    assert len(state.history) >= 2 and panel.history.count() == len(state.history)
    for row in state.history:  # each row says what its checkpoint trained on and how it scored
        text, s = panel.item_of(row.uid).text(), row.snapshot
        assert f"{row.label}  " in text and f"trained on {s.annotated_pixels:,} px" in text
        assert text.endswith("not scored yet") if s.held_out_miou is None else f"held-out strokes {s.held_out_miou:.2f}" in text

    # strokes painted while it trains reach the trainer a moment later
    trained_on = state.history[-1].snapshot.annotated_pixels
    stroke(qtbot, window, 1, [(50, 56), (60, 60)])
    qtbot.waitUntil(lambda: state.history[-1].snapshot.annotated_pixels > trained_on, timeout=20_000)

    # uncertainty, toggled with its key
    qtbot.keyClick(window.canvas, Qt.Key.Key_U)
    assert state.show_uncertainty and window.canvas.prediction_layer.show_uncertainty
    qtbot.keyClick(window.canvas, Qt.Key.Key_U)
    assert not state.show_uncertainty

    # pause holds training within a second; resume goes on
    panel.pause.click()
    assert state.held and panel.pause.text() == "Resume"
    qtbot.wait(1000)
    kept = len(state.history)
    qtbot.wait(1000)
    assert len(state.history) == kept
    panel.pause.click()
    qtbot.waitUntil(lambda: len(state.history) > kept, timeout=10_000)

    # roll back while it trains: the marker stays on the chosen checkpoint as newer ones arrive
    # (nothing is scored with so few strokes, so none is better), and the view shows it
    chosen = state.history[-2]
    window.live_dock.show()
    dclick(qtbot, panel.history.viewport(), panel.history.visualItemRect(panel.item_of(chosen.uid)).center())
    assert state.marked == chosen.uid and state.pinned
    kept = len(state.history)
    qtbot.waitUntil(lambda: len(state.history) >= kept + 2, timeout=20_000)
    assert state.marked == chosen.uid and window.state.live.prediction.uid == chosen.uid

    # stop, then roll back one checkpoint: the view shows that checkpoint's prediction
    window.commands.live_training.trigger()
    qtbot.waitUntil(lambda: not live.trainer.running, timeout=10_000)
    newest, older = state.history[-1], state.history[-2]
    panel.history.setCurrentItem(panel.item_of(older.uid))  # one checkpoint back
    shown.clear()
    panel.roll_back.click()
    qtbot.waitUntil(lambda: bool(shown), timeout=20_000)
    assert state.marked == older.uid != newest.uid
    assert {p.uid for p in shown} == {older.uid}  # nothing of the later checkpoints shows any more
    assert window.canvas.prediction_layer.labels is shown[0].labels
    assert panel.item_of(older.uid).text().startswith("▶") and not panel.item_of(newest.uid).text().startswith("▶")

    # apply to image: the mask takes the prediction as one undo step
    before = window.mask.copy()
    with qtbot.waitSignal(live.applied, timeout=20_000):
        panel.apply.click()
    applied = window.mask.copy()
    assert not np.array_equal(applied, before) and agreement(applied) > 0.8
    assert np.array_equal(applied, segmented(older.snapshot.checkpoint, window.current.image))
    window.commands.brush.trigger()
    window.commands.undo.trigger()
    assert np.array_equal(window.mask, before)
    window.commands.redo.trigger()
    assert np.array_equal(window.mask, applied)

    # save the model: it loads, knows its classes and what trained it
    target = tmp_path / "live.safetensors"
    dialogs.answers["ask_model_save_path"] = target
    panel.save.click()
    ckpt = load_checkpoint(target)
    record = ckpt.metadata["live_training"]
    strokes = window.current.strokes
    assert record["images"] == [{"image": "halves.png", "annotated_pixels": strokes.annotated_pixels}]
    assert record["snapshot"] == older.index and record["annotated_pixels"] > 0
    assert record["trained_pixels"] == older.snapshot.annotated_pixels
    assert weights_equal(ckpt.state_dict, older.snapshot.checkpoint.state_dict)
    assert {c.id for c in ckpt.classes} >= {0, 1}


def choose_start(panel, key):
    panel.start.setCurrentIndex(panel.start.findData(key))
    panel.start.activated.emit(panel.start.currentIndex())  # as a user's choice arrives


def train_a_run(qtbot, window, rows):
    """Turn Live Training on, let it keep ``rows`` checkpoints of this run, turn it off."""
    live = window.state.live
    before = len(live.history)
    window.commands.live_training.trigger()
    assert live.on
    qtbot.waitUntil(lambda: len(live.history) >= before + rows, timeout=60_000)
    window.commands.live_training.trigger()
    qtbot.waitUntil(lambda: not window.live.trainer.running, timeout=10_000)
    return [r for r in live.history[before:]]


@pytest.mark.slow  # trains two runs; test_live_checkpoints covers each step quickly
def test_restart_then_each_step_uses_the_checkpoint_chosen_in_either_run(qtbot, window, dialogs, tmp_path):
    """The issue's flow: train, restart (a new run numbered from #0 again), roll back to a row of
    each run, apply, save the model: every step used the chosen checkpoint's weights."""
    image = two_halves(tmp_path / "halves.png")
    window.open_images([image])
    window.live_dock.show()
    window.state.set_brush_size(4)
    stroke(qtbot, window, 1, [(40, 10), (56, 20), (44, 50)])
    stroke(qtbot, window, 0, [(8, 12), (24, 22), (12, 52)])
    live, panel, state = window.live, window.live_panel, window.state.live
    live.config_changes = dict(FAST, snapshot_every=0.3)
    choose_start(panel, FROM_SCRATCH)
    one = train_a_run(qtbot, window, 2)
    stroke(qtbot, window, 1, [(50, 56), (60, 60)])
    choose_start(panel, FROM_MODEL)  # the built-in model: run 2's weights are surely not run 1's
    two = train_a_run(qtbot, window, 2)
    assert {r.run for r in one} == {1} and {r.run for r in two} == {2}
    assert one[1].index == two[1].index == 1 and one[1].uid != two[1].uid
    assert sum(panel.item_of(r.uid).text().startswith("▶") for r in state.history) == 1
    shown = []
    live.preview_shown.connect(shown.append)
    loaded = window.current.image
    for chosen, other in ((one[1], two[1]), (two[1], one[1])):
        shown.clear()
        item = panel.item_of(chosen.uid)
        dclick(qtbot, panel.history.viewport(), panel.history.visualItemRect(item).center())
        assert state.marked == chosen.uid
        qtbot.waitUntil(lambda: bool(shown), timeout=20_000)
        assert {p.uid for p in shown} == {chosen.uid}
        assert np.array_equal(shown[-1].labels, expected_view(window, chosen.snapshot))
        with qtbot.waitSignal(live.applied, timeout=20_000):
            panel.apply.click()
        assert np.array_equal(window.mask, segmented(chosen.snapshot.checkpoint, loaded))
        target = tmp_path / f"run{chosen.run}.safetensors"
        dialogs.answers["ask_model_save_path"] = target
        panel.save.click()
        saved = load_checkpoint(target)
        assert weights_equal(saved.state_dict, chosen.snapshot.checkpoint.state_dict)
        assert not weights_equal(saved.state_dict, other.snapshot.checkpoint.state_dict)
        assert saved.metadata["live_training"]["run"] == chosen.run  # "Run 1" / "Run 2", as the rows say


def test_one_class_of_strokes_gets_one_clear_message(qtbot, window, tmp_path):
    image = two_halves(tmp_path / "halves.png")
    window.open_images([image])
    stroke(qtbot, window, 1, [(40, 10), (56, 20)])
    window.commands.live_training.trigger()
    assert not window.state.live.on and not window.commands.live_training.isChecked()
    assert not window.live.trainer.running
    status = window.state.live.status
    assert status.startswith("Live Training cannot start:") and "two classes" in status


def test_no_strokes_says_how_to_paint_them(qtbot, window, tmp_path):
    window.open_images([two_halves(tmp_path / "halves.png")])
    window.commands.live_training.trigger()
    assert not window.state.live.on and "Stroke tool (S)" in window.state.live.status


@pytest.mark.slow
def test_the_view_of_a_whole_slide_is_predicted_at_the_shown_level(qtbot, window, tmp_path, slide):
    """Strokes on an image of the folder train the model; the slide's view is read from the
    pyramid level it is shown at, and zooming in predicts the new view at full resolution."""
    image = two_halves(tmp_path / "halves.png")
    window.open_images([image, slide])
    window.show_entry(window.store.get(image))
    window.state.set_brush_size(4)
    stroke(qtbot, window, 1, [(40, 10), (56, 20), (44, 50)])
    stroke(qtbot, window, 0, [(8, 12), (24, 22), (12, 52)])
    live = window.live
    live.config_changes = dict(FAST)
    window.commands.live_training.trigger()
    qtbot.waitUntil(lambda: len(window.state.live.history) >= 1, timeout=30_000)
    shown = []
    live.preview_shown.connect(shown.append)
    window.show_entry(window.store.get(slide))
    qtbot.waitUntil(lambda: bool(shown), timeout=30_000)
    whole = shown[-1]
    assert whole.image == slide and whole.factor >= 16  # fitted: a coarse level, not 1.6 Gpx
    assert whole.box.width > SIDE * 0.9 and whole.labels.shape[1] == -(-whole.box.width // whole.factor)
    shown.clear()
    window.canvas.set_scale(1.0)
    window.canvas.center_on_image(31_000, 17_000)
    qtbot.waitUntil(lambda: bool(shown) and shown[-1].factor == 1, timeout=30_000)
    near = shown[-1]
    assert near.box.intersect(Box(17_000, 31_000, 17_001, 31_001)) == Box(17_000, 31_000, 17_001, 31_001)
    assert near.box.width <= 1100 and near.labels.shape == (near.box.height, near.box.width)
    # Apply on a slide writes the region in view at full resolution, one undo step
    box = window.canvas.visible_box()
    with qtbot.waitSignal(live.applied, timeout=60_000):
        window.live_panel.apply.click()
    doc = window.document
    assert doc.history.undo_label == "live training"
    written = np.asarray(doc.labels[box.y0:box.y1, box.x0:box.x1])
    assert written.any() and not np.asarray(doc.labels[0:200, 0:200]).any()  # only the view
    window.commands.brush.trigger()
    window.commands.undo.trigger()
    assert not np.asarray(doc.labels[box.y0:box.y1, box.x0:box.x1]).any()
    window.commands.live_training.trigger()


def test_the_view_is_read_at_its_scale_with_a_sample_per_factor_pixels():
    from gui.jobs.live_preview import read_view, view_request

    rgb = np.random.default_rng(1).integers(0, 255, (300, 500, 3), dtype=np.uint8)
    req = view_request(None, rgb, None, Box(13, 21, 290, 470), 0.3, (300, 500))
    assert req.factor == 4 and (req.box.y0, req.box.x0) == (12, 20)  # a sample covers 1.2 screen px
    pixels = read_view(rgb, req.box, req.factor)
    assert pixels.shape == (-(-req.box.height // 4), -(-req.box.width // 4), 3)
    assert abs(float(pixels[5, 7].mean()) - float(rgb[32:36, 48:52].mean())) < 1  # box-filtered
    assert view_request(None, rgb, None, Box(0, 0, 300, 500), 1.5, (300, 500)).factor == 1


def test_start_from_the_current_model(qtbot, window, tmp_path, checkpoint):
    """The panel's choice: the loaded weights file is where training starts, with its classes."""
    with qtbot.waitSignal(window.model_ready, timeout=60_000):
        window.load_model(checkpoint)
    window.open_images([two_halves(tmp_path / "halves.png")])
    window.state.set_brush_size(4)
    stroke(qtbot, window, 1, [(40, 10), (56, 20), (44, 50)])
    stroke(qtbot, window, 0, [(8, 12), (24, 22), (12, 52)])
    panel = window.live_panel
    choose_start(panel, FROM_MODEL)
    window.live.config_changes = dict(FAST)
    window.commands.live_training.trigger()
    assert window.state.live.on and "from the current model" in window.state.live.status
    qtbot.waitUntil(lambda: bool(window.state.live.history), timeout=30_000)
    window.commands.live_training.trigger()
    qtbot.waitUntil(lambda: not window.live.trainer.running, timeout=10_000)
    assert panel.start.isEnabled()  # the choice is open again once it is off


def test_the_other_images_of_the_folder_with_strokes_train_too(qtbot, window, tmp_path):
    from core.classes import default_classes
    from core.document.strokes import write_strokes
    from core.io.mask_naming import strokes_path

    folder = tmp_path / "imgs"
    folder.mkdir()
    saved, shown = two_halves(folder / "a.png"), two_halves(folder / "b.png", seed=1)
    labels = np.full((64, 64), 255, np.uint8)
    labels[10:14, 5:25], labels[30:34, 40:60] = 0, 1
    write_strokes(strokes_path(saved), labels, default_classes(2))  # strokes saved in an earlier session
    window.open_folder(folder)
    window.show_entry(window.store.get(shown))
    assert window.current.strokes.is_blank
    items, used = window.live.training_items()
    assert used == [("a.png", int((labels != 255).sum()))] and np.array_equal(items[0][1], labels)
    window.live.config_changes = dict(FAST)
    window.commands.live_training.trigger()
    assert window.state.live.on and "in 1 image (" in window.state.live.status
    window.commands.live_training.trigger()
    window.commands.live_training.trigger()  # off and at once on again: it restarts
    assert window.state.live.on and window.live.trainer.running and window.commands.live_training.isChecked()
    window.commands.live_training.trigger()
    qtbot.waitUntil(lambda: not window.live.trainer.running, timeout=10_000)
    assert not window.commands.live_training.isChecked()
