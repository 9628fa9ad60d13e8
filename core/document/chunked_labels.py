"""A 2-D uint8 label mask of any size (100,000 x 100,000 and more) that the document edits in chunks.

``ChunkedLabels`` slices like a numpy array (``labels[y0:y1, x0:x1]`` returns a new array,
assignment writes) but holds only a byte-bounded cache of decoded chunks.  Why each part:

* **Copy on write.**  The saved mask (an OME-Zarr label image, or an OME-TIFF read lazily) is
  the read-only *base*; chunks evicted from the cache while dirty go to a private *scratch*
  zarr store in a temporary folder.  So the user's file changes only in ``save_to`` and a
  crash mid-edit never damages it.  Untouched chunks are never stored anywhere (fill value 0).
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
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import threading
import uuid
import weakref
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from core.atomic import WriteError, describe_os_error, short_error
from core.io.label_store import StoreError, level_sample, ome_label_attrs, pyramid_shapes
from core.io.label_store import class_counts as block_counts

__all__ = ["ChunkedLabels", "ARRAY_LIMIT", "DEFAULT_CACHE_BYTES"]

DEFAULT_CACHE_BYTES = 256 * 2**20
ARRAY_LIMIT = 2**26  # np.asarray(whole mask) is allowed up to 64 Mpx; larger must be read by region
SCRATCH_SLACK = 64 * 2**20  # dead bytes the scratch file may hold before it is compacted
COUNT_LEVEL_PIXELS = 2**22  # an estimated class count decodes one level of at most this many pixels
CHUNK_MIN, CHUNK_MAX = 64, 1024  # in-memory chunk sides, whatever the file's chunking (a strip: its width)
Key = tuple[int, int]


class _Codec:
    """Blosc lz4 for scratch chunks: fast enough that evicting a dirty chunk costs well under a ms."""

    def __init__(self):
        self._codec = None

    def _get(self):
        if self._codec is None:
            from numcodecs import Blosc

            self._codec = Blosc(cname="lz4", clevel=1, shuffle=Blosc.NOSHUFFLE)
        return self._codec

    def encode(self, arr: np.ndarray) -> bytes:
        return bytes(self._get().encode(np.ascontiguousarray(arr)))

    def decode(self, data: bytes) -> bytes:
        return bytes(self._get().decode(data))


_SCRATCH_CODEC = _Codec()


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


def _level_chunks(chunk: tuple[int, int], shape: tuple[int, int]) -> tuple[int, int]:
    return min(chunk[0], shape[0]), min(chunk[1], shape[1])


class ChunkedLabels:
    """A uint8 (height, width) label array backed by chunks; see the module docstring."""

    ndim = 2
    dtype = np.dtype(np.uint8)

    def __init__(self, levels: list[_Level], *, path: Path | None, fmt: str | None, cache_bytes: int,
                 counts: np.ndarray, counts_exact: bool, closers: Sequence[Callable[[], None]] = ()):
        self._levels = levels
        self.path = path  # the saved mask this one is read from (None: not saved yet)
        self.format = fmt  # "ome-zarr", "ome-tiff" or None
        self.cache_bytes = int(cache_bytes)
        self._cache: OrderedDict[tuple[int, int, int], np.ndarray] = OrderedDict()
        self._dirty: set[tuple[int, int, int]] = set()
        self._bytes = 0
        self._counts = counts.astype(np.int64)
        self.class_counts_exact = bool(counts_exact)
        self._tmp = Path(tempfile.mkdtemp(prefix="unetseg-mask-"))
        self._scratch = None
        self._lock = threading.RLock()
        self._closers = list(closers)
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self._tmp), True)
        self.closed = False
        self.classes: list = []  # the classes (ClassInfo) the file names, with their colours

    # -- opening ------------------------------------------------------------------------------
    @classmethod
    def create(cls, height: int, width: int, chunk: int = 512, path: str | os.PathLike | None = None,
               cache_bytes: int = DEFAULT_CACHE_BYTES, classes: Sequence = ()) -> "ChunkedLabels":
        """An all-background mask.  ``path`` None keeps it in a private temporary store (deleted by
        ``close``) until ``save_to``; with a path an empty OME-Zarr label image is written there now."""
        height, width, chunk = int(height), int(width), int(chunk)
        if height < 1 or width < 1 or chunk < 16:
            raise ValueError(f"a mask needs height, width >= 1 and chunk >= 16, not {height}x{width}/{chunk}")
        if path is not None:
            if Path(path).exists():
                raise StoreError(f"{path}: already exists; open it, or save a new mask elsewhere.")
            _write_empty_store(Path(path), height, width, (chunk, chunk), classes)
            return cls.open(path, cache_bytes=cache_bytes)
        levels = [_Level(s, _level_chunks((chunk, chunk), s)) for s in pyramid_shapes(height, width)]
        counts = np.zeros(256, np.int64)
        counts[0] = height * width
        return cls(levels, path=None, fmt=None, cache_bytes=cache_bytes, counts=counts, counts_exact=True)

    @classmethod
    def open(cls, path: str | os.PathLike, cache_bytes: int = DEFAULT_CACHE_BYTES) -> "ChunkedLabels":
        """A saved mask, read lazily: an OME-Zarr label image (what ``unetseg segment --format
        ome-zarr`` and ``save_to`` write) or a (pyramidal) OME-TIFF of class ids.

        Raises StoreError naming the file when it is missing, unreadable or not 2-D uint8.
        Pyramid levels the file lacks are built now into the scratch store (one pass over level 0).
        """
        from core.document.chunked_save import recover_swap

        path = Path(path)
        recover_swap(path)  # a save killed between its renames: the old store goes back first
        if not path.exists():
            raise StoreError(f"{path}: the mask does not exist.")
        if path.is_dir():
            _finish_interrupted_save(path)
            arrays, fmt, attrs, closers = _open_zarr(path), "ome-zarr", None, []
            attrs = arrays.pop()
        else:
            arrays, closers = _open_tiff(path)
            fmt, attrs = "ome-tiff", {}
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
            levels.append(_Level(s, _level_chunks(chunk, s), base))
        counts = np.zeros(256, np.int64)
        counts[0] = shape[0] * shape[1]
        self = cls(levels, path=path, fmt=fmt, cache_bytes=cache_bytes, counts=counts, counts_exact=False,
                   closers=closers)
        self.classes = stored_classes(attrs or {})
        try:
            for k in missing:
                self._build_level(k)
            recorded = (attrs or {}).get("unetseg", {}).get("class_counts")
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
            raw = _SCRATCH_CODEC.decode(self._scratch.read(length))
            arr = np.frombuffer(raw, np.uint8).reshape(y1 - y0, x1 - x0).copy()
        elif lv.base is not None:
            arr = np.array(lv.base[y0:y1, x0:x1], dtype=np.uint8)
        else:
            arr = np.zeros((y1 - y0, x1 - x0), np.uint8)
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
                self._scratch = open(self._tmp / "scratch.bin", "w+b")  # noqa: SIM115 - closed by close()
            self._compact_scratch()
            data = _SCRATCH_CODEC.encode(self._cache[ck])
            offset = self._scratch.seek(0, 2)
            self._scratch.write(data)
            lv.in_scratch[(by, bx)] = (offset, len(data))
        except OSError as exc:
            raise WriteError(exc.errno or errno.EIO, f"cannot write the working copy in {self._tmp}: "
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
        """Count every level-0 chunk and make the counts exact.  Slow on a whole slide (every chunk
        is decoded) and edits wait meanwhile: run it on a worker when the user is not painting."""
        with self._lock:
            return self._count_exactly()

    def _count_exactly(self) -> np.ndarray:
        counts = np.zeros(256, np.int64)
        lv = self._levels[0]
        gy, gx = lv.grid
        for by in range(gy):
            for bx in range(gx):
                y0, y1, x0, x1 = lv.region((by, bx))
                counts += block_counts(self._read(0, y0, y1, x0, x1))
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

    # -- saving (in chunked_save) ---------------------------------------------------------------
    def save_to(self, path: str | os.PathLike, fmt: str = "ome-zarr", classes: Sequence = (),
                progress: Callable[[int, int], None] | None = None) -> Path:
        """Save as OME-Zarr (in place: changed chunks only) or OME-TIFF; the file becomes the base."""
        from core.document.chunked_save import save_chunked

        return save_chunked(self, Path(path), fmt, classes, progress)

    def export_to(self, path: str | os.PathLike, fmt: str = "ome-zarr", classes: Sequence = (),
                  progress: Callable[[int, int], None] | None = None) -> Path:
        """Write a full copy as OME-Zarr or OME-TIFF and change nothing about this mask: its base,
        changed chunks and scratch copies stay (deleting the copy later loses nothing).  The
        mask's own file is refused: that is Save."""
        from core.document.chunked_save import save_chunked

        return save_chunked(self, Path(path), fmt, classes, progress, export=True)


# --------------------------------------------------------------------------- zarr helpers


def _zarr():
    from core.io.sources import require_zarr

    return require_zarr()


def _compressor():
    from numcodecs import Blosc

    return Blosc(cname="zstd", clevel=3, shuffle=Blosc.BITSHUFFLE)


def _new_array(group, name: str, shape: tuple[int, int], chunks: tuple[int, int]):
    """A uint8 level array as LabelStore writes them; all-0 chunks are never stored."""
    return group.create_array(name, shape=shape, chunks=chunks, dtype="uint8", fill_value=0, overwrite=True,
                              chunk_key_encoding={"name": "v2", "separator": "/"}, compressors=_compressor(),
                              config={"write_empty_chunks": False})


def _write_empty_store(path: Path, height: int, width: int, chunk: tuple[int, int], classes: Sequence,
                       attrs: dict | None = None) -> list:
    """An OME-Zarr label image with every level present and empty; returns the level arrays."""
    zarr = _zarr()
    try:
        group = zarr.open_group(str(path), mode="w", zarr_format=2)
        shapes = pyramid_shapes(height, width)
        arrays = [_new_array(group, str(k), s, _level_chunks(chunk, s)) for k, s in enumerate(shapes)]
        meta = ome_label_attrs(len(shapes), classes)
        meta["unetseg"] = attrs or {}
        group.attrs.update(meta)
    except OSError as exc:
        raise WriteError(exc.errno or errno.EIO, f"cannot write {path}: {describe_os_error(exc)}") from None
    return arrays


def stored_classes(attrs: dict) -> list:
    """Classes (ClassInfo) named in a store's image-label metadata: NGFF 0.4 at the top level, 0.5
    under "ome".  Loading keeps them, so a save does not replace them with the app's defaults."""
    from core.classes import ClassInfo

    label = attrs.get("image-label") or (attrs.get("ome") or {}).get("image-label") or {}
    names = {p.get("label-value"): p.get("name") for p in label.get("properties", []) if isinstance(p, dict)}
    out = []
    for c in label.get("colors", []):
        try:
            cid = int(c["label-value"])
            if 0 <= cid <= 255:
                color = tuple(int(v) for v in c["rgba"][:3])
                out.append(ClassInfo(cid, str(names.get(cid) or f"class {cid}"), color))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def _finish_interrupted_save(path: Path) -> None:
    """A save killed after its commit is finished now, one killed before it dropped (save_journal)."""
    from core.document.save_journal import finish_interrupted_save

    try:
        finish_interrupted_save(path)
    except Exception as exc:  # noqa: BLE001 - a read-only folder, a damaged journal: one sentence
        raise StoreError(f"{path}: a save of this mask was interrupted and cannot be finished here "
                         f"({short_error(exc)}); open it where it can be written.") from None


def _open_zarr(path: Path) -> list:
    """Level arrays of an OME-Zarr label image (multiscales order, else "0", "1"...), then its attrs."""
    zarr = _zarr()
    try:
        node = zarr.open(str(path), mode="r")
        if hasattr(node, "shape"):
            return [node, {}]
        attrs = dict(node.attrs)
        ms = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
        names = [d["path"] for d in ms[0]["datasets"]] if ms else \
            [str(k) for k in range(64) if str(k) in node][:64]
        if not names:
            raise KeyError("no level 0")
        return [node[n] for n in names] + [attrs]
    except Exception as exc:  # noqa: BLE001
        raise StoreError(f"{path}: not an OME-Zarr label mask ({short_error(exc)}).") from None


def _open_tiff(path: Path) -> tuple[list, list]:
    """Level arrays of a (pyramidal) TIFF of class ids, read lazily through tifffile's zarr store."""
    import tifffile

    zarr = _zarr()
    try:
        tif = tifffile.TiffFile(path)
    except Exception as exc:  # noqa: BLE001
        raise StoreError(f"{path}: not a readable TIFF mask ({short_error(exc)}).") from None
    try:
        series = tif.series[0]
        mapped = _memmap_levels(path, len(series.levels))
        if mapped is not None:
            return mapped, [tif.close]
        store = series.aszarr()
        root = zarr.open(store, mode="r")
        arrays = [root] if hasattr(root, "shape") else [root[str(i)] for i in range(len(series.levels))]
    except Exception as exc:  # noqa: BLE001
        tif.close()
        raise StoreError(f"{path}: not a readable TIFF mask ({short_error(exc)}).") from None
    return arrays, [store.close, tif.close]


def _memmap_levels(path: Path, count: int) -> list | None:
    """An uncompressed TIFF's levels as read-only memory maps (plain ``tifffile.imwrite`` writes one
    strip, which its zarr store would decode whole for every read); None when it is not mappable."""
    import tifffile

    try:
        return [tifffile.memmap(path, level=k, mode="r") for k in range(count)]
    except (ValueError, OSError, TypeError):
        return None


def stored_chunk_keys(array, chunks: tuple[int, int]) -> set[Key] | None:
    """Keys, on the in-memory grid ``chunks``, of the chunks that hold what a local zarr v2 array
    stores on disk (each stored file chunk marks every in-memory chunk it overlaps).

    None when they cannot be listed: a TIFF, a zarr v3 / NGFF 0.5 store ("c/<y>/<x>" keys, perhaps
    sharded), another store.  The caller then copies every chunk: reading a missing one costs
    little, losing one costs a user's work.
    """
    try:
        from zarr.storage import LocalStore

        meta = array.metadata
        if not isinstance(array.store, LocalStore) or getattr(meta, "zarr_format", None) != 2:
            return None
        fy, fx = (int(c) for c in array.chunks)
        separator = meta.dimension_separator or "."
        root = Path(array.store.root) / array.path
    except (AttributeError, ImportError, TypeError, ValueError):
        return None
    if not root.is_dir():
        return set()
    if separator == ".":
        names = [name.split(".") for name in os.listdir(root)]
    else:
        names = [(row.name, name) for row in root.iterdir() if row.is_dir() for name in os.listdir(row)]
    (cy, cx), (h, w), keys = chunks, array.shape, set()
    for parts in names:
        if len(parts) == 2 and all(p.isdigit() for p in parts):
            by, bx = int(parts[0]), int(parts[1])
            for y in range(by * fy // cy, -(-min(h, (by + 1) * fy) // cy)):
                for x in range(bx * fx // cx, -(-min(w, (bx + 1) * fx) // cx)):
                    keys.add((y, x))
    return keys


def new_temp_name(path: Path, tag: str) -> Path:
    return path.with_name(f".{path.name}.{tag}-{uuid.uuid4().hex[:8]}")
