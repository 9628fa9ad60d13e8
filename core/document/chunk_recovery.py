"""The data of a chunked mask's recovery copy: only its changed chunks, in one zip.

Why: a whole-slide mask cannot be copied every autosave (10 GB at 100k x 100k), and the saved
mask already holds everything else.  Each changed level-0 chunk is one ``<y0>.<x0>.npy`` entry
(named by its top-left pixel, so it applies over a base saved with any chunking), streamed one
chunk at a time (memory stays one chunk), deflated, and the zip is written to a temporary file
and renamed (``core.atomic``).  ``core.document.recovery.RecoveryStore.save_chunked`` writes the manifest
naming the image, the saved mask, the chunk size and the chunk list, and ``load_chunked`` applies
the chunks over that mask (or over an empty one).
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np

from core.atomic import atomic_path
from core.document.chunked_labels import ChunkedLabels


def write_chunks(path: str | os.PathLike, labels: ChunkedLabels) -> list[tuple[int, int]]:
    """Write every chunk changed since the last save into the zip at ``path``; returns their keys."""
    keys = labels.changed_chunks()
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for key in keys:
                y0, y1, x0, x1 = labels.chunk_region(key)
                with zf.open(f"{y0}.{x0}.npy", "w", force_zip64=True) as f:
                    np.save(f, labels.read(y0, y1, x0, x1), allow_pickle=False)
    return keys


def read_chunks(path: str | os.PathLike) -> Iterator[tuple[int, int, np.ndarray]]:
    """(y0, x0, block) for every entry of a chunk zip, one at a time (ValueError when damaged)."""
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            parts = name[:-4].split(".") if name.endswith(".npy") else []
            if len(parts) != 2 or not all(p.isdigit() for p in parts):
                raise ValueError(f"unexpected entry {name!r}")
            block = np.load(io.BytesIO(zf.read(name)), allow_pickle=False)
            if block.ndim != 2 or block.dtype != np.uint8:
                raise ValueError(f"entry {name!r} is {block.dtype} {block.shape}, not a uint8 chunk")
            yield int(parts[0]), int(parts[1]), block


def apply_chunks(labels: ChunkedLabels, path: str | os.PathLike) -> int:
    """Write a chunk zip's blocks over ``labels`` (they count as changed: unsaved); returns how many."""
    n = 0
    h, w = labels.shape
    for y0, x0, block in read_chunks(path):
        if y0 + block.shape[0] > h or x0 + block.shape[1] > w:
            raise ValueError(f"a chunk at ({y0}, {x0}) lies outside the {w}x{h} mask")
        labels.write(y0, x0, block)
        n += 1
    return n


def data_name(key: str, stamp: int) -> str:
    return f"{key}-{stamp}.zip"


def is_chunk_data(path: Path) -> bool:
    return path.suffix == ".zip"
