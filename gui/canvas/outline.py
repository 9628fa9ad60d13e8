"""Outlines you can see: 1-4 screen pixels wide whatever the zoom, with a dark halo.

Why: the Outlines Only mode drew each region's edge one image sample wide, which is one screen
pixel or less when zoomed out and a hairline over a busy image; class colours vanished on
images of the same hue.  Here the exposed region is brought to screen resolution first (each
sample repeated ``s`` times, ``s`` = screen pixels per sample), so the width is counted in
screen pixels; the band inside each visible region gets its class colour and a one-pixel dark
ring around the band (the halo) separates it from any background.  The work is proportional to
the screen pixels covered, as for every paint in gui.infra.raster.
The mask layer's outline mode draws with ``paint_outline``.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QImage, QPainter

from core.classes import ClassInfo
from core.io.masks import color_lut
from gui.infra import raster

MIN_WIDTH, MAX_WIDTH = 1, 4
DEFAULT_WIDTH = 2
HALO_RGB = (0, 0, 0)
HALO_SHARE = 0.75  # the halo's alpha relative to the outline's
MAX_SCALE = 64


def clamp_width(value: object, default: int = DEFAULT_WIDTH) -> int:
    """An outline width in 1..4 screen pixels (anything unusable: ``default``)."""
    try:
        width = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return default
    return min(MAX_WIDTH, max(MIN_WIDTH, width))


def outline_colors(classes: Sequence[ClassInfo], opacity: float, hidden: Iterable[int] = ()) -> np.ndarray:
    """RGBA (256 x 4, not premultiplied) per class id: background and hidden classes transparent;
    outlines get more alpha than filled regions (thin lines need it), still 0 at opacity 0."""
    alpha = int(round(max(0.0, min(1.0, opacity)) * 255))
    colors = np.zeros((256, 4), np.uint8)
    colors[:, :3] = color_lut(classes)
    colors[:, 3] = 0 if alpha == 0 else min(255, alpha + 96)
    colors[0, 3] = 0
    for cid in hidden:
        if 0 <= cid < 256:
            colors[cid, 3] = 0
    return colors


def screen_scale(device_scale: float, k: int) -> float:
    """Screen pixels per drawn sample: at most about one when zoomed out (sampling keeps it so),
    the zoom factor when zoomed in."""
    return float(min(MAX_SCALE, max(1e-3, device_scale * k)))


def _dilate(mask: np.ndarray) -> np.ndarray:
    """3x3 square dilation (separable: rows, then columns)."""
    rows = mask.copy()
    rows[1:] |= mask[:-1]
    rows[:-1] |= mask[1:]
    out = rows.copy()
    out[:, 1:] |= rows[:, :-1]
    out[:, :-1] |= rows[:, 1:]
    return out


def boundary(labels: np.ndarray) -> np.ndarray:
    """Pixels whose label differs from a 4-neighbour's (both sides of every edge)."""
    edge = np.zeros(labels.shape, bool)
    vert = labels[1:, :] != labels[:-1, :]
    edge[1:, :] |= vert
    edge[:-1, :] |= vert
    horz = labels[:, 1:] != labels[:, :-1]
    edge[:, 1:] |= horz
    edge[:, :-1] |= horz
    return edge


def outline_rgba(labels: np.ndarray, colors, width: int, halo: bool = True) -> np.ndarray:
    """RGBA outlines of ``labels`` (already at screen resolution): a ``width``-pixel band in the
    class colour inside every visible region, and a one-pixel dark ring around each band.

    ``colors``: RGBA per class id (256 x 4), or for ids beyond 255 (objects) a callable giving
    each pixel's 32-bit RGBA word (0: not drawn) with an ``alpha`` attribute for the halo."""
    width = clamp_width(width)
    band = boundary(labels)
    for _ in range(width - 1):
        band = _dilate(band)
    if callable(colors):
        words = np.asarray(colors(labels), np.uint32)
        band &= words != 0
        out = np.where(band, words, np.uint32(0))
        top = int(colors.alpha) if band.any() else 0
    else:
        colors = np.ascontiguousarray(colors, np.uint8)
        visible = colors[:, 3] > 0
        band &= visible[labels]
        packed = colors.view(np.uint32).ravel()  # one 32-bit RGBA word per class: gathers in one go
        out = np.where(band, np.take(packed, labels), np.uint32(0))
        top = int(colors[visible, 3].max()) if visible.any() else 0
    if halo and top:
        alpha = int(round(HALO_SHARE * top))
        word = np.array([[*HALO_RGB, alpha]], np.uint8).view(np.uint32)[0, 0]
        out = np.where(_dilate(band) & ~band, word, out)
    return out.view(np.uint8).reshape(labels.shape + (4,))


def _screen_index(count: int, start: int, scale: float) -> np.ndarray:
    """For each screen pixel from ``start``, the sample under its centre (of ``count`` samples)."""
    n = max(1, int(round(count * scale)))
    return np.minimum(((np.arange(n) + 0.5 + start) / scale).astype(np.int64), count - 1)


def margin_samples(width: int, scale: float) -> int:
    """Samples beyond a region whose labels reach into its band and halo."""
    return 1 + math.ceil((clamp_width(width) + 1) / scale)


def outline_block(block: np.ndarray, top: int, left: int, shape: tuple[int, int], colors: np.ndarray,
                  width: int, scale: float, halo: bool = True) -> np.ndarray:
    """Outline RGBA of the ``shape`` (rows, columns) samples that start ``top``/``left`` samples into
    ``block`` (the rest of ``block`` is context beyond the region), at ``scale`` screen pixels per
    sample (any positive factor: 1.37 gives 1.37 pixels per sample)."""
    ny, nx = shape
    t, l = int(round(top * scale)), int(round(left * scale))
    rows, cols = max(1, int(round(ny * scale))), max(1, int(round(nx * scale)))
    reach = margin_samples(width, scale) * int(math.ceil(scale))
    iy = _screen_index(block.shape[0], 0, scale)[: t + rows + reach]
    ix = _screen_index(block.shape[1], 0, scale)[: l + cols + reach]
    rgba = outline_rgba(np.take(np.take(block, iy, axis=0), ix, axis=1), colors, width, halo)
    return rgba[t:t + rows, l:l + cols]


def region_outline(labels: np.ndarray, region: raster.Region, colors: np.ndarray, width: int,
                   scale: float, halo: bool = True) -> np.ndarray:
    """Outline RGBA of ``region`` of ``labels`` (sampled every ``region.k`` pixels).  Enough
    neighbours beyond the region are included that edges and halos at its border are what a
    paint of a larger region draws (no seams between partial repaints at whole-number zooms)."""
    k = region.k
    h, w = labels.shape
    margin = margin_samples(width, scale)
    ys, xs = max(0, region.y0 - margin * k), max(0, region.x0 - margin * k)
    ny, nx = region.sampled_shape
    ye, xe = min(h, region.y0 + (ny + margin) * k), min(w, region.x0 + (nx + margin) * k)
    block = labels[ys:ye:k, xs:xe:k]
    return outline_block(block, (region.y0 - ys) // k, (region.x0 - xs) // k, (ny, nx), colors, width, scale,
                         halo)


def screen_terms(painter: QPainter, k: int, width: int) -> tuple[float, int]:
    """(screen pixels per sample, the outline width in device pixels) for this paint (``width`` is
    in logical pixels, so HiDPI screens get as wide a band as others)."""
    device = painter.device()
    ratio = device.devicePixelRatioF() if device is not None else 1.0
    return screen_scale(raster.device_scale(painter), k), max(1, int(round(clamp_width(width) * ratio)))


def draw_outline(painter: QPainter, rgba: np.ndarray, region: raster.Region) -> None:
    """Draw ``rgba`` (made at the screen's resolution for ``region``) 1:1 on device pixels, so a
    2-pixel band is 2 pixels at 137% as at 400%."""
    device = painter.device()
    ratio = device.devicePixelRatioF() if device is not None else 1.0
    ny, nx = region.sampled_shape
    # the world transform, not the device's: rendering into a parent (QWidget.grab, a window
    # screenshot) adds the widget's offset outside it, which resetTransform would drop
    target = painter.worldTransform().mapRect(QRectF(region.x0, region.y0, nx * region.k, ny * region.k))
    rgba = np.ascontiguousarray(rgba)
    rows, cols = rgba.shape[:2]
    image = QImage(rgba.data, cols, rows, cols * 4, QImage.Format.Format_RGBA8888)
    image.setDevicePixelRatio(ratio)
    painter.save()
    painter.resetTransform()
    painter.drawImage(QPointF(round(target.left() * ratio) / ratio, round(target.top() * ratio) / ratio), image)
    painter.restore()
    del image  # it borrowed rgba's memory; drawn now


def paint_outline(painter: QPainter, labels: np.ndarray, region: raster.Region, colors: np.ndarray,
                  width: int, halo: bool = True) -> None:
    """Draw the outlines of ``region`` of ``labels`` with ``painter`` (in image coordinates)."""
    scale, pixels = screen_terms(painter, region.k, width)
    draw_outline(painter, region_outline(labels, region, colors, pixels, scale, halo), region)


def repaint_margin(width: int, device_scale: float) -> float:
    """Image pixels to grow a dirty box by in outline mode: neighbours' bands and halos change too."""
    scale = max(device_scale, 1e-6)
    return (clamp_width(width) + 2) / scale + 2 * raster.sampling_step(scale) + 1

