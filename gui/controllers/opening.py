"""Opening images: files, folders, drops, recent files, samples; stepping through the list.

Opening reads only headers for every file given (so a text file named .png is refused with
its name at once) and decodes just the image shown (gui.state.loading).  The file list, the
title and the canvas follow the store's events; nothing here refreshes them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable

from PySide6.QtWidgets import QMenu, QWidget

from core.io.images import IMAGE_EXTENSIONS, ImageReadError, is_image_path, list_images, read_image_size
from core.resources import sample_images
from gui import dialogs
from gui.infra.settings import Settings
from gui.state.app_state import AppState
from gui.state.loading import is_zarr_image, mark_mask_files, without_masks
from core.wording import counted


class Opener:
    """Open / navigate / close flows.  ``resolve_unsaved(entry)`` asks Save / Discard / Cancel
    before an image with unsaved edits is closed; ``stop_job`` ends a job writing into it."""

    def __init__(self, state: AppState, settings: Settings, parent: QWidget,
                 resolve_unsaved: Callable, stop_job: Callable[[], None]):
        self.state, self.store, self.settings, self.parent = state, state.store, settings, parent
        self._resolve_unsaved = resolve_unsaved
        self._stop_job = stop_job
        self.open_stack_folder: Callable[[str], bool] | None = None  # Open Stack Folder (the window sets it)

    # -- opening ------------------------------------------------------------------------------
    def ask_open(self) -> None:
        paths = dialogs.ask_open_paths(self.parent, self.settings.last_folder)
        if paths:
            self.open_paths(paths)

    def ask_open_folder(self) -> None:
        folder = dialogs.ask_open_folder(self.parent, self.settings.last_folder)
        if folder is not None:
            self.open_folder(folder)

    def open_paths(self, paths: Iterable[str | os.PathLike]) -> int:
        """Add image files (and the images of folders) to the list and show the first.

        Files that cannot be opened are reported together in one message naming each.
        Returns how many images were added.
        """
        paths = [Path(p) for p in paths]
        if len(paths) == 1 and paths[0].is_dir() and not is_zarr_image(paths[0]):
            return self.open_folder(paths[0])
        files, errors = [], []
        for p in paths:
            if is_zarr_image(p):  # an OME-Zarr image is a folder: opened lazily, as a slide
                files.append(p)
            elif p.is_dir():
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
            store = self.store
            previous = store.current
            before = {id(e) for e in store}
            entries = store.add(files)
            new = [e for e in entries if id(e) not in before]
            mark_mask_files(new)
            for p in reversed(files[:10]):
                self.settings.add_recent(str(p))
            self.settings.last_folder = str(files[0].parent)
            first = entries[0]
            error = self.state.show(first)
            if error:
                errors.append(error)
                if first in new:  # an image that cannot be shown is not kept in the list
                    store.remove(first)
                    if previous is None or store.index_of(previous) < 0:
                        previous = store.neighbour(None, 1)
                    self.state.show(previous)
            opened = len(files) - (1 if error else 0)
        if errors:
            what = "this file" if len(errors) == 1 else f"these {len(errors)} files"
            dialogs.show_error(self.parent, "Could Not Open", f"Could not open {what}:\n\n" + "\n".join(errors))
        return opened

    def open_folder(self, folder: str | os.PathLike) -> int:
        folder = Path(folder)
        try:
            images = without_masks(list_images(folder))
        except ImageReadError as exc:
            dialogs.show_error(self.parent, "Could Not Open Folder", str(exc))
            return 0
        if not images:
            dialogs.show_error(self.parent, "Could Not Open Folder",
                               f"{folder.name or folder}: contains no images "
                               f"({' '.join(IMAGE_EXTENSIONS)}).")
            return 0
        mark_mask_files([e for e in self.store.replace(images) if e.doc is None])
        self.state.folder = folder
        self.settings.add_recent(str(folder))
        self.settings.last_folder = str(folder)
        self.state.show(self.store.neighbour(None, 1))
        from core.io.sources import is_plane_folder

        hint = (" Their names are numbered: File > Open Stack Folder opens them as one Z stack."
                if len(images) > 1 and is_plane_folder(folder) else "")
        self.state.message.emit(f"Opened {folder.name}: {len(images)} images.{hint}", 8000 if hint else 5000)
        return len(images)

    def open_dropped(self, paths: list[Path]) -> int:
        usable = [p for p in paths if p.is_dir() or is_image_path(p)]
        skipped = len(paths) - len(usable)
        if not usable:
            names = ", ".join(p.name for p in paths[:3])
            dialogs.show_error(self.parent, "Could Not Open",
                               f"{names}: not an image or a folder of images.")
            return 0
        opened = self.open_paths(usable)
        if skipped:
            self.state.message.emit(f"Skipped {counted(skipped, 'dropped file')} that are not images.", 5000)
        return opened

    # -- recent files and samples -------------------------------------------------------------
    def fill_recent_menu(self, menu: QMenu) -> None:
        menu.clear()
        recent = self.settings.recent_files
        stacks = set(self.settings.recent_stack_folders)
        for path in recent:
            action = menu.addAction((Path(path).name or path) + (" (stack)" if path in stacks else ""))
            action.setToolTip(path)
            action.setObjectName("action_recent")
            action.triggered.connect(lambda _=False, p=path: self.open_recent(p))
        if not recent:
            menu.addAction("No recent files").setEnabled(False)
        menu.addSeparator()
        clear = menu.addAction("Clear Recent")
        clear.setEnabled(bool(recent))
        clear.triggered.connect(lambda: setattr(self.settings, "recent_files", []))

    def open_recent(self, path: str) -> None:
        if not Path(path).exists():
            self.settings.remove_recent(path)
            dialogs.show_error(self.parent, "Could Not Open", f"{Path(path).name}: no longer exists "
                                                         f"(removed from the recent list).")
            return
        if path in self.settings.recent_stack_folders and self.open_stack_folder is not None:
            self.open_stack_folder(path)  # opened as one stack again, as Open Stack Folder did
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
        entry = self.store.neighbour(self.store.current, delta)
        if entry is not None:
            self.state.show(entry)

    def close_current(self) -> bool:
        """Close Image: asks about unsaved edits; True if it was closed."""
        entry = self.store.current
        if entry is None:
            return False
        if entry.busy:
            self._stop_job()
        if entry.dirty and not self._resolve_unsaved(entry):
            return False
        following = self.store.neighbour(entry, 1) or self.store.neighbour(entry, -1)
        self.store.remove(entry)
        self.state.show(following)
        return True
