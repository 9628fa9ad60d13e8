"""``unetseg train --time-budget SECONDS``: learn from strokes (or whole masks) for at most that
wall time, keep the best weights it had, write them.

The live trainer (core.training.live) does the work, so the command and the app's Live Training
learn the same way from the same defaults.  Images whose mask is missing or holds no annotated
pixel are skipped and counted; everything else that is wrong stops the run with one sentence
naming the file (core.training.loop.load_pairs, core.training.sparse.stroke_set).

Which snapshot is kept, by what the strokes allow:

* every class has ``held_out_min`` (5) strokes or more: about a fifth of each class's strokes are
  held out, and the snapshot with the best held-out mIoU is kept (LiveTrainer.best);
* fewer, but at least 2 a class: 2-fold cross-validation over whole strokes.  Beside the model
  trained on every stroke, two more are trained, each on half of each class's strokes (every
  other stroke) and scored on the other half, to the same numbers of steps as the snapshots of
  the model that is kept.  Their mean score says how the recipe's quality moves with training
  steps on these images.  When it fell by more than ``MIN_DECLINE`` from its peak, the snapshot
  at the peak is kept; otherwise (still rising, or flat) the newest.  Nothing is ever scored on
  strokes its model trained on.  The two run on a thread of their own at a lower priority:
  on the spare core of a 2-core machine (training uses every core but one) they cost the kept
  model nothing; on a busy machine they yield to it;
* a class with a single stroke: the newest (nothing can be held out without losing the class).
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from core.model.checkpoints import save_checkpoint
from core.training.live import SCRATCH, LiveConfig, LiveSnapshot, LiveTrainer
from core.io.mask_naming import find_mask
from core.training import raw_input
from core.training.annotation import annotated_images
from core.training.loop import TrainingDataError, read_pairs
from core.training.sparse import strokes_per_class

# the budget is wall time: loading, the last snapshot and writing the file are paid out of it
RESERVE = 0.15  # share of the budget kept for them (at least MIN_RESERVE seconds)
MIN_RESERVE = 0.5
MIN_DECLINE = 0.01  # cross-validation keeps an earlier snapshot only when the score fell this much since
FOLDS = 2


@dataclass
class TimedResult:
    path: Path
    kept: LiveSnapshot
    snapshots: int
    images: int
    skipped: list[str]  # images without a mask or without a stroke
    seconds: float
    selection: str  # "held-out strokes", "cross-validation over strokes" or "newest"
    why: str  # the reason in words, for the command's last line
    started_from: str  # SCRATCH or what the weights started from (LiveTrainer.started_from)


def stroke_pairs(images: Path, masks: Path) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(image, mask) pairs, and the names of images that have no mask file (skipped, not an error)."""
    return annotated_images(images, masks, find_mask)


def train_timed(images: Path, masks: Path, out: Path, budget: float, config: LiveConfig | None = None,
                classes=None, log: Callable[[str], None] = print,
                on_snapshot: Callable[[LiveSnapshot], None] | None = None, extra: dict | None = None,
                tta: bool | None = None) -> TimedResult:
    """Train for at most ``budget`` seconds of wall time (from this call) and write the kept weights.
    ``tta``: the saved model segments with test-time augmentation by default (None: as the start
    model, else off)."""
    started = time.perf_counter()
    config = config or LiveConfig()
    pairs, missing = stroke_pairs(images, masks)
    if not pairs:
        raise TrainingDataError(f"{masks}: holds no mask for any of the {len(missing)} images.")
    images_read, labels, _ = read_pairs(pairs, len(classes) if classes else None, classes)
    channels = list(config.channels) if config.channels is not None else None
    # 8-bit photos as their RGB view; anything else (or picked channels) as its raw channels
    raw = raw_input.wants_raw(images_read, channels, None)
    if channels is not None:
        raw_input.picked_pixels(images_read, channels, TrainingDataError)  # every image has them: else one sentence
        config = replace(config, channel_names=tuple(images_read[0].channel_names))
    for message in raw_input.nan_messages(images_read) if raw else []:
        log(message)
    data = [(im.pixels if raw else im.rgb, lab) for im, lab in zip(images_read, labels)]
    names = [im.name for im in images_read]  # a stack's annotated planes: one item each
    reserve = max(MIN_RESERVE, RESERVE * budget)
    wall_end = started + budget - reserve
    per_class = strokes_per_class([lab for lab in labels])
    fewest = min(per_class.values()) if per_class else 0
    cross = config.held_out_share > 0 and config.held_out_fold is None and 2 <= fewest < config.held_out_min
    config = replace(config, nice=0)  # no window to leave room for: the command trains at its normal priority
    trainer = LiveTrainer(config, classes=classes, log=log)
    trainer.set_data(data, names=names)
    folds = CrossValidation(config, classes, data, names) if cross else None
    trainer.prepare()  # the model is built (and its libraries loaded) out of the training time
    remaining = wall_end - time.perf_counter()
    if remaining <= 0:
        raise TrainingDataError(f"a time budget of {budget:g} s is used up by loading the images; give more.")
    # a snapshot at least every tenth of the budget (every twentieth when cross-validating), so
    # the kept weights are never far behind
    trainer.config.snapshot_every = min(config.snapshot_every, max(0.5, remaining / (20 if cross else 10)))
    skipped = missing + trainer.skipped
    if skipped:
        log(f"skipped {len(skipped)} image{'s' if len(skipped) != 1 else ''} without strokes: "
            f"{', '.join(skipped[:5])}{' ...' if len(skipped) > 5 else ''}")
    snapshots: list[LiveSnapshot] = []

    def published(snap: LiveSnapshot) -> None:
        snapshots.append(snap)
        if folds is not None:
            folds.ask(snap)
        if on_snapshot:
            on_snapshot(snap)

    if folds is not None:
        log(f"{fewest} stroke{'s' if fewest != 1 else ''} in the class with the fewest: the snapshot is chosen by "
            f"{FOLDS}-fold cross-validation over strokes")
        folds.start()
    try:
        newest = trainer.run(published, should_stop=lambda: time.perf_counter() >= wall_end, time_budget=remaining)
    finally:
        if folds is not None:
            folds.stop()
    kept, selection, why = choose_snapshot(newest, snapshots, folds.scores if folds is not None else None,
                                           config.held_out_share)
    model = kept.checkpoint.build()
    record = dict(kept.checkpoint.metadata["training"])
    record.update(train_images=kept.images, val_images=0, skipped_images=len(skipped),
                  kept_snapshot=kept.index, selection=selection, selection_note=why, **(extra or {}))
    if kept.held_out_miou is not None:
        record["held_out_miou"] = round(kept.held_out_miou, 4)
    if folds is not None:
        record["cross_validation"] = {str(step): round(score, 4) for step, score in sorted(folds.scores.items())}
    use_tta = bool(trainer.init.tta if tta is None and trainer.init is not None and trainer.started_from != SCRATCH
                   else tta)
    path = save_checkpoint(out, model, kept.checkpoint.classes, kept.checkpoint.normalization,
                           extra={"training": record, "inference": {"tta": use_tta, "refine": None}})
    return TimedResult(path, kept, len(snapshots), kept.images, skipped, time.perf_counter() - started,
                       selection, why, trainer.started_from or SCRATCH)


def choose_snapshot(best: LiveSnapshot, snapshots: list[LiveSnapshot], scores: dict[int, float] | None,
                    held_out_share: float) -> tuple[LiveSnapshot, str, str]:
    """The snapshot to write, the rule that chose it, and why, in words.  ``best``: the
    trainer's best (by its own held-out strokes, if it had some); ``snapshots``: all it
    published, oldest first; ``scores``: cross-validated mIoU per step count (None: no
    cross-validation)."""
    last = snapshots[-1] if snapshots else best
    if best is not None and best.held_out_miou is not None:
        return best, "held-out strokes", f"held-out mIoU {best.held_out_miou:.4f}"
    if scores is None:
        reason = "nothing held out (--val-fraction 0)" if held_out_share <= 0 else "too few strokes to hold some out"
        return last, "newest", f"the newest; {reason}"
    if not scores:
        return last, "cross-validation over strokes", "the newest; cross-validation over strokes had no score yet"
    peak = max(scores, key=lambda step: (scores[step], step))
    measured = max(scores)
    if scores[measured] >= scores[peak] - MIN_DECLINE:
        return last, "cross-validation over strokes", (
            f"the newest; cross-validated mIoU {scores[measured]:.4f} at step {measured}, no decline "
            f"from its peak {scores[peak]:.4f}")
    kept = next(s for s in snapshots if s.steps == peak)
    return kept, "cross-validation over strokes", (
        f"cross-validated mIoU peaked at {scores[peak]:.4f} at step {peak}, {scores[measured]:.4f} by step {measured}")


class CrossValidation:
    """The two cross-validation models, trained on their own thread to the step counts of the
    kept model's snapshots (in order; a step count they reach too late is skipped)."""

    def __init__(self, config: LiveConfig, classes, data, names):
        fold = replace(config, threads=1, nice=config.nice + 10, snapshot_every=1e9, keep=1)
        self.trainers = [LiveTrainer(replace(fold, held_out_fold=(j, FOLDS), seed=config.seed + 1 + j),
                                     classes=classes) for j in range(FOLDS)]
        for trainer in self.trainers:
            trainer.set_data(data, names)
        self.scores: dict[int, float] = {}  # steps -> mean held-out mIoU of the folds
        self._asked: queue.Queue[int] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="unetseg-cross-validation", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def ask(self, snap: LiveSnapshot) -> None:
        self._asked.put(snap.steps)

    def stop(self) -> None:
        self._stop.set()
        self._asked.put(-1)
        self._thread.join()

    def _work(self) -> None:
        while not self._stop.is_set():
            steps = self._asked.get()
            if steps < 0:
                return
            results = []
            if any(trainer.steps >= steps for trainer in self.trainers):
                continue  # asked twice for one step count
            for trainer in self.trainers:
                got: list[LiveSnapshot] = []
                trainer.run(got.append, lambda t=trainer: self._stop.is_set() or t.steps >= steps)
                if self._stop.is_set() or not got or got[-1].steps != steps or got[-1].held_out_miou is None:
                    return
                results.append(got[-1].held_out_miou)
            self.scores[steps] = float(np.mean(results))
