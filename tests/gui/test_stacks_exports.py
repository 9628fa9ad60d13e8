"""Exports of a stack from the app (issue 27): Export Mask writes every plane in each format the
dialog offers (a label stack with the stack's Z, per-object formats naming each object's plane),
and Export All and Segment All take the stacks in a folder beside 2-D images, through the same
batch writer as `unetseg segment STACK`."""

from __future__ import annotations

import csv
import time
import json

import numpy as np
import tifffile

from core.io.label_stacks import StackReader, read_label_stack, write_label_stack
from core.io.mask_naming import MASK_FORMATS, stack_instances_path, stack_mask_path
from tests.gui.helpers import MODEL_CLASSES, write_image
from tests.gui.stack_helpers import H, W, Z, PlaneSegmenter, halves_stack


def plane_masks() -> np.ndarray:
    """A different mask on every plane: class 1 in a band that moves with z, class 2 on plane 3."""
    masks = np.zeros((Z, H, W), np.uint8)
    for z in range(Z):
        masks[z, 4 + 3 * z:14 + 3 * z, 6:30] = 1
    masks[3, 30:40, 40:60] = 2
    return masks


def open_with_masks(window, path) -> np.ndarray:
    window.open_images([path])
    masks = plane_masks()
    stack = window.current.stack
    stack.set_classes(MODEL_CLASSES)  # cell, nucleus, debris
    for z in range(Z):
        stack.documents((z,)).mask.apply_labels(masks[z], "test")
    return masks


def export_as(qtbot, window, dialogs, folder, fmt):
    """Export Mask with ``fmt`` chosen in the dialog, under the name it suggests, into ``folder``;
    the planes are written on a worker, with the window free."""
    offered = {}

    def answer(_parent, suggested, _fmt, _note=None):
        offered.update(suggested)
        return folder / suggested[fmt].name, fmt

    dialogs.answers["ask_export_path"] = answer
    with qtbot.waitSignal(window.saver.stack_export_finished, timeout=30_000):
        assert window.saver.export(), dialogs.errors()
        assert window.state.job is not None and window.state.job.kind == "export_all"
    assert window.state.job is None and not dialogs.errors(), dialogs.errors()
    return folder / offered[fmt].name, offered


def test_export_mask_of_a_stack_writes_every_plane_in_every_format_offered(qtbot, window, dialogs, tmp_path):
    path, _data = halves_stack(tmp_path / "cells.ome.tif")
    masks = open_with_masks(window, path)
    window.plane_ui.go((2,))
    out = tmp_path / "out"
    out.mkdir()

    written, offered = export_as(qtbot, window, dialogs, out, "ome-tiff")
    assert set(MASK_FORMATS) | {"ome-tiff", "ome-zarr"} == set(offered)
    for fmt in ("ome-tiff", "ome-zarr", "tiff", "npy"):  # a label stack: the stack's Z, every plane's mask
        written, _ = export_as(qtbot, window, dialogs, out, fmt)
        labels, axes = read_label_stack(written, "Z", (Z, H, W))
        assert axes == "Z" and np.array_equal(labels, masks), fmt

    written, _ = export_as(qtbot, window, dialogs, out, "geojson")  # every plane's objects, each with its plane
    features = json.loads(written.read_text())["features"]
    assert sorted({f["properties"]["z"] for f in features}) == list(range(Z))
    written, _ = export_as(qtbot, window, dialogs, out, "coco")
    coco = json.loads(written.read_text())
    assert written.name == "coco.json" and [im["z"] for im in coco["images"]] == list(range(Z))
    assert all(im["file_name"] == "cells.ome.tif" for im in coco["images"])
    assert {a["image_id"] for a in coco["annotations"]} == {im["id"] for im in coco["images"]}
    written, _ = export_as(qtbot, window, dialogs, out, "measurements")  # rows led by their plane, one id per object
    with open(written, newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted({int(r["z"]) for r in rows}) == list(range(Z)) and len({r["label"] for r in rows}) == len(rows)
    written, _ = export_as(qtbot, window, dialogs, out, "instances")
    ids = tifffile.imread(written)
    assert ids.shape == (Z, H, W) and all(((ids[z] > 0) == (masks[z] > 0)).all() for z in range(Z))
    written, _ = export_as(qtbot, window, dialogs, out, "imagej")
    assert written.is_file()
    for fmt, name in (("index", "cells_z3.png"), ("color", "cells_z3_color.png"), ("overlay", "cells_z3_overlay.png"),
                      ("labelme", "cells_z3.json"), ("yolo", "labels/cells_z3.txt"),
                      ("voc", "SegmentationClass/cells_z3.png")):  # one image per file: a file per plane
        export_as(qtbot, window, dialogs, out, fmt)
        assert (out / name).is_file(), fmt
    from PIL import Image

    from core.io.masks import read_mask

    assert np.array_equal(read_mask(out / "cells_z3.png"), masks[3])
    overlay = np.asarray(Image.open(out / "cells_z3_overlay.png").convert("RGB"))
    shown = window.state.display.view.compositor().rgb(np.moveaxis(_data[3], 0, -1))  # the channels as the view draws them
    assert np.array_equal(overlay[masks[3] == 0], shown[masks[3] == 0])
    assert not dialogs.errors()
    assert not list(out.glob(".*work*"))  # no work stores left behind


def test_export_all_and_segment_all_take_the_stacks_of_a_folder(qtbot, window, dialogs, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    path, _data = halves_stack(folder / "cells.ome.tif")
    other, _ = halves_stack(folder / "other.ome.tif", seed=1)  # never shown: known a stack by its header
    flat = write_image(folder / "flat.png", h=H, w=W)
    saved = plane_masks()
    write_label_stack(stack_mask_path(path), saved, "Z")

    # Segment All: the stack gets its mask stack beside it, every plane segmented; the image its PNG
    window.models.set_segmenter(PlaneSegmenter(classes=MODEL_CLASSES, value=2))
    window.open_folder(folder)
    window.show_entry(window.store.get(path))
    window.plane_ui.go((4,))
    dialogs.answers["ask_overwrite_skip_cancel"] = "overwrite"
    with qtbot.waitSignal(window.segment_all_finished, timeout=30_000) as done:
        window.commands.segment_all.trigger()
    assert done.args == [3, 3] and not dialogs.errors(), [e.name for e in window.store]
    assert dialogs.of("ask_overwrite_skip_cancel")[0][3] == (
        "Segment All saves each result beside its image: an image as <name>_mask.png; a stack as <name>_mask.ome.tif.")
    with StackReader(stack_mask_path(path), "Z") as reader:
        assert reader.shape == (Z, H, W)
        segmented = [reader.read_plane((z,)) for z in range(Z)]
    assert all((s == 2).any() and set(np.unique(s)) <= {0, 2} for s in segmented)
    assert (folder / "flat_mask.png").is_file()
    with StackReader(stack_mask_path(other), "Z") as reader:
        assert reader.shape == (Z, H, W) and (reader.read() == 2).any()
        other_masks = reader.read()
    stack = window.current.stack  # the open stack shows the result, saved, one undo step of each open plane
    assert np.array_equal(window.mask, segmented[4]) and not window.current.dirty
    window.commands.undo.trigger()
    assert np.array_equal(window.mask, saved[4])
    window.commands.redo.trigger()

    # Export All: the stack's unsaved edit on plane 2 and the saved planes, beside the 2-D image's mask
    window.plane_ui.go((2,))
    edited = segmented[2].copy()
    edited[:6, :6] = 3
    stack.documents((2,)).mask.apply_labels(edited, "edit")
    out = tmp_path / "out"
    out.mkdir()
    dialogs.answers["ask_export_folder"] = out
    dialogs.answers["ask_export_formats"] = ["tiff", "coco", "geojson"]
    with qtbot.waitSignal(window.export_all_finished, timeout=30_000) as blocker:
        window.commands.export_all.trigger()
    assert blocker.args[0] > 0 and not dialogs.errors()
    labels, axes = read_label_stack(out / "cells.tif", "Z", (Z, H, W))
    assert axes == "Z" and np.array_equal(labels[2], edited)
    assert all(np.array_equal(labels[z], segmented[z]) for z in range(Z) if z != 2)
    assert np.array_equal(read_label_stack(out / "other.tif", "Z", (Z, H, W))[0], other_masks)  # read from its file
    assert tifffile.imread(out / "flat.tif").shape == (H, W)
    coco = json.loads((out / "coco.json").read_text())
    assert sorted(im.get("z", -1) for im in coco["images"]) == [-1] + sorted(list(range(Z)) * 2)
    features = json.loads((out / "cells.geojson").read_text())["features"]
    assert {f["properties"]["z"] for f in features} == set(range(Z))
    assert not stack_instances_path(path).exists()
    assert flat.is_file()


def test_objects_painted_on_planes_are_saved_with_the_stack_reloaded_and_recovered(qtbot, window, dialogs, tmp_path):
    from PySide6.QtCore import Qt

    from tests.gui.conftest import new_window
    from tests.gui.helpers import drag
    from tests.gui.test_autosave import dead_pid

    path, _data = halves_stack(tmp_path / "cells.ome.tif")
    window.open_images([path])
    qtbot.keyClick(window.canvas, Qt.Key.Key_O, Qt.KeyboardModifier.ShiftModifier)  # Objects mode
    window.select_class(1)
    window.brush_spin.setValue(8)
    painted = {}
    for z, spots in ((1, [(12, 12), (40, 30)]), (4, [(20, 36)])):
        window.plane_ui.go((z,))
        for x, y in spots:
            qtbot.keyClick(window.canvas, Qt.Key.Key_N)  # New Object
            drag(qtbot, window, [(x, y), (x + 0.5, y)])
        painted[z] = window.document.objects.labels.copy()
    assert painted[1].max() >= 2 and painted[4].any() and not window.current.stack.peek((0,)).mask.objects.allocated

    # autosave copies each plane with its objects; a session that died restores them onto their planes
    assert window.autosave.flush() == 2
    store = window.autosave.store
    copies = {s.plane: store.load_objects(s) for s in store.own()}
    assert all(np.array_equal(copies[(z,)], painted[z]) for z in (1, 4))

    window.commands.save.trigger()  # the mask stack and, beside it, the objects stack with the same Z
    saved = stack_instances_path(path)
    on_disk = tifffile.imread(saved)
    assert saved.name == "cells_instances.ome.tif" and on_disk.dtype == np.uint16 and on_disk.shape == (Z, H, W)
    assert np.array_equal(on_disk[1], painted[1]) and np.array_equal(on_disk[4], painted[4]) and not on_disk[0].any()
    with StackReader(stack_mask_path(path), "Z") as reader:  # the class names travel in the mask stack
        assert [c.name for c in reader.classes][:2] == [c.name for c in window.current.stack.classes][:2]

    window.commands.close_image.trigger()
    window.open_images([path])
    window.plane_ui.go((4,))
    assert np.array_equal(window.document.objects.labels, painted[4]) and not window.current.dirty
    window.plane_ui.go((1,))
    assert np.array_equal(window.document.objects.labels, painted[1])
    out = tmp_path / "out"  # Export Mask's object formats take the painted objects, each on its plane
    out.mkdir()
    written, _ = export_as(qtbot, window, dialogs, out, "instances")
    exported = tifffile.imread(written)
    assert all(np.array_equal(exported[z], painted.get(z, np.zeros((H, W)))) for z in range(Z))

    # an edit of plane 2's objects is copied; after a crash a new window puts it back on plane 2
    window.plane_ui.go((2,))
    qtbot.keyClick(window.canvas, Qt.Key.Key_N)
    drag(qtbot, window, [(50, 20), (50.5, 20)])
    edited = window.document.objects.labels.copy()
    assert window.autosave.flush() == 1
    lock = window.autosave.lock  # the session dies: its lock names a process that is gone, its copies stay
    lock.path.write_text(json.dumps({**json.loads(lock.path.read_text()), "pid": dead_pid(), "start_token": None}))
    dialogs.answers["ask_recovery"] = "restore"
    second = new_window(qtbot)
    qtbot.waitUntil(lambda: bool(dialogs.of("ask_recovery")), timeout=5000)
    restored = second.current.stack.documents((2,)).mask.objects.labels
    assert np.array_equal(restored, edited)
    assert np.array_equal(second.current.stack.documents((4,)).mask.objects.labels, painted[4])
    dialogs.answers["ask_save_discard_cancel"] = "discard"
    second.close()


def test_class_names_travel_in_the_mask_stack(qtbot, window, dialogs, tmp_path):
    from core.classes import ClassInfo

    path, _data = halves_stack(tmp_path / "cells.ome.tif")
    named = [ClassInfo(0, "background", (0, 0, 0)), ClassInfo(1, "nucleus", (10, 200, 30)),
             ClassInfo(2, "membrane", (200, 10, 90))]
    write_label_stack(stack_mask_path(path), plane_masks(), "Z", named)
    window.open_images([path])
    assert window.current.stack.classes[:3] == named  # read back from the OME-TIFF

    window.current.stack.set_classes(named[:2] + [ClassInfo(2, "cytoplasm", (1, 2, 3))])  # renamed in the app
    window.plane_ui.go((3,))
    window.document.apply_labels(np.full((H, W), 2, np.uint8), "fill")
    window.commands.save.trigger()
    window.commands.close_image.trigger()
    window.open_images([path])
    assert [c.name for c in window.current.stack.classes[:3]] == ["background", "nucleus", "cytoplasm"]
    assert window.current.stack.classes[2].color == (1, 2, 3)


def test_open_recent_opens_a_stack_folder_as_a_stack_again(qtbot, window, dialogs, tmp_path):
    from PIL import Image
    from PySide6.QtWidgets import QMenu

    folder = tmp_path / "planes"
    folder.mkdir()
    for z in range(4):
        Image.fromarray(np.full((30, 40), 20 * z, np.uint8)).save(folder / f"z{z}.png")
    other = write_image(tmp_path / "other.png")
    assert window.plane_ui.open_stack_folder(folder)
    window.open_images([other])
    menu = QMenu()
    window.opener.fill_recent_menu(menu)
    labels = [a.text() for a in menu.actions() if a.objectName() == "action_recent"]
    assert labels[:2] == ["other.png", "planes (stack)"]
    [stack_action] = [a for a in menu.actions() if a.text() == "planes (stack)"]
    stack_action.trigger()
    assert window.current.path == folder and window.state.planes.sizes == (4,)  # one stack, not 4 images
    assert window.store.get(folder / "z1.png") is None


def test_after_segment_stack_autosave_copies_the_planes_a_few_at_a_time(qtbot, window, dialogs, monkeypatch,
                                                                         tmp_path):
    """Segment Stack leaves every plane with unsaved edits; the copies are written a few per turn of
    the event loop (the window handles its events between them), and every plane gets its copy."""
    import gui.controllers.autosave as autosave_module

    monkeypatch.setattr(autosave_module, "STEP_BYTES", 2 * H * W)  # two of the test's planes stand for large ones
    path, _data = halves_stack(tmp_path / "cells.ome.tif")
    window.models.set_segmenter(PlaneSegmenter(classes=MODEL_CLASSES, value=2))
    window.open_images([path])
    at_end = []
    window.state.events.job.connect(
        lambda job, old=None: at_end.append(len(window.autosave.store.own())) if job is None else None)
    window.commands.segment_stack.trigger()
    qtbot.waitUntil(lambda: window.state.job is None and not window.current.busy, timeout=30_000)
    assert at_end and at_end[0] == 2  # the first pass stopped after two copies
    qtbot.waitUntil(lambda: len(window.autosave.store.own()) == Z, timeout=10_000)  # the others followed
    assert sorted(s.plane for s in window.autosave.store.own()) == [(z,) for z in range(Z)]


def test_a_plane_not_read_yet_is_read_off_the_window_thread_and_drawn_when_it_arrives(qtbot, window, monkeypatch,
                                                                                         tmp_path):
    import threading

    import gui.controllers.planes as planes_module

    monkeypatch.setattr(planes_module, "OFF_THREAD_BYTES", 0)  # the test's planes stand for large ones
    path, data = halves_stack(tmp_path / "cells.ome.tif")
    window.open_images([path])
    qtbot.waitUntil(lambda: window.canvas.document is window.document, timeout=10_000)  # plane 1 drawn
    cache = window.current.plane_pixels
    qtbot.waitUntil(lambda: not cache.pending((1,)) and not cache.pending((2,)), timeout=10_000)  # read ahead
    assert (4,) not in cache
    cache.whole = None  # every read through the source, which the test holds back
    gate, source = threading.Event(), cache.source

    class Gated:
        def __getattr__(self, name):
            return getattr(source, name)

        def read_raw(self, *args, **kwargs):
            gate.wait(5)
            return source.read_raw(*args, **kwargs)

    cache.source = Gated()
    shown = []
    window.plane_ui.plane_shown.connect(shown.append)
    window.plane_ui.go((4,))  # returns while the plane is still being read
    assert (4,) not in cache and window.state.planes.plane == (4,) and shown == []
    assert not window.canvas.editing_enabled  # the plane drawn is still plane 1: not editable meanwhile
    assert "Reading Z 5/6" in window.statusBar().currentMessage()
    gate.set()
    qtbot.waitUntil(lambda: shown == [(4,)], timeout=10_000)
    assert np.array_equal(window.canvas.image_layer.source.pixels if hasattr(window.canvas.image_layer, "source")
                          else window.canvas.image_layer.rgb, np.moveaxis(data[4], 0, -1))
    assert window.canvas.editing_enabled and window.canvas.document is window.document


def test_segment_all_smooths_across_z_as_stack_options_say(qtbot, window, dialogs, checkpoint, tmp_path):
    from core.io.sources import open_source
    from core.segment.inference import Segmenter
    from core.segment.stack import StackOptions, segment_stack

    folder = tmp_path / "images"
    folder.mkdir()
    path, _data = halves_stack(folder / "cells.ome.tif")
    window.load_model(checkpoint)
    qtbot.waitUntil(lambda: window.models.segmenter is not None, timeout=30_000)
    window.open_folder(folder)
    window.commands.smooth_z.setChecked(True)
    with qtbot.waitSignal(window.segment_all_finished, timeout=60_000):
        window.commands.segment_all.trigger()
    with open_source(path) as source:  # what the command line's --smooth-z 1 gives, plane for plane
        seg = Segmenter.load(checkpoint, device="cpu")
        expected = segment_stack(seg, source, options=StackOptions(smooth_z=1)).labels
        plain = segment_stack(seg, source).labels
    assert not np.array_equal(expected, plain)  # smoothing changes this stack's result
    with StackReader(stack_mask_path(path), "Z") as reader:
        assert np.array_equal(reader.read(), expected)


def test_back_on_a_stack_whose_plane_left_the_cache_the_other_image_is_not_shown_meanwhile(qtbot, window,
                                                                                              monkeypatch, tmp_path):
    import gui.controllers.planes as planes_module
    from core.io.plane_cache import PlaneCache

    monkeypatch.setattr(planes_module, "OFF_THREAD_BYTES", 0)
    path, data = halves_stack(tmp_path / "cells.ome.tif")
    other = write_image(tmp_path / "other.png")
    window.open_images([path, other])
    window.show_entry(window.store.get(path))
    qtbot.waitUntil(lambda: window.canvas.document is window.document, timeout=10_000)
    window.plane_ui.go((4,))
    qtbot.waitUntil(lambda: window.canvas.document is window.document, timeout=10_000)
    stack_entry, cache = window.current, window.current.plane_pixels
    window.show_entry(window.store.get(other))
    cache.stop()  # the planes left the cache while another image was shown (its budget went to others)
    stack_entry.plane_pixels = PlaneCache(cache.source, cache.raw, lock=cache.lock)
    original = PlaneCache._read
    monkeypatch.setattr(PlaneCache, "_read", lambda self, plane: (time.sleep(0.3), original(self, plane))[1])
    shown = []
    window.plane_ui.plane_shown.connect(shown.append)
    window.show_entry(stack_entry)  # back on the stack: plane 5 is read on the read-ahead thread
    assert shown == [] and window.canvas.image_layer is None  # other.png is not left on screen meanwhile
    assert "Reading cells.ome.tif Z 5/6" in window.canvas.placeholder and not window.canvas.editing_enabled
    qtbot.waitUntil(lambda: shown == [(4,)], timeout=10_000)
    assert window.canvas.document is window.document and window.canvas.editing_enabled


def test_cancelling_segment_all_in_a_stack_keeps_its_saved_mask_stack(qtbot, window, dialogs, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    path, _data = halves_stack(folder / "cells.ome.tif")
    saved = plane_masks()
    write_label_stack(stack_mask_path(path), saved, "Z")
    window.models.set_segmenter(PlaneSegmenter(classes=MODEL_CLASSES, tile=8, delay=0.02, value=2))
    window.open_folder(folder)
    dialogs.answers["ask_overwrite_skip_cancel"] = "overwrite"
    window.commands.segment_all.trigger()
    qtbot.waitUntil(lambda: window.state.job is not None and window.state.job.done > 0, timeout=30_000)
    window.commands.cancel.trigger()
    qtbot.waitUntil(lambda: window.state.job is None, timeout=30_000)
    assert "Segment All stopped" in window.statusBar().currentMessage()
    assert np.array_equal(read_label_stack(stack_mask_path(path), "Z", (Z, H, W))[0], saved)  # untouched
    assert sorted(p.name for p in folder.iterdir()) == ["cells.ome.tif", "cells_mask.ome.tif"]  # no work store
