"""The private temporary folders of chunked masks: made when first needed, gone with their owner.

Why: a chunked mask spills unsaved chunks into a folder of the temporary directory.  Made for
every mask at once, they piled up: 53 empty ones after one test run, and one per kill of the app
(issue 25).  So a folder is made only when a mask first spills (most never do), is removed by
``close``, by garbage collection and at interpreter exit, and its name carries its owner
(``unetseg-mask-<pid>.<start>-<random>``, core.document.owners) so that ``sweep`` removes what a
killed process left, and nothing of a process that still runs.  The app sweeps at start, and
every process sweeps once when it makes its first folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from core.document.owners import owner_tag, parse_tag, tag_alive

PREFIX = "unetseg-mask-"
LEGACY_AGE = 24 * 3600  # an empty folder of an older version (no owner in its name) goes after a day

_swept = False
_sweep_lock = threading.Lock()


class ScratchFolder:
    """One mask's folder: ``path`` is None until ``make``; ``remove`` may be called any number of
    times, from a weakref finalizer too (it holds no reference to the mask)."""

    def __init__(self):
        self.path: Path | None = None

    def make(self) -> Path:
        """The folder, made now if it does not exist yet (raises OSError)."""
        if self.path is None:
            _sweep_once()
            self.path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{owner_tag()}-"))
        return self.path

    def remove(self) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)


def sweep(folder: str | os.PathLike | None = None) -> list[Path]:
    """Remove the scratch folders in ``folder`` (the temporary directory) whose owner process is
    gone, and empty ones of older versions (no owner in the name) untouched for a day; returns
    what was removed.  Folders of running processes, this one included, are kept."""
    global _swept
    _swept = True
    root = Path(folder) if folder is not None else Path(tempfile.gettempdir())
    removed = []
    try:
        entries = [e for e in os.scandir(root) if e.name.startswith(PREFIX) and e.is_dir(follow_symlinks=False)]
    except OSError:
        return removed
    for entry in entries:
        if _abandoned(entry):
            shutil.rmtree(entry.path, ignore_errors=True)
            if not os.path.exists(entry.path):
                removed.append(Path(entry.path))
    return removed


def _abandoned(entry: os.DirEntry) -> bool:
    rest = entry.name[len(PREFIX):]
    tag, sep, _ = rest.partition("-")
    if sep and parse_tag(tag) is not None:
        return not tag_alive(tag)
    try:  # an older version's "unetseg-mask-<random>": its owner is unknown
        return not os.listdir(entry.path) and time.time() - entry.stat().st_mtime > LEGACY_AGE
    except OSError:
        return False


def _sweep_once() -> None:
    with _sweep_lock:
        if not _swept:
            sweep()
