"""Opening and saving a chunked mask's file: OME-Zarr in place (changed chunks only), a full OME-Zarr
copy, or OME-TIFF.  The store layer: it knows files, layouts, the journal and the swap, and nothing
of edits, caches or scratch; the document (core.document.chunked_labels) describes what to write
(``SaveJob``: its levels, a reader of one chunk) and rebinds itself to what ``save_store`` returns.

Why three paths: re-saving the mask a slide was opened from must cost what was edited, not the
slide (a 100k x 100k mask is 40,000 chunks); a new file is a streamed copy of the stored chunks
only (never-written chunks stay absent, zarr's fill value stands for them; a store in another
layout, such as zarr v3, is copied whole, and saved in place it is rewritten that way); OME-TIFF
cannot be updated in place, so it is streamed whole through ``core.io.label_store.export_ome_tiff``.

Every path is safe against a crash or a full disk: an in-place save goes through a journal
(``core.document.save_journal``: the old mask or the new one, never a mix); a copy is built in a
hidden folder beside the target and swapped in by rename; the TIFF is written to a temporary file
and renamed.  Failures raise WriteError naming the target, and the previous file stays usable.

The copy's swap is two renames (the old store aside under a recorded name, then the new one into
place); ``recover_swap`` finds what a killed save left and puts the old store back (or finishes
the swap), so the path always holds one complete mask.  It runs before every save and open.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from core.atomic import WriteError, describe_os_error, short_error
from core.document.mask_files import (Key, new_level_array, open_tiff_levels, open_zarr_levels, stored_chunk_keys,
                                      write_empty_store, zarr_module, zarr_v2)
from core.document.owners import process_alive
from core.document.save_journal import Journal, SaveInProgress, finish_interrupted_save
from core.io.label_store import StoreError, export_ome_tiff, ome_label_attrs

SAVE_FORMATS = ("ome-zarr", "ome-tiff")
Progress = Callable[[int, int], None] | None
ASIDE, NEW = "old", "tmp"  # a copy-save's hidden names: .<name>.old-<pid>-<hex>, .<name>.tmp-<pid>-<hex>
BUSY_WAIT = 5.0  # seconds an open waits for another window to finish applying its save


@dataclass
class LevelState:
    """One pyramid level as a save sees it."""

    shape: tuple[int, int]
    chunks: tuple[int, int]
    base: object | None  # the array the level is read from in its file (None: none)
    changed: list[Key]  # chunks changed since that file was written
    held: set[Key]  # chunks held outside the file (scratch, cache): they may differ from the fill

    @property
    def grid(self) -> tuple[int, int]:
        return -(-self.shape[0] // self.chunks[0]), -(-self.shape[1] // self.chunks[1])

    def region(self, key: Key) -> tuple[int, int, int, int]:
        (by, bx), (cy, cx) = key, self.chunks
        return by * cy, min(self.shape[0], (by + 1) * cy), bx * cx, min(self.shape[1], (bx + 1) * cx)

    def every_key(self) -> list[Key]:
        gy, gx = self.grid
        return [(by, bx) for by in range(gy) for bx in range(gx)]

    def stored_keys(self) -> set[Key]:
        """Chunks that may hold a value other than the fill: stored in the file or held elsewhere."""
        keys = set(self.held) | set(self.changed)
        if self.base is not None:
            stored = stored_chunk_keys(self.base, self.chunks)
            keys |= set(self.every_key()) if stored is None else stored  # unknown layout: every chunk
        return keys


@dataclass
class SaveJob:
    """What a save needs of the mask; ``chunk`` and ``region`` keep the document's memory bounded."""

    levels: list[LevelState]
    chunk: Callable[[int, Key], np.ndarray]  # (level, key) -> that chunk as the document holds it now
    region: Callable[[int, int, int, int, int], np.ndarray]  # (y0, y1, x0, x1, level) -> pixels
    attrs: dict  # the document's "unetseg" attributes (exact class counts)
    fill: int  # what unstored chunks hold
    classes: Sequence
    progress: Progress = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.levels[0].shape


@dataclass
class Opened:
    """A mask file opened lazily: its level arrays, format, root attributes and closers."""

    arrays: list
    fmt: str
    attrs: dict
    closers: list


def open_store(path: str | os.PathLike) -> Opened:
    """Open a saved mask after repairing what a killed save left (the swap, the journal).

    Raises StoreError naming the file when it is missing, unreadable, or being saved by another
    running window that does not finish within BUSY_WAIT seconds."""
    path = Path(path)
    recover_swap(path)  # a save killed between its renames: the old store goes back first
    if not path.exists():
        raise StoreError(f"{path}: the mask does not exist.")
    if not path.is_dir():
        arrays, closers = open_tiff_levels(path)
        return Opened(arrays, "ome-tiff", {}, closers)
    deadline = time.monotonic() + BUSY_WAIT
    while True:
        try:
            finish_interrupted_save(path)
            break
        except SaveInProgress as exc:
            if time.monotonic() >= deadline:
                raise StoreError(f"{exc}; open it again when that save is done.") from None
            time.sleep(0.05)
        except Exception as exc:  # noqa: BLE001 - a read-only folder, a damaged journal: one sentence
            raise StoreError(f"{path}: a save of this mask was interrupted and cannot be finished here "
                             f"({short_error(exc)}); open it where it can be written.") from None
    arrays, attrs = open_zarr_levels(path)
    return Opened(arrays, "ome-zarr", attrs, [])


def save_store(path: Path, fmt: str, job: SaveJob, in_place: bool, reopen: bool = True) -> Opened | None:
    """Write the mask ``job`` describes to ``path`` as ``fmt``: in place when ``in_place`` (``path``
    is the OME-Zarr the mask was read from) and the store is in our layout, else as a new file.
    Returns the written file opened (None unless ``reopen``); raises WriteError naming ``path``."""
    if fmt not in SAVE_FORMATS:
        raise ValueError(f"a chunked mask saves as {' or '.join(SAVE_FORMATS)}, not {fmt!r}")
    try:
        recover_swap(path)
        if fmt == "ome-tiff":
            _save_tiff(path, job)
            if not reopen:
                return None
            arrays, closers = open_tiff_levels(path)
            return Opened(arrays, "ome-tiff", {}, closers)
        if in_place and zarr_v2(job.levels[0].base):
            _save_in_place(path, job)
            group = zarr_module().open_group(str(path), mode="r", zarr_format=2)
            return Opened([group[str(k)] for k in range(len(job.levels))], "ome-zarr", dict(group.attrs), [])
        _save_copy(path, job)
        if not reopen:
            return None
        arrays, attrs = open_zarr_levels(path)
        return Opened(arrays, "ome-zarr", attrs, [])
    except WriteError:
        raise
    except SaveInProgress as exc:
        raise WriteError(errno.EBUSY, f"cannot save {path}: {str(exc).split(': ', 1)[-1]}; "
                                      "save again when that save is done") from None
    except OSError as exc:
        raise WriteError(exc.errno or errno.EIO, f"cannot write {path}: {describe_os_error(exc)}") from None


def _save_in_place(path: Path, job: SaveJob) -> None:
    """Write the changed chunks of every level into the store the mask was opened from, through a
    journal (``core.document.save_journal``): a kill or a full disk leaves the old mask or the new."""
    finish_interrupted_save(path)  # an earlier save that failed after its commit: finished first
    group = zarr_module().open_group(str(path), mode="r+", zarr_format=2)
    whole, todo = [], []
    for k, lv in enumerate(job.levels):
        name = str(k)
        if name in group and tuple(group[name].shape) == lv.shape and lv.base is not None:
            todo.append(sorted(lv.changed))
        else:  # a level the file lacked (built at open): written whole beside the old one
            whole.append(k)
            todo.append(lv.every_key())
    total, done = sum(map(len, todo)), 0
    journal = Journal(path)
    try:
        try:
            for k, (lv, keys) in enumerate(zip(job.levels, todo)):
                array = new_level_array(group, journal.new_level_name(k), lv.shape, lv.chunks, job.fill) \
                    if k in whole else None
                for key in keys:
                    chunk = job.chunk(k, key)
                    if array is None:
                        journal.add(k, key, lv.chunks, chunk)
                    else:
                        y0, y1, x0, x1 = lv.region(key)
                        array[y0:y1, x0:x1] = chunk
                    done += 1
                    if job.progress:
                        job.progress(done, total)
            attrs = dict(group.attrs)
            attrs.update(ome_label_attrs(len(job.levels), job.classes))
            old = attrs.get("unetseg") or {}
            attrs["unetseg"] = {**{k: v for k, v in old.items() if k not in ("class_counts", "run")}, **job.attrs}
            journal.commit(attrs, whole)
        except BaseException:
            journal.discard()
            raise
        finish_interrupted_save(path, journal)  # on failure the committed journal stays: opening the store finishes it
    finally:
        journal.release()


def _save_copy(path: Path, job: SaveJob) -> None:
    """A new OME-Zarr store built beside ``path`` and renamed over it, holding only stored chunks."""
    if path.exists() and not (path.is_dir() and any((path / m).exists() for m in (".zgroup", ".zattrs", "zarr.json"))):
        raise WriteError(errno.EEXIST, f"cannot write {path}: something that is not an OME-Zarr store has that name")
    tmp, old = _swap_name(path, NEW), None
    try:
        arrays = write_empty_store(tmp, *job.shape, job.levels[0].chunks, job.classes, dict(job.attrs), job.fill)
        plan = [(k, sorted(lv.stored_keys())) for k, lv in enumerate(job.levels)]
        total, done = sum(len(keys) for _, keys in plan), 0
        for k, keys in plan:
            lv = job.levels[k]
            for key in keys:
                y0, y1, x0, x1 = lv.region(key)
                arrays[k][y0:y1, x0:x1] = job.chunk(k, key)
                done += 1
                if job.progress:
                    job.progress(done, total)
        if path.exists():
            old = _swap_name(path, ASIDE)
            os.rename(path, old)
        os.rename(tmp, path)
    except BaseException as exc:
        _undo_swap(path, tmp, old)
        if isinstance(exc, OSError):  # named by the target, not the hidden copy
            raise WriteError(exc.errno or errno.EIO, f"cannot write {path}: {describe_os_error(exc)}") from None
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _swap_name(path: Path, tag: str) -> Path:
    """A hidden name beside ``path`` that ``recover_swap`` recognises, with the writer's pid."""
    return path.with_name(f".{path.name}.{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _undo_swap(path: Path, tmp: Path, old: Path | None) -> None:
    """A copy-save failed: drop the new copy and put the old store back if it was moved aside."""
    if old is not None and not path.exists():
        try:
            os.rename(old, path)
        except OSError:
            pass  # left under its recorded name: recover_swap puts it back at the next save or open
    shutil.rmtree(tmp, ignore_errors=True)


def recover_swap(path: str | os.PathLike) -> Path | None:
    """Repair what a copy-save killed between its steps left beside ``path``; returns the store
    put back at ``path`` (None when there was nothing to put back).

    A store set aside (``.<name>.old-<pid>-…``) goes back to ``path`` when ``path`` is missing
    (killed between the two renames) and is deleted when ``path`` holds the new store (killed
    after them: the new one was complete before it was renamed).  An unfinished new copy
    (``.<name>.tmp-<pid>-…``) is deleted.  Names left by a process that still runs (another window
    saving now) are not touched."""
    path = Path(path)
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return None
    olds, news = [], []
    for entry in entries:
        tag = _swap_tag(path, entry)
        if tag is not None:
            (olds if tag == ASIDE else news).append(entry)
    restored = None
    if olds and not path.exists():
        newest = max(olds, key=_mtime)
        try:
            os.rename(newest, path)
        except OSError:
            return None  # kept under its recorded name; the next save or open tries again
        olds.remove(newest)
        restored = path
    for leftover in olds + news:
        shutil.rmtree(leftover, ignore_errors=True)
    return restored


def _swap_tag(path: Path, entry: Path) -> str | None:
    """ASIDE or NEW when ``entry`` is a copy-save's hidden name for ``path`` from a process that is
    not running (older versions wrote no pid: ``.<name>.old-<hex>``)."""
    for tag in (ASIDE, NEW):
        prefix = f".{path.name}.{tag}-"
        if not entry.name.startswith(prefix):
            continue
        fields = entry.name[len(prefix):].split("-")
        if len(fields) == 2 and fields[0].isdigit():
            pid = int(fields[0])
            if pid != os.getpid() and process_alive(pid):
                return None
        elif len(fields) != 1:
            return None
        return tag
    return None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _save_tiff(path: Path, job: SaveJob) -> None:
    """A tiled pyramidal OME-TIFF streamed band by band (export_ome_tiff reads through ``region``)."""

    class _View:  # what export_ome_tiff needs of a LabelStore
        levels = [(w, h) for h, w in (lv.shape for lv in job.levels)]
        height, width = job.shape

        def read(self, y0, y1, x0, x1, level=0):
            return job.region(y0, y1, x0, x1, level)

    _View.path = path
    export_ome_tiff(_View(), path, job.progress)
