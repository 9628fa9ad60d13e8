"""Object formats: masks as per-object polygons that other tools read (one module each).

``coco_objects`` (Detectron2, MMDetection), ``yolo`` (Ultralytics), ``labelme``, ``voc``
(Pascal VOC palette PNGs), ``geojson`` (QuPath), ``imagej`` (Fiji ROI sets).  Each module has
``write_<fmt>(path, labels, classes, ...)`` and ``read_<fmt>(path, ...) -> labels``; the
generic entry points stay ``core.io.masks.write_mask`` / ``read_mask`` and the batch writer, and
file names come from ``core.io.mask_naming``.  Objects come from ``core.io.objects``.

This module holds what the readers share: JSON loading and class-name lookup, each failure a
one-sentence ``MaskError`` naming the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from core.atomic import short_error
from core.classes import ClassInfo, default_classes
from core.io.masks import MaskError


def fail(path: str | os.PathLike, reason: str) -> MaskError:
    return MaskError(f"{Path(path).name}: {reason}.")


def load_json(path: Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise fail(path, f"not valid JSON ({short_error(exc)})") from None
    except OSError as exc:
        raise fail(path, f"cannot be read ({short_error(exc)})") from None


def class_lookup(path: Path, classes: Sequence[ClassInfo] | None):
    """A function label -> class id: the class names (any case), 'class N', or a bare id."""
    known = {c.name.strip().lower(): c.id for c in default_classes(256)}
    known.update({c.name.strip().lower(): c.id for c in classes or ()})

    def lookup(label) -> int:
        text = str(label).strip()
        if text.lower() in known:
            return known[text.lower()]
        if text.isdigit() and int(text) <= 255:
            return int(text)
        raise fail(path, f"the label {text[:40]!r} is not one of the classes")

    return lookup


def class_name(classes: Sequence[ClassInfo], cid: int) -> str:
    for c in classes:
        if c.id == cid:
            return c.name
    raise ValueError(f"the mask contains class id {cid}, which is not in the class list")


def class_color(classes: Sequence[ClassInfo], cid: int) -> tuple[int, int, int]:
    for c in classes:
        if c.id == cid:
            return tuple(int(v) for v in c.color)
    return default_classes(cid + 1)[cid].color


def needs_shape(path: Path, shape, what: str) -> tuple[int, int]:
    if shape is None:
        raise fail(path, f"{what} does not record the image size; open it with its image")
    return int(shape[0]), int(shape[1])
