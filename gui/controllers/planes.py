"""Moving through a stack's planes: the Z/T sliders, Page Up/Down (Z) and Shift+Page Up/Down (T),
Open Stack Folder, and what the view shows of the new plane.

A plane change binds that plane's documents (AppState.show_plane: the shown plane's mask and
strokes are what the tools, undo and autosave act on), shows its pixels (gui.state.stack_loading:
read whole once, kept in a cache, its neighbours read ahead), and redraws the Overview.  While a
stack is shown Page Up/Down step planes, so Previous/Next Image keep Ctrl+Page Up/Down only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QWidget

from core.io.images import ImageReadError
from gui import dialogs
from gui.canvas.view import Canvas
from gui.infra.settings import Settings
from gui.menus.actions import Actions
from gui.panels.plane_bar import PlaneBar
from gui.state.app_state import AppState
from gui.state.planes import plane_text
from gui.state.stack_loading import shown_plane_pixels

READ_AHEAD = 2  # planes read ahead on each side of the shown one, along its inner axis
COLD_WAIT_S = 0.03  # a plane not read yet: the window waits this long, then draws it once the read-ahead thread has it
OFF_THREAD_BYTES = 8 * 2**20  # smaller planes read in a few ms: on the window's thread, drawn at once
POLL_MS = 10  # how often the window looks whether that plane has arrived


class PlaneUi(QObject):
    plane_shown = Signal(tuple)  # the view now shows this plane (tests and benches wait on it)

    def __init__(self, state: AppState, settings: Settings, parent: QWidget, canvas: Canvas, bar: PlaneBar,
                 actions: Actions, overview_changed: Callable[[], None]):
        super().__init__(parent)
        self.state, self.store, self.settings, self.parent_widget = state, state.store, settings, parent
        self.canvas, self.bar, self.a = canvas, bar, actions
        self._overview_changed = overview_changed
        a = actions
        a.next_plane.triggered.connect(lambda: self.step_inner(1))
        a.prev_plane.triggered.connect(lambda: self.step_inner(-1))
        a.next_time.triggered.connect(lambda: self.step("T", 1))
        a.prev_time.triggered.connect(lambda: self.step("T", -1))
        a.open_stack_folder.triggered.connect(self.ask_open_stack_folder)
        bar.plane_requested.connect(self.go)
        self._waiting: tuple | None = None  # (entry, plane) being read on the read-ahead thread
        self._poll = QTimer(self)
        self._poll.setInterval(POLL_MS)
        self._poll.timeout.connect(self._arrived)
        state.planes.events.axes.connect(self._keys)
        self._image_keys = {a.next_image: list(a.next_image.shortcuts()), a.prev_image: list(a.prev_image.shortcuts())}
        self._keys()

    # -- keys -----------------------------------------------------------------------------------
    def _keys(self, *_) -> None:
        """Page Up/Down step planes while a stack is shown, images otherwise."""
        planes, a = self.state.planes, self.a
        stack = planes.is_stack
        for action in (a.next_plane, a.prev_plane):
            action.setEnabled(stack)
        for action in (a.next_time, a.prev_time):
            action.setEnabled("T" in planes.axes)
        inner = planes.inner_axis()
        a.next_plane.setText("Next &Time Point" if inner == "T" else "Next &Plane")
        a.prev_plane.setText("Previous Time Poin&t" if inner == "T" else "Pre&vious Plane")
        plain = (QKeySequence("PgDown"), QKeySequence("PgUp"))
        for action, keys in self._image_keys.items():
            action.setShortcuts([k for k in keys if not (stack and k in plain)])
        a.next_plane.setShortcuts([plain[0]] if stack else [])  # one action per key at any time
        a.prev_plane.setShortcuts([plain[1]] if stack else [])

    # -- moving ---------------------------------------------------------------------------------
    def step_inner(self, step: int) -> bool:
        axis = self.state.planes.inner_axis()
        return self.step(axis, step) if axis else False

    def step(self, axis: str, step: int) -> bool:
        plane = self.state.planes.stepped(axis, step)
        return self.go(plane) if plane is not None else False

    def go(self, plane) -> bool:
        """Show ``plane`` of the shown stack (its documents and its pixels)."""
        if self.state.show_plane(tuple(plane)) is not None:
            return False
        return self.show_current()

    def show_current(self) -> bool:
        """Draw the shown stack's plane (after a plane change, or when the stack is shown).  A plane not
        read yet is read on the read-ahead thread: the window stays free (the previous plane stays
        drawn, not editable, meanwhile) and draws it when it arrives."""
        entry = self.state.current
        self._poll.stop()
        waited, self._waiting = self._waiting, None
        if entry is None or entry.stack is None or entry.doc is None:
            if waited is not None:
                self._editable()
            return False
        stack = entry.stack
        cache = entry.plane_pixels
        if cache is not None and cache.plane_bytes > OFF_THREAD_BYTES and stack.plane not in cache:
            cache.prefetch([stack.plane] + self._ahead())
            if not cache.wait(stack.plane, COLD_WAIT_S) and cache.pending(stack.plane):
                self._waiting = (entry, stack.plane)
                what = plane_text(stack.plane_axes, stack.plane, stack.planes)
                shown = self.canvas.document
                if shown is None or not any(d.mask is shown for d in stack.loaded().values()):
                    self.canvas.clear()  # another image was drawn: not that one meanwhile
                    self.canvas.placeholder = f"Reading {entry.name} {what}…"
                self.canvas.set_editing_enabled(False)  # the plane drawn is not the one the tools would edit
                self.state.message.emit(f"Reading {what}…", 3000)
                self._poll.start()
                return True
        if waited is not None:
            self._editable()
        try:
            pixels = shown_plane_pixels(entry)
        except (ImageReadError, OSError, ValueError) as exc:
            self.canvas.clear()
            self.canvas.placeholder = f"Cannot show {entry.name} {plane_text(stack.plane_axes, stack.plane)}\n\n{exc}"
            self.state.message.emit(str(exc), 10000)
            return False
        self.canvas.set_content(pixels, entry.doc)
        self._overview_changed()
        entry.plane_pixels.prefetch(self._ahead())
        self.plane_shown.emit(stack.plane)
        return True

    def _arrived(self) -> None:
        """The plane being read has arrived (or its read failed: then it is read here, and says why)."""
        if self._waiting is None:
            self._poll.stop()
            return
        entry, plane = self._waiting
        if entry is not self.state.current or entry.stack is None or entry.stack.plane != plane \
                or entry.plane_pixels is None:
            self._poll.stop()
            self._waiting = None
            self._editable()
            return
        if plane in entry.plane_pixels or not entry.plane_pixels.pending(plane):
            self.show_current()

    def _editable(self) -> None:
        job = self.state.job
        self.canvas.set_editing_enabled(job is None or not job.blocks_editing)

    def _ahead(self) -> list[tuple]:
        """The planes to read next: nearest first along the inner axis, then the next time point."""
        planes = self.state.planes
        out = []
        inner = planes.inner_axis()
        for k in range(1, READ_AHEAD + 1):
            for step in (k, -k):
                p = planes.stepped(inner, step) if inner else None
                if p is not None:
                    out.append(p)
        if "T" in planes.axes and inner != "T":
            out += [p for p in (planes.stepped("T", 1), planes.stepped("T", -1)) if p is not None]
        return out

    # -- Open Stack Folder -----------------------------------------------------------------------
    def ask_open_stack_folder(self) -> None:
        folder = dialogs.ask_open_folder(self.parent_widget, self.settings.last_folder)
        if folder is not None:
            self.open_stack_folder(folder)

    def open_stack_folder(self, folder: str | os.PathLike) -> bool:
        """Open a folder of numbered planes as one stack (not as a list of images)."""
        from core.io.sources import is_plane_folder

        folder = Path(folder)
        if not is_plane_folder(folder):
            dialogs.show_error(self.parent_widget, "Could Not Open Stack Folder",
                               f"{folder.name or folder}: the folder's images are not numbered planes "
                               "(plane_000.tif, z01.png…), so it is not a stack; Open Folder lists its images.")
            return False
        store = self.store
        previous = store.current
        new = store.get(folder) is None
        entry = store.add([folder])[0]
        error = self.state.show(entry)
        if error:
            if new:
                store.remove(entry)
                self.state.show(previous if previous is not None and store.index_of(previous) >= 0
                                else store.neighbour(None, 1))
            dialogs.show_error(self.parent_widget, "Could Not Open", f"Could not open this folder:\n\n{error}")
            return False
        self.settings.last_folder = str(folder.parent)
        self.settings.add_recent(str(folder), stack=True)  # Open Recent opens it as a stack again
        return True
