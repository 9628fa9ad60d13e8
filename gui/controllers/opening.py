"""Opening images: files, folders, drops, recent files, samples; stepping through the list.

Opening reads only headers for every file given (so a text file named .png is refused with
its name at once) and decodes just the image shown.  A document is created on first view:
an existing mask beside the image (core.masks.find_mask_for_image) is loaded for editing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np
from PySide6.QtWidgets import QMenu

from core.classes import ClassInfo, default_classes
from core.document import MaskDocument
from core.imageio import (IMAGE_EXTENSIONS, ImageReadError, is_image_path, list_images, load_image,
                          read_image_size)
from core.masks import MaskError, find_mask_for_image, read_mask
from core.resources import sample_images
from gui import dialogs

if TYPE_CHECKING:
    from gui.state.image_store import ImageEntry
    from gui.main_window import MainWindow


def extend_classes(classes: list[ClassInfo], top: int) -> list[ClassInfo]:
    """``classes`` plus default entries so that every id up to ``top`` has a class."""
    known = {c.id for c in classes}
    extra = [c for c in default_classes(top + 1) if c.id not in known]
    return sorted(classes + extra, key=lambda c: c.id)


def load_entry(entry: "ImageEntry", template: list[ClassInfo]) -> str | None:
    """Decode the image and create the document if needed; returns a note for the status bar.

    Raises ImageReadError when the image cannot be shown.
    """
    note = None
    if entry.image is None:
        image = load_image(entry.path)
        if entry.doc is not None and entry.doc.shape != image.rgb.shape[:2]:
            raise ImageReadError(f"{entry.name}: the file changed on disk; it is now "
                                 f"{image.width}x{image.height}, not the size of its open mask.")
        entry.image = image
    if entry.doc is None:
        rgb = entry.image.rgb
        classes = list(template)
        labels = np.zeros(rgb.shape[:2], np.uint8)
        source = find_mask_for_image(entry.path)
        if source is not None:
            try:
                labels = read_mask(source, shape=rgb.shape[:2], classes=classes)
                top = int(labels.max()) if labels.size else 0
                if top > max(c.id for c in classes):
                    classes = extend_classes(classes, top)
                note = f"Loaded the mask {source.name} for editing."
            except (MaskError, ValueError, OSError) as exc:
                note = f"Found {source.name} but could not load it: {exc}"
                source = None
        entry.doc = MaskDocument(labels, classes, image_path=entry.path, mask_path=source)
        entry.mask_source = source
        entry.has_mask_file = source is not None or entry.has_mask_file
    return note


def mark_mask_files(entries: Iterable["ImageEntry"]) -> None:
    """Note which images already have a mask file, for the file list's marks."""
    for entry in entries:
        entry.has_mask_file = find_mask_for_image(entry.path) is not None


_MASK_NAMES = ("{}_mask", "{}.mask", "{}_label", "{}_labels")


def without_masks(paths: list[Path]) -> list[Path]:
    """Drop files that are the masks of other listed images (``cells_mask.png`` beside
    ``cells.png``): list_images returns every image file, masks included."""
    stems = {p.stem.lower() for p in paths}
    masks = {pattern.format(stem) for stem in stems for pattern in _MASK_NAMES}
    return [p for p in paths if p.stem.lower() not in masks]


class Opener:
    """Open / navigate / close flows of the window (which owns the store and the views)."""

    def __init__(self, window: "MainWindow"):
        self.w = window

    # -- opening ------------------------------------------------------------------------------
    def ask_open(self) -> None:
        paths = dialogs.ask_open_paths(self.w, self.w.settings.last_folder)
        if paths:
            self.open_paths(paths)

    def ask_open_folder(self) -> None:
        folder = dialogs.ask_open_folder(self.w, self.w.settings.last_folder)
        if folder is not None:
            self.open_folder(folder)

    def open_paths(self, paths: Iterable[str | os.PathLike]) -> int:
        """Add image files (and the images of folders) to the list and show the first.

        Files that cannot be opened are reported together in one message naming each.
        Returns how many images were added.
        """
        paths = [Path(p) for p in paths]
        if len(paths) == 1 and paths[0].is_dir():
            return self.open_folder(paths[0])
        files, errors = [], []
        for p in paths:
            if p.is_dir():
                try:
                    files += without_masks(list_images(p))
                except ImageReadError as exc:
                    errors.append(str(exc))
            elif not p.exists():
                errors.append(f"{p.name}: file not found.")
            elif not is_image_path(p):
                errors.append(f"{p.name}: not a supported image type "
                              f"({' '.join(IMAGE_EXTENSIONS)}).")
            else:
                try:
                    read_image_size(p)
                    files.append(p)
                except ImageReadError as exc:
                    errors.append(str(exc))
        opened = 0
        if files:
            previous = self.w.store.current
            before = {id(e) for e in self.w.store}
            entries = self.w.store.add(files)
            new = [e for e in entries if id(e) not in before]
            mark_mask_files(new)
            self.w.file_panel.rebuild()
            for p in reversed(files[:10]):
                self.w.remember_recent(p)
            self.w.settings.last_folder = str(files[0].parent)
            first = entries[0]
            error = self.w.show_entry(first)
            if error:
                errors.append(error)
                if first in new:  # an image that cannot be shown is not kept in the list
                    self.w.store.remove(first)
                    self.w.file_panel.rebuild()
                    if previous is None or self.w.store.index_of(previous) < 0:
                        previous = self.w.store.neighbour(None, 1)
                    self.w.show_entry(previous)
            opened = len(files) - (1 if error else 0)
        if errors:
            what = "this file" if len(errors) == 1 else f"these {len(errors)} files"
            dialogs.show_error(self.w, "Could Not Open", f"Could not open {what}:\n\n" + "\n".join(errors))
        return opened

    def open_folder(self, folder: str | os.PathLike) -> int:
        folder = Path(folder)
        try:
            images = without_masks(list_images(folder))
        except ImageReadError as exc:
            dialogs.show_error(self.w, "Could Not Open Folder", str(exc))
            return 0
        if not images:
            dialogs.show_error(self.w, "Could Not Open Folder",
                               f"{folder.name or folder}: contains no images "
                               f"({' '.join(IMAGE_EXTENSIONS)}).")
            return 0
        mark_mask_files([e for e in self.w.store.replace(images) if e.doc is None])
        self.w.folder = folder
        self.w.file_panel.rebuild()
        self.w.remember_recent(folder)
        self.w.settings.last_folder = str(folder)
        self.w.show_entry(self.w.store.neighbour(None, 1))
        self.w.status.message(f"Opened {folder.name}: {len(images)} images.", 5000)
        return len(images)

    def open_dropped(self, paths: list[Path]) -> int:
        usable = [p for p in paths if p.is_dir() or is_image_path(p)]
        skipped = len(paths) - len(usable)
        if not usable:
            names = ", ".join(p.name for p in paths[:3])
            dialogs.show_error(self.w, "Could Not Open",
                               f"{names}: not an image or a folder of images.")
            return 0
        opened = self.open_paths(usable)
        if skipped:
            self.w.status.message(f"Skipped {skipped} dropped file(s) that are not images.", 5000)
        return opened

    # -- recent files and samples -------------------------------------------------------------
    def fill_recent_menu(self, menu: QMenu) -> None:
        menu.clear()
        recent = self.w.settings.recent_files
        for path in recent:
            action = menu.addAction(Path(path).name or path)
            action.setToolTip(path)
            action.setObjectName("action_recent")
            action.triggered.connect(lambda _=False, p=path: self.open_recent(p))
        if not recent:
            menu.addAction("No recent files").setEnabled(False)
        menu.addSeparator()
        clear = menu.addAction("Clear Recent")
        clear.setEnabled(bool(recent))
        clear.triggered.connect(lambda: setattr(self.w.settings, "recent_files", []))

    def open_recent(self, path: str) -> None:
        if not Path(path).exists():
            self.w.settings.remove_recent(path)
            dialogs.show_error(self.w, "Could Not Open", f"{Path(path).name}: no longer exists "
                                                         f"(removed from the recent list).")
            return
        self.open_paths([path])

    def fill_samples_menu(self, menu: QMenu) -> None:
        menu.clear()
        samples = sample_images()
        for path in samples:
            action = menu.addAction(path.stem.replace("_", " "))
            action.setToolTip(str(path))
            action.triggered.connect(lambda _=False, p=path: self.open_paths([p]))
        if not samples:
            none = menu.addAction("No sample images are installed")
            none.setEnabled(False)

    # -- navigation ---------------------------------------------------------------------------
    def step(self, delta: int) -> None:
        entry = self.w.store.neighbour(self.w.store.current, delta)
        if entry is not None:
            self.w.show_entry(entry)

    def close_current(self) -> bool:
        """Close Image: asks about unsaved edits; True if it was closed."""
        entry = self.w.store.current
        if entry is None:
            return False
        if entry.busy:
            self.w.segmentation.shutdown()
        if entry.dirty and not self.w.saver.resolve_unsaved(entry):
            return False
        following = self.w.store.neighbour(entry, 1) or self.w.store.neighbour(entry, -1)
        self.w.store.remove(entry)
        self.w.file_panel.rebuild()
        if following is not None:
            self.w.show_entry(following)
        else:
            self.w.show_entry(None)
        return True
