"""Objects from a model's instance output: touching objects come apart, and the whole image, tiles,
streamed blocks of any size and a Dask cluster give the same objects (one id across chunk borders,
no seam), deterministically."""

from __future__ import annotations

import numpy as np
import pytest

from core.classes import default_classes
from core.io.label_store import LabelStore
from core.io.sources import ArraySource
from core.model.checkpoints import CheckpointError, save_checkpoint
from core.objects.instances import InstanceSpec, separate
from core.objects.matching import match
from core.segment.inference import Segmentation, Segmenter
from core.segment.instance_stream import read_object_classes, separate_store
from core.segment.streaming import segment_into_store
from core.training.synthetic import generate_scene
from tests.helpers import calibrated_model
from tests.objects_images import instance_class_map, touching_objects

SPEC = InstanceSpec(3, (1, 2), grow=4, min_seed=4)


@pytest.fixture(scope="module")
def truth():
    return touching_objects(150, 170, 40, seed=1)


@pytest.fixture(scope="module")
def class_map(truth):
    return instance_class_map(truth, seed=1)


def class_store(path, class_map, chunks):
    h, w = class_map.shape
    store = LabelStore.create(path, h, w, chunks, {"test": True})
    for block in store.blocks():
        y0, y1, x0, x1 = store.region(block)
        store.write_block(block, class_map[y0:y1, x0:x1])
    return store


def test_a_perfect_boundary_map_gives_back_every_touching_object(truth, class_map):
    touching = {(int(a), int(b)) for a, b in zip(truth[:, :-1].ravel(), truth[:, 1:].ravel()) if a and b and a != b}
    assert len(touching) >= 10  # many objects touch: connected components would merge them
    ids, folded = separate(class_map, SPEC)
    found = match(truth, ids)
    assert found.accuracy == 1.0 and found.n_pred == found.n_true  # one-pixel specks were dropped
    assert found.mean_matched_iou > 0.95
    assert set(np.unique(folded)) <= {0, 1, 2}  # the boundary is folded into the objects' classes
    assert np.array_equal(folded > 0, ids > 0)  # the class map and the objects agree pixel for pixel


def test_ids_follow_raster_order_of_the_seeds_and_every_run_is_the_same(class_map):
    ids, folded = separate(class_map, SPEC)
    seeds = np.where(np.isin(class_map, SPEC.object_classes), ids, 0).ravel()
    values, first = np.unique(seeds, return_index=True)
    assert list(values) == list(range(int(ids.max()) + 1))
    assert np.all(np.diff(first[1:]) > 0)  # id k's seed starts before id k+1's
    again = separate(class_map.copy(), SPEC)
    assert np.array_equal(again[0], ids) and np.array_equal(again[1], folded)


ONE_CLASS = InstanceSpec(3, (1,), grow=4, min_seed=4)  # class 2 is then a class of no objects


@pytest.mark.parametrize("chunks, spec", [((40, 56), SPEC), ((17, 23), SPEC), ((150, 170), SPEC),
                                          ((17, 23), ONE_CLASS)])
def test_chunk_by_chunk_equals_the_whole_image(tmp_path, class_map, chunks, spec):
    ids, folded = separate(class_map, spec)
    store = class_store(tmp_path / "c.ome.zarr", class_map, chunks)
    objects = separate_store(store, tmp_path / "c_instances.ome.zarr", spec)
    store.finish(default_classes(3))
    assert objects.read().dtype == np.uint32 and objects.complete
    assert np.array_equal(objects.read(), ids)  # objects crossing chunk borders keep one id
    assert np.array_equal(store.read(), folded)
    assert list(read_object_classes(objects.path)) == [0] + [int(np.bincount(folded[ids == i]).argmax())
                                                             for i in range(1, int(ids.max()) + 1)]
    if spec is ONE_CLASS:
        assert np.array_equal(folded == 2, class_map == 2)  # a class of no objects is left as it was


@pytest.mark.parametrize("spec", [SPEC, ONE_CLASS])
@pytest.mark.parametrize("threads", [2, 3, 40])
def test_a_large_image_in_bands_on_threads_gives_the_same_objects(class_map, spec, threads):
    """separate() cuts a large image into bands of rows, one per core: the same objects and classes
    as in one piece, also with bands thinner than the growth's halo (40 bands of 3-4 rows)."""
    ids, folded = separate(class_map, spec, threads=1)
    banded_ids, banded = separate(class_map, spec, threads=threads)
    assert np.array_equal(banded_ids, ids) and np.array_equal(banded, folded) and ids.max() > 10


def test_chunks_smaller_than_the_growth_halo(tmp_path, class_map):
    part = class_map[:48, :56]
    store = class_store(tmp_path / "c.ome.zarr", part, (3, 56))  # halo 4 reaches two block rows away
    objects = separate_store(store, tmp_path / "o.ome.zarr", SPEC)
    assert np.array_equal(objects.read(), separate(part, SPEC)[0])


def test_an_interrupted_fold_is_finished_by_running_again(tmp_path, class_map, monkeypatch):
    import core.segment.instance_stream as stream

    ids, folded = separate(class_map, SPEC)
    store = class_store(tmp_path / "c.ome.zarr", class_map, (40, 56))
    real, calls = stream._fold_task, []

    def crash_on_third(*args):
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        calls.append(args[0])
        return real(*args)

    monkeypatch.setattr(stream, "_fold_task", crash_on_third)
    with pytest.raises(OSError):
        separate_store(store, tmp_path / "o.ome.zarr", SPEC)
    monkeypatch.undo()
    objects = separate_store(store, tmp_path / "o.ome.zarr", SPEC)  # the objects are kept; the fold completes
    assert np.array_equal(objects.read(), ids) and np.array_equal(store.read(), folded)


def test_on_a_dask_cluster_the_objects_are_the_same(tmp_path, class_map):
    pytest.importorskip("distributed")
    from core.segment.cluster import connect

    ids, folded = separate(class_map, SPEC)
    store = class_store(tmp_path / "c.ome.zarr", class_map, (40, 56))
    with connect("local:2") as client:
        objects = separate_store(store, tmp_path / "o.ome.zarr", SPEC, client=client)
    assert np.array_equal(objects.read(), ids) and np.array_equal(store.read(), folded)


# --------------------------------------------------------------------------- through the Segmenter


@pytest.fixture(scope="module")
def instance_model(tmp_path_factory):
    """A 4-class small UNet whose class 3 is the boundary of objects of classes 1 and 2."""
    path = tmp_path_factory.mktemp("weights") / "objects.safetensors"
    return save_checkpoint(path, calibrated_model("small", 4, seed=3), default_classes(4),
                           extra={"instances": SPEC.to_json()})


def test_segmenter_gives_objects_the_same_whole_tiled_and_streamed(instance_model, tmp_path):
    seg = Segmenter.load(instance_model, device="cpu")
    assert seg.instances == SPEC and [c.id for c in seg.classes] == [0, 1, 2]
    image = generate_scene(11, 157, 203)[0]
    whole = seg.segment(image, tile_size=0, instances=True)
    assert isinstance(whole, Segmentation) and whole.instances.dtype == np.uint32
    assert whole.instances.max() >= 5 and set(np.unique(whole.labels)) <= {0, 1, 2}
    tiled = seg.segment(image, tile_size=2 * seg.halo + 64, instances=True)
    assert np.array_equal(tiled.instances, whole.instances) and np.array_equal(tiled.labels, whole.labels)
    assert np.array_equal(seg.segment(image, tile_size=0), whole.labels)  # without instances=True: the same classes
    store = segment_into_store(seg, ArraySource(image, tmp_path / "scene.png"), tmp_path / "scene.ome.zarr",
                               tile_size=2 * seg.halo + 64, block_target=100)
    assert len(store.blocks()) >= 4
    assert np.array_equal(store.read(), whole.labels)
    assert np.array_equal(LabelStore.open(tmp_path / "scene_instances.ome.zarr").read(), whole.instances)


def test_a_model_without_instance_output_says_none(small_weights):
    seg = Segmenter.load(small_weights, device="cpu")
    result = seg.segment(generate_scene(1, 64, 64)[0], instances=True)
    assert seg.instances is None and result.instances is None and result.labels.dtype == np.uint8


def test_instance_settings_that_do_not_fit_the_model_are_one_sentence(tmp_path):
    path = save_checkpoint(tmp_path / "bad.safetensors", calibrated_model("small", 3), default_classes(3),
                           extra={"instances": {"boundary_class": 7, "object_classes": [1]}})
    with pytest.raises(CheckpointError, match=r"^bad: .*class 7, but it has 3 classes\.$"):
        Segmenter.load(path, device="cpu")
