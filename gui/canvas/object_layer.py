"""The Objects mode's layer: every object outlined in a colour of its own, the selected one white.

Drawn like the mask's outline mode (gui.canvas.outline): a band of 1-4 screen pixels with a
dark halo at every zoom, from the document's uint32 id array, so two touching objects show as
two differently coloured rings.  An object's colour comes from a hash of its id: consecutive
ids (objects painted one after the other) get far-apart hues (gui.infra.object_colors).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from core.document.editing import Box
from gui.canvas import outline as outline_paint
from gui.infra import raster
from gui.infra.object_colors import IdColors


class ObjectLayer(QGraphicsItem):
    """Outlines of the objects of ``ids()`` (None: the layer is not in use yet, nothing to draw)."""

    def __init__(self, ids: Callable[[], "np.ndarray | None"], height: int, width: int):
        super().__init__()
        self._ids = ids
        self._rect = QRectF(0, 0, width, height)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self.colors = IdColors()
        self.width = outline_paint.DEFAULT_WIDTH
        self.paint_count = 0
        self.setZValue(1.5)  # over the class mask, under Live Training's prediction and strokes

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        return self._rect

    def set_style(self, opacity: float, width: int, selected: int) -> None:
        alpha = min(255, int(round(max(0.0, min(1.0, opacity)) * 255)) + 96)
        self.colors = IdColors(alpha, selected)
        self.width = outline_paint.clamp_width(width)
        self.update()

    def update_box(self, box: Box, scale: float = 1.0) -> None:
        if box.is_empty:
            return
        grow = outline_paint.repaint_margin(self.width, scale)
        self.update(QRectF(box.x0 - grow, box.y0 - grow, box.width + 2 * grow, box.height + 2 * grow))

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        ids = self._ids()
        if ids is None:
            return
        region = raster.exposed_region(option, painter, *ids.shape)
        if region is None:
            return
        outline_paint.paint_outline(painter, ids, region, self.colors, self.width)
        self.paint_count += 1
