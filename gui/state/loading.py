"""Turning a listed image into something to show: decode it, find its mask, make a document.

Opening reads only headers for every file given and decodes just the image shown; the
document is created on first view, from an existing mask beside the image when there is one
(core.io.masks.find_mask_for_image).

A stack (Z planes, time points) opens plane by plane: gui.state.stack_loading.

An image above ``LARGE_IMAGE_PIXELS`` (a whole slide, an orthophoto) is never decoded whole:
it is opened as a lazy source (core.io.sources) whose tiles the view decodes as it needs them,
and its mask is a chunked one (core.document.chunked_labels) that lives on disk with a bounded cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np

from core.classes import ClassInfo, complete_classes
from core.document.mask_document import MaskDocument
from core.io.images import ImageReadError, load_image, read_image_size
from core.io.mask_naming import instances_path, strokes_path
from core.io.masks import MaskError, find_mask_for_image, read_mask
from gui.state.stack_loading import load_stack, stack_source

if TYPE_CHECKING:
    from gui.state.image_store import ImageEntry


LARGE_IMAGE_PIXELS = 100 * 1024 * 1024  # above this the image is tiled and its mask chunked
STROKES_CACHE_BYTES = 64 * 2**20  # a slide's strokes are sparse: a smaller cache than its mask's
LAZY_SUFFIXES = (".tif", ".tiff", ".svs", ".ndpi", ".scn", ".btf", ".tf8", ".bif", ".qptiff", ".zarr")


def is_zarr_image(path: Path) -> bool:
    """An OME-Zarr (or plain zarr) image folder, which opens as one image, not a folder of them."""
    return path.suffix.lower() == ".zarr" and path.is_dir()


def is_large(path: Path) -> bool:
    """Whether ``path`` opens as a tiled image with a chunked mask (header only)."""
    if path.suffix.lower() not in LAZY_SUFFIXES:
        return False  # formats that decode only whole keep the decompression-bomb guard
    if path.suffix.lower() == ".zarr":
        return True
    try:
        w, h = read_image_size(path)
    except ImageReadError:
        return False
    return w * h > LARGE_IMAGE_PIXELS


FIND = object()  # load_entry's default: the mask found beside the image (find_mask_for_image)


def load_entry(entry: "ImageEntry", template: list[ClassInfo], chunked_base=FIND) -> str | None:
    """Decode the image and create the document if needed; returns a note for the status bar.

    ``chunked_base`` (a slide's mask only; a crash restore): open exactly that saved mask, or a new
    empty one for None, instead of looking for one.  Raises ImageReadError when the image cannot
    be shown, StoreError when that ``chunked_base`` cannot be read.
    """
    if entry.source is None and entry.image is None:
        entry.source = stack_source(entry.path)  # a stack (or a zarr store): read lazily
    if entry.source is not None and entry.source.planes:
        return load_stack(entry, template)
    if entry.source is not None or (entry.image is None and is_large(entry.path)):
        return _load_large(entry, template, chunked_base)
    note = None
    if entry.image is None:
        image = load_image(entry.path)
        if entry.doc is not None and entry.doc.shape != image.rgb.shape[:2]:
            raise ImageReadError(f"{entry.name}: the file changed on disk; it is now "
                                 f"{image.width}x{image.height}, not the size of its open mask.")
        entry.image = image
    if entry.doc is None:
        rgb = entry.image.rgb
        classes = list(template)
        labels = np.zeros(rgb.shape[:2], np.uint8)
        source = find_mask_for_image(entry.path)
        if source is not None:
            try:
                labels = read_mask(source, shape=rgb.shape[:2], classes=classes)
                classes = complete_classes(classes, top=int(labels.max()) if labels.size else 0)
                note = f"Loaded the mask {source.name} for editing."
            except (MaskError, ValueError, OSError) as exc:
                note = f"Found {source.name} but could not load it: {exc}"
                source = None
        entry.mask_source = source
        entry.has_mask_file = source is not None or entry.has_mask_file
        entry.doc = MaskDocument(labels, classes)
        objects_note = load_objects(entry)
        note = f"{note} {objects_note}" if note and objects_note else note or objects_note
    if entry.strokes is None:
        strokes_note = load_strokes(entry)
        note = f"{note} {strokes_note}" if note and strokes_note else note or strokes_note
    return note


def load_objects(entry: "ImageEntry") -> str | None:
    """The image's objects from ``<stem>_instances.tif`` beside it, into the new document's object
    layer (outside its history); returns a note when the file was found (read, or why not).

    In a 16-bit file the id 65535 means "not annotated" (a training annotation's convention,
    core.io.label_images): those pixels are read as no object."""
    from core.io.label_images import NOT_ANNOTATED, read_label_image

    doc = entry.doc
    path = instances_path(entry.path)
    if doc is None or doc.objects is None or not path.is_file():
        return None
    try:
        ids = read_label_image(path)
        if ids.shape != doc.shape:
            h, w = doc.shape
            raise MaskError(f"{path.name} is {ids.shape[1]}x{ids.shape[0]}, but the image {entry.path.name} "
                            f"is {w}x{h}")
        unannotated = 0
        if _file_dtype(path) == np.uint16:
            hole = ids == NOT_ANNOTATED[np.dtype(np.uint16)]
            unannotated = int(np.count_nonzero(hole))
            ids[hole] = 0
        doc.objects.set_labels(ids)
    except (MaskError, ValueError, OSError, MemoryError) as exc:
        return f"Found {path.name} but could not load its objects: {exc}"
    note = f"Loaded {doc.objects.count:,} objects from {path.name}."
    if unannotated:
        note += f" {unannotated:,} pixels marked \"not annotated\" (65535) are read as no object."
    return note


def _file_dtype(path: Path):
    """The sample type a TIFF stores (its header only); None for anything else."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            return np.dtype(tif.pages.first.dtype)
    except Exception:  # noqa: BLE001 - read_label_image has already named what is wrong
        return None


def load_strokes(entry: "ImageEntry") -> str | None:
    """The image's annotation strokes: from ``<stem>_strokes.png`` beside it, else none yet;
    returns a note when the file was found (read, or why not)."""
    from core.document.strokes import StrokeDocument, read_strokes

    doc = entry.doc
    assert doc is not None
    path = strokes_path(entry.path)
    if path.is_file():
        try:
            strokes = StrokeDocument(read_strokes(path, doc.shape), doc.classes)
        except (MaskError, ValueError, OSError) as exc:
            entry.strokes = StrokeDocument.blank(doc.shape, doc.classes)
            return f"Found {path.name} but could not load its strokes: {exc}"
        entry.strokes = strokes
        return f"Loaded {strokes.annotated_pixels} annotated pixels from {path.name}."
    entry.strokes = StrokeDocument.blank(doc.shape, doc.classes)
    return None


def mark_mask_files(entries: Iterable["ImageEntry"]) -> None:
    """Note which images already have a mask file, for the file list's marks."""
    for entry in entries:
        entry.has_mask_file = find_mask_for_image(entry.path) is not None


_MASK_NAMES = ("{}_mask", "{}.mask", "{}_label", "{}_labels", "{}_strokes", "{}_instances")


def without_masks(paths: list[Path]) -> list[Path]:
    """Drop files that are the masks (or Live Training strokes, or instance labels) of other listed
    images (``cells_mask.png``, ``cells_strokes.png``, ``cells_instances.tif`` beside ``cells.png``):
    list_images returns every image file, masks included."""
    from core.io.mask_naming import image_stem

    def names(p: Path) -> set[str]:  # a stack's cells_mask.ome.tif beside cells.ome.tif too
        return {p.stem.lower(), image_stem(p).lower()}

    masks = {pattern.format(stem) for p in paths for stem in names(p) for pattern in _MASK_NAMES}
    return [p for p in paths if not names(p) & masks]


def top_class(labels) -> int:
    """The highest class id present in a chunked mask, from its counts (0 when blank)."""
    counts = labels.class_counts()
    return int(np.flatnonzero(counts).max()) if counts.any() else 0


def _load_large(entry: "ImageEntry", template: list[ClassInfo], base=FIND) -> str | None:
    from core.document.chunked_labels import ChunkedLabels
    from core.document.chunked_save import recover_swap
    from core.io.mask_naming import chunked_mask_path
    from core.io.sources import open_source

    note = None
    if entry.source is None:
        entry.source = open_source(entry.path)
    if entry.doc is None:
        source, classes = entry.source, list(template)
        if base is FIND:
            recover_swap(chunked_mask_path(entry.path))  # a save killed mid-swap: the old mask goes back
            labels, mask = None, find_mask_for_image(entry.path)
        else:
            labels, mask = (ChunkedLabels.open(base) if base is not None else None), base
        if mask is not None and base is FIND:
            try:
                labels = ChunkedLabels.open(mask)
                if labels.shape != (source.height, source.width):
                    labels.close()
                    raise ValueError(f"it is {labels.shape[1]}x{labels.shape[0]}, the image "
                                     f"{source.width}x{source.height}")
                note = f"Loaded the mask {mask.name} for editing."
            except (MaskError, ValueError, OSError) as exc:
                note, labels, mask = f"Found {mask.name} but could not load it: {exc}", None, None
        if labels is None:
            labels = ChunkedLabels.create(source.height, source.width)
        top = top_class(labels)
        entry.mask_source = mask
        entry.has_mask_file = mask is not None or entry.has_mask_file
        # the names and colours the mask file records come first: a save then writes them back
        entry.doc = MaskDocument(labels, complete_classes(labels.classes, classes, top=top))
    if entry.strokes is None:
        strokes_note = load_slide_strokes(entry)
        note = f"{note} {strokes_note}" if note and strokes_note else note or strokes_note
    return note


def load_slide_strokes(entry: "ImageEntry") -> str | None:
    """A slide's strokes, at full resolution in its chunked layout: ``<stem>_strokes.ome.zarr``
    beside it when there is one (read lazily), else none yet (chunks of 255 that cost nothing);
    returns a note when the file was found (read, or why not)."""
    from core.document.chunked_save import recover_swap
    from core.document.strokes import StrokeDocument, open_chunked_strokes
    from core.io.label_store import StoreError
    from core.io.mask_naming import chunked_strokes_path

    doc = entry.doc
    assert doc is not None
    path = chunked_strokes_path(entry.path)
    recover_swap(path)  # a save killed mid-swap: the old strokes go back
    if path.exists():
        try:
            strokes = StrokeDocument(open_chunked_strokes(path, doc.shape, STROKES_CACHE_BYTES), doc.classes)
        except (StoreError, OSError, ValueError) as exc:
            entry.strokes = StrokeDocument.blank_chunked(doc.shape, doc.classes, cache_bytes=STROKES_CACHE_BYTES)
            return f"Found {path.name} but could not load its strokes: {exc}"
        entry.strokes = strokes
        return f"Loaded {strokes.annotated_pixels:,} annotated pixels from {path.name}."
    entry.strokes = StrokeDocument.blank_chunked(doc.shape, doc.classes, cache_bytes=STROKES_CACHE_BYTES)
    return None
