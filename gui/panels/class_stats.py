"""Pixel counts per class that stay cheap to keep current while painting a huge mask.

Counts are kept per 256x256 tile; an edit marks the tiles its dirty box touches and only
those are recounted, so the class list can show live counts on an 8192x8192 mask without a
full-image histogram after every stroke.  Qt-free.
"""

from __future__ import annotations

import numpy as np

from core.document.editing import Box

TILE = 256


class ClassCounts:
    def __init__(self, labels: np.ndarray):
        self._labels = labels
        h, w = labels.shape
        self._ty, self._tx = -(-h // TILE), -(-w // TILE)
        self._tiles = np.zeros((self._ty, self._tx, 256), np.int64)
        self._stale = np.ones((self._ty, self._tx), bool)
        self._total = np.zeros(256, np.int64)

    def rebind(self, labels: np.ndarray) -> None:
        """A new buffer of the same shape (MaskDocument.set_labels): recount everything."""
        self._labels = labels
        self._stale[:] = True

    def invalidate(self, box: Box | None = None) -> None:
        if box is None:
            self._stale[:] = True
            return
        if box.is_empty:
            return
        self._stale[box.y0 // TILE:(box.y1 - 1) // TILE + 1, box.x0 // TILE:(box.x1 - 1) // TILE + 1] = True

    @property
    def stale(self) -> bool:
        return bool(self._stale.any())

    def counts(self) -> np.ndarray:
        """(256,) pixels per class id, recounting only stale tiles."""
        if self._stale.any():
            for ty, tx in zip(*np.nonzero(self._stale)):
                block = self._labels[ty * TILE:(ty + 1) * TILE, tx * TILE:(tx + 1) * TILE]
                new = np.bincount(block.ravel(), minlength=256)
                self._total += new - self._tiles[ty, tx]
                self._tiles[ty, tx] = new
            self._stale[:] = False
        return self._total.copy()


class StoredCounts:
    """The counts a chunked mask keeps itself, updated chunk by chunk as it is written (a
    100,000 x 100,000 mask would need 300 MB of per-tile counts here)."""

    stale = False

    def __init__(self, labels):
        self._labels = labels

    def rebind(self, labels) -> None:
        self._labels = labels

    def invalidate(self, box: Box | None = None) -> None:
        pass  # the mask's own counts are current after every write

    def counts(self) -> np.ndarray:
        return np.asarray(self._labels.class_counts(), np.int64)


def counts_for(labels) -> "ClassCounts | StoredCounts":
    return ClassCounts(labels) if isinstance(labels, np.ndarray) else StoredCounts(labels)
