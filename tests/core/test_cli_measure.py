"""The command line for objects: ``unetseg measure`` on label images from other tools, its bad
inputs, and ``unetseg segment --format instances measurements``."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from core.cli.main import main
from core.io.label_images import read_label_image
from core.io.masks import read_mask
from core.objects.measure import read_measurements
from tests.core.test_measure import ellipses, raw_image

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture
def fluorescence(tmp_path):
    """A 2-channel 16-bit OME-TIFF with named channels and a 0.5 µm pixel, and a Cellpose-like uint16 label TIFF."""
    pixels = raw_image(80, 90)
    image = tmp_path / "cells.ome.tif"
    tifffile.imwrite(image, np.moveaxis(pixels, -1, 0), metadata={
        "axes": "CYX", "Channel": {"Name": ["DAPI", "GFP"]}, "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5})
    labels = ellipses(80, 90, 12).astype(np.uint16)
    tifffile.imwrite(tmp_path / "cells_cp_masks.tif", labels)
    return image, tmp_path / "cells_cp_masks.tif", pixels, labels


def test_measure_a_cellpose_label_image(tmp_path, fluorescence, capsys):
    image, labels_path, pixels, labels = fluorescence
    out = tmp_path / "out" / "cells.csv"
    assert main(["measure", str(image), str(labels_path), "-o", str(out)]) == 0
    assert "measured 12 object(s) of cells_cp_masks.tif on cells.ome.tif" in capsys.readouterr().err
    table = read_measurements(out)
    ids = [int(v) for v in table["label"]]
    assert ids == sorted(np.unique(labels)[1:].tolist())
    assert [int(v) for v in table["area"]] == [int((labels == i).sum()) for i in ids]
    np.testing.assert_allclose([float(v) for v in table["mean_intensity_GFP"]],
                               [pixels[labels == i, 1].mean() for i in ids], atol=1e-3)
    np.testing.assert_allclose([float(v) for v in table["area_um2"]], [0.25 * (labels == i).sum() for i in ids])


def test_measure_with_a_class_mask_and_a_16_bit_png(tmp_path, fluorescence, capsys):
    image, _, _, labels = fluorescence
    png = tmp_path / "stardist.png"
    Image.fromarray(labels.astype(np.uint16)).save(png)
    mask = np.where(labels > 6, 2, np.where(labels > 0, 1, 0)).astype(np.uint8)
    Image.fromarray(mask).save(tmp_path / "cells_mask.png")
    out = tmp_path / "m.csv"
    assert main(["measure", str(image), str(png), "-o", str(out), "--mask", str(tmp_path / "cells_mask.png")]) == 0
    table = read_measurements(out)
    assert [int(c) for c in table["class"]] == [2 if int(i) > 6 else 1 for i in table["label"]]
    assert set(table["class_name"]) == {"class 1", "class 2"}


def test_measure_a_tiled_label_image_block_by_block(tmp_path, fluorescence):
    image, labels_path, _, labels = fluorescence
    tiled = tmp_path / "tiled.tif"
    tifffile.imwrite(tiled, labels, tile=(32, 32))
    assert main(["measure", str(image), str(tiled), "-o", str(tmp_path / "a.csv")]) == 0
    assert main(["measure", str(image), str(labels_path), "-o", str(tmp_path / "b.csv")]) == 0
    a, b = (tmp_path / "a.csv").read_text().splitlines(), (tmp_path / "b.csv").read_text().splitlines()
    assert a[0] == b[0] and sorted(a[1:]) == sorted(b[1:])


def test_a_label_image_of_another_size_names_both_files(tmp_path, fluorescence, capsys):
    image, _, _, labels = fluorescence
    tifffile.imwrite(tmp_path / "small.tif", labels[:70])
    assert main(["measure", str(image), str(tmp_path / "small.tif"), "-o", str(tmp_path / "x.csv")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "error: small.tif is 90x70 but cells.ome.tif is 90x80; a label image must have its image's size"
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("name, data, reason", [
    ("probabilities.tif", np.random.default_rng(0).random((80, 90)).astype(np.float32),
     "holds float32 values, but a label image holds whole-number object ids"),
    ("huge.npy", np.full((80, 90), 2**33, np.uint64), "holds the id 8589934592, more than 2^32 - 1 objects"),
])
def test_float_labels_and_too_many_objects_are_one_line(tmp_path, fluorescence, capsys, name, data, reason):
    image = fluorescence[0]
    path = tmp_path / name
    np.save(path, data) if name.endswith(".npy") else tifffile.imwrite(path, data)
    assert main(["measure", str(image), str(path), "-o", str(tmp_path / "x.csv")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {name}: {reason}") and "\n" not in err


def test_a_label_image_without_objects_is_skipped_and_counted(tmp_path, fluorescence, capsys):
    image = fluorescence[0]
    tifffile.imwrite(tmp_path / "empty.tif", np.zeros((80, 90), np.uint16))
    assert main(["measure", str(image), str(tmp_path / "empty.tif"), "-o", str(tmp_path / "x.csv")]) == 0
    assert "empty.tif: no objects (every pixel is 0), skipped; measured 0 of 1 label image(s), 1 without objects" \
        in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_segment_writes_instances_and_measurements(tmp_path, small_weights, capsys):
    from core.objects.components import component_labels
    from core.training.synthetic import generate_scene

    images = tmp_path / "in"
    images.mkdir()
    Image.fromarray(generate_scene(3, 48, 56)[0]).save(images / "s.png")
    out = tmp_path / "out"
    rc = main(["segment", str(images), "-o", str(out), "--model", str(small_weights), "--tile", "0",
               "--format", "index", "instances", "measurements"])
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["s.png", "s_instances.tif", "s_measurements.csv"]
    mask = read_mask(out / "s.png")
    instances = read_label_image(out / "s_instances.tif")
    assert tifffile.imread(out / "s_instances.tif").dtype == np.uint16
    assert np.array_equal(instances, component_labels(mask))  # no model instances yet: the class mask's objects
    table = read_measurements(out / "s_measurements.csv")
    assert len(table["label"]) == int(instances.max())
    assert [int(a) for a in table["area"]] == [int((instances == int(i)).sum()) for i in table["label"]]
    assert "mean_intensity_Red" in table  # the image's own channels, named


def test_a_slide_gets_tiled_instances_and_streamed_measurements(tmp_path, capsys):
    """Chunked: the class store's objects numbered as the whole mask's, no seam at chunk borders,
    and the streamed table equal to the one measured in memory."""
    import zarr

    from core.objects.components import component_labels
    from core.objects.measure import Columns, write_measurements
    from core.segment.inference import Segmenter
    from core.training.synthetic import generate_scene
    from tests.large_images import write_pyramid_tiff

    image = generate_scene(4, 200, 580)[0]  # wider than a pyramid level's 512: the outputs get two levels
    path = write_pyramid_tiff(tmp_path / "scene.ome.tif", image, levels=2)
    out = tmp_path / "out"  # the built-in model: whole shapes, a few dozen objects
    rc = main(["segment", str(path), "-o", str(out), "--model", "small", "--tile", "160", "--chunk", "96",
               "--format", "ome-tiff", "ome-zarr", "instances", "measurements", "--no-tta", "--no-refine"])
    assert rc == 0, capsys.readouterr().err
    mask = tifffile.imread(out / "scene.ome.tif")
    expected = component_labels(mask)
    with tifffile.TiffFile(out / "scene_instances.ome.tif") as tif:
        assert tif.pages.first.is_tiled and tif.pages.first.dtype == np.uint16
        assert np.array_equal(tif.asarray(), expected)
        levels = tif.series[0].levels  # pyramidal: each level half the one above, ids kept (no blending)
        assert len(levels) >= 2 and levels[1].shape == tuple(-(-n // 2) for n in expected.shape)
        assert set(np.unique(levels[1].asarray())) <= set(np.unique(expected))
    assert np.array_equal(zarr.open_group(str(out / "scene_instances.ome.zarr"), mode="r")["0"][:], expected)
    write_measurements(tmp_path / "memory.csv", expected, image, mask,
                       Columns(("Red", "Green", "Blue"), Segmenter.load("small", device="cpu").classes))
    streamed = (out / "scene_measurements.csv").read_text().splitlines()
    memory = (tmp_path / "memory.csv").read_text().splitlines()
    assert streamed[0] == memory[0] and sorted(streamed[1:]) == sorted(memory[1:]) and len(memory) > 10
    store = zarr.open_group(str(out / "scene_instances.ome.zarr"), mode="r")["0"]
    assert store.chunks[0] < mask.shape[0] and store.chunks[1] < mask.shape[1]  # chunked: objects crossed chunks
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # work stores removed
