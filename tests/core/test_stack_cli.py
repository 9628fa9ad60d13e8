"""`unetseg segment STACK`: label stacks with the input's Z and T, the per-object formats with planes, bad stacks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from PIL import Image

from core.cli.main import main
from core.io.label_stacks import read_label_stack
from core.io.sources import open_source
from core.segment.inference import Segmenter
from tests.helpers import write_raw_checkpoint
from tests.stack_images import stack_data, write_imagej, write_ome_tiff, write_ome_zarr, write_plane_folder


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_raw_checkpoint(tmp_path_factory.mktemp("model") / "raw.safetensors", channels=2, num_classes=3)


def run(*args) -> int:
    return main(["segment", *map(str, args), "--device", "cpu"])


def test_zcyx_stack_into_tiff_ome_tiff_ome_zarr_and_npy_reads_back_with_its_z(model, tmp_path):
    data = stack_data(z=5, h=40, w=48)
    image = write_ome_tiff(tmp_path / "cells.ome.tif", data[0], "ZCYX")
    out = tmp_path / "out"
    assert run(image, "-o", out, "--model", model, "--format", "tiff", "ome-tiff", "ome-zarr", "npy") == 0
    stacks = [read_label_stack(out / name, "Z", (5, 40, 48)) for name in
              ("cells.tif", "cells.ome.tif", "cells.ome.zarr", "cells.npy")]
    assert all(axes == "Z" for _, axes in stacks)
    for other, _ in stacks[1:]:
        np.testing.assert_array_equal(other, stacks[0][0])
    # each plane is the 2-D model's answer for that plane, scaled by the stack's one statistics
    seg = Segmenter.load(model, device="cpu")
    with open_source(image) as src:
        stats = seg.source_statistics(src)
        for z in (0, 4):
            expected = seg.segment(src.read_raw(0, 40, 0, 48, plane=(z,)), stats=stats)
            np.testing.assert_array_equal(stacks[0][0][z], expected)
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no work store left behind


def test_imagej_tzcyx_and_ome_zarr_tcyx_keep_t_and_z(model, tmp_path):
    hyper = write_imagej(tmp_path / "hyper.tif", stack_data(t=2, z=3, h=24, w=32))
    movie = write_ome_zarr(tmp_path / "movie.ome.zarr", stack_data(t=3, z=1, h=24, w=32)[:, 0], "TCYX")
    out = tmp_path / "out"
    assert run(hyper, movie, "-o", out, "--model", model, "--format", "tiff", "ome-zarr") == 0
    assert read_label_stack(out / "hyper.tif", "TZ", (2, 3, 24, 32))[1] == "TZ"
    assert read_label_stack(out / "hyper.ome.zarr", "TZ", (2, 3, 24, 32))[1] == "TZ"
    assert read_label_stack(out / "movie.tif", "T", (3, 24, 32))[1] == "T"
    with tifffile.TiffFile(out / "hyper.tif") as tif:  # Fiji opens it as a hyperstack
        assert tif.is_imagej and tif.imagej_metadata["frames"] == 2 and tif.imagej_metadata["slices"] == 3


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools' decode
def test_multipage_tiff_beside_a_2d_image_share_one_coco_file_with_a_plane_per_image(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    with tifffile.TiffWriter(folder / "pages.tif") as tw:  # 6 bare pages: Z planes
        for plane in stack_data(z=6, c=1, h=24, w=32)[0, :, 0]:
            tw.write(plane, metadata=None)
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(folder / "flat.png")
    out = tmp_path / "out"
    assert run(folder, "-o", out, "--model", "small", "--format", "tiff", "coco", "--no-tta", "--no-refine",
               "--tolerance", "0") == 0
    labels, axes = read_label_stack(out / "pages.tif", "Z", (6, 24, 32))
    assert (out / "flat.tif").is_file()
    coco = json.loads((out / "coco.json").read_text())
    stack_images = [im for im in coco["images"] if im["file_name"] == "pages.tif"]
    assert [im["z"] for im in stack_images] == list(range(6))
    from pycocotools.coco import COCO

    api = COCO()
    api.dataset = coco
    api.createIndex()
    for im in stack_images:  # each plane's objects are that plane's mask (exact outlines)
        union = np.zeros((24, 32), bool)
        for ann in api.loadAnns(api.getAnnIds(imgIds=[im["id"]])):
            union |= api.annToMask(ann).astype(bool)
        np.testing.assert_array_equal(union, labels[im["z"]] > 0)
    assert [im for im in coco["images"] if im["file_name"] == "flat.png"]


def test_folder_of_planes_per_plane_files_and_objects_with_their_plane(tmp_path):
    zyx = np.zeros((4, 32, 32), np.uint8)
    for z in range(4):
        zyx[z, 8:20, 8 + z:20 + z] = 220  # one bright square drifting with depth: one object per plane
    folder = write_plane_folder(tmp_path / "planes", zyx, "z{}.png")
    out = tmp_path / "out"
    code = run(folder, "--stack-folder", "-o", out, "--model", "small", "--format", "index", "geojson", "imagej",
               "ome-tiff", "--stitch-threshold", "0.25", "--tile", "0", "--no-tta", "--no-refine")
    assert code == 0
    labels, _ = read_label_stack(out / "planes.ome.tif", "Z", (4, 32, 32))
    for z in range(4):  # the per-plane index PNGs are the planes of the stack
        np.testing.assert_array_equal(np.asarray(Image.open(out / f"planes_z{z}.png")), labels[z])
    features = json.loads((out / "planes.geojson").read_text())["features"]
    assert features  # the squares are found (the built-in model sees shapes)
    planes = {f["properties"]["z"] for f in features}
    assert planes <= {0, 1, 2, 3} and all(f["geometry"]["plane"]["z"] == f["properties"]["z"] for f in features)
    import roifile

    rois = roifile.roiread(out / "planes_rois.zip")
    assert sorted({r.z_position for r in rois}) == sorted(z + 1 for z in planes)
    with tifffile.TiffFile(out / "planes_instances.ome.tif") as tif:
        ids = tif.asarray()
    assert ids.shape == (4, 32, 32) and ids.dtype == np.uint16
    for f in features:  # a feature's object id is the stitched id under it
        assert f["properties"]["object_id"] in set(np.unique(ids[f["properties"]["z"]]))
    largest = {}
    for f in features:  # the drifting square: the largest object of every plane, linked into one 3-D object
        z = f["properties"]["z"]
        area = sum(1 for _ in np.argwhere(ids[z] == f["properties"]["object_id"]))
        if area > largest.get(z, (0, None))[0]:
            largest[z] = (area, f["properties"]["object_id"])
    assert len(largest) == 4 and len({oid for _, oid in largest.values()}) == 1


def test_a_5d_file_with_an_unknown_axis_order_is_one_line_and_the_other_inputs_still_run(model, tmp_path, capsys):
    tifffile.imwrite(tmp_path / "q.tif", np.zeros((2, 2, 5, 16, 16), np.uint16))  # axes QQSYX: order unknown
    good = write_ome_tiff(tmp_path / "good.ome.tif", stack_data(z=3, h=16, w=16)[0], "ZCYX")
    out = tmp_path / "out"
    assert run(tmp_path / "q.tif", good, "-o", out, "--model", model, "--format", "tiff") == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if "q.tif" in line]
    assert len(lines) == 1 and "axis" in lines[0] and "--axes" in lines[0]
    assert read_label_stack(out / "good.tif", "Z", (3, 16, 16))[1] == "Z"
    assert run(tmp_path / "q.tif", "--axes", "TCZYX", "-o", out, "--model", model, "--format", "tiff") == 0
    assert read_label_stack(out / "q.tif", "TZ", (2, 5, 16, 16))[1] == "TZ"


def test_a_formats_own_limit_on_one_plane_stops_that_format_alone(tmp_path):
    from core.classes import default_classes
    from core.segment.batch_writer import BatchWriter, FormatErrors

    crowded = np.zeros((40, 40), np.uint8)
    crowded[::2, ::2] = 1  # 400 separate objects: more than VOC's 254
    writer = BatchWriter(tmp_path / "out", ["tiff", "voc", "geojson"], default_classes(2))
    job = writer.stack(tmp_path / "s.ome.tif", "s", "Z", (2,), 40, 40)
    job.add_plane((0,), np.zeros((40, 40), np.uint8))
    job.add_plane((1,), crowded)
    with pytest.raises(FormatErrors) as caught:
        job.close()
    assert list(caught.value.failures) == ["voc"] and "254" in str(caught.value)
    np.testing.assert_array_equal(read_label_stack(tmp_path / "out" / "s.tif", "Z", (2, 40, 40))[0][1], crowded)
    assert len(json.loads((tmp_path / "out" / "s.geojson").read_text())["features"]) == 400
