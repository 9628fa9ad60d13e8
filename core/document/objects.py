"""The object layer of a mask document: one instance id per pixel, beside the class labels.

An object is every pixel with its id (uint32, 0 = no object).  The rules that keep the two
layers consistent (README, "Objects in the app"):

* painting an object of class c paints its pixels class c in the class labels too;
* a new object, or one that grows, never takes pixels of another object (touching objects are
  painted one after the other and stay whole);
* erasing pixels from an object, or deleting it, makes those pixels background (class 0);
* merging and splitting change ids only, never classes;
* the class tools (brush, fill, polygon...) do not change objects;
* new class labels for the whole mask (Segment with a model that gives classes only, Segment
  Stack, Live Training's Apply, an imported mask) take their object pixels along in the same undo
  step: a pixel they make background is no object's (``background_clears``), so an object left
  without pixels is gone, while an object whose pixels change class stays (its class is the
  majority under it, as after the class brush).  A model's own objects replace the layer whole.

Every operation is one undo step in the document's one history (core.document.history, layer
``OBJECTS``), and each reports the box it changed through ``changed`` (and the document's own
``changed`` for the class labels it wrote).  The id array is allocated on first use: an image
whose objects are never touched costs nothing.  Qt-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
from psygnal import Signal

from core.document.editing import EMPTY, Box, mask_box, segment_mask
from core.document.history import LABELS

OBJECTS = "objects"  # the object layer's name in the history
MAX_ID = 2**32 - 2  # 2^32 - 1 is "not annotated" in a 32-bit training file
MIN_PIECE = 5  # pixels: smaller pieces a split line cuts off go back to their neighbour


@dataclass
class StepHooks:
    """What the layer needs of its document: open a step (False while edits are refused, e.g. a
    segmentation preview is open), save content before a write, close the step, repaint."""

    open: Callable[[], bool]
    record: Callable[[np.ndarray, Box, "np.ndarray | None", str], None]
    close: Callable[[str], object]
    classes_changed: Callable[[Box], None]


def polyline_pixels(points: Iterable[tuple[float, float]], shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of the 8-connected pixel line through ``points`` (x, y), clipped to
    ``shape``: an 8-connected line separates 4-connected regions."""
    from skimage.draw import line

    pts = [(math.floor(y), math.floor(x)) for x, y in points]
    if not pts:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    rows, cols = [np.array([pts[0][0]])], [np.array([pts[0][1]])]
    for (r0, c0), (r1, c1) in zip(pts[:-1], pts[1:]):
        rr, cc = line(r0, c0, r1, c1)
        rows.append(rr)
        cols.append(cc)
    r, c = np.concatenate(rows), np.concatenate(cols)
    h, w = shape
    keep = (r >= 0) & (r < h) & (c >= 0) & (c < w)
    return r[keep], c[keep]


def split_pieces(inside: np.ndarray, cut: np.ndarray, min_piece: int = MIN_PIECE) -> tuple[np.ndarray, int]:
    """Split the object ``inside`` (bool) along ``cut`` (bool, same shape): (piece per pixel,
    1..n, 0 outside; the largest piece is 1) and n.  Cut pixels and pieces under ``min_piece``
    pixels go to the nearest large piece, so no pixel of the object is lost; n < 2: no split."""
    from scipy import ndimage as ndi

    pieces, n = ndi.label(inside & ~cut)  # 4-connected
    if n < 2:
        return np.where(inside, 1, 0).astype(np.int32), 1
    sizes = np.bincount(pieces.ravel(), minlength=n + 1)
    sizes[0] = 0
    big = np.flatnonzero(sizes >= min_piece)
    if big.size < 2:
        return np.where(inside, 1, 0).astype(np.int32), 1
    order = big[np.argsort(-sizes[big], kind="stable")]
    relabel = np.zeros(n + 1, np.int32)
    relabel[order] = np.arange(1, order.size + 1)
    kept = relabel[pieces]
    if (inside & (kept == 0)).any():  # cut pixels and crumbs: the nearest kept piece
        _, (iy, ix) = ndi.distance_transform_edt(kept == 0, return_indices=True)
        kept = np.where(inside, kept[iy, ix], 0)
    return kept, int(order.size)


def background_clears(ids: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The object ids ``ids`` once the whole class mask became ``classes``: background pixels
    hold no object (the module's rule for new class labels); the array itself when nothing
    changes."""
    gone = (classes == 0) & (ids != 0)
    return np.where(gone, 0, ids).astype(np.uint32, copy=False) if gone.any() else ids


class ObjectLayer:
    """The instance ids of a document and their edit operations (see the module's rules)."""

    changed = Signal(Box)  # object ids changed within the box
    reset = Signal()  # replaced wholesale (loaded from a file, or cleared)

    def __init__(self, shape: tuple[int, int], classes: Callable[[], np.ndarray], hooks: StepHooks,
                 radius: Callable[[], float]):
        self._shape = (int(shape[0]), int(shape[1]))
        self._classes = classes
        self._hooks = hooks
        self._radius = radius
        self._ids: np.ndarray | None = None
        self._stroke: tuple[str, int, int] | None = None  # (mode, object id, class id)
        self._last: tuple[float, float] | None = None
        # the largest id in use beyond this layer (a stack's other planes, core.document.stack_planes):
        # a new object's id is above it too, so an id never names objects on two planes
        self.taken_elsewhere: Callable[[], int] | None = None

    # -- state -------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return self._shape

    @property
    def allocated(self) -> bool:
        """Whether the id array exists (it is made on first use)."""
        return self._ids is not None

    @property
    def labels(self) -> np.ndarray:
        """The H x W uint32 id array, edited in place (made, all zero, on first access)."""
        if self._ids is None:
            self._ids = np.zeros(self._shape, np.uint32)
        return self._ids

    @property
    def is_empty(self) -> bool:
        return self._ids is None or not self._ids.any()

    def ids(self) -> np.ndarray:
        """The object ids present, ascending."""
        if self._ids is None:
            return np.zeros(0, np.uint32)
        return np.unique(self._ids[self._ids != 0])

    @property
    def count(self) -> int:
        return int(self.ids().size)

    @property
    def top(self) -> int:
        """The largest id present (0: none)."""
        return int(self._ids.max()) if self._ids is not None and self._ids.size else 0

    def next_id(self) -> int:
        """The id a new object gets: one more than the largest present here or elsewhere
        (``taken_elsewhere``)."""
        top = max(self.top, self.taken_elsewhere() if self.taken_elsewhere is not None else 0)
        if top >= MAX_ID:
            raise ValueError(f"a mask holds at most {MAX_ID:,} objects")
        return top + 1

    def object_at(self, x: float, y: float) -> int:
        """The id under (x, y) in pixel coordinates (0: none, or outside the image)."""
        i, j = math.floor(y), math.floor(x)
        h, w = self._shape
        if self._ids is None or not (0 <= i < h and 0 <= j < w):
            return 0
        return int(self._ids[i, j])

    def box_of(self, object_id: int) -> Box:
        """The bounding box of an object (EMPTY when there is none with that id)."""
        if self._ids is None or object_id <= 0:
            return EMPTY
        return mask_box(self._ids == object_id)

    @property
    def stroke_active(self) -> bool:
        return self._stroke is not None

    # -- wholesale -----------------------------------------------------------------------------
    def set_labels(self, ids: np.ndarray | None) -> None:
        """New content outside the history (an image's saved objects as it opens); None: none."""
        self._stroke = None
        if ids is None:
            self._ids = None
        else:
            ids = np.asarray(ids)
            if ids.shape != self._shape:
                raise ValueError(f"objects of shape {ids.shape} do not fit a {self._shape} mask")
            if ids.dtype.kind not in "ui":
                raise ValueError(f"object ids are integers, not {ids.dtype}")
            if ids.size and (int(ids.min()) < 0 or int(ids.max()) > MAX_ID):
                raise ValueError(f"object ids must be within 0..{MAX_ID:,}")
            self._ids = np.ascontiguousarray(ids, np.uint32).copy() if ids.dtype != np.uint32 \
                else np.array(ids, np.uint32, copy=True)
        self.reset.emit()

    # -- strokes -----------------------------------------------------------------------------
    def begin_paint(self, class_id: int, grow: int = 0) -> int:
        """Start a stroke that paints a new object of ``class_id`` (the next free id) or, with
        ``grow``, adds to that object; returns the id painted (0: edits are refused now)."""
        class_id = int(class_id)
        if not 1 <= class_id <= 255:
            raise ValueError(f"an object's class is within 1..255, not {class_id}")
        object_id = int(grow) if grow > 0 else self.next_id()
        if not self._hooks.open():
            return 0
        self._stroke, self._last = ("paint", object_id, class_id), None
        return object_id

    def begin_erase(self, object_id: int = 0) -> bool:
        """Start a stroke that erases pixels of ``object_id`` (0: of every object it crosses)."""
        if not self._hooks.open():
            return False
        self._stroke, self._last = ("erase", int(object_id), 0), None
        return True

    def stroke_to(self, x: float, y: float) -> Box | None:
        """Paint or erase from the previous point to (x, y) with the document's brush."""
        if self._stroke is None:
            return None
        mode, object_id, class_id = self._stroke
        p1 = (float(x), float(y))
        p0 = self._last if self._last is not None else p1
        self._last = p1
        box, mask = segment_mask(p0, p1, self._radius(), self._shape)
        if box.is_empty:
            return None
        ids = self.labels[box.slices]
        if mode == "paint":
            mask &= ids == 0
            value = object_id
        else:
            mask &= (ids == object_id) if object_id else (ids != 0)
            value = 0
        return self._write(box, mask, value, class_id)

    def end_stroke(self) -> None:
        if self._stroke is None:
            return
        mode, self._stroke, self._last = self._stroke[0], None, None
        self._hooks.close("new object" if mode == "paint" else "erase object")

    # -- one-step edits ------------------------------------------------------------------------
    def delete(self, object_id: int) -> Box | None:
        """Remove an object: its pixels become background in both layers."""
        box = self.box_of(object_id)
        if box.is_empty or not self._hooks.open():
            return None
        try:
            return self._write(box, self._ids[box.slices] == object_id, 0, 0)
        finally:
            self._hooks.close("delete object")

    def merge(self, keep: int, other: int) -> Box | None:
        """Make ``other`` part of ``keep`` (its pixels take ``keep``'s id; classes as they are)."""
        box = self.box_of(other)
        if keep <= 0 or keep == other or box.is_empty or self.box_of(keep).is_empty or not self._hooks.open():
            return None
        try:
            return self._write(box, self._ids[box.slices] == other, keep, None)
        finally:
            self._hooks.close("merge objects")

    def split(self, points: Iterable[tuple[float, float]], min_piece: int = MIN_PIECE) -> list[int]:
        """Split every object the line through ``points`` (x, y) cuts in two or more: the largest
        piece keeps the id, each other piece is a new object.  Returns the new ids (none: the
        line crossed no object from edge to edge; no undo step then)."""
        rows, cols = polyline_pixels(points, self._shape)
        if self._ids is None or rows.size == 0:
            return []
        crossed = [int(v) for v in np.unique(self._ids[rows, cols]) if v]
        plans = []
        for object_id in crossed:
            box = self.box_of(object_id)
            inside = self._ids[box.slices] == object_id
            cut = np.zeros(inside.shape, bool)
            keep = (rows >= box.y0) & (rows < box.y1) & (cols >= box.x0) & (cols < box.x1)
            cut[rows[keep] - box.y0, cols[keep] - box.x0] = True
            pieces, n = split_pieces(inside, cut, min_piece)
            if n >= 2:
                plans.append((object_id, box, pieces, n))
        if not plans:
            return []
        next_id = self.next_id()  # ValueError (a full mask, ids held by a run) before any undo step opens
        if not self._hooks.open():
            return []
        new_ids: list[int] = []
        try:
            for object_id, box, pieces, n in plans:
                ids = np.zeros(n + 1, np.uint32)
                ids[1] = object_id
                ids[2:] = np.arange(next_id, next_id + n - 1, dtype=np.uint32)
                new_ids += ids[2:].tolist()
                next_id += n - 1
                moved = pieces > 1
                self._record(box, moved)
                region = self._ids[box.slices]
                region[moved] = ids[pieces[moved]]
                self.changed.emit(mask_box(moved, (box.y0, box.x0)))
        finally:
            self._hooks.close("split object")
        return new_ids

    def apply(self, ids: np.ndarray, label: str = "objects") -> Box | None:
        """Replace every object id as one undo step (class labels as they are): a restored copy,
        or a model's instances."""
        ids = np.asarray(ids)
        if ids.shape != self._shape:
            raise ValueError(f"objects of shape {ids.shape} do not fit a {self._shape} mask")
        if not self._hooks.open():
            return None
        try:
            diff = self.labels != ids
            box = mask_box(diff)
            if box.is_empty:
                return box
            self._record(box, diff[box.slices])
            self._ids[box.slices] = ids[box.slices]
            self.changed.emit(box)
            return box
        finally:
            self._hooks.close(label)

    # -- internals ---------------------------------------------------------------------------
    def _record(self, box: Box, mask: np.ndarray | None) -> None:
        self._hooks.record(self.labels, box, mask, OBJECTS)

    def _write(self, box: Box, mask: np.ndarray, value: int, class_id: int | None) -> Box | None:
        """Write ``value`` where ``mask`` (covering ``box``) is set, and ``class_id`` into the class
        labels there (None: classes untouched)."""
        changed = mask_box(mask, (box.y0, box.x0))
        if changed.is_empty:
            return None
        local = (slice(changed.y0 - box.y0, changed.y1 - box.y0), slice(changed.x0 - box.x0, changed.x1 - box.x0))
        mask = mask[local]
        self._record(changed, mask)
        self._ids[changed.slices][mask] = value
        self.changed.emit(changed)
        if class_id is not None:
            classes = self._classes()
            region = classes[changed.slices]
            moved = mask & (region != class_id)
            if moved.any():
                self._hooks.record(classes, changed, moved, LABELS)
                region[moved] = class_id
                self._hooks.classes_changed(changed)
        return changed
