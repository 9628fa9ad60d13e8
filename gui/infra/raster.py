"""Turning the exposed part of a big numpy raster into a small QImage, per paint.

A paint never converts a whole 8192x8192 array: it takes the exposed rectangle, and when
zoomed out only every k-th pixel of it (k a power of two chosen from the view's scale), so
the work per paint is about the number of screen pixels covered, not image pixels.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QStyleOptionGraphicsItem


class Region(NamedTuple):
    """Exposed image pixels ``[y0, y1) x [x0, x1)`` sampled every ``k`` pixels (y0, x0 % k == 0)."""

    y0: int
    x0: int
    y1: int
    x1: int
    k: int

    @property
    def sampled_shape(self) -> tuple[int, int]:
        return (-(-(self.y1 - self.y0) // self.k), -(-(self.x1 - self.x0) // self.k))


def sampling_step(lod: float, max_step: int = 1 << 12) -> int:
    """Largest power of two k with k <= 1 / lod: never fewer samples than screen pixels."""
    if lod <= 0 or lod >= 1:
        return 1
    return int(min(max_step, 1 << int(math.floor(math.log2(1.0 / lod) + 1e-9))))


def device_scale(painter: QPainter) -> float:
    """Device pixels per item unit (the view's zoom times the screen's pixel ratio)."""
    return QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.deviceTransform())


def exposed_region(option: QStyleOptionGraphicsItem, painter: QPainter, height: int,
                   width: int, max_step: int = 1 << 12, margin: int = 0) -> Region | None:
    """The exposed rectangle in image pixels, grown by ``margin`` samples on each side
    (filtered drawing needs neighbours beyond the edge, or partial repaints leave seams)."""
    k = sampling_step(device_scale(painter), max_step)
    r = option.exposedRect
    grow = margin * k
    x0 = max(0, math.floor(r.left()) - grow)
    y0 = max(0, math.floor(r.top()) - grow)
    x1 = min(width, math.ceil(r.right()) + grow)
    y1 = min(height, math.ceil(r.bottom()) + grow)
    if x1 <= x0 or y1 <= y0:
        return None
    return Region(y0 - y0 % k, x0 - x0 % k, y1, x1, k)


def _padded(arr: np.ndarray, row_bytes: int) -> tuple[np.ndarray, int]:
    """A C-contiguous copy whose rows are a multiple of 4 bytes (what QImage expects)."""
    stride = (row_bytes + 3) & ~3
    h = arr.shape[0]
    if stride == row_bytes:
        return np.ascontiguousarray(arr), stride
    buf = np.empty((h, stride), np.uint8)
    buf[:, :row_bytes] = arr.reshape(h, row_bytes)
    return buf, stride


def indexed_image(labels: np.ndarray, table: list[int]) -> tuple[QImage, np.ndarray]:
    """An Indexed8 QImage over a copy of ``labels`` (keep the returned buffer alive)."""
    h, w = labels.shape
    buf, stride = _padded(labels, w)
    image = QImage(buf.data, w, h, stride, QImage.Format.Format_Indexed8)
    image.setColorTable(table)
    return image, buf


def rgb_image(rgb: np.ndarray) -> tuple[QImage, np.ndarray]:
    """An RGB888 QImage over a copy of ``rgb`` (keep the returned buffer alive)."""
    h, w = rgb.shape[:2]
    buf, stride = _padded(rgb.reshape(h, w * 3), w * 3)
    return QImage(buf.data, w, h, stride, QImage.Format.Format_RGB888), buf


def build_pyramid(rgb: np.ndarray, min_side: int = 256) -> dict[int, np.ndarray]:
    """Box-filtered 2x, 4x, 8x... reductions of ``rgb`` by step, until the short side < min_side."""
    from PIL import Image

    levels: dict[int, np.ndarray] = {}
    current = Image.fromarray(np.ascontiguousarray(rgb))
    step = 1
    while min(current.size) >= 2 * min_side:
        current = current.reduce(2)
        step *= 2
        levels[step] = np.asarray(current)
    return levels
