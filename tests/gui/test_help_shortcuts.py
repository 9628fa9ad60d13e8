"""Help > Keyboard Shortcuts (F1): a table of every shortcut, keys in one column, names in the other."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QTableWidget

from gui.dialogs.shortcuts_dialog import ShortcutsDialog


def shown_table(window) -> dict[str, str]:
    """Press F1; what the dialog's table shows: action name -> keys."""
    window.commands.shortcuts.trigger()
    [dialog] = [w for w in window.findChildren(ShortcutsDialog) if w.isVisible()]
    table = dialog.findChild(QTableWidget, "shortcuts_table")
    assert table.columnCount() == 2 and table.horizontalHeaderItem(0).text() == "Keys"
    rows = {}
    for r in range(table.rowCount()):
        keys, name = table.item(r, 0), table.item(r, 1)
        if name is not None:  # a heading spans both columns
            rows[name.text()] = keys.text()
    return rows


def test_f1_lists_every_shortcut_with_all_its_keys_under_stable_names(qtbot, window, image):
    window.open_images([image])
    window.document.apply_labels(np.ones(window.document.shape, np.uint8))
    assert window.commands.undo.text().replace("&", "") != "Undo"  # "Undo <the last edit>"
    rows = shown_table(window)
    assert rows["Undo"].split(" or ")[0] == QKeySequence(QKeySequence.StandardKey.Undo).toString()
    assert set(rows["Fit to Window"].split(" or ")) == {"Ctrl+0", "F"}
    assert rows["Segment Stack"] == "Ctrl+Alt+R" and rows["Export Mask"] == "Ctrl+E"
    assert rows["Open"] == "Ctrl+O" and rows["Segment"] == "Ctrl+R or F5"
    assert rows["Less Opaque Mask"] == ", or Alt+Down" and "Open" not in rows["Open"]  # no "Open" key
    assert rows["Choose the class"] == "0 – 9" and rows["Pick the class under the pointer"] == "Alt+click"
    shown = {key for keys in rows.values() for key in keys.split(" or ")}
    every = {s.toString() for a in window.commands.all() if a not in window.commands.class_keys
             for s in a.shortcuts() if s.toString() not in ("Open", "Save", "Undo", "Redo", "Close",
                                                             "Shift+Save", "Zoom In", "Zoom Out")}
    assert every <= shown, f"missing from the table: {every - shown}"


def test_reopened_f1_follows_the_keys_of_a_stack(qtbot, window):
    a = window.commands
    assert "PgDown" in shown_table(window)["Next Image"]
    a.next_image.setShortcuts([QKeySequence("Ctrl+PgDown")])  # what a shown stack does (gui.controllers.planes)
    a.next_plane.setShortcuts([QKeySequence("PgDown")])
    rows = shown_table(window)
    assert rows["Next Image"] == "Ctrl+PgDown" and rows["Next Plane"] == "PgDown"
