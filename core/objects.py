"""Mask -> objects: one object per 8-connected component of one class, as exact polygons.

Why shapely: every row run of a class becomes a pixel-aligned box and GEOS unions them, so
the outlines run exactly on pixel boundaries (integer corner coordinates, exact in floating
point) and are valid polygons with their holes.  OpenCV's ``findContours`` and scikit-image's
``find_contours`` trace pixel *centres*; their polygons do not rasterise back to the same pixels,
and both would add a large dependency to the bundle for less.  Parts that touch only at a
corner (GEOS keeps those apart) are joined into one object: that is 8-connectivity.

API::

    ObjectOptions(min_area=1, tolerance=0.5)      # the documented settings
    MaskObject: class_id, geometry (simplified Polygon | MultiPolygon, valid), exact (the
                pixel outline), bbox (x, y, w, h), area (pixel count); .parts, .rings()
    mask_objects(labels, options) -> list[MaskObject]           # a whole mask in memory
    block_objects(array, options, block=1024) -> list[MaskObject]  # any 2-D array-like read
        # block by block (numpy, zarr, a memmap); objects crossing block borders are merged
    rasterize(geometry, shape, labels=None, value=1) -> np.ndarray  # pixel-centre sampling
    centre_ring(ring) -> (N, 2) array    # the same outline through boundary-pixel centres
    joined_ring(rings) -> (N, 2) array   # holes and parts joined by zero-width cuts

Coordinates are image pixels, x right and y down, with pixel (col, row) covering the square
[col, col+1) x [row, row+1) (QuPath, ImageJ traced ROIs and pycocotools use this).  Consumers
that fill polygons *including* their outline (Pillow's ``ImageDraw.polygon``, hence labelme's
``shape_to_mask``; OpenCV's ``fillPoly``, hence Ultralytics) want the outline through the
centres of the boundary pixels instead: ``centre_ring``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon

CONNECTIVITY = 8


@dataclass(frozen=True)
class ObjectOptions:
    """``min_area``: smaller objects (pixels) are dropped.  ``tolerance``: how far (pixels) a
    simplified outline may stray from the pixel boundary (Douglas-Peucker, topology kept);
    0 keeps the exact outline, which rasterises back to the same pixels."""

    min_area: int = 1
    tolerance: float = 0.5

    def __post_init__(self):
        if self.min_area < 1:
            raise ValueError(f"the minimum object area must be at least 1 pixel, not {self.min_area}")
        if not self.tolerance >= 0:
            raise ValueError(f"the outline tolerance must be 0 or more pixels, not {self.tolerance}")


@dataclass(frozen=True, eq=False)
class MaskObject:
    class_id: int
    geometry: Polygon | MultiPolygon  # simplified by the tolerance
    exact: Polygon | MultiPolygon  # on pixel boundaries; its area is the pixel count
    bbox: tuple[int, int, int, int]  # x, y, width, height of its pixels
    area: int

    @property
    def parts(self) -> list[Polygon]:
        return list(shapely.get_parts(self.geometry))

    @property
    def has_holes(self) -> bool:
        return any(len(p.interiors) for p in shapely.get_parts(self.exact))

    def rings(self, exact: bool = False) -> list[tuple[np.ndarray, list[np.ndarray]]]:
        """(outer ring, hole rings) per part, each an (N, 2) array of x, y, closed (last = first)."""
        geometry = self.exact if exact else self.geometry
        return [(np.asarray(p.exterior.coords), [np.asarray(h.coords) for h in p.interiors])
                for p in shapely.get_parts(geometry)]


def mask_objects(labels: np.ndarray, options: ObjectOptions = ObjectOptions()) -> list[MaskObject]:
    """Every object of every class except background (0), ordered by class, then top-left."""
    labels = np.asarray(labels)
    return block_objects(labels, options, block=max(1, *labels.shape) if labels.size else 1)


def block_objects(array, options: ObjectOptions = ObjectOptions(), block: int = 1024) -> list[MaskObject]:
    """Objects of a 2-D array-like read ``block`` x ``block`` at a time (``array[r0:r1, c0:c1]``).

    Memory is one block of labels plus the outlines; parts in neighbouring blocks that share
    an edge or a corner are unioned into one object.
    """
    h, w = array.shape[:2]
    parts: dict[int, list[Polygon]] = {}
    for r0 in range(0, h, block):
        for c0 in range(0, w, block):
            tile = np.asarray(array[r0 : r0 + block, c0 : c0 + block])
            for cid, geoms in _class_parts(tile, r0, c0).items():
                parts.setdefault(cid, []).extend(geoms)
    objects = []
    for cid in sorted(parts):
        for exact in _connected(parts[cid]):
            area = int(round(exact.area))
            if area >= options.min_area:
                objects.append(_make_object(cid, exact, area, options.tolerance))
    return objects


def _class_parts(tile: np.ndarray, r0: int, c0: int) -> dict[int, list[Polygon]]:
    """Per class id, the 4-connected pieces of ``tile`` as polygons in image coordinates."""
    if tile.ndim != 2:
        raise ValueError(f"a mask must be 2-D, not shape {tile.shape}")
    h, w = tile.shape
    if not tile.size:
        return {}
    starts = np.ones((h, w), bool)
    starts[:, 1:] = tile[:, 1:] != tile[:, :-1]
    ys, xs = np.nonzero(starts)
    ends = np.empty_like(xs)
    ends[:-1] = np.where(ys[1:] == ys[:-1], xs[1:], w)
    ends[-1:] = w
    values = tile[ys, xs]
    out = {}
    for cid in np.unique(values):
        if cid == 0:
            continue
        pick = values == cid
        boxes = shapely.box(xs[pick] + c0, ys[pick] + r0, ends[pick] + c0, ys[pick] + r0 + 1)
        out[int(cid)] = list(shapely.get_parts(shapely.union_all(boxes)))
    return out


def _connected(parts: list[Polygon]) -> list[Polygon | MultiPolygon]:
    """Group pieces that touch (an edge across a block border, or a corner) and union each."""
    if not parts:
        return []
    tree = shapely.STRtree(parts)
    left, right = tree.query(parts, predicate="intersects")
    root = list(range(len(parts)))

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    for a, b in zip(left.tolist(), right.tolist()):
        ra, rb = find(a), find(b)
        if ra != rb:
            root[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[Polygon]] = {}
    for i, part in enumerate(parts):
        groups.setdefault(find(i), []).append(part)
    merged = [g[0] if len(g) == 1 else shapely.union_all(g) for g in groups.values()]
    merged.sort(key=lambda g: (g.bounds[1], g.bounds[0]))
    return merged


def _make_object(cid: int, exact, area: int, tolerance: float) -> MaskObject:
    exact = shapely.simplify(exact, 0)  # drops the collinear points between row runs only
    geometry = exact
    if tolerance > 0:
        simplified = shapely.simplify(exact, tolerance, preserve_topology=True)
        if simplified.is_valid and not simplified.is_empty:
            geometry = simplified
    x0, y0, x1, y1 = (int(round(v)) for v in exact.bounds)
    return MaskObject(cid, geometry, exact, (x0, y0, x1 - x0, y1 - y0), area)


# --- back to pixels --------------------------------------------------------------------------


def rasterize(geometry, shape: tuple[int, int], labels: np.ndarray | None = None, value: int = 1) -> np.ndarray:
    """Set the pixels whose centres lie inside ``geometry`` to ``value`` (uint8 ``labels``,
    created when None).  Exact for outlines on pixel boundaries; invalid input (a ring with
    zero-width cuts, a bow tie) is repaired by ``shapely.make_valid`` first."""
    h, w = shape
    if labels is None:
        labels = np.zeros((h, w), np.uint8)
    if geometry is None or geometry.is_empty:
        return labels
    if not geometry.is_valid:
        geometry = shapely.make_valid(geometry)
    x0, y0, x1, y1 = geometry.bounds
    c0, r0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
    c1, r1 = min(w, int(np.ceil(x1)) + 1), min(h, int(np.ceil(y1)) + 1)
    if c0 >= c1 or r0 >= r1:
        return labels
    shapely.prepare(geometry)
    xs = np.arange(c0, c1) + 0.5
    step = max(1, (1 << 20) // (c1 - c0))  # about a million points per call
    for r in range(r0, r1, step):
        r_end = min(r1, r + step)
        gx, gy = np.meshgrid(xs, np.arange(r, r_end) + 0.5)
        labels[r:r_end, c0:c1][shapely.contains_xy(geometry, gx, gy)] = value
    return labels


def centre_ring(ring: np.ndarray, hole: bool = False) -> np.ndarray:
    """An exact outer or hole ring (pixel corners) moved onto the centres of the object's
    boundary pixels: each edge shifts half a pixel into the object, then the whole ring half a
    pixel up-left.  A fill that includes its outline (Pillow, OpenCV) then paints exactly the
    object's pixels, one-pixel-wide parts included."""
    ring = np.asarray(ring, float)
    if len(ring) > 1 and np.array_equal(ring[0], ring[-1]):
        ring = ring[:-1]
    d_in = ring - np.roll(ring, 1, axis=0)
    d_out = np.roll(ring, -1, axis=0) - ring
    # the object is inside an outer ring and outside a hole, whichever way the ring runs
    inside_on_left = _signed_area(ring) < 0  # with y down, ``_left_normal`` points inward
    side = 1.0 if inside_on_left != hole else -1.0
    normal_in = _left_normal(d_in) * side
    normal_out = _left_normal(d_out) * side
    moved = ring + 0.5 * (normal_in + normal_out) - 0.5
    return np.vstack([moved, moved[:1]])


def _left_normal(d: np.ndarray) -> np.ndarray:
    n = np.stack([d[:, 1], -d[:, 0]], axis=1)
    length = np.hypot(n[:, 0], n[:, 1])
    return n / np.where(length == 0, 1, length)[:, None]


def _signed_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def joined_ring(rings: Iterable[np.ndarray]) -> np.ndarray:
    """One ring that visits every ring in turn, each joined to the first by a zero-width cut
    (out along the cut and back the same way), as CVAT writes holes into YOLO lines."""
    rings = [np.asarray(r, float) for r in rings]
    rings = [r[:-1] if len(r) > 1 and np.array_equal(r[0], r[-1]) else r for r in rings]
    if not rings:
        return np.zeros((0, 2))
    out = np.vstack([rings[0], rings[0][:1]])
    for ring in rings[1:]:
        # cut from the closest vertex of what is already joined to the ring's closest vertex
        d = ((out[:, None, :] - ring[None, :, :]) ** 2).sum(-1)
        i, j = np.unravel_index(int(np.argmin(d)), d.shape)
        loop = np.vstack([ring[j:], ring[:j], ring[j : j + 1]])
        out = np.vstack([out[: i + 1], loop, out[i:]])
    return out
