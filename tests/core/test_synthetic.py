"""The synthetic shape dataset: reproducible, and labelled consistently with what is drawn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from core.training.synthetic import (
    ELLIPSE,
    RECTANGLE,
    SHAPE_CLASSES,
    STAR,
    TRIANGLE,
    generate_scene,
    render_shapes,
    scene_seed,
    shape_vertices,
    write_dataset,
)


@pytest.fixture(scope="module")
def batch() -> list[tuple[np.ndarray, np.ndarray]]:
    return [generate_scene(scene_seed(2024, i)) for i in range(60)]


def square(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)


# --- classes and geometry -------------------------------------------------------------------


def test_shape_classes() -> None:
    assert [c.id for c in SHAPE_CLASSES] == [0, 1, 2, 3, 4]
    names = ["background", "ellipse", "rectangle", "triangle", "star"]
    assert [c.name for c in SHAPE_CLASSES] == names
    assert SHAPE_CLASSES[0].color == (0, 0, 0)
    colors = [np.array(c.color) for c in SHAPE_CLASSES]
    for i in range(5):
        for j in range(i + 1, 5):
            assert np.abs(colors[i] - colors[j]).max() >= 80, (i, j)


def _angles(tri: np.ndarray) -> np.ndarray:
    out = []
    for k in range(3):
        a, b, c = tri[k], tri[(k + 1) % 3], tri[(k + 2) % 3]
        u, v = b - a, c - a
        out.append(math.degrees(math.acos(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v))))
    return np.array(out)


def test_shape_geometry() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        d = rng.uniform(8, 80)
        tri = shape_vertices(TRIANGLE, d, rng)
        assert np.allclose(np.linalg.norm(tri, axis=1), d / 2)  # circumscribed circle
        angles = _angles(tri)
        assert angles.sum() == pytest.approx(180) and angles.min() >= 25 - 1e-6
        rect = shape_vertices(RECTANGLE, d, rng)
        sides = np.linalg.norm(np.roll(rect, -1, axis=0) - rect, axis=1)
        assert 1 - 1e-9 <= sides.max() / sides.min() <= 3 + 1e-9
        assert np.hypot(sides[0], sides[1]) == pytest.approx(d)
        star = np.linalg.norm(shape_vertices(STAR, d, rng), axis=1)
        assert len(star) == 10 and np.allclose(star[::2], d / 2)
        assert 0.38 - 1e-9 <= star[1] / star[0] <= 0.5 + 1e-9
        ell = np.linalg.norm(shape_vertices(ELLIPSE, d, rng), axis=1)
        assert ell.max() == pytest.approx(d / 2) and 1 <= ell.max() / ell.min() <= 2 + 1e-6
    with pytest.raises(ValueError):
        shape_vertices(0, 10, rng)


# --- determinism and shape of the output ----------------------------------------------------


def test_same_seed_same_scene() -> None:
    rgb1, lab1 = generate_scene(123)
    rgb2, lab2 = generate_scene(123)
    assert np.array_equal(rgb1, rgb2) and np.array_equal(lab1, lab2)
    rgb3, lab3 = generate_scene(np.random.default_rng(123))  # a Generator is used as is
    assert np.array_equal(rgb1, rgb3) and np.array_equal(lab1, lab3)
    rgb4, _ = generate_scene(124)
    assert rgb4.shape != rgb1.shape or not np.array_equal(rgb1, rgb4)
    a, _ = generate_scene(5, 64, 64)
    b, _ = generate_scene(6, 64, 64)
    assert not np.array_equal(a, b)


def test_global_rng_untouched() -> None:
    np.random.seed(0)
    expected = np.random.random()
    np.random.seed(0)
    generate_scene(3)
    assert np.random.random() == expected


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32), st.integers(16, 160), st.integers(16, 160))
def test_any_size_and_seed(seed: int, h: int, w: int) -> None:
    rgb, lab = generate_scene(seed, h, w)
    assert rgb.shape == (h, w, 3) and rgb.dtype == np.uint8
    assert lab.shape == (h, w) and lab.dtype == np.uint8
    assert lab.max() <= 4


def test_sizes_vary(batch) -> None:
    shapes = {lab.shape for _, lab in batch}
    assert len(shapes) >= 30
    assert any(h != w for h, w in shapes)
    for rgb, lab in batch:
        assert rgb.shape[:2] == lab.shape
        assert all(96 <= s <= 384 and s % 8 == 0 for s in lab.shape)


def test_classes_all_occur(batch) -> None:
    present = np.zeros(5)
    pixels = np.zeros(5)
    for _, lab in batch:
        assert set(np.unique(lab)) <= {0, 1, 2, 3, 4}
        counts = np.bincount(lab.ravel(), minlength=5)
        present += counts > 0
        pixels += counts
    assert (present[1:] >= 0.6 * len(batch)).all(), present
    share = pixels[1:] / pixels[1:].sum()
    assert (share >= 0.1).all(), share  # no class starved
    assert 0.03 <= pixels[1:].sum() / pixels.sum() <= 0.4


def test_colour_does_not_reveal_class(batch) -> None:
    means = {c: [] for c in range(1, 5)}
    for rgb, lab in batch:
        for c in range(1, 5):
            if (lab == c).any():
                means[c].append(rgb[lab == c].astype(float).mean(0))
    per_class = np.array([np.mean(means[c], axis=0) for c in range(1, 5)])
    assert np.ptp(per_class, axis=0).max() < 30, per_class


def test_shape_sizes_vary(batch) -> None:
    # Horizontal run lengths of foreground stand in for shape sizes (no connected components
    # without scipy): both small and large shapes must occur.
    runs = []
    for _, lab in batch:
        fg = lab > 0
        edges = np.diff(np.pad(fg, ((0, 0), (1, 1))).astype(np.int8), axis=1)
        starts, ends = np.nonzero(edges == 1), np.nonzero(edges == -1)
        runs.extend(ends[1] - starts[1])
    runs = np.array(runs)
    assert (runs <= 6).mean() > 0.1 and (runs >= 40).mean() > 0.02


# --- drawing --------------------------------------------------------------------------------


def test_last_drawn_owns_the_pixel() -> None:
    a = (RECTANGLE, square(5, 5, 25, 25), (255, 0, 0))
    b = (STAR, square(15, 15, 35, 35), (0, 0, 255))  # any polygon; the class id is what counts
    rgb, lab = render_shapes([a, b], 40, 40)
    assert lab[20, 20] == STAR and tuple(rgb[20, 20]) == (0, 0, 255)
    assert lab[10, 10] == RECTANGLE and lab[30, 30] == STAR and lab[2, 2] == 0
    rgb, lab = render_shapes([b, a], 40, 40)
    assert lab[20, 20] == RECTANGLE and tuple(rgb[20, 20]) == (255, 0, 0)


def test_label_is_majority_coverage() -> None:
    # Pixel edges on integer coordinates: exactly the covered pixels, no dilation.
    rgb, lab = render_shapes([(1, square(10, 10, 20, 20), (200, 200, 200))], 30, 30)
    expected = np.zeros((30, 30), bool)
    expected[10:20, 10:20] = True
    assert np.array_equal(lab == 1, expected)
    assert (rgb[expected] == 200).all()
    # Three-quarters covered pixels are labelled and blended; a quarter covered are not.
    rgb, lab = render_shapes([(1, square(9.25, 10, 20.75, 20), (200, 200, 200))], 30, 30)
    assert lab[15, 9] == 1 and lab[15, 20] == 1 and lab[15, 8] == 0 and lab[15, 21] == 0
    assert 0 < rgb[15, 9, 0] < 200
    rgb, lab = render_shapes([(1, square(9.75, 10, 20.25, 20), (200, 200, 200))], 30, 30)
    assert lab[15, 9] == 0 and lab[15, 20] == 0 and 0 < rgb[15, 9, 0] < 200


def test_label_area_matches_geometry() -> None:
    t = np.linspace(0, 2 * np.pi, 256, endpoint=False)
    circle = np.stack([50.3 + 30 * np.cos(t), 49.6 + 30 * np.sin(t)], axis=1)
    rgb, lab = render_shapes([(ELLIPSE, circle, (255, 255, 255))], 100, 100)
    assert (lab == ELLIPSE).sum() == pytest.approx(math.pi * 30**2, rel=0.02)
    assert rgb[..., 0].sum() / 255 == pytest.approx(math.pi * 30**2, rel=0.02)
    ys, xs = np.nonzero(lab)
    assert xs.mean() + 0.5 == pytest.approx(50.3, abs=0.15)
    assert ys.mean() + 0.5 == pytest.approx(49.6, abs=0.15)


def _edge_strength(rgb: np.ndarray, lab: np.ndarray) -> tuple[float, float]:
    """Mean image gradient across label boundaries, and everywhere else."""
    f = rgb.astype(float)
    g = np.concatenate([np.abs(np.diff(f, axis=1)).max(-1).ravel(),
                        np.abs(np.diff(f, axis=0)).max(-1).ravel()])
    b = np.concatenate([(lab[:, 1:] != lab[:, :-1]).ravel(), (lab[1:] != lab[:-1]).ravel()])
    return float(g[b].mean()) if b.any() else 0.0, float(g[~b].mean())


def test_labels_line_up_with_drawn_edges(batch) -> None:
    on, off, shifted = [], [], {-1: [], 1: [], 2: []}
    for rgb, lab in batch[:30]:
        edge, rest = _edge_strength(rgb, lab)
        on.append(edge)
        off.append(rest)
        assert edge > 1.2 * rest  # every scene: shapes stand out from their surroundings
        for k in shifted:
            shifted[k].append(_edge_strength(rgb, np.roll(lab, k, axis=1))[0])
    assert np.mean(on) > 4 * np.mean(off)
    # Labels moved by one pixel either way already miss the edges: no off-by-one or half-pixel
    # skew between the drawing and the labels (they share one rasterisation).
    assert np.mean(on) > 1.4 * max(np.mean(shifted[-1]), np.mean(shifted[1]))
    assert np.mean(shifted[1]) > np.mean(shifted[2])


# --- dataset files --------------------------------------------------------------------------


def test_scene_seed() -> None:
    seeds = [scene_seed(7, i) for i in range(100)]
    assert len(set(seeds)) == 100 and all(isinstance(s, int) and s >= 0 for s in seeds)
    assert scene_seed(7, 3) == scene_seed(7, 3) != scene_seed(8, 3)


def test_write_dataset(tmp_path) -> None:
    calls = []
    images, masks = write_dataset(tmp_path / "a", 5, seed=11, height=64, width=80,
                                  progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 5) for i in range(1, 6)]
    assert images == tmp_path / "a" / "images" and masks == tmp_path / "a" / "masks"
    names = [f"scene_{i:05d}.png" for i in range(5)]
    assert sorted(p.name for p in images.iterdir()) == names
    assert sorted(p.name for p in masks.iterdir()) == names
    palette = None
    for i, name in enumerate(names):
        rgb, lab = generate_scene(scene_seed(11, i), 64, 80)
        with Image.open(images / name) as im:
            assert im.mode == "RGB" and np.array_equal(np.asarray(im), rgb)
        with Image.open(masks / name) as m:
            assert m.mode == "P" and np.array_equal(np.asarray(m), lab)
            palette = np.array(m.getpalette()[:15]).reshape(5, 3)
    assert [tuple(p) for p in palette] == [c.color for c in SHAPE_CLASSES]

    write_dataset(tmp_path / "b", 3, seed=11, height=64, width=80)
    for name in names[:3]:
        for sub in ("images", "masks"):
            with Image.open(tmp_path / "a" / sub / name) as x:
                with Image.open(tmp_path / "b" / sub / name) as y:
                    assert np.array_equal(np.asarray(x), np.asarray(y))


def test_write_dataset_varied_sizes(tmp_path) -> None:
    images, masks = write_dataset(tmp_path, 4, seed=3)
    for i in range(4):
        rgb, lab = generate_scene(scene_seed(3, i))
        with Image.open(masks / f"scene_{i:05d}.png") as m:
            assert m.size == (lab.shape[1], lab.shape[0]) and np.array_equal(np.asarray(m), lab)
