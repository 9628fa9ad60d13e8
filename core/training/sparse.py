"""Training from sparse annotations: a few brush strokes per class on mostly unannotated images.

In a stroke mask 255 (``IGNORE``) means "not annotated" and the loss ignores it (partial
cross-entropy, as in the 3D U-Net paper and RootPainter).  255 keeps that meaning even for a
model with 256 classes: such a model still predicts class 255, but strokes cannot teach it.

Strokes cover well under 1 % of an image, so a uniformly random crop is nearly always empty.
``StrokeSampler`` centres each crop near an annotated pixel of a class drawn uniformly from the
annotated ones, so every class is seen in every few batches whatever its stroke length.
Held-out scoring holds out whole strokes (connected groups of one class's pixels), never pixels
of a stroke whose neighbours are trained on, which would flatter the score; a stroke's role is
fixed when it is first seen (``StrokeRoles``), so scores taken later are on the same strokes.
"""

from __future__ import annotations

import math
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


def annotated_counts(mask: np.ndarray) -> np.ndarray:
    """Annotated pixels per class id (256 counts, IGNORE's 0), counted over the annotated pixels
    only: a whole-mask bincount would first copy the mask to 64-bit integers (8 bytes a pixel)."""
    flat = np.asarray(mask, np.uint8).reshape(-1)
    return np.bincount(flat[flat != IGNORE], minlength=256)


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
        counts = annotated_counts(mask)
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
                 augment: bool = False, centres: list[dict[int, np.ndarray]] | None = None):
        """``centres``: each image's ``crop_centres`` when the caller kept them (else found here)."""
        super().__init__(data, patch, rng, augment)
        points: dict[int, list[tuple[int, np.ndarray]]] = {}
        for index, (_, mask) in enumerate(data):
            found = centres[index] if centres is not None else crop_centres(mask, rng)
            for c, where in found.items():
                points.setdefault(c, []).append((index, where))
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


def crop_centres(mask: np.ndarray, rng: np.random.Generator) -> dict[int, np.ndarray]:
    """Flat indices of each class's annotated pixels (at most MAX_POINTS a class)."""
    flat = np.asarray(mask).reshape(-1)
    annotated = np.flatnonzero(flat != IGNORE)
    values = flat[annotated]
    out = {}
    for c in np.unique(values):
        where = annotated[values == c]
        if where.size > MAX_POINTS:
            where = rng.choice(where, MAX_POINTS, replace=False)
        out[int(c)] = where
    return out


def _relative(start: float, size: int, patch: int) -> float:
    """A crop start in pixels as the relative offset CropSampler takes (clipped to the image)."""
    room = max(1, size - patch + 1)
    return float(min(max(start / room, 0.0), 1.0 - 1e-9))


# --------------------------------------------------------------------------- held-out strokes

TRAIN, HELD = 0, 1


@dataclass
class Stroke:
    """One connected group of one class's annotated cells (CELL x CELL pixels)."""

    class_id: int
    cells: np.ndarray  # (n, 2) int64 (cell row, cell column), raster order


def annotated_cells(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flat pixel indices, class ids, flat cell indices) of the annotated pixels; the work is
    proportional to the annotated pixels, apart from one comparison over the mask."""
    flat = np.asarray(mask).reshape(-1)
    where = np.flatnonzero(flat != IGNORE)
    h, w = mask.shape
    ys, xs = np.divmod(where, w)
    cells = (ys // CELL) * (-(-w // CELL)) + xs // CELL
    return where, flat[where], cells


def strokes_of(mask: np.ndarray) -> list[Stroke]:
    """The strokes of a mask: per class, the 4-connected groups of the CELL grid's cells its
    pixels touch (gaps under CELL px do not split a stroke), in raster order of their first cell."""
    _, classes, cells = annotated_cells(mask)
    return _strokes(classes, cells, -(-mask.shape[1] // CELL))


def _strokes(classes: np.ndarray, cells: np.ndarray, grid_w: int) -> list[Stroke]:
    from scipy import ndimage

    found = []
    for c in np.unique(classes):
        mine = np.unique(cells[classes == c])
        cy, cx = np.divmod(mine, grid_w)
        y0, x0 = cy.min(), cx.min()
        grid = np.zeros((cy.max() - y0 + 1, cx.max() - x0 + 1), bool)  # the box around this class's cells only
        grid[cy - y0, cx - x0] = True
        labels, count = ndimage.label(grid)
        ids = labels[cy - y0, cx - x0]
        order = np.argsort(ids, kind="stable")  # cells stay in raster order within a stroke
        bounds = np.searchsorted(ids[order], np.arange(1, count + 2))
        for k in range(count):
            pick = order[bounds[k]:bounds[k + 1]]
            found.append(Stroke(int(c), np.stack([cy[pick], cx[pick]], 1)))
    found.sort(key=lambda s: (int(s.cells[0, 0]), int(s.cells[0, 1]), s.class_id))
    return found


class StrokeRoles:
    """Which strokes are held out for scoring, decided once per stroke and kept.

    A stroke gets its role when first seen: the k-th new stroke of a class (counted over every
    image, in the order images and strokes arrive) is held out when k >= ``min_strokes`` and k
    crosses a multiple of 1 / ``share`` (share 0.2: strokes 5, 10, 15 ...), so about ``share`` of
    a class's strokes are held out once it has enough of them, and the first few always train.
    The role is kept per cell of the CELL grid: painting more strokes, erasing others or adding
    images never moves a stroke from training to held out or back.  Cells added to a stroke
    take its role (a held-out stroke made longer stays held out); cells that join strokes of both
    roles train.  Erased cells forget their role, so a stroke painted there later is a new one.
    """

    def __init__(self, share: float = 0.2, min_strokes: int = 5, fold: tuple[int, int] | None = None):
        """``fold`` = (j, n): cross-validation instead: stroke k of a class is held out when
        (k - 1) mod n == j, so the n folds hold out each stroke exactly once."""
        self.share, self.min_strokes, self.fold = share, min_strokes, fold
        self._roles: dict[str, dict[tuple[int, int], int]] = {}  # image -> (class, flat cell) -> role
        self._drawn: dict[int, int] = {}  # class -> strokes seen so far

    def _new_role(self, class_id: int) -> int:
        k = self._drawn.get(class_id, 0) + 1
        self._drawn[class_id] = k
        if self.fold is not None:
            return HELD if (k - 1) % self.fold[1] == self.fold[0] else TRAIN
        if self.share <= 0 or k < self.min_strokes:
            return TRAIN
        crossed = math.floor(round(k * self.share, 9)) > math.floor(round((k - 1) * self.share, 9))
        return HELD if crossed else TRAIN

    def held_pixels(self, name: str, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flat indices, class ids) of ``mask``'s pixels in held-out strokes; the roles of new
        strokes are decided here, so call it for the images in the order they should count."""
        where, classes, cells = annotated_cells(mask)
        grid_w = -(-mask.shape[1] // CELL)
        old = self._roles.get(name, {})
        roles: dict[tuple[int, int], int] = {}
        for stroke in _strokes(classes, cells, grid_w) if where.size else []:
            keys = [(stroke.class_id, int(y) * grid_w + int(x)) for y, x in stroke.cells]
            known = {old[k] for k in keys if k in old}
            fresh = self._new_role(stroke.class_id) if not known else HELD if known == {HELD} else TRAIN
            for k in keys:
                roles[k] = old.get(k, fresh)
        self._roles[name] = roles
        held_keys = [k for k, role in roles.items() if role == HELD]
        if not held_keys:
            return where[:0], classes[:0]
        held_c = np.array([c for c, _ in held_keys], np.int64)
        held_cell = np.array([cell for _, cell in held_keys], np.int64)
        code = classes.astype(np.int64) * (1 << 40) + cells
        pick = np.isin(code, held_c * (1 << 40) + held_cell)
        return where[pick], classes[pick]

    def strokes_drawn(self) -> dict[int, int]:
        return dict(self._drawn)


def strokes_per_class(masks: list[np.ndarray]) -> dict[int, int]:
    """How many strokes each annotated class has over all ``masks``."""
    counts: dict[int, int] = {}
    for mask in masks:
        for stroke in strokes_of(mask):
            counts[stroke.class_id] = counts.get(stroke.class_id, 0) + 1
    return counts
