"""A whole slide's strokes on the canvas: drawn from their chunks, and still seen when zoomed out.

The strokes of a slide are a ChunkedLabels (core.document.strokes, 255 = not annotated) as large
as the slide.  At full resolution the layer reads the exposed region as the mask layer does.
Zoomed out, the label pyramid's nearest-neighbour sample would drop a stroke thinner than the
sampling step (a 12-pixel stroke vanishes at 1/16), so each screen sample shows a stroke when any
of the pixels it covers holds one ("max-pool": the highest class id there).  That is computed only
from the chunks that may hold strokes (known when the slide opens, grown by every edit), each
reduced once per zoom step and kept until it changes, so a paint costs the stroked chunks in view,
never the slide.  A view over more stroked chunks than ``MAX_POOLED_CHUNKS`` (strokes everywhere,
far zoomed out) draws the pyramid's sample instead, whose cost does not grow with the strokes.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QStyleOptionGraphicsItem, QWidget

from core.document.editing import Box
from core.document.strokes import UNANNOTATED
from gui.canvas import outline as outline_paint
from gui.canvas.live_layers import StrokeLayer
from gui.infra import raster

MAX_POOLED_CHUNKS = 256  # stroked chunks in view reduced one by one; beyond, the pyramid's sample
MAX_KEPT = 4096  # reduced chunks kept (a few KB each at the zoom steps where they are used)


class TiledStrokeLayer(StrokeLayer):
    """``labels()`` returns the slide's strokes (a ChunkedLabels); ``update_box`` after each edit."""

    def __init__(self, labels: Callable[[], object]):
        strokes = labels()
        h, w = strokes.shape
        super().__init__(labels, h, w)
        self._seen = None
        self._content: set[tuple[int, int]] = set()
        self._reduced: dict[tuple[int, int], dict[int, tuple[int, int, np.ndarray]]] = {}
        self.pooled_chunks = 0  # chunks reduced by the last paint (benches and tests read it)
        self._follow(strokes)

    def _follow(self, strokes) -> None:
        """Start over on another strokes array (the document's labels were replaced)."""
        self._seen = strokes
        self._content = set(strokes.chunks_with_content())
        self._reduced.clear()

    def update_box(self, box: Box, scale: float = 1.0) -> None:
        """The strokes changed in ``box`` (level-0 pixels): its chunks may hold strokes now, and
        their reductions are stale."""
        strokes = self._labels()
        if strokes is not self._seen:
            self._follow(strokes)
        elif not box.is_empty:
            cy, cx = strokes.chunks
            for by in range(box.y0 // cy, -(-box.y1 // cy)):
                for bx in range(box.x0 // cx, -(-box.x1 // cx)):
                    self._content.add((by, bx))
                    self._reduced.pop((by, bx), None)
        super().update_box(box, scale)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        strokes = self._labels()
        if strokes is not self._seen:
            self._follow(strokes)
        h, w = strokes.shape
        region = raster.exposed_region(option, painter, h, w)
        if region is None:
            return
        k = region.k
        scale, pixels = outline_paint.screen_terms(painter, k, self.OUTLINE_WIDTH)
        margin = outline_paint.margin_samples(pixels, scale)  # the outline's context beyond the region
        ny, nx = region.sampled_shape
        y0, x0 = max(0, region.y0 - margin * k), max(0, region.x0 - margin * k)
        y1, x1 = min(h, region.y0 + (ny + margin) * k), min(w, region.x0 + (nx + margin) * k)
        block = self.sampled(y0, y1, x0, x1, k)
        top, left = (region.y0 - y0) // k, (region.x0 - x0) // k
        inner = block[top:top + ny, left:left + nx]
        if inner.size == 0 or not (block != UNANNOTATED).any():
            return  # nothing annotated here: most of the slide, most of the time
        shown = region._replace(y1=region.y0 + inner.shape[0] * k, x1=region.x0 + inner.shape[1] * k)
        image, _buffer = raster.indexed_image(np.ascontiguousarray(inner), self.table)
        self._draw(painter, shown, image)
        rgba = outline_paint.outline_block(block, top, left, inner.shape, self.outline_colors, pixels, scale)
        outline_paint.draw_outline(painter, rgba, shown)

    # -- the strokes as a screen sample ----------------------------------------------------------
    def sampled(self, y0: int, y1: int, x0: int, x1: int, k: int) -> np.ndarray:
        """Rows y0:y1, columns x0:x1 (multiples of ``k``, or the slide's edge) one sample per ``k``
        pixels: a stroke wherever any pixel of the sample holds one."""
        strokes = self._labels()
        rows, cols = -(-(y1 - y0) // k), -(-(x1 - x0) // k)
        cy, cx = strokes.chunks
        keys = [key for key in self._content
                if key[0] * cy < y1 and (key[0] + 1) * cy > y0 and key[1] * cx < x1 and (key[1] + 1) * cx > x0]
        if not keys:  # no stroke here: nothing is read (unpainted chunks never enter the strokes' cache)
            return np.full((rows, cols), UNANNOTATED, np.uint8)
        if k == 1:
            return strokes.read(y0, y1, x0, x1)
        if len(keys) > MAX_POOLED_CHUNKS:
            self.pooled_chunks = 0
            return self._pyramid_sample(strokes, y0, y1, x0, x1, k, rows, cols)
        code = np.zeros((rows, cols), np.uint8)  # 0: nothing; class id + 1 where a stroke is
        gy, gx = y0 // k, x0 // k
        for key in keys:
            ry, rx, reduced = self._reduce(strokes, key, k)
            a0, a1 = max(ry, gy), min(ry + reduced.shape[0], gy + rows)
            b0, b1 = max(rx, gx), min(rx + reduced.shape[1], gx + cols)
            if a1 > a0 and b1 > b0:
                part = code[a0 - gy:a1 - gy, b0 - gx:b1 - gx]
                np.maximum(part, reduced[a0 - ry:a1 - ry, b0 - rx:b1 - rx], out=part)
        self.pooled_chunks = len(keys)
        out = code - np.uint8(1)  # 0 - 1 wraps to 255: not annotated
        return out

    def _reduce(self, strokes, key: tuple[int, int], k: int) -> tuple[int, int, np.ndarray]:
        """(first sample row, first sample column, samples) of one chunk at step ``k``, on the grid
        of multiples of ``k``: class id + 1 of the highest class painted in each, 0 where none is."""
        kept = self._reduced.setdefault(key, {})
        if k in kept:
            return kept[k]
        if sum(len(v) for v in self._reduced.values()) > MAX_KEPT:
            self._reduced.clear()
            kept = self._reduced.setdefault(key, {})
        y0, y1, x0, x1 = strokes.chunk_region(key)
        chunk = strokes.read(y0, y1, x0, x1)
        ry, rx = y0 // k, x0 // k
        code = np.where(chunk != UNANNOTATED, chunk + np.uint8(1), np.uint8(0))
        rows = [max(0, i * k - y0) for i in range(ry, -(-y1 // k))]  # where each sample starts in the chunk
        cols = [max(0, j * k - x0) for j in range(rx, -(-x1 // k))]
        reduced = np.maximum.reduceat(np.maximum.reduceat(code, rows, axis=0), cols, axis=1)
        kept[k] = (ry, rx, reduced)
        return kept[k]

    @staticmethod
    def _pyramid_sample(strokes, y0: int, y1: int, x0: int, x1: int, k: int, rows: int, cols: int) -> np.ndarray:
        """The label pyramid's nearest-neighbour sample (as the slide's mask layer draws)."""
        level = min(int(math.log2(k)), strokes.num_levels - 1)
        step, f = k >> level, 1 << level
        lh, lw = strokes.level_shape(level)
        block = strokes.read_level(level, y0 // f, min(lh, -(-y1 // f)), x0 // f, min(lw, -(-x1 // f)))
        block = block[::step, ::step][:rows, :cols]
        if block.shape != (rows, cols):
            full = np.full((rows, cols), UNANNOTATED, np.uint8)
            full[:block.shape[0], :block.shape[1]] = block
            block = full
        return np.ascontiguousarray(block)
