"""The Objects mode's flows: turning it on and off with its tools, keeping the shown image's
measurements current, selecting and centring an object, deleting the selected one, and writing
the table as CSV.

Measuring runs on a worker thread from copies taken on the GUI thread, one run at a time: the
whole table when an image is shown (seconds for 800 objects on 2048 x 2048), then after each
edit only the objects it touched (core.objects.live_table: tens of milliseconds); edits made
meanwhile are gathered into the next run.  The result lands in ``state.objects.table``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget

from core.document.editing import Box
from core.document.mask_document import MaskDocument
from core.io.mask_naming import image_stem, output_path
from core.io.physical import physical_sizes
from core.objects.live_table import empty_table, measure_crop, plan_update, splice
from core.objects.measure import Columns, measure, write_measurements
from gui import dialogs
from gui.canvas.object_tools import deleted_text
from gui.infra.workers import Task, start_task
from gui.state.app_state import AppState, Tool
from gui.state.objects import UNAVAILABLE_ON_SLIDES, ObjectTable

REFRESH_MS = 150  # after the last edit


class ObjectsUi(QObject):
    measured = Signal()  # state.objects.table is current (tests and scripts wait on it)
    exported = Signal(str)  # the CSV written

    def __init__(self, state: AppState, parent: QWidget, center_on: Callable[[float, float], None],
                 mode: QAction, delete_selected: QAction, export: QAction):
        super().__init__(parent)
        self.state, self.parent_widget, self._center_on = state, parent, center_on
        self.objects = objects = state.objects
        self._task: Task | None = None
        self._export_task: Task | None = None
        self._doc: MaskDocument | None = None
        self._dirty = None  # Box of edits not measured yet
        self._full = True  # the next run measures everything
        self._columns = Columns()
        self._closed = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        shown = state.document
        shown.document_changed.connect(self._on_document)
        shown.objects_changed.connect(self._on_edit)
        shown.changed.connect(self._on_class_edit)  # an object's class is the majority under it
        shown.objects_reset.connect(self._remeasure)
        shown.classes_changed.connect(self._remeasure)  # class names are columns
        state.events.tool.connect(self._on_tool)
        objects.events.shown.connect(self._on_shown)
        mode.setChecked(objects.shown)
        mode.toggled.connect(lambda on: setattr(objects, "shown", on))
        objects.events.shown.connect(lambda on: mode.setChecked(on))
        delete_selected.triggered.connect(self.delete_selected)
        export.triggered.connect(lambda: self.export_csv())
        self._on_document(shown.doc)

    # -- the mode and its tools ------------------------------------------------------------------
    def _on_tool(self, tool) -> None:
        if Tool(tool).edits_objects and not self.objects.shown:
            self.objects.shown = True

    def _on_shown(self, on: bool) -> None:
        doc = self.state.document.doc
        if on and doc is not None and doc.objects is None:
            self.state.message.emit(UNAVAILABLE_ON_SLIDES, 10000)
        if on and not Tool(self.state.tool).edits_objects:
            self.state.tool = Tool.OBJECT_SELECT
        elif not on and Tool(self.state.tool).edits_objects:
            self.state.tool = Tool.BRUSH

    # -- selection ---------------------------------------------------------------------------
    def focus(self, object_id: int) -> None:
        """Select an object and centre the view on it (a click on its row)."""
        self.objects.selected = int(object_id)
        table = self.objects.table
        center = table.center_of(int(object_id)) if table is not None else None
        if center is not None:
            self._center_on(*center)

    def delete_selected(self) -> None:
        doc, selected = self.state.document.doc, self.objects.selected
        job = self.state.job
        if doc is None or doc.objects is None or not selected or (job is not None and job.blocks_editing):
            return
        if doc.objects.delete(selected) is not None:
            self.state.message.emit(deleted_text(selected), 4000)
        self.objects.selected = 0

    # -- measuring ---------------------------------------------------------------------------
    def _on_document(self, doc: MaskDocument | None) -> None:
        self._doc = doc
        self.objects.selected = 0
        self.objects.table = None
        self.objects.note = UNAVAILABLE_ON_SLIDES if doc is not None and doc.objects is None else ""
        entry = self.state.current
        image = entry.image if entry is not None else None
        names = list(image.channel_names) if image is not None else []
        sizes = physical_sizes(entry.path) if entry is not None and doc is not None else {}
        self._columns = Columns(channel_names=names, classes=doc.classes if doc is not None else (),
                                pixel_size=sizes or None)
        self._remeasure()

    def _remeasure(self, *_) -> None:
        doc = self._doc
        if doc is not None:
            self._columns = Columns(self._columns.channel_names, doc.classes, self._columns.pixel_size)
        self._full, self._dirty = True, None
        self.refresh()

    def _on_edit(self, box: Box) -> None:
        self._dirty = box if self._dirty is None else self._dirty.union(box)
        self._timer.start()

    def _on_class_edit(self, box: Box) -> None:
        table = self.objects.table
        if table is not None and len(table):
            self._on_edit(box)

    def _pixels(self):
        entry = self.state.current
        image = entry.image if entry is not None else None
        doc = self._doc
        if image is None or doc is None or image.pixels.shape[:2] != doc.shape:
            return None
        return image.pixels

    def refresh(self) -> None:
        """Measure what changed (everything after a new image), now, on a worker thread."""
        self._timer.stop()
        if self._task is not None or self._closed:
            return  # its end starts the next run
        doc = self._doc
        layer = doc.objects if doc is not None else None
        if layer is None or not layer.allocated:
            self.objects.table = ObjectTable(doc, empty_table(self._columns)) if layer is not None else None
            self._full, self._dirty = False, None
            self.measured.emit()
            return
        pixels, columns = self._pixels(), self._columns
        table = self.objects.table
        if self._full or table is None or table.doc is not doc:
            ids, classes = layer.labels.copy(), doc.labels.copy()
            self._full, self._dirty = False, None
            self._start(doc, lambda _r: measure(ids, pixels, classes, columns), None)
            return
        if self._dirty is None:
            return
        box, self._dirty = self._dirty, None
        update = plan_update(table.columns, layer.labels, (box.y0, box.x0, box.y1, box.x1))
        if update.empty:
            return
        y0, x0, y1, x1 = update.region
        ids, classes = layer.labels[y0:y1, x0:x1].copy(), doc.labels[y0:y1, x0:x1].copy()
        crop = None if pixels is None else pixels[y0:y1, x0:x1]
        self._start(doc, lambda _r: measure_crop(update, ids, crop, classes, columns), update)

    def _start(self, doc, fn, update) -> None:
        self.objects.measuring = True
        self._task = task = start_task(fn, "measure objects")
        task.finished.connect(lambda rows: self._done(task, doc, rows, update))
        task.failed.connect(lambda text: self._done(task, doc, None, update, text))

    def _done(self, task: Task, doc, rows, update, error: str | None = None) -> None:
        if task is not self._task:
            return
        self._task = None
        self.objects.measuring = False
        if error:
            self.state.message.emit(f"Could not measure the objects: {error}", 10000)
        elif doc is self._doc:
            table = self.objects.table
            if update is None:
                self.objects.table = ObjectTable(doc, rows)
            elif table is not None and table.doc is doc:
                self.objects.table = ObjectTable(doc, splice(table.columns, update, rows))
        if self._full or self._dirty is not None:
            self.refresh()
        else:
            self.measured.emit()

    @property
    def current(self) -> bool:
        """The table holds every edit: nothing waits to be measured, nothing is being measured."""
        return self._task is None and self._dirty is None and not self._full and not self._timer.isActive()

    def shutdown(self) -> None:
        """The window closes: stop measuring (and wait for a CSV being written)."""
        self._closed = True
        self._timer.stop()
        for task in (self._task, self._export_task):
            if task is not None:
                task.cancel()
                task.wait()

    # -- CSV ---------------------------------------------------------------------------------
    def export_csv(self, path: Path | None = None) -> bool:
        """Objects > Export Object Measurements as CSV: the shown image's objects, one row each,
        written by core.objects.measure (on a worker thread)."""
        doc, entry = self._doc, self.state.current
        if doc is None or doc.objects is None or entry is None:
            return False
        if not doc.objects.allocated or doc.objects.is_empty:
            dialogs.show_info(self.parent_widget, "Export Object Measurements", "This image has no objects yet.")
            return False
        if path is None:
            suggested = output_path(entry.path.parent, image_stem(entry.path), "measurements")
            path = dialogs.ask_csv_path(self.parent_widget, suggested)
            if path is None:
                return False
        ids, classes, pixels, columns = doc.objects.labels.copy(), doc.labels.copy(), self._pixels(), self._columns
        self._export_task = task = start_task(
            lambda _r: write_measurements(path, ids, pixels, classes, columns), "export measurements")
        task.finished.connect(lambda rows: self._exported(task, path, rows))
        task.failed.connect(lambda text: self._exported(task, path, None, text))
        return True

    def _exported(self, task: Task, path: Path, rows, error: str | None = None) -> None:
        if task is self._export_task:
            self._export_task = None
        if error:
            dialogs.show_error(self.parent_widget, "Could Not Export the Measurements", error)
            return
        self.state.message.emit(f"Wrote {rows:,} objects to {path}", 6000)
        self.exported.emit(str(path))
