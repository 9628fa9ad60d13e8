"""How raw pixels of any dtype and channel count look on screen: per-channel contrast limits,
a colour per channel, and an additive composite to 8-bit RGB (napari's and QuPath's model).

The rendering is a view computed per tile from ``ChannelDisplay`` settings; the pixels stay as
they are.  A channel value ``v`` becomes a level ``round(clip((v - lo) / (hi - lo), 0, 1) * 255)``,
the level is tinted by the channel's colour (``round(level * c / 255)`` per component), and the
visible channels are summed and clipped at 255.  For 8- and 16-bit data that whole chain is one
table look-up per channel (``Compositor``): one gather and one add per channel.

Auto-contrast uses robust percentiles (0.1-99.9 by default) of a sample, so a hot pixel does
not black out the view (a slide's sample: core.model.normalize.source_sample, the pixels a
raw-channel model measures too).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

COLORS: dict[str, tuple[int, int, int]] = {
    "grey": (255, 255, 255), "red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255),
    "cyan": (0, 255, 255), "magenta": (255, 0, 255), "yellow": (255, 255, 0),
}
AUTO_PERCENTILES = (0.1, 99.9)
HISTOGRAM_BINS = 64
SAMPLE_VALUES = 1 << 20  # values per channel the statistics look at, at most
_LUT_DTYPES = (np.uint8, np.uint16, np.int8, np.int16, np.bool_)


@dataclass(frozen=True)
class ChannelDisplay:
    """How one channel is drawn: shown or not, its colour (RGB 0-255), its contrast limits."""

    name: str
    visible: bool = True
    color: tuple[int, int, int] = (255, 255, 255)
    limits: tuple[float, float] = (0.0, 255.0)

    def to_json(self) -> dict:
        return {"name": self.name, "visible": self.visible, "color": list(self.color),
                "limits": [float(v) for v in self.limits]}

    @classmethod
    def from_json(cls, data: dict) -> "ChannelDisplay":
        """Raises (KeyError, TypeError, ValueError) on anything malformed."""
        color = tuple(int(c) for c in data["color"])
        lo, hi = (float(v) for v in data["limits"])
        if len(color) != 3 or not all(0 <= c <= 255 for c in color) or not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError(f"bad channel display {data!r}")
        return cls(str(data["name"]), bool(data["visible"]), color, (lo, hi))


@dataclass(frozen=True)
class ChannelStats:
    """What the channel panel shows of a channel's data: a histogram over [low, high] (the data's
    range, cut at twice the auto-contrast span so that outliers do not squash it)."""

    low: float
    high: float
    counts: tuple[int, ...]
    auto: tuple[float, float]  # the robust-percentile limits


def default_colors(count: int) -> list[tuple[int, int, int]]:
    """One channel grey; two green and magenta; three red, green, blue; then the other colours."""
    if count == 1:
        return [COLORS["grey"]]
    if count == 2:
        return [COLORS["green"], COLORS["magenta"]]
    cycle = [COLORS[n] for n in ("red", "green", "blue", "cyan", "magenta", "yellow", "grey")]
    return [cycle[i % len(cycle)] for i in range(count)]


def sample_values(pixels: np.ndarray, limit: int = SAMPLE_VALUES) -> np.ndarray:
    """An evenly strided H' x W' x C sample of ``pixels`` with at most ``limit`` pixels."""
    pixels = as_channels(pixels)
    h, w = pixels.shape[:2]
    step = max(1, int(np.ceil(np.sqrt(h * w / limit))))
    return pixels[::step, ::step]


def as_channels(pixels: np.ndarray) -> np.ndarray:
    """H x W becomes H x W x 1; H x W x C is returned as it is."""
    pixels = np.asarray(pixels)
    return pixels[..., None] if pixels.ndim == 2 else pixels


def robust_limits(values: np.ndarray, percentiles: tuple[float, float] = AUTO_PERCENTILES) -> tuple[float, float]:
    """(lo, hi) at the given percentiles of the finite values; min..max when that is empty,
    (v, v + 1) for a constant channel, (0, 1) when nothing is finite."""
    flat = np.asarray(values).reshape(-1)
    if flat.dtype == np.bool_:
        flat = flat.astype(np.uint8)
    if np.issubdtype(flat.dtype, np.floating):
        flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(flat, percentiles))
    if hi <= lo:
        lo, hi = float(flat.min()), float(flat.max())
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def channel_stats(sample: np.ndarray, bins: int = HISTOGRAM_BINS,
                  percentiles: tuple[float, float] = AUTO_PERCENTILES) -> list[ChannelStats]:
    """Per channel of an H x W x C sample: range, histogram and auto-contrast limits."""
    sample = as_channels(sample)
    out = []
    for c in range(sample.shape[2]):
        values = sample[..., c].reshape(-1)
        if values.dtype == np.bool_:
            values = values.astype(np.uint8)
        if np.issubdtype(values.dtype, np.floating):
            values = values[np.isfinite(values)]
        auto = robust_limits(values, percentiles)
        if values.size == 0:
            out.append(ChannelStats(0.0, 1.0, (0,) * bins, auto))
            continue
        low, high = float(values.min()), float(values.max())
        high = min(high, auto[1] + (auto[1] - auto[0]))  # a hot pixel does not squash the histogram
        if high <= low:
            high = low + 1.0
        counts, _ = np.histogram(values, bins=bins, range=(low, high))
        out.append(ChannelStats(low, high, tuple(int(n) for n in counts), auto))
    return out


def default_display(names: Sequence[str], stats: Sequence[ChannelStats]) -> list[ChannelDisplay]:
    """Every channel visible, the default colours, auto-contrast limits."""
    colors = default_colors(len(names))
    return [ChannelDisplay(str(n), True, colors[i], s.auto) for i, (n, s) in enumerate(zip(names, stats))]


def auto_contrast(channel: ChannelDisplay, stats: ChannelStats) -> ChannelDisplay:
    return replace(channel, limits=stats.auto)


class Compositor:
    """Renders H x W x C raw pixels with fixed channel settings (immutable; build once per change).

    Each shown channel gets a table from value (or, for other dtypes, 0-255 level) to its tinted
    components packed in one integer, so compositing is one ``np.take`` and one add per channel.
    When no colour component can exceed 255 whatever the values (distinct pure colours, as the
    defaults for one to three channels), the sum is already a QImage RGB32 pixel; otherwise the
    components sit in 10-bit fields (up to four channels, uint32) or 16-bit fields (uint64) and
    are clipped at 255 when unpacked.
    """

    def __init__(self, channels: Sequence[ChannelDisplay], dtype) -> None:
        self.channels = tuple(channels)
        self.dtype = np.dtype(dtype)
        self._shown = [i for i, c in enumerate(self.channels) if c.visible and any(c.color)]
        peaks = [sum(self.channels[i].color[k] for i in self._shown) for k in range(3)]
        if max(peaks) <= 255:  # never saturates: the sum is the pixel (0xffRRGGBB)
            self._direct, self._word, self._shifts = True, np.uint32, (16, 8, 0)
        elif len(self._shown) <= 4:  # 4 x 255 < 1024
            self._direct, self._word, self._shifts = False, np.uint32, (0, 10, 20)
        else:
            self._direct, self._word, self._shifts = False, np.uint64, (0, 16, 32)
        self._tables: dict[int, np.ndarray] = {}
        values = _table_values(self.dtype) if self.dtype.type in _LUT_DTYPES else None
        for i in self._shown:
            c = self.channels[i]
            levels = _levels(values, *c.limits) if values is not None else np.arange(256, dtype=np.float64)
            self._tables[i] = _packed(levels, c.color, self._shifts, self._word)
        if self._direct and self._shown:
            self._tables[self._shown[0]] |= np.uint32(0xFF000000)  # RGB32's opaque alpha, added once

    def _sum(self, raw: np.ndarray) -> np.ndarray:
        raw = as_channels(raw)
        if raw.shape[2] != len(self.channels):
            raise ValueError(f"the display has {len(self.channels)} channel(s), the pixels {raw.shape[2]}")
        if not self._shown:
            return np.full(raw.shape[:2], 0xFF000000 if self._direct else 0, self._word)
        first, *rest = self._shown
        total = np.take(self._tables[first], self._index(raw[..., first], first))
        for i in rest:
            total += np.take(self._tables[i], self._index(raw[..., i], i))
        return total

    def _index(self, values: np.ndarray, i: int) -> np.ndarray:
        kind = self.dtype.type
        if kind in (np.uint8, np.uint16):
            return values
        if kind is np.bool_:
            return values.view(np.uint8)
        if kind in (np.int8, np.int16):  # offset so the most negative value is entry 0
            return values.view(np.uint8 if kind is np.int8 else np.uint16) ^ (0x80 if kind is np.int8 else 0x8000)
        lo, hi = self.channels[i].limits
        return _levels(values, lo, hi).astype(np.uint8)

    def _component(self, total: np.ndarray, k: int) -> np.ndarray:
        field = total >> self._word(self._shifts[k])
        if self._direct:
            return field.astype(np.uint8)  # the cast keeps the low byte
        field &= self._word(0xFFFF if self._word is np.uint64 else 0x3FF)
        np.minimum(field, self._word(255), out=field)
        return field.astype(np.uint8)

    def rgb(self, raw: np.ndarray) -> np.ndarray:
        """H x W x 3 uint8."""
        total = self._sum(raw)
        out = np.empty(total.shape + (3,), np.uint8)
        for k in range(3):
            out[..., k] = self._component(total, k)
        return out

    def rgb32(self, raw: np.ndarray) -> np.ndarray:
        """H x W x 4 uint8 holding QImage.Format_RGB32 pixels (0xffRRGGBB, native byte order):
        a tile ready to blit."""
        total = self._sum(raw)
        if self._direct:
            return total.view(np.uint8).reshape(total.shape + (4,))
        pixel = np.full(total.shape, 0xFF000000, np.uint32)
        for k, shift in enumerate((16, 8, 0)):
            pixel |= self._component(total, k).astype(np.uint32) << np.uint32(shift)
        return pixel.view(np.uint8).reshape(total.shape + (4,))


def composite(raw: np.ndarray, channels: Sequence[ChannelDisplay]) -> np.ndarray:
    """``raw`` (H x W x C, any dtype) drawn with ``channels`` as H x W x 3 uint8."""
    return Compositor(channels, np.asarray(raw).dtype).rgb(raw)


def _table_values(dtype: np.dtype) -> np.ndarray:
    """Every value of an 8- or 16-bit dtype, in the order ``Compositor._index`` maps them."""
    if dtype.type is np.bool_:
        return np.arange(256, dtype=np.float64).clip(0, 1)
    bits = dtype.itemsize * 8
    values = np.arange(1 << bits, dtype=np.float64)
    if np.issubdtype(dtype, np.signedinteger):
        values -= 1 << (bits - 1)
    return values


def _levels(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """0..255 levels (float, rounded) of ``values`` between the limits; NaN is level 0.  A table
    (float64 values) is exact; pixels of other dtypes are scaled in float32, for speed."""
    values = np.asarray(values)
    real = np.float64 if values.dtype == np.float64 else np.float32
    span = float(hi) - float(lo)
    with np.errstate(invalid="ignore", over="ignore"):
        t = (values.astype(real, copy=False) - real(lo)) / real(span) * real(255) if span > 0 else \
            np.where(values > lo, 255.0, 0.0).astype(real)
    t = np.nan_to_num(t, nan=0.0, posinf=255.0, neginf=0.0)
    return np.rint(np.clip(t, 0, 255))


def _packed(levels: np.ndarray, color: tuple[int, int, int], shifts: tuple[int, int, int], word) -> np.ndarray:
    """Per level, the tinted components (R, G, B) at bit offsets ``shifts`` of one ``word``."""
    out = np.zeros(levels.shape, word)
    for c, shift in zip(color, shifts):
        component = np.rint(levels.astype(np.float64) * (int(c) / 255.0)).astype(word)
        out |= component << word(shift)
    return out
