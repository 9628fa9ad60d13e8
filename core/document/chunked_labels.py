"""A 2-D uint8 label mask of any size (100,000 x 100,000 and more) that the document edits in chunks.

``ChunkedLabels`` slices like a numpy array (``labels[y0:y1, x0:x1]`` returns a new array,
assignment writes) but holds only a byte-bounded cache of decoded chunks.  Why each part:

* **Copy on write.**  The saved mask (an OME-Zarr label image, or an OME-TIFF read lazily) is
  the read-only *base*; chunks evicted from the cache while dirty go to a private *scratch* file
  in a temporary folder, made at the first spill and removed with the mask or its process
  (core.document.scratch_folders).  So the user's file changes only in ``save_to`` and a crash
  mid-edit never damages it.  Untouched chunks are never stored anywhere: they hold ``fill``
  (0, background; 255 in a strokes file, "not annotated").
* **Chunk size.**  In-memory chunks follow the file's but stay within CHUNK_MIN..CHUNK_MAX (a TIFF
  strip spans the whole width; an uncompressed one is memory-mapped), so a read decodes little.
* **Label pyramid.**  Level k is 2**k times smaller, by the nearest-neighbour rule of
  ``core.io.label_store.level_sample``.  Every write updates the coarse pixels it decides at every
  level at once (they are a strided sample of the written block), so an edit shows at every zoom
  and only changed chunks of each level are rewritten.
* **Class counts** are adjusted by the diff of each write.  A new mask's counts are exact; an
  opened one's are exact when the file records them (``save_to`` does) and otherwise estimated
  from a coarse pyramid level (``class_counts_exact`` is False) until ``count_exactly()`` runs.
* **Changed chunks** (since the last save) drive incremental saving and recovery copies.
* **Threads.**  One lock guards the cache, so a tile worker may ``read_level`` while the GUI
  thread paints; ``save_to`` and ``count_exactly`` hold it throughout (edits wait for them).

This is the document layer: it knows chunks, edits and scratch.  Files, layouts, the save journal
and the swap are the store's (``core.document.chunked_save`` and below), which ``open`` and
``save_to`` call; recovery copies (``core.document.recovery``) sit above both.
"""

from __future__ import annotations

import errno
import os
import tempfile
import threading
import weakref
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from core.atomic import WriteError, describe_os_error, short_error
from core.document.chunked_save import SAVE_FORMATS, LevelState, Opened, SaveJob, open_store, save_store
from core.document.mask_files import (CHUNK_CODEC, fill_value, level_chunks, mask_fingerprint, stored_classes,
                                      write_empty_store)
from core.document.scratch_folders import ScratchFolder
from core.io.label_store import StoreError, level_sample, pyramid_shapes
from core.io.label_store import class_counts as block_counts

__all__ = ["ChunkedLabels", "ARRAY_LIMIT", "DEFAULT_CACHE_BYTES"]

DEFAULT_CACHE_BYTES = 256 * 2**20
ARRAY_LIMIT = 2**26  # np.asarray(whole mask) is allowed up to 64 Mpx; larger must be read by region
SCRATCH_SLACK = 64 * 2**20  # dead bytes the scratch file may hold before it is compacted
COUNT_LEVEL_PIXELS = 2**22  # an estimated class count decodes one level of at most this many pixels
CHUNK_MIN, CHUNK_MAX = 64, 1024  # in-memory chunk sides, whatever the file's chunking (a strip: its width)
Key = tuple[int, int]


class _Level:
    """One pyramid level: its grid, the read-only base array (or None: all 0) and what changed."""

    def __init__(self, shape: tuple[int, int], chunks: tuple[int, int], base=None):
        self.shape = (int(shape[0]), int(shape[1]))
        self.chunks = (int(chunks[0]), int(chunks[1]))
        self.base = base
        self.in_scratch: dict[Key, tuple[int, int]] = {}  # (offset, length) in the scratch file
        self.changed: set[Key] = set()  # since the last save

    @property
    def grid(self) -> tuple[int, int]:
        return -(-self.shape[0] // self.chunks[0]), -(-self.shape[1] // self.chunks[1])

    def region(self, key: Key) -> tuple[int, int, int, int]:
        (by, bx), (cy, cx) = key, self.chunks
        return by * cy, min(self.shape[0], (by + 1) * cy), bx * cx, min(self.shape[1], (bx + 1) * cx)

    def keys(self, y0: int, y1: int, x0: int, x1: int) -> Iterator[Key]:
        cy, cx = self.chunks
        for by in range(y0 // cy, -(-y1 // cy)):
            for bx in range(x0 // cx, -(-x1 // cx)):
                yield by, bx


def _memory_chunk(side: int) -> int:
    """The in-memory chunk side for a file's chunk side: within CHUNK_MIN..CHUNK_MAX, and a whole
    fraction of a larger one, so reading one decodes at most one file chunk across (a TIFF of
    whole-width strips, or one strip, is never read whole for a small region)."""
    if side <= CHUNK_MIN:
        return CHUNK_MIN
    return -(-side // -(-side // CHUNK_MAX))


class ChunkedLabels:
    """A uint8 (height, width) label array backed by chunks; see the module docstring."""

    ndim = 2
    dtype = np.dtype(np.uint8)

    def __init__(self, levels: list[_Level], *, path: Path | None, fmt: str | None, cache_bytes: int,
                 counts: np.ndarray, counts_exact: bool, closers: Sequence[Callable[[], None]] = (), fill: int = 0):
        self._levels = levels
        self.path = path  # the saved mask this one is read from (None: not saved yet)
        self.format = fmt  # "ome-zarr", "ome-tiff" or None
        self.fill = int(fill)  # what a pixel nobody wrote holds: 0 (background), a strokes file's 255
        self.base_fingerprint = ""  # core.io.fingerprint of the file at ``path`` when it became the base
        self.cache_bytes = int(cache_bytes)
        self._cache: OrderedDict[tuple[int, int, int], np.ndarray] = OrderedDict()
        self._dirty: set[tuple[int, int, int]] = set()
        self._bytes = 0
        self._counts = counts.astype(np.int64)
        self.class_counts_exact = bool(counts_exact)
        self._folder = ScratchFolder()  # made at the first spill (core.document.scratch_folders)
        self._scratch = None
        self._lock = threading.RLock()
        self._closers = list(closers)
        self._finalizer = weakref.finalize(self, self._folder.remove)
        self.closed = False
        self.classes: list = []  # the classes (ClassInfo) the file names, with their colours

    @property
    def _tmp(self) -> Path | None:
        """The private scratch folder (None until the first chunk is spilled)."""
        return self._folder.path

    # -- opening ------------------------------------------------------------------------------
    @classmethod
    def create(cls, height: int, width: int, chunk: int = 512, path: str | os.PathLike | None = None,
               cache_bytes: int = DEFAULT_CACHE_BYTES, classes: Sequence = (), fill: int = 0) -> "ChunkedLabels":
        """A mask whose every pixel is ``fill`` (0, background; a strokes file: 255, not annotated).
        ``path`` None keeps it in memory and a private scratch file (deleted by ``close``) until
        ``save_to``; with a path an empty OME-Zarr label image is written there now."""
        height, width, chunk, fill = int(height), int(width), int(chunk), int(fill)
        if height < 1 or width < 1 or chunk < 16:
            raise ValueError(f"a mask needs height, width >= 1 and chunk >= 16, not {height}x{width}/{chunk}")
        if not 0 <= fill <= 255:
            raise ValueError(f"the fill value must be within 0..255, not {fill}")
        if path is not None:
            if Path(path).exists():
                raise StoreError(f"{path}: already exists; open it, or save a new mask elsewhere.")
            write_empty_store(Path(path), height, width, (chunk, chunk), classes, fill=fill)
            return cls.open(path, cache_bytes=cache_bytes)
        levels = [_Level(s, level_chunks((chunk, chunk), s)) for s in pyramid_shapes(height, width)]
        counts = np.zeros(256, np.int64)
        counts[fill] = height * width
        return cls(levels, path=None, fmt=None, cache_bytes=cache_bytes, counts=counts, counts_exact=True, fill=fill)

    @classmethod
    def open(cls, path: str | os.PathLike, cache_bytes: int = DEFAULT_CACHE_BYTES) -> "ChunkedLabels":
        """A saved mask, read lazily: an OME-Zarr label image (what ``unetseg segment --format
        ome-zarr`` and ``save_to`` write) or a (pyramidal) OME-TIFF of class ids.

        Raises StoreError naming the file when it is missing, unreadable or not 2-D uint8.
        Pyramid levels the file lacks are built now into the scratch store (one pass over level 0).
        """
        path = Path(path)
        opened = open_store(path)
        arrays, closers = opened.arrays, opened.closers
        base0 = arrays[0]
        shape = tuple(int(n) for n in base0.shape)
        if len(shape) != 2 or np.dtype(base0.dtype) != np.uint8:
            for close in closers:
                close()
            raise StoreError(f"{path}: a label mask must be a 2-D uint8 image, not {base0.dtype} {shape}.")
        chunk = tuple(_memory_chunk(int(c)) for c in getattr(base0, "chunks", (512, 512)))
        levels, missing = [], []
        for k, s in enumerate(pyramid_shapes(*shape)):
            base = arrays[k] if k < len(arrays) and tuple(arrays[k].shape) == s else None
            if base is None and k > 0:
                missing.append(k)
            levels.append(_Level(s, level_chunks(chunk, s), base))
        fill = fill_value(base0)
        counts = np.zeros(256, np.int64)
        counts[fill] = shape[0] * shape[1]
        self = cls(levels, path=path, fmt=opened.fmt, cache_bytes=cache_bytes, counts=counts, counts_exact=False,
                   closers=closers, fill=fill)
        self.classes = stored_classes(opened.attrs)
        try:
            self.base_fingerprint = mask_fingerprint(path)
            for k in missing:
                self._build_level(k)
            recorded = opened.attrs.get("unetseg", {}).get("class_counts")
            if isinstance(recorded, list) and len(recorded) == 256 and sum(recorded) == shape[0] * shape[1]:
                self._counts, self.class_counts_exact = np.asarray(recorded, np.int64), True
            else:
                self._estimate_counts()
        except StoreError:
            self.close()
            raise
        except Exception as exc:  # noqa: BLE001 - a damaged chunk: one sentence naming the file
            self.close()
            raise StoreError(f"{path}: the mask cannot be read ({short_error(exc)}).") from None
        return self

    def close(self) -> None:
        """Drop the cache and the scratch store (unsaved edits are lost) and close the base file."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        self._cache.clear()
        self._dirty.clear()
        self._bytes = 0
        for close in self._closers:
            try:
                close()
            except Exception:  # noqa: BLE001
                pass
        self._closers = []
        if self._scratch is not None:
            self._scratch.close()
            self._scratch = None
        self._finalizer()
        self.closed = True

    def __enter__(self) -> "ChunkedLabels":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- array protocol -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return self._levels[0].shape

    @property
    def height(self) -> int:
        return self.shape[0]

    @property
    def width(self) -> int:
        return self.shape[1]

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def chunks(self) -> tuple[int, int]:
        return self._levels[0].chunks

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"ChunkedLabels({self.shape[0]}x{self.shape[1]}, chunks={self.chunks}, path={self.path})"

    def __array__(self, dtype=None, copy=None):
        if self.size > ARRAY_LIMIT:
            raise MemoryError(f"a {self.width}x{self.height} chunked mask is too large for one array; "
                              "read regions with labels[y0:y1, x0:x1]")
        out = self.read(0, self.shape[0], 0, self.shape[1])
        return out if dtype is None else out.astype(dtype)

    def __getitem__(self, key):
        (y0, y1, yint), (x0, x1, xint) = self._index(key)
        out = self._read(0, y0, y1, x0, x1)
        if yint and xint:
            return out[0, 0]
        return out[0] if yint else out[:, 0] if xint else out

    def __setitem__(self, key, value) -> None:
        (y0, y1, yint), (x0, x1, xint) = self._index(key)
        if y1 <= y0 or x1 <= x0:
            return
        value = np.asarray(value)
        if value.dtype != np.uint8:
            if value.size and (value.min() < 0 or value.max() > 255):
                raise ValueError("label values must be within 0..255")
            value = value.astype(np.uint8)
        if value.ndim == 1 and xint and not yint:
            value = value[:, None]  # labels[y0:y1, x] = column
        block = np.broadcast_to(value, (y1 - y0, x1 - x0))
        self.write(y0, x0, block)

    def read(self, y0: int, y1: int, x0: int, x1: int, level: int = 0) -> np.ndarray:
        """A new array of rows y0:y1, columns x0:x1 of ``level`` (clipped to the level)."""
        h, w = self.level_shape(level)
        y0, x0 = max(0, int(y0)), max(0, int(x0))
        y1, x1 = min(h, int(y1)), min(w, int(x1))
        return self._read(level, y0, max(y0, y1), x0, max(x0, x1))

    def read_level(self, k: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Rows y0:y1, columns x0:x1 of pyramid level k (pixel (i, j) = level-0 pixel (i*2**k, j*2**k))."""
        if not 0 <= k < len(self._levels):
            raise ValueError(f"level must be within 0..{len(self._levels) - 1}, not {k}")
        return self.read(y0, y1, x0, x1, level=k)

    @property
    def num_levels(self) -> int:
        return len(self._levels)

    def level_shape(self, k: int) -> tuple[int, int]:
        return self._levels[k].shape

    @property
    def levels(self) -> list[tuple[int, int]]:
        """(width, height) of every level, as LabelStore.levels (for export_ome_tiff)."""
        return [(w, h) for h, w in (lv.shape for lv in self._levels)]

    # -- writing ------------------------------------------------------------------------------
    def write(self, y0: int, x0: int, block: np.ndarray):
        """Write a uint8 block at (y0, x0) of level 0 (must lie inside); returns the changed Box."""
        with self._lock:
            return self._write(y0, x0, block)

    def _write(self, y0: int, x0: int, block: np.ndarray):
        from core.document.editing import EMPTY, Box

        block = np.asarray(block)
        h, w = block.shape
        if y0 < 0 or x0 < 0 or y0 + h > self.shape[0] or x0 + w > self.shape[1]:
            raise ValueError(f"block {h}x{w} at ({y0}, {x0}) is outside the {self.shape} mask")
        changed = self._store(0, y0, x0, block, self._counts)
        if changed is None:
            return EMPTY
        cy0, cx0, cy1, cx1 = changed
        sub = block[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
        for k in range(1, len(self._levels)):
            ly0, lx0, sample = level_sample(sub, cy0, cx0, 2 ** k)
            if sample.size:
                self._store(k, ly0, lx0, sample, None)
        self._evict()
        return Box(cy0, cx0, cy1, cx1)

    def _store(self, level: int, y0: int, x0: int, block: np.ndarray, counts: np.ndarray | None):
        """Copy ``block`` into the chunks it covers; returns the box of changed chunks' parts or None."""
        lv = self._levels[level]
        h, w = block.shape
        box = None
        for key in lv.keys(y0, y0 + h, x0, x0 + w):
            ry0, ry1, rx0, rx1 = lv.region(key)
            iy0, iy1, ix0, ix1 = max(ry0, y0), min(ry1, y0 + h), max(rx0, x0), min(rx1, x0 + w)
            chunk = self._chunk(level, key)
            local = chunk[iy0 - ry0:iy1 - ry0, ix0 - rx0:ix1 - rx0]
            new = block[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
            diff = local != new
            if not diff.any():
                continue
            if counts is not None:
                counts -= np.bincount(local[diff], minlength=256)
                counts += np.bincount(new[diff], minlength=256)
            local[...] = new
            self._dirty.add((level, *key))
            lv.changed.add(key)
            rows, cols = np.flatnonzero(diff.any(axis=1)), np.flatnonzero(diff.any(axis=0))
            b = (iy0 + int(rows[0]), ix0 + int(cols[0]), iy0 + int(rows[-1]) + 1, ix0 + int(cols[-1]) + 1)
            box = b if box is None else (min(box[0], b[0]), min(box[1], b[1]), max(box[2], b[2]), max(box[3], b[3]))
            self._evict(keep=(level, *key))
        return box

    def flush(self) -> None:
        """Write every dirty cached chunk to the scratch file (the saved file changes only in save_to)."""
        with self._lock:
            for ck in list(self._dirty):
                self._spill(ck)

    # -- cache ----------------------------------------------------------------------------------
    def _chunk(self, level: int, key: Key) -> np.ndarray:
        ck = (level, *key)
        arr = self._cache.get(ck)
        if arr is not None:
            self._cache.move_to_end(ck)
            return arr
        lv = self._levels[level]
        y0, y1, x0, x1 = lv.region(key)
        if key in lv.in_scratch:
            offset, length = lv.in_scratch[key]
            self._scratch.seek(offset)
            raw = CHUNK_CODEC.decode(self._scratch.read(length))
            arr = np.frombuffer(raw, np.uint8).reshape(y1 - y0, x1 - x0).copy()
        elif lv.base is not None:
            arr = np.array(lv.base[y0:y1, x0:x1], dtype=np.uint8)
        else:
            arr = np.full((y1 - y0, x1 - x0), self.fill, np.uint8)
        self._cache[ck] = arr
        self._bytes += arr.nbytes
        return arr

    def _evict(self, keep: tuple[int, int, int] | None = None) -> None:
        while self._bytes > self.cache_bytes and len(self._cache) > 1:
            ck = next(iter(self._cache))
            if ck == keep:
                self._cache.move_to_end(ck)
                ck = next(iter(self._cache))
            if ck in self._dirty:
                self._spill(ck)
            self._bytes -= self._cache.pop(ck).nbytes

    def _spill(self, ck: tuple[int, int, int]) -> None:
        """Append one dirty chunk, compressed, to the scratch file.  One open file, not a file or a
        zarr chunk per chunk: creating files costs about a millisecond each.  The file is private
        (lost with the process on a crash: recovery copies are written elsewhere) and deleted by close.
        A chunk spilled again is appended again; dead copies are dropped by ``_compact_scratch``."""
        level, by, bx = ck
        lv = self._levels[level]
        try:
            if self._scratch is None:
                self._scratch = open(self._folder.make() / "scratch.bin", "w+b")  # noqa: SIM115 - closed by close()
            self._compact_scratch()
            data = CHUNK_CODEC.encode(self._cache[ck])
            offset = self._scratch.seek(0, 2)
            self._scratch.write(data)
            lv.in_scratch[(by, bx)] = (offset, len(data))
        except OSError as exc:
            raise WriteError(exc.errno or errno.EIO, f"cannot write the working copy in {self._tmp or tempfile.gettempdir()}: "
                             f"{describe_os_error(exc)}") from None
        self._dirty.discard(ck)

    def _compact_scratch(self) -> None:
        """Rewrite the scratch file with its live copies only once dead ones pass SCRATCH_SLACK bytes
        and outweigh them (a long session repainting the same chunks, or everything after a save)."""
        end = self._scratch.seek(0, 2)
        entries = [(lv, key, ol) for lv in self._levels for key, ol in lv.in_scratch.items()]
        live = sum(length for _, _, (_, length) in entries)
        if end - live <= max(SCRATCH_SLACK, live):
            return
        # The index moves to the new file only once that file is complete and renamed: a failed copy
        # (a full temporary disk) leaves the old file and every entry pointing into it.
        new_path = self._tmp / "scratch.new"
        new = open(new_path, "w+b")  # noqa: SIM115 - replaces self._scratch
        moved = []
        try:
            for lv, key, (offset, length) in entries:
                self._scratch.seek(offset)
                moved.append((lv, key, (new.tell(), length)))
                new.write(self._scratch.read(length))
            new.flush()
            os.replace(new_path, self._tmp / "scratch.bin")
        except BaseException:
            new.close()
            new_path.unlink(missing_ok=True)
            raise
        self._scratch.close()
        self._scratch = new
        for lv, key, entry in moved:
            lv.in_scratch[key] = entry

    @property
    def scratch_bytes(self) -> int:
        """Size of the scratch file (evicted unsaved chunks, compressed; dead copies included)."""
        with self._lock:
            return 0 if self._scratch is None else self._scratch.seek(0, 2)

    @property
    def cached_bytes(self) -> int:
        """Bytes of decoded chunks held now (kept at or below cache_bytes between operations)."""
        return self._bytes

    # -- counts and changes -----------------------------------------------------------------------
    def class_counts(self) -> np.ndarray:
        """Pixels per class id (256 values); estimated unless ``class_counts_exact``."""
        with self._lock:
            return np.maximum(self._counts, 0)

    def count_exactly(self) -> np.ndarray:
        """Count every level-0 chunk that may hold content (``chunks_with_content``; the others hold
        ``fill``) and make the counts exact.  Slow on a whole slide whose chunks are all stored
        (every one is decoded) and edits wait meanwhile: run it on a worker when the user is not painting."""
        with self._lock:
            return self._count_exactly()

    def _count_exactly(self) -> np.ndarray:
        counts = np.zeros(256, np.int64)
        counts[self.fill] = self.size
        lv = self._levels[0]
        for key in sorted(self._level_state(0).stored_keys()):
            y0, y1, x0, x1 = lv.region(key)
            block = self._read(0, y0, y1, x0, x1)
            counts += block_counts(block)
            counts[self.fill] -= block.size
            self._evict()
        self._counts, self.class_counts_exact = counts, True
        return self.class_counts()

    def changed_chunks(self) -> list[Key]:
        """(row, column) indices of level-0 chunks changed since the last save (or creation)."""
        with self._lock:
            return sorted(self._levels[0].changed)

    @staticmethod
    def level_box(box, k: int):
        """The pixels of level k that a level-0 Box (e.g. from MaskDocument.changed) decides: what a
        tiled view repaints at that zoom."""
        from core.document.editing import Box

        s = 2**k
        return Box(-(-box.y0 // s), -(-box.x0 // s), -(-box.y1 // s), -(-box.x1 // s))

    def chunk_region(self, key: Key) -> tuple[int, int, int, int]:
        """(y0, y1, x0, x1) of level-0 chunk ``key``."""
        return self._levels[0].region(tuple(key))

    # -- internals ------------------------------------------------------------------------------
    def _index(self, key) -> tuple[tuple[int, int, bool], tuple[int, int, bool]]:
        if not isinstance(key, tuple):
            key = (key, slice(None))
        if len(key) != 2:
            raise IndexError(f"a chunked mask takes 2 indices, not {len(key)}")
        out = []
        for k, n in zip(key, self.shape):
            if isinstance(k, slice):
                a, b, step = k.indices(n)
                if step != 1:
                    raise IndexError("a chunked mask takes slices with step 1")
                out.append((a, max(a, b), False))
            elif isinstance(k, (int, np.integer)):
                i = int(k) + (n if k < 0 else 0)
                if not 0 <= i < n:
                    raise IndexError(f"index {int(k)} is out of bounds for size {n}")
                out.append((i, i + 1, True))
            else:
                raise IndexError(f"a chunked mask takes ints and slices, not {type(k).__name__}")
        return out[0], out[1]

    def _read(self, level: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        lv = self._levels[level]
        out = np.empty((y1 - y0, x1 - x0), np.uint8)
        with self._lock:
            for key in lv.keys(y0, y1, x0, x1):
                ry0, ry1, rx0, rx1 = lv.region(key)
                iy0, iy1, ix0, ix1 = max(ry0, y0), min(ry1, y1), max(rx0, x0), min(rx1, x1)
                chunk = self._chunk(level, key)
                out[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = chunk[iy0 - ry0:iy1 - ry0, ix0 - rx0:ix1 - rx0]
                self._evict(keep=(level, *key))
        return out

    def _build_level(self, k: int) -> None:
        """Fill level k (missing in the file) from level k-1, chunk by chunk, as changed chunks."""
        lv, finer = self._levels[k], self._levels[k - 1]
        gy, gx = lv.grid
        for by in range(gy):
            for bx in range(gx):
                y0, y1, x0, x1 = lv.region((by, bx))
                src = self._read(k - 1, 2 * y0, min(finer.shape[0], 2 * y1), 2 * x0, min(finer.shape[1], 2 * x1))
                self._store(k, y0, x0, level_sample(src, 2 * y0, 2 * x0, 2)[2], None)
        self._evict()

    def _estimate_counts(self) -> None:
        """Counts from the finest level of at most COUNT_LEVEL_PIXELS pixels, scaled to level 0."""
        k = next((i for i, lv in enumerate(self._levels) if lv.shape[0] * lv.shape[1] <= COUNT_LEVEL_PIXELS),
                 len(self._levels) - 1)
        h, w = self._levels[k].shape
        counts = np.zeros(256, np.int64)
        rows = max(1, 2**18 // w)
        for y0 in range(0, h, rows):
            counts += block_counts(self._read(k, y0, min(h, y0 + rows), 0, w))
        if k == 0:
            self._counts, self.class_counts_exact = counts, True
            return
        scaled = np.floor(counts * (self.size / (h * w))).astype(np.int64)
        scaled[int(np.argmax(counts))] += self.size - int(scaled.sum())
        self._counts, self.class_counts_exact = scaled, False

    # -- saving (through the store layer, core.document.chunked_save) -----------------------------
    def save_to(self, path: str | os.PathLike, fmt: str = "ome-zarr", classes: Sequence = (),
                progress: Callable[[int, int], None] | None = None) -> Path:
        """Save as OME-Zarr (in place: changed chunks only) or OME-TIFF; the file becomes the base."""
        return self._save(Path(path), fmt, classes, progress, export=False)

    def export_to(self, path: str | os.PathLike, fmt: str = "ome-zarr", classes: Sequence = (),
                  progress: Callable[[int, int], None] | None = None) -> Path:
        """Write a full copy as OME-Zarr or OME-TIFF and change nothing about this mask: its base,
        changed chunks and scratch copies stay (deleting the copy later loses nothing).  The
        mask's own file is refused: that is Save."""
        return self._save(Path(path), fmt, classes, progress, export=True)

    def _save(self, path: Path, fmt: str, classes: Sequence, progress, export: bool) -> Path:
        if fmt not in SAVE_FORMATS:
            raise ValueError(f"a chunked mask saves as {' or '.join(SAVE_FORMATS)}, not {fmt!r}")
        classes = list(classes) or list(self.classes)  # none given: keep the names and colours the file had
        with self._lock:  # edits (and tile reads) wait: the saved file must be one state of the mask
            is_base = self.path is not None and _same(self.path, path)
            if export and is_base:
                raise WriteError(errno.EEXIST, f"cannot export to {path}: it is the mask being edited; "
                                               "save it with Save, or export under another name")
            attrs = {"class_counts": self.class_counts().tolist()} if self.class_counts_exact else {}
            job = SaveJob([self._level_state(k) for k in range(len(self._levels))], self._save_chunk,
                          self._save_region, attrs, self.fill, classes, progress)
            opened = save_store(path, fmt, job, in_place=is_base and self.format == "ome-zarr", reopen=not export)
            if opened is not None:
                self._bind(opened, path)
                self.classes = classes
        return path

    def _level_state(self, k: int) -> LevelState:
        lv = self._levels[k]
        held = set(lv.in_scratch) | {(by, bx) for (lk, by, bx) in self._cache if lk == k}
        return LevelState(lv.shape, lv.chunks, lv.base, sorted(lv.changed), held)

    def _save_chunk(self, k: int, key: Key) -> np.ndarray:
        chunk = self._chunk(k, key)
        self._evict()
        return chunk

    def _save_region(self, y0: int, y1: int, x0: int, x1: int, level: int) -> np.ndarray:
        out = self.read(y0, y1, x0, x1, level)
        self._evict()
        return out

    def _bind(self, opened: Opened, path: Path) -> None:
        """The saved file is now the base: nothing counts as changed, scratch copies are not needed."""
        for lv, array in zip(self._levels, opened.arrays):
            lv.base = array
            lv.changed.clear()
            lv.in_scratch.clear()
        self._dirty.clear()
        for close in self._closers:
            try:
                close()
            except Exception:  # noqa: BLE001
                pass
        self._closers = list(opened.closers)
        self.path, self.format = path, opened.fmt
        self.base_fingerprint = mask_fingerprint(path)

    def chunks_with_content(self) -> list[Key]:
        """Level-0 chunks that may hold a pixel other than ``fill`` (a superset: stored in the file,
        changed, spilled or cached), without decoding any: on a strokes file of a whole slide, the
        few chunks under the strokes."""
        with self._lock:
            return sorted(self._level_state(0).stored_keys())


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)
