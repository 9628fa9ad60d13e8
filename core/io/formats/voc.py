"""Pascal VOC segmentation: ``SegmentationClass/<stem>.png`` (class ids) and
``SegmentationObject/<stem>.png`` (object ids, 1 upwards, in object order), both palette PNGs
with the VOC colour map, so VOC tools and Pillow (mode ``P``) read ids and colours alike.
Index 255 is VOC's "void"; it is never written, so a mask may hold at most 254 objects.
Reading a class PNG back is reading an index PNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from core.atomic import atomic_path
from core.io.objects import ObjectOptions, mask_objects, rasterize


def voc_colormap(n: int = 256) -> np.ndarray:
    """The VOC devkit's colour map: the bits of the index spread over R, G and B."""
    cmap = np.zeros((n, 3), np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


def object_ids(labels: np.ndarray, options: ObjectOptions = ObjectOptions(),
               instances: np.ndarray | None = None) -> np.ndarray:
    objects = mask_objects(labels, ObjectOptions(min_area=options.min_area, tolerance=0), instances)
    if len(objects) > 254:
        raise ValueError(f"the mask has {len(objects)} objects; a VOC object PNG holds at most 254")
    ids = np.zeros(labels.shape, np.uint8)
    for n, obj in enumerate(objects, start=1):
        rasterize(obj.exact, labels.shape, ids, n)
    return ids


def write_palette_png(path, ids: np.ndarray) -> Path:
    pil = Image.fromarray(np.ascontiguousarray(ids, np.uint8))
    pil.putpalette(voc_colormap().tobytes())
    with atomic_path(path) as tmp:
        pil.save(tmp, format="PNG")
    return Path(path)


def write_voc(paths, labels: np.ndarray, options: ObjectOptions = ObjectOptions(),
              instances: np.ndarray | None = None) -> list[Path]:
    """Write the class PNG and, when a second path is given, the object PNG (one index per
    instance when ``instances`` is given, else per 8-connected component of one class)."""
    paths = [Path(p) for p in paths]
    objects = object_ids(labels, options, instances) if len(paths) > 1 else None
    out = [write_palette_png(paths[0], labels)]
    if objects is not None:
        out.append(write_palette_png(paths[1], objects))
    return out
