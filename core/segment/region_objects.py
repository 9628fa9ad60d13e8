"""The objects of a region the app segments block by block (Segment View, a whole slide's Segment)
with a model that separates objects.

Why: streamed segmentation (core.segment.streaming.segment_blocks) gives each block's class map
with the model's boundary class still in it; the objects, and the folding of the boundary into
their classes, need the whole region's seeds joined across blocks (core.objects.instances).  The
command line does it on its class store (core.cli.segment_large -> separate_store); the app's
chunked mask is no label store, so the region's class map is written into one here, in a private
scratch folder, and ``separate_store`` makes the objects there, exactly as for ``unetseg segment``.
Then ``folded()`` gives the region's class map back block by block, with no boundary pixel left,
for the mask; the object ids stay in ``array`` (a uint32 OME-Zarr label store, read lazily) for a
slide's exports, or come whole with ``ids()`` for a region that fits in memory.

The caller gives a private folder (the app: core.document.scratch_folders, whose names let a
killed process's folders be swept at the next start); it is removed by ``close``, when the object
is collected, and at exit.
"""

from __future__ import annotations

import shutil
import weakref
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from core.io.label_store import LabelStore
from core.objects.instances import InstanceSpec

Area = tuple[int, int, int, int]  # (y0, y1, x0, x1) in image pixels


class RegionObjects:
    """One region's class map (written as it is segmented) and, after ``separate``, its objects."""

    def __init__(self, folder: Path, area: Area, chunks: tuple[int, int], spec: InstanceSpec):
        y0, y1, x0, x1 = (int(v) for v in area)
        self.area, self.spec, self.folder = (y0, y1, x0, x1), spec, Path(folder)
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(folder), True)
        chunks = (max(1, min(int(chunks[0]), y1 - y0)), max(1, min(int(chunks[1]), x1 - x0)))
        self.classes = LabelStore.create(self.folder / "classes.zarr", y1 - y0, x1 - x0, chunks,
                                         {"region": [y0, y1, x0, x1], "instances": spec.to_json()})
        self.objects: LabelStore | None = None

    @property
    def origin(self) -> tuple[int, int]:
        return self.area[0], self.area[2]

    def write(self, y0: int, x0: int, labels: np.ndarray) -> None:
        """A piece of the region's class map, boundary included (``y0``/``x0``: image pixels)."""
        oy, ox = self.origin
        h, w = labels.shape
        self.classes.array[y0 - oy:y0 - oy + h, x0 - ox:x0 - ox + w] = labels

    def separate(self, progress: Callable[[str, int, int], None] | None = None) -> LabelStore:
        """The objects of the whole region (every piece written), and its class map folded."""
        from core.segment.instance_stream import separate_store

        self.objects = separate_store(self.classes, self.classes.path.with_name("instances.ome.zarr"), self.spec,
                                      progress=progress, name="objects")
        return self.objects

    def folded(self) -> Iterator[tuple[int, int, np.ndarray]]:
        """(y0, x0 in image pixels, class ids) of each block of the folded class map."""
        oy, ox = self.origin
        for block in self.classes.blocks():
            y0, y1, x0, x1 = self.classes.region(block)
            yield oy + y0, ox + x0, self.classes.read(y0, y1, x0, x1)

    @property
    def array(self):
        """The object ids (a 2-D zarr array over the region, uint32, 0 = background)."""
        if self.objects is None:
            raise ValueError("the region's objects are not made yet (separate first)")
        return self.objects.array

    def ids(self) -> np.ndarray:
        """The object ids of the region in memory (uint32)."""
        return np.asarray(self.array[:, :], np.uint32)

    @property
    def count(self) -> int:
        """Objects in the region (ids are 1..count)."""
        from core.segment.instance_stream import read_object_classes

        return max(0, len(read_object_classes(self.objects.path)) - 1) if self.objects is not None else 0

    def close(self) -> None:
        """Remove the scratch folder (the objects are gone with it)."""
        self._finalizer()


def place_objects(current: np.ndarray | None, shape: tuple[int, int], area: Area, ids: np.ndarray) -> np.ndarray:
    """An image's object ids with ``area`` replaced by ``ids`` (numbered after the objects left
    outside it, so no id is shared): what Segment View writes into a document's object layer."""
    y0, y1, x0, x1 = area
    out = np.zeros(shape, np.uint32) if current is None else np.array(current, np.uint32, copy=True)
    out[y0:y1, x0:x1] = 0
    top = np.uint32(out.max()) if out.size else np.uint32(0)
    region = out[y0:y1, x0:x1]
    found = ids != 0
    region[found] = ids[found] + top
    return out
