"""A chunked mask's temporary folder: made only when a chunk is spilled, removed on close and at exit,
and swept at the next start when its process was killed (issue 25, findings 15 and 25)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from core.document.chunked_labels import ChunkedLabels
from core.document.scratch_folders import PREFIX, sweep

ROOT = Path(__file__).resolve().parents[2]

# A process that spills chunks of a mask (so it has a scratch folder), says where, and waits
_SPILLING = r"""
import sys, tempfile
from core.document.chunked_labels import ChunkedLabels
c = ChunkedLabels.create(256, 256, chunk=64, cache_bytes=64 * 64)
for i in range(4):
    c[64 * i:64 * i + 64, 0:64] = i + 1  # one chunk cached: every write spills the one before
print(c._tmp, flush=True)
if sys.argv[1] == "wait":
    sys.stdin.readline()
"""


@pytest.fixture
def temp_dir(tmp_path, monkeypatch):
    """A temporary directory of this test's own, for this process and its children."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("TMPDIR", str(folder))
    return folder


def _ours(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(PREFIX))


def test_masks_that_never_spill_leave_nothing_in_the_temporary_directory(tmp_path, temp_dir):
    c = ChunkedLabels.create(500, 700, chunk=128)
    c[10:300, 20:600] = 3
    c.save_to(tmp_path / "m.ome.zarr")
    opened = ChunkedLabels.open(tmp_path / "m.ome.zarr")
    assert opened[150, 300] == 3
    never_closed = ChunkedLabels.create(100_000, 100_000)
    never_closed[5, 5] = 1
    assert _ours(temp_dir) == []  # before: one folder per mask, made at once
    c.close()
    del opened, never_closed
    gc.collect()
    assert _ours(temp_dir) == []


def test_a_spilled_mask_has_a_folder_named_by_its_process_until_close(temp_dir):
    c = ChunkedLabels.create(256, 256, chunk=64, cache_bytes=64 * 64)
    ref = np.zeros((256, 256), np.uint8)
    for i in range(4):
        c[64 * i:64 * i + 64, 0:64] = ref[64 * i:64 * i + 64, 0:64] = i + 1
    [name] = _ours(temp_dir)
    assert name.startswith(f"{PREFIX}{os.getpid()}.") and (temp_dir / name / "scratch.bin").is_file()
    assert sweep(temp_dir) == [] and _ours(temp_dir) == [name]  # this process runs: kept
    np.testing.assert_array_equal(c[:, :], ref)
    c.close()
    assert _ours(temp_dir) == []


def test_a_process_that_exits_without_closing_takes_its_folder_along(temp_dir):
    out = subprocess.run([sys.executable, "-c", _SPILLING, "exit"], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()).parent == temp_dir and _ours(temp_dir) == []


def test_the_folder_of_a_killed_process_is_swept_at_the_next_start(temp_dir):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    killed = subprocess.Popen([sys.executable, "-c", _SPILLING, "wait"], cwd=ROOT, env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    folder = Path(killed.stdout.readline().strip())
    assert folder.parent == temp_dir and folder.is_dir()
    assert sweep(temp_dir) == [] and folder.is_dir()  # its owner still runs: left alone
    killed.kill()  # kill -9: no clean-up
    killed.communicate(timeout=30)
    assert folder.is_dir()  # what every kill of the app used to leave for good
    legacy_old, legacy_new, legacy_full = (temp_dir / f"{PREFIX}{n}" for n in ("abcd1234", "efgh5678", "ijkl9012"))
    for legacy in (legacy_old, legacy_new, legacy_full):  # an older version's names: no owner in them
        legacy.mkdir()
    (legacy_full / "scratch.bin").write_bytes(b"x")
    day_ago = time.time() - 2 * 24 * 3600
    for legacy in (legacy_old, legacy_full):
        os.utime(legacy, (day_ago, day_ago))
    # the next start: a process making its first scratch folder sweeps (the app sweeps when it starts)
    nxt = subprocess.run([sys.executable, "-c", _SPILLING, "exit"], cwd=ROOT, capture_output=True, text=True,
                         env=env, timeout=60)
    assert nxt.returncode == 0, nxt.stderr
    assert not folder.exists()
    assert _ours(temp_dir) == sorted([legacy_new.name, legacy_full.name])  # recent or not empty: kept
