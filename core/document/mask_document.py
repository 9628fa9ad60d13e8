"""The mask being edited: one label buffer, its classes, the edit tools and undo history.

Qt-free so every behaviour is testable headless; the GUI wraps ``labels`` (the same buffer for
the document's lifetime, mutated in place) in a colour-table image and repaints the boxes that
``changed`` reports.  Only ``set_labels`` / ``restore`` replace content wholesale (``reset``).

Beside the class labels a document in memory has an object layer, ``objects``
(core.document.objects): instance ids with their own edit operations, undone and redone in the
same history as the class edits.  A chunked (whole-slide) mask has none yet (``objects`` is None).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import math

import numpy as np
from psygnal import Signal

from core.document import editing
from core.document.chunked_labels import ChunkedLabels
from core.classes import ClassInfo, complete_classes
from core.document.editing import EMPTY, Box
from core.document.history import LABELS, History, Step
from core.document.objects import OBJECTS, ObjectLayer, StepHooks, background_clears

TOOLS = ("brush", "eraser")
MIN_BRUSH, MAX_BRUSH = 1, 500
FILL_LIMIT = 2**26  # a flood fill reads its bound into memory: at most 64 Mpx (one byte each)


def _as_labels(labels):
    """A C-contiguous, writeable uint8 buffer the document may edit in place (decoded PNGs are
    read-only arrays; those are copied), or a ChunkedLabels as it is."""
    if isinstance(labels, ChunkedLabels):
        return labels
    arr = np.asarray(labels)
    if arr.ndim != 2:
        raise ValueError(f"labels must be a 2-D array, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ValueError("label values must be within 0..255")
        arr = arr.astype(np.uint8)
    arr = np.ascontiguousarray(arr)
    return arr if arr.flags.writeable else arr.copy()


class MaskDocument:
    """Label mask + edit operations; every mutation emits ``changed(box)`` with its dirty box.

    Edits are refused (no-ops returning None) while a segmentation preview is open, i.e.
    between the first ``paste_region`` and ``apply_labels`` / ``cancel_preview`` / ``restore``.
    """

    changed = Signal(Box)
    reset = Signal()
    dirty_changed = Signal(bool)
    active_class_changed = Signal(int)
    history_changed = Signal()
    classes_changed = Signal()
    brush_size_changed = Signal(int)
    erase_value = 0  # what the eraser paints (a strokes document: "not annotated")

    def __init__(self, labels: np.ndarray, classes: Sequence[ClassInfo] | None = None, *,
                 history: History | None = None):
        self._labels = _as_labels(labels)
        if classes is None:
            top = max(self.present_classes(), default=0)
            classes = complete_classes(top=max(1, top))
        self._classes = list(classes)
        self._active = 1 if len(self._classes) > 1 else 0
        self.history = history if history is not None else History()
        self._bound_groups()
        self.protected: frozenset[int] = frozenset()  # class ids no tool may overwrite
        self._radius = 5.0
        self._stroke: tuple[str, int] | None = None
        self._last: tuple[float, float] | None = None
        self._preview = False
        self._saved = self.history.position
        self._dirty = False
        self.last_fill_clipped = False  # did the last fill stop at its bound with more region beyond?
        self._objects = None if self.is_chunked else self._new_object_layer()

    def _new_object_layer(self) -> ObjectLayer:
        hooks = StepHooks(open=self._open_object_step, close=self._commit,
                          record=lambda array, box, mask, layer: self.history.record_before(array, box, mask, layer),
                          classes_changed=self._emit)
        return ObjectLayer(self.shape, lambda: self._labels, hooks, lambda: self._radius)

    def _open_object_step(self) -> bool:
        if self._preview:
            return False
        self.end_stroke()
        self.history.begin()
        return True

    @property
    def objects(self) -> ObjectLayer | None:
        """The object layer (instance ids beside the class labels); None on a chunked mask."""
        return self._objects

    def _layers(self):
        """What the history reads and writes: the class labels, and the objects once they exist."""
        if self._objects is not None and self._objects.allocated:
            return {LABELS: self._labels, OBJECTS: self._objects.labels}
        return self._labels

    def _bound_groups(self) -> None:
        """A chunked mask may receive more than memory holds in one step: bound the open group."""
        if self.is_chunked and self.history.group_limit is None:
            self.history.group_limit = self.history.max_bytes

    # -- plain state -------------------------------------------------------------------------
    @property
    def labels(self) -> np.ndarray | ChunkedLabels:
        return self._labels

    @property
    def is_chunked(self) -> bool:
        """True when the mask is a ChunkedLabels (whole-array operations are refused)."""
        return isinstance(self._labels, ChunkedLabels)

    @property
    def shape(self) -> tuple[int, int]:
        return self._labels.shape  # type: ignore[return-value]

    @property
    def classes(self) -> list[ClassInfo]:
        return list(self._classes)

    @classes.setter
    def classes(self, classes: Iterable[ClassInfo]) -> None:
        self.set_classes(classes)

    def set_classes(self, classes: Iterable[ClassInfo]) -> None:
        self._classes = list(classes)
        self.classes_changed.emit()

    @property
    def active_class(self) -> int:
        return self._active

    @active_class.setter
    def active_class(self, value: int) -> None:
        self.set_active_class(value)

    def set_active_class(self, value: int) -> None:
        value = int(value)
        if not 0 <= value <= 255:
            raise ValueError(f"class id must be within 0..255, not {value}")
        if value != self._active:
            self._active = value
            self.active_class_changed.emit(value)

    @property
    def radius(self) -> float:
        return self._radius

    @radius.setter
    def radius(self, value: float) -> None:
        self.set_brush_size(2 * value)

    @property
    def brush_size(self) -> int:
        """Brush diameter in pixels (1 = a one-pixel brush, radius 0.5)."""
        return round(2 * self._radius)

    def set_brush_size(self, size: float) -> None:
        size = int(min(max(round(size), MIN_BRUSH), MAX_BRUSH))
        if size / 2 != self._radius:
            self._radius = size / 2
            self.brush_size_changed.emit(size)

    @property
    def dirty(self) -> bool:
        return self._dirty

    @property
    def can_undo(self) -> bool:
        return self.history.can_undo and not self._preview

    @property
    def can_redo(self) -> bool:
        return self.history.can_redo and not self._preview

    @property
    def preview_active(self) -> bool:
        return self._preview

    @property
    def stroke_active(self) -> bool:
        """A brush stroke (of the classes or of the objects) is open."""
        return self._stroke is not None or (self._objects is not None and self._objects.stroke_active)

    def mark_saved(self) -> None:
        self._saved = self.history.position
        self._update_dirty()

    @property
    def is_blank(self) -> bool:
        """True while every pixel is background (a chunked mask answers from its counts)."""
        if self.is_chunked:
            return not self._labels.class_counts()[1:].any()
        return not self._labels.any()

    def present_classes(self) -> list[int]:
        """Class ids with at least one pixel (a chunked mask answers from its class counts)."""
        if self.is_chunked:
            return np.flatnonzero(self._labels.class_counts()).tolist()
        counts = np.bincount(self._labels.ravel(), minlength=256)
        return np.flatnonzero(counts).tolist()

    # -- internals ---------------------------------------------------------------------------
    def _update_dirty(self) -> None:
        dirty = self.history.position != self._saved
        if dirty != self._dirty:
            self._dirty = dirty
            self.dirty_changed.emit(dirty)

    def _record(self, box: Box) -> None:
        self.history.record_before(self._labels, box)

    def _emit(self, box: Box | None) -> Box | None:
        if box is not None and not box.is_empty:
            self.changed.emit(box)
        return box

    def _commit(self, label: str) -> Step | None:
        step = self.history.commit(self._layers(), label)
        self.history_changed.emit()
        self._update_dirty()
        return step

    def _one_step(self, label: str, op) -> Box | None:
        if self._preview:
            return None
        self.end_stroke()
        self.history.begin()
        try:
            box = op()
        finally:  # ops validate before writing, but keep history consistent regardless
            self._commit(label)
        return self._emit(box)

    # -- strokes -----------------------------------------------------------------------------
    def begin_stroke(self, tool: str = "brush", value: int | None = None) -> None:
        """Start one undo step; the eraser paints ``erase_value``, the brush ``value`` or the active class."""
        if tool not in TOOLS:
            raise ValueError(f"tool must be one of {TOOLS}, not {tool!r}")
        if self._preview:
            return
        self.end_stroke()
        paint = self.erase_value if tool == "eraser" else int(self._active if value is None else value)
        self._stroke, self._last = (tool, paint), None
        self.history.begin()

    def stroke_to(self, x: float, y: float) -> Box | None:
        """Paint from the previous point to (x, y); the first call paints a dot."""
        if self._stroke is None:
            return None
        p1 = (float(x), float(y))
        p0 = self._last if self._last is not None else p1
        self._last = p1
        box = editing.stamp_segment(self._labels, p0, p1, self._radius, self._stroke[1],
                                    self.protected, before=self._record)
        return self._emit(box)

    def end_stroke(self) -> Step | None:
        if self._objects is not None and self._objects.stroke_active:
            self._objects.end_stroke()
        if self._stroke is None:
            return None
        tool, self._stroke, self._last = self._stroke[0], None, None
        return self._commit(tool)

    # -- one-shot edits ----------------------------------------------------------------------
    def fill(self, x: float, y: float, connectivity: int = 4, bound: Box | None = None) -> Box | None:
        """Flood fill with the active class.  With ``bound`` (the GUI passes the region in view), or
        always on a chunked mask, the fill stays inside the bound; ``last_fill_clipped`` then says
        whether the region went on beyond it (see ``fill_bounded``)."""
        if bound is None and not self.is_chunked:
            self.last_fill_clipped = False
            return self._one_step("fill", lambda: editing.flood_fill(
                self._labels, x, y, self._active, connectivity, self.protected, before=self._record))
        return self.fill_bounded(x, y, bound, connectivity)[0]

    def fill_bounded(self, x: float, y: float, bound: Box | None,
                     connectivity: int = 4) -> tuple[Box | None, bool]:
        """Flood fill limited to ``bound`` (None: the whole mask, refused above FILL_LIMIT pixels).

        Returns (changed box or None, clipped): clipped is True when the filled region touches
        the bound where the same class continues outside it, i.e. the fill is incomplete.
        """
        if bound is None:
            bound = Box.full(self.shape)
        bound = Box(*(int(v) for v in bound)).clip(*self.shape)
        if bound.area > FILL_LIMIT:
            raise ValueError(f"a flood fill reads its bound into memory; {bound.width}x{bound.height} is more "
                             f"than {FILL_LIMIT // 2**20} Mpx: zoom in or pass a smaller bound")
        clipped = False

        def op() -> Box:
            nonlocal clipped
            box, clipped = self._fill_in(x, y, bound, connectivity)
            return box

        self.last_fill_clipped = False
        box = self._one_step("fill", op)
        self.last_fill_clipped = clipped if box is not None else False
        return box, self.last_fill_clipped

    def _fill_in(self, x: float, y: float, bound: Box, connectivity: int) -> tuple[Box, bool]:
        i, j = math.floor(y), math.floor(x)
        if bound.is_empty or not bound.contains(i, j):
            return EMPTY, False
        h, w = self.shape
        outer = Box(bound.y0 - 1, bound.x0 - 1, bound.y1 + 1, bound.x1 + 1).clip(h, w)
        big = np.array(self._labels[outer.slices])  # a copy: the ring outside the bound stays as is
        iy, ix = bound.y0 - outer.y0, bound.x0 - outer.x0
        inner = big[iy:iy + bound.height, ix:ix + bound.width]
        orig = inner.copy()
        target = int(orig[i - bound.y0, j - bound.x0])

        def before(b: Box) -> None:
            self._record(Box(b.y0 + bound.y0, b.x0 + bound.x0, b.y1 + bound.y0, b.x1 + bound.x0))

        box = editing.flood_fill(inner, j - bound.x0, i - bound.y0, self._active, connectivity,
                                 self.protected, before=before)
        if box.is_empty:
            return EMPTY, False
        changed = Box(box.y0 + bound.y0, box.x0 + bound.x0, box.y1 + bound.y0, box.x1 + bound.x0)
        self._labels[changed.slices] = inner[box.slices]
        # clipped: a filled pixel next (4- or 8-connected) to a target pixel outside the bound
        filled = np.zeros(big.shape, bool)
        filled[iy:iy + bound.height, ix:ix + bound.width] = inner != orig
        grown = filled.copy()
        grown[1:] |= filled[:-1]
        grown[:-1] |= filled[1:]
        if connectivity == 8:
            filled = grown.copy()
        grown[:, 1:] |= filled[:, :-1]
        grown[:, :-1] |= filled[:, 1:]
        ring = np.ones(big.shape, bool)
        ring[iy:iy + bound.height, ix:ix + bound.width] = False
        return changed, bool((grown & ring & (big == target)).any())

    def fill_polygon(self, points: Iterable[tuple[float, float]]) -> Box | None:
        pts = list(points)
        return self._one_step("polygon", lambda: editing.fill_polygon(
            self._labels, pts, self._active, self.protected, before=self._record))

    def pick(self, x: float, y: float) -> int | None:
        """Eyedropper: make the class under (x, y) active (not an undo step: the mask is as is)."""
        value = editing.pick(self._labels, x, y)
        if value is not None:
            self.set_active_class(value)
        return value

    def apply_labels(self, new_labels: np.ndarray, label: str = "segment",
                     objects: np.ndarray | None = None) -> Box | None:
        """Replace the whole mask as one undo step (also ends a preview: undo goes to before it);
        with ``objects``, the object ids too, in the same step.  Without them the object layer
        follows the new classes in that step (core.document.objects, ``background_clears``): an
        object pixel made background is no object's any more, and an object left without pixels
        is gone.

        On a chunked mask the new array is compared and written chunk by chunk (its own size is
        the caller's memory); to keep streamed tiles use paste_region + commit_preview instead.
        """
        new = np.asarray(new_labels)
        if new.shape != self._labels.shape:
            raise ValueError(f"labels shape {new.shape} != document shape {self._labels.shape}")
        new = _as_labels(new)
        self.end_stroke()
        self._preview = False
        if self.is_chunked:
            return self._emit(self._apply_chunked(new, label))
        diff = self._labels != new
        box = editing.mask_box(diff)
        if not box.is_empty:
            self.history.record_before(self._labels, box, diff[box.slices])
            self._labels[box.slices] = new[box.slices]
        del diff
        if objects is None and self._objects is not None and not self._objects.is_empty:
            kept = background_clears(self._objects.labels, self._labels)
            objects = None if kept is self._objects.labels else kept
        if objects is not None and self._objects is not None:
            self.history.begin()
            ids = np.asarray(objects)
            if ids.shape != self.shape:
                raise ValueError(f"objects shape {ids.shape} != document shape {self.shape}")
            diff = self._objects.labels != ids
            changed = editing.mask_box(diff)
            if not changed.is_empty:
                self.history.record_before(self._objects.labels, changed, diff[changed.slices], OBJECTS)
                self._objects.labels[changed.slices] = ids[changed.slices]
                self._objects.changed.emit(changed)
        self._commit(label)
        return self._emit(box)

    def apply_saved_labels(self, new_labels: np.ndarray, label: str = "segment",
                           objects: np.ndarray | None = None) -> Box | None:
        """``apply_labels`` for labels the caller has just written to the mask file (Segment All):
        the document counts as saved, unless the step also cleared objects (``objects`` None) that
        the objects file beside it still holds; then it stays unsaved, so Save writes them."""
        position = self.history.position
        box = self.apply_labels(new_labels, label, objects)
        step = self.history.last_step if self.history.position != position else None
        if objects is not None or step is None or not step.touches(OBJECTS):
            self.mark_saved()
        return box

    def _apply_chunked(self, new: np.ndarray, label: str) -> Box:
        labels, box = self._labels, EMPTY
        cy, cx = labels.chunks
        h, w = labels.shape
        for y0 in range(0, h, cy):
            for x0 in range(0, w, cx):
                region = Box(y0, x0, min(h, y0 + cy), min(w, x0 + cx))
                part = new[region.slices]
                diff = labels[region.slices] != part
                if diff.any():
                    self.history.record_before(labels, region, diff)
                    labels[region.slices] = part
                    box = box.union(editing.mask_box(diff, (y0, x0)))
        self._commit(label)
        return box

    # -- history -----------------------------------------------------------------------------
    def undo(self) -> Box | None:
        """Undo the last step (finishing a stroke in progress first); None if nothing to undo."""
        return self._step(self.history.undo_step)

    def redo(self) -> Box | None:
        return self._step(self.history.redo_step)

    def _step(self, action) -> Box | None:
        if self._preview:
            return None
        self.end_stroke()
        step = action(self._layers())
        if step is None:
            return None
        self.history_changed.emit()
        self._update_dirty()
        if step.touches(OBJECTS) and self._objects is not None:
            self._objects.changed.emit(step.layer_box(OBJECTS))
        self._emit(step.layer_box(LABELS))
        return step.box

    # -- wholesale replacement and previews -----------------------------------------------------
    def set_labels(self, labels: np.ndarray) -> None:
        """A new mask (e.g. new image): history is cleared and the new state counts as saved."""
        self._labels = _as_labels(labels)
        self._stroke, self._last, self._preview = None, None, False
        self.history.clear()
        self._bound_groups()
        if self._objects is not None and self._objects.shape != self.shape:
            self._objects.set_labels(None)
        if self.is_chunked or self._objects is None or self._objects.shape != self.shape:
            self._objects = None if self.is_chunked else self._new_object_layer()
        self._saved = self.history.position
        self.reset.emit()
        self.history_changed.emit()
        self._update_dirty()

    def paste_region(self, y0: int, x0: int, block: np.ndarray) -> Box:
        """Show part of a running segmentation without an undo step (opens the preview)."""
        block = np.asarray(block)
        h, w = block.shape
        box = Box(int(y0), int(x0), int(y0) + h, int(x0) + w).clip(*self._labels.shape)
        if box.is_empty:
            return EMPTY
        if not self._preview:
            self.end_stroke()
            self._preview = True
            self.history.begin()
            self.history_changed.emit()
        self._record(box)
        self._labels[box.slices] = block[box.y0 - int(y0):box.y1 - int(y0),
                                         box.x0 - int(x0):box.x1 - int(x0)]
        self.changed.emit(box)
        return box

    def commit_preview(self, label: str = "segment") -> Box | None:
        """Keep what the pasted regions show as one undo step and close the preview (a cancelled
        segmentation keeps its finished tiles); None when no preview is open."""
        if not self._preview:
            return None
        self._preview = False
        step = self._commit(label)
        return step.box if step is not None else EMPTY

    def cancel_preview(self) -> Box | None:
        """Put back what the pasted regions covered and close the preview.

        A chunked preview larger than the history's bound kept no original content: it is kept
        (as ``commit_preview``, not undoable) and EMPTY is returned."""
        if not self._preview:
            return None
        if self.history.overflowed:
            return self.commit_preview()
        self._preview = False
        box = self.history.rollback(self._layers())
        self.history_changed.emit()
        return self._emit(box)

    def _refuse_whole(self, what: str) -> None:
        if self.is_chunked:
            h, w = self.shape
            raise TypeError(f"{what} would copy the whole {w}x{h} chunked mask; use paste_region with "
                            "commit_preview or cancel_preview instead")

    def snapshot(self) -> np.ndarray:
        self._refuse_whole("snapshot()")
        return self._labels.copy()

    def restore(self, snapshot: np.ndarray) -> None:
        """Copy a ``snapshot()`` back in place, outside history (closes any preview).

        Meant for a snapshot of the current history position (e.g. taken before a preview);
        anything else would leave undo steps describing a different mask.
        """
        self._refuse_whole("restore()")
        if snapshot.shape != self._labels.shape:
            raise ValueError(f"snapshot shape {snapshot.shape} != document shape {self._labels.shape}")
        self.end_stroke()
        if self._preview:
            self._preview = False
            self.history.discard()
            self.history_changed.emit()
        np.copyto(self._labels, snapshot, casting="unsafe")
        self.reset.emit()
