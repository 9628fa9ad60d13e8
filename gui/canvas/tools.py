"""What each edit tool does with pointer events, in image coordinates.

The canvas translates Qt events to ``(x, y)`` image coordinates (pixel (i, j) has its centre
at (j + 0.5, i + 0.5), as core.document.editing expects) and forwards them here; the tools only call
MaskDocument operations, which own the pixels and the undo history.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import Qt

from gui.canvas.cursor_items import PolygonPreview

if TYPE_CHECKING:
    from core.document.mask_document import MaskDocument
    from core.document.editing import Box

LASSO_START_PX = 5.0  # a drag longer than this (screen pixels) from the first click is a lasso
LASSO_STEP_PX = 2.0  # lasso vertices are at least this far apart on screen


class Tool:
    name = ""
    shows_brush = False

    def __init__(self, document: Callable[[], "MaskDocument | None"], scale: Callable[[], float]):
        self._document = document
        self._scale = scale

    @property
    def doc(self) -> "MaskDocument | None":
        return self._document()

    @property
    def busy(self) -> bool:
        """True while the tool holds unfinished input (a stroke, an open polygon)."""
        return False

    def press(self, x: float, y: float) -> None:
        pass

    def move(self, x: float, y: float, left_down: bool) -> None:
        pass

    def release(self, x: float, y: float) -> None:
        pass

    def double_click(self, x: float, y: float) -> None:
        self.press(x, y)

    def key(self, key: int) -> bool:
        return False

    def cancel(self) -> None:
        pass


class StrokeTool(Tool):
    """Brush or eraser: press..release is one stroke, one undo step."""

    shows_brush = True

    def __init__(self, name: str, document, scale):
        super().__init__(document, scale)
        self.name = name
        self._active = False

    @property
    def busy(self) -> bool:
        return self._active

    def press(self, x: float, y: float) -> None:
        doc = self.doc
        if doc is None or doc.preview_active:
            return
        doc.begin_stroke(self.name)
        self._active = doc.stroke_active
        if self._active:
            doc.stroke_to(x, y)

    def move(self, x: float, y: float, left_down: bool) -> None:
        if self._active and left_down and self.doc is not None:
            self.doc.stroke_to(x, y)

    def release(self, x: float, y: float) -> None:
        self.cancel()

    def double_click(self, x: float, y: float) -> None:
        self.press(x, y)

    def cancel(self) -> None:
        if self._active:
            self._active = False
            if self.doc is not None:
                self.doc.end_stroke()


class FillTool(Tool):
    """Flood fill; on a chunked (whole-slide) mask the fill stays within ``bound()`` (the region
    in view) and ``on_clipped`` is told when the region went on beyond it."""

    name = "fill"

    def __init__(self, document, scale, bound: Callable[[], "Box"], on_clipped: Callable[..., None]):
        super().__init__(document, scale)
        self._bound, self._on_clipped = bound, on_clipped

    def press(self, x: float, y: float) -> None:
        doc = self.doc
        h, w = doc.shape if doc is not None else (0, 0)
        if doc is None or not (0 <= x < w and 0 <= y < h):
            return
        if not doc.is_chunked:
            doc.fill(x, y)
            return
        try:
            doc.fill(x, y, bound=self._bound())
        except ValueError:  # the view is too large a region to fill in memory: zoom in
            self._on_clipped(refused=True)
            return
        if doc.last_fill_clipped:
            self._on_clipped(refused=False)


class PickerTool(Tool):
    name = "picker"

    def __init__(self, document, scale, on_pick: Callable[[int], None]):
        super().__init__(document, scale)
        self._on_pick = on_pick

    def press(self, x: float, y: float) -> None:
        if self.doc is not None:
            value = self.doc.pick(x, y)
            if value is not None:
                self._on_pick(value)


class PolygonTool(Tool):
    """Click vertices (Enter / double-click fills), or drag a lasso (release fills); Esc cancels."""

    name = "polygon"

    def __init__(self, document, scale, preview: PolygonPreview):
        super().__init__(document, scale)
        self.preview = preview
        self.points: list[tuple[float, float]] = []
        self._press: tuple[float, float] | None = None
        self._lasso = False

    @property
    def busy(self) -> bool:
        return bool(self.points)

    def _screen_distance(self, a: tuple[float, float], b: tuple[float, float]) -> float:
        return math.hypot(a[0] - b[0], a[1] - b[1]) * self._scale()

    def _show(self, hover: tuple[float, float] | None = None) -> None:
        self.preview.set_points(self.points, hover)

    def press(self, x: float, y: float) -> None:
        if self.doc is None or self.doc.preview_active:
            return
        p = (x, y)
        if not self.points:
            self.points = [p]
            self._press = p
            self._lasso = False
        elif self._screen_distance(self.points[-1], p) > 0.5:
            self.points.append(p)
        self._show(p)

    def move(self, x: float, y: float, left_down: bool) -> None:
        if not self.points:
            return
        p = (x, y)
        if left_down and self._press is not None:
            if not self._lasso and len(self.points) == 1 \
                    and self._screen_distance(self._press, p) > LASSO_START_PX:
                self._lasso = True
            if self._lasso and self._screen_distance(self.points[-1], p) >= LASSO_STEP_PX:
                self.points.append(p)
        self._show(p)

    def release(self, x: float, y: float) -> None:
        self._press = None
        if self._lasso:
            self.points.append((x, y))
            self.finish()

    def double_click(self, x: float, y: float) -> None:
        if self.points and self._screen_distance(self.points[-1], (x, y)) > 0.5:
            self.points.append((x, y))
        self.finish()

    def key(self, key: int) -> bool:
        if not self.points:
            return False
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.finish()
        elif key == Qt.Key.Key_Escape:
            self.cancel()
        elif key == Qt.Key.Key_Backspace:
            self.points.pop()
            self._show(None)
        else:
            return False
        return True

    def finish(self) -> None:
        points, doc = self.points, self.doc
        self.cancel()
        if doc is not None and len(points) >= 3:
            doc.fill_polygon(points)

    def cancel(self) -> None:
        self.points, self._press, self._lasso = [], None, False
        self._show(None)
