"""Instance label image files: one id per object, 0 = background (docs/interfaces.md).

Written as ``<stem>_instances.tif`` (``core.io.mask_naming``): uint16 when the largest id is
under 65535, else uint32, zlib-compressed; ImageJ, napari, QuPath, Cellpose and StarDist read
it as it is.  Read from TIFF, PNG (8- or 16-bit grey) or ``.npy``, and from a tiled TIFF or a
zarr/OME-Zarr label array lazily (``open_label_image``: a slide's labels are never decoded whole).
Training annotations read the same files, where the dtype's largest value (65535 in 16-bit)
means "not annotated" (``NOT_ANNOTATED``); the measurement of a label image does not treat it
specially.

Every problem is a ``MaskError`` of one sentence naming the file: a float image, negative ids,
ids of 2**32 or more (more objects than 32 bits hold), not 2-D.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from core.atomic import atomic_path, short_error
from core.io.masks import MaskError

MAX_ID = 2**32 - 1
NOT_ANNOTATED = {np.dtype(np.uint16): 65535, np.dtype(np.uint32): MAX_ID}
LAZY_SUFFIXES = (".zarr",)


def _error(path, reason: str) -> MaskError:
    return MaskError(f"{Path(path).name}: {reason}.")


def label_dtype(max_id: int) -> np.dtype:
    """The file dtype for ids up to ``max_id``: uint16 below 65535, else uint32."""
    if max_id > MAX_ID:
        raise ValueError(f"{max_id} objects are more than 2^32 - 1, the most a 32-bit label image holds")
    return np.dtype(np.uint16) if max_id < 65535 else np.dtype(np.uint32)


def checked_ids(path, arr: np.ndarray) -> np.ndarray:
    """``arr`` (2-D, integer, ids 0..2**32-1) as uint32, or a MaskError naming ``path`` and why not."""
    arr = np.asarray(arr)
    if arr.ndim == 3 and 1 in arr.shape:
        arr = arr.squeeze(axis=arr.shape.index(1))
    if arr.ndim != 2:
        raise _error(path, f"is a {'x'.join(map(str, arr.shape))} array, not a 2-D label image")
    if arr.dtype == bool:
        return arr.astype(np.uint32)
    if not np.issubdtype(arr.dtype, np.integer):
        raise _error(path, f"holds {arr.dtype} values, but a label image holds whole-number object ids "
                           "(save it as uint16 or uint32)")
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0:
            raise _error(path, f"holds negative ids ({lo}); object ids are 0 (background) or more")
        if hi > MAX_ID:
            raise _error(path, f"holds the id {hi}, more than 2^32 - 1 objects, which a 32-bit label image "
                               "cannot hold")
    return arr.astype(np.uint32, copy=False)


def read_label_image(path: str | os.PathLike) -> np.ndarray:
    """A whole label image file as an H x W uint32 array."""
    from core.io.images import file_problem

    path = Path(path)
    problem = file_problem(path)
    if problem:
        raise _error(path, problem)
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                arr = tif.series[0].asarray() if tif.series else tif.pages.first.asarray()
        elif suffix == ".npy":
            with open(path, "rb") as f:
                if f.read(6) != b"\x93NUMPY":
                    raise _error(path, "not a NumPy .npy file")
                f.seek(0)
                arr = np.load(f, allow_pickle=False)
        else:
            from core.io.images import open_pillow

            with open_pillow(path) as (im, _):
                if im.mode not in ("L", "P", "1", "I", "F") and not im.mode.startswith("I;16"):
                    raise _error(path, f"a {im.mode} image is not a label image (expected one grey channel "
                                       "of object ids)")
                arr = np.asarray(im)
    except MaskError:
        raise
    except MemoryError:
        raise _error(path, "the label image is too large to load into memory") from None
    except Exception as exc:  # noqa: BLE001 - decoders raise many types for a bad file
        raise _error(path, f"cannot be read as a label image ({short_error(exc)})") from None
    return checked_ids(path, arr)


def open_label_image(path: str | os.PathLike):
    """A label image read lazily when it is tiled (a zarr array, or a tiled TIFF through tifffile's
    zarr store: a ``LazyLabels``, to be closed), else in memory (uint32).

    The lazy array is checked for its dtype only (floats refused); ids are checked block by block
    as they are read (``core.objects.measure.check_labels``).
    """
    path = Path(path)
    lazy = None
    if path.suffix.lower() in LAZY_SUFFIXES or path.is_dir():
        lazy = _zarr_level0(path)
    elif path.suffix.lower() in (".tif", ".tiff"):
        lazy = _tiled_tiff(path)
    if lazy is None:
        return read_label_image(path)
    if len(lazy.shape) != 2:
        raise _error(path, f"is a {'x'.join(map(str, lazy.shape))} array, not a 2-D label image")
    if not (np.issubdtype(np.dtype(lazy.dtype), np.integer) or np.dtype(lazy.dtype) == bool):
        raise _error(path, f"holds {lazy.dtype} values, but a label image holds whole-number object ids "
                           "(save it as uint16 or uint32)")
    return lazy


def _zarr_level0(path: Path):
    from core.io.sources import require_zarr

    zarr = require_zarr()
    try:
        node = zarr.open(str(path), mode="r")
        if not hasattr(node, "shape"):
            attrs = dict(node.attrs)
            multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales") or []
            node = node[multiscales[0]["datasets"][0]["path"]] if multiscales else node["0"]
        return LazyLabels(node)
    except Exception as exc:  # noqa: BLE001
        raise _error(path, f"not a readable zarr label image ({short_error(exc)})") from None


def _tiled_tiff(path: Path):
    import tifffile

    from core.io.sources import require_zarr

    try:
        with tifffile.TiffFile(path) as tif:
            if not tif.pages.first.is_tiled:
                return None
    except Exception as exc:  # noqa: BLE001
        raise _error(path, f"not a readable TIFF ({short_error(exc)})") from None
    zarr = require_zarr()
    store = tifffile.imread(path, aszarr=True, level=0)
    node = zarr.open(store, mode="r")
    return LazyLabels(node if hasattr(node, "shape") else node["0"], store.close)


class LazyLabels:
    """A lazily read label array (``shape``, ``dtype``, ``chunks``, slicing) that closes its file."""

    def __init__(self, array, close=None):
        self.array, self._close = array, close
        self.shape, self.dtype, self.chunks = tuple(array.shape), np.dtype(array.dtype), tuple(array.chunks)

    def __getitem__(self, key):
        return np.asarray(self.array[key])

    def close(self) -> None:
        if self._close is not None:
            self._close()
            self._close = None

    def __enter__(self) -> "LazyLabels":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_label_image(path: str | os.PathLike, instances: np.ndarray) -> Path:
    """``<stem>_instances.tif``: uint16 when the largest id is under 65535, else uint32 (atomic)."""
    import tifffile

    instances = np.asarray(instances)
    top = int(instances.max()) if instances.size else 0
    data = instances.astype(label_dtype(top), copy=False)
    with atomic_path(path, suffix=".tif") as tmp:
        tifffile.imwrite(tmp, data, photometric="minisblack", compression="zlib")
    return Path(path)
