"""QuPath GeoJSON: a ``FeatureCollection`` with one ``Polygon``/``MultiPolygon`` feature per
object, in full-resolution pixel coordinates (pixel corners, as QuPath), with
``properties.objectType: "annotation"`` and ``properties.classification: {name, color}``.

Outlines are simplified with topology kept, so every geometry is valid (shapely checks it).
Writing streams the features (a slide's mask may hold millions of objects).
Reading accepts a FeatureCollection, a single Feature or a bare list of features (QuPath
writes all three), takes the class from ``classification.name`` and fills pixel centres.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
from shapely.geometry import mapping, shape as to_shape

from core.atomic import atomic_path
from core.classes import ClassInfo
from core.io.formats import class_color, class_lookup, class_name, fail, load_json
from core.io.objects import ObjectOptions, MaskObject, iter_objects, rasterize


def feature(obj: MaskObject, classes: Sequence[ClassInfo], plane: dict[str, int] | None = None) -> dict:
    """One object's feature; ``plane`` ({"z": 3} or {"t": 1, "z": 3}, a stack's plane) goes where
    QuPath reads it (the geometry's ``plane``: c, z, t) and into the properties."""
    geometry = _ints(mapping(obj.geometry))
    properties = {"objectType": "annotation",
                  "classification": {"name": class_name(classes, obj.class_id),
                                     "color": list(class_color(classes, obj.class_id))}}
    if plane:
        geometry["plane"] = {"c": -1, "z": int(plane.get("z", 0)), "t": int(plane.get("t", 0))}
        properties.update({k: int(v) for k, v in plane.items()})
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def _ints(value):
    """Coordinates on pixel corners stay integers in the file (simplification keeps vertices)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (list, tuple)):
        return [_ints(v) for v in value]
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    return value


def write_geojson(path, labels, classes: Sequence[ClassInfo], options: ObjectOptions = ObjectOptions(),
                  instances=None) -> Path:
    """Streamed: each feature is written as its object is finished (``iter_objects``: band by band for a
    chunked mask), so memory holds the objects still open, never the whole document.  The file is
    written beside ``path`` and renamed over it when complete (``atomic_path``): an interrupted or
    failed write leaves the previous file, or none, never half a document."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write('{"type": "FeatureCollection", "features": [')
        for n, obj in enumerate(iter_objects(labels, options, instances)):
            f.write((",\n" if n else "\n") + json.dumps(feature(obj, classes)))
        f.write("\n]}\n")
    return Path(path)


class StackFeatures:
    """A stack's GeoJSON, one plane at a time: each plane's objects are written as the plane is
    added, each feature with its plane (``feature``); the file appears, whole, at ``close``."""

    def __init__(self, path, classes: Sequence[ClassInfo], options: ObjectOptions = ObjectOptions()):
        import contextlib

        self.path, self.classes, self.options = Path(path), classes, options
        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_path(self.path))
        self._file = self._stack.enter_context(open(tmp, "w", encoding="utf-8"))
        self._file.write('{"type": "FeatureCollection", "features": [')
        self._count = 0

    def add(self, labels, plane: dict[str, int], instances=None) -> None:
        """One plane's objects; with ``instances`` (the plane's ids, unique over the stack) an object is
        every pixel of one id, and its id is the feature's ``object_id``."""
        for obj in iter_objects(labels, self.options, instances):
            item = feature(obj, self.classes, plane)
            if instances is not None:
                item["properties"]["object_id"] = int(obj.instance)
            self._file.write((",\n" if self._count else "\n") + json.dumps(item))
            self._count += 1

    def close(self) -> Path:
        self._file.write("\n]}\n")
        self._stack.close()
        return self.path

    def abort(self) -> None:
        """Leave no file (the temporary one is removed): an error or cancel before ``close``."""
        error = RuntimeError("aborted")
        try:
            self._stack.__exit__(RuntimeError, error, None)
        except RuntimeError:
            pass


def is_geojson(doc) -> bool:
    return (isinstance(doc, dict) and doc.get("type") in ("FeatureCollection", "Feature")) or (
        isinstance(doc, list) and all(isinstance(f, dict) and f.get("type") == "Feature" for f in doc))


def read_geojson(path: Path, shape, classes: Sequence[ClassInfo] | None = None, doc=None) -> np.ndarray:
    doc = load_json(path) if doc is None else doc
    if not is_geojson(doc):
        raise fail(path, "not a GeoJSON feature collection")
    features = doc if isinstance(doc, list) else doc.get("features", [doc]) if doc["type"] == "FeatureCollection" \
        else [doc]
    if not isinstance(features, list):
        raise fail(path, "its features are not a list")
    lookup = class_lookup(path, classes)
    painted = []
    for n, feat in enumerate(features, start=1):
        props = feat.get("properties") or {} if isinstance(feat, dict) else {}
        cls = props.get("classification")
        name = cls.get("name") if isinstance(cls, dict) else cls
        if name is None:
            raise fail(path, f"feature {n} has no classification")
        try:
            geometry = to_shape(feat["geometry"])
        except Exception:  # noqa: BLE001 - shapely raises several types for bad GeoJSON
            raise fail(path, f"feature {n} has no valid geometry") from None
        painted.append((lookup(name), geometry))
    if shape is None:
        bounds = [g.bounds for _, g in painted if not g.is_empty]
        if not bounds:
            raise fail(path, "holds no geometry and does not record the image size; open it with its image")
        shape = (int(np.ceil(max(b[3] for b in bounds))), int(np.ceil(max(b[2] for b in bounds))))
    labels = np.zeros(tuple(shape[:2]), np.uint8)
    for cid, geometry in sorted(painted, key=lambda p: -_box_area(p[1])):  # enclosing objects first
        rasterize(geometry, labels.shape, labels, cid)
    return labels


def _box_area(geometry) -> float:
    if geometry.is_empty:
        return 0.0
    x0, y0, x1, y1 = geometry.bounds
    return (x1 - x0) * (y1 - y0)
