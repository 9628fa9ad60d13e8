"""Label masks: reading, writing and drawing them.

A mask is an H x W uint8 array of class ids; class 0 is background.  Background is always
drawn black (colour PNG, index PNG palette) and left transparent in overlays, whatever
colour the class list gives it, so every rendering of one mask looks the same.  Writes are
atomic; every problem with a mask file is a ``MaskError`` whose message is one sentence.
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PureWindowsPath
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
from PIL import Image

from core.atomic import atomic_path, short_error, write_text
from core.classes import ClassInfo, palette_array
from core.io.images import ImageReadError, file_problem, open_pillow
from core.io.mask_naming import CHUNKED_MASK_SUFFIXES, chunked_mask_path  # noqa: F401 - re-exported
from core.io.mask_naming import MASK_FORMATS, default_mask_path, format_info  # noqa: F401 - re-exported
from core.io.mask_naming import output_path as mask_output_path  # noqa: F401 - the old name

if TYPE_CHECKING:
    from core.io.objects import ObjectOptions

_CHUNK_PIXELS = 1 << 20  # rows per chunk are chosen so temporaries stay around a few MB


class MaskError(ValueError):
    """A mask file that cannot be used; ``str()`` is one sentence naming the file and why."""


def _error(path: str | os.PathLike, reason: str) -> MaskError:
    return MaskError(f"{Path(path).name}: {reason}.")


# --- paths ---------------------------------------------------------------------------------


_BESIDE = ("{}.mask.png", "{}_mask.tif", "{}_mask.tiff", "{}_mask.npy", "{}_label.png",
           "{}_labels.png")
_IN_FOLDER = ("{}.png", "{}_mask.png", "{}.tif", "{}.tiff", "{}.npy")
_MASK_DIRS = ("masks", "labels", "../masks", "../labels")


def find_mask_for_image(
    image_path: str | os.PathLike, folders: Iterable[str | os.PathLike] | None = None
) -> Path | None:
    """The first existing mask for ``image_path``, searched in this order:

    1. ``<stem>_mask.png`` beside the image (what the app saves), then a chunked mask beside it:
       ``<stem>_mask.ome.zarr`` (a folder), ``<stem>_mask.ome.tif`` (``chunked_mask_path``;
       open those with ``core.document.chunked_labels.ChunkedLabels.open``, not ``read_mask``);
    2. in each of ``folders``, in order: ``<stem>.png``, ``<stem>_mask.png``, ``<stem>.tif``,
       ``<stem>.tiff``, ``<stem>.npy``;
    3. beside the image: ``<stem>.mask.png``, ``<stem>_mask.tif``, ``<stem>_mask.tiff``,
       ``<stem>_mask.npy``, ``<stem>_label.png``, ``<stem>_labels.png``;
    4. the names of step 2 in ``masks/`` and ``labels/`` beside the image, then in
       ``../masks/`` and ``../labels/`` (an ``images/`` + ``masks/`` dataset layout).

    The image file itself is never returned, even when a folder is the image's own.
    """
    image_path = Path(image_path)
    stem, here = image_path.stem, image_path.parent
    candidates = [default_mask_path(image_path)]
    for folder in folders or ():
        candidates += [Path(folder) / n.format(stem) for n in _IN_FOLDER]
    candidates += [here / n.format(stem) for n in _BESIDE]
    for sub in _MASK_DIRS:
        candidates += [here / sub / n.format(stem) for n in _IN_FOLDER]
    for candidate in candidates:
        if candidate.is_file() and not _same_file(candidate, image_path):
            return candidate
        if candidate == candidates[0]:
            for fmt in CHUNKED_MASK_SUFFIXES:
                chunked = chunked_mask_path(image_path, fmt)
                if _is_zarr(chunked) or (fmt == "ome-tiff" and chunked.is_file()):
                    return chunked
    return None


def _is_zarr(path: Path) -> bool:
    return path.is_dir() and any((path / m).exists() for m in (".zgroup", ".zattrs", "zarr.json"))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


# --- rendering -----------------------------------------------------------------------------


def class_histogram(labels: np.ndarray, num: int = 256) -> np.ndarray:
    """Pixel count per class id (``hist[i] > 0``: class i is present); chunked to stay small."""
    flat = np.asarray(labels).reshape(-1)
    hist = np.zeros(num, np.int64)
    for start in range(0, flat.size, _CHUNK_PIXELS):
        counts = np.bincount(flat[start : start + _CHUNK_PIXELS], minlength=num)
        if counts.size > hist.size:
            hist = np.concatenate([hist, np.zeros(counts.size - hist.size, np.int64)])
        hist[: counts.size] += counts
    return hist


def color_lut(classes: Sequence[ClassInfo]) -> np.ndarray:
    """(256, 3) uint8 colours per class id, background black."""
    lut = palette_array(classes)
    lut[0] = 0
    return lut


def render_color(labels: np.ndarray, classes: Sequence[ClassInfo]) -> np.ndarray:
    labels = as_label_array(labels)
    lut = color_lut(classes)
    out = np.empty(labels.shape + (3,), np.uint8)
    for rows in _row_chunks(labels.shape):
        out[rows] = lut[labels[rows]]
    return out


def render_overlay(
    image_rgb: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[ClassInfo],
    opacity: float = 0.5,
    hidden: Iterable[int] = (),
) -> np.ndarray:
    """The image with each visible class blended in at ``opacity``; background untouched.

    Works in row chunks with uint16 integer arithmetic, so an 8192 x 8192 image costs the
    output plus a few MB, not several float copies.
    """
    labels = as_label_array(labels)
    image_rgb = np.asarray(image_rgb)
    if image_rgb.dtype != np.uint8 or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise ValueError(f"an overlay needs an H x W x 3 uint8 image, not {image_rgb.dtype} "
                         f"{image_rgb.shape}")
    if image_rgb.shape[:2] != labels.shape:
        raise ValueError(
            f"the image is {_wxh(image_rgb.shape)} but the mask is {_wxh(labels.shape)}"
        )
    alpha = int(round(min(max(float(opacity), 0.0), 1.0) * 255))
    visible = np.ones(256, bool)
    visible[0] = False
    visible[[h for h in hidden if 0 <= h < 256]] = False
    lut = color_lut(classes).astype(np.uint16) * alpha
    out = image_rgb.copy()
    for rows in _row_chunks(labels.shape):
        lab = labels[rows]
        where = visible[lab]
        if not where.any():
            continue
        blended = out[rows].astype(np.uint16)
        blended *= 255 - alpha
        blended += lut[lab]
        blended += 127
        blended //= 255
        np.copyto(out[rows], blended, casting="unsafe", where=where[..., None])
    return out


def _row_chunks(shape: tuple[int, ...]) -> Iterable[slice]:
    step = max(1, _CHUNK_PIXELS // max(1, shape[1]))
    return (slice(r, r + step) for r in range(0, shape[0], step))


def as_label_array(labels: np.ndarray) -> np.ndarray:
    """``labels`` as a 2-D uint8 array of class ids; ValueError (one sentence) when it cannot be one."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"a mask must be a 2-D array of class ids, not shape {labels.shape}")
    if labels.dtype == np.uint8:
        return labels
    if labels.dtype == bool:
        return labels.astype(np.uint8)
    if np.issubdtype(labels.dtype, np.integer) and (
        labels.size == 0 or (labels.min() >= 0 and labels.max() <= 255)
    ):
        return labels.astype(np.uint8)
    raise ValueError(f"a mask must hold class ids 0-255, not {labels.dtype} values")


def _wxh(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}x{shape[0]}"


# --- writing -------------------------------------------------------------------------------


def write_mask(
    path: str | os.PathLike,
    labels: np.ndarray,
    fmt: str,
    classes: Sequence[ClassInfo],
    image: np.ndarray | None = None,
    opacity: float = 0.5,
    image_name: str | None = None,
    *,
    image_path: str | os.PathLike | None = None,
    objects: "ObjectOptions | None" = None,
    coco_semantic: bool = False,
    instances: np.ndarray | None = None,
) -> Path:
    """Write ``labels`` as ``fmt`` into the one file ``path``, atomically (a failure leaves
    any previous file intact).

    ``image`` is required for "overlay"; ``image_name`` is the file name recorded in a "coco"
    document (default: ``image_path``'s name, else the mask path's stem); ``image_path`` is
    what a labelme file points to.  ``objects`` sets minimum area and outline tolerance of the
    object formats; ``coco_semantic`` writes one COCO annotation per class instead of per
    object.  ``instances`` (an instance label image, 0 = background) makes the object formats
    write one object per id, so touching objects of one class stay apart; without it an object
    is an 8-connected component of one class.  One file only: "voc" writes the class PNG here (``write_mask_files`` writes both
    VOC PNGs), "yolo" the label file without ``data.yaml``.
    """
    format_info(fmt)  # ValueError naming the formats for an unknown one
    path = Path(path)
    if not (fmt in CHUNKWISE_FORMATS and is_chunked(labels)):  # those read a chunked mask by chunks
        labels = as_label_array(labels)
    if image_name is None and image_path is not None:
        image_name = Path(image_path).name
    options = _options(objects)
    instances = checked_instances(instances, labels.shape)
    if fmt == "coco":
        h, w = labels.shape
        return write_coco(path, [(image_name or path.stem, h, w, labels, instances)], classes,
                          semantic=coco_semantic, objects=options)
    if fmt in _OBJECT_WRITERS:
        return _OBJECT_WRITERS[fmt](path, labels, classes, image_path or image_name, options, instances)
    if fmt in OBJECT_DATA_FORMATS:
        raise ValueError(f"the {fmt} format is written by the batch writer (core.segment.batch_writer.write_one)")
    if fmt == "overlay" and image is None:
        raise ValueError(f"cannot write {path.name}: an overlay needs the source image")
    if fmt == "index":
        pil = Image.fromarray(labels)
        pil.putpalette(color_lut(classes).tobytes())  # an "L" image becomes "P"
    elif fmt == "color":
        pil = Image.fromarray(render_color(labels, classes))
    elif fmt == "overlay":
        pil = Image.fromarray(render_overlay(image, labels, classes, opacity))
    with atomic_path(path) as tmp:
        if fmt == "tiff":
            import tifffile

            tifffile.imwrite(tmp, labels, photometric="minisblack", compression="zlib")
        elif fmt == "npy":
            with open(tmp, "wb") as f:  # a file object: np.save would append ".npy" to a name
                np.save(f, labels)
        else:
            pil.save(tmp, format="PNG")
    return path


CHUNKWISE_FORMATS = frozenset({"geojson", "imagej"})  # written from a chunked mask chunk by chunk
OBJECT_DATA_FORMATS = frozenset({"instances", "measurements"})  # need objects and pixels: core.objects


def checked_instances(instances, shape: tuple[int, ...]):
    """An instance label image for the object formats: 2-D integer ids of the mask's size, or None."""
    if instances is None:
        return None
    if tuple(instances.shape[:2]) != tuple(shape[:2]) or len(instances.shape) != 2:
        raise ValueError(f"the instance labels are {_wxh(tuple(instances.shape))} but the mask is {_wxh(tuple(shape))}")
    dtype = np.dtype(instances.dtype)
    if not (np.issubdtype(dtype, np.integer) or dtype == bool):
        raise ValueError(f"instance labels must hold whole-number object ids, not {dtype} values")
    return np.asarray(instances) if isinstance(instances, np.ndarray) else instances


def is_chunked(labels) -> bool:
    """A 2-D array-like that is not in memory (``ChunkedLabels``, a zarr array): it has chunks."""
    return not isinstance(labels, np.ndarray) and getattr(labels, "chunks", None) is not None \
        and len(getattr(labels, "shape", ())) == 2


def write_mask_files(paths: Sequence[str | os.PathLike], labels: np.ndarray, fmt: str,
                     classes: Sequence[ClassInfo], **kwargs) -> list[Path]:
    """Write one image's files of ``fmt`` (``mask_naming.image_files``); VOC has two."""
    if fmt == "voc":
        from core.io.formats.voc import write_voc

        labels = as_label_array(labels)
        return write_voc(paths, labels, _options(kwargs.get("objects")),
                         checked_instances(kwargs.get("instances"), labels.shape))
    return [write_mask(p, labels, fmt, classes, **kwargs) for p in paths]


def _options(objects):
    from core.io.objects import ObjectOptions

    return objects if objects is not None else ObjectOptions()


def _write_yolo(path, labels, classes, image, options, instances):
    from core.io.formats.yolo import write_yolo

    return write_yolo(path, labels, options, instances)


def _write_labelme(path, labels, classes, image, options, instances):
    from core.io.formats.labelme import write_labelme

    return write_labelme(path, labels, classes, image, options, instances)


def _write_voc(path, labels, classes, image, options, instances):
    from core.io.formats.voc import write_voc

    return write_voc([path], labels, options, instances)[0]


def _write_geojson(path, labels, classes, image, options, instances):
    from core.io.formats.geojson import write_geojson

    return write_geojson(path, labels, classes, options, instances)


def _write_imagej(path, labels, classes, image, options, instances):
    from core.io.formats.imagej import write_imagej

    return write_imagej(path, labels, classes, options, instances)


_OBJECT_WRITERS = {"yolo": _write_yolo, "labelme": _write_labelme, "voc": _write_voc,
                   "geojson": _write_geojson, "imagej": _write_imagej}


def coco_annotations(
    labels: np.ndarray, classes: Sequence[ClassInfo], image_id: int, start_ann_id: int
) -> list[dict]:
    """One RLE annotation per class present (background excluded), ids from ``start_ann_id``.

    A class id missing from ``classes`` would produce an annotation without a category, so
    it is refused (ValueError) rather than written as an invalid document.
    """
    from pycocotools import mask as coco_mask

    labels = as_label_array(labels)
    known = {c.id for c in classes}
    annotations = []
    for cid in np.flatnonzero(class_histogram(labels)[1:]) + 1:
        if int(cid) not in known:
            raise ValueError(f"the mask contains class id {cid}, which is not in the class list")
        rle = coco_mask.encode(np.asfortranarray(labels == cid, dtype=np.uint8))
        bbox = [float(v) for v in coco_mask.toBbox(rle)]
        annotations.append({
            "id": start_ann_id + len(annotations),
            "image_id": image_id,
            "category_id": int(cid),
            "segmentation": {"size": [int(s) for s in rle["size"]],
                             "counts": rle["counts"].decode("ascii")},
            "area": float(coco_mask.area(rle)),
            "bbox": bbox,
            "iscrowd": 0,
        })
    return annotations


def coco_document(
    entries: Iterable[tuple[str, int, int, np.ndarray]],
    classes: Sequence[ClassInfo],
    semantic: bool = False,
    objects: "ObjectOptions | None" = None,
) -> dict:
    """A COCO dict for ``(file_name, height, width, labels[, instances])`` entries; images numbered
    from 1.

    One annotation per object (``core.io.formats.coco_objects``; per instance id when the entry
    has an instance label image), or per class with ``semantic``.
    """
    from core.io.formats.coco_objects import object_annotations

    images, annotations = [], []
    for image_id, (file_name, height, width, labels, *rest) in enumerate(entries, start=1):
        instances = rest[0] if rest else None
        if tuple(np.shape(labels)) != (int(height), int(width)):
            raise ValueError(f"the mask for {file_name} is {_wxh(np.shape(labels))} but the "
                             f"image is {width}x{height}")
        images.append({"id": image_id, "file_name": str(file_name),
                       "height": int(height), "width": int(width)})
        if semantic:
            annotations += coco_annotations(labels, classes, image_id, len(annotations) + 1)
        else:
            annotations += object_annotations(as_label_array(labels), classes, image_id,
                                              len(annotations) + 1, _options(objects), instances)
    return {"images": images, "annotations": annotations, "categories": coco_categories(classes)}


def coco_categories(classes: Sequence[ClassInfo]) -> list[dict]:
    """COCO categories: the classes without background, ``id`` = class id."""
    return [{"id": c.id, "name": c.name, "color": list(c.color)}
            for c in sorted(classes, key=lambda c: c.id) if c.id != 0]


def write_coco(
    path: str | os.PathLike,
    entries: Iterable[tuple[str, int, int, np.ndarray]],
    classes: Sequence[ClassInfo],
    semantic: bool = False,
    objects: "ObjectOptions | None" = None,
) -> Path:
    return write_text(path, json.dumps(coco_document(entries, classes, semantic, objects)))


# --- reading -------------------------------------------------------------------------------


def read_mask(
    path: str | os.PathLike,
    shape: tuple[int, int] | None = None,
    num_classes: int | None = None,
    classes: Sequence[ClassInfo] | None = None,
    image_name: str | None = None,
) -> np.ndarray:
    """Read a mask of any format and check it against the image ``shape`` (H, W) and model.

    Palette ("P") and grey PNGs hold class ids directly (VOC class PNGs are those); an RGB(A)
    PNG is a colour mask whose colours are mapped back through ``classes`` (or the default
    palette), black and fully transparent pixels being background.  ``.json`` is COCO,
    labelme or GeoJSON (by content), ``.geojson`` GeoJSON, ``.txt`` YOLO, ``.zip``/``.roi``
    an ImageJ ROI set; class names in them are looked up in ``classes`` (or "class N").
    YOLO and ImageJ files hold no image size, so they need ``shape``.  ``image_name`` picks
    the image in a COCO file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    problem = file_problem(path)
    if problem and not (suffix == ".txt" and path.is_file()):  # an empty YOLO file: no objects
        raise _error(path, problem)
    if suffix in (".png", ".bmp", ".gif", ".webp"):
        labels = _read_pillow_mask(path, classes)
    elif suffix in (".tif", ".tiff"):
        labels = _read_tiff_mask(path)
    elif suffix == ".npy":
        labels = _read_npy_mask(path)
    elif suffix in (".json", ".geojson"):
        labels = _read_json_mask(path, shape, classes, image_name)
    elif suffix == ".txt":
        from core.io.formats.yolo import read_yolo

        labels = read_yolo(path, shape)
    elif suffix in (".zip", ".roi"):
        from core.io.formats.imagej import read_imagej

        labels = read_imagej(path, shape, classes)
    else:
        raise _error(path, f"not a mask file (unsupported extension {path.suffix or 'none'})")
    if shape is not None and labels.shape != tuple(shape[:2]):
        raise _error(path, f"mask is {_wxh(labels.shape)} but the image is {_wxh(tuple(shape))}")
    if num_classes is not None and labels.size:
        top = int(labels.max())
        if top >= num_classes:
            raise _error(path, f"contains class id {top} but the model has {num_classes} classes "
                               f"(0-{num_classes - 1})")
    return labels


def _read_json_mask(path: Path, shape, classes, image_name) -> np.ndarray:
    """COCO, labelme or GeoJSON, told apart by their keys."""
    from core.io.formats import load_json
    from core.io.formats.geojson import is_geojson, read_geojson
    from core.io.formats.labelme import is_labelme, read_labelme

    doc = load_json(path)
    if is_labelme(doc):
        return read_labelme(path, classes, doc=doc)
    if is_geojson(doc):
        return read_geojson(path, shape, classes, doc=doc)
    if path.suffix.lower() == ".geojson":
        raise _error(path, "not a GeoJSON feature collection")
    return read_coco(path, image_name, doc=doc)


def read_coco(path: str | os.PathLike, file_name: str | None = None, doc=None) -> np.ndarray:
    """Rebuild the mask of one image of a COCO file; later annotations paint over earlier."""
    from pycocotools import mask as coco_mask

    path = Path(path)
    if doc is None:
        problem = file_problem(path)
        if problem:
            raise _error(path, problem)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise _error(path, f"not valid JSON ({short_error(exc)})") from None
        except OSError as exc:
            raise _error(path, f"cannot be read ({short_error(exc)})") from None
    images = doc.get("images") if isinstance(doc, dict) else None
    if not isinstance(images, list) or not isinstance(doc.get("annotations", []), list):
        raise _error(path, "not a COCO annotation file (no list of images)")
    image = _pick_coco_image(path, images, file_name)
    try:
        image_id, h, w = image["id"], int(image["height"]), int(image["width"])
    except (KeyError, TypeError, ValueError):
        raise _error(path, "the image entry lacks an id, height or width") from None
    labels = np.zeros((h, w), np.uint8)
    for ann in doc.get("annotations", []):
        if not isinstance(ann, dict) or ann.get("image_id") != image_id:
            continue
        cid = ann.get("category_id")
        if not isinstance(cid, int) or not 0 <= cid <= 255:
            raise _error(path, f"category id {cid} cannot be stored in an 8-bit mask (ids 0-255)")
        try:
            labels[_decode_segmentation(coco_mask, ann["segmentation"], h, w)] = cid
        except Exception as exc:  # noqa: BLE001 - pycocotools raises many types for bad input
            raise _error(path, f"annotation {ann.get('id')} is malformed ({short_error(exc)})") from None
    return labels


def _decode_segmentation(coco_mask, segm, h: int, w: int) -> np.ndarray:
    """Polygons, uncompressed or compressed RLE -> H x W bool, as pycocotools' ``annToRLE``.

    The compressed string is decoded here: ``pycocotools.mask.decode`` relies on a NumPy
    behaviour that NumPy 2 deprecates.
    """
    if isinstance(segm, list):
        segm = coco_mask.merge(coco_mask.frPyObjects(segm, h, w))
    elif isinstance(segm, dict) and isinstance(segm.get("counts"), list):
        segm = coco_mask.frPyObjects(segm, h, w)
    if [int(v) for v in segm["size"]] != [h, w]:
        raise ValueError(f"its size {segm['size']} differs from the image's {[h, w]}")
    counts = segm["counts"]
    runs = _rle_counts(counts.decode("ascii") if isinstance(counts, bytes) else str(counts))
    if sum(runs) != h * w or min(runs, default=0) < 0:
        raise ValueError("its run lengths do not cover the image")
    values = np.arange(len(runs), dtype=np.uint8) & 1  # runs alternate 0, 1, 0, ...
    return np.repeat(values.astype(bool), runs).reshape(w, h).T  # column-major


def _rle_counts(text: str) -> list[int]:
    """COCO's compressed RLE: 5 bits per character, sign on the last, deltas after the 2nd."""
    counts: list[int] = []
    p = 0
    while p < len(text):
        x = k = 0
        more = True
        while more:
            c = ord(text[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        counts.append(x + counts[-2] if len(counts) > 2 else x)
    return counts


def _pick_coco_image(path: Path, images: list, file_name: str | None) -> dict:
    images = [im for im in images if isinstance(im, dict)]
    if file_name is None:
        if len(images) == 1:
            return images[0]
        raise _error(path, f"holds {len(images)} images, so the image's file name is needed")
    for match in (lambda n: n == file_name, lambda n: _basename(n) == _basename(file_name)):
        for im in images:
            if match(str(im.get("file_name", ""))):
                return im
    raise _error(path, f"has no image named {_basename(file_name)}")


def _basename(name: str) -> str:
    return PureWindowsPath(name).name  # splits on both "/" and "\"


def _read_pillow_mask(path: Path, classes: Sequence[ClassInfo] | None) -> np.ndarray:
    try:
        with open_pillow(path) as (im, _):
            mode, arr = im.mode, np.asarray(im)
    except ImageReadError as exc:
        raise MaskError(str(exc)) from None
    if mode in ("RGB", "RGBA", "RGBX"):
        return _colors_to_ids(path, arr, classes)
    if mode in ("LA", "PA"):
        arr = arr[..., 0]
    elif mode not in ("P", "L", "1", "I", "F") and not mode.startswith("I;16"):
        raise _error(path, f"a {mode} image is not a mask (expected palette, grey or RGB)")
    return _to_ids(path, arr)


def _colors_to_ids(path: Path, rgb: np.ndarray, classes: Sequence[ClassInfo] | None) -> np.ndarray:
    table: dict[int, int] = {}
    lut = color_lut(classes or [])
    ids = [c.id for c in classes] if classes else list(range(256))
    for cid in sorted((i for i in ids if 0 <= i < 256), reverse=True):  # lowest id wins a tie
        r, g, b = (int(v) for v in lut[cid])
        table[(r << 16) | (g << 8) | b] = cid
    table[0] = 0
    keys_known = np.array(sorted(table), np.uint32)
    ids_known = np.array([table[k] for k in sorted(table)], np.uint8)
    out = np.empty(rgb.shape[:2], np.uint8)
    for rows in _row_chunks(rgb.shape[:2]):
        px = rgb[rows].astype(np.uint32)
        keys = (px[..., 0] << 16) | (px[..., 1] << 8) | px[..., 2]
        if rgb.shape[2] == 4:  # RGBA: fully transparent pixels are background
            keys[px[..., 3] == 0] = 0
        pos = np.minimum(np.searchsorted(keys_known, keys), len(keys_known) - 1)
        bad = keys_known[pos] != keys
        if bad.any():
            k = int(keys[bad][0])
            raise _error(path, f"contains the colour ({k >> 16}, {(k >> 8) & 255}, {k & 255}), "
                               "which is not a class colour")
        out[rows] = ids_known[pos]
    return out


def _read_tiff_mask(path: Path) -> np.ndarray:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            arr = tif.pages.first.asarray()
    except MemoryError:
        raise _error(path, "the mask is too large to load into memory") from None
    except Exception as exc:  # noqa: BLE001 - tifffile raises many types for a bad file
        if "not a TIFF" in str(exc):
            raise _error(path, "not a TIFF file") from None
        raise _error(path, f"unreadable TIFF ({short_error(exc)})") from None
    return _to_ids(path, arr)


def _read_npy_mask(path: Path) -> np.ndarray:
    try:
        with open(path, "rb") as f:
            if f.read(6) != b"\x93NUMPY":
                raise _error(path, "not a NumPy .npy file")
            f.seek(0)
            arr = np.load(f, allow_pickle=False)
    except MaskError:
        raise
    except MemoryError:
        raise _error(path, "the mask is too large to load into memory") from None
    except Exception as exc:  # noqa: BLE001 - np.load raises ValueError, OSError, EOFError...
        text = str(exc)
        if "Object arrays" in text:
            reason = "holds Python objects, not class ids"
        elif "Failed to read all data" in text or isinstance(exc, EOFError):
            reason = "the file is truncated"
        else:
            reason = f"not a valid .npy file ({short_error(exc)})"
        raise _error(path, reason) from None
    return _to_ids(path, arr)


def _to_ids(path: Path, arr: np.ndarray) -> np.ndarray:
    """A 2-D integer/bool array of values 0-255 as uint8; singleton 3rd dims are squeezed."""
    arr = np.asarray(arr)
    if arr.ndim == 3 and 1 in arr.shape:
        arr = arr.squeeze(axis=arr.shape.index(1))
    if arr.ndim != 2:
        raise _error(path, f"is a {'x'.join(map(str, arr.shape))} array, not a 2-D mask")
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    if not np.issubdtype(arr.dtype, np.integer):
        raise _error(path, f"holds {arr.dtype} values, but a mask must hold integer class ids")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 255):
        lo, hi = int(arr.min()), int(arr.max())
        raise _error(path, f"has values {lo}..{hi}, but class ids are 0-255")
    return np.ascontiguousarray(arr, dtype=np.uint8)

