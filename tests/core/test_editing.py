from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.document.editing import (EMPTY, Box, fill_polygon, flood_fill, mask_box, pick, segment_box,
                          stamp_segment)

SETTINGS = settings(max_examples=150, deadline=None)


# -- Box ---------------------------------------------------------------------------------------
def test_box_union_clip_slices():
    a, b = Box(1, 2, 4, 5), Box(3, 0, 6, 3)
    assert a.union(b) == Box(1, 0, 6, 5)
    assert EMPTY.union(a) == a and a.union(EMPTY) == a
    assert Box(-3, -2, 4, 50).clip(3, 10) == Box(0, 0, 3, 10)
    assert Box(5, 5, 9, 9).clip(3, 3).is_empty
    assert Box(2, 2, 2, 7).is_empty and not a.is_empty
    arr = np.arange(100).reshape(10, 10)
    assert arr[a.slices].shape == (3, 3) and a.area == 9
    assert a.intersect(b) == Box(3, 2, 4, 3)


def test_mask_box_is_tight():
    m = np.zeros((6, 7), bool)
    assert mask_box(m) == EMPTY
    m[2, 3] = m[4, 1] = True
    assert mask_box(m) == Box(2, 1, 5, 4)
    assert mask_box(m, (10, 20)) == Box(12, 21, 15, 24)


# -- stamp_segment ---------------------------------------------------------------------------------
def reference_capsule(shape, p0, p1, radius):
    """Brute force over the whole image (independent of the bounding-box cropping)."""
    h, w = shape
    r = max(radius, 0.5)
    out = np.zeros(shape, bool)
    (xa, ya), (xb, yb) = p0, p1
    for i in range(h):
        for j in range(w):
            cx, cy = j + 0.5, i + 0.5
            dx, dy = xb - xa, yb - ya
            L2 = dx * dx + dy * dy
            t = 0.0 if L2 == 0 else min(1.0, max(0.0, ((cx - xa) * dx + (cy - ya) * dy) / L2))
            qx, qy = xa + t * dx, ya + t * dy
            out[i, j] = (cx - qx) ** 2 + (cy - qy) ** 2 <= r * r + 1e-9
    for x, y in (p0, p1):
        if 0 <= math.floor(y) < h and 0 <= math.floor(x) < w:
            out[math.floor(y), math.floor(x)] = True
    return out


@pytest.mark.parametrize("radius", [3, 7.5, 20, 40])
def test_dot_area_close_to_pi_r_squared(radius):
    a = np.zeros((128, 128), np.uint8)
    stamp_segment(a, (64.3, 63.8), (64.3, 63.8), radius, 1)
    assert abs(int(a.sum()) - math.pi * radius**2) <= 0.06 * math.pi * radius**2


def test_radius_half_is_one_pixel_even_on_a_corner():
    for point in [(5.5, 3.5), (5.0, 3.0), (5.9, 3.1)]:
        a = np.zeros((10, 10), np.uint8)
        box = stamp_segment(a, point, point, 0.5, 7)
        assert int((a == 7).sum()) == 1 and a[3, 5] == 7 and box == Box(3, 5, 4, 6)


def test_one_pixel_line_is_connected():
    a = np.zeros((20, 40), np.uint8)
    stamp_segment(a, (1.5, 2.5), (35.5, 14.5), 0.5, 1)
    for j in range(1, 36):
        assert a[:, j].any()
    assert a.sum() <= 36 + 13


def test_segment_covers_endpoints_and_returns_tight_box():
    a = np.zeros((60, 80), np.uint8)
    before = a.copy()
    box = stamp_segment(a, (10.2, 12.7), (55.9, 40.1), 3, 4)
    assert a[12, 10] == 4 and a[40, 55] == 4
    assert box == mask_box(a != before)


def test_clipping_at_borders_and_fully_outside():
    a = np.zeros((20, 20), np.uint8)
    box = stamp_segment(a, (-5.0, -5.0), (2.0, 2.0), 3, 1)
    assert box.y0 == 0 and box.x0 == 0 and a[0, 0] == 1 and a[2, 2] == 1
    b = np.zeros((20, 20), np.uint8)
    assert stamp_segment(b, (-50.0, 5.0), (-30.0, 5.0), 3, 1) == EMPTY and not b.any()
    assert segment_box((-50.0, 5.0), (-30.0, 5.0), 3, b.shape).is_empty


def test_nothing_changes_when_value_already_there():
    a = np.full((10, 10), 3, np.uint8)
    called = []
    assert stamp_segment(a, (5, 5), (6, 6), 2, 3, before=called.append) == EMPTY
    assert called == []


def test_protect_keeps_listed_classes():
    a = np.zeros((30, 30), np.uint8)
    a[:, 15:] = 2
    stamp_segment(a, (5.0, 15.0), (25.0, 15.0), 4, 1, protect={2})
    assert (a[:, 15:] == 2).all() and (a[:, :15] == 1).any()
    stamp_segment(a, (5.0, 15.0), (25.0, 15.0), 4, 3, protect=np.array([1, 2]))
    assert not (a == 3).any()


@SETTINGS
@given(st.tuples(st.floats(-4, 20), st.floats(-4, 16)), st.tuples(st.floats(-4, 20), st.floats(-4, 16)),
       st.sampled_from([0.0, 0.5, 1.0, 1.7, 3.0, 6.0]))
def test_capsule_matches_brute_force(p0, p1, radius):
    a = np.zeros((12, 16), np.uint8)
    calls = []
    box = stamp_segment(a, p0, p1, radius, 1, before=lambda b: calls.append((b, a.copy())))
    expected = reference_capsule(a.shape, p0, p1, radius)
    assert np.array_equal(a == 1, expected)
    assert box == mask_box(expected)
    if not box.is_empty:  # the hook saw the untouched array and a box covering the change
        (hook_box, seen), = calls
        assert not seen.any() and hook_box.union(box) == hook_box


# -- flood_fill --------------------------------------------------------------------------------------
def reference_fill(a, x, y, value, connectivity):
    a = a.copy()
    target = a[y, x]
    if target == value:
        return a
    steps = [(0, 1), (1, 0), (0, -1), (-1, 0)]
    if connectivity == 8:
        steps += [(1, 1), (1, -1), (-1, 1), (-1, -1)]
    seen = {(y, x)}
    todo = deque([(y, x)])
    while todo:
        i, j = todo.popleft()
        a[i, j] = value
        for di, dj in steps:
            n = (i + di, j + dj)
            if 0 <= n[0] < a.shape[0] and 0 <= n[1] < a.shape[1] and n not in seen and a[n] == target:
                seen.add(n)
                todo.append(n)
    return a


def test_flood_fill_connectivity_on_diagonal_pattern():
    a = np.array([[1, 0, 0, 0],
                  [0, 1, 0, 0],
                  [0, 0, 1, 1],
                  [0, 0, 0, 1]], np.uint8)
    four = a.copy()
    assert flood_fill(four, 0, 0, 5, 4) == Box(0, 0, 1, 1)
    assert (four == 5).sum() == 1
    eight = a.copy()
    assert flood_fill(eight, 0, 0, 5, 8) == Box(0, 0, 4, 4)
    assert (eight == 5).sum() == 5
    # the diagonal of 1s splits the background under 4-connectivity only (it leaks at corners)
    bg4, bg8 = a.copy(), a.copy()
    assert flood_fill(bg4, 3, 0, 7, 4) == Box(0, 1, 2, 4)
    assert (bg4 == 7).sum() == 5 and bg4[1, 0] == 0
    assert flood_fill(bg8, 3, 0, 7, 8) == Box(0, 0, 4, 4)
    assert (bg8 == 7).sum() == 11


def test_flood_fill_trivial_cases():
    a = np.zeros((5, 5), np.uint8)
    assert flood_fill(a, 1, 1, 0) == EMPTY
    assert flood_fill(a, 5, 1, 3) == EMPTY and flood_fill(a, -1, 0, 3) == EMPTY
    assert flood_fill(a, 1, 1, 3, protect={0}) == EMPTY and not a.any()
    with pytest.raises(ValueError):
        flood_fill(a, 1, 1, 3, connectivity=6)
    assert flood_fill(a, 2.7, 0.2, 3) == Box(0, 0, 5, 5) and (a == 3).all()


def test_flood_fill_large_region_and_hook_bands():
    a = np.zeros((1000, 900), np.uint8)
    a[500, :] = 1  # wall: only the top half fills
    boxes = []
    box = flood_fill(a, 10, 10, 2, before=boxes.append)
    assert box == Box(0, 0, 500, 900)
    assert (a[:500] == 2).all() and (a[501:] == 0).all()
    assert len(boxes) > 1 and all(b.height <= 64 for b in boxes)


def test_flood_fill_diagonal_band_hooks_stay_narrow():
    a = np.ones((512, 512), np.uint8)
    for i in range(512):
        a[i, max(0, i - 3):i + 3] = 0
    boxes = []
    flood_fill(a, 0, 0, 4, before=boxes.append)
    assert sum(b.area for b in boxes) < 0.3 * 512 * 512


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.sampled_from([4, 8]), st.integers(0, 3))
def test_flood_fill_matches_bfs(seed, connectivity, value):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(1, 14, 2)
    a = rng.integers(0, 3, (h, w)).astype(np.uint8)
    y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
    expected = reference_fill(a, x, y, value, connectivity)
    before = a.copy()
    box = flood_fill(a, x, y, value, connectivity)
    assert np.array_equal(a, expected)
    assert box == mask_box(before != a)


# -- fill_polygon -------------------------------------------------------------------------------------
def reference_polygon(shape, pts):
    h, w = shape
    out = np.zeros(shape, bool)
    n = len(pts)
    for i in range(h):
        yc = i + 0.5
        xs = []
        for k in range(n):
            (x0, y0), (x1, y1) = pts[k], pts[(k + 1) % n]
            if (y0 <= yc < y1) or (y1 <= yc < y0):
                xs.append(x0 + (yc - y0) * (x1 - x0) / (y1 - y0))
        for j in range(w):
            out[i, j] = sum(x <= j + 0.5 for x in xs) % 2 == 1
    return out


def test_polygon_square_pixel_count():
    a = np.zeros((20, 20), np.uint8)
    assert fill_polygon(a, [(0, 0), (10, 0), (10, 10), (0, 10)], 1) == Box(0, 0, 10, 10)
    assert a.sum() == 100
    b = np.zeros((20, 20), np.uint8)
    fill_polygon(b, [(2.5, 2.5), (5.5, 2.5), (5.5, 5.5), (2.5, 5.5)], 1)
    assert b.sum() == 9 and b[2:5, 2:5].all()


def test_polygon_clipped_at_borders():
    a = np.zeros((10, 12), np.uint8)
    box = fill_polygon(a, [(-5, -5), (6, -5), (6, 4), (-5, 4)], 2)
    assert box == Box(0, 0, 4, 6) and (a == 2).sum() == 24
    assert fill_polygon(a, [(20, 20), (30, 20), (30, 30)], 2) == EMPTY


def test_polygon_degenerate_cases():
    a = np.zeros((10, 10), np.uint8)
    assert fill_polygon(a, [], 1) == EMPTY
    assert fill_polygon(a, [(1, 1), (8, 8)], 1) == EMPTY
    assert fill_polygon(a, [(1, 1), (4, 4), (8, 8)], 1) == EMPTY
    assert fill_polygon(a, [(1, 1), (8, 1), (4, 1)], 1) == EMPTY
    assert fill_polygon(a, [(1, 1), (1.2, 1), (1.2, 1.2)], 1) == EMPTY  # covers no centre
    assert not a.any()


def test_polygon_protect_and_tight_box():
    a = np.zeros((10, 10), np.uint8)
    a[:, :5] = 3
    box = fill_polygon(a, [(0, 0), (10, 0), (10, 10), (0, 10)], 1, protect={3})
    assert box == Box(0, 5, 10, 10) and (a[:, :5] == 3).all()


coord = st.sampled_from([v / 4 for v in range(-8, 57)])


@SETTINGS
@given(st.lists(st.tuples(coord, coord), min_size=3, max_size=7))
def test_polygon_matches_point_in_polygon(pts):
    a = np.zeros((11, 13), np.uint8)
    box = fill_polygon(a, pts, 1)
    expected = reference_polygon(a.shape, pts)
    assert np.array_equal(a == 1, expected)
    assert box == mask_box(expected)


def test_pick():
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert pick(a, 2.9, 1.1) == 6
    assert pick(a, -0.5, 0) is None and pick(a, 4, 0) is None and pick(a, 0, 3) is None
