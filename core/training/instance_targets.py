"""Training targets for a model that separates touching objects, from painted instance labels.

An instance annotation is a label image (docs/interfaces.md): 0 = background, the dtype's largest
value (65535 in a 16-bit file) = not annotated, any other value one object painted whole.  Beside
it, a class mask or a strokes file (``<stem>_strokes.png``, 255 = not annotated) may say more:
its 0 marks background too (added to the label image's own 0s), a class id on a painted object
votes for that object's class (the majority wins; without a vote an object is class 1), and a
class id where no object is painted teaches nothing, since no outline is known there.

The targets are an index mask the existing trainers learn unchanged (partial cross-entropy,
255 = not annotated, core.training.sparse): background 0, each object's class on its inside,
and one extra class, the **boundary**, on every object's edge band of ``width`` pixels (its
pixels within ``width`` of a pixel that is not the same object: another object, background or
unannotated; the image's own border is not an edge).  Touching objects are then two cores with
boundary between them, which core.objects.instances turns back into two objects.  Unpainted
pixels stay 255: a few objects and a few background strokes on one image are enough.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from core.objects.instances import InstanceSpec
from core.training.annotation import IGNORE, TrainingDataError

UNANNOTATED = np.uint32(2**32 - 1)  # "not annotated" in memory (uint32), whatever the file's dtype
BOUNDARY_WIDTH = 3  # the edge band learnt as boundary (bench/objects.py: 3 beat 1 and 2)
GROW = BOUNDARY_WIDTH + 1  # steps a seed grows into boundary pixels when segmenting (bench/objects.py)
SEED_SHARE = 0.1  # seeds under this share of the painted objects' median core are dropped (bench/objects.py)
MIN_SEED = 3  # ... and never fewer pixels than this
LABEL_SUFFIXES = (".tif", ".tiff", ".png", ".npy")


# --------------------------------------------------------------------------- reading


def read_instance_labels(path: str | os.PathLike, image_shape: tuple[int, int] | None = None,
                         image_name: str | None = None) -> np.ndarray:
    """A label image as uint32 with ``UNANNOTATED`` where the file holds its dtype's largest value.

    One sentence naming the file for every problem (core.io.label_images.checked_ids: float or
    negative values, ids of 2^32 and more, not 2-D; here also not readable), and, naming both files,
    a label image that is not its image's size.
    """
    from core.io.label_images import checked_ids

    path = Path(path)
    raw = _read_array(path)
    unannotated = np.iinfo(raw.dtype).max if raw.dtype.kind in "ui" else None
    is_unannotated = raw == unannotated if unannotated is not None else None
    try:
        ids = checked_ids(path, raw if is_unannotated is None else np.where(is_unannotated, 0, raw))
    except ValueError as exc:
        raise TrainingDataError(str(exc)) from None
    if image_shape is not None and ids.shape != tuple(image_shape[:2]):
        raise TrainingDataError(f"{path.name} is {ids.shape[1]}x{ids.shape[0]} pixels but its image "
                                f"{image_name or 'the image'} is {image_shape[1]}x{image_shape[0]}; a label image "
                                "must have its image's size.")
    ids = np.array(ids, np.uint32, copy=True)
    if is_unannotated is not None:
        ids[is_unannotated.reshape(ids.shape)] = UNANNOTATED
    return ids


def _read_array(path: Path) -> np.ndarray:
    try:
        suffix = path.suffix.lower()
        if suffix in (".tif", ".tiff"):
            import tifffile

            return np.asarray(tifffile.imread(path))
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        from PIL import Image

        with Image.open(path) as im:
            if im.mode in ("RGB", "RGBA", "P", "LA", "CMYK"):
                raise TrainingDataError(f"{path.name}: is a {im.mode} picture, not a label image of object ids "
                                        "(save it as a 16-bit grey TIFF or PNG).")
            return np.asarray(im)
    except TrainingDataError:
        raise
    except Exception as exc:  # noqa: BLE001 - every decoder's own error means "unreadable"
        raise TrainingDataError(f"{path.name}: is not a readable label image ({type(exc).__name__}: "
                                f"{str(exc).strip().splitlines()[0] if str(exc).strip() else 'no detail'}).") from None


# --------------------------------------------------------------------------- targets


@dataclass
class InstanceAnnotation:
    """One image's painted objects (uint32, ``UNANNOTATED`` where not annotated), and an optional
    class hint (uint8 index mask, 255 = not annotated: strokes or a class mask)."""

    objects: np.ndarray
    hint: np.ndarray | None = None

    @property
    def object_count(self) -> int:
        ids = np.unique(self.objects)
        return int(np.count_nonzero((ids != 0) & (ids != UNANNOTATED)))


def object_classes(objects: np.ndarray, hint: np.ndarray | None) -> dict[int, int]:
    """Each painted object's class: the majority class id the hint gives it (0 and 255 do not
    vote), else 1."""
    painted = (objects != 0) & (objects != UNANNOTATED)
    ids = np.unique(objects[painted])
    classes = {int(i): 1 for i in ids}
    if hint is None or not ids.size:
        return classes
    votes = painted & (hint != 0) & (hint != IGNORE)
    if votes.any():
        which = np.searchsorted(ids, objects[votes])
        table = np.zeros((ids.size, 256), np.int64)
        np.add.at(table, (which, hint[votes]), 1)
        for k in np.flatnonzero(table.any(1)):
            classes[int(ids[k])] = int(table[k].argmax())
    return classes


def instance_targets(objects: np.ndarray, classes: dict[int, int], boundary_class: int,
                     hint: np.ndarray | None = None, width: int = BOUNDARY_WIDTH) -> np.ndarray:
    """The uint8 training target of one image (see the module doc)."""
    target = np.full(objects.shape, IGNORE, np.uint8)
    target[objects == 0] = 0
    if hint is not None:
        target[(hint == 0) & (objects == UNANNOTATED)] = 0
    painted = (objects != 0) & (objects != UNANNOTATED)
    if not painted.any():
        return target
    # work in the box around the painted objects (plus the band), not the whole image
    ys, xs = np.nonzero(painted)
    y0, y1 = max(0, ys.min() - width - 1), min(objects.shape[0], ys.max() + width + 2)
    x0, x1 = max(0, xs.min() - width - 1), min(objects.shape[1], xs.max() + width + 2)
    box = objects[y0:y1, x0:x1]
    inside = painted[y0:y1, x0:x1]
    ids = np.unique(box[inside])
    lut = np.array([classes.get(int(i), 1) for i in ids], np.uint8)
    region = target[y0:y1, x0:x1]
    region[inside] = lut[np.searchsorted(ids, box[inside])]
    edge = np.zeros(box.shape, bool)  # object pixels with a 4-neighbour that is not the same object
    for a, b, ea, eb in ((box[1:], box[:-1], edge[1:], edge[:-1]), (box[:, 1:], box[:, :-1], edge[:, 1:], edge[:, :-1])):
        differ = a != b
        ea |= differ
        eb |= differ
    edge &= inside
    band = inside & (ndi.distance_transform_edt(~edge) < width) if edge.any() else edge
    region[band] = boundary_class
    return target


def _core_areas(objects: np.ndarray, target: np.ndarray, boundary: int) -> np.ndarray:
    """Pixels of each painted object inside its boundary band (0 for an object that is all band)."""
    painted = (objects != 0) & (objects != UNANNOTATED)
    ids, inverse = np.unique(objects[painted], return_inverse=True)
    core = (target[painted] != boundary) & (target[painted] != IGNORE)
    return np.bincount(inverse, weights=core, minlength=len(ids))


@dataclass
class InstanceTargets:
    """What training learns from a set of instance annotations."""

    targets: list[np.ndarray]  # uint8 index masks, 255 = not annotated
    spec: InstanceSpec
    objects: int  # painted objects in all
    kept: list[int]  # indices of the annotations that have objects
    skipped: list[int]  # indices of annotations with no object (skipped and counted)


def build_targets(annotations: list[InstanceAnnotation], width: int = BOUNDARY_WIDTH, grow: int | None = None,
                  min_seed: int | None = None) -> InstanceTargets:
    """Targets of every annotation with objects, one boundary class for all (the highest object
    class + 1), and the InstanceSpec a model trained on them segments with: seeds grow ``grow``
    steps (default: the band's width + 1) and are kept from ``min_seed`` pixels (default: a tenth of
    the painted objects' median core, the part inside the band, so it follows the objects' size)."""
    per_image, kept, skipped, count = [], [], [], 0
    for index, ann in enumerate(annotations):
        classes = object_classes(ann.objects, ann.hint)
        if not classes:
            skipped.append(index)
            continue
        per_image.append(classes)
        kept.append(index)
        count += len(classes)
    if not kept:
        raise TrainingDataError("no label image has a painted object to learn from.")
    used = sorted({c for classes in per_image for c in classes.values()})
    boundary = max(used) + 1
    if boundary > 254:
        raise TrainingDataError(f"object class {max(used)} leaves no class id for the boundary (at most 253 classes).")
    targets = [instance_targets(annotations[i].objects, classes, boundary, annotations[i].hint, width)
               for i, classes in zip(kept, per_image)]
    if min_seed is None:
        cores = np.concatenate([_core_areas(annotations[i].objects, t, boundary) for i, t in zip(kept, targets)])
        min_seed = max(MIN_SEED, int(round(SEED_SHARE * float(np.median(cores))))) if cores.size else MIN_SEED
    spec = InstanceSpec(boundary, tuple(range(1, boundary)), grow=width + 1 if grow is None else grow,
                        min_seed=min_seed, boundary_width=width)
    return InstanceTargets(targets, spec, count, kept, skipped)
