"""Mask -> objects: 8-connected components per class, exact pixel outlines, block-wise."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import shapely
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from core.io.objects import (
    ObjectOptions,
    block_objects,
    centre_joined_ring,
    centre_rings,
    fill_rings,
    mask_objects,
    object_pixels,
    rasterize,
)

EXACT = ObjectOptions(tolerance=0)


def components(labels: np.ndarray) -> list[tuple[int, set]]:
    """An independent 8-connected flood fill: (class, pixel set) per component."""
    seen = np.zeros(labels.shape, bool)
    out = []
    h, w = labels.shape
    for y, x in zip(*np.nonzero(labels)):
        if seen[y, x]:
            continue
        cid, pixels, queue = labels[y, x], set(), deque([(y, x)])
        seen[y, x] = True
        while queue:
            cy, cx = queue.popleft()
            pixels.add((cy, cx))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = cy + dy, cx + dx
                    if 0 <= ny < h and 0 <= nx < w and not seen[ny, nx] and labels[ny, nx] == cid:
                        seen[ny, nx] = True
                        queue.append((ny, nx))
        out.append((int(cid), pixels))
    return out


def pixel_set(obj) -> set:
    local, (x0, y0) = object_pixels(obj)
    ys, xs = np.nonzero(local)
    return set(zip((ys + y0).tolist(), (xs + x0).tolist()))


def blobs(seed: int, h: int = 40, w: int = 50) -> np.ndarray:
    """Blocky random objects with holes, touching neighbours and corner contacts."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 4, (h // 4 + 1, w // 4 + 1)).astype(np.uint8)
    labels = np.kron(small, np.ones((4, 4), np.uint8))[:h, :w]
    labels[rng.random((h, w)) < 0.04] = 0
    return labels


noise = arrays(np.uint8, st.tuples(st.integers(1, 24), st.integers(1, 24)), elements=st.integers(0, 3))


@st.composite
def drawn(draw) -> np.ndarray:
    """Rectangles with rectangular holes (touching or overlapping each other, on the border or
    not), plus one-pixel objects."""
    h, w = draw(st.integers(2, 28)), draw(st.integers(2, 28))
    labels = np.zeros((h, w), np.uint8)
    for _ in range(draw(st.integers(1, 6))):
        y0, x0 = draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))
        y1, x1 = draw(st.integers(y0 + 1, h)), draw(st.integers(x0 + 1, w))
        labels[y0:y1, x0:x1] = draw(st.integers(1, 3))
        if y1 - y0 > 2 and x1 - x0 > 2 and draw(st.booleans()):
            labels[draw(st.integers(y0 + 1, y1 - 2)), draw(st.integers(x0 + 1, x1 - 2))] = 0  # a hole
    for _ in range(draw(st.integers(0, 4))):
        labels[draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))] = draw(st.integers(0, 3))
    return labels


@st.composite
def specked(draw) -> np.ndarray:
    """One class with one-pixel background specks: notches in the border, holes at the border
    and side by side, parts in a hole touching it only at corners."""
    h, w = draw(st.integers(2, 20)), draw(st.integers(2, 28))
    zeros = draw(st.integers(1, 4))  # in 10
    return draw(arrays(np.uint8, (h, w), elements=st.sampled_from([1] * (10 - zeros) + [0] * zeros)))


masks = st.one_of(noise, drawn(), specked())


def notched() -> np.ndarray:
    """A notch in the top border beside a hole whose nearest outline point was half a pixel
    (1.5, 0.5) from the notch: YOLO's cut there filled the notch."""
    labels = np.ones((10, 24), np.uint8)
    labels[0, 1] = labels[2, 2] = labels[8, 4] = 0
    return labels


def cut_past_a_notch() -> np.ndarray:
    """The nearest cut to the hole ran flatter than a diagonal from a notch's corner, where
    Pillow's fill shifts a crossing by a pixel: a pixel beside the notch was lost."""
    labels = np.ones((12, 11), np.uint8)
    labels[0, 0] = labels[5, 0] = labels[6, 5] = 0
    return labels


def island_in_a_hole() -> np.ndarray:
    """A one-pixel part in a hole, touching it at its corners: one object."""
    labels = np.ones((5, 5), np.uint8)
    labels[1, 2] = labels[2, 1] = labels[2, 3] = labels[3, 2] = 0
    return labels


def test_one_object_per_8_connected_component_with_holes():
    labels = np.zeros((12, 14), np.uint8)
    labels[1:8, 1:8] = 1
    labels[3:5, 3:5] = 0  # a hole
    labels[8, 8] = 1  # touches the square at a corner only: same object (8-connectivity)
    labels[10, 0] = 1  # one pixel on the border: its own object
    labels[1:4, 9:14] = 2  # another class touching nothing
    objs = mask_objects(labels, EXACT)
    assert [(o.class_id, o.area, o.bbox, o.has_holes) for o in objs] == [
        (1, 46, (1, 1, 8, 8), True), (1, 1, (0, 10, 1, 1), False), (2, 15, (9, 1, 5, 3), False)]
    first = objs[0]
    assert first.geometry.geom_type == "MultiPolygon" and len(first.parts) == 2
    assert first.geometry.is_valid and first.exact.area == 46
    (outer, holes), _ = first.rings()
    assert len(holes) == 1 and shapely.Polygon(holes[0]).area == 4
    assert mask_objects(labels, ObjectOptions(min_area=2, tolerance=0))[-1].class_id == 2
    assert len(mask_objects(labels, ObjectOptions(min_area=2))) == 2
    with pytest.raises(ValueError, match="minimum object area"):
        ObjectOptions(min_area=0)
    with pytest.raises(ValueError, match="tolerance"):
        ObjectOptions(tolerance=-1)


@settings(max_examples=40, deadline=None)
@given(masks)
def test_objects_are_the_components_and_rasterise_back_exactly(labels):
    objs = mask_objects(labels, EXACT)
    expected = sorted((cid, sorted(px)) for cid, px in components(labels))
    assert sorted((o.class_id, sorted(pixel_set(o))) for o in objs) == expected
    back = np.zeros_like(labels)
    for o in objs:
        assert o.geometry.is_valid and o.area == len(pixel_set(o))
        rasterize(o.geometry, labels.shape, back, o.class_id)  # tolerance 0: the same pixels
    np.testing.assert_array_equal(back, labels)


@settings(max_examples=25, deadline=None)
@given(masks)
def test_default_tolerance_keeps_geometries_valid_and_close(labels):
    for o in mask_objects(labels):
        assert o.geometry.is_valid and not o.geometry.is_empty
        assert o.geometry.symmetric_difference(o.exact).area <= 0.5 * o.exact.length


@settings(max_examples=30, deadline=None)
@given(masks)
@example(notched())
@example(cut_past_a_notch())
@example(island_in_a_hole())
def test_centre_outlines_fill_back_to_the_pixels_as_pillow_fills(labels):
    """Pillow (labelme's shape_to_mask) fills outlines included; at tolerance 0 exactly."""
    for o in mask_objects(labels, EXACT):
        pixels, origin = object_pixels(o)
        np.testing.assert_array_equal(fill_rings(centre_rings(o, 0), pixels.shape, origin), pixels)
        one = fill_rings([(centre_joined_ring(o, 0), False)], pixels.shape, origin)  # YOLO's cuts
        np.testing.assert_array_equal(one, pixels)


@pytest.mark.parametrize("seed", range(4))
def test_default_tolerance_centre_outlines_keep_iou_098(seed):
    labels = blobs(seed)
    for o in mask_objects(labels):
        pixels, origin = object_pixels(o)
        if pixels.sum() < 20:
            continue
        for filled in (fill_rings(centre_rings(o, 0.5), pixels.shape, origin),
                       fill_rings([(centre_joined_ring(o, 0.5), False)], pixels.shape, origin)):
            assert (filled & pixels).sum() / (filled | pixels).sum() >= 0.98


class BlockReader:
    """A 2-D array that may only be read in blocks of at most ``block`` x ``block``."""

    def __init__(self, array: np.ndarray, block: int):
        self.array, self.block, self.reads = array, block, 0
        self.shape, self.dtype = array.shape, array.dtype

    def __getitem__(self, key):
        rows, cols = key
        assert rows.stop - rows.start <= self.block and cols.stop - cols.start <= self.block
        self.reads += 1
        return self.array[key]


@settings(max_examples=25, deadline=None)
@given(masks, st.integers(1, 9))
def test_block_wise_objects_equal_whole_mask_objects(labels, block):
    reader = BlockReader(labels, block)
    chunked = block_objects(reader, EXACT, block=block)
    whole = mask_objects(labels, EXACT)
    assert reader.reads == -(-labels.shape[0] // block) * -(-labels.shape[1] // block)
    assert [(o.class_id, o.area, o.bbox) for o in chunked] == [(o.class_id, o.area, o.bbox) for o in whole]
    for a, b in zip(chunked, whole):
        assert a.exact.symmetric_difference(b.exact).area == 0


def test_block_wise_on_a_larger_mask_merges_objects_across_borders():
    labels = blobs(7, 200, 180)
    labels[50:150, 20:160] = 3  # one object across many blocks
    chunked = block_objects(BlockReader(labels, 32), ObjectOptions(), block=32)
    whole = mask_objects(labels)
    assert len(chunked) == len(whole) and [o.area for o in chunked] == [o.area for o in whole]
    big = max(chunked, key=lambda o: o.area)
    assert big.geometry.is_valid and big.area >= 100 * 140
