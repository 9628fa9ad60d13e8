"""The Overview dock: a thumbnail of the whole image with the part in view outlined; a click
or a drag there moves the view (what a slide viewer's mini-map does)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from core.document.editing import Box
from gui.infra import raster
from gui.state.image_store import ImageEntry, ImageStore

THUMB_SIDE = 512  # the thumbnail's longer side, in pixels


def thumbnail(entry: ImageEntry) -> np.ndarray | None:
    """A small RGB picture of the whole image: the pyramid's top level, or a strided sample."""
    if entry.image is not None:
        rgb = entry.image.rgb
        step = max(1, -(-max(rgb.shape[:2]) // THUMB_SIDE))
        return np.ascontiguousarray(rgb[::step, ::step])
    source = entry.source
    if source is None:
        return None
    for level in range(len(source.levels) - 1, -1, -1):
        w, h = source.levels[level]
        if max(w, h) >= THUMB_SIDE // 2 or level == 0:
            if w * h > 4 * THUMB_SIDE * THUMB_SIDE * 16:
                return None  # no small level: no overview rather than decoding gigapixels
            try:
                rgb = source.read(0, h, 0, w, level)
            except Exception:  # noqa: BLE001 - no overview is better than an error here
                return None
            step = max(1, -(-max(w, h) // THUMB_SIDE))
            return np.ascontiguousarray(rgb[::step, ::step])
    return None


class MiniMap(QWidget):
    jump_requested = Signal(float, float)  # image coordinates to centre the view on

    def __init__(self, store: ImageStore, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("minimap")
        self.setMinimumSize(160, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setToolTip("The whole image; the rectangle is the part in view. Click or drag to move there.")
        self._image: QImage | None = None
        self._buffer: np.ndarray | None = None
        self._size = (1, 1)  # image (height, width)
        self.view = Box(0, 0, 0, 0)
        store.current_changed.connect(self._on_current)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(240, 180)

    def _on_current(self, entry: ImageEntry | None) -> None:
        thumb = thumbnail(entry) if entry is not None and entry.shown else None
        if thumb is None:
            self._image, self._buffer = None, None
        else:
            self._image, self._buffer = raster.rgb_image(thumb)
            w, h = entry.size
            self._size = (h, w)
        self.update()

    def set_view(self, box: Box) -> None:
        self.view = box
        self.update()

    def _target(self) -> QRectF:
        """Where the thumbnail is drawn: fitted and centred."""
        h, w = self._size
        scale = min(self.width() / w, self.height() / h)
        return QRectF((self.width() - w * scale) / 2, (self.height() - h * scale) / 2, w * scale, h * scale)

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(38, 40, 43))
        if self._image is None:
            painter.setPen(QColor(150, 150, 150))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No overview")
            return
        target = self._target()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        painter.drawImage(target, self._image)
        if not self.view.is_empty:
            h, w = self._size
            sx, sy = target.width() / w, target.height() / h
            rect = QRectF(target.left() + self.view.x0 * sx, target.top() + self.view.y0 * sy,
                          max(3.0, self.view.width * sx), max(3.0, self.view.height * sy))
            painter.setPen(QPen(QColor(0, 0, 0, 160), 3))
            painter.drawRect(rect)
            painter.setPen(QPen(QColor(255, 210, 40), 1.5))
            painter.drawRect(rect)

    def image_point(self, pos: QPointF) -> tuple[float, float] | None:
        if self._image is None:
            return None
        target = self._target()
        h, w = self._size
        x = (pos.x() - target.left()) / target.width() * w
        y = (pos.y() - target.top()) / target.height() * h
        return min(max(x, 0.0), w), min(max(y, 0.0), h)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self._jump(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._jump(event)

    def _jump(self, event: QMouseEvent) -> None:
        point = self.image_point(event.position())
        if point is not None:
            self.jump_requested.emit(*point)
