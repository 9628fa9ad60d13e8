"""labelme JSON: one polygon shape per object part, ``group_id`` = object number.

A hole is one more polygon of the same group with ``flags: {"hole": true}`` (labelme has no
holes; tools that ignore the flag fill them).  Points run through the centres of the boundary
pixels, because labelme's ``shape_to_mask`` fills with Pillow, outline included.
``imagePath`` is relative to the JSON file, ``imageData`` is null.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from core.atomic import write_text
from core.classes import ClassInfo
from core.io.formats import class_lookup, class_name, fail, load_json
from core.io.objects import ObjectOptions, centre_rings, mask_objects

LABELME_VERSION = "5.5.0"


def labelme_document(labels: np.ndarray, classes: Sequence[ClassInfo], image_path: str,
                     options: ObjectOptions = ObjectOptions(), instances: np.ndarray | None = None) -> dict:
    shapes = []
    for group, obj in enumerate(mask_objects(labels, options, instances), start=1):
        name = class_name(classes, obj.class_id)
        for ring, hole in centre_rings(obj, options.tolerance):
            ring = ring[:-1]
            shapes.append({"label": name, "points": [[float(x), float(y)] for x, y in ring],
                           "group_id": group, "description": "hole" if hole else "",
                           "shape_type": "polygon", "flags": {"hole": True} if hole else {}})
    h, w = labels.shape
    return {"version": LABELME_VERSION, "flags": {}, "shapes": shapes, "imagePath": image_path,
            "imageData": None, "imageHeight": int(h), "imageWidth": int(w)}


def write_labelme(path, labels: np.ndarray, classes: Sequence[ClassInfo], image: str | os.PathLike | None,
                  options: ObjectOptions = ObjectOptions(), instances: np.ndarray | None = None) -> Path:
    path = Path(path)
    image_path = _relative(Path(image), path.parent) if image else f"{path.stem}.png"
    return write_text(path, json.dumps(labelme_document(labels, classes, image_path, options, instances), indent=1))


def _relative(image: Path, folder: Path) -> str:
    if not image.is_absolute() and image.parent == Path("."):
        return image.name  # only a name is known
    try:
        return Path(os.path.relpath(image.resolve(), folder.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return image.name


def is_labelme(doc) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("shapes"), list)


def read_labelme(path: Path, classes: Sequence[ClassInfo] | None = None, doc=None) -> np.ndarray:
    """Paint the shapes as labelme's ``shape_to_mask`` does; holes (flagged) back to 0."""
    doc = load_json(path) if doc is None else doc
    if not is_labelme(doc):
        raise fail(path, "not a labelme file (no list of shapes)")
    try:
        h, w = int(doc["imageHeight"]), int(doc["imageWidth"])
    except (KeyError, TypeError, ValueError):
        raise fail(path, "has no imageHeight and imageWidth") from None
    lookup = class_lookup(path, classes)
    shapes = [s for s in doc["shapes"] if isinstance(s, dict)]
    parsed = []
    for i, shape in enumerate(shapes):
        try:
            points = [(float(x), float(y)) for x, y in shape.get("points", [])]
        except (TypeError, ValueError):
            raise fail(path, f"shape {i + 1} has malformed points") from None
        kind = shape.get("shape_type") or "polygon"
        if not ((kind == "polygon" and len(points) >= 3) or (kind == "rectangle" and len(points) == 2)):
            raise fail(path, f"shape {i + 1} is a {kind} with {len(points)} points, not a polygon")
        group, cid = shape.get("group_id"), lookup(shape.get("label", ""))
        parsed.append((i if group is None else ("g", group, cid), cid, kind, points, _is_hole(shape)))
    labels = np.zeros((h, w), np.uint8)
    for cid, shapes_of_object in _objects(parsed):
        _paint_object(labels, cid, shapes_of_object)
    return labels


def _is_hole(shape: dict) -> bool:
    flags = shape.get("flags")
    return bool(isinstance(flags, dict) and flags.get("hole"))


def _objects(shapes: list[tuple]) -> list[tuple[int, list[tuple]]]:
    """(group, class, kind, points, hole) -> (class, [(kind, points, hole)]) per object,
    in file order; one object per group id and label, a shape without a group is one alone."""
    groups: dict = {}
    for group, cid, kind, points, hole in shapes:
        groups.setdefault(group, (cid, []))[1].append((kind, points, hole))
    return list(groups.values())


def _paint_object(labels: np.ndarray, cid: int, shapes: list[tuple]) -> None:
    """Fill the object's outlines and clear its holes on a canvas of its own, as
    ``shape_to_mask`` does per shape, then set those pixels: a hole never erases another
    object (a part of one object may lie in another's hole)."""
    xy = np.concatenate([np.asarray(p, float) for _k, p, _h in shapes])
    h, w = labels.shape
    x0, y0 = max(0, int(np.floor(xy[:, 0].min()))), max(0, int(np.floor(xy[:, 1].min())))
    x1, y1 = min(w, int(np.ceil(xy[:, 0].max())) + 2), min(h, int(np.ceil(xy[:, 1].max())) + 2)
    if x0 >= x1 or y0 >= y1:
        return
    im = Image.new("1", (x1 - x0, y1 - y0))
    draw = ImageDraw.Draw(im)
    for want_hole in (False, True):
        for kind, points, hole in shapes:
            if hole != want_hole:
                continue
            local = [(x - x0, y - y0) for x, y in points]
            if kind == "rectangle":
                (ax, ay), (bx, by) = local
                draw.rectangle([min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)], fill=1, outline=1)
            else:
                draw.polygon(local, fill=0 if hole else 1, outline=1)
    labels[y0:y1, x0:x1][np.asarray(im, bool)] = cid
