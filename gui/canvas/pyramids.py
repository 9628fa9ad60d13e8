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
        pixels = layer.pixels
        task = start_task(lambda _rep: build_pyramid(pixels), "pyramid")
        self._tasks.add(task)

        def done(levels) -> None:
            self._tasks.discard(task)
            layer.set_levels(levels)
            image = entry.image if entry is not None else None
            if image is not None and (image.rgb is pixels or image.pixels is pixels):
                entry.levels.update(levels)

        task.finished.connect(done)
        task.failed.connect(lambda _m: self._tasks.discard(task))

    def wait(self) -> None:
        for task in list(self._tasks):
            task.wait()
