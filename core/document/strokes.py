"""The annotation strokes of one image: what Live Training learns from, kept apart from the mask.

A strokes document is a MaskDocument whose pixels are class ids where the user painted a stroke
and ``UNANNOTATED`` (255) everywhere else, so the brush, the eraser, undo/redo and the dirty
state are the mask document's own; only the eraser differs: it un-annotates.  The array is the
sparse index mask the trainer takes as it is (core.training.loop.IGNORE is the same 255), and
its file is an index PNG ``<stem>_strokes.png`` beside the image (core.io.mask_naming), which
``unetseg train --masks`` reads as any index mask.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from core.classes import ClassInfo
from core.document.mask_document import MaskDocument

UNANNOTATED = 255  # equals core.training.loop.IGNORE (document may not import training)


class StrokeDocument(MaskDocument):
    erase_value = UNANNOTATED

    @classmethod
    def blank(cls, shape: tuple[int, int], classes: Sequence[ClassInfo]) -> "StrokeDocument":
        return cls(np.full(tuple(shape), UNANNOTATED, np.uint8), list(classes))

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
        return int(np.count_nonzero(self.labels != UNANNOTATED))

    def class_pixels(self) -> dict[int, int]:
        """Annotated pixels per class id (only ids with strokes)."""
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
