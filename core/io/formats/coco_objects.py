"""COCO with one annotation per object (``iscrowd: 0``), as Detectron2 and MMDetection train.

An object without holes is a polygon list (one polygon per part); one with holes is an RLE of
its exact pixels, still ``iscrowd: 0`` (both frameworks accept that; polygons cannot hold
holes).  ``bbox`` and ``area`` are the object's pixels.  Reading needs nothing new:
``core.io.masks.read_coco`` decodes polygons and RLE alike.

The RLE is built from the object's bounding box (``object_pixels``), not from an image-sized
canvas: its runs are found in the box and placed in the image's column-major order, so memory
and work follow the object's size, not the image's (a small object with a hole on a slide-sized
mask costs its box).  The string is the one ``pycocotools.mask.encode`` gives for the full canvas.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from core.classes import ClassInfo
from core.io.objects import MaskObject, ObjectOptions, mask_objects, object_pixels


def object_annotations(
    labels: np.ndarray,
    classes: Sequence[ClassInfo],
    image_id: int,
    start_ann_id: int,
    options: ObjectOptions = ObjectOptions(),
    instances: np.ndarray | None = None,
    object_ids: bool = False,
) -> list[dict]:
    """One annotation per object; ``object_ids`` (with ``instances``) records each object's id as
    ``object_id`` (a stack's id, the same in its instance labels, measurements and other planes)."""
    from pycocotools import mask as coco_mask

    known = {c.id for c in classes}
    out = []
    for obj in mask_objects(labels, options, instances):
        if obj.class_id not in known:
            raise ValueError(f"the mask contains class id {obj.class_id}, which is not in the class list")
        if obj.has_holes:  # exact pixels: the outline is unsimplified
            h, w = labels.shape
            rle = coco_mask.frPyObjects({"size": [h, w], "counts": rle_counts(obj, (h, w))}, h, w)
            segmentation = {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}
        else:
            segmentation = [[float(v) for v in outer[:-1].ravel()] for outer, _ in obj.rings()]
        out.append({
            "id": start_ann_id + len(out),
            "image_id": image_id,
            "category_id": obj.class_id,
            "segmentation": segmentation,
            "area": float(obj.area),
            "bbox": [float(v) for v in obj.bbox],
            "iscrowd": 0,
            **({"object_id": int(obj.instance)} if object_ids and instances is not None else {}),
        })
    return out


def rle_counts(obj: MaskObject, shape: tuple[int, int]) -> list[int]:
    """COCO's uncompressed RLE of the object's pixels on an image of ``shape``: run lengths in
    column-major order, background first, from the object's bounding box alone."""
    h, w = shape
    pixels, (x0, y0) = object_pixels(obj)
    padded = np.zeros((pixels.shape[0] + 2, pixels.shape[1]), np.int8)  # background above and below
    padded[1:-1] = pixels
    change = np.diff(padded, axis=0).T  # per box column: +1 where a run starts, -1 where it ends
    start_col, start_row = np.nonzero(change == 1)  # column-major order, as COCO counts
    end_col, end_row = np.nonzero(change == -1)
    starts = (x0 + start_col).astype(np.int64) * h + y0 + start_row
    ends = (x0 + end_col).astype(np.int64) * h + y0 + end_row
    touching = starts[1:] == ends[:-1]  # a box as tall as the image: a run goes on into the next column
    starts, ends = starts[np.r_[True, ~touching]], ends[np.r_[~touching, True]]
    bounds = np.empty(2 * len(starts), np.int64)
    bounds[0::2], bounds[1::2] = starts, ends
    counts = np.diff(np.concatenate([[0], bounds, [h * w]])).tolist()
    return counts[:-1] if len(counts) > 1 and counts[-1] == 0 else counts  # as encode: no empty last run
