"""A second window (or process) opening a slide mask while another saves it in place leaves that
save's journal alone: only its owner, or anyone once the owner is dead, may finish or drop it
(issue 25, finding 14)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core.document import chunked_save
from core.document.chunked_labels import ChunkedLabels
from core.io.label_store import LabelStore, StoreError

ROOT = Path(__file__).resolve().parents[2]

# Saves in place and stops at a point the test names, until the test writes "go"
_PAUSED_SAVE = r"""
import sys, time
from pathlib import Path
from core.document import chunked_save, save_journal
from core.document.chunked_labels import ChunkedLabels

path, where, flags = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])

def pause():
    (flags / "paused").write_text("")
    while not (flags / "go").exists():
        time.sleep(0.02)

if where == "before commit":  # the journal's last file is written, then the rename commits it
    real_write = save_journal._write_file
    def write_file(p, data):
        if p.name == "journal.json":
            pause()
        return real_write(p, data)
    save_journal._write_file = write_file
else:  # committed, not applied yet
    real_finish = chunked_save.finish_interrupted_save
    def finish(p, own=None):
        if own is not None:
            pause()
        return real_finish(p, own)
    chunked_save.finish_interrupted_save = finish

c = ChunkedLabels.open(path)
c[100:140, 100:140] = 7
c[300:310, 0:300] = 2
c.save_to(path)
print("saved")
"""


def _old_store(path: Path) -> np.ndarray:
    """What an interrupted `unetseg segment` leaves: level 0 only, so a save writes the other levels whole."""
    old = np.random.default_rng(0).integers(0, 3, (600, 600)).astype(np.uint8)
    store = LabelStore.create(path, 600, 600, (256, 256), {"k": 1})
    for block in store.blocks():
        y0, y1, x0, x1 = store.region(block)
        store.write_block(block, old[y0:y1, x0:x1])
    return old


def _wait_for(flag: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while not flag.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.02)


def _journal_names(store: Path) -> list[str]:
    return sorted(p.name for p in store.iterdir() if "unetseg-journal" in p.name or "unetseg-new" in p.name)


@pytest.mark.parametrize("where", ["before commit", "committed"])
def test_opening_a_store_another_process_is_saving_leaves_its_save_alone(tmp_path, monkeypatch, where):
    store, flags = tmp_path / "slide_mask.ome.zarr", tmp_path / "flags"
    flags.mkdir()
    old = _old_store(store)
    new = old.copy()
    new[100:140, 100:140] = 7
    new[300:310, 0:300] = 2
    proc = subprocess.Popen([sys.executable, "-c", _PAUSED_SAVE, str(store), where, str(flags)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(flags / "paused", proc)
        pending = _journal_names(store)
        assert pending  # the other process's journal (and the levels it writes whole)
        monkeypatch.setattr(chunked_save, "BUSY_WAIT", 0.3, raising=False)
        if where == "before commit":  # not committed: this window sees the old mask, and deletes nothing
            with ChunkedLabels.open(store) as second:
                np.testing.assert_array_equal(second[:, :], old)
        else:  # committed: applying it here too would race the owner; one sentence instead
            with pytest.raises(StoreError, match=rf"slide_mask.ome.zarr: another UNetSeg window \(process "
                                                 rf"{proc.pid}\) is saving this mask right now; open it again"):
                ChunkedLabels.open(store)
        assert _journal_names(store) == pending
    finally:
        (flags / "go").write_text("")
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "saved" in out, err  # the owner's save went through
    with ChunkedLabels.open(store) as again:
        np.testing.assert_array_equal(again[:, :], new)
        np.testing.assert_array_equal(again.read_level(1, 0, 300, 0, 300), new[::2, ::2])
    assert _journal_names(store) == []
