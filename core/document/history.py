"""Diff-based, memory-bounded undo/redo for in-place edited label arrays.

A step stores only the changed part of each touched 64x64 tile (old and new values, zlib
level 1 when that is smaller), so a long diagonal stroke costs its footprint, not its bounding
box, and undo/redo never copy the whole mask.  Original tile content is saved lazily by
``record_before`` just before each mutation and diffed at ``commit``.

A document may have more than one array (the class labels, and the object layer's uint32
instance ids): one step can touch several, named *layers*.  Every method that takes ``labels``
takes either the one array (the layer ``LABELS``) or a mapping of layer name to array; a step
records each layer's patches with its dtype, and all of them count against the same byte bound.
"""

from __future__ import annotations

import sys
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from core.document.editing import EMPTY, Box, mask_box

TILE = 64
# Python objects around each patch's bytes: the (box, data) tuple, the Box and its four ints.
_PATCH_OVERHEAD = sys.getsizeof((0, 0)) + sys.getsizeof(Box(0, 0, 0, 0)) + 4 * 28 + 8
_STEP_OVERHEAD = 400
LABELS = "labels"  # the layer a bare array stands for (the class labels, or a strokes document's)

Patch = tuple[Box, bytes]


def layers_of(labels) -> Mapping[str, object]:
    """``labels`` as a mapping of layer name to array (a bare array is the ``LABELS`` layer)."""
    return labels if isinstance(labels, Mapping) else {LABELS: labels}


@dataclass(eq=False)
class Step:
    """One undoable action; ``patches`` are the ``LABELS`` layer's (box, data) with data = old
    bytes + new bytes, ``layers`` the other layers' as name -> (dtype, patches)."""

    id: int
    label: str
    box: Box
    patches: list[Patch] = field(repr=False)
    nbytes: int
    layers: dict[str, tuple[str, list[Patch]]] = field(default_factory=dict, repr=False)
    boxes: dict[str, Box] = field(default_factory=dict)  # the changed box of each layer it touched

    def touches(self, layer: str) -> bool:
        return layer in self.boxes

    def layer_box(self, layer: str) -> Box:
        return self.boxes.get(layer, EMPTY)

    def arrays(self, patch: Patch, dtype: str | np.dtype = np.uint8) -> tuple[np.ndarray, np.ndarray]:
        box, data = patch
        dtype = np.dtype(dtype)
        n = box.area * dtype.itemsize
        if len(data) != 2 * n:  # stored compressed (only kept when strictly smaller)
            data = zlib.decompress(data)
        shape = (box.height, box.width)
        return (np.frombuffer(data[:n], dtype=dtype).reshape(shape),
                np.frombuffer(data[n:], dtype=dtype).reshape(shape))

    def _all(self):
        yield LABELS, np.uint8, self.patches
        for name, (dtype, patches) in self.layers.items():
            yield name, dtype, patches

    def apply(self, labels, new: bool) -> Box:
        """Write the step's new (or old) values into ``labels`` (an array or a mapping of layers)."""
        arrays = layers_of(labels)
        missing = [name for name, _, patches in self._all() if patches and name not in arrays]
        if missing:  # checked before any write: a step is applied whole or not at all
            raise KeyError(f"the step changed the layer {missing[0]!r}, which was not given")
        for name, dtype, patches in self._all():
            if not patches:
                continue
            target = arrays[name]
            for patch in patches:
                old_values, new_values = self.arrays(patch, dtype)
                target[patch[0].slices] = new_values if new else old_values
        return self.box


class History:
    """Undo/redo stacks of diff steps, bounded by total bytes and step count.

    The oldest steps are dropped when a commit exceeds ``max_bytes`` or ``max_steps``; the most
    recent step is always kept so the last action stays undoable even if it alone is too big.

    ``group_limit`` (bytes, None: no limit) bounds ``nbytes`` while a group saves original tiles: a
    chunked whole-slide mask can receive a segmentation far larger than memory.  A group that
    passes it stops saving, cannot be rolled back, and its commit clears the history (the action
    is not undoable, and older steps would no longer describe the mask); ``overflowed`` tells.
    """

    def __init__(self, max_bytes: int = 256 * 2**20, max_steps: int = 1000, tile: int = TILE):
        if max_steps < 1 or max_bytes < 0 or tile < 1:
            raise ValueError("max_steps and tile must be >= 1 and max_bytes >= 0")
        self.max_bytes = int(max_bytes)
        self.max_steps = int(max_steps)
        self.tile = int(tile)
        self._undo: deque[Step] = deque()
        self._redo: list[Step] = []
        self._pending: dict[tuple[str, int, int], np.ndarray] | None = None
        self._pending_bytes = 0
        self._bytes = 0
        self._next_id = 1
        self._base = 0  # position when the undo stack is empty (id of the last dropped step)
        self.group_limit: int | None = None
        self.overflowed = False  # the open group passed group_limit

    # -- state -------------------------------------------------------------------------------
    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def last_step(self) -> Step | None:
        """The step Undo would take back (None: none)."""
        return self._undo[-1] if self._undo else None

    @property
    def undo_label(self) -> str | None:
        return self._undo[-1].label if self._undo else None

    @property
    def redo_label(self) -> str | None:
        return self._redo[-1].label if self._redo else None

    @property
    def position(self) -> int:
        """Identifies the current state: equal positions mean equal masks (for 'saved?')."""
        return self._undo[-1].id if self._undo else self._base

    @property
    def nbytes(self) -> int:
        """Memory held by committed steps plus tiles saved for the open group."""
        return self._bytes + self._pending_bytes

    @property
    def in_group(self) -> bool:
        return self._pending is not None

    def __len__(self) -> int:
        return len(self._undo)

    def clear(self) -> None:
        """Forget everything; the position changes so an old saved position reads as dirty."""
        self._undo.clear()
        self._redo.clear()
        self.discard()
        self.overflowed = False
        self._bytes = 0
        self._base = self._next_id
        self._next_id += 1

    # -- recording ---------------------------------------------------------------------------
    def begin(self) -> None:
        if self._pending is None:
            self._pending = {}
            self._pending_bytes = 0
            self.overflowed = False

    def record_before(self, labels: np.ndarray, box: Box, mask: np.ndarray | None = None,
                      layer: str = LABELS) -> None:
        """Save tiles of ``labels`` (the array of ``layer``) overlapping ``box`` not yet saved in
        this group (opens one if needed).

        ``mask`` (shaped like ``box``) limits saving to tiles where it has a True pixel.
        """
        self.begin()
        assert self._pending is not None
        if self.overflowed:
            return
        box = box.clip(*labels.shape)
        if box.is_empty:
            return
        t = self.tile
        ty0, tx0, ty1, tx1 = box.y0 // t, box.x0 // t, (box.y1 - 1) // t + 1, (box.x1 - 1) // t + 1
        wanted = None
        if mask is not None:
            starts_y = np.maximum(np.arange(ty0, ty1) * t, box.y0) - box.y0
            starts_x = np.maximum(np.arange(tx0, tx1) * t, box.x0) - box.x0
            rows = np.logical_or.reduceat(mask, starts_y, axis=0)
            wanted = np.logical_or.reduceat(rows, starts_x, axis=1)
        pending = self._pending
        for ty in range(ty0, ty1):
            for tx in range(tx0, tx1):
                if (layer, ty, tx) in pending or (wanted is not None and not wanted[ty - ty0, tx - tx0]):
                    continue
                tile = labels[ty * t:(ty + 1) * t, tx * t:(tx + 1) * t].copy()
                pending[(layer, ty, tx)] = tile
                self._pending_bytes += tile.nbytes
                if self.group_limit is not None and self._bytes + self._pending_bytes > self.group_limit:
                    pending.clear()
                    self._pending_bytes = 0
                    self.overflowed = True
                    return

    def commit(self, labels, label: str = "brush") -> Step | None:
        """Close the group as one step of its changed pixels; None (and no step) if nothing did.

        ``labels``: the array, or a mapping with the array of every layer the group recorded."""
        if self.overflowed:
            self.clear()
            return None
        pending, self._pending, self._pending_bytes = self._pending, None, 0
        if not pending:
            return None
        arrays = layers_of(labels)
        t = self.tile
        by_layer: dict[str, list[Patch]] = {}
        boxes: dict[str, Box] = {}
        nbytes = _STEP_OVERHEAD
        for (layer, ty, tx), before in pending.items():
            y0, x0 = ty * t, tx * t
            now = arrays[layer][y0:y0 + before.shape[0], x0:x0 + before.shape[1]]
            diff = now != before
            if not diff.any():
                continue
            b = mask_box(diff, (y0, x0))
            local = (slice(b.y0 - y0, b.y1 - y0), slice(b.x0 - x0, b.x1 - x0))
            raw = np.ascontiguousarray(before[local]).tobytes() + np.ascontiguousarray(now[local]).tobytes()
            packed = zlib.compress(raw, 1)
            data = packed if len(packed) < len(raw) else raw
            by_layer.setdefault(layer, []).append((b, data))
            boxes[layer] = boxes.get(layer, EMPTY).union(b)
            nbytes += sys.getsizeof(data) + _PATCH_OVERHEAD
        if not by_layer:
            return None
        box = EMPTY
        for b in boxes.values():
            box = box.union(b)
        others = {name: (np.dtype(arrays[name].dtype).str, patches)
                  for name, patches in by_layer.items() if name != LABELS}
        step = Step(self._next_id, label, box, by_layer.get(LABELS, []), nbytes, others, boxes)
        self._next_id += 1
        self._redo.clear()
        self._undo.append(step)
        self._bytes = sum(s.nbytes for s in self._undo)
        while len(self._undo) > 1 and (len(self._undo) > self.max_steps or self._bytes > self.max_bytes):
            dropped = self._undo.popleft()
            self._base = dropped.id
            self._bytes -= dropped.nbytes
        return step

    def discard(self) -> None:
        """Drop the open group without touching the mask (the caller restores it itself)."""
        self._pending, self._pending_bytes = None, 0

    def rollback(self, labels) -> Box:
        """Put back the original content of the open group's tiles and close it."""
        if self.overflowed:
            raise RuntimeError("the open group passed group_limit: its original content was not kept")
        pending, self._pending, self._pending_bytes = self._pending, None, 0
        arrays = layers_of(labels)
        box, t = EMPTY, self.tile
        for (layer, ty, tx), before in (pending or {}).items():
            y0, x0 = ty * t, tx * t
            target = arrays[layer]
            now = target[y0:y0 + before.shape[0], x0:x0 + before.shape[1]]
            b = mask_box(now != before, (y0, x0))
            if not b.is_empty:  # assign through labels: a chunked mask's slice is a copy
                target[y0:y0 + before.shape[0], x0:x0 + before.shape[1]] = before
                box = box.union(b)
        return box

    # -- undo / redo -------------------------------------------------------------------------
    def _check_closed(self) -> None:
        if self._pending is not None:
            raise RuntimeError("commit, discard or roll back the open group before undo/redo")

    def undo(self, labels) -> Box | None:
        """Restore the state before the last step; returns the box it changed."""
        step = self.undo_step(labels)
        return step.box if step is not None else None

    def redo(self, labels) -> Box | None:
        step = self.redo_step(labels)
        return step.box if step is not None else None

    def undo_step(self, labels) -> Step | None:
        """``undo``, returning the step it took back (which layers it touched: ``step.boxes``)."""
        self._check_closed()
        if not self._undo:
            return None
        step = self._undo[-1]
        step.apply(labels, new=False)
        self._redo.append(self._undo.pop())
        return step

    def redo_step(self, labels) -> Step | None:
        self._check_closed()
        if not self._redo:
            return None
        step = self._redo[-1]
        step.apply(labels, new=True)
        self._undo.append(self._redo.pop())
        return step
