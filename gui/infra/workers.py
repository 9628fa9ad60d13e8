"""Running work off the GUI thread, and knowing which of those threads are still alive.

Long jobs (segmentation, batch export) run as a ``Task``: a QObject worker moved to its own
QThread, reporting through queued signals, cancelled cooperatively between steps.  The
background model loader is a plain ``threading.Thread`` (``start_thread``).  Both kinds are
kept in one registry so the window can wait for them on close and tests can assert that none
outlives them (a QThread destroyed while running aborts the process).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

log = logging.getLogger("unetseg.workers")
_tasks: set["Task"] = set()
_threads: set[threading.Thread] = set()
_lock = threading.Lock()

# Errors whose ``str()`` is already one sentence meant for the user (core's error types all
# subclass one of these); anything else is a bug and is shown with its type name.
_USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, MemoryError, RuntimeError)


class TaskCancelled(Exception):
    """Raised inside a task function to stop it; the task then reports ``cancelled``."""


def describe_error(exc: BaseException) -> str:
    """The message a person sees for ``exc``: core errors are already one sentence."""
    if isinstance(exc, MemoryError):
        return str(exc) or "Not enough memory."
    text = " ".join(str(exc).split())
    if isinstance(exc, _USER_ERRORS) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Reporter:
    """What a task function gets: progress, partial results, warnings and the cancel flag."""

    def __init__(self, runner: "_Runner", cancel: threading.Event):
        self._runner = runner
        self._cancel = cancel

    def progress(self, done: int, total: int) -> None:
        self._runner.progress.emit(int(done), int(total))

    def item(self, payload: Any) -> None:
        self._runner.item.emit(payload)

    def warn(self, message: str) -> None:
        self._runner.warning.emit(str(message))

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise TaskCancelled()


class _TaskSignals(QObject):
    """What a job reports: emitted by the runner in its thread, re-emitted by Task in the GUI's."""

    progress = Signal(int, int)
    item = Signal(object)
    warning = Signal(str)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()


class _Runner(_TaskSignals):
    """Lives in the worker thread; ``run`` calls the task function there."""

    def __init__(self, fn: Callable[[Reporter], Any], cancel: threading.Event, name: str = "worker", nice: int = 0):
        super().__init__()
        self._fn = fn
        self._cancel = cancel
        self.name = name
        self._nice = nice

    @Slot()
    def run(self) -> None:
        if self._nice:
            from core.training.threads import lower_priority

            lower_priority(self._nice)  # before torch's first parallel step here, so its pool inherits it
        try:
            result = self._fn(Reporter(self, self._cancel))
        except TaskCancelled:
            self.cancelled.emit()
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the GUI
            if isinstance(exc, _USER_ERRORS):
                log.warning("task %s failed: %s", self.name, describe_error(exc))
            else:  # a bug: the traceback goes to the log (gui.dialogs.errors), the message to the user
                log.error("task %s failed", self.name, exc_info=True)
            self.failed.emit(describe_error(exc))
        else:
            if self._cancel.is_set():
                self.cancelled.emit()
            else:
                self.finished.emit(result)
        finally:
            self._fn = None  # drop references to big arrays as soon as possible
            QThread.currentThread().quit()


class Task(_TaskSignals):
    """Handle on a running job, living in the GUI thread; signals arrive there, queued."""

    def __init__(self, fn: Callable[[Reporter], Any], name: str, nice: int = 0):
        super().__init__()
        self.name = name
        self._cancel = threading.Event()
        self._thread: QThread | None = QThread()
        self._thread.setObjectName(name)
        self._runner: _Runner | None = _Runner(fn, self._cancel, name, nice)
        self._runner.moveToThread(self._thread)
        for signal in ("progress", "item", "warning", "finished", "failed", "cancelled"):
            getattr(self._runner, signal).connect(getattr(self, signal))
        self._thread.started.connect(self._runner.run)
        self._thread.finished.connect(self._on_thread_finished)

    def start(self) -> "Task":
        with _lock:
            _tasks.add(self)
        assert self._thread is not None
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.isRunning()

    def wait(self, timeout_ms: int = 10_000) -> bool:
        """Block until the thread ends (then release it); True if it did within the timeout."""
        if self._thread is None:
            return True
        if not self._thread.wait(timeout_ms):
            return False
        self._on_thread_finished()
        return True

    def _on_thread_finished(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.wait()
        self._runner = None
        with _lock:
            _tasks.discard(self)


SEGMENTING_NICE = 5  # segmentation runs yield a core to the window (Linux): brush under 16 ms (bench/stack_gui.py)


def start_task(fn: Callable[[Reporter], Any], name: str = "worker", nice: int = 0) -> Task:
    """Run ``fn(reporter)`` on a new QThread (``nice`` steps less urgent: core.training.threads);
    connect to the returned task's signals."""
    return Task(fn, name, nice).start()


def start_thread(fn: Callable[[], None], name: str) -> threading.Thread:
    """A registered daemon thread (a slow model load must never keep the app from quitting)."""

    def target() -> None:
        try:
            fn()
        finally:
            with _lock:
                _threads.discard(threading.current_thread())

    thread = threading.Thread(target=target, name=name, daemon=True)
    with _lock:
        _threads.add(thread)
    thread.start()
    return thread


def live_threads() -> list[str]:
    """Names of worker threads (QThread tasks and loader threads) still running."""
    with _lock:
        tasks, threads = list(_tasks), list(_threads)
    names = [f"task {t.name}" for t in tasks if t._thread is not None]
    names += [f"thread {t.name}" for t in threads if t.is_alive()]
    return names


def stop_tasks(timeout_ms: int = 10_000) -> bool:
    """Cancel and wait for every QThread task (at exit: Qt aborts the process when a running
    QThread is destroyed).  Loader threads are daemons and never hold up an exit."""
    deadline = time.monotonic() + timeout_ms / 1000
    with _lock:
        tasks = list(_tasks)
    for task in tasks:
        task.cancel()
    return all([task.wait(max(0, int((deadline - time.monotonic()) * 1000))) for task in tasks])


def wait_for_workers(timeout_s: float = 5.0, cancel: bool = True) -> bool:
    """Cancel (optionally) and wait for every registered worker, pumping queued signals."""
    deadline = time.monotonic() + timeout_s
    with _lock:
        tasks, threads = list(_tasks), list(_threads)
    if cancel:
        for task in tasks:
            task.cancel()
    for task in tasks:
        task.wait(max(0, int((deadline - time.monotonic()) * 1000)))
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    app = QCoreApplication.instance()
    if app is not None:
        app.processEvents()
    return not live_threads()
