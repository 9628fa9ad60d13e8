"""In-place pixel operations on an HxW uint8 label array, each returning its dirty box.

Every operation works on the bounding box of what it can touch (never a full-size temporary),
so it stays fast on 8192x8192 masks, and reports the tight box of the pixels it changed so the
GUI repaints only that.  Points are ``(x, y)`` floats; pixel ``(i, j)`` has centre
``(j + 0.5, i + 0.5)``.

Operations take an optional ``before(box)`` hook, called (possibly several times) with boxes
that together cover every pixel about to change, before any write: undo history uses it to
save original content lazily without the operation knowing about history.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from typing import Callable, Collection, Iterable, NamedTuple

import numpy as np

BeforeHook = Callable[["Box"], None]
Protect = Collection[int] | np.ndarray | None

# Rows per before() call in flood_fill: one call per band keeps history's saved tiles close to
# the filled shape (a diagonal region does not save its whole bounding box).
_FILL_BAND = 64
# fill_polygon rasterises at most this many pixels at a time, so a polygon over a whole slide
# (a chunked mask) never builds a full-size temporary; masks that fit in memory get one band.
_POLYGON_BAND_PIXELS = 1 << 26


class Box(NamedTuple):
    """Half-open rectangle ``[y0, y1) x [x0, x1)`` in pixel indices."""

    y0: int
    x0: int
    y1: int
    x1: int

    @property
    def is_empty(self) -> bool:
        return self.y1 <= self.y0 or self.x1 <= self.x0

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    @property
    def height(self) -> int:
        return max(0, self.y1 - self.y0)

    @property
    def width(self) -> int:
        return max(0, self.x1 - self.x0)

    @property
    def area(self) -> int:
        return self.height * self.width

    def union(self, other: Box) -> Box:
        if self.is_empty:
            return other
        if other.is_empty:
            return self
        return Box(min(self.y0, other.y0), min(self.x0, other.x0),
                   max(self.y1, other.y1), max(self.x1, other.x1))

    def intersect(self, other: Box) -> Box:
        box = Box(max(self.y0, other.y0), max(self.x0, other.x0),
                  min(self.y1, other.y1), min(self.x1, other.x1))
        return EMPTY if box.is_empty else box

    def clip(self, h: int, w: int) -> Box:
        return self.intersect(Box(0, 0, h, w))

    def contains(self, y: int, x: int) -> bool:
        return self.y0 <= y < self.y1 and self.x0 <= x < self.x1

    @classmethod
    def full(cls, shape: tuple[int, ...]) -> Box:
        return cls(0, 0, int(shape[0]), int(shape[1]))


EMPTY = Box(0, 0, 0, 0)


def mask_box(mask: np.ndarray, origin: tuple[int, int] = (0, 0)) -> Box:
    """Tight box of the True pixels of a 2-D mask whose top-left sits at ``origin`` (y, x)."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return EMPTY
    cols = np.flatnonzero(mask.any(axis=0))
    oy, ox = origin
    return Box(oy + int(rows[0]), ox + int(cols[0]), oy + int(rows[-1]) + 1, ox + int(cols[-1]) + 1)


def _protect_lut(protect: Protect) -> np.ndarray | None:
    if protect is None:
        return None
    ids = np.asarray(list(protect) if not isinstance(protect, np.ndarray) else protect, dtype=np.int64)
    if ids.size == 0:
        return None
    lut = np.zeros(256, dtype=bool)
    lut[ids[(ids >= 0) & (ids < 256)]] = True
    return lut


def _write(labels: np.ndarray, box: Box, mask: np.ndarray, value: int, protect: Protect,
           before: BeforeHook | None) -> Box:
    """Paint ``mask`` (covering ``box``) with value, skipping protected/unchanged pixels."""
    sub = labels[box.slices]
    mask &= sub != value
    lut = _protect_lut(protect)
    if lut is not None:
        mask &= ~lut[sub]
    changed = mask_box(mask, (box.y0, box.x0))
    if changed.is_empty:
        return EMPTY
    if before is not None:
        before(changed)
    local = (slice(changed.y0 - box.y0, changed.y1 - box.y0),
             slice(changed.x0 - box.x0, changed.x1 - box.x0))
    region = sub[local]
    region[mask[local]] = value
    if not isinstance(labels, np.ndarray):  # a chunked mask's slice is a copy: write it back
        labels[changed.slices] = region
    return changed


def segment_box(p0: tuple[float, float], p1: tuple[float, float], radius: float,
                shape: tuple[int, ...]) -> Box:
    """Pixels whose centre may lie within ``radius`` of the segment, plus the endpoint pixels.

    Padded by a pixel so float rounding at the rim cannot cut pixels the distance test accepts.
    """
    (xa, ya), (xb, yb) = p0, p1
    r = max(float(radius), 0.5) + 1.0
    y0 = min(math.ceil(min(ya, yb) - r - 0.5), math.floor(min(ya, yb)))
    x0 = min(math.ceil(min(xa, xb) - r - 0.5), math.floor(min(xa, xb)))
    y1 = max(math.floor(max(ya, yb) + r - 0.5), math.floor(max(ya, yb))) + 1
    x1 = max(math.floor(max(xa, xb) + r - 0.5), math.floor(max(xa, xb))) + 1
    return Box(y0, x0, y1, x1).clip(int(shape[0]), int(shape[1]))


def stamp_segment(labels: np.ndarray, p0: tuple[float, float], p1: tuple[float, float],
                  radius: float, value: int, protect: Protect = None, *,
                  before: BeforeHook | None = None) -> Box:
    """Paint the capsule of pixels whose centre is within ``radius`` of segment p0-p1.

    Radius 0.5 is a one-pixel line; the pixels containing p0 and p1 are always included so a
    dot on a pixel corner still paints something.  Returns the tight box of changed pixels.
    """
    box, mask = segment_mask(p0, p1, radius, labels.shape)
    if box.is_empty:
        return EMPTY
    return _write(labels, box, mask, int(value), protect, before)


def segment_mask(p0: tuple[float, float], p1: tuple[float, float], radius: float,
                 shape: tuple[int, ...]) -> tuple[Box, np.ndarray]:
    """The pixels ``stamp_segment`` paints: (their box, a bool mask shaped like it), for layers
    that write by other rules (the object layer paints only where no other object is)."""
    box = segment_box(p0, p1, radius, shape)
    if box.is_empty:
        return EMPTY, np.zeros((0, 0), bool)
    (xa, ya), (xb, yb) = (float(p0[0]), float(p0[1])), (float(p1[0]), float(p1[1]))
    r = max(float(radius), 0.5)
    px = np.arange(box.x0, box.x1, dtype=np.float64)[None, :] + (0.5 - xa)
    py = np.arange(box.y0, box.y1, dtype=np.float64)[:, None] + (0.5 - ya)
    dx, dy = xb - xa, yb - ya
    seg2 = dx * dx + dy * dy
    if seg2 > 0.0:
        t = np.clip((px * dx + py * dy) * (1.0 / seg2), 0.0, 1.0)
        ex, ey = px - t * dx, py - t * dy
        d2 = ex * ex + ey * ey
    else:
        d2 = px * px + py * py
    mask = d2 <= r * r + 1e-9
    for x, y in ((xa, ya), (xb, yb)):
        i, j = math.floor(y), math.floor(x)
        if box.contains(i, j):
            mask[i - box.y0, j - box.x0] = True
    return box, mask


def flood_fill(labels: np.ndarray, x: int, y: int, value: int, connectivity: int = 4,
               protect: Protect = None, *, before: BeforeHook | None = None) -> Box:
    """Fill the 4- or 8-connected region of pixels equal to ``labels[y, x]``.

    Span fill: each visited row is split into runs of the target value once with numpy, then
    runs are linked to overlapping runs in neighbouring rows, so Python work scales with the
    number of runs, not pixels.  Nothing is written until the whole region is known.
    """
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, not {connectivity!r}")
    h, w = labels.shape
    x, y = math.floor(x), math.floor(y)
    if not (0 <= y < h and 0 <= x < w):
        return EMPTY
    target = int(labels[y, x])
    lut = _protect_lut(protect)
    if target == int(value) or (lut is not None and lut[target]):
        return EMPTY
    runs = _region_runs(labels, x, y, target, 1 if connectivity == 8 else 0)
    ys = np.fromiter((r[0] for r in runs), dtype=np.int64, count=len(runs))
    a = np.fromiter((r[1] for r in runs), dtype=np.int64, count=len(runs))
    b = np.fromiter((r[2] for r in runs), dtype=np.int64, count=len(runs))
    if before is not None:
        band = ys // _FILL_BAND
        order = np.argsort(band, kind="stable")
        bands, first = np.unique(band[order], return_index=True)
        lo = np.minimum.reduceat(a[order], first)
        hi = np.maximum.reduceat(b[order], first)
        y_lo = np.minimum.reduceat(ys[order], first)
        y_hi = np.maximum.reduceat(ys[order], first)
        for k in range(len(bands)):
            before(Box(int(y_lo[k]), int(lo[k]), int(y_hi[k]) + 1, int(hi[k])))
    for yy, aa, bb in runs:
        labels[yy, aa:bb] = value
    return Box(int(ys.min()), int(a.min()), int(ys.max()) + 1, int(b.max()))


def _region_runs(labels: np.ndarray, x: int, y: int, target: int,
                 grow: int) -> list[tuple[int, int, int]]:
    """The (row, start, stop) runs of the region; ``grow`` 1 links diagonal neighbours."""
    h, w = labels.shape
    rows: dict[int, tuple[list[int], list[int], bytearray]] = {}
    padded = np.zeros(w + 2, dtype=bool)  # False borders: transitions alternate start, stop

    def row(yy: int) -> tuple[list[int], list[int], bytearray]:
        cached = rows.get(yy)
        if cached is None:
            np.equal(labels[yy], target, out=padded[1:-1])
            edges = np.flatnonzero(padded[1:] != padded[:-1])
            starts, stops = edges[0::2].tolist(), edges[1::2].tolist()
            cached = rows[yy] = (starts, stops, bytearray(len(starts)))
        return cached

    starts, stops, seen = row(y)
    k = bisect_right(starts, x) - 1
    seen[k] = 1
    todo = [(y, starts[k], stops[k])]
    out: list[tuple[int, int, int]] = []
    while todo:
        yy, a, b = todo.pop()
        out.append((yy, a, b))
        for ny in (yy - 1, yy + 1):
            if not 0 <= ny < h:
                continue
            starts, stops, seen = row(ny)
            # runs [s, e) with e > a - grow and s < b + grow
            for j in range(bisect_right(stops, a - grow), bisect_left(starts, b + grow)):
                if not seen[j]:
                    seen[j] = 1
                    todo.append((ny, starts[j], stops[j]))
    return out


def fill_polygon(labels: np.ndarray, points: Iterable[tuple[float, float]], value: int,
                 protect: Protect = None, *, before: BeforeHook | None = None) -> Box:
    """Even-odd fill of the pixels whose centre lies inside the polygon (half-open edges).

    Fewer than 3 points or zero area (collinear points) fill nothing and return an empty box.

    Rasterised exactly with numpy on the polygon's clipped bounding box: edge/row-centre
    crossings are sorted per row and paired into spans, so a square (0,0)-(10,10) is 100 px.
    """
    pts = np.asarray(list(points), dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3 or not np.isfinite(pts).all():
        return EMPTY
    xs, ys = pts[:, 0], pts[:, 1]
    h, w = labels.shape
    x0s, y0s, x1s, y1s = xs, ys, np.roll(xs, -1), np.roll(ys, -1)
    keep = y0s != y1s
    x0s, y0s, x1s, y1s = x0s[keep], y0s[keep], x1s[keep], y1s[keep]
    ylo, yhi = np.minimum(y0s, y1s), np.maximum(y0s, y1s)
    # rows i with centre i + 0.5 in [ylo, yhi), clipped to the image
    r_lo = np.clip(np.ceil(ylo - 0.5), 0, h).astype(np.int64)
    r_hi = np.clip(np.ceil(yhi - 0.5), 0, h).astype(np.int64)
    counts = np.maximum(r_hi - r_lo, 0)
    total = int(counts.sum())
    if total == 0:
        return EMPTY
    edge = np.repeat(np.arange(len(counts)), counts)
    offsets = np.cumsum(counts) - counts
    rows = r_lo[edge] + (np.arange(total) - offsets[edge])
    yc = rows + 0.5
    xc = x0s[edge] + (yc - y0s[edge]) * (x1s[edge] - x0s[edge]) / (y1s[edge] - y0s[edge])
    order = np.lexsort((xc, rows))
    rows, xc = rows[order], xc[order]
    span_rows = rows[0::2]
    js = np.clip(np.ceil(xc[0::2] - 0.5), 0, w).astype(np.int64)
    je = np.clip(np.ceil(xc[1::2] - 0.5), 0, w).astype(np.int64)
    ok = je > js
    span_rows, js, je = span_rows[ok], js[ok], je[ok]
    if span_rows.size == 0:
        return EMPTY
    box = Box(int(span_rows.min()), int(js.min()), int(span_rows.max()) + 1, int(je.max()))
    rows_per_band = max(1, _POLYGON_BAND_PIXELS // box.width)
    changed = EMPTY
    for y0 in range(box.y0, box.y1, rows_per_band):  # one band unless huge (a slide drawn zoomed out)
        band = Box(y0, box.x0, min(box.y1, y0 + rows_per_band), box.x1)
        lo, hi = np.searchsorted(span_rows, [band.y0, band.y1])
        mask = np.zeros((band.height, band.width), dtype=bool)
        for r, a, b in zip((span_rows[lo:hi] - band.y0).tolist(), (js[lo:hi] - band.x0).tolist(),
                           (je[lo:hi] - band.x0).tolist()):
            mask[r, a:b] = True
        changed = changed.union(_write(labels, band, mask, int(value), protect, before))
    return changed


def pick(labels: np.ndarray, x: float, y: float) -> int | None:
    """The class id under (x, y) in pixel coordinates, or None outside the image."""
    i, j = math.floor(y), math.floor(x)
    h, w = labels.shape
    if 0 <= i < h and 0 <= j < w:
        return int(labels[i, j])
    return None
