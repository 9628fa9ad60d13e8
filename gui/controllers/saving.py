"""Writing masks: Save / Save As, Export (any core format), Export All, Import Mask, and the
Save / Discard / Cancel questions before edits could be lost.

A failed write shows one message naming the path and keeps the in-memory mask as it was
(core writes are atomic, so the file on disk is untouched too).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from core.segment.batch_writer import BatchResult, BatchWriter, ImageResult, write_batch, write_one
from core.io.images import pixel_limit
from core.document.strokes import write_strokes
from core.io.label_images import write_label_image
from core.io.mask_naming import (CHUNKED_MASK_SUFFIXES, MASK_FORMATS, chunked_mask_path, planned_collisions,
                               instances_path, suggested_export_path, unique_stems)
from core.io.masks import MaskError, read_mask, write_mask
from gui import dialogs
from gui.infra.settings import Settings
from gui.infra.workers import Task, start_task
from gui.state.app_state import AppState, Job
from gui.state.display import rendered_rgb
from gui.state.image_store import ImageEntry, path_key
from core.wording import counted, some_names

WRITE_ERRORS = (OSError, ValueError, MemoryError)
CHUNKWISE_FORMATS = ("geojson", "imagej")  # core.io.objects reads a chunked mask block by block  # WriteError is an OSError, MaskError a ValueError


def _same_path(a: Path, b: Path) -> bool:
    return path_key(a) == path_key(b)


class Saver(QObject):
    export_all_finished = Signal(int)  # files written (-1: cancelled)
    stack_export_finished = Signal(int)  # Export Mask of a stack: files written

    def __init__(self, state: AppState, settings: Settings, parent: QWidget):
        super().__init__(parent)
        self.state, self.store, self.settings, self.parent_widget = state, state.store, settings, parent
        self.last_format = "index"
        self.export_task: Task | None = None

    # -- save ---------------------------------------------------------------------------------
    def save(self, entry: ImageEntry | None = None) -> bool:
        entry = entry or self.store.current
        if entry is None or entry.doc is None:
            return False
        if entry.stack is not None:
            return self._save_stack(entry, entry.save_target)
        if not entry.doc.dirty and entry.strokes is not None and entry.strokes.dirty:
            saved = self._write_strokes(entry)  # only the strokes changed: no blank mask file
            if saved:
                self.state.message.emit(f"Saved {entry.strokes_target}", 5000)
            return saved
        target = entry.save_target
        loaded = entry.mask_source is not None and _same_path(entry.mask_source, target)
        if target.exists() and not loaded and entry.save_path is None:
            if not dialogs.confirm(self.parent_widget, "Replace Mask?",
                                   f"{target.name} already exists and is not the mask you are "
                                   "editing. Replace it?", "Replace"):
                return False
        return self._write_index(entry, target)

    def save_as(self) -> bool:
        entry = self.store.current
        if entry is None or entry.doc is None:
            return False
        path = dialogs.ask_save_path(self.parent_widget, entry.save_target)
        if path is None:
            return False
        if entry.doc.is_chunked and not path.name.lower().endswith((".ome.zarr", ".ome.tif", ".ome.tiff")):
            path = path.with_name(f"{path.stem}.ome.zarr")  # too large for PNG: a chunked format
        if entry.stack is not None and not path.name.lower().endswith((".ome.zarr", ".ome.tif", ".ome.tiff")):
            path = path.with_name(f"{path.stem}.ome.tif")  # a label stack: a format that holds its planes
        if _same_path(path, entry.path):
            dialogs.show_error(self.parent_widget, "Could Not Save",
                               f"{path.name}: that is the image itself; choose another name.")
            return False
        if self._write_index(entry, path):
            entry.save_path = path
            return True
        return False

    def _write_index(self, entry: ImageEntry, target: Path) -> bool:
        if entry.stack is not None:
            return self._save_stack(entry, target, ask=False)
        doc = entry.doc
        assert doc is not None
        try:
            if doc.is_chunked:  # an OME-Zarr beside the image: only the changed chunks are written
                fmt = "ome-tiff" if target.name.lower().endswith((".ome.tif", ".ome.tiff")) else "ome-zarr"
                doc.labels.save_to(target, fmt, classes=doc.classes)
            else:
                write_mask(target, doc.labels, "index", doc.classes)
        except WRITE_ERRORS as exc:
            dialogs.show_error(self.parent_widget, "Could Not Save", str(exc))
            return False
        saved, objects = self._write_objects(entry)
        if not saved:
            return False
        doc.mark_saved()
        entry.mask_source, entry.has_mask_file = target, True
        if not self._write_strokes(entry):
            return False
        self.state.message.emit(saved_message(target, objects), 5000)
        return True

    def _write_objects(self, entry: ImageEntry) -> tuple[bool, Path | None]:
        """The objects go with the mask, to ``<stem>_instances.tif`` beside the image (once the
        object layer is in use; an emptied layer empties a file that was there): (False when
        writing failed, the file written or None)."""
        objects = entry.doc.objects if entry.doc is not None else None
        path = instances_path(entry.path)
        if objects is None or not objects.allocated or (objects.is_empty and not path.exists()):
            return True, None
        try:
            write_label_image(path, objects.labels)
        except WRITE_ERRORS as exc:
            dialogs.show_error(self.parent_widget, "Could Not Save the Objects", str(exc))
            return False, None
        return True, path

    def _write_strokes(self, entry: ImageEntry) -> bool:
        """Live Training's strokes go with the mask, beside the image: ``<stem>_strokes.png``, or a
        slide's ``<stem>_strokes.ome.zarr`` (only its changed chunks are written)."""
        strokes = entry.strokes
        if strokes is None or not strokes.dirty:
            return True
        path = entry.strokes_target
        classes = entry.doc.classes if entry.doc is not None else strokes.classes
        if strokes.is_chunked and strokes.labels.path is None and path.exists() and not dialogs.confirm(
                self.parent_widget, "Replace Strokes?", f"{path.name} already exists and could not be opened as "
                "this slide's strokes. Replace it with the strokes you painted?", "Replace"):
            return False
        try:
            if strokes.is_chunked:
                strokes.labels.save_to(path, classes=classes)
            else:
                write_strokes(path, strokes.labels, classes)
        except WRITE_ERRORS as exc:
            dialogs.show_error(self.parent_widget, "Could Not Save the Strokes", str(exc))
            return False
        strokes.mark_saved()
        return True

    def _save_stack(self, entry: ImageEntry, target: Path, ask: bool = True) -> bool:
        """A stack: its label stack (every plane, core.document.stack_planes) when a plane's mask
        changed or none is saved yet, and its strokes stack when they changed."""
        from core.io.mask_naming import stack_strokes_path

        stack, physical = entry.stack, entry.source.physical_sizes
        write_mask = stack.masks_dirty or not stack.strokes_dirty  # only strokes changed: no blank mask file
        loaded = entry.mask_source is not None and _same_path(entry.mask_source, target)
        if write_mask and ask and target.exists() and not loaded and entry.save_path is None:
            if not dialogs.confirm(self.parent_widget, "Replace Mask?",
                                   f"{target.name} already exists and is not the mask you are "
                                   "editing. Replace it?", "Replace"):
                return False
        objects = None
        try:
            if write_mask and stack.objects_to_save():  # the planes' objects, beside the stack
                from core.io.mask_naming import stack_instances_path

                objects = stack.save_objects(stack_instances_path(entry.path), physical)
            if write_mask:
                stack.save_masks(target, physical)
            if stack.strokes_dirty:
                stack.save_strokes(stack_strokes_path(entry.path), physical)
        except WRITE_ERRORS as exc:
            dialogs.show_error(self.parent_widget, "Could Not Save", str(exc))
            return False
        if write_mask:
            entry.mask_source, entry.has_mask_file = target, True
        self.state.message.emit(saved_message(target if write_mask else stack_strokes_path(entry.path), objects,
                                              f" ({len(stack.all_planes())} planes)"), 5000)
        return True

    # -- unsaved edits ------------------------------------------------------------------------
    def resolve_unsaved(self, entry: ImageEntry) -> bool:
        """Ask Save / Discard / Cancel for ``entry``; True when it may be closed."""
        what = dialogs.unsaved_work(entry.doc is not None and entry.doc.dirty,
                                    entry.strokes is not None and entry.strokes.dirty)
        answer = dialogs.ask_save_discard_cancel(self.parent_widget, entry.name, what)
        if answer == "save":
            return self.save(entry)
        return answer == "discard"

    def resolve_all_unsaved(self) -> bool:
        for entry in self.store.dirty_entries():
            if entry is not self.store.current:
                self.state.show(entry)  # show what the question is about
            if not self.resolve_unsaved(entry):
                return False
        return True

    # -- export -------------------------------------------------------------------------------
    def export(self) -> bool:
        entry = self.store.current
        if entry is None or not entry.shown:
            return False
        if entry.doc.is_chunked:
            return self._export_chunked(entry)
        if entry.stack is not None:
            return self._export_stack(entry)
        folder = Path(self.settings.last_export_folder or entry.path.parent)
        chosen = dialogs.ask_export_path(self.parent_widget, {fmt: suggested_export_path(entry.path, folder, fmt)
                                                              for fmt in MASK_FORMATS}, self.last_format)
        if chosen is None:
            return False
        path, fmt = chosen
        self._remember(path, fmt)  # the next Export offers this choice again, also after an error
        if _same_path(path, entry.path):
            dialogs.show_error(self.parent_widget, "Could Not Export",
                               f"{path.name}: that is the image itself; choose another name.")
            return False
        doc = entry.doc
        objects = doc.objects  # the painted objects, when there are any: the per-object formats write them
        instances = objects.labels if objects is not None and not objects.is_empty else None
        return self._exported(path, fmt, lambda: write_one(
            path, fmt, doc.labels, doc.classes, image_path=entry.path,
            image_rgb=self._shown_rgb(entry) if fmt == "overlay" else None, opacity=self.state.opacity / 100,
            raw=entry.image, instances=instances))

    def _remember(self, path: Path, fmt: str) -> None:
        self.last_format = fmt
        if path.parent.is_dir():
            self.settings.last_export_folder = str(path.parent)

    def _shown_rgb(self, entry: ImageEntry):
        """The shown image as the view draws it now (its channel display): an overlay's background."""
        view = self.state.display.view
        compositor = view.compositor() if view.key == path_key(entry.path) else None
        if entry.image is not None:
            return entry.image.rgb if compositor is None else compositor.rgb(entry.image.pixels)
        h, w = entry.doc.shape
        return entry.source.read(0, h, 0, w) if compositor is None else \
            compositor.rgb(entry.source.read_raw(0, h, 0, w))

    def _exported(self, path: Path, fmt: str, write) -> bool:
        """Run ``write``; a failure is one message naming the path, and nothing is remembered."""
        try:
            write()
        except WRITE_ERRORS as exc:
            dialogs.show_error(self.parent_widget, "Could Not Export", str(exc))
            return False
        self._remember(path, fmt)
        label = dialogs.FORMAT_LABELS.get(fmt, fmt).split(" (")[0].split(":")[0]
        self.state.message.emit(f"Exported {path} as {label}", 5000)
        return True

    def _export_chunked(self, entry: ImageEntry) -> bool:
        """A slide's mask: the chunked formats always; the others only when the whole mask fits
        in memory under the same limit as a decoded image (the dialog says why not)."""
        doc = entry.doc
        h, w = doc.shape
        limit = pixel_limit()
        fits = limit is None or h * w <= limit
        folder = Path(self.settings.last_export_folder or entry.path.parent)
        suggested = {fmt: chunked_mask_path(folder / entry.path.name, fmt) for fmt in CHUNKED_MASK_SUFFIXES}
        streamed = [fmt for fmt in MASK_FORMATS if fits or fmt in CHUNKWISE_FORMATS]
        suggested.update({fmt: suggested_export_path(entry.path, folder, fmt) for fmt in streamed})
        note = None if fits else (f"the {w}x{h} mask does not fit in memory, so only the formats written "
                                  "chunk by chunk are offered: OME-Zarr, OME-TIFF, GeoJSON and ImageJ ROIs")
        fmt = self.last_format if self.last_format in suggested else "ome-zarr"
        chosen = dialogs.ask_export_path(self.parent_widget, suggested, fmt, note)
        if chosen is None:
            return False
        path, fmt = chosen
        self._remember(path, fmt)

        def write() -> None:
            if fmt in ("ome-zarr", "ome-tiff"):
                doc.labels.export_to(path, fmt, classes=doc.classes)  # a copy: the mask keeps its file
                return
            image = self._shown_rgb(entry) if fmt == "overlay" else None
            labels = doc.labels if fmt in CHUNKWISE_FORMATS else doc.labels[0:h, 0:w]
            write_one(path, fmt, labels, doc.classes, image_path=entry.path, image_rgb=image,
                      opacity=self.state.opacity / 100, raw=entry.source, instances=self._slide_objects(entry, fmt))

        return self._exported(path, fmt, write)

    def _slide_objects(self, entry: ImageEntry, fmt: str):
        """The model's objects of a slide for an object format (read lazily; in memory for the formats
        that take the whole mask), while the mask is as that model segmented it; else None (each
        class's connected regions, and the status bar says why)."""
        from core.segment.batch_writer import OBJECT_OUTPUTS

        kept = entry.slide_objects
        if kept is None or fmt not in OBJECT_OUTPUTS:
            return None
        if not kept.current(entry.doc):
            self.state.message.emit("The mask changed since the model segmented it, so its objects no longer "
                                    "describe it: each class's connected regions are exported as objects.", 10000)
            return None
        array = kept.objects.array
        return array if fmt in CHUNKWISE_FORMATS else np.asarray(array[:, :])

    def _export_stack(self, entry: ImageEntry) -> bool:
        """A stack's mask, every plane, as ``unetseg segment STACK`` writes it (core.segment.batch_writer),
        on a worker (its own file handles; the planes with unsaved edits copied here): a label stack
        format keeps the stack's Z/T (so it reads back with its shape); GeoJSON, ImageJ, COCO and the
        measurements name each object's plane; a one-image format gets a file per plane
        (``<stem>_z03.png``) beside the chosen name."""
        from core.io.mask_naming import export_stem, stack_export_path

        if self.export_task is not None or self.state.job_running:
            self.state.message.emit("Export Mask of a stack waits until the job running now has finished.", 5000)
            return False
        folder = Path(self.settings.last_export_folder or entry.path.parent)
        formats = ("ome-tiff", "ome-zarr") + MASK_FORMATS
        fmt = self.last_format if self.last_format in formats else "ome-tiff"
        chosen = dialogs.ask_export_path(self.parent_widget, {f: stack_export_path(entry.path, folder, f) for f in formats},
                                         fmt, "a stack: every plane")
        if chosen is None:
            return False
        path, fmt = chosen
        self._remember(path, fmt)
        if _same_path(path, entry.path):
            dialogs.show_error(self.parent_widget, "Could Not Export",
                               f"{path.name}: that is the image itself; choose another name.")
            return False
        _, export, *_ = stack_export_job(entry, always=True)
        view = self.state.display.view  # an overlay draws the planes as the view does (its channel display)
        compositor = view.compositor() if view.key == path_key(entry.path) else None
        export.render = compositor.rgb if compositor is not None else None
        stem = export_stem(path, fmt) if fmt != "coco" else entry.path.stem
        writer = BatchWriter(path.parent, [fmt], entry.stack.classes, opacity=self.state.opacity / 100,
                             protect=[entry.path], create_folder=False, shared={fmt: path})
        work = [(entry.path, stem, export, {fmt: path})]
        task = self.export_task = start_task(
            lambda rep: write_batch(writer, work, should_cancel=rep.cancelled), "export-stack")
        planes = len(entry.stack.all_planes())
        task.finished.connect(lambda result: self._stack_exported(result, path, fmt, planes))
        task.failed.connect(lambda message: self._stack_exported(BatchResult(errors=[message]), path, fmt, planes))
        task.cancelled.connect(lambda: self._stack_exported(BatchResult(cancelled=True), path, fmt, planes))
        self.state.job = Job("export_all", text=f"Exporting {planes} planes…", cancel=task.cancel)
        return True

    def _stack_exported(self, result: BatchResult, path: Path, fmt: str, planes: int) -> None:
        self.export_task = None
        self.state.job = None
        if result.cancelled:
            self.state.message.emit("Export cancelled; no file of the stack was written.", 8000)
        elif result.errors:
            dialogs.show_error(self.parent_widget, "Could Not Export", "\n".join(str(e) for e in result.errors[:10]))
        else:
            label = dialogs.FORMAT_LABELS.get(fmt, fmt).split(" (")[0].split(":")[0]
            files = len(result.written)
            where = f"{path}" if files == 1 else f"{files} files in {path.parent}"
            self.state.message.emit(f"Exported the {planes} planes to {where} as {label}", 8000)
        self.stack_export_finished.emit(len(result.written))

    def export_all(self) -> bool:
        """Ask for a folder and formats, then write every listed image's mask on a worker."""
        if self.export_task is not None or not len(self.store):
            return False
        start = self.settings.last_export_folder or self.settings.last_folder
        folder = dialogs.ask_export_folder(self.parent_widget, start)
        if folder is None:
            return False
        formats = dialogs.ask_export_formats(self.parent_widget, self.settings.export_formats)
        if not formats:
            return False
        self.settings.export_formats = formats  # the next Export All starts with these ticked
        jobs, missing = self._export_jobs()
        if not jobs:
            dialogs.show_error(self.parent_widget, "Nothing to Export", "None of the listed images has a mask yet.")
            return False
        stems = unique_stems([p for p, *_ in jobs])
        sources = [e.path for e in self.store]
        problems = planned_collisions(folder, stems, formats, protect=sources)
        if problems:
            dialogs.show_error(self.parent_widget, "Could Not Export",
                               f"{problems[0]}; choose another folder.")
            return False
        self.settings.last_export_folder = str(folder)
        self._start_export(folder, formats, jobs, stems, missing, sources)
        return True

    def _export_jobs(self) -> tuple[list[tuple], list[str]]:
        """(image path, labels or None, mask file or None, painted objects or None) for the images
        with a mask; the names of those without one."""
        from core.io.masks import find_mask_for_image

        from gui.state.stack_loading import is_stack

        jobs, missing = [], []
        for entry in self.store:
            doc = entry.doc
            if is_stack(entry):  # every plane: the saved stacks read on the worker, edits copied here
                job = stack_export_job(entry)
                if job is None:
                    missing.append(entry.name)
                else:
                    jobs.append(job)
                continue
            if entry.source is not None:  # a slide: its chunked mask, read on the worker (SlideExport)
                job = slide_export_job(entry)
                if job is None:
                    missing.append(entry.name)
                else:
                    jobs.append(job)
                continue
            if doc is not None and (doc.dirty or entry.mask_source is not None or not doc.is_blank):
                objects = doc.objects
                painted = objects.labels.copy() if objects is not None and not objects.is_empty else None
                jobs.append((entry.path, doc.labels.copy(), None, painted))
                continue
            mask = find_mask_for_image(entry.path) if doc is None else None
            if mask is None:  # never annotated (an empty, untouched mask is not exported)
                missing.append(entry.name)
            else:
                jobs.append((entry.path, None, mask, None))
        return jobs, missing

    def _start_export(self, folder: Path, formats: list[str], jobs: list[tuple], stems: list[str],
                      missing: list[str], sources: list[Path]) -> None:
        classes = self.state.known_classes()
        memory = self.state.display.memory
        saved = {path: memory.load(path_key(path)) for path, labels, *_ in jobs
                 if not isinstance(labels, StackExport)}  # read here, not on the worker
        writer = BatchWriter(folder, formats, classes, opacity=self.state.opacity / 100, protect=sources,
                             create_folder=False, image_stores=True)

        def produce(path: Path, labels, mask, instances):
            def load():
                from core.io.images import load_image

                if isinstance(labels, SlideExport):
                    return labels(load_image if writer.needs_image or writer.needs_pixels else None,
                                  lambda loaded: rendered_rgb(loaded, saved[path]) if writer.needs_image else None)
                loaded = load_image(path) if writer.needs_image or writer.needs_pixels else None
                image = rendered_rgb(loaded, saved[path]) if writer.needs_image else None
                found = labels
                if found is None:
                    shape = loaded.rgb.shape[:2] if loaded is not None else None
                    found = read_mask(mask, shape=shape, classes=classes)
                return ImageResult(found, image, instances=instances, raw=loaded)
            return load

        work = [(path, stem, labels if isinstance(labels, StackExport) else produce(path, labels, mask, instances))
                for (path, labels, mask, instances), stem in zip(jobs, stems)]
        task = self.export_task = start_task(
            lambda rep: write_batch(writer, work, progress=rep.progress, should_cancel=rep.cancelled),
            "export-all")
        task.progress.connect(self._on_progress)
        task.finished.connect(lambda result: self._export_done(result, folder, missing))
        task.failed.connect(lambda message: self._export_done(BatchResult(errors=[message]), folder, missing))
        task.cancelled.connect(lambda: self._export_done(BatchResult(cancelled=True), folder, missing))
        self.state.job = Job("export_all", text="Exporting: %v/%m", cancel=task.cancel)

    def _on_progress(self, done: int, total: int) -> None:
        if self.state.job is not None and self.state.job.kind == "export_all":
            self.state.job = replace(self.state.job, done=done, total=total)

    def stop(self) -> None:
        """The window closes: cancel Export All and wait for its worker."""
        if self.export_task is not None:
            self.export_task.cancel()
            self.export_task.wait()

    def _export_done(self, result: BatchResult, folder: Path, missing: list[str]) -> None:
        self.export_task = None
        self.state.job = None
        if result.cancelled:
            self.state.message.emit("Export All cancelled; files already written stay.", 8000)
            self.export_all_finished.emit(-1)
            return
        written, errors = len(result.written), [str(e) for e in result.errors]
        skipped = (f"; {counted(len(missing), 'image')} without a mask skipped ({some_names(missing)})"
                   if missing else "")
        self.state.message.emit(f"Exported {counted(written, 'file')} to {folder}{skipped}.", 10000)
        if errors:
            more = f"\n… and {len(errors) - 10} more" if len(errors) > 10 else ""
            dialogs.show_error(self.parent_widget, "Export All", "Some masks could not be exported:\n\n"
                               + "\n".join(errors[:10]) + more)
        self.export_all_finished.emit(written)

    # -- import -------------------------------------------------------------------------------
    def import_mask(self) -> bool:
        entry = self.store.current
        if entry is None or entry.doc is None:
            return False
        path = dialogs.ask_mask_path(self.parent_widget, str(entry.path.parent))
        if path is None:
            return False
        doc = entry.doc
        try:
            labels = read_mask(path, shape=doc.shape, num_classes=max(c.id for c in doc.classes) + 1,
                               classes=doc.classes, image_name=entry.name)
        except (MaskError, OSError, ValueError, MemoryError) as exc:
            dialogs.show_error(self.parent_widget, "Could Not Import Mask", str(exc))
            return False
        doc.apply_labels(np.asarray(labels), "import mask")
        self.state.message.emit(f"Imported {path.name} (Undo puts the previous mask back).", 8000)
        return True



def saved_message(target: Path, objects: Path | None, detail: str = "") -> str:
    """What Save says: the mask's path and, when the objects were written beside it, their file."""
    also = f" and {objects.name}" if objects is not None else ""
    return f"Saved {target}{also}{detail}"


class StackExport:
    """Export All's job for a stack: ``produce()`` (on the worker) opens the stack and its saved mask
    and objects stacks with their own file handles and gives core.segment.batch_writer.StackMasks,
    each plane being its unsaved edits when it has them (copied on the window thread), else the
    saved stack's plane, else empty."""

    def __init__(self, path: Path, mask: Path | None, objects: Path | None, edits: dict, object_edits: dict,
                 render=None):
        self.path, self.mask, self.objects = path, mask, objects
        self.edits, self.object_edits = edits, object_edits
        self.render = render  # raw pixels -> the RGB the view draws (an overlay's image), or None

    def __call__(self):
        from core.io.label_stacks import StackReader
        from core.io.sources import all_planes, open_source
        from core.segment.batch_writer import StackMasks

        source = open_source(self.path)
        readers: list = []
        try:
            mask = StackReader(self.mask, source.plane_axes) if self.mask is not None else None
            readers.append(mask)
            objects = StackReader(self.objects, source.plane_axes, objects=True) if self.objects is not None else None
            readers.append(objects)
        except BaseException:
            for reader in readers:
                if reader is not None:
                    reader.close()
            source.close()
            raise
        h, w = source.height, source.width

        def painted(plane) -> np.ndarray | None:
            ids = self.object_edits.get(plane)
            if ids is None and objects is not None:
                ids = objects.read_plane(plane)
            return ids if ids is not None and ids.any() else None

        def fill(add) -> None:
            """Each plane's painted objects when it has some, else its class mask's connected
            regions (as a 2-D image without objects), numbered after every painted id so that an
            id names one object in the whole stack."""
            from core.objects.components import component_labels
            from core.objects.stitch import Numbering

            planes = list(all_planes(source))
            numbering = None
            if objects is not None or self.object_edits:
                numbering = Numbering(above=max((int(ids.max()) for ids in map(painted, planes) if ids is not None),
                                                default=0))
            for plane in planes:
                labels = self.edits.get(plane)
                if labels is None:
                    labels = mask.read_plane(plane) if mask is not None else np.zeros((h, w), np.uint8)
                ids = painted(plane) if numbering is not None else None
                if ids is None and numbering is not None:
                    ids = numbering.add(component_labels(labels))
                add(plane, labels, ids)

        def close() -> None:
            for reader in readers:
                if reader is not None:
                    reader.close()
            source.close()

        image_of = None
        if self.render is not None:
            def image_of(plane):
                return self.render(source.read_raw(0, h, 0, w, plane=plane))
        return StackMasks(source, fill, close=close, image_of=image_of)


class SlideExport:
    """Export All's job for a slide: ``produce()`` (on the worker) gives its chunked mask as it is now
    (the open mask, or the one saved beside the slide, opened here with its own file handles); the
    batch writer copies it level by level into OME-TIFF/OME-Zarr and reads it chunk by chunk or, when
    it fits in memory, whole for the other formats."""

    def __init__(self, path: Path, labels=None, mask: Path | None = None):
        self.path, self.labels, self.mask = path, labels, mask

    def __call__(self, load_image=None, render=None) -> ImageResult:
        from core.document.chunked_labels import ChunkedLabels
        from core.segment.batch_writer import fits_memory

        opened = self.labels is None  # the saved mask, opened here: closed once written
        labels = ChunkedLabels.open(self.mask) if opened else self.labels
        try:
            loaded = load_image(self.path) if load_image is not None and fits_memory(labels.shape) else None
            image = render(loaded) if render is not None and loaded is not None else None
        except BaseException:
            if opened:
                labels.close()
            raise
        return ImageResult(labels, image, raw=loaded, close=labels.close if opened else None)


def slide_export_job(entry: ImageEntry) -> tuple | None:
    """Export All's (path, SlideExport, None, None) for a slide with a mask (open, or saved beside it), else None."""
    doc = entry.doc
    if doc is not None and (doc.dirty or entry.mask_source is not None or not doc.is_blank):
        return entry.path, SlideExport(entry.path, labels=doc.labels), None, None
    saved = [chunked_mask_path(entry.path, fmt) for fmt in CHUNKED_MASK_SUFFIXES]
    found = next((p for p in saved if p.exists()), None) if doc is None else None
    return None if found is None else (entry.path, SlideExport(entry.path, mask=found), None, None)


def stack_export_job(entry: ImageEntry, always: bool = False) -> tuple | None:
    """Export All's (path, StackExport, None, None) for a stack with a mask (saved or edited), else
    None (``always``: also for a stack without one, whose planes are then empty)."""
    from core.io.mask_naming import stack_instances_path
    from core.io.masks import find_mask_for_image

    stack = entry.stack
    edits, object_edits = {}, {}
    if stack is not None:
        for plane, docs in stack.loaded().items():
            if docs.mask.dirty:
                edits[plane] = docs.mask.labels.copy()
            layer = docs.mask.objects
            if docs.mask.dirty and layer is not None and layer.allocated:
                object_edits[plane] = layer.labels.copy()
        mask, objects = stack.mask_path, stack.objects_path
    else:
        mask = find_mask_for_image(entry.path)
        found = stack_instances_path(entry.path)
        objects = found if found.is_file() else None
    if mask is None and not edits and not always:
        return None
    return entry.path, StackExport(entry.path, mask, objects, edits, object_edits), None, None
