"""How raw channels look on screen (core.io.display), and the streamed overview of slides
(core.io.overview)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from core.io.display import ChannelDisplay, Compositor, channel_stats, composite, default_display, robust_limits
from core.io.overview import direct_overview, load_cached, save_cached, stream_overview

RNG = np.random.default_rng(11)


def reference(raw: np.ndarray, channels) -> np.ndarray:
    """The module doc's rule, written plainly in float64."""
    out = np.zeros(raw.shape[:2] + (3,))
    for i, c in enumerate(channels):
        if not c.visible:
            continue
        lo, hi = c.limits
        level = np.rint(np.clip((raw[..., i].astype(np.float64) - lo) / (hi - lo), 0, 1) * 255)
        out += np.rint(level[..., None] * np.asarray(c.color) / 255)
    return np.minimum(out, 255).astype(np.uint8)


COLOUR_SETS = {  # the compositor's three layouts: sums that cannot saturate, 10-bit and 16-bit fields
    "direct": [(255, 0, 0), (0, 200, 255), (255, 255, 255)],
    "fields": [(255, 0, 0), (0, 200, 255), (255, 255, 0)],
    "wide": [(255, 255, 255)] * 3 + [(255, 0, 255), (0, 255, 0), (9, 9, 9)],
}


@pytest.mark.parametrize("colours", COLOUR_SETS)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int8, np.float32, np.int32])
def test_composite_follows_limits_colours_and_visibility_for_every_dtype(dtype, colours):
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    lo_v, hi_v = (info.min, info.max) if info else (-5.0, 5.0)
    colours = COLOUR_SETS[colours]
    raw = RNG.uniform(lo_v, hi_v, (37, 53, len(colours))).astype(dtype)
    span = float(hi_v) - float(lo_v)
    channels = [ChannelDisplay(str(i), i != 2, c, (lo_v + span * (0.1 + 0.05 * i), lo_v + span * (0.5 + 0.06 * i)))
                for i, c in enumerate(colours)]  # the third channel hidden
    expected = reference(raw, channels)
    comp = Compositor(channels, raw.dtype)
    np.testing.assert_array_equal(comp.rgb(raw), expected)
    np.testing.assert_array_equal(comp.rgb32(raw)[..., 2::-1], expected)


def test_additive_channels_saturate_instead_of_wrapping():
    raw = np.full((4, 4, 2), 1000, np.uint16)
    channels = [ChannelDisplay("a", True, (255, 255, 0), (0, 1000)),
                ChannelDisplay("b", True, (255, 0, 255), (0, 1000))]
    assert composite(raw, channels)[0, 0].tolist() == [255, 255, 255]


def test_a_hot_pixel_does_not_black_out_the_auto_contrast():
    channel = RNG.normal(800, 60, (256, 256)).astype(np.uint16)
    channel[100, 100] = 65535  # one saturated camera pixel
    lo, hi = robust_limits(channel)
    assert hi < 1200  # min..max scaling would put every cell in the bottom 2% of the range
    shown = composite(channel[..., None], default_display(["c"], channel_stats(channel[..., None])))
    assert shown[..., 0].mean() > 80  # visible, not black


def test_float_nan_is_drawn_as_the_low_limit():
    raw = np.array([[[np.nan], [0.5]]], np.float32)
    out = composite(raw, [ChannelDisplay("c", True, (255, 255, 255), (0.0, 1.0))])
    assert out[0, 0].tolist() == [0, 0, 0] and out[0, 1].tolist() == [128, 128, 128]


def test_rgb32_is_the_same_rendering_in_blit_order():
    raw = RNG.integers(0, 4096, (20, 30, 4), dtype=np.uint16)
    channels = default_display(["a", "b", "c", "d"], channel_stats(raw))
    comp = Compositor(channels, raw.dtype)
    bgra = comp.rgb32(raw)
    np.testing.assert_array_equal(bgra[..., 2::-1], comp.rgb(raw))
    assert (bgra[..., 3] == 255).all()


class _Source:
    """The part of core.io.sources.ImageSource the overview reads, counting the pixels read."""

    def __init__(self, levels_pixels):
        self.arrays = levels_pixels
        self.levels = [(a.shape[1], a.shape[0]) for a in levels_pixels]
        self.read_pixels = 0
        self.largest_read = 0

    def read_raw(self, y0, y1, x0, x1, level=0):
        self.read_pixels += (y1 - y0) * (x1 - x0)
        self.largest_read = max(self.largest_read, (y1 - y0) * (x1 - x0))
        return self.arrays[level][y0:y1, x0:x1]


def test_a_slide_without_a_small_level_is_box_reduced_block_by_block():
    level = RNG.integers(0, 60000, (4500, 4100, 2), dtype=np.uint16)
    source = _Source([level])
    f = -(-4500 // 512)
    thumb = stream_overview(source)
    assert thumb.shape == (-(-4500 // f), -(-4100 // f), 2) and thumb.dtype == np.uint16
    for i, j in [(0, 0), (17, 200), (thumb.shape[0] - 1, thumb.shape[1] - 1)]:
        block = level[i * f:(i + 1) * f, j * f:(j + 1) * f].reshape(-1, 2).astype(np.float64)
        np.testing.assert_array_equal(thumb[i, j], np.rint(block.mean(0)))
    assert source.read_pixels == 4500 * 4100 and source.largest_read <= 2048 * 2048  # streamed


def test_a_small_pyramid_top_is_read_directly_and_a_large_one_is_not():
    small = _Source([np.zeros((40000, 40000, 1), np.uint8)[:1, :1], np.ones((600, 500, 3), np.uint8)])
    small.levels[0] = (40000, 40000)
    assert direct_overview(small).shape == (300, 250, 3)
    large = _Source([np.zeros((1, 1, 1), np.uint8)])
    large.levels = [(8192, 8192)]  # over 16 Mpx: no direct overview
    assert direct_overview(large) is None


def test_the_overview_cache_follows_the_file(tmp_path):
    image = tmp_path / "slide.tif"
    image.write_bytes(b"x" * 10)
    thumb = RNG.integers(0, 9, (5, 6, 4), dtype=np.uint16)
    save_cached(tmp_path / "cache", image, thumb)
    np.testing.assert_array_equal(load_cached(tmp_path / "cache", image), thumb)
    os.utime(image, ns=(1, 1))  # the file changed: the old overview is not its overview
    assert load_cached(tmp_path / "cache", image) is None
