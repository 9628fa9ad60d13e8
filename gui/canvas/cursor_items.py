"""Screen-space decorations drawn in image coordinates: the brush outline and polygon preview.

Both use cosmetic pens (constant width on screen whatever the zoom), so their bounding boxes
are padded by a few screen pixels converted to image units; otherwise zooming out would
leave trails of unrepainted outline.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

_PAD_PX = 4.0


def _pen(color: QColor, width: float, style=Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(color, width, style)
    pen.setCosmetic(True)
    return pen


class _ScreenItem(QGraphicsItem):
    def __init__(self):
        super().__init__()
        self._scale = 1.0
        self.setZValue(10)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def set_view_scale(self, scale: float) -> None:
        if scale > 0 and scale != self._scale:
            self.prepareGeometryChange()
            self._scale = scale

    @property
    def pad(self) -> float:
        return _PAD_PX / self._scale


class BrushCursor(_ScreenItem):
    """A circle of the brush's true radius in image pixels, centred on the pointer."""

    def __init__(self):
        super().__init__()
        self._radius = 5.0

    @property
    def radius(self) -> float:
        return self._radius

    def set_radius(self, radius: float) -> None:
        if radius != self._radius:
            self.prepareGeometryChange()
            self._radius = float(radius)

    def boundingRect(self) -> QRectF:
        r = self._radius + self.pad
        return QRectF(-r, -r, 2 * r, 2 * r)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        r = self._radius
        painter.setPen(_pen(QColor(0, 0, 0, 200), 3))
        painter.drawEllipse(QPointF(0, 0), r, r)
        painter.setPen(_pen(QColor(255, 255, 255), 1.2))
        painter.drawEllipse(QPointF(0, 0), r, r)


class PolygonPreview(_ScreenItem):
    """Vertices placed so far, and the rubber-band edge to the pointer; ``line``: an open line
    drawn freehand (the Objects mode's split line), without shading or vertex dots."""

    def __init__(self, line: bool = False):
        super().__init__()
        self.line = line
        self._points: list[QPointF] = []
        self._hover: QPointF | None = None
        self._bounds = QRectF()

    def set_points(self, points: list[tuple[float, float]], hover: tuple[float, float] | None) -> None:
        self.prepareGeometryChange()
        self._points = [QPointF(x, y) for x, y in points]
        self._hover = QPointF(*hover) if hover is not None else None
        every = self._points + ([self._hover] if self._hover is not None else [])
        if every:
            xs = [p.x() for p in every]
            ys = [p.y() for p in every]
            self._bounds = QRectF(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
        else:
            self._bounds = QRectF()
        self.update()

    def boundingRect(self) -> QRectF:
        if self._bounds.isNull() and not self._points:
            return QRectF()
        p = self.pad
        return self._bounds.adjusted(-p, -p, p, p)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        if not self._points:
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        path = QPainterPath(self._points[0])
        for p in self._points[1:]:
            path.lineTo(p)
        if self._hover is not None:
            path.lineTo(self._hover)
        painter.setBrush(Qt.BrushStyle.NoBrush if self.line else QColor(255, 255, 255, 40))
        painter.setPen(_pen(QColor(0, 0, 0, 200), 3))
        painter.drawPath(path)
        painter.setPen(_pen(QColor(255, 220, 0), 1.5, Qt.PenStyle.DashLine))
        painter.drawPath(path)
        if self.line:
            return
        painter.setPen(_pen(QColor(0, 0, 0), 1))
        painter.setBrush(QColor(255, 220, 0))
        dot = 2.5 / self._scale
        for p in self._points:
            painter.drawEllipse(p, dot, dot)
