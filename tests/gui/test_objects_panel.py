"""The Objects table's words and headers as a user reads them: what to do when it is empty (which
depends on whether Objects mode is on), "1 object", and column names readable from their start."""

from __future__ import annotations

from PySide6.QtCore import Qt

from tests.gui.helpers import drag, write_image


def key(qtbot, window, k, modifier=Qt.KeyboardModifier.NoModifier):
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, k, modifier)


def paint_first_object(qtbot, window) -> None:
    """New Object (N) with class 1 and a 16 px brush, one dab: the table then lists one object."""
    window.select_class(1)
    window.brush_spin.setValue(16)
    key(qtbot, window, Qt.Key.Key_N)
    drag(qtbot, window, [(30, 40), (30.5, 40)])
    qtbot.waitUntil(lambda: window.state.objects.table is not None and len(window.state.objects.table) == 1,
                    timeout=15000)

def test_empty_table_text_follows_the_mode_and_one_object_is_singular(qtbot, window, tmp_path):
    window.open_images([write_image(tmp_path / "cells.png", 80, 100)])
    window.objects.refresh()
    status = window.objects_panel.status
    qtbot.waitUntil(lambda: window.state.objects.table is not None, timeout=15000)
    assert "turn on Objects mode" in status.text()
    key(qtbot, window, Qt.Key.Key_O, Qt.KeyboardModifier.ShiftModifier)  # Objects mode on
    assert window.state.objects.shown and "turn on Objects mode" not in status.text()
    assert status.text().startswith("No objects yet") and "New Object (N)" in status.text()

    paint_first_object(qtbot, window)
    assert status.text() == "1 object"
    drag(qtbot, window, [(70, 40), (70.5, 40)])
    qtbot.waitUntil(lambda: len(window.state.objects.table) == 2, timeout=15000)
    assert status.text() == "2 objects"


def test_long_column_names_are_readable(qtbot, window, tmp_path):
    window.open_images([write_image(tmp_path / "cells.png", 80, 100)])
    key(qtbot, window, Qt.Key.Key_O, Qt.KeyboardModifier.ShiftModifier)
    paint_first_object(qtbot, window)
    view = window.objects_panel.view
    header, model = view.horizontalHeader(), view.model()
    names = window.state.objects.table.names
    for name in ("equivalent_diameter", "major_axis_length", "minor_axis_length"):
        column = names.index(name)
        assert header.sectionSize(column) >= header.sectionSizeHint(column), f"{name} is cut"
        assert model.headerData(column, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole) == name
    assert header.textElideMode() == Qt.TextElideMode.ElideRight  # narrowed by hand: the start stays
    wide = names.index("equivalent_diameter")
    header.resizeSection(wide, 40)  # the user's width stays when the rows change
    drag(qtbot, window, [(70, 40), (70.5, 40)])
    qtbot.waitUntil(lambda: len(window.state.objects.table) == 2, timeout=15000)
    assert header.sectionSize(wide) == 40
