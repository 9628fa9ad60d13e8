"""Instance label images on disk: one integer id per pixel, 0 = no object.

Written as a zlib-compressed TIFF, uint16 while the largest id is under 65535, else uint32
(docs/interfaces.md).  In a *training* file the dtype's largest value (65535 in 16-bit,
2^32 - 1 in 32-bit) means "not annotated"; the app reads such pixels as "no object" and says
how many there were.  Every problem is a MaskError naming the file and the reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from core.atomic import atomic_path, short_error
from core.io.masks import MaskError

UNANNOTATED = {np.dtype(np.uint16): 65535, np.dtype(np.uint32): 2**32 - 1}


def file_dtype(largest_id: int) -> np.dtype:
    """uint16 while ids stay under 65535 (its largest value means "not annotated"), else uint32."""
    return np.dtype(np.uint16) if int(largest_id) < 65535 else np.dtype(np.uint32)


def write_instances(path: str | os.PathLike, ids: np.ndarray) -> Path:
    """Write object ids as a TIFF label image, atomically (a failure leaves no partial file)."""
    import tifffile

    ids = np.asarray(ids)
    if ids.ndim != 2 or ids.dtype.kind not in "ui":
        raise ValueError(f"object ids are an H x W integer array, not {ids.dtype} {ids.shape}")
    top = int(ids.max()) if ids.size else 0
    if top >= 2**32 - 1 or (ids.size and int(ids.min()) < 0):
        raise ValueError(f"{Path(path).name}: object ids must be within 0..{2**32 - 2:,}")
    path = Path(path)
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, ids.astype(file_dtype(top), copy=False), photometric="minisblack",
                         compression="zlib")
    return path


def read_instances(path: str | os.PathLike, shape: tuple[int, int] | None = None,
                   image: str | os.PathLike | None = None) -> tuple[np.ndarray, int]:
    """(uint32 ids, pixels marked "not annotated" and read as 0) of a label image.

    ``shape`` (rows, columns): the image's; a file of another size is refused with a message
    naming both files (``image``)."""
    import tifffile

    path = Path(path)
    try:
        with tifffile.TiffFile(path) as tif:
            arr = tif.pages.first.asarray()
    except MemoryError:
        raise MaskError(f"{path.name}: the object labels are too large to load into memory.") from None
    except Exception as exc:  # noqa: BLE001 - tifffile raises many types for a bad file
        reason = "not a TIFF file" if "not a TIFF" in str(exc) else f"unreadable TIFF ({short_error(exc)})"
        raise MaskError(f"{path.name}: {reason}.") from None
    arr = np.asarray(arr)
    if arr.ndim == 3 and 1 in arr.shape:
        arr = arr.squeeze(axis=arr.shape.index(1))
    if arr.ndim != 2:
        raise MaskError(f"{path.name}: is a {'x'.join(map(str, arr.shape))} array, not a 2-D label image.")
    if arr.dtype.kind not in "uib":
        raise MaskError(f"{path.name}: holds {arr.dtype} values; object labels are integers.")
    if shape is not None and arr.shape != tuple(shape):
        where = f"the image {Path(image).name}" if image is not None else "the image"
        raise MaskError(f"{path.name} is {arr.shape[1]}x{arr.shape[0]}, but {where} is "
                        f"{shape[1]}x{shape[0]}: the object labels do not belong to it.")
    if arr.size and arr.dtype.kind == "i" and int(arr.min()) < 0:
        raise MaskError(f"{path.name}: has negative values; object ids are 0 or more.")
    if arr.dtype.itemsize > 4 and arr.size and int(arr.max()) >= 2**32 - 1:
        raise MaskError(f"{path.name}: has ids over {2**32 - 2:,}; an image holds at most that many objects.")
    unannotated = 0
    marker = UNANNOTATED.get(arr.dtype)
    if marker is not None:
        hole = arr == marker
        unannotated = int(np.count_nonzero(hole))
        if unannotated:
            arr = np.where(hole, 0, arr)
    return np.ascontiguousarray(arr, dtype=np.uint32), unannotated
