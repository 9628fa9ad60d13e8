"""Objects in the app's model flows: Live Training learns to separate painted objects (issue 26's
"Done when" flow, start to end), and a model that separates objects fills the object layer when
it segments an image, a view, every listed image, or a whole slide."""

from __future__ import annotations

import csv
import gc

import numpy as np
import pytest
import tifffile
from PySide6.QtCore import Qt
from skimage.measure import regionprops_table

from core.io.mask_naming import instances_path
from core.model.checkpoints import load_checkpoint
from tests.gui.helpers import click, drag
from tests.gui.live_helpers import FAST
from tests.gui.test_objects import dab, key, measured
from tests.objects_images import DISC_RADIUS, background_strokes, disc_nuclei, fluorescence

LIVE = dict(FAST, init=None)  # from scratch: the discs are learnt in about a hundred steps
STEPS = 150


def nuclei_file(tmp_path, name="nuclei.tif"):
    labels, centres, pairs = disc_nuclei()
    path = tmp_path / name
    tifffile.imwrite(path, fluorescence(labels, 0))
    return path, labels, centres, pairs


def ids_at(ids, centres):
    return [int(ids[y, x]) for y, x in centres]


def paint_objects(qtbot, window, centres):
    """Objects mode's New Object brush, one dab per nucleus, touching ones painted one after the other."""
    window.select_class(1)
    window.brush_spin.setValue(2 * DISC_RADIUS + 1)
    key(qtbot, window, Qt.Key.Key_N)
    for y, x in centres:
        dab(qtbot, window, x + 0.5, y + 0.5)


def paint_background(qtbot, window, labels):
    """Background strokes (class 0) along the gaps between the nuclei."""
    strokes = background_strokes(labels)
    window.brush_spin.setValue(3)
    window.select_class(0)
    window.commands.stroke.trigger()
    h, w = labels.shape
    for y in (h * 34 // 96 + 1, h * 62 // 96 + 1):
        drag(qtbot, window, [(6, y + 0.5), (w / 2, y + 0.5), (w - 6, y + 0.5)])
    for x in (w * 34 // 128 + 1, w * 96 // 128 + 1):
        drag(qtbot, window, [(x + 0.5, 6), (x + 0.5, h / 2), (x + 0.5, h - 6)])
    return strokes


@pytest.fixture(scope="module")
def instance_model(tmp_path_factory):
    """A model that separates the discs: the live trainer on the app's own targets
    (core.training.live_objects), saved as Save Model writes it."""
    from core.classes import default_classes
    from core.training.live import LiveConfig, LiveTrainer
    from core.training.live_objects import PaintedImage, object_data, with_spec
    from gui.jobs.live_trainer import save_snapshot

    labels, _, _ = disc_nuclei()
    data = object_data([PaintedImage("nuclei.tif", fluorescence(labels, 0)[..., None], labels,
                                     np.where(labels > 0, 1, 0).astype(np.uint8), background_strokes(labels))],
                       default_classes(2))
    trainer = LiveTrainer(LiveConfig(**LIVE), data.classes)
    trainer.set_data(data.items, ["nuclei.tif"])
    snaps = []
    trainer.run(snaps.append, should_stop=lambda: trainer.steps >= STEPS)
    path = tmp_path_factory.mktemp("objects-model") / "nuclei.safetensors"
    save_snapshot(with_spec(snaps[-1], data.spec, data.objects), path, data.used)
    return path


def load_model(qtbot, window, path):
    with qtbot.waitSignal(window.model_ready, timeout=60_000):
        window.load_model(path)


def segment(qtbot, window, action):
    with qtbot.waitSignal(window.segmentation_finished, timeout=60_000):
        action.trigger()


# --------------------------------------------------------------------------- Live Training


def test_live_training_learns_painted_objects_then_apply_edit_sort_and_export(qtbot, window, dialogs, tmp_path):
    image, truth, centres, pairs = nuclei_file(tmp_path)
    assert window.open_images([image]) == 1
    doc = window.document
    paint_objects(qtbot, window, centres)
    painted = doc.objects.labels.copy()
    assert doc.objects.count == 12 and ids_at(painted, centres) == list(range(1, 13))
    for a, b in pairs:  # painted one after the other, the touching ones touch and stay two objects
        grown = np.zeros(painted.shape, bool)
        grown[1:] |= (painted == a)[:-1]
        grown[:, 1:] |= (painted == a)[:, :-1]
        assert (grown & (painted == b)).any()
    paint_background(qtbot, window, truth)
    assert window.current.strokes.annotated_pixels > 200

    live, panel, state = window.live, window.live_panel, window.state.live
    live.config_changes = dict(LIVE)
    window.commands.live_training.trigger()
    assert state.on and live.trainer.running
    # the panel says what it learns
    assert panel.learns.isVisible() and "objects: 12 painted in 1 image (class 1: 12)" in panel.learns.text()
    # the preview shows separated objects, outlined in their own colours
    shown = []
    live.preview_shown.connect(shown.append)
    qtbot.waitUntil(lambda: bool(shown) and shown[-1].instances is not None and shown[-1].instances.max() >= 8,
                    timeout=60_000)
    layer = window.canvas.prediction_layer.objects
    assert layer.ids is shown[-1].instances and int(shown[-1].labels.max()) <= 1  # no boundary class shown
    assert "instances" in state.history[-1].snapshot.checkpoint.metadata
    qtbot.waitUntil(lambda: state.history[-1].snapshot.steps >= STEPS, timeout=90_000)

    # stop, roll back to the newest checkpoint, Apply: both layers, one undo step
    window.commands.live_training.trigger()
    qtbot.waitUntil(lambda: not live.trainer.running, timeout=10_000)
    newest = state.history[-1]
    if state.marked != newest.uid:
        panel.history.setCurrentItem(panel.item_of(newest.uid))
        panel.roll_back.click()
    assert state.marked == newest.uid
    before_labels, steps = doc.labels.copy(), len(doc.history)
    with qtbot.waitSignal(live.applied, timeout=30_000):
        panel.apply.click()
    applied = doc.objects.labels.copy()
    at = ids_at(applied, centres)
    assert 0 not in at and len(set(at)) == 12  # every nucleus an object of its own ...
    for a, b in pairs:  # ... the touching pairs too
        assert at[a - 1] != at[b - 1]
    assert doc.objects.count <= 14 and not state.on
    assert set(np.unique(doc.labels)) <= {0, 1} and len(doc.history) == steps + 1
    assert f"{doc.objects.count:,} objects (Undo takes both back). Live Training is off" in state.status
    window.commands.brush.trigger()
    window.commands.undo.trigger()
    assert np.array_equal(doc.objects.labels, painted) and np.array_equal(doc.labels, before_labels)
    window.commands.redo.trigger()
    assert np.array_equal(doc.objects.labels, applied)

    # split one object along a line, then merge the two pieces again
    count = doc.objects.count
    y, x = centres[5]
    key(qtbot, window, Qt.Key.Key_K)
    drag(qtbot, window, [(x + 0.5, y - 12), (x + 0.5, y), (x + 0.5, y + 12)])
    assert doc.objects.count == count + 1 and doc.history.undo_label == "split object"
    left, right = int(doc.objects.labels[y, x - 3]), int(doc.objects.labels[y, x + 3])
    assert left != right and 0 not in (left, right)
    key(qtbot, window, Qt.Key.Key_M)
    click(qtbot, window, x - 2.5, y + 0.5)
    click(qtbot, window, x + 3.5, y + 0.5)
    assert doc.objects.count == count and doc.history.undo_label == "merge objects"

    # the table: sort by area, click a row (its object is selected and centred)
    table = measured(qtbot, window)
    assert len(table) == count
    view = window.objects_panel.view
    area = table.names.index("area")
    view.sortByColumn(area, Qt.SortOrder.AscendingOrder)
    values = [int(view.model().index(r, area).data(Qt.ItemDataRole.UserRole)) for r in range(count)]
    assert values == sorted(values)
    window.canvas.set_scale(6.0)
    window.canvas.center_on_image(0, 0)
    row = count - 1
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(view.model().index(row, 0)).center())
    chosen = window.objects_panel.object_at_row(row)
    assert window.state.objects.selected == chosen
    cx, cy = table.center_of(chosen)
    assert window.canvas.visible_box().contains(int(cy), int(cx))

    # the CSV agrees with scikit-image on the same labels, one row per nucleus, the touching ones apart
    out = tmp_path / "objects.csv"
    dialogs.answers["ask_csv_path"] = out
    with qtbot.waitSignal(window.objects.exported, timeout=15_000):
        window.commands.export_objects.trigger()
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    ids = doc.objects.labels.copy()
    pixels = tifffile.imread(image)
    ref = regionprops_table(ids.astype(np.int64), pixels, properties=("label", "area", "centroid", "intensity_mean"))
    assert [int(r["label"]) for r in rows] == ref["label"].tolist()
    assert [int(float(r["area"])) for r in rows] == ref["area"].astype(int).tolist()
    assert np.allclose([float(r["centroid_y"]) for r in rows], ref["centroid-0"])
    assert np.allclose([float(r["centroid_x"]) for r in rows], ref["centroid-1"])
    assert np.allclose([float(r["mean_intensity"]) for r in rows], ref["intensity_mean"], atol=1e-3)
    by_label = {int(r["label"]): r for r in rows}
    for a, b in pairs:
        ra, rb = by_label[int(ids[centres[a - 1]])], by_label[int(ids[centres[b - 1]])]
        assert ra is not rb
        for r, (y, x) in ((ra, centres[a - 1]), (rb, centres[b - 1])):
            assert abs(float(r["centroid_y"]) - (y + 0.0)) < 2 and abs(float(r["centroid_x"]) - x) < 2

    # Save Model: `unetseg segment --format instances measurements` makes the same objects
    from core.cli.main import main

    target = tmp_path / "live-objects.safetensors"
    dialogs.answers["ask_model_save_path"] = target
    panel.save.click()
    saved = load_checkpoint(target)
    assert saved.metadata["instances"]["boundary_class"] == 2
    assert saved.metadata["training"]["painted_objects"] == 12
    assert saved.metadata["live_training"]["images"][0]["image"] == "nuclei.tif"
    assert main(["segment", str(image), "-o", str(tmp_path / "cli"), "--model", str(target),
                 "--format", "instances", "measurements"]) == 0
    cli_ids = tifffile.imread(tmp_path / "cli" / "nuclei_instances.tif")
    assert np.array_equal(cli_ids, applied)  # the same checkpoint, the same objects as Apply
    with open(tmp_path / "cli" / "nuclei_measurements.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == int(applied.max())


# --------------------------------------------------------------------------- Segment


def test_segment_with_an_instance_model_fills_the_objects(qtbot, window, dialogs, tmp_path, instance_model):
    from core.segment.inference import Segmenter

    image, truth, centres, pairs = nuclei_file(tmp_path)
    assert window.open_images([image]) == 1
    doc = window.document
    load_model(qtbot, window, instance_model)
    seg = Segmenter(load_checkpoint(instance_model), device="cpu")
    expected = seg.segment(seg.image_of(window.current.image), instances=True)
    segment(qtbot, window, window.commands.segment)
    assert np.array_equal(doc.labels, expected.labels) and np.array_equal(doc.objects.labels, expected.instances)
    at = ids_at(doc.objects.labels, centres)
    assert 0 not in at and len(set(at)) == 12 and len(doc.history) == 1
    assert "12 objects" in window.statusBar().currentMessage() or f"{doc.objects.count} objects" in \
        window.statusBar().currentMessage()
    assert len(measured(qtbot, window)) == doc.objects.count  # the Objects table shows them
    # one undo step takes both layers back
    window.commands.undo.trigger()
    assert not doc.labels.any() and doc.objects.is_empty
    window.commands.redo.trigger()
    assert np.array_equal(doc.objects.labels, expected.instances)
    # Export writes them: a per-object format holds the model's objects, touching pairs apart
    out = tmp_path / "export" / "nuclei.geojson"
    out.parent.mkdir()
    dialogs.answers["ask_export_path"] = (out, "geojson")
    window.commands.export.trigger()
    import json

    features = json.loads(out.read_text())["features"]
    assert len(features) == doc.objects.count

    # Segment View (streamed in blocks): the view's objects, the same as the whole image's there
    doc.apply_labels(np.zeros(doc.shape, np.uint8), "clear", objects=np.zeros(doc.shape, np.uint32))
    steps = len(doc.history)
    window.canvas.fit()
    segment(qtbot, window, window.commands.segment_view)
    assert np.array_equal(doc.labels, expected.labels)  # no boundary pixel left in the mask
    assert np.array_equal(doc.objects.labels, expected.instances)
    assert len(doc.history) == steps + 1
    window.commands.undo.trigger()
    assert doc.objects.is_empty and not doc.labels.any()

    # Segment All: saved beside each image, the objects too, and the open document takes them
    second, *_ = nuclei_file(tmp_path, "second.tif")
    assert window.open_images([second]) == 1
    window.show_entry(window.store.get(image))
    dialogs.answers["ask_overwrite_skip_cancel"] = "overwrite"
    with qtbot.waitSignal(window.seg.segment_all_finished, timeout=60_000):
        window.commands.segment_all.trigger()
    for path in (image, second):
        on_disk = tifffile.imread(instances_path(path))
        assert np.array_equal(on_disk, expected.instances)
    assert np.array_equal(window.document.objects.labels, expected.instances) and not window.document.dirty


def test_a_slide_segmented_with_an_instance_model_keeps_no_boundary(qtbot, window, dialogs, tmp_path, monkeypatch,
                                                                   instance_model):
    import json

    import gui.jobs.segmentation as segmentation
    import gui.state.loading as loading
    from core.segment.inference import Segmenter
    from dataclasses import replace

    monkeypatch.setattr(loading, "LARGE_IMAGE_PIXELS", 100)  # this small TIFF opens as a slide
    monkeypatch.setattr(segmentation, "WHOLE_BLOCK", 48)  # several blocks: objects cross their borders
    labels, centres, _ = disc_nuclei()
    pixels = fluorescence(labels, 0)
    image = tmp_path / "slide.ome.tif"
    tifffile.imwrite(image, pixels, tile=(32, 32), metadata={"axes": "YX"})
    assert window.open_images([image]) == 1
    doc = window.document
    assert doc.is_chunked and doc.objects is None
    load_model(qtbot, window, instance_model)
    ckpt = load_checkpoint(instance_model)
    seg = Segmenter(ckpt, device="cpu")
    source = window.current.source
    stats = seg.source_statistics(source)  # what the streamed run scales the slide by
    tile = window.seg.controller.tile_size = seg.halo * 2 + 48  # small tiles, so small blocks
    whole = seg.segment(source.read_raw(0, 96, 0, 128), instances=True, stats=stats, tile_size=tile)
    raw = Segmenter(replace(ckpt, metadata={k: v for k, v in ckpt.metadata.items() if k != "instances"}),
                    device="cpu").segment(source.read_raw(0, 96, 0, 128), stats=stats, tile_size=tile)
    assert (raw == seg.instances.boundary_class).any()  # the network itself predicts the boundary class

    segment(qtbot, window, window.commands.segment)
    mask = np.asarray(doc.labels[0:96, 0:128])
    assert not (mask == seg.instances.boundary_class).any() and np.array_equal(mask, whole.labels)
    kept = window.current.slide_objects
    assert kept is not None and np.array_equal(np.asarray(kept.objects.array[:, :]), whole.instances)
    assert len(kept.objects.classes.blocks()) >= 3  # made block by block (objects cross their borders), no seam
    message = window.statusBar().currentMessage()
    assert f"{int(whole.instances.max())} objects" in message and "not available on whole-slide images" in message
    window.commands.objects_mode.trigger()
    assert "Export writes its objects" in window.objects_panel.status.text()

    # Export: GeoJSON's objects are the model's (the touching pairs are two features each)
    out = tmp_path / "out" / "slide.geojson"
    out.parent.mkdir()
    dialogs.answers["ask_export_path"] = (out, "geojson")
    window.commands.export.trigger()
    assert len(json.loads(out.read_text())["features"]) == int(whole.instances.max())

    # undo: the mask as it was, and its objects no longer describe it
    window.commands.brush.trigger()
    window.commands.undo.trigger()
    assert not np.asarray(doc.labels[0:96, 0:128]).any() and not kept.current(doc)
    folder = kept.objects.folder
    window.commands.close_image.trigger()
    del kept
    gc.collect()
    assert not folder.exists()  # its scratch folder goes with the image


def test_painting_an_object_while_training_on_strokes_starts_a_run_that_learns_objects(qtbot, window, tmp_path):
    from tests.gui.live_helpers import stroke

    image, truth, centres, _ = nuclei_file(tmp_path)
    assert window.open_images([image]) == 1
    paint_background(qtbot, window, truth)
    window.brush_spin.setValue(5)
    for y, x in centres[:4]:
        stroke(qtbot, window, 1, [(x - 2.5, y + 0.5), (x + 3.5, y + 0.5)])
    live, panel, state = window.live, window.live_panel, window.state.live
    live.config_changes = dict(LIVE)
    window.commands.live_training.trigger()
    qtbot.waitUntil(lambda: bool(state.history), timeout=30_000)
    assert not panel.learns.isVisible() and "instances" not in state.history[-1].snapshot.checkpoint.metadata

    def runs(objects: bool) -> set[int]:
        return {r.run for r in state.history if ("instances" in r.snapshot.checkpoint.metadata) == objects}

    paint_objects(qtbot, window, centres[:1])  # one object, while it trains: a new run learns objects
    qtbot.waitUntil(lambda: bool(runs(True)), timeout=30_000)
    assert runs(False) == {1} and runs(True) == {2} and state.on
    assert "objects: 1 painted" in panel.learns.text() and panel.learns.isVisible()
    window.commands.undo.trigger()  # the object is gone: the next run learns the strokes' classes again
    assert window.document.objects.is_empty
    qtbot.waitUntil(lambda: 3 in runs(False), timeout=30_000)
    assert not panel.learns.isVisible() and "strokes' classes" in window.statusBar().currentMessage() + state.status
    window.commands.live_training.trigger()
    qtbot.waitUntil(lambda: not live.trainer.running, timeout=10_000)


def test_live_apply_on_a_stack_plane_numbers_the_models_objects_above_the_stacks_ids(qtbot, window, tmp_path,
                                                                                    instance_model):
    """Apply on plane 1 of a stack whose plane 0 holds a painted object: the model's objects fill
    plane 1's layer (one undo step with its classes), numbered above plane 0's id, never sharing it."""
    from core.training.live import LiveSnapshot
    from tests.gui.live_helpers import publish
    from tests.stack_images import write_ome_tiff

    labels, centres, _pairs = disc_nuclei()
    path = write_ome_tiff(tmp_path / "nuclei.ome.tif", np.stack([fluorescence(labels, z) for z in range(3)]), "ZYX",
                          names=("DAPI",))
    assert window.open_images([path]) == 1
    key(qtbot, window, Qt.Key.Key_O, Qt.KeyboardModifier.ShiftModifier)
    paint_objects(qtbot, window, centres[:1])  # plane 0: one painted object, id 1
    stack = window.current.stack
    assert ids_at(stack.documents((0,)).mask.objects.labels, centres[:1]) == [1]
    window.plane_ui.go((1,))
    doc = window.document
    publish(window, LiveSnapshot(0, 3.0, 150, 500, 1, 0.5, None, load_checkpoint(instance_model), run=1))
    with qtbot.waitSignal(window.live.applied, timeout=30_000):
        window.live_panel.apply.click()
    ids = doc.objects.labels.copy()
    at = ids_at(ids, centres)
    assert 0 not in at and len(set(at)) == 12 and min(at) > 1  # plane 0's object keeps id 1 to itself
    assert 1 not in set(np.unique(ids).tolist()) and len(doc.history) == 1
    window.commands.undo.trigger()
    assert doc.objects.is_empty and not doc.labels.any()
