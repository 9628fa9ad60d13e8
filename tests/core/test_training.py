"""Training end to end on a tiny dataset, and every kind of bad training data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from core.training.checkpoint_choice import FEW_IMAGES, EpochChooser, split_images
from core.model.checkpoints import load_checkpoint
from core.classes import classes_to_json
from core.segment.inference import Segmenter
from core.io.masks import write_mask
from core.metrics import IoUAccumulator
from core.training.synthetic import SHAPE_CLASSES, write_dataset
from core.training.loop import TrainConfig, TrainingDataError, lovasz_softmax, train


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A handful of images: nothing is held out, the last epoch is kept."""
    root = tmp_path_factory.mktemp("shapes")
    write_dataset(root, 10, seed=3, height=64, width=64)
    (root / "classes.json").write_text(json.dumps(classes_to_json(SHAPE_CLASSES)))
    return root


@pytest.fixture(scope="module")
def enough(tmp_path_factory):
    """FEW_IMAGES small images: 4 are held out and choose the epoch."""
    root = tmp_path_factory.mktemp("shapes20")
    write_dataset(root, FEW_IMAGES, seed=4, height=48, width=48)
    (root / "classes.json").write_text(json.dumps(classes_to_json(SHAPE_CLASSES)))
    return root


def config(dataset, out, **kw):
    base = dict(images=dataset / "images", masks=dataset / "masks", out=out, arch="small", epochs=3,
                steps_per_epoch=12, batch=8, patch=48, lr=1e-2, seed=7, device="cpu", command="unetseg train (test)")
    return TrainConfig(**{**base, **kw})


def test_training_reduces_the_loss_and_saves_a_reloadable_checkpoint(enough, tmp_path):
    epochs = []
    result = train(config(enough, tmp_path / "m.safetensors"), on_epoch=epochs.append, log=lambda m: None)
    assert [e.epoch for e in epochs] == [1, 2, 3] and all(e.held_out for e in epochs)
    assert epochs[-1].train_loss < epochs[0].train_loss
    assert result.path == tmp_path / "m.safetensors" and result.selection == "held-out"
    assert result.best_miou == epochs[result.best_epoch - 1].val_miou
    ck = load_checkpoint(result.path)
    meta = ck.metadata["training"]
    assert meta["command"] == "unetseg train (test)" and (meta["train_images"], meta["val_images"]) == (16, 4)
    assert meta["val_miou"] == pytest.approx(result.best_miou, abs=1e-4) and meta["epochs"] == result.best_epoch
    assert meta["selection"]["rule"] == "held-out" and "Held out 4 of 20 images" in result.note
    assert [c.name for c in ck.classes] == ["background", "ellipse", "rectangle", "triangle", "star"]
    labels = Segmenter.load(result.path, device="cpu").segment(np.zeros((40, 40, 3), np.uint8))
    assert labels.shape == (40, 40)
    # edge refinement was fitted on the validation images and its verdict stored with the model
    fitted = ck.metadata["calibration"]
    assert result.calibration is not None and fitted["images"] == meta["val_images"]
    assert ck.refine == result.calibration.refine and fitted["miou_unrefined"] == round(result.calibration.baseline, 4)


def test_calibration_after_training_can_be_turned_off(enough, tmp_path):
    result = train(config(enough, tmp_path / "m.safetensors", epochs=1, calibrate=False), log=lambda m: None)
    ck = load_checkpoint(result.path)
    assert result.calibration is None and "calibration" not in ck.metadata and ck.refine is None


def test_the_same_seed_gives_the_same_weights(dataset, tmp_path):
    a = train(config(dataset, tmp_path / "a.safetensors", epochs=1), log=lambda m: None)
    b = train(config(dataset, tmp_path / "b.safetensors", epochs=1), log=lambda m: None)
    wa, wb = load_checkpoint(a.path).state_dict, load_checkpoint(b.path).state_dict
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_cancelling_keeps_the_best_checkpoint_so_far(dataset, tmp_path):
    steps = []
    result = train(config(dataset, tmp_path / "c.safetensors", epochs=5),
                   progress=lambda d, t: steps.append(d), should_cancel=lambda: len(steps) >= 15, log=lambda m: None)
    assert result.stopped_early and result.path.exists() and len(steps) == 15


def test_fine_tuning_from_a_checkpoint_and_distillation(dataset, tmp_path, small_weights):
    first = train(config(dataset, tmp_path / "base.safetensors", epochs=1), log=lambda m: None)
    tuned = train(config(dataset, tmp_path / "tuned.safetensors", epochs=1, init=str(first.path),
                         teacher=str(first.path), tta=True, lovasz=True), log=lambda m: None)
    assert Segmenter.load(tuned.path, device="cpu").tta is True
    again = train(config(dataset, tmp_path / "again.safetensors", epochs=1, init=str(tuned.path)), log=lambda m: None)
    assert Segmenter.load(again.path, device="cpu").tta is True  # inherited from the model it started from
    assert load_checkpoint(again.path).metadata["training"]["init"]["training"]["command"] == "unetseg train (test)"
    with pytest.raises(TrainingDataError, match="cannot initialise UNetLarge"):
        train(config(dataset, tmp_path / "x.safetensors", arch="large", init=str(first.path)), log=lambda m: None)


def _pair(folder, name, image_shape=(32, 32), mask_shape=(32, 32), top=2):
    (folder / "images").mkdir(exist_ok=True)
    (folder / "masks").mkdir(exist_ok=True)
    Image.fromarray(np.zeros((*image_shape, 3), np.uint8)).save(folder / "images" / f"{name}.png")
    labels = np.zeros(mask_shape, np.uint8)
    labels[0, 0] = top
    write_mask(folder / "masks" / f"{name}.png", labels, "index", SHAPE_CLASSES)


@pytest.mark.parametrize("make, message", [
    (lambda f: (f / "images").mkdir() or (f / "masks").mkdir(), r"images: the images folder holds no images"),
    (lambda f: _pair(f, "a") or Image.new("RGB", (8, 8)).save(f / "images" / "lonely.png"),
     r"lonely\.png: has no mask named lonely\.\*"),
    (lambda f: _pair(f, "a") or _pair(f, "b", mask_shape=(30, 32)), r"b\.png: mask is 32x30 but the image is 32x32"),
    (lambda f: _pair(f, "a", top=9) or (f / "masks" / "classes.json").write_text(json.dumps(["bg", "a", "b"])),
     r"a\.png: contains class id 9 but the model has 3 classes"),
    (lambda f: (f / "masks").mkdir(), r"images: the images folder does not exist"),
])
def test_bad_training_data_gets_one_sentence_naming_the_file(tmp_path, make, message):
    make(tmp_path)
    with pytest.raises(TrainingDataError, match=message) as err:
        train(TrainConfig(images=tmp_path / "images", masks=tmp_path / "masks", out=tmp_path / "o.safetensors",
                          device="cpu"), log=lambda m: None)
    assert "\n" not in str(err.value)


def test_lovasz_loss_is_one_minus_iou_for_confident_predictions():
    rng = np.random.default_rng(0)
    target = torch.from_numpy(rng.integers(0, 4, (2, 16, 16)).astype(np.int64))
    pred = torch.where(torch.from_numpy(rng.random((2, 16, 16)) < 0.3), (target + 1) % 4, target)
    target[0, 0, :4] = 255  # ignored pixels count for neither side
    logits = torch.nn.functional.one_hot(pred, 4).permute(0, 3, 1, 2).float() * 50
    ious = []
    valid = target != 255
    for k in (1, 2, 3):
        p, t = (pred == k) & valid, target == k
        ious.append(float((p & t).sum() / (p | t).sum()))
    assert lovasz_softmax(logits, target).item() == pytest.approx(1 - np.mean(ious), abs=1e-4)
    perfect = torch.nn.functional.one_hot(target.clamp_max(3), 4).permute(0, 3, 1, 2).float() * 50
    assert lovasz_softmax(perfect, target).item() == pytest.approx(0, abs=1e-4)


def test_prefetched_batches_keep_their_order_and_the_thread_ends_with_them():
    import threading

    from core.training.loop import _prefetch

    counter = iter(range(1000))
    batches = _prefetch(lambda: next(counter), depth=2)
    assert [next(batches) for _ in range(5)] == [0, 1, 2, 3, 4]
    batches.close()
    assert not any(t.name == "unetseg-batches" for t in threading.enumerate())


# --- which epoch is kept (core.training.checkpoint_choice) --------------------------------------------


def test_a_handful_of_images_trains_on_all_and_keeps_the_last_epoch(dataset, tmp_path, monkeypatch):
    """With 10 images nothing is held out, so no per-epoch score, however it swings, picks the
    checkpoint: the last epoch is kept, and the result says so in plain words."""
    import core.training.loop as training

    swings = iter([0.99, 0.40, 0.95])  # what one validation image used to do from epoch to epoch
    real = training.IoUAccumulator.mean_iou
    monkeypatch.setattr(training.IoUAccumulator, "mean_iou", lambda self, classes=None: next(swings))
    epochs, logged = [], []
    result = train(config(dataset, tmp_path / "few.safetensors", epochs=3), on_epoch=epochs.append,
                   log=logged.append)
    monkeypatch.setattr(training.IoUAccumulator, "mean_iou", real)
    assert [e.improved for e in epochs] == [True, True, True] and not any(e.held_out for e in epochs)
    assert result.selection == "last-epoch" and result.best_epoch == 3 and result.calibration is None
    assert "Trained on all 10 images" in result.note and "no held-out score" in result.note
    assert result.note in logged
    meta = load_checkpoint(result.path).metadata["training"]
    assert (meta["train_images"], meta["val_images"]) == (10, 0) and "val_miou" not in meta
    assert meta["selection"]["rule"] == "last-epoch" and meta["selection"]["note"].startswith("Trained on all 10")


def test_fine_tuning_without_held_out_images_keeps_the_starting_models_edge_refinement(dataset, tmp_path):
    from core.segment.calibration import Calibration, write_calibrated
    from core.model.refine import Refinement

    base = train(config(dataset, tmp_path / "base.safetensors", epochs=1), log=lambda m: None)
    setting = Refinement(4, 1e-3)
    write_calibrated(load_checkpoint(base.path), base.path, Calibration(setting, 0.5, {setting: 0.6}, 3))
    tuned = train(config(dataset, tmp_path / "tuned.safetensors", epochs=1, init=str(base.path)), log=lambda m: None)
    assert load_checkpoint(tuned.path).refine == setting


def test_small_datasets_hold_nothing_out_and_larger_ones_at_least_four_images():
    rng = np.random.default_rng(0)
    assert split_images(10, 0.1, rng) == (list(range(10)), [])
    assert split_images(FEW_IMAGES - 1, 0.5, rng)[1] == []
    train_idx, val_idx = split_images(FEW_IMAGES, 0.1, rng)
    assert len(val_idx) == 4 and sorted(train_idx + val_idx) == list(range(FEW_IMAGES))
    assert len(split_images(200, 0.1, rng)[1]) == 20 and split_images(200, 0.0, rng)[1] == []


def _scores(pred_masks, true_masks) -> float:
    acc = IoUAccumulator(5)
    for p, t in zip(pred_masks, true_masks):
        acc.update(p, t)
    return acc.mean_iou(range(1, 5))


def test_a_class_missing_from_one_validation_image_no_longer_decides_the_checkpoint():
    """Four validation images; the first has no stars.  In epoch 2 the model is better on every
    image but paints 3 star pixels into the first one.  Scored on that image alone (the old
    one-image validation) epoch 2 drops from 1.0 to 0.75 and epoch 1 would be kept; pooled
    over all four images the stray pixels cost 0.1 % of the star class, and with the trailing
    mean epoch 2 is kept."""
    truth = []
    for k in range(4):
        t = np.zeros((40, 40), np.uint8)
        t[2:12, 2:12], t[14:24, 14:24], t[26:36, 2:12] = 1, 2, 3
        if k:
            t[26:36, 26:36] = 4
        truth.append(t)
    epoch1 = [t.copy() for t in truth]
    for p in epoch1[1:]:
        p[26:36, 26:28] = 0  # epoch 1 misses a strip of every star
    epoch2 = [t.copy() for t in truth]
    epoch2[0][39, 37:40] = 4  # a few stray star pixels where that image has none
    assert _scores(epoch1[:1], truth[:1]) == 1.0 and _scores(epoch2[:1], truth[:1]) == 0.75
    chooser = EpochChooser(train_images=16, val_images=4)
    assert chooser.keep(_scores(epoch1, truth)) is True
    assert chooser.keep(_scores(epoch2, truth)) is True
    assert chooser.note(2, 2).startswith("Held out 4 of 20 images and kept epoch 2")


def test_the_held_out_choice_is_smoothed_over_epochs():
    """One lucky epoch (0.95) does not win against a sustained better run: the kept weights are
    those that end the best three-epoch window."""
    scores = (0.50, 0.95, 0.50, 0.80, 0.82, 0.84)
    chooser = EpochChooser(train_images=30, val_images=5)
    kept = [epoch for epoch, s in enumerate(scores, 1) if chooser.keep(s)]
    assert kept[-1] == 6 and 1 + scores.index(max(scores)) == 2  # the raw best would have been epoch 2
    assert chooser.best == pytest.approx((0.80 + 0.82 + 0.84) / 3)
