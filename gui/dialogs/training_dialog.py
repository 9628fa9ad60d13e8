"""Train > Train on Annotated Images…: the settings, a live run (progress, loss/mIoU chart,
log) and what to do with the model it saved.

The run is a gui.infra.workers Task, so it is cancelled and waited for like every other job.
Cancel sets the flag core.training.loop checks before each step, and training keeps the best
checkpoint so far.  Closing the dialog during a run asks first, then stops the run and closes
once the worker has ended: the GUI never blocks waiting for a step to finish.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase, QPalette
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout,
                               QLabel, QLineEdit, QPlainTextEdit, QProgressBar, QPushButton, QSpinBox,
                               QVBoxLayout, QWidget)

from core.classes import ClassInfo
from core.io.channels import check_channels, parse_channels
from gui import dialogs
from gui.infra.icons import icon
from gui.dialogs.training_plot import TrainingPlot
from gui.jobs.training_runner import (FINE_TUNE, NEW_LARGE, NEW_SMALL, TrainingJob, TrainingOutcome, outcome_text,
                                 run_training)
from gui.infra.workers import Task, describe_error, start_task

DEVICES = {"auto": "Automatic", "cpu": "CPU", "cuda": "CUDA (NVIDIA GPU)", "mps": "MPS (Apple GPU)"}
DEFAULTS = {FINE_TUNE: (10, 1e-3), NEW_SMALL: (30, 3e-3), NEW_LARGE: (30, 3e-3)}  # epochs, learning rate
HINTS = {FINE_TUNE: "Starts from the current model's weights: few images and epochs go a long way.",
         NEW_SMALL: "Starts from random weights: needs more annotated images and epochs.",
         NEW_LARGE: "Starts from random weights; slower, but learns harder textures."}
ERROR_STYLE = "color: #c62828;"


@dataclass
class TrainingContext:
    """What the window knows when the dialog opens: the data, the classes, the current model."""

    pairs: list[tuple[Path, Path]]
    missing: int  # listed images left out because they have no saved mask
    folder: Path
    classes: list[ClassInfo]
    output: Path
    model_label: str | None = None
    init: str | None = None  # the current model's weights file or built-in name
    arch: str | None = None
    no_fine_tune_reason: str = "No model is loaded."
    devices: dict[str, tuple[bool, str]] | None = None
    channel_names: list[str] = field(default_factory=list)  # the images' channels; empty: RGB photographs


class TrainingDialog(QDialog):
    use_model_requested = Signal(str)  # the saved weights file to switch to
    run_finished = Signal(object)  # TrainingOutcome: completed, or stopped early
    run_failed = Signal(str)

    def __init__(self, context: TrainingContext, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("training_dialog")
        self.setWindowTitle("Train on Annotated Images")
        self.context = context
        self.task: Task | None = None
        self.job: TrainingJob | None = None
        self.outcome: TrainingOutcome | None = None
        self.error: str | None = None
        self.state = "idle"
        self._close_when_stopped = False
        self._build()
        self.set_mode(FINE_TUNE if context.init else NEW_SMALL)
        self._set_state("idle")
        self.resize(940, 620)

    # -- layout -------------------------------------------------------------------------------
    def _build(self) -> None:
        c = self.context
        root = QVBoxLayout(self)
        header = QLabel(self._summary())
        header.setObjectName("training_summary")
        header.setTextFormat(Qt.TextFormat.RichText)
        header.setWordWrap(True)
        header.setToolTip("\n".join(image.name for image, _ in c.pairs[:40])
                          + (f"\n… and {len(c.pairs) - 40} more" if len(c.pairs) > 40 else ""))
        root.addWidget(header)
        columns = QHBoxLayout()
        root.addLayout(columns, 1)
        left = QVBoxLayout()
        columns.addLayout(left, 0)
        left.addWidget(self._model_box())
        left.addWidget(self._settings_box())
        left.addStretch(1)
        right = QVBoxLayout()
        columns.addLayout(right, 1)
        self.plot = TrainingPlot()
        right.addWidget(self.plot, 3)
        self.log = QPlainTextEdit()
        self.log.setObjectName("training_log")
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.log.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log.setPlaceholderText("Training messages appear here.")
        right.addWidget(self.log, 2)
        self.progress = QProgressBar()
        self.progress.setObjectName("training_progress")
        self.progress.setTextVisible(True)
        root.addWidget(self.progress)
        result = QHBoxLayout()
        self.result_icon = QLabel()
        self.result_icon.setFixedWidth(24)
        self.result_label = QLabel()
        self.result_label.setObjectName("training_result")
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        result.addWidget(self.result_icon, 0, Qt.AlignmentFlag.AlignTop)
        result.addWidget(self.result_label, 1)
        root.addLayout(result)
        root.addLayout(self._buttons())

    def _summary(self) -> str:
        c = self.context
        n = len(c.pairs)
        text = f"<b>{n} annotated image{'s' if n != 1 else ''}</b> in {escape(str(c.folder))}"
        if c.missing:
            text += f" ({c.missing} without a saved mask {'is' if c.missing == 1 else 'are'} left out)"
        names = ", ".join(k.name for k in c.classes[:8]) + (", …" if len(c.classes) > 8 else "")
        return f"{text}.<br>Classes: {escape(names)}."

    def _model_box(self) -> QGroupBox:
        box = QGroupBox("Model")
        layout = QVBoxLayout(box)
        self.mode_combo = QComboBox()
        self.mode_combo.setObjectName("mode_combo")
        label = f"Fine-tune current model ({self.context.model_label})" if self.context.init \
            else "Fine-tune current model"
        self.mode_combo.addItem(icon("school-outline"), label, FINE_TUNE)
        self.mode_combo.addItem(icon("plus-box-outline"), "Train a new small model", NEW_SMALL)
        self.mode_combo.addItem(icon("plus-box-multiple-outline"), "Train a new large model", NEW_LARGE)
        self.mode_combo.setItemData(1, "UNetSmall: fast, good for simple shapes and colours",
                                    Qt.ItemDataRole.ToolTipRole)
        self.mode_combo.setItemData(2, "UNetLarge: slower, learns harder textures; needs more images",
                                    Qt.ItemDataRole.ToolTipRole)
        if not self.context.init:
            self.mode_combo.model().item(0).setEnabled(False)
            self.mode_combo.setItemData(0, self.context.no_fine_tune_reason, Qt.ItemDataRole.ToolTipRole)
        else:
            self.mode_combo.setItemData(0, f"Start from {self.context.init}", Qt.ItemDataRole.ToolTipRole)
        self.mode_combo.currentIndexChanged.connect(self._on_mode)
        layout.addWidget(self.mode_combo)
        self.mode_hint = QLabel()
        self.mode_hint.setObjectName("mode_hint")
        self.mode_hint.setWordWrap(True)
        self.mode_hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        layout.addWidget(self.mode_hint)
        return box

    def _settings_box(self) -> QGroupBox:
        box = QGroupBox("Settings")
        form = QFormLayout(box)
        self.epochs_spin = self._spin("epochs_spin", 1, 10_000, 1, "",
                                      "Passes over the training images; the best epoch is kept")
        self.patch_spin = self._spin("patch_spin", 16, 1024, 8, " px",
                                     "Side of the square random crops the model learns from (a multiple of 8)")
        self.batch_spin = self._spin("batch_spin", 1, 512, 1, "", "Crops per training step")
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setObjectName("lr_spin")
        self.lr_spin.setDecimals(5)
        self.lr_spin.setRange(1e-5, 1.0)
        self.lr_spin.setSingleStep(1e-4)
        self.lr_spin.setToolTip("Peak learning rate (AdamW, warm-up then cosine decay)")
        self.steps_spin = self._spin("steps_spin", 0, 1_000_000, 10, "",
                                     "Training steps per epoch; Automatic covers the training pixels once")
        self.steps_spin.setSpecialValueText("Automatic")
        self.augment_check = QCheckBox("Vary scale, contrast and colour balance")
        self.augment_check.setObjectName("augment_check")
        self.augment_check.setToolTip("Draw each crop at a random scale (0.7-1.4x) with random contrast, brightness, "
                                      "colour balance, gamma, blur and noise; hue is never changed.\n"
                                      "Helps when new images will differ in size or exposure from the annotated ones.")
        self.device_combo = QComboBox()
        self.device_combo.setObjectName("device_combo")
        for key, label in DEVICES.items():
            self.device_combo.addItem(label, key)
            ok, why = (self.context.devices or {}).get(key, (True, ""))
            if not ok:
                self.device_combo.model().item(self.device_combo.count() - 1).setEnabled(False)
                self.device_combo.setItemData(self.device_combo.count() - 1, why, Qt.ItemDataRole.ToolTipRole)
        self.channels_edit = QLineEdit()
        self.channels_edit.setObjectName("channels_edit")
        names = self.context.channel_names
        listed = ", ".join(f"{i} {n}" for i, n in enumerate(names))
        self.channels_edit.setPlaceholderText("all" + (f" ({', '.join(names)})" if names else ""))
        self.channels_edit.setToolTip("The channels the model sees, in that order, e.g. 0,2 (empty: all of "
                                      f"them); the model gets one input per channel.\n{listed}")
        self.output_edit = QLineEdit(str(self.context.output))
        self.output_edit.setObjectName("output_edit")
        self.output_edit.setToolTip("The trained model (.safetensors); the best epoch is written here")
        self.output_edit.setMinimumWidth(240)
        self.browse_button = QPushButton("Browse…")
        self.browse_button.setObjectName("browse_button")
        self.browse_button.clicked.connect(self._browse)
        output = QHBoxLayout()
        output.addWidget(self.output_edit, 1)
        output.addWidget(self.browse_button)
        self.patch_spin.setValue(128)
        self.batch_spin.setValue(16)
        form.addRow("&Epochs:", self.epochs_spin)
        form.addRow("&Patch size:", self.patch_spin)
        form.addRow("&Batch size:", self.batch_spin)
        form.addRow("&Learning rate:", self.lr_spin)
        form.addRow("&Device:", self.device_combo)
        if self.context.channel_names:  # RGB photographs keep today's three inputs: no choice to make
            form.addRow("C&hannels:", self.channels_edit)
        output_label = QLabel("&Save model to:")
        output_label.setBuddy(self.output_edit)
        form.addRow(output_label, output)
        advanced = QLabel("Advanced")
        advanced.setStyleSheet("font-weight: 600; margin-top: 6px;")
        form.addRow(advanced)
        form.addRow("S&teps per epoch:", self.steps_spin)
        form.addRow("Augmentation:", self.augment_check)
        self._inputs = [self.mode_combo, self.epochs_spin, self.patch_spin, self.batch_spin, self.lr_spin,
                        self.steps_spin, self.augment_check, self.device_combo, self.channels_edit, self.output_edit,
                        self.browse_button]
        return box

    @staticmethod
    def _spin(name: str, lo: int, hi: int, step: int, suffix: str, tip: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setObjectName(name)
        spin.setRange(lo, hi)
        spin.setSingleStep(step)
        spin.setSuffix(suffix)
        spin.setToolTip(tip)
        return spin

    def _button(self, name: str, text: str, slot, icon_name: str | None = None, tip: str = "") -> QPushButton:
        """A push button that never turns default (Enter must not start or cancel a run)."""
        button = QPushButton(icon(icon_name), text) if icon_name else QPushButton(text)
        button.setObjectName(name)
        button.setToolTip(tip)
        button.setAutoDefault(False)
        button.clicked.connect(slot)
        return button

    def _buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.use_button = self._button("use_model_button", "Use This Model", self.use_model, "check",
                                       "Switch the app to the model this run saved")
        self.save_copy_button = self._button("save_copy_button", "Save Copy As…", self.save_copy)
        self.start_button = self._button("start_button", "Start Training", self.start, "play")
        self.cancel_button = self._button("cancel_training_button", "Cancel Training", self.cancel, "stop",
                                          "Stop after the current step; the best model so far is kept")
        self.close_button = self._button("close_button", "Close", self.reject)
        row.addWidget(self.use_button)
        row.addWidget(self.save_copy_button)
        row.addStretch(1)
        for button in (self.start_button, self.cancel_button, self.close_button):
            row.addWidget(button)
        return row

    # -- settings -----------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self.mode_combo.currentData()

    @property
    def running(self) -> bool:
        return self.state in ("running", "stopping")

    def set_mode(self, mode: str) -> None:
        index = self.mode_combo.findData(mode)
        if index >= 0:
            self.mode_combo.setCurrentIndex(index)
            self._on_mode()

    def _on_mode(self, _index: int = 0) -> None:
        self.mode_hint.setText(HINTS[self.mode])
        epochs, lr = DEFAULTS[self.mode]
        self.epochs_spin.setValue(epochs)
        self.lr_spin.setValue(lr)

    def _browse(self) -> None:
        path = dialogs.ask_model_save_path(self, Path(self.output_edit.text() or self.context.output))
        if path is not None:
            self.output_edit.setText(str(path))

    def make_job(self) -> TrainingJob | None:
        """The job the settings describe, or None after saying what is wrong with them."""
        text = self.output_edit.text().strip()
        if not text:
            return self._refuse("Choose where to save the model.")
        out = Path(text).expanduser()
        if out.suffix.lower() != ".safetensors":
            out = out.with_name(out.name + ".safetensors")
        if not out.parent.is_dir():
            return self._refuse(f"{out.parent}: the folder to save the model in does not exist.")
        if out.is_dir():
            return self._refuse(f"{out}: is a folder; name a .safetensors file.")
        if out.exists() and not dialogs.confirm(self, "Replace Model?", f"{out.name} already exists in "
                                                f"{out.parent}. Replace it with the model this run trains?",
                                                "Replace"):
            return None
        self.output_edit.setText(str(out))
        try:
            channels = parse_channels(self.channels_edit.text())
            if channels is not None:
                check_channels(channels, len(self.context.channel_names), self.context.pairs[0][0])
        except ValueError as exc:
            return self._refuse(str(exc).replace("--channels", "Channels"))
        patch = max(16, self.patch_spin.value() // 8 * 8)
        self.patch_spin.setValue(patch)
        fine = self.mode == FINE_TUNE
        return TrainingJob(list(self.context.pairs), list(self.context.classes), out,
                           arch=(self.context.arch or NEW_SMALL) if fine else self.mode,
                           init=self.context.init if fine else None, epochs=self.epochs_spin.value(),
                           patch=patch, batch=self.batch_spin.value(), lr=self.lr_spin.value(),
                           device=self.device_combo.currentData(),
                           steps_per_epoch=self.steps_spin.value() or None, augment=self.augment_check.isChecked(),
                           source=str(self.context.folder), channels=channels)

    def _refuse(self, message: str) -> None:
        self._show_result(message, "alert-circle-outline", error=True)
        return None

    # -- the run ------------------------------------------------------------------------------
    def start(self) -> bool:
        if self.running:
            return False
        job = self.make_job()
        if job is None:
            return False
        self.job, self.outcome, self.error = job, None, None
        self.plot.clear(job.epochs)
        self.log.clear()
        self.progress.setRange(0, 0)  # busy until the first step: staging, loading, building
        self.progress.setFormat("Preparing the images and the model…")
        self._show_result("", None)
        self._set_state("running")
        self.task = task = start_task(lambda rep: run_training(job, rep), "training")
        task.progress.connect(self._on_progress)
        task.item.connect(self._on_item)
        task.finished.connect(self._on_finished)
        task.cancelled.connect(self._on_cancelled)
        task.failed.connect(self._on_failed)
        return True

    def cancel(self) -> None:
        """Stop after the current step; training keeps the best checkpoint so far."""
        if self.task is None or self.state != "running":
            return
        self.task.cancel()
        self.progress.setFormat("Stopping after the current step…")
        self._set_state("stopping")

    def shutdown(self, timeout_ms: int = 60_000) -> None:
        """Stop a run and wait for its thread (the app is quitting)."""
        if self.task is not None:
            self.task.cancel()
            self.task.wait(timeout_ms)

    def _on_progress(self, done: int, total: int) -> None:
        epochs = self.job.epochs if self.job else 1
        steps = max(1, total // max(1, epochs))
        epoch = min(epochs, (max(done, 1) - 1) // steps + 1)
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        if self.state == "running":
            self.progress.setFormat(f"Epoch {epoch} of {epochs} · step {done} of {total}  (%p%)")

    def _on_item(self, payload: object) -> None:
        kind, value = payload  # type: ignore[misc]
        if kind == "log":
            self.log.appendPlainText(value)
        elif kind == "epoch":
            self.plot.add_epoch(value.epoch, value.train_loss, value.val_miou)
            mark = "  ★ best, saved" if value.improved else ""
            self.log.appendPlainText(f"epoch {value.epoch}/{value.epochs}  loss {value.train_loss:.4f}  "
                                     f"mIoU {value.val_miou:.4f}  {value.seconds:.1f} s{mark}")
        elif kind == "outcome":
            self.outcome = value

    def _on_finished(self, outcome: TrainingOutcome) -> None:
        self.outcome = outcome
        self._end()

    def _on_cancelled(self) -> None:
        self._end()

    def _on_failed(self, message: str) -> None:
        self.error = message
        self._end()

    def _end(self) -> None:
        self.task = None
        outcome = self.outcome
        self.progress.setRange(0, 1)
        if self.error is not None:
            self.progress.setValue(0)
            self.progress.setFormat("Training failed")
            self.log.appendPlainText(f"error: {self.error}")
            self._show_result(f"Training failed: {self.error}", "alert-circle-outline", error=True)
            self._set_state("failed")
            self.run_failed.emit(self.error)
        else:
            if outcome is None:  # stopped before training began
                outcome = self.outcome = TrainingOutcome(None, 0.0, 0, 0, self.job.epochs if self.job else 0, True)
            self.progress.setValue(1 if not outcome.stopped_early else 0)
            self.progress.setFormat("Stopped early" if outcome.stopped_early else "Done")
            text = outcome_text(outcome) + (f"\n{outcome.note}" if outcome.note else "")  # what was kept, why
            self._show_result(text, "stop-circle-outline" if outcome.stopped_early else "check-circle-outline")
            self._set_state("stopped" if outcome.stopped_early else "finished")
            self.run_finished.emit(outcome)
        if self._close_when_stopped:
            super().reject()

    # -- the result ---------------------------------------------------------------------------
    @property
    def saved_model(self) -> Path | None:
        outcome = self.outcome
        return outcome.path if outcome is not None and outcome.path is not None and outcome.path.is_file() \
            else None

    def use_model(self) -> None:
        if self.saved_model is not None and not self.running:
            self.use_model_requested.emit(str(self.saved_model))
            self.accept()

    def save_copy(self) -> None:
        from core.training.stage import copy_model

        source = self.saved_model
        if source is None:
            return
        path = dialogs.ask_model_save_path(self, source, "Save Copy of Model As")
        if path is None:
            return
        try:
            copy_model(source, path)
        except OSError as exc:
            dialogs.show_error(self, "Could Not Save Model", describe_error(exc))
            return
        self.log.appendPlainText(f"saved a copy: {path}")

    def _show_result(self, text: str, icon_name: str | None, error: bool = False) -> None:
        self.result_label.setText(text)
        self.result_label.setStyleSheet(ERROR_STYLE if error else "")
        if icon_name:
            self.result_icon.setPixmap(icon(icon_name, "#c62828" if error else None).pixmap(20, 20))
        else:
            self.result_icon.clear()

    def _set_state(self, state: str) -> None:
        self.state = state
        running = self.running
        for widget in self._inputs:
            widget.setEnabled(not running)
        self.start_button.setEnabled(not running)
        self.start_button.setText("Train Again" if state in ("finished", "stopped", "failed") else "Start Training")
        self.cancel_button.setEnabled(state == "running")
        has_model = not running and self.saved_model is not None
        self.use_button.setEnabled(has_model)
        self.save_copy_button.setEnabled(has_model)
        self.use_button.setDefault(has_model)
        self.start_button.setDefault(not running and not has_model)

    # -- closing ------------------------------------------------------------------------------
    def reject(self) -> None:
        """Close; during a run, ask first, then stop it and close once the worker has ended."""
        if self.state == "running":
            if not dialogs.confirm(self, "Stop Training?", "Training is still running. Stop it and close "
                                   "this window? The best model saved so far is kept.", "Stop Training"):
                return
            self.cancel()
        if self.running:
            self._close_when_stopped = True
            self.close_button.setEnabled(False)
            return
        super().reject()
