"""The Images dock: the open images in order, each marked with the state of its mask.

Marks: a check for a mask file on disk, a pencil (and bold name with "*") for unsaved
edits, a warning sign for an image that could not be read, an empty circle otherwise.
The panel follows the store's events; picking a row is a request (``activated``).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from gui.infra.icons import icon
from gui.state.image_store import ImageEntry, ImageStore, path_key

KEY_ROLE = Qt.ItemDataRole.UserRole


class FilePanel(QWidget):
    activated = Signal(object)  # the ImageEntry the user picked

    def __init__(self, store: ImageStore, parent: QWidget | None = None):
        super().__init__(parent)
        self._store = store
        self.header = QLabel("No images")
        self.header.setObjectName("file_list_header")
        self.file_list = QListWidget()
        self.file_list.setObjectName("file_list")
        self.file_list.setUniformItemSizes(True)
        self.file_list.currentItemChanged.connect(self._on_current)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.header)
        layout.addWidget(self.file_list, 1)
        self._syncing = False
        self._icons = {"saved": icon("check-circle", "#3aa55d"), "dirty": icon("pencil-circle", "#e08a1e"),
                       "error": icon("alert-circle", "#d64545"), "none": icon("circle-outline", "#9a9a9a")}
        for signal in (store.added, store.removed, store.reordered):
            signal.connect(self.rebuild)
        store.entry_changed.connect(self.refresh)
        store.current_changed.connect(self.select)
        self.rebuild()

    def rebuild(self, *_) -> None:
        """Show the store's list again (entries added, removed or reordered)."""
        self._syncing = True
        try:
            self.file_list.clear()
            for entry in self._store:
                item = QListWidgetItem()
                item.setData(KEY_ROLE, path_key(entry.path))
                self.file_list.addItem(item)
                self._style(item, entry)
        finally:
            self._syncing = False
        self.select(self._store.current)

    def _item(self, entry: ImageEntry) -> QListWidgetItem | None:
        row = self._store.index_of(entry)
        return self.file_list.item(row) if 0 <= row < self.file_list.count() else None

    def refresh(self, entry: ImageEntry) -> None:
        item = self._item(entry)
        if item is not None:
            self._style(item, entry)
        self._update_header()

    def _style(self, item: QListWidgetItem, entry: ImageEntry) -> None:
        if entry.error:
            state, tip = "error", entry.error
        elif entry.dirty:
            state, tip = "dirty", "Unsaved edits"
        elif entry.has_mask_file:
            state, tip = "saved", "Has a mask file"
        else:
            state, tip = "none", "No mask yet"
        item.setIcon(self._icons[state])
        item.setText(f"{entry.name} *" if state == "dirty" else entry.name)
        font = item.font()
        font.setBold(state == "dirty")
        item.setFont(font)
        item.setToolTip(f"{entry.path}\n{tip}")
        item.setData(Qt.ItemDataRole.UserRole + 1, state)

    def state_of(self, entry: ImageEntry) -> str | None:
        """"saved", "dirty", "error" or "none", as shown (for tests and the status bar)."""
        item = self._item(entry)
        return item.data(Qt.ItemDataRole.UserRole + 1) if item is not None else None

    def select(self, entry: ImageEntry | None) -> None:
        self._syncing = True
        try:
            row = self._store.index_of(entry)
            self.file_list.setCurrentRow(row)
            if row >= 0:
                self.file_list.scrollToItem(self.file_list.item(row))
        finally:
            self._syncing = False
        self._update_header()

    def _update_header(self) -> None:
        n = len(self._store)
        if n == 0:
            self.header.setText("No images")
            return
        i = self._store.index_of(self._store.current) + 1
        dirty = len(self._store.dirty_entries())
        text = f"{i} of {n} images" if i > 0 else f"{n} images"
        self.header.setText(text + (f" · {dirty} unsaved" if dirty else ""))

    def _on_current(self, item: QListWidgetItem | None, _previous) -> None:
        if self._syncing or item is None:
            return
        entry = self._store.get(item.data(KEY_ROLE))
        if entry is not None:
            self.activated.emit(entry)
