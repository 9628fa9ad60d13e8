"""Touching objects for the instance tests: disks and ellipses that meet along a line, with their
true ids, and the class maps a model with an instance output would give for them."""

from __future__ import annotations

import numpy as np


def touching_objects(h: int, w: int, count: int, seed: int = 0, radius: tuple[float, float] = (6, 12)) -> np.ndarray:
    """uint32 ids 1..n: ellipses whose centres are drawn close together, so many touch; where two
    overlap a pixel belongs to the one it is deeper inside (they meet along a curve)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    best = np.full((h, w), np.inf, np.float32)
    labels = np.zeros((h, w), np.uint32)
    centres = []
    while len(centres) < count:
        if centres and rng.random() < 0.6:  # next to an earlier one: touching
            cy, cx = centres[rng.integers(len(centres))]
            angle = rng.uniform(0, 2 * np.pi)
            c = (cy + 1.6 * radius[1] * np.sin(angle), cx + 1.6 * radius[1] * np.cos(angle))
        else:
            c = (rng.uniform(0, h), rng.uniform(0, w))
        if all(np.hypot(c[0] - y, c[1] - x) > 1.3 * radius[0] for y, x in centres):
            centres.append(c)
    for i, (cy, cx) in enumerate(centres, start=1):
        a, b = rng.uniform(*radius), rng.uniform(*radius)
        t = rng.uniform(0, np.pi)
        u = (xx - cx) * np.cos(t) + (yy - cy) * np.sin(t)
        v = -(xx - cx) * np.sin(t) + (yy - cy) * np.cos(t)
        depth = np.sqrt((u / a) ** 2 + (v / b) ** 2)
        win = (depth < 1) & (depth < best)
        labels[win], best[win] = i, depth[win]
    from skimage.segmentation import relabel_sequential

    return relabel_sequential(labels)[0].astype(np.uint32)


def instance_class_map(labels: np.ndarray, seed: int = 0, classes: int = 2, specks: int = 30) -> np.ndarray:
    """The class map of a perfect boundary model for ``labels`` (object classes 1..classes at
    random, boundary = classes + 1, a 2-pixel edge band), plus a few one-pixel specks of an
    object class and of the boundary on the background (what a real model also predicts)."""
    from core.training.instance_targets import instance_targets

    rng = np.random.default_rng(seed)
    kinds = {int(i): int(rng.integers(1, classes + 1)) for i in np.unique(labels) if i}
    out = instance_targets(labels, kinds, classes + 1, width=2)
    ys, xs = rng.integers(0, labels.shape[0], specks), rng.integers(0, labels.shape[1], specks)
    free = labels[ys, xs] == 0
    out[ys[free], xs[free]] = rng.integers(1, classes + 2, free.sum())
    return out


def fluorescence(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """uint16 nuclei-like image of ``labels``: each object bright inside and dimmer towards its edge
    (so touching objects meet in a faint dip), blurred, on a dark noisy background."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    signal = np.zeros(labels.shape, np.float32)
    for i, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        inside = labels[box] == i
        depth = ndi.distance_transform_edt(np.pad(inside, 1))[1:-1, 1:-1]
        signal[box][inside] = rng.uniform(0.6, 1.0) * (0.35 + 0.65 * np.minimum(1, depth[inside] / 3))
    signal = ndi.gaussian_filter(signal, 1.0)
    return np.clip(200 + 3000 * signal + rng.normal(0, 40, labels.shape), 0, 65534).astype(np.uint16)


def half_annotated(labels: np.ndarray) -> np.ndarray:
    """A 16-bit training label image: the top half painted (objects whole, background 0; objects cut by
    the middle left out), the bottom half 65535 (not annotated)."""
    h = labels.shape[0]
    out = np.full(labels.shape, 65535, np.uint16)
    top = labels[: h // 2]
    out[: h // 2] = top
    for i in np.unique(labels[h // 2:]):
        if i and (top == i).any():
            out[labels == i] = 65535
    return out


DISC_RADIUS = 7


def disc_nuclei(h: int = 96, w: int = 128, r: int = DISC_RADIUS) -> tuple[np.ndarray, list[tuple[int, int]], list[tuple[int, int]]]:
    """A dozen nuclei-like discs (ids 1..12 in raster order of their centres, radius ``r``) in a
    3 x 4 grid, two pairs of them touching along a line: (labels uint32, centres (y, x), the
    touching pairs of ids).  Live Training of objects learns this in about a hundred steps."""
    yy, xx = np.mgrid[:h, :w]
    rows, cols = (20, 48, 76), (18, 50, 82, 110)
    centres = [(int(y * h / 96), int(x * w / 128)) for y in rows for x in cols]
    centres[1] = (centres[0][0], centres[0][1] + 2 * r)  # touches the first
    centres[10] = (centres[11][0], centres[11][1] - 2 * r)  # touches the last
    labels = np.zeros((h, w), np.uint32)
    best = np.full((h, w), np.inf)
    for k, (cy, cx) in enumerate(centres, start=1):
        d = np.hypot(yy - cy, xx - cx)
        win = (d < r + 0.5) & (d < best)
        labels[win], best[win] = k, d[win]
    return labels, centres, [(1, 2), (11, 12)]


def background_strokes(labels: np.ndarray, gap: int = 3) -> np.ndarray:
    """Strokes (uint8, 255 = not annotated) of class 0 along a few lines between the objects, kept
    ``gap`` pixels away from them."""
    from scipy import ndimage as ndi

    h, w = labels.shape
    out = np.full((h, w), 255, np.uint8)
    near = ndi.binary_dilation(labels > 0, iterations=gap)
    for y in (h * 34 // 96, h * 62 // 96):
        out[y:y + 3, 4:w - 4] = 0
    for x in (w * 34 // 128, w * 96 // 128):
        out[4:h - 4, x:x + 2] = 0
    out[near] = 255
    return out
