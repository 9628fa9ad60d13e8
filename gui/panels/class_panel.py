"""The Classes dock: overlay opacity and toggles, and the class list of the shown document.

It observes the app state (opacity, hidden classes, the shown document) and writes the user's
choices back to it; renaming and adding classes are requests (signals) for a controller.

Each row shows the class colour, id and name, a visibility checkbox, the number of objects of
the class once the image has objects (gui.state.objects), and the pixel count (bold when the
class is present).  Selecting a row makes that class the active one;
double-clicking asks to rename / recolour it.  Counts refresh shortly after edits stop.
"""

from __future__ import annotations

import weakref

from PySide6.QtCore import QModelIndex, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QPainter
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QSlider, QStyle,
                               QStyledItemDelegate, QStyleOptionViewItem, QToolButton, QVBoxLayout,
                               QWidget)

from core.document.mask_document import MaskDocument
from core.document.editing import Box
from gui.infra.icons import icon, swatch
from gui.panels.class_stats import ClassCounts, StoredCounts, counts_for
from gui.state.app_state import AppState

ID_ROLE = Qt.ItemDataRole.UserRole
COUNT_ROLE = Qt.ItemDataRole.UserRole + 1
OBJECTS_ROLE = Qt.ItemDataRole.UserRole + 2
COUNT_DELAY_MS = 250


def format_count(n: int) -> str:
    if n <= 0:
        return ""
    if n < 10_000:
        return f"{n:,} px"
    if n < 10_000_000:
        return f"{n / 1e3:.1f}k px"
    return f"{n / 1e6:.1f}M px"


def format_counts(pixels: int, objects: int) -> str:
    """"12 obj · 3.4k px": objects first when the class has any."""
    px = format_count(pixels)
    if objects <= 0:
        return px
    return f"{objects:,} obj · {px}" if px else f"{objects:,} obj"


class _CountDelegate(QStyledItemDelegate):
    """Draws the item as usual with its name elided, and the pixel count right-aligned."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        widget = opt.widget
        style = widget.style() if widget is not None else None
        count = format_counts(int(index.data(COUNT_ROLE) or 0), int(index.data(OBJECTS_ROLE) or 0))
        if style is None:
            super().paint(painter, option, index)
            return
        space = opt.fontMetrics.horizontalAdvance(count) + 14 if count else 0
        text_rect = style.subElementRect(QStyle.SubElement.SE_ItemViewItemText, opt, widget)
        opt.text = opt.fontMetrics.elidedText(opt.text, Qt.TextElideMode.ElideRight,
                                              max(10, text_rect.width() - space))
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        if count:
            selected = bool(opt.state & QStyle.StateFlag.State_Selected)
            painter.save()
            color = opt.palette.highlightedText().color() if selected else opt.palette.text().color()
            if not selected:
                color.setAlpha(150)
            painter.setPen(color)
            painter.setFont(opt.font)
            painter.drawText(opt.rect.adjusted(0, 0, -8, 0),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, count)
            painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        size = super().sizeHint(option, index)
        return QSize(size.width() + 60, max(size.height(), 24))


class ClassPanel(QWidget):
    edit_requested = Signal(int)
    add_requested = Signal()

    def __init__(self, state: AppState, toggle_mask: QAction, outline: QAction, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setObjectName("opacity_slider")
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setSingleStep(5)
        self.opacity_slider.setPageStep(10)
        self.opacity_slider.setToolTip("Mask opacity (, and . step it)")
        self._opacity_label = QLabel("50%")
        self._opacity_label.setMinimumWidth(36)
        self.opacity_slider.valueChanged.connect(lambda v: self._opacity_label.setText(f"{v}%"))
        self.opacity_slider.setValue(state.opacity)
        self.opacity_slider.valueChanged.connect(state.set_opacity)
        state.events.opacity.connect(lambda value: self.opacity_slider.setValue(value))

        self.class_list = QListWidget()
        self.class_list.setObjectName("class_list")
        self.class_list.setItemDelegate(_CountDelegate(self.class_list))
        self.class_list.setIconSize(QSize(16, 16))
        self.class_list.setUniformItemSizes(True)
        self.class_list.setToolTip("Click: paint with this class (keys 0-9). Double-click: rename "
                                   "or recolour. Checkbox: show or hide the class.")
        self.class_list.currentItemChanged.connect(self._on_current)
        self.class_list.itemChanged.connect(self._on_item_changed)
        self.class_list.itemDoubleClicked.connect(
            lambda item: self.edit_requested.emit(int(item.data(ID_ROLE))))

        add = QToolButton()
        add.setObjectName("add_class_button")
        add.setIcon(icon("plus"))
        add.setText("Add Class")
        add.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        add.setAutoRaise(True)
        add.clicked.connect(self.add_requested)
        self.add_button = add

        top = QHBoxLayout()
        top.addWidget(QLabel("Opacity"))
        top.addWidget(self.opacity_slider, 1)
        top.addWidget(self._opacity_label)
        toggles = QHBoxLayout()
        for action in (toggle_mask, outline):
            button = QToolButton()
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            button.setAutoRaise(True)
            toggles.addWidget(button)
        toggles.addStretch(1)
        toggles.addWidget(add)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(top)
        layout.addLayout(toggles)
        layout.addWidget(self.class_list, 1)

        self._doc: MaskDocument | None = None
        self._counts: ClassCounts | StoredCounts | None = None
        self._populating = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(COUNT_DELAY_MS)
        self._timer.timeout.connect(self.refresh_counts)
        self._kept: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # documents shown before: their counts
        self._counts = None
        shown = state.document
        shown.document_changed.connect(self._set_document)
        shown.classes_changed.connect(self._populate)
        shown.changed.connect(self._on_changed)
        shown.reset.connect(self._on_reset)
        state.events.active_class.connect(self._select)
        state.events.hidden_classes.connect(self._apply_hidden)
        state.objects.events.table.connect(self._apply_object_counts)
        self._set_document(shown.doc)

    # -- document -----------------------------------------------------------------------------
    def _set_document(self, doc: MaskDocument | None) -> None:
        old = self._doc if hasattr(self, "_doc") else None
        if old is not None and self._counts is not None:  # a stack's plane shown again recounts nothing
            self._kept[old] = (old.history.position, self._counts)
        self._doc = doc
        kept = self._kept.get(doc) if doc is not None else None
        fresh = kept is not None and kept[0] == doc.history.position and not doc.preview_active
        self._counts = kept[1] if fresh else (counts_for(doc.labels) if doc is not None else None)
        self._populate()
        if fresh or doc is None:
            self.refresh_counts()
        else:
            self._timer.start()  # counted once the new document is on screen (a stack's next plane first)

    def _populate(self) -> None:
        self._populating = True
        try:
            self.class_list.clear()
            if self._doc is None:
                return
            for info in self._doc.classes:
                item = QListWidgetItem(swatch(info.color, transparent=info.id == 0),
                                       f"{info.id}  {info.name}")
                item.setData(ID_ROLE, info.id)
                item.setData(COUNT_ROLE, 0)
                flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                if info.id != 0:  # background is never drawn: nothing to hide
                    flags |= Qt.ItemFlag.ItemIsUserCheckable
                    item.setCheckState(Qt.CheckState.Unchecked if info.id in self.state.hidden_classes
                                       else Qt.CheckState.Checked)
                item.setFlags(flags)
                item.setToolTip(f"Class {info.id}: {info.name}  rgb{tuple(info.color)}")
                self.class_list.addItem(item)
            self._select(self._doc.active_class)
        finally:
            self._populating = False
        if self._counts is not None:
            self._apply_counts(self._counts.counts() if not self._counts.stale else None)
            self._timer.start()
        self._apply_object_counts(self.state.objects.table)

    def _apply_hidden(self, hidden: frozenset) -> None:
        was, self._populating = self._populating, True
        try:
            for row in range(self.class_list.count()):
                item = self.class_list.item(row)
                if item.flags() & Qt.ItemFlag.ItemIsUserCheckable:
                    state = Qt.CheckState.Unchecked if int(item.data(ID_ROLE)) in hidden else Qt.CheckState.Checked
                    if item.checkState() != state:
                        item.setCheckState(state)
        finally:
            self._populating = was

    def row_of(self, class_id: int) -> int:
        for row in range(self.class_list.count()):
            if int(self.class_list.item(row).data(ID_ROLE)) == class_id:
                return row
        return -1

    def _select(self, class_id: int) -> None:
        row = self.row_of(class_id)
        was, self._populating = self._populating, True
        try:
            self.class_list.setCurrentRow(row)
            if row >= 0:
                self.class_list.scrollToItem(self.class_list.item(row))
        finally:
            self._populating = was

    def _on_current(self, item: QListWidgetItem | None, _previous) -> None:
        if item is not None and not self._populating:
            self.state.active_class = int(item.data(ID_ROLE))

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        if self._populating or not item.flags() & Qt.ItemFlag.ItemIsUserCheckable:
            return
        visible = item.checkState() == Qt.CheckState.Checked
        self.state.set_class_visible(int(item.data(ID_ROLE)), visible)

    # -- counts -------------------------------------------------------------------------------
    def _on_changed(self, box: Box) -> None:
        if self._counts is not None:
            self._counts.invalidate(box)
            self._timer.start()

    def _on_reset(self) -> None:
        if self._counts is not None and self._doc is not None:
            self._counts.rebind(self._doc.labels)
            self._timer.start()

    def refresh_counts(self) -> None:
        """Recount now (edits normally trigger this after a short pause)."""
        self._timer.stop()
        self._apply_counts(self._counts.counts() if self._counts is not None else None)

    def _apply_counts(self, counts) -> None:
        if counts is None:
            return
        self._populating = True
        try:
            for row in range(self.class_list.count()):
                item = self.class_list.item(row)
                cid = int(item.data(ID_ROLE))
                n = int(counts[cid]) if 0 <= cid < 256 else 0
                item.setData(COUNT_ROLE, n)
                font = item.font()
                font.setBold(n > 0 and cid != 0)
                item.setFont(font)
        finally:
            self._populating = False

    def _apply_object_counts(self, table) -> None:
        """Objects per class from the shown image's measurements (none while there are none)."""
        counts = table.class_counts() if table is not None and table.doc is self._doc else {}
        was, self._populating = self._populating, True
        try:
            for row in range(self.class_list.count()):
                item = self.class_list.item(row)
                item.setData(OBJECTS_ROLE, counts.get(int(item.data(ID_ROLE)), 0))
        finally:
            self._populating = was

    def objects_of(self, class_id: int) -> int:
        """The number of objects of a class the list shows."""
        row = self.row_of(class_id)
        return int(self.class_list.item(row).data(OBJECTS_ROLE) or 0) if row >= 0 else 0

    def count_of(self, class_id: int) -> int:
        row = self.row_of(class_id)
        return int(self.class_list.item(row).data(COUNT_ROLE) or 0) if row >= 0 else 0
