"""The one rule for mask file names, used by the app (Save, Export, Export All, Segment All)
and the command line (``unetseg segment``, ``convert-mask``) alike.

Before this module the GUI suggested ``<stem>_mask_color.png`` where the CLI wrote
``<stem>_color.png``; now both ask here, and the CLI's names won.

API::

    FORMATS: dict[str, MaskFormat]          # every mask format, in menu order
    MASK_FORMATS: tuple[str, ...]           # their names ("index", "color", ...)
    format_info(fmt) -> MaskFormat          # ValueError naming the choices for an unknown one
    image_files(outdir, stem, fmt) -> list[Path]     # the files one image gets (may be none)
    collection_files(outdir, fmt) -> list[Path]      # the files all images share (coco.json...)
    output_path(outdir, stem, fmt) -> Path           # the main file: the first of the above
    default_mask_path(image_path, chunked=False) -> Path  # what Save writes: <stem>_mask.png beside it
                                                     # (chunked: chunked_mask_path(image_path, "ome-zarr"))
    chunked_mask_path(image_path, fmt) -> Path       # a mask too large for PNG: <stem>_mask.ome.zarr
    slide_instances_path(outdir, stem, fmt) -> Path  # a slide's instances: <stem>_instances.ome.zarr/.ome.tif
    strokes_path(image_path) -> Path                 # Live Training's strokes: <stem>_strokes.png beside it
    chunked_strokes_path(image_path) -> Path         # a whole slide's strokes: <stem>_strokes.ome.zarr
    instances_path(image_path) -> Path               # the app's objects: <stem>_instances.tif beside it
    stack_mask_path(image_path, fmt="ome-tiff") -> Path    # a stack's label stack: <stem>_mask.ome.tif beside it
    stack_strokes_path(image_path) -> Path           # a stack's strokes: <stem>_strokes.ome.tif beside it
    stack_instances_path(image_path) -> Path         # a stack's objects: <stem>_instances.ome.tif beside it
    stack_export_path(image_path, folder, fmt) -> Path     # Export Mask's proposed file for a whole stack
    export_stem(path, fmt) -> str                    # the stem a chosen export file name stands for
    plane_stem(stem, plane_axes, plane, planes) -> str     # one plane's files: <stem>_z03, <stem>_t1_z03
    stack_files(outdir, stem, fmt) -> list[Path]     # the files a stack gets in a format holding all its planes
                                                     # (instances: <stem>_instances.ome.tif; measurements:
                                                     # <stem>_measurements.csv, <stem>_measurements_3d.csv)
    find_instances(folder, image_path) -> Path | None  # the label image `unetseg train --instances` pairs
    find_class_hint(folders, image_path, exclude) -> Path | None  # strokes or a class mask beside it
    image_stem(image_path) -> str                    # slide.ome.tif -> slide
    suggested_export_path(image_path, folder, fmt) -> Path  # Export Mask's proposed file
    export_suffix(path, fmt) -> Path                 # a typed name with the format's extension
    typed_export(path, fmt, offered) -> (Path, [fmt, ...])  # what a typed export name asks for:
                                                     # one format, or several to choose from
    formats_of_name(name, offered) -> [fmt, ...]     # the offered formats whose extension ends name
    planned_collisions(outdir, stems, formats, protect) -> list[str]  # overwrites, as sentences
    mask_candidates(folder, stem) -> list[Path]      # where any format's mask of stem would be
    find_mask(folder, image_path) -> Path | None     # the mask `unetseg train` pairs with an image
    unique_stems(paths) -> list[str]                 # batch stems that never collide

``stem`` is the image's file stem made unique within a batch (``unique_stems``: a repeated
stem gets ``-2``, ``-3``...).  Per-image names are templates relative to the output folder,
so formats that want a dataset layout (YOLO's ``labels/``, VOC's ``SegmentationClass/``) get
it from the same rule.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence


@dataclass(frozen=True)
class MaskFormat:
    """How one format is named and offered; ``per_image``/``shared`` are ``{stem}`` templates."""

    name: str
    label: str  # a checkbox in Export All
    filter: str  # the save dialog's file-type filter
    per_image: tuple[str, ...]  # files each image gets, relative to the output folder
    shared: tuple[str, ...] = ()  # files for the whole batch (written when the batch closes)
    extensions: tuple[str, ...] = ()  # what a typed export name may end with (first: default)


FORMATS: dict[str, MaskFormat] = {f.name: f for f in (
    MaskFormat("index", "Index PNG (class ids)", "Index PNG, class ids (*.png)",
               ("{stem}.png",), extensions=(".png",)),
    MaskFormat("color", "Colour PNG", "Colour PNG (*.png)", ("{stem}_color.png",),
               extensions=(".png",)),
    MaskFormat("overlay", "Overlay PNG", "Overlay PNG, mask over image (*.png)",
               ("{stem}_overlay.png",), extensions=(".png",)),
    MaskFormat("tiff", "TIFF (class ids)", "TIFF, class ids (*.tif *.tiff)", ("{stem}.tif",),
               extensions=(".tif", ".tiff")),
    MaskFormat("npy", "NumPy .npy", "NumPy array (*.npy)", ("{stem}.npy",), extensions=(".npy",)),
    MaskFormat("coco", "COCO JSON, one annotation per object (one file)", "COCO JSON (*.json)", (),
               ("coco.json",), extensions=(".json",)),
    MaskFormat("yolo", "YOLO segmentation (labels/ + data.yaml)", "YOLO segmentation labels (*.txt)",
               ("labels/{stem}.txt",), ("data.yaml",), extensions=(".txt",)),
    MaskFormat("labelme", "labelme JSON", "labelme JSON (*.json)", ("{stem}.json",),
               extensions=(".json",)),
    MaskFormat("voc", "Pascal VOC (class and object PNGs)", "Pascal VOC class PNG (*.png)",
               ("SegmentationClass/{stem}.png", "SegmentationObject/{stem}.png"), extensions=(".png",)),
    MaskFormat("geojson", "GeoJSON for QuPath", "QuPath GeoJSON (*.geojson)", ("{stem}.geojson",),
               extensions=(".geojson",)),
    MaskFormat("imagej", "ImageJ ROI set", "ImageJ/Fiji ROI set (*.zip)", ("{stem}_rois.zip",),
               extensions=(".zip",)),
    MaskFormat("instances", "Instance labels: one id per object (TIFF)",
               "Instance labels, one id per object (*.tif *.tiff)", ("{stem}_instances.tif",),
               extensions=(".tif", ".tiff")),
    MaskFormat("measurements", "Measurements: one row per object (CSV)", "Measurements per object (*.csv)",
               ("{stem}_measurements.csv",), extensions=(".csv",)),
)}
NOT_MASKS = frozenset({"overlay", "instances", "measurements"})  # outputs that are not a class mask
# a slide's chunked outputs, offered beside the formats above when a mask is too large for memory
STORE_EXTENSIONS = {"ome-zarr": (".ome.zarr",), "ome-tiff": (".ome.tif", ".ome.tiff")}
MASK_FORMATS: tuple[str, ...] = tuple(FORMATS)


def format_info(fmt: str) -> MaskFormat:
    try:
        return FORMATS[fmt]
    except KeyError:
        raise ValueError(f"unknown mask format {fmt!r}; expected one of {', '.join(FORMATS)}") from None


def image_files(outdir: str | os.PathLike, stem: str, fmt: str) -> list[Path]:
    return [Path(outdir) / t.format(stem=stem) for t in format_info(fmt).per_image]


def collection_files(outdir: str | os.PathLike, fmt: str) -> list[Path]:
    return [Path(outdir) / t for t in format_info(fmt).shared]


def output_path(outdir: str | os.PathLike, stem: str, fmt: str) -> Path:
    """The format's main file for one image; a collection format's shared file (coco.json).

    The index format is ``<stem>.png``: do not export into the images' own folder (the batch
    writer refuses to overwrite a source image).
    """
    return (image_files(outdir, stem, fmt) or collection_files(outdir, fmt))[0]


COMPOUND_SUFFIXES = (".ome.tiff", ".ome.tif", ".ome.zarr", ".zarr")


def image_stem(image_path: str | os.PathLike) -> str:
    """The name outputs are built from: ``slide.ome.tif`` and ``slide.ome.zarr`` give ``slide``."""
    name = Path(image_path).name
    for suffix in COMPOUND_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return Path(image_path).stem


def default_mask_path(image_path: str | os.PathLike, chunked: bool = False) -> Path:
    """The app saves edits beside the image: an index PNG ``<stem>_mask.png``, or for an image
    too large for memory (a chunked mask) an OME-Zarr label image ``<stem>_mask.ome.zarr``."""
    image_path = Path(image_path)
    if chunked:
        return chunked_mask_path(image_path, "ome-zarr")
    return image_path.with_name(f"{image_path.stem}_mask.png")


STROKES_SUFFIX = "_strokes.png"


def strokes_path(image_path: str | os.PathLike) -> Path:
    """Where the app saves an image's annotation strokes (Live Training), beside the image: an
    index PNG ``<stem>_strokes.png`` with 255 where nothing is annotated, a sparse mask that
    ``unetseg train --masks`` reads like any index mask."""
    image_path = Path(image_path)
    return image_path.with_name(image_stem(image_path) + STROKES_SUFFIX)


CHUNKED_STROKES_SUFFIX = "_strokes.ome.zarr"


def chunked_strokes_path(image_path: str | os.PathLike) -> Path:
    """Where the app saves a whole slide's strokes, beside the slide: an OME-Zarr label image
    ``<stem>_strokes.ome.zarr`` in the slide's chunked layout, 255 (its fill value) where nothing
    is annotated, so unpainted chunks are never stored."""
    image_path = Path(image_path)
    return image_path.with_name(image_stem(image_path) + CHUNKED_STROKES_SUFFIX)


def instances_path(image_path: str | os.PathLike) -> Path:
    """Where the app saves an image's objects, beside the image: the ``instances`` format's file
    (``<stem>_instances.tif``, what ``unetseg segment --format instances`` writes for it)."""
    image_path = Path(image_path)
    return image_files(image_path.parent, image_stem(image_path), "instances")[0]


INSTANCE_LABEL_SUFFIXES = (".tif", ".tiff", ".png", ".npy")


def find_instances(folder: str | os.PathLike, image_path: str | os.PathLike) -> Path | None:
    """The instance label image of ``image_path`` in ``folder``: the ``instances`` format's file
    ``<stem>_instances.tif`` (what the app and ``--format instances`` write; also .tiff, .png, .npy),
    else ``<stem>.tif`` (.tiff, .png, .npy) as the masks folder's pairing rule has it; never the
    image itself."""
    folder, image_path = Path(folder), Path(image_path)
    stems = list(dict.fromkeys((image_stem(image_path), image_path.stem)))
    written = [Path(image_files(folder, stem, "instances")[0]) for stem in stems]
    names = written + [p.with_suffix(suffix) for p in written for suffix in INSTANCE_LABEL_SUFFIXES]
    names += [folder / f"{stem}{suffix}" for stem in stems for suffix in INSTANCE_LABEL_SUFFIXES]
    for candidate in names:
        if candidate.is_file() and not _same(candidate, image_path):
            return candidate
    return None


def find_class_hint(folders: Sequence[str | os.PathLike], image_path: str | os.PathLike,
                    exclude: str | os.PathLike | None = None) -> Path | None:
    """What says more about an instance annotation (its background strokes, its objects' classes):
    ``<stem>_strokes.png``, else a class mask ``<stem>_mask.<ext>``, in the first of ``folders``
    that has one; never ``exclude`` (the label image) or the image itself."""
    image_path = Path(image_path)
    stem = image_stem(image_path)
    for folder in folders:
        names = [Path(folder) / (stem + STROKES_SUFFIX)]
        names += [Path(folder) / f"{stem}_mask{suffix}" for suffix in TRAINING_MASK_SUFFIXES]
        for candidate in names:
            if candidate.is_file() and not _same(candidate, image_path) and \
                    (exclude is None or not _same(candidate, Path(exclude))):
                return candidate
    return None


CHUNKED_MASK_SUFFIXES = {"ome-zarr": "_mask.ome.zarr", "ome-tiff": "_mask.ome.tif"}


def chunked_mask_path(image_path: str | os.PathLike, fmt: str = "ome-zarr") -> Path:
    """Where the app saves a mask too large for PNG (a chunked whole-slide mask), beside the image:
    ``<stem>_mask.ome.zarr`` (or ``<stem>_mask.ome.tif``).  ``slide.ome.tif`` has stem ``slide``,
    as ``unetseg segment`` names its OME outputs."""
    if fmt not in CHUNKED_MASK_SUFFIXES:
        raise ValueError(f"a chunked mask is saved as {' or '.join(CHUNKED_MASK_SUFFIXES)}, not {fmt!r}")
    image_path = Path(image_path)
    return image_path.with_name(image_stem(image_path) + CHUNKED_MASK_SUFFIXES[fmt])


SLIDE_INSTANCES_SUFFIXES = {"ome-zarr": "_instances.ome.zarr", "ome-tiff": "_instances.ome.tif"}


def slide_instances_path(outdir: str | os.PathLike, stem: str, fmt: str) -> Path:
    """Where ``unetseg segment --format instances`` puts a slide's instance labels beside its class
    store: ``<stem>_instances.ome.zarr`` (OME-Zarr labels) or ``<stem>_instances.ome.tif``."""
    if fmt not in SLIDE_INSTANCES_SUFFIXES:
        raise ValueError(f"a slide's instances are written as {' or '.join(SLIDE_INSTANCES_SUFFIXES)}, not {fmt!r}")
    return Path(outdir) / f"{stem}{SLIDE_INSTANCES_SUFFIXES[fmt]}"

def stack_mask_path(image_path: str | os.PathLike, fmt: str = "ome-tiff") -> Path:
    """Where a stack's mask (a label stack with the image's planes) is saved beside the stack:
    ``<stem>_mask.ome.tif`` (OME-TIFF records the axes, so it reads back with the same planes),
    or ``<stem>_mask.ome.zarr`` for a stack too large for one file.  Beside a folder of planes
    ``planes/`` it is ``planes_mask.ome.tif``."""
    return chunked_mask_path(Path(image_path), fmt)


STACK_STROKES_SUFFIX = "_strokes.ome.tif"


def stack_strokes_path(image_path: str | os.PathLike) -> Path:
    """A stack's annotation strokes beside it: ``<stem>_strokes.ome.tif``, a label stack with 255
    on every voxel not annotated (``unetseg train --masks`` reads it like a mask stack)."""
    image_path = Path(image_path)
    return image_path.with_name(image_stem(image_path) + STACK_STROKES_SUFFIX)


def stack_instances_path(image_path: str | os.PathLike) -> Path:
    """A stack's objects beside it: ``<stem>_instances.ome.tif``, the ``instances`` file
    ``unetseg segment STACK`` writes (a label stack of object ids with the stack's planes)."""
    image_path = Path(image_path)
    return stack_files(image_path.parent, image_stem(image_path), "instances")[0]


def stack_export_path(image_path: str | os.PathLike, folder: str | os.PathLike, fmt: str) -> Path:
    """Export Mask's proposal for a whole stack: the file ``unetseg segment STACK`` writes for the
    format (one label stack, one GeoJSON of every plane, coco.json...) in ``folder``, flattened (YOLO's
    ``labels/<stem>.txt`` becomes ``<stem>.txt``); where that is the stack itself, ``<stem>_mask``."""
    image_path, folder = Path(image_path), Path(folder)

    def named(stem: str) -> Path:
        files = stack_files(folder, stem, fmt) or image_files(folder, stem, fmt) or collection_files(folder, fmt)
        return folder / files[0].name

    path = named(image_stem(image_path))
    return named(f"{image_stem(image_path)}_mask") if _same(path, image_path) else path


def export_stem(path: str | os.PathLike, fmt: str) -> str:
    """The stem the chosen export file ``path`` stands for in ``fmt``'s naming (``cells_color.png``
    as colour PNG: ``cells``; ``cells.ome.tif`` as OME-TIFF: ``cells``), else the file's own stem."""
    name = Path(path).name
    templates = [STACK_FILES[fmt]] if fmt in STACK_FILES else []
    templates += list(STACK_OBJECT_FILES.get(fmt, ())) + (list(format_info(fmt).per_image) if fmt in FORMATS else [])
    for template in templates:
        before, _, after = Path(template).name.partition("{stem}")
        if name.startswith(before) and name.lower().endswith(after.lower()) and len(name) > len(before) + len(after):
            return name[len(before):len(name) - len(after)]
    return image_stem(name)


def plane_stem(stem: str, plane_axes: str, plane, planes) -> str:
    """The stem of one plane's files in a format that holds one 2-D image per file (index PNG,
    YOLO...): ``cells_z07`` (zero-padded to the stack's size, so the files sort in plane order),
    ``movie_t02_z07``; a 2-D image keeps ``stem``."""
    parts = [f"{a.lower()}{int(p):0{len(str(max(1, int(n) - 1)))}d}" for a, p, n in zip(plane_axes, plane, planes)]
    return "_".join([stem, *parts])


STACK_FILES = {"tiff": "{stem}.tif", "ome-tiff": "{stem}.ome.tif", "ome-zarr": "{stem}.ome.zarr",
               "npy": "{stem}.npy"}
# a stack's objects: one label stack of ids (OME-TIFF keeps the axes), one table of every plane's
# objects and, for objects stitched in 3-D, one row per 3-D object
STACK_OBJECT_FILES = {"instances": ("{stem}_instances.ome.tif",),
                      "measurements": ("{stem}_measurements.csv", "{stem}_measurements_3d.csv")}


def stack_files(outdir: str | os.PathLike, stem: str, fmt: str) -> list[Path]:
    """The files a stack gets in a format that holds all its planes (tiff, ome-tiff, ome-zarr,
    npy: one label stack; geojson, imagej: every plane's objects, each with its plane; instances:
    ``<stem>_instances.ome.tif``; measurements: ``<stem>_measurements.csv`` and, for objects
    stitched in 3-D, ``<stem>_measurements_3d.csv``); [] for a format that holds one plane per
    file (use ``plane_stem``) or a collection (coco)."""
    if fmt in STACK_FILES:
        return [Path(outdir) / STACK_FILES[fmt].format(stem=stem)]
    if fmt in STACK_OBJECT_FILES:
        return [Path(outdir) / t.format(stem=stem) for t in STACK_OBJECT_FILES[fmt]]
    if fmt in ("geojson", "imagej"):
        return image_files(outdir, stem, fmt)
    return []


def suggested_export_path(image_path: str | os.PathLike, folder: str | os.PathLike, fmt: str) -> Path:
    """Export Mask's proposal: the batch name in ``folder``, flattened to one file (YOLO's
    ``labels/<stem>.txt`` becomes ``<stem>.txt``; VOC proposes its class PNG ``<stem>.png``).

    The one exception: where that name is the image itself (``cells.png`` exported as index
    PNG into its own folder) the app's save name ``<stem>_mask<ext>`` is proposed instead.
    """
    image_path = Path(image_path)
    path = Path(folder) / output_path(folder, image_path.stem, fmt).name
    if _same(path, image_path):
        path = Path(folder) / f"{image_path.stem}_mask{path.suffix}"
    return path


def export_suffix(path: str | os.PathLike, fmt: str) -> Path:
    """``path`` with the format's extension appended unless it already ends with one."""
    path, extensions = Path(path), _extensions(fmt)
    if not extensions or path.name.lower().endswith(extensions):
        return path
    return path.with_name(path.name + extensions[0])


def _extensions(fmt: str) -> tuple[str, ...]:
    return STORE_EXTENSIONS[fmt] if fmt in STORE_EXTENSIONS else format_info(fmt).extensions


def formats_of_name(name: str, offered: Iterable[str]) -> list[str]:
    """The offered formats whose extension ``name`` ends with; the longest extension wins
    (``a.ome.tif`` is OME-TIFF when that is offered, not a plain TIFF)."""
    name = name.lower()
    matches = [(len(ext), fmt) for fmt in offered for ext in _extensions(fmt) if name.endswith(ext) and len(name) > len(ext)]
    if not matches:
        return []
    longest = max(n for n, _ in matches)
    return list(dict.fromkeys(fmt for n, fmt in matches if n == longest))


def typed_export(path: str | os.PathLike, fmt: str, offered: Iterable[str]) -> tuple[Path, list[str]]:
    """What a name typed into Export Mask asks for, with ``fmt`` the chosen file type:

    * it ends with the chosen format's extension, or with none the offered formats know: that
      format, with its extension added when missing (``cells`` -> ``cells.json``);
    * it ends with another offered format's extension: that format (``cells.geojson`` under
      COCO is GeoJSON), or, when several formats share the extension, those to choose from
      (``cells.png``: index, colour, overlay or VOC), the name kept as typed.
    """
    path, offered = Path(path), list(dict.fromkeys(offered))
    if path.name.lower().endswith(_extensions(fmt)) and len(path.name) > min(map(len, _extensions(fmt)), default=0):
        return path, [fmt]
    others = formats_of_name(path.name, [f for f in offered if f != fmt])
    if others:
        return path, others
    return export_suffix(path, fmt), [fmt]


def planned_collisions(
    outdir: str | os.PathLike,
    stems: Sequence[str],
    formats: Iterable[str],
    protect: Iterable[str | os.PathLike] = (),
) -> list[str]:
    """One sentence per planned file that would overwrite a protected file (a source image)
    or another planned file (``coco.png``'s labelme JSON and the COCO ``coco.json``); ``formats``
    may name the label stores (``ome-tiff``: ``<stem>.ome.tif``, as the batch writer names them)."""
    formats = list(dict.fromkeys(formats))
    protected = {_key(p) for p in protect}
    seen: dict[str, str] = {}
    problems = []
    planned = [(p, f) for f in formats if f in FORMATS for p in collection_files(outdir, f)]
    planned += [(p, f) for s in stems for f in formats
                for p in (stack_files(outdir, s, f) if f in STORE_EXTENSIONS else image_files(outdir, s, f))]
    for path, fmt in planned:
        key = _key(path)
        if key in protected:
            problems.append(f"{path.name}: the {fmt} file would overwrite a source image")
        elif key in seen:
            problems.append(f"{path.name}: the {fmt} and {seen[key]} files would have the same name")
        seen.setdefault(key, fmt)
    return problems


def mask_candidates(folder: str | os.PathLike, stem: str) -> list[Path]:
    """The files a mask of ``stem`` has in ``folder`` in each readable format's layout (what
    ``unetseg segment -o folder`` writes), per-image files first, then the app's strokes
    (``<stem>_strokes.png``, a sparse index mask), shared ones (coco.json) last."""
    per_image, shared = [], []
    for fmt in FORMATS:
        if fmt not in NOT_MASKS:  # an overlay is a picture, instances and measurements are objects
            per_image += image_files(folder, stem, fmt)[:1]
            shared += collection_files(folder, fmt)[:1] if fmt == "coco" else []
    strokes = [Path(folder) / (stem + STROKES_SUFFIX)]
    return list(dict.fromkeys(per_image + strokes + shared))


TRAINING_MASK_SUFFIXES = (".png", ".tif", ".tiff", ".npy", ".bmp", ".gif", ".webp")
STACK_MASK_NAMES = ("{}_mask.ome.tif", "{}_mask.ome.zarr", "{}.ome.tif", "{}.ome.zarr", "{}_strokes.ome.tif")


def find_mask(folder: str | os.PathLike, image_path: str | os.PathLike) -> Path | None:
    """The mask of ``image_path`` in ``folder``: ``<stem>.<ext>`` or ``<stem>_mask.<ext>``, then a
    stack's (``<stem>_mask.ome.tif``, ``<stem>.ome.zarr``, ``<stem>_strokes.ome.tif``...), else the
    file any mask format writes for the stem (``labels/<stem>.txt``, ``coco.json``...); never the
    image itself.  The stem is ``image_stem``'s (``t0.ome.tif`` -> ``t0``, as `segment` names
    that image's mask), then the plain file stem (``t0.ome``) as before."""
    folder, image_path = Path(folder), Path(image_path)
    stems = list(dict.fromkeys((image_stem(image_path), image_path.stem)))
    names = [folder / f"{name}{suffix}" for stem in stems for name in (stem, f"{stem}_mask")
             for suffix in TRAINING_MASK_SUFFIXES]
    stacks = [folder / n.format(stem) for stem in stems for n in STACK_MASK_NAMES]
    for candidate in names + stacks + [c for stem in stems for c in mask_candidates(folder, stem)]:
        found = candidate.is_file() or (candidate.suffix == ".zarr" and candidate.is_dir())
        if found and not _same(candidate, image_path):
            return candidate
    return None


def unique_stems(paths: Sequence[str | os.PathLike]) -> list[str]:
    """Output names that never overwrite each other: a repeated stem gets '-2', '-3', ...
    (compared without case, as Windows and macOS file systems do)."""
    counts: dict[str, int] = {}
    stems = []
    for p in paths:
        stem = image_stem(p)
        n = counts.get(stem.lower(), 0) + 1
        counts[stem.lower()] = n
        stems.append(stem if n == 1 else f"{stem}-{n}")
    return stems


def _key(path: str | os.PathLike) -> str:
    return os.path.normcase(os.path.abspath(os.fspath(path)))


def _same(a: Path, b: Path) -> bool:
    return _key(a) == _key(b)
