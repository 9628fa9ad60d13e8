"""Live Training of objects: the objects painted in the app (a document's object layer,
core.document.objects) and its strokes, as the live trainer's targets.

Why a module of its own: the app, the bench (bench/objects_live.py) and the tests must build the
same targets, and ``unetseg train --instances`` already says what they are
(core.training.instance_targets): every painted object whole, with a boundary band on its edge,
background where a stroke of class 0 lies, and nothing learnt from unpainted pixels.  Here the
object layer's 0 ("no object") is *not annotated*, not background: only strokes say background.
An object's class is the majority of the strokes under it, then of the class labels under it (what
painting it wrote, core.document.objects), else 1.  An image with strokes but no objects adds its
background strokes (its other strokes draw no outline, so they teach nothing here).

Every snapshot the trainer publishes from these targets is the same network as for classes; it
separates objects once the instance settings of the data it learnt are recorded in it
(``with_spec``: core.training.instance_training.with_instances), so the preview, Apply to Image and
a saved model (``unetseg segment --format instances measurements``) make the same objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from core.classes import ClassInfo, normalize_classes
from core.objects.instances import InstanceSpec
from core.training.instance_targets import UNANNOTATED, InstanceAnnotation, build_targets
from core.training.instance_training import BOUNDARY_COLOR, BOUNDARY_NAME, with_instances
from core.training.annotation import IGNORE


@dataclass
class PaintedImage:
    """One image as Live Training of objects reads it: ``objects`` (H x W ids, 0 = no object: not
    annotated), ``classes`` (the document's class labels, read under the objects only) and
    ``strokes`` (uint8, 255 = not annotated); any of them None when the image has none."""

    name: str
    pixels: Any  # what the trainer learns from (an H x W x C array or a LoadedImage: passed on as it is)
    objects: np.ndarray | None = None
    classes: np.ndarray | None = None
    strokes: np.ndarray | None = None

    @property
    def has_objects(self) -> bool:
        return self.objects is not None and bool(self.objects.any())


@dataclass
class ObjectData:
    """What the trainer gets when objects are painted (see the module doc)."""

    items: list[tuple[Any, np.ndarray]]  # (pixels, uint8 target with 255 = not annotated) per image used
    used: list[tuple[str, int]]  # (image name, annotated pixels) of each, as Save Model records them
    classes: list[ClassInfo]  # the model's: the user's up to the boundary, then the boundary
    spec: InstanceSpec
    objects: int  # painted objects in all
    object_images: int  # images with painted objects
    background_pixels: int  # pixels of background strokes in all
    object_classes: dict[int, int] = field(default_factory=dict)  # class id -> painted objects of it
    left_out: list[str] = field(default_factory=list)  # images with strokes that teach nothing here

    @property
    def boundary(self) -> int:
        return self.spec.boundary_class

    def describe(self, user_classes: Sequence[ClassInfo] = ()) -> str:
        """One line for the panel: "objects: 12 painted in 1 image (nucleus: 12); background strokes: 840 px"."""
        names = {c.id: c.name for c in user_classes}
        kinds = ", ".join(f"{names.get(c, f'class {c}')}: {n}" for c, n in sorted(self.object_classes.items()))
        where = f"{self.object_images} image" + ("s" if self.object_images != 1 else "")
        text = (f"objects: {self.objects} painted in {where} ({kinds}); "
                f"background strokes: {self.background_pixels:,} px")
        if not self.background_pixels:
            text += " (paint some with class 0 around the objects, or it never learns where objects end)"
        if self.left_out:
            text += (f". Strokes of other classes on {', '.join(self.left_out[:3])} draw no object, so they teach "
                     "nothing while objects are painted (their background strokes do)")
        return text


def object_hint(image: PaintedImage) -> np.ndarray:
    """The class hint of an image's objects: its strokes, and under objects where no stroke lies,
    the class labels there (core.training.instance_targets takes background and votes from it)."""
    shape = image.objects.shape
    hint = np.full(shape, IGNORE, np.uint8) if image.strokes is None else np.array(image.strokes, np.uint8)
    if image.classes is not None:
        under = (image.objects != 0) & (hint == IGNORE)
        hint[under] = np.asarray(image.classes)[under]
    return hint


def object_data(images: Sequence[PaintedImage], user_classes: Sequence[ClassInfo]) -> ObjectData | None:
    """The targets of ``images`` when at least one has painted objects, else None (Live Training
    then learns the strokes' classes, as ever).  Raises TrainingDataError (one sentence) as
    ``build_targets`` does."""
    painted = [im for im in images if im.has_objects]
    if not painted:
        return None
    annotations = []
    for im in painted:
        ids = np.asarray(im.objects)
        annotations.append(InstanceAnnotation(np.where(ids == 0, UNANNOTATED, ids).astype(np.uint32), object_hint(im)))
    built = build_targets(annotations)
    items, used, counts = [], [], {}
    for im, ann, target in zip(painted, annotations, built.targets):
        items.append((im.pixels, target))
        used.append((im.name, int(np.count_nonzero(target != IGNORE))))
    from core.training.instance_targets import object_classes

    for ann in annotations:
        for c in object_classes(ann.objects, ann.hint).values():
            counts[c] = counts.get(c, 0) + 1
    background = sum(int(np.count_nonzero(t == 0)) for t in built.targets)
    left_out = []
    for im in images:
        if im.has_objects or im.strokes is None:
            continue
        strokes = np.asarray(im.strokes)
        back = strokes == 0
        if back.any():  # background strokes of an image without objects still say where objects are not
            target = np.where(back, np.uint8(0), np.uint8(IGNORE))
            items.append((im.pixels, target))
            used.append((im.name, int(np.count_nonzero(back))))
            background += int(np.count_nonzero(back))
        if ((strokes != 0) & (strokes != IGNORE)).any():
            left_out.append(im.name)
    boundary = built.spec.boundary_class
    classes = [*normalize_classes(list(user_classes), boundary), ClassInfo(boundary, BOUNDARY_NAME, BOUNDARY_COLOR)]
    return ObjectData(items, used, classes, built.spec, built.objects, len(painted), background, counts, left_out)


def with_spec(snapshot: Any, spec: InstanceSpec, objects: int | None = None) -> Any:
    """``snapshot`` (core.training.live.LiveSnapshot; same uid) whose checkpoint separates objects
    with ``spec`` and records how many painted objects trained it."""
    checkpoint = with_instances(snapshot.checkpoint, spec)
    if objects is not None:
        training = dict(checkpoint.metadata.get("training") or {})
        training["painted_objects"] = int(objects)
        checkpoint = replace(checkpoint, metadata={**checkpoint.metadata, "training": training})
    return replace(snapshot, checkpoint=checkpoint)


def preview_spec(spec: InstanceSpec, factor: int) -> InstanceSpec:
    """The instance step for a class map predicted every ``factor`` pixels (a zoomed-out view): the
    growth and the smallest seed scaled down with it, so a view's objects look like the image's."""
    if factor <= 1:
        return spec
    return replace(spec, grow=max(1, -(-spec.grow // factor)), min_seed=max(1, spec.min_seed // (factor * factor)))
