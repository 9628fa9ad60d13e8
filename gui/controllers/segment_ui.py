"""The window's side of segmentation: model choice, Segment / Segment All / Cancel, and what
the status bar and dialogs say about them.  The work itself is in gui.controllers.segmentation and
gui.controllers.model_loader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.masks import find_mask_for_image
from core.resources import BUILTIN_MODELS
from gui import dialogs
from gui.controllers.model_loader import ModelManager, builtin_status, model_label
from gui.menus.model_menu import ModelMenu
from gui.controllers.segmentation import SegmentationController

if TYPE_CHECKING:
    from PySide6.QtWidgets import QMenu

    from gui.state.image_store import ImageEntry
    from gui.main_window import MainWindow


class SegmentUi:
    def __init__(self, window: "MainWindow", model_menu: "QMenu"):
        self.w = window
        a = window.commands
        self.models = ModelManager(window.settings.model, window.settings.device, window)
        self.controller = SegmentationController(window)
        self.menu = ModelMenu(model_menu, a.load_weights, window, self.load_model, self.choose_device)
        self.menu.show_device(self.models.device)
        self.menu.tta.toggled.connect(lambda on: setattr(self.controller, "tta", on))
        self.menu.refine.toggled.connect(lambda on: setattr(self.controller, "refine", on))
        self.model_error: str | None = None
        self._segment_when_ready = False
        self._remember = True  # save the loaded model as the choice for the next start
        self._batch: list["ImageEntry"] = []
        self._job_entry: "ImageEntry | None" = None

        a.segment.triggered.connect(self.segment)
        a.segment_all.triggered.connect(self.segment_all)
        a.load_weights.triggered.connect(self.ask_weights)
        m, c = self.models, self.controller
        m.loading.connect(lambda label: window.status.set_model(f"Model: loading {label}…"))
        m.ready.connect(self._on_model_ready)
        m.failed.connect(self._on_model_failed)
        m.devices_ready.connect(self.menu.set_devices)
        m.warning.connect(lambda text: window.status.message(text, 10000))
        c.started.connect(self._on_started)
        c.progress.connect(window.status.show_progress)
        c.warning.connect(lambda text: window.status.message(text, 10000))
        c.finished.connect(self._on_finished)
        c.failed.connect(self._on_failed)
        c.cancelled.connect(self._on_cancelled)
        c.image_done.connect(self._on_image_done)
        c.batch_finished.connect(self._on_batch_finished)

    # -- model --------------------------------------------------------------------------------
    def start(self) -> None:
        """The startup load of the saved model: quiet when it is missing (the menu says why)."""
        settings = self.w.settings
        spec = settings.model
        if spec in BUILTIN_MODELS and not builtin_status(spec)[0]:
            installed = [n for n in BUILTIN_MODELS if builtin_status(n)[0]]
            spec = installed[0] if installed else spec  # another built-in beats none at all
        self.models.device = settings.device
        self._remember = False  # a fallback is not the user's choice: keep the saved one
        self.models.load(spec, settings.device, interactive=False, fallback=True)

    def load_model(self, spec: Any) -> None:
        self._remember = True
        self.models.load(str(spec), interactive=True)

    def ask_weights(self) -> None:
        path = dialogs.ask_weights_path(self.w, self.w.settings.last_folder)
        if path is not None:
            self.load_model(path)

    def choose_device(self, device: str) -> None:
        self.w.settings.device = device
        self.models.device = device
        if self.models.segmenter is not None and self.models.spec != "custom":
            self.models.load(self.models.spec, device, interactive=True)

    def _on_model_ready(self, seg: Any) -> None:
        self.model_error = None
        spec = self.models.spec
        if spec != "custom":
            if self._remember:
                self.w.settings.model = spec
            self.menu.show_model(spec)
        self.menu.show_device(self.models.device)
        self.menu.show_model_defaults(seg)
        classes = list(getattr(seg, "classes", []) or [])
        if classes:
            self.w.class_template = classes
            doc = self.w.document
            if doc is not None and doc.classes != classes and not doc.preview_active \
                    and not doc.labels.any():
                doc.set_classes(classes)  # an empty mask takes the model's classes right away
        describe = seg.describe() if hasattr(seg, "describe") else str(spec)
        self.w.status.set_model(f"Model: {model_label(spec)} · {seg.device}", describe)
        self.w.status.message(f"Model ready: {describe}", 5000)
        self.w.model_ready.emit(describe)
        if self._segment_when_ready:
            self._segment_when_ready = False
            self.segment()

    def _on_model_failed(self, message: str, interactive: bool) -> None:
        self.model_error = message
        if self.models.segmenter is not None:
            self.menu.show_model(self.models.spec)
            self.w.status.set_model(f"Model: {model_label(self.models.spec)} · {self.models.segmenter.device}")
        else:
            self.w.status.set_model("No model", message)
        self.w.status.message(message, 10000)
        waiting, self._segment_when_ready = self._segment_when_ready, False
        if interactive or waiting:
            dialogs.show_error(self.w, "Could Not Load Model", self._no_model_text() if waiting else message)
        self.w.model_failed.emit(message)

    def _no_model_text(self) -> str:
        if self.model_error:
            reason = self.model_error
        elif self.models.spec in BUILTIN_MODELS and not builtin_status(self.models.spec)[0]:
            reason = builtin_status(self.models.spec)[1]
        else:
            reason = "No model is loaded."
        return (f"{reason}\n\nTo segment, load a weights file (.safetensors or .pt) with "
                "Model > Load Weights… (Ctrl+L).")

    def _segmenter_or_explain(self, want_later: bool) -> Any:
        seg = self.models.segmenter
        if seg is not None:
            return seg
        if self.models.is_loading and want_later:
            self._segment_when_ready = True
            self.w.status.message("The model is still loading; segmentation starts when it is ready.")
            return None
        dialogs.show_error(self.w, "No Model", self._no_model_text())
        return None

    # -- jobs ---------------------------------------------------------------------------------
    def segment(self) -> bool:
        entry = self.w.store.current
        if entry is None or entry.doc is None or entry.image is None:
            self.w.status.message("Open an image to segment.", 5000)
            return False
        if self.w.job_running:
            return False
        seg = self._segmenter_or_explain(want_later=True)
        if seg is None:
            return False
        entry.busy, self._job_entry = True, entry
        return self.controller.segment(entry.doc, entry.image.rgb, seg)

    def segment_all(self) -> bool:
        entries = list(self.w.store)
        if not entries or self.w.job_running:
            return False
        seg = self._segmenter_or_explain(want_later=False)
        if seg is None:
            return False
        have = [e for e in entries if e.dirty or e.has_mask_file or find_mask_for_image(e.path)]
        if have:
            answer = dialogs.ask_overwrite_skip_cancel(self.w, len(have), len(entries))
            if answer == "cancel":
                return False
            if answer == "skip":
                entries = [e for e in entries if e not in have]
        if not entries:
            self.w.status.message("Every image already has a mask; nothing to segment.", 5000)
            return False
        for entry in entries:
            entry.busy = True
        self._batch = entries
        items = [(e.path, self.w.saver.save_target(e)) for e in entries]
        return self.controller.segment_all(items, seg)

    def cancel(self) -> None:
        self.controller.cancel()

    def _release(self) -> None:
        for entry in self._batch + ([self._job_entry] if self._job_entry else []):
            entry.busy = False
        self._batch, self._job_entry = [], None
        self.w.store.trim()
        self.w.job_state_changed()

    def _on_started(self, kind: str) -> None:
        self.w.job_state_changed()
        self.w.status.show_progress(0, 0, "Starting…")
        self.w.segmentation_started.emit()

    def _on_finished(self, seconds: float, device: str) -> None:
        self._release()
        self.w.status.message(f"Segmented in {seconds:.2f} s on {device}", 0)
        self.w.segmentation_finished.emit(seconds, device)

    def _on_failed(self, message: str) -> None:
        self._release()
        self.w.status.message(f"Segmentation failed: {message}", 10000)
        dialogs.show_error(self.w, "Segmentation Failed", message)
        self.w.segmentation_failed.emit(message)

    def _on_cancelled(self) -> None:
        batch = bool(self._batch)
        self._release()
        self.w.status.message("Segment All stopped; masks already saved stay." if batch
                              else "Segmentation cancelled; the mask is as it was.", 8000)
        self.w.segmentation_cancelled.emit()

    def _on_image_done(self, path, target, labels) -> None:
        entry = self.w.store.get(path)
        if entry is None:
            return
        entry.has_mask_file = True
        doc = entry.doc
        if doc is not None:
            classes = list(getattr(self.models.segmenter, "classes", []) or [])
            if classes and doc.classes != classes:
                doc.set_classes(classes)
            doc.apply_labels(labels, "segment")
            doc.mark_saved()  # the worker wrote exactly these labels to the mask file
            entry.mask_source = target
        self.w.file_panel.refresh(entry)

    def _on_batch_finished(self, done: int, total: int, seconds: float, device: str, errors: list) -> None:
        self._release()
        self.w.status.message(f"Segmented {done} of {total} images in {seconds:.1f} s on {device}; "
                              "masks saved beside the images.", 0)
        if errors:
            more = f"\n… and {len(errors) - 10} more" if len(errors) > 10 else ""
            dialogs.show_error(self.w, "Segment All", f"{len(errors)} image(s) could not be "
                               "segmented:\n\n" + "\n".join(errors[:10]) + more)
        self.w.segment_all_finished.emit(done, total)
