"""Whole planes of a stack, read once and kept up to a byte budget, the next ones read ahead.

Browsing a stack shows one plane at a time.  Reading a whole plane is one pass over its strips
or tiles (reading a stripped TIFF tile by tile would decode each strip many times), and a plane
of a microscope stack fits in memory even when the stack does not.  ``get(plane)`` returns a
plane from the cache or reads it; ``prefetch(planes)`` reads planes on a background thread
(nearest first) so that stepping to the next plane finds it read; a plane not read yet can be
asked for there too (``prefetch`` it first, then ``wait``/``pending``), so that a window never reads
a cold plane on its own thread.  Every read of the source
holds ``lock`` (tifffile's file handles are not safe to read from two threads at once; other
readers of the same source take the same lock).  Qt-free.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from typing import Sequence

import numpy as np

DEFAULT_BUDGET = 384 * 2**20  # bytes of planes kept (about 5 planes of 4096 x 4096 x 2 x 16-bit)


def _unshared_count() -> int:
    """What ``sys.getrefcount`` says of an array popped from an OrderedDict that nothing else holds,
    measured the way ``_put_locked`` asks (the count differs between Python versions: 3.14 borrows
    references to local names)."""
    items = OrderedDict([(0, np.empty(1))])
    _, dropped = items.popitem(last=False)
    return sys.getrefcount(dropped)


_UNSHARED = _unshared_count()


class PlaneCache:
    """Planes of ``source`` (core.io.sources, with ``planes``) as whole arrays: its raw channels
    (``raw``), or its 8-bit RGB view."""

    def __init__(self, source, raw: bool, budget: int = DEFAULT_BUDGET, lock=None, whole=None):
        self.source, self.raw, self.budget = source, bool(raw), int(budget)
        self.whole = whole  # a reader of whole planes (core.io.whole_planes.TiffPlanes), when the file has one
        self.lock = lock if lock is not None else threading.RLock()
        self._items: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._wanted: list[tuple] = []
        self._reading: tuple | None = None
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.reads = 0  # planes read from the source so far (tests and benches)
        self._spare: np.ndarray | None = None  # a dropped plane nothing else holds: the next read's memory

    def __contains__(self, plane) -> bool:
        with self._cond:
            return tuple(plane) in self._items

    def get(self, plane: Sequence[int]) -> np.ndarray:
        """``plane`` as a whole H x W x C array (cached, or read now; ImageReadError naming it)."""
        plane = tuple(int(p) for p in plane)
        with self._cond:
            self._wanted = [p for p in self._wanted if p != plane]
            while self._reading == plane:  # the read-ahead thread is on it: wait, do not read twice
                self._cond.wait()
            if plane in self._items:
                self._items.move_to_end(plane)
                return self._items[plane]
        array = self._read(plane)
        self._put(plane, array)
        return array

    def prefetch(self, planes: Sequence[Sequence[int]]) -> None:
        """Read ``planes`` ahead, in this order, replacing what was still wanted."""
        with self._cond:
            if self._stopped:
                return
            wanted = [tuple(int(v) for v in p) for p in planes]
            self._wanted = [p for p in wanted if p not in self._items][: max(0, self._room() - 1)]
            if self._wanted and self._thread is None:
                self._thread = threading.Thread(target=self._run, name="plane-prefetch", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def wait(self, plane: Sequence[int], timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the read-ahead thread to bring ``plane``; True once it is
        cached.  False at the timeout, or at once when the thread no longer has it to read (not asked
        for with ``prefetch``, or its read failed: ``get`` reads it again and says why)."""
        import time

        plane = tuple(int(p) for p in plane)
        deadline = time.monotonic() + max(0.0, float(timeout))
        with self._cond:
            while plane not in self._items:
                left = deadline - time.monotonic()
                if left <= 0 or not self._pending_locked(plane):
                    return False
                self._cond.wait(left)
            return True

    def pending(self, plane: Sequence[int]) -> bool:
        """The read-ahead thread still has ``plane`` to read (asked for, or being read)."""
        with self._cond:
            return self._pending_locked(tuple(int(p) for p in plane))

    def _pending_locked(self, plane: tuple) -> bool:
        return not self._stopped and (self._reading == plane or plane in self._wanted)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._wanted = []
            self._cond.notify_all()
        if self.whole is not None:
            self.whole.close()
        self._items.clear()
        self._bytes = 0
        self._spare = None

    @property
    def plane_bytes(self) -> int:
        """The size of one plane as cached."""
        h, w = self.source.height, self.source.width
        return h * w * (3 if not self.raw else self.source.channels) * np.dtype(
            np.uint8 if not self.raw else self.source.dtype).itemsize

    def _room(self) -> int:
        """How many planes the budget holds (at least 2: the shown one and the next)."""
        return max(2, self.budget // max(1, self.plane_bytes))

    def _read(self, plane: tuple) -> np.ndarray:
        h, w = self.source.height, self.source.width
        with self._cond:
            spare, self._spare = self._spare, None
        array = self._whole(plane, spare)
        if array is None:
            with self.lock:
                read = self.source.read_raw if self.raw else self.source.read
                array = read(0, h, 0, w, plane=plane)
        self.reads += 1
        return array

    def _whole(self, plane: tuple, spare: np.ndarray | None = None) -> np.ndarray | None:
        """The plane through the whole-plane reader (an 8-bit photograph as its RGB view, which for
        8-bit grey or RGB pixels is no conversion but the grey copied to three channels), or None.
        Raw planes are read into ``spare`` when the reader can."""
        if self.whole is None or (not self.raw and np.dtype(self.source.dtype) != np.uint8):
            return None  # another dtype's 8-bit view is stretched by the stack's statistics: the source's own
        out = None
        if self.raw:
            shape = (self.source.height, self.source.width, self.source.channels)
            fits = spare is not None and spare.shape == shape and spare.dtype == np.dtype(self.source.dtype)
            out = spare if fits else plane_buffer(shape, self.source.dtype)
        try:
            raw = self.whole.read(plane, out=out)
        except Exception:  # noqa: BLE001 - the source's own path reads it, or says why not
            self.whole = None
            return None
        if self.raw:
            return raw
        from core.io.images import to_rgb8

        return to_rgb8(raw)

    def _put(self, plane: tuple, array: np.ndarray) -> None:
        with self._cond:
            self._put_locked(plane, array)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._wanted and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                plane = self._wanted.pop(0)
                if plane in self._items:
                    continue
                self._reading = plane
            try:
                array = self._read(plane)
            except Exception:  # noqa: BLE001 - read ahead only: get() reads it again and says why
                array = None
            with self._cond:
                self._reading = None
                if array is not None and not self._stopped:
                    self._put_locked(plane, array)
                self._cond.notify_all()

    def _put_locked(self, plane: tuple, array: np.ndarray) -> None:
        old = self._items.pop(plane, None)
        if old is not None:
            self._bytes -= old.nbytes
        self._items[plane] = array
        self._bytes += array.nbytes
        while self._bytes > self.budget and len(self._items) > 2:
            _, dropped = self._items.popitem(last=False)
            self._bytes -= dropped.nbytes
            # Reused only when nothing else holds it: its own memory (a view of it, or any array
            # holding a view, counts as a reference) with no reference but this name and the call's
            if dropped.flags.owndata and sys.getrefcount(dropped) <= _UNSHARED:
                self._spare = dropped


def plane_buffer(shape: tuple[int, ...], dtype) -> np.ndarray:
    """Memory for a new plane: NumPy's own, so that every view of it refers to it (which is what
    makes a dropped plane's reference count say whether it is still in use), in small pages
    (core.memory_pages: where huge pages had to be found, filling a new plane took up to 10x)."""
    from core.memory_pages import small_pages

    return small_pages(np.empty(shape, dtype))
