"""Per-object measurements (core.objects.measure): the table agrees with scikit-image's
regionprops_table on the same labels, classes follow the majority rule, micrometre columns follow
the file's pixel size, and the table streamed block by block from a chunked label image is the
whole-image table, row for row."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from skimage.measure import regionprops_table

from core.classes import ClassInfo
from core.objects.measure import Columns, iter_rows, measure, read_measurements, write_measurements

CLASSES = [ClassInfo(0, "background", (0, 0, 0)), ClassInfo(1, "nucleus", (200, 0, 0)),
           ClassInfo(2, "cell", (0, 200, 0))]


def ellipses(h: int, w: int, n: int, seed: int = 0, first_id: int = 1, step: int = 1) -> np.ndarray:
    """Non-overlapping ellipses (some touching each other and the border), ids first_id + k * step."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((h, w), np.uint32)
    yy, xx = np.mgrid[:h, :w]
    placed = 0
    for _ in range(n * 20):
        if placed == n:
            break
        cy, cx = rng.integers(0, h), rng.integers(0, w)
        ry, rx, angle = rng.uniform(2, 12), rng.uniform(2, 9), rng.uniform(0, np.pi)
        dy, dx = yy - cy, xx - cx
        u = dy * np.cos(angle) + dx * np.sin(angle)
        v = -dy * np.sin(angle) + dx * np.cos(angle)
        inside = (u / ry) ** 2 + (v / rx) ** 2 <= 1
        if inside.any() and not labels[inside].any():
            labels[inside] = first_id + placed * step
            placed += 1
    return labels


def raw_image(h: int, w: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 60000, (h, w, 2)).astype(np.uint16)


def test_the_table_is_regionprops_table_of_the_same_labels(tmp_path):
    labels = ellipses(120, 160, 40, first_id=5, step=3)  # sparse ids, as other tools write them
    pixels = raw_image(120, 160)
    ref = regionprops_table(labels.astype(np.int64), pixels, properties=(
        "label", "area", "centroid", "bbox", "perimeter", "equivalent_diameter_area", "axis_major_length",
        "axis_minor_length", "orientation", "eccentricity", "solidity", "intensity_mean", "intensity_std",
        "intensity_min", "intensity_max"))
    path = tmp_path / "m.csv"
    count = write_measurements(path, labels, pixels, None, Columns(("DAPI", "GFP"), CLASSES))
    table = read_measurements(path)
    assert count == len(ref["label"]) == 40
    assert [int(v) for v in table["label"]] == ref["label"].tolist()
    assert [int(v) for v in table["area"]] == ref["area"].astype(int).tolist()  # exact
    assert table["class"] == ["1"] * 40 and table["class_name"] == ["nucleus"] * 40  # no class mask: class 1
    for ours, theirs in [("centroid_x", "centroid-1"), ("centroid_y", "centroid-0"), ("perimeter", "perimeter"),
                         ("equivalent_diameter", "equivalent_diameter_area"), ("solidity", "solidity"),
                         ("major_axis_length", "axis_major_length"), ("minor_axis_length", "axis_minor_length"),
                         ("orientation", "orientation"), ("eccentricity", "eccentricity"),
                         ("mean_intensity_DAPI", "intensity_mean-0"), ("mean_intensity_GFP", "intensity_mean-1"),
                         ("std_intensity_GFP", "intensity_std-1"), ("min_intensity_DAPI", "intensity_min-0"),
                         ("max_intensity_GFP", "intensity_max-1")]:
        np.testing.assert_allclose(np.array(table[ours], float), ref[theirs], atol=1e-3, err_msg=ours)
    assert [int(v) for v in table["bbox_x"]] == ref["bbox-1"].tolist()
    assert [int(v) for v in table["bbox_width"]] == (ref["bbox-3"] - ref["bbox-1"]).tolist()
    integrated = [pixels[labels == i, 0].sum() for i in ref["label"]]
    np.testing.assert_allclose(np.array(table["integrated_intensity_DAPI"], float), integrated, rtol=1e-12)


def test_one_channel_has_plain_names_and_no_pixels_no_intensities():
    labels = ellipses(40, 50, 5)
    grey = raw_image(40, 50)[..., 0]
    one = measure(labels, grey)
    assert "mean_intensity" in one and "mean_intensity_channel1" not in one
    np.testing.assert_allclose(one["mean_intensity"], [grey[labels == i].mean() for i in one["label"]])
    shapes_only = measure(labels)
    assert not [c for c in shapes_only if "intensity" in c]
    assert shapes_only["label"].tolist() == one["label"].tolist()


def test_class_is_the_majority_class_under_the_object():
    instances = np.zeros((10, 12), np.uint32)
    instances[1:5, 1:5] = 1  # 12 px of class 2, 4 of class 1
    instances[6:9, 6:10] = 2  # on background only: class 1
    instances[1:3, 7:11] = 3  # 4 px class 1, 4 px class 2: the tie goes to the lower id
    mask = np.zeros((10, 12), np.uint8)
    mask[1:5, 1:5] = 2
    mask[1, 1:5] = 1
    mask[1:3, 7:9], mask[1:3, 9:11] = 1, 2
    table = measure(instances, class_mask=mask, columns=Columns(classes=CLASSES))
    assert table["label"].tolist() == [1, 2, 3]
    assert table["class"].tolist() == [2, 1, 1]
    assert table["class_name"].tolist() == ["cell", "nucleus", "nucleus"]


def test_micrometre_columns_from_the_pixel_size(tmp_path):
    from core.io.physical import physical_sizes

    labels = ellipses(60, 70, 8)
    image = tmp_path / "cells.ome.tif"
    tifffile.imwrite(image, raw_image(60, 70)[..., 0], metadata={"axes": "YX", "PhysicalSizeX": 0.25,
                                                                 "PhysicalSizeY": 0.25})
    table = measure(labels, columns=Columns(pixel_size=physical_sizes(image)))
    np.testing.assert_allclose(table["area_um2"], table["area"] * 0.0625)
    np.testing.assert_allclose(table["centroid_x_um"], table["centroid_x"] * 0.25)
    np.testing.assert_allclose(table["perimeter_um"], table["perimeter"] * 0.25)
    stretched = measure(labels, columns=Columns(pixel_size={"X": 0.25, "Y": 0.5}))
    np.testing.assert_allclose(stretched["area_um2"], stretched["area"] * 0.125)
    assert "perimeter_um" not in stretched  # lengths in µm need square pixels
    assert "area_um2" not in measure(labels)  # no pixel size: pixels only


def tiled_labels(tile: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """A label image of repeated tiles, each tile's ids offset so that every object has its own."""
    top = int(tile.max())
    return np.block([[np.where(tile > 0, tile + (r * cols + c) * top, 0) for c in range(cols)] for r in range(rows)]
                    ).astype(np.uint32)


def crossing_tile() -> np.ndarray:
    """Objects that cross block borders every way: straight, by one diagonal pixel, a U whose arms
    meet only in the next band, an object spanning three blocks, and small ones."""
    tile = ellipses(96, 96, 25, seed=3)
    top = int(tile.max())
    extra = np.zeros_like(tile)
    extra[40:90, 10:14] = top + 1  # U: two arms joined at the bottom
    extra[40:90, 30:34] = top + 1
    extra[86:90, 10:34] = top + 1
    extra[63, 63], extra[64, 64] = top + 2, top + 2  # joined by a corner across a block corner
    extra[5:8, 0:96] = top + 3  # a bar across every block of its band
    extra[20:60, 70:74] = top + 4
    tile[np.isin(tile, tile[extra > 0])] = 0  # no ellipse cut in two
    return np.where(extra > 0, extra, tile)


@pytest.mark.parametrize("block", [32, 100])
def test_streamed_from_a_chunked_mask_is_the_whole_image_table(tmp_path, block):
    zarr = pytest.importorskip("zarr")
    labels = tiled_labels(crossing_tile(), 2, 3)
    pixels = raw_image(*labels.shape)
    mask = (np.arange(labels.size).reshape(labels.shape) % 3).astype(np.uint8)
    store = zarr.open_array(str(tmp_path / "labels.zarr"), mode="w", shape=labels.shape, chunks=(32, 32),
                            dtype="uint32")
    store[:] = labels
    columns = Columns(("a", "b"), CLASSES, {"X": 0.5, "Y": 0.5})
    whole = [r for batch in iter_rows(labels, pixels, mask, columns) for r in batch]
    streamed = [r for batch in iter_rows(store, pixels, mask, columns, block=block) for r in batch]
    assert len(streamed) == len(whole) == len(np.unique(labels)) - 1
    assert sorted(streamed) == whole  # every value identical, not just close
    assert len(list(iter_rows(store, pixels, mask, columns, block=block))) > 1  # rows came in batches


def test_streamed_csv_equals_the_in_memory_csv(tmp_path):
    zarr = pytest.importorskip("zarr")
    labels = tiled_labels(crossing_tile(), 2, 2)
    store = zarr.open_array(str(tmp_path / "l.zarr"), mode="w", shape=labels.shape, chunks=(48, 48), dtype="uint32")
    store[:] = labels
    pixels = raw_image(*labels.shape)
    write_measurements(tmp_path / "whole.csv", labels, pixels)
    write_measurements(tmp_path / "streamed.csv", store, pixels, block=48)
    whole, streamed = (tmp_path / "whole.csv").read_text().splitlines(), \
        (tmp_path / "streamed.csv").read_text().splitlines()
    assert whole[0] == streamed[0] and sorted(whole[1:]) == sorted(streamed[1:])


def test_an_id_used_for_two_separate_objects_is_refused_when_streamed():
    labels = np.zeros((64, 64), np.uint32)
    labels[2:6, 2:6] = 7
    labels[50:54, 50:54] = 7  # the same id far away, in another block
    assert measure(labels)["area"].tolist() == [32]  # in memory: one object of two parts (regionprops)
    with pytest.raises(ValueError, match="the id 7 marks pixels in separate places .*x 50, y 50"):
        measure(labels, block=16)


@pytest.mark.parametrize("bad, message", [
    (np.ones((8, 8), np.float32), "float32 values; object ids must be whole numbers"),
    (np.full((8, 8), -2, np.int32), "negative ids"),
    (np.full((8, 8), 2**32, np.uint64), "more than 2\\^32 objects"),
])
def test_bad_label_arrays_are_one_sentence(bad, message):
    with pytest.raises(ValueError, match=message):
        measure(bad)


def test_sizes_must_agree():
    with pytest.raises(ValueError, match="the label image is 8x6 but the image is 9x6"):
        measure(np.zeros((6, 8), np.uint16), np.zeros((6, 9), np.uint16))
