"""The images a session has open: the file list's order, and a bounded cache of documents.

Switching images keeps each document (mask + undo history) so coming back restores edits
and undo.  Memory stays bounded: only the most recently used ``keep_documents`` documents
and ``keep_images`` decoded images are kept, except that a document with unsaved edits (or
one a running job is writing into) is never dropped.  Qt-free, like core.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from core.document import MaskDocument
from core.imageio import LoadedImage


def path_key(path: str | os.PathLike) -> str:
    try:
        return str(Path(path).resolve())
    except OSError:
        return str(Path(path).absolute())


@dataclass(eq=False)
class ImageEntry:
    path: Path
    image: LoadedImage | None = None
    doc: MaskDocument | None = None
    mask_source: Path | None = None  # the mask file the document was loaded from
    save_path: Path | None = None  # chosen with Save As; None: the default beside the image
    error: str | None = None  # why the image could not be opened, when it could not
    busy: bool = False  # a job writes into the document: never drop it
    has_mask_file: bool = False
    levels: dict = field(default_factory=dict)  # zoomed-out reductions of the image (gui.canvas.raster)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def dirty(self) -> bool:
        return self.doc is not None and self.doc.dirty


class ImageStore:
    """Ordered paths (what the file list shows) plus the document/image cache."""

    def __init__(self, keep_documents: int = 8, keep_images: int = 3):
        self.keep_documents = max(1, int(keep_documents))
        self.keep_images = max(1, int(keep_images))
        self._entries: dict[str, ImageEntry] = {}
        self._order: list[str] = []
        self._recent: OrderedDict[str, None] = OrderedDict()  # least recently used first
        self.current: ImageEntry | None = None

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
        out = []
        for p in paths:
            key = path_key(p)
            if key not in self._entries:
                self._entries[key] = ImageEntry(Path(p))
                self._order.append(key)
            out.append(self._entries[key])
        return out

    def replace(self, paths: Iterable[str | os.PathLike]) -> list[ImageEntry]:
        """A new list (Open Folder); entries with unsaved edits stay, at the end."""
        new = [path_key(p) for p in paths]
        keep = [k for k in self._order if k not in new and self._entries[k].dirty]
        for key in [k for k in self._order if k not in new and k not in keep]:
            self._forget(key)
        entries = self.add(paths)
        self._order = new + keep
        return entries

    def remove(self, entry: ImageEntry) -> None:
        self._forget(path_key(entry.path))

    def _forget(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if key in self._order:
            self._order.remove(key)
        self._recent.pop(key, None)
        if entry is not None and entry is self.current:
            self.current = None

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
            if entry is self.current or entry.busy or entry.dirty:
                continue
            entry.doc, entry.image, entry.mask_source, entry.levels = None, None, None, {}
            self._recent.pop(key, None)
            dropped.append(entry)
            excess -= 1
        with_image = [k for k in self._recent if k in self._entries and self._entries[k].image is not None]
        excess = len(with_image) - self.keep_images
        for key in with_image:
            if excess <= 0:
                break
            entry = self._entries[key]
            if entry is self.current or entry.busy:
                continue
            entry.image = None  # decoded again from disk when shown; the document stays
            entry.levels = {}
            excess -= 1
        return dropped

    def documents_in_memory(self) -> list[ImageEntry]:
        return [e for e in self._entries.values() if e.doc is not None]
