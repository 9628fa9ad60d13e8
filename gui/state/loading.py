"""Turning a listed image into something to show: decode it, find its mask, make a document.

Opening reads only headers for every file given and decodes just the image shown; the
document is created on first view, from an existing mask beside the image when there is one
(core.masks.find_mask_for_image).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np

from core.classes import ClassInfo, complete_classes
from core.document import MaskDocument
from core.imageio import ImageReadError, load_image
from core.masks import MaskError, find_mask_for_image, read_mask

if TYPE_CHECKING:
    from gui.state.image_store import ImageEntry


def load_entry(entry: "ImageEntry", template: list[ClassInfo]) -> str | None:
    """Decode the image and create the document if needed; returns a note for the status bar.

    Raises ImageReadError when the image cannot be shown.
    """
    note = None
    if entry.image is None:
        image = load_image(entry.path)
        if entry.doc is not None and entry.doc.shape != image.rgb.shape[:2]:
            raise ImageReadError(f"{entry.name}: the file changed on disk; it is now "
                                 f"{image.width}x{image.height}, not the size of its open mask.")
        entry.image = image
    if entry.doc is None:
        rgb = entry.image.rgb
        classes = list(template)
        labels = np.zeros(rgb.shape[:2], np.uint8)
        source = find_mask_for_image(entry.path)
        if source is not None:
            try:
                labels = read_mask(source, shape=rgb.shape[:2], classes=classes)
                classes = complete_classes(classes, top=int(labels.max()) if labels.size else 0)
                note = f"Loaded the mask {source.name} for editing."
            except (MaskError, ValueError, OSError) as exc:
                note = f"Found {source.name} but could not load it: {exc}"
                source = None
        entry.mask_source = source
        entry.has_mask_file = source is not None or entry.has_mask_file
        entry.doc = MaskDocument(labels, classes)
    return note


def mark_mask_files(entries: Iterable["ImageEntry"]) -> None:
    """Note which images already have a mask file, for the file list's marks."""
    for entry in entries:
        entry.has_mask_file = find_mask_for_image(entry.path) is not None


_MASK_NAMES = ("{}_mask", "{}.mask", "{}_label", "{}_labels")


def without_masks(paths: list[Path]) -> list[Path]:
    """Drop files that are the masks of other listed images (``cells_mask.png`` beside
    ``cells.png``): list_images returns every image file, masks included."""
    stems = {p.stem.lower() for p in paths}
    masks = {pattern.format(stem) for stem in stems for pattern in _MASK_NAMES}
    return [p for p in paths if p.stem.lower() not in masks]
