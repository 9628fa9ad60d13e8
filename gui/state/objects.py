"""What the Objects mode shows: whether it is on, the selected object, and the shown image's
measurements (the Objects table and the class list's object counts read them).

Evented like the app state: the canvas, the Objects table and the class list observe it; the
objects controller (gui.controllers.objects) keeps ``table`` current as the objects are edited.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from psygnal import evented

UNAVAILABLE_ON_SLIDES = ("Editing objects is not available on whole-slide images yet: their mask is kept on "
                         "disk in chunks. Segment with a model that separates objects and Export writes its "
                         "objects (GeoJSON, ImageJ ROIs); open an image that fits in memory to paint and "
                         "measure objects.")


@dataclass(frozen=True, eq=False)
class ModelObjects:
    """A model's objects of a whole slide (core.segment.region_objects.RegionObjects: ids on disk),
    made when its mask was at history ``position``: they describe the mask while it is unchanged."""

    objects: object
    position: int

    def current(self, doc) -> bool:
        return doc is not None and doc.history.position == self.position


@dataclass(frozen=True, eq=False)
class ObjectTable:
    """Measurements of one document's objects: ``columns`` (name -> one value per object, rows
    sorted by label), as core.objects.measure makes them.  ``doc`` is the document they belong to."""

    doc: object
    columns: dict

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    def __len__(self) -> int:
        labels = self.columns.get("label")
        return 0 if labels is None else len(labels)

    def row_of(self, object_id: int) -> int:
        """The row of an object (-1: not in the table)."""
        labels = self.columns.get("label")
        if labels is None or not len(labels):
            return -1
        labels = np.asarray(labels)
        i = int(np.searchsorted(labels, object_id))
        return i if i < len(labels) and int(labels[i]) == object_id else -1

    def class_counts(self) -> dict[int, int]:
        """Objects per class id (an object's class: the majority class under it)."""
        classes = self.columns.get("class")
        if classes is None or not len(classes):
            return {}
        ids, counts = np.unique(np.asarray(classes, np.int64), return_counts=True)
        return {int(i): int(n) for i, n in zip(ids, counts)}

    def center_of(self, object_id: int) -> tuple[float, float] | None:
        """(x, y) of the object's centroid, None when it is not in the table."""
        row = self.row_of(object_id)
        if row < 0:
            return None
        return float(self.columns["centroid_x"][row]), float(self.columns["centroid_y"][row])


@evented
@dataclass(eq=False)
class ObjectsState:
    shown: bool = False  # the Objects mode: outlines of the objects, their tools
    selected: int = 0  # object id (0: none)
    table: ObjectTable | None = None  # the shown image's measurements, when measured
    measuring: bool = False  # a measurement is running
    note: str = ""  # why there is no table (a whole slide), or ""
