"""``unetseg convert IN -o OUT.ome.tif|OUT.ome.zarr``: a tiled, pyramidal 8-bit RGB copy of any image.

The input is read through ``core.io.sources`` region by region (tiled TIFFs and OME-Zarr stream;
formats that decode only whole are decoded once, which is the point of converting them, so
the decompression-bomb limit is lifted for this explicit request).  Pixels are converted to
8-bit RGB by the app's rules.  Each pyramid level is the 2x2 mean of the one above, down to
512 pixels; levels are built chunk by chunk, so memory stays bounded.

* OME-TIFF: BigTIFF, 512x512 zlib tiles, levels as SubIFDs (what QuPath, napari and tifffile read).
* OME-Zarr: NGFF 0.4 (zarr format 2), axes c, y, x.

Both are written beside the target and renamed into place at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from core.atomic import WriteError, atomic_path, describe_os_error

TILE = 512
CHUNK = 1024
Progress = Callable[[int, int], None]


def convert(source_path: str | os.PathLike, target: str | os.PathLike, progress: Progress | None = None) -> Path:
    from core.io.sources import open_source

    source_path, target = Path(source_path), Path(target)
    name = target.name.lower()
    if not name.endswith((".ome.tif", ".ome.tiff", ".zarr")):
        raise ValueError(f"{target.name}: the output must end in .ome.tif or .ome.zarr")
    if target.resolve() == source_path.resolve():
        raise ValueError(f"{target.name}: the output would overwrite the input")
    with _no_bomb_limit():
        source = open_source(source_path)
    with source:
        levels = _level_sizes(source.height, source.width)
        counter = _Counter(progress, sum(-(-h // TILE) * -(-w // TILE) for w, h in levels) * 2)
        work = target.parent / f".{target.name}.partial-{os.getpid()}"
        try:
            _remove(work)
            from core.io.sources import require_zarr

            zarr = require_zarr()

            group = zarr.open_group(str(work if name.endswith(".zarr") else work.with_suffix(".levels")), mode="w",
                                    zarr_format=2)
            if name.endswith(".zarr"):
                _copy_level0(source, group, counter)
                _build_levels(group, source, levels, first=1, counter=counter)
                group.attrs["multiscales"] = [_multiscales(target.stem, len(levels), channel=True)]
                _remove(target)
                os.replace(work, target)
            else:
                _build_levels(group, source, levels, first=1, counter=counter)
                _write_tiff(source, group, levels, target, counter)
        except OSError as exc:
            if isinstance(exc, WriteError):
                raise
            raise WriteError(exc.errno, f"cannot write {target}: {describe_os_error(exc)}") from None
        finally:
            _remove(work)
            _remove(work.with_suffix(".levels"))
    return target


@contextlib.contextmanager
def _no_bomb_limit():
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = limit


class _Counter:
    def __init__(self, progress: Progress | None, total: int):
        self.progress, self.total, self.done = progress, total, 0

    def add(self, n: int = 1) -> None:
        self.done += n
        if self.progress:
            self.progress(min(self.done, self.total), self.total)


def _level_sizes(h: int, w: int) -> list[tuple[int, int]]:
    levels = [(w, h)]
    while max(w, h) > TILE:
        w, h = -(-w // 2), -(-h // 2)
        levels.append((w, h))
    return levels


def _copy_level0(source, group, counter: _Counter) -> None:
    h, w = source.height, source.width
    arr = _create(group, "0", h, w)
    for y0 in range(0, h, CHUNK):
        for x0 in range(0, w, CHUNK):
            y1, x1 = min(h, y0 + CHUNK), min(w, x0 + CHUNK)
            arr[:, y0:y1, x0:x1] = np.moveaxis(source.read(y0, y1, x0, x1), 2, 0)
            counter.add(-(-(y1 - y0) // TILE) * -(-(x1 - x0) // TILE))


def _build_levels(group, source, levels, first: int, counter: _Counter) -> None:
    """Level k (k >= first) = 2x2 means of level k-1 (the source itself for level 1 when first == 1)."""
    for k in range(first, len(levels)):
        w, h = levels[k]
        pw, ph = levels[k - 1]
        if k == 1:
            read = source.read
        else:
            above = group[str(k - 1)]
            read = (lambda a: lambda y0, y1, x0, x1: np.moveaxis(np.asarray(a[:, y0:y1, x0:x1]), 0, 2))(above)
        arr = _create(group, str(k), h, w)
        for y0 in range(0, h, CHUNK):
            for x0 in range(0, w, CHUNK):
                y1, x1 = min(h, y0 + CHUNK), min(w, x0 + CHUNK)
                block = read(2 * y0, min(ph, 2 * y1), 2 * x0, min(pw, 2 * x1))
                arr[:, y0:y1, x0:x1] = np.moveaxis(_half(block, y1 - y0, x1 - x0), 2, 0)
                counter.add(-(-(y1 - y0) // TILE) * -(-(x1 - x0) // TILE))


def _half(block: np.ndarray, h: int, w: int) -> np.ndarray:
    """2x2 means (rounded) of an RGB block; an odd last row/column is repeated."""
    block = np.pad(block, ((0, 2 * h - block.shape[0]), (0, 2 * w - block.shape[1]), (0, 0)), mode="edge")
    sums = block.reshape(h, 2, w, 2, 3).astype(np.uint16).sum((1, 3))
    return ((sums + 2) // 4).astype(np.uint8)


def _create(group, name: str, h: int, w: int):
    from numcodecs import Blosc

    return group.create_array(name, shape=(3, h, w), chunks=(3, min(CHUNK, h), min(CHUNK, w)), dtype="uint8",
                              fill_value=0, chunk_key_encoding={"name": "v2", "separator": "/"},
                              compressors=Blosc(cname="zstd", clevel=3, shuffle=Blosc.SHUFFLE), overwrite=True)


def _multiscales(name: str, n: int, channel: bool) -> dict:
    axes = ([{"name": "c", "type": "channel"}] if channel else []) + \
        [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}]
    lead = [1.0] if channel else []
    return {"version": "0.4", "name": name, "type": "mean", "axes": axes,
            "datasets": [{"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": lead + [2.0 ** i] * 2}]}
                         for i in range(n)]}


def _write_tiff(source, group, levels, target: Path, counter: _Counter) -> None:
    import tifffile

    def tiles(k: int) -> Iterator[np.ndarray]:
        w, h = levels[k]
        for y0 in range(0, h, TILE):
            for x0 in range(0, w, TILE):
                y1, x1 = min(h, y0 + TILE), min(w, x0 + TILE)
                if k == 0:
                    tile = source.read(y0, y1, x0, x1)
                else:
                    tile = np.moveaxis(np.asarray(group[str(k)][:, y0:y1, x0:x1]), 0, 2)
                if tile.shape[:2] != (TILE, TILE):
                    tile = np.pad(tile, ((0, TILE - tile.shape[0]), (0, TILE - tile.shape[1]), (0, 0)))
                counter.add()
                yield np.ascontiguousarray(tile)

    with atomic_path(target, suffix=".tif") as tmp:
        with tifffile.TiffWriter(tmp, bigtiff=True, ome=True) as tw:
            for k, (w, h) in enumerate(levels):
                options = dict(shape=(h, w, 3), dtype=np.uint8, tile=(TILE, TILE), compression="zlib",
                               photometric="rgb")
                if k == 0:
                    tw.write(tiles(0), subifds=len(levels) - 1, metadata={"axes": "YXS", "Name": target.stem},
                             **options)
                else:
                    tw.write(tiles(k), subfiletype=1, metadata=None, **options)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()
