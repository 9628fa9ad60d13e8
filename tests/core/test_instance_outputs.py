"""Objects as separate objects: the per-object formats given instance labels, the instance label
file (<stem>_instances.tif), the class mask's components as instances, and the batch writer's
instances and measurements formats."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import roifile
import tifffile
from PIL import Image

from core.classes import ClassInfo
from core.io.formats.coco_objects import object_annotations
from core.io.formats.labelme import labelme_document
from core.io.formats.voc import object_ids
from core.io.formats.yolo import yolo_lines
from core.io.label_images import read_label_image, write_label_image
from core.io.masks import MaskError, write_mask
from core.io.objects import ObjectOptions, iter_block_objects, mask_objects, rasterize
from core.objects.components import chunked_component_labels, component_labels
from core.objects.measure import read_measurements
from core.segment.batch_writer import BatchWriter, ImageResult, write_batch

CLASSES = [ClassInfo(0, "background", (0, 0, 0)), ClassInfo(1, "nucleus", (250, 10, 10)),
           ClassInfo(2, "cell", (10, 240, 20))]
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def touching_pair():
    """Two nuclei of class 1 touching along a whole edge, and a cell of class 2 apart."""
    mask = np.zeros((30, 40), np.uint8)
    instances = np.zeros((30, 40), np.uint32)
    mask[5:15, 5:25] = 1
    instances[5:15, 5:15], instances[5:15, 15:25] = 3, 9  # one blob in the class mask, two objects
    mask[20:27, 30:37] = 2
    instances[20:27, 30:37] = 4
    return mask, instances


@pytest.mark.parametrize("fmt", ["coco", "yolo", "labelme", "voc", "geojson", "imagej"])
def test_touching_objects_of_one_class_stay_two_objects(tmp_path, fmt):
    mask, instances = touching_pair()
    merged = count_objects(tmp_path / "merged", fmt, mask, None)
    separated = count_objects(tmp_path / "separated", fmt, mask, instances)
    assert merged == 2  # without instances: 8-connected components of one class, as before
    assert separated == 3


def count_objects(folder, fmt, mask, instances) -> int:
    writer = BatchWriter(folder, [fmt], CLASSES, objects=ObjectOptions(tolerance=0))
    writer.add("cells.png", "cells", mask, instances=instances)
    writer.close()
    if fmt == "coco":
        return len(json.loads((folder / "coco.json").read_text())["annotations"])
    if fmt == "yolo":
        return len((folder / "labels" / "cells.txt").read_text().splitlines())
    if fmt == "labelme":
        return len({s["group_id"] for s in json.loads((folder / "cells.json").read_text())["shapes"]})
    if fmt == "voc":
        return len(np.unique(np.asarray(Image.open(folder / "SegmentationObject" / "cells.png")))) - 1
    if fmt == "geojson":
        return len(json.loads((folder / "cells.geojson").read_text())["features"])
    return len(roifile.roiread(folder / "cells_rois.zip"))


def test_each_instance_is_its_own_pixels_and_class():
    mask, instances = touching_pair()
    objects = mask_objects(mask, ObjectOptions(tolerance=0), instances)
    assert [(o.instance, o.class_id, o.area) for o in objects] == [(3, 1, 100), (9, 1, 100), (4, 2, 49)]
    for o in objects:
        assert np.array_equal(rasterize(o.exact, mask.shape).astype(bool), instances == o.instance)
    voc = object_ids(mask, ObjectOptions(), instances)
    assert len(np.unique(voc[5:15, 5:25])) == 2  # two VOC object indices where the class mask has one blob
    anns = object_annotations(mask, CLASSES, 1, 1, ObjectOptions(tolerance=0), instances)
    assert [a["area"] for a in anns] == [100.0, 100.0, 49.0] and [a["category_id"] for a in anns] == [1, 1, 2]
    assert len(yolo_lines(mask, ObjectOptions(tolerance=0), instances)) == 3
    assert len({s["group_id"] for s in labelme_document(mask, CLASSES, "c.png", ObjectOptions(), instances)["shapes"]}) == 3


def test_instances_read_block_by_block_give_the_same_objects():
    mask = np.zeros((64, 64), np.uint8)
    instances = np.zeros((64, 64), np.uint32)
    mask[10:50, 10:50] = 1
    instances[10:50, 10:30], instances[10:50, 30:50] = 1, 2  # both cross block borders at 16, 32, 48
    instances[55:60, 0:64], mask[55:60, 0:64] = 3, 2
    whole = mask_objects(mask, ObjectOptions(tolerance=0), instances)
    blocks = sorted(iter_block_objects(mask, ObjectOptions(tolerance=0), 16, instances), key=lambda o: o.instance)
    assert [(o.instance, o.class_id, o.area, o.bbox) for o in blocks] == \
        sorted([(o.instance, o.class_id, o.area, o.bbox) for o in whole])


def test_instance_file_dtype_follows_the_largest_id(tmp_path):
    small = np.zeros((8, 8), np.uint32)
    small[1, 1], small[2, 2] = 1, 65534
    big = small.copy()
    big[3, 3] = 70000  # more than 65535 objects' worth of ids
    for arr, dtype in ((small, np.uint16), (big, np.uint32)):
        path = write_label_image(tmp_path / f"{dtype.__name__}_instances.tif", arr)
        assert tifffile.imread(path).dtype == dtype
        assert np.array_equal(read_label_image(path), arr)


@pytest.mark.parametrize("name, write, message", [
    ("f.tif", lambda p: tifffile.imwrite(p, np.ones((8, 8), np.float32)), "holds float32 values, but a label image"),
    ("big.npy", lambda p: np.save(p, np.full((8, 8), 2**32, np.uint64)), "more than 2\\^32 - 1 objects"),
    ("neg.npy", lambda p: np.save(p, np.full((8, 8), -1, np.int32)), "holds negative ids"),
    ("rgb.png", lambda p: Image.new("RGB", (8, 8)).save(p), "a RGB image is not a label image"),
])
def test_bad_label_files_are_one_sentence_naming_the_file(tmp_path, name, write, message):
    write(tmp_path / name)
    with pytest.raises(MaskError, match=f"^{name}: .*{message}"):
        read_label_image(tmp_path / name)


def test_components_are_the_objects_of_a_class_mask():
    mask = np.zeros((20, 20), np.uint8)
    mask[2:5, 2:5] = 1
    mask[5, 5] = 1  # touches the first at a corner: the same object (8-connected)
    mask[2:5, 10:15] = 2
    mask[2:5, 15:18] = 1  # touches the class-2 object: another object, another class
    ids = component_labels(mask)
    assert ids.dtype == np.uint32 and ids.max() == 3
    assert ids[2, 2] == ids[5, 5] == 1 and ids[2, 10] == 2 and ids[2, 15] == 3


@pytest.mark.parametrize("block", [7, 16, 25])
def test_chunked_components_number_objects_as_the_whole_mask(block):
    rng = np.random.default_rng(block)
    mask = (rng.random((60, 70)) < 0.45).astype(np.uint8) * rng.integers(1, 3, (60, 70)).astype(np.uint8)
    out = np.zeros(mask.shape, np.uint32)
    count = chunked_component_labels(mask, out, block=block)
    whole = component_labels(mask)
    assert count == whole.max() and np.array_equal(out, whole)


def test_batch_writer_instances_and_measurements(tmp_path):
    mask, instances = touching_pair()
    pixels = np.random.default_rng(0).integers(0, 4000, mask.shape + (2,)).astype(np.uint16)
    writer = BatchWriter(tmp_path / "out", ["instances", "measurements", "coco"], CLASSES)
    jobs = [("cells.tif", "cells", lambda: ImageResult(mask, None, instances=instances, raw=pixels)),
            ("plain.tif", "plain", lambda: ImageResult(mask, None, raw=pixels))]  # no model instances
    result = write_batch(writer, jobs)
    assert result.done == 2 and not result.errors
    out = tmp_path / "out"
    assert np.array_equal(read_label_image(out / "cells_instances.tif"), instances)
    assert np.array_equal(read_label_image(out / "plain_instances.tif"), component_labels(mask))
    table = read_measurements(out / "cells_measurements.csv")
    assert table["label"] == ["3", "4", "9"] and table["area"] == ["100", "49", "100"]
    assert table["class_name"] == ["nucleus", "cell", "nucleus"]
    assert float(table["mean_intensity_channel1"][0]) == pytest.approx(pixels[instances == 3, 0].mean(), abs=1e-3)
    plain = read_measurements(out / "plain_measurements.csv")
    assert plain["area"] == ["200", "49"]  # the touching pair is one component of the class mask
    coco = json.loads((out / "coco.json").read_text())
    assert [len([a for a in coco["annotations"] if a["image_id"] == i]) for i in (1, 2)] == [3, 2]


def test_measurements_without_pixels_is_that_format_failing_alone(tmp_path):
    from core.segment.batch_writer import FormatErrors

    mask, _ = touching_pair()
    writer = BatchWriter(tmp_path / "out", ["index", "measurements"], CLASSES)
    with pytest.raises(FormatErrors, match="gone.tif: measurements not written: measurements need the image's pixels"):
        writer.add(tmp_path / "gone.tif", "gone", mask)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["gone.png"]  # the index mask was still written


def test_write_mask_refuses_instances_of_another_size():
    mask, instances = touching_pair()
    with pytest.raises(ValueError, match="the instance labels are 39x30 but the mask is 40x30"):
        write_mask("x.json", mask, "labelme", CLASSES, instances=instances[:, :39])


def test_empty_zip_and_files_stay_valid_with_instances(tmp_path):
    mask = np.zeros((10, 10), np.uint8)
    path = write_mask(tmp_path / "e_rois.zip", mask, "imagej", CLASSES, instances=np.zeros((10, 10), np.uint32))
    assert zipfile.ZipFile(path).namelist() == []
