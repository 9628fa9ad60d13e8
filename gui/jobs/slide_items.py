"""Live Training's items from the strokes on whole slides, read on a worker.

A slide's items are the tiles under its strokes at the level the user trains at
(core.training.slide_strokes.SlideStrokes): finding the stroked chunks and decoding those tiles
takes a moment, so it never runs on the GUI thread.  One read runs at a time; strokes painted
meanwhile ask for another, which starts when it ends.  Each slide keeps its SlideStrokes while its
level stays the same, so a read decodes only the regions that changed since the last one.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from gui.infra.workers import Reporter, Task, start_task


class SlideItemsReader(QObject):
    """``follow`` each slide with strokes, ``read()``; ``ready`` when ``items``/``errors`` hold the
    latest strokes."""

    ready = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._slides: dict[str, Any] = {}  # slide key -> its SlideStrokes at the level it is trained at
        self.items: dict[str, Any] = {}  # slide key -> SlideItems of the latest read
        self.errors: dict[str, str] = {}  # slide key -> why its strokes cannot be read (one sentence)
        self.reads = 0  # reads finished (tests and benches wait on it)
        self._task: Task | None = None
        self._again = False

    @property
    def busy(self) -> bool:
        return self._task is not None

    def follow(self, key: str, source: Any, strokes: Any, level: int) -> None:
        """Read ``strokes`` (a ChunkedLabels) of ``source`` at ``level`` from now on (a new level or
        new strokes start over; the same keeps the regions already read)."""
        from core.training.loop import TrainingDataError
        from core.training.slide_strokes import SlideStrokes

        kept = self._slides.get(key)
        if kept is not None and kept.source is source and kept.strokes is strokes and kept.level == level:
            return
        self.items.pop(key, None)
        self.errors.pop(key, None)
        try:
            self._slides[key] = SlideStrokes(source, strokes, level)
        except TrainingDataError as exc:
            self._slides.pop(key, None)
            self.errors[key] = str(exc)

    def keep_only(self, keys: set[str]) -> None:
        """Let go of the slides not in ``keys`` (no strokes any more, or closed)."""
        for key in [k for k in set(self._slides) | set(self.items) | set(self.errors) if k not in keys]:
            self._slides.pop(key, None)
            self.items.pop(key, None)
            self.errors.pop(key, None)

    def read(self) -> None:
        """Read every followed slide's items now, or as soon as the running read ends."""
        if self._task is not None:
            self._again = True
            return
        self._again = False
        jobs = list(self._slides.items())

        def run(rep: Reporter) -> dict[str, Any]:
            from core.training.loop import TrainingDataError

            out: dict[str, Any] = {}
            for key, slide in jobs:
                rep.check()
                try:
                    out[key] = slide, slide.items()
                except TrainingDataError as exc:
                    out[key] = slide, str(exc)
                except (OSError, MemoryError) as exc:  # a tile that cannot be decoded
                    out[key] = slide, f"{slide.name}: the tiles under the strokes cannot be read ({exc})."
            return out

        task = self._task = start_task(run, "slide-items")
        task.finished.connect(lambda result: self._done(task, result))
        task.failed.connect(lambda message: self._done(task, {}, message))
        task.cancelled.connect(lambda: self._done(task, {}))

    def _done(self, task: Task, result: dict[str, Any], message: str | None = None) -> None:
        if task is not self._task:
            return
        self._task = None
        for key, (slide, found) in result.items():
            if self._slides.get(key) is not slide:
                continue  # its level changed (or it was let go) meanwhile: the next read has it
            if isinstance(found, str):
                self.items.pop(key, None)
                self.errors[key] = found
            else:
                self.errors.pop(key, None)
                self.items[key] = found
        if message:
            for key, slide in self._slides.items():
                self.errors[key] = f"{slide.name}: {message}"
        self.reads += 1
        if self._again:
            self.read()  # strokes painted meanwhile: ``ready`` comes with that read
            return
        self.ready.emit()

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        task = self._task
        self._again = False
        if task is not None:
            task.cancel()
            task.wait(timeout_ms)
            self._done(task, {})
