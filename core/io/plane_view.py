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
    ``read(plane)``: whole raw planes (core.io.plane_cache: the first one is the view's anyway)."""
    from core.io.display import SAMPLE_VALUES, sample_values, source_sample
    from core.io.sources import spread_planes

    if not getattr(source, "planes", ()):
        with lock if lock is not None else contextlib.nullcontext():
            return source_sample(source)
    picks = spread_planes(source.planes, planes)
    if read is not None:
        parts = [sample_values(read(p), SAMPLE_VALUES // len(picks)) for p in picks]
    else:
        parts = [source_sample(PlaneView(source, p, lock), SAMPLE_VALUES // len(picks)) for p in picks]
    width = min(p.shape[1] for p in parts)
    return np.concatenate([p[:, :width] for p in parts], axis=0)
