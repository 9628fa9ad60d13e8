"""The app's side of segmentation: model choice, Segment / Segment All / Cancel, and what
the status bar and dialogs say about them; what the current model is (About This Model, the
recent weights, and what it knows after each image: ``image_segmented``).  The work itself is in
gui.jobs.segmentation (the worker) and gui.jobs.model_loader.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QMenu, QWidget

from core.document.editing import Box
from core.io.mask_naming import instances_path, stack_instances_path
from core.io.masks import find_mask_for_image
from core.model.summary import description_of, peek_metadata
from core.resources import BUILTIN_MODELS, builtin_model_path
from gui import dialogs
from gui.dialogs.about_model import AboutModelDialog
from gui.jobs.model_loader import ModelManager
from gui.state.model_names import builtin_status, model_label
from gui.jobs.segmentation import SegmentationController
from gui.infra.settings import Settings
from gui.menus.actions import Actions
from gui.menus.model_menu import ModelMenu
from gui.state.app_state import AppState, Job, ModelStatus
from gui.state.segment_all_outputs import saved_as
from gui.state.segmenter import SegmenterLike
from core.wording import counted

if TYPE_CHECKING:
    from gui.state.image_store import ImageEntry


def display_name(spec: str) -> str:
    """"Built-in Small", or the weights file's name."""
    return f"Built-in {spec.title()}" if spec in BUILTIN_MODELS else model_label(spec)


class SegmentUi(QObject):
    model_ready = Signal(str)  # describe() of the loaded model
    model_failed = Signal(str)
    started = Signal()
    finished = Signal(float, str)  # seconds, device
    failed = Signal(str)
    cancelled = Signal()
    segment_all_finished = Signal(int, int)  # images done, images asked
    # one image segmented: model spec, its display name, description, class names, image path
    image_segmented = Signal(str, str, str, list, object)

    def __init__(self, state: AppState, settings: Settings, parent: QWidget, actions: Actions,
                 model_menu: QMenu, view_box: Callable[[], Box]):
        super().__init__(parent)
        self._view_box = view_box  # the image pixels in view (Segment View)
        self.state, self.store, self.settings, self.parent_widget = state, state.store, settings, parent
        a = self.a = actions
        self.models = ModelManager(settings.model, settings.device, self)
        self.controller = SegmentationController(self)
        self.recent_weights = settings.recent_weights()
        self.menu = ModelMenu(model_menu, a.load_weights, parent, self.load_model, self.choose_device,
                              self.recent_weights, a.about_model)
        self.about_dialog: AboutModelDialog | None = None
        self.menu.show_device(self.models.device)
        self.menu.tta.toggled.connect(lambda on: setattr(self.controller, "tta", on))
        self.menu.refine.toggled.connect(lambda on: setattr(self.controller, "refine", on))
        self.model_error: str | None = None
        self._segment_when_ready = False
        self._remember = True  # save the loaded model as the choice for the next start
        self._batch: list["ImageEntry"] = []
        self._job_entry: "ImageEntry | None" = None
        self.segment_plane: Callable[[], bool] | None = None  # Segment on a stack (the window sets it)

        a.segment.triggered.connect(self.segment)
        a.segment_view.triggered.connect(self.segment_view)
        a.segment_all.triggered.connect(self.segment_all)
        a.load_weights.triggered.connect(self.ask_weights)
        a.about_model.triggered.connect(self.show_about_model)
        m, c = self.models, self.controller
        m.loading.connect(lambda label: setattr(state, "model", ModelStatus(f"Model: loading {label}…")))
        m.ready.connect(self._on_model_ready)
        m.failed.connect(self._on_model_failed)
        m.devices_ready.connect(self.menu.set_devices)
        m.warning.connect(lambda text: state.message.emit(text, 10000))
        c.started.connect(self._on_started)
        c.progress.connect(self._on_progress)
        c.warning.connect(lambda text: state.message.emit(text, 10000))
        c.finished.connect(self._on_finished)
        c.failed.connect(self._on_failed)
        c.cancelled.connect(self._on_cancelled)
        c.image_done.connect(self._on_image_done)
        c.objects_kept.connect(self._on_slide_objects)
        c.batch_finished.connect(self._on_batch_finished)

    # -- model --------------------------------------------------------------------------------
    def start(self) -> None:
        """The startup load of the saved model: quiet when it is missing (the menu says why)."""
        settings = self.settings
        spec = settings.model
        if spec in BUILTIN_MODELS and not builtin_status(spec)[0]:
            installed = [n for n in BUILTIN_MODELS if builtin_status(n)[0]]
            spec = installed[0] if installed else spec  # another built-in beats none at all
        self.models.device = settings.device
        self._remember = False  # a fallback is not the user's choice: keep the saved one
        self.models.load(spec, settings.device, interactive=False, fallback=True)

    def load_model(self, spec) -> None:
        self._remember = True
        self.models.load(str(spec), interactive=True)

    def ask_weights(self) -> None:
        path = dialogs.ask_weights_path(self.parent_widget, self.settings.last_folder)
        if path is not None:
            self.load_model(path)

    def choose_device(self, device: str) -> None:
        self.settings.device = device
        self.models.device = device
        if self.models.segmenter is not None and self.models.spec != "custom":
            self.models.load(self.models.spec, device, interactive=True)

    def _on_model_ready(self, seg: SegmenterLike) -> None:
        self.model_error = None
        spec = self.models.spec
        if spec != "custom":
            if self._remember:
                self.settings.model = spec
            if spec not in BUILTIN_MODELS:
                self.recent_weights.add(spec)
            self.menu.show_model(spec)
        self.menu.show_device(self.models.device)
        self.menu.show_model_defaults(seg)
        classes = list(seg.classes)
        if classes:
            self.state.class_template = tuple(classes)
            doc = self.state.document.doc
            if doc is not None and doc.classes != classes and not doc.preview_active \
                    and doc.is_blank:
                doc.set_classes(classes)  # an empty mask takes the model's classes right away
        describe = seg.describe()
        self.state.model = ModelStatus(f"Model: {model_label(spec)} · {seg.device}", describe)
        self.state.message.emit(f"Model ready: {describe}", 5000)
        self.model_ready.emit(describe)
        if self._segment_when_ready:
            self._segment_when_ready = False
            self.segment()

    def _on_model_failed(self, message: str, interactive: bool) -> None:
        self.model_error = message
        if self.models.segmenter is not None:
            self.menu.show_model(self.models.spec)
            self.state.model = ModelStatus(
                f"Model: {model_label(self.models.spec)} · {self.models.segmenter.device}")
        else:
            self.state.model = ModelStatus("No model", message)
        self.state.message.emit(message, 10000)
        waiting, self._segment_when_ready = self._segment_when_ready, False
        if interactive or waiting:
            dialogs.show_error(self.parent_widget, "Could Not Load Model",
                               self._no_model_text() if waiting else message)
        self.model_failed.emit(message)

    def _no_model_text(self) -> str:
        if self.model_error:
            reason = self.model_error
        elif self.models.spec in BUILTIN_MODELS and not builtin_status(self.models.spec)[0]:
            reason = builtin_status(self.models.spec)[1]
        else:
            reason = "No model is loaded."
        return (f"{reason}\n\nTo segment, load a weights file (.safetensors or .pt) with "
                "Model > Load Weights… (Ctrl+L).")

    def _segmenter_or_explain(self, want_later: bool) -> SegmenterLike | None:
        seg = self.models.segmenter
        if seg is not None:
            return seg
        if self.models.is_loading and want_later:
            self._segment_when_ready = True
            self.state.message.emit("The model is still loading; segmentation starts when it is ready.", 0)
            return None
        dialogs.show_error(self.parent_widget, "No Model", self._no_model_text())
        return None

    def model_path(self) -> Path | None:
        """The current model's weights file (a built-in's, when a test or script set it)."""
        seg, spec = self.models.segmenter, self.models.spec
        path = seg.checkpoint.path if seg is not None and seg.checkpoint is not None else None
        if path is None and spec in BUILTIN_MODELS:
            path = builtin_model_path(spec)
        return path

    def model_metadata(self) -> dict:
        """The current model's metadata, read from its file's header (no torch needed)."""
        path = self.model_path()
        return peek_metadata(path) if path is not None else {}

    def show_about_model(self) -> None:
        """Model > About This Model…: the facts of ``unetseg info``, laid out (non-modal)."""
        from core.model.checkpoints import CheckpointError, load_checkpoint
        from core.model.info import model_info

        seg, path = self.models.segmenter, self.model_path()
        if seg is None or path is None:
            self.state.message.emit("No model is loaded from a file, so there is nothing to describe.", 6000)
            return
        try:
            info = model_info(load_checkpoint(path), display_name(self.models.spec), device=seg.device)
        except CheckpointError as exc:
            dialogs.show_error(self.parent_widget, "About This Model", str(exc))
            return
        if self.about_dialog is not None:
            self.about_dialog.close()
        self.about_dialog = AboutModelDialog(info, self.parent_widget)
        self.about_dialog.show()

    # -- jobs ---------------------------------------------------------------------------------
    def segment(self) -> bool:
        """The whole image: in memory as before, or streamed block by block for a large one."""
        entry = self._shown_entry()
        if entry is None:
            return False
        seg = self._segmenter_or_explain(want_later=True)
        if seg is None:
            return False
        if entry.stack is not None and self.segment_plane is not None:
            return self.segment_plane()  # the plane in view, scaled as the whole stack is
        entry.busy, self._job_entry = True, entry
        if entry.source is not None:
            return self.controller.segment_source(entry.doc, entry.source, seg)
        return self.controller.segment(entry.doc, seg.image_of(entry.image), seg)

    def segment_view(self) -> bool:
        """Only the region in view, at full resolution with exact halos (fast work on one part
        of a slide); one undo step, and Cancel keeps what is done."""
        entry = self._shown_entry()
        if entry is None:
            return False
        box = self._view_box()
        if box.is_empty:
            return False
        seg = self._segmenter_or_explain(want_later=False)
        if seg is None:
            return False
        from core.io.plane_view import PlaneView
        from core.io.sources import ArraySource

        source = entry.source if entry.source is not None else \
            ArraySource(entry.image.rgb, entry.path, pixels=entry.image.pixels)
        if entry.stack is not None:  # the plane in view
            source = PlaneView(entry.source, entry.stack.plane, entry.plane_pixels.lock)
        entry.busy, self._job_entry = True, entry
        self.state.message.emit(f"Segmenting the view: {box.width}x{box.height} pixels at "
                                f"x {box.x0}, y {box.y0}", 5000)
        return self.controller.segment_source(entry.doc, source, seg, box)

    def _shown_entry(self) -> "ImageEntry | None":
        """The shown image, when one is shown and no job runs (else says so)."""
        entry = self.store.current
        if entry is None or not entry.shown:
            self.state.message.emit("Open an image to segment.", 5000)
            return None
        return None if self.state.job_running else entry

    def segment_all(self) -> bool:
        entries = list(self.store)
        if not entries or self.state.job_running:
            return False
        seg = self._segmenter_or_explain(want_later=False)
        if seg is None:
            return False
        objects = getattr(seg, "instances", None) is not None  # its objects are saved beside each image too
        from gui.state.stack_loading import is_stack, stack_save_target

        have = [e for e in entries if e.dirty or e.has_mask_file or find_mask_for_image(e.path)
                or (objects and e.source is None and instances_path(e.path).exists())
                or (objects and is_stack(e) and stack_instances_path(e.path).exists())]
        if have:
            answer = dialogs.ask_overwrite_skip_cancel(self.parent_widget, len(have), len(entries),
                                                       saved_as(entries, objects))
            if answer == "cancel":
                return False
            if answer == "skip":
                entries = [e for e in entries if e not in have]
        if not entries:
            self.state.message.emit("Every image already has a mask; nothing to segment.", 5000)
            return False
        stacks = {e.path for e in entries if is_stack(e)}  # every plane, into a label stack beside it
        for entry in entries:
            entry.busy = True
        self._batch = entries
        items = [(e.path, stack_save_target(e) if e.path in stacks and e.stack is None else e.save_target)
                 for e in entries]
        from gui.jobs.stack_segmentation import SMOOTH_PLANES

        smooth = SMOOTH_PLANES if self.a.smooth_z.isChecked() else 0  # Stack Options' smoothing, on Z stacks
        return self.controller.segment_all(items, seg, stacks, smooth_z=smooth)

    def cancel(self) -> None:
        self.controller.cancel()

    def _release(self) -> None:
        for entry in self._batch + ([self._job_entry] if self._job_entry else []):
            entry.busy = False
        self._batch, self._job_entry = [], None
        self.store.trim()
        self.state.job = None

    def _on_started(self, kind: str) -> None:
        self.state.job = Job(kind, cancel=self.cancel)
        self.started.emit()

    def _on_progress(self, done: int, total: int, text: str) -> None:
        if self.state.job is not None:
            self.state.job = replace(self.state.job, done=done, total=total, text=text)

    def _on_finished(self, seconds: float, device: str) -> None:
        entry = self._job_entry
        self._release()
        seg = self.models.segmenter
        if entry is not None and seg is not None:
            self.image_segmented.emit(self.models.spec, display_name(self.models.spec),
                                      description_of(self.model_metadata()), [c.name for c in seg.classes],
                                      entry.path)
        self.state.message.emit(f"Segmented in {seconds:.2f} s on {device}{self._objects_words(entry)}", 0)
        self.finished.emit(seconds, device)

    def _objects_words(self, entry) -> str:
        """"; 212 objects" after a model that separates objects, with the way to see them while
        Objects mode is off."""
        seg = self.models.segmenter
        if entry is None or entry.doc is None or getattr(seg, "instances", None) is None:
            return ""
        layer = entry.doc.objects
        if layer is not None:
            mode = self.a.objects_mode
            if mode.isChecked():
                return f"; {counted(layer.count, 'object')}"
            keys = mode.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            return f"; {counted(layer.count, 'object')} (Objects mode, {keys}, shows and measures them)"
        kept = entry.slide_objects
        count = kept.objects.count if kept is not None else 0
        return (f"; {counted(count, 'object')}, which Export writes (GeoJSON, ImageJ ROIs): editing objects is not "
                "available on whole-slide images")

    def _on_slide_objects(self, doc, objects) -> None:
        """A whole slide's model objects: kept with its entry for Export while the mask stays as segmented."""
        from gui.state.objects import ModelObjects

        entry = next((e for e in self.store if e.doc is doc), None)
        if entry is None:
            objects.close()
            return
        if entry.slide_objects is not None:
            entry.slide_objects.objects.close()
        entry.slide_objects = ModelObjects(objects, doc.history.position)

    def _on_failed(self, message: str) -> None:
        self._release()
        self.state.message.emit(f"Segmentation failed: {message}", 10000)
        dialogs.show_error(self.parent_widget, "Segmentation Failed", message)
        self.failed.emit(message)

    def _on_cancelled(self) -> None:
        batch = bool(self._batch)
        self._release()
        self.state.message.emit("Segment All stopped; masks already saved stay." if batch
                                else "Segmentation cancelled; the mask is as it was.", 8000)
        self.cancelled.emit()

    def _on_image_done(self, path, target, labels, objects=None) -> None:
        entry = self.store.get(path)
        if entry is None:
            return
        entry.has_mask_file = True
        if labels is None and entry.stack is not None:  # a stack: its planes in memory take the saved stack
            seg = self.models.segmenter
            if seg is not None and seg.classes and entry.stack.classes != list(seg.classes):
                entry.stack.set_classes(list(seg.classes))
            entry.stack.reload_mask(target, "segment", objects)  # objects: the objects stack written beside it
            entry.mask_source = target
            return
        doc = entry.doc
        if labels is not None and doc is not None:
            seg = self.models.segmenter
            classes = list(seg.classes) if seg is not None else []
            if classes and doc.classes != classes:
                doc.set_classes(classes)
            # the worker wrote exactly these labels (and objects) beside the image
            doc.apply_saved_labels(labels, "segment", objects=objects if doc.objects is not None else None)
            entry.mask_source = target

    def _on_batch_finished(self, done: int, total: int, seconds: float, device: str, errors: list) -> None:
        self._release()
        self.state.message.emit(f"Segmented {done} of {total} images in {seconds:.1f} s on {device}; "
                                "masks saved beside the images.", 0)
        if errors:
            more = f"\n… and {len(errors) - 10} more" if len(errors) > 10 else ""
            dialogs.show_error(self.parent_widget, "Segment All", f"{counted(len(errors), 'image')} could not be "
                               "segmented:\n\n" + "\n".join(errors[:10]) + more)
        self.segment_all_finished.emit(done, total)
