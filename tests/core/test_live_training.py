"""Learning from a few strokes: sparse masks, the live trainer's snapshots, pause, roll-back,
new strokes while it runs, running out of memory, and bad strokes."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from core.classes import default_classes
from core.segment.inference import Segmenter
from core.training.live import LiveConfig, LiveTrainer
from core.training.loop import IGNORE, TrainingDataError
from core.training.sparse import StrokeRoles, StrokeSampler, stroke_set, strokes_of


def two_halves(h: int = 96, w: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A noisy red left half and blue right half, and a full ground truth (0 left, 1 right)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    img[:, : w // 2] = (190, 50, 40)
    img[:, w // 2:] = (40, 60, 190)
    img = np.clip(img + rng.normal(0, 18, img.shape), 0, 255).astype(np.uint8)
    truth = np.zeros((h, w), np.uint8)
    truth[:, w // 2:] = 1
    return img, truth


def strokes(h: int = 96, w: int = 96, rows=(20, 50, 80), classes=(0, 1)) -> np.ndarray:
    """Short horizontal 2-px strokes, one per row and class, inside each half (under 3 % of pixels)."""
    mask = np.full((h, w), IGNORE, np.uint8)
    for y in rows:
        if 0 in classes:
            mask[y:y + 2, 8:30] = 0
        if 1 in classes:
            mask[y:y + 2, w // 2 + 10:w // 2 + 32] = 1
    return mask


def config(**kw) -> LiveConfig:
    base = dict(patch=48, batch=4, lr=1e-2, threads=1, nice=0, snapshot_every=0.3, device="cpu", seed=1)
    return LiveConfig(**{**base, **kw})


def test_strokes_alone_teach_the_whole_image_and_255_is_never_learnt():
    img, truth = two_halves()
    mask = strokes()
    assert (mask != IGNORE).mean() < 0.03
    trainer = LiveTrainer(config(snapshot_every=1.0))
    trainer.set_data([(img, mask)])
    best = trainer.run(lambda s: None, lambda: trainer.steps >= 80)
    # 255 is "not annotated": had it been a class, the model would have 256 outputs and paint it
    assert best.checkpoint.num_classes == 2 and [c.id for c in best.checkpoint.classes] == [0, 1]
    pred = Segmenter(best.checkpoint, device="cpu").segment(img)
    assert (pred == truth).mean() > 0.9


def test_snapshots_are_complete_models_published_while_training():
    img, _ = two_halves()
    seen, at_publish = [], []

    def published(snap):
        seen.append(snap)
        at_publish.append({k: v.clone() for k, v in snap.checkpoint.state_dict.items()})

    trainer = LiveTrainer(config(snapshot_every=0.2))
    trainer.set_data([(img, strokes(rows=(20, 70)))])  # two strokes a class: nothing held out
    trainer.run(published, lambda: False, time_budget=1.5)
    assert len(seen) >= 3 and [s.index for s in seen] == list(range(len(seen)))
    assert all(b.steps > a.steps and b.seconds > a.seconds for a, b in zip(seen, seen[1:]))
    assert seen[0].annotated_pixels == int((strokes(rows=(20, 70)) != IGNORE).sum()) and seen[0].images == 1
    # each snapshot owns its weights: what it held when published is what it holds after later training
    for snap, then in zip(seen, at_publish):
        assert all(torch.equal(then[k], v) for k, v in snap.checkpoint.state_dict.items())
    # ... while the training weights moved on: the first snapshot is not the model trained since
    trained = trainer.model.state_dict()
    assert not all(torch.equal(trained[k], v) for k, v in seen[0].checkpoint.state_dict.items())
    assert not all(torch.equal(at_publish[0][k], v) for k, v in seen[-1].checkpoint.state_dict.items())
    assert seen[-1].checkpoint.metadata["training"]["live"] is True


def test_held_out_score_appears_once_every_class_has_enough_strokes():
    img, _ = two_halves()
    few = LiveTrainer(config())
    few.set_data([(img, strokes(rows=(20, 70)))])  # two strokes per class: nothing held out
    assert few.run(lambda s: None, lambda: few.steps >= 5).held_out_miou is None
    many = LiveTrainer(config())
    many.set_data([(img, strokes(rows=(5, 20, 35, 50, 65, 80)))])
    snap = many.run(lambda s: None, lambda: many.steps >= 80)
    assert snap.held_out_miou is not None and snap.held_out_miou > 0.8  # the halves are easy to tell apart
    # held-out strokes are not trained on
    assert snap.annotated_pixels < int((strokes(rows=(5, 20, 35, 50, 65, 80)) != IGNORE).sum())


def test_hold_out_takes_whole_strokes_of_every_class():
    mask = strokes(rows=(5, 20, 35, 50, 65, 80))
    assert len(strokes_of(mask)) == 12
    where, classes = StrokeRoles().held_pixels("a", mask)
    held = np.full(mask.shape, IGNORE, np.uint8)
    held.reshape(-1)[where] = classes
    assert set(np.unique(held)) == {0, 1, IGNORE}
    assert (mask.reshape(-1)[where] == classes).all()
    for stroke in strokes_of(held):  # every held-out stroke is a whole stroke of the original
        assert any(np.array_equal(stroke.cells, full.cells) for full in strokes_of(mask)
                   if full.class_id == stroke.class_id)
        assert (held[mask == stroke.class_id] == stroke.class_id).sum() > 0


def test_crops_are_drawn_where_the_strokes_are():
    img, _ = two_halves(400, 400)
    mask = np.full((400, 400), IGNORE, np.uint8)
    mask[300:302, 40:60] = 0
    mask[300:302, 340:360] = 1  # 80 pixels of 160000: a random crop would almost never hold one
    sampler = StrokeSampler([(img, mask)], 48, np.random.default_rng(0))
    _, y = sampler.batch(32)
    annotated = (y != IGNORE).flatten(1).any(1)
    assert annotated.all()
    seen = {int(c) for c in torch.unique(y) if c != IGNORE}
    assert seen == {0, 1}


def test_pause_stops_training_within_a_second_and_resume_goes_on():
    img, _ = two_halves()
    trainer = LiveTrainer(config(snapshot_every=0.2))
    trainer.set_data([(img, strokes())])
    paused, stop = threading.Event(), threading.Event()
    worker = threading.Thread(target=trainer.run, args=(lambda s: None, stop.is_set, paused.is_set))
    worker.start()
    try:
        time.sleep(0.8)
        paused.set()
        time.sleep(1.0)
        steps = trainer.steps
        time.sleep(0.6)
        assert trainer.steps == steps  # no step after the pause took effect
        paused.clear()
        time.sleep(0.8)
        assert trainer.steps > steps
    finally:
        stop.set()
        worker.join(5)
    assert not worker.is_alive()


def test_roll_back_restores_a_snapshot_and_new_strokes_join_while_running():
    img, _ = two_halves()
    seen = []
    trainer = LiveTrainer(config(snapshot_every=0.2))
    trainer.set_data([(img, strokes())])
    paused, stop = threading.Event(), threading.Event()
    worker = threading.Thread(target=trainer.run, args=(seen.append, stop.is_set, paused.is_set))
    worker.start()
    try:
        while len(seen) < 3:
            time.sleep(0.05)
        # the user paints a third class while it trains: the classifier widens, nothing restarts
        third = strokes()
        third[88:90, 30:60] = 2
        trainer.set_data([(img, third)])
        start = len(seen)
        while len(seen) < start + 2:
            time.sleep(0.05)
        assert seen[-1].checkpoint.num_classes == 3 and seen[-1].steps > seen[start - 1].steps
        paused.set()
        time.sleep(0.5)
        trainer.roll_back(seen[0])
        time.sleep(0.3)  # applied while paused
        state = trainer.model.state_dict()
        for key, value in seen[0].checkpoint.state_dict.items():
            if key.startswith("conv."):  # the new class keeps its row; the old ones are the snapshot's
                assert torch.equal(state[key][:2], value)
            else:
                assert torch.equal(state[key], value), key
    finally:
        stop.set()
        worker.join(5)
    assert not worker.is_alive()


@pytest.mark.parametrize("error", [torch.OutOfMemoryError("CUDA out of memory"), RuntimeError("out of memory")])
def test_running_out_of_memory_keeps_the_last_good_snapshot(error, monkeypatch):
    img, _ = two_halves()
    logs, seen = [], []
    trainer = LiveTrainer(config(batch=2, snapshot_every=0.2), log=logs.append)
    trainer.set_data([(img, strokes(rows=(20, 70)))])
    real_step, batches = trainer._step, []

    def step():
        batches.append(trainer.batch)
        if len(seen) >= 2:  # memory runs out for good after two snapshots
            trainer.model.conv.bias.data.add_(100.0)  # a half-done step that broke the weights
            raise error
        return real_step()

    monkeypatch.setattr(trainer, "_step", step)
    result = trainer.run(seen.append, lambda: False, time_budget=30)
    assert result is seen[-1] and len(seen) == 2 and trainer.snapshots == seen
    assert batches[-2:] == [2, 1]  # first halved the batch, then gave up
    assert torch.equal(trainer.model.conv.bias.detach(), result.checkpoint.state_dict["conv.bias"])
    assert any("out of memory" in m for m in logs) and "stopped" in logs[-1]


def test_other_runtime_errors_are_not_taken_for_memory(monkeypatch):
    img, _ = two_halves()
    trainer = LiveTrainer(config())
    trainer.set_data([(img, strokes())])
    monkeypatch.setattr(trainer, "_step", lambda: (_ for _ in ()).throw(RuntimeError("shape mismatch")))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        trainer.run(lambda s: None, lambda: False, time_budget=5)


def test_bad_strokes_get_one_clear_message():
    img, _ = two_halves()
    with pytest.raises(TrainingDataError, match="at least two classes .* only class 1 is"):
        LiveTrainer(config()).set_data([(img, strokes(classes=(1,)))])
    with pytest.raises(TrainingDataError, match="at least two classes .* nothing is"):
        LiveTrainer(config()).set_data([(img, np.full(img.shape[:2], IGNORE, np.uint8))])
    too_high = strokes()
    too_high[60:62, 10:20] = 4
    with pytest.raises(TrainingDataError, match=r"^b\.png: contains class id 4 but the model has 3 classes"):
        LiveTrainer(config(), classes=default_classes(3)).set_data([(img, strokes()), (img, too_high)],
                                                                   names=["a.png", "b.png"])
    found = stroke_set([(img, strokes()), (img, np.full(img.shape[:2], IGNORE, np.uint8))], ["a.png", "empty.png"])
    assert found.skipped == ["empty.png"] and found.names == ["a.png"] and found.needed_classes == 2


def test_published_weights_are_the_running_average_of_the_training_weights():
    img, _ = two_halves()
    averaged = LiveTrainer(config(average=0.9))
    averaged.set_data([(img, strokes())])
    snap = averaged.run(lambda s: None, lambda: averaged.steps >= 30)
    raw = averaged.model.state_dict()
    # the average lags the last steps: close to the weights trained, but not equal to them
    assert not torch.equal(snap.checkpoint.state_dict["conv.weight"], raw["conv.weight"])
    assert torch.allclose(snap.checkpoint.state_dict["conv.weight"], raw["conv.weight"], atol=0.5)
    plain = LiveTrainer(config(average=0.0))
    plain.set_data([(img, strokes())])
    snap = plain.run(lambda s: None, lambda: plain.steps >= 30)
    assert all(torch.equal(v, plain.model.state_dict()[k]) for k, v in snap.checkpoint.state_dict.items())


def test_new_strokes_show_within_seconds_even_after_a_long_run():
    """The published average grows its window with the steps (steadier with time), but new strokes
    shrink it again: strokes whose classes were swapped show in the next snapshots, not minutes later."""
    img, truth = two_halves()
    trainer = LiveTrainer(config(average_growth=0.2, init=None, patch=32, batch=2))
    trainer.set_data([(img, strokes())])
    trainer.run(lambda s: None, lambda: trainer.steps >= 800)
    swapped = strokes()
    swapped[swapped != IGNORE] = 1 - swapped[swapped != IGNORE]
    trainer.set_data([(img, swapped)])
    snap = trainer.run(lambda s: None, lambda: trainer.steps >= 840)
    pred = Segmenter(snap.checkpoint, device="cpu").segment(img)
    assert (pred == 1 - truth).mean() > 0.9
