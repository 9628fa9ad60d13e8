"""Running the model on a worker thread and showing its tiles as they finish.

One image: tiles are pasted into the document as a preview (``paste_region``); success
replaces the mask as one undo step (``apply_labels``), cancel or failure puts the previous
mask back (``cancel_preview``).  Segment All loads, segments and saves each listed image on
the worker and reports each result so open documents can take it too.

A model that separates objects (``segmenter.instances``) also fills the document's object layer,
in the same undo step; streamed runs (Segment View, a whole slide) make the region's objects
after its last block (core.segment.region_objects), so no boundary pixel stays in the mask, and
a slide's objects are handed on (``objects_kept``) for its exports.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from core.document.mask_document import MaskDocument
from core.document.editing import Box
from gui.infra.workers import SEGMENTING_NICE, Reporter, Task, TaskCancelled, start_task

# Written by Segment All beside each image: the same file Save writes.
BATCH_FORMAT = "index"
VIEW_BLOCK = 512  # Segment View: small blocks, so the result shows early
WHOLE_BLOCK = 2048  # a whole slide: the engine's block size


def _meets(region: tuple[int, int, int, int], box: Box) -> bool:
    y0, y1, x0, x1 = region
    return not Box(y0, x0, y1, x1).intersect(box).is_empty


def _cancellable(work):
    """``work()``, with the core's Cancelled turned into the worker's TaskCancelled."""
    try:
        return work()
    except TaskCancelled:
        raise
    except Exception as exc:
        _raise_if_cancelled(exc)
        raise


def _separates(segmenter: Any) -> bool:
    """Whether the model separates objects (an instance output, core.objects.instances)."""
    return getattr(segmenter, "instances", None) is not None


def _scratch_folder() -> Path:
    """A private folder for a streamed run's objects (swept when its process is gone)."""
    from core.document.scratch_folders import ScratchFolder

    return ScratchFolder().make()


def _raise_if_cancelled(exc: BaseException) -> None:
    """core.segment.inference.Cancelled -> TaskCancelled (imported lazily: it lives beside torch)."""
    from core.segment.inference import Cancelled

    if isinstance(exc, Cancelled):
        raise TaskCancelled() from None


class SegmentationController(QObject):
    started = Signal(str)  # "segment" or "segment_all"
    progress = Signal(int, int, str)  # done, total, text for the progress bar
    finished = Signal(float, str)  # seconds, device actually used (one image)
    failed = Signal(str)
    cancelled = Signal()
    image_done = Signal(object, object, object, object)  # Segment All: image path, mask path, labels, object ids or None (a stack: its objects file)
    batch_finished = Signal(int, int, float, str, list)  # done, total, seconds, device, errors
    ended = Signal()  # after any of finished / failed / cancelled / batch_finished
    warning = Signal(str)  # e.g. out of GPU memory, retrying with smaller tiles
    objects_kept = Signal(object, object)  # a whole slide's document, its model objects (RegionObjects)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.tile_size: int | None = None  # None: the device's default window
        self.tta: bool | None = None  # test-time augmentation; None: the model's own default
        self.refine: bool | None = None  # edge refinement; None: the model's own default
        self._task: Task | None = None
        self._doc: MaskDocument | None = None
        self._keep_on_cancel = False  # a streamed run keeps its finished blocks
        self._kind = ""

    @property
    def running(self) -> bool:
        return self._task is not None

    @property
    def document(self) -> MaskDocument | None:
        """The document a single-image run writes into."""
        return self._doc

    # -- one image ----------------------------------------------------------------------------
    def segment(self, doc: MaskDocument, rgb: np.ndarray, segmenter: Any) -> bool:
        if self._task is not None:
            return False
        doc.end_stroke()
        tile, tta, refine = self.tile_size, self.tta, self.refine
        objects = {"instances": True} if _separates(segmenter) and doc.objects is not None else {}

        def run(rep: Reporter):
            t0 = time.perf_counter()
            out = _cancellable(lambda: segmenter.segment(
                rgb, tile_size=tile, progress=rep.progress, should_cancel=rep.cancelled,
                on_tile=lambda y, x, block: rep.item((y, x, np.array(block, copy=True))),
                warn=rep.warn, tta=tta, refine=refine, **objects))
            labels, ids = (out.labels, out.instances) if objects else (out, None)
            return labels, time.perf_counter() - t0, str(segmenter.device), list(segmenter.classes), ids

        return self._start_one(doc, run, "segment", keep_on_cancel=False)

    def _start_one(self, doc: MaskDocument, run, name: str, keep_on_cancel: bool) -> bool:
        """Run ``run`` for one document: its tiles are pasted as they come, the end decides."""
        self._doc, self._kind, self._keep_on_cancel = doc, "segment", keep_on_cancel
        task = self._task = start_task(run, name, nice=SEGMENTING_NICE)
        task.progress.connect(lambda d, t: self.progress.emit(d, t, "Segmenting: %v/%m tiles"))
        task.item.connect(lambda payload: self._on_tile(task, payload))
        task.finished.connect(lambda result: self._on_finished(task, result))
        task.failed.connect(lambda message: self._on_failed(task, message))
        task.cancelled.connect(lambda: self._on_cancelled(task))
        task.warning.connect(self._warn)
        self.started.emit("segment")
        return True

    # -- an image of any size, streamed into its chunked mask ----------------------------------
    def segment_source(self, doc: MaskDocument, source, segmenter: Any, box: Box | None = None) -> bool:
        """Segment ``source`` (or only the blocks that meet ``box``, pasting just ``box``) with
        today's exact tiling, block by block; finished blocks show as they come and are kept
        when the run is cancelled (one undo step either way)."""
        if self._task is not None:
            return False
        doc.end_stroke()
        tile, tta, refine = self.tile_size, self.tta, self.refine
        h, w = source.height, source.width
        area = box if box is not None else Box(0, 0, h, w)
        spec = segmenter.instances if _separates(segmenter) else None
        folder = _scratch_folder() if spec is not None else None

        def run(rep: Reporter):
            from core.segment.streaming import StreamPlan, segment_blocks

            t0 = time.perf_counter()
            plan = StreamPlan.make(segmenter, h, w, tile, tta, refine,
                                   block_target=VIEW_BLOCK if box is not None else WHOLE_BLOCK, source=source)
            blocks = [b for b in plan.blocks() if _meets(plan.region(b), area)]
            total = sum(len(plan.tiles(b)) for b in blocks)
            done = 0
            region = None
            if spec is not None:
                from core.segment.region_objects import RegionObjects

                region = RegionObjects(folder, (area.y0, area.y1, area.x0, area.x1), plan.chunks, spec)

            def tick(n: int) -> None:
                nonlocal done
                done += n
                rep.progress(done, total)

            def write(block, labels) -> None:
                y0, y1, x0, x1 = plan.region(block)
                cut = Box(y0, x0, y1, x1).intersect(area)
                piece = labels[cut.y0 - y0:cut.y1 - y0, cut.x0 - x0:cut.x1 - x0]
                if region is not None:  # the objects come after the last block; until then no boundary shows
                    region.write(cut.y0, cut.x0, piece)
                    piece = np.where(piece == spec.boundary_class, np.uint8(0), piece)
                rep.item((cut.y0, cut.x0, np.array(piece)))

            rep.progress(0, total)
            try:
                _cancellable(lambda: segment_blocks(segmenter, source, plan, blocks, write, rep.cancelled, tick))
                if region is not None:
                    rep.progress(0, 0)  # busy: the objects of the whole region
                    region.separate()
                    for y0, x0, folded in region.folded():
                        rep.item((y0, x0, folded))
            except BaseException:
                if region is not None:
                    region.close()
                raise
            return None, time.perf_counter() - t0, str(segmenter.device), list(segmenter.classes), region

        return self._start_one(doc, run, "segment-view" if box is not None else "segment-slide",
                               keep_on_cancel=True)

    def _on_tile(self, task: Task, payload) -> None:
        if task is self._task and not task.cancel_requested and self._doc is not None:
            y0, x0, block = payload
            self._doc.paste_region(y0, x0, block)

    def _on_finished(self, task: Task, result) -> None:
        if task is not self._task:
            return
        doc = self._end()
        labels, seconds, device, classes, objects = result
        try:
            if classes and list(doc.classes) != list(classes):
                doc.set_classes(classes)
            if labels is None:  # streamed: the pasted blocks are the result
                self._streamed_objects(doc, objects)
            else:
                doc.apply_labels(labels, "segment", objects=objects)
        except ValueError as exc:  # a segmenter that returned the wrong shape
            doc.cancel_preview()
            self.failed.emit(f"The model's output does not fit the image: {exc}")
        else:
            self.finished.emit(float(seconds), device)
        self.ended.emit()

    def _streamed_objects(self, doc: MaskDocument, region) -> None:
        """Close a streamed run's preview as one undo step, with the region's objects: into the object
        layer of a document in memory, or kept for a whole slide's exports (``objects_kept``)."""
        if region is None:
            doc.commit_preview("segment")
            return
        if doc.objects is not None:
            from core.segment.region_objects import place_objects

            current = doc.objects.labels if doc.objects.allocated else None
            ids = place_objects(current, doc.shape, region.area, region.ids())
            region.close()
            doc.apply_labels(np.asarray(doc.labels), "segment", objects=ids)  # the preview and the objects: one step
            return
        doc.commit_preview("segment")
        if region.area == (0, doc.shape[0], 0, doc.shape[1]):
            self.objects_kept.emit(doc, region)  # the whole slide: its exports write these objects
        else:
            region.close()  # a view of a slide: its objects would not describe the slide

    def _on_failed(self, task: Task, message: str) -> None:
        if task is not self._task:
            return
        doc = self._end()
        if doc is not None:
            doc.cancel_preview()
        self.failed.emit(message)
        self.ended.emit()

    def _on_cancelled(self, task: Task) -> None:
        if task is not self._task:
            return
        keep = self._keep_on_cancel
        doc = self._end()
        if doc is not None:
            if keep:
                doc.commit_preview("segment (stopped)")  # the finished tiles stay, one undo step
            else:
                doc.cancel_preview()
        self.cancelled.emit()
        self.ended.emit()

    def _end(self) -> MaskDocument | None:
        doc, self._doc, self._task, self._keep_on_cancel = self._doc, None, None, False
        return doc

    def _warn(self, message: str) -> None:
        self.warning.emit(message)

    # -- many images --------------------------------------------------------------------------
    # (a model that separates objects: each image's objects are saved beside it, as Save does)
    def segment_all(self, items: list[tuple[Path, Path]], segmenter: Any, stacks=frozenset(),
                    smooth_z: int = 0) -> bool:
        """Segment each (image, mask target) pair and save the index mask to the target; the images
        in ``stacks`` are stacks: every plane (core.segment.stack, as Segment Stack; ``smooth_z``: its
        Smooth Across Z on Z stacks) into one label stack at the target (``<stem>_mask.ome.tif``),
        through the same batch writer, and a model's objects into ``<stem>_instances.ome.tif`` as
        ``unetseg segment STACK --format instances`` writes them (ids unique over the stack)."""
        if self._task is not None or not items:
            return False
        tile, tta, refine = self.tile_size, self.tta, self.refine
        n = len(items)
        objects = {"instances": True} if _separates(segmenter) else {}
        stacks = {Path(p) for p in stacks}

        def run(rep: Reporter):
            from core.segment.batch_writer import BatchWriter, StackMasks, write_batch
            from core.io.images import load_image

            t0 = time.perf_counter()
            writer = BatchWriter(None, [BATCH_FORMAT], list(segmenter.classes))  # beside each image
            made: dict[Path, np.ndarray] = {}  # each image's objects, written beside it as Save writes them

            def segment(i: int, path: Path):
                def tiles(d: int, t: int) -> None:
                    rep.progress(i * 1000 + (1000 * d) // max(1, t), n * 1000)

                def stack() -> StackMasks:
                    from core.io.sources import all_planes, open_source
                    from core.segment.stack import StackOptions, segment_stack

                    source = open_source(path)  # the worker's own file handle
                    count = len(all_planes(source))
                    done = [0]

                    def plane_tiles(d: int, t: int) -> None:
                        rep.progress(i * 1000 + (1000 * done[0] + (1000 * d) // max(1, t)) // count, n * 1000)

                    def fill(add) -> bool:
                        def plane_done(plane, labels, instances) -> None:
                            done[0] += 1
                            add(plane, labels, instances)  # the model's objects, numbered over the stack

                        options = StackOptions(tile_size=tile, tta=tta, refine=refine,
                                               smooth_z=smooth_z if "Z" in source.plane_axes else 0)
                        result = segment_stack(segmenter, source, None, options, should_cancel=rep.cancelled,
                                               on_plane=plane_done, keep=False, tile_progress=plane_tiles)
                        return not result.cancelled

                    return StackMasks(source, fill, close=source.close)

                def produce():
                    rep.progress(i * 1000, n * 1000)
                    if path in stacks:
                        return stack()
                    image = segmenter.image_of(load_image(path))
                    out = segmenter.segment(image, tile_size=tile, progress=tiles,
                                            should_cancel=rep.cancelled, warn=rep.warn, tta=tta,
                                            refine=refine, **objects)
                    if not objects:
                        return out, None
                    from core.io.label_images import write_label_image
                    from core.io.mask_naming import instances_path

                    write_label_image(instances_path(path), out.instances)
                    made[path] = out.instances
                    return out.labels, None
                return produce

            from core.io.mask_naming import stack_instances_path

            stack_objects = {path: stack_instances_path(path) for path in stacks} if objects else {}
            jobs = [(path, path.stem, segment(i, path), {BATCH_FORMAT: target, **(
                        {"instances": stack_objects[path]} if path in stack_objects else {})})
                    for i, (path, target) in enumerate(items)]
            targets = dict(items)

            def done(path, paths, labels) -> None:
                """The image's labels and objects (a stack's: the objects file, when it was written)."""
                written = stack_objects.get(path)
                kept = made.pop(path, None) if written is None else (written if written in paths else None)
                rep.item((path, targets[path], labels, kept))

            result = _cancellable(lambda: write_batch(writer, jobs, should_cancel=rep.cancelled, on_done=done))
            if result.cancelled:
                raise TaskCancelled()
            return (result.done, n, time.perf_counter() - t0, str(segmenter.device),
                    [str(e) for e in result.errors])

        self._doc, self._kind = None, "segment_all"
        task = self._task = start_task(run, "segment-all", nice=SEGMENTING_NICE)
        names = [p.name for p, _ in items]
        task.progress.connect(lambda d, t: self.progress.emit(
            d, t, f"Image {min(n, d // 1000 + 1)} of {n}: {names[min(n - 1, d // 1000)]}"))
        task.item.connect(lambda payload: task is self._task and self.image_done.emit(*payload))
        task.finished.connect(lambda result: self._on_batch_finished(task, result))
        task.failed.connect(lambda message: self._on_failed(task, message))
        task.cancelled.connect(lambda: self._on_cancelled(task))
        task.warning.connect(self._warn)
        self.started.emit("segment_all")
        return True

    def _on_batch_finished(self, task: Task, result) -> None:
        if task is not self._task:
            return
        self._end()
        self.batch_finished.emit(*result)
        self.ended.emit()

    # -- control ------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop between tiles; the previous mask is back at once (the worker ends shortly)."""
        if self._task is None:
            return
        self._task.cancel()
        if self._doc is not None and not self._keep_on_cancel:
            self._doc.cancel_preview()  # a streamed run commits its finished blocks when it stops

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Cancel and wait for the worker (closing the window); once it has stopped, the job
        ends here, so nothing waits for its queued "cancelled" any more."""
        task = self._task
        if task is not None:
            self.cancel()
            if task.wait(timeout_ms):
                self._on_cancelled(task)
