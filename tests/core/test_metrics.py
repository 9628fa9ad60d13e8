"""The pooled IoU bookkeeping that training, calibration and the benchmarks score with."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.metrics import IoUAccumulator, mean_iou
from core.training.synthetic import generate_scene, scene_seed


@pytest.fixture(scope="module")
def batch():
    return [generate_scene(scene_seed(2024, i)) for i in range(5)]



def test_iou_perfect_prediction(batch) -> None:
    acc = IoUAccumulator(5)
    for _, lab in batch[:5]:
        acc.update(lab, lab)
    assert acc.mean_iou() == 1.0 and set(acc.per_class_iou().values()) == {1.0}
    miou, per_class = mean_iou([lab for _, lab in batch[:5]], [lab for _, lab in batch[:5]])
    assert miou == 1.0 and set(per_class) == {1, 2, 3, 4}


def test_iou_partial_overlap() -> None:
    target = np.zeros((4, 4), np.uint8)
    pred = np.zeros((4, 4), np.uint8)
    target[0, :4] = 1  # 4 pixels
    pred[0, 2:] = 1
    pred[1, :2] = 1  # 4 pixels, 2 of them right
    pred[3, 3] = 2  # class 2 predicted where the target has none
    acc = IoUAccumulator(3)
    acc.update(pred, target)
    ious = acc.per_class_iou()
    assert ious[1] == pytest.approx(2 / 6)
    assert ious[2] == 0.0
    assert ious[0] == pytest.approx(9 / 14)  # background: 12 in target, 11 predicted, 9 shared
    assert acc.mean_iou([1, 2]) == pytest.approx((2 / 6 + 0) / 2)
    miou, per_class = mean_iou(pred, target, classes=(1, 2))
    assert miou == pytest.approx(1 / 6) and per_class == pytest.approx({1: 2 / 6, 2: 0.0})


def test_iou_pools_pixels_over_images() -> None:
    t1 = np.array([[1, 1, 1, 1]])
    p1 = np.array([[1, 1, 1, 1]])  # 4/4
    t2 = np.array([[1, 0, 0, 0]])
    p2 = np.array([[0, 1, 0, 0]])  # 0/2
    miou, per_class = mean_iou([p1, p2], [t1, t2], classes=(1,))
    assert per_class[1] == pytest.approx(4 / 6) and miou == pytest.approx(4 / 6)


def test_iou_absent_classes_excluded() -> None:
    lab = np.array([[0, 1], [1, 0]], np.uint8)
    miou, per_class = mean_iou(lab, lab)
    assert miou == 1.0 and per_class == {1: 1.0}  # 2, 3, 4 never occur: not counted as 0
    acc = IoUAccumulator(5)
    assert math.isnan(acc.mean_iou())
    acc.update(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8))
    assert math.isnan(acc.mean_iou([1, 2, 3, 4])) and acc.mean_iou() == 1.0


def test_iou_ignores_out_of_range_targets_and_rejects_bad_input() -> None:
    acc = IoUAccumulator(5)
    acc.update(np.array([1, 3]), np.array([1, 255]))
    assert acc.per_class_iou() == {1: 1.0}
    with pytest.raises(ValueError):
        acc.update(np.array([7]), np.array([1]))
    with pytest.raises(ValueError):
        acc.update(np.zeros(3, np.uint8), np.zeros(4, np.uint8))
