"""The one batch writer behind ``unetseg segment``, Segment All and Export All.

Each image's files are written as soon as it is added (atomically, one file at a time), so a
crash or a cancel keeps what was finished; files that hold the whole batch (``coco.json``,
YOLO's ``data.yaml``) are collected in memory as small records, not masks, and written by
``close()``.  File names come from ``core.io.mask_naming``, the rule the app and the CLI share.

API::

    writer = BatchWriter(folder, formats, classes, opacity=0.5, coco_semantic=False,
                         objects=ObjectOptions(min_area=1, tolerance=0.5), protect=(),
                         create_folder=True)  # False: the app's chosen folder must still exist
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
              opacity=0.5, objects=None, coco_semantic=False) -> list[Path]
        # one format of one image into the file ``path`` (the app's Export Mask)
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
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from core.classes import ClassInfo
from core.io.mask_naming import collection_files, default_mask_path, format_info, image_files
from core.io.masks import CHUNKWISE_FORMATS, OBJECT_DATA_FORMATS, MaskError, is_chunked
from core.io.objects import ObjectOptions

BATCH_ERRORS = (ValueError, OSError, MemoryError)  # MaskError is a ValueError, WriteError an OSError
NEEDS_IMAGE = frozenset({"overlay"})
NEEDS_PIXELS = frozenset({"measurements"})


@dataclass
class ImageResult:
    """What ``produce()`` may return for one image (a plain ``(labels, image_rgb)`` also works)."""

    labels: Any  # class ids
    image_rgb: np.ndarray | None = None
    instances: np.ndarray | None = None  # a model's instance labels; None: components of the class mask
    raw: Any = None  # pixels for measurements (see BatchWriter.add)


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
    ):
        self.formats = list(dict.fromkeys(formats))
        for fmt in self.formats:
            format_info(fmt)  # ValueError for an unknown one, before anything is written
        if not self.formats:
            raise ValueError("no mask format chosen")
        if folder is None and self.formats != ["index"]:
            raise ValueError("writing beside each image is for index masks only")
        self.folder = None if folder is None else Path(folder)
        self.classes = list(classes)
        self.opacity = float(opacity)
        self.coco_semantic = coco_semantic
        self.objects = objects if objects is not None else ObjectOptions()
        self.written: list[Path] = []
        self._protect = {_key(p) for p in protect}
        self._create = create_folder  # False: a folder that vanished (a USB stick) is an error
        self._collectors = {fmt: _COLLECTORS[fmt](self) for fmt in self.formats if fmt in _COLLECTORS}
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
        return {fmt: image_files(self.folder, stem, fmt) for fmt in self.formats}

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
        try:
            labels = self._checked(image, labels, image_rgb, plan)
            objects = _Objects(labels, instances, raw, image)
        except BATCH_ERRORS as exc:
            raise image_error(image, exc) from None
        done: list[Path] = []
        failures: dict[str, MaskError] = {}
        for fmt in self.formats:  # each format on its own: one's limit never stops the others
            try:
                done += self._write_format(fmt, image, labels, image_rgb, plan.get(fmt, []), objects)
            except BATCH_ERRORS as exc:
                failures[fmt] = format_error(image, fmt, exc)
                if len(self.formats) == 1:  # the format is the image's only output: the image failed
                    raise image_error(image, exc) from None
        self.written += done
        if failures:
            raise FormatErrors(image, failures, done)
        return done

    def _checked(self, image, labels, image_rgb, plan: dict[str, list[Path]]):
        """What fails every format alike (the mask, the image, the folder), before anything is written."""
        from core.io.masks import as_label_array

        if not (is_chunked(labels) and set(self.formats) <= CHUNKWISE_FORMATS):
            labels = as_label_array(labels)  # a chunked mask stays on disk for GeoJSON and ImageJ
        if len(labels.shape) != 2:
            raise ValueError(f"the mask is not a 2-D array (shape {labels.shape})")
        if self.needs_image and image_rgb is None:
            raise ValueError("the overlay format needs the image")
        for fmt, paths in plan.items():
            for path in paths:
                if _key(path) == _key(image) or _key(path) in self._protect:
                    raise ValueError(f"the {fmt} mask would overwrite the image itself ({path}); "
                                     "choose another output folder")
        if self.folder is not None and not self.folder.exists():
            if not self._create:  # the app's chosen folder vanished (a USB stick): no format can be written
                import errno

                from core.atomic import WriteError

                first = next((p for paths in plan.values() for p in paths), self.folder)
                raise WriteError(errno.ENOENT, f"cannot write {first}: the folder does not exist")
            self.folder.mkdir(parents=True)
        return labels

    def _write_format(self, fmt: str, image, labels, image_rgb, paths: list[Path],
                      objects: "_Objects") -> list[Path]:
        """One format's files of one image, then its collection record (COCO, YOLO's data.yaml)."""
        from core.io.masks import write_mask_files

        done = []
        for path in paths:  # a format's own subfolder (labels/), inside an existing folder
            if self.folder is not None and self.folder.is_dir():
                path.parent.mkdir(parents=True, exist_ok=True)
        if paths and fmt in OBJECT_DATA_FORMATS:
            done = [_write_object_data(path, fmt, labels, self.classes, objects) for path in paths]
        elif paths:
            done = write_mask_files(paths, labels, fmt, self.classes, image=image_rgb, opacity=self.opacity,
                                    image_name=Path(image).name, image_path=image, objects=self.objects,
                                    instances=objects.given)
        if fmt in self._collectors:
            self._collectors[fmt].add(Path(image).name, labels, objects.given)
        return done

    def close(self) -> list[Path]:
        """Write the collection files (those with at least one image); returns all files."""
        if not self._closed:
            self._closed = True
            for fmt, collector in self._collectors.items():
                if collector.count:
                    assert self.folder is not None
                    self.folder.mkdir(parents=True, exist_ok=True)
                    self.written += collector.write(collection_files(self.folder, fmt))
        return list(self.written)

    def __enter__(self) -> "BatchWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()


class _Objects:
    """One image's objects for the object outputs: the given instance labels, else the class mask's
    8-connected components (made once, when a format first asks), and the pixels to measure."""

    def __init__(self, labels, instances, raw, image):
        from core.io.masks import checked_instances

        self.labels, self.raw, self.image = labels, raw, image
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

    def pixels(self):
        """(pixels, channel names, pixel size {"X", "Y"} in µm) of the image measured."""
        from core.io.physical import physical_sizes

        raw, path = self.raw, Path(self.image)
        if raw is None:
            if not path.is_file():
                raise ValueError("measurements need the image's pixels, and the image file is not there")
            from core.io.images import load_image

            raw = load_image(path)
        size = getattr(raw, "physical_sizes", None) or (physical_sizes(path) if path.is_file() else {})
        if hasattr(raw, "read_raw"):  # an ImageSource: read region by region
            return raw, list(raw.channel_names), size
        pixels = getattr(raw, "pixels", raw)
        return pixels, list(getattr(raw, "channel_names", None) or []), size


def _write_object_data(path: Path, fmt: str, labels, classes, objects: _Objects) -> Path:
    """The instance label image (``<stem>_instances.tif``) or the measurements (``<stem>_measurements.csv``)."""
    if fmt == "instances":
        from core.io.label_images import write_label_image

        return write_label_image(path, objects.instances)
    from core.objects.measure import Columns, write_measurements

    pixels, names, size = objects.pixels()
    write_measurements(path, objects.instances, pixels, labels, Columns(names, classes, size))
    return Path(path)


def write_one(path: str | os.PathLike, fmt: str, labels, classes: Sequence[ClassInfo], *,
              image_path: str | os.PathLike, image_rgb: np.ndarray | None = None, instances=None, raw=None,
              opacity: float = 0.5, objects: ObjectOptions | None = None, coco_semantic: bool = False) -> list[Path]:
    """One format of one image into the file ``path`` (Export Mask): the object outputs through
    ``core.objects``, every other format through ``core.io.masks.write_mask``."""
    from core.io.masks import write_mask

    path = Path(path)
    if fmt in OBJECT_DATA_FORMATS:
        data = _Objects(labels, instances, raw, image_path)
        return [_write_object_data(path, fmt, labels, classes, data)]
    return [write_mask(path, labels, fmt, classes, image=image_rgb, opacity=opacity, image_name=Path(image_path).name,
                       image_path=image_path, objects=objects, coco_semantic=coco_semantic, instances=instances)]


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
        paths = None
        try:
            made = produce()
            if not isinstance(made, ImageResult):
                made = ImageResult(*made)
            labels = made.labels
            paths = writer.add(image, stem, labels, made.image_rgb, targets[0] if targets else None,
                               instances=made.instances, raw=made.raw)
        except FormatErrors as exc:
            for fmt, error in exc.failures.items():
                result.errors.append(error)
                result.format_failed.append((image, fmt, error))
            if len(exc.failures) < len(writer.formats):  # some formats were written: the image is done
                paths = exc.written
        except BATCH_ERRORS as exc:
            error = image_error(image, exc)
            result.errors.append(error)
            result.failed.append((image, error))
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

    def add(self, name: str, labels: np.ndarray, instances: np.ndarray | None = None) -> None:
        from core.io.formats.coco_objects import object_annotations
        from core.io.masks import coco_annotations

        image_id, start, classes = len(self.images) + 1, len(self.annotations) + 1, self.writer.classes
        if self.writer.coco_semantic:
            anns = coco_annotations(labels, classes, image_id, start)
        else:
            anns = object_annotations(np.asarray(labels, np.uint8), classes, image_id, start,
                                      self.writer.objects, instances)
        self.images.append({"id": image_id, "file_name": name,
                            "height": int(labels.shape[0]), "width": int(labels.shape[1])})
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

    def add(self, name: str, labels: np.ndarray, instances: np.ndarray | None = None) -> None:
        self.count += 1

    def write(self, paths: list[Path]) -> list[Path]:
        from core.atomic import write_text
        from core.io.formats.yolo import data_yaml

        return [write_text(paths[0], data_yaml(self.writer.classes))]


_COLLECTORS: dict[str, Callable[[BatchWriter], Any]] = {"coco": _CocoCollector, "yolo": _YoloCollector}
