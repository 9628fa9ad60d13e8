"""Lazy sources: regions of pyramidal TIFF and OME-Zarr without a whole decode, and every bad input named."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from core.io.images import ImageReadError, to_rgb8
from core.io.sources import ArraySource, TiffSource, ZarrSource, open_source
from core.training.synthetic import generate_scene
from tests.large_images import write_pyramid_tiff, write_repeated_tiff


@pytest.fixture(scope="module")
def scene():
    return generate_scene(2, 301, 403)[0]


def test_pyramidal_ome_tiff_levels_and_regions(scene, tmp_path):
    with open_source(write_pyramid_tiff(tmp_path / "s.ome.tif", scene, levels=3)) as src:
        assert isinstance(src, TiffSource) and src.kind == "OME TIFF"
        assert src.levels == [(403, 301), (201, 150), (100, 75)]
        assert np.array_equal(src.read(17, 290, 5, 399), scene[17:290, 5:399])
        assert src.read(0, 75, 0, 100, level=2).shape == (75, 100, 3)
        with pytest.raises(ValueError, match="outside level 1"):
            src.read(0, 151, 0, 10, level=1)


def test_a_huge_tiled_tiff_opens_lazily_past_the_bomb_limit(tmp_path):
    tile = np.zeros((512, 512, 3), np.uint8)
    tile[::9] = 250
    path = write_repeated_tiff(tmp_path / "huge.tif", 20480, 20480, tile)  # 419 Mpx, a few MB on disk
    assert path.stat().st_size < 20e6
    with open_source(path) as src:
        assert (src.width, src.height) == (20480, 20480)
        assert np.array_equal(src.read(20000, 20100, 10240, 10300), tile[20000 % 512:20100 % 512, 0:60])


def test_sixteen_bit_stretch_is_measured_once_so_regions_agree(tmp_path):
    rng = np.random.default_rng(0)
    image = (rng.normal(2000, 300, (256, 320)).clip(0, 4095)).astype(np.uint16)
    image[:64] += 1500  # a bright band: a region's own stretch would differ
    path = tmp_path / "grey16.tif"
    tifffile.imwrite(path, image, tile=(64, 64))
    with open_source(path) as src:
        whole = src.read(0, 256, 0, 320)
        assert np.array_equal(src.read(0, 64, 0, 64), whole[:64, :64])
        assert np.array_equal(src.read(128, 256, 64, 320), whole[128:, 64:])
    assert np.abs(whole.astype(int) - to_rgb8(image).astype(int)).max() <= 1  # imageio's rules


def test_ome_zarr_multiscales_channel_first(scene, tmp_path):
    import zarr

    group = zarr.open_group(str(tmp_path / "s.ome.zarr"), mode="w", zarr_format=2)
    group.create_array("0", data=np.moveaxis(scene, 2, 0), chunks=(3, 64, 64))
    group.create_array("1", data=np.moveaxis(scene[::2, ::2], 2, 0), chunks=(3, 64, 64))
    group.attrs["multiscales"] = [{"version": "0.4", "axes": [{"name": "c"}, {"name": "y"}, {"name": "x"}],
                                   "datasets": [{"path": "0"}, {"path": "1"}]}]
    with open_source(tmp_path / "s.ome.zarr") as src:
        assert isinstance(src, ZarrSource) and src.levels == [(403, 301), (202, 151)]
        assert np.array_equal(src.read(3, 200, 7, 300), scene[3:200, 7:300])


def test_whole_decode_formats_keep_the_bomb_guard_and_say_how_to_convert(tmp_path, monkeypatch):
    from PIL import Image

    Image.fromarray(generate_scene(1, 64, 80)[0]).save(tmp_path / "a.png")
    assert isinstance(open_source(tmp_path / "a.png"), ArraySource)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageReadError, match=r"a\.png: image is too large .*unetseg convert a\.png -o a\.ome\.tif"):
        open_source(tmp_path / "a.png")


def test_a_corrupt_tile_names_the_file_and_region(scene, tmp_path):
    path = tmp_path / "bad.tif"
    tifffile.imwrite(path, scene, tile=(64, 64), compression="zlib")
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        offset, count = page.dataoffsets[7], page.databytecounts[7]  # tile row 1, column 1
    data = bytearray(path.read_bytes())
    data[offset:offset + count] = b"\x00garbage" * (count // 8) + b"\x00" * (count % 8)
    path.write_bytes(bytes(data))
    with open_source(path) as src:
        assert src.read(0, 64, 0, 64).shape == (64, 64, 3)  # other tiles still read
        with pytest.raises(ImageReadError, match=r"bad\.tif: region y 60:130, x 60:130 of level 0 cannot be read"):
            src.read(60, 130, 60, 130)


def test_a_truncated_file_and_disagreeing_levels_are_named(scene, tmp_path):
    path = write_pyramid_tiff(tmp_path / "t.ome.tif", scene)
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    with pytest.raises(ImageReadError, match=r"t\.ome\.tif: .*truncated"):
        open_source(path)
    import zarr

    group = zarr.open_group(str(tmp_path / "p.ome.zarr"), mode="w", zarr_format=2)
    group.create_array("0", data=np.zeros((3, 100, 200), np.uint8))
    group.create_array("1", data=np.zeros((3, 50, 50), np.uint8))  # wrong aspect ratio
    group.attrs["multiscales"] = [{"axes": ["c", "y", "x"], "datasets": [{"path": "0"}, {"path": "1"}]}]
    with pytest.raises(ImageReadError, match=r"p\.ome\.zarr: pyramid levels disagree: level 1 is 50x50"):
        open_source(tmp_path / "p.ome.zarr")
