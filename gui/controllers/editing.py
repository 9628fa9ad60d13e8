"""Edit commands that are not a pointer gesture: undo/redo, choosing, adding and editing classes,
and the pointer readout in the status bar."""

from __future__ import annotations

from typing import Callable

import numpy as np
from PySide6.QtWidgets import QWidget

from core.classes import ClassInfo, default_color
from gui import dialogs
from gui.state.app_state import AppState


class EditCommands:
    """``cancel_tools`` drops the canvas's unfinished input (an open polygon) before undo/redo."""

    def __init__(self, state: AppState, parent: QWidget, cancel_tools: Callable[[], None]):
        self.state, self.parent = state, parent
        self._cancel_tools = cancel_tools

    def _editable(self):
        """What undo/redo act on: the strokes while a stroke tool is chosen, else the mask."""
        job = self.state.job
        doc = self.state.edit_target
        return doc if doc is not None and (job is None or not job.blocks_editing) else None

    def undo(self) -> None:
        doc = self._editable()
        if doc is not None:
            self._cancel_tools()
            doc.undo()

    def redo(self) -> None:
        doc = self._editable()
        if doc is not None:
            self._cancel_tools()
            doc.redo()

    def select_class(self, class_id: int) -> None:
        doc = self.state.document.doc
        if doc is None:
            return
        if any(c.id == class_id for c in doc.classes):
            self.state.active_class = class_id
            self.state.message.emit(f"Painting with {self.state.class_name(class_id)}", 3000)
        else:
            self.state.message.emit(f"There is no class {class_id}; add classes in the Classes panel.", 5000)

    def add_class(self) -> None:
        doc = self.state.document.doc
        if doc is None:
            return
        classes = doc.classes
        new_id = max(c.id for c in classes) + 1
        if new_id > 255:
            dialogs.show_error(self.parent, "Add Class", "A mask holds at most 256 classes (ids 0-255).")
            return
        doc.set_classes(classes + [ClassInfo(new_id, f"class {new_id}", default_color(new_id))])
        self.state.active_class = new_id

    def edit_class(self, class_id: int) -> None:
        doc = self.state.document.doc
        info = next((c for c in doc.classes if c.id == class_id), None) if doc is not None else None
        if info is None:
            return
        new = dialogs.ask_class_edit(self.parent, info)
        if new is not None and new != info:
            doc.set_classes([new if c.id == class_id else c for c in doc.classes])

    def ask_channel_color(self, index: int) -> None:
        """Channels dock > colour > Other Colour…: any colour for channel ``index``."""
        display = self.state.display
        channels = display.view.channels
        if not 0 <= index < len(channels):
            return
        color = dialogs.ask_color(self.parent, channels[index].color, f"Colour of {channels[index].name}")
        if color is not None:
            display.set_color(index, (color.red(), color.green(), color.blue()))

    def picked(self, class_id: int) -> None:
        self.state.message.emit(f"Picked {self.state.class_name(class_id)}", 3000)


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
