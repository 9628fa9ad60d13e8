"""A small pyramidal 16-bit, two-channel slide whose halves differ in brightness, the bright one
speckled with rare very bright pixels.  Scaled by the slide's statistics (as segmenting it scales
every tile) the dim half is darker than the bright one; a tile scaled by its own is the opposite:
the dim half's noise spreads over 0..1, the bright half's specks push the rest down to 0.  A model
trained on tiles scaled by their own statistics learns it the wrong way round (tests of Live
Training on a raw slide's tiles)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

DIM, BRIGHT, SPECK = 1000, 3000, 20000  # channel 0's levels (channel 1 is the same everywhere)
SPECKS = 0.005  # of the bright half's pixels: above a 99.8th percentile of the slide, and of a tile


def two_level_halves(h: int = 768, w: int = 1024, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(H x W x 2 uint16 pixels, H x W truth: 0 on the dim left half, 1 on the bright right half)."""
    rng = np.random.default_rng(seed)
    pixels = np.empty((h, w, 2), np.float32)
    right = np.arange(w) >= w // 2
    pixels[..., 0] = np.where(right, BRIGHT, DIM)[None, :] + rng.normal(0, 60, (h, w))
    pixels[..., 0][(rng.random((h, w)) < SPECKS) & right[None, :]] = SPECK
    pixels[..., 1] = 500 + rng.normal(0, 60, (h, w))
    truth = np.broadcast_to((np.arange(w) >= w // 2).astype(np.uint8), (h, w)).copy()
    return np.clip(pixels, 0, 65535).astype(np.uint16), truth


def write_raw_pyramid(path: Path, hwc: np.ndarray, levels: int = 3, tile: int = 256) -> Path:
    """``hwc`` as a tiled pyramidal OME-TIFF (axes CYX, each level half the previous, block means)."""
    import tifffile

    with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tw:
        level = hwc
        for i in range(levels):
            data = np.ascontiguousarray(np.moveaxis(level, 2, 0))
            options = dict(tile=(tile, tile), compression="zlib", photometric="minisblack")
            if i == 0:
                tw.write(data, subifds=levels - 1, metadata={"axes": "CYX", "Channel": {"Name": ["A", "B"]}},
                         **options)
            else:
                tw.write(data, subfiletype=1, metadata=None, **options)
            h, w = level.shape[0] // 2 * 2, level.shape[1] // 2 * 2
            level = level[:h, :w].reshape(h // 2, 2, w // 2, 2, -1).mean((1, 3)).astype(level.dtype)
    return path
