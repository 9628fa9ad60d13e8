"""Lazy image sources: the size, the pyramid, the planes and any region of any level and plane, without
decoding the rest.

    with open_source("slide.svs") as src:
        src.width, src.height, src.levels          # levels: [(width, height), ...], full size first
        rgb = src.read(y0, y1, x0, x1, level=0)    # H x W x 3 uint8, the default view
        raw = src.read_raw(y0, y1, x0, x1, level=0)  # H x W x src.channels, in src.dtype
        src.channel_names                          # from OME metadata, else "Channel 1"...
        src.plane_axes, src.planes                 # "" and () for a 2-D image; "Z", "T" or "TZ" and sizes
        src.read_raw(y0, y1, x0, x1, plane=(t, z))  # one plane of a stack (() = the first)
        src.physical_sizes                         # {"X", "Y", "Z": µm, "T": s} as the file states them

* TIFF (tiled or stripped, BigTIFF, OME-TIFF, ImageJ hyperstacks, multi-page TIFFs, SVS, NDPI,
  SCN... whatever tifffile reads as a series with levels): regions come from tifffile's
  ``aszarr()`` store, which decodes only the tiles/strips (and pages) a region touches.
* OME-Zarr (NGFF multiscales, axes t, c, z, y, x) or a plain zarr array of 2 or 3 dimensions:
  read through ``zarr``.  A plain zarr array of more dimensions names no axes, so it needs
  ``axes`` (``--axes``).
* A folder of numbered planes (``plane_000.tif``, ``z01.png``...: natural order, so ``z2``
  comes before ``z10``): one Z stack (a T series with ``axes`` naming T), each plane opened
  when it is read; planes of different sizes are refused, naming the plane.
* Formats that decode only whole (PNG, JPEG, WebP, BMP, GIF, and a TIFF stored as one huge
  strip) are loaded by ``core.io.images.load_image`` and keep its decompression-bomb guard; the
  message then says how to convert the file to a tiled one (``unetseg convert``).

Which axis holds the channels and which are planes is core.io.axes's rule (``axes`` overrides
the file's own letters).  Everything but the plane (levels, channels, dtype, names) is the same
for every plane.  ``read_raw`` keeps every channel and the file's dtype (rules:
core.io.channels: alpha dropped, NaN -> 0).  ``read`` pixels become 8-bit RGB by the rules of
``core.io.images`` (channel selection, bool, float 0..1, percentile stretch); the stretch range
is measured once, on the smallest level of a few planes spread over the stack, so every region
of every level and plane converts the same way.  Every failure is an ``ImageReadError`` naming
the file (and the region, level and plane, for a region that cannot be decoded).
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from core.atomic import short_error
from core.io.axes import AxesLayout, layout, plane_key, plane_label
from core.io.channels import as_hwc, default_names, ome_channel_names, omero_channel_names, without_nan
from core.io.images import ImageReadError, check_pixel_count, file_problem, load_image

ZARR_SUFFIXES = (".zarr",)
LAZY_CHUNK_PIXELS = 64 * 1024 * 1024  # a TIFF whose strips/tiles are bigger than this is read whole
STATS_PIXELS = 4 * 1024 * 1024  # the level the stretch range is measured on has at most this many
STATS_PLANES = 3  # a stack's stretch range is measured on this many planes (first, middle, last)

Plane = Sequence[int]


class ImageSource:
    """An image of any size whose regions are decoded on demand (see the module doc)."""

    path: Path
    levels: list[tuple[int, int]]  # (width, height) per pyramid level, level 0 = full resolution
    kind: str = ""
    channels: int = 3  # what read_raw returns: its channel count and dtype, and the channels' names
    dtype: np.dtype = np.dtype(np.uint8)
    channel_names: list[str]
    plane_axes: str = ""  # "", "T", "Z" or "TZ": the axes with more than one plane, in that order
    planes: tuple[int, ...] = ()  # their sizes
    _alpha: bool = False  # the last raw channel is alpha (dropped by read_raw)
    _first_plane: bool = False  # the channels are a generic page stack: the 8-bit view shows page 0
    _physical: dict[str, float] | None = None

    def _view(self, raw: np.ndarray) -> np.ndarray:
        return raw[..., 0] if self._first_plane and raw.ndim == 3 else raw

    @property
    def width(self) -> int:
        return self.levels[0][0]

    @property
    def height(self) -> int:
        return self.levels[0][1]

    @property
    def physical_sizes(self) -> dict[str, float]:
        """{"X", "Y", "Z": µm, "T": s} for the axes the file states (core.io.physical)."""
        if self._physical is None:
            from core.io.physical import physical_sizes

            self._physical = physical_sizes(self.path)
        return dict(self._physical)

    def plane(self, plane: Plane | int | None = ()) -> tuple[int, ...]:
        """``plane`` as a full tuple over ``plane_axes``, checked (``()`` is the first plane)."""
        try:
            return plane_key(self.plane_axes, self.planes, plane)
        except ValueError as exc:
            raise ValueError(f"{self.path.name}: {exc}") from None

    def read(self, y0: int, y1: int, x0: int, x1: int, level: int = 0, plane: Plane = ()) -> np.ndarray:
        """Rows y0:y1 and columns x0:x1 of ``level`` of ``plane`` as a C-contiguous (y1-y0) x (x1-x0) x 3 uint8."""
        return self._convert(self._view(self._region(y0, y1, x0, x1, level, plane)))

    def read_raw(self, y0: int, y1: int, x0: int, x1: int, level: int = 0, plane: Plane = ()) -> np.ndarray:
        """The same region as H x W x ``channels`` in ``dtype``: every channel, no conversion but NaN -> 0."""
        raw = as_hwc(self._region(y0, y1, x0, x1, level, plane))
        if self._alpha:
            raw = raw[..., :-1]
        return np.ascontiguousarray(without_nan(raw)[0])

    def _region(self, y0: int, y1: int, x0: int, x1: int, level: int, plane: Plane = ()) -> np.ndarray:
        w, h = self._level_size(level)
        if not (0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w):
            raise ValueError(f"{self.path.name}: region y {y0}:{y1}, x {x0}:{x1} is outside level {level} ({w}x{h})")
        key = self.plane(plane)
        try:
            return self._read_raw(y0, y1, x0, x1, level, key)
        except ImageReadError:
            raise
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - a decoder failure is a bad file region, not a bug
            where = f" of plane {plane_label(self.plane_axes, key)}" if self.plane_axes else ""
            raise ImageReadError(
                f"{self.path.name}: region y {y0}:{y1}, x {x0}:{x1} of level {level}{where} cannot be read "
                f"({short_error(exc)})."
            ) from None

    def read_level(self, level: int, plane: Plane = ()) -> np.ndarray:
        w, h = self._level_size(level)
        return self.read(0, h, 0, w, level, plane)

    def close(self) -> None:
        pass

    def __enter__(self) -> "ImageSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- for subclasses
    def _read_raw(self, y0: int, y1: int, x0: int, x1: int, level: int, plane: tuple[int, ...] = ()) -> np.ndarray:
        raise NotImplementedError

    def _level_size(self, level: int) -> tuple[int, int]:
        if not 0 <= level < len(self.levels):
            raise ValueError(f"{self.path.name}: level {level} does not exist (the image has {len(self.levels)})")
        return self.levels[level]

    def _setup_conversion(self) -> None:
        """Measure the conversion once, on the smallest level that still has enough pixels, of a few
        planes spread over a stack (so browsing the planes never changes the contrast)."""
        if np.dtype(self.dtype) in (np.uint8, np.bool_):
            from core.io.images import to_rgb8

            self._convert = to_rgb8  # no statistics: nothing to read now
            return
        level = len(self.levels) - 1
        while level > 0 and self.levels[level][0] * self.levels[level][1] < 256 * 256:
            level -= 1  # a thumbnail too small for percentiles
        while level < len(self.levels) - 1 and self.levels[level][0] * self.levels[level][1] > STATS_PIXELS:
            level += 1
        w, h = self.levels[level]
        planes = spread_planes(self.planes, STATS_PLANES)
        budget = STATS_PIXELS // len(planes)
        samples = []
        for key in planes:
            if w * h > budget:  # no small level: sample a centred region of it
                side = int(budget ** 0.5)
                y0, x0 = max(0, (h - side) // 2), max(0, (w - side) // 2)
                sample = self._read_raw(y0, min(h, y0 + side), x0, min(w, x0 + side), level, key)
            else:
                sample = self._read_raw(0, h, 0, w, level, key)
            samples.append(self._view(sample))
        self._convert = rgb8_converter(samples[0] if len(samples) == 1 else np.concatenate(samples, axis=0))

    def _convert(self, raw: np.ndarray) -> np.ndarray:
        """The first 8-bit view measures the conversion (a stack shown through its raw channels, as
        the app shows 16-bit stacks, never pays for it: reading three planes of a stack without a
        pyramid took most of its opening time)."""
        self._setup_conversion()  # sets self._convert
        return self._convert(raw)

    def _describe_channels(self, name: str, axes: str, shape, alpha: bool, names: list[str] | None,
                           rgb: bool, dtype) -> None:
        """Set ``channels``, ``dtype``, ``channel_names`` from level 0's axes and shape."""
        colour = self._index.colour
        count = int(shape[axes.index(colour)]) if colour else 1
        self._alpha = alpha and count in (2, 4)
        self._first_plane = colour in ("I", "Q")
        self.channels = count - self._alpha
        self.dtype = np.dtype(dtype)
        self.channel_names = names if names and len(names) == self.channels else \
            default_names(self.channels, rgb=rgb and self.channels == 3)


def spread_planes(planes: Sequence[int], count: int) -> list[tuple[int, ...]]:
    """Up to ``count`` planes evenly spread over a stack of ``planes`` (first and last included);
    ``[()]`` for a 2-D image."""
    total = int(np.prod(planes)) if planes else 1
    picks = sorted({round(i * (total - 1) / max(1, count - 1)) for i in range(min(count, total))})
    return [tuple(int(v) for v in np.unravel_index(i, planes)) if planes else () for i in picks]


def all_planes(source: ImageSource) -> list[tuple[int, ...]]:
    """Every plane of ``source`` in file order (T outer, Z inner); ``[()]`` for a 2-D image."""
    return [tuple(int(v) for v in np.unravel_index(i, source.planes)) for i in range(int(np.prod(source.planes)))] \
        if source.planes else [()]


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
        self._physical = {}

    def _read_raw(self, y0, y1, x0, x1, level, plane=()):
        return self._rgb[y0:y1, x0:x1]

    def read_raw(self, y0: int, y1: int, x0: int, x1: int, level: int = 0, plane: Plane = ()) -> np.ndarray:
        self._level_size(level)
        self.plane(plane)
        w, h = self.levels[0]
        if not (0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w):
            raise ValueError(f"{self.path.name}: region y {y0}:{y1}, x {x0}:{x1} is outside level {level} ({w}x{h})")
        return np.ascontiguousarray(self._pixels[y0:y1, x0:x1])

    def _convert(self, raw: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(raw)


class TiffSource(ImageSource):
    """A TIFF series (with its pyramid levels and planes, if any) read region by region through tifffile."""

    def __init__(self, path: Path, tif, axes: str | None = None):
        zarr = require_zarr()
        self.path = path
        self._tif = tif
        series = tif.series[0]
        self.kind = _tiff_kind(tif, series)
        self._store = series.aszarr()
        root = zarr.open(self._store, mode="r")
        count = len(series.levels)
        arrays = [root] if count == 1 and not hasattr(root, "group_keys") else [root[str(i)] for i in range(count)]
        self._index, self.levels, self._arrays = _yx_layout(path, series.axes, arrays, axes)
        self.plane_axes, self.planes = self._index.plane_axes, self._index.planes
        import tifffile

        page = series.levels[0].keyframe
        colour = self._index.colour
        count = int(arrays[0].shape[self._index.axes.index(colour)]) if colour else 1
        names = ome_channel_names(tif.ome_metadata, count) if tif.is_ome else None
        alpha = any(int(e) in (1, 2) for e in tuple(page.extrasamples or ()))
        self._describe_channels(path.name, self._index.axes, arrays[0].shape, alpha, names,
                                rgb=page.photometric == tifffile.PHOTOMETRIC.RGB, dtype=arrays[0].dtype)

    def _read_raw(self, y0, y1, x0, x1, level, plane=()):
        return _take(self._arrays[level], self._index, y0, y1, x0, x1, plane)

    def close(self) -> None:
        self._store.close()
        self._tif.close()


class ZarrSource(ImageSource):
    """An OME-Zarr image (NGFF multiscales: levels in order, axes named) or a plain zarr array."""

    def __init__(self, path: Path, axes: str | None = None):
        zarr = require_zarr()
        self.path = path
        try:
            node = zarr.open(str(path), mode="r")
        except Exception as exc:  # noqa: BLE001
            raise ImageReadError(f"{path.name}: not a readable zarr store ({short_error(exc)}).") from None
        if hasattr(node, "shape"):
            arrays, names, self.kind = [node], _guess_axes(path, node.shape, axes), "zarr array"
        else:
            attrs = dict(node.attrs)
            multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
            if not multiscales:
                raise ImageReadError(f"{path.name}: a zarr group without OME-Zarr 'multiscales' metadata.")
            ms = multiscales[0]
            try:
                arrays = [node[d["path"]] for d in ms["datasets"]]
            except KeyError as exc:
                raise ImageReadError(f"{path.name}: the multiscales metadata names a missing level {exc}.") from None
            axis_names = [a["name"] if isinstance(a, dict) else a for a in ms.get("axes", [])]
            names = "".join(str(n).upper()[:1] for n in axis_names) if axis_names else \
                _guess_axes(path, arrays[0].shape, axes)
            self.kind = "OME-Zarr"
        self._index, self.levels, self._arrays = _yx_layout(path, names, arrays, axes)
        self.plane_axes, self.planes = self._index.plane_axes, self._index.planes
        colour = self._index.colour
        count = int(arrays[0].shape[self._index.axes.index(colour)]) if colour else 1
        labels = omero_channel_names(dict(node.attrs), count) if not hasattr(node, "shape") else None
        self._describe_channels(path.name, self._index.axes, arrays[0].shape, False, labels,
                                rgb=colour == "S" or (count == 3 and np.dtype(arrays[0].dtype) == np.uint8),
                                dtype=arrays[0].dtype)

    def _read_raw(self, y0, y1, x0, x1, level, plane=()):
        return _take(self._arrays[level], self._index, y0, y1, x0, x1, plane)


class FolderSource(ImageSource):
    """A folder of numbered planes, one file each (natural order), read plane by plane.

    Sizes are checked from the headers when the folder is opened; each plane file is opened when
    it is first read and kept among the ``OPEN_PLANES`` most recent, so browsing back and forth
    does not decode a plane twice.  Channels and dtype are the first plane's; a plane that
    differs is refused when read, naming it.
    """

    OPEN_PLANES = 4

    def __init__(self, path: Path, axes: str | None = None):
        from core.io.images import list_images, read_image_size

        self.path = path
        files = plane_files(path)
        if not files:
            if list_images(path):
                raise ImageReadError(f"{path.name}: the folder's images are not numbered planes "
                                     "(plane_000.tif, z01.png...), so it is not a stack.")
            raise ImageReadError(f"{path.name}: the folder holds no images.")
        sizes = [read_image_size(f) for f in files]
        for f, size in zip(files, sizes):
            if size != sizes[0]:
                raise ImageReadError(f"{path.name}: plane {f.name} is {size[0]}x{size[1]} but {files[0].name} is "
                                     f"{sizes[0][0]}x{sizes[0][1]}; every plane of a stack must have the same size.")
        self._files = files
        axis = "T" if axes and "T" in axes.upper() and "Z" not in axes.upper() else "Z"
        self.kind = f"folder of {len(files)} planes"
        self._open: OrderedDict[int, ImageSource] = OrderedDict()
        first = self._plane_source(0)
        self.levels = [first.levels[0]]
        self.channels, self.dtype, self.channel_names = first.channels, first.dtype, list(first.channel_names)
        self.plane_axes, self.planes = (axis, (len(files),)) if len(files) > 1 else ("", ())
        # a plane file states its pixel size, never the stack's Z step: X and Y are the first plane's
        self._physical = {a: v for a, v in first.physical_sizes.items() if a in "XY"}

    def plane_file(self, plane: Plane = ()) -> Path:
        key = self.plane(plane)
        return self._files[key[0] if key else 0]

    def _plane_source(self, index: int) -> ImageSource:
        if index in self._open:
            self._open.move_to_end(index)
            return self._open[index]
        path = self._files[index]
        source = open_source(path)
        if source.planes:
            source.close()
            raise ImageReadError(f"{self.path.name}: plane {path.name} is itself a stack "
                                 f"({source.plane_axes} {' x '.join(map(str, source.planes))}).")
        if "channels" in vars(self) and (source.channels, source.dtype) != (self.channels, self.dtype):
            source.close()
            raise ImageReadError(f"{self.path.name}: plane {path.name} has {source.channels} {source.dtype} channel(s) "
                                 f"but {self._files[0].name} has {self.channels} {self.dtype}.")
        self._open[index] = source
        while len(self._open) > self.OPEN_PLANES:
            self._open.popitem(last=False)[1].close()
        return source

    def _read_raw(self, y0, y1, x0, x1, level, plane=()):
        source = self._plane_source(plane[0] if plane else 0)
        return source.read_raw(y0, y1, x0, x1, level)

    def close(self) -> None:
        while self._open:
            self._open.popitem()[1].close()


_NUMBER = re.compile(r"(\d+)")


def natural_key(name: str) -> list:
    """``z2.png`` before ``z10.png``: digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part.lower() for part in _NUMBER.split(name)]


def plane_files(folder: Path) -> list[Path]:
    """The numbered image files of a folder of planes, in natural order (none when a name has no number)."""
    from core.io.images import list_images

    files = list_images(folder)
    if not files or not all(_NUMBER.search(f.stem) for f in files):
        return []
    return sorted(files, key=lambda f: natural_key(f.name))


def is_plane_folder(path: str | os.PathLike) -> bool:
    """A folder (not a zarr store) whose images are all numbered: a stack of planes."""
    path = Path(path)
    return path.is_dir() and not _is_zarr(path) and bool(plane_files(path))


def _is_zarr(path: Path) -> bool:
    return path.suffix.lower() in ZARR_SUFFIXES or (path.is_dir() and any(
        (path / marker).exists() for marker in (".zgroup", ".zarray", "zarr.json")))


def open_source(path: str | os.PathLike, axes: str | None = None) -> ImageSource:
    """The lazy source for ``path``; whole-decode formats are loaded (bomb guard on) into an ArraySource.

    ``axes`` (``--axes``, core.io.axes.parse_axes_option) names the file's axes when its own
    metadata does not, or says it wrongly; a folder of numbered planes is a stack.
    """
    path = Path(path)
    if _is_zarr(path):
        if not path.exists():
            raise ImageReadError(f"{path.name}: file not found.")
        return ZarrSource(path, axes)
    if path.is_dir():
        return FolderSource(path, axes)
    problem = file_problem(path)
    if problem:
        raise ImageReadError(f"{path.name}: {problem}.")
    if path.suffix.lower() in (".tif", ".tiff", ".svs", ".ndpi", ".scn", ".btf", ".tf8", ".bif", ".qptiff"):
        source = _open_tiff(path, axes)
        if source is not None:
            return source
    image = load_image(path)  # whole decode, bomb guard included
    return ArraySource(image.rgb, path, kind=image.source_mode, pixels=image.pixels,
                       channel_names=image.channel_names)


def _open_tiff(path: Path, axes: str | None = None) -> ImageSource | None:
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
        return TiffSource(path, tif, axes)
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


def _guess_axes(path: Path, shape, axes: str | None) -> str:
    """A plain zarr array names no axes: 2-D is YX and 3-D YXS (an image with samples last, as
    NumPy and Pillow hold them); more dimensions are refused unless ``axes`` names them."""
    if axes:
        return axes
    ndim = len(shape)
    if ndim in (2, 3):
        return {2: "YX", 3: "YXS"}[ndim]
    raise ImageReadError(f"{path.name}: a {ndim}-D zarr array ({' x '.join(map(str, shape))}) without axis names; "
                         "its axis order is unknown: name it with --axes (for example --axes TCZYX).")


def _yx_layout(path: Path, axes: str, arrays: list, override: str | None = None):
    """The layout of level 0 (core.io.axes), each level's (width, height), and the levels kept.

    Every level must be a smaller copy of level 0 with the same channels and planes; a level
    that also thins the planes (OME-Zarr may halve Z) ends the pyramid there.
    """
    shapes = [tuple(int(n) for n in a.shape) for a in arrays]
    try:
        index = layout(path.name, axes, shapes[0], override)
    except ValueError as exc:
        raise ImageReadError(f"{exc}.") from None
    axes = index.axes
    levels = []
    for i, shape in enumerate(shapes):
        if len(shape) != len(axes):
            raise ImageReadError(f"{path.name}: pyramid levels disagree: level {i} has {len(shape)} axes, "
                                 f"level 0 has {len(axes)}.")
        if i and any(shape[k] != shapes[0][k] for k, a in enumerate(axes) if a in index.plane_axes):
            break  # planes thinned too: the levels from here on are not planes of the same stack
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
    return index, levels, arrays[:len(levels)]


def _take(array, index: AxesLayout, y0: int, y1: int, x0: int, x1: int, plane: tuple[int, ...] = ()) -> np.ndarray:
    axes, colour = index.axes, index.colour
    at = dict(zip(index.plane_axes, plane))
    key = []
    for a in axes:
        key.append(slice(y0, y1) if a == "Y" else slice(x0, x1) if a == "X" else
                   slice(None) if a == colour else at.get(a, 0))
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

    def stretch(values: np.ndarray) -> np.ndarray:
        part = (values.astype(np.float32) - np.float32(lo)) * np.float32(255 / (hi - lo))
        part = np.nan_to_num(part, nan=0.0, posinf=0.0, neginf=0.0)
        np.clip(part, 0, 255, out=part)
        return np.rint(part).astype(np.uint8)

    tables: dict[np.dtype, np.ndarray] = {}

    def convert(raw: np.ndarray) -> np.ndarray:
        part = _channels(raw)
        if part.dtype.kind in "ui" and part.dtype.itemsize <= 2:
            # 8- and 16-bit integers: the same float32 arithmetic, done once per possible value (a
            # 65,536-entry table), then one lookup per pixel: identical bytes, a fraction of the time
            info = np.iinfo(part.dtype)
            if part.dtype not in tables:
                tables[part.dtype] = stretch(np.arange(info.min, info.max + 1))
            index = part if info.min == 0 else part.astype(np.int32) - info.min
            return to_rgb8(tables[part.dtype][index])
        return to_rgb8(stretch(part))

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
                           "pip install 'zarr>=3.1.3'") from None
    version = tuple(int(p) if p.isdigit() else 0 for p in zarr.__version__.split(".")[:3])
    if version < (3, 1, 3):  # earlier LocalStores write chunks in place: a crash tears a saved mask
        raise RuntimeError(f"label stores need zarr 3.1.3 or newer, whose chunk writes are atomic (this is "
                           f"{zarr.__version__}): pip install 'zarr>=3.1.3'")
    return zarr
