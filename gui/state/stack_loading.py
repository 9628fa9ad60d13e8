"""Opening a stack in the app: its lazy source, its planes' documents, its saved label stacks.

A stack (core.io.sources: an OME-TIFF or OME-Zarr with Z or T, an ImageJ hyperstack, a multi-page
TIFF of more than four bare pages, a folder of numbered planes opened with Open Stack Folder) is
never decoded whole: its planes are read one at a time into a PlaneCache (core.io.plane_cache),
and each plane has its own documents (core.document.stack_planes), made on first visit from the
mask and strokes stacks saved beside it (core.io.mask_naming: ``<stem>_mask.ome.tif``,
``<stem>_strokes.ome.tif``).  A mask whose planes do not fit the stack refuses the open with one
sentence naming both shapes: the stack opens once the file is moved, and nothing is overwritten.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.classes import ClassInfo
from core.io.images import ImageReadError

if TYPE_CHECKING:
    from gui.state.image_store import ImageEntry

TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8")
APP_AXES_HINT = (" with `unetseg segment`, or open in the app a copy saved as OME-TIFF or an ImageJ "
                 "hyperstack, which name their axes")


def stack_source(path: Path):
    """The open lazy source of ``path`` when it may be a stack (a folder of planes, a zarr store,
    or a TIFF whose header names more than one Z or T plane); None for anything else (decided
    from the header alone).  ImageReadError names the file and the reason (a 5-D file whose
    axis order it does not state, planes of different sizes...)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in TIFF_SUFFIXES and not _tiff_has_planes(path):
        return None
    if suffix not in TIFF_SUFFIXES and not path.is_dir():
        return None
    from core.io.sources import open_source

    try:
        return open_source(path)
    except ImageReadError as exc:
        text = str(exc)
        raise ImageReadError(text.rstrip(".") + APP_AXES_HINT + ".") if "--axes" in text else exc


def _tiff_has_planes(path: Path) -> bool:
    """The TIFF's first series has more than one Z or T plane by core.io.axes's rule (header only);
    True also when that rule refuses its axes (open_source then says why)."""
    import tifffile

    from core.io.axes import layout

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes, shape = series.axes, series.shape
    except Exception:  # noqa: BLE001 - not a TIFF tifffile reads: the 2-D path explains
        return False
    try:
        return bool(layout(path.name, axes, shape).plane_axes)
    except ValueError:
        return True


def is_stack(entry: "ImageEntry") -> bool:
    """``entry`` is a stack: opened as one, or, not opened yet, a file or folder whose header names
    planes (``stack_source``; one that cannot be read is not, and the 2-D path reports it)."""
    if entry.stack is not None:
        return True
    if entry.source is not None:
        return bool(getattr(entry.source, "planes", ()))
    try:
        source = stack_source(entry.path)
    except (ImageReadError, OSError, ValueError):
        return False
    if source is None:
        return False
    with source:
        return bool(source.planes)


def load_stack(entry: "ImageEntry", template: list[ClassInfo]) -> str | None:
    """Give ``entry`` (whose ``source`` has planes) its planes' documents and shows its plane;
    returns a note for the status bar.  ImageReadError when it cannot be shown."""
    from core.document.stack_planes import StackPlanes, open_mask_stack
    from core.io.mask_naming import stack_instances_path, stack_strokes_path
    from core.io.masks import MaskError, find_mask_for_image
    from core.io.plane_cache import PlaneCache
    from core.io.whole_planes import TiffPlanes
    from gui.state.display import is_photo
    from gui.state.loading import LARGE_IMAGE_PIXELS

    source = entry.source
    h, w = source.height, source.width
    if h * w > LARGE_IMAGE_PIXELS:
        raise ImageReadError(f"{entry.name}: its planes are {w}x{h} pixels; the app edits stacks whose planes have "
                             f"at most {LARGE_IMAGE_PIXELS // 2**20} Mpx (`unetseg segment` segments any size).")
    note = None
    if entry.stack is None:
        shape = tuple(source.planes) + (h, w)
        mask = find_mask_for_image(entry.path)
        reader = None
        if mask is not None:
            try:
                reader = open_mask_stack(mask, source.plane_axes, shape)
            except (MaskError, ValueError, OSError) as exc:
                raise ImageReadError(f"{str(exc).rstrip('.')}. Move or rename {mask.name} to open the stack "
                                     "with a new mask.") from None
            note = f"Loaded the mask stack {mask.name} for editing."
        strokes, path = None, stack_strokes_path(entry.path)
        if path.is_file():
            try:
                strokes = open_mask_stack(path, source.plane_axes, shape)
            except (MaskError, ValueError, OSError) as exc:
                note = " ".join(filter(None, [note, f"Found {path.name} but could not load its strokes: {exc}"]))
        objects, path = None, stack_instances_path(entry.path)
        if path.is_file():
            try:
                objects = open_mask_stack(path, source.plane_axes, shape, objects=True)
            except (MaskError, ValueError, OSError) as exc:
                note = " ".join(filter(None, [note, f"Found {path.name} but could not load its objects: {exc}"]))
        if reader is not None and reader.classes:  # the names and colours the saved mask stack records
            from core.classes import complete_classes

            template = complete_classes(reader.classes, template)
        lock = threading.RLock()
        entry.plane_pixels = PlaneCache(source, raw=not is_photo(source.dtype, source.channel_names), lock=lock,
                                        whole=TiffPlanes.open(entry.path, source))
        entry.stack = StackPlanes(source.plane_axes, source.planes, h, w, template, reader, strokes,
                                  on_dirty=lambda _dirty: entry.changed.emit(), objects=objects)
        entry.mask_source = mask
        entry.has_mask_file = mask is not None or entry.has_mask_file
    docs = entry.stack.select(entry.stack.plane)
    entry.doc, entry.strokes = docs.mask, docs.strokes
    return note


def stack_save_target(entry: "ImageEntry") -> Path:
    """Where Save writes a stack's mask: the label stack it was loaded from when the naming rule
    names it, else ``<stem>_mask.ome.tif`` (``.ome.zarr`` for a mask stack over 2 GB)."""
    from core.document.stack_planes import mask_format
    from core.io.mask_naming import stack_mask_path
    from gui.state.image_store import path_key

    stack = entry.stack
    if stack is None and entry.save_path is None:  # not opened yet: the mask stack found beside it, else the rule's
        from core.io.masks import find_mask_for_image

        found = find_mask_for_image(entry.path)
        if found is not None and any(path_key(found) == path_key(stack_mask_path(entry.path, fmt))
                                     for fmt in ("ome-tiff", "ome-zarr")):
            return found
    loaded = stack.mask_path if stack is not None else None
    if loaded is not None and any(path_key(loaded) == path_key(stack_mask_path(entry.path, fmt))
                                  for fmt in ("ome-tiff", "ome-zarr")):
        return Path(loaded)
    fmt = mask_format(stack.planes, stack.height, stack.width) if stack is not None else "ome-tiff"
    return stack_mask_path(entry.path, fmt)


def shown_plane_pixels(entry: "ImageEntry") -> np.ndarray:
    """The shown plane's pixels as the view draws them (8-bit RGB for a photograph, else raw)."""
    return entry.plane_pixels.get(entry.stack.plane)


def plane_image(entry: "ImageEntry", plane) -> object:
    """One plane of a stack as the trainer takes an image (core.training.raw_input.TrainingImage:
    its raw pixels and its 8-bit view), one of them from the plane cache, the other read."""
    from core.io.plane_view import PlaneView
    from core.training.raw_input import TrainingImage

    cache, stack, source = entry.plane_pixels, entry.stack, entry.source
    view = PlaneView(source, plane, cache.lock)
    shown = cache.get(plane)
    rgb, pixels = (shown, view.read_raw(0, view.height, 0, view.width)) if not cache.raw else \
        (view.read(0, view.height, 0, view.width), shown)
    return TrainingImage(entry.path, rgb, pixels, list(source.channel_names), 0, tuple(plane), stack.plane_axes)
