"""Training from sparse annotations: a few brush strokes per class on mostly unannotated images.

In a stroke mask 255 (``IGNORE``) means "not annotated" and the loss ignores it (partial
cross-entropy, as in the 3D U-Net paper and RootPainter).  255 keeps that meaning even for a
model with 256 classes: such a model still predicts class 255, but strokes cannot teach it.

Strokes cover well under 1 % of an image, so a uniformly random crop is nearly always empty.
``StrokeSampler`` centres each crop near an annotated pixel of a class drawn uniformly from the
annotated ones, so every class is seen in every few batches whatever its stroke length.
Held-out scoring holds out whole strokes (connected groups of one class's pixels), never pixels
of a stroke whose neighbours are trained on, which would flatter the score.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from core.training.loop import IGNORE, CropSampler, TrainingDataError

MAX_POINTS = 200_000  # crop centres kept per class and image (a dense mask need not list them all)
CELL = 8  # strokes are grouped on an 8 x 8 pixel grid: gaps under 8 px do not split a stroke


@dataclass
class StrokeSet:
    """Images with annotations, ready to train on."""

    items: list[tuple[np.ndarray, np.ndarray]]  # (pixels, mask) of the images that have strokes
    names: list[str]  # their names, for messages
    skipped: list[str]  # images without a single annotated pixel
    counts: np.ndarray  # annotated pixels per class id (length 256, IGNORE excluded)

    @property
    def class_ids(self) -> list[int]:
        return [int(c) for c in np.flatnonzero(self.counts)]

    @property
    def annotated_pixels(self) -> int:
        return int(self.counts.sum())

    @property
    def needed_classes(self) -> int:
        """The class count the annotated ids need (the highest id + 1, at least 2)."""
        ids = self.class_ids
        return max(ids[-1] + 1 if ids else 0, 2)


def stroke_set(items: list[tuple[np.ndarray, np.ndarray]], names: list[str] | None = None,
               num_classes: int | None = None) -> StrokeSet:
    """Check annotations: skip (and count) images without any, require two classes, and, when the
    model's class count is fixed, refuse an id beyond it naming the file."""
    names = list(names) if names is not None else [f"image {i + 1}" for i in range(len(items))]
    kept, kept_names, skipped = [], [], []
    total = np.zeros(256, np.int64)
    for (pixels, mask), name in zip(items, names):
        if pixels.shape[:2] != mask.shape:
            raise TrainingDataError(f"{name}: the annotations are {mask.shape[1]}x{mask.shape[0]} pixels "
                                    f"but the image is {pixels.shape[1]}x{pixels.shape[0]}.")
        counts = np.bincount(np.asarray(mask, np.uint8).ravel(), minlength=256)
        counts[IGNORE] = 0
        if not counts.any():
            skipped.append(name)
            continue
        top = int(np.flatnonzero(counts)[-1])
        if num_classes is not None and top >= num_classes:
            raise TrainingDataError(f"{name}: contains class id {top} but the model has {num_classes} classes "
                                    f"(0-{num_classes - 1}).")
        kept.append((pixels, mask))
        kept_names.append(name)
        total += counts
    found = StrokeSet(kept, kept_names, skipped, total)
    if len(found.class_ids) < 2:
        which = f"only class {found.class_ids[0]} is" if found.class_ids else "nothing is"
        raise TrainingDataError(f"at least two classes must be annotated to train, but {which} "
                                f"({len(kept)} image{'s' if len(kept) != 1 else ''} with strokes).")
    return found


class StrokeSampler(CropSampler):
    """Crops centred near annotated pixels, classes drawn uniformly (crops, flips and augmentation
    as core.training.loop.CropSampler, which builds them)."""

    def __init__(self, data: list[tuple[np.ndarray, np.ndarray]], patch: int, rng: np.random.Generator,
                 augment: bool = False):
        super().__init__(data, patch, rng, augment)
        points: dict[int, list[tuple[int, np.ndarray]]] = {}
        for index, (_, mask) in enumerate(data):
            flat = np.asarray(mask).ravel()
            annotated = np.flatnonzero(flat != IGNORE)
            for c in np.unique(flat[annotated]):
                where = annotated[flat[annotated] == c]
                if where.size > MAX_POINTS:
                    where = rng.choice(where, MAX_POINTS, replace=False)
                points.setdefault(int(c), []).append((index, where))
        if not points:
            raise TrainingDataError("no image has annotated pixels to train on.")
        self.points = [(np.concatenate([np.full(w.size, i, np.int32) for i, w in parts]),
                        np.concatenate([w for _, w in parts])) for parts in points.values()]

    def positions(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        rng, p = self.rng, self.patch
        picks = np.empty(size, np.int64)
        offsets = np.empty((size, 2))
        for i, c in enumerate(rng.integers(0, len(self.points), size)):
            images, where = self.points[c]
            j = rng.integers(0, where.size)
            index = int(images[j])
            h, w = self.data[index][1].shape
            y, x = divmod(int(where[j]), w)
            # the annotated pixel lands anywhere in the crop but its outer eighths
            y0 = y - p * rng.uniform(0.125, 0.875)
            x0 = x - p * rng.uniform(0.125, 0.875)
            picks[i] = index
            offsets[i] = (_relative(y0, h, p), _relative(x0, w, p))
        return picks, offsets


def _relative(start: float, size: int, patch: int) -> float:
    """A crop start in pixels as the relative offset CropSampler takes (clipped to the image)."""
    room = max(1, size - patch + 1)
    return float(min(max(start / room, 0.0), 1.0 - 1e-9))


# --------------------------------------------------------------------------- held-out strokes


def strokes_of(mask: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """The strokes of a mask as (class id, boolean mask of the cells of the CELL grid they touch),
    one entry per connected group of cells of one class."""
    h, w = mask.shape
    gh, gw = -(-h // CELL), -(-w // CELL)
    padded = np.full((gh * CELL, gw * CELL), IGNORE, np.uint8)
    padded[:h, :w] = mask
    blocks = padded.reshape(gh, CELL, gw, CELL).transpose(0, 2, 1, 3).reshape(gh, gw, CELL * CELL)
    found = []
    for c in np.unique(mask):
        if c == IGNORE:
            continue
        cells = (blocks == c).any(-1)
        seen = np.zeros_like(cells)
        for start in zip(*np.nonzero(cells)):
            if seen[start]:
                continue
            group = np.zeros_like(cells)
            queue = deque([start])
            seen[start] = True
            while queue:
                cy, cx = queue.popleft()
                group[cy, cx] = True
                for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
                    if 0 <= ny < gh and 0 <= nx < gw and cells[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        queue.append((ny, nx))
            found.append((int(c), group))
    return found


def hold_out(masks: list[np.ndarray], rng: np.random.Generator, share: float = 0.2,
             min_strokes: int = 5) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
    """Split annotations into (training masks, held-out masks) by whole strokes.

    Only when every annotated class has at least ``min_strokes`` strokes: then about ``share`` of
    each class's strokes (at least one) are held out.  None when there are too few strokes.
    """
    per_class: dict[int, list[tuple[int, np.ndarray]]] = {}
    for index, mask in enumerate(masks):
        for c, cells in strokes_of(mask):
            per_class.setdefault(c, []).append((index, cells))
    if len(per_class) < 2 or min(len(v) for v in per_class.values()) < min_strokes:
        return None
    train = [np.array(m, np.uint8, copy=True) for m in masks]
    held = [np.full(m.shape, IGNORE, np.uint8) for m in masks]
    for c, strokes in sorted(per_class.items()):
        count = max(1, int(round(share * len(strokes))))
        for k in rng.choice(len(strokes), count, replace=False):
            index, cells = strokes[int(k)]
            h, w = masks[index].shape
            pixels = np.kron(cells, np.ones((CELL, CELL), bool))[:h, :w] & (masks[index] == c)
            held[index][pixels] = c
            train[index][pixels] = IGNORE
    return train, held
