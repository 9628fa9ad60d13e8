"""The files a chunked mask is kept in: OME-Zarr label images and (pyramidal) OME-TIFFs of class ids.

The bottom of the store layer (core.document.chunked_save and save_journal sit on it; the
document, core.document.chunked_labels, above): how a level array is created, opened lazily and
listed, and how chunks are compressed on our side (``CHUNK_CODEC``: scratch files, journals).
Nothing here knows about edits, caches or recovery.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from core.atomic import WriteError, describe_os_error, short_error
from core.io.label_store import StoreError, ome_label_attrs, pyramid_shapes

Key = tuple[int, int]


class ChunkCodec:
    """Blosc lz4 for our own chunk copies: fast enough that evicting a dirty chunk costs well under a ms."""

    def __init__(self):
        self._codec = None

    def _get(self):
        if self._codec is None:
            from numcodecs import Blosc

            self._codec = Blosc(cname="lz4", clevel=1, shuffle=Blosc.NOSHUFFLE)
        return self._codec

    def encode(self, arr: np.ndarray) -> bytes:
        return bytes(self._get().encode(np.ascontiguousarray(arr)))

    def decode(self, data: bytes) -> bytes:
        return bytes(self._get().decode(data))


CHUNK_CODEC = ChunkCodec()


def zarr_module():
    from core.io.sources import require_zarr

    return require_zarr()


def compressor():
    from numcodecs import Blosc

    return Blosc(cname="zstd", clevel=3, shuffle=Blosc.BITSHUFFLE)


def level_chunks(chunk: tuple[int, int], shape: tuple[int, int]) -> tuple[int, int]:
    """A level's chunk: the mask's, but never larger than the level."""
    return min(chunk[0], shape[0]), min(chunk[1], shape[1])


def new_level_array(group, name: str, shape: tuple[int, int], chunks: tuple[int, int], fill: int = 0):
    """A uint8 level array as LabelStore writes them; chunks holding only ``fill`` are never stored
    (a mask's background, or a strokes file's "not annotated")."""
    return group.create_array(name, shape=shape, chunks=chunks, dtype="uint8", fill_value=int(fill), overwrite=True,
                              chunk_key_encoding={"name": "v2", "separator": "/"}, compressors=compressor(),
                              config={"write_empty_chunks": False})


def write_empty_store(path: Path, height: int, width: int, chunk: tuple[int, int], classes: Sequence,
                      attrs: dict | None = None, fill: int = 0) -> list:
    """An OME-Zarr label image with every level present and all ``fill``; returns the level arrays."""
    zarr = zarr_module()
    try:
        group = zarr.open_group(str(path), mode="w", zarr_format=2)
        shapes = pyramid_shapes(height, width)
        arrays = [new_level_array(group, str(k), s, level_chunks(chunk, s), fill) for k, s in enumerate(shapes)]
        meta = ome_label_attrs(len(shapes), classes)
        meta["unetseg"] = attrs or {}
        group.attrs.update(meta)
    except OSError as exc:
        raise WriteError(exc.errno or errno.EIO, f"cannot write {path}: {describe_os_error(exc)}") from None
    return arrays


def fill_value(array) -> int:
    """What a level array holds where nothing is stored (a TIFF stores every pixel: 0)."""
    value = getattr(getattr(array, "metadata", None), "fill_value", None)
    try:
        return int(value) if value is not None and 0 <= int(value) <= 255 else 0
    except (TypeError, ValueError):
        return 0


def zarr_v2(array) -> bool:
    """The layout saves write (zarr v2, NGFF 0.4), which can be updated in place; another one (zarr
    v3 / NGFF 0.5) is rewritten whole in this layout."""
    return getattr(getattr(array, "metadata", None), "zarr_format", None) == 2


def stored_classes(attrs: dict) -> list:
    """Classes (ClassInfo) named in a store's image-label metadata: NGFF 0.4 at the top level, 0.5
    under "ome".  Loading keeps them, so a save does not replace them with the app's defaults."""
    from core.io.label_store import label_classes

    return label_classes(attrs)


def open_zarr_levels(path: Path) -> tuple[list, dict]:
    """Level arrays of an OME-Zarr label image (multiscales order, else "0", "1"...) and its attrs."""
    zarr = zarr_module()
    try:
        node = zarr.open(str(path), mode="r")
        if hasattr(node, "shape"):
            return [node], {}
        attrs = dict(node.attrs)
        ms = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
        names = [d["path"] for d in ms[0]["datasets"]] if ms else \
            [str(k) for k in range(64) if str(k) in node][:64]
        if not names:
            raise KeyError("no level 0")
        return [node[n] for n in names], attrs
    except Exception as exc:  # noqa: BLE001
        raise StoreError(f"{path}: not an OME-Zarr label mask ({short_error(exc)}).") from None


def open_tiff_levels(path: Path) -> tuple[list, list]:
    """Level arrays of a (pyramidal) TIFF of class ids, read lazily through tifffile's zarr store,
    and the callables that close it."""
    import tifffile

    zarr = zarr_module()
    try:
        tif = tifffile.TiffFile(path)
    except Exception as exc:  # noqa: BLE001
        raise StoreError(f"{path}: not a readable TIFF mask ({short_error(exc)}).") from None
    try:
        series = tif.series[0]
        mapped = _memmap_levels(path, len(series.levels))
        if mapped is not None:
            return mapped, [tif.close]
        store = series.aszarr()
        root = zarr.open(store, mode="r")
        arrays = [root] if hasattr(root, "shape") else [root[str(i)] for i in range(len(series.levels))]
    except Exception as exc:  # noqa: BLE001
        tif.close()
        raise StoreError(f"{path}: not a readable TIFF mask ({short_error(exc)}).") from None
    return arrays, [store.close, tif.close]


def _memmap_levels(path: Path, count: int) -> list | None:
    """An uncompressed TIFF's levels as read-only memory maps (plain ``tifffile.imwrite`` writes one
    strip, which its zarr store would decode whole for every read); None when it is not mappable."""
    import tifffile

    try:
        return [tifffile.memmap(path, level=k, mode="r") for k in range(count)]
    except (ValueError, OSError, TypeError):
        return None


def stored_chunk_keys(array, chunks: tuple[int, int]) -> set[Key] | None:
    """Keys, on the in-memory grid ``chunks``, of the chunks that hold what a local zarr v2 array
    stores on disk (each stored file chunk marks every in-memory chunk it overlaps).

    None when they cannot be listed: a TIFF, a zarr v3 / NGFF 0.5 store ("c/<y>/<x>" keys, perhaps
    sharded), another store.  The caller then takes every chunk: reading a missing one costs
    little, losing one costs a user's work.
    """
    try:
        from zarr.storage import LocalStore

        meta = array.metadata
        if not isinstance(array.store, LocalStore) or getattr(meta, "zarr_format", None) != 2:
            return None
        fy, fx = (int(c) for c in array.chunks)
        separator = meta.dimension_separator or "."
        root = Path(array.store.root) / array.path
    except (AttributeError, ImportError, TypeError, ValueError):
        return None
    if not root.is_dir():
        return set()
    if separator == ".":
        names = [name.split(".") for name in os.listdir(root)]
    else:
        names = [(row.name, name) for row in root.iterdir() if row.is_dir() for name in os.listdir(row)]
    (cy, cx), (h, w), keys = chunks, array.shape, set()
    for parts in names:
        if len(parts) == 2 and all(p.isdigit() for p in parts):
            by, bx = int(parts[0]), int(parts[1])
            for y in range(by * fy // cy, -(-min(h, (by + 1) * fy) // cy)):
                for x in range(bx * fx // cx, -(-min(w, (bx + 1) * fx) // cx)):
                    keys.add((y, x))
    return keys


def mask_fingerprint(path: str | os.PathLike) -> str:
    """What tells whether a saved mask changed since it was read; "" when it does not exist.

    A TIFF: core.io.fingerprint's (its bytes, or samples of a large one).  An OME-Zarr folder:
    every folder's modification time (the root's aside) and inode and every metadata file's bytes,
    a save's journal and new levels left out.  A chunk written
    anew (zarr writes each to a temporary file and renames it; so do our saves) or deleted changes
    its folder's time, and a store replaced by another has new inodes.  Not a stat per chunk file
    as ``file_fingerprint`` does: that took 3.3 s for the 38,000 chunks of a 100k mask, at every
    open and save.  (A program that rewrites a chunk file in place, without a rename, goes unseen.)
    """
    import hashlib

    path = Path(path)
    if not path.is_dir():
        from core.io.fingerprint import file_fingerprint

        return file_fingerprint(path)
    digest = hashlib.sha256(b"store")
    folders = [path]
    try:
        while folders:
            folder = folders.pop()
            st = os.stat(folder)
            when = st.st_mtime_ns if folder != path else 0  # the root's time moves with a save's journal
            digest.update(f"{folder.relative_to(path).as_posix()} {when} {st.st_ino}\n".encode())
            below, meta = [], []
            with os.scandir(folder) as entries:
                for entry in entries:
                    if folder == path and (entry.name.startswith(".unetseg-journal") or ".unetseg-new" in entry.name):
                        continue  # a save under way or abandoned: the mask is what it was until it is applied
                    if entry.is_dir(follow_symlinks=False):
                        below.append(entry.name)
                    elif entry.name in _METADATA:
                        meta.append(entry.name)
            for name in sorted(meta):
                digest.update(f"{name}\n".encode() + (folder / name).read_bytes())
            folders += [folder / name for name in sorted(below, reverse=True)]
    except FileNotFoundError:
        return ""
    return digest.hexdigest()[:16]


_METADATA = frozenset({".zarray", ".zattrs", ".zgroup", "zarr.json"})
