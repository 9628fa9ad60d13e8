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
and ``changed_chunks()`` is empty.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Callable, Sequence

from core.atomic import WriteError, describe_os_error
from core.document.chunked_labels import (ChunkedLabels, _new_array, _open_tiff, _open_zarr, _write_empty_store,
                                 _zarr, new_temp_name, stored_chunk_keys)
from core.io.label_store import export_ome_tiff, ome_label_attrs

SAVE_FORMATS = ("ome-zarr", "ome-tiff")
Progress = Callable[[int, int], None] | None


def save_chunked(labels: ChunkedLabels, path: Path, fmt: str, classes: Sequence = (),
                 progress: Progress = None) -> Path:
    if fmt not in SAVE_FORMATS:
        raise ValueError(f"a chunked mask saves as {' or '.join(SAVE_FORMATS)}, not {fmt!r}")
    classes = list(classes) or list(labels.classes)  # none given: keep the names and colours the file had
    with labels._lock:  # edits (and tile reads) wait: the saved file must be one state of the mask
        _save(labels, path, fmt, classes, progress)
        if labels.path is not None and _same(labels.path, path):  # the file is the mask's base now
            labels.classes = classes
        return path


def _save(labels: ChunkedLabels, path: Path, fmt: str, classes: Sequence, progress: Progress) -> Path:
    try:
        if fmt == "ome-tiff":
            _save_tiff(labels, path, progress)
        elif labels.format == "ome-zarr" and labels.path is not None and _same(labels.path, path) \
                and _zarr_v2(labels._levels[0].base):
            _save_in_place(labels, path, classes, progress)
        else:
            _save_copy(labels, path, classes, progress)
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


def _save_copy(labels: ChunkedLabels, path: Path, classes: Sequence, progress: Progress) -> None:
    """A new OME-Zarr store built beside ``path`` and renamed over it, holding only stored chunks."""
    if path.exists() and not (path.is_dir() and any((path / m).exists() for m in (".zgroup", ".zattrs", "zarr.json"))):
        raise WriteError(errno.EEXIST, f"cannot write {path}: something that is not an OME-Zarr store has that name")
    tmp = new_temp_name(path, "tmp")
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
        old = None
        if path.exists():
            old = new_temp_name(path, "old")
            os.rename(path, old)
        os.rename(tmp, path)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise WriteError(exc.errno or errno.EIO, f"cannot write {path}: {describe_os_error(exc)}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    arrays = _open_zarr(path)[:-1]
    _rebind(labels, arrays, path, "ome-zarr", [])


def _save_tiff(labels: ChunkedLabels, path: Path, progress: Progress) -> None:
    """A tiled pyramidal OME-TIFF streamed band by band (export_ome_tiff reads through ``read``)."""

    class _View:  # what export_ome_tiff needs of a LabelStore
        levels = labels.levels
        width, height = labels.width, labels.height

        def read(self, y0, y1, x0, x1, level=0):
            out = labels.read(y0, y1, x0, x1, level)
            labels._evict()
            return out

    _View.path = path
    export_ome_tiff(_View(), path, progress)
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
