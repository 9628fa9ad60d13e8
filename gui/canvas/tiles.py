"""Decoded image tiles for the multiresolution view: a byte-bounded cache and a loader thread.

Tiles are kept as QImage.Format_RGB32 bytes (``as_rgb32``), so a paint only blits them.  An
image with a channel display (16-bit, multi-channel: core.io.display) is rendered from its raw
tiles, which stay in the same cache: a display change re-renders the tiles in view from them
on the loader thread (no decoding), while the paint keeps drawing the previous rendering.

A whole-slide image is never decoded whole: the view asks for the tiles it shows, at the
pyramid level that matches the zoom, and they are decoded on a background thread.  Requests
are served newest first (what the user looks at now), and requests that scrolled out of view
are dropped before they are decoded.  The cache keeps the most recently used tiles up to a
byte budget (Preferences: tile cache, default 512 MB).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Hashable

import numpy as np
from PySide6.QtCore import QObject, Signal

from core.io.display import Compositor
from core.io.sources import ImageSource

TILE = 512  # tile side in pixels of its own level
DEFAULT_CACHE_BYTES = 512 * 1024 * 1024
MAX_PENDING = 256  # requests kept; older ones (scrolled away) are dropped

TileKey = tuple[int, int, int]  # (level, tile row, tile column)


class TileCache:
    """Most recently used arrays up to ``budget`` bytes (thread-safe)."""

    def __init__(self, budget: int = DEFAULT_CACHE_BYTES):
        self.budget = int(budget)
        self.bytes = 0
        self._items: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> np.ndarray | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: np.ndarray) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.bytes -= old.nbytes
            self._items[key] = value
            self.bytes += value.nbytes
            while self.bytes > self.budget and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self.bytes -= dropped.nbytes

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.bytes = 0


def as_rgb32(rgb: np.ndarray) -> np.ndarray:
    """H x W x 3 RGB as the bytes of QImage.Format_RGB32 (B, G, R, 255 per pixel): drawn without
    a per-paint format conversion, on the loader thread's time."""
    h, w = rgb.shape[:2]
    out = np.empty((h, w, 4), np.uint8)
    out[..., 0], out[..., 1], out[..., 2], out[..., 3] = rgb[..., 2], rgb[..., 1], rgb[..., 0], 255
    return out


def level_factors(source: ImageSource) -> list[float]:
    """Downsampling factor of each pyramid level against level 0 (1, 2, 4, ... usually)."""
    w0 = source.levels[0][0]
    return [w0 / max(1, w) for w, _ in source.levels]


def tile_region(source: ImageSource, key: TileKey) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of a tile in its own level's pixels."""
    level, ty, tx = key
    w, h = source.levels[level]
    return ty * TILE, min(h, (ty + 1) * TILE), tx * TILE, min(w, (tx + 1) * TILE)


def decode_tile(source: ImageSource, key: TileKey) -> np.ndarray:
    y0, y1, x0, x1 = tile_region(source, key)
    return as_rgb32(source.read(y0, y1, x0, x1, key[0]))


def raw_key(key: TileKey) -> tuple:
    return ("raw",) + tuple(key)


class TileLoader(QObject):
    """Decodes requested tiles on one daemon thread; ``ready(key)`` arrives in the GUI thread."""

    ready = Signal(object)  # TileKey
    failed = Signal(str)  # one sentence naming the file and region

    def __init__(self, source: ImageSource, cache: TileCache, parent: QObject | None = None):
        super().__init__(parent)
        self.source, self.cache = source, cache
        self._pending: OrderedDict[TileKey, None] = OrderedDict()
        self._wake = threading.Condition()
        self._stopped = False
        self._failed: set[TileKey] = set()
        self.compositor: Compositor | None = None  # None: the source's 8-bit RGB, as it reads
        self.generation = 0  # display changes so far
        self._rendered: dict[TileKey, int] = {}  # the generation each cached tile was rendered in
        self.decoded = 0  # tiles decoded so far (tests and benchmarks read it)
        self._thread = threading.Thread(target=self._run, name="tile-loader", daemon=True)
        self._thread.start()

    def request(self, key: TileKey) -> None:
        if key in self._failed:
            return
        with self._wake:
            self._pending.pop(key, None)
            self._pending[key] = None  # newest last: served first
            while len(self._pending) > MAX_PENDING:
                self._pending.popitem(last=False)
            self._wake.notify()

    def set_compositor(self, compositor: Compositor | None) -> None:
        """A new display: cached tiles become stale (still drawn until re-rendered)."""
        with self._wake:
            self.compositor = compositor
            self.generation += 1

    def is_current(self, key: TileKey) -> bool:
        """The cached tile was rendered with the display in force."""
        return self._rendered.get(key) == self.generation

    def render(self, key: TileKey) -> np.ndarray:
        """Decode (or take from the cache the raw pixels of) tile ``key``, render it and cache it."""
        generation, compositor = self.generation, self.compositor
        if compositor is None:
            tile = decode_tile(self.source, key)
        elif getattr(self.source, "in_memory", False):  # a slice of an array: nothing to cache
            tile = compositor.rgb32(self.source.read_raw(*tile_region(self.source, key), level=key[0]))
        else:
            raw = self.cache.get(raw_key(key))
            if raw is None:
                raw = self.source.read_raw(*tile_region(self.source, key), level=key[0])
                self.cache.put(raw_key(key), raw)
            tile = compositor.rgb32(raw)
        self.cache.put(key, tile)
        self._rendered[key] = generation
        return tile

    def load_now(self, key: TileKey) -> np.ndarray | None:
        """Render one tile on the calling thread (the overview level at open time, so a fallback
        always exists); a failure is reported through ``failed``."""
        try:
            return self.render(key)
        except Exception as exc:  # noqa: BLE001
            self._failed.add(key)
            self.failed.emit(str(exc))
            return None

    def stop(self, timeout: float = 5.0) -> None:
        with self._wake:
            self._stopped = True
            self._pending.clear()
            self._wake.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._stopped:
                    self._wake.wait()
                if self._stopped:
                    return
                key, _ = self._pending.popitem(last=True)
            if key in self.cache and self.is_current(key):
                continue
            try:
                self.render(key)
            except Exception as exc:  # noqa: BLE001 - a bad region is reported, never fatal
                self._failed.add(key)
                self.failed.emit(str(exc))
                continue
            self.decoded += 1
            if not self._stopped:
                self.ready.emit(key)

