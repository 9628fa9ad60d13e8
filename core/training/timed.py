"""``unetseg train --time-budget SECONDS``: learn from strokes (or whole masks) for at most that
wall time, keep the best weights it had, write them.

The live trainer (core.training.live) does the work, so the command and the app's Live Training
learn the same way from the same defaults.  Images whose mask is missing or holds no annotated
pixel are skipped and counted; everything else that is wrong stops the run with one sentence
naming the file (core.training.loop.load_pairs, core.training.sparse.stroke_set).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from core.model.checkpoints import save_checkpoint
from core.training.live import LiveConfig, LiveSnapshot, LiveTrainer
from core.io.mask_naming import find_mask
from core.training import raw_input
from core.training.loop import TrainingDataError, read_pairs

# the budget is wall time: loading, the last snapshot and writing the file are paid out of it
RESERVE = 0.15  # share of the budget kept for them (at least MIN_RESERVE seconds)
MIN_RESERVE = 0.5


@dataclass
class TimedResult:
    path: Path
    kept: LiveSnapshot
    snapshots: int
    images: int
    skipped: list[str]  # images without a mask or without a stroke
    seconds: float


def stroke_pairs(images: Path, masks: Path) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(image, mask) pairs, and the names of images that have no mask file (skipped, not an error)."""
    from core.io.images import list_images

    for folder, what in ((Path(images), "images"), (Path(masks), "masks")):
        if not folder.is_dir():
            raise TrainingDataError(f"{folder}: the {what} folder does not exist.")
    found = list_images(Path(images))
    if not found:
        raise TrainingDataError(f"{images}: the images folder holds no images.")
    pairs, missing = [], []
    for image in found:
        mask = find_mask(Path(masks), image)
        if mask is None:
            missing.append(image.name)
        else:
            pairs.append((image, mask))
    return pairs, missing


def train_timed(images: Path, masks: Path, out: Path, budget: float, config: LiveConfig | None = None,
                classes=None, log: Callable[[str], None] = print,
                on_snapshot: Callable[[LiveSnapshot], None] | None = None, extra: dict | None = None) -> TimedResult:
    """Train for at most ``budget`` seconds of wall time (from this call) and write the kept weights."""
    started = time.perf_counter()
    config = config or LiveConfig()
    pairs, missing = stroke_pairs(images, masks)
    if not pairs:
        raise TrainingDataError(f"{masks}: holds no mask for any of the {len(missing)} images.")
    images_read, labels, _ = read_pairs(pairs, len(classes) if classes else None, classes)
    # 8-bit photos as their RGB view; anything else as its raw channels (the trainer scales them)
    raw = raw_input.wants_raw(images_read, None, None)
    data = [(im.pixels if raw else im.rgb, lab) for im, lab in zip(images_read, labels)]
    reserve = max(MIN_RESERVE, RESERVE * budget)
    wall_end = started + budget - reserve
    remaining = wall_end - time.perf_counter()
    if remaining <= 0:
        raise TrainingDataError(f"a time budget of {budget:g} s is used up by loading the images; give more.")
    # a snapshot at least every tenth of the budget, so the kept weights are never far behind
    config = replace(config, snapshot_every=min(config.snapshot_every, max(0.5, remaining / 10)))
    trainer = LiveTrainer(config, classes=classes, log=log)
    trainer.set_data(data, names=[im.name for im in images_read])  # a stack's planes: one item each
    skipped = missing + trainer.skipped
    if skipped:
        log(f"skipped {len(skipped)} image{'s' if len(skipped) != 1 else ''} without strokes: "
            f"{', '.join(skipped[:5])}{' ...' if len(skipped) > 5 else ''}")
    snapshots = []

    def published(snap: LiveSnapshot) -> None:
        snapshots.append(snap)
        if on_snapshot:
            on_snapshot(snap)

    kept = trainer.run(published, should_stop=lambda: time.perf_counter() >= wall_end, time_budget=remaining)
    model = kept.checkpoint.build()
    record = dict(kept.checkpoint.metadata["training"])
    record.update(train_images=kept.images, val_images=0, skipped_images=len(skipped),
                  kept_snapshot=kept.index, selection="held-out strokes" if kept.held_out_miou is not None
                  else "newest", **(extra or {}))
    if kept.held_out_miou is not None:
        record["held_out_miou"] = round(kept.held_out_miou, 4)
    path = save_checkpoint(out, model, kept.checkpoint.classes, kept.checkpoint.normalization,
                           extra={"training": record, "inference": {"tta": False, "refine": None}})
    return TimedResult(path, kept, len(snapshots), kept.images, skipped, time.perf_counter() - started)
