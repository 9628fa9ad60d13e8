"""The live training chart: train loss and validation mIoU per epoch, painted with QPainter.

Two series share the x axis (epochs); loss is scaled on the left axis (0 to a rounded-up
maximum), mIoU on the right (always 0-1, so runs compare at a glance).  Drawn by hand rather
than with a plotting library: the app ships no matplotlib and needs only two polylines.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

LOSS_COLOR = QColor(230, 110, 40)
MIOU_COLOR = QColor(40, 120, 220)
MARGINS = (52, 30, 46, 34)  # left, top, right, bottom: room for tick labels and the legend


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^k at or above ``value`` (axis maxima read cleanly)."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power * (1 + 1e-9):
            return step * power
    return 10 * power


class TrainingPlot(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("training_plot")
        self.setMinimumSize(360, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.epochs: list[int] = []
        self.losses: list[float] = []
        self.mious: list[float] = []
        self.planned = 0

    def clear(self, planned: int = 0) -> None:
        self.epochs, self.losses, self.mious = [], [], []
        self.planned = planned
        self.update()

    def add_epoch(self, epoch: int, loss: float, miou: float) -> None:
        self.epochs.append(int(epoch))
        self.losses.append(float(loss))
        self.mious.append(float(miou))
        self.update()

    # -- painting -----------------------------------------------------------------------------
    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        text, grid = pal.text().color(), pal.mid().color()
        p.fillRect(self.rect(), pal.base())
        left, top, right, bottom = MARGINS
        area = QRectF(left, top, max(10, self.width() - left - right), max(10, self.height() - top - bottom))
        font = QFont(self.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.9))
        p.setFont(font)
        last = max([self.planned, *self.epochs, 1])
        loss_max = nice_ceiling(max([v for v in self.losses if math.isfinite(v)], default=1.0))
        self._draw_grid(p, area, text, grid, last, loss_max)
        self._draw_legend(p, area, text)
        if not self.epochs:
            message = "Loss and mIoU appear here after each epoch"
            box = p.fontMetrics().boundingRect(message).adjusted(-8, -4, 8, 4)
            box.moveCenter(area.center().toPoint())
            p.fillRect(box, self.palette().base())
            p.setPen(text)
            p.drawText(box, Qt.AlignmentFlag.AlignCenter, message)
        else:
            self._draw_series(p, area, self.losses, loss_max, last, LOSS_COLOR)
            self._draw_series(p, area, self.mious, 1.0, last, MIOU_COLOR)
        p.end()

    @staticmethod
    def _x(area: QRectF, epoch: float, last: int) -> float:
        return area.left() + (epoch / last if last else 0) * area.width()

    def _draw_grid(self, p: QPainter, area: QRectF, text: QColor, grid: QColor, last: int,
                   loss_max: float) -> None:
        fm = p.fontMetrics()
        for i in range(5):
            y = area.bottom() - i / 4 * area.height()
            p.setPen(QPen(grid, 1, Qt.PenStyle.DotLine if i else Qt.PenStyle.SolidLine))
            p.drawLine(QPointF(area.left(), y), QPointF(area.right(), y))
            p.setPen(LOSS_COLOR.darker(115))
            label = f"{loss_max * i / 4:.3g}"
            p.drawText(QRectF(0, y - 8, area.left() - 6, 16),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, label)
            p.setPen(MIOU_COLOR)
            p.drawText(QRectF(area.right() + 6, y - 8, 40, 16),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, f"{i / 4:.2f}")
        p.setPen(QPen(grid, 1))
        p.drawLine(area.bottomLeft(), area.topLeft())
        p.drawLine(area.bottomRight(), area.topRight())
        step = max(1, math.ceil(last / 10))
        p.setPen(text)
        for epoch in range(0, last + 1, step):
            x = self._x(area, epoch, last)
            p.drawLine(QPointF(x, area.bottom()), QPointF(x, area.bottom() + 3))
            p.drawText(QRectF(x - 20, area.bottom() + 4, 40, fm.height()),
                       Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, str(epoch))
        p.drawText(QRectF(area.left(), area.bottom() + 4 + fm.height(), area.width(), fm.height()),
                   Qt.AlignmentFlag.AlignHCenter, "epoch")

    def _draw_legend(self, p: QPainter, area: QRectF, text: QColor) -> None:
        fm = p.fontMetrics()
        x, y = area.left(), area.top() - fm.height() - 6
        for label, color in (("Train loss (left axis)", LOSS_COLOR), ("Validation mIoU (right axis)", MIOU_COLOR)):
            p.setPen(QPen(color, 2.5))
            mid = y + fm.height() / 2
            p.drawLine(QPointF(x, mid), QPointF(x + 18, mid))
            p.setBrush(color)
            p.drawEllipse(QPointF(x + 9, mid), 2.5, 2.5)
            p.setPen(text)
            p.drawText(QPointF(x + 24, y + fm.ascent()), label)
            x += 24 + fm.horizontalAdvance(label) + 18

    def _draw_series(self, p: QPainter, area: QRectF, values: list[float], top: float, last: int,
                     color: QColor) -> None:
        points = [QPointF(self._x(area, e, last), area.bottom() - min(max(v / top, 0.0), 1.0) * area.height())
                  for e, v in zip(self.epochs, values) if math.isfinite(v)]
        if not points:
            return
        path = QPainterPath(points[0])
        for point in points[1:]:
            path.lineTo(point)
        p.setPen(QPen(color, 2.2, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawPath(path)
        p.setBrush(color)
        p.setPen(QPen(self.palette().base().color(), 1.2))
        for point in points:
            p.drawEllipse(point, 3.5, 3.5)
