"""Measurements of a stack's objects: every plane through the 2-D measurement, with its plane; volumes in 3-D.

A 2-D model's objects live on planes, so a stack is measured plane by plane through the same 2-D
measurement as an image (core.objects.measure, scikit-image's ``regionprops_table``: passed in as
``measure_plane`` until that module is merged here), each row gaining the plane's ``z`` (and ``t``).
Objects stitched across Z (core.objects.stitch) are one object on several planes: each plane's row
keeps its id in ``label``, and ``volumes`` gives each such object's voxel count, its volume in µm³
when the file states the X, Y and Z sizes, and the planes it spans.
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

Table = dict[str, list]
MeasurePlane = Callable[..., Table]


def measure_planes(planes: Iterable[tuple[tuple[int, ...], np.ndarray]], plane_axes: str,
                   measure_plane: MeasurePlane, intensity: Callable[[tuple[int, ...]], np.ndarray] | None = None
                   ) -> Table:
    """One table (columns of equal length) over ``(plane, instance labels)`` pairs: ``measure_plane(labels)``
    (or ``measure_plane(labels, intensity(plane))``) per plane, each row with its plane's ``t``/``z``."""
    table: Table = {}
    rows = 0
    for plane, labels in planes:
        part = measure_plane(labels) if intensity is None else measure_plane(labels, intensity(plane))
        n = len(next(iter(part.values()))) if part else 0
        where = {a.lower(): [int(p)] * n for a, p in zip(plane_axes, plane)}
        for key, values in {**where, **part}.items():
            table.setdefault(key, [None] * rows).extend(list(values))
        rows += n
        for values in table.values():  # a column a plane did not give stays None there
            values.extend([None] * (rows - len(values)))
    return table


def volumes(planes: Iterable[tuple[tuple[int, ...], np.ndarray]], plane_axes: str,
            physical: dict[str, float] | None = None) -> Table:
    """Per 3-D object (stitched id): ``label``, ``voxels``, ``volume_um3`` (when X, Y and Z sizes are
    known, else None), ``z_first``/``z_last`` (the planes it spans)."""
    counts: dict[int, int] = {}
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    z_axis = plane_axes.index("Z") if "Z" in plane_axes else None
    for plane, labels in planes:
        ids, n = np.unique(np.asarray(labels), return_counts=True)
        z = int(plane[z_axis]) if z_axis is not None else 0
        for i, c in zip(ids.tolist(), n.tolist()):
            if i == 0:
                continue
            counts[i] = counts.get(i, 0) + c
            first[i] = min(first.get(i, z), z)
            last[i] = max(last.get(i, z), z)
    physical = physical or {}
    voxel = physical["X"] * physical["Y"] * physical["Z"] if all(a in physical for a in "XYZ") else None
    ids = sorted(counts)
    return {"label": ids, "voxels": [counts[i] for i in ids],
            "volume_um3": [None if voxel is None else counts[i] * voxel for i in ids],
            "z_first": [first[i] for i in ids], "z_last": [last[i] for i in ids]}
