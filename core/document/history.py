"""Diff-based, memory-bounded undo/redo for an in-place edited label array.

A step stores only the changed part of each touched 64x64 tile (old and new values, zlib
level 1 when that is smaller), so a long diagonal stroke costs its footprint, not its bounding
box, and undo/redo never copy the whole mask.  Original tile content is saved lazily by
``record_before`` just before each mutation and diffed at ``commit``.
"""

from __future__ import annotations

import sys
import zlib
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from core.document.editing import EMPTY, Box, mask_box

TILE = 64
# Python objects around each patch's bytes: the (box, data) tuple, the Box and its four ints.
_PATCH_OVERHEAD = sys.getsizeof((0, 0)) + sys.getsizeof(Box(0, 0, 0, 0)) + 4 * 28 + 8
_STEP_OVERHEAD = 400


@dataclass(eq=False)
class Step:
    """One undoable action; ``patches`` are (box, data) with data = old bytes + new bytes."""

    id: int
    label: str
    box: Box
    patches: list[tuple[Box, bytes]] = field(repr=False)
    nbytes: int

    def arrays(self, patch: tuple[Box, bytes]) -> tuple[np.ndarray, np.ndarray]:
        box, data = patch
        n = box.area
        if len(data) != 2 * n:  # stored compressed (only kept when strictly smaller)
            data = zlib.decompress(data)
        both = np.frombuffer(data, dtype=np.uint8)
        shape = (box.height, box.width)
        return both[:n].reshape(shape), both[n:].reshape(shape)

    def apply(self, labels: np.ndarray, new: bool) -> Box:
        for patch in self.patches:
            old_values, new_values = self.arrays(patch)
            labels[patch[0].slices] = new_values if new else old_values
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
        self._pending: dict[tuple[int, int], np.ndarray] | None = None
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

    def record_before(self, labels: np.ndarray, box: Box, mask: np.ndarray | None = None) -> None:
        """Save tiles overlapping ``box`` not yet saved in this group (opens one if needed).

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
                if (ty, tx) in pending or (wanted is not None and not wanted[ty - ty0, tx - tx0]):
                    continue
                tile = labels[ty * t:(ty + 1) * t, tx * t:(tx + 1) * t].copy()
                pending[(ty, tx)] = tile
                self._pending_bytes += tile.nbytes
                if self.group_limit is not None and self._bytes + self._pending_bytes > self.group_limit:
                    pending.clear()
                    self._pending_bytes = 0
                    self.overflowed = True
                    return

    def commit(self, labels: np.ndarray, label: str = "brush") -> Step | None:
        """Close the group as one step of its changed pixels; None (and no step) if nothing did."""
        if self.overflowed:
            self.clear()
            return None
        pending, self._pending, self._pending_bytes = self._pending, None, 0
        if not pending:
            return None
        t = self.tile
        patches: list[tuple[Box, bytes]] = []
        box, nbytes = EMPTY, _STEP_OVERHEAD
        for (ty, tx), before in pending.items():
            y0, x0 = ty * t, tx * t
            now = labels[y0:y0 + before.shape[0], x0:x0 + before.shape[1]]
            diff = now != before
            if not diff.any():
                continue
            b = mask_box(diff, (y0, x0))
            local = (slice(b.y0 - y0, b.y1 - y0), slice(b.x0 - x0, b.x1 - x0))
            raw = before[local].tobytes() + now[local].tobytes()
            packed = zlib.compress(raw, 1)
            data = packed if len(packed) < len(raw) else raw
            patches.append((b, data))
            box = box.union(b)
            nbytes += sys.getsizeof(data) + _PATCH_OVERHEAD
        if not patches:
            return None
        step = Step(self._next_id, label, box, patches, nbytes)
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

    def rollback(self, labels: np.ndarray) -> Box:
        """Put back the original content of the open group's tiles and close it."""
        if self.overflowed:
            raise RuntimeError("the open group passed group_limit: its original content was not kept")
        pending, self._pending, self._pending_bytes = self._pending, None, 0
        box, t = EMPTY, self.tile
        for (ty, tx), before in (pending or {}).items():
            y0, x0 = ty * t, tx * t
            now = labels[y0:y0 + before.shape[0], x0:x0 + before.shape[1]]
            b = mask_box(now != before, (y0, x0))
            if not b.is_empty:  # assign through labels: a chunked mask's slice is a copy
                labels[y0:y0 + before.shape[0], x0:x0 + before.shape[1]] = before
                box = box.union(b)
        return box

    # -- undo / redo -------------------------------------------------------------------------
    def _check_closed(self) -> None:
        if self._pending is not None:
            raise RuntimeError("commit, discard or roll back the open group before undo/redo")

    def undo(self, labels: np.ndarray) -> Box | None:
        """Restore the state before the last step; returns the box it changed."""
        self._check_closed()
        if not self._undo:
            return None
        step = self._undo.pop()
        self._redo.append(step)
        return step.apply(labels, new=False)

    def redo(self, labels: np.ndarray) -> Box | None:
        self._check_closed()
        if not self._redo:
            return None
        step = self._redo.pop()
        self._undo.append(step)
        return step.apply(labels, new=True)
