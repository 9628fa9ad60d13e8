"""Live Training in the app: train from the user's strokes while they paint, and keep the view's
prediction fresh.

One action turns it on for the shown image and every other listed image with strokes.  The
trainer runs on a worker (gui.jobs.live_trainer); the strokes it learns from follow the user's
painting a moment after each stroke (a class painted for the first time joins the running
training).  On a whole slide it learns from the tiles under the strokes only, at the pyramid level
the user picks in the panel (core.training.slide_strokes), read on a worker (gui.jobs.slide_items),
and the view and Apply predict at that level: the scale the model learnt.  Each checkpoint it
publishes joins the history; the *marked* one (gui.state.live:
keyed on its session-wide uid, kept marked until the user rolls back or a better-scored one
arrives) is what the view predicts (gui.jobs.live_preview), as does moving the view, and what
Apply to Image (one undo step) and Save Model use.  A result whose region has left the view,
whose image is no longer shown, or whose checkpoint the user rolled back from, is dropped.  Warnings
stay in the panel until what they are about is resolved, and reach the status bar once.
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
from gui.jobs.live_objects import LiveObjects
from gui.jobs.live_preview import PreviewRunner, view_request
from gui.jobs.live_trainer import LiveRunner, save_snapshot
from gui.jobs.slide_items import SlideItemsReader
from gui.jobs.model_loader import ModelManager
from gui.state.app_state import AppState, Tool
from gui.state.image_store import ImageEntry, path_key
from gui.state.live import NONE, FROM_MODEL, FROM_SCRATCH, HistoryRow, Prediction, best_of_runs, better, trimmed
from gui.state.planes import plane_text
from gui.state.stack_loading import plane_image

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
        self.objects = LiveObjects()  # painted objects: what a run learns then (gui.jobs.live_objects)
        self.slides = SlideItemsReader(self)  # the tiles under the strokes of whole slides
        self.preview_seconds: list[float] = []  # request-to-view latencies of shown predictions
        self._apply_task: Task | None = None
        self._disk: dict[str, tuple[Any, np.ndarray]] = {}  # strokes of images not in memory
        self._disk_slides: dict[str, tuple[Any, Any] | None] = {}  # (source, strokes) of slides not in memory
        self._images: dict[str, Any] = {}  # images with strokes the store dropped (LoadedImage)
        self._default_known = False
        self._classes: list = []  # the class list the running trainer was given
        self._runs: dict[int, int] = {}  # core's run id -> the run's number in this window (1, 2, ...)
        self._warnings: dict[str, str] = {}  # what each open warning is about -> its text
        self._said: set[str] = set()  # warnings already shown in the status bar (once each)
        self._unreadable: dict[tuple[str, int], str] = {}  # (image, run) the model cannot read -> why
        self._failed_views: set[tuple[str, int]] = set()  # (image, uid) whose preview failed: not asked again
        self._choices = 0  # roll backs so far: a prediction asked before the latest one is not shown
        self._branch = 0  # the running trainer's branch after the user's latest roll back (core's LiveSnapshot.branch)
        self._named_best: dict[int, int] = {}  # run number -> the best uid its trainer named last
        self._asked: dict[int, int] = {}  # uid -> self._choices when its prediction was asked
        self._levels: dict[str, int] = {}  # slide -> the pyramid level its strokes are trained at
        self._starting: Any = None  # the LiveConfig of a start waiting for the slides' tiles
        self._image_of: dict[str, str] = {}  # a slide item's name -> its slide's (counts of images)
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
        self.preview.failed.connect(self._on_preview_failed)
        self.preview.unreadable.connect(self._on_unreadable)
        self.slides.ready.connect(self._on_slide_items)
        state.events.brush_size.connect(self._on_brush)
        state.strokes.history_changed.connect(self._on_strokes)
        state.document.objects_changed.connect(self._on_strokes)  # painted objects are training data too
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

    # -- warnings: shown until resolved, said in the status bar once ---------------------------
    def _warn(self, about: str, text: str) -> None:
        self._warnings[about] = text
        self._show_warnings()
        if text not in self._said:
            self._said.add(text)
            self.state.message.emit(text, 15000)

    def _resolve(self, about: str) -> None:
        if self._warnings.pop(about, None) is not None:
            self._show_warnings()

    def _show_warnings(self) -> None:
        self.live.warning = "\n".join(self._warnings.values())

    # -- on and off ---------------------------------------------------------------------------
    def default_start(self) -> str:
        """Where training starts unless the user chose: what i21core's LiveConfig measured best."""
        from core.training.live import LiveConfig

        return FROM_MODEL if LiveConfig().init else FROM_SCRATCH

    def choose_start(self, start_from: str) -> None:
        self._default_known = True
        self.live.start_from = start_from

    def set_on(self, on: bool) -> None:
        if not on and self._starting is not None:  # still reading the tiles under a slide's strokes
            self._starting = None
            self._say("Live Training did not start.")
            return
        if on == self.live.on:
            return
        if on:
            self.trainer.shutdown()  # turned off a moment ago: its last step ends first
            self.start()
        else:
            self.stop()

    def start(self) -> bool:
        """Turn Live Training on; False (and one sentence in the panel) when it cannot start.  With
        strokes on a whole slide it starts once the tiles under them are read (on a worker)."""
        if self.trainer.running or self._starting is not None:
            return True
        if not self._default_known:
            self._default_known = True
            self.live.start_from = self.default_start()
        self._disk.clear()  # files are read once per session: strokes saved since are read again
        self._close_disk_slides()
        self._images.clear()
        try:
            config = self._config()
        except ValueError as exc:
            return self._not_started(exc)
        if self._follow_slides():
            self._starting = config
            self.live.status = "Reading the tiles under the strokes of the slide…"
            self.slides.read()
            return True
        return self._start_with(config)

    def _not_started(self, exc: Exception) -> bool:
        self.live.on = False
        self._toggle.setChecked(False)
        self._say(f"Live Training cannot start: {exc}", 12000)
        return False

    def _start_with(self, config) -> bool:
        try:
            items, used, classes, objects, scale_by = self._training_data()
            if not items:
                raise ValueError(" ".join(self.slides.errors.values()) or (
                    "There are no strokes to learn from: choose the Stroke tool (S) and paint a few strokes "
                    "of at least two classes (or paint objects in Objects mode)."))
            # every class the user has: one painted for the first time joins the running training
            self._classes = classes
            self.trainer.start(config, self._classes, items, [name for name, _ in used], scale_by)
            self._learning(objects)
        except (ValueError, RuntimeError, OSError, MemoryError) as exc:
            return self._not_started(exc)
        self._resolve("training")
        self._resolve("strokes")
        self._left_out()
        self._slide_warnings()
        self.live.on, self.live.held, self.live.pinned = True, False, False  # a new run: its checkpoints show
        self._branch = 0
        self._say(f"Training from {self._start_words(config)} on {sum(n for _, n in used):,} annotated pixels in "
                  f"{self._images_in(used)} (once there are enough strokes, some are held out to score the checkpoints "
                  "and are not trained on)… the view updates with each checkpoint.")
        if self.state.tool not in (Tool.STROKE, Tool.STROKE_ERASER) and not Tool(self.state.tool).edits_objects:
            self.state.tool = Tool.STROKE  # (painting objects teaches it too: the Objects mode's tools stay)
        return True

    def _training_data(self):
        """(items, used, the trainer's classes, ObjectData or None, scale_by): the painted objects'
        targets when a listed image has objects (gui.jobs.live_objects), else the strokes' classes
        (with the tiles under a whole slide's strokes, ``scale_by`` naming the slide of each)."""
        known = self.state.known_classes()
        objects = self.objects.gather(self.store, self._item, self._pixels, self._start_reads_raw(), known)
        if objects is None:
            items, used, scale_by = self._stroke_data()
            return items, used, known, None, scale_by
        return objects.items, objects.used, objects.classes, objects, {}

    def _learning(self, objects) -> None:
        """The running trainer learns ``objects`` (None: the strokes' classes); the panel says what."""
        self.objects.data = objects
        self.live.learns = "" if objects is None else "Learning to separate " + objects.describe(self.state.known_classes())

    def _start_words(self, config) -> str:
        """Where the weights really started, as the trainer reports it (core's LiveTrainer.started_from:
        a model that cannot take the images' channels is not what training started from)."""
        start = self.trainer.started_from
        if start is None:  # a trainer that does not say: the configuration's
            start = "scratch" if not config.init else f"the built-in model {Path(config.init).name}"
        if start != "scratch" and self.live.start_from == FROM_MODEL and self.models.segmenter is not None:
            return f"the current model ({start})"
        return start

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
        self._starting = None
        self.trainer.stop()
        self.live.on, self.live.held = False, False
        self._resolve("strokes")
        self._resolve("images")
        self._resolve("slides")
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
        self._starting = None
        self.trainer.shutdown()
        self.preview.shutdown()
        self.slides.shutdown()
        self._close_disk_slides()
        if self._apply_task is not None:
            self._apply_task.cancel()
            self._apply_task.wait()
            self._apply_task = None
        self.live.on = False

    def _on_failed(self, message: str) -> None:
        self._warn("training", f"Live Training stopped: {message}")

    def _on_ended(self) -> None:
        self.live.on, self.live.held = False, False

    # -- what it learns from ------------------------------------------------------------------
    def training_items(self) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[tuple[str, int]]]:
        """(pixels, strokes) of each listed image with strokes, and (name, annotated pixels) of
        each: the shown image's strokes as painted, the others' from memory or their files, and a
        whole slide's as the tiles under its strokes (one item per group of stroked tiles, as last
        read by ``slides``).  The pixels follow the training rule for the whole set (core.training.raw_input)."""
        items, used, _scale_by = self._stroke_data()
        return items, used

    def _stroke_data(self):
        """``training_items`` and, for the slides' items, the slide each was cut from (LiveTrainer's
        ``scale_by``: raw channels are scaled by the slide's statistics, as segmenting it does)."""
        from core.training.raw_input import is_photo, trainer_pixels  # torch: imported when training starts

        items, used = [], []
        for entry in self.store:
            pairs = self._plane_items(entry) if entry.stack is not None else [(entry.name, self._item(entry))]
            for name, pair in pairs:  # a stack: each annotated plane is a 2-D item
                n = int(np.count_nonzero(pair[1] != 255)) if pair is not None else 0
                if n:
                    items.append(pair)
                    used.append((name, n))
        cut, scale_by = [], {}
        for entry in self.store:
            found, slide = self.slides.items.get(path_key(entry.path)), self._slide_of(entry)
            if found is None or slide is None:
                continue
            for pair, name in zip(found.items, found.names):
                cut.append(pair)
                used.append((name, int(np.count_nonzero(pair[1] != 255))))
                scale_by[name] = slide[0]
                self._image_of[name] = entry.name
        raw = self._start_reads_raw() or any(not is_photo(px) for px, _ in cut)
        pixels = trainer_pixels([image for image, _ in items], raw)
        return [(px, labels) for px, (_, labels) in zip(pixels, items)] + cut, used, scale_by

    def _images_in(self, used: list[tuple[str, int]]) -> str:
        """"3 images": the images (a slide counts once, whatever its items) of ``used``."""
        return _images(len({self._image_of.get(name, name) for name, _ in used}))

    def _start_reads_raw(self) -> bool:
        seg = self.models.segmenter
        return self.live.start_from == FROM_MODEL and seg is not None and bool(getattr(seg, "reads_raw", False))

    def _plane_items(self, entry: ImageEntry) -> list[tuple[str, tuple[Any, np.ndarray]]]:
        """(name, (image, strokes)) of each plane of a stack with strokes, the image a TrainingImage
        of the plane (its raw pixels and 8-bit view), read once per session."""
        stack, out = entry.stack, []
        for plane in stack.annotated_planes():
            key = f"{path_key(entry.path)}#{plane}"
            if key not in self._images:
                self._images[key] = plane_image(entry, plane)
            out.append((f"{entry.name} {plane_text(stack.plane_axes, plane)}",
                        (self._images[key], stack.strokes_plane(plane).copy())))
        return out

    def _item(self, entry: ImageEntry) -> tuple[Any, np.ndarray] | None:
        if entry.source is not None:
            return None  # a whole slide: the tiles under its strokes (_training_data)
        strokes = entry.strokes
        if strokes is not None and entry.image is not None:
            return entry.image, strokes.labels.copy()
        if strokes is not None and strokes.is_blank:
            return None
        key = path_key(entry.path)
        if strokes is None:
            path = strokes_path(entry.path)
            if not path.is_file():
                return None
            if key not in self._disk:
                image = self._pixels(entry)
                self._disk[key] = (image, read_strokes(path, image.pixels.shape[:2]))
            return self._disk[key]
        return self._pixels(entry), strokes.labels.copy()  # strokes in memory, image dropped from the cache

    def _pixels(self, entry: ImageEntry):
        """An image the store no longer holds, decoded once per Live Training session."""
        from core.io.images import load_image

        key = path_key(entry.path)
        if key not in self._images:
            self._images[key] = load_image(entry.path)
        return self._images[key]

    def _on_strokes(self) -> None:
        if self.trainer.running:
            self._strokes_timer.start()

    def _send_strokes(self) -> None:
        if not self.trainer.running:
            return
        if self._follow_slides():
            self.slides.read()  # the slides' new items, then _send_now
            return
        self._send_now()

    def _send_now(self) -> None:
        if not self.trainer.running:
            return
        if self.slides.errors:  # a slide's strokes cannot be read at its level: nothing new is sent
            self._warn("strokes", f"Training continues on the earlier strokes: {' '.join(self.slides.errors.values())}")
            return
        try:
            items, used, classes, objects, scale_by = self._training_data()
            if self.objects.needs_restart(objects):
                self._restart(objects)
                return
            grown = [c for c in classes if c.id not in {k.id for k in self._classes}]
            self.trainer.set_data(items, [name for name, _ in used], classes if grown else None, scale_by)
            self._classes = classes
            self._learning(objects)
        except (ValueError, OSError) as exc:
            self._warn("strokes", f"Training continues on the earlier strokes: {exc}")
            return
        self._resolve("strokes")
        self._resolve("slides")
        self._left_out()
        self.live.status = (f"Training on {sum(n for _, n in used):,} annotated pixels in {self._images_in(used)} "
                            "(held-out strokes included)…")

    def _restart(self, objects) -> None:
        """Objects painted (or all gone, or one of a new class): a new run learns what there is now."""
        before = self.objects.data
        self.trainer.shutdown()
        if self.start():
            self._say("No painted objects are left: a new run learns the strokes' classes." if objects is None else
                      "You painted objects: a new run learns to separate them (from the objects and the background "
                      "strokes)." if before is None else
                      "An object of another class: a new run learns the objects' classes.")

    # -- whole slides: the tiles under the strokes, at the level the user trains at -------------
    def _follow_slides(self) -> bool:
        """Tell the reader which slides have strokes and at which level; True when any has."""
        keys = set()
        for entry in self.store:
            slide = self._slide_of(entry)
            if slide is None:
                continue
            key = path_key(entry.path)
            keys.add(key)
            self.slides.follow(key, slide[0], slide[1], self.level_of(entry, source=slide[0]))
        self.slides.keep_only(keys)
        return bool(keys)

    def _slide_of(self, entry: ImageEntry) -> tuple[Any, Any] | None:
        """(source, strokes) of a listed slide with strokes: as painted when it is in memory, else
        its saved ``<stem>_strokes.ome.zarr`` (opened once per Live Training session)."""
        from core.document.strokes import UNANNOTATED

        strokes = entry.strokes
        if entry.source is not None and strokes is not None:
            return (entry.source, strokes.labels) if strokes.is_chunked and not strokes.is_blank else None
        key = path_key(entry.path)
        if key not in self._disk_slides:
            self._disk_slides[key] = self._open_saved_slide(entry)
        slide = self._disk_slides[key]
        return slide if slide is not None and slide[1].class_counts()[:UNANNOTATED].any() else None

    @staticmethod
    def _open_saved_slide(entry: ImageEntry) -> tuple[Any, Any] | None:
        from core.document.strokes import open_chunked_strokes
        from core.io.label_store import StoreError
        from core.io.mask_naming import chunked_strokes_path
        from core.io.sources import open_source

        path = chunked_strokes_path(entry.path)
        if not path.exists():
            return None
        source = entry.source
        try:
            source = source if source is not None else open_source(entry.path)
            return source, open_chunked_strokes(path, (source.height, source.width))
        except (StoreError, OSError, ValueError):
            return None  # said when the slide is opened (gui.state.loading)

    def _close_disk_slides(self) -> None:
        for key, slide in self._disk_slides.items():
            if slide is not None:
                slide[1].close()
                entry = self.store.get(key)
                if entry is None or entry.source is not slide[0]:
                    slide[0].close()
        self._disk_slides.clear()

    def _on_slide_items(self) -> None:
        if self._starting is not None:
            config, self._starting = self._starting, None
            self._start_with(config)
        elif self.trainer.running:
            self._send_now()

    def _slide_warnings(self) -> None:
        """Why a slide's strokes are not trained on (too many pixels at its level...): said until resolved."""
        errors = self.slides.errors
        if errors:
            self._warn("slides", f"Training without the strokes of {' '.join(errors.values())}")
        else:
            self._resolve("slides")

    def level_of(self, entry: ImageEntry, keep: bool = True, source: Any = None) -> int:
        """The level a slide's strokes are trained at: the user's choice, else core's default rule
        for the brush in use (core.training.slide_strokes.default_level), kept once training reads
        the slide (``keep``) so that a brush changed later does not move it."""
        from core.training.slide_strokes import default_level

        key = path_key(entry.path)
        level = self._levels.get(key)
        if level is None:
            level = default_level(source if source is not None else entry.source, self.state.brush_size)
            if keep:
                self._levels[key] = level
        return level

    def level_factor(self, entry: ImageEntry) -> int | None:
        """Full-resolution pixels per pixel of the level a slide with strokes is trained at: what its
        view and Apply predict at, the scale the model learnt there.  None for any other image (a
        slide without strokes is predicted at the level it is shown at, as the images that trained
        the model were read whole)."""
        strokes = entry.strokes
        if entry.source is None or strokes is None or not strokes.is_chunked or strokes.is_blank:
            return None
        w, _h = entry.source.levels[self.level_of(entry)]
        return max(1, round(entry.source.width / w))

    def choose_level(self, level: int) -> None:
        """Train the shown slide's strokes at ``level`` from now on; the view is predicted there too."""
        entry = self.store.current
        if entry is None or entry.source is None or not 0 <= level < len(entry.source.levels):
            return
        key = path_key(entry.path)
        if self._levels.get(key) == level:
            return
        self._levels[key] = level
        self.live.level = level
        self.preview.forget()
        self.live.prediction = None
        w, h = entry.source.levels[level]
        self._say(f"{entry.name}: Live Training reads level {level} ({w:,} x {h:,} pixels) from now on.")
        if self.trainer.running:
            self._send_strokes()
        self.refresh_view()

    def _show_levels(self, entry: ImageEntry | None) -> None:
        from core.training.slide_strokes import level_choices

        if entry is None or entry.source is None or not entry.shown:
            self.live.levels, self.live.level = (), NONE
            return
        self.live.levels = tuple(level_choices(entry.source))
        self.live.level = self.level_of(entry, keep=False)

    def _on_brush(self, _size: int) -> None:
        """The default level follows the brush until the slide's strokes are first trained on."""
        entry = self.store.current
        if entry is not None and entry.source is not None and self.live.levels:
            self.live.level = self.level_of(entry, keep=False)

    def _left_out(self) -> None:
        """Images whose strokes training cannot use (another channel count): said until resolved."""
        left = self.trainer.left_out
        if left:
            self._warn("images", " ".join(left))
        else:
            self._resolve("images")

    # -- the history --------------------------------------------------------------------------
    def _on_snapshot(self, snapshot: Any) -> None:
        snapshot = self.objects.snapshot(snapshot)  # an objects run's checkpoints separate objects
        run = self._runs.setdefault(int(snapshot.run), len(self._runs) + 1)
        row = HistoryRow(snapshot, run)
        rows = self.live.history + (row,)
        best = self._best(rows, snapshot)
        take = self._to_mark(row, rows, best)
        keep = {take.uid if take is not None else self.live.marked} | best
        self.live.history = trimmed(rows, KEEP_CHECKPOINTS, keep)
        self.live.best = frozenset(best)
        if take is not None:
            self.live.pinned = False
            self.live.marked = take.uid
        self.live.status = self._checkpoint_text(row)
        if take is not None:
            self.refresh_view()

    def _best(self, rows: tuple, snapshot: Any) -> set[int]:
        """Each run's best checkpoint: as its trainer last named it (it compares scores on the same
        held-out strokes, rescoring when they change), else by the scores the rows carry."""
        run_of = {r.uid: r.run for r in rows}
        named = getattr(snapshot, "best_uid", None)
        if named in run_of:
            self._named_best[run_of[snapshot.uid]] = named
        best = {run_of[u]: u for u in best_of_runs(rows)}
        best.update({run: uid for run, uid in self._named_best.items() if uid in run_of})
        return set(best.values())

    def _to_mark(self, row: HistoryRow, rows: tuple, best: set[int]) -> HistoryRow | None:
        """The row to mark now that ``row`` arrived, or None: the marked one stays until the user
        chooses another or a better one comes.  While nothing is measured on the same strokes and
        the user chose nothing, the newest is marked; a checkpoint taken before the user's latest
        roll back never takes the mark."""
        if getattr(row.snapshot, "branch", 0) < self._branch:
            return None
        marked = self.live.marked_row
        if marked is not None and self.live.pinned:  # the user's choice: only a new, better one moves it
            return row if self._better(row, marked) is True else None
        candidate = next((r for r in rows if r.uid in best and r.run == row.run), row)
        if marked is None:
            return candidate
        if candidate.uid == marked.uid:
            return None
        is_better = self._better(candidate, marked)
        if is_better is None or getattr(row.snapshot, "best_uid", None) is not None:
            return candidate  # the trainer's own best, or nothing to compare with: the newest
        return candidate if is_better else None

    def _better(self, a: HistoryRow, b: HistoryRow) -> bool | None:
        """Does ``a`` score higher than ``b`` on the same held-out strokes (None: not comparable)?
        The running trainer's scores first: it scores its kept checkpoints again when the held-out
        strokes change."""
        if a.run == b.run:
            sa, sb = self.trainer.score(a.snapshot), self.trainer.score(b.snapshot)
            if sa is not None and sb is not None:
                return sa > sb
        return better(a.snapshot, b.snapshot)

    def _checkpoint_text(self, row: HistoryRow) -> str:
        s = row.snapshot
        held = getattr(s, "held_out_pixels", 0)
        counts = f"trained on {s.annotated_pixels:,} px" + (f", {held:,} px held out" if held else "")
        score = "" if s.held_out_miou is None else (
            f"; mIoU {s.held_out_miou:.2f} on the held-out strokes only"
            + (" (all right: they say little about the rest of the image, check the view)"
               if s.held_out_miou >= 0.995 else ""))
        shown = self.live.marked_row
        mark = "" if shown is None or shown.uid == row.uid else f" The view shows {shown.label}, " + (
            "which you chose." if self.live.pinned else "the best scored.")
        return f"Checkpoint {row.label} after {s.seconds:.0f} s ({s.steps} steps, loss {s.loss:.3f}, {counts}{score}).{mark}"

    def roll_back(self, uid: int) -> bool:
        """Mark the kept checkpoint ``uid`` (an undo for training): the view, Apply and Save Model
        use it, and training, when it runs, continues from it."""
        row = self.live.row(uid)
        if row is None:
            return False
        self.live.marked, self.live.pinned = row.uid, True
        self._choices += 1
        self.preview.forget()  # a prediction of another checkpoint would not show this one
        self.live.prediction = None
        branch = self.trainer.roll_back(row.snapshot) if self.trainer.running else 0
        if branch is None:
            self._say(f"Marked {row.label}: the view, Apply and Save Model use it. Training goes on from its "
                      "own weights: that checkpoint reads other channels than the images training now.")
        else:
            self._branch = max(self._branch, branch)
            self._say(f"Rolled back to {row.label}; training continues from it." if self.trainer.running
                      else f"Rolled back to {row.label}: the view, Apply and Save Model use it.")
        self.refresh_view()
        return True

    def _current_row(self) -> HistoryRow | None:
        return self.live.marked_row

    # -- the view -----------------------------------------------------------------------------
    def view_moved(self, _box=None) -> None:
        if self.live.history:
            self._view_timer.start()

    def _on_image(self, _entry) -> None:
        self._show_levels(self.store.current)
        self.preview.forget()
        self.live.prediction = None
        self._resolve("preview")
        self.view_moved()

    def refresh_view(self) -> None:
        """Ask for the region in view from the marked checkpoint (not from one that cannot read
        the shown image: that is said once, and nothing is predicted there)."""
        row, entry = self._current_row(), self.store.current
        if row is None or entry is None or not entry.shown or not self.parent_widget.isVisible():
            return  # (a closed window: nothing may start a worker after shutdown)
        why = self._unreadable.get((path_key(entry.path), row.run))
        if why is not None:
            self.live.prediction = None
            self._warn("preview", why)
            return
        if (path_key(entry.path), row.uid) in self._failed_views:
            return
        self._resolve("preview")
        pixels = entry.source if entry.source is not None else entry.image  # the preview picks the view (image_of)
        if entry.stack is not None:  # the plane in view
            pixels = PlaneView(entry.source, entry.stack.plane, entry.plane_pixels.lock)
        size = (entry.source.height, entry.source.width) if entry.source is not None else entry.image.rgb.shape[:2]
        box, scale = self._view()
        request = view_request(entry.view_key, pixels, row.snapshot, box, scale, size, self.level_factor(entry))
        if request is not None:
            self._asked = {uid: n for uid, n in self._asked.items() if self.live.row(uid) is not None}
            self._asked[row.uid] = self._choices
            self.preview.request(request)

    def _on_prediction(self, prediction: Prediction, seconds: float) -> None:
        entry = self.store.current
        # a checkpoint marked before a newer, better or unscored one came is still worth showing until
        # the newer one's prediction arrives; one the user rolled back from is not
        current = prediction.uid == self.live.marked or self._asked.get(prediction.uid) == self._choices
        if entry is None or entry.view_key != prediction.image or prediction.box.intersect(self._view()[0]).is_empty \
                or not current:
            self.preview.dropped += 1  # no longer in view, or of a checkpoint the user rolled back from
            return
        self.preview_seconds.append(seconds)
        self.live.prediction = prediction
        self.preview_shown.emit(prediction)

    def _on_unreadable(self, image: Path, uid: int, model_channels: int, image_channels: int) -> None:
        row = self.live.row(uid)
        if row is None:
            return
        key = (path_key(image), row.run)
        self._unreadable[key] = (
            f"No preview of {image.name}: the model of run {row.run} learned from images with "
            f"{_channels(model_channels)} and {image.name} has {_channels(image_channels)}, so it cannot "
            "read it. Apply to Image is not possible there either.")
        entry = self.store.current
        if entry is not None and path_key(entry.path) == key[0]:
            self.refresh_view()  # says why, once

    def _on_preview_failed(self, image: Path, uid: int, text: str) -> None:
        self._failed_views.add((path_key(image), uid))
        entry = self.store.current
        if entry is not None and path_key(entry.path) == path_key(image):
            self.live.prediction = None
            self._warn("preview", f"No preview of {image.name}: {text}")

    # -- finishing ----------------------------------------------------------------------------
    def apply(self) -> bool:
        """Segment the shown image with the marked checkpoint; the mask takes it as one undo step.
        On a whole slide, the region in view is segmented at full resolution (up to APPLY_VIEW_PIXELS)."""
        row, entry = self._current_row(), self.store.current
        if row is None or entry is None or entry.doc is None or self._apply_task is not None:
            return False
        why = self._unreadable.get((path_key(entry.path), row.run))
        if why is not None:
            self._warn("preview", why)
            return False
        doc, checkpoint, box = entry.doc, row.snapshot.checkpoint, None
        factor = 1
        objects = (entry.source is None or entry.stack is not None) and doc.objects is not None  # a model's objects go to the object layer
        above = 0  # a stack's plane: its objects numbered above every id of the stack, as Segment Plane does
        if entry.stack is not None:  # the plane in view, scaled as Segment Stack scales the stack
            above = entry.stack.top_object_id() if objects else 0
            plane, source = PlaneView(entry.source, entry.stack.plane, entry.plane_pixels.lock), entry.source
            read = lambda seg: (plane.read_raw if seg.reads_raw else plane.read)(0, plane.height, 0, plane.width)  # noqa: E731
            stats = lambda seg: seg.source_statistics(source)  # noqa: E731
        elif entry.source is not None:
            box, source = self._view()[0], entry.source
            if box.area > APPLY_VIEW_PIXELS:
                self._say(f"Zoom in to apply: on a whole slide Apply writes the region in view, and this one "
                          f"is {box.width}x{box.height} pixels (at most {APPLY_VIEW_PIXELS // 10**6} Mpx).")
                return False
            # at the level the slide is trained at (the scale the model learnt), then every pixel of the view
            factor = self.level_factor(entry) or 1
            level = self.level_of(entry) if factor > 1 else 0
            lw, lh = source.levels[level]
            read = lambda seg: (source.read_raw if seg.reads_raw else source.read)(  # noqa: E731
                box.y0 // factor, min(lh, -(-box.y1 // factor)), box.x0 // factor, min(lw, -(-box.x1 // factor)),
                level)
            stats = lambda seg: seg.source_statistics(source)  # noqa: E731
        else:
            image = entry.image
            read = lambda seg: seg.image_of(image)  # noqa: E731
            stats = lambda seg: None  # noqa: E731

        def run(_rep):
            from core.segment.inference import Segmenter

            seg = Segmenter(checkpoint, device="cpu")
            out = seg.segment(read(seg), tta=False, refine=False, stats=stats(seg), instances=objects)
            labels, ids = (out.labels, out.instances) if objects else (out, None)
            if ids is not None and above:
                from core.objects.stitch import Numbering

                ids = Numbering(above).add(ids)
            if factor > 1:  # each predicted pixel covers factor x factor pixels of the view
                y, x = box.y0 % factor, box.x0 % factor
                labels = np.repeat(np.repeat(labels, factor, axis=0), factor, axis=1)[y:y + box.height, x:x + box.width]
            return labels, ids, list(seg.classes)

        task = self._apply_task = start_task(run, "live-apply")
        task.finished.connect(lambda result: self._applied(task, doc, result, box))
        task.failed.connect(lambda text: self._applied(task, doc, None, None, text))
        task.cancelled.connect(lambda: self._applied(task, doc, None, None))
        where = entry.name if box is None else f"the view of {entry.name}"
        self._say(f"Applying {row.label} to {where}…", 4000)
        return True

    def _applied(self, task: Task, doc, result, box: Box | None, message: str | None = None) -> None:
        if task is not self._apply_task:
            return
        self._apply_task = None
        if result is None:
            if message:
                self._say(f"Apply to Image failed: {message}")
            return
        labels, ids, classes = result
        merged = complete_classes(doc.classes, classes, top=int(labels.max()) if labels.size else 0)
        if merged != doc.classes:
            doc.set_classes(merged)
        if box is None:
            doc.apply_labels(labels, "live training", objects=ids)
        else:  # a chunked mask: the view's region, one undo step
            doc.paste_region(box.y0, box.x0, labels)
            doc.commit_preview("live training")
        if ids is not None:
            self._objects_applied(doc, int(ids.max()) if ids.size else 0)
        else:
            self._say("The prediction is now the mask (Undo takes it back).")
        self.applied.emit()

    def _objects_applied(self, doc, count: int) -> None:
        """The model's objects are in the object layer now, where Live Training reads painted objects:
        it stops, so it never learns its own unreviewed output."""
        n = doc.objects.count if doc.objects is not None else count
        if self.live.on:
            self.set_on(False)
        self._say(f"The prediction is now the mask and {n:,} objects (Undo takes both back). Live Training is "
                  "off: turned on again it learns from every object in the layer, so correct them first.", 15000)

    def save(self, path: Path | None = None, row: HistoryRow | None = None) -> Path | None:
        """Save the marked checkpoint (or ``row``; asks where unless ``path``), with its classes and
        a record of the images and annotated pixels that trained it."""
        row = row or self._current_row()
        if row is None:
            return None
        if path is None:
            folder = self.state.folder or (self.store.current.path.parent if self.store.current else Path.home())
            path = dialogs.ask_model_save_path(self.parent_widget, Path(folder) / "live-model.safetensors",
                                               "Save Live Training Model")
            if path is None:
                return None
        used = self.objects.used.get(row.uid) or self.training_items()[1]  # what trained it
        try:
            save_snapshot(row.snapshot, path, used, run=row.run)
        except (OSError, ValueError) as exc:
            dialogs.show_error(self.parent_widget, "Could Not Save the Model", str(exc))
            return None
        self.live.saved = self.live.saved | {row.uid}
        self._say(f"Saved {row.label} to {path} (Model > Load Weights uses it).")
        return path

    def resolve_unsaved(self) -> bool:
        """The window closes: ask Save Model… / Discard / Cancel about a trained model never saved;
        True when the window may close."""
        row = self.live.unsaved_model
        if row is None:
            return True
        answer = dialogs.ask_save_model(self.parent_widget, row.label, row.text())
        if answer == "save":
            return self.save(row=row) is not None
        return answer == "discard"


def _images(n: int) -> str:
    return "1 image" if n == 1 else f"{n} images"


def _channels(n: int) -> str:
    return "1 channel" if n == 1 else f"{n} channels"
