"""The in-window notice a new user gets when a built-in demo model meets their own image.

Why: the built-in models know four synthetic shapes; on a photograph they paint "stars" over a
face, and a user who is not told why concludes the app is broken.  The notice says what the
model knows and offers the three ways forward as signals (the window decides what each does).
It is a bar inside the window, not a dialog: it blocks nothing and can be closed or ignored.
When to show it is gui.controllers.first_run's decision.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QVBoxLayout, QWidget

TITLE = "This is a demo model"


class FirstRunNotice(QFrame):
    """A dismissable bar: what the demo model knows, and three buttons to go on from there."""

    load_weights_requested = Signal()
    train_requested = Signal()
    samples_requested = Signal()
    dismissed = Signal(bool)  # True: "Don't show again" was ticked

    def __init__(self, model_name: str = "The built-in model", knows: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("first_run_notice")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("#first_run_notice { background: #fff7d6; border: 1px solid #e0c060; "
                           "border-radius: 4px; } #first_run_notice QLabel { color: #3a3000; }")
        self.title = QLabel()
        self.title.setObjectName("notice_text")
        self.title.setWordWrap(True)
        self.title.setTextFormat(Qt.TextFormat.RichText)
        explain = QLabel("It was trained only on generated scenes, so on your own images it finds shapes "
                         "that are not there. To segment your images:")
        explain.setWordWrap(True)
        self.load_button = QPushButton("Load Your Own Weights…")
        self.load_button.setObjectName("notice_load_weights")
        self.load_button.setToolTip("Use a model trained for your kind of images (.safetensors or .pt)")
        self.train_button = QPushButton("Correct a Few Masks, Then Train…")
        self.train_button.setObjectName("notice_train")
        self.train_button.setToolTip("Fix the masks of a few images with the brush and fill tools, save them, "
                                     "then Train > Train on Annotated Images fine-tunes the model on them")
        self.samples_button = QPushButton("Open the Samples")
        self.samples_button.setObjectName("notice_samples")
        self.samples_button.setToolTip("See what the demo model does on the scenes it was made for")
        self.never = QCheckBox("Don't show again")
        self.never.setObjectName("notice_dont_show")
        close = QToolButton()
        close.setObjectName("notice_close")
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Close this notice")
        self.close_button = close

        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        buttons = QHBoxLayout()
        for b in (self.load_button, self.train_button, self.samples_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.never)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 8, 8)
        layout.addLayout(top)
        layout.addWidget(explain)
        layout.addLayout(buttons)

        self.set_model(model_name, knows)
        self.load_button.clicked.connect(lambda: self._go(self.load_weights_requested))
        self.train_button.clicked.connect(lambda: self._go(self.train_requested))
        self.samples_button.clicked.connect(lambda: self._go(self.samples_requested))
        close.clicked.connect(self.dismiss)

    def set_model(self, model_name: str, knows: str) -> None:
        self.title.setText(f"<b>{TITLE}.</b> {escape(model_name)} {escape(knows)}")

    def offer(self, model_name: str, knows: str) -> None:
        """Say what ``model_name`` knows and show the notice (unticked "Don't show again")."""
        self.set_model(model_name, knows)
        self.never.setChecked(False)
        self.show()

    def _go(self, signal) -> None:
        signal.emit()
        self.dismiss()

    def dismiss(self) -> None:
        """Hide, and report whether the user wants it never again."""
        self.hide()
        self.dismissed.emit(self.never.isChecked())
