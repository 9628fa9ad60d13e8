"""How well predicted objects match true ones: StarDist's matching and the aggregated Jaccard index.

``match(truth, pred, thresh=0.5)`` follows StarDist's ``stardist.matching.matching`` (criterion
"iou"): the IoU of every true/predicted pair from their overlap, a one-to-one assignment that
maximises the summed IoU (scipy's linear_sum_assignment) among pairs of IoU >= ``thresh``, then

* accuracy = TP / (TP + FP + FN)  (what the issue's 0.74 and 0.80 are),
* precision, recall, F1, the mean IoU of the matched pairs,
* panoptic quality = (sum of matched IoUs) / (TP + FP / 2 + FN / 2).

``aji(truth, pred)``: Kumar et al.'s aggregated Jaccard index (each true object with the
predicted one of highest IoU; unused predictions add to the union).
Label images: 0 is background, every other value one object (ids need not be consecutive).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Matching:
    thresh: float
    tp: int
    fp: int
    fn: int
    matched_iou: float  # sum over the matched pairs
    n_true: int
    n_pred: int

    @property
    def accuracy(self) -> float:
        return self.tp / max(1, self.tp + self.fp + self.fn)

    @property
    def precision(self) -> float:
        return self.tp / max(1, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return self.tp / max(1, self.tp + self.fn)

    @property
    def f1(self) -> float:
        return 2 * self.tp / max(1, 2 * self.tp + self.fp + self.fn)

    @property
    def mean_matched_iou(self) -> float:
        return self.matched_iou / self.tp if self.tp else 0.0

    @property
    def panoptic_quality(self) -> float:
        denominator = self.tp + self.fp / 2 + self.fn / 2
        return self.matched_iou / denominator if denominator else 0.0


def overlap(truth: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(true ids, predicted ids, their pixel counts, the overlap matrix) of two label images."""
    truth, pred = np.asarray(truth).ravel(), np.asarray(pred).ravel()
    if truth.shape != pred.shape:
        raise ValueError(f"the label images differ in size ({truth.size} and {pred.size} pixels)")
    t_ids, t_inv = np.unique(truth, return_inverse=True)
    p_ids, p_inv = np.unique(pred, return_inverse=True)
    pairs = t_inv.astype(np.int64) * len(p_ids) + p_inv
    counts = np.bincount(pairs, minlength=len(t_ids) * len(p_ids)).reshape(len(t_ids), len(p_ids))
    t_keep, p_keep = t_ids != 0, p_ids != 0
    t_area, p_area = counts.sum(1)[t_keep], counts.sum(0)[p_keep]
    return t_ids[t_keep], p_ids[p_keep], (t_area, p_area), counts[np.ix_(t_keep, p_keep)]


def _iou(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    _, _, (t_area, p_area), inter = overlap(truth, pred)
    union = t_area[:, None] + p_area[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def match(truth: np.ndarray, pred: np.ndarray, thresh: float = 0.5) -> Matching:
    """StarDist's matching at IoU ``thresh`` (see the module doc)."""
    from scipy.optimize import linear_sum_assignment

    iou = _iou(truth, pred)
    n_true, n_pred = iou.shape
    if not n_true or not n_pred:
        return Matching(thresh, 0, n_pred, n_true, 0.0, n_true, n_pred)
    ok = iou >= thresh
    # maximise the summed IoU of pairs above the threshold (for thresh >= 0.5 each object has at most one)
    cost = -(iou * ok)
    rows, cols = linear_sum_assignment(cost)
    hit = ok[rows, cols]
    tp = int(hit.sum())
    return Matching(thresh, tp, n_pred - tp, n_true - tp, float(iou[rows, cols][hit].sum()), n_true, n_pred)


def aji(truth: np.ndarray, pred: np.ndarray) -> float:
    """Aggregated Jaccard index (Kumar et al. 2017), in HoVer-Net's form: each true object with
    the prediction of highest IoU (a true object without any overlap adds its area to the union),
    and every prediction left unpaired adds its area to the union."""
    _, _, (t_area, p_area), inter = overlap(truth, pred)
    if not len(t_area):
        return 1.0 if not len(p_area) else 0.0
    if not len(p_area):
        return 0.0
    union = t_area[:, None] + p_area[None, :] - inter
    iou = inter / np.maximum(union, 1)
    best = iou.argmax(1)
    paired = np.flatnonzero(iou.max(1) > 0)
    c = inter[paired, best[paired]].sum()
    u = union[paired, best[paired]].sum() + np.delete(t_area, paired).sum()
    used = np.zeros(len(p_area), bool)
    used[best[paired]] = True
    u += p_area[~used].sum()
    return float(c / u) if u else 0.0
