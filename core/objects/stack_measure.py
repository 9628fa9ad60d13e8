"""Measurements of a stack's objects: every plane through the 2-D measurement, with its plane; 3-D objects.

A 2-D model's objects live on planes, so a stack is measured plane by plane through the same 2-D
measurement as an image (core.objects.measure: scikit-image's ``regionprops_table`` on the plane's
raw pixels), each row led by the plane's ``t``/``z`` (only the stack's own plane axes).  The rows
go into one CSV as the planes finish (``StackMeasurements``), written beside its name and renamed
into place at ``close``, so a failure or a cancel leaves no half table.

Objects stitched across Z (core.objects.stitch) are one object on several planes: each plane's
row keeps the object's id in ``label``, and a second table, one row per 3-D object
(``<stem>_measurements_3d.csv``), gives its voxels, its volume in µm³ when the file states the X,
Y and Z sizes, the planes it spans, its 3-D centroid and its intensities over all its voxels.
Why two tables and not the 3-D columns repeated on every plane's row: summing a column over rows
must not count one volume once per plane, and a volume is known only after the object's last
plane, while the plane rows stream; one row per 3-D object is what Fiji's 3D Objects Counter and
MorphoLibJ's Analyze Regions 3D give, and CellProfiler keeps per-plane and per-object tables
apart in the same way.  The 3-D table is summed from the plane rows (areas, centroids, integrated
intensities), so it costs no second pass over the pixels.

API::

    StackMeasurements(path, plane_axes, columns, volumes_path=None, physical=None)
        .add(plane, instances, pixels=None, class_mask=None) -> int   # one plane's rows, written now
        .close() -> list[Path]    # the table (and the 3-D table when volumes_path is given)
        .abort()                  # no file left
    Volumes(plane_axes, columns, physical).add(plane, rows); .names; .rows()   # the 3-D table
    volumes(planes, plane_axes, physical=None, columns=Columns()) -> dict[str, list]
        # the 3-D table of (plane, instance labels) pairs in memory (no pixels: shape columns only)
"""

from __future__ import annotations

import contextlib
import csv
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from core.objects.measure import Columns, iter_rows


def plane_names(plane_axes: str) -> list[str]:
    """The columns that lead each row: the stack's plane axes, lower case (``t``, ``z``)."""
    return [a.lower() for a in plane_axes]


class StackMeasurements:
    """A stack's table, streamed plane by plane (see the module doc).  ``columns`` must name the
    stack's channels (``Columns(...).for_pixels(source)``); ``physical``: the stack's sizes
    ({"X", "Y", "Z"} in µm) for the 3-D table's µm columns."""

    def __init__(self, path, plane_axes: str, columns: Columns, volumes_path=None, physical: dict | None = None):
        from core.atomic import atomic_path

        self.path, self.plane_axes, self.columns = Path(path), plane_axes, columns
        self.volumes_path = None if volumes_path is None else Path(volumes_path)
        self.volumes = Volumes(plane_axes, columns, physical) if volumes_path is not None else None
        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_path(self.path, suffix=".csv"))
        self._file = self._stack.enter_context(open(tmp, "w", newline="", encoding="utf-8"))
        self._csv = csv.writer(self._file)
        self._csv.writerow(plane_names(plane_axes) + columns.names)
        self.count = 0

    def add(self, plane: Sequence[int], instances: np.ndarray, pixels: np.ndarray | None = None,
            class_mask: np.ndarray | None = None) -> int:
        """Measure one plane's objects (``instances``: its ids; ``pixels``: its raw H x W x C values)."""
        channels = len(self.columns.channel_names)
        if pixels is not None:
            pixels = np.asarray(pixels)
            pixels = pixels[..., None] if pixels.ndim == 2 else pixels
            if pixels.shape[2] != channels:
                raise ValueError(f"the plane has {pixels.shape[2]} channel(s) but the table measures {channels}")
        elif channels:
            raise ValueError("the table measures intensities, and the plane's pixels were not given")
        where = tuple(int(p) for p in plane)
        added = 0
        for batch in iter_rows(instances, pixels, class_mask, self.columns):
            self._csv.writerows(where + tuple(row) for row in batch)
            if self.volumes is not None:
                self.volumes.add(where, batch)
            added += len(batch)
        self._file.flush()
        self.count += added
        return added

    def close(self) -> list[Path]:
        """The table renamed into place, then the 3-D table; returns the files."""
        self._file.close()
        self._stack.close()
        done = [self.path]
        if self.volumes is not None:
            from core.atomic import atomic_path

            with atomic_path(self.volumes_path, suffix=".csv") as tmp, \
                    open(tmp, "w", newline="", encoding="utf-8") as f:
                out = csv.writer(f)
                out.writerow(self.volumes.names)
                out.writerows(self.volumes.rows())
            done.append(self.volumes_path)
        return done

    def abort(self) -> None:
        """Leave no table (the temporary file is removed)."""
        with contextlib.suppress(Exception):
            self._file.close()
        error = RuntimeError("aborted")
        with contextlib.suppress(RuntimeError):
            self._stack.__exit__(RuntimeError, error, None)


class Volumes:
    """One row per 3-D object, summed from the plane rows of ``columns`` (``add`` each plane's rows)."""

    def __init__(self, plane_axes: str, columns: Columns, physical: dict | None = None):
        self.plane_axes, self.columns = plane_axes, columns
        names = columns.names
        self._at = {n: names.index(n) for n in ("label", "class", "area", "centroid_x", "centroid_y")}
        self._channels = [(names.index(f"min_intensity{s}"), names.index(f"max_intensity{s}"),
                           names.index(f"integrated_intensity{s}")) for s in columns.channel_suffixes]
        self._z = plane_axes.index("Z") if "Z" in plane_axes else None
        self._t = plane_axes.index("T") if "T" in plane_axes else None
        physical = physical or {}
        self._um = tuple(float(physical[a]) for a in "XYZ") if all(physical.get(a) for a in "XYZ") else None
        self._objects: dict[int, list] = {}

    @property
    def names(self) -> list[str]:
        names = (["t"] if self._t is not None else []) + [
            "label", "class", "class_name", "voxels", "z_first", "z_last", "centroid_x", "centroid_y", "centroid_z"]
        for s in self.columns.channel_suffixes:
            names += [f"mean_intensity{s}", f"min_intensity{s}", f"max_intensity{s}", f"integrated_intensity{s}"]
        if self._um:
            names += ["volume_um3", "centroid_x_um", "centroid_y_um", "centroid_z_um"]
        return names

    def add(self, plane: Sequence[int], rows: Iterable[Sequence]) -> None:
        z = int(plane[self._z]) if self._z is not None else 0
        t = int(plane[self._t]) if self._t is not None else 0
        at = self._at
        for row in rows:
            label, area = int(row[at["label"]]), int(row[at["area"]])
            obj = self._objects.get(label)
            if obj is None:  # t, voxels, z first, z last, sums of x, y, z, class votes, per channel [min, max, sum]
                obj = self._objects[label] = [t, 0, z, z, 0.0, 0.0, 0.0, {},
                                              [[np.inf, -np.inf, 0.0] for _ in self._channels]]
            obj[1] += area
            obj[2], obj[3] = min(obj[2], z), max(obj[3], z)
            obj[4] += area * float(row[at["centroid_x"]])
            obj[5] += area * float(row[at["centroid_y"]])
            obj[6] += area * z
            votes = obj[7]
            votes[int(row[at["class"]])] = votes.get(int(row[at["class"]]), 0) + area
            for acc, (lo, hi, total) in zip(obj[8], self._channels):
                acc[0], acc[1] = min(acc[0], float(row[lo])), max(acc[1], float(row[hi]))
                acc[2] += float(row[total])

    def rows(self) -> list[tuple]:
        out = []
        for label in sorted(self._objects):
            t, voxels, z0, z1, sx, sy, sz, votes, channels = self._objects[label]
            cls = min(votes, key=lambda c: (-votes[c], c))  # most voxels, the lower id on a tie
            cx, cy, cz = sx / voxels, sy / voxels, sz / voxels
            row = ([t] if self._t is not None else []) + [
                label, cls, self.columns.class_name(cls), voxels, z0, z1, cx, cy, cz]
            for lo, hi, total in channels:
                row += [total / voxels, lo, hi, total]
            if self._um:
                ux, uy, uz = self._um
                row += [voxels * ux * uy * uz, cx * ux, cy * uy, cz * uz]
            out.append(tuple(row))
        return out


def volumes(planes: Iterable[tuple[Sequence[int], np.ndarray]], plane_axes: str,
            physical: dict | None = None, columns: Columns = Columns()) -> dict[str, list]:
    """The 3-D table of ``(plane, instance labels)`` pairs, as columns (shape columns only: no pixels)."""
    columns = columns.for_pixels(None)
    table = Volumes(plane_axes, columns, physical)
    for plane, labels in planes:
        for batch in iter_rows(np.asarray(labels), None, None, columns):
            table.add(plane, batch)
    rows = table.rows()
    return {n: [r[i] for r in rows] for i, n in enumerate(table.names)}

