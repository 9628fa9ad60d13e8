"""Streaming segmentation equals in-memory segmentation byte for byte, and resumes after a crash."""

from __future__ import annotations

import numpy as np
import pytest

from core.segment.inference import Cancelled, Segmenter
from core.io.label_store import LabelStore
from core.io.sources import ArraySource, open_source
from core.segment.streaming import StreamPlan, segment_into_store, segment_source, segment_to_store
from core.training.synthetic import generate_scene
from tests.large_images import write_pyramid_tiff


@pytest.fixture(scope="module")
def seg(small_weights):
    return Segmenter.load(small_weights, device="cpu")


@pytest.fixture(scope="module")
def odd_image():
    return generate_scene(5, 197, 263)[0]


@pytest.mark.parametrize("tta, refine", [(False, False), (True, False), (False, True), (True, True)])
def test_streamed_labels_are_byte_identical_to_segment(seg, odd_image, tmp_path, tta, refine):
    tile = 2 * seg.tiling(*odd_image.shape[:2], 10**6, tta, refine)[1] + 64  # several tiles and blocks
    expected = seg.segment(odd_image, tile_size=tile, tta=tta, refine=refine)
    assert len(np.unique(expected)) >= 2
    source = open_source(write_pyramid_tiff(tmp_path / "odd.ome.tif", odd_image, tile=48))
    with source:
        plan = StreamPlan.make(seg, source.height, source.width, tile, tta, refine, block_target=100)
        assert len(plan.blocks()) >= 4
        streamed = segment_source(seg, source, tile, tta, refine, block_target=100)
    assert np.array_equal(streamed, expected)


def test_default_window_and_large_model_are_identical_too(large_weights, tmp_path):
    seg = Segmenter.load(large_weights, device="cpu")
    image = generate_scene(6, 301, 203)[0]
    expected = seg.segment(image, tile_size=208)
    assert np.array_equal(segment_source(seg, ArraySource(image), 208, block_target=100), expected)
    assert np.array_equal(segment_source(seg, ArraySource(image)), seg.segment(image))


def test_resume_after_a_crash_gives_the_identical_store(seg, odd_image, tmp_path, monkeypatch):
    tile = 2 * seg.halo + 80
    source = ArraySource(odd_image, tmp_path / "odd.png")
    plan = StreamPlan.make(seg, source.height, source.width, tile, block_target=100)
    run = plan.run_record(seg, source)
    store = LabelStore.create(tmp_path / "odd.ome.zarr", source.height, source.width, plan.chunks, run)
    real_write, writes = LabelStore.write_block, []

    def crash_on_third(self, block, labels):
        if len(writes) == 2:
            raise OSError(28, "No space left on device")
        writes.append(block)
        real_write(self, block, labels)

    monkeypatch.setattr(LabelStore, "write_block", crash_on_third)
    with pytest.raises(OSError):
        segment_to_store(seg, source, store, plan)
    monkeypatch.undo()
    assert store.done() == set(writes) and len(writes) == 2
    resumed = LabelStore.create(tmp_path / "odd.ome.zarr", source.height, source.width, plan.chunks, run, resume=True)
    ran = segment_to_store(seg, source, resumed, plan)
    assert ran == len(plan.blocks()) - 2  # the recorded blocks were not redone
    resumed.finish(seg.classes)
    assert np.array_equal(LabelStore.open(tmp_path / "odd.ome.zarr").read(), seg.segment(odd_image, tile_size=tile))


def test_progress_counts_tiles_and_cancel_stops(seg, odd_image, tmp_path):
    source = ArraySource(odd_image)
    plan = StreamPlan.make(seg, source.height, source.width, 2 * seg.halo + 80, block_target=100)
    store = LabelStore.create(tmp_path / "p.ome.zarr", source.height, source.width, plan.chunks, {})
    seen = []
    segment_to_store(seg, source, store, plan, progress=lambda d, t, px: seen.append((d, t, px)))
    assert seen[0][0] == 0 and seen[-1] == (plan.total_tiles, plan.total_tiles, odd_image.shape[0] * odd_image.shape[1])
    store2 = LabelStore.create(tmp_path / "c.ome.zarr", source.height, source.width, plan.chunks, {})
    calls = []
    with pytest.raises(Cancelled):
        segment_to_store(seg, source, store2, plan, should_cancel=lambda: calls.append(1) or len(calls) > 3)
    assert 0 < len(store2.done()) < len(plan.blocks())


def test_segment_into_store_is_the_one_call_and_resumes_after_cancel(seg, odd_image, tmp_path):
    source = ArraySource(odd_image, tmp_path / "odd.png")
    calls = []
    with pytest.raises(Cancelled):
        segment_into_store(seg, source, tmp_path / "o.ome.zarr", 2 * seg.halo + 64, block_target=100,
                           should_cancel=lambda: calls.append(1) or len(calls) > 2)
    store = seg.segment_source(source, tmp_path / "o.ome.zarr", tile_size=2 * seg.halo + 64, block_target=100,
                               resume=True)
    assert store.complete and store.levels == [(263, 197)]
    assert np.array_equal(store.read(), seg.segment(odd_image, tile_size=2 * seg.halo + 64))
