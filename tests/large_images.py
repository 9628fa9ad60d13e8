"""Writing test images for the large-image paths: pyramidal tiled TIFFs from repeated tiles, OME-Zarr."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_pyramid_tiff(path: Path, image: np.ndarray, levels: int = 2, tile: int = 64, ome: bool = True) -> Path:
    """``image`` as a tiled OME-TIFF with ``levels`` levels (each half the previous, block means)."""
    import tifffile

    with tifffile.TiffWriter(path, bigtiff=True, ome=ome) as tw:
        level = image
        for i in range(levels):
            options = dict(tile=(tile, tile), compression="zlib", photometric="rgb")
            if i == 0:
                tw.write(level, subifds=levels - 1, metadata={"axes": "YXS"} if ome else None, **options)
            else:
                tw.write(level, subfiletype=1, metadata=None, **options)
            h, w = level.shape[0] // 2 * 2, level.shape[1] // 2 * 2
            level = level[:h, :w].reshape(h // 2, 2, w // 2, 2, -1).mean((1, 3)).astype(level.dtype)
    return path


def write_repeated_tiff(path: Path, height: int, width: int, tile_pixels: np.ndarray) -> Path:
    """A huge tiled zlib TIFF whose tiles all repeat ``tile_pixels``: tiny on disk, quick to write."""
    import tifffile

    t = tile_pixels.shape[0]

    def tiles():
        for _ in range(-(-height // t) * -(-width // t)):
            yield tile_pixels

    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        tw.write(tiles(), shape=(height, width, 3), dtype=np.uint8, tile=(t, t), compression="zlib",
                 photometric="rgb")
    return path


def write_repeated_pyramid(path: Path, side: int, tile: int = 512, seed: int = 0) -> Path:
    """A side x side pyramidal tiled OME-TIFF (levels down to about one tile) written from four
    pre-compressed checker tiles: a 40,000 x 40,000 slide takes half a second and 26 MB."""
    import zlib

    import tifffile

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:tile, :tile]
    blobs = []
    for i in range(4):
        t = np.empty((tile, tile, 3), np.uint8)
        t[...] = rng.integers(60, 220, 3)
        t[((yy // 32 + xx // 32 + i) % 2) == 0] //= 2
        blobs.append(zlib.compress(t.tobytes(), 9))
    levels = max(1, int(np.ceil(np.log2(side / tile))) + 1)
    with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tw:
        for k in range(levels):
            s = max(1, side >> k)
            n = -(-s // tile)
            blocks = (blobs[(ty * 3 + tx) % 4] for ty in range(n) for tx in range(n))
            options = dict(shape=(s, s, 3), dtype=np.uint8, tile=(tile, tile), compression="zlib",
                           photometric="rgb")
            if k == 0:
                tw.write(blocks, subifds=levels - 1, metadata={"axes": "YXS"}, **options)
            else:
                tw.write(blocks, subfiletype=1, metadata=None, **options)
    return path


def write_flat_slide(path: Path, side: int, tile: int = 1024, seed: int = 0) -> Path:
    """A side x side pyramidal tiled OME-TIFF from four pre-compressed (zstd) checker tiles of
    different colours, each a few hundred bytes: a 100,000 x 100,000 slide takes about a second
    and 5 MB.  Tile (ty, tx) of every level is colour ``(ty * 3 + tx) % 4``."""
    import imagecodecs
    import tifffile

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:tile, :tile]
    blobs = []
    for _ in range(4):
        t = np.empty((tile, tile, 3), np.uint8)
        t[...] = rng.integers(60, 220, 3)
        t[((yy // 32 + xx // 32) % 2) == 0] //= 2
        blobs.append(imagecodecs.zstd_encode(t.tobytes(), level=19))
    levels = max(1, int(np.ceil(np.log2(side / tile))) + 1)
    with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tw:
        for k in range(levels):
            s = max(1, side >> k)
            n = -(-s // tile)
            blocks = (blobs[(ty * 3 + tx) % 4] for ty in range(n) for tx in range(n))
            options = dict(shape=(s, s, 3), dtype=np.uint8, tile=(tile, tile), compression="zstd",
                           photometric="rgb")
            if k == 0:
                tw.write(blocks, subifds=levels - 1, metadata={"axes": "YXS"}, **options)
            else:
                tw.write(blocks, subfiletype=1, metadata=None, **options)
    return path
