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


@pytest.fixture(scope="module", autouse=True)
def libraries_loaded():
    """Load what training loads on first use (torch's optimisers take seconds on a busy machine),
    so the budgets below time training, not the first import."""
    from core.training.live import LiveConfig, LiveTrainer

    img, _ = two_halves()
    trainer = LiveTrainer(LiveConfig(device="cpu", threads=1))
    trainer.set_data([(img, strokes())])
    trainer.prepare()


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


# --------------------------------------------------------------------------- every flag (finding 3 of issue 25)


def train_args(images, masks, out, *flags) -> list[str]:
    return ["train", "--images", str(images), "--masks", str(masks), "-o", str(out), *flags]


@pytest.mark.parametrize("flags, named", [
    (["--epochs", "5"], ["--epochs"]),
    (["--steps-per-epoch", "10"], ["--steps-per-epoch"]),
    (["--teacher", "small"], ["--teacher"]),
    (["--calibrate"], ["--calibrate"]),
    (["--epochs", "5", "--teacher", "small"], ["--epochs", "--teacher"]),
])
def test_a_flag_time_budget_cannot_honour_is_refused_by_name(folders, tmp_path, capsys, flags, named):
    images, masks, _ = folders
    out = tmp_path / "m.safetensors"
    code = main(train_args(images, masks, out, "--time-budget", "2", *flags))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("error: with --time-budget: ")
    assert all(flag + ":" in err[0] for flag in named) and not out.exists()


def test_every_other_flag_is_honoured_and_recorded(tmp_path, capsys):
    """--channels (reordered), --dice, --lovasz, --tta, --val-fraction, --no-calibrate, --seed,
    --augment, --arch, --patch, --batch, --lr, --device, --classes and --init, with --time-budget."""
    import tifffile

    from core.model.checkpoints import load_checkpoint

    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(0)
    img = rng.normal(1000, 5, (3, 96, 96))
    img[1, :, 48:] += 200  # channel 1 tells the halves apart
    tifffile.imwrite(images / "a.tif", img.astype(np.uint16), metadata={"axes": "CYX"})
    Image.fromarray(strokes(96, 96, rows=(5, 20, 35, 50, 65, 80))).save(masks / "a.png")  # 6 strokes a class
    (tmp_path / "names.json").write_text(json.dumps(["left", "right"]))
    out = tmp_path / "m.safetensors"
    code = main(train_args(images, masks, out, "--time-budget", "3", "--channels", "1,0", "--dice", "--lovasz",
                           "--tta", "--val-fraction", "0.5", "--no-calibrate", "--seed", "3", "--augment",
                           "--arch", "small", "--patch", "32", "--batch", "2", "--lr", "0.005", "--device", "cpu",
                           "--classes", str(tmp_path / "names.json"), "--init", "none"))
    err = capsys.readouterr()
    assert code == 0, err.err
    ck = load_checkpoint(out)
    assert ck.in_channels == 2 and ck.normalization.channels == (1, 0)  # picked and in that order
    assert ck.tta is True and [c.name for c in ck.classes] == ["left", "right"]
    record = ck.metadata["training"]
    config = record["config"]
    assert (config["dice"], config["lovasz"], config["augment"], config["seed"], config["patch"], config["batch"],
            config["lr"], config["device"], config["held_out_share"]) == (True, True, True, 3, 32, 2, 0.005, "cpu", 0.5)
    assert record["init"] is None and record["started_from"] == "scratch" and "starting from scratch" in err.out
    # --val-fraction 0.5: every other stroke of a class from the 5th on is held out, not one in five
    assert record["held_out_pixels"] == 2 * 2 * 22  # strokes 5 and 6 of each class (2 x 22 px each)
    assert record["selection"] == "held-out strokes"


def test_fewer_than_five_strokes_a_class_choose_by_cross_validation_over_strokes(folders, tmp_path, capsys):
    images, masks, _ = folders  # 3 strokes a class
    out = tmp_path / "m.safetensors"
    assert main(train_args(images, masks, out, "--time-budget", "4", "--device", "cpu")) == 0
    from core.model.checkpoints import load_checkpoint

    record = load_checkpoint(out).metadata["training"]
    assert record["selection"] == "cross-validation over strokes"
    assert "cross-validation over strokes" in capsys.readouterr().err
    assert set(record["cross_validation"]) <= set(str(s) for s in range(0, record["steps"] + 1))
    assert record["held_out_pixels"] == 0  # the kept model trained on every stroke


def test_cross_validation_keeps_an_earlier_snapshot_only_when_the_score_fell():
    from types import SimpleNamespace

    from core.training.timed import choose_snapshot

    snaps = [SimpleNamespace(steps=s, held_out_miou=None) for s in (100, 200, 300)]
    kept, rule, why = choose_snapshot(snaps[-1], snaps, {100: 0.80, 200: 0.90, 300: 0.85}, 0.2)
    assert kept is snaps[1] and rule == "cross-validation over strokes" and "peaked" in why
    kept, _, why = choose_snapshot(snaps[-1], snaps, {100: 0.80, 200: 0.90, 300: 0.895}, 0.2)
    assert kept is snaps[-1] and "no decline" in why  # within MIN_DECLINE: no sign of overfitting
    kept, _, _ = choose_snapshot(snaps[-1], snaps, {100: 0.80, 200: 0.85}, 0.2)
    assert kept is snaps[-1]  # still rising where it was measured: the newest
    kept, rule, _ = choose_snapshot(snaps[-1], snaps, None, 0.0)
    assert kept is snaps[-1] and rule == "newest"
