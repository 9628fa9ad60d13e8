"""``unetseg train --instances``: learn to separate touching objects from painted label images.

Each image in ``images`` pairs with its label image in ``masks`` by the naming rule
(core.io.mask_naming.find_instances: ``<stem>_instances.tif``, or ``<stem>.tif`` as any mask);
a class hint beside it (``<stem>_strokes.png``, in the masks folder or beside the image, or a
class mask ``<stem>_mask.png``) adds background strokes and the objects' classes
(core.training.instance_targets).  The targets are an index mask with one extra class, the
boundary, so the trainers learn them unchanged: with ``--time-budget`` the live trainer
(core.training.live, as ``train_timed``), otherwise the epoch trainer (core.training.loop) on
the targets written to a temporary folder.  The checkpoint records the instance step
(``instances`` metadata, core.objects.instances.InstanceSpec), so ``Segmenter`` makes objects.

Images without a label image, and label images without a painted object, are skipped and counted;
everything else that is wrong stops the run with one sentence naming the file(s).
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from core.classes import ClassInfo, default_classes, normalize_classes
from core.training.instance_targets import InstanceAnnotation, InstanceTargets, build_targets, read_instance_labels
from core.training.annotation import TrainingDataError, annotated_images

BOUNDARY_NAME = "object boundary"
BOUNDARY_COLOR = (255, 255, 255)


@dataclass
class InstanceData:
    """Decoded images and the targets built from their label images."""

    pairs: list[tuple[Path, Path]]  # (image, label image) of the images trained on
    images: list  # core.training.raw_input.TrainingImage of those images
    built: InstanceTargets
    skipped: list[str]  # images without a label image or without a painted object
    classes: list[ClassInfo]  # the model's classes: the user's, then the boundary

    @property
    def spec(self):
        return self.built.spec


def find_instance_pairs(images: Path, masks: Path) -> tuple[list[tuple[Path, Path, Path | None]], list[str]]:
    """(image, label image, class hint or None) per image that has a label image; the names of those
    that have none."""
    from core.io.mask_naming import find_class_hint, find_instances

    pairs, missing = annotated_images(images, masks, find_instances)
    return [(image, labels, find_class_hint((Path(masks), image.parent), image, exclude=labels))
            for image, labels in pairs], missing


def read_instance_data(images: Path, masks: Path, named: list[ClassInfo] | None = None,
                       log: Callable[[str], None] = print) -> InstanceData:
    """Decode every pair and build the targets (see the module doc)."""
    from core.io.images import ImageReadError, load_image
    from core.io.masks import MaskError, read_mask
    from core.training.raw_input import TrainingImage

    triples, missing = find_instance_pairs(images, masks)
    if not triples:
        raise TrainingDataError(f"{masks}: holds no label image for any of the {len(missing)} images "
                                "(<stem>_instances.tif or <stem>.tif).")
    decoded, annotations = [], []
    for image_path, label_path, hint_path in triples:
        try:
            im = load_image(image_path)
        except ImageReadError as exc:
            raise TrainingDataError(str(exc)) from None
        objects = read_instance_labels(label_path, im.rgb.shape[:2], image_path.name)
        hint = None
        if hint_path is not None:
            try:
                hint = read_mask(hint_path, shape=im.rgb.shape[:2], image_name=image_path.name)
            except MaskError as exc:
                raise TrainingDataError(str(exc)) from None
        decoded.append(TrainingImage(image_path, im.rgb, im.pixels, im.channel_names, im.nan_count))
        annotations.append(InstanceAnnotation(objects, hint))
    if not any(a.object_count for a in annotations):
        raise TrainingDataError(f"{masks}: no label image has a painted object (ids other than 0 and the "
                                "'not annotated' value) to learn from.")
    built = build_targets(annotations)
    skipped = missing + [triples[i][1].name for i in built.skipped]
    if built.skipped:
        log(f"skipped {len(built.skipped)} label image{'s' if len(built.skipped) != 1 else ''} without objects: "
            f"{', '.join(triples[i][1].name for i in built.skipped[:5])}")
    kept = [triples[i] for i in built.kept]
    boundary = built.spec.boundary_class
    if named is not None and len(named) > boundary:
        raise TrainingDataError(f"the class list names {len(named)} classes but the objects use classes 1-{boundary - 1}; "
                                f"class {boundary} is the boundary the model learns.")
    classes = normalize_classes(named, boundary) if named else default_classes(boundary)
    classes = [*classes[:boundary], ClassInfo(boundary, BOUNDARY_NAME, BOUNDARY_COLOR)]
    return InstanceData([(i, lab) for i, lab, _ in kept], [decoded[i] for i in built.kept], built, skipped, classes)


def _extra(data: InstanceData) -> dict:
    return {"instances": data.spec.to_json()}


# --------------------------------------------------------------------------- --time-budget


def train_instances_timed(images: Path, masks: Path, out: Path, budget: float, config=None,
                          named: list[ClassInfo] | None = None, log: Callable[[str], None] = print,
                          on_snapshot=None, extra: dict | None = None):
    """Train for at most ``budget`` seconds of wall time (from this call) with the live trainer and
    write the kept weights with their instance settings; returns core.training.timed.TimedResult."""
    from core.model.checkpoints import save_checkpoint
    from core.training import raw_input
    from core.training.live import SCRATCH, LiveConfig, LiveTrainer
    from core.training.timed import MIN_RESERVE, RESERVE, TimedResult

    started = time.perf_counter()
    config = config or LiveConfig()
    data = read_instance_data(images, masks, named, log)
    raw = raw_input.wants_raw(data.images, None, None)
    items = [(im.pixels if raw else im.rgb, target) for im, target in zip(data.images, data.built.targets)]
    wall_end = started + budget - max(MIN_RESERVE, RESERVE * budget)
    remaining = wall_end - time.perf_counter()
    if remaining <= 0:
        raise TrainingDataError(f"a time budget of {budget:g} s is used up by loading the images; give more.")
    config = replace(config, snapshot_every=min(config.snapshot_every, max(0.5, remaining / 10)))
    trainer = LiveTrainer(config, classes=data.classes, log=log)
    trainer.set_data(items, names=[image.name for image, _ in data.pairs])
    log(f"learning {data.built.objects} painted object{'s' if data.built.objects != 1 else ''} in "
        f"{len(items)} image{'s' if len(items) != 1 else ''} (classes {', '.join(c.name for c in data.classes[1:])})")
    snapshots = []

    def published(snap) -> None:
        snapshots.append(snap)
        if on_snapshot:
            on_snapshot(snap)

    kept = trainer.run(published, should_stop=lambda: time.perf_counter() >= wall_end, time_budget=remaining)
    record = dict(kept.checkpoint.metadata["training"])
    record.update(train_images=kept.images, val_images=0, skipped_images=len(data.skipped), kept_snapshot=kept.index,
                  painted_objects=data.built.objects,
                  selection="held-out strokes" if kept.held_out_miou is not None else "newest", **(extra or {}))
    if kept.held_out_miou is not None:
        record["held_out_miou"] = round(kept.held_out_miou, 4)
    path = save_checkpoint(out, kept.checkpoint.build(), kept.checkpoint.classes, kept.checkpoint.normalization,
                           extra={"training": record, "inference": {"tta": False, "refine": None}, **_extra(data)})
    selection = "held-out strokes" if kept.held_out_miou is not None else "newest"
    why = f"held-out mIoU {kept.held_out_miou:.4f}" if kept.held_out_miou is not None else "the newest"
    return TimedResult(path, kept, len(snapshots), kept.images, data.skipped, time.perf_counter() - started,
                       selection, why, trainer.started_from or SCRATCH), data


# --------------------------------------------------------------------------- epochs


def train_instances_epochs(config, named: list[ClassInfo] | None = None, log: Callable[[str], None] = print,
                           progress=None, on_epoch=None):
    """The epoch trainer (core.training.loop.train, ``config`` its TrainConfig) on the targets,
    written as index PNGs (255 = not annotated) into a temporary folder beside hard links to the
    images; the saved checkpoint then gets its instance settings."""
    from core.classes import classes_to_json
    from core.io.masks import write_mask
    from core.model.metadata_edit import update_metadata
    from core.training.loop import train

    data = read_instance_data(config.images, config.masks, named, log)
    with tempfile.TemporaryDirectory(prefix="unetseg-instances-") as work:
        work = Path(work)
        (work / "images").mkdir()
        (work / "masks").mkdir()
        for (image, _), target in zip(data.pairs, data.built.targets):
            _link(image, work / "images" / image.name)
            write_mask(work / "masks" / f"{image.stem}.png", target, "index", data.classes)
        classes_file = work / "classes.json"
        classes_file.write_text(json.dumps(classes_to_json(data.classes)), encoding="utf-8")
        result = train(replace(config, images=work / "images", masks=work / "masks", classes_file=classes_file),
                       progress=progress, on_epoch=on_epoch, log=log)
    if result.path is not None:
        from core.model.metadata_edit import read_metadata

        record = dict(read_metadata(result.path).get("training") or {})
        if isinstance(record.get("config"), dict):  # the user's folders, not the temporary ones trained from
            record["config"] = {**record["config"], "images": str(config.images), "masks": str(config.masks),
                                "classes_file": None if config.classes_file is None else str(config.classes_file)}
        update_metadata(result.path, {**_extra(data), "training": {**record, "painted_objects": data.built.objects}})
    return result, data


def _link(src: Path, dst: Path) -> None:
    import os
    import shutil

    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def with_instances(checkpoint, spec):
    """A live snapshot's checkpoint (core.model.checkpoints.Checkpoint) that separates objects:
    the same weights with ``spec`` recorded, so ``Segmenter(with_instances(snap.checkpoint,
    built.spec))`` previews and applies objects (the app's Live Training of objects)."""
    return replace(checkpoint, metadata={**checkpoint.metadata, "instances": spec.to_json()})
