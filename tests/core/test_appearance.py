"""The broader training scenes: reproducible, labelled like core.training.synthetic's, and not the same look."""

from __future__ import annotations

import numpy as np
from PIL import Image

from core.training.appearance import _occlude, broad_scene
from core.training.synthetic import generate_scene, scene_seed, write_dataset


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


def test_mosaic_backgrounds_are_straight_edged_cells_that_carry_no_label():
    """Cells cut by lines are convex polygons; bricks are rectangles; neither is a shape class."""
    from shapely.geometry import MultiPoint

    from core.training.appearance import _cells, _mosaic
    for seed in range(8):
        ids, edge = _cells(np.random.default_rng(seed), 96, 96)
        assert ids.max() >= 1 and edge.min() < 1  # several cells, and their borders cross the image
        for cell in range(int(ids.max()) + 1):
            ys, xs = np.nonzero(ids == cell)
            if len(ys) < 50:
                continue
            corners = np.concatenate([np.stack([xs + dx, ys + dy], 1) for dx in (0, 1) for dy in (0, 1)])
            hull = MultiPoint(corners).convex_hull
            assert len(ys) >= hull.area - hull.length  # convex up to pixel steps: no holes, no bays
        rgb, labels = generate_scene(np.random.default_rng(seed), 96, 96, background=_mosaic)
        assert labels.max() <= 4 and rgb.dtype == np.uint8
