"""Whole planes of a TIFF stack, read page by page: the fast path of browsing a stack.

core.io.sources reads regions through tifffile's zarr store, which is what a tile wants.  A
whole plane of a stack is whole TIFF pages (one per channel, or one with the samples), and
tifffile reads those in one pass each: on a 4096 x 4096 x 2 x 16-bit plane that was 5-10x faster
than the same plane through the store (one strip per page or 64 rows per strip alike), then the
channels are interleaved one at a time (4x faster than NumPy's general transposing copy).

``TiffPlanes.open(path, source)`` gives a reader of ``source``'s planes (same axes rule,
core.io.axes; same channels, alpha dropped, NaN -> 0 as core.io.channels says) or None when the
file is not a TIFF whose first series is plain pages; it has its own file handle, so it may read
on another thread than the source's.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

import numpy as np


def channels_last(stack: np.ndarray) -> np.ndarray:
    """C x H x W -> a C-contiguous H x W x C copy, one channel at a time."""
    out = np.empty(stack.shape[1:] + stack.shape[:1], stack.dtype)
    for c in range(stack.shape[0]):
        out[..., c] = stack[c]
    return out


class TiffPlanes:
    def __init__(self, tif, series, grid_axes: str, grid: tuple[int, ...], colour: str | None,
                 plane_axes: str, channels: int, samples: bool):
        self._tif, self._series, self.samples = tif, series, samples
        self.grid_axes, self.grid, self.colour = grid_axes, grid, colour
        self.plane_axes, self.channels = plane_axes, channels
        self._lock = threading.Lock()
        self._scratch: np.ndarray | None = None  # one page, reused by every read into a given plane

    @classmethod
    def open(cls, path: str | Path, source) -> "TiffPlanes | None":
        path = Path(path)
        if path.suffix.lower() not in (".tif", ".tiff", ".btf", ".tf8") or not getattr(source, "planes", ()):
            return None
        import tifffile

        from core.io.axes import layout

        try:
            tif = tifffile.TiffFile(path)
        except Exception:  # noqa: BLE001 - the source reads it its own way
            return None
        try:
            series = tif.series[0]
            found = layout(path.name, series.axes, series.shape)
            axes, shape = found.axes, tuple(int(n) for n in series.shape)
            samples = axes.endswith("S")
            image_axes = "YXS" if samples else "YX"
            if not axes.endswith(image_axes) or found.plane_axes != source.plane_axes \
                    or tuple(found.planes) != tuple(source.planes) or len(series.pages) != int(np.prod(shape[:-len(image_axes)])):
                raise ValueError("not plain pages")
            return cls(tif, series, axes[:-len(image_axes)], shape[:-len(image_axes)], found.colour,
                       found.plane_axes, int(source.channels), samples)
        except Exception:  # noqa: BLE001 - anything unusual: the source's own path
            tif.close()
            return None

    def pages(self, plane: Sequence[int]) -> list[int]:
        """The series' page indices that hold ``plane`` (over ``plane_axes``), channels in order."""
        at = dict(zip(self.plane_axes, plane))
        ranges = [range(n) if a == self.colour else [at.get(a, 0)] for a, n in zip(self.grid_axes, self.grid)]
        index = np.array(np.meshgrid(*ranges, indexing="ij")).reshape(len(ranges), -1)
        return [int(i) for i in np.ravel_multi_index(tuple(index), self.grid)] if ranges else [0]

    def read(self, plane: Sequence[int], out: np.ndarray | None = None) -> np.ndarray:
        """``plane`` as H x W x channels, as ``source.read_raw`` gives it; into ``out`` (a plane this
        reader gave before, no longer used) when the pages are one integer channel each, page by
        page through one page-sized scratch: memory the process already holds, where a new plane
        is fresh memory whose first touch (huge pages compacted on the spot) took up to 10x the read."""
        from core.io.channels import without_nan

        pages = self.pages(plane)
        if out is not None and self._fits(out, len(pages)):
            with self._lock:
                if self._scratch is None:
                    self._scratch = np.empty(out.shape[:2], out.dtype)
                for c, page in enumerate(pages):
                    self._series.pages[page].asarray(out=self._scratch)
                    out[..., c] = self._scratch
            return out
        with self._lock:
            data = self._series.asarray(key=pages)
        if self.samples:  # pages of samples (RGB): H x W x S each
            data = data.reshape((-1,) + data.shape[-3:])
            if data.shape[0] == 1:
                raw = data[0]
            elif data.shape[-1] == 1:
                raw = channels_last(data[..., 0])
            else:
                raise ValueError("pages of several samples each, over a channel axis")
        else:
            raw = channels_last(data.reshape((-1,) + data.shape[-2:]))
        if raw.shape[2] == self.channels + 1:
            raw = raw[..., :-1]  # alpha: not data (core.io.channels)
        if raw.shape[2] != self.channels:
            raise ValueError(f"plane {tuple(plane)} has {raw.shape[2]} channels, the stack {self.channels}")
        return np.ascontiguousarray(without_nan(raw)[0])

    def _fits(self, out: np.ndarray, pages: int) -> bool:
        page = self._series.pages[0] if len(self._series.pages) else None
        return (not self.samples and pages == self.channels and page is not None and out.ndim == 3
                and out.shape == tuple(page.shape[-2:]) + (pages,) and out.dtype == page.dtype
                and out.dtype.kind in "ui" and out.flags.c_contiguous and out.flags.writeable)

    def close(self) -> None:
        self._scratch = None
        self._tif.close()
