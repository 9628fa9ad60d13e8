"""An image held in memory, read the way the tiled view reads a slide: so a multi-channel image
is rendered per tile on the loader thread and kept rendered in the tile cache, and a pan only
blits (compositing a full-HD view of four 16-bit channels at every paint took 70 ms a frame;
bench/channels_view.py).

Zoomed-out levels are every 2nd, 4th, ... pixel, taken when a tile is rendered (no copy of the
image is made), down to a level that fits in one tile.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.io.display import as_channels


class MemorySource:
    in_memory = True  # raw tiles are slices of the array: the loader does not cache them
    kind = "in memory"

    def __init__(self, pixels: np.ndarray, name: str = "image", top: int = 512):
        self.pixels = as_channels(pixels)
        self.path = Path(name)
        h, w = self.pixels.shape[:2]
        self.levels = [(w, h)]
        f = 1
        while max(-(-w // f), -(-h // f)) > top:
            f *= 2
            self.levels.append((-(-w // f), -(-h // f)))
        self.channels, self.dtype = self.pixels.shape[2], self.pixels.dtype

    @property
    def width(self) -> int:
        return self.levels[0][0]

    @property
    def height(self) -> int:
        return self.levels[0][1]

    def read_raw(self, y0: int, y1: int, x0: int, x1: int, level: int = 0) -> np.ndarray:
        f = 1 << level
        return np.ascontiguousarray(self.pixels[y0 * f:y1 * f:f, x0 * f:x1 * f:f])
