"""Reading images from disk: the raw pixels (every channel, the file's dtype) and an 8-bit RGB view.

``LoadedImage.pixels`` is H x W x C in the file's own dtype with all its channels (rules:
core.io.channels; which axis is channels and which are planes: core.io.axes, so a multi-page TIFF
of up to 4 grey pages is one image with a channel per page), and ``.channel_names`` names them.
``.rgb`` is the 8-bit RGB view, as it always was: for a page stack it shows page ``page``.

A stack (more than one Z plane or time point) is not one 2-D image: ``load_image`` refuses it
with one sentence naming its planes and axes, rather than handing over its first plane, which
would then be segmented, annotated and saved as if it were the whole file.  Stacks open plane by
plane through core.io.sources (``plane_axes``, ``planes``, ``read_raw(..., plane=)``); an
explicit ``page`` > 0 still reads that one TIFF page.

PNG, JPEG, BMP, WebP and GIF (first frame unless ``page`` says otherwise) are read with
Pillow, TIFF with tifffile (16-bit, float and multi-page files; Pillow is the fallback for a
TIFF that tifffile cannot read).  EXIF orientation is applied, so a phone photo shows upright.
Every problem with a file is an ``ImageReadError`` whose message is one sentence naming the
file and the reason; Pillow's decompression-bomb guard stays on and is checked from the
header before any pixel is decoded.

How pixels become 8-bit RGB (``to_rgb8``; ``LoadedImage.conversion`` says which rule applied):

* grey (H x W or H x W x 1): the grey value is copied to R, G and B;
* grey + alpha (H x W x 2): alpha is dropped, the grey is copied to R, G and B;
* RGBA (H x W x 4): alpha is dropped, the colour channels are kept as they are (not
  composited onto a background);
* more than 4 channels: the first three are shown as R, G and B;
* palette images: each index is replaced by its palette colour; CMYK, YCbCr and other
  colour spaces are converted to RGB by Pillow;
* bool: False -> 0, True -> 255;
* uint8: used as is;
* 16-bit and other integers: the 0.1th..99.9th percentile range is stretched linearly to
  0..255 and values outside it are clipped, so a dim 12-bit microscope image becomes
  visible.  If that range is empty the min..max range is used; a constant image becomes 0;
* float: if every finite value lies within [0, 1] the image is ``x * 255`` rounded;
  otherwise it is stretched like an integer image.  NaN and +/-inf become 0.

Percentiles of images over 4 million values are estimated from an evenly spaced sample.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.atomic import describe_os_error, short_error
from core.io.axes import describe, layout
from core.io.channels import as_hwc, default_names, nan_note, ome_channel_names, without_nan

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif")
TIFF_EXTENSIONS = (".tif", ".tiff")
_SAMPLE = 4_000_000
_ORIENTATION = 0x0112


class ImageReadError(ValueError):
    """A file that cannot be shown; ``str()`` is one sentence naming the file and the reason."""


@dataclass
class LoadedImage:
    rgb: np.ndarray
    path: Path
    source_mode: str
    pages: int = 1
    conversion: str = ""
    pixels: np.ndarray | None = None  # H x W x C, the file's dtype, every channel (None: the rgb view)
    channel_names: list[str] = field(default_factory=list)
    nan_count: int = 0  # NaN/inf values in the file, set to 0 in ``pixels``

    def __post_init__(self) -> None:
        if self.pixels is None:
            self.pixels = self.rgb
        self.pixels = as_hwc(self.pixels)
        if len(self.channel_names) != self.channels:
            self.channel_names = default_names(self.channels, rgb=self.pixels.dtype == np.uint8)

    @property
    def channels(self) -> int:
        return int(self.pixels.shape[2])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def is_image_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly in ``folder`` (hidden files, such as our temp files, skipped)."""
    folder = Path(folder)
    try:
        with os.scandir(folder) as entries:
            paths = [
                Path(e.path) for e in entries
                if not e.name.startswith(".") and is_image_path(e.name) and e.is_file()
            ]
    except OSError as exc:
        raise _error(folder, f"cannot list the folder: {_os_reason(exc)}") from None
    return sorted(paths, key=lambda p: (p.name.lower(), p.name))


def file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a readable file, or None: checked before any decoder sees it."""
    try:
        st = path.stat()
    except OSError as exc:
        return _os_reason(exc)
    if stat.S_ISDIR(st.st_mode):
        return "is a folder, not a file"
    if st.st_size == 0:
        return "the file is empty (0 bytes)"
    return None


def pixel_limit() -> int | None:
    """Pillow raises its DecompressionBombError above twice MAX_IMAGE_PIXELS; we use the same."""
    return None if Image.MAX_IMAGE_PIXELS is None else 2 * int(Image.MAX_IMAGE_PIXELS)


def check_pixel_count(path: Path, width: int, height: int, streamable: bool = False) -> None:
    """The decompression-bomb guard for decoding a whole image; the message says what to do instead."""
    limit = pixel_limit()
    if limit is not None and width * height > limit:
        raise _error(path, f"image is too large ({width}x{height} pixels, the limit is {limit} pixels); "
                     + _too_large_hint(path, streamable))


def _too_large_hint(path: Path, streamable: bool) -> str:
    if streamable:
        return "`unetseg segment --format ome-tiff` or `--format ome-zarr` segments it tile by tile"
    return (f"this format decodes only whole, so make a tiled copy with "
            f"`unetseg convert {path.name} -o {path.stem}.ome.tif` and segment that")


def load_image(path: str | os.PathLike, page: int = 0, axes: str | None = None) -> LoadedImage:
    """Read ``path`` (page/frame ``page``) as an upright H x W x 3 uint8 image; ``axes`` (``--axes``)
    names a TIFF's axes when its metadata does not (core.io.axes)."""
    path = Path(path)
    _check_file(path)
    try:
        if path.suffix.lower() in TIFF_EXTENSIONS:
            return _load_tiff(path, page, axes)
        return _load_pillow(path, page)
    except MemoryError:
        raise _error(path, "the image is too large to load into memory") from None


def read_image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) as ``load_image`` would return it, from the header only."""
    path = Path(path)
    _check_file(path)
    if path.suffix.lower() in TIFF_EXTENSIONS:
        import tifffile

        with contextlib.suppress(Exception):
            with tifffile.TiffFile(path) as tif:
                first = tif.pages.first
                return int(first.imagewidth), int(first.imagelength)
    with open_pillow(path, decode=False) as (im, _):
        w, h = im.size
        if _orientation(im) in (5, 6, 7, 8):
            w, h = h, w
        return w, h


@contextlib.contextmanager
def open_pillow(
    path: Path, page: int = 0, decode: bool = True
) -> Iterator[tuple[Image.Image, int]]:
    """Yield (image, number of frames) with frame ``page`` fully decoded, or ImageReadError.

    Decoding happens here (``load()``) so truncation is reported as such; what the caller
    does inside the ``with`` block is not wrapped.
    """
    path = Path(path)
    _check_file(path)
    size = _png_header_size(path)
    if size is not None:
        check_pixel_count(path, *size)
    try:
        im = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _error(path, _bomb_reason(exc, path)) from None
    except UnidentifiedImageError:
        raise _error(path, "not an image (random bytes or an unsupported format)") from None
    except OSError as exc:
        raise _error(path, _decode_reason(exc) if exc.errno is None else _os_reason(exc)) from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file, not a bug here
        raise _error(path, _decode_reason(exc)) from None
    with im:
        try:
            check_pixel_count(path, *im.size)
            pages = int(getattr(im, "n_frames", 1) or 1)
            if not 0 <= page < pages:
                raise _page_error(path, page, pages)
            if page:
                im.seek(page)
            if decode:
                im.load()
        except ImageReadError:
            raise
        except Image.DecompressionBombError as exc:
            raise _error(path, _bomb_reason(exc, path)) from None
        except MemoryError:
            raise _error(path, "the image is too large to load into memory") from None
        except Exception as exc:  # noqa: BLE001
            raise _error(path, _decode_reason(exc)) from None
        yield im, pages


def to_rgb8(array: np.ndarray) -> np.ndarray:
    """Any 2-D/3-D numeric array as a C-contiguous H x W x 3 uint8 image (rules: module doc)."""
    return _to_rgb8(array)[0]


# --- readers -------------------------------------------------------------------------------


def _load_pillow(path: Path, page: int) -> LoadedImage:
    with open_pillow(path, page) as (im, pages):
        source_mode = im.mode
        notes = []
        if _orientation(im) in range(2, 9):
            try:
                im = ImageOps.exif_transpose(im)
                notes.append("rotated by its EXIF orientation")
            except Exception:  # noqa: BLE001 - a broken EXIF block is not worth refusing the image
                pass
        if im.mode in ("P", "PA"):
            im, note = im.convert("RGBA" if im.mode == "PA" else "RGB"), "palette -> RGB"
            notes.append(note)
        elif im.mode not in ("1", "L", "LA", "RGB", "RGBA", "RGBX", "I", "F") and not (
            im.mode.startswith("I;16")
        ):
            notes.append(f"{im.mode} -> RGB")
            im = im.convert("RGB")
        array = np.asarray(im)
        rgb, more = _to_rgb8(array)
        pixels = _pillow_pixels(path, im.mode, array)
    pixels, nans = without_nan(pixels)
    notes += [nan_note(nans)] if nans else []
    names = default_names(pixels.shape[2], rgb=pixels.shape[2] == 3)
    return LoadedImage(rgb, path, source_mode, pages, ", ".join(notes + more), pixels, names, nans)


def _pillow_pixels(path: Path, mode: str, array: np.ndarray) -> np.ndarray:
    """The decoded frame without alpha; a 16-bit colour PNG (which Pillow cuts to 8 bits) re-read whole."""
    if mode in ("RGB", "RGBA") and _png_bit_depth(path) == 16:
        import imagecodecs

        with contextlib.suppress(Exception):  # Pillow's 8-bit reading stands if libpng refuses
            wide = np.asarray(imagecodecs.png_decode(path.read_bytes()))
            if wide.shape[:2] == array.shape[:2] and wide.ndim == 3:
                array = wide
    if mode in ("LA", "RGBA", "RGBX", "PA") or (array.ndim == 3 and mode.endswith("A")):
        array = array[..., :-1]
    return as_hwc(array)


def _load_tiff(path: Path, page: int, axes: str | None = None) -> LoadedImage:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            pages = len(tif.pages)
            if not 0 <= page < pages:
                raise _page_error(path, page, pages)
            p = tif.pages[page]
            check_pixel_count(path, int(p.imagewidth), int(p.imagelength), streamable=bool(p.is_tiled))
            if p.photometric == tifffile.PHOTOMETRIC.SEPARATED:
                raise ValueError("CMYK TIFF")  # Pillow converts CMYK; tifffile does not
            offsets, counts = p.dataoffsets, p.databytecounts
            if offsets and max(o + c for o, c in zip(offsets, counts)) > path.stat().st_size:
                raise _error(path, "the file is truncated")
            arr = p.asarray()
            if p.planarconfig == tifffile.PLANARCONFIG.SEPARATE and arr.ndim == 3:
                arr = np.moveaxis(arr, 0, -1)
            pixels, names = _tiff_pixels(path, tif, page, p, arr, axes)
            notes, mode = [], f"{arr.dtype} TIFF"
            if p.photometric == tifffile.PHOTOMETRIC.PALETTE and p.colormap is not None:
                cmap = np.asarray(p.colormap)
                cmap = (cmap >> 8) if cmap.max() > 255 else cmap
                arr, notes = cmap.astype(np.uint8).T[arr], ["palette -> RGB"]
                pixels, names = arr, None
            elif p.photometric == tifffile.PHOTOMETRIC.MINISWHITE:
                arr = ~arr if arr.dtype == bool else _invert(arr)
                notes.append("white-is-zero inverted")
                pixels = arr if pixels.shape[:2] == arr.shape[:2] and arr.ndim == 2 else pixels
    except ImageReadError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - try Pillow before calling the file broken
        try:
            return _load_pillow(path, page)
        except ImageReadError as pil_error:
            if "not a TIFF file" in str(exc) and "not an image" in str(pil_error):
                raise
            raise _error(path, f"the TIFF file is corrupt or unsupported ({short_error(exc)})") from None
    try:
        rgb, more = _to_rgb8(arr)
    except ValueError as exc:
        raise _error(path, str(exc)) from None
    pixels, nans = without_nan(as_hwc(pixels))
    notes += [nan_note(nans)] if nans else []
    return LoadedImage(rgb, path, mode, pages, ", ".join(notes + more), pixels, names or [], nans)


def _tiff_pixels(path: Path, tif, page: int, p, arr: np.ndarray,
                 axes: str | None = None) -> tuple[np.ndarray, list[str] | None]:
    """Every channel of the image page ``page`` belongs to (rules: core.io.channels), and OME names.

    A page asked for explicitly (``page`` > 0) is one image; page 0 of a series whose pages are
    the planes of one channel axis brings the whole stack.
    """
    import tifffile

    series = tif.series[0]
    try:
        found = layout(path.name, series.axes, series.shape, axes)
    except ValueError as exc:
        raise ImageReadError(f"{exc}.") from None
    if found.plane_axes and page == 0:
        raise ImageReadError(stack_message(path, found.axes, series.shape, found.plane_axes, found.planes))
    axis = found.colour
    extra = tuple(p.extrasamples or ())
    alpha = any(int(e) in (1, 2) for e in extra)
    if page == 0 and axis in ("C", "I", "Q") and len(series.pages) > 1 and p.samplesperpixel == 1:
        stack = series.asarray()
        keep = [i for i, a in enumerate(found.axes) if a in "YX" or a == axis]
        stack = stack.reshape([series.shape[i] for i in keep])
        kept = [found.axes[i] for i in keep]
        pixels = np.transpose(stack, (kept.index("Y"), kept.index("X"), kept.index(axis)))
    else:
        pixels = as_hwc(arr)
        if alpha and pixels.shape[2] in (2, 4):
            pixels = pixels[..., :-1]
    names = ome_channel_names(tif.ome_metadata, pixels.shape[2]) if tif.is_ome else None
    if names is None:
        names = default_names(pixels.shape[2], rgb=p.photometric == tifffile.PHOTOMETRIC.RGB)
    return pixels, names


def stack_message(path: Path, axes: str, shape, plane_axes: str, planes) -> str:
    """Why a stack is not one 2-D image, and where it opens (core.io.sources reads every plane)."""
    sizes = " x ".join(f"{n} {'time points' if a == 'T' else 'Z planes'}" for a, n in zip(plane_axes, planes))
    return (f"{path.name}: a stack of {sizes} (axes {describe(axes, shape)}), not one 2-D image; open it as a "
            "stack: `unetseg segment` and `unetseg train` read every plane.")


# --- conversion ----------------------------------------------------------------------------


def _to_rgb8(array: np.ndarray) -> tuple[np.ndarray, list[str]]:
    a = np.asarray(array)
    notes: list[str] = []
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 3:
        c = a.shape[2]
        if c < 2:
            raise ValueError(f"cannot show an array of shape {a.shape} as an image")
        if c in (2, 4):
            notes.append("alpha dropped")
        elif c > 4:
            notes.append(f"first 3 of {c} channels shown")
        a = a[..., 0] if c == 2 else a[..., :3]
    elif a.ndim != 2:
        raise ValueError(f"cannot show an array of shape {a.shape} as an image")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"the image has no pixels (shape {a.shape})")
    a = _to_uint8(a, notes)
    if a.ndim == 2:
        grey, a = a, np.empty(a.shape + (3,), np.uint8)
        for c in range(3):  # a channel at a time: 3x faster than np.repeat, which held the GIL ~40 ms a plane
            a[..., c] = grey
        notes.append("grey -> RGB")
    return np.ascontiguousarray(a), notes


def _to_uint8(a: np.ndarray, notes: list[str]) -> np.ndarray:
    if a.dtype == np.uint8:
        return a
    if a.dtype == bool:
        notes.append("bool -> 0/255")
        return a.astype(np.uint8) * np.uint8(255)
    if np.issubdtype(a.dtype, np.floating):
        finite = np.isfinite(a)
        lo = float(np.min(a, where=finite, initial=np.inf))
        hi = float(np.max(a, where=finite, initial=-np.inf))
        if lo > hi:  # nothing finite
            notes.append("no finite values")
            return np.zeros(a.shape, np.uint8)
        if 0.0 <= lo and hi <= 1.0:
            notes.append("float 0..1 scaled to 0..255")
            out = np.rint(np.where(finite, a, 0).astype(np.float32) * 255)
            return out.astype(np.uint8)
        a = np.where(finite, a, np.nan)
    elif not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"cannot show {a.dtype} pixel values as an image")
    return _stretch(a, notes)


def _stretch(a: np.ndarray, notes: list[str]) -> np.ndarray:
    """Percentile stretch; NaN (only from float input) maps to 0."""
    flat = a.reshape(-1)
    sample = flat[:: max(1, flat.size // _SAMPLE)]
    if np.issubdtype(a.dtype, np.floating):
        sample = sample[np.isfinite(sample)]
        if sample.size == 0:  # the sample missed the few finite values
            sample = flat[np.isfinite(flat)]
    lo, hi = (float(v) for v in np.percentile(sample, (0.1, 99.9)))
    if hi <= lo:
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    if hi <= lo:
        notes.append(f"constant {a.dtype} image -> 0")
        return np.zeros(a.shape, np.uint8)
    notes.append(f"{a.dtype} stretched {lo:g}..{hi:g} -> 0..255")
    out = np.empty(a.shape, np.uint8)
    step = max(1, _SAMPLE // max(1, a[0].size))  # rows at a time: small float temporaries
    for r in range(0, a.shape[0], step):
        part = (a[r : r + step].astype(np.float32) - np.float32(lo)) * np.float32(255 / (hi - lo))
        np.clip(part, 0, 255, out=part)
        np.nan_to_num(part, copy=False, nan=0.0)
        np.rint(part, out=part)
        out[r : r + step] = part
    return out


def _invert(a: np.ndarray) -> np.ndarray:
    if np.issubdtype(a.dtype, np.integer):
        info = np.iinfo(a.dtype)
        return (info.max - a.astype(np.int64) + info.min).astype(a.dtype)
    return a.max() - a


# --- helpers -------------------------------------------------------------------------------


def _error(path: Path, reason: str) -> ImageReadError:
    return ImageReadError(f"{path.name or path}: {reason}.")


def _check_file(path: Path) -> None:
    problem = file_problem(path)
    if problem:
        raise _error(path, problem)


def _page_error(path: Path, page: int, pages: int) -> ImageReadError:
    have = "1 page (page 0)" if pages == 1 else f"{pages} pages (0-{pages - 1})"
    return _error(path, f"page {page} does not exist, the file has {have}")


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    return describe_os_error(exc)


def _decode_reason(exc: BaseException) -> str:
    text = str(exc)
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return "the file is truncated"
    return f"the image data is corrupt ({short_error(exc)})"


def _bomb_reason(exc: Exception, path: Path) -> str:
    found = re.search(r"(\d+) pixels", str(exc))
    size = f"{found.group(1)} pixels, " if found else ""
    return f"image is too large ({size}the limit is {pixel_limit()} pixels); {_too_large_hint(path, False)}"



def _orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - unreadable EXIF means "no orientation"
        return 1


def _png_ihdr(path: Path) -> bytes | None:
    """The first 25 bytes of a PNG (signature, IHDR length and type, width, height, bit depth)."""
    try:
        with open(path, "rb") as f:
            head = f.read(25)
    except OSError:
        return None
    if len(head) == 25 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return head
    return None


def _png_bit_depth(path: Path) -> int | None:
    head = _png_ihdr(path)
    return None if head is None else head[24]


def _png_header_size(path: Path) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR, so a bomb fails before Pillow parses further."""
    head = _png_ihdr(path)
    return None if head is None else struct.unpack(">II", head[16:24])
