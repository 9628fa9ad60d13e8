"""Edit commands that are not a pointer gesture: undo/redo, choosing, adding and editing classes."""

from __future__ import annotations

from typing import Callable

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
