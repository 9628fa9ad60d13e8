"""GUI test setup: offscreen Qt, per-test settings file, no real dialogs, no leaked threads."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before anything imports Qt

import threading
from pathlib import Path

import pytest

from tests.gui.helpers import MODEL_CLASSES, write_image


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    """Each test gets its own settings file and app-data folder (recovery copies, log), and an
    unreplaced dialog fails instead of blocking."""
    monkeypatch.setenv("UNETSEG_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("UNETSEG_DATA_DIR", str(tmp_path / "appdata"))
    monkeypatch.setenv("UNETSEG_FORBID_DIALOGS", "1")
    yield tmp_path / "settings.ini"


@pytest.fixture(autouse=True)
def no_leaked_threads(qapp):
    """Fail any test that leaves a worker thread (QThread task, loader thread) running."""
    from PySide6.QtCore import QThreadPool

    from gui.infra.workers import live_threads, wait_for_workers

    before = {t.ident for t in threading.enumerate()}
    yield
    finished = wait_for_workers(timeout_s=10, cancel=False)
    pool = QThreadPool.globalInstance()
    pool.waitForDone(2000)
    extra = [t.name for t in threading.enumerate()
             if t.ident not in before and t.is_alive() and not t.daemon]
    assert finished and not live_threads(), f"worker threads still running: {live_threads()}"
    assert pool.activeThreadCount() == 0, "QThreadPool still has active threads"
    assert not extra, f"new non-daemon threads still running: {extra}"


class Dialogs:
    """Records dialog calls and answers them as a test says (monkeypatched into gui.dialogs)."""

    def __init__(self, monkeypatch):
        import gui.dialogs as module

        self.calls: list[tuple[str, tuple]] = []
        self.answers: dict[str, object] = {}
        for name in ("ask_open_paths", "ask_open_folder", "ask_mask_path", "ask_weights_path",
                     "ask_save_path", "ask_export_path", "ask_export_folder", "ask_export_formats",
                     "ask_class_edit", "ask_color", "show_error", "show_info", "confirm",
                     "ask_save_discard_cancel", "ask_overwrite_skip_cancel",
                     "ask_save_before_training", "ask_model_save_path", "ask_save_model",
                     "show_exception", "ask_recovery", "ask_tile_cache_mb", "ask_export_format",
                     "ask_csv_path"):
            monkeypatch.setattr(module, name, self._recorder(name))

    def _recorder(self, name):
        def call(*args):
            self.calls.append((name, args))
            answer = self.answers.get(name)
            return answer(*args) if callable(answer) else answer
        return call

    def of(self, name: str) -> list[tuple]:
        return [args for n, args in self.calls if n == name]

    def errors(self) -> list[str]:
        return [args[2] for args in self.of("show_error")]


@pytest.fixture
def dialogs(monkeypatch) -> Dialogs:
    return Dialogs(monkeypatch)


def new_window(qtbot):
    """A shown 1000x700 main window (tests that need a second one, or a fresh start, call this)."""
    from gui.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1000, 700)
    win.show()
    qtbot.waitExposed(win)
    return win


@pytest.fixture
def window(qtbot, dialogs):
    """A shown main window; closing it at the end discards whatever a test left unsaved."""
    win = new_window(qtbot)
    yield win
    dialogs.answers["ask_save_discard_cancel"] = "discard"
    dialogs.answers.setdefault("ask_save_model", "discard")
    win.close()


@pytest.fixture
def image(tmp_path) -> Path:
    return write_image(tmp_path / "cells.png")


@pytest.fixture
def folder(tmp_path) -> Path:
    d = tmp_path / "images"
    d.mkdir()
    for i in range(4):
        write_image(d / f"img{i}.png", 40 + 8 * i, 50, seed=i)
    return d


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """A small UNet with random weights whose BatchNorm statistics make varied outputs."""
    import torch

    from core.model.checkpoints import save_checkpoint
    from core.model.networks import UNetSmall

    torch.manual_seed(0)
    model = UNetSmall(num_classes=len(MODEL_CLASSES))
    model.train()
    with torch.no_grad():
        model(torch.randn(2, 3, 64, 64) * 3)
    path = tmp_path_factory.mktemp("models") / "tiny.safetensors"
    save_checkpoint(path, model.eval(), MODEL_CLASSES)
    return path
