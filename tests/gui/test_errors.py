"""Unexpected errors: a dialog with the traceback, a log entry, and an app that keeps working."""

from __future__ import annotations

import logging
import re
import threading

import pytest
from PySide6.QtCore import QTimer, qWarning
from PySide6.QtWidgets import QApplication

from gui.dialogs import errors
from tests.gui.helpers import drag, write_image

pytestmark = pytest.mark.qt_no_exception_capture  # the hook under test handles them


@pytest.fixture
def hook(window, tmp_path):
    handler = errors.install(window, data_dir=tmp_path / "appdata")
    yield handler
    handler.uninstall()


def log_text(tmp_path) -> str:
    for h in errors.log.handlers:
        h.flush()
    return (tmp_path / "appdata" / errors.LOG_FILE).read_text(encoding="utf-8")


def test_an_error_in_a_slot_becomes_a_dialog_and_a_log_entry(qtbot, window, dialogs, hook, tmp_path):
    def boom():
        raise ZeroDivisionError("boom in a slot")

    QTimer.singleShot(0, boom)
    qtbot.waitUntil(lambda: bool(dialogs.of("show_exception")), timeout=5000)
    [(parent, title, text, details)] = dialogs.of("show_exception")
    assert parent is window and title == "Unexpected Error"
    assert "ZeroDivisionError: boom in a slot" in text and "unetseg.log" in text
    assert details.startswith("Traceback") and "in boom" in details
    logged = log_text(tmp_path)
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ERROR unetseg ", logged, re.M)
    assert "Traceback" in logged and "boom in a slot" in logged
    image = write_image(tmp_path / "after.png")  # the app still works
    assert window.open_images([image]) == 1
    drag(qtbot, window, [(10, 10), (30, 20)])
    assert window.mask.any() and window.document.dirty


def test_an_error_in_a_plain_thread_reaches_the_user(qtbot, window, dialogs, hook, tmp_path):
    def crash():
        raise KeyError("lost in a thread")

    thread = threading.Thread(target=crash, name="helper")
    thread.start()
    thread.join(5)
    qtbot.waitUntil(lambda: bool(dialogs.of("show_exception")), timeout=5000)
    assert "KeyError: 'lost in a thread'" in dialogs.of("show_exception")[0][2]
    assert "[helper]" in log_text(tmp_path)


def test_an_error_while_showing_the_error_is_logged_not_looped(qtbot, window, dialogs, hook, tmp_path):
    shown = []

    def broken_dialog(*args):
        shown.append(args)
        raise RuntimeError("the dialog itself failed")

    dialogs.answers["show_exception"] = broken_dialog
    QTimer.singleShot(0, lambda: 1 / 0)
    qtbot.waitUntil(lambda: "could not show the error dialog" in log_text(tmp_path), timeout=5000)
    qtbot.wait(20)
    assert len(shown) == 1 and "the dialog itself failed" in log_text(tmp_path)
    QTimer.singleShot(0, lambda: [][1])  # the next error is shown again
    qtbot.waitUntil(lambda: len(shown) == 2, timeout=5000)
    assert "IndexError" in shown[1][2]


def test_qt_warnings_and_worker_tracebacks_go_to_the_log(qtbot, window, dialogs, hook, tmp_path):
    from gui.infra.workers import start_task

    qWarning("a Qt warning for the log")

    def bug(rep):
        return {}["missing key"]

    task = start_task(bug, "buggy")
    with qtbot.waitSignal(task.failed, timeout=5000) as blocker:
        pass
    assert blocker.args == ["KeyError: 'missing key'"]
    logged = log_text(tmp_path)
    assert "WARNING unetseg.qt" in logged and "a Qt warning for the log" in logged
    assert "task buggy failed" in logged and "Traceback" in logged


def test_the_log_rotates(tmp_path, monkeypatch):
    monkeypatch.setattr(errors, "LOG_BYTES", 2000)
    path = errors.setup_logging(tmp_path)
    try:
        for i in range(100):
            logging.getLogger("unetseg.test").info("line %d %s", i, "x" * 50)
    finally:
        errors.stop_logging()
    assert path.exists() and (tmp_path / "unetseg.log.1").exists()
    assert not (tmp_path / "unetseg.log.4").exists()  # three old files at most


def test_copy_details_copies_the_traceback_and_keeps_the_dialog_open(qtbot):
    dialog = errors.ErrorDialog("Unexpected Error", "Something went wrong", "Traceback (most recent...)\nX")
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.copy_button.click()
    assert QApplication.clipboard().text() == "Traceback (most recent...)\nX"
    assert dialog.isVisible() and dialog.copy_button.text() == "Copied"


def test_the_real_error_dialog_copies_and_closes(qtbot, monkeypatch):
    from PySide6.QtCore import QTimer

    from gui import dialogs as real

    monkeypatch.delenv("UNETSEG_FORBID_DIALOGS")
    seen = []

    def use_it():
        dialog = QApplication.activeModalWidget()
        seen.append(type(dialog).__name__)
        if isinstance(dialog, errors.ErrorDialog):
            dialog.copy_button.click()
        dialog.close()  # Close, whatever it was: never leave exec() waiting

    QTimer.singleShot(0, use_it)
    real.show_exception(None, "Unexpected Error", "text", "the details")
    assert seen == ["ErrorDialog"] and QApplication.clipboard().text() == "the details"


def test_an_error_that_keeps_happening_is_not_a_dialog_storm(qtbot, window, dialogs, hook, tmp_path):
    for i in range(6):
        QTimer.singleShot(0, lambda i=i: {}[f"again {i}"])
    qtbot.waitUntil(lambda: log_text(tmp_path).count("KeyError: 'again") == 6, timeout=5000)
    qtbot.wait(20)
    assert len(dialogs.of("show_exception")) == errors.REPEAT_DIALOGS
    assert "error dialog not shown again" in log_text(tmp_path)
