"""Building the Overview thumbnail of a slide with no small pyramid level, in the background.

The coarsest level is streamed tile block by tile block (core.io.overview.stream_overview) on a
worker; the result is cached in the app's data folder, so the next opening of the slide has its
overview at once.  ``built(entry)`` arrives in the GUI thread with ``entry.overview`` set.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from core.io.overview import load_cached, save_cached, stream_overview
from gui.infra.workers import Task, start_task
from gui.state.image_store import ImageEntry


class OverviewBuilder(QObject):
    built = Signal(object)  # the ImageEntry whose overview is now set
    failed = Signal(object, str)  # the entry, why

    def __init__(self, cache_dir: Path, parent: QObject | None = None):
        super().__init__(parent)
        self.cache_dir = Path(cache_dir)
        self._tasks: dict[Task, ImageEntry] = {}

    def cached(self, entry: ImageEntry):
        """The cached thumbnail of ``entry``'s file as it is now, or None."""
        return load_cached(self.cache_dir, entry.path)

    def building(self, entry: ImageEntry) -> bool:
        return any(e is entry for e in self._tasks.values())

    def request(self, entry: ImageEntry) -> None:
        """Build ``entry``'s overview on a worker unless one is under way."""
        if entry.source is None or self.building(entry):
            return
        source, path, folder = entry.source, entry.path, self.cache_dir

        def build(rep):
            thumb = stream_overview(source, progress=rep.progress, should_cancel=rep.cancelled)
            if thumb is not None:
                try:
                    save_cached(folder, path, thumb)
                except OSError:
                    pass  # no cache this time: built again next time
            return thumb

        task = start_task(build, "overview")
        self._tasks[task] = entry
        task.finished.connect(lambda thumb: self._done(task, thumb))
        task.failed.connect(lambda message: self._failed(task, message))
        task.cancelled.connect(lambda: self._tasks.pop(task, None))

    def _done(self, task: Task, thumb) -> None:
        entry = self._tasks.pop(task, None)
        if entry is not None and thumb is not None and entry.source is not None:
            entry.overview = thumb
            self.built.emit(entry)

    def _failed(self, task: Task, message: str) -> None:
        entry = self._tasks.pop(task, None)
        if entry is not None:
            self.failed.emit(entry, message)

    def stop(self) -> None:
        """Cancel and wait (the window closes)."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            task.wait()
        self._tasks.clear()
