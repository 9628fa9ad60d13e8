"""`unetseg train --time-budget`: learning from stroke files within a wall-time budget, and its bad inputs."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from PIL import Image

from core.cli.main import main
from core.segment.inference import Segmenter
from core.training.loop import IGNORE, find_pairs, load_pairs

from tests.core.test_live_training import strokes, two_halves


@pytest.fixture
def folders(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    img, truth = two_halves(128, 128)
    Image.fromarray(img).save(images / "a.png")
    Image.fromarray(strokes(128, 128, rows=(20, 60, 100))).save(masks / "a.png")
    return images, masks, truth


def test_time_budget_is_honoured_and_writes_a_model_segment_applies(folders, tmp_path, capsys):
    images, masks, truth = folders
    img = np.asarray(Image.open(images / "a.png"))
    Image.fromarray(img).save(images / "unpainted.png")
    Image.fromarray(np.full((128, 128), IGNORE, np.uint8)).save(masks / "unpainted.png")
    Image.fromarray(img).save(images / "no_mask.png")
    out = tmp_path / "m.safetensors"
    start = time.perf_counter()
    code = main(["train", "--images", str(images), "--masks", str(masks), "-o", str(out), "--time-budget", "3",
                 "--device", "cpu"])
    took = time.perf_counter() - start
    err = capsys.readouterr()
    assert code == 0 and took < 3.0 + 1.5, took
    assert "skipped 2 images without strokes" in err.err and "saved" in err.out
    seg = Segmenter.load(out, device="cpu")
    assert seg.num_classes == 2
    assert (seg.segment(img) == truth).mean() > 0.85
    assert main(["segment", str(images / "a.png"), "-o", str(tmp_path / "seg"), "--model", str(out)]) == 0
    labels = np.asarray(Image.open(tmp_path / "seg" / "a.png"))
    assert set(np.unique(labels)) <= {0, 1}


def test_strokes_of_one_class_get_one_message(folders, tmp_path, capsys):
    images, masks, _ = folders
    Image.fromarray(strokes(128, 128, classes=(1,))).save(masks / "a.png")
    code = main(["train", "--images", str(images), "--masks", str(masks), "-o", str(tmp_path / "m.safetensors"),
                 "--time-budget", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err == ["error: at least two classes must be annotated to train, but only class 1 is "
                                 "(1 image with strokes)."]
    assert not (tmp_path / "m.safetensors").exists()


def test_a_mask_beyond_the_named_classes_is_named(folders, tmp_path, capsys):
    images, masks, _ = folders
    (masks / "classes.json").write_text(json.dumps(["background", "red"]))
    mask = strokes(128, 128)
    mask[110:112, 70:90] = 2
    Image.fromarray(mask).save(masks / "a.png")
    code = main(["train", "--images", str(images), "--masks", str(masks), "-o", str(tmp_path / "m.safetensors"),
                 "--time-budget", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err == ["error: a.png: contains class id 2 but the model has 2 classes (0-1)."]


def test_sparse_masks_count_classes_by_annotated_ids(folders):
    images, masks, _ = folders
    data, needed = load_pairs(find_pairs(images, masks), None)
    assert needed == 2 and (data[0][1] == IGNORE).mean() > 0.9
