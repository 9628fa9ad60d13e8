"""Objects in 3-D from a 2-D model: link overlapping objects of neighbouring planes, as Cellpose stitches.

A 2-D model finds the objects of each plane alone.  Cellpose's ``stitch3D`` (``stitch_threshold``)
makes 3-D objects of them: going up the stack, each object of plane z+1 takes the id of the
object of plane z it overlaps best, when their intersection over union is at least the
threshold and no other object of plane z+1 overlaps that one better; otherwise it starts a new
object.  This module is that rule, plane by plane (``Stitcher``: memory holds one previous
plane, so a stack of any depth streams), on instance label planes (core.objects: 0 background,
any other value one object).

Unlike Cellpose, objects of different classes are never linked when the class planes are given
(a nucleus below a vesicle is two objects), and the ids are uint32, unique over the stack.
``components`` makes instance planes from class labels when no model separates objects: each
8-connected region of one class is one object, the rule the per-object export formats use
(core.io.objects).  ``Numbering`` is the rule without linking: each plane's objects get the ids
after those of the planes before, so an id still names one object in the stack's files
(``<stem>_instances.ome.tif``, the measurements' ``label``, COCO's and GeoJSON's ``object_id``).
Both take ``above``: the largest id the stack already holds on planes a run leaves as they are
(the app's Segment Plane on one plane of many), so a run's ids start above it and never name an
object of another plane; linked ids stay linked, since every new id is counted from there.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

DEFAULT_THRESHOLD = 0.25  # Cellpose's documented example value for stitch_threshold


def components(labels: np.ndarray) -> np.ndarray:
    """Instance labels of a class-label plane: each 8-connected region of one class is one object."""
    from skimage.measure import label

    return label(np.asarray(labels), background=0, connectivity=2).astype(np.uint32)


def overlap_iou(current: np.ndarray, previous: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids of ``current``, ids of ``previous``, IoU matrix current x previous) over their objects."""
    cur_ids, cur = np.unique(current, return_inverse=True)
    prev_ids, prev = np.unique(previous, return_inverse=True)
    cur, prev = cur.reshape(-1), prev.reshape(-1)
    pairs = cur.astype(np.int64) * len(prev_ids) + prev
    inter = np.bincount(pairs, minlength=len(cur_ids) * len(prev_ids)).reshape(len(cur_ids), len(prev_ids))
    area_cur, area_prev = inter.sum(1), inter.sum(0)
    union = area_cur[:, None] + area_prev[None, :] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    keep_c, keep_p = cur_ids != 0, prev_ids != 0  # background is no object
    return cur_ids[keep_c], prev_ids[keep_p], iou[np.ix_(keep_c, keep_p)]


def majority_class(instances: np.ndarray, classes: np.ndarray) -> dict[int, int]:
    """Each object's class: the most frequent class id under it (docs/interfaces.md)."""
    ids, inverse = np.unique(instances, return_inverse=True)
    key = inverse.reshape(-1).astype(np.int64) * 256 + np.asarray(classes, np.uint8).reshape(-1)
    counts = np.bincount(key, minlength=len(ids) * 256).reshape(len(ids), 256)
    return {int(i): int(c) for i, c in zip(ids, counts.argmax(1)) if i != 0}


class Stitcher:
    """Link the objects of consecutive planes (``add`` them in order); ``reset`` between time points."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, above: int = 0):
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"the stitch threshold is an IoU between 0 and 1, not {threshold}")
        self.threshold = float(threshold)
        self.next_id = int(above) + 1
        self._previous: np.ndarray | None = None
        self._previous_class: dict[int, int] = {}

    def reset(self) -> None:
        """The next plane starts a new series (another time point): nothing links across."""
        self._previous, self._previous_class = None, {}

    def add(self, instances: np.ndarray, classes: np.ndarray | None = None) -> np.ndarray:
        """``instances`` (one plane) with ids linked to the previous plane's objects; uint32."""
        instances = np.asarray(instances)
        ids = np.unique(instances)
        ids = ids[ids != 0]
        own_class = majority_class(instances, classes) if classes is not None else {}
        mapping = {}
        if self._previous is not None and ids.size:
            cur_ids, prev_ids, iou = overlap_iou(instances, self._previous)
            if own_class and self._previous_class:
                same = np.array([[own_class.get(int(c)) == self._previous_class.get(int(p)) for p in prev_ids]
                                 for c in cur_ids], bool).reshape(iou.shape)
                iou = np.where(same, iou, 0.0)
            if iou.size:
                iou = np.where(iou >= self.threshold, iou, 0.0)
                iou = np.where(iou >= iou.max(axis=0, keepdims=True), iou, 0.0)  # each old object: its best match
                best = iou.argmax(axis=1)
                for row, c in enumerate(cur_ids):
                    if iou[row, best[row]] > 0:
                        mapping[int(c)] = int(prev_ids[best[row]])
        for c in ids:
            if int(c) not in mapping:
                mapping[int(c)] = self.next_id
                self.next_id += 1
        out = relabel(instances, mapping)
        self._previous = out
        self._previous_class = {mapping[c]: k for c, k in own_class.items()}
        return out


def relabel(instances: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    """``instances`` with each id replaced by ``mapping[id]`` (0 stays 0), as uint32."""
    ids, inverse = np.unique(instances, return_inverse=True)
    new = np.array([0 if i == 0 else mapping[int(i)] for i in ids], np.uint32)
    return new[inverse].reshape(instances.shape)


class Numbering:
    """Ids unique over a stack without linking: each plane added gets its objects renumbered
    ``next_id``, ``next_id + 1``... in the order of their own ids (raster order for ``components``),
    starting above ``above``."""

    def __init__(self, above: int = 0):
        self.next_id = int(above) + 1

    def add(self, instances: np.ndarray) -> np.ndarray:
        """``instances`` (one plane, ids of that plane alone) with ids after the planes before; uint32."""
        from core.io.label_images import MAX_ID

        instances = np.asarray(instances)
        ids = np.unique(instances)
        ids = ids[ids != 0]
        if self.next_id - 1 + ids.size > MAX_ID:
            raise ValueError(f"the stack has more than {MAX_ID} objects, which a 32-bit label image cannot hold")
        out = relabel(instances, {int(i): self.next_id + k for k, i in enumerate(ids.tolist())})
        self.next_id += int(ids.size)
        return out


def stitch(planes: Iterable[np.ndarray], threshold: float = DEFAULT_THRESHOLD,
           classes: Iterable[np.ndarray] | None = None) -> Iterator[np.ndarray]:
    """Cellpose's stitching over a sequence of instance planes (one Z series), yielded as linked."""
    stitcher = Stitcher(threshold)
    class_planes = iter(classes) if classes is not None else None
    for plane in planes:
        yield stitcher.add(plane, next(class_planes) if class_planes is not None else None)
