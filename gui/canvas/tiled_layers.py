"""The image and mask layers for images too large to hold in memory (whole slides, orthophotos).

The image layer draws the tiles in view from the pyramid level that matches the zoom; a tile
still being decoded is drawn from the finest coarser level already cached (the overview level
is decoded when the image opens), so the view never shows a blank or flashes.  The mask layer
reads the label pyramid of the chunked mask for the exposed region at the same level, and
colours it through the same 256-entry table as the in-memory mask layer.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QStyleOptionGraphicsItem, QWidget

from core.io.sources import ImageSource
from gui.canvas import outline as outline_paint
from gui.infra import raster
from gui.canvas.layers import MaskLayer, RasterItem
from gui.canvas.tiles import TILE, TileCache, TileLoader, level_factors, raw_key


class LabelPyramid(Protocol):
    """What the mask layer needs of a chunked mask (core.document.chunked_labels.ChunkedLabels)."""

    shape: tuple[int, int]
    num_levels: int

    def read_level(self, level: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray: ...


def level_for(factors: list[float], k: int) -> int:
    """The coarsest level whose downsampling does not exceed ``k`` (never fewer samples than
    screen pixels)."""
    best = 0
    for level, f in enumerate(factors):
        if f <= k * 1.001 and f >= factors[best]:
            best = level
    return best


class TiledImageLayer(RasterItem):
    """A slide (core.io.sources), or a multi-channel image in memory (gui.canvas.memory_source)."""

    def __init__(self, source: ImageSource, cache: TileCache, loader: TileLoader):
        super().__init__(source.height, source.width)
        self.source, self.cache, self.loader = source, cache, loader
        self.factors = level_factors(source)
        self.level_in_use = 0
        self.fallbacks = 0  # tiles drawn from a coarser level while their own was loading
        self.waiting = 0  # tiles in view at the last paint still loading or drawn with an old display
        self.setZValue(0)
        overview = len(self.factors) - 1
        w, h = source.levels[overview]
        if overview > 0 or w * h <= TILE * TILE * 16:  # a pyramid's top, or a small image
            for ty in range(-(-h // TILE)):
                for tx in range(-(-w // TILE)):
                    loader.load_now((overview, ty, tx))

    def pixel(self, x: int, y: int) -> tuple[int, int, int] | None:
        """The full-resolution colour at (x, y) if its tile is decoded (never decodes)."""
        tile = self.cache.get((0, y // TILE, x // TILE))
        return None if tile is None else tuple(int(v) for v in tile[y % TILE, x % TILE, 2::-1])

    def values(self, x: int, y: int) -> tuple | None:
        """The raw channel values at (x, y) if its raw tile is cached (never decodes)."""
        if getattr(self.source, "in_memory", False):
            return tuple(self.source.read_raw(y, y + 1, x, x + 1).reshape(-1).tolist())
        raw = self.cache.get(raw_key((0, y // TILE, x // TILE)))
        return None if raw is None else tuple(raw[y % TILE, x % TILE].reshape(-1).tolist())

    def set_compositor(self, compositor) -> None:
        """A new channel display: the tiles in view re-render from their raw pixels."""
        self.loader.set_compositor(compositor)
        self.update()

    def tile_ready(self, key) -> None:
        """Tile ``key`` is in the cache: repaint where it goes (the canvas forwards the loader's
        ``ready`` here while this layer is shown)."""
        level, ty, tx = key
        f = self.factors[level]
        self.update(QRectF(tx * TILE * f, ty * TILE * f, TILE * f, TILE * f))

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        region = raster.exposed_region(option, painter, self.source.height, self.source.width)
        if region is None:
            return
        level = level_for(self.factors, region.k)
        self.level_in_use = level
        f = self.factors[level]
        w, h = self.source.levels[level]
        ty0, ty1 = int(region.y0 / f) // TILE, min(-(-h // TILE) - 1, int((region.y1 - 1) / f) // TILE)
        tx0, tx1 = int(region.x0 / f) // TILE, min(-(-w // TILE) - 1, int((region.x1 - 1) / f) // TILE)
        smooth = raster.device_scale(painter) * f < 0.999
        missing = []
        for ty in range(ty0, ty1 + 1):
            for tx in range(tx0, tx1 + 1):
                tile = self.cache.get((level, ty, tx))
                if tile is None:
                    missing.append((ty, tx))
                    self._draw_fallback(painter, level, ty, tx)
                else:
                    self._draw_tile(painter, tile, tx * TILE * f, ty * TILE * f, f, smooth)
                    if not self.loader.is_current((level, ty, tx)):
                        missing.append((ty, tx))  # drawn as it was; re-rendered for the new display
        self.waiting = len(missing)
        # centre first: the loader serves the newest request first
        cy, cx = (ty0 + ty1) / 2, (tx0 + tx1) / 2
        for ty, tx in sorted(missing, key=lambda t: -math.hypot(t[0] - cy, t[1] - cx)):
            self.loader.request((level, ty, tx))

    def _draw_tile(self, painter: QPainter, tile: np.ndarray, x: float, y: float, f: float, smooth: bool,
                   source_rect: QRectF | None = None) -> None:
        th, tw = tile.shape[:2]
        image = QImage(tile.data, tw, th, tw * 4, QImage.Format.Format_RGB32)  # a view: no copy
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        painter.setClipRect(self._rect)
        if source_rect is None:
            painter.drawImage(QRectF(x, y, tw * f, th * f), image)
        else:
            painter.drawImage(QRectF(x, y, source_rect.width() * f, source_rect.height() * f), image, source_rect)
        painter.restore()
        self.paint_count += 1
        self.painted_pixels += th * tw

    def _draw_fallback(self, painter: QPainter, level: int, ty: int, tx: int) -> None:
        """Draw the part of the finest cached coarser tile that covers tile (ty, tx) of ``level``."""
        f = self.factors[level]
        x0, y0 = tx * TILE * f, ty * TILE * f  # level-0 pixels
        for coarse in range(level + 1, len(self.factors)):
            g = self.factors[coarse]
            cty, ctx = int(y0 / g) // TILE, int(x0 / g) // TILE
            tile = self.cache.get((coarse, cty, ctx))
            if tile is None:
                continue
            sx, sy = x0 / g - ctx * TILE, y0 / g - cty * TILE
            side = TILE * f / g
            src = QRectF(sx, sy, min(side, tile.shape[1] - sx), min(side, tile.shape[0] - sy))
            if src.width() <= 0 or src.height() <= 0:
                return
            self._draw_tile(painter, tile, x0, y0, g, True, src)
            self.fallbacks += 1
            return


class TiledMaskLayer(MaskLayer):
    """The chunked mask, read from its label pyramid at the level that matches the zoom."""

    def __init__(self, labels: LabelPyramid):
        h, w = labels.shape
        super().__init__(lambda: labels, h, w)
        self.pyramid = labels

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        labels = self.pyramid
        h, w = labels.shape
        region = raster.exposed_region(option, painter, h, w)
        if region is None:
            return
        k = region.k
        level = min(int(math.log2(k)), labels.num_levels - 1)
        step = k >> level  # sampling within the level (beyond the pyramid's top)
        f = 1 << level
        if self.outline:  # outlines need the neighbours beyond the edge (band and halo: gui.canvas.outline)
            scale, pixels = outline_paint.screen_terms(painter, k, self.outline_width)
            margin = outline_paint.margin_samples(pixels, scale) * k
        else:
            margin = 0
        y0, x0 = max(0, region.y0 - margin), max(0, region.x0 - margin)
        y1, x1 = min(h, region.y1 + margin), min(w, region.x1 + margin)
        lh, lw = -(-h // f), -(-w // f)
        block = labels.read_level(level, y0 // f, min(lh, -(-y1 // f)), x0 // f, min(lw, -(-x1 // f)))
        block = block[::step, ::step]
        ny, nx = region.sampled_shape
        if self.outline:
            top, left = (region.y0 - y0) // k, (region.x0 - x0) // k
            shape = (min(ny, block.shape[0] - top), min(nx, block.shape[1] - left))
            if min(shape) <= 0:
                return
            rgba = outline_paint.outline_block(block, top, left, shape, self.outline_colors, pixels, scale)
            outline_paint.draw_outline(painter, rgba, region._replace(y1=region.y0 + shape[0] * k,
                                                                      x1=region.x0 + shape[1] * k))
            self.paint_count += 1
            self.painted_pixels += shape[0] * shape[1]
            return
        block = np.ascontiguousarray(block[:ny, :nx])
        if block.size == 0:
            return
        image, _buffer = raster.indexed_image(block, self.table)
        self._draw(painter, region._replace(y1=region.y0 + block.shape[0] * k,
                                            x1=region.x0 + block.shape[1] * k), image)
