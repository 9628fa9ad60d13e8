"""One training run as a worker-thread job: what to train, the function the task runs, and
what came out of it.

The job stages the annotated pairs (core.training.stage) and calls core.training.loop.train with
the task's progress and cancel flag; per-epoch reports, log lines and the final outcome
travel to the GUI thread as ``Reporter.item`` payloads.  The outcome is sent as an item too,
because a cancelled task reports only ``cancelled`` and the model kept so far still matters.
torch is imported inside the job, never when this module is imported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from core.classes import ClassInfo
from gui.infra.workers import Reporter

FINE_TUNE, NEW_SMALL, NEW_LARGE = "finetune", "small", "large"


@dataclass
class TrainingJob:
    pairs: list[tuple[Path, Path]]
    classes: list[ClassInfo]
    out: Path
    arch: str
    init: str | None  # a weights file or built-in name to fine-tune; None trains from scratch
    epochs: int
    patch: int
    batch: int
    lr: float
    device: str = "auto"
    steps_per_epoch: int | None = None
    augment: bool = False  # random scale and photometric change per crop (core.training.augment)
    source: str = ""  # where the images came from, for the checkpoint's recipe
    channels: list[int] | None = None  # the image channels the model sees, in order (None: all)


@dataclass
class TrainingOutcome:
    path: Path | None
    best_miou: float
    best_epoch: int
    epochs_run: int
    epochs: int
    stopped_early: bool
    train_images: int = 0
    val_images: int = 0
    seconds: float = 0.0
    history: list = field(default_factory=list)
    refinement: str = ""  # what fitting edge refinement on the validation images found
    note: str = ""  # which epoch was kept and why (core.training.checkpoint_choice), shown as it is


def describe_job(job: TrainingJob) -> str:
    start = f"fine-tune {Path(job.init).name}" if job.init else f"train a new UNet{job.arch.title()}"
    return f"UNetSeg app: {start} on {len(job.pairs)} annotated images in {job.source}"


def run_training(job: TrainingJob, rep: Reporter) -> TrainingOutcome:
    """The task function: stage, train, report; returns (and sends) the outcome."""
    from core.training.loop import TrainConfig, train
    from core.training.stage import staged_pairs

    started = time.monotonic()
    with staged_pairs(job.pairs, job.classes) as (images, masks):
        rep.check()
        config = TrainConfig(images=images, masks=masks, out=job.out, arch=job.arch, init=job.init,
                             epochs=job.epochs, patch=job.patch, batch=job.batch, lr=job.lr,
                             device=job.device, steps_per_epoch=job.steps_per_epoch,
                             augment=job.augment, channels=job.channels, command=describe_job(job))
        result = train(config, progress=rep.progress, on_epoch=lambda r: rep.item(("epoch", r)),
                       should_cancel=rep.cancelled, log=lambda line: rep.item(("log", str(line))))
    outcome = TrainingOutcome(result.path, result.best_miou, result.best_epoch, result.epochs_run,
                              job.epochs, result.stopped_early, seconds=time.monotonic() - started,
                              history=list(result.history),
                              refinement=result.calibration.summary() if result.calibration else "",
                              note=result.note)
    if result.path is not None:
        from core.training.record import record_dataset

        try:  # the model is saved either way; this only adds to what it says about itself
            record_dataset(result.path, "training", job.pairs, job.source or "images annotated in UNetSeg")
        except (ValueError, OSError) as exc:
            rep.item(("log", f"could not record the data set in {result.path.name}: {exc}"))
        outcome.train_images, outcome.val_images = _split_sizes(result.path)
    rep.item(("outcome", outcome))
    return outcome


def _split_sizes(path: Path) -> tuple[int, int]:
    """How many images trained and validated, from the recipe the checkpoint carries."""
    from core.model.checkpoints import CheckpointError, load_checkpoint

    try:
        recipe = load_checkpoint(path).metadata.get("training", {})
        return int(recipe.get("train_images", 0)), int(recipe.get("val_images", 0))
    except (CheckpointError, OSError, TypeError, ValueError):
        return 0, 0


def outcome_text(outcome: TrainingOutcome) -> str:
    """What the dialog says when a run ends (finished, or stopped with a model kept)."""
    if outcome.path is None:
        return "Training stopped before any model was saved."
    measured = ("validation mIoU" if outcome.val_images else
                "mIoU on the training images (too few images to hold some out)")
    where = f"Saved to {outcome.path}"
    if outcome.stopped_early:
        return (f"Stopped early after {outcome.epochs_run} of {outcome.epochs} epochs. The best model "
                f"so far is kept — {measured} {outcome.best_miou:.3f}.\n{where}")
    refinement = f"\n{outcome.refinement[0].upper()}{outcome.refinement[1:]}." if outcome.refinement else ""
    return (f"Training finished in {_duration(outcome.seconds)}: {measured} {outcome.best_miou:.3f} "
            f"(best at epoch {outcome.best_epoch} of {outcome.epochs}).{refinement}\n{where}")


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
