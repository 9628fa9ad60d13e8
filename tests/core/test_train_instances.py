"""``unetseg train --instances``: from painted label images (sparse: half an image) to a model whose
objects come apart where connected components merge them; images without labels or objects are
skipped and counted; bad label images are one line naming the file(s)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image
from scipy import ndimage as ndi

from core.cli.main import main
from core.model.metadata_edit import read_metadata
from core.objects.matching import match
from core.segment.inference import Segmenter
from tests.objects_images import fluorescence, half_annotated, touching_objects


@pytest.fixture(scope="module")
def cells():
    labels = touching_objects(128, 128, 26, seed=4, radius=(7, 11))
    return fluorescence(labels, seed=4), labels


def folders(tmp_path, cells, label_name="cells_instances.tif"):
    image, labels = cells
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    tifffile.imwrite(tmp_path / "images" / "cells.tif", image)
    tifffile.imwrite(tmp_path / "masks" / label_name, half_annotated(labels))
    return tmp_path / "images", tmp_path / "masks"


@pytest.fixture
def one_thread():
    """One torch thread: on a machine shared with other jobs two threads wait on each other."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_touching_objects_in_the_unpainted_half_come_apart(tmp_path, cells, capsys, one_thread):
    images, masks = folders(tmp_path, cells)
    tifffile.imwrite(images / "other.tif", cells[0][::-1])  # no label image: skipped and counted
    out = tmp_path / "objects.safetensors"
    assert main(["train", "--images", str(images), "--masks", str(masks), "--instances", "--epochs", "2",
                 "--steps-per-epoch", "20", "--patch", "48", "--batch", "8", "--lr", "0.01", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "from 8 painted objects in 1 image; 1 skipped" in printed
    meta = read_metadata(out)
    assert meta["instances"]["boundary_class"] == 2 and meta["instances"]["object_classes"] == [1]
    assert [c["name"] for c in meta["classes"]] == ["background", "class 1", "object boundary"]
    assert meta["training"]["config"]["masks"] == str(masks)  # the user's folder, not the temporary one
    seg = Segmenter.load(out, device="cpu")
    result = seg.segment(cells[0], instances=True)
    truth, bottom = cells[1].copy(), slice(64, None)
    truth[:64] = 0
    found = np.zeros_like(result.instances)
    found[bottom] = result.instances[bottom]
    merged = ndi.label(result.labels > 0, np.ones((3, 3)))[0]
    merged[:64] = 0
    assert match(truth, merged).accuracy < 0.3  # the class mask's components merge touching objects
    assert match(truth, found).accuracy >= 0.8  # the instance output separates them


def test_time_budget_learns_from_label_and_strokes_files(tmp_path, cells, capsys):
    images, masks = folders(tmp_path, cells, label_name="cells.tif")  # the masks folder's plain name pairs too
    strokes = np.full(cells[1].shape, 255, np.uint8)
    strokes[100:104, 10:60] = 0  # background strokes beside the label image
    Image.fromarray(strokes).save(masks / "cells_strokes.png")
    empty = np.full(cells[1].shape, 65535, np.uint16)
    empty[:10] = 0  # background only: no object to learn from
    tifffile.imwrite(images / "blank.tif", cells[0])
    tifffile.imwrite(masks / "blank_instances.tif", empty)
    out = tmp_path / "t.safetensors"
    assert main(["train", "--images", str(images), "--masks", str(masks), "--instances", "--time-budget", "4",
                 "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "skipped 1 label image without objects: blank_instances.tif" in captured.err
    assert "1 skipped" in captured.out
    meta = read_metadata(out)
    assert meta["instances"]["boundary_class"] == 2 and meta["training"]["painted_objects"] == 8
    assert meta["training"]["dataset"]["images"] == 1


@pytest.mark.parametrize("bad, message", [
    (np.zeros((100, 128), np.uint16), "cells_instances.tif is 128x100 pixels but its image cells.tif is 128x128"),
    (np.zeros((128, 128), np.float32), "cells_instances.tif: holds float32 values, but a label image holds whole"),
])
def test_bad_label_images_stop_with_one_line(tmp_path, cells, capsys, bad, message):
    images, masks = folders(tmp_path, cells)
    tifffile.imwrite(masks / "cells_instances.tif", bad)
    assert main(["train", "--images", str(images), "--masks", str(masks), "--instances", "--time-budget", "5",
                 "-o", str(tmp_path / "m.safetensors")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("error: ")
    assert not (tmp_path / "m.safetensors").exists()


def test_no_painted_object_anywhere_is_one_line(tmp_path, cells, capsys):
    images, masks = folders(tmp_path, cells)
    tifffile.imwrite(masks / "cells_instances.tif", np.zeros((128, 128), np.uint16))
    assert main(["train", "--images", str(images), "--masks", str(masks), "--instances", "--time-budget", "5",
                 "-o", str(tmp_path / "m.safetensors")]) == 1
    assert "no label image has a painted object" in capsys.readouterr().err


def test_a_live_snapshot_with_the_spec_recorded_segments_objects(cells):
    """The app's way: build the targets, train the live trainer briefly, give its snapshot the spec."""
    from dataclasses import replace

    from core.training.instance_targets import UNANNOTATED, InstanceAnnotation, build_targets
    from core.training.instance_training import with_instances
    from core.training.live import LiveConfig, LiveTrainer

    objects = half_annotated(cells[1]).astype(np.uint32)
    objects[objects == 65535] = UNANNOTATED
    built = build_targets([InstanceAnnotation(objects)])
    trainer = LiveTrainer(replace(LiveConfig(), threads=1, device="cpu", snapshot_every=1e9, init=None))
    trainer.set_data([(cells[0][..., None], built.targets[0])])
    snaps, asked = [], iter(range(10**6))
    trainer.run(snaps.append, should_stop=lambda: next(asked) >= 3)  # a few steps: the structure, not the skill
    seg = Segmenter(with_instances(snaps[-1].checkpoint, built.spec), device="cpu")
    assert seg.instances == built.spec and [c.id for c in seg.classes] == [0, 1]
    result = seg.segment(cells[0], instances=True)
    assert result.instances.dtype == np.uint32 and built.spec.boundary_class not in np.unique(result.labels)
