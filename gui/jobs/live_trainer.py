"""Live Training's trainer on a worker thread (core.training.live.LiveTrainer), and saving one
of its snapshots as a weights file.

The trainer runs until stopped; each published snapshot reaches the GUI thread as the task's
``item``.  Strokes painted while it runs are handed over with ``set_data`` (the trainer takes
them between steps), pause is an event the trainer polls (it takes effect within 1 s), and a
roll back makes training continue from an earlier snapshot.  torch is imported on first use.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PySide6.QtCore import QObject, Signal

from core.classes import ClassInfo
from gui.infra.workers import Reporter, Task, start_task

Item = tuple[np.ndarray, np.ndarray]  # (pixels H x W x C, strokes H x W uint8, 255 = not annotated)


class LiveRunner(QObject):
    snapshot = Signal(object)  # core.training.live.LiveSnapshot
    failed = Signal(str)
    ended = Signal()  # stopped, finished or failed: the worker is gone

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._task: Task | None = None
        self._trainer: Any = None
        self._hold = threading.Event()

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self, config: Any, classes: Sequence[ClassInfo] | None, items: list[Item],
              names: list[str] | None = None, scale_by: dict | None = None) -> None:
        """Start training on ``items``; raises the trainer's TrainingDataError (one sentence, e.g.
        fewer than two classes annotated) before any thread starts.  ``scale_by``: the slide each
        item cut from one was read from (LiveTrainer.set_data)."""
        from core.training.live import LiveTrainer

        if self._task is not None:
            return
        trainer = LiveTrainer(config, list(classes) if classes else None)
        trainer.set_data(items, names, scale_by=scale_by)
        self._trainer, hold = trainer, self._hold
        hold.clear()

        def run(rep: Reporter):
            return trainer.run(on_snapshot=rep.item, should_stop=rep.cancelled, is_paused=hold.is_set)

        task = self._task = start_task(run, "live-training")
        task.item.connect(lambda snap: task is self._task and self.snapshot.emit(snap))
        task.failed.connect(lambda message: self._end(task, message))
        task.finished.connect(lambda _last: self._end(task))
        task.cancelled.connect(lambda: self._end(task))

    def set_data(self, items: list[Item], names: list[str] | None = None,
                 classes: Sequence[ClassInfo] | None = None, scale_by: dict | None = None) -> None:
        """New strokes while training runs (raises TrainingDataError as ``start`` does); ``classes``:
        the user's grown class list, when a class was added since (its strokes join the training)."""
        if self._trainer is not None:
            self._trainer.set_data(items, names, classes=list(classes) if classes is not None else None,
                                   scale_by=scale_by)

    def hold(self, on: bool) -> None:
        """Pause (the trainer stops stepping within 1 s) or resume."""
        (self._hold.set if on else self._hold.clear)()

    def roll_back(self, snapshot: Any) -> int | None:
        """Continue training from ``snapshot``: the trainer's branch from now on (snapshots with a
        smaller one were taken before), or None when the model cannot continue from it (it reads
        other channels than the images training now: another run's)."""
        from core.training.loop import TrainingDataError

        trainer = self._trainer
        if trainer is None:
            return 0
        try:
            return int(trainer.roll_back(snapshot) or 0)
        except TrainingDataError:
            return None

    def score(self, snapshot: Any) -> float | None:
        """``snapshot``'s held-out score on the running trainer's current held-out strokes (None:
        not running, or not scored on them)."""
        trainer = self._trainer
        score = getattr(trainer, "score", None)
        return score(snapshot) if score is not None else None

    @property
    def started_from(self) -> str | None:
        """What the running trainer's weights started from ("scratch", or the model's name)."""
        return getattr(self._trainer, "started_from", None)

    @property
    def left_out(self) -> list[str]:
        """One sentence per image the latest strokes could not be trained on."""
        return list(getattr(self._trainer, "left_out", []) or [])

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._hold.clear()

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Stop and wait for the worker (the window closes, or Live Training is turned off)."""
        task = self._task
        if task is not None:
            self.stop()
            task.wait(timeout_ms)
            self._end(task)

    def _end(self, task: Task, message: str | None = None) -> None:
        if task is not self._task:
            return
        self._task = self._trainer = None
        if message:
            self.failed.emit(message)
        self.ended.emit()


def save_snapshot(snapshot: Any, path: Path, images: Sequence[tuple[str, int]], seconds: float | None = None,
                  run: int | None = None) -> Path:
    """Write ``snapshot``'s model with its classes and a record of what trained it: each image's
    name and annotated pixel count, the steps, the time and the held-out score (and on what);
    ``run``: the run's number as the app showed it (default: the trainer's)."""
    from core.model.checkpoints import save_checkpoint

    ckpt = snapshot.checkpoint
    keep = {k: v for k, v in ckpt.metadata.items()
            if k not in ("format", "version", "arch", "in_channels", "num_classes", "classes", "normalization")}
    record = {
        "mode": "live training from strokes in the UNetSeg app",
        # the strokes painted when saved (held-out ones included); what this checkpoint trained on:
        "images": [{"image": name, "annotated_pixels": int(n)} for name, n in images],
        "annotated_pixels": int(sum(n for _, n in images)),
        "trained_pixels": int(snapshot.annotated_pixels),
        "steps": int(snapshot.steps),
        "seconds": round(float(snapshot.seconds if seconds is None else seconds), 1),
        "held_out_miou": snapshot.held_out_miou,  # measured on the held-out strokes only
        "held_out_pixels": int(getattr(snapshot, "held_out_pixels", 0)),
        "held_out_set": getattr(snapshot, "held_out_set", None),
        "snapshot": int(snapshot.index),
        "run": int(run if run is not None else getattr(snapshot, "run", 0)),
        "saved": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    return save_checkpoint(path, ckpt.build(), list(ckpt.classes), ckpt.normalization,
                           {**keep, "live_training": record})
