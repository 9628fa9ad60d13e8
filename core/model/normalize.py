"""Pixels -> network input for raw (16-bit, float, multi-channel) images: per-channel percentiles.

A model trained on raw channels (``Normalization.mode == "percentile"``) reads each channel as
``(x - low) / (high - low)``, where low and high are that channel's percentiles (1 and 99.8 by
default, as in CSBDeep/StarDist; the range is stored in the checkpoint) measured once per image.
The arithmetic is elementwise float32, so a pixel gets the same value whether it comes in the
whole image, a tile, a streamed window or a Dask worker's block, provided the statistics are the
same: they are measured on one evenly strided sample of the image (``sample_step``), or, for a
source with a pyramid, on its finest level of at most ``STATS_PIXELS`` pixels, so every tile of
a slide is normalised alike (no seams).  uint8 RGB models keep the fixed ``x / 255`` rule
(core.model.checkpoints.Normalization) and never come here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

FIXED, PERCENTILE = "fixed", "percentile"
DEFAULT_PERCENTILES = (1.0, 99.8)
STATS_PIXELS = 4 * 1024 * 1024  # statistics are measured on at most this many pixels per channel
STRIP_ROWS = 512  # rows decoded at a time when a whole level must be strided


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


def sample_step(height: int, width: int) -> int:
    """The stride (rows and columns) that leaves at most STATS_PIXELS pixels."""
    return max(1, math.ceil(math.sqrt(height * width / STATS_PIXELS)))


def channel_statistics(pixels: np.ndarray, percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> ChannelStats:
    """Percentiles of each channel of H x W x C ``pixels`` over their strided sample (NaN ignored)."""
    step = sample_step(pixels.shape[0], pixels.shape[1])
    return sample_statistics(pixels[::step, ::step], percentiles)


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


def source_sample(source, channels: Sequence[int] | None = None) -> np.ndarray:
    """The sample a source's statistics come from (see the module doc), channels picked.

    A source of one level gives exactly ``channel_statistics``'s sample of the whole image.  A
    stack (``source.planes``) is measured as a whole: up to ``STATS_PLANES`` planes spread over
    it share the pixel budget, so every plane is scaled alike (a dim plane at the end of a Z
    series stays dim instead of having its noise stretched to full range).
    """
    planes = _spread(tuple(getattr(source, "planes", ())), STATS_PLANES)
    budget = STATS_PIXELS // len(planes)
    levels = source.levels
    level = 0
    while level < len(levels) - 1 and levels[level][0] * levels[level][1] > budget:
        level += 1
    w, h = levels[level]
    step = max(1, math.ceil(math.sqrt(h * w / budget)))
    parts = []
    rows = max(step, STRIP_ROWS // step * step)
    for plane in planes:
        for y0 in range(0, h, rows):
            block = source.read_raw(y0, min(h, y0 + rows), 0, w, level=level, **({"plane": plane} if plane else {}))
            parts.append(block[::step, ::step])
    sample = np.concatenate(parts, axis=0)
    return sample if channels is None else sample[..., list(channels)]


def _spread(planes: tuple[int, ...], count: int) -> list[tuple[int, ...]]:
    """Up to ``count`` planes evenly spread over a stack (first and last included); ``[()]`` for 2-D."""
    if not planes:
        return [()]
    total = int(np.prod(planes))
    picks = sorted({round(i * (total - 1) / max(1, count - 1)) for i in range(min(count, total))})
    return [tuple(int(v) for v in np.unravel_index(i, planes)) for i in picks]
