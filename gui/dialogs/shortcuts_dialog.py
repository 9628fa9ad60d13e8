"""Help > Keyboard Shortcuts (F1): a two-column table, keys beside the action's name, grouped by menu.

A table rather than padded text: keys and names line up in any font.  The rows come from the
caller (gui.menus.shortcut_list reads them from the live actions, and the caller passes them again
when they change); the mouse gestures, which no action holds, are added here.
"""

from __future__ import annotations

from typing import Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QHeaderView, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

MOUSE = "Mouse"
MOUSE_ROWS = (("Pan", "Space+drag, or middle-drag"), ("Zoom at the pointer", "Wheel"),
              ("Pick the class under the pointer", "Alt+click"))


class ShortcutsDialog(QDialog):
    """Non-modal; ``set_rows`` refreshes it (the keys of Page Up/Down change with a stack)."""

    def __init__(self, rows: Sequence[tuple[str, str, str]], parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("shortcuts_dialog")
        self.setWindowTitle("Keyboard Shortcuts")
        self.table = QTableWidget(0, 2)
        self.table.setObjectName("shortcuts_table")
        self.table.setHorizontalHeaderLabels(["Keys", "Action"])
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)  # a list, not a form
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # a narrowed window: "…" and the tooltip
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setShowGrid(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self._rows: list[tuple[str, str, str]] | None = None
        self.set_rows(rows)
        table = self.table  # wide enough for the longest keys beside the longest name, scroll bar included
        wide = table.sizeHintForColumn(0) + table.sizeHintForColumn(1) + table.verticalScrollBar().sizeHint().width()
        margins = layout.contentsMargins()
        self.resize(max(560, wide + 2 * table.frameWidth() + margins.left() + margins.right() + 8), 680)

    def set_rows(self, rows: Sequence[tuple[str, str, str]]) -> None:
        """``(section, action, keys)`` rows, each section under a heading row, then the mouse's."""
        rows = [*rows, *((MOUSE, name, keys) for name, keys in MOUSE_ROWS)]
        if rows == self._rows:
            return
        self._rows = rows
        table = self.table
        table.clearSpans()
        table.setRowCount(0)
        section = None
        for group, name, keys in rows:
            if group != section:
                section = group
                self._heading(group)
            row = table.rowCount()
            table.insertRow(row)
            for column, text in enumerate((keys, name)):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                table.setItem(row, column, item)

    def _heading(self, text: str) -> None:
        table, row = self.table, self.table.rowCount()
        table.insertRow(row)
        item = QTableWidgetItem(text)
        font = QFont(item.font())
        font.setBold(True)
        item.setFont(font)
        table.setItem(row, 0, item)
        table.setSpan(row, 0, 1, 2)

    def entries(self) -> dict[str, str]:
        """What the table shows: action name -> keys (headings left out)."""
        table = self.table
        return {table.item(r, 1).text(): table.item(r, 0).text()
                for r in range(table.rowCount()) if table.item(r, 1) is not None}
