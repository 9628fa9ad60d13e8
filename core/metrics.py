"""Segmentation scores: IoU pooled over the pixels of many images.

Why pooled: a per-image mean lets one small image, or one class missing from it, swing the score;
a confusion matrix summed over every pixel weighs each pixel once.  A class counts only where it
occurs in the ground truth or the prediction (its union is not empty): a class that is in neither
is left out rather than scored 0 or 1.  Used by training (checkpoint choice), calibration, the
self-test and the benchmarks.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

SHAPE_CLASS_COUNT = 5  # background + the four shapes of core.training.synthetic


class IoUAccumulator:
    """Confusion matrix over many images, so IoU is pooled over pixels, not averaged per image.

    Target pixels outside ``0..num_classes-1`` (e.g. 255 'ignore') are skipped.
    """

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.confusion = np.zeros((num_classes, num_classes), np.int64)  # [target, pred]

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        pred, target = np.asarray(pred).ravel(), np.asarray(target).ravel()
        if pred.shape != target.shape:
            raise ValueError(f"pred has {pred.size} pixels, target {target.size}")
        n = self.num_classes
        keep = (target >= 0) & (target < n)
        pred, target = pred[keep].astype(np.int64), target[keep].astype(np.int64)
        if pred.size and (pred.min() < 0 or pred.max() >= n):
            raise ValueError(f"prediction holds class ids outside 0..{n - 1}")
        self.confusion += np.bincount(target * n + pred, minlength=n * n).reshape(n, n)

    def per_class_iou(self) -> dict[int, float]:
        """IoU of every class seen in a prediction or a target; absent classes are left out."""
        tp = np.diag(self.confusion)
        union = self.confusion.sum(axis=0) + self.confusion.sum(axis=1) - tp
        return {c: float(tp[c] / union[c]) for c in range(self.num_classes) if union[c] > 0}

    def mean_iou(self, classes: Iterable[int] | None = None) -> float:
        """Mean IoU over ``classes`` (default: all) that occurred; NaN when none did."""
        ious = self.per_class_iou()
        wanted = range(self.num_classes) if classes is None else classes
        values = [ious[c] for c in wanted if c in ious]
        return float(np.mean(values)) if values else float("nan")


def mean_iou(
    pred: np.ndarray | Sequence[np.ndarray], target: np.ndarray | Sequence[np.ndarray],
    classes: Iterable[int] = (1, 2, 3, 4), num_classes: int = SHAPE_CLASS_COUNT,
) -> tuple[float, dict[int, float]]:
    """(mean IoU, {class: IoU}) over ``classes``, pooled over one image or a list of images."""
    acc = IoUAccumulator(num_classes)
    if isinstance(pred, np.ndarray) and isinstance(target, np.ndarray):
        pred, target = [pred], [target]
    for p, t in zip(pred, target, strict=True):
        acc.update(p, t)
    classes = list(classes)
    ious = acc.per_class_iou()
    return acc.mean_iou(classes), {c: ious[c] for c in classes if c in ious}
