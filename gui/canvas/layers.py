"""The two graphics items of the canvas: the image, and the label mask over it.

Both paint only ``option.exposedRect`` (``ItemUsesExtendedStyleOption``), sampled to the
screen's resolution (gui.infra.raster).  The mask is drawn from the document's own label buffer
through a 256-entry colour table with alpha, so opacity, visibility and class colours are a
table rebuild, and a brush dab repaints just its dirty box.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QPainter, qRgba
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from core.classes import ClassInfo
from core.document.editing import Box
from core.io.masks import color_lut
from gui.canvas import outline as outline_paint
from gui.infra import raster


def color_table(classes: Sequence[ClassInfo], alpha: int, hidden: Iterable[int] = ()) -> list[int]:
    """QRgb per class id: class colour at ``alpha``; background and hidden ids transparent."""
    lut = color_lut(classes)
    table = [qRgba(int(r), int(g), int(b), alpha) for r, g, b in lut.tolist()]
    table[0] = 0
    for cid in hidden:
        if 0 <= cid < 256:
            table[cid] = 0
    return table


class RasterItem(QGraphicsItem):
    def __init__(self, height: int, width: int):
        super().__init__()
        self._rect = QRectF(0, 0, width, height)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self.paint_count = 0  # paints since creation (benchmarks and tests read it)
        self.painted_pixels = 0  # sampled pixels converted by those paints

    def boundingRect(self) -> QRectF:
        return self._rect

    def _draw(self, painter: QPainter, region: raster.Region, image, smooth: bool = False) -> None:
        ny, nx = region.sampled_shape
        k = region.k
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        painter.setClipRect(self._rect, Qt.ClipOperation.IntersectClip)
        painter.drawImage(QRectF(region.x0, region.y0, nx * k, ny * k), image)
        painter.restore()
        self.paint_count += 1
        self.painted_pixels += ny * nx


class ImageLayer(RasterItem):
    """The RGB image; zoomed out it draws from box-filtered reductions once they exist."""

    level_in_use = 0  # the whole image is in memory: always full resolution

    def __init__(self, rgb: np.ndarray, request_pyramid: Callable[["ImageLayer"], None] | None = None):
        super().__init__(rgb.shape[0], rgb.shape[1])
        self.rgb = rgb
        self.levels: dict[int, np.ndarray] = {}
        self._request_pyramid = request_pyramid
        self._requested = False
        self.setZValue(0)

    def pixel(self, x: int, y: int) -> tuple[int, int, int] | None:
        return tuple(int(v) for v in self.rgb[y, x])

    def values(self, x: int, y: int) -> None:
        """Raw channel values: none for a photograph (its colour is its value)."""
        return None

    def set_levels(self, levels: dict[int, np.ndarray]) -> None:
        self.levels = dict(levels)
        self.update()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        h, w = self.rgb.shape[:2]
        region = raster.exposed_region(option, painter, h, w, margin=2)
        if region is None:
            return
        k = region.k
        source, factor = self.rgb, 1
        if k > 1:
            if not self.levels and not self._requested and self._request_pyramid is not None:
                self._requested = True
                self._request_pyramid(self)
            usable = [s for s in self.levels if s <= k]
            if usable:
                factor = max(usable)
                source = self.levels[factor]
        stride = k // factor
        y0, x0 = region.y0 // factor, region.x0 // factor
        ny, nx = region.sampled_shape
        block = source[y0:y0 + ny * stride:stride, x0:x0 + nx * stride:stride]
        if block.shape[0] < ny or block.shape[1] < nx:  # a reduction's edge rounds down
            padded = np.zeros((ny, nx, 3), np.uint8)
            padded[:block.shape[0], :block.shape[1]] = block
            block = padded
        image, _buffer = raster.rgb_image(block)
        # shrinking by less than 2x (what sampling leaves) is filtered; enlarging shows pixels
        self._draw(painter, region, image, smooth=raster.device_scale(painter) * k < 0.999)


class MaskLayer(RasterItem):
    """The label mask of a document, read from ``labels()`` at paint time."""

    def __init__(self, labels: Callable[[], np.ndarray], height: int, width: int):
        super().__init__(height, width)
        self._labels = labels
        self._table: list[int] = [0] * 256
        self.outline_colors = np.zeros((256, 4), np.uint8)
        self.outline = False
        self.outline_width = outline_paint.DEFAULT_WIDTH
        self.setZValue(1)

    @property
    def table(self) -> list[int]:
        """The fill colour table (outline mode draws from ``outline_colors`` instead)."""
        return self._table

    def set_style(self, classes: Sequence[ClassInfo], opacity: float, hidden: Iterable[int],
                  outline: bool, outline_width: int = outline_paint.DEFAULT_WIDTH) -> None:
        hidden = list(hidden)
        alpha = int(round(max(0.0, min(1.0, opacity)) * 255))
        self._table = color_table(classes, alpha, hidden)
        self.outline_colors = outline_paint.outline_colors(classes, opacity, hidden)
        self.outline = bool(outline)
        self.outline_width = outline_paint.clamp_width(outline_width)
        self.update()

    def update_box(self, box: Box, scale: float = 1.0) -> None:
        """Repaint the dirty ``box`` (grown in outline mode: neighbours' bands and halos change too)."""
        if box.is_empty:
            return
        grow = outline_paint.repaint_margin(self.outline_width, scale) if self.outline else 0.0
        self.update(QRectF(box.x0 - grow, box.y0 - grow, box.width + 2 * grow, box.height + 2 * grow))

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        labels = self._labels()
        region = raster.exposed_region(option, painter, *labels.shape)
        if region is None:
            return
        if self.outline:  # 1-4 screen pixels with a dark halo, at any zoom
            outline_paint.paint_outline(painter, labels, region, self.outline_colors, self.outline_width)
            self.paint_count += 1
            self.painted_pixels += region.sampled_shape[0] * region.sampled_shape[1]
            return
        k = region.k
        block = labels[region.y0:region.y1:k, region.x0:region.x1:k]
        image, _buffer = raster.indexed_image(block, self.table)
        self._draw(painter, region, image)
