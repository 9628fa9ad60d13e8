"""Stacks open lazily as planes: every layout we read gives the same planes, channels, dtype and sizes."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from core.io.axes import parse_axes_option
from core.io.images import ImageReadError, load_image
from core.io.sources import FolderSource, open_source
from tests.stack_images import stack_data, write_imagej, write_ome_tiff, write_ome_zarr, write_plane_folder


def plane_hwc(data: np.ndarray, t: int, z: int) -> np.ndarray:
    return np.moveaxis(data[t, z], 0, 2)


def test_ome_tiff_zcyx_reads_each_plane_with_names_dtype_and_z_step(tmp_path):
    data = stack_data(z=6)
    path = write_ome_tiff(tmp_path / "cells.ome.tif", data[0], "ZCYX", tile=(16, 16))
    with open_source(path) as src:
        assert (src.plane_axes, src.planes) == ("Z", (6,))
        assert (src.channels, src.dtype, src.channel_names) == (2, np.dtype(np.uint16), ["DAPI", "GFP"])
        assert src.physical_sizes == {"X": 0.25, "Y": 0.25, "Z": 0.5}
        for z in (0, 3, 5):
            np.testing.assert_array_equal(src.read_raw(0, 40, 0, 48, plane=(z,)), plane_hwc(data, 0, z))
        np.testing.assert_array_equal(src.read_raw(5, 30, 7, 41, plane=(4,)), plane_hwc(data, 0, 4)[5:30, 7:41])
        np.testing.assert_array_equal(src.read_raw(0, 40, 0, 48), plane_hwc(data, 0, 0))  # () = first plane
        assert src.read(0, 40, 0, 48, plane=(2,)).shape == (40, 48, 3)
        with pytest.raises(ValueError, match="plane Z 6 does not exist"):
            src.read_raw(0, 4, 0, 4, plane=(6,))


def test_ome_zarr_tcyx_is_a_time_series(tmp_path):
    data = stack_data(t=4, z=1)
    path = write_ome_zarr(tmp_path / "movie.ome.zarr", data[:, 0], "TCYX", scale=[2.0, 1.0, 0.3, 0.3], levels=2)
    with open_source(path) as src:
        assert (src.plane_axes, src.planes, src.channels) == ("T", (4,), 2)
        assert src.channel_names == ["DAPI", "GFP"] and src.levels == [(48, 40), (24, 20)]
        np.testing.assert_array_equal(src.read_raw(0, 40, 0, 48, plane=(3,)), plane_hwc(data, 3, 0))
        np.testing.assert_array_equal(src.read_raw(0, 20, 0, 24, level=1, plane=(2,)), plane_hwc(data, 2, 0)[::2, ::2])
        assert src.physical_sizes == {"Y": 0.3, "X": 0.3}  # NGFF time without a unit is left out


def test_ome_zarr_whose_lower_levels_thin_z_keeps_the_levels_of_whole_planes(tmp_path):
    import zarr

    data = stack_data(z=4)[0]
    group = zarr.open_group(str(tmp_path / "z.ome.zarr"), mode="w", zarr_format=2)
    group.create_array("0", data=data)
    group.create_array("1", data=data[::2, :, ::2, ::2])  # Z halved as well
    group.attrs["multiscales"] = [{"version": "0.4", "axes": [{"name": n} for n in "zcyx"],
                                   "datasets": [{"path": "0"}, {"path": "1"}]}]
    with open_source(tmp_path / "z.ome.zarr") as src:
        assert src.planes == (4,) and src.levels == [(48, 40)]


def test_imagej_hyperstack_tzcyx(tmp_path):
    data = stack_data(t=2, z=3)
    with open_source(write_imagej(tmp_path / "hyper.tif", data)) as src:
        assert (src.plane_axes, src.planes, src.channels, src.dtype) == ("TZ", (2, 3), 2, np.dtype(np.uint16))
        assert src.physical_sizes == {"X": 0.25, "Y": 0.25, "Z": 1.5, "T": 2.0}
        for t, z in ((0, 0), (1, 2), (0, 1)):
            np.testing.assert_array_equal(src.read_raw(0, 40, 0, 48, plane=(t, z)), plane_hwc(data, t, z))


def test_multipage_tiff_without_axes_few_pages_are_channels_more_are_z(tmp_path):
    pages = stack_data(z=1, c=8)[0, 0]
    with tifffile.TiffWriter(tmp_path / "few.tif") as tw:  # bare pages: no shape or axes recorded
        for p in pages[:3]:
            tw.write(p, metadata=None)
    with tifffile.TiffWriter(tmp_path / "many.tif") as tw:
        for p in pages:
            tw.write(p, metadata=None)
    with open_source(tmp_path / "few.tif") as src:
        assert (src.plane_axes, src.channels) == ("", 3)
    np.testing.assert_array_equal(load_image(tmp_path / "few.tif").pixels, np.moveaxis(pages[:3], 0, 2))
    with open_source(tmp_path / "many.tif") as src:
        assert (src.plane_axes, src.planes, src.channels) == ("Z", (8,), 1)
        np.testing.assert_array_equal(src.read_raw(0, 40, 0, 48, plane=(6,))[..., 0], pages[6])
    with open_source(tmp_path / "few.tif", axes=parse_axes_option("zyx")) as src:  # --axes decides
        assert (src.plane_axes, src.planes, src.channels) == ("Z", (3,), 1)
    with pytest.raises(ImageReadError, match=r"many\.tif: a stack of 8 Z planes .*open it as a stack"):
        load_image(tmp_path / "many.tif")
    np.testing.assert_array_equal(load_image(tmp_path / "many.tif", axes="CYX").pixels, np.moveaxis(pages, 0, 2))


def test_folder_of_numbered_planes_in_natural_order(tmp_path):
    zyx = stack_data(z=12, c=1)[0, :, 0]
    folder = write_plane_folder(tmp_path / "planes", zyx, "z{}.tif")  # z2 before z10 only naturally
    with open_source(folder) as src:
        assert isinstance(src, FolderSource) and (src.plane_axes, src.planes) == ("Z", (12,))
        for z in (2, 10, 11):
            np.testing.assert_array_equal(src.read_raw(0, 40, 0, 48, plane=(z,))[..., 0], zyx[z])
        assert src.plane_file((10,)).name == "z10.tif"


def test_folder_whose_planes_differ_in_size_is_refused_naming_the_plane(tmp_path):
    zyx = stack_data(z=3, c=1, h=32, w=32)[0, :, 0].astype(np.uint8)
    folder = write_plane_folder(tmp_path / "planes", zyx, "plane_{:03d}.png")
    from PIL import Image

    Image.fromarray(np.zeros((30, 32), np.uint8)).save(folder / "plane_007.png")
    with pytest.raises(ImageReadError) as caught:
        open_source(folder)
    assert str(caught.value) == ("planes: plane plane_007.png is 32x30 but plane_000.png is 32x32; every plane of a "
                                 "stack must have the same size.")


def test_a_5d_file_with_an_unknown_axis_order_is_one_clear_message(tmp_path):
    tifffile.imwrite(tmp_path / "q.tif", np.zeros((2, 3, 5, 16, 16), np.uint16))  # shaped, axes unknown: QQQYX
    for opener in (open_source, load_image):
        with pytest.raises(ImageReadError) as caught:
            opener(tmp_path / "q.tif")
        message = str(caught.value)
        assert message.startswith("q.tif: a 5-D image with axes ") and "--axes" in message
        assert "\n" not in message
    import zarr

    zarr.create_array(str(tmp_path / "plain.zarr"), shape=(2, 2, 3, 16, 16), dtype="u2", zarr_format=2)
    with pytest.raises(ImageReadError, match=r"plain\.zarr: a 5-D zarr array .* axis order is unknown.*--axes"):
        open_source(tmp_path / "plain.zarr")
    with open_source(tmp_path / "plain.zarr", axes="TCZYX") as src:
        assert (src.plane_axes, src.planes, src.channels) == ("TZ", (2, 3), 2)


def test_axes_option_is_checked():
    assert parse_axes_option("tzcyx") == "TZCYX"
    for bad, why in (("ZQYX", "Q is not an axis"), ("ZZYX", "named twice"), ("ZCY", "Y and X")):
        with pytest.raises(ValueError, match=why):
            parse_axes_option(bad)


def test_the_8bit_view_table_gives_the_bytes_of_the_float_stretch():
    from core.io.sources import rgb8_converter

    rng = np.random.default_rng(5)
    for dtype, lo, hi in ((np.uint16, 0, 65535), (np.int16, -32768, 32767), (np.uint8, 0, 255)):
        pixels = rng.integers(lo, hi, (60, 70), endpoint=True).astype(dtype)
        sample = pixels.astype(np.float64)
        low, high = np.percentile(sample, (0.1, 99.9))
        if dtype == np.uint8:
            expected = pixels  # 8-bit is shown as it is
        else:
            scaled = (pixels.astype(np.float32) - np.float32(low)) * np.float32(255 / (high - low))
            expected = np.rint(np.clip(scaled, 0, 255)).astype(np.uint8)
        np.testing.assert_array_equal(rgb8_converter(pixels)(pixels)[..., 0], expected)
