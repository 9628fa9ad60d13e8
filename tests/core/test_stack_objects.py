"""A stack's objects: instances and measurements with their planes, 3-D volumes, the model's own objects, and the
places where stacks and objects meet (a plane's pixels, a folder's pixel size, names within one batch)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import tifffile
from PIL import Image
from skimage.measure import label as sk_label, regionprops_table

from core.classes import default_classes
from core.cli.main import main
from core.io.label_stacks import read_label_stack
from core.io.objects import ObjectOptions
from core.io.sources import open_source
from core.objects.measure import read_measurements
from core.segment.batch_writer import BatchWriter, FormatErrors, write_one
from tests.stack_images import stack_data, write_ome_tiff, write_plane_folder

CLASSES = default_classes(3)


def squares(z: int = 3, h: int = 40, w: int = 48) -> np.ndarray:
    """Z x C x Y x X uint16: bright squares over a dim noisy background in channel 0, noise in channel 1."""
    rng = np.random.default_rng(1)
    data = np.zeros((z, 2, h, w), np.uint16)
    data[:, 0] = rng.integers(100, 300, (z, h, w))
    data[:, 1] = rng.integers(0, 4000, (z, h, w))
    for k in range(z):
        data[k, 0, 4:14, 4 + k:14 + k] = 3000
        data[k, 0, 20:34, 24:36] = 3500
        data[k, 0, 24:30, 6:12] = 2500
    return data


def segment(*args) -> int:
    return main(["segment", *map(str, args), "--device", "cpu", "--no-tta", "--no-refine", "--tile", "0"])


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Every object of ``a`` is exactly one object of ``b`` (ids may differ)."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools' decode
def test_a_stacks_measurements_are_regionprops_of_each_plane_with_its_z_and_its_ids_name_one_object(tmp_path):
    data = squares()
    image = write_ome_tiff(tmp_path / "cells.ome.tif", data, "ZCYX")  # DAPI, GFP; 0.25 µm pixels
    out = tmp_path / "out"
    assert segment(image, "-o", out, "--model", "small", "--format", "measurements", "instances", "coco", "geojson",
                   "ome-tiff", "--tolerance", "0") == 0
    classes, _ = read_label_stack(out / "cells.ome.tif", "Z", (3, 40, 48))
    with tifffile.TiffFile(out / "cells_instances.ome.tif") as tif:
        ids = tif.asarray()
        assert tif.series[0].axes == "ZYX"
    assert ids.shape == (3, 40, 48) and ids.dtype == np.uint16  # the input's planes
    seen: set[int] = set()
    for z in range(3):  # each plane's objects (each class's 8-connected regions), numbered over the whole stack
        plane_ids = set(np.unique(ids[z]).tolist()) - {0}
        assert plane_ids and not plane_ids & seen
        seen |= plane_ids
        assert same_partition(ids[z], sk_label(classes[z], background=0, connectivity=2))
    assert seen == set(range(1, len(seen) + 1))

    table = read_measurements(out / "cells_measurements.csv")
    assert list(table)[:2] == ["z", "label"] and "t" not in table  # only the stack's own plane axes
    for z in range(3):
        rows = [i for i, v in enumerate(table["z"]) if int(v) == z]
        expected = regionprops_table(ids[z], np.moveaxis(data[z], 0, -1),
                                     properties=("label", "area", "intensity_mean"))
        assert [int(table["label"][i]) for i in rows] == expected["label"].tolist()
        assert [int(table["area"][i]) for i in rows] == expected["area"].astype(int).tolist()
        for c, name in enumerate(("DAPI", "GFP")):  # the stack's raw pixels of that plane, by channel name
            np.testing.assert_allclose([float(table[f"mean_intensity_{name}"][i]) for i in rows],
                                       expected[f"intensity_mean-{c}"], atol=1e-3)
        np.testing.assert_allclose([float(table["area_um2"][i]) for i in rows], expected["area"] * 0.0625)

    coco = json.loads((out / "coco.json").read_text())
    assert [im["z"] for im in coco["images"]] == [0, 1, 2]
    from pycocotools.coco import COCO

    api = COCO()
    api.dataset = coco
    api.createIndex()
    for ann in coco["annotations"]:  # an object on its plane, and its id in the instances file
        z = coco["images"][ann["image_id"] - 1]["z"]
        np.testing.assert_array_equal(api.annToMask(ann).astype(bool), ids[z] == ann["object_id"])
    features = json.loads((out / "cells.geojson").read_text())["features"]
    assert {(f["properties"]["z"], f["properties"]["object_id"]) for f in features} == \
        {(z, i) for z in range(3) for i in np.unique(ids[z]).tolist() if i}


def test_objects_stitched_across_three_planes_get_one_row_each_in_the_3d_table(tmp_path):
    raw = stack_data(z=3, h=20, w=24)[0]
    image = write_ome_tiff(tmp_path / "s.ome.tif", raw, "ZCYX")  # X, Y 0.25 µm, Z 0.5 µm
    ids = np.zeros((3, 20, 24), np.uint32)
    ids[0, 2:8, 2:8] = 5
    ids[1, 2:9, 2:9] = 5
    ids[1, 2:9, 9:14] = 6  # touches 5 on plane 1, same class: still two objects
    ids[2, 3:8, 3:8] = 5
    labels = (ids > 0).astype(np.uint8)
    writer = BatchWriter(tmp_path / "out", ["measurements", "coco", "geojson", "imagej"], CLASSES,
                         objects=ObjectOptions(tolerance=0))
    with open_source(image) as source:
        job = writer.stack(image, "s", "Z", (3,), 20, 24, physical=source.physical_sizes, raw=source, stitched=True)
        for z in range(3):
            job.add_plane((z,), labels[z], instances=ids[z])
        job.close()
    writer.close()
    out = tmp_path / "out"
    rows = read_measurements(out / "s_measurements.csv")
    assert [(int(z), int(i)) for z, i in zip(rows["z"], rows["label"])] == [(0, 5), (1, 5), (1, 6), (2, 5)]
    assert [int(a) for a in rows["area"]] == [36, 49, 35, 25]
    vol = read_measurements(out / "s_measurements_3d.csv")
    assert vol["label"] == ["5", "6"] and vol["voxels"] == ["110", "35"]
    assert (vol["z_first"], vol["z_last"]) == (["0", "1"], ["2", "1"])
    np.testing.assert_allclose([float(v) for v in vol["volume_um3"]], [110 * 0.25 * 0.25 * 0.5, 35 * 0.25 * 0.25 * 0.5])
    zz = np.nonzero(ids == 5)[0]
    assert float(vol["centroid_z"][0]) == pytest.approx(zz.mean())
    dapi = raw[:, 0][ids == 5]  # over every voxel of the 3-D object
    assert float(vol["mean_intensity_DAPI"][0]) == pytest.approx(dapi.mean(), abs=1e-3)
    assert float(vol["max_intensity_DAPI"][0]) == dapi.max()
    with tifffile.TiffFile(out / "s_instances.ome.tif") as tif:  # stitched ids are kept in the instances stack
        np.testing.assert_array_equal(tif.asarray(), ids)
    coco = json.loads((out / "coco.json").read_text())
    on_plane_1 = [a["object_id"] for a in coco["annotations"] if coco["images"][a["image_id"] - 1]["z"] == 1]
    assert sorted(on_plane_1) == [5, 6]
    features = json.loads((out / "s.geojson").read_text())["features"]
    assert sorted((f["properties"]["z"], f["properties"]["object_id"]) for f in features) == \
        [(0, 5), (1, 5), (1, 6), (2, 5)]
    import roifile

    assert sorted(r.z_position for r in roifile.roiread(out / "s_rois.zip")) == [1, 2, 2, 3]


def test_a_folder_of_planes_measures_in_microns_and_stitched_squares_span_every_plane(tmp_path):
    folder = tmp_path / "planes"
    folder.mkdir()
    for z in range(3):  # one bright square drifting with depth; each plane file states 0.5 µm pixels, no Z step
        plane = np.full((32, 32), 20, np.uint8)
        plane[8:20, 8 + z:20 + z] = 220
        tifffile.imwrite(folder / f"z{z}.tif", plane, ome=True,
                         metadata={"axes": "YX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5})
    out = tmp_path / "out"
    assert segment(folder, "--stack-folder", "-o", out, "--model", "small", "--format", "measurements",
                   "--stitch-threshold", "0.25") == 0
    rows = read_measurements(out / "planes_measurements.csv")
    np.testing.assert_allclose([float(v) for v in rows["area_um2"]], [0.25 * int(a) for a in rows["area"]])
    with tifffile.TiffFile(out / "planes_instances.ome.tif") as tif:
        ids = tif.asarray()
    vol = read_measurements(out / "planes_measurements_3d.csv")
    assert "volume_um3" not in vol  # the folder states no Z step: no volume, never a guess
    big = max(range(len(vol["label"])), key=lambda k: int(vol["voxels"][k]))
    square = int(vol["label"][big])
    assert (vol["z_first"][big], vol["z_last"][big]) == ("0", "2")
    assert int(vol["voxels"][big]) == int((ids == square).sum()) == \
        sum(int(a) for a, i in zip(rows["area"], rows["label"]) if int(i) == square)


class SplittingModel:
    """A model with an instance output, as objects-learn's Segmenter gives one (``seg.instances`` set;
    ``segment(..., instances=True)`` returns ``.labels`` and ``.instances``): one class-1 bar per plane,
    which it separates into two touching objects, a left and a right half."""

    instances = "boundary"
    reads_raw = True
    classes = CLASSES

    def source_statistics(self, source, channels=None):
        return None

    def segment(self, pixels, instances=False, **options):
        labels = np.zeros(pixels.shape[:2], np.uint8)
        labels[4:12, 4:20] = 1
        ids = np.zeros(labels.shape, np.uint32)
        ids[4:12, 4:12], ids[4:12, 12:20] = 7, 9  # the model's own ids, per plane
        return SimpleNamespace(labels=labels, instances=ids) if instances else labels


@pytest.mark.parametrize("stitch", [None, 0.25])
def test_a_models_own_objects_flow_into_stitching_and_every_object_output(tmp_path, stitch):
    from core.cli.segment_stack import segment_one
    from core.segment.stack import StackOptions

    image = write_ome_tiff(tmp_path / "s.ome.tif", stack_data(z=3, h=16, w=24)[0], "ZCYX")
    writer = BatchWriter(tmp_path / "out", ["instances", "measurements", "coco"], CLASSES)
    assert segment_one(SplittingModel(), image, "s", writer, StackOptions(stitch_threshold=stitch))
    writer.close()
    with tifffile.TiffFile(tmp_path / "out" / "s_instances.ome.tif") as tif:
        ids = tif.asarray()
    rows = read_measurements(tmp_path / "out" / "s_measurements.csv")
    coco = json.loads((tmp_path / "out" / "coco.json").read_text())
    assert len(coco["annotations"]) == len(rows["label"]) == 6  # two touching objects on each plane, not one
    if stitch is None:  # numbered over the stack: 1, 2 on plane 0, then 3, 4...
        assert [sorted(set(np.unique(ids[z]).tolist()) - {0}) for z in range(3)] == [[1, 2], [3, 4], [5, 6]]
        assert not (tmp_path / "out" / "s_measurements_3d.csv").exists()
    else:  # linked across Z: two 3-D objects of 8 x 8 x 3 voxels
        assert [sorted(set(np.unique(ids[z]).tolist()) - {0}) for z in range(3)] == [[1, 2]] * 3
        vol = read_measurements(tmp_path / "out" / "s_measurements_3d.csv")
        assert vol["label"] == ["1", "2"] and vol["voxels"] == ["192", "192"]
    assert sorted(a["object_id"] for a in coco["annotations"]) == sorted(int(v) for v in rows["label"])


def test_one_formats_failure_on_a_plane_leaves_the_stacks_other_files_and_no_half_table(tmp_path):
    zyx = (np.arange(3 * 16 * 16).reshape(3, 16, 16) % 200).astype(np.uint8)
    folder = write_plane_folder(tmp_path / "planes", zyx)
    labels = np.zeros((16, 16), np.uint8)
    labels[2:6, 2:6] = 1
    out = tmp_path / "out"
    writer = BatchWriter(out, ["ome-tiff", "instances", "measurements", "coco"], CLASSES)
    with open_source(folder) as source:
        (folder / "z2.tif").unlink()  # the third plane's pixels are gone when the measurements need them
        job = writer.stack(folder, "planes", "Z", (3,), 16, 16, raw=source)
        for z in range(3):
            job.add_plane((z,), labels)
        with pytest.raises(FormatErrors) as caught:
            job.close()
    writer.close()
    assert list(caught.value.failures) == ["measurements"] and "z2.tif" in str(caught.value)
    assert read_label_stack(out / "planes.ome.tif", "Z", (3, 16, 16))[0][2, 3, 3] == 1
    with tifffile.TiffFile(out / "planes_instances.ome.tif") as tif:
        assert sorted(np.unique(tif.asarray()).tolist()) == [0, 1, 2, 3]
    assert len(json.loads((out / "coco.json").read_text())["images"]) == 3
    assert sorted(p.name for p in out.iterdir()) == ["coco.json", "planes.ome.tif", "planes_instances.ome.tif"]


def test_export_of_one_plane_measures_that_planes_pixels(tmp_path):
    raw = stack_data(z=3, h=20, w=24)[0]
    image = write_ome_tiff(tmp_path / "s.ome.tif", raw, "ZCYX")
    labels = np.zeros((20, 24), np.uint8)
    labels[3:9, 4:12] = 1
    labels[12:18, 14:22] = 2
    expected = regionprops_table(sk_label(labels), np.moveaxis(raw[2], 0, -1), properties=("label", "intensity_mean"))
    path = write_one(tmp_path / "p2.csv", "measurements", labels, CLASSES, image_path=image, plane=(2,))[0]
    np.testing.assert_allclose([float(v) for v in read_measurements(path)["mean_intensity_GFP"]],
                               expected["intensity_mean-1"], atol=1e-3)
    with open_source(image) as source:  # the app's open stack as the pixels: the plane given, not the first
        path = write_one(tmp_path / "p2b.csv", "measurements", labels, CLASSES, image_path=image, raw=source,
                         plane=(2,))[0]
        np.testing.assert_allclose([float(v) for v in read_measurements(path)["mean_intensity_DAPI"]],
                                   expected["intensity_mean-0"], atol=1e-3)
        with pytest.raises(ValueError, match="stack"):  # never plane 0 by default
            write_one(tmp_path / "p.csv", "measurements", labels, CLASSES, image_path=image, raw=source)


def test_a_stack_and_2d_images_beside_it_never_overwrite_each_others_files(tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    stack = write_ome_tiff(inputs / "cells.ome.tif", squares(), "ZCYX")
    flat = np.zeros((40, 48, 3), np.uint8)
    flat[10:30, 10:30] = 230
    Image.fromarray(flat).save(inputs / "cells.png")  # stem "cells", like the stack
    Image.fromarray(flat).save(inputs / "cells_z1.png")  # the name of the stack's plane 1 index file
    out = tmp_path / "out"
    code = segment(stack, inputs / "cells.png", inputs / "cells_z1.png", "-o", out, "--model", "small",
                   "--format", "ome-tiff", "index")
    assert code == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if "would overwrite" in line]
    assert len(lines) == 1 and "cells_z1.png" in lines[0] and "cells.ome.tif" in lines[0]
    labels, axes = read_label_stack(out / "cells.ome.tif", "Z", (3, 40, 48))  # the stack's, not the image's
    assert axes == "Z"
    np.testing.assert_array_equal(np.asarray(Image.open(out / "cells_z1.png")), labels[1])
    with tifffile.TiffFile(out / "cells-2.ome.tif") as tif:  # the 2-D cells.png under the batch's own stem
        assert tif.series[0].shape == (40, 48)
    assert (out / "cells-2.png").is_file()


def test_a_time_series_of_z_stacks_leads_each_row_with_t_and_z_and_reads_that_planes_pixels(tmp_path):
    from tests.stack_images import write_imagej

    tzcyx = stack_data(t=2, z=2, c=2, h=16, w=16)
    image = write_imagej(tmp_path / "hyper.tif", tzcyx)
    labels = np.zeros((16, 16), np.uint8)
    labels[2:7, 3:9] = 1
    writer = BatchWriter(tmp_path / "out", ["measurements", "coco", "geojson"], CLASSES)
    with open_source(image) as source:
        job = writer.stack(image, "hyper", "TZ", (2, 2), 16, 16, physical=source.physical_sizes, raw=source,
                           stitched=True)
        for t in range(2):
            for z in range(2):
                job.add_plane((t, z), labels, instances=(labels * (1 + t)).astype(np.uint32))  # one object per t
        job.close()
    writer.close()
    rows = read_measurements(tmp_path / "out" / "hyper_measurements.csv")
    assert list(rows)[:3] == ["t", "z", "label"]
    assert [(int(t), int(z), int(i)) for t, z, i in zip(rows["t"], rows["z"], rows["label"])] == \
        [(0, 0, 1), (0, 1, 1), (1, 0, 2), (1, 1, 2)]
    for k, (t, z) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):  # each row measured on its own plane's pixels
        assert float(rows["mean_intensity_Channel_2"][k]) == pytest.approx(tzcyx[t, z, 1][labels == 1].mean(), abs=1e-3)
    vol = read_measurements(tmp_path / "out" / "hyper_measurements_3d.csv")
    assert (vol["t"], vol["label"], vol["voxels"]) == (["0", "1"], ["1", "2"], ["60", "60"])
    np.testing.assert_allclose([float(v) for v in vol["volume_um3"]], [60 * 0.25 * 0.25 * 1.5] * 2)  # ImageJ sizes
    # the per-object formats name each object's time point as well as its Z
    coco = json.loads((tmp_path / "out" / "coco.json").read_text())
    assert [(im["t"], im["z"]) for im in coco["images"]] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [coco["images"][a["image_id"] - 1]["t"] + 1 for a in coco["annotations"]] == \
        [a["object_id"] for a in coco["annotations"]]  # object t+1 lives in time point t
    features = json.loads((tmp_path / "out" / "hyper.geojson").read_text())["features"]
    assert sorted((f["geometry"]["plane"]["t"], f["geometry"]["plane"]["z"]) for f in features) == \
        [(0, 0), (0, 1), (1, 0), (1, 1)]


@pytest.mark.parametrize("stitch", [None, 0.25])
def test_a_run_over_some_planes_numbers_its_objects_above_the_ids_the_stack_holds(tmp_path, stitch):
    """Segment Plane on plane 2 of a stack whose plane 0 holds ids 1..5: the run's objects start at 6;
    objects linked across Z keep one id per 3-D object, counted from there too."""
    from core.segment.stack import StackOptions, segment_stack

    image = write_ome_tiff(tmp_path / "s.ome.tif", stack_data(z=3, h=16, w=24)[0], "ZCYX")
    with open_source(image) as source:
        one = segment_stack(SplittingModel(), source, [(2,)], above=5)
        every = segment_stack(SplittingModel(), source, None, StackOptions(stitch_threshold=stitch), above=5)
    assert sorted(set(np.unique(one.instances[2]).tolist()) - {0}) == [6, 7]
    per_plane = [sorted(set(np.unique(every.instances[z]).tolist()) - {0}) for z in range(3)]
    assert per_plane == ([[6, 7]] * 3 if stitch else [[6, 7], [8, 9], [10, 11]])
    assert (one.objects, every.objects) == (2, 2 if stitch else 6)  # what the app reports a run found


def test_segment_all_beside_a_stack_writes_its_objects_stack_when_targets_name_it(tmp_path):
    """BatchWriter(None) (Segment All): the mask stack at targets["index"] and, named by
    targets["instances"], the model's objects as `--format instances` writes them."""
    from core.io.mask_naming import stack_instances_path, stack_mask_path
    from core.segment.batch_writer import StackMasks, write_batch
    from core.segment.stack import segment_stack

    image = write_ome_tiff(tmp_path / "s.ome.tif", stack_data(z=3, h=16, w=24)[0], "ZCYX")
    source = open_source(image)

    def fill(add):
        segment_stack(SplittingModel(), source, on_plane=add, keep=False)

    jobs = [(image, "s", lambda: StackMasks(source, fill, close=source.close),
             {"index": stack_mask_path(image), "instances": stack_instances_path(image)})]
    result = write_batch(BatchWriter(None, ["index"], CLASSES), jobs)
    assert result.done == 1 and not result.errors and stack_instances_path(image) in result.written
    ids = tifffile.imread(stack_instances_path(image))
    assert [sorted(set(np.unique(ids[z]).tolist()) - {0}) for z in range(3)] == [[1, 2], [3, 4], [5, 6]]
    labels, _ = read_label_stack(stack_mask_path(image), "Z", (3, 16, 24))
    assert np.array_equal(labels > 0, ids > 0)
