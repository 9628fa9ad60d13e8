"""Pixels -> network input for raw (16-bit, float, multi-channel) images: per-channel percentiles.

A model trained on raw channels (``Normalization.mode == "percentile"``) reads each channel as
``(x - low) / (high - low)``, where low and high are that channel's percentiles (1 and 99.8 by
default, as in CSBDeep/StarDist; the range is stored in the checkpoint) measured once per image.
The arithmetic is elementwise float32, so a pixel gets the same value whether it comes in the
whole image, a tile, a streamed window or a Dask worker's block, provided the statistics are the
same: they are measured on one sample with one rule for arrays and sources (``sample_regions``):
the whole image when it has at most ``STATS_PIXELS`` pixels, else regions spread evenly over it
(at most ``STATS_PIXELS`` in all, read region by region, so a slide is never decoded whole).  A
source with a pyramid is sampled on its finest level of at most ``STATS_PIXELS`` pixels (the
coarsest level when none is that small), so every tile of a slide is normalised alike (no
seams); a source's statistics are measured once and kept while it is open
(``source_statistics``).  The app's channel display samples a source with the same rule
(``source_sample``).  uint8 RGB models keep the fixed ``x / 255`` rule
(core.model.checkpoints.Normalization) and never come here.
"""

from __future__ import annotations

import math
import threading
import weakref
from dataclasses import dataclass
from typing import Sequence

import numpy as np

FIXED, PERCENTILE = "fixed", "percentile"
DEFAULT_PERCENTILES = (1.0, 99.8)
STATS_PIXELS = 4 * 1024 * 1024  # statistics are measured on at most this many pixels per channel
REGION_SIDE = 256  # an image larger than that is sampled in squares of this side (64 of them)
_MEASURED: dict[int, tuple[weakref.ref, dict]] = {}  # id(image) -> (the image, statistics by settings)
_MEASURED_LOCK = threading.RLock()  # re-entered when a dropped image's callback runs inside it


@dataclass(frozen=True)
class ChannelStats:
    """Per-channel low and high percentiles of one image (what its pixels are scaled by)."""

    low: tuple[float, ...]
    high: tuple[float, ...]

    def to_json(self) -> dict:
        return {"low": list(self.low), "high": list(self.high)}

    @classmethod
    def from_json(cls, raw: dict) -> "ChannelStats":
        return cls(tuple(float(v) for v in raw["low"]), tuple(float(v) for v in raw["high"]))

    def pick(self, channels: Sequence[int]) -> "ChannelStats":
        """These channels' statistics, in that order (each channel is measured on its own)."""
        return ChannelStats(tuple(self.low[c] for c in channels), tuple(self.high[c] for c in channels))


def sample_regions(height: int, width: int, limit: int | None = None) -> list[list[tuple[int, int, int, int]]]:
    """Rows of (y0, y1, x0, x1) regions, all of one size, that an h x w image is sampled on: the
    whole image when it has at most ``limit`` (default STATS_PIXELS) pixels, else squares of
    REGION_SIDE spread evenly over it, as many as ``limit`` allows, in a grid shaped like the image."""
    limit = STATS_PIXELS if limit is None else limit
    if height * width <= limit:
        return [[(0, height, 0, width)]]
    side = max(1, min(REGION_SIDE, math.isqrt(limit)))
    rh, rw = min(side, height), min(side, width)
    count = max(1, limit // (rh * rw))
    ny = max(1, min(height // rh, round(math.sqrt(count * height / width))))
    nx = max(1, min(width // rw, count // ny))
    ys, xs = _spread(height - rh, ny), _spread(width - rw, nx)
    return [[(y, y + rh, x, x + rw) for x in xs] for y in ys]


def _spread(span: int, n: int) -> list[int]:
    return [span // 2] if n == 1 else [round(i * span / (n - 1)) for i in range(n)]


def _mosaic(rows: list[list[np.ndarray]]) -> np.ndarray:
    return np.concatenate([np.concatenate(row, axis=1) for row in rows], axis=0)


def array_sample(pixels: np.ndarray) -> np.ndarray:
    """The H' x W' x C sample of an image in memory (``sample_regions``)."""
    pixels = pixels[..., None] if pixels.ndim == 2 else pixels
    grid = sample_regions(pixels.shape[0], pixels.shape[1])
    return _mosaic([[pixels[y0:y1, x0:x1] for y0, y1, x0, x1 in row] for row in grid])


def channel_statistics(pixels: np.ndarray, percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> ChannelStats:
    """Percentiles of each channel of H x W x C ``pixels`` over their sample (NaN ignored)."""
    return sample_statistics(array_sample(pixels), percentiles)


def sample_statistics(sample: np.ndarray, percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> ChannelStats:
    """Percentiles of each channel of an already-chosen sample; a flat channel gets a range of 1."""
    sample = sample.reshape(-1, sample.shape[-1]) if sample.ndim == 3 else sample.reshape(-1, 1)
    low, high = [], []
    for c in range(sample.shape[1]):
        values = sample[:, c].astype(np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            lo, hi = 0.0, 1.0
        else:
            lo, hi = (float(v) for v in np.percentile(values, tuple(percentiles)))
            if hi <= lo:
                lo, hi = float(values.min()), float(values.max())
            if hi <= lo:
                hi = lo + 1.0  # a constant channel: all of it maps to 0
        low.append(lo)
        high.append(hi)
    return ChannelStats(tuple(low), tuple(high))


def scale_by_percentiles(pixels: np.ndarray, stats: ChannelStats, mean: Sequence[float] = (),
                         std: Sequence[float] = ()) -> np.ndarray:
    """H x W x C float32 ``((x - low) / (high - low) - mean) / std``, elementwise in float32."""
    c = pixels.shape[2]
    if len(stats.low) != c:
        raise ValueError(f"the normalisation has statistics for {len(stats.low)} channels, the image has {c}")
    low = np.asarray(stats.low, np.float32)
    inv = np.asarray([1.0 / (h - lo) for lo, h in zip(stats.low, stats.high)], np.float32)
    out = pixels.astype(np.float32)
    out -= low
    out *= inv
    np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    if mean and any(mean):
        out -= np.asarray(mean, np.float32)
    if std and any(s != 1 for s in std):
        out /= np.asarray(std, np.float32)
    return out


STATS_PLANES = 8  # a stack's statistics come from this many planes spread over it


def sample_level(levels: Sequence[tuple[int, int]], limit: int | None = None) -> int:
    """The pyramid level (levels are (width, height), finest first) a source is sampled on: the
    finest with at most ``limit`` (default STATS_PIXELS) pixels, else the coarsest."""
    limit = STATS_PIXELS if limit is None else limit
    for i, (w, h) in enumerate(levels):
        if w * h <= limit:
            return i
    return len(levels) - 1


def source_sample(source, channels: Sequence[int] | None = None) -> np.ndarray:
    """The raw sample of a lazy source (core.io.sources) that its statistics come from (see the
    module doc), channels picked; at most STATS_PIXELS pixels are read, whatever its size.

    A source of one level gives exactly ``array_sample`` of the whole image.  A stack
    (``source.planes``) is measured as a whole: up to ``STATS_PLANES`` planes spread over it share
    the pixel budget, so every plane is scaled alike (a dim plane at the end of a Z series stays dim
    instead of having its noise stretched to full range).
    """
    planes = _spread_planes(tuple(getattr(source, "planes", ())), STATS_PLANES)
    budget = STATS_PIXELS // len(planes)
    level = sample_level(source.levels, budget)
    w, h = source.levels[level]
    grid = sample_regions(h, w, budget)
    parts = [_mosaic([[source.read_raw(y0, y1, x0, x1, level=level, **({"plane": plane} if plane else {}))
                       for y0, y1, x0, x1 in row] for row in grid]) for plane in planes]
    sample = np.concatenate(parts, axis=0)
    return sample if channels is None else sample[..., list(channels)]


def _spread_planes(planes: tuple[int, ...], count: int) -> list[tuple[int, ...]]:
    """Up to ``count`` planes evenly spread over a stack (first and last included); ``[()]`` for 2-D."""
    if not planes:
        return [()]
    total = int(np.prod(planes))
    picks = sorted({round(i * (total - 1) / max(1, count - 1)) for i in range(min(count, total))})
    return [tuple(int(v) for v in np.unravel_index(i, planes)) for i in picks]


def source_statistics(source, percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> ChannelStats:
    """Every channel's statistics of ``source`` (pick with ``ChannelStats.pick``), measured on its
    sample once and kept while the source lives: a new model (a Live Training checkpoint) scales
    the same slide without reading it again."""
    return kept_statistics(source, percentiles, lambda: source_sample(source))


def kept_statistics(owner, percentiles: Sequence[float], sample) -> ChannelStats:
    """Every channel's statistics of ``sample()`` (an H x W x C sample of ``owner``: an open source,
    an image in memory), measured the first time and kept while ``owner`` lives."""
    key = (tuple(float(p) for p in percentiles), STATS_PIXELS, REGION_SIDE)
    with _MEASURED_LOCK:
        held = _MEASURED.get(id(owner))
        known = held[1].get(key) if held is not None and held[0]() is owner else None
    if known is not None:
        return known
    stats = sample_statistics(sample(), percentiles)
    with _MEASURED_LOCK:
        held = _MEASURED.get(id(owner))
        if held is None or held[0]() is not owner:
            ident = id(owner)
            held = _MEASURED[ident] = (weakref.ref(owner, lambda _ref: _forget(ident, _ref)), {})
        held[1][key] = stats
    return stats


def _forget(ident: int, ref: weakref.ref) -> None:
    with _MEASURED_LOCK:
        if ident in _MEASURED and _MEASURED[ident][0] is ref:
            del _MEASURED[ident]
