"""Qt's own check: after use_utf8_locale it no longer warns about a C locale (as in the frozen app)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import os, sys
from unetseg.startup_checks import use_utf8_locale
if sys.argv[1] == "fix":
    use_utf8_locale(os.environ, frozen=True)
from PySide6.QtCore import QCoreApplication
app = QCoreApplication([])
"""


def qt_stderr(mode: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LC_") and k != "LANG"}
    # PYTHONCOERCECLOCALE=0: a plain interpreter would coerce C to C.UTF-8 itself; a frozen one does not
    env.update(LC_ALL="C", PYTHONCOERCECLOCALE="0", QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_a_c_locale_warns_without_the_fix_and_not_with_it():
    assert "Detected locale" in qt_stderr("plain")
    assert "Detected locale" not in qt_stderr("fix")
