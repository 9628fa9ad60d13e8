"""Strokes on a whole slide in the app (issue 25): a 100,000 x 100,000 slide (5 MB: its tiles
repeat and compress) opened, painted with strokes of two classes far apart at full resolution,
undone, saved beside the slide, reopened, recovered after a crash, seen when zoomed out, and
trained on live at a chosen level, reading only the tiles under the strokes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication

from core.classes import default_classes
from core.document.recovery import STROKES_DIR, RecoveryStore, SessionLock
from core.document.strokes import UNANNOTATED, StrokeDocument, open_chunked_strokes
from core.io.mask_naming import chunked_strokes_path, default_mask_path
from tests.gui.live_helpers import FAST, stroke
from tests.gui.test_autosave import appdata, close, dead_pid, make_window  # noqa: F401 - a fixture
from tests.large_images import write_flat_slide

SIDE = 100_000
A, B = (3_000, 2_000), (95_000, 94_000)  # (x, y) of the strokes of class 1 and of class 0, far apart


@pytest.fixture(scope="module")
def slide(tmp_path_factory):
    return write_flat_slide(tmp_path_factory.mktemp("slide") / "slide.ome.tif", SIDE)


@pytest.fixture
def image(slide, tmp_path):
    """The slide in this test's folder (a copy, 5 MB: recovery copies name the resolved path, and the
    strokes are saved beside it)."""
    return Path(shutil.copy(slide, tmp_path / slide.name))


def settle(qtbot, window, timeout=10_000):
    """Let the loader decode what the view asked for, and the view repaint."""
    canvas = window.canvas
    canvas.viewport().repaint()
    loader = canvas._loader
    qtbot.waitUntil(lambda: not loader._pending, timeout=timeout)
    QApplication.processEvents()
    canvas.viewport().repaint()


def look_at(qtbot, window, x, y, scale=1.0):
    window.canvas.set_scale(scale)
    window.canvas.center_on_image(x, y)
    settle(qtbot, window)


def paint_at(qtbot, window, class_id, x, y, length=60):
    """A horizontal stroke of ``class_id`` from (x, y), painted at 100% with the app's brush."""
    look_at(qtbot, window, x + length // 2, y)
    stroke(qtbot, window, class_id, [(x, y), (x + length // 2, y + 3), (x + length, y)])


def window_with_slide(qtbot, image):
    from tests.gui.helpers import new_window

    window = new_window(qtbot)
    assert window.open_images([image]) == 1 and window.current.source is not None
    return window


def test_strokes_painted_far_apart_on_a_100k_slide_undo_save_and_reopen(qtbot, window, dialogs, image):
    assert window.open_images([image]) == 1
    strokes = window.current.strokes
    assert strokes is not None and strokes.is_chunked and strokes.shape == (SIDE, SIDE) and strokes.is_blank
    window.state.brush_size = 14
    paint_at(qtbot, window, 1, *A)
    paint_at(qtbot, window, 0, *B)
    labels = strokes.labels
    (ax, ay), (bx, by) = A, B
    assert labels[ay, ax + 30] == 1 and labels[by, bx + 30] == 0 and labels[50_000, 50_000] == UNANNOTATED
    assert set(strokes.class_pixels()) == {0, 1} and not window.document.dirty  # the mask is untouched
    assert window.commands.undo.text() == "&Undo brush strokes"
    window.commands.undo.trigger()  # the second stroke goes, the first stays
    assert labels[by, bx + 30] == UNANNOTATED and labels[ay, ax + 30] == 1
    paint_at(qtbot, window, 0, bx, by + 200)
    painted = {cls: n for cls, n in strokes.class_pixels().items()}
    assert set(painted) == {0, 1}
    window.commands.save.trigger()
    path = chunked_strokes_path(image)
    assert dialogs.errors() == [] and path.is_dir() and not strokes.dirty
    assert not default_mask_path(image, chunked=True).exists()  # only the strokes changed: no blank mask
    assert window.statusBar().currentMessage() == f"Saved {path}"
    window.commands.close_image.trigger()
    assert window.open_images([image]) == 1
    again = window.current.strokes
    assert again is not strokes and again.is_chunked and again.class_pixels() == painted and not again.dirty
    assert again.labels[ay, ax + 30] == 1 and again.labels[by + 200, bx + 30] == 0
    assert again.labels[by, bx + 30] == UNANNOTATED  # the undone stroke stays undone
    assert f"from {path.name}" in window.statusBar().currentMessage()


def test_live_training_reads_only_the_tiles_under_the_strokes_at_the_chosen_level(qtbot, window, image):
    from PySide6.QtCore import QThread

    from core.segment.inference import Segmenter
    from core.training.slide_strokes import MARGIN, TILE
    from gui.jobs.live_preview import predict, read_view

    assert window.open_images([image]) == 1
    window.state.brush_size = 14
    paint_at(qtbot, window, 1, *A)
    paint_at(qtbot, window, 0, *B)
    live, state, panel = window.live, window.state.live, window.live_panel
    assert [lv for lv, _, _ in state.levels] == list(range(8)) and state.level == 1  # a 14-px brush: level 1
    assert panel.level.isVisibleTo(panel) and panel.level.currentData() == 1
    panel.level.activated.emit(panel.level.findData(2))  # the user picks level 2 (1/4 resolution)
    assert state.level == 2
    source = window.current.source
    reads, real = [], source.read

    def spy(y0, y1, x0, x1, level=0, plane=()):
        reads.append((QThread.currentThread().objectName(), level, (y0, y1, x0, x1)))
        return real(y0, y1, x0, x1, level, plane)

    source.read = spy
    said = []
    window.state.message.connect(lambda text, _ms: said.append(text))
    live.config_changes = dict(FAST)
    look_at(qtbot, window, A[0] + 30, A[1])
    window.commands.live_training.trigger()
    qtbot.waitUntil(lambda: state.prediction is not None, timeout=60_000)
    trained = [(level, region) for thread, level, region in reads if thread == "slide-items"]
    assert trained and {level for level, _ in trained} == {2}  # the chosen level, nothing else
    strokes = window.current.strokes.labels
    for _, (y0, y1, x0, x1) in trained:  # each read holds a stroke, and the tile or two around it
        assert (strokes.read(y0 * 4, y1 * 4, x0 * 4, x1 * 4) != UNANNOTATED).any()
        assert (y1 - y0) * (x1 - x0) <= 2 * (TILE + 2 * MARGIN) ** 2
    assert sum((y1 - y0) * (x1 - x0) for _, (y0, y1, x0, x1) in trained) < 10**6  # of 625 million at level 2
    assert any(text.startswith("Training from ") and " in 1 image (" in text for text in said)
    prediction = state.prediction
    view = window.canvas.visible_box()
    assert prediction.factor == 4 and not prediction.box.intersect(view).is_empty  # the view, at level 2
    assert window.canvas.prediction_layer.labels is prediction.labels
    seg = Segmenter(state.row(prediction.uid).snapshot.checkpoint, device="cpu")
    expected, _ = predict(seg, read_view(source, prediction.box, 4))
    np.testing.assert_array_equal(prediction.labels, expected)
    window.commands.live_training.trigger()
    qtbot.waitUntil(lambda: not live.trainer.running, timeout=30_000)
    live.roll_back(prediction.uid)  # Apply with the checkpoint the view showed: at level 2 as well
    with qtbot.waitSignal(live.applied, timeout=60_000):
        window.live_panel.apply.click()
    b = prediction.box
    written = np.asarray(window.mask[b.y0:b.y1, b.x0:b.x1])
    upsampled = np.repeat(np.repeat(prediction.labels, 4, axis=0), 4, axis=1)[:b.height, :b.width]
    assert (written == upsampled).mean() > 0.99 and window.document.history.undo_label == "live training"


def crashed_with_strokes(appdata, image, labels, classes, folder=STROKES_DIR, target=None):
    """What a session killed while painting strokes on the slide leaves: its strokes' recovery copy
    (the changed chunks; ``folder``: a mask's, saved to ``target``) and a lock whose process is gone."""
    import json

    store = RecoveryStore(appdata, session="deadbeef0000", folder=folder)
    snap = store.save(image, labels, classes, 3, target or chunked_strokes_path(image))
    lock = SessionLock(appdata, session="deadbeef0000")
    lock.acquire()
    lock.path.write_text(json.dumps({**json.loads(lock.path.read_text()), "pid": dead_pid(), "start_token": None}))
    return snap


def painted(doc, class_id, x, y, length=80, size=10):
    doc.set_active_class(class_id)
    doc.set_brush_size(size)
    doc.begin_stroke("brush")
    for dx in range(0, length + 1, 5):
        doc.stroke_to(x + dx, y)
    doc.end_stroke()


def test_strokes_on_a_slide_are_autosaved_and_recovered_after_a_crash(qtbot, dialogs, image, appdata):
    import json

    first = make_window(qtbot)
    assert first.open_images([image]) == 1
    first.state.brush_size = 10
    paint_at(qtbot, first, 1, *A)
    paint_at(qtbot, first, 0, *B)
    strokes = first.current.strokes
    expected = {(x, y): strokes.labels[y - 10:y + 10, x - 10:x + 70].copy() for x, y in (A, B)}
    counts = strokes.class_pixels()
    folder = appdata / STROKES_DIR
    first.autosave.flush()  # what its timer does a moment after the last stroke
    [manifest] = [json.loads(p.read_text()) for p in folder.glob("*.json")]
    assert manifest["kind"] == "chunks" and manifest["fill"] == UNANNOTATED and len(manifest["chunks"]) <= 4
    assert manifest["mask_path"] == str(chunked_strokes_path(image).resolve())
    assert sum(p.stat().st_size for p in folder.glob("*.zip")) < 100_000  # the strokes' chunks, not the slide's
    # what a kill after the autosave leaves: the copy, and the lock of a process that is gone
    left = {p.name: p.read_bytes() for p in folder.iterdir()}
    lock = first.autosave.lock.path
    raw = json.loads(lock.read_text())
    close(first, dialogs)
    for name, data in left.items():
        (folder / name).write_bytes(data)
    lock.write_text(json.dumps({**raw, "pid": dead_pid(), "start_token": None}))
    dialogs.answers["ask_recovery"] = "restore"
    window = make_window(qtbot)
    qtbot.waitUntil(lambda: bool(dialogs.of("ask_recovery")), timeout=10_000)
    [(_, crashed, items)] = dialogs.of("ask_recovery")
    assert crashed and items == [items[0]] and items[0].startswith(f"{image.name}, strokes edited ")
    entry = window.current
    assert entry.path.resolve() == image.resolve() and entry.source is not None
    restored = entry.strokes
    assert restored.is_chunked and restored.dirty and restored.class_pixels() == counts
    for (x, y), block in expected.items():
        np.testing.assert_array_equal(restored.labels[y - 10:y + 10, x - 10:x + 70], block)
    assert not window.document.dirty  # the mask had nothing to restore
    window.state.tool = "stroke"
    window.commands.undo.trigger()  # one step takes the restored strokes back
    assert restored.is_blank
    close(window, dialogs)


def test_a_strokes_copy_of_a_slide_only_adds_where_strokes_saved_since_have_none(qtbot, dialogs, image, appdata):
    classes = default_classes(2)
    path = chunked_strokes_path(image)
    doc = StrokeDocument.blank_chunked((SIDE, SIDE), classes)
    painted(doc, 1, *A)
    doc.labels.save_to(path, classes=classes)
    x, y = A
    painted(doc, 0, x, y + 30)  # painted after the save, then the app was killed
    crashed_with_strokes(appdata, image, doc.labels, classes)
    newer = StrokeDocument(open_chunked_strokes(path, (SIDE, SIDE)), classes)
    painted(newer, 1, x + 40, y + 30)  # saved later (another window): it overlaps the copy's stroke
    newer.labels.save_to(path, classes=classes)
    newer.labels.close()
    dialogs.answers["ask_recovery"] = "restore"
    window = make_window(qtbot)
    qtbot.waitUntil(lambda: bool(dialogs.of("ask_recovery")), timeout=10_000)
    [(_, _, items)] = dialogs.of("ask_recovery")
    assert "only adds strokes where those have none" in items[0]
    labels = window.current.strokes.labels
    assert labels[y, x + 40] == 1  # saved before the copy: kept
    assert labels[y + 30, x + 10] == 0  # the copy's stroke, where nothing was saved since
    assert labels[y + 30, x + 60] == 1  # saved after the copy: it wins where both annotate
    assert dialogs.of("confirm") == []  # nothing saved is lost: no question
    doc.labels.close()
    close(window, dialogs)


def test_a_thin_stroke_stays_visible_when_zoomed_far_out(qtbot, window, image):
    assert window.open_images([image]) == 1
    window.state.brush_size = 6
    x, y = A
    paint_at(qtbot, window, 1, x, y)
    look_at(qtbot, window, x, y, scale=1 / 64)  # one screen pixel: 64 x 64 slide pixels
    labels, layer = window.current.strokes.labels, window.canvas.stroke_layer
    box = (y - 128) // 64, (y + 128) // 64, (x - 128) // 64, (x + 192) // 64
    assert (labels.read_level(6, *box) == UNANNOTATED).all()  # the pyramid's sample misses a 6-px stroke
    assert (layer.sampled(box[0] * 64, box[1] * 64, box[2] * 64, box[3] * 64, 64) == 1).any()

    def shown():
        window.canvas.viewport().repaint()
        image = window.canvas.viewport().grab().toImage()
        pos = window.canvas.mapFromScene(x + 30, y)
        return np.array([[image.pixel(pos.x() + dx, pos.y() + dy) for dx in range(-4, 5)] for dy in range(-4, 5)])

    with_strokes = shown()
    layer.setVisible(False)
    assert (shown() != with_strokes).sum() >= 2  # on screen: the stroke's samples and their outline


@pytest.mark.parametrize("agree", [True, False])
def test_a_slide_mask_copy_over_a_mask_saved_since_asks_before_mixing_them(qtbot, dialogs, image, appdata, agree):
    from core.document.chunked_labels import ChunkedLabels
    from core.document.recovery import RECOVERY_DIR

    target = default_mask_path(image, chunked=True)
    mask = ChunkedLabels.create(SIDE, SIDE)
    mask[100:200, 100:200] = 1
    mask.save_to(target)
    mask[5_000:5_100, 5_000:5_100] = 2  # edited after the save, then the app was killed
    crashed_with_strokes(appdata, image, mask, default_classes(4), RECOVERY_DIR, target)
    mask.close()
    with ChunkedLabels.open(target) as later:  # saved again since (another window)
        later[300:400, 300:400] = 3
        later.save_to(target)
    dialogs.answers["ask_recovery"] = "restore"
    dialogs.answers["confirm"] = agree
    window = make_window(qtbot)
    qtbot.waitUntil(lambda: bool(dialogs.of("ask_recovery")), timeout=10_000)
    [(_, _, items)] = dialogs.of("ask_recovery")
    assert "you will be asked" in items[0]
    (_, title, text, _), *rest = dialogs.of("confirm")
    assert title == "Restore Over a Changed Mask?" and "would mix the two masks" in text
    if agree:  # the copy's chunks over the mask as it is now, as one undo step
        assert window.mask[5_050, 5_050] == 2 and window.mask[350, 350] == 3 and window.mask[150, 150] == 1
        assert window.document.dirty and rest == []
    else:  # reported, and kept for the next start (the second question is answered no as well)
        assert window.current is None and [r[1] for r in rest] == ["Some Edits Could Not Be Restored"]
        assert len(list((appdata / RECOVERY_DIR).glob("*.json"))) == 1
    close(window, dialogs)


def test_a_model_trained_live_on_a_16_bit_slides_tiles_segments_the_slide_as_it_predicted(
        qtbot, window, tmp_path, monkeypatch):
    """The tiles of a raw slide are scaled by the slide's statistics while training, as the preview
    and ``segment`` (streamed, tile by tile) scale them: the saved model segments the slide as the
    view showed, and right (by each tile's own statistics it would learn noise: both halves alike)."""
    import zarr

    import gui.state.loading
    from core.cli.main import main
    from tests.gui.helpers import drag
    from tests.raw_slide import two_level_halves, write_raw_pyramid

    monkeypatch.setattr(gui.state.loading, "LARGE_IMAGE_PIXELS", 100_000)  # a small slide, quick to train on
    pixels, truth = two_level_halves()
    path = write_raw_pyramid(tmp_path / "raw.ome.tif", pixels)
    assert window.open_images([path]) == 1 and window.current.source is not None
    live, state, panel = window.live, window.state.live, window.live_panel
    window.state.brush_size = 8
    window.commands.stroke.trigger()
    for class_id, x0 in ((0, 100), (1, 850)):  # the dim half, the bright half
        window.select_class(class_id)
        drag(qtbot, window, [(x0, 300), (x0 + 40, 310), (x0 + 80, 300)])
    panel.level.activated.emit(panel.level.findData(0))  # full resolution, as `segment` reads it
    live.choose_start("scratch")
    live.config_changes = dict(FAST)
    window.commands.live_training.trigger()
    qtbot.waitUntil(lambda: any(r.snapshot.steps >= 40 for r in state.history), timeout=120_000)
    window.commands.live_training.trigger()
    qtbot.waitUntil(lambda: not live.trainer.running, timeout=30_000)
    row = state.history[-1]
    live.roll_back(row.uid)
    qtbot.waitUntil(lambda: state.prediction is not None and state.prediction.uid == row.uid, timeout=60_000)
    shown = state.prediction
    assert shown.factor == 1 and shown.box.area == pixels.shape[0] * pixels.shape[1]  # the whole slide is in view
    model = live.save(tmp_path / "live.safetensors", row)
    out = tmp_path / "out"
    assert main(["segment", str(path), "-o", str(out), "--model", str(model), "--format", "ome-zarr",
                 "--no-tta", "--no-refine"]) == 0
    segmented = zarr.open_group(str(out / "raw.ome.zarr"), mode="r")["0"][:]
    assert (segmented == shown.labels).mean() > 0.995  # as the view showed it (tile seams aside)
    assert (segmented == truth).mean() > 0.95


def test_a_view_far_wider_than_the_training_level_is_predicted_in_its_middle_at_that_level():
    from core.document.editing import Box
    from gui.jobs.live_preview import WHOLE_PASS_PIXELS, view_request

    whole = Box(0, 0, SIDE, SIDE)
    request = view_request(Path("slide.ome.tif"), None, None, whole, 1 / 100, (SIDE, SIDE), factor=4)
    box = request.box
    assert request.factor == 4 and box.area / 16 <= WHOLE_PASS_PIXELS * 1.01  # what a 100% view costs
    assert abs((box.y0 + box.y1) / 2 - SIDE / 2) < 8 and abs((box.x0 + box.x1) / 2 - SIDE / 2) < 8
    assert view_request(Path("slide.ome.tif"), None, None, whole, 1 / 100, (SIDE, SIDE)).box == whole  # as before


def test_a_mask_where_the_strokes_file_should_be_is_named_and_never_overwritten_unasked(
        qtbot, window, dialogs, image):
    from core.document.chunked_labels import ChunkedLabels

    path = chunked_strokes_path(image)
    with ChunkedLabels.create(SIDE, SIDE, path=path) as mask:  # unpainted pixels 0: a mask, not strokes
        mask[10:20, 10:20] = 1
        mask.save_to(path)
    assert window.open_images([image]) == 1
    message = window.statusBar().currentMessage()
    assert message.startswith(f"Found {path.name} but could not load its strokes: ") and "not a strokes file" in message
    strokes = window.current.strokes
    assert strokes.is_chunked and strokes.is_blank
    window.state.brush_size = 10
    paint_at(qtbot, window, 1, *A)
    dialogs.answers["confirm"] = False
    window.commands.save.trigger()
    [(_, title, text, _)] = dialogs.of("confirm")
    assert title == "Replace Strokes?" and path.name in text and strokes.dirty
    with ChunkedLabels.open(path) as kept:
        assert kept.fill == 0 and kept[15, 15] == 1  # untouched
    dialogs.answers["confirm"] = True
    window.commands.save.trigger()
    assert not strokes.dirty and open_chunked_strokes(path, (SIDE, SIDE))[A[1], A[0] + 30] == 1


def test_strokes_too_many_for_a_level_are_said_in_the_panel_while_training_goes_on(qtbot, window, image):
    assert window.open_images([image]) == 1
    strokes = window.current.strokes
    strokes.set_brush_size(4)
    for class_id, y in ((1, 20_000), (0, 80_000)):  # across the slide: at full resolution, 800 tiles
        strokes.set_active_class(class_id)
        strokes.begin_stroke("brush")
        strokes.stroke_to(0, y)
        strokes.stroke_to(SIDE - 1, y)
        strokes.end_stroke()
    live, state, panel = window.live, window.state.live, window.live_panel
    panel.level.activated.emit(panel.level.findData(4))  # 1/16: 50 tiles
    live.config_changes = dict(FAST)
    window.commands.live_training.trigger()
    qtbot.waitUntil(lambda: live.trainer.running, timeout=60_000)
    assert state.warning == ""
    panel.level.activated.emit(panel.level.findData(0))
    qtbot.waitUntil(lambda: "train at a coarser level" in state.warning, timeout=60_000)
    assert state.warning.startswith("Training continues on the earlier strokes: slide.ome.tif: the strokes cover ")
    assert live.trainer.running and panel.warning.isVisibleTo(panel)
    panel.level.activated.emit(panel.level.findData(3))
    qtbot.waitUntil(lambda: state.warning == "", timeout=60_000)  # resolved: the strokes are read at level 3
    window.commands.live_training.trigger()
    qtbot.waitUntil(lambda: not live.trainer.running, timeout=30_000)


def test_a_slide_whose_saved_strokes_left_memory_still_trains(qtbot, window, image, tmp_path):
    from tests.gui.live_helpers import two_halves

    other = two_halves(tmp_path / "halves.png")
    window.store.keep_documents = 1  # the slide's documents go as soon as another image is shown
    assert window.open_images([image, other]) == 2
    window.show_entry(window.store.get(image))
    window.state.brush_size = 14
    paint_at(qtbot, window, 1, *A)
    paint_at(qtbot, window, 0, *B)
    window.commands.save.trigger()  # saved: now the store may drop them
    window.show_entry(window.store.get(other))
    assert window.store.get(image).strokes is None
    live = window.live
    live.config_changes = dict(FAST)
    window.commands.live_training.trigger()
    qtbot.waitUntil(lambda: live.trainer.running, timeout=60_000)
    _items, used = live.training_items()
    assert len(used) == 2 and all(name.startswith(f"{image.name} (level 1, x ") for name, _ in used)
    window.commands.live_training.trigger()
    qtbot.waitUntil(lambda: not live.trainer.running, timeout=30_000)
