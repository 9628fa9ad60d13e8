"""The Overview dock: a thumbnail of the whole image with the part in view outlined; a click
or a drag there moves the view (what a slide viewer's mini-map does).

Every slide has one: when its pyramid has no small level, the thumbnail is built in the
background (gui.jobs.overview) and cached; meanwhile the dock says so.  The thumbnail keeps the
raw channels, so it is drawn with the same channel display as the view.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from core.document.editing import Box
from core.io.images import to_rgb8
from core.io.overview import direct_overview, strided
from gui.infra import raster
from gui.jobs.overview import OverviewBuilder
from gui.state.display import DisplaySettings, ImageDisplay, shown_pixels
from gui.state.image_store import ImageEntry, ImageStore, path_key
from gui.state.stack_loading import shown_plane_pixels

def thumbnail(entry: ImageEntry, view: ImageDisplay) -> np.ndarray | None:
    """A small picture of the whole image, in the pixels ``view`` draws (8-bit RGB for a
    photograph, else raw channels): strided from memory, a pyramid's small top level, or the
    overview built in the background; None when a slide has none yet."""
    if entry.image is not None:
        return strided(shown_pixels(entry.image, view))
    if entry.stack is not None:  # the shown plane (read whole for the view: gui.state.stack_loading)
        if entry.plane_pixels is None or entry.stack.plane not in entry.plane_pixels:
            return None  # still being read (never here, on the window's thread): drawn once the view has it
        try:
            return strided(shown_plane_pixels(entry))
        except Exception:  # noqa: BLE001 - the view says why the plane cannot be read
            return None
    source = entry.source
    if source is None:
        return None
    if entry.overview is not None:
        return entry.overview
    try:
        return direct_overview(source)
    except Exception:  # noqa: BLE001 - no overview is better than an error here
        return None


class MiniMap(QWidget):
    jump_requested = Signal(float, float)  # image coordinates to centre the view on

    def __init__(self, store: ImageStore, display: DisplaySettings, builder: OverviewBuilder,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("minimap")
        self.setMinimumSize(160, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setToolTip("The whole image; the rectangle is the part in view. Click or drag to move there.")
        self._image: QImage | None = None
        self._buffer: np.ndarray | None = None
        self._thumb: np.ndarray | None = None  # what is drawn, before the display renders it
        self._key: str | None = None  # the image the thumbnail is of (gui.state.image_store.path_key)
        self._size = (1, 1)  # image (height, width)
        self.message = "No overview"  # what the dock says when there is no thumbnail
        self.view = Box(0, 0, 0, 0)
        self.store, self.display, self.builder = store, display, builder
        store.current_changed.connect(self._on_current)
        display.events.view.connect(self._render)
        builder.built.connect(lambda entry: entry is store.current and self._on_current(entry))
        builder.failed.connect(self._on_failed)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(240, 180)

    def _on_current(self, entry: ImageEntry | None) -> None:
        shown = entry is not None and entry.shown
        self._key = path_key(entry.path) if shown else None
        self._thumb = thumbnail(entry, self.display.view) if shown else None
        if shown and self._thumb is None and entry.source is not None:
            entry.overview = self.builder.cached(entry)
            self._thumb = entry.overview
            if self._thumb is None:
                self.builder.request(entry)
        building = shown and self._thumb is None and self.builder.building(entry)
        self.message = "Building the overview…" if building else "No overview"
        if shown:
            w, h = entry.size
            self._size = (h, w)
        self._render()

    def refresh(self) -> None:
        """The shown image's thumbnail again (another plane of a stack is shown)."""
        self._on_current(self.store.current)

    def _on_failed(self, entry: ImageEntry, message: str) -> None:
        if entry is self.store.current:
            self.message = "No overview"
            self.setToolTip(message)
            self.update()

    def _render(self, *_) -> None:
        """Draw the thumbnail with the current display (the overview follows the channel panel)."""
        thumb, view = self._thumb, self.display.view
        if thumb is not None and view.key != self._key:
            return  # the next image's display, set before this dock heard of the image
        if thumb is None:
            self._image, self._buffer = None, None
        else:
            compositor = view.compositor()
            rgb = compositor.rgb(thumb) if compositor is not None else to_rgb8(thumb)
            self._image, self._buffer = raster.rgb_image(np.ascontiguousarray(rgb))
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
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.message)
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
