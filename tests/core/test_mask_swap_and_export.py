"""A slide's mask is never lost by an export or by a copy-save killed between its steps.

Export writes a copy and leaves the mask on its own file (issue 20, finding 1); a copy-save's two
renames are recoverable, so after a kill at any step the path holds the complete old mask or the
complete new one, never a mix and never nothing (finding 8)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.atomic import WriteError
from core.classes import default_classes
from core.document import chunked_save
from core.document.chunked_labels import ChunkedLabels
from core.document.recovery import RecoveryStore

ROOT = Path(__file__).resolve().parents[2]
H, W, CHUNK = 300, 260, 64


def pattern(seed: int) -> np.ndarray:
    """A mask with labels in every chunk (so a chunk lost to background shows)."""
    y, x = np.mgrid[:H, :W]
    return ((x // (7 + seed) + y // (11 + seed) + seed) % 4).astype(np.uint8)


def saved(path: Path, content: np.ndarray) -> None:
    c = ChunkedLabels.create(H, W, chunk=CHUNK)
    c[:, :] = content
    c.save_to(path)
    c.close()


def assert_mask(path: Path, ref: np.ndarray) -> None:
    """Every level of the mask at ``path`` is ``ref`` (the pyramid included: never a mix)."""
    with ChunkedLabels.open(path) as c:
        for k in range(c.num_levels):
            h, w = c.level_shape(k)
            np.testing.assert_array_equal(c.read_level(k, 0, h, 0, w), ref[::2**k, ::2**k])


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --------------------------------------------------------------------------- finding 1: export


@pytest.mark.parametrize("name, fmt", [("copy.ome.zarr", "ome-zarr"), ("copy.ome.tif", "ome-tiff")])
def test_an_export_changes_nothing_and_deleting_it_loses_nothing(tmp_path, name, fmt):
    base = tmp_path / "slide_mask.ome.zarr"
    saved(base, pattern(0))
    ref = pattern(0)
    labels = ChunkedLabels.open(base, cache_bytes=3 * CHUNK * CHUNK)  # a tiny cache: edits spill to scratch
    labels[10:290, 20:250] = 5
    ref[10:290, 20:250] = 5
    labels[100:140, 30:60] = 0
    ref[100:140, 30:60] = 0
    changed, spilled = labels.changed_chunks(), labels.scratch_bytes
    assert spilled > 0
    copy = tmp_path / name
    labels.export_to(copy, fmt, classes=default_classes(6))
    assert_mask(copy, ref)
    assert labels.path == base and labels.format == "ome-zarr"  # the base did not move
    assert labels.changed_chunks() == changed and labels.scratch_bytes >= spilled
    shutil.rmtree(copy) if copy.is_dir() else copy.unlink()
    np.testing.assert_array_equal(labels[:, :], ref)
    snap = RecoveryStore(tmp_path / "appdata").save(tmp_path / "slide.tif", labels, default_classes(6), 3)
    assert snap.base_path == base.resolve() and snap.chunks == changed  # autosave records against the base
    labels.save_to(base)
    labels.close()
    assert_mask(base, ref)  # every label, not background where the cache had let go


def test_an_export_onto_the_masks_own_file_is_refused_with_the_file_named(tmp_path):
    base = tmp_path / "slide_mask.ome.zarr"
    saved(base, pattern(0))
    with ChunkedLabels.open(base) as labels:
        labels[0:10, 0:10] = 3
        with pytest.raises(WriteError, match="slide_mask.ome.zarr.*being edited"):
            labels.export_to(base)
        assert labels.changed_chunks() == [(0, 0)]
    assert_mask(base, pattern(0))


# --------------------------------------------------------------------------- finding 8: the swap


def test_a_failed_second_rename_puts_the_old_mask_back(tmp_path, monkeypatch):
    target = tmp_path / "slide_mask.ome.zarr"
    saved(target, pattern(0))
    real = os.rename

    def rename(src, dst):
        if Path(dst) == target and ".tmp-" in Path(src).name:  # the new copy into place
            raise OSError(errno.EIO, "I/O error")
        real(src, dst)

    monkeypatch.setattr(chunked_save.os, "rename", rename)
    labels = ChunkedLabels.create(H, W, chunk=CHUNK)
    labels[:, :] = pattern(1)
    with pytest.raises(WriteError, match="slide_mask.ome.zarr"):
        labels.save_to(target)
    monkeypatch.undo()
    assert hidden(tmp_path) == []  # nothing left under a hidden name
    assert_mask(target, pattern(0))
    np.testing.assert_array_equal(labels[:, :], pattern(1))  # the document still holds every edit
    labels.save_to(target)
    assert_mask(target, pattern(1))


KILLED_SAVE = r"""
import os, shutil, sys
from pathlib import Path
import numpy as np
from core.document import chunked_save
from core.document.chunked_labels import ChunkedLabels

target, step, seed = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
H, W = int(sys.argv[4]), int(sys.argv[5])
y, x = np.mgrid[:H, :W]
labels = ChunkedLabels.create(H, W, chunk=64)
labels[:, :] = ((x // (7 + seed) + y // (11 + seed) + seed) % 4).astype(np.uint8)
real_rename, real_rmtree = os.rename, shutil.rmtree
renames = []

def rename(src, dst):
    ours = Path(dst).parent == target.parent
    if ours and step == "before-renames":
        os._exit(9)
    real_rename(src, dst)
    renames.append(dst)
    if ours and step == "between-renames" and len(renames) == 1:
        os._exit(9)
    if ours and step == "after-renames" and Path(dst) == target:
        os._exit(9)

def rmtree(path, *args, **kwargs):
    if step == "deleting-old" and ".old-" in Path(path).name:
        real_rmtree(Path(path) / "0", ignore_errors=True)  # half deleted
        os._exit(9)
    return real_rmtree(path, *args, **kwargs)

def progress(done, total):
    if step == "writing" and done == total // 2:
        os._exit(9)

chunked_save.os.rename = rename
chunked_save.shutil.rmtree = rmtree
labels.save_to(target, progress=progress)
os._exit(0)
"""


@pytest.mark.parametrize("step, survivor", [("writing", "old"), ("before-renames", "old"),
                                            ("between-renames", "old"), ("after-renames", "new"),
                                            ("deleting-old", "new")])
def test_a_save_killed_at_any_step_leaves_the_old_or_the_new_mask(tmp_path, step, survivor):
    target = tmp_path / "slide_mask.ome.zarr"
    saved(target, pattern(0))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(target), step, "1", str(H), str(W)],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr  # killed where the step says
    assert_mask(target, pattern(0) if survivor == "old" else pattern(1))  # the next open repairs first
    assert hidden(tmp_path) == []  # and leaves no hidden copy behind


def test_a_leftover_of_a_running_save_is_not_touched(tmp_path):
    """Another window may be between its renames right now: its names carry its live pid."""
    target = tmp_path / "slide_mask.ome.zarr"
    saved(target, pattern(0))
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        aside = tmp_path / f".{target.name}.old-{live.pid}-0123abcd"
        os.rename(target, aside)
        assert chunked_save.recover_swap(target) is None and aside.is_dir() and not target.exists()
    finally:
        live.kill()
        live.wait(30)
    assert chunked_save.recover_swap(target) == target  # its process is gone: the old mask goes back
    assert_mask(target, pattern(0))
