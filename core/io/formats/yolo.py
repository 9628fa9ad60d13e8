"""Ultralytics YOLO segmentation labels: ``labels/<stem>.txt`` plus ``data.yaml``.

One line per object: ``class x1 y1 x2 y2 ...`` normalised to [0, 1] by the image width and
height; class index = class id - 1 (YOLO has no background class).  The outline runs through
the centres of the object's boundary pixels (``core.io.objects.centre_ring``): Ultralytics fills
polygons with OpenCV's ``fillPoly``, which paints the outline too, so that is what gives the
object's own pixels back.  Holes and parts touching only at a corner are joined to the outer
ring by zero-width cuts, as CVAT does.  A label file holds no image size, so reading one needs
the image's (``read_mask(..., shape=)``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from core.atomic import write_text
from core.classes import ClassInfo
from core.io.formats import fail, needs_shape
from core.io.objects import ObjectOptions, centre_joined_ring, mask_objects


def yolo_lines(labels: np.ndarray, options: ObjectOptions = ObjectOptions(),
               instances: np.ndarray | None = None) -> list[str]:
    h, w = labels.shape
    lines = []
    for obj in mask_objects(labels, options, instances):
        ring = centre_joined_ring(obj, options.tolerance)[:-1]
        # + 1/1000 px: readers that truncate (OpenCV's int32 cast, Pillow) and readers that round
        # both land on the intended pixel centre, which c / w in decimal does not guarantee
        xy = np.clip((ring + 1e-3) / [w, h], 0.0, 1.0)
        lines.append(" ".join([str(obj.class_id - 1)] + [f"{v:.8g}" for v in xy.ravel()]))
    return lines


def write_yolo(path, labels: np.ndarray, options: ObjectOptions = ObjectOptions(),
               instances: np.ndarray | None = None) -> Path:
    lines = yolo_lines(labels, options, instances)
    return write_text(path, "".join(line + "\n" for line in lines))


def data_yaml(classes: Sequence[ClassInfo]) -> str:
    """Ultralytics' dataset file: names by class index (id - 1); images go in ``images/``."""
    top = max((c.id for c in classes), default=0)
    names = {c.id: c.name for c in classes}
    lines = ["# UNetSeg masks as YOLO segmentation labels: labels/<stem>.txt.",
             "# Put the images in images/ beside labels/ (Ultralytics pairs them by stem).",
             "path: .", "train: images", "val: images", f"nc: {top}", "names:"]
    lines += [f"  {i - 1}: {json.dumps(names.get(i, f'class {i}'))}" for i in range(1, top + 1)]
    return "\n".join(lines) + "\n"


def read_yolo(path: Path, shape) -> np.ndarray:
    """Paint every line's polygon with its class id (Pillow, outline included, as OpenCV)."""
    h, w = needs_shape(path, shape, "a YOLO label file")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise fail(path, "not a YOLO label file (not text)") from None
    polygons = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            values = [float(v) for v in line.split()]
        except ValueError:
            raise fail(path, f"line {n} is not numbers") from None
        cls, coords = values[0], values[1:]
        if cls != int(cls) or not 0 <= cls <= 254:
            raise fail(path, f"line {n} has the class index {line.split()[0]}, not 0-254")
        if len(coords) < 6 or len(coords) % 2:
            raise fail(path, f"line {n} is not a polygon (needs x y pairs, at least 3 points)")
        xy = np.asarray(coords).reshape(-1, 2)
        if xy.min() < 0 or xy.max() > 1:
            raise fail(path, f"line {n} has coordinates outside 0-1 (not normalised)")
        polygons.append((int(cls) + 1, [tuple(p) for p in xy * [w, h]]))
    im = Image.new("L", (w, h))
    draw = ImageDraw.Draw(im)
    for cid, points in sorted(polygons, key=lambda p: -_box_area(p[1])):  # enclosing ones first
        draw.polygon(points, fill=cid, outline=cid)
    return np.asarray(im, np.uint8).copy()


def _box_area(points) -> float:
    xy = np.asarray(points)
    return float(np.ptp(xy[:, 0]) * np.ptp(xy[:, 1]))
