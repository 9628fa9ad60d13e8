"""Startup: the window appears fast, without torch; `unetseg open` works end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.gui.helpers import write_image

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
from PySide6.QtWidgets import QApplication
app = QApplication([])
from gui.main_window import MainWindow
window = MainWindow()
window.show()
app.processEvents()
seconds = time.perf_counter() - t0
loaded = sorted(m for m in ("torch", "core.segment.inference", "core.model.checkpoints", "core.model.optimize",
                            "core.training.loop") if m in sys.modules)
print(json.dumps({"seconds": seconds, "heavy": loaded}))
"""


def env(tmp_path):
    e = dict(os.environ, QT_QPA_PLATFORM="offscreen", UNETSEG_SETTINGS=str(tmp_path / "s.ini"))
    e.pop("UNETSEG_FORBID_DIALOGS", None)
    return e


def test_window_shows_without_importing_torch(tmp_path):
    """The time it takes is measured by bench/gui_bench.py, not asserted here."""
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env(tmp_path),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []


def test_unetseg_open_smoke(tmp_path):
    image = write_image(tmp_path / "cells.png")
    out = subprocess.run([sys.executable, "-m", "unetseg", "open", str(image), "--startup-timing",
                          "--quit-after", "0.5"], cwd=ROOT, env=env(tmp_path), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("window shown")][0]
    assert "torch imported: False" in line
    assert float(line.split()[2]) > 0


def test_unetseg_alone_opens_the_window(tmp_path):
    code = ("import sys; from unetseg.__main__ import main; "
            "sys.argv = ['unetseg']; import gui.app as a; real = a.run_app; "
            "a.run_app = lambda args: real(args + ['--quit-after', '0.2']); sys.exit(main([]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env(tmp_path),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_no_gui_module_imports_torch_at_import_time(tmp_path):
    code = ("import importlib, json, pkgutil, sys, gui\n"
            "names = [m.name for m in pkgutil.walk_packages(gui.__path__, 'gui.')]\n"
            "for n in names: importlib.import_module(n)\n"
            "heavy = [m for m in ('torch', 'core.segment.inference', 'core.model.checkpoints', 'core.model.optimize',"
            " 'core.training.loop') if m in sys.modules]\n"
            "print(json.dumps({'modules': len(names), 'heavy': heavy}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env(tmp_path),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["modules"] >= 20 and result["heavy"] == []


def test_many_void_qt_calls_do_not_exhaust_none(tmp_path):
    """PySide6 6.12.0 on CPython < 3.12 drops a reference to None per void call (excluded in
    pyproject.toml): the interpreter must survive a long painting session."""
    code = ("from PySide6.QtWidgets import QApplication, QWidget\n"
            "app = QApplication([])\n"
            "w = QWidget()\n"
            "for _ in range(100_000): w.update()\n"
            "print('survived')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env(tmp_path),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "survived" in out.stdout, out.stderr[-2000:]


OPEN_PROBE = r"""
import json, sys, time
import numpy as np, tifffile
from PySide6.QtWidgets import QApplication
path = sys.argv[1]
tifffile.imwrite(path, np.random.default_rng(0).integers(0, 4000, (6, 2, 96, 128), dtype=np.uint16),
                 metadata={"axes": "ZCYX"}, ome=True)
app = QApplication([])
from gui.main_window import MainWindow
window = MainWindow()
window.show()
window.open_images([path])
t0 = time.perf_counter()
while window.current is None or window.current.stack is None or time.perf_counter() - t0 < 1.0:
    app.processEvents()
    if time.perf_counter() - t0 > 30:
        break
window.plane_ui.go((3,))
for _ in range(50):
    app.processEvents()
loaded = sorted(m for m in ("torch", "core.segment.inference", "core.model.checkpoints", "core.training.loop")
                if m in sys.modules)
print(json.dumps({"stack": window.current is not None and window.current.stack is not None, "heavy": loaded}))
"""


def test_opening_and_browsing_a_stack_does_not_import_torch(tmp_path):
    """Torch takes seconds to import: opening an image, a stack or a slide must not wait for it
    (the Live Training panel's level list once pulled it in through core.training.loop)."""
    out = subprocess.run([sys.executable, "-c", OPEN_PROBE, str(tmp_path / "stack.ome.tif")], cwd=ROOT,
                         env=env(tmp_path), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["stack"] and result["heavy"] == []
