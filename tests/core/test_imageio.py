"""Image reading: every supported kind of file, the conversion rules and every bad file."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image

from core.io.images import (
    ImageReadError,
    is_image_path,
    list_images,
    load_image,
    read_image_size,
    to_rgb8,
)

RNG = np.random.default_rng(1234)


def rgb_noise(h: int = 20, w: int = 30) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def read_error(path, **kw) -> str:
    with pytest.raises(ImageReadError) as info:
        load_image(path, **kw)
    message = str(info.value)
    assert message.startswith(f"{path.name}: ") and message.endswith(".")
    assert "\n" not in message and "Traceback" not in message
    return message


def test_is_image_path_and_list_images(tmp_path):
    for name in ("b.jpg", "A.PNG", "c.TiFf", ".hidden.png", "notes.txt", "d.webp.bak"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.png").write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == ["A.PNG", "b.jpg", "c.TiFf"]
    assert is_image_path("x.JPEG") and is_image_path("x.gif") and not is_image_path("x.txt")
    with pytest.raises(ImageReadError, match="missing"):
        list_images(tmp_path / "missing")


def test_rgb_png_is_returned_unchanged(tmp_path):
    rgb = rgb_noise()
    Image.fromarray(rgb).save(tmp_path / "a.png")
    loaded = load_image(tmp_path / "a.png")
    assert loaded.rgb.dtype == np.uint8 and loaded.rgb.flags.c_contiguous
    np.testing.assert_array_equal(loaded.rgb, rgb)
    assert (loaded.source_mode, loaded.pages, loaded.conversion) == ("RGB", 1, "")
    assert loaded.path == tmp_path / "a.png" and (loaded.width, loaded.height) == (30, 20)


def test_grey_png_is_replicated_to_three_channels(tmp_path):
    grey = RNG.integers(0, 256, (12, 17), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "g.png")
    loaded = load_image(tmp_path / "g.png")
    assert loaded.source_mode == "L" and "grey" in loaded.conversion
    for c in range(3):
        np.testing.assert_array_equal(loaded.rgb[..., c], grey)


def test_palette_png_goes_through_its_palette(tmp_path):
    index = RNG.integers(0, 3, (10, 11), dtype=np.uint8)
    im = Image.fromarray(index)
    colours = [(200, 10, 20), (5, 250, 7), (1, 2, 255)]
    im.putpalette([v for c in colours for v in c])
    im.save(tmp_path / "p.png")
    loaded = load_image(tmp_path / "p.png")
    assert loaded.source_mode == "P" and "palette" in loaded.conversion
    np.testing.assert_array_equal(loaded.rgb, np.array(colours, np.uint8)[index])


def test_rgba_png_drops_alpha_and_keeps_colours(tmp_path):
    rgba = RNG.integers(0, 256, (9, 8, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    loaded = load_image(tmp_path / "a.png")
    assert loaded.source_mode == "RGBA" and "alpha" in loaded.conversion
    np.testing.assert_array_equal(loaded.rgb, rgba[..., :3])


def test_16bit_png_12bit_data_is_stretched_to_full_range(tmp_path):
    data = RNG.integers(100, 4000, (64, 64)).astype(np.uint16)
    Image.fromarray(data).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode == "I;16"
    loaded = load_image(tmp_path / "deep.png")
    assert loaded.source_mode == "I;16" and "stretched" in loaded.conversion
    grey = loaded.rgb[..., 0]
    assert grey.min() == 0 and grey.max() == 255
    order = np.argsort(data, axis=None)  # the stretch is monotonic
    assert np.all(np.diff(grey.reshape(-1)[order].astype(int)) >= 0)


def test_16bit_tiff_uses_the_percentile_stretch(tmp_path):
    data = RNG.integers(0, 4096, (50, 40)).astype(np.uint16)
    data[0, 0], data[0, 1] = 0, 65535  # outliers must not squash the rest
    tifffile.imwrite(tmp_path / "s.tif", data)
    loaded = load_image(tmp_path / "s.tif")
    assert loaded.source_mode == "uint16 TIFF"
    lo, hi = np.percentile(data, (0.1, 99.9))
    expected = np.clip(np.rint((data - lo) * 255.0 / (hi - lo)), 0, 255)
    assert np.abs(loaded.rgb[..., 1].astype(int) - expected).max() <= 1
    assert loaded.rgb[0, 1, 0] == 255 and loaded.rgb[0, 0, 0] == 0


def test_float32_tiff_in_unit_range_scales_by_255(tmp_path):
    data = RNG.random((16, 24), dtype=np.float32)
    tifffile.imwrite(tmp_path / "f.tif", data)
    loaded = load_image(tmp_path / "f.tif")
    assert loaded.source_mode == "float32 TIFF"
    np.testing.assert_array_equal(loaded.rgb[..., 2], np.rint(data * 255).astype(np.uint8))


def test_multipage_tiff_selects_pages(tmp_path):
    pages = np.stack([np.full((6, 7), v, np.uint8) for v in (10, 20, 30)])
    tifffile.imwrite(tmp_path / "stack.tif", pages, photometric="minisblack")
    first = load_image(tmp_path / "stack.tif")
    assert first.pages == 3 and (first.rgb == 10).all()
    assert (load_image(tmp_path / "stack.tif", page=1).rgb == 20).all()
    message = read_error(tmp_path / "stack.tif", page=3)
    assert "page 3" in message and "3 pages" in message


def test_tiff_that_tifffile_cannot_read_falls_back_to_pillow(tmp_path):
    rgb = rgb_noise()
    Image.fromarray(rgb).save(tmp_path / "really_png.tif", format="PNG")
    np.testing.assert_array_equal(load_image(tmp_path / "really_png.tif").rgb, rgb)


def test_exif_orientation_is_applied(tmp_path):
    img = np.zeros((40, 60, 3), np.uint8)
    img[:20, :30] = 255  # bright top-left quadrant
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(img).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    loaded = load_image(tmp_path / "phone.jpg")
    assert loaded.rgb.shape == (60, 40, 3)
    assert loaded.rgb[:30, 20:].mean() > 200 and loaded.rgb[:30, :20].mean() < 50
    assert read_image_size(tmp_path / "phone.jpg") == (40, 60)


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:, :16] = (200, 40, 30)
    rgb[:, 16:] = (20, 90, 210)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "print.jpg", quality=95)
    loaded = load_image(tmp_path / "print.jpg")
    assert loaded.source_mode == "CMYK" and loaded.rgb.shape == (32, 32, 3)
    assert np.abs(loaded.rgb[4:28, 4:12].astype(int) - (200, 40, 30)).max() <= 12


def test_animated_gif_reads_first_frame_unless_asked(tmp_path):
    frames = [Image.new("RGB", (10, 8), (255, 0, 0)), Image.new("RGB", (10, 8), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    first = load_image(tmp_path / "anim.gif")
    assert first.pages == 2 and (first.rgb == (255, 0, 0)).all()
    assert (load_image(tmp_path / "anim.gif", page=1).rgb == (0, 0, 255)).all()


@pytest.mark.parametrize("name, options", [("x.webp", {"lossless": True}), ("x.bmp", {})])
def test_webp_and_bmp(tmp_path, name, options):
    rgb = rgb_noise()
    Image.fromarray(rgb).save(tmp_path / name, **options)
    np.testing.assert_array_equal(load_image(tmp_path / name).rgb, rgb)


def test_non_ascii_path_with_spaces(tmp_path):
    folder = tmp_path / "dossier été"
    folder.mkdir()
    rgb = rgb_noise()
    Image.fromarray(rgb).save(folder / "ïmage ü.png")
    np.testing.assert_array_equal(load_image(folder / "ïmage ü.png").rgb, rgb)
    assert read_image_size(folder / "ïmage ü.png") == (30, 20)
    (folder / "vide ü.png").write_bytes(b"")
    assert "vide ü.png" in read_error(folder / "vide ü.png")


def png_claiming(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    crc = struct.pack(">I", zlib.crc32(chunk))
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + crc


def test_decompression_bomb_header_fails_fast(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(png_claiming(100_000, 100_000))
    message = read_error(path)  # from the header alone: nothing is decoded or allocated
    assert "too large" in message and "100000x100000" in message
    with pytest.raises(ImageReadError, match="too large"):
        read_image_size(path)


def test_bomb_in_another_format_is_refused_at_open(tmp_path):
    dib = struct.pack("<IiiHHIIiiII", 40, 30_000, 30_000, 1, 24, 0, 0, 2835, 2835, 0, 0)
    (tmp_path / "big.bmp").write_bytes(b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) + dib)
    assert "too large (900000000 pixels" in read_error(tmp_path / "big.bmp")


def test_between_pillow_warning_and_error_still_loads(tmp_path, monkeypatch):
    Image.fromarray(rgb_noise(20, 30)).save(tmp_path / "a.png")
    Image.fromarray(rgb_noise(20, 50)).save(tmp_path / "b.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 400)
    with pytest.warns(Image.DecompressionBombWarning):
        assert load_image(tmp_path / "a.png").rgb.shape == (20, 30, 3)
    assert "50x20 pixels, the limit is 800 pixels" in read_error(tmp_path / "b.png")


def test_tiff_page_too_large_is_refused_before_reading(tmp_path, monkeypatch):
    tifffile.imwrite(tmp_path / "t.tif", np.zeros((100, 100), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    assert "100x100 pixels, the limit is 2000" in read_error(tmp_path / "t.tif")


def test_missing_folder_and_empty_files(tmp_path):
    assert read_error(tmp_path / "missing.png") == "missing.png: file not found."
    (tmp_path / "dir.png").mkdir()
    assert "folder" in read_error(tmp_path / "dir.png")
    (tmp_path / "scan.png").write_bytes(b"")
    assert read_error(tmp_path / "scan.png") == "scan.png: the file is empty (0 bytes)."


@pytest.mark.parametrize("content", [RNG.bytes(2000), b"just some text, not pixels\n" * 20])
def test_not_an_image(tmp_path, content):
    (tmp_path / "x.png").write_bytes(content)
    assert "not an image" in read_error(tmp_path / "x.png")


@pytest.mark.parametrize("name", ["a.png", "a.jpg", "a.tif"])
def test_truncated_files(tmp_path, name):
    full = tmp_path / f"full{name[1:]}"
    if name.endswith(".tif"):
        tifffile.imwrite(full, rgb_noise(100, 120))
    else:
        Image.fromarray(rgb_noise(100, 120)).save(full)
    data = full.read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) // 2])
    assert "truncated" in read_error(tmp_path / name)


def test_corrupt_tiff(tmp_path):
    (tmp_path / "c.tif").write_bytes(b"II*\x00" + RNG.bytes(500))
    read_error(tmp_path / "c.tif")
    (tmp_path / "r.tif").write_bytes(b"\x01\x02" + RNG.bytes(500))
    assert "not an image" in read_error(tmp_path / "r.tif")


def test_read_image_size_reads_headers(tmp_path):
    Image.fromarray(rgb_noise(21, 34)).save(tmp_path / "a.png")
    tifffile.imwrite(tmp_path / "b.tif", np.zeros((3, 11, 13), np.uint16), photometric="minisblack")
    assert read_image_size(tmp_path / "a.png") == (34, 21)
    assert read_image_size(tmp_path / "b.tif") == (13, 11)


# --- to_rgb8 ----------------------------------------------------------------------------


def test_to_rgb8_channel_rules():
    grey = RNG.integers(0, 256, (4, 5), dtype=np.uint8)
    expected = np.repeat(grey[..., None], 3, axis=2)
    np.testing.assert_array_equal(to_rgb8(grey), expected)
    np.testing.assert_array_equal(to_rgb8(grey[..., None]), expected)
    np.testing.assert_array_equal(to_rgb8(np.stack([grey, grey * 0], axis=2)), expected)
    rgba = RNG.integers(0, 256, (4, 5, 4), dtype=np.uint8)
    np.testing.assert_array_equal(to_rgb8(rgba), rgba[..., :3])
    many = RNG.integers(0, 256, (4, 5, 7), dtype=np.uint8)
    np.testing.assert_array_equal(to_rgb8(many), many[..., :3])
    out = to_rgb8(np.asfortranarray(rgba[..., :3]))
    assert out.flags.c_contiguous and out.dtype == np.uint8


def test_to_rgb8_value_rules():
    flags = np.array([[True, False]])
    np.testing.assert_array_equal(to_rgb8(flags)[..., 0], [[255, 0]])
    assert not to_rgb8(np.full((3, 3), 777, np.uint16)).any()  # constant -> 0
    floats = np.array([[0.0, 0.5, 1.0, np.nan, np.inf]], np.float32)
    np.testing.assert_array_equal(to_rgb8(floats)[..., 0], [[0, 128, 255, 0, 0]])
    wide = to_rgb8(np.array([[-10.0, 0.0, 10.0, np.nan, -np.inf]]))[0, :, 0]
    assert list(wide[[0, 2, 3, 4]]) == [0, 255, 0, 0] and wide[1] in (127, 128)
    signed = to_rgb8(np.array([[-5, 0, 5]], np.int32))[0, :, 0]
    assert list(signed[[0, 2]]) == [0, 255] and signed[1] in (127, 128)
    sparse = np.zeros((100, 100), np.uint16)  # percentiles both 0: falls back to min..max
    sparse[0, 0] = 50
    assert to_rgb8(sparse)[0, 0, 0] == 255 and to_rgb8(sparse)[1, 1, 0] == 0
    assert not to_rgb8(np.full((2, 2), np.nan)).any()


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4, 5), (0, 4)])
def test_to_rgb8_rejects_non_images(shape):
    with pytest.raises(ValueError):
        to_rgb8(np.zeros(shape, np.uint8))
