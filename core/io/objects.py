"""Mask -> objects: one object per 8-connected component of one class, as exact polygons.

Why shapely: every row run of a class becomes a pixel-aligned box and GEOS unions the runs of
each component (found first by joining runs of neighbouring rows), so the outlines run
exactly on pixel boundaries (integer corner coordinates, exact in floating point) and are
valid polygons with their holes.  OpenCV's ``findContours`` and scikit-image's
``find_contours`` trace pixel *centres*; their polygons do not rasterise back to the same pixels,
and both would add a large dependency to the bundle for less.  Parts that touch only at a
corner (GEOS keeps those apart) are joined into one object: that is 8-connectivity.

API::

    ObjectOptions(min_area=1, tolerance=0.5)      # the documented settings
    MaskObject: class_id, geometry (simplified Polygon | MultiPolygon, valid), exact (the
                pixel outline), bbox (x, y, w, h), area (pixel count); .parts, .rings()
    mask_objects(labels, options, instances=None) -> list[MaskObject]  # a whole mask in memory
    block_objects(array, options, block=1024, instances=None) -> list[MaskObject]  # any 2-D
        # array-like read block by block (numpy, zarr, a memmap); objects crossing block borders are merged
    objects_of(labels, options, instances=None) -> list[MaskObject]  # mask_objects for a numpy
        # array, else block_objects in blocks of the array's own chunks (ChunkedLabels, zarr)
    iter_objects(labels, options, instances=None) -> Iterator[MaskObject]  # the same, yielded
        # band by band as they are finished (iter_block_objects): memory holds the open objects only

``instances``: an optional instance label image (same shape, 0 = background, one id per object:
docs/interfaces.md).  Without it an object is an 8-connected component of one class; with it, an
object is every pixel of one id, so two touching objects of one class stay two.  Its class is the
most frequent non-background class of ``labels`` under it (1 when there is none), and
``MaskObject.instance`` is its id.
    rasterize(geometry, shape, labels=None, value=1) -> np.ndarray  # pixel-centre sampling
    centre_ring(ring, hole=False) -> (N, 2) array  # an exact ring through boundary-pixel centres
    centre_rings(obj, tolerance) -> [(ring, is_hole)]  # simplified, checked with Pillow's fill
    object_pixels(obj) -> (bool array of its bbox, (x0, y0))
    joined_ring(rings) -> (N, 2) array   # holes and parts joined by zero-width cuts
    centre_joined_ring(obj, tolerance)   # one checked centre polygon per object (YOLO)

Coordinates are image pixels, x right and y down, with pixel (col, row) covering the square
[col, col+1) x [row, row+1) (QuPath, ImageJ traced ROIs and pycocotools use this).  Consumers
that fill polygons *including* their outline (Pillow's ``ImageDraw.polygon``, hence labelme's
``shape_to_mask``; OpenCV's ``fillPoly``, hence Ultralytics) want the outline through the
centres of the boundary pixels instead: ``centre_ring``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

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
    instance: int = 0  # its id in the instance label image (0: objects from the class mask alone)

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


def mask_objects(labels: np.ndarray, options: ObjectOptions = ObjectOptions(),
                 instances: np.ndarray | None = None) -> list[MaskObject]:
    """Every object of every class except background (0), ordered by class, then top-left."""
    labels = np.asarray(labels)
    return block_objects(labels, options, block=max(1, *labels.shape) if labels.size else 1, instances=instances)


def objects_of(labels, options: ObjectOptions = ObjectOptions(), instances=None) -> list[MaskObject]:
    if isinstance(labels, np.ndarray) and (instances is None or isinstance(instances, np.ndarray)):
        return mask_objects(labels, options, instances)
    if instances is None:
        return block_objects(labels, options, block=_chunk_block(labels))
    return block_objects(labels, options, block=_chunk_block(labels), instances=instances)


def iter_objects(labels, options: ObjectOptions = ObjectOptions(), instances=None) -> Iterator[MaskObject]:
    """``objects_of``'s objects, yielded as they are finished (see ``iter_block_objects``)."""
    if isinstance(labels, np.ndarray) and (instances is None or isinstance(instances, np.ndarray)):
        return iter(mask_objects(labels, options, instances))
    if instances is None:
        return iter_block_objects(labels, options, block=_chunk_block(labels))
    return iter_block_objects(labels, options, block=_chunk_block(labels), instances=instances)


def _chunk_block(labels) -> int:
    chunks = getattr(labels, "chunks", None) or (BLOCK, BLOCK)
    return int(max(1, BLOCK // max(chunks)) * max(chunks))  # whole chunks, about BLOCK pixels a side


BLOCK = 2048  # a block of labels costs BLOCK**2 bytes plus the outlines


def block_objects(array, options: ObjectOptions = ObjectOptions(), block: int = 1024,
                  instances=None) -> list[MaskObject]:
    """Objects of a 2-D array-like read ``block`` x ``block`` at a time (``array[r0:r1, c0:c1]``).

    Memory is one block of labels plus the outlines; parts in neighbouring blocks that share
    an edge or a corner are unioned into one object (with ``instances``: parts of one id).
    Ordered by class, then top-left.
    """
    return sorted(iter_block_objects(array, options, block, instances),
                  key=lambda o: (o.class_id, o.bbox[1], o.bbox[0]))


def iter_block_objects(array, options: ObjectOptions = ObjectOptions(), block: int = 1024,
                       instances=None) -> Iterator[MaskObject]:
    """``block_objects``, yielded one band of blocks at a time: after each band, the objects that do
    not reach its bottom edge are finished (nothing below can join them) and yielded, by class, then
    top-left within the band.  Memory holds one block of labels and the outlines of the objects still
    open at the band's edge, not every object of the mask, so a writer can stream them (GeoJSON)."""
    h, w = array.shape[:2]
    if instances is not None and tuple(instances.shape[:2]) != (h, w):
        raise ValueError(f"the instance labels are {instances.shape[1]}x{instances.shape[0]} but the mask is {w}x{h}")
    one_block = h <= block and w <= block  # its pieces are whole objects already
    open_parts: dict[int, list] = {}  # class id (or instance id) -> pieces not finished yet
    votes: dict[int, dict[int, int]] = {}  # instance id -> {class id: pixels}
    for r0 in range(0, h, block):
        for c0 in range(0, w, block):
            tile = np.asarray(array[r0 : r0 + block, c0 : c0 + block])
            if instances is not None:
                ids = np.asarray(instances[r0 : r0 + block, c0 : c0 + block])
                _vote(votes, ids, tile)
                tile = ids
            for key, geoms in _class_parts(tile, r0, c0).items():
                open_parts.setdefault(key, []).extend(geoms)
        edge = r0 + block  # a part reaching this row's top may join one in the next band
        found = []
        if instances is None:
            for cid in sorted(open_parts):
                groups = _in_reading_order(open_parts[cid]) if one_block else _connected(open_parts[cid])
                found += [(cid, g, 0) for g in groups if edge >= h or g.bounds[3] < edge]
                open_parts[cid] = [g for g in groups if edge < h and g.bounds[3] >= edge]
        else:
            for iid in [i for i, parts in open_parts.items()
                        if edge >= h or max(g.bounds[3] for g in parts) < edge]:
                parts = open_parts.pop(iid)
                found.append((_majority(votes.pop(iid, {})), parts[0] if len(parts) == 1 else
                              shapely.union_all(parts), iid))
            found.sort(key=lambda f: (f[0], f[1].bounds[1], f[1].bounds[0]))
        yield from _make_objects(found, options)


def _vote(votes: dict[int, dict[int, int]], ids: np.ndarray, classes: np.ndarray) -> None:
    """Add each instance's pixels per non-background class of this tile to ``votes``."""
    if ids.shape != classes.shape:
        raise ValueError(f"the instance labels are {ids.shape[1]}x{ids.shape[0]} but the mask is "
                         f"{classes.shape[1]}x{classes.shape[0]}")
    both = (ids != 0) & (classes != 0)
    keys, counts = np.unique(ids[both].astype(np.uint64) * 65536 + classes[both], return_counts=True)
    for key, n in zip(keys.tolist(), counts.tolist()):
        per = votes.setdefault(key >> 16, {})
        per[key & 0xFFFF] = per.get(key & 0xFFFF, 0) + n


def _majority(counts: dict[int, int]) -> int:
    """The most frequent class (the lower id on a tie); 1 when the object lies on background only."""
    return min(counts, key=lambda c: (-counts[c], c)) if counts else 1


def _in_reading_order(geoms: list) -> list:
    return sorted(geoms, key=lambda g: (g.bounds[1], g.bounds[0]))


def _make_objects(found: list[tuple[int, object, int]], options: ObjectOptions) -> list[MaskObject]:
    """Simplify all outlines in one vectorised call each; drop objects below the minimum area.
    ``found``: (class id, geometry, instance id or 0)."""
    if not found:
        return []
    ids = np.array([cid for cid, _, _ in found])
    instances = np.array([iid for _, _, iid in found], np.int64)
    exact = shapely.simplify(np.array([g for _, g, _ in found], dtype=object), 0)  # collinear points
    areas = np.rint(shapely.area(exact)).astype(np.int64)
    big = areas >= options.min_area
    ids, exact, areas, instances = ids[big], exact[big], areas[big], instances[big]
    simple = exact
    if options.tolerance > 0:
        simple = shapely.simplify(exact, options.tolerance, preserve_topology=True)
        bad = ~shapely.is_valid(simple) | shapely.is_empty(simple)
        simple = np.where(bad, exact, simple)
    bounds = np.rint(shapely.bounds(exact)).astype(np.int64)
    return [MaskObject(int(cid), geometry, geom, (int(b[0]), int(b[1]), int(b[2] - b[0]), int(b[3] - b[1])), int(a),
                       int(iid))
            for cid, geometry, geom, b, a, iid in zip(ids, simple, exact, bounds, areas, instances)]


def _class_parts(tile: np.ndarray, r0: int, c0: int) -> dict[int, list]:
    """Per class id, the 8-connected pieces of ``tile`` as (Multi)Polygons in image coordinates.

    Row runs are grouped into components first (runs in neighbouring rows of one class that
    overlap or touch at a corner), then each component's runs are unioned on their own: one
    GEOS union over every run of a class costs minutes on a speckled mask, this a second.
    """
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
    keep = values != 0
    ys, xs, ends, values = ys[keep], xs[keep], ends[keep], values[keep]
    root = _run_components(ys, xs, ends, values, w)
    order = np.lexsort((np.arange(len(root)), root))
    cuts = np.flatnonzero(np.diff(root[order])) + 1
    boxes = shapely.box(xs + c0, ys + r0, ends + c0, ys + r0 + 1)
    out: dict[int, list] = {}
    for group in np.split(order, cuts) if len(order) else []:
        piece = boxes[group[0]] if len(group) == 1 else shapely.union_all(boxes[group])
        out.setdefault(int(values[group[0]]), []).append(piece)
    return out


def _run_components(ys, xs, ends, values, width: int) -> np.ndarray:
    """A component label per run (the smallest run index in it): runs [xs, ends) of one class
    in rows y and y+1 are joined when they overlap or meet at a corner (8-connectivity)."""
    n = len(ys)
    stride = width + 2
    start_key = ys.astype(np.int64) * stride + xs
    end_key = ys.astype(np.int64) * stride + ends
    below = (ys.astype(np.int64) + 1) * stride
    lo = np.searchsorted(end_key, below + xs, "left")  # first run below ending at or after xs
    hi = np.searchsorted(start_key, below + ends, "right")  # last run below starting by ends
    counts = np.maximum(hi - lo, 0)
    first = np.repeat(np.arange(n), counts)
    second = np.repeat(lo, counts) + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
    same = values[first] == values[second]
    return _components(n, first[same], second[same])


def _components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Union-find: per item the smallest index of its group, given joined pairs."""
    root = list(range(n))

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    for a, b in zip(left.tolist(), right.tolist()):
        ra, rb = find(a), find(b)
        if ra != rb:
            root[max(ra, rb)] = min(ra, rb)
    return np.array([find(i) for i in range(n)], np.int64)


def _connected(parts: list[Polygon]) -> list[Polygon | MultiPolygon]:
    """Group pieces that touch (an edge across a block border, or a corner) and union each."""
    if not parts:
        return []
    tree = shapely.STRtree(parts)
    left, right = tree.query(parts, predicate="intersects")
    groups: dict[int, list[Polygon]] = {}
    for root, part in zip(_components(len(parts), left, right).tolist(), parts):
        groups.setdefault(root, []).append(part)
    return _in_reading_order([g[0] if len(g) == 1 else shapely.union_all(g) for g in groups.values()])


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
    pixel up-left, and corners the object wraps round are cut diagonally.  A fill that
    includes its outline (Pillow, OpenCV) then paints exactly the object's pixels, one-pixel-
    wide parts and holes touching at corners included (property-tested)."""
    ring = np.asarray(ring, float)
    if len(ring) > 1 and np.array_equal(ring[0], ring[-1]):
        ring = ring[:-1]
    d_in = ring - np.roll(ring, 1, axis=0)
    d_out = np.roll(ring, -1, axis=0) - ring
    # the object is inside an outer ring and outside a hole, whichever way the ring runs
    inside_on_left = _signed_area(ring) < 0  # with y down, ``_left_normal`` points inward
    side = 1.0 if inside_on_left != hole else -1.0
    normal_in = _left_normal(d_in) * side  # towards the object
    normal_out = _left_normal(d_out) * side
    moved = ring + 0.5 * (normal_in + normal_out) - 0.5
    if len(ring) > 2:
        # Where the object fills three quadrants round a corner the moved point is the pixel
        # diagonal to the fourth, which may be a hole's or the outside's (touching at a
        # corner).  Pass through its two neighbours instead: those are the object's.
        unit_in, unit_out = _unit(d_in), _unit(d_out)
        convex = np.einsum("ij,ij->i", unit_out, normal_in) < -0.5
        before = ring + 0.5 * normal_in - 0.5 * unit_in - 0.5
        after = ring + 0.5 * normal_out + 0.5 * unit_out - 0.5
        points = []
        for i in range(len(ring)):
            points += [before[i], after[i]] if convex[i] else [moved[i]]
        moved = np.asarray(points)
    return np.vstack([moved, moved[:1]])


def _unit(d: np.ndarray) -> np.ndarray:
    length = np.hypot(d[:, 0], d[:, 1])
    return d / np.where(length == 0, 1, length)[:, None]


def _left_normal(d: np.ndarray) -> np.ndarray:
    n = np.stack([d[:, 1], -d[:, 0]], axis=1)
    length = np.hypot(n[:, 0], n[:, 1])
    return n / np.where(length == 0, 1, length)[:, None]


def _signed_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


CENTRE_MIN_IOU = 0.98  # a simplified centre outline must keep this IoU with the object's pixels


def object_pixels(obj: MaskObject) -> tuple[np.ndarray, tuple[int, int]]:
    """The object's own pixels in its bounding box, and the box's top-left (x0, y0)."""
    x0, y0, w, h = obj.bbox
    local = shapely.transform(obj.exact, lambda xy: xy - [x0, y0])
    return rasterize(local, (h, w)).astype(bool), (x0, y0)


def centre_rings(obj: MaskObject, tolerance: float) -> list[tuple[np.ndarray, bool]]:
    """(ring, is_hole) on boundary-pixel centres for fills that include the outline.

    Each ring is simplified with ``tolerance`` on the pixel centres; a cut corner there costs
    a whole pixel, so the simplified rings are filled as Pillow fills them and kept only if
    the result still has IoU >= 0.98 with the object's pixels; otherwise the exact rings are
    returned, which give the pixels back exactly: there a hole with parts of the object inside
    it (touching it at corners) has them cut out of it (``joined_through_pixels``), as a hole
    is cleared after every part is filled.
    """
    plain = _plain_centre_rings(obj)
    if tolerance > 0:
        simple = [(_simplified(r, tolerance), hole) for r, hole in plain]
        pixels, origin = object_pixels(obj)
        filled = fill_rings(simple, pixels.shape, origin)
        if (filled & pixels).sum() / max(1, (filled | pixels).sum()) >= CENTRE_MIN_IOU:
            return simple
    return _islands_cut_out(obj, plain)


def _plain_centre_rings(obj: MaskObject) -> list[tuple[np.ndarray, bool]]:
    return [(centre_ring(r, hole), hole) for outer, holes in obj.rings(exact=True)
            for r, hole in [(outer, False)] + [(h, True) for h in holes]]


def _islands_cut_out(obj: MaskObject, plain: list[tuple[np.ndarray, bool]]) -> list[tuple[np.ndarray, bool]]:
    parts = shapely.get_parts(obj.exact)  # in the order of obj.rings(exact=True), hence of plain
    holes = [Polygon(h) for p in parts for h in p.interiors]
    if len(parts) < 2 or not holes:
        return plain
    # the innermost hole round each part, if any (a part touches the rest only at corners)
    container: dict[int, int] = {}
    for part, hole in zip(*shapely.STRtree(holes).query(shapely.point_on_surface(parts), predicate="within")):
        part, hole = int(part), int(hole)
        if part not in container or holes[hole].area < holes[container[part]].area:
            container[part] = hole
    if not container:
        return plain
    pixels, origin = object_pixels(obj)
    outers = [r for r, is_hole in plain if not is_hole]
    rings, k = [], 0
    for ring, is_hole in plain:
        if is_hole:
            islands = [outers[p] for p, h in container.items() if h == k]
            joined = joined_through_pixels([ring] + islands, pixels, origin) if islands else None
            ring = ring if joined is None else joined
            k += 1
        rings.append((ring, is_hole))
    return rings


def fill_rings(rings: list[tuple[np.ndarray, bool]], shape: tuple[int, int],
               origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Fill as Pillow (and labelme's ``shape_to_mask``) does: outlines included, holes after."""
    from PIL import Image, ImageDraw

    im = Image.new("1", (shape[1], shape[0]))
    draw = ImageDraw.Draw(im)
    for want_hole in (False, True):
        for ring, hole in rings:
            if hole == want_hole:
                draw.polygon([tuple(p) for p in np.asarray(ring) - origin], fill=0 if hole else 1, outline=1)
    return np.asarray(im, bool)


def _simplified(ring: np.ndarray, tolerance: float) -> np.ndarray:
    if len(ring) < 5:
        return ring
    simple = np.asarray(shapely.simplify(shapely.linearrings(ring), tolerance).coords)
    return simple if len(simple) >= 4 else ring


def joined_ring(rings: Iterable[np.ndarray]) -> np.ndarray:
    """One ring that visits every ring in turn, each joined by a zero-width cut (out along the
    cut and back the same way), as CVAT writes holes into YOLO lines.  The nearest ring is
    joined next, from its nearest vertex to the nearest point of what is joined, so cuts are
    short (often none: a hole next to the outline) and rarely cross a ring not yet joined.
    Rings with whole-number vertices (pixel corners, pixel centres) are cut only at whole-number
    points: readers truncate or round a cut's end (Pillow's and OpenCV's fills, ImageJ's integer
    coordinates), and a half-pixel end moved onto the pixel of a notch beside it fills that pixel."""
    rings = [np.asarray(r, float) for r in rings]
    rings = [r[:-1] if len(r) > 1 and np.array_equal(r[0], r[-1]) else r for r in rings]
    if not rings:
        return np.zeros((0, 2))
    on_lattice = all(np.array_equal(r, np.round(r)) for r in rings)
    out = np.vstack([rings[0], rings[0][:1]])
    rest = rings[1:]
    while rest:
        best = None
        a, b = out[:-1], out[1:]  # the segments of what is joined so far
        ab = b - a
        length2 = np.maximum((ab ** 2).sum(-1), 1e-12)
        # the whole-number points of a segment with whole-number ends are every 1/steps of it
        steps = np.gcd.reduce(np.abs(ab).astype(np.int64), axis=1) if on_lattice else None
        for k, ring in enumerate(rest):
            t = np.clip(np.einsum("mnk,nk->mn", ring[:, None, :] - a[None], ab) / length2, 0, 1)
            if on_lattice:
                t = np.round(t * steps) / np.maximum(steps, 1)
            q = a[None] + t[..., None] * ab[None]
            d = ((ring[:, None, :] - q) ** 2).sum(-1)
            j, i = np.unravel_index(int(np.argmin(d)), d.shape)
            if best is None or d[j, i] < best[0]:
                best = (d[j, i], k, i, j, q[j, i])
        _, k, i, j, point = best
        ring = rest.pop(k)
        loop = np.vstack([point, ring[j:], ring[:j], ring[j : j + 1], point])
        out = np.vstack([out[: i + 1], loop, out[i + 1 :]])
    return _drop_repeats(out)


_RAYS = np.array([(-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (1, -1), (-1, 1), (1, 1)])


def joined_through_pixels(rings: Iterable[np.ndarray], pixels: np.ndarray,
                          origin: tuple[int, int] = (0, 0)) -> np.ndarray | None:
    """``joined_ring`` for exact centre rings (``centre_ring``: whole-number vertices, edges along
    rows, columns and diagonals), every cut along a row, a column or a diagonal through the
    object's own ``pixels`` (bool, top-left at ``origin``) from a vertex to the first whole-number
    point of another ring; the rings are joined by the shortest such cuts that reach them all
    (a minimum spanning tree from the first ring).  A fill that includes the outline then paints
    exactly the object: Pillow and OpenCV draw such a cut on its pixels' centres, where a cut to
    a half-pixel point is moved onto a pixel the reader picks, and a cut flatter than a diagonal
    meets the outline where Pillow's fill shifts a crossing by a pixel.  None when some ring
    cannot be reached so (rings not on pixel centres)."""
    h, w = pixels.shape
    given = [np.asarray(r, float) for r in rings]
    if not given or any(not len(r) or not np.array_equal(r, np.round(r)) for r in given):
        return None
    if len(given) == 1:
        return joined_ring(given)
    rings = [_drop_repeats(r - origin, keep=1).astype(np.int64) for r in given]
    rings = [r[:-1] if len(r) > 1 and np.array_equal(r[0], r[-1]) else r for r in rings]
    # every whole-number point of every ring: (key, ring, segment), sorted by key then ring
    ring_of = np.repeat(np.arange(len(rings)), [len(r) for r in rings])
    a = np.vstack(rings)
    d = np.vstack([np.roll(r, -1, axis=0) - r for r in rings])
    seg_of = np.concatenate([np.arange(len(r)) for r in rings])
    steps = np.maximum(np.gcd(np.abs(d[:, 0]), np.abs(d[:, 1])), 1)
    at = np.repeat(np.arange(len(a)), steps)
    k = np.arange(len(at)) - np.repeat(np.cumsum(steps) - steps, steps)
    points = a[at] + k[:, None] * (d // steps[:, None])[at]
    if points.min() < 0 or np.any(points.max(axis=0) >= [w, h]):
        return None
    keys = points[:, 1] * w + points[:, 0]
    order = np.lexsort((ring_of[at], keys))
    keys, key_ring, key_seg = keys[order], ring_of[at][order], seg_of[at][order]

    def other_ring(x, y, own):  # (ring, segment) of another ring at each point, else (-1 or -2 on own, -1)
        q = y * w + x
        lo, hi = np.searchsorted(keys, q, "left"), np.searchsorted(keys, q, "right")
        found = hi > lo
        first, last = np.minimum(lo, len(keys) - 1), np.maximum(hi - 1, 0)
        pick = np.where(key_ring[first] != own, first, last)
        other = found & (key_ring[pick] != own)
        return np.where(other, key_ring[pick], np.where(found, -2, -1)), key_seg[pick]

    # rays from every vertex of every ring but the first, step by step through the object,
    # each to the first point of another ring (a cut), stopped by its own ring or the background
    src = np.flatnonzero(ring_of > 0)
    hit_ring, hit_seg = other_ring(a[src, 0], a[src, 1], ring_of[src])
    touching = hit_ring >= 0  # a vertex on another ring: a cut of length 0
    edges = [(np.zeros(touching.sum()), src[touching], hit_ring[touching], hit_seg[touching], a[src[touching]])]
    start, ray = np.repeat(src, len(_RAYS)), np.tile(np.arange(len(_RAYS)), len(src))
    pos, lengths, step = a[start], np.hypot(*_RAYS.T), 0
    while len(start):
        step += 1
        pos = pos + _RAYS[ray]
        x, y = pos[:, 0], pos[:, 1]
        on = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        on[on] = pixels[y[on], x[on]]
        start, ray, pos = start[on], ray[on], pos[on]
        ring, seg = other_ring(pos[:, 0], pos[:, 1], ring_of[start])
        hit = ring >= 0
        edges.append((step * lengths[ray[hit]], start[hit], ring[hit], seg[hit], pos[hit]))
        going = ring == -1
        start, ray, pos = start[going], ray[going], pos[going]
    length, vertex, target, target_seg, point = (np.concatenate(e) for e in zip(*edges))
    source, source_seg = ring_of[vertex], seg_of[vertex]
    # the shortest cuts that reach every ring: a minimum spanning tree of the rings, from ring 0
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree

    pair = np.minimum(source, target) * len(rings) + np.maximum(source, target)
    by_length = np.lexsort((length, pair))
    first = by_length[np.r_[True, pair[by_length][1:] != pair[by_length][:-1]]]  # one cut per pair
    graph = coo_matrix((length[first] + 1, (source[first], target[first])), shape=(len(rings),) * 2)
    tree = minimum_spanning_tree(graph.tocsr())  # + 1: a cut of length 0 is an edge too
    _, parent = breadth_first_order(tree, 0, directed=False, return_predecessors=True)
    if np.any(parent[1:] < 0):
        return None
    cut_of = dict(zip(pair[first].tolist(), first.tolist()))
    hanging: list[list[tuple]] = [[] for _ in rings]  # per ring: (segment, point, child)
    entry: list[tuple] = [(0, rings[0][0])] * len(rings)  # per ring: (segment, point)
    for child in range(1, len(rings)):
        up = int(parent[child])
        e = cut_of[min(up, child) * len(rings) + max(up, child)]
        if source[e] == child:  # entered at its vertex, from a point on its parent
            hanging[up].append((int(target_seg[e]), point[e], child))
            entry[child] = (int(source_seg[e]), a[vertex[e]])
        else:
            hanging[up].append((int(source_seg[e]), a[vertex[e]], child))
            entry[child] = (int(target_seg[e]), point[e])
    # walk the tree: each ring from its entry point round to it, each child out and back
    out: list = []
    stack = [iter(_walk(rings[0], *entry[0], hanging[0]))]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
        elif isinstance(item, int):
            stack.append(iter(_walk(rings[item], *entry[item], hanging[item])))
        else:
            out.append(item)
    return _drop_repeats(np.asarray(out, float)) + origin


def _walk(ring: np.ndarray, seg: int, start: np.ndarray, hanging: list[tuple]) -> list:
    """The points of ``ring`` from ``start`` (on segment ``seg``) round to it again, with the
    ring number of each child (segment, point, child) between two copies of its point."""
    n = len(ring)

    def along(s: int, p: np.ndarray) -> float:
        d = ring[(s + 1) % n] - ring[s]
        return float(np.dot(p - ring[s], d)) / max(1, int(np.dot(d, d)))

    children: dict[int, list] = {}
    for s, p, child in hanging:
        children.setdefault(s, []).append((along(s, p), p, child))
    for c in children.values():
        c.sort(key=lambda item: item[0])
    t0 = along(seg, start)
    items: list = [start]
    for t, p, child in children.get(seg, []):
        if t >= t0:
            items += [p, child, p]
    for i in range(1, n + 1):
        s = (seg + i) % n
        items.append(ring[s])
        for t, p, child in children.get(s, []):
            if s != seg or t < t0:
                items += [p, child, p]
    items.append(start)
    return items


def _drop_repeats(ring: np.ndarray, keep: int = 4) -> np.ndarray:
    """``ring`` without repeated points, unless fewer than ``keep`` would be left (a one-pixel
    object stays a tiny polygon)."""
    new = np.ones(len(ring), bool)
    new[1:] = np.any(ring[1:] != ring[:-1], axis=1)
    return ring[new] if new.sum() >= keep else ring


def centre_joined_ring(obj: MaskObject, tolerance: float) -> np.ndarray:
    """One polygon per object through boundary-pixel centres, holes and parts joined by cuts
    (for YOLO and ImageJ-like consumers that fill outlines included): ``joined_ring`` of the
    simplified rings only if its fill keeps IoU >= 0.98 with the object's pixels, else the
    exact rings joined by ``joined_through_pixels``, which fill back exactly."""
    pixels, origin = object_pixels(obj)
    plain = [r for r, _hole in _plain_centre_rings(obj)]
    if tolerance > 0:
        ring = joined_ring([_simplified(r, tolerance) for r in plain])
        filled = fill_rings([(ring, False)], pixels.shape, origin)
        if (filled & pixels).sum() / max(1, (filled | pixels).sum()) >= CENTRE_MIN_IOU:
            return ring
    ring = joined_through_pixels(plain, pixels, origin)
    return ring if ring is not None else joined_ring(plain)
