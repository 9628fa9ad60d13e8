"""Training on raw channels: which images need it, which channels, and the network input they become.

8-bit RGB (and 8-bit grey) photographs train exactly as before: the 8-bit RGB view, the fixed
``x / 255`` normalisation.  Anything else (16-bit, float, 2 or 4+ channels), or any run with
``channels`` picked (``--channels 0,2``), trains on the raw channels with per-channel percentile
normalisation (core.model.normalize), measured per image as ``segment`` will measure it, and the
checkpoint records the channels, their names and the percentile range.  The scaled images are
made once, so crops are plain slices, and the network input of a crop equals that of the
same pixels at inference.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from core.io.channels import default_names, nan_note
from core.model.checkpoints import Checkpoint, Normalization


@dataclass
class TrainingImage:
    """One decoded training image: its 8-bit RGB view and its raw pixels (core.io.images), or one
    annotated plane of a stack (``plane`` over ``plane_axes``; docs/interfaces.md: training items
    are 2-D planes)."""

    path: Path
    rgb: np.ndarray
    pixels: np.ndarray
    channel_names: list[str]
    nan_count: int = 0
    plane: tuple[int, ...] = ()
    plane_axes: str = ""

    @property
    def name(self) -> str:
        """``cells.tif``, or ``stack.ome.tif z 3`` for a plane: what logs and messages call it."""
        if not self.plane_axes:
            return self.path.name
        return f"{self.path.name} " + " ".join(f"{a.lower()} {p}" for a, p in zip(self.plane_axes, self.plane))


def wants_raw(images: Sequence[TrainingImage], channels: Sequence[int] | None, init: Checkpoint | None) -> bool:
    """True unless every image is an 8-bit grey or RGB picture and nothing asks for raw channels:
    the rule is the set's, so an 8-bit grey image beside a 16-bit one is one raw channel too."""
    if channels is not None or (init is not None and init.normalization.reads_raw):
        return True
    return not all(is_photo(im.pixels) for im in images)


def trainer_pixels(images: Sequence, start_reads_raw: bool = False) -> list[np.ndarray]:
    """What a trainer given decoded images (core.io.images.LoadedImage: Live Training) learns from,
    by ``wants_raw``'s rule for the whole set: every 8-bit RGB view when all are photographs and
    the start model reads 8-bit RGB, else every image's raw pixels."""
    raw = start_reads_raw or wants_raw(images, None, None)
    return [im.pixels if raw else im.rgb for im in images]


def is_photo(pixels: np.ndarray) -> bool:
    """An 8-bit grey or RGB picture: trained on its 8-bit RGB view with the fixed normalisation."""
    return pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] in (1, 3)


def start_picks(init: Checkpoint | None, counts: Sequence[int]) -> list[int] | None:
    """The channels a raw-channel start model reads, in its recorded order, when every image has
    them (``Normalization.recorded_picks``): fine-tuning it without ``--channels`` trains on the
    channels in the order it learnt them, and records that order again."""
    if init is None or not init.normalization.reads_raw or not counts:
        return None
    picks = [init.normalization.recorded_picks(int(n)) for n in counts]
    return picks[0] if picks[0] is not None and all(p == picks[0] for p in picks) else None


def picked_pixels(images: Sequence[TrainingImage], channels: Sequence[int] | None,
                  error: Callable[[str], Exception]) -> list[np.ndarray]:
    """Each image's channels ``channels`` (all when None), checked to be there and to agree in number."""
    from core.io.channels import check_channels

    out = []
    for im in images:
        if channels is not None:
            try:
                check_channels(channels, im.pixels.shape[2], im.path)
            except ValueError as exc:
                raise error(str(exc)) from None
        out.append(im.pixels if channels is None else im.pixels[..., list(channels)])
    first = images[0]
    for im, px in zip(images, out):
        if px.shape[2] != out[0].shape[2]:
            raise error(f"{im.path.name}: has {px.shape[2]} channels but {first.path.name} has {out[0].shape[2]}; "
                        "train on images with the same channels, or pick them with --channels.")
    return out


def raw_normalization(images: Sequence[TrainingImage], channels: Sequence[int] | None,
                      init: Checkpoint | None, count: int) -> Normalization:
    """The normalisation a raw-channel model is trained with (a raw init's own, when it fits:
    its channel count, and its recorded channels or none picked)."""
    if init is not None and init.normalization.reads_raw and init.in_channels == count and (
            channels is None or tuple(channels) == init.normalization.channels):
        return init.normalization
    names = images[0].channel_names if images else default_names(count, rgb=False)
    picked = [names[c] for c in channels] if channels is not None else list(names)
    percentiles = init.normalization.percentiles if init is not None and init.normalization.reads_raw else None
    norm = Normalization.for_raw_channels(count, channels=channels, names=picked)
    if percentiles:
        norm.percentiles = percentiles
    return norm


def scaled(pixels: np.ndarray, norm: Normalization, stats=None) -> np.ndarray:
    """One image as its float32 network input, scaled by its own statistics (as ``segment`` does),
    or by ``stats`` (core.model.normalize.ChannelStats) of the larger image it was cut from."""
    return norm.apply(pixels, stats if stats is not None else norm.statistics(pixels))


def nan_messages(images: Sequence[TrainingImage]) -> list[str]:
    return [f"{im.path.name}: {nan_note(im.nan_count)}" for im in images if im.nan_count]
