"""Masks: every format round trips, renders are exact, writes are atomic, bad files are clear."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image
from pycocotools import mask as coco_mask

from core.io import masks
from core.atomic import WriteError
from core.classes import ClassInfo, default_classes, default_color
from core.io.objects import ObjectOptions
from core.io.masks import (
    MASK_FORMATS,
    MaskError,
    class_histogram,
    coco_annotations,
    coco_document,
    default_mask_path,
    find_mask_for_image,
    mask_output_path,
    read_coco,
    read_mask,
    render_color,
    render_overlay,
    write_coco,
    write_mask,
)

CLASSES = [
    ClassInfo(0, "background", (0, 0, 0)),
    ClassInfo(1, "cell", (250, 10, 10)),
    ClassInfo(2, "nucleus", (10, 240, 20)),
    ClassInfo(3, "membrane", (30, 40, 230)),
    ClassInfo(4, "debris", (200, 200, 0)),
]
pycoco_decode = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def labels_with_all_classes(h: int = 37, w: int = 53, seed: int = 0) -> np.ndarray:
    labels = np.random.default_rng(seed).integers(0, 5, (h, w)).astype(np.uint8)
    labels[5:20, 10:40] = 3  # a large region: long runs in the RLE
    return labels


def image(h: int = 37, w: int = 53) -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, (h, w, 3), dtype=np.uint8)


def mask_error(path, **kw) -> str:
    with pytest.raises(MaskError) as info:
        read_mask(path, **kw)
    message = str(info.value)
    assert message.startswith(f"{path.name}: ") and message.endswith(".") and "\n" not in message
    return message


# --- paths ---------------------------------------------------------------------------------


def test_find_mask_search_order(tmp_path):
    images, own, other = tmp_path / "images", tmp_path / "masks", tmp_path / "mine"
    for folder in (images, own, other, images / "labels"):
        folder.mkdir()
    img = images / "cell.png"
    img.write_bytes(b"x")
    assert find_mask_for_image(img) is None
    assert find_mask_for_image(img, folders=[images]) is None  # never the image itself
    found = []
    for path in (images / "labels" / "cell.tif", own / "cell.png", images / "cell.mask.png",
                 other / "cell.npy", default_mask_path(img)):
        path.write_bytes(b"x")
        found.append(find_mask_for_image(img, folders=[other]))
    assert found == [images / "labels" / "cell.tif", images / "labels" / "cell.tif",
                     images / "cell.mask.png", other / "cell.npy", images / "cell_mask.png"]
    assert default_mask_path(img) == images / "cell_mask.png"


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["index", "color", "tiff", "npy", "coco"])
def test_round_trip(tmp_path, fmt):
    labels = labels_with_all_classes()
    path = write_mask(mask_output_path(tmp_path, "m", fmt), labels, fmt, CLASSES)
    assert path.exists() and [p.name for p in tmp_path.iterdir()] == [path.name]
    back = read_mask(path, shape=labels.shape, num_classes=5, classes=CLASSES)
    assert back.dtype == np.uint8 and back.shape == labels.shape
    np.testing.assert_array_equal(back, labels)


def test_npy_path_without_npy_suffix_is_written_exactly(tmp_path):
    labels = labels_with_all_classes()
    path = write_mask(tmp_path / "labels.bin", labels, "npy", CLASSES)
    assert sorted(os.listdir(tmp_path)) == ["labels.bin"]
    np.testing.assert_array_equal(np.load(path), labels)


def test_index_png_is_palette_with_class_colours(tmp_path):
    labels = labels_with_all_classes()
    path = write_mask(tmp_path / "m.png", labels, "index", CLASSES)
    with Image.open(path) as im:
        assert im.mode == "P"
        np.testing.assert_array_equal(np.asarray(im), labels)
        palette = np.frombuffer(bytes(im.getpalette()), np.uint8).reshape(-1, 3)
    assert len(palette) == 256
    for c in CLASSES:
        assert tuple(palette[c.id]) == c.color
    assert tuple(palette[77]) == default_color(77)  # ids beyond the classes: default colours


def test_color_png_uses_class_colours_and_black_background(tmp_path):
    labels = labels_with_all_classes()
    classes = [c._replace(color=(9, 9, 9)) if c.id == 0 else c for c in CLASSES]
    path = write_mask(tmp_path / "m_color.png", labels, "color", classes)
    rgb = np.asarray(Image.open(path).convert("RGB"))
    for c in CLASSES:
        assert (rgb[labels == c.id] == c.color).all()
    np.testing.assert_array_equal(rgb, render_color(labels, classes))
    np.testing.assert_array_equal(read_mask(path, classes=classes), labels)


# --- overlay -------------------------------------------------------------------------------


def test_overlay_blends_only_labelled_pixels(tmp_path):
    labels, img = labels_with_all_classes(), image()
    out = render_overlay(img, labels, CLASSES, opacity=0.3)
    background = labels == 0
    np.testing.assert_array_equal(out[background], img[background])
    y, x = np.argwhere(labels == 2)[0]
    expected = np.rint(img[y, x] * 0.7 + np.array(CLASSES[2].color) * 0.3)
    assert np.abs(out[y, x].astype(int) - expected).max() <= 1
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert (render_overlay(img, labels, CLASSES, opacity=0.0) == img).all()
    full = render_overlay(img, labels, CLASSES, opacity=1.0)
    assert (full[labels == 4] == CLASSES[4].color).all()


def test_overlay_hidden_classes_and_chunking_match_a_float_reference(monkeypatch):
    labels, img = labels_with_all_classes(), image()
    monkeypatch.setattr(masks, "_CHUNK_PIXELS", 100)  # 2 rows per chunk
    out = render_overlay(img, labels, CLASSES, opacity=0.6, hidden=[1])
    colours = np.array([c.color for c in CLASSES], float)[labels]
    blend = np.rint(img * 0.4 + colours * 0.6)
    shown = (labels != 0) & (labels != 1)
    reference = np.where(shown[..., None], blend, img)
    assert np.abs(out.astype(int) - reference).max() <= 1
    np.testing.assert_array_equal(out[labels == 1], img[labels == 1])


def test_overlay_file_needs_a_matching_image(tmp_path):
    labels = labels_with_all_classes()
    with pytest.raises(ValueError, match="needs the source image"):
        write_mask(tmp_path / "o.png", labels, "overlay", CLASSES)
    with pytest.raises(ValueError, match="the image is 10x10 but the mask is 53x37"):
        write_mask(tmp_path / "o.png", labels, "overlay", CLASSES, image=image(10, 10))
    path = write_mask(tmp_path / "o.png", labels, "overlay", CLASSES, image=image(), opacity=0.5)
    np.testing.assert_array_equal(np.asarray(Image.open(path)),
                                  render_overlay(image(), labels, CLASSES, 0.5))


# --- COCO ----------------------------------------------------------------------------------


@pycoco_decode
def test_semantic_coco_decodes_with_pycocotools(tmp_path):
    labels = labels_with_all_classes()
    path = write_mask(tmp_path / "coco.json", labels, "coco", CLASSES, image_name="a.png", coco_semantic=True)
    doc = json.loads(path.read_text())
    assert doc["images"] == [{"id": 1, "file_name": "a.png", "height": 37, "width": 53}]
    assert [(c["id"], c["name"], c["color"]) for c in doc["categories"]] == [
        (c.id, c.name, list(c.color)) for c in CLASSES[1:]]
    assert sorted(a["category_id"] for a in doc["annotations"]) == [1, 2, 3, 4]
    for ann in doc["annotations"]:
        binary = labels == ann["category_id"]
        np.testing.assert_array_equal(coco_mask.decode(ann["segmentation"]), binary)
        assert ann["area"] == binary.sum() and ann["iscrowd"] == 0 and ann["image_id"] == 1
        ys, xs = np.nonzero(binary)
        assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]


@pycoco_decode
@pytest.mark.parametrize("shape", [(1, 1), (300, 200), (64, 64)])
def test_own_rle_decoder_agrees_with_pycocotools(tmp_path, shape):
    rng = np.random.default_rng(shape[0])
    labels = (rng.random(shape) < 0.02).astype(np.uint8)
    labels[: shape[0] // 2, : shape[1] // 3] = 1
    labels[shape[0] // 3 :, shape[1] // 2 :] = 0
    write_coco(tmp_path / "c.json", [("x.png", *shape, labels)], CLASSES, semantic=True)
    doc = json.loads((tmp_path / "c.json").read_text())
    for ann in doc["annotations"]:
        np.testing.assert_array_equal(coco_mask.decode(ann["segmentation"]), labels == 1)
    np.testing.assert_array_equal(read_coco(tmp_path / "c.json"), labels)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arrays(np.uint8, st.tuples(st.integers(1, 40), st.integers(1, 40)),
              elements=st.integers(0, 4)))
def test_coco_round_trip_any_mask(tmp_path, labels):
    path = write_coco(tmp_path / "any.json", [("a.png", *labels.shape, labels)], CLASSES, semantic=True)
    np.testing.assert_array_equal(read_coco(path), labels)


def test_coco_several_images(tmp_path):
    a, b = labels_with_all_classes(seed=1), labels_with_all_classes(20, 30, seed=2)
    entries = [("dir/a.png", 37, 53, a), ("b.png", 20, 30, b)]
    doc = coco_document(entries, CLASSES)
    ids = [ann["id"] for ann in doc["annotations"]]
    assert ids == list(range(1, len(ids) + 1)) and [im["id"] for im in doc["images"]] == [1, 2]
    write_coco(tmp_path / "coco.json", entries, CLASSES, objects=ObjectOptions(tolerance=0))
    np.testing.assert_array_equal(read_coco(tmp_path / "coco.json", "b.png"), b)
    np.testing.assert_array_equal(read_mask(tmp_path / "coco.json", image_name="C:\\x\\a.png"), a)
    with pytest.raises(MaskError, match="has no image named c.png"):
        read_coco(tmp_path / "coco.json", "c.png")
    with pytest.raises(MaskError, match="holds 2 images"):
        read_coco(tmp_path / "coco.json")
    with pytest.raises(ValueError, match="mask for b.png is 30x20 but the image is 31x20"):
        coco_document([("b.png", 20, 31, b)], CLASSES)


def test_coco_annotations_refuse_ids_without_category():
    with pytest.raises(ValueError, match="class id 7"):
        coco_annotations(np.full((3, 3), 7, np.uint8), CLASSES, 1, 1)
    assert coco_annotations(np.zeros((3, 3), np.uint8), CLASSES, 1, 1) == []


def test_read_coco_paints_later_annotations_over_earlier_and_reads_polygons(tmp_path):
    first = coco_annotations(np.ones((4, 6), np.uint8), CLASSES, 1, 1)[0]
    polygon = {"id": 2, "image_id": 1, "category_id": 2, "iscrowd": 0,
               "segmentation": [[0.0, 0.0, 3.0, 0.0, 3.0, 2.0, 0.0, 2.0]]}
    doc = {"images": [{"id": 1, "file_name": "p.png", "height": 4, "width": 6}],
           "annotations": [first, polygon], "categories": []}
    (tmp_path / "p.json").write_text(json.dumps(doc))
    labels = read_coco(tmp_path / "p.json")
    assert labels[0, 0] == 2 and labels[3, 5] == 1
    doc["annotations"][1]["category_id"] = 300
    (tmp_path / "p.json").write_text(json.dumps(doc))
    assert "category id 300" in mask_error(tmp_path / "p.json")


@pytest.mark.parametrize("text, reason", [
    ("{not json", "not valid JSON"),
    ('{"annotations": []}', "not a COCO"),
    ('{"images": [{"id": 1, "file_name": "a", "height": 2, "width": 2}], "annotations": '
     '[{"image_id": 1, "category_id": 1, "segmentation": {"size": [2, 2], "counts": "zz"}}]}',
     "malformed"),
])
def test_bad_coco_files(tmp_path, text, reason):
    (tmp_path / "bad.json").write_text(text)
    assert reason in mask_error(tmp_path / "bad.json")


# --- atomic writes -------------------------------------------------------------------------


def half_write_then_fail(target_arg: int):
    """A writer that leaves a partial file (or file object) behind, then raises."""

    def broken(*args, **kwargs):
        target = args[target_arg]
        if hasattr(target, "write"):
            target.write(b"partial")
        else:
            with open(target, "wb") as f:
                f.write(b"partial")
        raise RuntimeError("disk exploded")

    return broken


@pytest.mark.parametrize("fmt, owner, name, target_arg", [
    ("index", Image.Image, "save", 1), ("color", Image.Image, "save", 1),
    ("npy", np, "save", 0), ("tiff", tifffile, "imwrite", 0), ("coco", Path, "write_bytes", 0),
])
def test_failed_write_leaves_previous_file(tmp_path, monkeypatch, fmt, owner, name, target_arg):
    path = write_mask(mask_output_path(tmp_path, "m", fmt), labels_with_all_classes(), fmt, CLASSES)
    before = path.read_bytes()
    monkeypatch.setattr(owner, name, half_write_then_fail(target_arg))
    with pytest.raises(RuntimeError, match="disk exploded"):
        write_mask(path, np.zeros((37, 53), np.uint8), fmt, CLASSES)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [path.name]


def test_write_into_missing_folder_names_the_path(tmp_path):
    target = tmp_path / "nope" / "m.png"
    with pytest.raises(WriteError) as info:
        write_mask(target, labels_with_all_classes(), "index", CLASSES)
    assert str(target) in str(info.value) and "does not exist" in str(info.value)


def test_write_rejects_unknown_format_and_non_masks(tmp_path):
    with pytest.raises(ValueError, match="unknown mask format"):
        write_mask(tmp_path / "m.png", labels_with_all_classes(), "jpeg", CLASSES)
    with pytest.raises(ValueError, match="2-D"):
        write_mask(tmp_path / "m.png", np.zeros((3, 3, 3), np.uint8), "index", CLASSES)
    with pytest.raises(ValueError, match="0-255"):
        write_mask(tmp_path / "m.png", np.full((3, 3), 256), "index", CLASSES)


# --- reading: other sources and errors -------------------------------------------------------


def test_grey_16bit_rgba_and_npy_variants_are_read(tmp_path):
    labels = labels_with_all_classes()
    Image.fromarray(labels).save(tmp_path / "grey.png")
    Image.fromarray(labels.astype(np.uint16)).save(tmp_path / "deep.png")
    opaque = np.full(labels.shape + (1,), 255, np.uint8)
    rgba = np.concatenate([render_color(labels, CLASSES), opaque], axis=2)
    rgba[labels == 0] = (123, 45, 67, 0)  # transparent background, any colour
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    np.save(tmp_path / "cube.npy", labels[None].astype(np.int64))
    np.save(tmp_path / "flags.npy", labels > 0)
    for name in ("grey.png", "deep.png", "rgba.png", "cube.npy"):
        np.testing.assert_array_equal(read_mask(tmp_path / name, classes=CLASSES), labels, name)
    np.testing.assert_array_equal(read_mask(tmp_path / "flags.npy"), labels > 0)


def test_colour_mask_defaults_to_the_default_palette(tmp_path):
    labels = np.arange(60, dtype=np.uint8).reshape(6, 10)
    Image.fromarray(render_color(labels, default_classes(60))).save(tmp_path / "c.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "c.png"), labels)


def test_wrong_size_and_too_many_classes(tmp_path):
    labels = np.zeros((80, 100), np.uint8)
    labels[3, 4] = 40
    write_mask(tmp_path / "m.png", labels, "index", CLASSES)
    assert mask_error(tmp_path / "m.png", shape=(128, 128)) == (
        "m.png: mask is 100x80 but the image is 128x128.")
    assert mask_error(tmp_path / "m.png", num_classes=5) == (
        "m.png: contains class id 40 but the model has 5 classes (0-4).")
    assert read_mask(tmp_path / "m.png", shape=(80, 100), num_classes=41).max() == 40


def test_unknown_colour_is_named(tmp_path):
    rgb = render_color(labels_with_all_classes(), CLASSES)
    rgb[2, 3] = (1, 2, 3)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    assert "colour (1, 2, 3)" in mask_error(tmp_path / "c.png", classes=CLASSES)


def test_unreadable_mask_files(tmp_path):
    good = tmp_path / "good.png"
    write_mask(good, labels_with_all_classes(), "index", CLASSES)
    data = good.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "noise.png").write_bytes(np.random.default_rng(3).bytes(3000))
    (tmp_path / "noise.npy").write_bytes(np.random.default_rng(4).bytes(3000))
    (tmp_path / "noise.tif").write_bytes(np.random.default_rng(5).bytes(3000))
    np.save(tmp_path / "objects.npy", np.array([[1, None]], dtype=object), allow_pickle=True)
    np.save(tmp_path / "floats.npy", np.zeros((4, 4), np.float32))
    np.save(tmp_path / "volume.npy", np.zeros((2, 4, 4), np.uint8))
    full = tmp_path / "full.npy"
    np.save(full, np.zeros((64, 64), np.uint8))
    (tmp_path / "cut.npy").write_bytes(full.read_bytes()[:2000])
    tifffile.imwrite(tmp_path / "wide.tif", np.full((4, 4), 300, np.uint16))
    (tmp_path / "m.doc").write_text("hello")
    expected = {
        "missing.png": "file not found", "cut.png": "truncated", "empty.png": "empty (0 bytes)",
        "noise.png": "not an image", "noise.npy": "not a NumPy", "noise.tif": "not a TIFF",
        "objects.npy": "Python objects", "floats.npy": "float32", "volume.npy": "2x4x4",
        "cut.npy": "truncated", "wide.tif": "0-255", "m.doc": "not a mask file",
    }
    for name, reason in expected.items():
        assert reason in mask_error(tmp_path / name), name


def test_class_histogram(monkeypatch):
    labels = labels_with_all_classes()
    expected = np.array([(labels == i).sum() for i in range(256)])
    np.testing.assert_array_equal(class_histogram(labels), expected)
    monkeypatch.setattr(masks, "_CHUNK_PIXELS", 7)
    np.testing.assert_array_equal(class_histogram(labels), expected)
    assert class_histogram(labels, num=3).size == 5  # never drops present ids
