"""The mask being edited: one label buffer, its classes, the edit tools and undo history.

Qt-free so every behaviour is testable headless; the GUI wraps ``labels`` (the same buffer for
the document's lifetime, mutated in place) in a colour-table image and repaints the boxes that
``changed`` reports.  Only ``set_labels`` / ``restore`` replace content wholesale (``reset``).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
from psygnal import Signal

from core import editing
from core.classes import ClassInfo, complete_classes
from core.editing import EMPTY, Box
from core.history import History, Step

TOOLS = ("brush", "eraser")
MIN_BRUSH, MAX_BRUSH = 1, 500


def _as_labels(labels: np.ndarray) -> np.ndarray:
    """A C-contiguous, writeable uint8 buffer the document may edit in place (decoded PNGs are
    read-only arrays; those are copied)."""
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

    def __init__(self, labels: np.ndarray, classes: Sequence[ClassInfo] | None = None, *,
                 history: History | None = None):
        self._labels = _as_labels(labels)
        if classes is None:
            top = int(self._labels.max()) if self._labels.size else 0
            classes = complete_classes(top=max(1, top))
        self._classes = list(classes)
        self._active = 1 if len(self._classes) > 1 else 0
        self.history = history if history is not None else History()
        self.protected: frozenset[int] = frozenset()  # class ids no tool may overwrite
        self._radius = 5.0
        self._stroke: tuple[str, int] | None = None
        self._last: tuple[float, float] | None = None
        self._preview = False
        self._saved = self.history.position
        self._dirty = False

    # -- plain state -------------------------------------------------------------------------
    @property
    def labels(self) -> np.ndarray:
        return self._labels

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
        return self._stroke is not None

    def mark_saved(self) -> None:
        self._saved = self.history.position
        self._update_dirty()

    def present_classes(self) -> list[int]:
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
        step = self.history.commit(self._labels, label)
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
        """Start one undo step; the eraser paints 0, the brush ``value`` or the active class."""
        if tool not in TOOLS:
            raise ValueError(f"tool must be one of {TOOLS}, not {tool!r}")
        if self._preview:
            return
        self.end_stroke()
        paint = 0 if tool == "eraser" else int(self._active if value is None else value)
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
        if self._stroke is None:
            return None
        tool, self._stroke, self._last = self._stroke[0], None, None
        return self._commit(tool)

    # -- one-shot edits ----------------------------------------------------------------------
    def fill(self, x: float, y: float, connectivity: int = 4) -> Box | None:
        return self._one_step("fill", lambda: editing.flood_fill(
            self._labels, x, y, self._active, connectivity, self.protected, before=self._record))

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

    def apply_labels(self, new_labels: np.ndarray, label: str = "segment") -> Box | None:
        """Replace the whole mask as one undo step (also ends a preview: undo goes to before it)."""
        new = np.asarray(new_labels)
        if new.shape != self._labels.shape:
            raise ValueError(f"labels shape {new.shape} != document shape {self._labels.shape}")
        new = _as_labels(new)
        self.end_stroke()
        self._preview = False
        diff = self._labels != new
        box = editing.mask_box(diff)
        if not box.is_empty:
            self.history.record_before(self._labels, box, diff[box.slices])
            self._labels[box.slices] = new[box.slices]
        del diff
        self._commit(label)
        return self._emit(box)

    # -- history -----------------------------------------------------------------------------
    def undo(self) -> Box | None:
        """Undo the last step (finishing a stroke in progress first); None if nothing to undo."""
        return self._step(self.history.undo)

    def redo(self) -> Box | None:
        return self._step(self.history.redo)

    def _step(self, action) -> Box | None:
        if self._preview:
            return None
        self.end_stroke()
        box = action(self._labels)
        if box is None:
            return None
        self.history_changed.emit()
        self._update_dirty()
        return self._emit(box)

    # -- wholesale replacement and previews -----------------------------------------------------
    def set_labels(self, labels: np.ndarray) -> None:
        """A new mask (e.g. new image): history is cleared and the new state counts as saved."""
        self._labels = _as_labels(labels)
        self._stroke, self._last, self._preview = None, None, False
        self.history.clear()
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

    def cancel_preview(self) -> Box | None:
        """Put back what the pasted regions covered and close the preview."""
        if not self._preview:
            return None
        self._preview = False
        box = self.history.rollback(self._labels)
        self.history_changed.emit()
        return self._emit(box)

    def snapshot(self) -> np.ndarray:
        return self._labels.copy()

    def restore(self, snapshot: np.ndarray) -> None:
        """Copy a ``snapshot()`` back in place, outside history (closes any preview).

        Meant for a snapshot of the current history position (e.g. taken before a preview);
        anything else would leave undo steps describing a different mask.
        """
        if snapshot.shape != self._labels.shape:
            raise ValueError(f"snapshot shape {snapshot.shape} != document shape {self._labels.shape}")
        self.end_stroke()
        if self._preview:
            self._preview = False
            self.history.discard()
            self.history_changed.emit()
        np.copyto(self._labels, snapshot, casting="unsafe")
        self.reset.emit()
