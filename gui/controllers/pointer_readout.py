"""The status bar's pointer readout, kept true for the pixel under the pointer.

The canvas says where the pointer is only when the mouse moves; what lies under it also changes
when another plane is drawn (Page Down), the mask or the objects change (an undo, a merge, a
delete) or the channels are drawn otherwise.  Then the readout is written again for the same pixel.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from PySide6.QtCore import QObject

from gui.canvas.view import Canvas
from gui.state.app_state import AppState


class PointerReadout(QObject):
    """Writes ``pointer_text`` for the last pointer position through ``show`` (the status bar's)."""

    def __init__(self, state: AppState, canvas: Canvas, show: Callable[[str], None], parent: QObject | None = None):
        super().__init__(parent)
        self.state, self.canvas, self._show = state, canvas, show
        self.pos: tuple[float, float] | None = None
        canvas.pointer_moved.connect(self.moved)
        canvas.content_shown.connect(self.refresh)
        doc = state.document
        for signal in (doc.changed, doc.reset, doc.classes_changed, doc.objects_changed, doc.objects_reset,
                       doc.document_changed):
            signal.connect(self.refresh)
        state.planes.events.plane.connect(self.refresh)
        state.display.events.view.connect(self.refresh)

    def moved(self, pos: tuple[float, float] | None) -> None:
        self.pos = pos
        self.refresh()

    def refresh(self, *_) -> None:
        c = self.canvas
        self._show(pointer_text(self.state, self.pos, c.rgb_at, c.level_in_use, c.values_at))


def pointer_text(state: AppState, pos: tuple[float, float] | None,
                 rgb_at: Callable[[int, int], tuple[int, int, int] | None], level: int = 0,
                 values_at: Callable[[int, int], tuple | None] | None = None) -> str:
    """"x, y (full resolution), class (and object) and colour under the pointer", or "" off the image; an
    image with channels shows each channel's raw value instead of the colour; the pyramid level
    in use for a tiled image."""
    doc = state.document.doc
    if pos is None or doc is None:
        return ""
    x, y = int(pos[0]), int(pos[1])
    if not (0 <= y < doc.shape[0] and 0 <= x < doc.shape[1]):  # the last position, on a smaller image
        return ""
    cid = int(np.asarray(doc.labels[y, x]))
    text = f"x {x}, y {y}   {state.class_name(cid)}"
    objects = doc.objects
    if objects is not None and objects.allocated and objects.labels[y, x]:
        text += f"   object {int(objects.labels[y, x])}"
    view = state.display.view
    values = values_at(x, y) if values_at is not None and not view.photo else None
    if values is not None and len(values) == len(view.channels):
        text += "   " + ", ".join(f"{c.name} {_number(v)}" for c, v in zip(view.channels, values))
    else:
        rgb = rgb_at(x, y)
        if rgb is not None:
            text += "   RGB {}, {}, {}".format(*rgb)
    if state.planes.is_stack:
        text += f"   {state.planes.text()}"
    elif state.current is not None and state.current.source is not None:
        text += f"   level {level}"
    return text


def _number(value) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:.4g}"
