"""Segmenting planes of a stack on a worker thread: "Segment Plane" and "Segment Stack".

The worker opens the stack again (its own file handle: the view keeps reading the window's) and
runs core.segment.stack.segment_stack, so every plane is scaled by the statistics of the whole
stack and "Segment Plane" gives the plane "Segment Stack" gives.  Each finished plane is sent to
the GUI thread as it is done (``plane_done``) with its documents already made here: the plane as
saved with the result as one undo step (core.document.stack_planes.segmented_documents), since
diffing a 4096 x 4096 plane into an undo step takes about a second that the window would
otherwise freeze for.  A cancel stops within a tile and keeps the planes already sent.

Objects: a plane's result carries its object ids when the model separates objects or objects are
linked across Z (core.segment.stack), numbered above ``above`` (the largest id the stack holds
when the run starts: StackPlanes.top_object_id), so no id of the run names an object another
plane keeps, even when the run is cancelled halfway.  They go into the plane's object layer in
the same undo step as its classes.  With objects linked across Z (``stitch``), the 3-D objects of
a run that finished are also written beside the stack as ``<stem>_instances.ome.tif`` (a
cancelled run writes none: its objects would be cut at the plane it stopped on).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PySide6.QtCore import QObject, Signal

from gui.infra.workers import SEGMENTING_NICE, Reporter, Task, start_task

STITCH_IOU = 0.25  # Cellpose's documented example stitch_threshold (core.objects.stitch)
SMOOTH_PLANES = 1  # Smooth Across Z: the planes on each side whose probabilities are averaged


class StackSegmentation(QObject):
    plane_done = Signal(tuple, object, object, object)  # plane, class ids (H x W uint8), object ids or None, PlaneDocuments
    progress = Signal(int, int, str)  # done, total, text for the progress bar
    finished = Signal(object)  # StackRun
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._task: Task | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self, path: Path, planes: Sequence[tuple] | None, segmenter: Any, tile_size=None, tta=None,
              refine=None, smooth_z: int = 0, stitch: bool = False, what: str = "the stack",
              saved: tuple = (None, None, None), classes: Sequence = (), in_memory: Sequence[tuple] = (),
              above: int = 0) -> bool:
        """Segment ``planes`` of the stack at ``path`` (None: every plane) on a worker; ``saved``: the
        mask, strokes and objects stacks its planes' documents start from (StackPlanes.sources),
        ``classes`` theirs; no documents are made for the planes ``in_memory`` (the app has theirs);
        object ids start above ``above``."""
        in_memory = {tuple(p) for p in in_memory} | ({tuple(p) for p in planes} if planes is not None else set())
        if self._task is not None:
            return False
        stitch = bool(stitch) and planes is None  # 3-D objects need every plane

        def run(rep: Reporter):
            from contextlib import ExitStack

            from core.document.stack_planes import segmented_documents
            from core.io.mask_naming import stack_instances_path
            from core.io.label_stacks import StackReader, StackStore
            from core.io.sources import open_source
            from core.segment.stack import StackOptions, segment_stack
            t0 = time.perf_counter()
            options = StackOptions(tile_size=tile_size, tta=tta, refine=refine, smooth_z=smooth_z,
                                   stitch_threshold=STITCH_IOU if stitch else None)
            with open_source(path) as source, ExitStack() as files:
                readers = [files.enter_context(StackReader(p, source.plane_axes, objects=i == 2))
                           if p is not None else None for i, p in enumerate(saved)]  # this thread's own file handles
                wanted = list(planes) if planes is not None else None
                total = len(wanted) if wanted is not None else int(np.prod(source.planes))
                done = [0]
                store, top = None, 0
                if stitch:
                    store = StackStore.create(path.with_name(f".{path.name}.instances-work.zarr"), source.plane_axes,
                                              source.planes, source.height, source.width, dtype="uint32")

                def tiles(d: int, t: int) -> None:
                    rep.progress(done[0] * 1000 + (1000 * d) // max(1, t), total * 1000)

                def plane_finished(plane, labels, instances) -> None:
                    nonlocal top
                    done[0] += 1
                    plane = tuple(int(p) for p in plane)
                    docs = None if plane in in_memory else \
                        segmented_documents(plane, labels, classes, *readers, label="segment stack", ids=instances)
                    rep.item((plane, labels, instances, docs))
                    if store is not None and instances is not None:
                        store.write_plane(plane, instances)
                        top = max(top, int(instances.max()) if instances.size else 0)

                try:
                    result = segment_stack(segmenter, source, wanted, options, should_cancel=rep.cancelled,
                                           on_plane=plane_finished, keep=False, tile_progress=tiles, above=above)
                    written = None
                    if store is not None and not result.cancelled:
                        files.close()  # the saved objects stack is replaced next (Windows: not while open)
                        store.finish((), name=path.name, physical=source.physical_sizes)
                        written = store.export_tiff(stack_instances_path(path), ome=True, physical=source.physical_sizes,
                                                    dtype=np.uint16 if top < 65535 else np.uint32)
                finally:
                    if store is not None:
                        store.remove()
            return StackRun(len(result.done), total, result.cancelled, time.perf_counter() - t0,
                            str(segmenter.device), written, list(segmenter.classes), result.objects)

        task = self._task = start_task(run, "segment-stack", nice=SEGMENTING_NICE)
        task.progress.connect(lambda d, t: self.progress.emit(d, t, f"Segmenting {what}: %p%"))
        task.item.connect(lambda payload: task is self._task and self.plane_done.emit(*payload))
        task.finished.connect(lambda result: self._end(task, result))
        task.cancelled.connect(lambda: self._end(task, None))
        task.failed.connect(lambda message: self._end(task, None, message))
        return True

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def _end(self, task: Task, result, message: str | None = None) -> None:
        if task is not self._task:
            return
        self._task = None
        if message is not None:
            self.failed.emit(message)
        else:
            self.finished.emit(result)

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        task = self._task
        if task is not None:
            task.cancel()
            task.wait(timeout_ms)
            self._end(task, None)


class StackRun:
    """What a run did: planes done of total, whether it was cancelled, its time and device, the
    3-D objects file it wrote (or None), the model's classes and the objects it found (None: a
    classes-only run)."""

    def __init__(self, done: int, total: int, cancelled: bool, seconds: float, device: str,
                 instances: Path | None, classes: list, objects: int | None = None):
        self.done, self.total, self.cancelled, self.seconds = done, total, cancelled, seconds
        self.device, self.instances, self.classes, self.objects = device, instances, classes, objects
