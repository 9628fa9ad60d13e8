"""Lazy image sources: the size, the pyramid and any region of any level, without decoding the rest.

    with open_source("slide.svs") as src:
        src.width, src.height, src.levels          # levels: [(width, height), ...], full size first
        rgb = src.read(y0, y1, x0, x1, level=0)    # H x W x 3 uint8, the default view
        raw = src.read_raw(y0, y1, x0, x1, level=0)  # H x W x src.channels, in src.dtype
        src.channel_names                          # from OME metadata, else "Channel 1"...

* TIFF (tiled or stripped, BigTIFF, OME-TIFF, SVS, NDPI, SCN... whatever tifffile reads as a
  series with levels): regions come from tifffile's ``aszarr()`` store, which decodes only the
  tiles/strips a region touches.
* OME-Zarr (NGFF multiscales) or a plain zarr array: read through ``zarr``.
* Formats that decode only whole (PNG, JPEG, WebP, BMP, GIF, and a TIFF stored as one huge
  strip) are loaded by ``core.io.images.load_image`` and keep its decompression-bomb guard; the
  message then says how to convert the file to a tiled one (``unetseg convert``).

``read_raw`` keeps every channel and the file's dtype (rules: core.io.channels: alpha dropped,
NaN -> 0, a time or Z axis of more than one plane refused).  ``read`` pixels become 8-bit RGB by the rules of ``core.io.images`` (channel selection, bool, float 0..1,
percentile stretch); the stretch range is measured once on the smallest level, so every region
of every level converts the same way.  Every failure is an ``ImageReadError`` naming the file
(and the region and level, for a region that cannot be decoded).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from core.atomic import short_error
from core.io.channels import as_hwc, channel_layout, default_names, ome_channel_names, omero_channel_names, without_nan
from core.io.images import ImageReadError, check_pixel_count, file_problem, load_image

ZARR_SUFFIXES = (".zarr",)
LAZY_CHUNK_PIXELS = 64 * 1024 * 1024  # a TIFF whose strips/tiles are bigger than this is read whole
STATS_PIXELS = 4 * 1024 * 1024  # the level the stretch range is measured on has at most this many


class ImageSource:
    """An image of any size whose regions are decoded on demand (see the module doc)."""

    path: Path
    levels: list[tuple[int, int]]  # (width, height) per pyramid level, level 0 = full resolution
    kind: str = ""
    channels: int = 3  # what read_raw returns: its channel count and dtype, and the channels' names
    dtype: np.dtype = np.dtype(np.uint8)
    channel_names: list[str]
    _alpha: bool = False  # the last raw channel is alpha (dropped by read_raw)
    _first_plane: bool = False  # the channels are a generic page stack: the 8-bit view shows page 0

    def _view(self, raw: np.ndarray) -> np.ndarray:
        return raw[..., 0] if self._first_plane and raw.ndim == 3 else raw

    @property
    def width(self) -> int:
        return self.levels[0][0]

    @property
    def height(self) -> int:
        return self.levels[0][1]

    def read(self, y0: int, y1: int, x0: int, x1: int, level: int = 0) -> np.ndarray:
        """Rows y0:y1 and columns x0:x1 of ``level`` as a C-contiguous (y1-y0) x (x1-x0) x 3 uint8."""
        return self._convert(self._view(self._region(y0, y1, x0, x1, level)))

    def read_raw(self, y0: int, y1: int, x0: int, x1: int, level: int = 0) -> np.ndarray:
        """The same region as H x W x ``channels`` in ``dtype``: every channel, no conversion but NaN -> 0."""
        raw = as_hwc(self._region(y0, y1, x0, x1, level))
        if self._alpha:
            raw = raw[..., :-1]
        return np.ascontiguousarray(without_nan(raw)[0])

    def _region(self, y0: int, y1: int, x0: int, x1: int, level: int) -> np.ndarray:
        w, h = self._level_size(level)
        if not (0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w):
            raise ValueError(f"{self.path.name}: region y {y0}:{y1}, x {x0}:{x1} is outside level {level} ({w}x{h})")
        try:
            return self._read_raw(y0, y1, x0, x1, level)
        except ImageReadError:
            raise
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - a decoder failure is a bad file region, not a bug
            raise ImageReadError(
                f"{self.path.name}: region y {y0}:{y1}, x {x0}:{x1} of level {level} cannot be read "
                f"({short_error(exc)})."
            ) from None

    def read_level(self, level: int) -> np.ndarray:
        w, h = self._level_size(level)
        return self.read(0, h, 0, w, level)

    def close(self) -> None:
        pass

    def __enter__(self) -> "ImageSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- for subclasses
    def _read_raw(self, y0: int, y1: int, x0: int, x1: int, level: int) -> np.ndarray:
        raise NotImplementedError

    def _level_size(self, level: int) -> tuple[int, int]:
        if not 0 <= level < len(self.levels):
            raise ValueError(f"{self.path.name}: level {level} does not exist (the image has {len(self.levels)})")
        return self.levels[level]

    def _setup_conversion(self) -> None:
        """Measure the conversion once, on the smallest level that still has enough pixels."""
        from core.io.images import to_rgb8

        if np.dtype(self._arrays[0].dtype) in (np.uint8, np.bool_):
            self._convert = to_rgb8  # no statistics: nothing to read now
            return
        level = len(self.levels) - 1
        while level > 0 and self.levels[level][0] * self.levels[level][1] < 256 * 256:
            level -= 1  # a thumbnail too small for percentiles
        while level < len(self.levels) - 1 and self.levels[level][0] * self.levels[level][1] > STATS_PIXELS:
            level += 1
        w, h = self.levels[level]
        if w * h > STATS_PIXELS:  # no small level: sample a centred region of level 0
            side = int(STATS_PIXELS ** 0.5)
            y0, x0 = max(0, (h - side) // 2), max(0, (w - side) // 2)
            sample = self._read_raw(y0, min(h, y0 + side), x0, min(w, x0 + side), level)
        else:
            sample = self._read_raw(0, h, 0, w, level)
        sample = self._view(sample)
        self._convert = rgb8_converter(sample)

    def _convert(self, raw: np.ndarray) -> np.ndarray:
        return rgb8_converter(raw)(raw)

    def _describe_channels(self, name: str, axes: str, shape, alpha: bool, names: list[str] | None,
                           rgb: bool) -> None:
        """Set ``channels``, ``dtype``, ``channel_names`` from level 0's axes and shape."""
        colour = self._index["colour"]
        count = int(shape[axes.index(colour)]) if colour else 1
        self._alpha = alpha and count in (2, 4)
        self._first_plane = colour in ("I", "Q")
        self.channels = count - self._alpha
        self.dtype = np.dtype(self._arrays[0].dtype)
        self.channel_names = names if names and len(names) == self.channels else \
            default_names(self.channels, rgb=rgb and self.channels == 3)


class ArraySource(ImageSource):
    """An image already in memory (what whole-decode formats become; also handy in tests).

    ``rgb`` is what ``read`` returns (any array, converted by core.io.images.to_rgb8); ``pixels``
    what ``read_raw`` returns (default: ``rgb`` as given).
    """

    def __init__(self, rgb: np.ndarray, path: str | os.PathLike = "image", kind: str = "in memory",
                 pixels: np.ndarray | None = None, channel_names: list[str] | None = None):
        from core.io.images import to_rgb8

        self.path = Path(path)
        self.kind = kind
        self._rgb = to_rgb8(rgb)
        self._pixels = without_nan(as_hwc(rgb if pixels is None else pixels))[0]
        self.levels = [(int(self._rgb.shape[1]), int(self._rgb.shape[0]))]
        self.channels, self.dtype = int(self._pixels.shape[2]), self._pixels.dtype
        self.channel_names = list(channel_names) if channel_names and len(channel_names) == self.channels else \
            default_names(self.channels, rgb=self.dtype == np.uint8)

    def _read_raw(self, y0, y1, x0, x1, level):
        return self._rgb[y0:y1, x0:x1]

    def read_raw(self, y0: int, y1: int, x0: int, x1: int, level: int = 0) -> np.ndarray:
        self._level_size(level)
        w, h = self.levels[0]
        if not (0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w):
            raise ValueError(f"{self.path.name}: region y {y0}:{y1}, x {x0}:{x1} is outside level {level} ({w}x{h})")
        return np.ascontiguousarray(self._pixels[y0:y1, x0:x1])

    def _convert(self, raw: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(raw)


class TiffSource(ImageSource):
    """A TIFF series (with its pyramid levels, if any) read region by region through tifffile."""

    def __init__(self, path: Path, tif):
        zarr = require_zarr()
        self.path = path
        self._tif = tif
        series = tif.series[0]
        self.kind = _tiff_kind(tif, series)
        self._levels = list(series.levels)
        self._store = series.aszarr()
        root = zarr.open(self._store, mode="r")
        self._arrays = [root] if len(self._levels) == 1 and not hasattr(root, "group_keys") else \
            [root[str(i)] for i in range(len(self._levels))]
        self._index, self.levels = _yx_layout(path, series.axes, [a.shape for a in self._arrays])
        import tifffile

        page = series.levels[0].keyframe
        colour = self._index["colour"]
        count = int(self._arrays[0].shape[series.axes.upper().index(colour)]) if colour else 1
        names = ome_channel_names(tif.ome_metadata, count) if tif.is_ome else None
        alpha = any(int(e) in (1, 2) for e in tuple(page.extrasamples or ()))
        self._describe_channels(path.name, series.axes.upper(), self._arrays[0].shape, alpha, names,
                                rgb=page.photometric == tifffile.PHOTOMETRIC.RGB)
        self._setup_conversion()

    def _read_raw(self, y0, y1, x0, x1, level):
        return _take(self._arrays[level], self._index, y0, y1, x0, x1)

    def close(self) -> None:
        self._store.close()
        self._tif.close()


class ZarrSource(ImageSource):
    """An OME-Zarr image (NGFF multiscales: levels in order, axes named) or a plain zarr array."""

    def __init__(self, path: Path):
        zarr = require_zarr()
        self.path = path
        try:
            node = zarr.open(str(path), mode="r")
        except Exception as exc:  # noqa: BLE001
            raise ImageReadError(f"{path.name}: not a readable zarr store ({short_error(exc)}).") from None
        if hasattr(node, "shape"):
            self._arrays, axes, self.kind = [node], _guess_axes(node.ndim), "zarr array"
        else:
            attrs = dict(node.attrs)
            multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
            if not multiscales:
                raise ImageReadError(f"{path.name}: a zarr group without OME-Zarr 'multiscales' metadata.")
            ms = multiscales[0]
            try:
                self._arrays = [node[d["path"]] for d in ms["datasets"]]
            except KeyError as exc:
                raise ImageReadError(f"{path.name}: the multiscales metadata names a missing level {exc}.") from None
            names = [a["name"] if isinstance(a, dict) else a for a in ms.get("axes", [])]
            axes = "".join(n.upper()[0] for n in names) if names else _guess_axes(self._arrays[0].ndim)
            self.kind = "OME-Zarr"
        self._index, self.levels = _yx_layout(path, axes, [a.shape for a in self._arrays])
        colour = self._index["colour"]
        count = int(self._arrays[0].shape[axes.index(colour)]) if colour else 1
        labels = omero_channel_names(dict(node.attrs), count) if not hasattr(node, "shape") else None
        self._describe_channels(path.name, axes, self._arrays[0].shape, False, labels,
                                rgb=colour == "S" or (count == 3 and np.dtype(self._arrays[0].dtype) == np.uint8))
        self._setup_conversion()

    def _read_raw(self, y0, y1, x0, x1, level):
        return _take(self._arrays[level], self._index, y0, y1, x0, x1)


def open_source(path: str | os.PathLike) -> ImageSource:
    """The lazy source for ``path``; whole-decode formats are loaded (bomb guard on) into an ArraySource."""
    path = Path(path)
    if path.suffix.lower() in ZARR_SUFFIXES or (path.is_dir() and any(
            (path / marker).exists() for marker in (".zgroup", ".zarray", "zarr.json"))):
        if not path.exists():
            raise ImageReadError(f"{path.name}: file not found.")
        return ZarrSource(path)
    problem = file_problem(path)
    if problem:
        raise ImageReadError(f"{path.name}: {problem}.")
    if path.suffix.lower() in (".tif", ".tiff", ".svs", ".ndpi", ".scn", ".btf", ".tf8", ".bif", ".qptiff"):
        source = _open_tiff(path)
        if source is not None:
            return source
    image = load_image(path)  # whole decode, bomb guard included
    return ArraySource(image.rgb, path, kind=image.source_mode, pixels=image.pixels,
                       channel_names=image.channel_names)


def _open_tiff(path: Path) -> ImageSource | None:
    """A TiffSource, or None when the file can only be decoded whole (load_image handles it)."""
    import tifffile

    try:
        tif = tifffile.TiffFile(path)
    except Exception:  # noqa: BLE001 - not a TIFF tifffile reads: let load_image explain
        return None
    try:
        series = tif.series[0]
        page = series.levels[0].keyframe
        chunk = _chunk_pixels(page)
        width, height = int(page.imagewidth), int(page.imagelength)
        if chunk > LAZY_CHUNK_PIXELS or page.photometric == tifffile.PHOTOMETRIC.SEPARATED or \
                page.photometric == tifffile.PHOTOMETRIC.PALETTE or page.photometric == tifffile.PHOTOMETRIC.MINISWHITE:
            tif.close()
            check_pixel_count(path, width, height)  # too large to decode whole: says to convert
            return None
        _check_not_truncated(path, tif, series)
        return TiffSource(path, tif)
    except ImageReadError:
        tif.close()
        raise
    except Exception as exc:  # noqa: BLE001
        tif.close()
        raise ImageReadError(f"{path.name}: the TIFF file is corrupt or unsupported ({short_error(exc)}).") from None


def _chunk_pixels(page) -> int:
    if page.is_tiled:
        return int(page.tilewidth) * int(page.tilelength)
    return int(page.imagewidth) * int(min(page.rowsperstrip or page.imagelength, page.imagelength))


def _check_not_truncated(path: Path, tif, series) -> None:
    size = path.stat().st_size
    for level, s in enumerate(series.levels):
        for page in s.pages:
            if page is None or not hasattr(page, "dataoffsets"):
                continue
            ends = [o + c for o, c in zip(page.dataoffsets, page.databytecounts) if c]
            if ends and max(ends) > size:
                raise ImageReadError(f"{path.name}: the file is truncated (level {level} has tiles past its end).")


def _tiff_kind(tif, series) -> str:
    for flag in ("ome", "svs", "ndpi", "scn", "qpi", "bif", "philips"):
        if getattr(tif, f"is_{flag}", False):
            return f"{flag.upper()} TIFF"
    return "BigTIFF" if tif.is_bigtiff else "TIFF"


def _guess_axes(ndim: int) -> str:
    return {2: "YX", 3: "YXS", 4: "CZYX", 5: "TCZYX"}.get(ndim, "Q" * (ndim - 2) + "YX")


def _yx_layout(path: Path, axes: str, shapes: list[tuple[int, ...]]):
    """An index that picks Y, X and the colour axis, and each level's (width, height), checked.

    The colour axis is the one channel axis with more than one plane (core.io.channels); other
    axes of one plane are fixed at 0, and a time or Z axis of more than one plane is refused.
    """
    axes = axes.upper()
    if "Y" not in axes or "X" not in axes:
        raise ImageReadError(f"{path.name}: the image has no Y and X axes (axes {axes!r}).")
    if shapes and len(shapes[0]) == len(axes):
        try:
            colour = channel_layout(path.name, axes, shapes[0])
        except ValueError as exc:
            raise ImageReadError(f"{exc}.") from None
    else:
        colour = None
    if colour is None:  # one plane: keep a declared colour axis, as the 8-bit view always did
        colour = "S" if "S" in axes else ("C" if "C" in axes else None)
    index = {"axes": axes, "colour": colour}
    levels = []
    for i, shape in enumerate(shapes):
        if len(shape) != len(axes):
            raise ImageReadError(f"{path.name}: pyramid levels disagree: level {i} has {len(shape)} axes, "
                                 f"level 0 has {len(axes)}.")
        levels.append((int(shape[axes.index("X")]), int(shape[axes.index("Y")])))
    w0, h0 = levels[0]
    for i, (w, h) in enumerate(levels[1:], 1):
        pw, ph = levels[i - 1]
        others = [shapes[i][k] != shapes[0][k] for k, a in enumerate(axes) if a not in "YX"]
        if w > pw or h > ph or any(others) or abs(w / w0 - h / h0) > 2.0 / min(w, h) + 0.01:
            raise ImageReadError(
                f"{path.name}: pyramid levels disagree: level {i} is {w}x{h} but level 0 is {w0}x{h0} "
                f"(a level must be a smaller copy with the same aspect ratio and channels)."
            )
    return index, levels


def _take(array, index: dict, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    axes, colour = index["axes"], index["colour"]
    key = []
    for a in axes:
        key.append(slice(y0, y1) if a == "Y" else slice(x0, x1) if a == "X" else
                   slice(None) if a == colour else 0)
    block = np.asarray(array[tuple(key)])
    kept = [a for a in axes if a in ("Y", "X") or a == colour]
    order = [kept.index("Y"), kept.index("X")] + ([kept.index(colour)] if colour else [])
    return np.transpose(block, order)


def rgb8_converter(sample: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A function mapping any region to 8-bit RGB the way ``core.io.images.to_rgb8`` maps ``sample``.

    The stretch range (and whether floats are already 0..1) is measured on ``sample`` once, so
    regions of the same image never get different contrast.
    """
    from core.io.images import to_rgb8

    sample = np.asarray(sample)
    if sample.dtype == np.uint8 or sample.dtype == bool:
        return to_rgb8
    flat = _channels(sample).astype(np.float64, copy=False).reshape(-1)
    finite = flat[np.isfinite(flat)]
    if finite.size == 0:
        return lambda raw: to_rgb8(np.zeros(raw.shape, np.uint8))
    lo_all, hi_all = float(finite.min()), float(finite.max())
    if np.issubdtype(sample.dtype, np.floating) and 0.0 <= lo_all and hi_all <= 1.0:
        return to_rgb8  # x * 255, rounded: no statistics involved
    step = max(1, finite.size // 4_000_000)
    lo, hi = (float(v) for v in np.percentile(finite[::step], (0.1, 99.9)))
    if hi <= lo:
        lo, hi = lo_all, hi_all
    if hi <= lo:
        return lambda raw: to_rgb8(np.zeros(raw.shape, np.uint8))

    def convert(raw: np.ndarray) -> np.ndarray:
        part = (_channels(raw).astype(np.float32) - np.float32(lo)) * np.float32(255 / (hi - lo))
        part = np.nan_to_num(part, nan=0.0, posinf=0.0, neginf=0.0)
        np.clip(part, 0, 255, out=part)
        return to_rgb8(np.rint(part).astype(np.uint8))

    return convert


def _channels(a: np.ndarray) -> np.ndarray:
    """The channels to_rgb8 keeps (drops alpha, keeps the first three)."""
    if a.ndim == 3 and a.shape[2] in (2,):
        return a[..., 0]
    if a.ndim == 3 and a.shape[2] >= 3:
        return a[..., :3]
    return a


def require_zarr():
    """The zarr module, or a one-sentence error saying how to get it (zarr 3 needs Python 3.11+)."""
    try:
        import zarr
    except ImportError:
        raise RuntimeError("tiled sources and label stores need the zarr package (Python 3.11+): "
                           "pip install 'zarr>=3'") from None
    return zarr
