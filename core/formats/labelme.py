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
from core.formats import class_lookup, class_name, fail, load_json
from core.objects import ObjectOptions, centre_rings, mask_objects

LABELME_VERSION = "5.5.0"


def labelme_document(labels: np.ndarray, classes: Sequence[ClassInfo], image_path: str,
                     options: ObjectOptions = ObjectOptions()) -> dict:
    shapes = []
    for group, obj in enumerate(mask_objects(labels, options), start=1):
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
                  options: ObjectOptions = ObjectOptions()) -> Path:
    path = Path(path)
    image_path = _relative(Path(image), path.parent) if image else f"{path.stem}.png"
    return write_text(path, json.dumps(labelme_document(labels, classes, image_path, options), indent=1))


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
    im = Image.new("L", (w, h))
    draw = ImageDraw.Draw(im)
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
        group = shape.get("group_id")
        parsed.append((i if group is None else ("g", group), lookup(shape.get("label", "")), kind, points,
                       _is_hole(shape)))
    for cid, kind, points, hole in paint_order(parsed):
        if kind == "rectangle":
            (x0, y0), (x1, y1) = points
            draw.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], fill=cid, outline=cid)
        else:
            draw.polygon(points, fill=0 if hole else cid, outline=cid)
    return np.asarray(im, np.uint8).copy()


def _is_hole(shape: dict) -> bool:
    flags = shape.get("flags")
    return bool(isinstance(flags, dict) and flags.get("hole"))


def paint_order(shapes: list[tuple]) -> list[tuple]:
    """(group, class, kind, points, hole) -> (class, kind, points, hole) in painting order:
    objects by bounding box, largest first (an object inside another's hole is painted after
    it), and within an object its outlines before its holes."""
    extent: dict = {}
    for group, _cid, _kind, points, hole in shapes:
        if not hole:
            xy = np.asarray(points)
            area = float(np.ptp(xy[:, 0]) * np.ptp(xy[:, 1]))
            extent[group] = max(extent.get(group, 0.0), area)
    order = sorted(range(len(shapes)), key=lambda i: (-extent.get(shapes[i][0], 0.0), str(shapes[i][0]),
                                                      shapes[i][4], i))
    return [shapes[i][1:] for i in order]
