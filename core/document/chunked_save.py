"""Saving a ChunkedLabels: OME-Zarr in place (changed chunks only), a full OME-Zarr copy, or OME-TIFF.

Why three paths: re-saving the mask a slide was opened from must cost what was edited, not the
slide (a 100k x 100k mask is 40,000 chunks); a new file is a streamed copy of the stored chunks
only (never-written chunks stay absent, zarr's fill value is 0; a store in another layout, such as
zarr v3, is copied whole, and saved in place it is rewritten that way); OME-TIFF cannot be updated in
place, so it is streamed whole through ``core.io.label_store.export_ome_tiff``.

Every path is safe against a crash or a full disk: an in-place save goes through a journal
(``core.document.save_journal``: the old mask or the new one, never a mix); a copy is built in a hidden folder beside the target and swapped in by
rename; the TIFF is written to a temporary file and renamed.  Failures raise WriteError naming the
target, and the previous file stays usable.  After a save the written file becomes the mask's base
and ``changed_chunks()`` is empty.  An export (``export=True``) writes the same copy and changes
nothing about the mask: its base, changed chunks and scratch copies stay, so only Save As moves
the base.

The copy's swap is two renames (the old store aside under a recorded name, then the new one into
place); ``recover_swap`` finds what a killed save left and puts the old store back (or finishes
the swap), so the path always holds one complete mask.  It runs before every save and open.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable, Sequence

from core.atomic import WriteError, describe_os_error
from core.document.chunked_labels import (ChunkedLabels, _new_array, _open_tiff, _open_zarr, _write_empty_store,
                                 _zarr, stored_chunk_keys)
from core.document.recovery import process_alive
from core.io.label_store import export_ome_tiff, ome_label_attrs

SAVE_FORMATS = ("ome-zarr", "ome-tiff")
Progress = Callable[[int, int], None] | None
ASIDE, NEW = "old", "tmp"  # a copy-save's hidden names: .<name>.old-<pid>-<hex>, .<name>.tmp-<pid>-<hex>


def save_chunked(labels: ChunkedLabels, path: Path, fmt: str, classes: Sequence = (),
                 progress: Progress = None, export: bool = False) -> Path:
    if fmt not in SAVE_FORMATS:
        raise ValueError(f"a chunked mask saves as {' or '.join(SAVE_FORMATS)}, not {fmt!r}")
    classes = list(classes) or list(labels.classes)  # none given: keep the names and colours the file had
    with labels._lock:  # edits (and tile reads) wait: the saved file must be one state of the mask
        _save(labels, path, fmt, classes, progress, export)
        if not export and labels.path is not None and _same(labels.path, path):  # the file is the mask's base now
            labels.classes = classes
        return path


def _save(labels: ChunkedLabels, path: Path, fmt: str, classes: Sequence, progress: Progress,
          export: bool = False) -> Path:
    is_base = labels.path is not None and _same(labels.path, path)
    if export and is_base:
        raise WriteError(errno.EEXIST, f"cannot export to {path}: it is the mask being edited; "
                                       "save it with Save, or export under another name")
    try:
        recover_swap(path)
        if fmt == "ome-tiff":
            _save_tiff(labels, path, progress, rebind=not export)
        elif labels.format == "ome-zarr" and is_base and _zarr_v2(labels._levels[0].base):
            _save_in_place(labels, path, classes, progress)
        else:
            _save_copy(labels, path, classes, progress, rebind=not export)
    except WriteError:
        raise
    except OSError as exc:
        raise WriteError(exc.errno or errno.EIO, f"cannot write {path}: {describe_os_error(exc)}") from None
    return path


def _unetseg_attrs(labels: ChunkedLabels, old: dict | None = None) -> dict:
    """Our root attributes: exact class counts let a reopened mask skip counting (stale ones are dropped)."""
    attrs = {k: v for k, v in (old or {}).items() if k not in ("class_counts", "run")}
    if labels.class_counts_exact:
        attrs["class_counts"] = labels.class_counts().tolist()
    return attrs


def _save_in_place(labels: ChunkedLabels, path: Path, classes: Sequence, progress: Progress) -> None:
    """Write the changed chunks of every level into the store the mask was opened from, through a
    journal (``core.document.save_journal``): a kill or a full disk leaves the old mask or the new."""
    from core.document.save_journal import Journal, finish_interrupted_save, new_level_name

    finish_interrupted_save(path)  # an earlier save that failed after its commit: finished first
    group = _zarr().open_group(str(path), mode="r+", zarr_format=2)
    levels = labels._levels
    whole, todo = [], []
    for k, lv in enumerate(levels):
        name = str(k)
        if name in group and tuple(group[name].shape) == lv.shape and lv.base is not None:
            todo.append(sorted(lv.changed))
        else:  # a level the file lacked (built at open): written whole beside the old one
            whole.append(k)
            gy, gx = lv.grid
            todo.append([(by, bx) for by in range(gy) for bx in range(gx)])
    total, done = sum(map(len, todo)), 0
    journal = Journal(path)
    try:
        for k, (lv, keys) in enumerate(zip(levels, todo)):
            array = _new_array(group, new_level_name(k), lv.shape, lv.chunks) if k in whole else None
            for key in keys:
                chunk = labels._chunk(k, key)
                if array is None:
                    journal.add(k, key, lv.chunks, chunk)
                else:
                    y0, y1, x0, x1 = lv.region(key)
                    array[y0:y1, x0:x1] = chunk
                labels._evict()
                done += 1
                if progress:
                    progress(done, total)
        attrs = dict(group.attrs)
        attrs.update(ome_label_attrs(len(levels), classes))
        attrs["unetseg"] = _unetseg_attrs(labels, attrs.get("unetseg"))
        journal.commit(attrs, whole)
    except BaseException:
        journal.discard()
        raise
    finish_interrupted_save(path)  # on failure the committed journal stays: opening the store finishes it
    group = _zarr().open_group(str(path), mode="r", zarr_format=2)
    _rebind(labels, [group[str(k)] for k in range(len(levels))], path, "ome-zarr", None)


def _save_copy(labels: ChunkedLabels, path: Path, classes: Sequence, progress: Progress,
               rebind: bool = True) -> None:
    """A new OME-Zarr store built beside ``path`` and renamed over it, holding only stored chunks.
    ``rebind`` False (an export): the mask keeps its base, changed chunks and scratch copies."""
    if path.exists() and not (path.is_dir() and any((path / m).exists() for m in (".zgroup", ".zattrs", "zarr.json"))):
        raise WriteError(errno.EEXIST, f"cannot write {path}: something that is not an OME-Zarr store has that name")
    tmp, old = _swap_name(path, NEW), None
    try:
        arrays = _write_empty_store(tmp, *labels.shape, labels.chunks, classes, _unetseg_attrs(labels))
        plan = [(k, sorted(_stored_keys(labels, k))) for k in range(labels.num_levels)]
        total, done = sum(len(keys) for _, keys in plan), 0
        for k, keys in plan:
            lv = labels._levels[k]
            for key in keys:
                y0, y1, x0, x1 = lv.region(key)
                arrays[k][y0:y1, x0:x1] = labels._chunk(k, key)
                labels._evict()
                done += 1
                if progress:
                    progress(done, total)
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
    if rebind:
        _rebind(labels, _open_zarr(path)[:-1], path, "ome-zarr", [])


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


def _save_tiff(labels: ChunkedLabels, path: Path, progress: Progress, rebind: bool = True) -> None:
    """A tiled pyramidal OME-TIFF streamed band by band (export_ome_tiff reads through ``read``);
    ``rebind`` False (an export) leaves the mask as it was."""

    class _View:  # what export_ome_tiff needs of a LabelStore
        levels = labels.levels
        width, height = labels.width, labels.height

        def read(self, y0, y1, x0, x1, level=0):
            out = labels.read(y0, y1, x0, x1, level)
            labels._evict()
            return out

    _View.path = path
    export_ome_tiff(_View(), path, progress)
    if not rebind:
        return
    arrays, closers = _open_tiff(path)
    _rebind(labels, arrays, path, "ome-tiff", closers)


def _rebind(labels: ChunkedLabels, arrays: list, path: Path, fmt: str, closers: list | None) -> None:
    """The saved file is now the base: nothing counts as changed, scratch copies are not needed."""
    for lv, array in zip(labels._levels, arrays):
        lv.base = array
        lv.changed.clear()
        lv.in_scratch.clear()
    labels._dirty.clear()
    if closers is not None:
        for close in labels._closers:
            try:
                close()
            except Exception:  # noqa: BLE001
                pass
        labels._closers = list(closers)
    labels.path, labels.format = path, fmt


def _stored_keys(labels: ChunkedLabels, k: int) -> set:
    """Chunks of level k that may hold a non-zero pixel: stored in the base, the scratch or the cache."""
    lv = labels._levels[k]
    keys = set(lv.in_scratch) | set(lv.changed) | {(by, bx) for (lk, by, bx) in labels._cache if lk == k}
    if lv.base is not None:
        stored = stored_chunk_keys(lv.base, lv.chunks)
        if stored is None:  # not the layout save_to writes (a TIFF, zarr v3, another grid): every chunk
            gy, gx = lv.grid
            stored = {(by, bx) for by in range(gy) for bx in range(gx)}
        keys |= stored
    return keys


def _zarr_v2(array) -> bool:
    """The layout save_to writes (zarr v2, NGFF 0.4), updated in place; another one (zarr v3 /
    NGFF 0.5) is rewritten whole in this layout, as a copy renamed over it."""
    return getattr(getattr(array, "metadata", None), "zarr_format", None) == 2


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)
