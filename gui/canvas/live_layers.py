"""Live Training's two layers: the user's strokes, and the model's prediction of the view.

They must never be mistaken for each other or for the editable mask: strokes are drawn solid,
in full-opacity class colours with a dark outline (background strokes in light grey, since the
background colour is black), while the prediction is the translucent mask look, drawn over
the region it was computed for; the uncertainty overlay replaces the prediction's colours with
a heat scale whose opacity grows with the model's doubt.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage, QPainter, qRgba
from PySide6.QtWidgets import QStyleOptionGraphicsItem, QWidget

from core.classes import ClassInfo
from core.document.editing import Box
from core.document.strokes import UNANNOTATED
from gui.canvas import outline as outline_paint
from gui.canvas.layers import MaskLayer, _RasterItem, color_table
from gui.infra import raster

STROKE_OUTLINE = (20, 20, 20, 255)
BACKGROUND_STROKE = (235, 235, 235)  # class 0 is black in the mask: strokes of it must show


class StrokeLayer(MaskLayer):
    """The strokes document: solid class colours, outlined; unannotated pixels transparent."""

    OUTLINE_WIDTH = 1

    def __init__(self, labels: Callable[[], np.ndarray], height: int, width: int):
        super().__init__(labels, height, width)
        self.setZValue(3)

    def set_style(self, classes: Sequence[ClassInfo], opacity: float = 1.0, hidden: Iterable[int] = (),
                  outline: bool = True, outline_width: int = 1) -> None:
        hidden = list(hidden)
        table = color_table(classes, 255, hidden)
        table[0] = 0 if 0 in hidden else qRgba(*BACKGROUND_STROKE, 255)
        table[UNANNOTATED] = 0
        self._table = table
        colors = np.zeros((256, 4), np.uint8)
        colors[:] = STROKE_OUTLINE
        colors[UNANNOTATED, 3] = 0
        for cid in hidden:
            colors[cid, 3] = 0
        self.outline_colors = colors
        self.outline, self.outline_width = True, self.OUTLINE_WIDTH
        self.update()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        labels = self._labels()
        region = raster.exposed_region(option, painter, *labels.shape)
        if region is None:
            return
        k = region.k
        block = labels[region.y0:region.y1:k, region.x0:region.x1:k]
        if block.size == 0 or not (block != UNANNOTATED).any():
            return  # nothing annotated here: most of the image, most of the time
        image, _buffer = raster.indexed_image(block, self.table)
        self._draw(painter, region, image)
        outline_paint.paint_outline(painter, labels, region, self.outline_colors, self.OUTLINE_WIDTH)


class PredictionLayer(_RasterItem):
    """The newest prediction of a region (``box``, in image pixels), computed ``factor`` times
    coarser than the image; or its uncertainty (0 = sure, 1 = as unsure as can be)."""

    def __init__(self, height: int, width: int):
        super().__init__(height, width)
        self.setZValue(2)
        self.box: Box | None = None
        self.labels: np.ndarray | None = None
        self.uncertainty: np.ndarray | None = None  # uint8, 255 = most unsure
        self.show_uncertainty = False
        self._table: list[int] = [0] * 256
        self._heat = heat_table()
        self._image: QImage | None = None
        self._buffer: np.ndarray | None = None

    def set_style(self, classes: Sequence[ClassInfo], opacity: float, hidden: Iterable[int]) -> None:
        alpha = int(round(max(0.0, min(1.0, opacity)) * 255))
        self._table = color_table(classes, alpha, hidden)
        self._rebuild()

    def set_prediction(self, box: Box | None, labels: np.ndarray | None, uncertainty: np.ndarray | None) -> None:
        self.box, self.labels, self.uncertainty = box, labels, uncertainty
        self._rebuild()

    def set_show_uncertainty(self, on: bool) -> None:
        self.show_uncertainty = bool(on)
        self._rebuild()

    def _rebuild(self) -> None:
        self._image = self._buffer = None
        source = self.uncertainty if self.show_uncertainty else self.labels
        if source is not None and source.size:
            table = self._heat if self.show_uncertainty else self._table
            self._image, self._buffer = raster.indexed_image(np.ascontiguousarray(source), table)
        self.update()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if self._image is None or self.box is None:
            return
        b = self.box
        painter.save()
        painter.setClipRect(self._rect)
        painter.drawImage(QRectF(b.x0, b.y0, b.width, b.height), self._image)
        painter.restore()
        self.paint_count += 1


def heat_table() -> list[int]:
    """Uncertainty 0..255 -> transparent where the model is sure, through orange to opaque
    magenta where it cannot tell the classes apart (visible from a quarter of the way up)."""
    u = np.linspace(0.0, 1.0, 256)
    strength = np.clip(u * 2.0, 0.0, 1.0) ** 0.7
    r = np.full(256, 255.0)
    g = 190 * (1 - strength)
    b = 40 + 200 * strength
    a = 235 * strength
    return [qRgba(int(r[i]), int(g[i]), int(b[i]), int(a[i])) for i in range(256)]
