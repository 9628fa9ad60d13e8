"""Segment Plane and Segment Stack: the app's side of segmenting a stack (gui.jobs.stack_segmentation).

Undo: each plane's result is one undo step of that plane's mask (a step on one plane never
touches another: docs/interfaces.md).  That is also what a user expects after segmenting 40
planes and finding plane 12 wrong: go there, Undo, and only plane 12 goes back, while the other
39 results stay; a single stack-wide step would throw away every plane to fix one.

Segment Plane segments the plane in view (what Segment does on a stack); editing waits for it,
as for a 2-D image.  Segment Stack leaves the window free: browse, paint and undo on any plane
while it runs; each plane's result lands as it is finished (after a stroke in progress on that
plane ends).  Cancel keeps the planes already done.  A plane whose documents are not in memory takes
its result at once (documents made on the worker: gui.jobs.stack_segmentation); one open in the app
(visited) takes it when the run ends, so the brush never waits for a large plane's diff.  Stack Options: Smooth Across Z (class
probabilities averaged over one plane above and below), Link Objects Across Z (3-D objects written
beside the stack when Segment Stack finishes).

Objects: with a model that separates objects (or Link Objects Across Z) each plane's object layer
takes the run's objects in the same undo step as its classes, as Segment does on an image; their
ids start above every id the stack holds when the run starts (StackPlanes.top_object_id), so an
id names one object in the whole stack, and Save writes them beside it (``<stem>_instances.ome.tif``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QWidget

from gui import dialogs
from core.wording import counted
from gui.jobs.model_loader import ModelManager
from gui.jobs.stack_segmentation import SMOOTH_PLANES, StackRun, StackSegmentation
from gui.menus.actions import Actions
from gui.state.app_state import AppState, Job
from gui.state.planes import plane_text

RETRY_MS = 50  # a result waiting for a stroke on its plane to end is tried again this often


class StackSegmentUi(QObject):
    """``options()`` gives (tile size, TTA, edge refinement) as Segment uses them."""

    finished = Signal(int, int)  # planes done, planes asked (also after a cancel)
    failed = Signal(str)

    def __init__(self, state: AppState, parent: QWidget, actions: Actions, models: ModelManager,
                 options: Callable[[], tuple]):
        super().__init__(parent)
        self.state, self.store, self.parent_widget, self.models = state, state.store, parent, models
        self._options = options
        self.a = actions
        self.job = StackSegmentation(self)
        self._entry = None
        self._kind = ""
        self._asked = 0
        self._done = 0
        self._waiting: list[tuple[tuple, object, object]] = []  # (plane, classes, objects) of open planes
        self._retry = QTimer(self)
        self._retry.setSingleShot(True)
        self._retry.timeout.connect(self._apply_waiting)
        actions.segment_stack.triggered.connect(self.segment_stack)
        self.job.plane_done.connect(self._on_plane)
        self.job.progress.connect(self._on_progress)
        self.job.finished.connect(self._on_finished)
        self.job.failed.connect(self._on_failed)
        state.planes.events.axes.connect(self._enable)
        state.events.job.connect(self._enable)
        self._enable()

    def _enable(self, *_) -> None:
        stack = self.state.planes.is_stack
        self.a.segment_stack.setEnabled(stack and not self.state.job_running)
        self.a.smooth_z.setEnabled("Z" in self.state.planes.axes)
        self.a.stitch_z.setEnabled("Z" in self.state.planes.axes)
        self.a.segment.setText("&Segment Plane" if stack else "&Segment")

    # -- starting -------------------------------------------------------------------------------
    def segment_plane(self) -> bool:
        """The plane in view (Segment, on a stack)."""
        entry = self.state.current
        if entry is None or entry.stack is None or self.state.job_running:
            return False
        plane = entry.stack.plane
        what = f"{plane_text(entry.stack.plane_axes, plane, entry.stack.planes)}"
        return self._start(entry, [plane], "segment", what)

    def segment_stack(self) -> bool:
        """Every plane of the shown stack; the window stays free meanwhile."""
        entry = self.state.current
        if entry is None or entry.stack is None or self.state.job_running:
            return False
        return self._start(entry, None, "segment_stack", "the stack")

    def _start(self, entry, planes, kind: str, what: str) -> bool:
        seg = self.models.segmenter
        if seg is None:
            dialogs.show_error(self.parent_widget, "No Model", "No model is loaded. Load a weights file (.safetensors "
                               "or .pt) with Model > Load Weights… (Ctrl+L), then segment.")
            return False
        tile, tta, refine = self._options()
        smooth = SMOOTH_PLANES if self.a.smooth_z.isChecked() and "Z" in entry.stack.plane_axes else 0
        stitch = self.a.stitch_z.isChecked() and "Z" in entry.stack.plane_axes and planes is None
        if seg.classes and list(entry.stack.classes) != list(seg.classes):
            entry.stack.set_classes(list(seg.classes))
        from core.segment.stack import separates

        above = entry.stack.top_object_id() if stitch or separates(seg) else 0  # the run's ids start above
        if not self.job.start(entry.path, planes, seg, tile, tta, refine, smooth, stitch, what,
                              entry.stack.sources(), entry.stack.classes, list(entry.stack.loaded()), above):
            return False
        self._entry, self._kind, self._done = entry, kind, 0
        self._asked = len(planes) if planes is not None else len(entry.stack.all_planes())
        entry.busy = True
        if stitch or separates(seg):  # the run numbers objects above the stack's top: new ones would take its ids
            name = "Segment Plane" if kind == "segment" else "Segment Stack"
            entry.stack.hold_new_objects(f"New objects wait until {name} ends: it is numbering the stack's "
                                         "objects (every other tool works meanwhile).")
        self.state.job = Job(kind, text=f"Segmenting {what}…", cancel=self.job.cancel)
        return True

    # -- results --------------------------------------------------------------------------------
    def _on_plane(self, plane: tuple, labels, ids, docs) -> None:
        entry = self._entry
        if docs is not None and entry is not None and entry.stack is not None and entry.stack.adopt(plane, docs):
            self._done += 1  # the plane was not in memory: its documents came made
            return
        self._waiting.append((plane, labels, ids))  # open in the app: applied when the run ends (Segment Plane: now)
        if not self.job.running or self._kind == "segment":
            self._apply_waiting()

    def _apply_waiting(self) -> None:
        """One waiting result per turn of the event loop becomes one undo step of its plane, once no
        stroke is open there; the job ends when none is left and the worker is done."""
        entry = self._entry
        if entry is None or entry.stack is None:
            self._waiting = []
        elif self._waiting:
            plane, labels, ids = self._waiting[0]
            doc = entry.stack.documents(plane).mask
            if not (doc.stroke_active or doc.preview_active):
                self._waiting.pop(0)
                doc.apply_labels(labels, "segment plane" if self._kind == "segment" else "segment stack",
                                 objects=ids if doc.objects is not None else None)
                self._done += 1
        if self._waiting:
            self._retry.start(RETRY_MS if self.job.running else 0)
        elif not self.job.running and self.state.job is not None and self.state.job.kind == self._kind:
            self._release()

    def _on_progress(self, done: int, total: int, text: str) -> None:
        if self.state.job is not None and self.state.job.kind == self._kind:
            self.state.job = replace(self.state.job, done=done, total=total, text=text)

    def _on_finished(self, run: StackRun | None) -> None:
        done = self._done + len(self._waiting)
        if run is None:
            self.state.message.emit(f"Segmentation stopped; the {counted(done, 'plane')} already done keep their masks "
                                    "(each one undo step on its plane).", 10000)
        else:
            where = f"; 3-D objects saved to {run.instances.name}" if run.instances is not None else ""
            entry = self._entry
            if run.instances is not None and entry is not None and entry.stack is not None:
                try:  # the file the planes' objects are saved in now (their layers hold them already)
                    entry.stack.reload_objects(run.instances)
                except (ValueError, OSError) as exc:
                    where += f" (not shown on the planes: {exc})"
            found = f"; {counted(run.objects, 'object')}" if run.objects is not None else ""
            self.state.message.emit(f"Segmented {counted(done, 'plane')} in {run.seconds:.1f} s on {run.device}"
                                    f"{found}{where}.", 0)
        if self._waiting and self.state.job is not None:
            self.state.job = replace(self.state.job, text="Taking the results of the open planes…")
        self._apply_waiting()

    def _on_failed(self, message: str) -> None:
        self.state.message.emit(f"Segmentation failed: {message}", 10000)
        self._apply_waiting()  # the planes finished before the failure keep their results
        dialogs.show_error(self.parent_widget, "Segmentation Failed", message)
        self.failed.emit(message)

    def _release(self) -> None:
        """The job is over: every result is in its plane."""
        entry, self._entry = self._entry, None
        if entry is not None:
            entry.busy = False
            if entry.stack is not None:
                entry.stack.hold_new_objects(None)
        self.state.job = None  # autosave copies the planes now (gui.controllers.autosave)
        self.store.trim()
        self.finished.emit(self._done, self._asked)

    def shutdown(self) -> None:
        self.job.shutdown()
        self._retry.stop()
