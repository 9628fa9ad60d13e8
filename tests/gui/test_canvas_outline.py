"""Outlines 1-4 screen pixels wide at any zoom, with a dark halo, and no seams between repaints."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QImage, QPainter

from core.classes import default_classes
from gui.infra import raster
from gui.canvas.outline import (clamp_width, outline_colors, outline_rgba, paint_outline, region_outline,
                                repaint_margin, screen_scale)

CLASSES = default_classes(3)


def square(size=40, lo=10, hi=30, cid=1):
    labels = np.zeros((size, size), np.uint8)
    labels[lo:hi, lo:hi] = cid
    return labels


def band_width(rgba_row, color):
    return int(np.all(rgba_row[:, :3] == color, axis=1).sum())


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_the_band_inside_a_region_is_width_pixels_with_a_dark_ring_outside(width):
    colors = outline_colors(CLASSES, 0.5)
    rgba = outline_rgba(square(), colors, width)
    row = rgba[20]  # crosses the square's left and right edges
    color = colors[1, :3]
    assert band_width(row[:20], color) == width and band_width(row[20:], color) == width
    assert tuple(row[9]) == (0, 0, 0, round(0.75 * colors[1, 3]))  # the halo just outside the edge
    assert tuple(row[10 + width]) == (0, 0, 0, round(0.75 * colors[1, 3]))  # and just inside the band
    assert row[5, 3] == 0 and row[20, 3] == 0  # far from the edge: nothing drawn


def test_hidden_classes_and_zero_opacity_draw_nothing():
    assert not outline_rgba(square(), outline_colors(CLASSES, 0.5, hidden=[1]), 3).any()
    assert not outline_rgba(square(), outline_colors(CLASSES, 0.0), 3).any()


def test_width_is_counted_in_screen_pixels_whatever_the_zoom():
    labels = square()
    colors = outline_colors(CLASSES, 0.6)
    region = raster.Region(0, 0, 40, 40, 1)
    for scale in (1, 2, 5):
        rgba = region_outline(labels, region, colors, 2, scale)
        assert rgba.shape[:2] == (40 * scale, 40 * scale)
        assert band_width(rgba[20 * scale, : 20 * scale], colors[1, :3]) == 2


def test_a_region_painted_in_parts_equals_it_painted_whole():
    rng = np.random.default_rng(3)
    labels = np.kron(rng.integers(0, 3, (12, 12)), np.ones((6, 6), np.int64)).astype(np.uint8)
    colors = outline_colors(CLASSES, 0.5)
    for k, scale in ((1, 3), (2, 1)):
        whole = region_outline(labels, raster.Region(0, 0, 72, 72, k), colors, 3, scale)
        top = region_outline(labels, raster.Region(0, 0, 36, 72, k), colors, 3, scale)
        rest = region_outline(labels, raster.Region(36, 0, 72, 72, k), colors, 3, scale)
        assert np.array_equal(np.concatenate([top, rest]), whole)


def test_painted_outline_is_width_screen_pixels_at_137_percent(qapp):
    labels = square(60, 20, 40)
    colors = outline_colors(CLASSES, 1.0)
    for zoom, width in ((1.37, 1), (1.37, 4), (3.0, 2), (0.8, 3)):
        target = QImage(200, 200, QImage.Format.Format_ARGB32)
        target.fill(0xFFFFFFFF)
        painter = QPainter(target)
        painter.scale(zoom, zoom)
        paint_outline(painter, labels, raster.Region(0, 0, 60, 60, 1), colors, width)
        painter.end()
        y = int(30 * zoom)
        row = [target.pixelColor(x, y) for x in range(0, int(30 * zoom))]
        drawn = [c for c in row if (c.red(), c.green(), c.blue()) == tuple(int(v) for v in colors[1, :3])]
        assert len(drawn) == width, (zoom, width)
        assert min(c.lightness() for c in row) < 100  # the dark halo, over white


def test_settings_values_are_clamped_and_margins_grow_with_width():
    assert [clamp_width(v) for v in (0, 1, 4, 9, "3", None, "x")] == [1, 1, 4, 4, 3, 2, 2]
    assert screen_scale(0.7, 1) == 0.7 and screen_scale(0.3, 2) == 0.6 and screen_scale(3.2, 1) == 3.2
    assert repaint_margin(4, 1.0) > repaint_margin(1, 1.0) > 0


class _Pyramid:
    """A one-level label pyramid over an array (what a chunked mask offers the tiled layer)."""

    def __init__(self, labels):
        self.labels, self.shape, self.num_levels = labels, labels.shape, 1

    def read_level(self, level, y0, y1, x0, x1):
        return self.labels[y0:y1, x0:x1]


@pytest.mark.parametrize("zoom", [0.5, 1.37, 3.0])
def test_the_tiled_mask_layer_draws_the_same_outlines(qapp, zoom):
    from PySide6.QtCore import QRectF
    from PySide6.QtWidgets import QStyleOptionGraphicsItem

    from gui.canvas.layers import MaskLayer
    from gui.canvas.tiled_layers import TiledMaskLayer

    rng = np.random.default_rng(5)
    labels = np.kron(rng.integers(0, 3, (8, 10)), np.ones((9, 9), np.int64)).astype(np.uint8)
    images = []
    for layer in (MaskLayer(lambda: labels, *labels.shape), TiledMaskLayer(_Pyramid(labels))):
        layer.set_style(CLASSES, 0.8, [], True, 3)
        target = QImage(200, 200, QImage.Format.Format_ARGB32)
        target.fill(0xFFFFFFFF)
        painter = QPainter(target)
        painter.scale(zoom, zoom)
        option = QStyleOptionGraphicsItem()
        option.exposedRect = QRectF(0, 0, labels.shape[1], labels.shape[0])
        layer.paint(painter, option)
        painter.end()
        images.append(target)
    drawn = sum(images[0].pixel(x, y) != 0xFFFFFFFF for x in range(0, 200, 2) for y in range(0, 200, 2))
    assert images[0] == images[1] and drawn > 100  # the same outlines, and there are some
