"""Objects follow new class labels (issue 26): Segment with a model that gives classes only and
finds nothing where two objects were painted leaves no object behind (class list, table, the
objects saved next), and one Undo brings the classes and the objects back; on a stack the same
holds for Segment Plane."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from tests.gui.helpers import MODEL_CLASSES, FakeSegmenter, drag
from tests.gui.stack_helpers import PlaneSegmenter, halves_stack


def paint_two_objects(qtbot, window) -> np.ndarray:
    qtbot.keyClick(window.canvas, Qt.Key.Key_O, Qt.KeyboardModifier.ShiftModifier)  # Objects mode
    window.select_class(1)
    window.brush_spin.setValue(10)
    for x, y in ((15, 15), (40, 30)):
        qtbot.keyClick(window.canvas, Qt.Key.Key_N)  # New Object
        drag(qtbot, window, [(x, y), (x + 0.5, y)])
    assert window.document.objects.count == 2
    return window.document.objects.labels.copy()


def shown_objects(qtbot, window) -> tuple[int, int]:
    """(objects the class list gives class 1, rows of the Objects table)."""
    window.class_panel.refresh_counts()
    window.objects.refresh()
    qtbot.waitUntil(lambda: window.objects.current, timeout=15000)
    return window.class_panel.objects_of(1), window.objects_panel.view.model().rowCount()


def segment_and_undo(qtbot, window, painted: np.ndarray) -> None:
    doc = window.document
    qtbot.keyClick(window.canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert not doc.dirty
    qtbot.keyClick(window.canvas, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)  # Segment / Segment Plane
    qtbot.waitUntil(lambda: window.state.job is None and doc.history.undo_label in ("segment", "segment plane"),
                    timeout=30_000)
    assert not doc.labels.any() and doc.objects.count == 0
    assert shown_objects(qtbot, window) == (0, 0)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # one step back
    assert np.array_equal(doc.objects.labels, painted) and (doc.labels[painted > 0] == 1).all()
    assert shown_objects(qtbot, window) == (2, 2)


def test_segment_that_finds_nothing_clears_the_objects_and_undo_brings_them_back(qtbot, window, image):
    window.models.set_segmenter(FakeSegmenter(classes=MODEL_CLASSES, value=0))  # classes only: all background
    assert window.open_images([image]) == 1
    segment_and_undo(qtbot, window, paint_two_objects(qtbot, window))


def test_segment_plane_on_a_stack_clears_that_planes_objects_in_one_step(qtbot, window, tmp_path):
    path, _data = halves_stack(tmp_path / "cells.ome.tif")
    window.models.set_segmenter(PlaneSegmenter(classes=MODEL_CLASSES, value=0))
    window.open_images([path])
    window.plane_ui.go((2,))
    segment_and_undo(qtbot, window, paint_two_objects(qtbot, window))


def test_objects_painted_on_two_planes_never_share_an_id_in_the_saved_stack(qtbot, window, tmp_path):
    """napari and Fiji read one id on two planes as one 3-D object: painted objects get ids free
    over the whole stack, in the table and in `<stem>_instances.ome.tif`."""
    import tifffile

    from core.io.mask_naming import stack_instances_path

    path, _data = halves_stack(tmp_path / "cells.ome.tif")
    window.open_images([path])
    window.plane_ui.go((3,))
    paint_two_objects(qtbot, window)
    window.plane_ui.go((5,))
    paint_two_objects(qtbot, window)
    assert window.document.objects.ids().tolist() == [3, 4]
    window.commands.save.trigger()
    saved = tifffile.imread(stack_instances_path(path))
    on_planes = [set(np.unique(plane).tolist()) - {0} for plane in saved]
    assert on_planes[3] == {1, 2} and on_planes[5] == {3, 4}
    assert sum(len(ids) for ids in on_planes) == len(set().union(*on_planes))  # no id on two planes
