"""Fitting a model's edge refinement on annotated images it was not trained on.

Why: whether the guided filter of ``core.model.refine`` helps, and how far it may move an edge,
depends on the images (flat-coloured shapes, textured tissue, noisy micrographs).  Rather than
guess, it is measured: every candidate setting is scored by mean IoU (classes 1..K-1, as in
training's validation) on held-out annotated images, and the best one is stored in the
checkpoint's ``inference`` metadata if it beats no refinement by ``MIN_GAIN``.  The weights are
not touched.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from core.model.checkpoints import Checkpoint, save_checkpoint
from core.segment.inference import Cancelled, Segmenter
from core.model.refine import GuidedFilter, Refinement, guide_from_pixels
from core.metrics import IoUAccumulator

RADII = (2, 4, 8, 16, 32)
EPSILONS = (1e-4, 1e-3, 1e-2)
MIN_GAIN = 0.005  # adopt refinement only when it raises mIoU by at least this much

Sample = tuple[np.ndarray, np.ndarray]  # (image, class ids)


@dataclass
class Calibration:
    refine: Refinement | None  # the adopted setting; None: refinement does not help these images
    baseline: float  # mIoU without refinement
    scores: dict[Refinement, float] = field(default_factory=dict)
    images: int = 0
    tta: bool = False

    @property
    def best(self) -> float:
        return self.scores[self.refine] if self.refine else self.baseline

    def to_json(self) -> dict:
        return {
            "images": self.images,
            "tta": self.tta,
            "miou_unrefined": round(self.baseline, 4),
            "miou": round(self.best, 4),
            "refine": self.refine.to_json() if self.refine else None,
            "candidates": [{**r.to_json(), "miou": round(v, 4)} for r, v in self.scores.items()],
        }

    def summary(self) -> str:
        if self.refine is None:
            best = max(self.scores.items(), key=lambda kv: kv[1], default=None)
            tried = f"; the best candidate ({best[0]}) reached {best[1]:.4f}" if best else ""
            return f"edge refinement off: mIoU {self.baseline:.4f} without it{tried} on {self.images} images"
        return (f"edge refinement on ({self.refine}): mIoU {self.baseline:.4f} -> {self.best:.4f} "
                f"on {self.images} images")


def candidates(radii: Sequence[int] = RADII, epsilons: Sequence[float] = EPSILONS) -> list[Refinement]:
    return [Refinement(r, e) for r in radii for e in epsilons]


def calibrate(seg: Segmenter, samples: Sequence[Sample], tta: bool | None = None,
              settings: Sequence[Refinement] | None = None, min_gain: float = MIN_GAIN,
              progress: Callable[[int, int], None] | None = None,
              should_cancel: Callable[[], bool] | None = None) -> Calibration:
    """Score no refinement and each of ``settings`` on ``samples``; pick the best (see MIN_GAIN)."""
    if not samples:
        raise ValueError("calibration needs at least one annotated image")
    settings = list(settings or candidates())
    tta = seg.tta if tta is None else bool(tta)
    k = seg.num_classes
    plain, refined = IoUAccumulator(k), [IoUAccumulator(k) for _ in settings]
    for n, (image, labels) in enumerate(samples):
        if should_cancel is not None and should_cancel():
            raise Cancelled()
        probs = seg.probabilities(image, tta=tta)
        plain.update(probs.max(0).indices.numpy(), labels)
        guide = guide_from_pixels(seg.as_input(image))
        for setting, acc in zip(settings, refined):
            acc.update(GuidedFilter(guide, setting)(probs).max(0).indices.numpy(), labels)
        if progress:
            progress(n + 1, len(samples))
    foreground = range(1, k)
    baseline = _score(plain, foreground)
    scores = {s: _score(acc, foreground) for s, acc in zip(settings, refined)}
    best = max(scores, key=scores.get, default=None)
    adopted = best if best is not None and scores[best] >= baseline + min_gain else None
    return Calibration(adopted, baseline, scores, len(samples), tta)


def _score(acc: IoUAccumulator, classes: Iterable[int]) -> float:
    value = acc.mean_iou(classes)
    return 0.0 if math.isnan(value) else value


def write_calibrated(ck: Checkpoint, dst: str | os.PathLike, calibration: Calibration,
                     command: str | None = None) -> Path:
    """Write checkpoint ``ck`` to ``dst`` (its own file is replaced atomically) with the fitted
    refinement as its default; the weights are written unchanged."""
    record = {**calibration.to_json(), "command": command}
    extra = {**ck.metadata, "inference": {"tta": ck.tta, "refine": calibration.refine.to_json()
                                          if calibration.refine else None}, "calibration": record}
    return save_checkpoint(dst, ck.build(), ck.classes, ck.normalization, extra=extra)
