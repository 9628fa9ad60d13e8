"""The command line with the object formats: segment --format, convert-mask, train --masks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from core.cli.main import main
from core.classes import classes_to_json, default_classes
from core.io.masks import read_mask, write_mask
from core.training.synthetic import generate_scene
from core.training.loop import find_pairs, load_pairs

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def test_segment_writes_the_object_formats_with_their_layouts(tmp_path, small_weights, capsys):
    images = tmp_path / "in"
    images.mkdir()
    for i in range(2):
        Image.fromarray(generate_scene(i, 40, 48)[0]).save(images / f"s{i}.png")
    out = tmp_path / "out"
    rc = main(["segment", str(images), "-o", str(out), "--model", str(small_weights), "--tile", "0",
               "--format", "index", "coco", "yolo", "labelme", "voc", "geojson", "imagej", "--tolerance", "0"])
    assert rc == 0, capsys.readouterr().err
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names == sorted(["coco.json", "data.yaml"] + [
        n.format(s) for s in ("s0", "s1") for n in (
            "{}.png", "labels/{}.txt", "{}.json", "SegmentationClass/{}.png", "SegmentationObject/{}.png",
            "{}.geojson", "{}_rois.zip")])
    for stem in ("s0", "s1"):
        index = read_mask(out / f"{stem}.png")
        for path in (out / "coco.json", out / "labels" / f"{stem}.txt", out / f"{stem}.json",
                     out / "SegmentationClass" / f"{stem}.png", out / f"{stem}.geojson", out / f"{stem}_rois.zip"):
            np.testing.assert_array_equal(read_mask(path, shape=index.shape, image_name=f"{stem}.png"), index)
    anns = json.loads((out / "coco.json").read_text())["annotations"]
    assert len(anns) > len({(a["image_id"], a["category_id"]) for a in anns})  # one per object
    assert main(["segment", str(images / "s0.png"), "-o", str(tmp_path / "sem"), "--model", str(small_weights),
                 "--format", "coco", "--coco-semantic"]) == 0
    anns = json.loads((tmp_path / "sem" / "coco.json").read_text())["annotations"]
    assert len(anns) == len({a["category_id"] for a in anns})


def test_convert_mask_between_formats_and_into_a_layout(tmp_path, capsys):
    labels = np.kron(np.random.default_rng(0).integers(0, 4, (6, 8)), np.ones((5, 5), np.uint8)).astype(np.uint8)
    Image.fromarray(np.zeros(labels.shape + (3,), np.uint8)).save(tmp_path / "pic.png")
    classes = tmp_path / "classes.json"
    classes.write_text(json.dumps(classes_to_json(default_classes(4))))
    index = write_mask(tmp_path / "m.png", labels, "index", default_classes(4))
    steps = [("m.png", "m.txt", "yolo"), ("m.txt", "m.json", "labelme"), ("m.json", "m.geojson", "geojson"),
             ("m.geojson", "m_rois.zip", "imagej"), ("m_rois.zip", "c.json", "coco"), ("c.json", "back.tif", "tiff")]
    for src, dst, fmt in steps:
        rc = main(["convert-mask", str(tmp_path / src), "-o", str(tmp_path / dst), "--format", fmt,
                   "--image", str(tmp_path / "pic.png"), "--classes", str(classes), "--tolerance", "0"])
        assert rc == 0, capsys.readouterr().err
    np.testing.assert_array_equal(read_mask(tmp_path / "back.tif"), labels)
    assert json.loads((tmp_path / "m.json").read_text())["imagePath"] == "pic.png"
    layout = tmp_path / "voc"
    layout.mkdir()
    assert main(["convert-mask", str(index), "-o", str(layout), "--format", "voc"]) == 0
    assert sorted(p.name for p in layout.rglob("*.png")) == ["m.png", "m.png"]
    capsys.readouterr()
    assert main(["convert-mask", str(tmp_path / "m.txt"), "-o", str(tmp_path / "x.png"), "--format", "index"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "error: m.txt: a YOLO label file does not record the image size; open it with its image."


def test_train_masks_finds_and_reads_any_format_layout(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    expected = {}
    for i in range(3):
        rgb, labels = generate_scene(i, 32, 40)[:2]
        Image.fromarray(rgb).save(images / f"im{i}.png")
        expected[f"im{i}"] = labels.astype(np.uint8)
    from core.segment.batch_writer import BatchWriter
    from core.io.objects import ObjectOptions

    for fmt in ("yolo", "voc", "labelme", "coco", "geojson"):
        writer = BatchWriter(masks / fmt, [fmt], default_classes(5), objects=ObjectOptions(tolerance=0))
        for stem, labels in expected.items():
            writer.add(images / f"{stem}.png", stem, labels)
        writer.close()
        pairs = find_pairs(images, masks / fmt)
        data, _needed = load_pairs(pairs, None, default_classes(5))
        for (image, _mask), (_rgb, labels) in zip(pairs, data):
            np.testing.assert_array_equal(labels, expected[image.stem])


def dots(h: int, w: int, step: int = 4) -> np.ndarray:
    """One-pixel objects: class 1 every ``step`` pixels, class 2 in every other gap between them."""
    labels = np.zeros((h, w), np.uint8)
    labels[::step, ::step] = 1
    labels[::step, 2::step * 2] = 2
    return labels


def test_one_formats_limit_fails_that_format_alone_and_the_others_are_written(tmp_path, small_weights,
                                                                                monkeypatch, capsys):
    """Finding 9: VOC's 254-object limit on one image fails VOC for that image only; GeoJSON and
    ImageJ (after VOC in the list) and every format of the other image are still written, and the
    exit code and summary name the format and the image."""
    from core.io.objects import mask_objects
    from core.segment.inference import Segmenter

    images = tmp_path / "in"
    images.mkdir()
    many, few = dots(80, 80), dots(12, 12)  # 600 objects, 15 objects
    assert len(mask_objects(many)) == 600 and len(mask_objects(few)) == 15
    for name, labels in (("many.png", many), ("few.png", few)):
        Image.fromarray(np.full(labels.shape + (3,), 128, np.uint8)).save(images / name)
    # the network's output is not under test here: the mask of each image is the dot grid of its size
    monkeypatch.setattr(Segmenter, "segment", lambda self, rgb, **kw: dots(*rgb.shape[:2]))
    out = tmp_path / "out"
    rc = main(["segment", str(images / "many.png"), str(images / "few.png"), "-o", str(out), "--model",
               str(small_weights), "--tolerance", "0",
               "--format", "index", "coco", "yolo", "labelme", "voc", "geojson", "imagej"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "Traceback" not in err
    assert f"{images / 'many.png'}: voc not written: the mask has 600 objects; a VOC object PNG holds at most 254" \
        in err, err
    assert "segmented 2 of 2 image(s)" in err and "voc not written for 1 image(s): many.png" in err, err
    for stem, labels in (("many", many), ("few", few)):
        for name in (f"{stem}.png", f"labels/{stem}.txt", f"{stem}.json", f"{stem}.geojson", f"{stem}_rois.zip"):
            np.testing.assert_array_equal(read_mask(out / name, shape=labels.shape), labels)
        np.testing.assert_array_equal(read_mask(out / "coco.json", image_name=f"{stem}.png"), labels)
    assert (out / "SegmentationClass" / "few.png").is_file() and (out / "SegmentationObject" / "few.png").is_file()
    assert not (out / "SegmentationClass" / "many.png").exists()  # nothing half of a failed format
    assert not (out / "SegmentationObject" / "many.png").exists()
