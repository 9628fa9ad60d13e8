"""The statistics a raw-channel model scales an image by: one bounded sample whatever the slide's
size (a slide without small levels is never read whole), measured once per open image, and the
same sample in memory, tiled, streamed and from the command line, so the masks stay identical."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import tifffile

import core.model.normalize as normalize
from core.io.sources import open_source
from core.model.normalize import array_sample, channel_statistics, source_sample
from core.segment.inference import Segmenter
from core.segment.streaming import segment_source
from tests.core.test_raw_channels_model import two_channel_image
from tests.helpers import write_raw_checkpoint

FAST = dict(tta=False, refine=False)


@pytest.fixture(scope="module")
def raw_weights(tmp_path_factory):
    return write_raw_checkpoint(tmp_path_factory.mktemp("stats") / "raw2.safetensors", 2)


def write_flat_slide(path, side: int, tile: int = 256):
    """A side x side, 2-channel 16-bit tiled TIFF of one level (no pyramid), from four repeated
    pre-compressed tiles: 67 Mpx take a moment and a few MB."""
    blocks = [zlib.compress(np.ascontiguousarray(two_channel_image(s, tile, tile)).tobytes(), 6) for s in range(4)]
    n = -(-side // tile)
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        tw.write((blocks[(ty + 2 * tx) % 4] for ty in range(n) for tx in range(n)), shape=(side, side, 2),
                 dtype=np.uint16, tile=(tile, tile), compression="zlib", photometric="minisblack",
                 planarconfig="contig")
    return path


def count_reads(source) -> list[int]:
    """Pixels ``source.read_raw`` decodes from now on (the real reads, counted)."""
    counted, read = [], source.read_raw

    def read_raw(y0, y1, x0, x1, level=0):
        counted.append((y1 - y0) * (x1 - x0))
        return read(y0, y1, x0, x1, level)

    source.read_raw = read_raw
    return counted


def test_a_slide_without_small_levels_is_sampled_once_not_read_whole(raw_weights, tmp_path):
    path = write_flat_slide(tmp_path / "flat.tif", 8192)
    first, second = (Segmenter.load(raw_weights, device="cpu") for _ in range(2))  # two checkpoints
    with open_source(path) as src:
        assert src.levels == [(8192, 8192)]
        reads = count_reads(src)
        stats = first.source_statistics(src)
        assert 0 < sum(reads) <= normalize.STATS_PIXELS  # not the 67 Mpx of level 0
        assert len(reads) == 64  # regions spread over the whole slide
        done = len(reads)
        assert second.source_statistics(src) == stats and len(reads) == done  # the next one reads nothing
        assert second.source_statistics(src, [1, 0]) == stats.pick([1, 0]) and len(reads) == done
        # the channel display's sample of the slide is the same bounded one
        assert source_sample(src).shape == (2048, 2048, 2)
    with open_source(path) as again:  # another open image is measured again
        reads = count_reads(again)
        assert first.source_statistics(again) == stats and sum(reads) > 0


def test_regions_spread_over_a_large_image_are_its_sample_everywhere(raw_weights, tmp_path, monkeypatch):
    """With a sample small enough to need regions (here 20 squares of 16 pixels), an image in memory,
    its tiles, its streamed blocks and the command line's PNG are all scaled by the same statistics."""
    from PIL import Image

    from core.cli.main import main

    monkeypatch.setattr(normalize, "STATS_PIXELS", 20 * 16 * 16)
    monkeypatch.setattr(normalize, "REGION_SIDE", 16)
    image = two_channel_image(9, 96, 120)
    sample = array_sample(image)
    assert sample.shape == (64, 80, 2)  # 4 rows x 5 columns of 16 x 16 regions (the image is 4:5 too)
    assert np.array_equal(sample[:16, :16], image[:16, :16]) and np.array_equal(sample[-16:, -16:], image[-16:, -16:])
    stats = channel_statistics(image)
    assert stats != normalize.sample_statistics(image)  # the sample, not every pixel, decides
    path = tmp_path / "cells.ome.tif"
    tifffile.imwrite(path, np.moveaxis(image, 2, 0), tile=(64, 64), metadata={"axes": "CYX"})
    seg = Segmenter.load(raw_weights, device="cpu")
    whole = seg.segment(image, tile_size=0, **FAST)
    assert len(np.unique(whole)) >= 2
    assert np.array_equal(seg.segment(image, tile_size=seg.halo * 2 + 48, **FAST), whole)
    with open_source(path) as src:
        assert seg.source_statistics(src) == stats
        assert np.array_equal(segment_source(seg, src, tile_size=seg.halo * 2 + 48, block_target=100, **FAST),
                              whole)
    assert main(["segment", str(path), "-o", str(tmp_path / "out"), "--model", str(raw_weights), "--device",
                 "cpu", "--format", "index", "--tile", "96", "--no-tta", "--no-refine"]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "cells.png")), whole)
