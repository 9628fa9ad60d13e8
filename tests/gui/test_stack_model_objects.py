"""A model that separates objects, on a stack (issues 26, 27): Segment Plane and Segment Stack fill
each plane's object layer with the model's objects in the same undo step as its classes, as
Segment does on an image; an id names one object in the whole stack (a later run starts above the
ids other planes hold; linked 3-D objects keep one id over their planes); Save writes them beside
the stack, and Segment All writes them too."""

from __future__ import annotations

import numpy as np
import tifffile
from PySide6.QtCore import Qt

from core.io.label_stacks import StackReader
from core.io.mask_naming import stack_instances_path, stack_mask_path
from tests.gui.helpers import MODEL_CLASSES
from tests.gui.stack_helpers import H, W, Z, SplittingPlaneSegmenter, halves_stack, halves_truth


def ids_of(ids: np.ndarray) -> set[int]:
    return set(np.unique(ids).tolist()) - {0}


def table_rows(qtbot, window) -> int:
    window.objects.refresh()
    qtbot.waitUntil(lambda: window.objects.current, timeout=15_000)
    return window.objects_panel.view.model().rowCount()


def segment_plane(qtbot, window, z: int) -> None:
    window.plane_ui.go((z,))
    window.commands.segment.trigger()
    qtbot.waitUntil(lambda: window.state.job is None and not window.current.busy, timeout=30_000)


def test_segment_plane_and_stack_put_the_models_objects_on_each_plane_with_ids_unique_over_the_stack(
        qtbot, window, dialogs, tmp_path):
    path, _data = halves_stack(tmp_path / "cells.ome.tif")
    window.models.set_segmenter(SplittingPlaneSegmenter(classes=MODEL_CLASSES, value=2))
    window.open_images([path])
    stack = window.current.stack
    qtbot.keyClick(window.canvas, Qt.Key.Key_O, Qt.KeyboardModifier.ShiftModifier)  # Objects mode

    # Segment Plane on plane 2, then on plane 4: two touching objects each, and plane 4's ids are new
    segment_plane(qtbot, window, 2)
    assert "; 2 objects." in window.statusBar().currentMessage()  # what the plane's run found
    layer2 = stack.documents((2,)).mask.objects.labels.copy()
    assert ids_of(layer2) == {1, 2} and np.array_equal(layer2 > 0, halves_truth((H, W)) > 0)
    assert table_rows(qtbot, window) == 2  # the Objects table lists the model's two objects
    segment_plane(qtbot, window, 4)
    assert ids_of(window.document.objects.labels) == {3, 4}  # not plane 2's 1 and 2
    assert table_rows(qtbot, window) == 2

    # one Ctrl+Z takes back the plane's classes and objects together; plane 2 keeps both
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not window.mask.any() and not window.document.objects.labels.any()
    assert np.array_equal(stack.documents((2,)).mask.objects.labels, layer2)
    window.commands.redo.trigger()

    # Segment Stack: every plane (in memory or not) takes its objects; no id on two planes
    window.plane_ui.go((1,))
    window.commands.segment_stack.trigger()
    qtbot.waitUntil(lambda: window.state.job is None and not window.current.busy, timeout=30_000)
    per_plane = [ids_of(stack.documents((z,)).mask.objects.labels) for z in range(Z)]
    assert all(len(ids) == 2 for ids in per_plane)
    assert sum(map(len, per_plane)) == len(set().union(*per_plane))
    assert min(min(ids) for ids in per_plane) > 4  # above the ids the planes held when it started
    assert table_rows(qtbot, window) == 2
    window.plane_ui.go((0,))  # a plane never opened before the run: one undo step takes both back too
    assert window.document.history.undo_label == "segment stack"
    window.commands.undo.trigger()
    assert not window.mask.any() and not window.document.objects.labels.any()
    window.commands.redo.trigger()

    # Save: the objects stack beside the stack reads back with those ids, plane by plane
    window.commands.save.trigger()
    on_disk = tifffile.imread(stack_instances_path(path))
    assert on_disk.shape == (Z, H, W)
    assert all(np.array_equal(on_disk[z], stack.documents((z,)).mask.objects.labels) for z in range(Z))
    assert not dialogs.errors()


def test_objects_linked_across_z_keep_one_id_per_3d_object_on_every_plane_and_in_the_file(qtbot, window,
                                                                                          tmp_path):
    path, _data = halves_stack(tmp_path / "cells.ome.tif")
    window.models.set_segmenter(SplittingPlaneSegmenter(classes=MODEL_CLASSES, value=2))
    window.open_images([path])
    stack = window.current.stack
    segment_plane(qtbot, window, 3)  # ids 1 and 2 on plane 3 before the run
    window.commands.stitch_z.setChecked(True)
    window.commands.segment_stack.trigger()
    qtbot.waitUntil(lambda: window.state.job is None and not window.current.busy, timeout=30_000)
    layers = [stack.documents((z,)).mask.objects.labels.copy() for z in range(Z)]
    linked = ids_of(layers[0])
    assert len(linked) == 2 and min(linked) > 2 and all(ids_of(layer) == linked for layer in layers)
    assert all(np.array_equal(layer, layers[0]) for layer in layers)  # the same two 3-D objects on each plane
    on_disk = tifffile.imread(stack_instances_path(path))
    assert all(np.array_equal(on_disk[z], layers[z]) for z in range(Z))
    window.plane_ui.go((3,))  # plane 3 was open: its step takes both back to its Segment Plane result
    window.commands.undo.trigger()
    assert ids_of(window.document.objects.labels) == {1, 2}



def test_segment_all_writes_a_stacks_objects_beside_it_and_the_open_stack_shows_them(qtbot, window, dialogs,
                                                                                     tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    path, _data = halves_stack(folder / "cells.ome.tif")
    other, _ = halves_stack(folder / "other.ome.tif", seed=1)  # never opened
    tifffile.imwrite(stack_instances_path(other), np.ones((Z, H, W), np.uint16))  # objects of its own, no mask
    dialogs.answers["ask_overwrite_skip_cancel"] = "overwrite"
    window.models.set_segmenter(SplittingPlaneSegmenter(classes=MODEL_CLASSES, value=2))
    window.open_folder(folder)
    window.show_entry(window.store.get(path))
    window.plane_ui.go((2,))
    with qtbot.waitSignal(window.segment_all_finished, timeout=30_000) as done:
        window.commands.segment_all.trigger()
    assert done.args == [2, 2] and not dialogs.errors()
    [asked] = dialogs.of("ask_overwrite_skip_cancel")  # asked before its objects file was replaced, naming it
    assert asked[3] == ("Segment All saves each result beside its image as <name>_mask.ome.tif and its objects "
                        "as <name>_instances.ome.tif.")
    for image in (path, other):  # what `unetseg segment STACK --format instances` writes: ids unique over the stack
        on_disk = tifffile.imread(stack_instances_path(image))
        per_plane = [ids_of(on_disk[z]) for z in range(Z)]
        assert on_disk.shape == (Z, H, W) and all(len(ids) == 2 for ids in per_plane)
        assert sum(map(len, per_plane)) == len(set().union(*per_plane))
    on_disk = tifffile.imread(stack_instances_path(path))
    with StackReader(stack_mask_path(path), "Z") as reader:
        assert all(np.array_equal(reader.read_plane((z,)) > 0, on_disk[z] > 0) for z in range(Z))
    # the open stack's planes show them, saved, and one undo step takes classes and objects back
    assert np.array_equal(window.document.objects.labels, on_disk[2]) and not window.current.dirty
    window.plane_ui.go((5,))
    assert np.array_equal(window.document.objects.labels, on_disk[5])
    window.plane_ui.go((2,))
    window.commands.undo.trigger()
    assert not window.mask.any() and not window.document.objects.labels.any()


def test_new_objects_wait_while_segment_stack_numbers_the_stacks_objects(qtbot, window, dialogs, tmp_path):
    """A run hands out ids above the stack's top as its planes finish; an object painted meanwhile
    would take one of them (one id on two planes). So New Object waits, saying why, while every other
    tool works; once the run ends a new object is numbered above every id the run gave."""
    from tests.gui.helpers import drag

    path, _data = halves_stack(tmp_path / "cells.ome.tif")
    window.models.set_segmenter(SplittingPlaneSegmenter(classes=MODEL_CLASSES, value=2, tile=16, delay=0.03))
    window.open_images([path])
    stack = window.current.stack
    qtbot.keyClick(window.canvas, Qt.Key.Key_O, Qt.KeyboardModifier.ShiftModifier)  # Objects mode
    window.plane_ui.go((Z - 1,))
    window.commands.segment_stack.trigger()
    assert window.state.job is not None
    window.brush_spin.setValue(6)
    window.commands.object_brush.trigger()
    drag(qtbot, window, [(6, 6), (6.5, 6)])
    assert not window.document.objects.labels.any()  # nothing painted: the run is numbering objects
    assert "New objects wait until Segment Stack ends" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: window.state.job is None and not window.current.busy, timeout=60_000)

    drag(qtbot, window, [(6, 6), (6.5, 6)])  # the run is over: the same dab paints a new object
    run_ids = set().union(*(ids_of(stack.documents((z,)).mask.objects.labels) for z in range(Z)))
    mine = ids_of(window.document.objects.labels) - ids_of(window.document.objects.labels[:, W // 2:])
    assert len(mine) == 1 and min(mine) > max(run_ids - mine)
