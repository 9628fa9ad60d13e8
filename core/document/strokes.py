"""The annotation strokes of one image: what Live Training learns from, kept apart from the mask.

A strokes document is a MaskDocument whose pixels are class ids where the user painted a stroke
and ``UNANNOTATED`` (255) everywhere else, so the brush, the eraser, undo/redo and the dirty
state are the mask document's own; only the eraser differs: it un-annotates.  The array is the
sparse index mask the trainer takes as it is (core.training.loop.IGNORE is the same 255), and
its file is an index PNG ``<stem>_strokes.png`` beside the image (core.io.mask_naming), which
``unetseg train --masks`` reads as any index mask.

On a whole slide the strokes are a ChunkedLabels whose fill is 255 (``blank_chunked``): the
slide's chunked layout at full resolution, where unpainted chunks cost nothing, with the same
brush, eraser and undo.  It is saved beside the slide as ``<stem>_strokes.ome.zarr`` (an OME-Zarr
label image whose fill value is 255, written by ``ChunkedLabels.save_to``) and reopened with
``open_chunked_strokes``; its recovery copies are the chunked mask's (changed chunks only).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from core.classes import ClassInfo
from core.document.chunked_labels import DEFAULT_CACHE_BYTES, ChunkedLabels
from core.document.mask_document import MaskDocument

UNANNOTATED = 255  # equals core.training.loop.IGNORE (document may not import training)


class StrokeDocument(MaskDocument):
    erase_value = UNANNOTATED

    @classmethod
    def blank(cls, shape: tuple[int, int], classes: Sequence[ClassInfo]) -> "StrokeDocument":
        return cls(np.full(tuple(shape), UNANNOTATED, np.uint8), list(classes))

    @classmethod
    def blank_chunked(cls, shape: tuple[int, int], classes: Sequence[ClassInfo], chunk: int = 512,
                      cache_bytes: int = DEFAULT_CACHE_BYTES) -> "StrokeDocument":
        """No strokes on a slide of ``shape`` (rows, columns): chunks of 255 that are never stored."""
        h, w = shape
        return cls(ChunkedLabels.create(h, w, chunk=chunk, cache_bytes=cache_bytes, fill=UNANNOTATED), list(classes))

    def begin_stroke(self, tool: str = "brush", value: int | None = None) -> None:
        paint = self.active_class if value is None else int(value)
        if tool == "brush" and paint == UNANNOTATED:
            return  # id 255 means "not annotated" in a strokes file: it cannot be painted
        super().begin_stroke(tool, value)

    @property
    def is_blank(self) -> bool:
        return not self.annotated_pixels

    @property
    def annotated_pixels(self) -> int:
        return sum(self.class_pixels().values())

    def class_pixels(self) -> dict[int, int]:
        """Annotated pixels per class id (only ids with strokes); a slide's from its exact counts."""
        if self.is_chunked:
            counts = self.labels.class_counts()[:UNANNOTATED]
        else:
            counts = np.bincount(self.labels.ravel(), minlength=256)[:UNANNOTATED]
        return {int(i): int(counts[i]) for i in np.flatnonzero(counts)}

    def present_classes(self) -> list[int]:
        return list(self.class_pixels())


def read_strokes(path: str | os.PathLike, shape: tuple[int, int]) -> np.ndarray:
    """A strokes file as the sparse index mask; MaskError/ValueError (naming the file) when it
    is not an index mask of the image's size."""
    from core.io.masks import read_mask

    labels = np.asarray(read_mask(path, shape=shape))
    if labels.dtype != np.uint8 or labels.ndim != 2:
        raise ValueError(f"{Path(path).name}: a strokes file holds class ids (8-bit), not {labels.dtype}")
    return labels


def write_strokes(path: str | os.PathLike, labels: np.ndarray, classes: Sequence[ClassInfo]) -> Path:
    """Write the strokes as an index PNG (255 = not annotated), atomically."""
    from core.io.masks import write_mask

    return write_mask(path, np.asarray(labels), "index", classes)


def open_chunked_strokes(path: str | os.PathLike, shape: tuple[int, int] | None = None,
                         cache_bytes: int = DEFAULT_CACHE_BYTES) -> ChunkedLabels:
    """A slide's saved strokes (``<stem>_strokes.ome.zarr``), read lazily.  StoreError naming the
    file when it is not a strokes file (its unwritten pixels are not 255, so it is a mask) or not
    of the slide's ``shape`` (rows, columns)."""
    from core.io.label_store import StoreError

    labels = ChunkedLabels.open(path, cache_bytes=cache_bytes)
    problem = None
    if labels.fill != UNANNOTATED:
        problem = f"not a strokes file (its unpainted pixels are {labels.fill}, not {UNANNOTATED}: a mask?)"
    elif shape is not None and labels.shape != tuple(shape):
        problem = f"the strokes are {labels.width}x{labels.height}, the image {shape[1]}x{shape[0]}"
    if problem:
        labels.close()
        raise StoreError(f"{path}: {problem}.")
    if not labels.class_counts_exact:  # a file saved elsewhere: count once, so the strokes' pixels are exact
        labels.count_exactly()
    return labels
