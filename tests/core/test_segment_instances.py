"""``unetseg segment --format instances measurements`` with a model that separates objects: its
objects (not the class mask's components) reach the label file and the table, in memory and for a
slide streamed in chunks, with the same ids both ways; the class outputs hold the user's classes only."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile

from core.classes import default_classes
from core.cli.main import main
from core.io.label_store import LabelStore
from core.model.checkpoints import save_checkpoint
from core.objects.instances import InstanceSpec
from core.segment.inference import Segmenter
from core.training.synthetic import generate_scene
from tests.helpers import calibrated_model
from tests.large_images import write_pyramid_tiff

SPEC = InstanceSpec(3, (1, 2), grow=4, min_seed=4)
TILE = 128


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "objects.safetensors"
    return save_checkpoint(path, calibrated_model("small", 4, seed=3), default_classes(4),
                           extra={"instances": SPEC.to_json()})


@pytest.fixture(scope="module")
def scene():
    return generate_scene(12, 190, 230)[0]


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_in_memory_outputs_take_the_models_objects(tmp_path, model, scene):
    tifffile.imwrite(tmp_path / "scene.tif", scene, photometric="rgb")
    expected = Segmenter.load(model, device="cpu").segment(scene, tile_size=TILE, instances=True)
    assert main(["segment", str(tmp_path / "scene.tif"), "-o", str(tmp_path / "out"), "--model", str(model),
                 "--tile", str(TILE), "--format", "index", "instances", "measurements"]) == 0
    ids = tifffile.imread(tmp_path / "out" / "scene_instances.tif")
    assert np.array_equal(ids, expected.instances) and ids.max() >= 5
    table = rows(tmp_path / "out" / "scene_measurements.csv")
    assert [int(r["label"]) for r in table] == list(range(1, int(ids.max()) + 1))
    assert [int(r["area"]) for r in table] == list(np.bincount(ids.ravel())[1:])
    from PIL import Image

    index = np.asarray(Image.open(tmp_path / "out" / "scene.png"))
    assert np.array_equal(index, expected.labels) and SPEC.boundary_class not in np.unique(index)


def test_a_slide_gets_the_same_objects_chunk_by_chunk(tmp_path, model, scene):
    expected = Segmenter.load(model, device="cpu").segment(scene, tile_size=TILE, instances=True)
    slide = write_pyramid_tiff(tmp_path / "slide.ome.tif", scene, levels=1, tile=32)
    assert main(["segment", str(slide), "-o", str(tmp_path / "out"), "--model", str(model), "--tile", str(TILE),
                 "--chunk", "64", "--format", "ome-zarr", "instances", "measurements"]) == 0
    out = tmp_path / "out"
    classes = LabelStore.open(out / "slide.ome.zarr")
    assert len(classes.blocks()) >= 9  # objects cross chunk borders
    objects = LabelStore.open(out / "slide_instances.ome.zarr").read()
    assert np.array_equal(objects, expected.instances)  # one id per object across chunks, as in memory
    assert np.array_equal(classes.read(), expected.labels)  # the boundary folded into the objects' classes
    assert len(rows(out / "slide_measurements.csv")) == int(expected.instances.max())
    assert sorted(p.name for p in out.iterdir()) == ["slide.ome.zarr", "slide_instances.ome.zarr",
                                                     "slide_measurements.csv"]  # no work stores left
