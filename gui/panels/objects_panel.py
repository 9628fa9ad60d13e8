"""The Objects table dock: the shown image's objects, one row each, with their measurements.

It observes ``state.objects`` (gui.state.objects): the table, the selection, and why there is
no table (a whole slide).  Every column sorts (numbers as numbers); a click on a row asks to
select and centre that object (``object_clicked``, for the controller); an object selected in
the canvas selects its row.  Export writes the CSV through the action it is given.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QTableView, QToolButton,
                               QVBoxLayout, QWidget)

from gui.infra.icons import swatch
from gui.infra.object_colors import object_rgb
from gui.state.objects import ObjectsState, ObjectTable

SORT_ROLE = Qt.ItemDataRole.UserRole
EMPTY_TEXT = "No objects yet: turn on Objects mode (Shift+O) and paint one with New Object (N)."
EMPTY_IN_MODE = "No objects yet: paint one with New Object (N), or segment the image."
MAX_COLUMN_PX = 180  # a column sized to its header's name is at most this wide (the tooltip says the rest)


def format_value(value) -> str:
    if isinstance(value, (str, np.str_)):
        return str(value)
    number = float(value)
    if number.is_integer() and abs(number) < 1e15:
        return f"{int(number)}"
    return f"{number:.4g}" if abs(number) >= 1e4 or abs(number) < 1e-3 else f"{number:.3f}"


class ObjectTableModel(QAbstractTableModel):
    """Rows of an ObjectTable (columns of numpy arrays), read lazily by the view."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.table: ObjectTable | None = None
        self._names: list[str] = []
        self._labels = np.zeros(0, np.int64)

    def set_table(self, table: ObjectTable | None) -> None:
        self.beginResetModel()
        self.table = table
        self._names = table.names if table is not None else []
        self._labels = np.asarray(table.columns.get("label", []), np.int64) if table is not None else np.zeros(0)
        self.endResetModel()

    @property
    def names(self) -> list[str]:
        """The columns' names, in order."""
        return list(self._names)

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt override
        return 0 if parent.isValid() or self.table is None else len(self.table)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._names)

    def label_at(self, row: int) -> int:
        return int(self._labels[row]) if 0 <= row < len(self._labels) else 0

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or self.table is None:
            return None
        value = self.table.columns[self._names[index.column()]][index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return format_value(value)
        if role == SORT_ROLE:
            return str(value) if isinstance(value, (str, np.str_)) else float(value)
        if role == Qt.ItemDataRole.DecorationRole and self._names[index.column()] == "label":
            return swatch(object_rgb(int(value)), 12)
        if role == Qt.ItemDataRole.TextAlignmentRole and not isinstance(value, (str, np.str_)):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):  # noqa: N802
        shown = role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole)
        if shown and orientation == Qt.Orientation.Horizontal:  # the tooltip: the whole name of a narrow column
            return self._names[section] if 0 <= section < len(self._names) else None
        return None


class ObjectsPanel(QWidget):
    object_clicked = Signal(int)  # an object id: select it and centre the view on it

    def __init__(self, objects: ObjectsState, export: QAction, parent: QWidget | None = None):
        super().__init__(parent)
        self.objects = objects
        self.model = ObjectTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.view = QTableView()
        self.view.setObjectName("objects_table")
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setAlternatingRowColors(True)
        self.view.verticalHeader().hide()
        self.view.verticalHeader().setDefaultSectionSize(22)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setDefaultSectionSize(84)
        header.setTextElideMode(Qt.TextElideMode.ElideRight)  # a long name keeps its start, not its middle
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self._sized: list[str] = []  # the columns the widths were last fitted to
        self.view.setToolTip("Click a row to select its object and centre the view on it; click a header to sort")
        self.view.clicked.connect(self._on_clicked)
        self.view.selectionModel().currentRowChanged.connect(self._on_current)
        self.status = QLabel()
        self.status.setObjectName("objects_status")
        self.status.setWordWrap(True)
        export_button = QToolButton()
        export_button.setObjectName("export_objects_button")
        export_button.setDefaultAction(export)
        export_button.setText("Export CSV…")
        export_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        export_button.setAutoRaise(True)
        self.export_button = export_button
        top = QHBoxLayout()
        top.addWidget(self.status, 1)
        top.addWidget(export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)
        self._syncing = False
        ev = objects.events
        ev.table.connect(self._show_table)
        ev.selected.connect(self._select)
        ev.measuring.connect(lambda _: self._update_status())
        ev.note.connect(lambda _: self._update_status())
        ev.shown.connect(lambda _: self._update_status())
        self._show_table(objects.table)

    # -- the table -----------------------------------------------------------------------------
    def _show_table(self, table: ObjectTable | None) -> None:
        """A new table (after every edit): the rows are replaced, the scroll position and the
        selected row stay where they were."""
        scroll = self.view.verticalScrollBar().value()
        self._syncing = True
        try:
            self.model.set_table(table)
        finally:
            self._syncing = False
        self.view.verticalScrollBar().setValue(scroll)
        self._fit_columns()
        self._select(self.objects.selected, scroll=False)
        self._update_status()

    def _fit_columns(self) -> None:
        """Each column as wide as its header's name (within limits) when the columns change; widths
        the user set stay while only the rows change (every edit measures anew)."""
        names = self.model.names
        if names == self._sized:
            return
        self._sized = list(names)
        header = self.view.horizontalHeader()
        for column in range(len(names)):
            header.resizeSection(column, min(MAX_COLUMN_PX, max(header.defaultSectionSize(),
                                                                header.sectionSizeHint(column))))

    def _update_status(self) -> None:
        objects, table = self.objects, self.objects.table
        if objects.note:
            text = objects.note
        elif table is None:
            text = "Measuring…" if objects.measuring else ""
        elif not len(table):
            text = EMPTY_IN_MODE if objects.shown else EMPTY_TEXT
        else:
            count = len(table)
            text = f"{count:,} object{'' if count == 1 else 's'}" + ("  (measuring…)" if objects.measuring else "")
        self.status.setText(text)

    def row_of(self, object_id: int) -> int:
        """The view's row (after sorting) of an object, -1 when it has none."""
        table = self.model.table
        row = table.row_of(object_id) if table is not None else -1
        if row < 0:
            return -1
        return self.proxy.mapFromSource(self.model.index(row, 0)).row()

    def object_at_row(self, view_row: int) -> int:
        source = self.proxy.mapToSource(self.proxy.index(view_row, 0))
        return self.model.label_at(source.row())

    # -- selection -----------------------------------------------------------------------------
    def _select(self, object_id: int, scroll: bool = True) -> None:
        row = self.row_of(object_id) if object_id else -1
        self._syncing = True
        try:
            selection = self.view.selectionModel()
            if row < 0:
                selection.clearSelection()
                return
            index = self.proxy.index(row, 0)
            selection.setCurrentIndex(index, selection.SelectionFlag.ClearAndSelect | selection.SelectionFlag.Rows)
            if scroll:
                self.view.scrollTo(index)
        finally:
            self._syncing = False

    def _on_clicked(self, index: QModelIndex) -> None:
        if index.isValid():
            self.object_clicked.emit(self.object_at_row(index.row()))

    def _on_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        """Keyboard moves in the table select too (a click arrives as ``clicked``)."""
        if not self._syncing and current.isValid():
            object_id = self.object_at_row(current.row())
            if object_id != self.objects.selected:
                self.object_clicked.emit(object_id)

