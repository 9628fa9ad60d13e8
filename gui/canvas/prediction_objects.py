"""The objects of Live Training's prediction: each outlined in a colour of its own, as the Objects
mode outlines painted objects (gui.canvas.object_layer, gui.infra.object_colors), over the
prediction's class colours, so touching objects the model separates show as two rings.

The object ids come ``factor`` times coarser than the image, over the prediction's ``box``; only
the exposed part is outlined, at screen resolution (gui.canvas.outline), so a zoom-in on an old,
large prediction costs what the screen shows.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from core.document.editing import Box
from gui.canvas import outline as outline_paint
from gui.infra.object_colors import IdColors
from gui.infra.raster import Region


class PredictionObjects(QGraphicsItem):
    """A child of the prediction layer (drawn over its fill)."""

    def __init__(self, parent: QGraphicsItem):
        super().__init__(parent)
        self._rect = parent.boundingRect()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self.colors = IdColors()
        self.width = outline_paint.DEFAULT_WIDTH
        self.box: Box | None = None
        self.factor = 1
        self.ids: np.ndarray | None = None
        self.paint_count = 0

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        return self._rect

    def set_objects(self, box: Box | None, factor: int, ids: np.ndarray | None) -> None:
        self.box, self.factor, self.ids = box, max(1, int(factor)), ids
        self.update()

    def set_style(self, opacity: float, width: int) -> None:
        self.colors = IdColors(min(255, int(round(max(0.0, min(1.0, opacity)) * 255)) + 96))
        self.width = outline_paint.clamp_width(width)
        self.update()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        ids, box, f = self.ids, self.box, self.factor
        if ids is None or box is None or not ids.size:
            return
        r = option.exposedRect
        sy0, sx0 = max(0, math.floor((r.top() - box.y0) / f)), max(0, math.floor((r.left() - box.x0) / f))
        sy1 = min(ids.shape[0], math.ceil((r.bottom() - box.y0) / f))
        sx1 = min(ids.shape[1], math.ceil((r.right() - box.x0) / f))
        if sy1 <= sy0 or sx1 <= sx0:
            return
        scale, width = outline_paint.screen_terms(painter, f, self.width)
        rgba = outline_paint.region_outline(ids, Region(sy0, sx0, sy1, sx1, 1), self.colors, width, scale)
        outline_paint.draw_outline(painter, rgba, Region(box.y0 + sy0 * f, box.x0 + sx0 * f,
                                                         box.y0 + sy1 * f, box.x0 + sx1 * f, f))
        self.paint_count += 1
