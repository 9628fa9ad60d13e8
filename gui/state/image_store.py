"""The images a session has open: the file list's order, and a bounded cache of documents.

Evented: the store emits ``added``, ``removed``, ``reordered``, ``entry_changed`` (an entry's
marks: unsaved edits, mask file, error, busy) and ``current_changed``, so the file list, the
title and the canvas follow it without being told.

Switching images keeps each document (mask + undo history) so coming back restores edits
and undo.  Memory stays bounded: only the most recently used ``keep_documents`` documents
and ``keep_images`` decoded images are kept, except that a document with unsaved edits (or
one a running job is writing into) is never dropped.  Qt-free, like core.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Iterable

from psygnal import Signal

from core.document.mask_document import MaskDocument
from core.document.strokes import StrokeDocument
from core.io.images import LoadedImage
from core.io.sources import ImageSource
from core.io.mask_naming import chunked_strokes_path, default_mask_path, strokes_path


def path_key(path: str | os.PathLike) -> str:
    try:
        return str(Path(path).resolve())
    except OSError:
        return str(Path(path).absolute())


class ImageEntry:
    """One listed image; setting a mark (or the document's unsaved state) emits ``changed``."""

    changed = Signal()

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.image: LoadedImage | None = None  # decoded pixels of an image that fits in memory
        self.source: ImageSource | None = None  # or the lazy source of a large one (tiles on demand)
        self.save_path: Path | None = None  # chosen with Save As; None: the default beside the image
        self.mask_source: Path | None = None  # the mask file the document was loaded from
        self.levels: dict = {}  # zoomed-out reductions of the image (gui.infra.raster)
        self.overview = None  # a slide's raw thumbnail when built in the background (gui.jobs.overview)
        self.stack = None  # a stack's planes' documents (core.document.stack_planes); doc/strokes are the shown plane's
        self.plane_pixels = None  # and its planes' pixels (core.io.plane_cache)
        self.note: str | None = None
        self.slide_objects = None  # a whole slide's objects from a model (gui.state.objects.ModelObjects), for Export
        self._doc: MaskDocument | None = None
        self._strokes: StrokeDocument | None = None  # Live Training's annotation strokes
        self._error: str | None = None
        self._busy = False
        self._has_mask_file = False

    def _mark(name: str, doc: str):  # noqa: N805 - a property factory used in the class body
        attr = "_" + name

        def get(self):
            return getattr(self, attr)

        def set_(self, value) -> None:
            if getattr(self, attr) != value:
                setattr(self, attr, value)
                self.changed.emit()

        return property(get, set_, doc=doc)

    error = _mark("error", "why the image could not be opened, when it could not")
    busy = _mark("busy", "a job writes into the document: never drop it")
    has_mask_file = _mark("has_mask_file", "a mask file exists on disk for this image")
    del _mark

    @property
    def doc(self) -> MaskDocument | None:
        return self._doc

    @doc.setter
    def doc(self, doc: MaskDocument | None) -> None:
        if doc is self._doc:
            return
        if self._doc is not None:
            self._doc.dirty_changed.disconnect(self._on_dirty)
        self._doc = doc
        if doc is not None:
            doc.dirty_changed.connect(self._on_dirty)
        self.changed.emit()

    @property
    def strokes(self) -> StrokeDocument | None:
        """The annotation strokes (core.document.strokes), made when the image is shown."""
        return self._strokes

    @strokes.setter
    def strokes(self, strokes: StrokeDocument | None) -> None:
        if strokes is self._strokes:
            return
        if self._strokes is not None:
            self._strokes.dirty_changed.disconnect(self._on_dirty)
        self._strokes = strokes
        if strokes is not None:
            strokes.dirty_changed.connect(self._on_dirty)
        self.changed.emit()

    def _on_dirty(self, _dirty: bool) -> None:
        self.changed.emit()

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def view_key(self) -> Path:
        """What a prediction of the shown pixels is of: the image, or the shown plane of a stack."""
        if self.stack is None:
            return self.path
        return self.path.with_name(f"{self.path.name}#{','.join(map(str, self.stack.plane))}")

    @property
    def size(self) -> tuple[int, int] | None:
        """(width, height) once opened."""
        if self.image is not None:
            return self.image.width, self.image.height
        if self.source is not None:
            return self.source.width, self.source.height
        return None

    @property
    def shown(self) -> bool:
        """Opened and ready to show: pixels (or their source) and a document."""
        return self.doc is not None and (self.image is not None or self.source is not None) and not self.error

    @property
    def dirty(self) -> bool:
        """Unsaved edits of the mask or of the strokes."""
        return (self._doc is not None and self._doc.dirty) or (self._strokes is not None and self._strokes.dirty) \
            or (self.stack is not None and self.stack.dirty)

    @property
    def save_target(self) -> Path:
        """Where Save writes: the Save As choice, else the naming rule's default beside the image."""
        if self.stack is not None and self.save_path is None:
            from gui.state.stack_loading import stack_save_target

            return stack_save_target(self)
        return self.save_path or default_mask_path(self.path, chunked=self.source is not None)

    @property
    def strokes_target(self) -> Path:
        """Where Save writes the strokes: a slide's chunked beside it, else an index PNG."""
        chunked = self._strokes is not None and self._strokes.is_chunked
        return chunked_strokes_path(self.path) if chunked else strokes_path(self.path)


class ImageStore:
    """Ordered paths (what the file list shows) plus the document/image cache."""

    added = Signal(list)  # the new entries
    removed = Signal(object)  # the entry
    reordered = Signal()  # a new list (Open Folder)
    entry_changed = Signal(object)  # an entry's marks changed
    current_changed = Signal(object)  # the shown entry, or None

    def __init__(self, keep_documents: int = 8, keep_images: int = 3):
        self.keep_documents = max(1, int(keep_documents))
        self.keep_images = max(1, int(keep_images))
        self._entries: dict[str, ImageEntry] = {}
        self._order: list[str] = []
        self._recent: OrderedDict[str, None] = OrderedDict()  # least recently used first
        self._current: ImageEntry | None = None

    @property
    def current(self) -> ImageEntry | None:
        return self._current

    def set_current(self, entry: ImageEntry | None) -> None:
        """Show ``entry`` (the caller has loaded it): emits even when it is the same entry,
        since its document or error may be new."""
        self._current = entry
        if entry is not None:
            for dropped in self.touch(entry):
                self.entry_changed.emit(dropped)
        self.current_changed.emit(entry)

    # -- the list ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self):
        return (self._entries[k] for k in self._order)

    @property
    def entries(self) -> list[ImageEntry]:
        return list(self)

    def index_of(self, entry: ImageEntry | None) -> int:
        if entry is None:
            return -1
        try:
            return self._order.index(path_key(entry.path))
        except ValueError:
            return -1

    def get(self, path: str | os.PathLike) -> ImageEntry | None:
        return self._entries.get(path_key(path))

    def add(self, paths: Iterable[str | os.PathLike]) -> list[ImageEntry]:
        """Append paths not yet listed; returns the entries of all given paths, in order."""
        out, new = [], []
        for p in paths:
            key = path_key(p)
            if key not in self._entries:
                entry = self._entries[key] = ImageEntry(Path(p))
                entry.changed.connect(lambda e=entry: self.entry_changed.emit(e))
                self._order.append(key)
                new.append(entry)
            out.append(self._entries[key])
        if new:
            self.added.emit(new)
        return out

    def replace(self, paths: Iterable[str | os.PathLike]) -> list[ImageEntry]:
        """A new list (Open Folder); entries with unsaved edits stay, at the end."""
        new = [path_key(p) for p in paths]
        keep = [k for k in self._order if k not in new and self._entries[k].dirty]
        for key in [k for k in self._order if k not in new and k not in keep]:
            self._forget(key)
        with self.added.blocked():
            entries = self.add(paths)
        self._order = new + keep
        self.reordered.emit()
        return entries

    def remove(self, entry: ImageEntry) -> None:
        self._forget(path_key(entry.path))

    def _forget(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if key in self._order:
            self._order.remove(key)
        self._recent.pop(key, None)
        if entry is not None:
            entry.changed.disconnect()
            if entry.plane_pixels is not None:
                entry.plane_pixels.stop()  # a stack's read-ahead thread
            if entry.stack is not None:
                entry.stack.close()  # its saved label stacks' files
            if entry is self._current:
                self._current = None
            self.removed.emit(entry)

    def neighbour(self, entry: ImageEntry | None, step: int) -> ImageEntry | None:
        if not self._order:
            return None
        i = self.index_of(entry)
        j = 0 if i < 0 else i + step
        if 0 <= j < len(self._order):
            return self._entries[self._order[j]]
        return None

    def dirty_entries(self) -> list[ImageEntry]:
        return [e for e in self if e.dirty]

    # -- the cache ----------------------------------------------------------------------------
    def touch(self, entry: ImageEntry) -> list[ImageEntry]:
        """Mark ``entry`` most recently used and drop what is over budget; returns those."""
        key = path_key(entry.path)
        self._recent.pop(key, None)
        self._recent[key] = None
        return self.trim()

    def trim(self) -> list[ImageEntry]:
        dropped = []
        loaded = [k for k in self._recent if k in self._entries and self._entries[k].doc is not None]
        excess = len(loaded) - self.keep_documents
        for key in loaded:  # least recently used first
            if excess <= 0:
                break
            entry = self._entries[key]
            if entry is self._current or entry.busy or entry.dirty:
                continue
            entry.image, entry.mask_source, entry.levels = None, None, {}
            entry.doc = entry.strokes = None
            if entry.stack is not None:  # every plane is clean: read again from the files when shown
                entry.stack.close()
                entry.plane_pixels.stop()
                entry.stack = entry.plane_pixels = None
            self._recent.pop(key, None)
            dropped.append(entry)
            excess -= 1
        with_image = [k for k in self._recent if k in self._entries and self._entries[k].image is not None]
        excess = len(with_image) - self.keep_images
        for key in with_image:
            if excess <= 0:
                break
            entry = self._entries[key]
            if entry is self._current or entry.busy:
                continue
            entry.image = None  # decoded again from disk when shown; the document stays
            entry.levels = {}
            excess -= 1
        return dropped

    def documents_in_memory(self) -> list[ImageEntry]:
        return [e for e in self._entries.values() if e.doc is not None]
