"""The status bar's pointer readout tells what is under the pointer now, not when the mouse last
moved: after Page Down (another plane), a merge, a delete and an undo, the pointer held still; and
a delete says so, like the other object edits."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from tests.gui.helpers import click, drag, view_pos, write_image
from tests.gui.stack_helpers import Z, halves_stack


def key(qtbot, window, k, modifier=Qt.KeyboardModifier.NoModifier):
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, k, modifier)


def hover(qtbot, window, x, y) -> str:
    qtbot.mouseMove(window.canvas.viewport(), view_pos(window, x + 0.5, y + 0.5))
    return window.status.pointer.text()


def test_page_down_shows_the_new_planes_values_under_a_still_pointer(qtbot, window, tmp_path):
    path, data = halves_stack(tmp_path / "cells.ome.tif")
    window.open_images([path])
    x, y = 10, 12
    text = hover(qtbot, window, x, y)
    assert f"Z 1/{Z}" in text and f"DAPI {data[0, 0, y, x]}, GFP {data[0, 1, y, x]}" in text
    key(qtbot, window, Qt.Key.Key_PageDown)
    assert window.state.planes.plane == (1,)
    text = window.status.pointer.text()
    assert f"x {x}, y {y}" in text and f"Z 2/{Z}" in text
    assert f"DAPI {data[1, 0, y, x]}, GFP {data[1, 1, y, x]}" in text


def test_merge_delete_and_undo_update_the_readout_under_a_still_pointer(qtbot, window, tmp_path):
    window.open_images([write_image(tmp_path / "cells.png", 80, 100)])
    key(qtbot, window, Qt.Key.Key_O, Qt.KeyboardModifier.ShiftModifier)  # Objects mode
    window.select_class(1)
    window.brush_spin.setValue(16)
    key(qtbot, window, Qt.Key.Key_N)  # New Object: 1 and 2, touching
    drag(qtbot, window, [(30, 40), (30.5, 40)])
    drag(qtbot, window, [(46, 40), (46.5, 40)])
    assert window.document.objects.ids().tolist() == [1, 2]
    assert "object 2" in hover(qtbot, window, 48, 40)

    key(qtbot, window, Qt.Key.Key_M)  # Merge: 1, then 2 (the pointer stays on 2's pixels)
    click(qtbot, window, 30, 40)
    click(qtbot, window, 48, 40)
    assert window.document.objects.ids().tolist() == [1]
    assert "object 1" in window.status.pointer.text() and "object 2" not in window.status.pointer.text()

    key(qtbot, window, Qt.Key.Key_D)  # Delete: a click on it
    click(qtbot, window, 48, 40)
    assert window.document.objects.ids().tolist() == []
    text = window.status.pointer.text()
    assert "x 48, y 40" in text and "background" in text and "object" not in text
    assert window.statusBar().currentMessage() == "Deleted object 1 (Ctrl+Z brings it back)."  # as the Del key says

    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undo brings it back
    assert "object 1" in window.status.pointer.text()
    assert np.asarray(window.document.labels)[40, 48] == 1
