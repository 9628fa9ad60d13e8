"""Per-object measurements of an instance label image: one row per object, from scikit-image's
``regionprops_table`` (the maths CellProfiler and QuPath users compare against).

Why every value comes from the object's own bounding box: scikit-image computes each property
from the region's crop (its mask and intensity box), and the centroid here is the box's corner
plus skimage's ``centroid_local``.  So an object measured inside a block of a slide, from a crop
of its box, or in the whole image gives the same numbers bit for bit, and the table streamed
band by band from a chunked slide equals the one measured in memory.

Streaming (``iter_rows`` on a chunked label image): blocks are read in raster order.  An object
that touches no edge of its block towards an unread block is complete and measured from that
block; one that does is *open*: its box grows with every block it reaches, and once every block
it could continue into has been read, it is measured from a crop of its box (labels, raw pixels
and classes), taken from the blocks kept in memory.  Kept are only the parts of blocks that an
open object's box still covers, so memory is one block plus a strip about one object tall,
whatever the slide's size.  Ids must mark one object each (8-connected): an id that turns up
again after its object was finished is refused with its position.

API::

    Columns(channel_names=(), classes=(), pixel_size=None)  # the table's columns for one image
        .names: list[str]
    iter_rows(instances, pixels=None, class_mask=None, columns=Columns(), block=None)
        -> Iterator[list[tuple]]   # batches of rows, each batch sorted by label
    measure(instances, pixels=None, class_mask=None, columns=Columns(), block=None)
        -> dict[str, np.ndarray]   # the whole table, rows sorted by label
    write_measurements(path, instances, pixels=None, class_mask=None, columns=Columns(),
                       block=None) -> int   # rows written; the CSV is streamed, then renamed into place
    majority_classes(instances, class_mask) -> (ids, classes)  # the class rule, for any caller

``instances``: a 2-D integer array-like (numpy, zarr, a tifffile store, ``ChunkedLabels``), 0 =
background.  ``pixels``: H x W or H x W x C raw pixels in the file's dtype, or anything with
``read_raw(y0, y1, x0, x1)`` (``core.io.sources.ImageSource``).  ``class_mask``: class ids
under the objects; an object's class is the most frequent non-background class under it (the
lower id on a tie), and 1 when it lies on background only or there is no class mask.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from core.classes import ClassInfo

MAX_OBJECTS = 2**32 - 1  # ids are stored as uint32
STREAM_BLOCK = 1024  # block side for chunked label images: about 13 MB of labels and 4 raw channels
SHAPE_COLUMNS = ("area", "centroid_x", "centroid_y", "bbox_x", "bbox_y", "bbox_width", "bbox_height",
                 "perimeter", "equivalent_diameter", "major_axis_length", "minor_axis_length",
                 "orientation", "eccentricity", "solidity")
INTENSITY_COLUMNS = ("mean_intensity", "std_intensity", "min_intensity", "max_intensity", "integrated_intensity")
LENGTH_COLUMNS = ("perimeter", "equivalent_diameter", "major_axis_length", "minor_axis_length")
_PROPERTIES = ("label", "area", "bbox", "centroid_local", "perimeter", "equivalent_diameter_area",
               "axis_major_length", "axis_minor_length", "orientation", "eccentricity", "solidity")
_INTENSITY_PROPERTIES = ("intensity_mean", "intensity_std", "intensity_min", "intensity_max")


@dataclass(frozen=True)
class Columns:
    """What one image's table holds: a set of intensity columns per channel (suffixed with the
    channel's name when there is more than one), and micrometre columns when ``pixel_size``
    (``core.io.physical.physical_sizes``: {"X": µm, "Y": µm}) states both axes.  Lengths in µm
    need square pixels; with anisotropic ones only ``area_um2`` and the centroid are converted."""

    channel_names: Sequence[str] = ()
    classes: Sequence[ClassInfo] = ()
    pixel_size: dict | None = None

    def for_pixels(self, pixels) -> "Columns":
        """These columns for ``pixels`` (None: no intensity columns; names missing or of another
        count: the source's own names, else "channel1", "channel2"...)."""
        if pixels is None:
            return replace(self, channel_names=())
        count = int(pixels.channels) if hasattr(pixels, "read_raw") else \
            (1 if len(np.shape(pixels)) == 2 else int(np.shape(pixels)[2]))
        names = list(self.channel_names)
        if len(names) != count:
            names = list(getattr(pixels, "channel_names", None) or [])
        if len(names) != count:
            names = [f"channel{i + 1}" for i in range(count)]
        return replace(self, channel_names=tuple(names))

    @property
    def channel_suffixes(self) -> list[str]:
        names = list(self.channel_names)
        if len(names) <= 1:
            return [""] * len(names)
        seen: dict[str, int] = {}
        out = []
        for i, name in enumerate(names):
            name = "_".join(str(name).split()) or f"channel{i + 1}"
            seen[name] = seen.get(name, 0) + 1
            out.append("_" + (name if seen[name] == 1 else f"{name}{seen[name]}"))
        return out

    @property
    def microns(self) -> tuple[float, float] | None:
        size = self.pixel_size or {}
        return (float(size["Y"]), float(size["X"])) if size.get("X") and size.get("Y") else None

    @property
    def square_pixels(self) -> bool:
        um = self.microns
        return um is not None and math.isclose(um[0], um[1], rel_tol=1e-6)

    @property
    def names(self) -> list[str]:
        names = ["label", "class", "class_name", *SHAPE_COLUMNS]
        for suffix in self.channel_suffixes:
            names += [f"{c}{suffix}" for c in INTENSITY_COLUMNS]
        if self.microns:
            names += ["area_um2", "centroid_x_um", "centroid_y_um"]
            if self.square_pixels:
                names += [f"{c}_um" for c in LENGTH_COLUMNS]
        return names

    def class_name(self, cid: int) -> str:
        for c in self.classes:
            if c.id == cid:
                return c.name
        return "background" if cid == 0 else f"class {cid}"


# --- the maths of one block ------------------------------------------------------------------


def _integrated_intensity(region_mask: np.ndarray, intensity: np.ndarray) -> np.ndarray:
    return intensity[region_mask].sum(axis=0, dtype=np.float64)


def _table(seq: np.ndarray, pixels: np.ndarray | None) -> dict[str, np.ndarray]:
    """regionprops_table of the dense labels ``seq`` (1..n, 0 = none) over H x W x C ``pixels``."""
    from skimage.measure import regionprops_table

    if pixels is None:
        return regionprops_table(seq, properties=_PROPERTIES)
    return regionprops_table(seq, pixels, properties=_PROPERTIES + _INTENSITY_PROPERTIES,
                             extra_properties=(_integrated_intensity,))


def _rows(table: dict[str, np.ndarray], ids: np.ndarray, classes: np.ndarray, origin: tuple[int, int],
          columns: Columns, channels: int) -> list[tuple]:
    """Rows for the objects of ``table`` (dense label k is object ``ids[k]`` of class ``classes[k]``)."""
    k = table["label"]
    if not len(k):
        return []
    y0, x0 = origin
    by, bx = table["bbox-0"] + y0, table["bbox-1"] + x0
    cols: list = [ids[k].tolist(), classes[k].tolist(), [columns.class_name(c) for c in classes[k].tolist()],
                  table["area"].astype(np.int64).tolist(),
                  (bx + table["centroid_local-1"]).tolist(), (by + table["centroid_local-0"]).tolist(),
                  bx.tolist(), by.tolist(), (table["bbox-3"] - table["bbox-1"]).tolist(),
                  (table["bbox-2"] - table["bbox-0"]).tolist()]
    shape = {"perimeter": "perimeter", "equivalent_diameter": "equivalent_diameter_area",
             "major_axis_length": "axis_major_length", "minor_axis_length": "axis_minor_length",
             "orientation": "orientation", "eccentricity": "eccentricity", "solidity": "solidity"}
    cols += [table[shape[c]].tolist() for c in SHAPE_COLUMNS[7:]]
    for c in range(channels):
        cols += [table[f"{p}-{c}"].tolist() for p in _INTENSITY_PROPERTIES]
        cols.append(table[f"_integrated_intensity-{c}"].tolist())
    um = columns.microns
    if um:
        sy, sx = um
        cols += [(table["area"] * (sy * sx)).tolist(), ((bx + table["centroid_local-1"]) * sx).tolist(),
                 ((by + table["centroid_local-0"]) * sy).tolist()]
        if columns.square_pixels:
            cols += [(table[shape[c]] * sx).tolist() for c in LENGTH_COLUMNS]
    return list(zip(*cols))


def _classes_of(seq: np.ndarray, n: int, class_mask: np.ndarray | None) -> np.ndarray:
    """Per dense label 0..n: the most frequent non-background class under it, else 1."""
    if class_mask is None:
        out = np.ones(n + 1, np.int64)
        out[0] = 0
        return out
    cls = np.asarray(class_mask)
    k = int(cls.max()) + 1 if cls.size else 1
    if (n + 1) * k > 2**22:  # many objects and high class ids: count the pairs that occur, not a table
        both = (seq > 0) & (cls > 0)
        keys, counts = np.unique(seq[both].astype(np.int64) * k + cls[both], return_counts=True)
        obj, cid = np.divmod(keys, k)
        order = np.lexsort((cid, -counts, obj))  # per object: most pixels first, then the lower class id
        first = order[np.r_[True, obj[order][1:] != obj[order][:-1]]] if len(order) else order
        best = np.ones(n + 1, np.int64)
        best[obj[first]] = cid[first]
        best[0] = 0
        return best
    counts = np.bincount(seq.ravel().astype(np.int64) * k + cls.ravel(), minlength=(n + 1) * k).reshape(n + 1, k)
    counts[:, 0] = 0  # background does not vote
    best = counts.argmax(axis=1)  # ties: the lower class id
    best[counts.max(axis=1) == 0] = 1
    best[0] = 0
    return best


def majority_classes(instances: np.ndarray, class_mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(object ids, their classes) of an in-memory instance image by the rule of this module."""
    ids, inverse = np.unique(np.asarray(instances), return_inverse=True)
    seq = inverse.reshape(np.shape(instances))
    classes = _classes_of(seq, len(ids) - 1, class_mask)
    keep = ids != 0
    return ids[keep], classes[np.flatnonzero(keep)]


def _dense(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``block`` relabelled 1..n (0 stays 0) as int32, and the ids: label k is ``ids[k]`` (ids[0] = 0).

    Through a lookup table over the block's id range when that is not much larger than the block
    (a sort of every pixel costs ten times more), else ``np.unique``."""
    if block.size:
        lo, hi = int(block.min()), int(block.max())
        if hi - lo <= 4 * block.size + 1024:
            shifted = block.astype(np.int64) - (lo - 1)  # id lo at index 1; index 0 is background
            present = np.zeros(hi - lo + 2, bool)
            present[shifted.ravel()] = True
            present[0], present[1] = True, present[1] and lo != 0
            values = np.flatnonzero(present)
            lut = np.cumsum(present, dtype=np.int64).astype(np.int32) - 1
            seq = lut[shifted]
            ids = np.concatenate([[0], values[1:] - 1 + lo]).astype(np.int64)
            return seq, ids
    ids, inverse = np.unique(block, return_inverse=True)
    inverse = inverse.reshape(block.shape).astype(np.int32)
    if ids[0] != 0:
        ids = np.concatenate([[0], ids])
        inverse += 1
    return inverse, ids.astype(np.int64)


def check_labels(block: np.ndarray, name: str = "the label image") -> np.ndarray:
    """A 2-D block of ids as an unsigned array; ValueError (one sentence) for floats, negatives, ids >= 2**32."""
    block = np.asarray(block)
    if block.dtype == bool:
        return block.astype(np.uint8)
    if not np.issubdtype(block.dtype, np.integer):
        raise ValueError(f"{name} holds {block.dtype} values; object ids must be whole numbers "
                         "(an integer label image: uint16 or uint32)")
    if block.size and np.issubdtype(block.dtype, np.signedinteger) and int(block.min()) < 0:
        raise ValueError(f"{name} holds negative ids ({int(block.min())}); object ids are 0 (background) or more")
    if block.size and block.dtype.itemsize > 4 and int(block.max()) > MAX_OBJECTS:
        raise ValueError(f"{name} holds the id {int(block.max())}: more than 2^32 objects cannot be stored "
                         "(ids are 32-bit)")
    return block


# --- reading blocks ----------------------------------------------------------------------------


def _reader(data, what: str) -> Callable[[int, int, int, int], np.ndarray] | None:
    if data is None:
        return None
    if hasattr(data, "read_raw"):
        return lambda y0, y1, x0, x1: data.read_raw(y0, y1, x0, x1)

    def read(y0, y1, x0, x1):
        part = np.asarray(data[y0:y1, x0:x1])
        return part[..., None] if what == "pixels" and part.ndim == 2 else part

    return read


def _shape(data) -> tuple[int, int]:
    if hasattr(data, "read_raw"):
        return int(data.height), int(data.width)
    return tuple(int(v) for v in np.shape(data)[:2]) if isinstance(data, np.ndarray) else \
        (int(data.shape[0]), int(data.shape[1]))


def _block_side(instances, block: int | None) -> int:
    h, w = _shape(instances)
    if block is not None:
        return max(1, int(block))
    if isinstance(instances, np.ndarray):
        return max(h, w, 1)
    chunk = max(getattr(instances, "chunks", None) or (STREAM_BLOCK,))
    return int(max(1, STREAM_BLOCK // chunk) * chunk)


class _Piece:
    """A kept rectangle of a block: its labels, raw pixels and classes (rows y0:y1, columns x0:x1)."""

    __slots__ = ("y0", "y1", "x0", "x1", "lab", "raw", "cls")

    def __init__(self, y0, x0, lab, raw, cls):
        self.y0, self.x0 = y0, x0
        self.y1, self.x1 = y0 + lab.shape[0], x0 + lab.shape[1]
        self.lab, self.raw, self.cls = lab, raw, cls

    def keep_from(self, y: int) -> None:
        cut = y - self.y0
        self.lab = self.lab[cut:].copy()
        self.raw = None if self.raw is None else self.raw[cut:].copy()
        self.cls = None if self.cls is None else self.cls[cut:].copy()
        self.y0 = y


class _SeenIds:
    """Ids already measured, as a few sorted arrays merged as they grow (O(n log n), 8 bytes an id)."""

    def __init__(self):
        self.parts: list[np.ndarray] = []

    def add(self, ids: np.ndarray) -> None:
        if len(ids):
            self.parts.append(np.sort(ids))
            while len(self.parts) > 1 and len(self.parts[-1]) * 2 >= len(self.parts[-2]):
                last = self.parts.pop()
                self.parts[-1] = np.union1d(self.parts[-1], last)

    def first_of(self, ids: np.ndarray) -> int | None:
        for part in self.parts:
            pos = np.minimum(np.searchsorted(part, ids), len(part) - 1)
            hit = part[pos] == ids
            if hit.any():
                return int(ids[hit][0])
        return None


def iter_rows(instances, pixels=None, class_mask=None, columns: Columns = Columns(),
              block: int | None = None) -> Iterator[list[tuple]]:
    """Batches of finished rows (see the module doc); the whole image in memory is one batch."""
    from scipy import ndimage

    h, w = _shape(instances)
    for other, what in ((pixels, "image"), (class_mask, "class mask")):
        if other is not None and _shape(other) != (h, w):
            oh, ow = _shape(other)
            raise ValueError(f"the label image is {w}x{h} but the {what} is {ow}x{oh}")
    side = _block_side(instances, block)
    read_lab, read_raw, read_cls = _reader(instances, "labels"), _reader(pixels, "pixels"), _reader(class_mask, "classes")
    channels = None
    pieces: list[_Piece] = []
    open_boxes: dict[int, list[int]] = {}  # id -> [y0, x0, y1, x1] of what was read
    needs: dict[int, set] = {}  # id -> blocks it may continue into, not read yet
    waiting: dict[tuple[int, int], set] = {}  # block -> open ids that need it
    seen = _SeenIds()

    def crop(box):
        y0, x0, y1, x1 = box
        lab = np.zeros((y1 - y0, x1 - x0), pieces[0].lab.dtype if pieces else np.uint32)
        raw = None if read_raw is None else np.zeros((y1 - y0, x1 - x0, channels), raw_dtype)
        cls = None if read_cls is None else np.zeros((y1 - y0, x1 - x0), cls_dtype)
        covered = 0
        for p in pieces:
            a0, a1, b0, b1 = max(y0, p.y0), min(y1, p.y1), max(x0, p.x0), min(x1, p.x1)
            if a0 < a1 and b0 < b1:
                lab[a0 - y0:a1 - y0, b0 - x0:b1 - x0] = p.lab[a0 - p.y0:a1 - p.y0, b0 - p.x0:b1 - p.x0]
                if raw is not None:
                    raw[a0 - y0:a1 - y0, b0 - x0:b1 - x0] = p.raw[a0 - p.y0:a1 - p.y0, b0 - p.x0:b1 - p.x0]
                if cls is not None:
                    cls[a0 - y0:a1 - y0, b0 - x0:b1 - x0] = p.cls[a0 - p.y0:a1 - p.y0, b0 - p.x0:b1 - p.x0]
                covered += (a1 - a0) * (b1 - b0)
        if covered < lab.size:  # not kept (cannot happen by the retention rule): read it again
            lab = check_labels(read_lab(y0, y1, x0, x1))
            raw = None if read_raw is None else read_raw(y0, y1, x0, x1)
            cls = None if read_cls is None else read_cls(y0, y1, x0, x1)
        return lab, raw, cls

    raw_dtype = cls_dtype = None
    for r0 in range(0, h, side):
        r1 = min(h, r0 + side)
        for bj, c0 in enumerate(range(0, w, side)):
            c1 = min(w, c0 + side)
            key = (r0 // side, bj)
            lab = check_labels(read_lab(r0, r1, c0, c1))
            raw = None if read_raw is None else read_raw(r0, r1, c0, c1)
            cls = None if read_cls is None else np.asarray(read_cls(r0, r1, c0, c1))
            if raw is not None:
                channels, raw_dtype = raw.shape[2], raw.dtype
            if cls is not None:
                cls_dtype = cls.dtype
            seq, ids = _dense(lab)
            n = len(ids) - 1
            again = seen.first_of(ids[1:])
            if again is not None:
                ys, xs = np.nonzero(lab == again)
                raise ValueError(f"the id {again} marks pixels in separate places (again at x {c0 + xs[0]}, "
                                 f"y {r0 + ys[0]}); each object needs an id of its own")
            contact = _contacts(seq, key, (r1, c0, c1), (h, w), side)
            is_open = np.zeros(n + 1, bool)
            for i in contact:
                is_open[i] = True
            for k, gid in enumerate(ids.tolist()):
                if k and gid in open_boxes:
                    is_open[k] = True
            rows: list[tuple] = []
            complete = ~is_open
            complete[0] = False
            if complete.any():
                only = np.where(complete[seq], seq, 0)
                table = _table(only, raw)
                rows += _rows(table, ids, _classes_of(only, n, cls), (r0, c0), columns,
                              0 if raw is None else raw.shape[2])
                seen.add(ids[complete])
            if is_open.any():  # open objects: grow their boxes and what they need
                slices = ndimage.find_objects(np.where(is_open[seq], seq, 0))
                for k in np.flatnonzero(is_open).tolist():
                    gid, sl = int(ids[k]), slices[k - 1]
                    box = [r0 + sl[0].start, c0 + sl[1].start, r0 + sl[0].stop, c0 + sl[1].stop]
                    old = open_boxes.get(gid)
                    open_boxes[gid] = box if old is None else [min(old[0], box[0]), min(old[1], box[1]),
                                                               max(old[2], box[2]), max(old[3], box[3])]
                    for b in contact.get(k, ()):
                        if b not in needs.setdefault(gid, set()):
                            needs[gid].add(b)
                            waiting.setdefault(b, set()).add(gid)
                    needs.setdefault(gid, set())
            done_now = []
            for gid in waiting.pop(key, set()):
                needs[gid].discard(key)
            for gid in list(needs):
                if not needs[gid] and gid in open_boxes:
                    done_now.append(gid)
            if is_open.any() or done_now:
                pieces.append(_Piece(r0, c0, lab, raw, cls))
            for gid in sorted(done_now):
                box = open_boxes.pop(gid)
                del needs[gid]
                clab, craw, ccls = crop(box)
                mask = (clab == gid).astype(np.uint8)
                rows += _rows(_table(mask, craw), np.array([0, gid]), _classes_of(mask, 1, ccls),
                              (box[0], box[1]), columns, 0 if craw is None else craw.shape[2])
            seen.add(np.array(done_now, np.int64))
            _retain(pieces, open_boxes)
            if rows:
                rows.sort(key=lambda r: r[0])
                yield rows


def _contacts(seq: np.ndarray, key: tuple[int, int], edges: tuple[int, int, int], shape: tuple[int, int],
              side: int) -> dict[int, set]:
    """Per dense label of a block, the blocks not read yet that it touches (8-connected): the next
    block of its band (its last column) and those of the next band under its last row."""
    (r1, c0, c1), (h, w) = edges, shape
    contact: dict[int, set] = {}
    if c1 < w:
        for i in np.unique(seq[:, -1]).tolist():
            if i:
                contact.setdefault(i, set()).add((key[0], key[1] + 1))
    if r1 < h:
        row = seq[-1]
        order = np.argsort(row, kind="stable")
        labels, first = np.unique(row[order], return_index=True)
        last = np.r_[first[1:], len(row)] - 1
        for i, lo, hi in zip(labels.tolist(), order[first].tolist(), order[last].tolist()):
            if i:
                a, b = max(0, c0 + lo - 1) // side, min(w - 1, c0 + hi + 1) // side
                contact.setdefault(i, set()).update((key[0] + 1, j) for j in range(a, b + 1))
    return contact


def _retain(pieces: list[_Piece], open_boxes: dict[int, list[int]]) -> None:
    """Keep of each piece only the rows an open object's box still covers; drop the rest."""
    if not pieces:
        return
    if not open_boxes:
        pieces.clear()
        return
    boxes = np.array(list(open_boxes.values()), np.int64)
    keep = []
    for p in pieces:
        hit = (boxes[:, 0] < p.y1) & (boxes[:, 2] > p.y0) & (boxes[:, 1] < p.x1) & (boxes[:, 3] > p.x0)
        if hit.any():
            top = int(boxes[hit, 0].min())
            if top > p.y0:
                p.keep_from(top)
            keep.append(p)
    pieces[:] = keep


def measure(instances, pixels=None, class_mask=None, columns: Columns = Columns(),
            block: int | None = None) -> dict[str, np.ndarray]:
    """The whole table as columns (rows sorted by label)."""
    columns = columns.for_pixels(pixels)
    rows = [r for batch in iter_rows(instances, pixels, class_mask, columns, block) for r in batch]
    rows.sort(key=lambda r: r[0])
    names = columns.names
    if not rows:
        return {n: np.array([]) for n in names}
    return {n: np.array(v) for n, v in zip(names, zip(*rows))}


def write_measurements(path: str | os.PathLike, instances, pixels=None, class_mask=None,
                       columns: Columns = Columns(), block: int | None = None, keep_empty: bool = True) -> int:
    """Stream the table into a CSV at ``path`` (written beside it, renamed when complete: an
    interrupted run leaves no half table); returns the number of rows.  With ``keep_empty``
    False, a label image without objects writes no file (and returns 0)."""
    from core.atomic import atomic_path

    columns, count = columns.for_pixels(pixels), 0
    try:
        with atomic_path(path, suffix=".csv") as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(columns.names)
            for batch in iter_rows(instances, pixels, class_mask, columns, block):
                out.writerows(batch)
                count += len(batch)
            if not count and not keep_empty:
                raise _NoObjects
    except _NoObjects:
        return 0
    return count


class _NoObjects(Exception):
    """Leaves ``atomic_path`` without renaming the empty table into place."""


def read_measurements(path: str | os.PathLike) -> dict[str, list[str]]:
    """A measurements CSV as columns of strings (for tests and scripts)."""
    with open(Path(path), newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        names = next(reader)
        rows = list(reader)
    return {n: [r[i] for r in rows] for i, n in enumerate(names)}
