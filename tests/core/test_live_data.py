"""What live training learns from: images with other channels are left out (not fatal), a class
painted while it runs joins it, the record says what the weights started from, and a model
carries the user's classes only (findings 11, 12, 13 and 21 of issue 25)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from core.classes import ClassInfo, default_classes
from core.training.live import SCRATCH, LiveConfig, LiveTrainer
from core.training.loop import IGNORE, TrainingDataError

from tests.core.test_live_training import strokes, two_halves


def config(**kw) -> LiveConfig:
    base = dict(patch=48, batch=4, lr=1e-2, threads=1, snapshot_every=1e9, device="cpu", seed=1)
    return LiveConfig(**{**base, **kw})


def sixteen_bit(channels: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.normal(1000, 10, (96, 96, channels))
    img[:, 48:] += 300
    return img.astype(np.uint16)


def test_a_stroke_on_an_image_with_other_channels_leaves_it_out_and_training_goes_on():
    grey, two = sixteen_bit(1), sixteen_bit(2, seed=1)
    logs, seen, errors = [], [], []
    trainer = LiveTrainer(config(snapshot_every=0.0), log=logs.append)
    trainer.set_data([(grey, strokes())], ["grey.tif"])
    stop = threading.Event()

    def published(snap):
        seen.append(snap)
        if len(seen) == 2:  # the user paints on a 2-channel image while training runs
            trainer.set_data([(grey, strokes()), (two, strokes())], ["grey.tif", "two channels.tif"])
        if len(seen) == 6:
            stop.set()

    def run():
        try:
            trainer.run(published, stop.is_set)
        except Exception as exc:  # noqa: BLE001 - the old trainer stopped here
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(120)
    assert not errors and len(seen) >= 6  # training went on
    assert trainer.left_out == ["two channels.tif: has 2 channels but the model reads 1: left out of training."]
    assert trainer.left_out[0] in logs
    assert all(s.images == 1 and s.checkpoint.in_channels == 1 for s in seen)
    # on its own, an image the model cannot read is one sentence naming it (and training goes on
    # with the strokes it had)
    with pytest.raises(TrainingDataError, match=r"two channels\.tif: has 2 channels but the model reads 1"):
        trainer.set_data([(two, strokes())], ["two channels.tif"])


def test_mixed_channel_counts_at_the_start_train_on_the_first_images_kind():
    trainer = LiveTrainer(config())
    trainer.set_data([(sixteen_bit(1), strokes()), (sixteen_bit(3), strokes())], ["a.tif", "b.tif"])
    snap = trainer.run(lambda s: None, lambda: trainer.steps >= 2)
    assert snap.checkpoint.in_channels == 1 and snap.images == 1
    assert trainer.left_out == ["b.tif: has 3 channels but the model reads 1: left out of training."]


def test_a_class_painted_while_training_runs_joins_it_keeping_what_was_learnt():
    img, truth = two_halves()
    names = [ClassInfo(0, "sky", (0, 0, 255)), ClassInfo(1, "sea", (0, 128, 255))]
    trainer = LiveTrainer(config(), classes=names)
    trainer.set_data([(img, strokes())], ["a.png"])
    before = trainer.run(lambda s: None, lambda: trainer.steps >= 60)
    third = strokes()
    third[88:90, 30:60] = 2
    grown = names + [ClassInfo(2, "boat", (255, 0, 0))]
    trainer.set_data([(img, third)], ["a.png"], classes=grown)  # the user's list grew while it ran
    after = trainer.run(lambda s: None, lambda: trainer.steps >= 61)
    ck = after.checkpoint
    assert ck.num_classes == 3 and [c.name for c in ck.classes] == ["sky", "sea", "boat"]
    assert after.run == before.run and after.steps == 61  # the same training, going on
    # one step later the weights learnt are still there: every layer but the new classifier row
    # (batch-norm statistics move with every step: the learnt weights are what must stay)
    for key, value in before.checkpoint.state_dict.items():
        if "running_" in key or "num_batches" in key:
            continue
        grown_value = ck.state_dict[key][: value.shape[0]] if key.startswith("conv.") else ck.state_dict[key]
        assert torch.allclose(grown_value.float(), value.float(), atol=0.05), key
    from core.segment.inference import Segmenter

    a = Segmenter(before.checkpoint, device="cpu").segment(img)
    b = Segmenter(ck, device="cpu").segment(img)
    assert (a == truth).mean() > 0.9 and (a == b).mean() > 0.97


def test_an_id_beyond_the_class_list_is_refused_until_the_list_grows():
    img, _ = two_halves()
    third = strokes()
    third[88:90, 30:60] = 2
    trainer = LiveTrainer(config(), classes=default_classes(2))
    with pytest.raises(TrainingDataError, match="contains class id 2 but the model has 2 classes"):
        trainer.set_data([(img, third)], ["a.png"])
    trainer.set_data([(img, third)], ["a.png"], classes=default_classes(3))
    assert trainer.run(lambda s: None, lambda: trainer.steps >= 1).checkpoint.num_classes == 3


def test_the_record_says_what_the_weights_started_from():
    grey = sixteen_bit(1)
    scratch = LiveTrainer(config(init=None))
    scratch.set_data([(grey, strokes())])
    assert scratch.started_from == SCRATCH == "scratch"  # known at once, for the app's first message
    record = scratch.run(lambda s: None, lambda: scratch.steps >= 1).checkpoint.metadata["training"]
    assert record["started_from"] == "scratch" and record["init"] is None
    # a raw 1-channel image cannot use the built-in 8-bit RGB model: from scratch, and it says so
    logs = []
    raw = LiveTrainer(config(init="small"), log=logs.append)
    raw.set_data([(grey, strokes())])
    assert raw.started_from == "scratch"
    assert logs == ["small reads 3 8-bit channels, these images give 1 raw: training starts from scratch"]
    record = raw.run(lambda s: None, lambda: raw.steps >= 1).checkpoint.metadata["training"]
    assert record["started_from"] == "scratch" and record["init"] is None
    rgb = LiveTrainer(config(init="small"))
    rgb.set_data([(two_halves()[0], strokes())])
    assert rgb.started_from == "the built-in model small"
    record = rgb.run(lambda s: None, lambda: rgb.steps >= 1).checkpoint.metadata["training"]
    assert record["started_from"] == "the built-in model small" and record["init"] == "small"


def test_a_model_from_strokes_of_two_classes_has_the_users_two_classes_only():
    """The app may hand over its whole class list (with the demo model's names in it)."""
    img, _ = two_halves()
    demo = [ClassInfo(0, "background", (0, 0, 0)), ClassInfo(1, "ellipse", (255, 0, 0)),
            ClassInfo(2, "rectangle", (0, 255, 0)), ClassInfo(3, "triangle", (0, 0, 255)),
            ClassInfo(4, "star", (255, 255, 0))]
    trainer = LiveTrainer(config(init="small"), classes=demo)
    trainer.set_data([(img, strokes())], ["a.png"], classes=demo)
    ck = trainer.run(lambda s: None, lambda: trainer.steps >= 1).checkpoint
    assert ck.num_classes == 2 and [c.name for c in ck.classes] == ["background", "ellipse"]
    assert np.all(np.isin(strokes(), [0, 1, IGNORE]))
