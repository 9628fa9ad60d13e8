"""The Live Training panel: what the trainer is doing, where it starts from, the checkpoints
it kept (one click rolls back to any of them), and the two ways to finish.

It observes gui.state.live.LiveState and says what the user asked for through signals; the
controller (gui.controllers.live_training) does the work.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton,
                               QVBoxLayout, QWidget)

from gui.state.live import FROM_MODEL, FROM_SCRATCH, LiveState

_STARTS = ((FROM_SCRATCH, "Start from scratch"), (FROM_MODEL, "Start from the current model (none loaded: built-in small)"))


class LivePanel(QWidget):
    start_from_chosen = Signal(str)
    hold_toggled = Signal(bool)
    roll_back_requested = Signal(int)  # a LiveSnapshot.index
    apply_requested = Signal()
    save_requested = Signal()

    def __init__(self, live: LiveState, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("live_panel")
        self.live = live
        self.status = QLabel(live.status)
        self.status.setObjectName("live_status")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.start = QComboBox()
        self.start.setObjectName("live_start")
        for key, text in _STARTS:
            self.start.addItem(text, key)
        self.start.setToolTip("Where training starts when Live Training is turned on")
        self.pause = QPushButton("Pause")
        self.pause.setObjectName("live_pause")
        self.pause.setCheckable(True)
        self.pause.setToolTip("Stop training steps (within a second) without losing anything")
        self.history = QListWidget()
        self.history.setObjectName("live_history")
        self.history.setToolTip("Checkpoints kept while training: training time, annotated pixels and images "
                                "it learned from, and the mIoU on strokes held out of training (– until "
                                "there are enough strokes to hold some out). Double-click (or Roll Back) to "
                                "continue from one.")
        self.roll_back = QPushButton("Roll Back")
        self.roll_back.setObjectName("live_roll_back")
        self.apply = QPushButton("Apply to Image")
        self.apply.setObjectName("live_apply")
        self.apply.setToolTip("Write the prediction into the editable mask (one undo step)")
        self.save = QPushButton("Save Model…")
        self.save.setObjectName("live_save")
        self.save.setToolTip("Save the checkpoint with its classes and the images and strokes that trained it")

        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        row = QHBoxLayout()
        row.addWidget(self.start, 1)
        row.addWidget(self.pause)
        layout.addLayout(row)
        layout.addWidget(QLabel("Training history"))
        layout.addWidget(self.history, 1)
        row = QHBoxLayout()
        row.addWidget(self.roll_back)
        row.addWidget(self.apply)
        row.addWidget(self.save)
        layout.addLayout(row)

        self.start.activated.connect(lambda i: self.start_from_chosen.emit(self.start.itemData(i)))
        self.pause.toggled.connect(self.hold_toggled)
        self.history.itemDoubleClicked.connect(lambda item: self.roll_back_requested.emit(item.data(Qt.ItemDataRole.UserRole)))
        self.history.currentItemChanged.connect(lambda *_: self._enable())
        self.roll_back.clicked.connect(self._roll_back_selected)
        self.apply.clicked.connect(self.apply_requested)
        self.save.clicked.connect(self.save_requested)
        ev = live.events
        ev.status.connect(lambda text: self.status.setText(text))
        ev.history.connect(self._fill)
        ev.current.connect(self._fill)
        ev.held.connect(self._show_held)
        ev.on.connect(self._enable)
        ev.start_from.connect(self._show_start)
        self._show_start(live.start_from)
        self._fill()

    def _show_start(self, key: str) -> None:
        index = self.start.findData(key)
        if index >= 0:
            self.start.setCurrentIndex(index)

    def _show_held(self, held: bool) -> None:
        self.pause.blockSignals(True)
        self.pause.setChecked(held)
        self.pause.blockSignals(False)
        self.pause.setText("Resume" if held else "Pause")

    def _fill(self, *_) -> None:
        selected = self.selected_index()
        self.history.blockSignals(True)
        self.history.clear()
        for row in reversed(self.live.history):  # newest first
            current = row.index == self.live.current
            item = QListWidgetItem(("▶ " if current else "   ") + row.text())
            item.setData(Qt.ItemDataRole.UserRole, row.index)
            self.history.addItem(item)
            if row.index == selected:
                self.history.setCurrentItem(item)
        self.history.blockSignals(False)
        self._enable()

    def selected_index(self) -> int | None:
        item = self.history.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _roll_back_selected(self) -> None:
        index = self.selected_index()
        if index is not None:
            self.roll_back_requested.emit(index)

    def _enable(self, *_) -> None:
        has = bool(self.live.history)
        selected = self.selected_index()
        self.roll_back.setEnabled(selected is not None and selected != self.live.current)
        self.apply.setEnabled(has)
        self.save.setEnabled(has)
        self.pause.setEnabled(self.live.on)
        self.start.setEnabled(not self.live.on)
