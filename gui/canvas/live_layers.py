"""Live Training's two layers: the user's strokes, and the model's prediction of the view.

They must never be mistaken for each other, for the editable mask, or for the image: strokes are
drawn solid, in full-opacity class colours with an outline that contrasts with the image (dark on
a bright image, light on a dark one).  Background strokes (class 0 is black in the mask) are a
slate blue whose brightness is chosen against the image's: as far in contrast from the image's
background as from its most extreme objects (white ones on a dark image, black on a bright one),
never near-white, which on a dark fluorescence image looks like its brightest nuclei.
The prediction is the translucent mask look, drawn over the region it was computed for; the
uncertainty overlay replaces the prediction's colours with a heat scale whose opacity grows with
the model's doubt.
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
from gui.canvas.layers import MaskLayer, RasterItem, color_table
from gui.canvas.prediction_objects import PredictionObjects
from gui.infra import raster

STROKE_OUTLINE = (20, 20, 20, 255)  # on a bright image
STROKE_OUTLINE_ON_DARK = (235, 235, 235, 255)  # on a dark one
BACKGROUND_HUE = (80, 104, 176)  # background strokes: this slate blue, made lighter or darker
DARK = 0.18  # a median luminance below this is a dark image (where black and white contrast alike)
_WEIGHTS = np.array([0.2126, 0.7152, 0.0722])


def _linear(rgb) -> np.ndarray:
    c = np.asarray(rgb, np.float64)[..., :3] / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def luminance(rgb) -> np.ndarray:
    """Relative luminance (0-1, WCAG's, linear light) of 8-bit sRGB colours (... x 3)."""
    return _linear(rgb) @ _WEIGHTS


def contrast(a: float, b: float) -> float:
    """WCAG contrast ratio of two luminances (1 = none, 21 = black on white)."""
    return (max(a, b) + 0.05) / (min(a, b) + 0.05)


def background_stroke_color(backdrop: float) -> tuple[int, int, int]:
    """The slate blue at the luminance that contrasts equally with the image's median
    (``backdrop``) and with its opposite extreme (white on a dark image, black on a bright one)."""
    extreme = 1.0 if backdrop < DARK else 0.0
    target = float(np.sqrt((backdrop + 0.05) * (extreme + 0.05)) - 0.05)
    base = _linear(BACKGROUND_HUE)
    linear = np.clip(base * target / float(base @ _WEIGHTS), 0.0, 1.0)
    srgb = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)
    r, g, b = (int(round(v)) for v in np.clip(srgb * 255, 0, 255))
    return r, g, b


def backdrop_luminance(rgb: np.ndarray) -> float:
    """The median luminance of an image as shown (8-bit RGB or grey), from at most ~64k samples."""
    step = max(1, int(np.sqrt(rgb.shape[0] * rgb.shape[1] / 65536)))
    sample = np.asarray(rgb[::step, ::step])
    if sample.ndim == 2 or sample.shape[2] == 1:
        sample = np.repeat(sample.reshape(sample.shape[0], sample.shape[1], 1), 3, axis=2)
    return float(np.median(luminance(sample)))


class StrokeLayer(MaskLayer):
    """The strokes document: solid class colours, outlined; unannotated pixels transparent."""

    OUTLINE_WIDTH = 1

    def __init__(self, labels: Callable[[], np.ndarray], height: int, width: int):
        super().__init__(labels, height, width)
        self.setZValue(3)
        self.backdrop = 1.0  # the shown image's median luminance (set_backdrop)
        self._style: tuple = ((), ())

    def set_backdrop(self, luminance_: float) -> None:
        """How bright the image under the strokes is (0-1): picks the outline and background colours."""
        self.backdrop = float(luminance_)
        self.set_style(*self._style)

    @property
    def dark(self) -> bool:
        return self.backdrop < DARK

    def set_style(self, classes: Sequence[ClassInfo], opacity: float = 1.0, hidden: Iterable[int] = (),
                  outline: bool = True, outline_width: int = 1) -> None:
        hidden = list(hidden)
        self._style = (list(classes), opacity, hidden)
        table = color_table(classes, 255, hidden)
        table[0] = 0 if 0 in hidden else qRgba(*background_stroke_color(self.backdrop), 255)
        table[UNANNOTATED] = 0
        self._table = table
        colors = np.zeros((256, 4), np.uint8)
        colors[:] = STROKE_OUTLINE_ON_DARK if self.dark else STROKE_OUTLINE
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


class PredictionLayer(RasterItem):
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
        self.objects = PredictionObjects(self)  # a model that separates objects: their outlines

    def set_style(self, classes: Sequence[ClassInfo], opacity: float, hidden: Iterable[int],
                  outline_width: int = outline_paint.DEFAULT_WIDTH) -> None:
        alpha = int(round(max(0.0, min(1.0, opacity)) * 255))
        self._table = color_table(classes, alpha, hidden)
        self.objects.set_style(opacity, outline_width)
        self._rebuild()

    def set_prediction(self, box: Box | None, labels: np.ndarray | None, uncertainty: np.ndarray | None,
                       instances: np.ndarray | None = None, factor: int = 1) -> None:
        self.box, self.labels, self.uncertainty = box, labels, uncertainty
        self.objects.set_objects(box, factor, instances)
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
