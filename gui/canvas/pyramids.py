"""Zoomed-out reductions of the shown image, built on a worker the first time they are needed
and kept with the image's entry so coming back to it needs no rebuild."""

from __future__ import annotations

from gui.canvas.layers import ImageLayer
from gui.infra.raster import build_pyramid
from gui.infra.workers import Task, start_task
from gui.state.image_store import ImageEntry


class PyramidBuilder:
    def __init__(self) -> None:
        self._tasks: set[Task] = set()

    def request(self, layer: ImageLayer, entry: ImageEntry | None) -> None:
        rgb = layer.rgb
        task = start_task(lambda _rep: build_pyramid(rgb), "pyramid")
        self._tasks.add(task)

        def done(levels) -> None:
            self._tasks.discard(task)
            layer.set_levels(levels)
            if entry is not None and entry.image is not None and entry.image.rgb is rgb:
                entry.levels.update(levels)

        task.finished.connect(done)
        task.failed.connect(lambda _m: self._tasks.discard(task))

    def wait(self) -> None:
        for task in list(self._tasks):
            task.wait()
