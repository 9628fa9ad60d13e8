"""COCO with one annotation per object (``iscrowd: 0``), as Detectron2 and MMDetection train.

An object without holes is a polygon list (one polygon per part); one with holes is an RLE of
its exact pixels, still ``iscrowd: 0`` (both frameworks accept that; polygons cannot hold
holes).  ``bbox`` and ``area`` are the object's pixels.  Reading needs nothing new:
``core.io.masks.read_coco`` decodes polygons and RLE alike.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from core.classes import ClassInfo
from core.io.objects import ObjectOptions, mask_objects, rasterize


def object_annotations(
    labels: np.ndarray,
    classes: Sequence[ClassInfo],
    image_id: int,
    start_ann_id: int,
    options: ObjectOptions = ObjectOptions(),
) -> list[dict]:
    from pycocotools import mask as coco_mask

    known = {c.id for c in classes}
    out = []
    for obj in mask_objects(labels, options):
        if obj.class_id not in known:
            raise ValueError(f"the mask contains class id {obj.class_id}, which is not in the class list")
        if obj.has_holes:
            pixels = rasterize(obj.exact, labels.shape)  # exact pixels: the outline is unsimplified
            rle = coco_mask.encode(np.asfortranarray(pixels))
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
        })
    return out
