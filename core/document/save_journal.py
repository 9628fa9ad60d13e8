"""The journal that makes an in-place save of a chunked mask all or nothing, even when killed.

Why: an in-place save writes the changed chunks of every level one by one into the user's store.
A crash or a full disk in between would leave a mask that is partly the old one and partly the
new, with a pyramid and class counts that match neither.  So, as SQLite's journal (rolled forward):

1. ``Journal`` writes the new chunks (compressed) and the new root attributes into
   ``.unetseg-journal.tmp`` inside the store, and levels written whole as ``<k>.unetseg-new``
   arrays beside the old ones; everything is fsynced;
2. ``commit`` renames the folder to ``.unetseg-journal``: from then on the save counts as done;
3. ``finish_interrupted_save`` applies it (chunks, whole levels, attributes), fsyncs the chunk
   files and deletes it.

Opening the store, and the next save, run ``finish_interrupted_save`` first: a committed journal is
applied again (every step can be repeated), an uncommitted one is dropped.  So the mask on disk is
always the state before a save or the one after it, never a mix.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from core.atomic import fsync
from core.document.chunked_labels import _SCRATCH_CODEC, _zarr

JOURNAL = ".unetseg-journal"
PENDING = JOURNAL + ".tmp"
NEW_LEVEL = ".unetseg-new"  # suffix of a level array written whole, renamed over "<k>" when applied
_META = "journal.json"


def new_level_name(k: int) -> str:
    return f"{k}{NEW_LEVEL}"


class Journal:
    """The pending save of one store: ``add`` chunks, then ``commit`` (or ``discard``)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.folder = self.path / PENDING
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir()
        self.chunks: dict[str, list[int]] = {}

    def add(self, level: int, key: tuple[int, int], chunk_size: tuple[int, int], data: np.ndarray) -> None:
        """Record the new content of chunk ``key`` (on a grid of ``chunk_size``) of ``level``."""
        self.chunks[str(level)] = [int(chunk_size[0]), int(chunk_size[1])]
        _write_file(self.folder / f"{level}.{key[0]}.{key[1]}", _SCRATCH_CODEC.encode(data))

    def commit(self, attrs: dict, whole_levels: list[int]) -> None:
        """Make the save durable: after this one rename, opening the store yields the new mask."""
        meta = {"chunks": self.chunks, "whole": [int(k) for k in whole_levels], "attrs": attrs}
        _write_file(self.folder / _META, json.dumps(meta).encode())
        for k in whole_levels:
            _fsync_tree(self.path / new_level_name(k))
        fsync(*self.folder.iterdir(), self.folder)
        os.rename(self.folder, self.path / JOURNAL)
        fsync(self.path)

    def discard(self) -> None:
        """Drop an uncommitted journal (the store keeps its old state)."""
        _drop_pending(self.path)


def finish_interrupted_save(path: Path) -> bool:
    """Apply a committed journal left in store ``path`` and drop an uncommitted one; True when a
    save was finished.  Raises OSError when the store cannot be written."""
    path = Path(path)
    journal = path / JOURNAL
    if not journal.is_dir():
        if (path / PENDING).exists() or any(path.glob(f"*{NEW_LEVEL}")):
            _drop_pending(path)
        return False
    meta = json.loads((journal / _META).read_text())
    for k in meta["whole"]:
        new, old = path / new_level_name(k), path / str(k)
        if new.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.rename(new, old)
    fsync(path)
    group = _zarr().open_group(str(path), mode="r+", zarr_format=2)
    written, arrays = [], {}
    for name in sorted(os.listdir(journal)):
        if name == _META:
            continue
        level, by, bx = (int(v) for v in name.split("."))
        array = arrays.get(level) or arrays.setdefault(level, group[str(level)])
        cy, cx = meta["chunks"][str(level)]
        (h, w), y0, x0 = array.shape, by * cy, bx * cx
        y1, x1 = min(h, y0 + cy), min(w, x0 + cx)
        raw = _SCRATCH_CODEC.decode((journal / name).read_bytes())
        array[y0:y1, x0:x1] = np.frombuffer(raw, np.uint8).reshape(y1 - y0, x1 - x0)
        written.extend(_chunk_files(path / str(level), array, y0, y1, x0, x1))
    fsync(*written, *{p.parent for p in written})
    group.attrs.put(meta["attrs"])
    fsync(path / ".zattrs")
    from core.io.label_store import DONE_DIR

    shutil.rmtree(path / DONE_DIR, ignore_errors=True)  # a LabelStore run record: the mask is complete now
    shutil.rmtree(journal)
    fsync(path)
    return True


def _chunk_files(folder: Path, array, y0: int, y1: int, x0: int, x1: int) -> list[Path]:
    """The files of the zarr v2 chunks that rows y0:y1, columns x0:x1 of ``array`` lie in."""
    fy, fx = (int(c) for c in array.chunks)
    sep = array.metadata.dimension_separator or "."
    return [folder / f"{by}{sep}{bx}" for by in range(y0 // fy, -(-y1 // fy)) for bx in range(x0 // fx, -(-x1 // fx))]


def _drop_pending(path: Path) -> None:
    shutil.rmtree(path / PENDING, ignore_errors=True)
    for leftover in path.glob(f"*{NEW_LEVEL}"):
        shutil.rmtree(leftover, ignore_errors=True)


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _fsync_tree(folder: Path) -> None:
    for dirpath, _dirs, files in os.walk(folder):
        fsync(*(Path(dirpath) / n for n in files), dirpath)
