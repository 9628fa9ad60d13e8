"""ImageJ/Fiji ROI sets: ``<stem>_rois.zip``, one polygon ROI per object, named
``<class>-<n>`` (n counts the objects of that class), written and read by ``roifile``.

The polygon is the object's outline on pixel corners (as ImageJ's wand traces it); holes
and parts touching only at a corner are joined by zero-width cuts, so one ROI is one object.
The ROI's ``group`` holds the class id as well (ImageJ shows groups in colour), and its
stroke colour is the class colour.  Reading takes the class from the group, else the name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from shapely.geometry import Polygon

from core.atomic import atomic_path, short_error
from core.classes import ClassInfo
from core.io.formats import class_color, class_lookup, class_name, fail, needs_shape
from core.io.objects import ObjectOptions, joined_ring, objects_of, rasterize


def imagej_rois(labels, classes: Sequence[ClassInfo], options: ObjectOptions = ObjectOptions(),
                instances=None, plane: dict[str, int] | None = None, counts: dict[int, int] | None = None,
                position: int = 0) -> list:
    """One ROI per object (``instances``: separated objects, core.io.objects).  ``plane`` ({"z": 3},
    {"t": 1, "z": 3}: 0-based, a stack's plane) sets the ROI's hyperstack position (1-based z and t,
    as ImageJ counts) and ``position`` (0-based, the plane's number in file order) its stack
    position, for a stack of one channel; ``counts`` numbers the names over a whole stack."""
    import roifile

    objects = objects_of(labels, options, instances)  # block by block for a chunked mask
    counts = {} if counts is None else counts
    rois = []
    for obj in objects:
        counts[obj.class_id] = n = counts.get(obj.class_id, 0) + 1
        rings = [r for outer, holes in obj.rings() for r in (outer, *holes)]
        roi = roifile.ImagejRoi.frompoints(joined_ring(rings)[:-1],
                                           name=f"{class_name(classes, obj.class_id)}-{n}")
        roi.roitype = roifile.ROI_TYPE.POLYGON  # frompoints makes a freehand ROI
        roi.group = obj.class_id if obj.class_id <= 255 else 0
        r, g, b = class_color(classes, obj.class_id)
        roi.stroke_color = bytes((255, r, g, b))
        if plane:
            roi.z_position = int(plane.get("z", 0)) + 1
            roi.t_position = int(plane.get("t", 0)) + 1
            roi.position = int(position) + 1
        rois.append(roi)
    return rois


def write_imagej(path, labels, classes: Sequence[ClassInfo], options: ObjectOptions = ObjectOptions(),
                 instances=None) -> Path:
    return write_rois(path, imagej_rois(labels, classes, options, instances))


def write_rois(path, rois: list) -> Path:
    """A ROI set (an empty one is an empty zip), atomically."""
    import roifile

    with atomic_path(path, suffix=".zip") as tmp:
        if rois:
            roifile.roiwrite(tmp, rois, mode="w")
        else:  # an empty set is an empty zip, which ImageJ opens as no ROIs
            import zipfile

            zipfile.ZipFile(tmp, "w").close()
    return Path(path)


def read_imagej(path: Path, shape, classes: Sequence[ClassInfo] | None = None) -> np.ndarray:
    import zipfile

    import roifile

    h, w = needs_shape(path, shape, "an ImageJ ROI set")
    try:
        if zipfile.is_zipfile(path) and not zipfile.ZipFile(path).namelist():
            return np.zeros((h, w), np.uint8)
        rois = roifile.roiread(path)
    except Exception as exc:  # noqa: BLE001 - roifile raises ValueError, zipfile errors...
        raise fail(path, f"not an ImageJ ROI file ({short_error(exc)})") from None
    rois = rois if isinstance(rois, list) else [rois]
    lookup = class_lookup(path, classes)
    painted = []
    for n, roi in enumerate(rois, start=1):
        if roi.group:
            cid = int(roi.group)
        else:
            name = roi.name or ""
            cid = lookup(name.rsplit("-", 1)[0] if "-" in name else name)
        xy = np.asarray(roi.coordinates(), float)
        if xy.ndim != 2 or len(xy) < 3:
            raise fail(path, f"ROI {n} ({roi.name or 'unnamed'}) is not a polygon")
        painted.append((cid, Polygon(xy)))
    labels = np.zeros((h, w), np.uint8)
    for cid, polygon in sorted(painted, key=lambda p: -_box_area(p[1])):  # enclosing objects first
        rasterize(polygon, labels.shape, labels, cid)
    return labels


def _box_area(polygon) -> float:
    x0, y0, x1, y1 = polygon.bounds
    return (x1 - x0) * (y1 - y0)
