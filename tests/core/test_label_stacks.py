"""Label stacks: a stack's mask reads back with the planes it was written with, in every format."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from core.classes import default_classes
from core.io.label_stacks import StackReader, read_label_stack, write_label_stack
from core.io.mask_naming import find_mask, plane_stem, stack_mask_path, stack_strokes_path
from core.io.masks import MaskError
from core.io.physical import physical_sizes

RNG = np.random.default_rng(3)


@pytest.mark.parametrize("name", ["m.tif", "m.ome.tif", "m.ome.zarr", "m.npy"])
def test_every_format_reads_back_with_the_same_planes(tmp_path, name):
    labels = RNG.integers(0, 4, (2, 3, 30, 40), dtype=np.uint8)  # T 2 x Z 3
    path = write_label_stack(tmp_path / name, labels, "TZ", default_classes(4),
                             physical={"X": 0.2, "Y": 0.2, "Z": 0.5})
    back, axes = read_label_stack(path, "TZ", labels.shape)
    assert axes == "TZ" and back.dtype == np.uint8
    np.testing.assert_array_equal(back, labels)
    with StackReader(path) as reader:  # plane by plane, without loading the stack
        assert reader.planes == (2, 3)
        np.testing.assert_array_equal(reader.read_plane((1, 2)), labels[1, 2])
    if name != "m.npy":
        assert physical_sizes(path).get("Z") == 0.5  # the Z step travels with the mask


def test_the_plain_tiff_is_an_imagej_hyperstack_and_the_ome_tiff_names_its_axes(tmp_path):
    labels = RNG.integers(0, 3, (5, 20, 20), dtype=np.uint8)
    with tifffile.TiffFile(write_label_stack(tmp_path / "a.tif", labels, "Z")) as tif:
        assert tif.is_imagej and tif.imagej_metadata["slices"] == 5 and tif.series[0].axes == "ZYX"
    with tifffile.TiffFile(write_label_stack(tmp_path / "a.ome.tif", labels, "Z")) as tif:
        assert tif.is_ome and tif.series[0].axes == "ZYX"


def test_a_mask_with_another_number_of_planes_is_one_message_naming_both_shapes(tmp_path):
    path = write_label_stack(tmp_path / "cells_mask.ome.tif", np.zeros((12, 16, 16), np.uint8), "Z")
    with pytest.raises(MaskError) as caught:
        read_label_stack(path, "Z", (20, 16, 16))
    assert str(caught.value) == "cells_mask.ome.tif: the mask is Z 12 x 16 x 16 but the image is Z 20 x 16 x 16."


def test_pages_without_axes_are_z_or_the_images_time_axis(tmp_path):
    labels = RNG.integers(0, 3, (6, 10, 12), dtype=np.uint8)
    with tifffile.TiffWriter(tmp_path / "bare.tif") as tw:
        for plane in labels:
            tw.write(plane, metadata=None)
    assert StackReader(tmp_path / "bare.tif").plane_axes == "Z"
    assert StackReader(tmp_path / "bare.tif", image_axes="T").plane_axes == "T"
    tifffile.imwrite(tmp_path / "zt.ome.tif", np.moveaxis(RNG.integers(0, 3, (2, 3, 8, 8), dtype=np.uint8), 0, 1),
                     metadata={"axes": "ZTYX"})  # Z outside T: read back as T x Z
    assert StackReader(tmp_path / "zt.ome.tif").shape == (2, 3, 8, 8)


def test_names_beside_a_stack_and_the_masks_training_finds(tmp_path):
    image = tmp_path / "cells.ome.tif"
    assert stack_mask_path(image) == tmp_path / "cells_mask.ome.tif"
    assert stack_mask_path(image, "ome-zarr") == tmp_path / "cells_mask.ome.zarr"
    assert stack_strokes_path(image) == tmp_path / "cells_strokes.ome.tif"
    assert stack_mask_path(tmp_path / "planes") == tmp_path / "planes_mask.ome.tif"  # beside a folder of planes
    assert plane_stem("cells", "Z", (7,), (20,)) == "cells_z07"
    assert plane_stem("movie", "TZ", (1, 3), (3, 120)) == "movie_t1_z003"
    masks = tmp_path / "masks"
    masks.mkdir()
    write_label_stack(masks / "cells_strokes.ome.tif", np.full((3, 8, 8), 255, np.uint8), "Z")
    assert find_mask(masks, image) == masks / "cells_strokes.ome.tif"
    write_label_stack(masks / "cells.ome.zarr", np.zeros((3, 8, 8), np.uint8), "Z")
    assert find_mask(masks, image) == masks / "cells.ome.zarr"  # a mask before strokes
