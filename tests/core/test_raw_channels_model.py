"""Models with N input channels: what the checkpoint records, one normalisation everywhere (whole,
tiled, streamed, Dask: identical labels), the wrong channel count named, and 8-bit RGB models unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from core.io.images import load_image, to_rgb8
from core.io.sources import open_source
from core.model.checkpoints import Normalization, load_checkpoint
from core.model.normalize import channel_statistics, source_sample, sample_statistics
from core.segment.inference import Segmenter
from core.segment.streaming import segment_source
from core.training.synthetic import generate_scene
from tests.helpers import write_raw_checkpoint


def two_channel_image(seed: int = 3, h: int = 160, w: int = 200) -> np.ndarray:
    """16-bit, 2 channels with different ranges (a bright stain and a dim one), from a synthetic scene."""
    scene = generate_scene(seed, h, w)[0].astype(np.uint16)
    return np.dstack([scene[..., 0] * 180 + 900, scene[..., 1] * 9 + 2000]).astype(np.uint16)


def write_channel_pyramid(path, image: np.ndarray, levels: int = 2):
    """A tiled OME-TIFF (axes CYX) with ``levels`` levels, each half the previous."""
    with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tw:
        for i in range(levels):
            level = np.ascontiguousarray(np.moveaxis(image[:: 2**i, :: 2**i], 2, 0))
            options = dict(tile=(64, 64), photometric="minisblack")
            if i == 0:
                tw.write(level, subifds=levels - 1, metadata={"axes": "CYX"}, **options)
            else:
                tw.write(level, subfiletype=1, metadata=None, **options)
    return path


@pytest.fixture(scope="module")
def raw_weights(tmp_path_factory):
    return write_raw_checkpoint(tmp_path_factory.mktemp("raw") / "raw2.safetensors", 2, names=["DAPI", "GFP"])


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    image = two_channel_image()
    path = tmp_path_factory.mktemp("img") / "cells.ome.tif"
    tifffile.imwrite(path, np.moveaxis(image, 2, 0), tile=(64, 64), metadata={"axes": "CYX"})
    return image, path


def test_the_checkpoint_records_channels_names_and_percentiles(raw_weights):
    ck = load_checkpoint(raw_weights)
    assert ck.in_channels == 2 and ck.normalization.reads_raw
    assert ck.normalization.channel_names == ("DAPI", "GFP") and ck.normalization.percentiles == (1.0, 99.8)
    assert Normalization.from_json(ck.normalization.to_json(), 2) == ck.normalization
    # a checkpoint from before raw channels (no mode) keeps the fixed 8-bit rule
    old = Normalization.from_json({"mean": [0.5] * 3, "std": [0.25] * 3, "value_range": 255}, 3)
    assert not old.reads_raw and "mode" not in old.to_json()


def test_whole_tiled_and_streamed_give_the_same_labels(raw_weights, image_file):
    image, path = image_file
    seg = Segmenter.load(raw_weights, device="cpu")
    whole = seg.segment(image, tile_size=0, tta=False, refine=False)
    assert len(np.unique(whole)) >= 2  # something to compare
    assert np.array_equal(seg.segment(image, tile_size=seg.halo * 2 + 48, tta=False, refine=False), whole)
    with open_source(path) as src:
        assert np.array_equal(segment_source(seg, src, tile_size=seg.halo * 2 + 48, tta=False, refine=False,
                                             block_target=100), whole)
        # the statistics of a one-level source are those of the whole image
        assert seg.source_statistics(src) == channel_statistics(image, (1.0, 99.8))
    refined = seg.segment(image, tile_size=0, tta=False, refine=True)  # the guide is the scaled channels
    assert np.array_equal(seg.segment(image, tile_size=seg.halo * 2 + 64, tta=False, refine=True), refined)


def test_a_slide_is_scaled_by_its_coarse_level_so_tiles_have_no_seams(raw_weights, tmp_path, monkeypatch):
    import core.model.normalize as normalize

    monkeypatch.setattr(normalize, "STATS_PIXELS", 120 * 150)  # level 0 is "too large": level 1 is used
    image = two_channel_image(5, 240, 300)
    path = write_channel_pyramid(tmp_path / "slide.ome.tif", image)
    seg = Segmenter.load(raw_weights, device="cpu")
    with open_source(path) as src:
        stats = seg.source_statistics(src)
        assert stats == sample_statistics(src.read_raw(0, 120, 0, 150, level=1))
        streamed = segment_source(seg, src, tile_size=seg.halo * 2 + 48, tta=False, refine=False, block_target=100)
    assert np.array_equal(streamed, seg.segment(image, tile_size=0, tta=False, refine=False, stats=stats))
    with open_source(path) as src:
        assert src.levels == [(300, 240), (150, 120)] and source_sample(src).shape == (120, 150, 2)


def test_the_cli_segment_uses_the_same_statistics_as_streaming(raw_weights, image_file, tmp_path):
    from PIL import Image

    from core.cli.main import main

    _, path = image_file
    assert main(["segment", str(path), "-o", str(tmp_path), "--model", str(raw_weights), "--device", "cpu",
                 "--format", "index", "ome-zarr", "--tile", "96"]) == 0
    from core.io.label_store import LabelStore

    index = np.asarray(Image.open(tmp_path / "cells.png"))
    assert np.array_equal(LabelStore.open(tmp_path / "cells.ome.zarr").read(), index)


def test_wrong_channel_count_names_both_counts_and_recorded_channels_are_picked(tmp_path, image_file):
    image, _ = image_file
    seg = Segmenter.load(write_raw_checkpoint(tmp_path / "r3.safetensors", 3), device="cpu")
    with pytest.raises(ValueError, match="the model reads 3 channels but the image has 2"):
        seg.segment(image)
    one = Segmenter.load(write_raw_checkpoint(tmp_path / "r1n.safetensors", 1), device="cpu")
    with pytest.raises(ValueError, match=r"reads 1 channel but the image has 2, and the model does not record "
                                         r"which to read; segment it with `unetseg segment` and --channels"):
        one.segment(image)  # says where the choice can be made (the app has no channel pick for a model)
    picked = Segmenter.load(write_raw_checkpoint(tmp_path / "r1.safetensors", 1, picked=[1]), device="cpu")
    expected = picked.segment(image[..., 1:2], tile_size=0, tta=False, refine=False)
    assert np.array_equal(picked.segment(image, tile_size=0, tta=False, refine=False), expected)
    with pytest.raises(ValueError, match=r"channel 4 does not exist, the image has 2 channels \(0-1\)"):
        picked.segment(image, channels=[4])


def test_an_rgb_model_reads_the_8bit_view_exactly_as_before(small_weights, image_file):
    seg = Segmenter.load(small_weights, device="cpu")
    image, path = image_file
    assert not seg.reads_raw
    rgb = load_image(path).rgb
    assert seg.as_input(rgb) is rgb  # uint8 RGB passes untouched
    assert np.array_equal(seg.as_input(image.astype(np.uint16)[..., :1]), to_rgb8(image[..., :1]))
    assert load_checkpoint(small_weights).normalization.to_json().keys() == {"mean", "std", "value_range"}


@pytest.mark.slow
def test_dask_workers_give_the_single_process_labels(raw_weights, image_file, tmp_path):
    pytest.importorskip("distributed")
    from core.io.label_store import LabelStore
    from core.segment.cluster import connect, segment_on_cluster
    from core.segment.streaming import StreamPlan

    image, path = image_file
    seg = Segmenter.load(raw_weights, device="cpu")
    expected = seg.segment(image, tile_size=96, tta=False, refine=False)
    with open_source(path) as src:
        plan = StreamPlan.make(seg, src.height, src.width, 96, False, False, block_target=32, source=src)
        store = LabelStore.create(tmp_path / "d.ome.zarr", src.height, src.width, plan.chunks,
                                  plan.run_record(seg, src))
    with connect("local:2") as client:
        segment_on_cluster(client, str(raw_weights), "cpu", path, store, plan)
    assert len(plan.blocks()) >= 4 and np.array_equal(store.read(), expected)
