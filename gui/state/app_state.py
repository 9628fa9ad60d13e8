"""The app state: the settings of the work in hand, one evented model the views observe.

Every field change emits ``state.events.<field>(new, old)`` (psygnal's evented dataclass, as
napari's evented models), and only when the value really changed.  Each value lives here
once: the toolbar's spin box, the canvas cursor, the document's brush and the settings file
all follow ``brush_size``; the slider, the canvas and exports follow ``opacity``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Callable

from psygnal import Signal, evented

from core.classes import ClassInfo, complete_classes, default_classes
from core.document.mask_document import MAX_BRUSH, MIN_BRUSH
from core.io.channels import nan_note
from core.io.display import sample_values
from core.io.images import ImageReadError
from core.io.plane_view import SAMPLE_PLANES, stack_sample
from core.io.sources import spread_planes
from core.model.normalize import source_sample
from core.wording import counted
from gui.state.current_document import CurrentDocument
from gui.state.display import DisplaySettings
from gui.state.image_store import ImageEntry, ImageStore, path_key
from gui.state.live import LiveState
from gui.state.objects import ObjectsState
from gui.state.loading import load_entry
from gui.state.planes import PlaneState


class Tool(str, Enum):
    """The edit tools; the value is the name actions, settings and tests use."""

    BRUSH = "brush"
    ERASER = "eraser"
    FILL = "fill"
    POLYGON = "polygon"
    PICKER = "picker"
    STROKE = "stroke"  # Live Training: paint annotation strokes of the active class
    STROKE_ERASER = "stroke_eraser"  # un-annotate strokes
    # the Objects mode (core.document.objects): their edits are steps of the mask's history
    OBJECT_SELECT = "object_select"
    OBJECT_BRUSH = "object_brush"  # paint a new object (or grow the selected one)
    OBJECT_ERASER = "object_eraser"
    OBJECT_DELETE = "object_delete"
    OBJECT_MERGE = "object_merge"
    OBJECT_SPLIT = "object_split"

    @property
    def edits_strokes(self) -> bool:
        """The tool paints the strokes document, not the mask (undo and redo follow it)."""
        return self in (Tool.STROKE, Tool.STROKE_ERASER)

    @property
    def edits_objects(self) -> bool:
        """A tool of the Objects mode."""
        return self.value.startswith("object_")


@dataclass(frozen=True)
class ModelStatus:
    """What the status bar says about the model: a short label and the full description."""

    text: str = "No model"
    detail: str = ""


@dataclass(frozen=True)
class Job:
    """A running background job (segmentation, Segment All, Export All) and its progress."""

    kind: str
    done: int = 0
    total: int = 0
    text: str = "Starting…"
    cancel: Callable[[], None] | None = field(default=None, compare=False, repr=False)

    @property
    def blocks_editing(self) -> bool:
        """A segmentation writes into masks: the tools wait; an export only reads them."""
        return self.kind in ("segment", "segment_all")


@evented
@dataclass(eq=False)
class AppState:
    tool: Tool = Tool.BRUSH
    active_class: int = 1
    brush_size: int = 12
    opacity: int = 50  # percent
    mask_visible: bool = True
    outline: bool = False
    outline_width: int = 2  # screen pixels, 1-4 (gui.canvas.outline)
    hidden_classes: frozenset = frozenset()
    model: ModelStatus = ModelStatus()
    job: Job | None = None
    class_template: tuple = tuple(default_classes(2))  # classes a new mask starts with
    folder: Path | None = None  # the folder opened with Open Folder

    # transient news for the status bar: (text, milliseconds; 0 = until replaced)
    message = Signal(str, int)

    def __post_init__(self) -> None:
        self.store = ImageStore()
        self.document = CurrentDocument()
        self.strokes = CurrentDocument()  # the shown image's annotation strokes (Live Training)
        self.live = LiveState()
        self.objects = ObjectsState()  # the Objects mode: selection and measurements
        self.display = DisplaySettings()  # how the shown image is drawn (the channel panel edits it)
        self.planes = PlaneState()  # the shown plane of a stack (the Z/T sliders)
        self.store.current_changed.connect(self._on_current)  # first: views then find it set
        self.events.brush_size.connect(self._push_brush)
        self.events.active_class.connect(self._push_active_class)
        self.document.active_class_changed.connect(self._pull_active_class)
        self.document.classes_changed.connect(self._pull_classes)

    # -- the current image --------------------------------------------------------------------
    @property
    def current(self) -> ImageEntry | None:
        return self.store.current

    def show(self, entry: ImageEntry | None) -> str | None:
        """Make ``entry`` the shown image, decoding it if needed; returns why it cannot be
        shown (the entry is still current, showing its error), or None."""
        if entry is None:
            self.store.set_current(None)
            return None
        if entry is self.store.current and entry.doc is not None and self.document.doc is entry.doc:
            return None
        try:
            note = load_entry(entry, list(self.class_template))
        except MemoryError:
            note, entry.error = None, f"{entry.name}: not enough memory to open it."
        except ImageReadError as exc:
            note, entry.error = None, str(exc)
        else:
            entry.error = None
        self.store.set_current(entry)
        if entry.error:
            self.message.emit(entry.error, 10000)
            return entry.error
        width, height = entry.size
        info = f"{entry.name}: {width}x{height}"
        view = self.display.view
        if not view.photo:  # drawn through the channel display: the 8-bit view's rule is beside the point
            nans = getattr(entry.image, "nan_count", 0)
            info += f", {counted(len(view.channels), 'channel')} of {view.dtype}" + (f" ({nan_note(nans)})" if nans else "")
            if entry.stack is not None:
                info += ", " + " x ".join(f"{n} {a}" for a, n in zip(entry.stack.plane_axes, entry.stack.planes))
                info += " planes, read plane by plane"
            elif entry.source is not None:
                info += f", {counted(len(entry.source.levels), 'pyramid level')}, shown in tiles"
        elif entry.stack is not None:
            info += ", " + " x ".join(f"{n} {a}" for a, n in zip(entry.stack.plane_axes, entry.stack.planes)) + " planes"
        elif entry.image is not None and entry.image.conversion:
            info += f" ({entry.image.conversion})"
        elif entry.source is not None:
            info += f", {counted(len(entry.source.levels), 'pyramid level')}, shown in tiles"
        self.message.emit(note or info, 8000)
        return None

    def _on_current(self, entry: ImageEntry | None) -> None:
        self._show_display(entry)
        self._bind(entry)
        stack = entry.stack if entry is not None and not entry.error and entry.doc is not None else None
        if stack is None:
            self.planes.set("", (), ())
        else:
            self.planes.set(stack.plane_axes, stack.planes, stack.plane)

    def show_plane(self, plane) -> str | None:
        """Show ``plane`` of the shown stack: its documents are what ``document`` and ``strokes``
        bind (made on first visit); returns why it cannot be shown, or None."""
        entry = self.current
        if entry is None or entry.stack is None or entry.doc is None:
            return None
        plane = entry.stack.check(plane)
        if plane == entry.stack.plane and self.document.doc is entry.doc:
            return None
        try:
            docs = entry.stack.select(plane)
        except (OSError, ValueError) as exc:  # the saved mask stack cannot be read there
            self.message.emit(str(exc), 10000)
            return str(exc)
        entry.doc, entry.strokes = docs.mask, docs.strokes
        self._bind(entry)
        self.planes.plane = plane
        return None

    def _bind(self, entry: ImageEntry | None) -> None:
        doc = entry.doc if entry is not None and not entry.error else None
        if doc is not None:
            doc.set_brush_size(self.brush_size)
            if any(c.id == self.active_class for c in doc.classes):
                doc.set_active_class(self.active_class)
        self.document.bind(doc)
        strokes = entry.strokes if doc is not None else None
        if strokes is not None:
            strokes.set_brush_size(self.brush_size)
            strokes.set_classes(doc.classes)
        self.strokes.bind(strokes)
        if doc is not None:
            self.active_class = doc.active_class
            self._push_active_class(doc.active_class)

    def _show_display(self, entry: ImageEntry | None) -> None:
        if entry is None or not entry.shown:
            self.display.clear()
            return
        key = path_key(entry.path)
        if entry.image is not None:
            image = entry.image
            self.display.show(key, image.pixels.dtype, image.channel_names, lambda: sample_values(image.pixels))
        elif entry.stack is not None:  # measured over the stack once: a plane change never changes contrast
            source, planes = entry.source, entry.plane_pixels

            def sample():
                picks = spread_planes(source.planes, SAMPLE_PLANES)
                planes.prefetch(picks[1:])  # read beside the first one (the view's), not after it
                return stack_sample(source, read=planes.get)

            self.display.show(key, source.dtype, source.channel_names, sample)
        else:
            source = entry.source
            self.display.show(key, source.dtype, source.channel_names,
                              lambda: sample_values(source_sample(source)))  # what a model measures

    # -- the shown document follows the state, and the state the document ----------------------
    def _push_brush(self, size: int) -> None:
        for doc in (self.document.doc, self.strokes.doc):
            if doc is not None:
                doc.set_brush_size(size)

    def _push_active_class(self, class_id: int) -> None:
        doc = self.document.doc
        if doc is not None and doc.active_class != class_id and any(c.id == class_id for c in doc.classes):
            doc.set_active_class(class_id)
        if self.strokes.doc is not None and doc is not None and doc.active_class == class_id:
            self.strokes.doc.set_active_class(class_id)

    def _pull_active_class(self, class_id: int) -> None:
        self.active_class = class_id

    def _pull_classes(self) -> None:
        if self.document.doc is not None:
            self.class_template = tuple(self.document.doc.classes)
            if self.strokes.doc is not None:  # the strokes name the mask's classes
                self.strokes.doc.set_classes(self.document.doc.classes)

    @property
    def edit_target(self):
        """The document the tools and undo/redo act on: the strokes while a stroke tool is chosen."""
        return self.strokes.doc if Tool(self.tool).edits_strokes else self.document.doc

    # -- commands on state ----------------------------------------------------------------------
    def set_brush_size(self, size: int) -> None:
        self.brush_size = max(MIN_BRUSH, min(MAX_BRUSH, int(size)))

    def step_brush(self, direction: int) -> None:
        """One step of [ / ]: about 20% larger or smaller, at least one pixel."""
        size = self.brush_size
        new = max(size + 1, round(size * 1.2)) if direction > 0 else min(size - 1, round(size / 1.2))
        self.set_brush_size(new)

    def set_opacity(self, percent: int) -> None:
        self.opacity = max(0, min(100, int(percent)))

    def set_outline_width(self, width: int) -> None:
        self.outline_width = max(1, min(4, int(width)))

    def set_class_visible(self, class_id: int, visible: bool) -> None:
        hidden = set(self.hidden_classes)
        (hidden.discard if visible else hidden.add)(class_id)
        self.hidden_classes = frozenset(hidden)

    @property
    def job_running(self) -> bool:
        return self.job is not None

    def cancel_job(self) -> None:
        if self.job is not None and self.job.cancel is not None:
            self.job.cancel()

    def class_name(self, class_id: int) -> str:
        doc = self.document.doc
        for c in doc.classes if doc is not None else []:
            if c.id == class_id:
                return f"{c.name} ({c.id})"
        return f"class {class_id}"

    def known_classes(self) -> list[ClassInfo]:
        """The shown document's classes, then ids only the template or another open document
        names: training and Export All see masks saved from other images, which may use those."""
        docs = [e.doc.classes for e in self.store.documents_in_memory() if e.doc is not None]
        shown = self.document.doc.classes if self.document.doc is not None else []
        return complete_classes(shown, self.class_template, *docs)
