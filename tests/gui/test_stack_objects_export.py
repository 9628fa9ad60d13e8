"""Export Mask of a stack with objects painted on some planes only (issues 26, 27): every plane
with class pixels has its objects in COCO, the painted ones where a plane has them, else its class
mask's connected regions (as a 2-D image without objects exports), and no id names two objects."""

from __future__ import annotations

import json

import numpy as np
import tifffile
from PySide6.QtCore import Qt

from tests.gui.helpers import drag
from tests.gui.stack_helpers import Z, halves_stack
from tests.gui.test_stacks_exports import export_as, open_with_masks


def test_coco_of_a_stack_with_objects_on_two_planes_keeps_every_other_planes_regions(qtbot, window, dialogs,
                                                                                      tmp_path):
    path, _data = halves_stack(tmp_path / "cells.ome.tif")
    masks = open_with_masks(window, path)  # class 1 in a band on every plane, class 2 besides on plane 3
    qtbot.keyClick(window.canvas, Qt.Key.Key_O, Qt.KeyboardModifier.ShiftModifier)  # Objects mode
    window.select_class(1)
    window.brush_spin.setValue(6)
    for z in (3, 5):
        window.plane_ui.go((z,))
        for x in (10, 24):
            qtbot.keyClick(window.canvas, Qt.Key.Key_N)  # New Object, on the band
            drag(qtbot, window, [(x, 9 + 3 * z), (x + 0.5, 9 + 3 * z)])
    painted = {z: window.current.stack.documents((z,)).mask.objects.labels.copy() for z in (3, 5)}
    out = tmp_path / "out"
    out.mkdir()

    written, _ = export_as(qtbot, window, dialogs, out, "coco")
    coco = json.loads(written.read_text())
    plane_of = {im["id"]: im["z"] for im in coco["images"]}
    on_plane = {z: [a for a in coco["annotations"] if plane_of[a["image_id"]] == z] for z in range(Z)}
    assert all(on_plane[z] for z in range(Z) if masks[z].any())  # no plane with class pixels left out
    assert len(on_plane[3]) == len(on_plane[5]) == 2  # the painted objects, not the band they lie on
    assert len(on_plane[0]) == 1 and on_plane[0][0]["category_id"] == 1  # the band as one region
    ids = [a["object_id"] for a in coco["annotations"]]
    assert len(ids) == len(set(ids))

    written, _ = export_as(qtbot, window, dialogs, out, "instances")  # the same objects in the label stack
    stack = tifffile.imread(written)
    assert all(np.array_equal(stack[z] > 0, painted[z] > 0) for z in (3, 5))
    assert all(np.array_equal(stack[z] > 0, masks[z] > 0) for z in range(Z) if z not in (3, 5))
    per_plane = [set(np.unique(p).tolist()) - {0} for p in stack]
    assert sum(map(len, per_plane)) == len(set().union(*per_plane))  # no id on two planes
