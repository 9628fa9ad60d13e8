"""Unexpected errors become a message and a log entry, and the app keeps running.

``install`` replaces ``sys.excepthook`` (PySide calls it for an exception escaping a slot or
an event handler) and ``threading.excepthook``, and routes Qt's own warnings through
``qInstallMessageHandler``; everything lands in ``unetseg.log`` (rotating, timestamped) in
the app-data folder.  The user sees one dialog per error, through ``gui.dialogs`` so tests
can replace it, with a "Copy details" button for the traceback.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Qt, QtMsgType, Signal, qInstallMessageHandler
from PySide6.QtWidgets import (QApplication, QDialog, QDialogButtonBox, QLabel, QPlainTextEdit,
                               QPushButton, QVBoxLayout, QWidget)

from gui import dialogs

LOGGER = "unetseg"
LOG_FILE = "unetseg.log"
LOG_BYTES = 1_000_000
LOG_BACKUPS = 3
REPEAT_DIALOGS, REPEAT_WINDOW_S = 3, 60  # at most this many error dialogs a minute
_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s"
_QT_LEVELS = {QtMsgType.QtDebugMsg: logging.DEBUG, QtMsgType.QtInfoMsg: logging.INFO,
              QtMsgType.QtWarningMsg: logging.WARNING, QtMsgType.QtCriticalMsg: logging.ERROR,
              QtMsgType.QtFatalMsg: logging.CRITICAL}

log = logging.getLogger(LOGGER)


def setup_logging(folder: Path) -> Path | None:
    """Send the ``unetseg`` loggers to ``folder/unetseg.log``; None if it cannot be written
    (then Python's default, stderr, stays in place)."""
    path = Path(folder) / LOG_FILE
    for handler in list(log.handlers):
        if isinstance(handler, RotatingFileHandler):
            if Path(handler.baseFilename) == path.absolute():
                return path
            log.removeHandler(handler)
            handler.close()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS,
                                      encoding="utf-8")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter(_FORMAT))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # the file is the record; the terminal stays quiet
    return path


def stop_logging() -> None:
    """Close the log file and hand the loggers back to Python's default (stderr)."""
    for handler in list(log.handlers):
        if isinstance(handler, RotatingFileHandler):
            log.removeHandler(handler)
            handler.close()
    log.propagate = True


def log_path() -> Path | None:
    for handler in log.handlers:
        if isinstance(handler, RotatingFileHandler):
            return Path(handler.baseFilename)
    return None


class ErrorHandler(QObject):
    """The installed hooks; ``uninstall`` puts the previous ones back (tests)."""

    _show_later = Signal(str, str)  # summary, details: shown from the GUI thread's event loop

    def __init__(self, parent: QWidget | Callable[[], QWidget | None] | None = None):
        super().__init__()
        self._parent = parent
        self._showing = False
        self._recent: list[float] = []  # when the last dialogs were shown
        self._previous: tuple | None = None
        self._show_later.connect(self._show, Qt.ConnectionType.QueuedConnection)

    def install(self) -> "ErrorHandler":
        self._previous = (sys.excepthook, threading.excepthook,
                          qInstallMessageHandler(self._qt_message))
        sys.excepthook = self.handle
        threading.excepthook = self._thread_hook
        return self

    def uninstall(self) -> None:
        if self._previous is None:
            return
        excepthook, thread_hook, qt_handler = self._previous
        self._previous = None
        if sys.excepthook == self.handle:
            sys.excepthook = excepthook
        if threading.excepthook == self._thread_hook:
            threading.excepthook = thread_hook
        qInstallMessageHandler(qt_handler)
        stop_logging()

    # -- exceptions ---------------------------------------------------------------------------
    def handle(self, exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        log.error("unexpected error\n%s", details.rstrip())
        summary = f"{exc_type.__name__}: {exc}" if str(exc) else exc_type.__name__
        if QApplication.instance() is None:
            sys.stderr.write(details)
        else:  # queued: not from inside the failing slot, and never from a worker thread
            self._show_later.emit(summary, details)

    def _thread_hook(self, args) -> None:
        if args.exc_type is SystemExit:
            return
        self.handle(args.exc_type, args.exc_value, args.exc_traceback)

    def _show(self, summary: str, details: str) -> None:
        if self._showing:  # an error while the dialog is up: logged, not stacked
            return
        now = time.monotonic()
        self._recent = [t for t in self._recent if now - t < REPEAT_WINDOW_S]
        if len(self._recent) >= REPEAT_DIALOGS:  # e.g. an error in every repaint: log only
            log.warning("error dialog not shown again (%d in %d s)", len(self._recent), REPEAT_WINDOW_S)
            return
        self._recent.append(now)
        self._showing = True
        try:
            where = log_path()
            text = (f"Something went wrong: {summary}\n\nUNetSeg keeps running, and unsaved masks "
                    "still have their recovery copies; if something looks wrong, save your work "
                    "and restart."
                    + (f"\n\nThe details are also in {where}." if where else ""))
            dialogs.show_exception(self._parent_widget(), "Unexpected Error", text, details)
        except Exception:  # noqa: BLE001 - never let the error path raise again
            log.exception("could not show the error dialog")
        finally:
            self._showing = False

    def _parent_widget(self) -> QWidget | None:
        parent = self._parent
        return parent() if callable(parent) and not isinstance(parent, QWidget) else parent

    # -- Qt's messages ------------------------------------------------------------------------
    @staticmethod
    def _qt_message(mode, context, message: str) -> None:
        level = _QT_LEVELS.get(mode, logging.WARNING)
        where = f" ({context.file}:{context.line})" if getattr(context, "file", None) else ""
        logging.getLogger(f"{LOGGER}.qt").log(level, "%s%s", message, where)
        if level >= logging.CRITICAL:
            sys.stderr.write(f"Qt: {message}\n")


def install(parent: QWidget | Callable[[], QWidget | None] | None = None,
            data_dir: Path | None = None) -> ErrorHandler:
    """Log to ``data_dir`` (default: the app-data folder) and install the hooks."""
    from gui.infra.settings import app_data_dir

    setup_logging(data_dir if data_dir is not None else app_data_dir())
    return ErrorHandler(parent).install()


class ErrorDialog(QDialog):
    """The message, the traceback (read-only), "Copy details" and "Close"."""

    def __init__(self, title: str, text: str, details: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setObjectName("error_dialog")
        self.details = details
        label = QLabel(text)
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box = QPlainTextEdit(details)
        box.setReadOnly(True)
        box.setObjectName("error_details")
        box.setMinimumHeight(160)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = QPushButton("Copy details")
        self.copy_button.setObjectName("copy_details")
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)  # stays open
        self.copy_button.clicked.connect(self.copy_details)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(label)
        layout.addWidget(box)
        layout.addWidget(buttons)
        self.resize(560, 360)

    def copy_details(self) -> None:
        QApplication.clipboard().setText(self.details)
        self.copy_button.setText("Copied")
