"""How the shown image is drawn: one evented model the channel panel edits and the canvas, the
Overview and the overlay export follow (core.io.display renders it).

An RGB photograph keeps today's simple view (``photo``: no per-channel settings).  Any other
image (16-bit, more or fewer than three channels, named channels) gets a ``ChannelDisplay`` per
channel.  Settings are remembered per image through ``memory`` (an object with ``load(key)`` and
``save(key, list)``; the window gives it one backed by the app's settings), so reopening an
image shows it as it was left.  Qt-free.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Callable, Protocol, Sequence

import numpy as np
from psygnal import evented

from core.io.channels import RGB_NAMES
from core.io.display import (ChannelDisplay, ChannelStats, Compositor, channel_stats, default_display,
                             sample_values)


class DisplayMemory(Protocol):
    def load(self, key: str) -> list[ChannelDisplay] | None: ...

    def save(self, key: str, channels: list[ChannelDisplay]) -> None: ...


class InMemory:
    """Remembered for the session only (the default; tests and scripts)."""

    def __init__(self) -> None:
        self._saved: dict[str, list[ChannelDisplay]] = {}

    def load(self, key: str) -> list[ChannelDisplay] | None:
        return self._saved.get(key)

    def save(self, key: str, channels: list[ChannelDisplay]) -> None:
        self._saved[key] = list(channels)


@dataclass(frozen=True)
class ImageDisplay:
    """The display of one image: whose it is, its channels' settings and their data statistics."""

    key: str = ""
    photo: bool = True
    dtype: str = "uint8"
    channels: tuple[ChannelDisplay, ...] = ()
    stats: tuple[ChannelStats, ...] = ()

    def compositor(self) -> Compositor | None:
        """The renderer of raw pixels, or None for a photograph (its 8-bit RGB is shown); built
        once per display (its tables take a few ms) and shared by the canvas, Overview and export."""
        return self._compositor

    @cached_property
    def _compositor(self) -> Compositor | None:
        return None if self.photo or not self.channels else Compositor(self.channels, self.dtype)


def is_photo(dtype, names: Sequence[str]) -> bool:
    """8-bit pixels whose channels are a photograph's (grey, or RGB: alpha is dropped on reading)
    keep the simple view."""
    return np.dtype(dtype) == np.uint8 and (len(names) == 1 or tuple(names) == RGB_NAMES)


@evented
@dataclass(eq=False)
class DisplaySettings:
    view: ImageDisplay = ImageDisplay()

    def __post_init__(self) -> None:
        self.memory: DisplayMemory = InMemory()

    def show(self, key: str, dtype, names: Sequence[str], sample: Callable[[], np.ndarray]) -> None:
        """The display of a newly shown image: remembered settings when they still fit its
        channels, else every channel visible in the default colours with auto-contrast
        (``sample()`` gives the pixels the statistics come from; not called for a photograph)."""
        names = [str(n) for n in names]
        if is_photo(dtype, names):
            self.view = ImageDisplay(key, True, np.dtype(dtype).name)
            return
        try:
            values = sample()
        except (OSError, ValueError):  # an unreadable sample: the view's tiles will say why
            values = np.zeros((1, 1, len(names)), dtype)
        stats = tuple(channel_stats(values))
        channels = chosen_channels(names, stats, self.memory.load(key))
        self.view = ImageDisplay(key, False, np.dtype(dtype).name, tuple(channels), stats)

    def clear(self) -> None:
        self.view = ImageDisplay()

    # -- edits (each one remembered for the image) -----------------------------------------------
    def set_visible(self, index: int, visible: bool) -> None:
        self._edit(index, visible=bool(visible))

    def set_color(self, index: int, color: tuple[int, int, int]) -> None:
        self._edit(index, color=tuple(int(max(0, min(255, c))) for c in color))

    def set_limits(self, index: int, lo: float, hi: float) -> None:
        lo, hi = float(lo), float(hi)
        if hi <= lo:
            hi = lo + (1.0 if np.issubdtype(np.dtype(self.view.dtype), np.integer) else 1e-6)
        self._edit(index, limits=(lo, hi))

    def auto_contrast(self, index: int | None = None) -> None:
        """Robust-percentile limits for one channel (or all)."""
        view = self.view
        indices = range(len(view.channels)) if index is None else [index]
        channels = list(view.channels)
        for i in indices:
            channels[i] = replace(channels[i], limits=view.stats[i].auto)
        self._set_channels(channels)

    def _edit(self, index: int, **changes) -> None:
        channels = list(self.view.channels)
        if not 0 <= index < len(channels):
            return
        channels[index] = replace(channels[index], **changes)
        self._set_channels(channels)

    def _set_channels(self, channels: list[ChannelDisplay]) -> None:
        view = self.view
        if tuple(channels) == view.channels:
            return
        self.view = replace(view, channels=tuple(channels))
        if view.key:
            self.memory.save(view.key, channels)



def chosen_channels(names: Sequence[str], stats: Sequence[ChannelStats],
                    saved: Sequence[ChannelDisplay] | None) -> list[ChannelDisplay]:
    """The remembered settings when they fit the channels, else the defaults (auto-contrast)."""
    channels = default_display(names, stats)
    if saved is not None and len(saved) == len(channels):
        channels = [replace(s, name=c.name) for s, c in zip(saved, channels)]
    return channels


def rendered_rgb(image, saved: Sequence[ChannelDisplay] | None = None) -> np.ndarray:
    """A loaded image (core.io.images.LoadedImage) as the app draws it when shown with the
    remembered settings ``saved`` (or the defaults): what an overlay export draws under the mask."""
    if is_photo(image.pixels.dtype, image.channel_names):
        return image.rgb
    stats = channel_stats(sample_values(image.pixels))
    return Compositor(chosen_channels(image.channel_names, stats, saved), image.pixels.dtype).rgb(image.pixels)


def shown_pixels(image, view: ImageDisplay) -> np.ndarray:
    """What the canvas draws of a loaded image (core.io.images.LoadedImage): its 8-bit RGB for a
    photograph, else its raw channels (rendered with ``view``)."""
    return image.rgb if view.photo else image.pixels
