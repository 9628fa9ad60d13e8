"""Readers keep scientific images as they are: every channel, the file's dtype, OME channel names."""

from __future__ import annotations

import imagecodecs
import numpy as np
import pytest
import tifffile
from PIL import Image

from core.io.channels import parse_channels, pick_channels
from core.io.images import ImageReadError, load_image
from core.io.sources import open_source

RNG = np.random.default_rng(7)


def two_channel_16bit(h: int = 96, w: int = 130) -> np.ndarray:
    return RNG.integers(0, 65535, (h, w, 2), dtype=np.uint16)


def write_ome(path, hwc: np.ndarray, names=None, **options):
    metadata = {"axes": "CYX"}
    if names:
        metadata["Channel"] = {"Name": list(names)}
    tifffile.imwrite(path, np.moveaxis(hwc, 2, 0), metadata=metadata, **options)
    return path


def test_ome_tiff_keeps_both_16bit_channels_and_their_names(tmp_path):
    data = two_channel_16bit()
    path = write_ome(tmp_path / "cells.ome.tif", data, ["DAPI", "GFP"])
    loaded = load_image(path)
    assert loaded.pixels.dtype == np.uint16 and loaded.pixels.shape == (96, 130, 2)
    np.testing.assert_array_equal(loaded.pixels, data)
    assert loaded.channel_names == ["DAPI", "GFP"]
    assert loaded.rgb.shape == (96, 130, 3) and loaded.rgb.dtype == np.uint8  # the 8-bit view stays


def test_tiled_ome_tiff_regions_keep_every_channel(tmp_path):
    data = two_channel_16bit(200, 260)
    path = write_ome(tmp_path / "slide.ome.tif", data, ["DAPI", "GFP"], tile=(64, 64))
    with open_source(path) as src:
        assert (src.channels, src.dtype, src.channel_names) == (2, np.dtype(np.uint16), ["DAPI", "GFP"])
        np.testing.assert_array_equal(src.read_raw(17, 150, 30, 251), data[17:150, 30:251])
        assert src.read(0, 64, 0, 64).shape == (64, 64, 3)


def test_sixteen_bit_png_grey_and_colour_keep_16_bits(tmp_path):
    grey = RNG.integers(0, 65535, (40, 50), dtype=np.uint16)
    Image.fromarray(grey).save(tmp_path / "grey16.png")
    colour = RNG.integers(0, 65535, (40, 50, 3), dtype=np.uint16)
    (tmp_path / "rgb16.png").write_bytes(imagecodecs.png_encode(colour))
    np.testing.assert_array_equal(load_image(tmp_path / "grey16.png").pixels, grey[..., None])
    loaded = load_image(tmp_path / "rgb16.png")
    np.testing.assert_array_equal(loaded.pixels, colour)  # Pillow alone would cut these to 8 bits
    assert loaded.channel_names == ["Red", "Green", "Blue"]
    with open_source(tmp_path / "rgb16.png") as src:
        np.testing.assert_array_equal(src.read_raw(5, 30, 2, 48), colour[5:30, 2:48])


def test_multipage_tiff_of_grey_planes_is_one_image_with_a_channel_per_page(tmp_path):
    planes = RNG.integers(0, 4000, (3, 30, 40), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "stack.tif", planes, photometric="minisblack")
    loaded = load_image(tmp_path / "stack.tif")
    np.testing.assert_array_equal(loaded.pixels, np.moveaxis(planes, 0, 2))
    assert loaded.channel_names == ["Channel 1", "Channel 2", "Channel 3"]
    np.testing.assert_array_equal(load_image(tmp_path / "stack.tif", page=2).pixels[..., 0], planes[2])
    with open_source(tmp_path / "stack.tif") as src:
        assert src.channels == 3
        np.testing.assert_array_equal(src.read_raw(0, 30, 0, 40), np.moveaxis(planes, 0, 2))
        np.testing.assert_array_equal(src.read(0, 30, 0, 40), loaded.rgb)  # the view is page 0, as before


def test_ome_zarr_channel_axis_and_omero_labels(tmp_path):
    import zarr

    data = two_channel_16bit(128, 96)
    group = zarr.open_group(str(tmp_path / "c.ome.zarr"), mode="w", zarr_format=2)
    group.create_array("0", data=np.moveaxis(data, 2, 0), chunks=(1, 64, 64))
    group.create_array("1", data=np.moveaxis(data[::2, ::2], 2, 0), chunks=(1, 64, 64))
    group.attrs["multiscales"] = [{"version": "0.4", "axes": [{"name": "c"}, {"name": "y"}, {"name": "x"}],
                                   "datasets": [{"path": "0"}, {"path": "1"}]}]
    group.attrs["omero"] = {"channels": [{"label": "Hoechst"}, {"label": "Actin"}]}
    with open_source(tmp_path / "c.ome.zarr") as src:
        assert (src.channels, src.dtype, src.channel_names) == (2, np.dtype(np.uint16), ["Hoechst", "Actin"])
        np.testing.assert_array_equal(src.read_raw(10, 100, 3, 90), data[10:100, 3:90])
        np.testing.assert_array_equal(src.read_raw(0, 64, 0, 48, level=1), data[::2, ::2])


def test_rgb_photo_pixels_are_its_rgb_and_alpha_is_not_a_channel(tmp_path):
    rgba = RNG.integers(0, 255, (20, 30, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    loaded = load_image(tmp_path / "a.png")
    np.testing.assert_array_equal(loaded.pixels, rgba[..., :3])
    np.testing.assert_array_equal(loaded.pixels, loaded.rgb)
    assert loaded.channel_names == ["Red", "Green", "Blue"]


def test_a_5d_stack_is_a_stack_of_planes_and_no_2d_image(tmp_path):
    path = tmp_path / "movie.ome.tif"
    data = RNG.integers(0, 4000, (2, 2, 3, 16, 16), dtype=np.uint16)
    tifffile.imwrite(path, data, metadata={"axes": "TCZYX"})
    with pytest.raises(ImageReadError) as caught:
        load_image(path)  # the 2-D path: one sentence saying where it opens instead
    message = str(caught.value)
    assert message.startswith("movie.ome.tif:") and "TCZYX" in message and "Z 3" in message
    assert "open it as a stack" in message
    with open_source(path) as src:
        assert (src.plane_axes, src.planes, src.channels) == ("TZ", (2, 3), 2)
        np.testing.assert_array_equal(src.read_raw(0, 16, 0, 16, plane=(1, 2)), np.moveaxis(data[1, :, 2], 0, 2))


def test_float_nan_becomes_zero_and_the_reader_says_so(tmp_path):
    data = RNG.random((2, 20, 20)).astype(np.float32) * 1000
    data[1, 3, 4] = np.nan
    data[0, 5, 5] = np.inf
    path = write_ome(tmp_path / "f.ome.tif", np.moveaxis(data, 0, 2), tile=(16, 16))
    loaded = load_image(path)
    assert loaded.nan_count == 2 and "2 NaN/infinite values set to 0" in loaded.conversion
    assert loaded.pixels[3, 4, 1] == 0 and loaded.pixels[5, 5, 0] == 0
    with open_source(path) as src:
        assert np.isfinite(src.read_raw(0, 20, 0, 20)).all()


def test_channel_selection_and_an_index_out_of_range():
    pixels = np.arange(2 * 2 * 3).reshape(2, 2, 3)
    np.testing.assert_array_equal(pick_channels(pixels, parse_channels("2,0")), pixels[..., [2, 0]])
    with pytest.raises(ValueError, match=r"^t0.ome.tif: channel 5 does not exist, the image has 3 channels \(0-2\)"):
        pick_channels(pixels, [0, 5], "t0.ome.tif")
    with pytest.raises(ValueError, match="named twice"):
        parse_channels("1,1")
