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


def table_rows(markdown: str) -> list[tuple[str, ...]]:
    """The cells of a Markdown table's rows, stripped."""
    return [tuple(c.strip() for c in line.strip().strip("|").split("|"))
            for line in markdown.splitlines() if line.startswith("|")]


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


def test_open_f1_and_getting_started_follow_a_stack_being_opened(qtbot, window, tmp_path):
    from tests.gui.stack_helpers import halves_stack

    window.commands.shortcuts.trigger()
    window.commands.getting_started.trigger()
    dialog, help_text = window.shortcuts_dialog, window.help_dialog.browser
    rows = dialog.entries()
    assert rows["Previous Image"].split(" or ")[0] == "PgUp" and "Previous Plane" not in rows
    stack_row = "Planes of a stack (with Ctrl: images, Shift: time points)"
    assert rows[stack_row] == "PgUp / PgDown"  # what PgUp does in a stack, until one is shown
    path, _ = halves_stack(tmp_path / "cells.ome.tif")
    window.open_images([path])
    qtbot.waitUntil(lambda: dialog.entries().get("Previous Plane") == "PgUp", timeout=5000)
    rows = dialog.entries()
    assert rows["Previous Image"] == "Ctrl+PgUp" and stack_row not in rows  # no row saying it twice
    assert ("PgUp", "Previous Plane") in table_rows(help_text.toMarkdown())
    assert stack_row not in help_text.toPlainText()


def test_f1_puts_keys_under_a_keys_heading_and_every_row_fits_its_column(qtbot, window):
    rows = shown_table(window)
    dialog = window.shortcuts_dialog
    table = dialog.table
    headings, section = {}, None
    for r in range(table.rowCount()):
        if table.item(r, 1) is None:
            section = table.item(r, 0).text()
        else:
            headings[table.item(r, 1).text()] = section
    assert headings["Planes of a stack (with Ctrl: images, Shift: time points)"] == "Keys"
    assert headings["Pick the class under the pointer"] == "Mouse"
    assert "PgUp / PgDown" not in [rows[n] for n, s in headings.items() if s == "Mouse"]
    metrics = table.fontMetrics()
    for r in range(table.rowCount()):
        for column in (0, 1):
            item = table.item(r, column)
            if item is not None and table.columnSpan(r, column) == 1:
                assert metrics.horizontalAdvance(item.text()) + 6 <= table.columnWidth(column), item.text()
                assert item.toolTip() == item.text()


def test_keys_no_ordinary_keyboard_has_are_left_out(qtbot, window):
    from gui.menus.shortcut_list import keys_text

    action = window.commands.undo
    action.setShortcuts([QKeySequence("Ctrl+Z"), QKeySequence("F14"), QKeySequence("F35"), QKeySequence("F12")])
    assert keys_text(action) == "Ctrl+Z or F12"
    assert shown_table(window)["Undo"] == "Ctrl+Z or F12"
