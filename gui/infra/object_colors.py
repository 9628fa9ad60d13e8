"""Colours of objects: each id gets one of 256 saturated hues by a hash of the id, so objects painted
one after the other (consecutive ids) get far-apart colours; the canvas outlines an object in
it and the Objects table shows it beside the object's row."""

from __future__ import annotations

import colorsys

import numpy as np

PALETTE_SIZE = 256
SELECTED_RGB = (255, 255, 255)
_GOLDEN = 0x9E3779B1  # Knuth's multiplicative hash: id * 2^32 / phi


def _palette() -> np.ndarray:
    """256 saturated colours of well-spread hues (and a little lightness variety)."""
    out = np.zeros((PALETTE_SIZE, 3), np.uint8)
    for i in range(PALETTE_SIZE):
        hue = (i * 0.618033988749895) % 1.0
        value = (1.0, 0.85, 0.95)[i % 3]
        out[i] = [round(255 * c) for c in colorsys.hsv_to_rgb(hue, 0.85, value)]
    return out


PALETTE = _palette()


def palette_index(ids: np.ndarray) -> np.ndarray:
    """The palette entry of each id (the top byte of id * 2^32/phi)."""
    return ((np.asarray(ids, np.uint32) * np.uint32(_GOLDEN)) >> np.uint32(24)).astype(np.uint8)


def object_rgb(object_id: int) -> tuple[int, int, int]:
    """The colour an object is outlined in (the table's swatch uses it too)."""
    return tuple(int(v) for v in PALETTE[int(palette_index(np.array([object_id]))[0])])


class IdColors:
    """RGBA words per pixel of an id array: the object's colour, white for ``selected``, none for 0."""

    def __init__(self, alpha: int = 255, selected: int = 0):
        self.alpha = int(max(0, min(255, alpha)))
        self.selected = int(selected)
        rgba = np.zeros((PALETTE_SIZE, 4), np.uint8)
        rgba[:, :3] = PALETTE
        rgba[:, 3] = self.alpha
        self._words = rgba.view(np.uint32).ravel()
        self._white = np.array([[*SELECTED_RGB, 255]], np.uint8).view(np.uint32)[0, 0]

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        words = np.take(self._words, palette_index(ids))
        words[ids == 0] = 0
        if self.selected:
            words[ids == self.selected] = self._white
        return words
