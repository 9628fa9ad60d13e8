"""The Objects mode's tools: what each does with pointer events, in image coordinates.

They call the document's object layer (core.document.objects), which owns the ids, the class
pixels it paints and the undo steps; the selection is the app state's (``select``), and what a
click could not do is said through ``report``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import Qt

from gui.canvas.cursor_items import PolygonPreview
from gui.canvas.tools import Tool

if TYPE_CHECKING:
    from core.document.objects import ObjectLayer

SPLIT_STEP_PX = 3.0  # split-line vertices are at least this far apart on screen


def deleted_text(object_id: int) -> str:
    """What the status bar says after a delete (the Delete tool's click or the Del key)."""
    return f"Deleted object {object_id} (Ctrl+Z brings it back)."


class ObjectTool(Tool):
    """Base: ``select(id)`` sets the selected object, ``selected()`` reads it, ``report(text)``
    says why a click did nothing, ``class_id()`` is the class a new object gets."""

    def __init__(self, document, scale, select: Callable[[int], None], selected: Callable[[], int],
                 report: Callable[[str], None], class_id: Callable[[], int] = lambda: 1):
        super().__init__(document, scale)
        self._select, self._selected, self._report, self._class_id = select, selected, report, class_id

    @property
    def layer(self) -> "ObjectLayer | None":
        doc = self.doc
        if doc is None:
            return None
        if doc.objects is None:
            self._report("Objects are not available on whole-slide images yet.")
        return doc.objects

    def _at(self, x: float, y: float) -> int:
        layer = self.layer
        return layer.object_at(x, y) if layer is not None else 0


class SelectTool(ObjectTool):
    name = "object_select"

    def press(self, x: float, y: float) -> None:
        if self.layer is not None:
            self._select(self._at(x, y))


class ObjectBrushTool(ObjectTool):
    """Paint a new object (the next free id); a stroke that starts inside the selected object
    grows it instead.  Either way the brush never takes pixels of another object."""

    name = "object_brush"
    shows_brush = True

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self._active = False

    @property
    def busy(self) -> bool:
        return self._active

    def press(self, x: float, y: float) -> None:
        layer = self.layer
        if layer is None or self.doc.preview_active:
            return
        selected = self._selected()
        grow = selected if selected and layer.object_at(x, y) == selected else 0
        try:
            object_id = layer.begin_paint(max(1, self._class_id()), grow)
        except ValueError as exc:
            self._report(str(exc))
            return
        self._active = object_id > 0
        if self._active:
            layer.stroke_to(x, y)
            self._select(object_id)

    def move(self, x: float, y: float, left_down: bool) -> None:
        if self._active and left_down and self.layer is not None:
            self.layer.stroke_to(x, y)

    def release(self, x: float, y: float) -> None:
        self.cancel()

    def cancel(self) -> None:
        if self._active:
            self._active = False
            doc = self.doc
            if doc is not None and doc.objects is not None:
                doc.objects.end_stroke()
                if doc.objects.box_of(self._selected()).is_empty:
                    self._select(0)  # the stroke painted nothing (all of it on other objects)


class ObjectEraserTool(ObjectBrushTool):
    """Erase pixels of the object the stroke starts in (on background: of every object)."""

    name = "object_eraser"

    def press(self, x: float, y: float) -> None:
        layer = self.layer
        if layer is None or self.doc.preview_active:
            return
        self._active = layer.begin_erase(layer.object_at(x, y))
        if self._active:
            layer.stroke_to(x, y)

    def cancel(self) -> None:
        if self._active:
            self._active = False
            doc = self.doc
            if doc is not None and doc.objects is not None:
                doc.objects.end_stroke()


class DeleteTool(ObjectTool):
    name = "object_delete"

    def press(self, x: float, y: float) -> None:
        layer = self.layer
        if layer is None:
            return
        object_id = layer.object_at(x, y)
        if not object_id:
            self._report("Click inside an object to delete it.")
            return
        if layer.delete(object_id) is None:
            return
        self._report(deleted_text(object_id))
        if self._selected() == object_id:
            self._select(0)


class MergeTool(ObjectTool):
    """Click one object, then another: the second becomes part of the first."""

    name = "object_merge"

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.first = 0

    @property
    def busy(self) -> bool:
        return bool(self.first)

    def press(self, x: float, y: float) -> None:
        layer = self.layer
        if layer is None:
            return
        object_id = layer.object_at(x, y)
        if not object_id:
            self._report("Click inside an object: the first one clicked keeps its id, the second joins it.")
            return
        if not self.first or layer.box_of(self.first).is_empty:
            self.first = object_id
            self._select(object_id)
            self._report(f"Object {object_id} chosen: click the object to merge into it (Esc: another).")
            return
        if object_id == self.first:
            return
        first, self.first = self.first, 0
        if layer.merge(first, object_id) is not None:
            self._select(first)
            self._report(f"Merged object {object_id} into {first}.")

    def key(self, key: int) -> bool:
        if self.first and key == Qt.Key.Key_Escape:
            self.cancel()
            return True
        return False

    def cancel(self) -> None:
        self.first = 0


class SplitTool(ObjectTool):
    """Drag a line across an object (from outside it to outside it): its sides become objects."""

    name = "object_split"

    def __init__(self, document, scale, select, selected, report, preview: PolygonPreview, **kw):
        super().__init__(document, scale, select, selected, report, **kw)
        self.preview = preview
        self.points: list[tuple[float, float]] = []

    @property
    def busy(self) -> bool:
        return bool(self.points)

    def press(self, x: float, y: float) -> None:
        if self.layer is None or self.doc.preview_active:
            return
        self.points = [(x, y)]
        self.preview.set_points(self.points, None)

    def move(self, x: float, y: float, left_down: bool) -> None:
        if not self.points or not left_down:
            return
        last = self.points[-1]
        if math.hypot(x - last[0], y - last[1]) * self._scale() >= SPLIT_STEP_PX:
            self.points.append((x, y))
        self.preview.set_points(self.points, (x, y))

    def release(self, x: float, y: float) -> None:
        points = self.points + [(x, y)]
        self.cancel()
        layer = self.layer
        if layer is None or len(points) < 2:
            return
        try:
            new = layer.split(points)
        except ValueError as exc:  # no id free for the new pieces now (a full mask, a run numbering objects)
            self._report(str(exc))
            return
        if new:
            self._report(f"Split: {len(new)} new object{'s' if len(new) > 1 else ''} (Ctrl+Z undoes it).")
            self._select(new[0])
        else:
            self._report("Nothing split: draw the line across an object, from outside it to outside it.")

    def key(self, key: int) -> bool:
        if self.points and key == Qt.Key.Key_Escape:
            self.cancel()
            return True
        return False

    def cancel(self) -> None:
        self.points = []
        self.preview.set_points([], None)
