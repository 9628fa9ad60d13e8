"""The raw pixels of an image as H x W x C, in the file's own dtype: what scientific images hold.

Readers (core.io.images, core.io.sources) keep every channel and the dtype here, beside the 8-bit
RGB view they have always given.  The rules, in one place:

* alpha is transparency, not data: it is dropped (Pillow's LA/RGBA/PA modes, TIFF extra samples
  marked as alpha);
* which axis holds the channels (C, S, or a short generic page axis) and which are planes (T, Z)
  is core.io.axes's rule; a plane is H x W x C like any 2-D image;
* float NaN and +/-inf become 0, and the reader says how many there were;
* channel names come from OME metadata (TIFF XML, OME-Zarr ``omero``), else "Red", "Green",
  "Blue" for RGB photographs and "Channel 1", "Channel 2"... otherwise.
"""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence

import numpy as np

RGB_NAMES = ("Red", "Green", "Blue")


def as_hwc(array: np.ndarray) -> np.ndarray:
    """H x W -> H x W x 1; H x W x C unchanged."""
    array = np.asarray(array)
    return array[..., None] if array.ndim == 2 else array


def without_nan(pixels: np.ndarray) -> tuple[np.ndarray, int]:
    """NaN and +/-inf set to 0 (a copy only when there were any), and how many there were."""
    if not np.issubdtype(pixels.dtype, np.floating):
        return pixels, 0
    bad = ~np.isfinite(pixels)
    count = int(np.count_nonzero(bad))
    if count:
        pixels = np.where(bad, pixels.dtype.type(0), pixels)
    return pixels, count


def nan_note(count: int) -> str:
    return f"{count} NaN/infinite value{'s' if count != 1 else ''} set to 0" if count else ""


def default_names(count: int, rgb: bool = False) -> list[str]:
    if rgb and count == 3:
        return list(RGB_NAMES)
    return [f"Channel {i + 1}" for i in range(count)]


def ome_channel_names(xml: str | None, count: int) -> list[str] | None:
    """The Channel Name attributes of the first OME Image, when there is one per channel."""
    if not xml:
        return None
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None
    for image in root.iter():
        if image.tag.rsplit("}", 1)[-1] != "Image":
            continue
        channels = [el for el in image.iter() if el.tag.rsplit("}", 1)[-1] == "Channel"]
        names = [el.get("Name") or f"Channel {i + 1}" for i, el in enumerate(channels)]
        return names if len(names) == count and any(el.get("Name") for el in channels) else None
    return None


def omero_channel_names(attrs: dict, count: int) -> list[str] | None:
    """Channel labels from OME-Zarr's ``omero`` block (NGFF 0.4 and 0.5 layouts)."""
    omero = attrs.get("omero") or attrs.get("ome", {}).get("omero") or {}
    channels = omero.get("channels") if isinstance(omero, dict) else None
    if not isinstance(channels, list) or len(channels) != count:
        return None
    names = [str(c.get("label") or f"Channel {i + 1}") if isinstance(c, dict) else f"Channel {i + 1}"
             for i, c in enumerate(channels)]
    return names


def pick_channels(pixels: np.ndarray, channels: Sequence[int] | None, name: str | Path | None = None) -> np.ndarray:
    """``pixels[..., channels]`` in that order (None: all); an index out of range is one sentence."""
    pixels = as_hwc(pixels)
    if channels is None:
        return pixels
    check_channels(channels, pixels.shape[2], name)
    return pixels[..., list(channels)]


def check_channels(channels: Sequence[int], count: int, name: str | Path | None = None) -> None:
    """A ValueError for a channel index the image does not have (``name`` starts the sentence)."""
    label = "" if name is None else f"{Path(name).name if isinstance(name, Path) else name}: "
    for c in channels:
        if not 0 <= int(c) < count:
            have = "1 channel (channel 0)" if count == 1 else f"{count} channels (0-{count - 1})"
            raise ValueError(f"{label}channel {c} does not exist, the image has {have}.")


def parse_channels(text: str | None) -> list[int] | None:
    """``"0,2"`` -> [0, 2] (the ``--channels`` option); None or "" -> None (all channels)."""
    if text is None or not str(text).strip():
        return None
    try:
        picked = [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--channels {text!r}: give channel numbers separated by commas, e.g. 0,2") from None
    if not picked or min(picked) < 0:
        raise ValueError(f"--channels {text!r}: channel numbers start at 0")
    if len(set(picked)) != len(picked):
        raise ValueError(f"--channels {text!r}: a channel is named twice")
    return picked


def channels_option(text: str) -> list[int] | None:
    """``--channels 0,2`` for argparse, whose message then names the option."""
    try:
        return parse_channels(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1]) from None
