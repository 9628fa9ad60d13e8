"""The Objects mode as a person uses it: paint touching objects, split and merge them, sort the
Objects table, click a row and an object, export the CSV, save and reopen; whole slides say
that objects are not available there yet."""

from __future__ import annotations

import csv

import numpy as np
import tifffile
from PySide6.QtCore import Qt
from skimage.measure import regionprops_table

from core.io.mask_naming import instances_path
from tests.channel_images import blobs, write_ome_tiff
from tests.gui.helpers import click, drag


def measured(qtbot, window):
    window.objects.refresh()
    qtbot.waitUntil(lambda: window.objects.current, timeout=15000)
    return window.state.objects.table


def key(qtbot, window, k, modifier=Qt.KeyboardModifier.NoModifier):
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, k, modifier)


def dab(qtbot, window, x, y):
    drag(qtbot, window, [(x, y), (x + 0.5, y)])


def test_paint_split_merge_sort_click_and_export(qtbot, window, dialogs, tmp_path):
    pixels = blobs(120, 160, channels=2, seed=4)
    image = write_ome_tiff(tmp_path / "nuclei.ome.tif", pixels, names=("DAPI", "GFP"))
    assert window.open_images([image]) == 1
    doc = window.document

    key(qtbot, window, Qt.Key.Key_O, Qt.KeyboardModifier.ShiftModifier)  # Objects mode
    assert window.state.objects.shown and window.objects_dock.isVisible()
    assert window.canvas.object_layer.isVisible() and window.commands.object_select.isChecked()

    window.select_class(1)
    window.brush_spin.setValue(20)
    key(qtbot, window, Qt.Key.Key_N)  # New Object
    dab(qtbot, window, 40, 40)  # object 1
    dab(qtbot, window, 56, 40)  # object 2, touching 1 (never taking its pixels)
    window.brush_spin.setValue(30)
    dab(qtbot, window, 120, 80)  # object 3, apart
    ids = doc.objects.labels
    assert doc.objects.ids().tolist() == [1, 2, 3] and len(doc.history) == 3
    assert (ids[:, :60] == 1).any() and (ids[:, :70] == 2).any()
    assert (doc.labels[ids > 0] == 1).all()  # painting an object paints its class
    table = measured(qtbot, window)
    assert len(table) == 3 and window.class_panel.objects_of(1) == 3
    assert window.objects_panel.view.model().rowCount() == 3

    key(qtbot, window, Qt.Key.Key_K)  # Split: a line across object 3
    drag(qtbot, window, [(120, 55), (121, 70), (120, 90), (119, 105)])
    assert doc.objects.count == 4 and doc.history.undo_label == "split object"
    split_ids = set(np.unique(ids[60:100, 100:140]).tolist()) - {0}
    assert len(split_ids) == 2  # the two sides of the line

    key(qtbot, window, Qt.Key.Key_M)  # Merge: click 1, then 2
    click(qtbot, window, 38, 40)
    click(qtbot, window, 60, 40)
    assert doc.objects.count == 3 and not (ids == 2).any()
    assert doc.history.undo_label == "merge objects" and len(doc.history) == 5
    table = measured(qtbot, window)
    assert len(table) == 3 and window.class_panel.objects_of(1) == 3

    # sort by area, largest first
    view = window.objects_panel.view
    area_column = table.names.index("area")
    view.sortByColumn(area_column, Qt.SortOrder.DescendingOrder)
    shown = [int(view.model().index(r, area_column).data(Qt.ItemDataRole.UserRole)) for r in range(3)]
    assert shown == sorted(shown, reverse=True) and shown[0] == int(np.max(table.columns["area"]))

    # a row click selects its object and centres the view on it
    window.canvas.set_scale(4.0)
    window.canvas.center_on_image(0, 0)  # the top-left corner: every object out of view
    last = view.model().index(2, 0)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(last).center())
    smallest = window.objects_panel.object_at_row(2)
    assert window.state.objects.selected == smallest
    cx, cy = table.center_of(smallest)
    box = window.canvas.visible_box()
    assert box.contains(int(cy), int(cx))  # in view (centred as far as the image's edge allows)
    h, w = doc.shape
    for centre, size, c in (((box.x0 + box.x1) / 2, w, cx), ((box.y0 + box.y1) / 2, h, cy)):
        assert abs(centre - c) < 3 or box.x1 == w or box.y1 == h

    # a click on an object in the canvas selects its row
    window.canvas.fit()
    key(qtbot, window, Qt.Key.Key_V)
    click(qtbot, window, 40, 40)
    assert window.state.objects.selected == 1
    assert view.selectionModel().currentIndex().row() == window.objects_panel.row_of(1)

    # export the CSV and check it against scikit-image on the same labels
    out = tmp_path / "out" / "table.csv"
    out.parent.mkdir()
    dialogs.answers["ask_csv_path"] = out
    with qtbot.waitSignal(window.objects.exported, timeout=15000):
        window.commands.export_objects.trigger()
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    labels = doc.objects.labels.copy()
    ref = regionprops_table(labels.astype(np.int64), pixels, properties=("label", "area", "centroid", "intensity_mean"))
    assert [int(r["label"]) for r in rows] == ref["label"].tolist()
    assert [int(float(r["area"])) for r in rows] == ref["area"].astype(int).tolist()
    assert np.allclose([float(r["centroid_x"]) for r in rows], ref["centroid-1"])
    assert np.allclose([float(r["centroid_y"]) for r in rows], ref["centroid-0"])
    assert np.allclose([float(r["mean_intensity_DAPI"]) for r in rows], ref["intensity_mean-0"], atol=1e-3)
    assert np.allclose([float(r["mean_intensity_GFP"]) for r in rows], ref["intensity_mean-1"], atol=1e-3)
    assert {r["class"] for r in rows} == {"1"}

    # each edit was one step: undo the merge and the split
    window.commands.undo.trigger()
    window.commands.undo.trigger()
    assert doc.objects.ids().tolist() == [1, 2, 3]
    assert len(measured(qtbot, window)) == 3
    window.commands.redo.trigger()
    window.commands.redo.trigger()

    # Save writes <stem>_instances.tif beside the image; reopening loads it
    key(qtbot, window, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    saved = instances_path(image)
    assert saved.name == "nuclei_instances.tif" and not doc.dirty
    on_disk = tifffile.imread(saved)
    assert on_disk.dtype == np.uint16 and np.array_equal(on_disk, labels)
    window.commands.close_image.trigger()
    assert window.open_images([image]) == 1
    assert np.array_equal(window.document.objects.labels, labels) and not window.document.dirty
    assert len(measured(qtbot, window)) == 3


def test_delete_by_click_and_by_key_and_erase(qtbot, window, image):
    assert window.open_images([image]) == 1
    doc = window.document
    window.brush_spin.setValue(16)
    key(qtbot, window, Qt.Key.Key_N)
    dab(qtbot, window, 20, 20)
    dab(qtbot, window, 50, 30)
    dab(qtbot, window, 25, 45)
    assert window.state.objects.shown and doc.objects.count == 3
    key(qtbot, window, Qt.Key.Key_D)
    click(qtbot, window, 20, 20)
    assert doc.objects.ids().tolist() == [2, 3] and not doc.labels[18:22, 18:22].any()
    key(qtbot, window, Qt.Key.Key_V)
    click(qtbot, window, 50, 30)
    assert window.commands.delete_selected_object.isEnabled()
    window.commands.delete_selected_object.trigger()
    assert doc.objects.ids().tolist() == [3] and window.state.objects.selected == 0
    key(qtbot, window, Qt.Key.Key_E, Qt.KeyboardModifier.ShiftModifier)  # erase from object 3
    window.brush_spin.setValue(6)
    drag(qtbot, window, [(15, 45), (35, 45)])
    assert doc.objects.count == 1 and doc.objects.labels[45, 25] == 0 and doc.labels[45, 25] == 0
    assert [doc.history.undo_label] == ["erase object"]
    for _ in range(3):
        window.commands.undo.trigger()
    assert doc.objects.ids().tolist() == [1, 2, 3]
    key(qtbot, window, Qt.Key.Key_B)  # a class tool leaves the Objects mode's tools; the mode stays off
    window.state.objects.shown = False
    assert window.state.tool == "brush" and not window.canvas.object_layer.isVisible()


def test_objects_say_they_are_not_available_on_a_whole_slide(qtbot, window, tmp_path, monkeypatch):
    import gui.state.loading as loading

    monkeypatch.setattr(loading, "LARGE_IMAGE_PIXELS", 100)  # this small TIFF opens as a slide
    image = write_ome_tiff(tmp_path / "slide.ome.tif", blobs(64, 64, channels=1), names=("DAPI",))
    assert window.open_images([image]) == 1
    assert window.document.is_chunked and window.document.objects is None
    window.commands.objects_mode.trigger()
    assert "not available on whole-slide images" in window.objects_panel.status.text()
    assert not window.commands.object_brush.isEnabled() and not window.commands.object_split.isEnabled()


def test_autosave_keeps_the_objects_and_a_crash_restores_them(qtbot, dialogs, tmp_path):
    from core.document.recovery import RecoveryStore
    from tests.gui.test_autosave import close, leave_copy, make_window
    from tests.gui.helpers import write_image

    appdata = tmp_path / "appdata"
    image = write_image(tmp_path / "cells.png")
    window = make_window(qtbot)
    window.resize(1000, 700)
    qtbot.waitExposed(window)
    assert window.open_images([image]) == 1
    window.brush_spin.setValue(12)
    window.commands.object_brush.trigger()
    dab(qtbot, window, 20, 20)
    dab(qtbot, window, 30, 20)
    with qtbot.waitSignal(window.autosave.saved, timeout=5000):
        window.autosave.flush()
    assert window.document.objects.count == 2
    [mine] = window.autosave.store.snapshots()
    assert np.array_equal(window.autosave.store.load_objects(mine), window.document.objects.labels)
    close(window, dialogs)

    labels = np.zeros((60, 80), np.uint8)
    labels[5:25, 10:60] = 1
    ids = np.zeros((60, 80), np.uint32)
    ids[5:25, 10:35], ids[5:25, 35:60] = 4, 9
    leave_copy(appdata, image, labels)
    crashed = RecoveryStore(appdata, session="deadbeef0000")
    crashed.save(image, labels, crashed.snapshots()[0].classes, 7, objects=ids)
    dialogs.answers["ask_recovery"] = "restore"
    window = make_window(qtbot)
    qtbot.waitUntil(lambda: bool(dialogs.of("ask_recovery")), timeout=5000)
    doc = window.document
    assert np.array_equal(doc.objects.labels, ids) and np.array_equal(doc.labels, labels) and doc.dirty
    window.commands.undo.trigger()  # the restore is one step over both layers
    assert doc.objects.count == 0 and not doc.labels.any()
    window.commands.redo.trigger()
    window.commands.save.trigger()
    assert np.array_equal(tifffile.imread(instances_path(image)), ids)
    close(window, dialogs)


def test_a_saved_objects_file_that_does_not_fit_is_one_note_naming_both_files(qtbot, window, tmp_path):
    from tests.gui.helpers import write_image

    image = write_image(tmp_path / "cells.png")  # 80 x 60
    tifffile.imwrite(instances_path(image), np.ones((60, 81), np.uint16))
    messages = []
    window.state.message.connect(lambda text, _ms: messages.append(text))
    assert window.open_images([image]) == 1
    assert any("cells_instances.tif is 81x60, but the image cells.png is 80x60" in m for m in messages)
    assert window.document.objects.count == 0 and not window.document.dirty


def test_65535_in_a_16_bit_objects_file_is_not_annotated(qtbot, window, tmp_path):
    from tests.gui.helpers import write_image

    image = write_image(tmp_path / "cells.png")
    ids = np.zeros((60, 80), np.uint16)
    ids[:10] = 65535  # a training annotation's "not annotated"
    ids[20:30, 20:30], ids[40:50, 40:50] = 3, 4
    tifffile.imwrite(instances_path(image), ids)
    messages = []
    window.state.message.connect(lambda text, _ms: messages.append(text))
    assert window.open_images([image]) == 1
    assert window.document.objects.ids().tolist() == [3, 4]
    assert any("Loaded 2 objects" in m and "800 pixels marked" in m for m in messages)


def test_touching_objects_are_outlined_in_two_colours_and_the_selected_one_white():
    from gui.canvas.outline import outline_rgba
    from gui.infra.object_colors import IdColors, object_rgb

    ids = np.zeros((20, 30), np.uint32)
    ids[4:16, 4:15], ids[4:16, 15:26] = 1, 2  # touching along column 15
    rgba = outline_rgba(ids, IdColors(255), 2)
    assert tuple(rgba[10, 14, :3]) == object_rgb(1) and tuple(rgba[10, 15, :3]) == object_rgb(2)
    assert object_rgb(1) != object_rgb(2) and rgba[10, 9, 3] == 0  # inside: not drawn
    assert rgba[1, 1, 3] == 0 and tuple(rgba[3, 10, :3]) == (0, 0, 0)  # far background none, halo dark
    selected = outline_rgba(ids, IdColors(255, selected=2), 2)
    assert tuple(selected[10, 15, :3]) == (255, 255, 255) and tuple(selected[10, 14, :3]) == object_rgb(1)


def test_exports_write_the_painted_objects_apart(qtbot, window, dialogs, tmp_path):
    """Two touching objects of one class are one connected region of the class mask; the
    per-object formats of Export Mask and Export All write them as the two objects they were
    painted as."""
    import json

    from tests.gui.helpers import write_image

    image = write_image(tmp_path / "cells.png")
    assert window.open_images([image]) == 1
    window.brush_spin.setValue(16)
    window.commands.object_brush.trigger()
    dab(qtbot, window, 30, 30)
    dab(qtbot, window, 44, 30)
    doc = window.document
    assert doc.objects.count == 2 and (doc.labels > 0).sum() == (doc.objects.labels > 0).sum()
    out = tmp_path / "out"
    out.mkdir()
    dialogs.answers["ask_export_path"] = (out / "coco.json", "coco")
    window.commands.export.trigger()
    assert dialogs.errors() == []
    annotations = json.loads((out / "coco.json").read_text())["annotations"]
    areas = sorted(a["area"] for a in annotations)
    assert len(annotations) == 2
    assert areas == sorted(int((doc.objects.labels == i).sum()) for i in (1, 2))
    dialogs.answers["ask_export_path"] = (out / "cells_instances.tif", "instances")
    window.commands.export.trigger()
    assert np.array_equal(tifffile.imread(out / "cells_instances.tif"), doc.objects.labels)
    every = tmp_path / "every"
    every.mkdir()
    dialogs.answers["ask_export_folder"] = every
    dialogs.answers["ask_export_formats"] = ["coco", "instances"]
    with qtbot.waitSignal(window.export_all_finished, timeout=20_000):
        window.commands.export_all.trigger()
    assert len(json.loads((every / "coco.json").read_text())["annotations"]) == 2
    assert np.array_equal(tifffile.imread(every / "cells_instances.tif"), doc.objects.labels)
