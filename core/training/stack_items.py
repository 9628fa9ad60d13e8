"""Training items of one image and its mask: the image itself, or each annotated plane of a stack.

The model is 2-D, so a stack trains as the 2-D images its annotated planes are (docs/interfaces.md):
a plane with at least one annotated voxel (any id but 255, "not annotated") becomes an item with
its own 8-bit view and raw channels, read from the lazy source plane by plane; planes without
annotations are never decoded, so no crop can come from them.  The mask must have the image's
planes (core.io.label_stacks.check_planes: one sentence naming both shapes); a 2-D mask beside a
stack, or a mask stack beside a 2-D image, is refused the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from core.training.raw_input import TrainingImage

IGNORE = 255
STACK_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8", ".zarr")
MASK_STACK_SUFFIXES = (".tif", ".tiff", ".zarr", ".npy")


def read_items(image_path: Path, mask_path: Path, classes: Sequence | None = None) -> list[tuple[TrainingImage, np.ndarray]]:
    """(item, labels) pairs of one image and its mask; ImageReadError/MaskError name the file."""
    source = _stack_source(image_path)
    if source is None:
        return [_flat_item(image_path, mask_path, classes)]
    with source:
        return _plane_items(image_path, mask_path, source)


def _stack_source(path: Path):
    """The lazy source when ``path`` is a stack (header only), else None (a 2-D image)."""
    if path.suffix.lower() not in STACK_SUFFIXES and not path.is_dir():
        return None
    from core.io.images import ImageReadError
    from core.io.sources import open_source

    try:
        source = open_source(path)
    except ImageReadError:
        return None  # load_image reads it, or says what is wrong with it
    if not source.planes:
        source.close()
        return None
    return source


def _flat_item(image_path: Path, mask_path: Path, classes) -> tuple[TrainingImage, np.ndarray]:
    from core.io.images import load_image
    from core.io.label_stacks import check_planes
    from core.io.masks import read_mask

    im = load_image(image_path)
    image = TrainingImage(image_path, im.rgb, im.pixels, im.channel_names, im.nan_count)
    if mask_path.suffix.lower() == ".zarr" or mask_path.is_dir():  # an OME-Zarr label image
        from core.io.label_stacks import read_label_stack

        return image, read_label_stack(mask_path, "", im.rgb.shape[:2])[0]
    if mask_path.suffix.lower() in MASK_STACK_SUFFIXES:
        planes = _mask_planes(mask_path)
        if planes is not None and planes[0]:  # a label stack beside a 2-D image
            check_planes(mask_path, planes[0], planes[1], "", im.rgb.shape[:2])
    return image, read_mask(mask_path, shape=im.rgb.shape[:2], classes=classes, image_name=image_path.name)


def _mask_planes(mask_path: Path):
    """(plane axes, shape) of a mask file that is a label stack; None when it is not one."""
    from core.io.label_stacks import StackReader
    from core.io.masks import MaskError

    try:
        with StackReader(mask_path) as reader:
            return reader.plane_axes, reader.shape
    except (MaskError, ValueError, OSError):
        return None


def _plane_items(image_path: Path, mask_path: Path, source) -> list[tuple[TrainingImage, np.ndarray]]:
    from core.io.label_stacks import StackReader, check_planes, stack_format
    from core.io.masks import MaskError, read_mask

    h, w = source.height, source.width
    shape = tuple(source.planes) + (h, w)
    try:
        stack_format(mask_path)
    except MaskError:  # a 2-D mask format (PNG, JSON...): it cannot hold the planes
        flat = read_mask(mask_path, image_name=image_path.name)
        check_planes(mask_path, "", flat.shape, source.plane_axes, shape)
    items = []
    with StackReader(mask_path, source.plane_axes) as reader:
        check_planes(mask_path, reader.plane_axes, reader.shape, source.plane_axes, shape)
        for plane in np.ndindex(*source.planes):
            labels = reader.read_plane(plane)
            if not (labels != IGNORE).any():
                continue  # nothing annotated on this plane: it teaches nothing, so it is never read
            pixels = source.read_raw(0, h, 0, w, plane=plane)
            rgb = source.read(0, h, 0, w, plane=plane)
            item = TrainingImage(image_path, rgb, pixels, list(source.channel_names), 0, tuple(plane),
                                 source.plane_axes)
            items.append((item, np.ascontiguousarray(labels)))
    if not items:
        # a mask stack with nothing annotated: one empty item, so the caller counts the image as skipped
        plane = (0,) * len(source.planes)
        items.append((TrainingImage(image_path, source.read(0, h, 0, w, plane=plane),
                                    source.read_raw(0, h, 0, w, plane=plane), list(source.channel_names), 0,
                                    plane, source.plane_axes), np.full((h, w), IGNORE, np.uint8)))
    return items
