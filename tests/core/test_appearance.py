"""The broader training scenes: reproducible, labelled like core.synthetic's, and not the same look."""

from __future__ import annotations

import numpy as np
from PIL import Image

from core.appearance import _occlude, broad_scene
from core.synthetic import generate_scene, scene_seed, write_dataset


def test_a_seed_gives_the_same_scene_and_labels_keep_the_shape_classes():
    for i in range(6):
        rgb, labels = broad_scene(scene_seed(1, i), 96, 128)
        again = broad_scene(scene_seed(1, i), 96, 128)
        assert rgb.shape == (96, 128, 3) and rgb.dtype == np.uint8 and labels.shape == (96, 128)
        assert np.array_equal(rgb, again[0]) and np.array_equal(labels, again[1])
        assert labels.max() <= 4 and (labels > 0).any()


def test_occluders_hide_no_more_than_a_third_of_any_class():
    rng = np.random.default_rng(0)
    for i in range(10):
        rgb, labels = generate_scene(scene_seed(2, i), 128, 128)
        before = np.bincount(labels.ravel(), minlength=5)
        rgb = rgb.copy()
        _occlude(rng, rgb, labels)
        after = np.bincount(labels.ravel(), minlength=5)
        assert np.all(after[1:] * 3 >= before[1:] * 2)


def test_the_dataset_writer_draws_broad_scenes_on_request(tmp_path):
    write_dataset(tmp_path / "plain", 2, seed=4, height=64, width=64)
    write_dataset(tmp_path / "broad", 2, seed=4, height=64, width=64, appearance="broad")
    plain = np.asarray(Image.open(tmp_path / "plain" / "images" / "scene_00000.png"))
    broad = np.asarray(Image.open(tmp_path / "broad" / "images" / "scene_00000.png"))
    assert np.array_equal(broad, broad_scene(scene_seed(4, 0), 64, 64)[0]) and not np.array_equal(plain, broad)
