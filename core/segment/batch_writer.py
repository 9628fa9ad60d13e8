"""The one batch writer behind ``unetseg segment``, Segment All and Export All.

Each image's files are written as soon as it is added (atomically, one file at a time), so a
crash or a cancel keeps what was finished; files that hold the whole batch (``coco.json``,
YOLO's ``data.yaml``) are collected in memory as small records, not masks, and written by
``close()``.  File names come from ``core.io.mask_naming``, the rule the app and the CLI share.

API::

    writer = BatchWriter(folder, formats, classes, opacity=0.5, coco_semantic=False,
                         objects=ObjectOptions(min_area=1, tolerance=0.5), protect=(),
                         create_folder=True,  # False: the app's chosen folder must still exist
                         shared=None,  # {fmt: path}: a collection file under another name (Export Mask's coco)
                         image_stores=False)  # True: a 2-D image also gets ome-tiff/ome-zarr (Export All)
    writer.needs_image           # True when a format draws the image (overlay): pass image_rgb
    writer.needs_pixels          # True when a format measures the pixels (measurements): pass raw
    writer.add(image, stem, labels, image_rgb=None, targets=None, *, instances=None, raw=None) -> list[Path]
        # image: the source image's path or file name (COCO file_name, labelme imagePath);
        # stem: its unique output stem (mask_naming.unique_stems); targets: {fmt: path}
        # overrides the named file (Segment All saves to each image's own save path).
        # instances: the model's instance labels (H x W integer ids, 0 = background), or None:
        # then the instances and measurements formats take each 8-connected component of one
        # class as an object, and the object formats keep their class-mask objects (as before).
        # raw: the pixels measurements read (a LoadedImage, an ImageSource or an H x W (x C)
        # array in the file's dtype); None: read from ``image`` when that file exists.
        # What fails every format (the mask, the image, the folder) raises
        # MaskError("<image name>: <reason>.") before anything is written.  A format's own
        # failure (VOC's 254 objects, a full disk) fails that format alone: the others are
        # still written, then FormatErrors (a MaskError; .failures {fmt: error}, .written) is
        # raised, each error "<image name>: <fmt> not written: <reason>.".  With one format,
        # its failure is the image's (a plain MaskError).
    writer.close() -> list[Path]  # writes the collections; every file written, in order
    writer.written: list[Path]

    write_batch(writer, jobs, progress=None, should_cancel=None, on_done=None) -> BatchResult
        # jobs: iterable of (image, stem, produce[, targets]); produce() -> (labels, image_rgb
        # or None), or an ImageResult(labels, image_rgb, instances, raw); targets as for add()
    write_one(path, fmt, labels, classes, *, image_path, image_rgb=None, instances=None, raw=None,
              opacity=0.5, objects=None, coco_semantic=False, plane=None) -> list[Path]
        # one format of one image into the file ``path`` (the app's Export Mask); ``plane``: the
        # mask is that plane of a stack (measurements read that plane of ``raw`` or of the stack file)
        # loads or segments one image.  A ValueError/OSError/MemoryError from produce or add
        # is recorded as that image's MaskError (result.failed), a format's own failure as
        # (image, fmt, error) in result.format_failed (the image counts as done when another
        # format was written), and the batch goes on; should_cancel() is
        # asked before each image; progress(done, total) after each; on_done(image, paths,
        # labels) after each success.  The writer is closed (collections written) at the end,
        # also after a cancel, so they describe exactly the files already written.

A chunked mask (``ChunkedLabels``, a zarr array: anything with ``chunks``) is read chunk by
chunk when every format can take it so (GeoJSON, ImageJ: ``core.io.objects.objects_of``); other
formats need the mask in memory.

``folder=None`` writes beside each image under the app's save name (``<stem>_mask.png``;
index format only), which is what Segment All does.

Stacks (docs/interfaces.md: a stack's mask is a label stack with its planes)::

    job = writer.stack(image, stem, plane_axes, planes, height, width, physical=None, *, raw=None,
                       stitched=False)
        # raw: the stack's ImageSource, whose planes the measurements read (None: opened from image);
        # stitched: the ids given to add_plane link objects across Z (measurements add a 3-D table)
    job.add_plane(plane, labels, image_rgb=None, instances=None) -> list[Path]  # as each plane is done
        # instances: the plane's object ids, unique over the stack (stitched 3-D ids, or a model's objects
        # numbered by core.objects.stitch.Numbering); None: each class's 8-connected components, numbered so
    job.close() -> list[Path]   # the files that hold every plane; job.abort() leaves none of them
    # targets={fmt: path}: a stack-wide file of that format under another name (the app's Export Mask);
    # with folder=None (beside the image, what Segment All does) a stack gets its app save name,
    # <stem>_mask.ome.tif (targets={"index": path} names it), one label stack with its planes, and,
    # when targets names "instances" (a model that separates objects), its objects stack there
    write_stack(writer, image, stem, masks: StackMasks, should_cancel=None) -> list[Path] | None
        # a whole stack through writer.stack: masks.fill(add) calls add(plane, labels, instances=None)
        # for each plane in file order (a saved mask stack read plane by plane, or segment_stack's
        # on_plane); None when cancelled (nothing written).  A batch job's produce() may return a
        # StackMasks: write_batch writes it so, in the same folder and collections as the 2-D images
    # a format's own failure (VOC's 254 objects on a plane, pixels that cannot be read) stops that
    # format for the stack alone: close() writes the rest, then raises FormatErrors naming it

A stack's formats: ``tiff`` (``<stem>.tif``, an ImageJ hyperstack), ``ome-tiff``
(``<stem>.ome.tif``), ``ome-zarr`` (``<stem>.ome.zarr``) and ``npy`` hold the whole label stack with
its axes, so it reads back with the input's planes (core.io.label_stacks; they are filled plane by
plane in an OME-Zarr work store, never held whole in memory); ``geojson`` and ``imagej`` hold
every plane's objects in one file, each with its plane (QuPath's geometry ``plane``, properties
``z``/``t``; ImageJ's z/t position); ``coco`` gets one image per plane (``file_name`` the stack,
``z``/``t`` beside it); the one-image-per-file formats (index, color, overlay, yolo, labelme, voc)
get a file per plane named ``<stem>_z07`` (core.io.mask_naming.plane_stem).

A stack's objects have one id each over the whole stack, the same in every file: ``instances``
is ``<stem>_instances.ome.tif`` (a label stack of ids with the input's planes, uint16, or uint32
past 65,534 ids; also written whenever objects are stitched), ``measurements`` one
``<stem>_measurements.csv`` whose rows start with the plane's ``t``/``z`` (core.objects.stack_measure;
the stack's raw pixels of each plane, its channel names and physical sizes) and, for stitched
objects, ``<stem>_measurements_3d.csv`` with one row per 3-D object; COCO annotations and GeoJSON
features carry it as ``object_id``.

Within one batch no file is written twice: a file another image (or another stack's plane) already
wrote, the image itself or a protected file is refused, naming both (as that image's or that
format's error), never overwritten.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from core.classes import ClassInfo
from core.io.mask_naming import (STACK_FILES, STACK_OBJECT_FILES, collection_files, default_mask_path, format_info,
                                 image_files, plane_stem, stack_files)
from core.io.masks import CHUNKWISE_FORMATS, OBJECT_DATA_FORMATS, MaskError, is_chunked
from core.io.objects import ObjectOptions

BATCH_ERRORS = (ValueError, OSError, MemoryError)  # MaskError is a ValueError, WriteError an OSError
NEEDS_IMAGE = frozenset({"overlay"})
NEEDS_PIXELS = frozenset({"measurements"})
IMAGE_STORES = ("ome-tiff", "ome-zarr")  # a 2-D image's label store: <stem>.ome.tif, <stem>.ome.zarr


@dataclass
class ImageResult:
    """What ``produce()`` may return for one image (a plain ``(labels, image_rgb)`` also works)."""

    labels: Any  # class ids
    image_rgb: np.ndarray | None = None
    instances: np.ndarray | None = None  # a model's instance labels; None: components of the class mask
    raw: Any = None  # pixels for measurements (see BatchWriter.add)
    close: Callable[[], None] | None = None  # called once the image is written or has failed (file handles)


class BatchWriter:
    """Write masks of many images into one folder in several formats; see the module doc."""

    def __init__(
        self,
        folder: str | os.PathLike | None,
        formats: Sequence[str],
        classes: Sequence[ClassInfo],
        *,
        opacity: float = 0.5,
        coco_semantic: bool = False,
        objects: ObjectOptions | None = None,
        protect: Iterable[str | os.PathLike] = (),
        create_folder: bool = True,
        shared: Mapping[str, str | os.PathLike] | None = None,
        image_stores: bool = False,
    ):
        self.formats = list(dict.fromkeys(formats))
        for fmt in self.formats:
            if fmt not in STACK_FILES:  # ome-tiff and ome-zarr: stacks only (2-D ones stream: segment_large)
                format_info(fmt)  # ValueError for an unknown one, before anything is written
        if not self.formats:
            raise ValueError("no mask format chosen")
        if folder is None and self.formats != ["index"]:
            raise ValueError("writing beside each image is for index masks only")
        self.folder = None if folder is None else Path(folder)
        # what a 2-D image gets: ome-tiff and ome-zarr only with ``image_stores`` (the app's Export All, as
        # Export Mask writes them: a slide's chunked mask copied as a pyramid, a small mask as one level);
        # the CLI streams a 2-D image's stores tile by tile instead (segment_large)
        self.image_formats = [f for f in self.formats
                              if f not in STACK_FILES or f in ("tiff", "npy") or (image_stores and f in IMAGE_STORES)]
        self.classes = list(classes)
        self.opacity = float(opacity)
        self.coco_semantic = coco_semantic
        self.objects = objects if objects is not None else ObjectOptions()
        self.written: list[Path] = []
        self._protect = {_key(p) for p in protect}
        self._claimed: dict[str, tuple[str, str]] = {}  # file key -> (owner key, owner's name): no file written twice
        self._create = create_folder  # False: a folder that vanished (a USB stick) is an error
        self._collectors = {fmt: _COLLECTORS[fmt](self) for fmt in self.formats if fmt in _COLLECTORS}
        self._shared = {fmt: [Path(p)] for fmt, p in (shared or {}).items()}
        self._closed = False

    @property
    def needs_image(self) -> bool:
        return any(fmt in NEEDS_IMAGE for fmt in self.formats)

    @property
    def needs_pixels(self) -> bool:
        return any(fmt in NEEDS_PIXELS for fmt in self.formats)

    def targets(self, image: str | os.PathLike, stem: str) -> dict[str, list[Path]]:
        """The per-image files of each format (empty for collection-only formats)."""
        if self.folder is None:
            return {"index": [default_mask_path(image)]}
        return {fmt: stack_files(self.folder, stem, fmt) if fmt in IMAGE_STORES else image_files(self.folder, stem, fmt)
                for fmt in self.image_formats}

    def add(
        self,
        image: str | os.PathLike,
        stem: str,
        labels: np.ndarray,
        image_rgb: np.ndarray | None = None,
        targets: Mapping[str, str | os.PathLike] | None = None,
        *,
        instances: np.ndarray | None = None,
        raw: Any = None,
    ) -> list[Path]:
        if self._closed:
            raise RuntimeError("the batch writer is closed")
        plan = self.targets(image, stem)
        for fmt, path in (targets or {}).items():
            plan[fmt] = [Path(path)]
        failures: dict[str, MaskError] = {}
        formats = list(self.image_formats)
        chunked = labels if is_chunked(labels) else None
        if chunked is not None and not fits_memory(chunked.shape):  # these formats need the whole mask in memory
            for fmt in [f for f in formats if f not in CHUNKWISE_FORMATS and f not in IMAGE_STORES]:
                formats.remove(fmt)
                failures[fmt] = format_error(image, fmt, ValueError(
                    f"the {chunked.shape[1]}x{chunked.shape[0]} mask is too large to hold in memory; only OME-Zarr, "
                    "OME-TIFF, GeoJSON and ImageJ ROIs are written chunk by chunk"))
        try:
            labels = self._checked(image, labels, image_rgb, plan, formats)
            objects = _Objects(labels, instances, raw, image)
        except BATCH_ERRORS as exc:
            raise image_error(image, exc) from None
        done: list[Path] = []
        for fmt in formats:  # each format on its own: one's limit never stops the others
            data = chunked if chunked is not None and fmt in IMAGE_STORES else labels  # a slide's: copied as a pyramid
            try:
                done += self._write_format(fmt, image, data, image_rgb, plan.get(fmt, []), objects)
            except BATCH_ERRORS as exc:
                failures[fmt] = format_error(image, fmt, exc)
                if len(self.image_formats) == 1:  # the format is the image's only output: the image failed
                    raise image_error(image, exc) from None
        self.written += done
        if failures:
            raise FormatErrors(image, failures, done)
        return done

    def _checked(self, image, labels, image_rgb, plan: dict[str, list[Path]], formats: Sequence[str]):
        """What fails every format alike (the mask, the image, the folder), before anything is written."""
        from core.io.masks import as_label_array

        if not (is_chunked(labels) and set(formats) <= CHUNKWISE_FORMATS | set(IMAGE_STORES)):
            labels = as_label_array(labels)  # a chunked mask stays on disk for GeoJSON and ImageJ
        if len(labels.shape) != 2:
            raise ValueError(f"the mask is not a 2-D array (shape {labels.shape})")
        if NEEDS_IMAGE & set(formats) and image_rgb is None:
            raise ValueError("the overlay format needs the image")
        for fmt, paths in plan.items():
            self._claim(image, fmt, paths)
        if self.folder is not None and not self.folder.exists():
            if not self._create:  # the app's chosen folder vanished (a USB stick): no format can be written
                import errno

                from core.atomic import WriteError

                first = next((p for paths in plan.values() for p in paths), self.folder)
                raise WriteError(errno.ENOENT, f"cannot write {first}: the folder does not exist")
            self.folder.mkdir(parents=True)
        return labels

    def _claim(self, image, fmt: str, paths: Sequence[Path], owner: str | None = None) -> None:
        """Refuse (ValueError) a file that is the image itself, a protected file, or one this batch
        already wrote for another image; else record it as ``image``'s (``owner``: its name in messages)."""
        mine = (_key(image), owner or Path(image).name)
        for path in paths:
            key = _key(path)
            if key == mine[0] or key in self._protect:
                raise ValueError(f"the {fmt} mask would overwrite the image itself ({path}); "
                                 "choose another output folder")
            other = self._claimed.setdefault(key, mine)
            if other[0] != mine[0]:
                raise ValueError(f"the {fmt} file {Path(path).name} would overwrite the one written for {other[1]} "
                                 "in this batch; rename one of them or use another output folder")

    def stack(self, image: str | os.PathLike, stem: str, plane_axes: str, planes, height: int, width: int,
              physical: dict | None = None, *, raw=None, stitched: bool = False,
              targets: Mapping[str, str | os.PathLike] | None = None) -> "StackJob":
        """A stack's outputs, filled plane by plane (see the module doc)."""
        if self._closed:
            raise RuntimeError("the batch writer is closed")
        return StackJob(self, image, stem, plane_axes, tuple(int(n) for n in planes), int(height), int(width),
                        physical, raw, stitched, targets)

    def _write_format(self, fmt: str, image, labels, image_rgb, paths: list[Path],
                      objects: "_Objects", extra: dict | None = None, object_ids: bool = False) -> list[Path]:
        """One format's files of one image, then its collection record (COCO, YOLO's data.yaml)."""
        from core.io.masks import write_mask_files

        done = []
        for path in paths:  # a format's own subfolder (labels/), inside an existing folder
            if self.folder is not None and self.folder.is_dir():
                path.parent.mkdir(parents=True, exist_ok=True)
        if paths and fmt in IMAGE_STORES:
            done = [_write_image_store(path, fmt, labels, self.classes, objects) for path in paths]
        elif paths and fmt in OBJECT_DATA_FORMATS:
            done = [_write_object_data(path, fmt, labels, self.classes, objects) for path in paths]
        elif paths:
            done = write_mask_files(paths, labels, fmt, self.classes, image=image_rgb, opacity=self.opacity,
                                    image_name=Path(image).name, image_path=image, objects=self.objects,
                                    instances=objects.given)
        if fmt in self._collectors:
            self._collectors[fmt].add(Path(image).name, labels, objects.given, extra, object_ids)
        return done

    def close(self) -> list[Path]:
        """Write the collection files (those with at least one image); returns all files."""
        if not self._closed:
            self._closed = True
            for fmt, collector in self._collectors.items():
                if collector.count:
                    assert self.folder is not None
                    self.folder.mkdir(parents=True, exist_ok=True)
                    self.written += collector.write(self._shared.get(fmt) or collection_files(self.folder, fmt))
        return list(self.written)

    def __enter__(self) -> "BatchWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()


class _Objects:
    """One image's objects for the object outputs: the given instance labels, else the class mask's
    8-connected components (made once, when a format first asks), and the pixels to measure
    (``plane``: the mask is that plane of a stack)."""

    def __init__(self, labels, instances, raw, image, plane=None):
        from core.io.masks import checked_instances

        self.labels, self.raw, self.image = labels, raw, image
        self.plane = None if plane is None else tuple(int(p) for p in plane)
        self.given = checked_instances(instances, np.shape(labels) if not is_chunked(labels) else labels.shape)
        self._components = None

    @property
    def instances(self):
        if self.given is not None:
            return self.given
        if self._components is None:
            from core.objects.components import component_labels

            self._components = component_labels(np.asarray(self.labels))
        return self._components

    def physical(self) -> dict:
        """The image's pixel size {"X", "Y"} in µm, as far as its file or source states it."""
        return {a: v for a, v in _physical_sizes(self.raw, Path(self.image)).items() if a in "XY"}

    def pixels(self):
        """(pixels, channel names, pixel size {"X", "Y"} in µm) of the image measured."""
        raw, path = self.raw, Path(self.image)
        if raw is None and self.plane is not None:  # a plane of a stack file (a folder of planes too)
            from core.io.sources import open_source

            if not path.exists():
                raise ValueError("measurements need the stack's pixels, and the stack is not there")
            with open_source(path) as source:
                return stack_plane_pixels(source, self.plane, np.shape(self.labels))
        if raw is None:
            if not path.is_file():
                raise ValueError("measurements need the image's pixels, and the image file is not there")
            from core.io.images import load_image

            raw = load_image(path)
        if getattr(raw, "planes", ()):  # a stack's source: only the mask's own plane is measured
            if self.plane is None:
                raise ValueError("the image is a stack: measurements need the plane the mask belongs to")
            return stack_plane_pixels(raw, self.plane, np.shape(self.labels))
        size = _physical_sizes(raw, path)
        if hasattr(raw, "read_raw"):  # an ImageSource: read region by region
            return raw, list(raw.channel_names), size
        pixels = getattr(raw, "pixels", raw)
        return pixels, list(getattr(raw, "channel_names", None) or []), size


def _physical_sizes(raw, path: Path) -> dict:
    """The pixel sizes the image's source states, else its file's (empty when neither does)."""
    from core.io.physical import physical_sizes

    return getattr(raw, "physical_sizes", None) or (physical_sizes(path) if path.is_file() else {})


def stack_plane_pixels(source, plane, shape) -> tuple[np.ndarray, list[str], dict]:
    """(raw H x W x C pixels of ``plane``, channel names, physical sizes) of a stack's source; a
    plane outside the stack, or a mask of another size, is one ValueError naming both."""
    plane = source.plane(plane)
    if tuple(shape[:2]) != (source.height, source.width):
        raise ValueError(f"the mask is {shape[1]}x{shape[0]} but the stack's planes are {source.width}x{source.height}")
    pixels = source.read_raw(0, source.height, 0, source.width, plane=plane)
    return pixels, list(source.channel_names), source.physical_sizes


def _write_object_data(path: Path, fmt: str, labels, classes, objects: _Objects) -> Path:
    """The instance label image (``<stem>_instances.tif``) or the measurements (``<stem>_measurements.csv``)."""
    if fmt == "instances":
        from core.io.label_images import write_label_image

        return write_label_image(path, objects.instances)
    from core.objects.measure import Columns, write_measurements

    pixels, names, size = objects.pixels()
    write_measurements(path, objects.instances, pixels, labels, Columns(names, classes, size))
    return Path(path)


def fits_memory(shape) -> bool:
    """Whether a chunked mask may be read whole: under the app's limit for a decoded image."""
    from core.io.images import pixel_limit

    limit = pixel_limit()
    return limit is None or int(shape[0]) * int(shape[1]) <= limit


def _write_image_store(path: Path, fmt: str, labels, classes, objects: _Objects) -> Path:
    """A 2-D image's mask as an OME-TIFF or OME-Zarr label image, with its class names and the image's
    pixel size: a slide's chunked mask copied level by level (pyramidal, tiled; Export Mask's path),
    else the mask in memory as a label stack without planes (core.io.label_stacks)."""
    if hasattr(labels, "export_to"):
        return labels.export_to(path, fmt, classes=classes)
    from core.io.label_stacks import write_label_stack

    return write_label_stack(path, np.asarray(labels), "", classes, objects.physical())


def write_one(path: str | os.PathLike, fmt: str, labels, classes: Sequence[ClassInfo], *,
              image_path: str | os.PathLike, image_rgb: np.ndarray | None = None, instances=None, raw=None,
              opacity: float = 0.5, objects: ObjectOptions | None = None, coco_semantic: bool = False,
              plane=None) -> list[Path]:
    """One format of one image into the file ``path`` (Export Mask): the object outputs through
    ``core.objects``, every other format through ``core.io.masks.write_mask``.  ``plane``: the mask
    is that plane of the stack ``image_path`` (``raw``: the stack's source, or None to open it)."""
    from core.io.masks import write_mask

    path = Path(path)
    if fmt in OBJECT_DATA_FORMATS:
        data = _Objects(labels, instances, raw, image_path, plane)
        return [_write_object_data(path, fmt, labels, classes, data)]
    return [write_mask(path, labels, fmt, classes, image=image_rgb, opacity=opacity, image_name=Path(image_path).name,
                       image_path=image_path, objects=objects, coco_semantic=coco_semantic, instances=instances)]


STACK_WHOLE = ("tiff", "ome-tiff", "ome-zarr", "npy")  # one label stack with every plane
STACK_OBJECTS = ("geojson", "imagej")  # one file with every plane's objects
OBJECT_OUTPUTS = frozenset({"coco", "yolo", "labelme", "voc", "geojson", "imagej", "instances", "measurements"})


def plane_fields(plane_axes: str, plane) -> dict[str, int]:
    """{"t": 1, "z": 3}: a plane as the per-object formats record it (0-based)."""
    return {a.lower(): int(p) for a, p in zip(plane_axes, plane)}


class StackJob:
    """One stack's outputs in a BatchWriter's folder (see the module doc)."""

    def __init__(self, writer: BatchWriter, image, stem: str, plane_axes: str, planes: tuple[int, ...],
                 height: int, width: int, physical: dict | None, raw=None, stitched: bool = False,
                 targets: Mapping[str, str | os.PathLike] | None = None):
        from core.io.label_stacks import StackStore, stack_format
        from core.objects.stitch import Numbering

        self.writer, self.image, self.stem = writer, image, stem
        self.plane_axes, self.planes, self.physical = plane_axes, planes, physical or {}
        self.shape = planes + (height, width)
        self.stitched = bool(stitched)
        self.written: list[Path] = []
        self.failures: dict[str, MaskError] = {}  # formats that failed for this stack (the others go on)
        targets = dict(targets or {})
        if writer.folder is None:  # beside the image under the app's save name: one label stack
            from core.io.mask_naming import stack_mask_path

            mask = Path(targets.pop("index", None) or stack_mask_path(image))
            objects = targets.pop("instances", None)
            fmt = stack_format(mask)
            self.formats, folder, targets = [fmt], mask.parent, {fmt: mask}
            if objects is not None:  # the objects stack too (Segment All with a model that separates objects)
                self.formats.append("instances")
                targets["instances"] = Path(objects)
        else:
            self.formats, folder = list(writer.formats), writer.folder
        self.folder = folder
        self.targets = {fmt: stack_files(folder, stem, fmt) for fmt in self.formats
                        if fmt in STACK_WHOLE or fmt in STACK_OBJECTS or fmt in STACK_OBJECT_FILES}
        for fmt, path in targets.items():  # a file named by the caller (Export Mask's chosen name)
            if fmt in self.targets:
                self.targets[fmt] = [Path(path)] + self.targets[fmt][1:]
        if self.stitched:  # the stitched 3-D ids are kept whether or not the instances format was asked for
            self.targets.setdefault("instances", stack_files(folder, stem, "instances"))
        if "measurements" in self.targets and not (self.stitched and "Z" in plane_axes):
            self.targets["measurements"] = self.targets["measurements"][:1]  # no 3-D objects: no 3-D table
        # every object output reads the same ids: given, else each class's components numbered over the stack
        self._numbering = Numbering() if any(
            f in OBJECT_OUTPUTS and not (f == "coco" and writer.coco_semantic) for f in self.formats) else None
        self._store = self._instances = self._features = self._table = self._raw = None
        self._own_raw = False
        self._top = 0
        try:
            for fmt, paths in self.targets.items():
                writer._claim(image, fmt, paths)
            folder.mkdir(parents=True, exist_ok=True)
            if any(fmt in STACK_WHOLE for fmt in self.formats):
                self._store = StackStore.create(folder / f".{stem}.stack-work.zarr", plane_axes, planes, height, width)
            if "instances" in self.targets:
                self._instances = StackStore.create(folder / f".{stem}.instances-work.zarr", plane_axes, planes,
                                                    height, width, dtype="uint32")
            if "geojson" in self.formats:
                from core.io.formats.geojson import StackFeatures

                self._features = StackFeatures(self.targets["geojson"][0], writer.classes, writer.objects)
        except BATCH_ERRORS as exc:
            self.abort()
            raise image_error(image, exc) from None
        if "measurements" in self.targets:
            try:  # the stack's own pixels, or this format alone fails (the others need no pixels)
                self._open_table(raw)
            except BATCH_ERRORS as exc:
                self._stop("measurements", exc)
        self._rois: list = []
        self._roi_counts: dict[int, int] = {}

    def _open_table(self, raw) -> None:
        from core.objects.measure import Columns
        from core.objects.stack_measure import StackMeasurements

        if raw is None:
            from core.io.sources import open_source

            if not Path(self.image).exists():
                raise ValueError("measurements need the stack's pixels, and the stack is not there")
            raw, self._own_raw = open_source(self.image), True
        self._raw = raw
        if tuple(raw.planes) + (raw.height, raw.width) != self.shape:
            from core.io.label_stacks import describe_shape

            pixels = describe_shape(raw.plane_axes, tuple(raw.planes) + (raw.height, raw.width))
            raise ValueError(f"the pixels are {pixels} but the mask stack is {describe_shape(self.plane_axes, self.shape)}")
        size = {a: v for a, v in (self.physical or raw.physical_sizes).items() if a in "XYZ"}
        columns = Columns(list(raw.channel_names), self.writer.classes, size).for_pixels(raw)
        paths = self.targets["measurements"]
        self._table = StackMeasurements(paths[0], self.plane_axes, columns, paths[1] if len(paths) > 1 else None, size)

    def add_plane(self, plane, labels: np.ndarray, image_rgb: np.ndarray | None = None,
                  instances: np.ndarray | None = None) -> list[Path]:
        """Write one finished plane: per-plane files now, the rest into the stack's files."""
        from core.io.masks import as_label_array, checked_instances

        plane = tuple(int(p) for p in plane)
        writer, fields = self.writer, plane_fields(self.plane_axes, plane)
        try:
            labels = as_label_array(labels)
            if labels.shape != self.shape[-2:]:
                raise ValueError(f"plane {plane} is {labels.shape} but the stack's planes are {self.shape[-2:]}")
            ids = checked_instances(instances, labels.shape)
            if ids is None and self._numbering is not None:
                from core.objects.components import component_labels

                ids = self._numbering.add(component_labels(labels))
            if self._store is not None:
                self._store.write_plane(plane, labels)
            if self._instances is not None:
                self._instances.write_plane(plane, ids if ids is not None else np.zeros(labels.shape, np.uint32))
                self._top = max(self._top, int(ids.max()) if ids is not None and ids.size else 0)
        except BATCH_ERRORS as exc:
            raise image_error(self.image, exc) from None
        done: list[Path] = []
        stem = plane_stem(self.stem, self.plane_axes, plane, self.planes)
        for fmt in self.formats:  # each format on its own: one's limit (VOC's 254 objects) stops only it
            if fmt in self.failures or fmt in STACK_WHOLE or fmt == "instances":
                continue
            try:
                if fmt == "geojson":
                    self._features.add(labels, fields, ids)
                elif fmt == "imagej":
                    from core.io.formats.imagej import imagej_rois

                    index = int(np.ravel_multi_index(plane, self.planes)) if self.planes else 0
                    self._rois += imagej_rois(labels, writer.classes, writer.objects, ids, fields, self._roi_counts,
                                              index)
                elif fmt == "measurements":
                    pixels = self._raw.read_raw(0, self._raw.height, 0, self._raw.width, plane=plane)
                    self._table.add(plane, ids, pixels, labels)
                else:
                    paths = image_files(writer.folder, stem, fmt) if fmt != "coco" else []
                    writer._claim(self.image, fmt, paths)
                    done += writer._write_format(fmt, self.image, labels, image_rgb, paths,
                                                 _Objects(labels, ids, None, self.image, plane), fields,
                                                 object_ids=True)
            except BATCH_ERRORS as exc:
                self._stop(fmt, exc)
        writer.written += done
        self.written += done
        return done

    def _stop(self, fmt: str, exc: BaseException) -> None:
        """``fmt`` failed for this stack: recorded, and its unfinished stack-wide file removed."""
        self.failures[fmt] = format_error(self.image, fmt, exc)
        if fmt == "geojson" and self._features is not None:
            self._features.abort()
            self._features = None
        if fmt == "measurements" and self._table is not None:
            self._table.abort()
            self._table = None

    def close(self) -> list[Path]:
        """Write the files that hold every plane (planes never added stay 0); returns them."""
        done: list[Path] = []
        name = Path(self.image).name
        try:
            store = self._store
            if store is not None:
                store.finish(self.writer.classes, name=name, physical=self.physical)
                for fmt in ("tiff", "ome-tiff", "npy"):
                    if fmt in self.targets:
                        done.append(self._export(store, fmt, self.targets[fmt][0]))
                if "ome-zarr" in self.targets:
                    done.append(store.move_to(self.targets["ome-zarr"][0]))
                    self._store = None
            if self._features is not None:
                done.append(self._features.close())
                self._features = None
            if "imagej" in self.targets and "imagej" not in self.failures:
                from core.io.formats.imagej import write_rois

                done.append(write_rois(self.targets["imagej"][0], self._rois))
        except BATCH_ERRORS as exc:
            self.abort()
            raise image_error(self.image, exc) from None
        if self._instances is not None:
            try:
                self._instances.finish((), name=name, physical=self.physical)
                dtype = np.uint16 if self._top < 65535 else np.uint32
                done.append(self._instances.export_tiff(self.targets["instances"][0], ome=True,
                                                        physical=self.physical, dtype=dtype))
            except BATCH_ERRORS as exc:
                self._stop("instances", exc)
        if self._table is not None:
            try:
                done += self._table.close()
            except BATCH_ERRORS as exc:
                self._stop("measurements", exc)
            self._table = None
        self._release()
        self.writer.written += done
        self.written += done
        if self.failures:  # the other formats are written; these are named, one sentence each
            raise FormatErrors(self.image, self.failures, list(self.written))
        return done

    def _export(self, store, fmt: str, target: Path) -> Path:
        if fmt == "npy":
            from core.atomic import atomic_path

            with atomic_path(target, suffix=".npy") as tmp:
                array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=self.shape)
                for plane in np.ndindex(*self.planes):
                    array[plane] = store.read_plane(plane)
                array.flush()
                del array
            return target
        return store.export_tiff(target, ome=fmt == "ome-tiff", physical=self.physical, classes=self.writer.classes)

    def abort(self) -> None:
        """Remove the work stores and the unfinished stack-wide files; files already complete stay."""
        if getattr(self, "_features", None) is not None:
            self._features.abort()
            self._features = None
        if getattr(self, "_table", None) is not None:
            self._table.abort()
            self._table = None
        self._release()

    def _release(self) -> None:
        for name in ("_store", "_instances"):
            store = getattr(self, name, None)
            if store is not None:
                store.remove()
                setattr(self, name, None)
        if getattr(self, "_own_raw", False) and self._raw is not None:
            self._raw.close()
            self._raw, self._own_raw = None, False


class FormatErrors(MaskError):
    """Some formats of one image failed, each for its own reason; the image's other formats were written."""

    def __init__(self, image: str | os.PathLike, failures: Mapping[str, MaskError], written: list[Path]):
        super().__init__(" ".join(str(e) for e in failures.values()))
        self.image, self.failures, self.written = image, dict(failures), list(written)


@dataclass
class BatchResult:
    done: int = 0  # images with at least one format written
    total: int = 0
    written: list[Path] = field(default_factory=list)
    errors: list[MaskError] = field(default_factory=list)  # in batch order, then the collections'
    failed: list[tuple[Any, MaskError]] = field(default_factory=list)  # (image, its error): nothing written
    format_failed: list[tuple[Any, str, MaskError]] = field(default_factory=list)  # (image, format, error)
    cancelled: bool = False

    @property
    def collection_errors(self) -> list[MaskError]:
        """The errors of files that hold the whole batch (coco.json, data.yaml)."""
        per_image = {id(e) for _, e in self.failed} | {id(e) for _, _, e in self.format_failed}
        return [e for e in self.errors if id(e) not in per_image]


Job = tuple  # (image, stem, produce) or (image, stem, produce, targets)


@dataclass
class StackMasks:
    """What ``produce()`` returns for a stack: its source (planes, size, physical sizes; the raw
    pixels measurements read and the 8-bit planes overlays draw) and ``fill(add)``, which calls
    ``add(plane, labels, instances=None)`` for every plane in file order and returns False when it
    was cancelled.  ``close`` (optional) runs once the stack is written or has failed."""

    source: Any
    fill: Callable[[Callable[..., Any]], bool | None]
    stitched: bool = False
    targets: Mapping[str, str | os.PathLike] | None = None
    close: Callable[[], None] | None = None
    image_of: Callable[[tuple], np.ndarray] | None = None  # an overlay's image of a plane (default: source.read)


def write_stack(writer: BatchWriter, image, stem: str, masks: StackMasks,
                should_cancel: Callable[[], bool] | None = None) -> list[Path] | None:
    """Every plane of one stack into ``writer``'s formats (see the module doc); None when cancelled,
    and then none of the stack's files are written."""
    try:
        source = masks.source
        h, w = source.height, source.width
        job = writer.stack(image, stem, source.plane_axes, source.planes, h, w, physical=source.physical_sizes,
                           raw=source if writer.needs_pixels else None, stitched=masks.stitched,
                           targets=masks.targets)

        def add(plane, labels, instances=None) -> None:
            if should_cancel is not None and should_cancel():
                raise _StackCancelled()
            rgb = None
            if writer.needs_image:
                rgb = masks.image_of(plane) if masks.image_of is not None else source.read(0, h, 0, w, plane=plane)
            job.add_plane(plane, labels, rgb, instances)

        try:
            finished = masks.fill(add) is not False
        except _StackCancelled:
            finished = False
        except BaseException:
            job.abort()
            raise
        if not finished:
            job.abort()
            return None
        return job.close()
    finally:
        if masks.close is not None:
            masks.close()


class _StackCancelled(Exception):
    pass


def write_batch(
    writer: BatchWriter,
    jobs: Iterable[Job],
    *,
    progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    on_done: Callable[[Any, list[Path], np.ndarray], None] | None = None,
) -> BatchResult:
    """Produce and write every job; see the module doc.  Other exceptions propagate."""
    jobs = list(jobs)
    result = BatchResult(total=len(jobs))
    for i, (image, stem, produce, *targets) in enumerate(jobs):
        if should_cancel is not None and should_cancel():
            result.cancelled = True
            break
        paths, labels, made = None, None, None
        try:
            made = produce()
            if isinstance(made, StackMasks):
                if targets and targets[0]:
                    made.targets = {**(made.targets or {}), **targets[0]}
                paths = write_stack(writer, image, stem, made, should_cancel)
                if paths is None:
                    result.cancelled = True
                    break
            else:
                if not isinstance(made, ImageResult):
                    made = ImageResult(*made)
                labels = made.labels
                paths = writer.add(image, stem, labels, made.image_rgb, targets[0] if targets else None,
                                   instances=made.instances, raw=made.raw)
        except FormatErrors as exc:
            for fmt, error in exc.failures.items():
                result.errors.append(error)
                result.format_failed.append((image, fmt, error))
            formats = writer.formats if isinstance(made, StackMasks) else writer.image_formats
            if len(exc.failures) < len(formats):  # some formats were written: the image is done
                paths = exc.written
        except BATCH_ERRORS as exc:
            error = image_error(image, exc)
            result.errors.append(error)
            result.failed.append((image, error))
        finally:
            if isinstance(made, ImageResult) and made.close is not None:
                made.close()
        if paths is not None:
            result.done += 1
            if on_done is not None:
                on_done(image, paths, labels)
        if progress is not None:
            progress(i + 1, len(jobs))
    try:
        writer.close()
    except BATCH_ERRORS as exc:
        result.errors.append(exc if isinstance(exc, MaskError) else MaskError(_sentence(str(exc))))
    result.written = list(writer.written)
    return result


def format_error(image: str | os.PathLike, fmt: str, exc: BaseException) -> MaskError:
    """``exc`` as one sentence naming the image and the format it stopped: "<name>: <fmt> not written: ..."."""
    reason = str(image_error(image, exc))[len(Path(image).name) + 2:]
    return MaskError(f"{Path(image).name}: {fmt} not written: {reason}")


def image_error(image: str | os.PathLike, exc: BaseException) -> MaskError:
    """``exc`` as one sentence that starts with the image's file name (once)."""
    name, text = Path(image).name, str(exc)
    for prefix in (f"{image}: ", f"{name}: "):
        if text.startswith(prefix):
            text = text[len(prefix):]
    return MaskError(_sentence(f"{name}: {text}"))


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if text.endswith(".") else text + "."


def _key(path: str | os.PathLike) -> str:
    return os.path.normcase(os.path.abspath(os.fspath(path)))


# --- collections -----------------------------------------------------------------------------


class _CocoCollector:
    """COCO records per image; the masks themselves are not kept (RLE strings are small)."""

    def __init__(self, writer: BatchWriter):
        self.writer = writer
        self.images: list[dict] = []
        self.annotations: list[dict] = []

    @property
    def count(self) -> int:
        return len(self.images)

    def add(self, name: str, labels: np.ndarray, instances: np.ndarray | None = None,
            extra: dict | None = None, object_ids: bool = False) -> None:
        from core.io.formats.coco_objects import object_annotations
        from core.io.masks import coco_annotations

        image_id, start, classes = len(self.images) + 1, len(self.annotations) + 1, self.writer.classes
        if self.writer.coco_semantic:
            anns = coco_annotations(labels, classes, image_id, start)
        else:
            anns = object_annotations(np.asarray(labels, np.uint8), classes, image_id, start,
                                      self.writer.objects, instances, object_ids)
        self.images.append({"id": image_id, "file_name": name,
                            "height": int(labels.shape[0]), "width": int(labels.shape[1]), **(extra or {})})
        self.annotations += anns

    def write(self, paths: list[Path]) -> list[Path]:
        import json

        from core.atomic import write_text
        from core.io.masks import coco_categories

        doc = {"images": self.images, "annotations": self.annotations,
               "categories": coco_categories(self.writer.classes)}
        return [write_text(paths[0], json.dumps(doc))]


class _YoloCollector:
    """``data.yaml``: only the class names, written once the batch has an image."""

    def __init__(self, writer: BatchWriter):
        self.writer = writer
        self.count = 0

    def add(self, name: str, labels: np.ndarray, instances: np.ndarray | None = None,
            extra: dict | None = None, object_ids: bool = False) -> None:
        self.count += 1

    def write(self, paths: list[Path]) -> list[Path]:
        from core.atomic import write_text
        from core.io.formats.yolo import data_yaml

        return [write_text(paths[0], data_yaml(self.writer.classes))]


_COLLECTORS: dict[str, Callable[[BatchWriter], Any]] = {"coco": _CocoCollector, "yolo": _YoloCollector}
