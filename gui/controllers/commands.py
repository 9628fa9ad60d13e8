"""Actions that only change state, and every action's enabled state and text kept in step with
the state, the store and the shown document (no one pushes these updates by hand)."""

from __future__ import annotations

from PySide6.QtCore import QObject

from gui.infra.icons import icon
from gui.menus.actions import Actions
from gui.state.app_state import AppState, Tool

OPACITY_STEP = 10


def bind_state_actions(a: Actions, state: AppState) -> None:
    """Tools, mask visibility, outlines, opacity and brush-size keys <-> the app state."""
    a.tool_actions[Tool(state.tool)].setChecked(True)
    a.toggle_mask.setChecked(state.mask_visible)
    a.outline.setChecked(state.outline)
    for tool, action in a.tool_actions.items():
        action.triggered.connect(lambda _=False, t=tool: setattr(state, "tool", t))
    state.events.tool.connect(lambda tool: a.tool_actions[Tool(tool)].setChecked(True))
    a.toggle_mask.toggled.connect(lambda on: setattr(state, "mask_visible", on))
    a.outline.toggled.connect(lambda on: setattr(state, "outline", on))
    state.events.mask_visible.connect(lambda on: a.toggle_mask.setChecked(on))
    state.events.mask_visible.connect(lambda on: a.toggle_mask.setIcon(icon("eye" if on else "eye-off")))
    state.events.outline.connect(lambda on: a.outline.setChecked(on))
    a.opacity_down.triggered.connect(lambda: state.set_opacity(state.opacity - OPACITY_STEP))
    a.opacity_up.triggered.connect(lambda: state.set_opacity(state.opacity + OPACITY_STEP))
    a.brush_smaller.triggered.connect(lambda: state.step_brush(-1))
    a.brush_larger.triggered.connect(lambda: state.step_brush(1))
    a.cancel.triggered.connect(state.cancel_job)


class CommandStates(QObject):
    """Enables what the moment allows: a running job forbids saving and segmenting, a
    segmentation forbids the tools; undo/redo name the step they would take."""

    def __init__(self, actions: Actions, state: AppState, parent: QObject | None = None):
        super().__init__(parent)
        self.a, self.state = actions, state
        store, doc = state.store, state.document
        for signal in (store.added, store.removed, store.reordered, store.current_changed,
                       doc.history_changed, doc.document_changed, state.events.job,
                       state.strokes.history_changed, state.strokes.document_changed, state.events.tool,
                       state.objects.events.table, state.objects.events.selected):
            signal.connect(self.update)
        self.update()

    def update(self, *_) -> None:
        a, state = self.a, self.state
        doc, job = state.document.doc, state.job
        running = job is not None
        segmenting = running and job.blocks_editing
        target = state.edit_target  # the strokes while a stroke tool is chosen
        editable = target is not None and not segmenting
        a.undo.setEnabled(editable and target.can_undo)
        a.redo.setEnabled(editable and target.can_redo)
        undo_label = target.history.undo_label if target is not None else None
        redo_label = target.history.redo_label if target is not None else None
        if target is not None and target is not doc:
            undo_label, redo_label = (f"{x} strokes" if x else x for x in (undo_label, redo_label))
        a.undo.setText(f"&Undo {undo_label}" if undo_label else "&Undo")
        a.redo.setText(f"&Redo {redo_label}" if redo_label else "&Redo")
        has = doc is not None
        for action in (a.save, a.save_as, a.export, a.import_mask):
            action.setEnabled(has and not running)
        a.close_image.setEnabled(has)
        listed = len(state.store) > 0
        a.segment.setEnabled(has and not running)
        a.segment_view.setEnabled(has and not running)
        for action in (a.segment_all, a.export_all, a.train):
            action.setEnabled(listed and not running)
        a.cancel.setEnabled(running)
        for action in list(a.tool_actions.values()) + [a.load_weights]:
            action.setEnabled(not segmenting)
        objects = doc is not None and doc.objects is not None  # none on a whole slide yet
        for action in a.object_tool_actions.values():
            action.setEnabled(objects and not segmenting)
        a.delete_selected_object.setEnabled(objects and not segmenting and state.objects.selected > 0)
        table = state.objects.table
        a.export_objects.setEnabled(objects and not running and table is not None and len(table) > 0)
