"""Chunked label stores for masks of any size: an OME-Zarr label image, exported to a pyramidal OME-TIFF.

``LabelStore`` is a uint8 class-id image (or, with ``dtype``, a uint16/uint32 instance label image:
one id per object) in an OME-Zarr directory (NGFF 0.4: zarr format 2,
"/"-separated chunk keys, level "0" at full resolution, then "1", "2"... each half the size,
downsampled by nearest neighbour so every pixel stays a real class id).  It opens in zarr,
napari (ome-zarr plugin) and QuPath as an image and as a label image ("image-label" metadata
carries the class colours and names).

Writes are chunk-atomic: each block is exactly one zarr chunk, and zarr's LocalStore (from
zarr 3.1.3, the version pyproject.toml requires) writes a chunk to a temporary file and renames
it, so a crash never leaves half a chunk.  After a chunk is written and fsynced, an empty marker
``.unetseg-done/<row>.<col>`` records it; ``--resume`` skips recorded chunks (the run's settings are kept in the root attributes and must match).
``finish`` builds the label pyramid and the multiscales metadata, records the exact class counts
(read on the way) and drops the done record.

``export_ome_tiff`` streams a finished store into a tiled, pyramidal OME-TIFF (SubIFDs, zlib),
written to a temporary file and renamed.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from core.atomic import WriteError, atomic_path, describe_os_error, fsync

STORE_FORMATS = {"ome-zarr": ".ome.zarr", "ome-tiff": ".ome.tif"}
DONE_DIR = ".unetseg-done"
PYRAMID_MIN = 512  # stop halving once a level fits in this many pixels per side
TIFF_TILE = 512


class StoreError(ValueError):
    """A label store that cannot be opened or resumed; the message names it and says why."""


Block = tuple[int, int]


class LabelStore:
    """A label image on disk (uint8 class ids unless created with another ``dtype``), written block by
    block (one block = one chunk of level 0)."""

    def __init__(self, path: Path, group):
        self.path = path
        self._group = group
        self.array = group["0"]
        self.height, self.width = (int(n) for n in self.array.shape)
        self.chunks = tuple(int(n) for n in self.array.chunks)

    # -- opening
    @classmethod
    def create(cls, path: str | os.PathLike, height: int, width: int, chunks: tuple[int, int], run: dict,
               resume: bool = False, dtype: str = "uint8") -> "LabelStore":
        """A store for a run described by ``run`` (any JSON); with ``resume``, an unfinished one is reused.

        Without ``resume`` an existing store of ours is replaced; a folder that is not one is
        never deleted.
        """
        from core.io.sources import require_zarr

        zarr = require_zarr()

        path = Path(path)
        run = json.loads(json.dumps(run))
        if path.exists():
            existing = _our_attrs(path)
            if existing is None:
                raise StoreError(f"{path}: exists and is not a UNetSeg label store; remove it or choose another -o.")
            if resume:
                previous = existing.get("unetseg", {}).get("run")
                if previous != run:
                    raise StoreError(f"{path}: was started with other settings ({_difference(previous, run)}); "
                                     "run without --resume to start over.")
                return cls.open(path, mode="r+")
            _remove_tree(path)
        try:
            group = zarr.open_group(str(path), mode="w", zarr_format=2)
            group.create_array("0", shape=(height, width), chunks=chunks, dtype=dtype, fill_value=0,
                               chunk_key_encoding={"name": "v2", "separator": "/"}, compressors=_compressor(),
                               config={"write_empty_chunks": True})
            group.attrs.update({"unetseg": {"run": run}})
            (path / DONE_DIR).mkdir()
        except OSError as exc:
            raise WriteError(exc.errno, f"cannot write {path}: {describe_os_error(exc)}") from None
        return cls(path, group)

    @classmethod
    def open(cls, path: str | os.PathLike, mode: str = "r") -> "LabelStore":
        from core.io.sources import require_zarr

        zarr = require_zarr()

        path = Path(path)
        try:
            group = zarr.open_group(str(path), mode=mode, zarr_format=2)
            group["0"]
        except Exception as exc:  # noqa: BLE001
            raise StoreError(f"{path}: not a label store ({exc}).") from None
        return cls(path, group)

    @property
    def complete(self) -> bool:
        """Finished: every block written and the pyramid built (``finish``)."""
        return "multiscales" in self._group.attrs

    @property
    def run(self) -> dict | None:
        return self._group.attrs.get("unetseg", {}).get("run")

    # -- blocks
    def blocks(self) -> list[Block]:
        cy, cx = self.chunks
        return [(by, bx) for by in range(-(-self.height // cy)) for bx in range(-(-self.width // cx))]

    def region(self, block: Block) -> tuple[int, int, int, int]:
        """(y0, y1, x0, x1) of ``block`` in level 0."""
        (by, bx), (cy, cx) = block, self.chunks
        return by * cy, min(self.height, (by + 1) * cy), bx * cx, min(self.width, (bx + 1) * cx)

    def done(self) -> set[Block]:
        try:
            names = os.listdir(self.path / DONE_DIR)
        except FileNotFoundError:
            return set(self.blocks()) if self.complete else set()
        return {tuple(int(v) for v in n.split(".")) for n in names if n.count(".") == 1 and "." != n[0]}

    def write_block(self, block: Block, labels: np.ndarray) -> None:
        """Write one whole chunk, then record it as done (in that order: a crash between is harmless)."""
        y0, y1, x0, x1 = self.region(block)
        if labels.shape != (y1 - y0, x1 - x0):
            raise ValueError(f"block {block} is {y1 - y0}x{x1 - x0}, got labels of shape {labels.shape}")
        try:
            self.array[y0:y1, x0:x1] = labels
            chunk = self.path / "0" / str(block[0]) / str(block[1])
            fsync(chunk, chunk.parent, chunk.parent.parent)  # on disk before --resume trusts the marker
            marker = self.path / DONE_DIR / f"{block[0]}.{block[1]}"
            with atomic_path(marker) as tmp:
                tmp.write_bytes(b"")
        except OSError as exc:
            raise WriteError(exc.errno or errno.EIO,
                             f"cannot write {self.path} (rows {y0}:{y1}, columns {x0}:{x1}): "
                             f"{describe_os_error(exc)}") from None

    def read(self, y0: int = 0, y1: int | None = None, x0: int = 0, x1: int | None = None,
             level: int = 0) -> np.ndarray:
        array = self._group[str(level)]
        return np.asarray(array[y0:y1, x0:x1])

    @property
    def levels(self) -> list[tuple[int, int]]:
        """(width, height) of every level built so far."""
        out, level = [], 0
        while str(level) in self._group:
            h, w = self._group[str(level)].shape
            out.append((int(w), int(h)))
            level += 1
        return out

    # -- finishing
    def finish(self, classes: Sequence = (), name: str = "labels") -> None:
        """Build the label pyramid (nearest neighbour), write the NGFF metadata, drop the done-chunk record.

        The run's settings stay in the attributes, so ``--resume`` on a finished store with
        other settings is refused rather than returning the old result.
        """
        try:
            level, h, w = 0, self.height, self.width
            counted = self.array.dtype == np.uint8  # class ids; an instance image's ids are not counted
            counts = np.zeros(256, np.int64)
            while max(h, w) > PYRAMID_MIN:
                self._downsample(level, counts if level == 0 and counted else None)
                level += 1
                h, w = -(-h // 2), -(-w // 2)
            if level == 0 and counted:
                counts += class_counts(self.read())
            attrs = dict(self._group.attrs)
            attrs.update(ome_label_attrs(level + 1, classes, name))
            if counted:  # exact counts: an opened mask then knows every class present, a rare one included
                attrs["unetseg"] = {**attrs.get("unetseg", {}), "class_counts": counts.tolist()}
            self._group.attrs.update(attrs)
            shutil.rmtree(self.path / DONE_DIR, ignore_errors=True)
        except OSError as exc:
            raise WriteError(exc.errno, f"cannot write {self.path}: {describe_os_error(exc)}") from None

    def _downsample(self, level: int, counts: np.ndarray | None = None) -> None:
        """Build level + 1 from ``level``; ``counts`` (when given) gains the classes of every pixel read."""
        src = self._group[str(level)]
        h, w = src.shape
        nh, nw = -(-h // 2), -(-w // 2)
        cy, cx = self.chunks
        dst = self._group.create_array(str(level + 1), shape=(nh, nw), chunks=(min(cy, nh), min(cx, nw)),
                                       dtype=src.dtype, fill_value=0, overwrite=True,
                                       chunk_key_encoding={"name": "v2", "separator": "/"},
                                       compressors=_compressor())
        dy, dx = dst.chunks
        for y0 in range(0, nh, dy):
            for x0 in range(0, nw, dx):
                y1, x1 = min(nh, y0 + dy), min(nw, x0 + dx)
                block = np.asarray(src[2 * y0:2 * y1, 2 * x0:2 * x1])
                if counts is not None:
                    counts += class_counts(block)
                dst[y0:y1, x0:x1] = level_sample(block, 2 * y0, 2 * x0, 2)[2]


def class_counts(block: np.ndarray) -> np.ndarray:
    """Pixels per class id (256 values) of a uint8 block, bincounted in bands of 2**18 pixels
    (np.bincount copies to int64: 8 bytes a pixel)."""
    flat, counts = block.ravel(), np.zeros(256, np.int64)
    for i in range(0, flat.size, 2**18):
        counts += np.bincount(flat[i:i + 2**18], minlength=256)
    return counts


def pyramid_shapes(height: int, width: int) -> list[tuple[int, int]]:
    """(height, width) of level 0 and every level ``finish`` builds (halving until <= PYRAMID_MIN)."""
    shapes = [(height, width)]
    while max(shapes[-1]) > PYRAMID_MIN:
        h, w = shapes[-1]
        shapes.append((-(-h // 2), -(-w // 2)))
    return shapes


def ome_label_attrs(num_levels: int, classes: Sequence = (), name: str = "labels") -> dict:
    """The NGFF 0.4 multiscales + image-label attributes of a label pyramid (levels "0".."n-1")."""
    return {
        "multiscales": [{
            "version": "0.4", "name": name, "type": "nearest",
            "axes": [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
            "datasets": [{"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": [2.0 ** i] * 2}]}
                         for i in range(num_levels)],
        }],
        "image-label": {
            "version": "0.4",
            "colors": [{"label-value": int(c.id), "rgba": [*map(int, c.color), 0 if c.id == 0 else 255]}
                       for c in classes],
            "properties": [{"label-value": int(c.id), "name": c.name} for c in classes],
        },
    }


def label_classes(attrs: dict) -> list:
    """Classes (ClassInfo) an NGFF "image-label" names (``ome_label_attrs``'s, at the top level of
    ``attrs`` or under "ome"): a mask keeps its class names and colours when read back."""
    from core.classes import ClassInfo

    label = attrs.get("image-label") or (attrs.get("ome") or {}).get("image-label") or {}
    names = {p.get("label-value"): p.get("name") for p in label.get("properties", []) if isinstance(p, dict)}
    out = []
    for c in label.get("colors", []):
        try:
            cid = int(c["label-value"])
            if 0 <= cid <= 255:
                color = tuple(int(v) for v in c["rgba"][:3])
                out.append(ClassInfo(cid, str(names.get(cid) or f"class {cid}"), color))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def level_sample(block: np.ndarray, y0: int, x0: int, factor: int) -> tuple[int, int, np.ndarray]:
    """The one pyramid rule (nearest neighbour, so every pixel stays a real class id): pixel (i, j) of a
    level ``factor`` times smaller is pixel (i * factor, j * factor) of the finer one.

    ``block`` is a region of the finer level whose top-left is (y0, x0); returns the coarse pixels it
    decides as (cy0, cx0, values).  Halving k times equals one step with factor 2**k.
    """
    cy0, cx0 = -(-y0 // factor), -(-x0 // factor)
    return cy0, cx0, block[cy0 * factor - y0::factor, cx0 * factor - x0::factor]


def export_ome_tiff(store: LabelStore, target: str | os.PathLike, progress: Callable[[int, int], None] | None = None
                    ) -> Path:
    """A tiled, pyramidal OME-TIFF (the store's dtype, zlib) of a finished store, written atomically."""
    import tifffile

    target = Path(target)
    levels = store.levels
    total = sum(-(-h // TIFF_TILE) for _, h in levels)
    done = 0

    def tiles(level: int) -> Iterator[np.ndarray]:
        nonlocal done
        w, h = levels[level]
        for y0 in range(0, h, TIFF_TILE):
            band = store.read(y0, min(h, y0 + TIFF_TILE), 0, w, level)
            for x0 in range(0, w, TIFF_TILE):
                tile = band[:, x0:x0 + TIFF_TILE]
                if tile.shape != (TIFF_TILE, TIFF_TILE):
                    tile = np.pad(tile, ((0, TIFF_TILE - tile.shape[0]), (0, TIFF_TILE - tile.shape[1])))
                yield tile
            done += 1
            if progress:
                progress(done, total)

    dtype = np.dtype(getattr(getattr(store, "array", None), "dtype", np.uint8))  # class ids, or an instance store's
    with atomic_path(target, suffix=".tif") as tmp:
        with tifffile.TiffWriter(tmp, bigtiff=store.width * store.height * dtype.itemsize > 2**31, ome=True) as tw:
            for level, (w, h) in enumerate(levels):
                options = dict(shape=(h, w), dtype=dtype, tile=(TIFF_TILE, TIFF_TILE), compression="zlib",
                               photometric="minisblack")
                if level == 0:
                    tw.write(tiles(0), subifds=len(levels) - 1, metadata={"axes": "YX", "Name": store.path.stem},
                             **options)
                else:
                    tw.write(tiles(level), subfiletype=1, metadata=None, **options)
    return target


def remove_store(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _compressor():
    from numcodecs import Blosc

    return Blosc(cname="zstd", clevel=3, shuffle=Blosc.BITSHUFFLE)


def _our_attrs(path: Path) -> dict | None:
    """The root attributes when ``path`` is a store this module wrote, else None."""
    try:
        attrs = json.loads((path / ".zattrs").read_text())
    except (OSError, ValueError):
        return None
    return attrs if "unetseg" in attrs else None


def _difference(previous: dict | None, run: dict) -> str:
    if not previous:
        return "no settings recorded"
    keys = [k for k in sorted(set(previous) | set(run)) if previous.get(k) != run.get(k)]
    return ", ".join(f"{k}: {previous.get(k)!r} then, {run.get(k)!r} now" for k in keys[:3])


def _remove_tree(path: Path) -> None:
    try:
        shutil.rmtree(path)
    except OSError as exc:
        raise WriteError(exc.errno, f"cannot replace {path}: {describe_os_error(exc)}") from None
