"""One plane of a stack seen as a 2-D image source, and samples of a whole stack.

The app, the live preview and the display statistics are written for 2-D sources
(``read(y0, y1, x0, x1, level)``); ``PlaneView(stack, plane)`` is such a source for one plane of
a stack (core.io.sources: ``plane_axes``, ``planes``), so none of them needs a second code path
per feature (docs/interfaces.md).  ``lock``, when given, is held around every read: tifffile's
file handles are not safe to read from two threads at once, and the app reads a stack from the
GUI thread, a prefetching thread and the live preview.

``stack_sample`` is what the Channels dock's contrast comes from: a few planes spread through the
stack share the sample, measured once when the stack opens, so stepping through the planes never
changes the contrast (a dim last plane stays dim).
"""

from __future__ import annotations

import contextlib
from typing import Sequence

import numpy as np

SAMPLE_PLANES = 3  # the planes (first, middle, last) the display sample of a stack comes from


class PlaneView:
    """Plane ``plane`` (a tuple over ``stack.plane_axes``) of ``stack`` as a 2-D source."""

    plane_axes = ""
    planes: tuple[int, ...] = ()

    def __init__(self, stack, plane: Sequence[int], lock=None):
        self.stack = stack
        self.plane = stack.plane(plane)
        self.lock = lock if lock is not None else contextlib.nullcontext()
        self.path = stack.path
        self.kind = stack.kind
        self.levels = list(stack.levels)
        self.channels, self.dtype = stack.channels, stack.dtype
        self.channel_names = list(stack.channel_names)

    @property
    def width(self) -> int:
        return self.levels[0][0]

    @property
    def height(self) -> int:
        return self.levels[0][1]

    @property
    def physical_sizes(self) -> dict[str, float]:
        return self.stack.physical_sizes

    def read(self, y0: int, y1: int, x0: int, x1: int, level: int = 0, plane=()) -> np.ndarray:
        with self.lock:
            return self.stack.read(y0, y1, x0, x1, level, plane=self.plane)

    def read_raw(self, y0: int, y1: int, x0: int, x1: int, level: int = 0, plane=()) -> np.ndarray:
        with self.lock:
            return self.stack.read_raw(y0, y1, x0, x1, level, plane=self.plane)

    def read_level(self, level: int, plane=()) -> np.ndarray:
        w, h = self.levels[level]
        return self.read(0, h, 0, w, level)

    def close(self) -> None:
        pass  # the stack's owner closes it

    def __enter__(self) -> "PlaneView":
        return self

    def __exit__(self, *exc) -> None:
        pass


def stack_sample(source, lock=None, planes: int = SAMPLE_PLANES, read=None) -> np.ndarray:
    """The raw H' x W' x C values the display statistics of ``source`` come from: for a stack, the
    samples of up to ``planes`` planes spread through it (each a share of the budget), stacked.
    ``read(plane)``: whole raw planes (core.io.plane_cache: the first one is the view's anyway);
    without it each plane's smallest level that has enough pixels is read."""
    from core.io.display import SAMPLE_VALUES, sample_values
    from core.io.sources import spread_planes

    picks = spread_planes(getattr(source, "planes", ()), planes)
    limit = SAMPLE_VALUES // len(picks)
    if read is not None and picks != [()]:
        parts = [sample_values(read(p), limit) for p in picks]
    else:
        parts = [level_sample(PlaneView(source, p, lock) if p else source, limit) for p in picks]
    width = min(p.shape[1] for p in parts)
    return np.concatenate([p[:, :width] for p in parts], axis=0)


def level_sample(source, limit: int) -> np.ndarray:
    """About ``limit`` values per channel of a 2-D source: its smallest level with at least 4x that
    many pixels (the whole image when it has no such level), strided."""
    from core.io.display import sample_values

    level = len(source.levels) - 1
    while level > 0 and source.levels[level][0] * source.levels[level][1] < 4 * limit:
        level -= 1
    w, h = source.levels[level]
    return sample_values(source.read_raw(0, h, 0, w, level), limit)
