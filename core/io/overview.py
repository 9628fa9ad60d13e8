"""A small picture of a whole image of any size, for the Overview mini-map.

A pyramid's top is read directly when it is small (``overview_level``).  A slide whose
smallest level is still large (a tiled TIFF without a pyramid, or levels that stop at 8192^2)
is reduced by ``stream_overview``: the coarsest level is read block by block, tile aligned,
and each block's pixels are summed into the thumbnail's box bins, so memory stays at one block
whatever the image size.  The thumbnail keeps the raw dtype and channels, so it is drawn with
the same display settings as the view; ``save_cached``/``load_cached`` keep it in the app's
data folder, keyed by the image's path, size and modification time.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

import numpy as np

from core.atomic import atomic_path
from core.io.display import as_channels

THUMB_SIDE = 512  # the thumbnail's longer side, in pixels
MAX_DIRECT_PIXELS = 16 * 1024 * 1024  # a level this small is read whole; above it, streamed
BLOCK = 2048  # block side of the streaming read (a multiple of the usual 256/512 tile sides)


def overview_level(levels: list[tuple[int, int]]) -> int | None:
    """The level to read whole for the thumbnail (the coarsest with a side of at least half the
    thumbnail's), or None when even that is over ``MAX_DIRECT_PIXELS``."""
    for level in range(len(levels) - 1, -1, -1):
        w, h = levels[level]
        if max(w, h) >= THUMB_SIDE // 2 or level == 0:
            return level if w * h <= MAX_DIRECT_PIXELS else None
    return None


def strided(pixels: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    """Every k-th pixel, so the longer side is at most ``side``."""
    step = max(1, -(-max(pixels.shape[:2]) // side))
    return np.ascontiguousarray(pixels[::step, ::step])


def direct_overview(source) -> np.ndarray | None:
    """The raw thumbnail from a small enough level, or None (then ``stream_overview``)."""
    level = overview_level(source.levels)
    if level is None:
        return None
    w, h = source.levels[level]
    return strided(as_channels(source.read_raw(0, h, 0, w, level)))


def stream_overview(source, side: int = THUMB_SIDE, progress: Callable[[int, int], None] | None = None,
                    should_cancel: Callable[[], bool] | None = None) -> np.ndarray | None:
    """The coarsest level box-reduced to at most ``side`` pixels on its longer side, read block by
    block; None when cancelled.  Integer data is rounded back to its dtype."""
    level = len(source.levels) - 1
    w, h = source.levels[level]
    f = max(1, -(-max(w, h) // side))
    out_h, out_w = -(-h // f), -(-w // f)
    sums = counts = None
    blocks = [(y, x) for y in range(0, h, BLOCK) for x in range(0, w, BLOCK)]
    for done, (y0, x0) in enumerate(blocks):
        if should_cancel is not None and should_cancel():
            return None
        y1, x1 = min(h, y0 + BLOCK), min(w, x0 + BLOCK)
        block = as_channels(source.read_raw(y0, y1, x0, x1, level))
        if sums is None:
            dtype = block.dtype
            sums = np.zeros((out_h, out_w, block.shape[2]), np.float64)
            counts = np.zeros((out_h, out_w, 1), np.float64)
        rows, by0 = _bins(y0, y1, f)
        cols, bx0 = _bins(x0, x1, f)
        part = np.add.reduceat(np.add.reduceat(block, rows, axis=0, dtype=np.float64), cols, axis=1)
        sums[by0:by0 + part.shape[0], bx0:bx0 + part.shape[1]] += part
        ny, nx = np.diff(np.append(rows, y1 - y0)), np.diff(np.append(cols, x1 - x0))
        counts[by0:by0 + part.shape[0], bx0:bx0 + part.shape[1], 0] += np.outer(ny, nx)
        if progress is not None:
            progress(done + 1, len(blocks))
    mean = sums / np.maximum(counts, 1)
    if np.issubdtype(dtype, np.integer) or dtype == np.bool_:
        mean = np.rint(mean)
    return mean.astype(dtype)


def _bins(start: int, stop: int, f: int) -> tuple[np.ndarray, int]:
    """Offsets (within [start, stop)) where a new bin of ``f`` pixels begins, and the first bin."""
    first = start // f
    edges = np.arange(first * f, stop, f)
    return np.maximum(edges - start, 0), first


def cache_name(path: str | os.PathLike) -> str:
    """The cache file's name for ``path`` as it is now (path, size, modification time)."""
    p = Path(path)
    try:
        st = p.stat()
        stamp = f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        stamp = "?"
    digest = hashlib.sha1(f"{p.resolve()}|{stamp}".encode()).hexdigest()[:20]
    return f"{digest}.npy"


def load_cached(folder: Path, path: str | os.PathLike) -> np.ndarray | None:
    file = Path(folder) / cache_name(path)
    try:
        return np.load(file, allow_pickle=False)
    except (OSError, ValueError):
        return None


def save_cached(folder: Path, path: str | os.PathLike, thumb: np.ndarray) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / cache_name(path)
    with atomic_path(file) as tmp:
        with open(tmp, "wb") as f:  # a file object: np.save would add ".npy" to a path
            np.save(f, np.ascontiguousarray(thumb), allow_pickle=False)
    return file
