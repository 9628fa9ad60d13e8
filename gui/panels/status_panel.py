"""The status bar: messages, pointer readout, zoom, model/device, job progress.

Messages, the model's status and the running job come from the app state's events."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar, QToolButton

from gui.state.app_state import AppState, Job, ModelStatus


class StatusPanel:
    """Owns the widgets it adds to ``bar``; pointer and zoom come from the canvas's signals."""

    def __init__(self, bar: QStatusBar, cancel: QAction, state: AppState):
        self.bar = bar
        self.pointer = QLabel()
        self.pointer.setObjectName("pointer_label")
        self.pointer.setMinimumWidth(260)
        self.zoom = QLabel()
        self.zoom.setObjectName("zoom_label")
        self.zoom.setMinimumWidth(52)
        self.zoom.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.model = QLabel("No model")
        self.model.setObjectName("model_label")
        self.progress = QProgressBar()
        self.progress.setObjectName("progress_bar")
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(True)
        self.progress.setVisible(False)
        self.cancel = QToolButton()
        self.cancel.setObjectName("cancel_button")
        self.cancel.setDefaultAction(cancel)
        self.cancel.setAutoRaise(True)
        self.cancel.setVisible(False)
        for widget in (self.pointer, self.progress, self.cancel, self.zoom, self.model):
            bar.addPermanentWidget(widget)
        state.message.connect(self.message)
        state.events.model.connect(self._on_model)
        state.events.job.connect(self._on_job)
        self._on_model(state.model)

    def _on_model(self, status: ModelStatus) -> None:
        self.set_model(status.text, status.detail)

    def _on_job(self, job: Job | None) -> None:
        if job is None:
            self.hide_progress()
        else:
            self.show_progress(job.done, job.total, job.text)

    def message(self, text: str, timeout_ms: int = 0) -> None:
        self.bar.showMessage(text, timeout_ms)

    def set_pointer(self, text: str) -> None:
        self.pointer.setText(text)

    def set_zoom(self, scale: float) -> None:
        self.zoom.setText(f"{scale * 100:.0f}%" if scale >= 0.1 else f"{scale * 100:.1f}%")

    def set_model(self, text: str, tooltip: str = "") -> None:
        self.model.setText(text)
        self.model.setToolTip(tooltip)

    def show_progress(self, done: int, total: int, text: str) -> None:
        self.progress.setMaximum(max(1, total))
        self.progress.setValue(min(done, max(1, total)))
        self.progress.setFormat(text)
        self.progress.setVisible(True)
        self.cancel.setVisible(True)

    def hide_progress(self) -> None:
        self.progress.setVisible(False)
        self.cancel.setVisible(False)
