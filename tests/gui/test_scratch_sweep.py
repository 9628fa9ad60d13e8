"""The app's start sweeps the temporary folders of slide masks whose process was killed (issue 25,
finding 25), and keeps those of a window that still runs."""

from __future__ import annotations

import subprocess
import sys
import tempfile

from core.document.owners import owner_tag
from core.document.scratch_folders import PREFIX


def test_the_app_start_removes_what_killed_runs_left_in_the_temporary_folder(qtbot, tmp_path, monkeypatch):
    from gui.main_window import MainWindow

    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(30)
    dead = folder / f"{PREFIX}{owner_tag(gone.pid)}-k1lled00"
    dead.mkdir()
    (dead / "scratch.bin").write_bytes(b"chunks of a killed session")
    running = folder / f"{PREFIX}{owner_tag()}-running0"  # another window's, still open
    running.mkdir()
    window = MainWindow()
    qtbot.addWidget(window)
    assert not dead.exists() and running.is_dir()
    window.close()
