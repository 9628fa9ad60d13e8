"""Live Training in the app: train from the user's strokes while they paint, and keep the view's
prediction fresh.

One action turns it on for the shown image and every other listed image with strokes.  The
trainer runs on a worker (gui.jobs.live_trainer); the strokes it learns from follow the user's
painting a moment after each stroke.  Each snapshot it publishes joins the history and asks
for a prediction of the region in view (gui.jobs.live_preview), as does moving the view; a
result whose region has left the view, or whose image is no longer shown, is dropped.  Roll
back, Apply to Image (one undo step) and Save Model act on the checkpoint the history marks.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget

from core.classes import complete_classes
from core.document.editing import Box
from core.document.strokes import read_strokes
from core.io.plane_view import PlaneView
from core.io.mask_naming import strokes_path
from gui import dialogs
from gui.infra.workers import Task, start_task
from gui.jobs.live_preview import PreviewRunner, view_request
from gui.jobs.live_trainer import LiveRunner, save_snapshot
from gui.jobs.model_loader import ModelManager
from gui.state.app_state import AppState, Tool
from gui.state.image_store import ImageEntry, path_key
from gui.state.planes import plane_text
from gui.state.live import FROM_MODEL, FROM_SCRATCH, HistoryRow, Prediction

KEEP_CHECKPOINTS = 30  # the history keeps this many (each is a full copy of the weights)
STROKES_DELAY_MS = 400  # new strokes reach the trainer this long after the last one
VIEW_DELAY_MS = 250  # a moved view is predicted once it rests this long
APPLY_VIEW_PIXELS = 16 * 10**6  # Apply on a whole slide writes the view: at most this many pixels


class LiveTrainingUi(QObject):
    """``view()`` returns (the region in view, screen pixels per image pixel)."""

    applied = Signal()  # Apply to Image wrote the mask (tests and scripts wait on it)
    preview_shown = Signal(object)  # a Prediction reached the view

    def __init__(self, state: AppState, parent: QWidget, toggle: QAction, uncertainty: QAction,
                 models: ModelManager, view: Callable[[], tuple[Box, float]]):
        super().__init__(parent)
        self.state, self.live, self.store, self.parent_widget = state, state.live, state.store, parent
        self.models, self._view = models, view
        self.config_changes: dict[str, Any] = {}  # LiveConfig fields to override (tests, benches)
        self.trainer = LiveRunner(self)
        self.preview = PreviewRunner(self)
        self.preview_seconds: list[float] = []  # request-to-view latencies of shown predictions
        self._apply_task: Task | None = None
        self._disk: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # strokes of images not in memory
        self._images: dict[str, np.ndarray] = {}  # pixels of images with strokes the store dropped
        self._default_known = False
        self._top = 0  # the highest class id the running trainer knows
        self._toggle, self._uncertainty = toggle, uncertainty
        self._strokes_timer = self._timer(STROKES_DELAY_MS, self._send_strokes)
        self._view_timer = self._timer(VIEW_DELAY_MS, self.refresh_view)

        toggle.toggled.connect(self.set_on)
        uncertainty.toggled.connect(lambda on: setattr(self.live, "show_uncertainty", on))
        self.live.events.on.connect(lambda on: toggle.setChecked(on))
        self.live.events.show_uncertainty.connect(lambda on: uncertainty.setChecked(on))
        self.trainer.snapshot.connect(self._on_snapshot)
        self.trainer.failed.connect(self._on_failed)
        self.trainer.ended.connect(self._on_ended)
        self.preview.ready.connect(self._on_prediction)
        self.preview.failed.connect(lambda text: self._say(f"The preview failed: {text}"))
        state.strokes.history_changed.connect(self._on_strokes)
        self.store.current_changed.connect(self._on_image)
        state.planes.events.plane.connect(self._on_image)  # another plane of a stack: its own preview

    def _timer(self, ms: int, slot) -> QTimer:
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(ms)
        timer.timeout.connect(slot)
        return timer

    def _say(self, text: str, ms: int = 8000) -> None:
        self.live.status = text
        self.state.message.emit(text, ms)

    # -- on and off ---------------------------------------------------------------------------
    def default_start(self) -> str:
        """Where training starts unless the user chose: what i21core's LiveConfig measured best."""
        from core.training.live import LiveConfig

        return FROM_MODEL if LiveConfig().init else FROM_SCRATCH

    def choose_start(self, start_from: str) -> None:
        self._default_known = True
        self.live.start_from = start_from

    def set_on(self, on: bool) -> None:
        if on == self.live.on:
            return
        if on:
            self.trainer.shutdown()  # turned off a moment ago: its last step ends first
            self.start()
        else:
            self.stop()

    def start(self) -> bool:
        """Turn Live Training on; False (and one sentence in the panel) when it cannot start."""
        if self.trainer.running:
            return True
        if not self._default_known:
            self._default_known = True
            self.live.start_from = self.default_start()
        self._disk.clear()  # files are read once per session: strokes saved since are read again
        self._images.clear()
        try:
            config = self._config()
            items, used = self.training_items()
            if not items:
                raise ValueError("There are no strokes to learn from: choose the Stroke tool (S) and paint a "
                                 "few strokes of at least two classes.")
            top = max(int(labels[labels != 255].max()) for _, labels in items)
            classes = [c for c in self.state.known_classes() if c.id <= top]  # the annotated ids decide
            self._top = top
            self.trainer.start(config, classes, items, [name for name, _ in used])
        except (ValueError, RuntimeError, OSError, MemoryError) as exc:
            self.live.on = False
            self._toggle.setChecked(False)
            self._say(f"Live Training cannot start: {exc}", 12000)
            return False
        self.live.on, self.live.held = True, False
        where = ("scratch" if not config.init else "the current model" if self.models.segmenter is not None
                 else f"the built-in model {Path(config.init).name}")
        self._say(f"Training from {where} on {sum(n for _, n in used)} annotated pixels in {len(used)} "
                  "image(s)… the view updates with each checkpoint.")
        if self.state.tool not in (Tool.STROKE, Tool.STROKE_ERASER):
            self.state.tool = Tool.STROKE
        return True

    def _config(self):
        from core.training.live import LiveConfig

        config = LiveConfig()
        init = None
        if self.live.start_from == FROM_MODEL:
            seg = self.models.segmenter
            if seg is None:  # nothing loaded: the start LiveConfig measured best (a built-in model)
                if config.init is None:
                    raise ValueError("no model is loaded to start from; load one, or start from scratch")
                return dataclasses.replace(config, **self.config_changes) if self.config_changes else config
            path = seg.checkpoint.path if seg.checkpoint is not None else None
            init = self.models.spec if self.models.spec != "custom" else (str(path) if path else None)
            if init is None:
                raise ValueError("the current model did not come from a weights file; start from scratch")
            config = dataclasses.replace(config, init=init, arch=seg.arch or config.arch)
        else:
            config = dataclasses.replace(config, init=None)
        return dataclasses.replace(config, **self.config_changes) if self.config_changes else config

    def stop(self) -> None:
        """Turn it off: training stops (the history stays, to roll back, apply or save)."""
        self._strokes_timer.stop()
        self.trainer.stop()
        self.live.on, self.live.held = False, False
        if self.live.history:
            self._say("Live Training is off. Apply to Image or Save Model keep what it learned.")

    def hold(self, on: bool) -> None:
        self.trainer.hold(on)
        self.live.held = bool(on) and self.live.on
        if self.live.on:
            self._say("Paused: no training steps until you resume." if on else "Training again…")

    def shutdown(self) -> None:
        """The window closes: stop and wait for every worker."""
        self._strokes_timer.stop()
        self._view_timer.stop()
        self.trainer.shutdown()
        self.preview.shutdown()
        if self._apply_task is not None:
            self._apply_task.cancel()
            self._apply_task.wait()
            self._apply_task = None
        self.live.on = False

    def _on_failed(self, message: str) -> None:
        self._say(f"Live Training stopped: {message}", 15000)

    def _on_ended(self) -> None:
        self.live.on, self.live.held = False, False

    # -- what it learns from ------------------------------------------------------------------
    def training_items(self) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[tuple[str, int]]]:
        """(pixels, strokes) of each listed image with strokes, and (name, annotated pixels) of
        each: the shown image's strokes as painted, the others' from memory or their files."""
        items, used = [], []
        for entry in self.store:
            pairs = self._plane_items(entry) if entry.stack is not None else [(entry.name, self._item(entry))]
            for name, pair in pairs:  # a stack: each annotated plane is a 2-D item
                n = int(np.count_nonzero(pair[1] != 255)) if pair is not None else 0
                if n:
                    items.append(pair)
                    used.append((name, n))
        return items, used

    def _plane_items(self, entry: ImageEntry) -> list[tuple[str, tuple[np.ndarray, np.ndarray]]]:
        """(name, (pixels, strokes)) of each plane of a stack with strokes; a plane's pixels are read
        once per session (the view's: an 8-bit photo's RGB, else the raw channels, as training_pixels)."""
        stack, out = entry.stack, []
        for plane in stack.annotated_planes():
            key = f"{path_key(entry.path)}#{plane}"
            if key not in self._images:
                self._images[key] = entry.plane_pixels.get(plane)
            out.append((f"{entry.name} {plane_text(stack.plane_axes, plane)}",
                        (self._images[key], stack.strokes_plane(plane).copy())))
        return out

    def _item(self, entry: ImageEntry) -> tuple[np.ndarray, np.ndarray] | None:
        if entry.source is not None:
            return None  # a whole slide: strokes are painted on images that fit in memory
        strokes = entry.strokes
        if strokes is not None and entry.image is not None:
            from core.training.raw_input import training_pixels  # torch: imported when training starts

            return training_pixels(entry.image), strokes.labels.copy()
        if strokes is not None and strokes.is_blank:
            return None
        key = path_key(entry.path)
        if strokes is None:
            path = strokes_path(entry.path)
            if not path.is_file():
                return None
            if key not in self._disk:
                rgb = self._pixels(entry)
                self._disk[key] = (rgb, read_strokes(path, rgb.shape[:2]))
            return self._disk[key]
        return self._pixels(entry), strokes.labels.copy()  # strokes in memory, image dropped from the cache

    def _pixels(self, entry: ImageEntry) -> np.ndarray:
        """An image the store no longer holds, decoded once per Live Training session."""
        from core.io.images import load_image

        key = path_key(entry.path)
        if key not in self._images:
            from core.training.raw_input import training_pixels

            self._images[key] = training_pixels(load_image(entry.path))
        return self._images[key]

    def _on_strokes(self) -> None:
        if self.trainer.running:
            self._strokes_timer.start()

    def _send_strokes(self) -> None:
        if not self.trainer.running:
            return
        try:
            items, used = self.training_items()
            top = max((int(labels[labels != 255].max()) for _, labels in items), default=0)
            if top > self._top:
                raise ValueError(f"class {top} is new since Live Training started; turn it off and on again "
                                 "to learn it")
            self.trainer.set_data(items, [name for name, _ in used])
        except (ValueError, OSError) as exc:
            self._say(f"Training continues on the earlier strokes: {exc}")
            return
        self.live.status = f"Training on {sum(n for _, n in used)} annotated pixels in {len(used)} image(s)…"

    # -- the history --------------------------------------------------------------------------
    def _on_snapshot(self, snapshot: Any) -> None:
        rows = self.live.history + (HistoryRow(snapshot),)
        self.live.history = rows[-KEEP_CHECKPOINTS:]
        self.live.current = int(snapshot.index)
        score = "" if snapshot.held_out_miou is None else f", held-out mIoU {snapshot.held_out_miou:.2f}"
        self.live.status = (f"Checkpoint #{snapshot.index} after {snapshot.seconds:.0f} s ({snapshot.steps} steps, "
                            f"loss {snapshot.loss:.3f}{score}).")
        self.refresh_view()

    def roll_back(self, index: int) -> bool:
        """Continue from the kept checkpoint ``index`` (an undo for training)."""
        row = self.live.row(index)
        if row is None:
            return False
        self.trainer.roll_back(row.snapshot)
        self.live.current = row.index
        self.preview.forget()  # a prediction of a later checkpoint would not show this one
        self._say(f"Rolled back to checkpoint #{row.index}; training continues from it." if self.trainer.running
                  else f"Rolled back to checkpoint #{row.index}.")
        self.refresh_view()
        return True

    def _current_row(self) -> HistoryRow | None:
        return self.live.row(self.live.current) or self.live.newest

    # -- the view -----------------------------------------------------------------------------
    def view_moved(self, _box=None) -> None:
        if self.live.history:
            self._view_timer.start()

    def _on_image(self, _entry) -> None:
        self.preview.forget()
        self.live.prediction = None
        self.view_moved()

    def refresh_view(self) -> None:
        """Ask for the region in view from the checkpoint the history marks."""
        row, entry = self._current_row(), self.store.current
        if row is None or entry is None or not entry.shown:
            return
        pixels = entry.source if entry.source is not None else entry.image  # the preview picks the view (image_of)
        if entry.stack is not None:  # the plane in view
            pixels = PlaneView(entry.source, entry.stack.plane, entry.plane_pixels.lock)
        size = (entry.source.height, entry.source.width) if entry.source is not None else entry.image.rgb.shape[:2]
        box, scale = self._view()
        request = view_request(entry.view_key, pixels, row.snapshot, box, scale, size)
        if request is not None:
            self.preview.request(request)

    def _on_prediction(self, prediction: Prediction, seconds: float) -> None:
        entry = self.store.current
        if entry is None or entry.view_key != prediction.image or prediction.box.intersect(self._view()[0]).is_empty \
                or prediction.snapshot > self.live.current:
            self.preview.dropped += 1  # no longer in view, or from beyond a roll back
            return
        self.preview_seconds.append(seconds)
        self.live.prediction = prediction
        self.preview_shown.emit(prediction)

    # -- finishing ----------------------------------------------------------------------------
    def apply(self) -> bool:
        """Segment the shown image with the marked checkpoint; the mask takes it as one undo step.
        On a whole slide, the region in view is segmented at full resolution (up to APPLY_VIEW_PIXELS)."""
        row, entry = self._current_row(), self.store.current
        if row is None or entry is None or entry.doc is None or self._apply_task is not None:
            return False
        doc, checkpoint, box = entry.doc, row.snapshot.checkpoint, None
        if entry.stack is not None:  # the plane in view, scaled as Segment Stack scales the stack
            plane, source = PlaneView(entry.source, entry.stack.plane, entry.plane_pixels.lock), entry.source
            read = lambda seg: (plane.read_raw if seg.reads_raw else plane.read)(0, plane.height, 0, plane.width)  # noqa: E731
            stats = lambda seg: seg.source_statistics(source)  # noqa: E731
        elif entry.source is not None:
            box, source = self._view()[0], entry.source
            if box.area > APPLY_VIEW_PIXELS:
                self._say(f"Zoom in to apply: on a whole slide Apply writes the region in view, and this one "
                          f"is {box.width}x{box.height} pixels (at most {APPLY_VIEW_PIXELS // 10**6} Mpx).")
                return False
            read = lambda seg: (source.read_raw if seg.reads_raw else source.read)(  # noqa: E731
                box.y0, box.y1, box.x0, box.x1)
            stats = lambda seg: seg.source_statistics(source)  # noqa: E731
        else:
            image = entry.image
            read = lambda seg: seg.image_of(image)  # noqa: E731
            stats = lambda seg: None  # noqa: E731

        def run(_rep):
            from core.segment.inference import Segmenter

            seg = Segmenter(checkpoint, device="cpu")
            return seg.segment(read(seg), tta=False, refine=False, stats=stats(seg)), list(seg.classes)

        task = self._apply_task = start_task(run, "live-apply")
        task.finished.connect(lambda result: self._applied(task, doc, result, box))
        task.failed.connect(lambda text: self._applied(task, doc, None, None, text))
        task.cancelled.connect(lambda: self._applied(task, doc, None, None))
        where = entry.name if box is None else f"the view of {entry.name}"
        self._say(f"Applying checkpoint #{row.index} to {where}…", 4000)
        return True

    def _applied(self, task: Task, doc, result, box: Box | None, message: str | None = None) -> None:
        if task is not self._apply_task:
            return
        self._apply_task = None
        if result is None:
            if message:
                self._say(f"Apply to Image failed: {message}")
            return
        labels, classes = result
        merged = complete_classes(doc.classes, classes, top=int(labels.max()) if labels.size else 0)
        if merged != doc.classes:
            doc.set_classes(merged)
        if box is None:
            doc.apply_labels(labels, "live training")
        else:  # a chunked mask: the view's region, one undo step
            doc.paste_region(box.y0, box.x0, labels)
            doc.commit_preview("live training")
        self._say("The prediction is now the mask (Undo takes it back).")
        self.applied.emit()

    def save(self, path: Path | None = None) -> Path | None:
        """Save the marked checkpoint (asks where unless ``path``), with its classes and a record
        of the images and annotated pixels that trained it."""
        row = self._current_row()
        if row is None:
            return None
        if path is None:
            folder = self.state.folder or (self.store.current.path.parent if self.store.current else Path.home())
            path = dialogs.ask_model_save_path(self.parent_widget, Path(folder) / "live-model.safetensors",
                                               "Save Live Training Model")
            if path is None:
                return None
        _items, used = self.training_items()
        try:
            save_snapshot(row.snapshot, path, used)
        except (OSError, ValueError) as exc:
            dialogs.show_error(self.parent_widget, "Could Not Save the Model", str(exc))
            return None
        self._say(f"Saved checkpoint #{row.index} to {path} (Model > Load Weights uses it).")
        return path
