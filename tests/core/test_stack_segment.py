"""Segmenting a stack plane by plane: progress, cancel keeps finished planes, Z smoothing, 3-D stitching."""

from __future__ import annotations

import numpy as np
import pytest

from core.io.sources import open_source
from core.objects.stitch import Stitcher, components
from core.segment.inference import Segmenter
from core.segment.stack import StackOptions, plane_pixels, segment_stack
from tests.helpers import write_raw_checkpoint
from tests.stack_images import stack_data, write_ome_tiff


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stack")
    seg = Segmenter.load(write_raw_checkpoint(folder / "raw.safetensors", channels=2, num_classes=3), device="cpu")
    source = open_source(write_ome_tiff(folder / "s.ome.tif", stack_data(z=5, h=32, w=40)[0], "ZCYX"))
    yield seg, source, segment_stack(seg, source)
    source.close()


def test_progress_per_plane_and_segment_plane_equals_that_plane_of_segment_stack(stack):
    seg, source, whole = stack
    assert whole.done == [(z,) for z in range(5)] and not whole.cancelled
    calls = []
    one = segment_stack(seg, source, planes=[(3,)], progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 1)] and one.done == [(3,)]
    np.testing.assert_array_equal(one.labels[3], whole.labels[3])


def test_cancel_keeps_the_planes_already_done(stack):
    seg, source, whole = stack
    seen = []
    result = segment_stack(seg, source, should_cancel=lambda: len(seen) >= 2,
                           on_plane=lambda plane, labels, _: seen.append(plane))
    assert result.cancelled and result.done == [(0,), (1,)] == seen
    np.testing.assert_array_equal(result.labels[:2], whole.labels[:2])
    assert not result.labels[2:].any()


def test_smoothing_over_z_is_the_argmax_of_the_neighbours_mean_probabilities(stack):
    seg, source, _ = stack
    stats = seg.source_statistics(source)
    probs = [seg.probabilities(plane_pixels(seg, source, (z,)), stats=stats).numpy() for z in range(5)]
    smoothed = segment_stack(seg, source, options=StackOptions(smooth_z=1))
    for z in range(5):
        mean = sum(probs[max(0, z - 1):z + 2])
        np.testing.assert_array_equal(smoothed.labels[z], mean.argmax(0))
    alone = segment_stack(seg, source, planes=[(2,)], options=StackOptions(smooth_z=1))
    np.testing.assert_array_equal(alone.labels[2], smoothed.labels[2])  # Segment Plane reads its neighbours too


def test_stitching_links_overlaps_above_the_threshold_best_match_only():
    plane0 = np.zeros((20, 20), np.uint32)
    plane0[2:8, 2:8] = 5  # A
    plane0[12:18, 12:18] = 9  # B
    plane1 = np.zeros((20, 20), np.uint32)
    plane1[3:9, 2:8] = 1  # overlaps A well (IoU 5/7)
    plane1[12:18, 17:20] = 2  # touches B a little (IoU 1/8)
    plane2 = np.zeros((20, 20), np.uint32)
    plane2[3:9, 2:4] = 7  # A split in two (IoU 1/3 and 2/3): only the better part keeps its id
    plane2[3:9, 4:8] = 8
    stitcher = Stitcher(0.25)
    first, second = stitcher.add(plane0), stitcher.add(plane1)
    assert set(np.unique(first)) == {0, 1, 2}
    assert second[5, 5] == first[5, 5]  # A continues
    assert second[14, 18] not in (0, first[14, 14])  # under the threshold: a new object
    third = stitcher.add(plane2)
    assert third[5, 7] == first[5, 5] and third[5, 3] not in (0, first[5, 5])
    stitcher.reset()  # the next time point: nothing links
    assert stitcher.add(plane0)[5, 5] not in np.unique(np.concatenate([first, second, third]))


def test_objects_of_different_classes_are_never_linked():
    classes0 = np.zeros((10, 10), np.uint8)
    classes0[2:8, 2:8] = 1
    classes1 = classes0.copy()
    classes1[2:8, 2:8] = 2  # the same place, another class
    stitcher = Stitcher(0.25)
    a = stitcher.add(components(classes0), classes0)
    b = stitcher.add(components(classes1), classes1)
    assert a[4, 4] != b[4, 4]
    stitcher.reset()
    assert stitcher.add(components(classes0))[4, 4] == stitcher.add(components(classes1))[4, 4]  # no classes given


def test_stitched_objects_get_their_voxels_volume_planes_and_3d_centroid():
    from core.objects.stack_measure import volumes

    stack = np.zeros((3, 12, 12), np.uint32)
    stack[0, 2:6, 2:6] = 1
    stack[1, 2:6, 2:7] = 1  # object 1 spans z 0-1
    stack[2, 8:10, 8:10] = 2
    pairs = [((z,), stack[z]) for z in range(3)]
    vol = volumes(pairs, "Z", {"X": 0.5, "Y": 0.5, "Z": 2.0})
    assert vol["label"] == [1, 2] and vol["voxels"] == [36, 4] and vol["volume_um3"] == [18.0, 2.0]
    assert (vol["z_first"], vol["z_last"]) == ([0, 2], [1, 2])
    zz, yy, xx = np.nonzero(stack == 1)  # the 3-D centroid of every voxel of object 1
    assert vol["centroid_z"][0] == pytest.approx(zz.mean()) and vol["centroid_x"][0] == pytest.approx(xx.mean())
    assert vol["centroid_z_um"][0] == pytest.approx(2.0 * zz.mean())
    assert "volume_um3" not in volumes(pairs, "Z", {"X": 0.5})  # no Z step: no volume column, never a guess
