"""core must stay importable where Qt is absent (a CLI server, a training box)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BLOCK_QT = r"""
import importlib, pkgutil, sys
class NoQt:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'shiboken6', 'qtawesome', 'superqt', 'qtpy', 'PyQt5', 'PyQt6', 'gui'):
            raise ImportError(f'core imported {name}')
sys.meta_path.insert(0, NoQt())
import core
names = [m.name for m in pkgutil.walk_packages(core.__path__, 'core.') if m.name != 'core.__main__']
for name in names:
    importlib.import_module(name)
from core.cli.main import main
try:
    main(['--help'])
except SystemExit as exit:
    assert exit.code == 0
try:
    import PySide6  # the blocker itself must work, or this test proves nothing
except ImportError:
    print('blocked-ok')
""" + "\n"


def test_every_core_module_imports_with_qt_made_unimportable():
    out = subprocess.run([sys.executable, "-c", BLOCK_QT], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "blocked-ok" in out.stdout
