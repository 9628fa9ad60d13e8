"""Training on stacks: each annotated plane is a 2-D item; masks with other planes are refused naming both shapes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.cli.main import main
from core.io.label_stacks import read_label_stack, write_label_stack
from core.training.loop import IGNORE, TrainingDataError, find_pairs, read_pairs
from tests.stack_images import write_ome_tiff


def halves_stack(z: int = 8, h: int = 48, w: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Z x C x H x W 12-bit: the left half bright in channel 0, the right half in channel 1; truth 0 | 1."""
    rng = np.random.default_rng(seed)
    data = rng.normal(300, 40, (z, 2, h, w))
    data[:, 0, :, : w // 2] += 1500
    data[:, 1, :, w // 2:] += 1500
    truth = np.zeros((z, h, w), np.uint8)
    truth[:, :, w // 2:] = 1
    return np.clip(data, 0, 4095).astype(np.uint16), truth


def stroke_stack(truth: np.ndarray, planes) -> np.ndarray:
    strokes = np.full(truth.shape, IGNORE, np.uint8)
    for z in planes:
        strokes[z, 20:22, 4:18] = 0
        strokes[z, 30:32, 30:44] = 1
    return strokes


@pytest.fixture
def folders(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    data, truth = halves_stack()
    write_ome_tiff(images / "cells.ome.tif", data, "ZCYX")
    write_label_stack(masks / "cells_strokes.ome.tif", stroke_stack(truth, (2, 6)), "Z")
    return images, masks, data, truth


def test_only_annotated_planes_become_training_items(folders):
    images, masks, data, _ = folders
    items, labels, needed = read_pairs(find_pairs(images, masks), None)
    assert [item.plane for item in items] == [(2,), (6,)] and needed == 2
    assert [item.name for item in items] == ["cells.ome.tif z 2", "cells.ome.tif z 6"]
    np.testing.assert_array_equal(items[1].pixels, np.moveaxis(data[6], 0, 2))  # the plane's raw channels
    assert all(((lab == 0) | (lab == 1) | (lab == IGNORE)).all() for lab in labels)


def test_a_mask_with_other_planes_or_a_2d_mask_is_one_message_naming_both_shapes(folders):
    images, masks, _, truth = folders
    (masks / "cells_strokes.ome.tif").unlink()
    write_label_stack(masks / "cells_mask.ome.tif", stroke_stack(truth[:5], (2,)), "Z")
    with pytest.raises(TrainingDataError) as caught:
        read_pairs(find_pairs(images, masks), None)
    assert str(caught.value) == "cells_mask.ome.tif: the mask is Z 5 x 48 x 48 but the image is Z 8 x 48 x 48."
    (masks / "cells_mask.ome.tif").unlink()
    Image.fromarray(truth[0]).save(masks / "cells.png")
    with pytest.raises(TrainingDataError, match=r"cells\.png: the mask is 48 x 48 but the image is Z 8 x 48 x 48"):
        read_pairs(find_pairs(images, masks), None)


def test_time_budget_training_on_strokes_of_two_planes_then_segment_gives_every_plane(folders, tmp_path, capsys):
    images, masks, data, truth = folders
    model = tmp_path / "m.safetensors"
    assert main(["train", "--images", str(images), "--masks", str(masks), "-o", str(model), "--time-budget", "3",
                 "--device", "cpu"]) == 0
    assert "in 2 images" in capsys.readouterr().out  # the two annotated planes, nothing else
    held_out, _ = halves_stack(z=6, seed=1)
    write_ome_tiff(tmp_path / "other.ome.tif", held_out, "ZCYX")
    assert main(["segment", str(tmp_path / "other.ome.tif"), "-o", str(tmp_path / "out"), "--model", str(model),
                 "--format", "ome-tiff", "--device", "cpu"]) == 0
    labels, axes = read_label_stack(tmp_path / "out" / "other.ome.tif", "Z", (6, 48, 48))
    assert axes == "Z" and labels.shape == (6, 48, 48)  # quality: bench/stack_training.py


def test_epoch_training_reads_a_whole_mask_stack_as_its_planes(folders, tmp_path, capsys):
    images, masks, _, truth = folders
    (masks / "cells_strokes.ome.tif").unlink()
    write_label_stack(masks / "cells.tif", truth, "Z")  # `segment --format tiff`'s name for it
    assert main(["train", "--images", str(images), "--masks", str(masks), "-o", str(tmp_path / "e.safetensors"),
                 "--epochs", "1", "--steps-per-epoch", "2", "--patch", "16", "--batch", "2", "--no-calibrate",
                 "--device", "cpu"]) == 0
    assert "8 training / 0 validation images" in capsys.readouterr().err
