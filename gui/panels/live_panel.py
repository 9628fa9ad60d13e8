"""The Live Training panel: what the trainer is doing, where it starts from, the checkpoints
it kept (one click rolls back to any of them), and the two ways to finish.

It observes gui.state.live.LiveState and says what the user asked for through signals; the
controller (gui.controllers.live_training) does the work.  Rows are keyed on the checkpoint's
uid, oldest first, so new ones arrive at the bottom; while the pointer is over the list nothing
is added or removed (a click lands on the row that was aimed at), and the rows wait until it
leaves.  A warning has its own line, which stays until the controller clears it.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton,
                               QVBoxLayout, QWidget)

from gui.state.live import FROM_MODEL, FROM_SCRATCH, HistoryRow, LiveState

_STARTS = ((FROM_SCRATCH, "Start from scratch"), (FROM_MODEL, "Start from the current model (none loaded: built-in small)"))
UID = Qt.ItemDataRole.UserRole
WARNING_STYLE = "QLabel { background: #fff1c2; color: #4a3500; border: 1px solid #d9a400; padding: 4px; }"


class LivePanel(QWidget):
    start_from_chosen = Signal(str)
    hold_toggled = Signal(bool)
    roll_back_requested = Signal(int)  # a LiveSnapshot.uid
    apply_requested = Signal()
    save_requested = Signal()
    level_chosen = Signal(int)  # the pyramid level a slide's strokes are trained at

    def __init__(self, live: LiveState, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("live_panel")
        self.live = live
        self.status = QLabel(live.status)
        self.status.setObjectName("live_status")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.learns = QLabel(live.learns)
        self.learns.setObjectName("live_learns")
        self.learns.setWordWrap(True)
        self.learns.setVisible(bool(live.learns))
        self.warning = QLabel()
        self.warning.setObjectName("live_warning")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(WARNING_STYLE)
        self.warning.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.start = QComboBox()
        self.start.setObjectName("live_start")
        for key, text in _STARTS:
            self.start.addItem(text, key)
        self.start.setToolTip("Where training starts when Live Training is turned on")
        self.level = QComboBox()
        self.level.setObjectName("live_level")
        self.level.setToolTip(
            "The level of the slide's pyramid Live Training reads the tiles under the strokes at, and "
            "the view and Apply predict at (as QuPath trains at one resolution). Coarser levels see more "
            "context per crop and read less; finer ones see more detail. The default keeps strokes at "
            "least 4 pixels wide, at most 4 times coarser than full resolution.")
        self.level_label = QLabel("Train at")
        self.pause = QPushButton("Pause")
        self.pause.setObjectName("live_pause")
        self.pause.setCheckable(True)
        self.pause.setToolTip("Stop training steps (within a second) without losing anything")
        self.history = QListWidget()
        self.history.setObjectName("live_history")
        self.history.setToolTip(
            "Checkpoints kept while training, oldest first, each named by its run (turning Live Training "
            "off and on starts a new run) and number: training time, the annotated pixels it trained on "
            "(strokes held out of training are not counted), and its mIoU on those held-out strokes, which "
            "is measured on them only, never on the whole image. ▶ marks the checkpoint the view, Apply "
            "and Save Model use: the best scored one, or the one you rolled back to. Double-click (or "
            "Roll Back) to mark one and continue training from it.")
        self.roll_back = QPushButton("Roll Back")
        self.roll_back.setObjectName("live_roll_back")
        self.roll_back.setToolTip("Mark the selected checkpoint (▶); training continues from it")
        self.apply = QPushButton("Apply to Image")
        self.apply.setObjectName("live_apply")
        self.apply.setToolTip("Write the marked checkpoint's prediction into the editable mask (one undo step)")
        self.save = QPushButton("Save Model…")
        self.save.setObjectName("live_save")
        self.save.setToolTip("Save the marked checkpoint with its classes and the images and strokes that trained it")

        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.learns)
        layout.addWidget(self.warning)
        row = QHBoxLayout()
        row.addWidget(self.start, 1)
        row.addWidget(self.pause)
        layout.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(self.level_label)
        row.addWidget(self.level, 1)
        layout.addLayout(row)
        layout.addWidget(QLabel("Training history"))
        layout.addWidget(self.history, 1)
        row = QHBoxLayout()
        row.addWidget(self.roll_back)
        row.addWidget(self.apply)
        row.addWidget(self.save)
        layout.addLayout(row)

        self._items: dict[int, QListWidgetItem] = {}  # uid -> its row
        self._pointer_inside = False
        self._waiting = False  # rows changed while the pointer was over the list
        self.history.viewport().installEventFilter(self)
        self.start.activated.connect(lambda i: self.start_from_chosen.emit(self.start.itemData(i)))
        self.pause.toggled.connect(self.hold_toggled)
        self.level.activated.connect(lambda i: self.level_chosen.emit(int(self.level.itemData(i))))
        self.history.itemDoubleClicked.connect(lambda item: self.roll_back_requested.emit(item.data(UID)))
        self.history.currentItemChanged.connect(lambda *_: self._enable())
        self.roll_back.clicked.connect(self._roll_back_selected)
        self.apply.clicked.connect(self.apply_requested)
        self.save.clicked.connect(self.save_requested)
        ev = live.events
        ev.status.connect(lambda text: self.status.setText(text))
        ev.warning.connect(self._show_warning)
        ev.learns.connect(lambda text: (self.learns.setText(text), self.learns.setVisible(bool(text))))
        ev.history.connect(self._rows_changed)
        ev.marked.connect(self._texts)
        ev.saved.connect(self._texts)
        ev.best.connect(self._texts)
        ev.held.connect(self._show_held)
        ev.on.connect(self._enable)
        ev.start_from.connect(self._show_start)
        ev.levels.connect(self._show_levels)
        ev.level.connect(self._show_level)
        self._show_start(live.start_from)
        self._show_levels(live.levels)
        self._show_warning(live.warning)
        self._fill()

    # -- the list holds still under the pointer -------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        kind = event.type()
        if kind in (QEvent.Type.Enter, QEvent.Type.HoverEnter, QEvent.Type.MouseMove):
            self._pointer_inside = True
        elif kind in (QEvent.Type.Leave, QEvent.Type.HoverLeave):
            self._pointer_inside = False
            if self._waiting:
                self._fill()
        return False

    @property
    def holding(self) -> bool:
        """True while new rows wait for the pointer to leave the list."""
        return self._waiting

    def _rows_changed(self, *_) -> None:
        if self._pointer_inside:
            self._waiting = True
            self._texts()  # the marker may move; no row does
            return
        self._fill()

    def _fill(self, *_) -> None:
        """Add new rows at the bottom and drop trimmed ones, keeping the selection (by uid)."""
        self._waiting = False
        rows = {r.uid: r for r in self.live.history}
        bar = self.history.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum()
        self.history.blockSignals(True)
        for uid in [u for u in self._items if u not in rows]:
            self.history.takeItem(self.history.row(self._items.pop(uid)))
        for uid, row in rows.items():
            if uid not in self._items:
                item = QListWidgetItem()
                item.setData(UID, uid)
                self._items[uid] = item
                self.history.addItem(item)
        self.history.blockSignals(False)
        self._texts()
        if at_bottom:
            self.history.scrollToBottom()  # following the newest, unless the user scrolled up

    def _texts(self, *_) -> None:
        best = self.live.best
        for row in self.live.history:
            item = self._items.get(row.uid)
            if item is not None:
                item.setText(self._row_text(row, row.uid in best))
                font = item.font()
                font.setBold(row.uid == self.live.marked)
                item.setFont(font)
        self._enable()

    def _row_text(self, row: HistoryRow, best: bool) -> str:
        marker = "▶ " if row.uid == self.live.marked else "   "
        tags = [t for t, on in (("best", best), ("saved", row.uid in self.live.saved)) if on]
        return marker + row.text() + (f"  ({', '.join(tags)})" if tags else "")

    # ---------------------------------------------------------------------------------------------
    def _show_start(self, key: str) -> None:
        index = self.start.findData(key)
        if index >= 0:
            self.start.setCurrentIndex(index)

    def _show_warning(self, text: str) -> None:
        self.warning.setText(text)
        self.warning.setVisible(bool(text))

    def _show_levels(self, levels: tuple) -> None:
        """The shown slide's levels (none: the choice is hidden, an image in memory is trained as it is)."""
        self.level.blockSignals(True)
        self.level.clear()
        for level, downsample, (w, h) in levels:
            scale = "full resolution" if level == 0 else f"1/{downsample:.3g} resolution"
            self.level.addItem(f"level {level}: {scale}, {w:,} x {h:,} px", level)
        self.level.blockSignals(False)
        for widget in (self.level, self.level_label):
            widget.setVisible(bool(levels))
        self._show_level(self.live.level)

    def _show_level(self, level: int) -> None:
        index = self.level.findData(level)
        if index >= 0:
            self.level.blockSignals(True)
            self.level.setCurrentIndex(index)
            self.level.blockSignals(False)

    def _show_held(self, held: bool) -> None:
        self.pause.blockSignals(True)
        self.pause.setChecked(held)
        self.pause.blockSignals(False)
        self.pause.setText("Resume" if held else "Pause")

    def selected_uid(self) -> int | None:
        item = self.history.currentItem()
        return item.data(UID) if item is not None else None

    def item_of(self, uid: int) -> QListWidgetItem | None:
        return self._items.get(uid)

    def _roll_back_selected(self) -> None:
        uid = self.selected_uid()
        if uid is not None:
            self.roll_back_requested.emit(uid)

    def _enable(self, *_) -> None:
        has = self.live.marked_row is not None
        selected = self.selected_uid()
        self.roll_back.setEnabled(selected is not None and selected != self.live.marked)
        self.apply.setEnabled(has)
        self.save.setEnabled(has)
        self.pause.setEnabled(self.live.on)
        self.start.setEnabled(not self.live.on)

