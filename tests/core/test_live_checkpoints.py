"""Which checkpoint is which: identities (uid, run, held_out_set), the best one, and roll backs
that race with the training thread (findings 1, 5 and 10 of issue 25).  Races are made to happen
at the worst moment with events, never with sleeps."""

from __future__ import annotations

import threading

import numpy as np
import torch

from core.classes import default_classes
from core.training.live import LiveConfig, LiveTrainer
from core.training.loop import IGNORE

from tests.core.test_live_training import two_halves

H = 192


def rows_of_strokes(count: int, classes=(0, 1), extra: dict | None = None) -> np.ndarray:
    """``count`` strokes per class, one per 16 px row (a stroke's cells never touch the next
    one's), left half class 0, right half class 1; ``extra``: {class: row} for one more stroke."""
    mask = np.full((H, 96), IGNORE, np.uint8)
    for k in range(count):
        y = 4 + 16 * k
        if 0 in classes:
            mask[y:y + 2, 8:30] = 0
        if 1 in classes:
            mask[y:y + 2, 58:80] = 1
    for c, y in (extra or {}).items():
        mask[y:y + 2, 36:44] = c
    return mask


def config(**kw) -> LiveConfig:
    base = dict(patch=48, batch=4, lr=1e-2, threads=1, snapshot_every=1e9, device="cpu", seed=1)
    return LiveConfig(**{**base, **kw})


def train(trainer: LiveTrainer, steps: int) -> list:
    """Train ``steps`` more steps; the snapshots published (the last one at the end)."""
    seen = []
    target = trainer.steps + steps
    trainer.run(seen.append, lambda: trainer.steps >= target)
    return seen


def same_weights(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_every_snapshot_has_its_identity_after_new_strokes_roll_back_and_a_new_class():
    img, _ = two_halves(H, 96)
    first = LiveTrainer(config(), classes=default_classes(2))
    first.set_data([(img, rows_of_strokes(5))])  # the 5th stroke of each class is held out
    a = train(first, 3)[-1]
    assert a.held_out_set is not None and a.held_out_miou is not None and a.held_out_pixels > 0
    first.set_data([(img, rows_of_strokes(7))])  # strokes 6 and 7 train: the same held-out strokes
    b = train(first, 3)[-1]
    assert b.held_out_set == a.held_out_set and b.annotated_pixels > a.annotated_pixels
    first.roll_back(a)
    c = train(first, 2)[-1]
    first.set_data([(img, rows_of_strokes(7, extra={2: 180}))], classes=default_classes(3))  # a new class
    d = train(first, 2)[-1]
    assert d.checkpoint.num_classes == 3
    assert d.held_out_set == a.held_out_set and d.held_out_miou is not None  # the same held-out strokes
    first.set_data([(img, rows_of_strokes(10, extra={2: 180}))], classes=default_classes(3))
    e = train(first, 2)[-1]
    assert e.held_out_set not in (None, a.held_out_set)  # the 10th stroke of each class is held out too
    snaps = [a, b, c, d, e]
    assert [s.index for s in snaps] == [0, 1, 2, 3, 4]  # a roll back never reuses a number
    assert {s.run for s in snaps} == {first.run_id} and len({s.uid for s in snaps}) == 5
    assert [s.branch for s in snaps] == [0, 0, 1, 1, 1]
    # a restart: a new run numbered from 0 again, new uids, and on the same held-out strokes the same set
    second = LiveTrainer(config(), classes=default_classes(2))
    second.set_data([(img, rows_of_strokes(5))])
    f = train(second, 2)[-1]
    assert f.run != a.run and f.index == 0 and f.uid not in {s.uid for s in snaps}
    assert f.held_out_set == a.held_out_set
    # the 10th stroke of each class is held out too: another set
    third = LiveTrainer(config(), classes=default_classes(2))
    third.set_data([(img, rows_of_strokes(10))])
    g = train(third, 2)[-1]
    assert g.held_out_set is not None and g.held_out_set != a.held_out_set


def test_best_compares_scores_on_the_same_strokes_and_is_always_kept(monkeypatch):
    img, _ = two_halves(H, 96)
    trainer = LiveTrainer(config(keep=2), classes=default_classes(2))
    phase = {"set": 1}
    # scripted held-out scores: on the first strokes the first snapshot is the best and later ones
    # are worse; on the second set (10 strokes a class) the order is the other way round
    table = {1: [0.9, 0.7, 0.8, 0.6], 2: {0: 0.5, 3: 0.95}}

    def scripted(checkpoint):
        steps = checkpoint.metadata["training"]["steps"]
        if phase["set"] == 1:
            return table[1][steps // 2 - 1]
        return table[2].get(steps // 2 - 1, 0.1)

    monkeypatch.setattr(trainer, "_held_out_score", scripted)
    trainer.set_data([(img, rows_of_strokes(5))])
    snaps = [train(trainer, 2)[-1] for _ in range(4)]
    assert [s.held_out_miou for s in snaps] == [0.9, 0.7, 0.8, 0.6]
    assert trainer.best() is snaps[0]  # never the newer, worse ones
    assert [s.best_uid for s in snaps] == [snaps[0].uid] * 4  # what the app marks as best, on every row
    assert snaps[0] in trainer.snapshots and len(trainer.snapshots) == 3  # keep=2, and the best besides
    # more strokes, another held-out set: the best so far and the newest are scored again on it
    phase["set"] = 2
    trainer.set_data([(img, rows_of_strokes(10))])
    e = train(trainer, 2)[-1]
    assert e.held_out_set != snaps[0].held_out_set and e.held_out_miou == 0.1
    assert trainer.best() is snaps[3] and e.best_uid == snaps[3].uid  # 0.95 on the new set, not 0.9 on the old
    assert trainer.score(snaps[3]) == 0.95
    assert snaps[0] not in trainer.snapshots  # no longer the best nor among the newest two: let go


def test_a_snapshot_taken_before_a_roll_back_is_never_published_after_it(monkeypatch):
    img, _ = two_halves(H, 96)
    seen, logs = [], []
    rolled = threading.Event()
    def log(message):
        logs.append(message)
        if "rolled back" in message:
            rolled.set()

    trainer = LiveTrainer(config(snapshot_every=0.0), log=log)
    trainer.set_data([(img, rows_of_strokes(3))])
    inside, release, paused, stop = threading.Event(), threading.Event(), threading.Event(), threading.Event()
    real_score = trainer._held_out_score

    def slow_score(checkpoint):  # snapshot 2's weights are copied; it waits here to be published
        if len(seen) == 2 and not inside.is_set():
            inside.set()
            release.wait(30)
        return real_score(checkpoint)

    monkeypatch.setattr(trainer, "_held_out_score", slow_score)
    worker = threading.Thread(target=trainer.run, args=(seen.append, stop.is_set, paused.is_set))
    worker.start()
    try:
        assert inside.wait(60)
        paused.set()
        trainer.roll_back(seen[0])
        after = len(seen)
        release.set()
        assert rolled.wait(60)  # applied while paused
    finally:
        release.set()
        stop.set()
        worker.join(60)
    assert not worker.is_alive()
    target = seen[0].checkpoint.state_dict
    assert all(same_weights(target, s.checkpoint.state_dict) for s in seen[after:])  # no stale snapshot after it
    assert same_weights(target, trainer.model.state_dict())


def test_a_stop_right_after_a_roll_back_keeps_it():
    img, _ = two_halves(H, 96)
    seen, stop = [], threading.Event()
    trainer = LiveTrainer(config(snapshot_every=0.0))
    trainer.set_data([(img, rows_of_strokes(3))])

    def published(snap):
        seen.append(snap)
        if len(seen) == 3:  # the user rolls back and turns training off at once
            trainer.roll_back(seen[0])
            stop.set()

    trainer.run(published, stop.is_set)
    assert len(seen) == 3  # nothing trained after the roll back: nothing new published
    assert same_weights(seen[0].checkpoint.state_dict, trainer.model.state_dict())


def test_a_roll_back_as_the_training_thread_ends_is_applied(monkeypatch):
    """The worker has left its loop but not yet said it stopped: the roll back asked now
    (from another thread) must still happen, not wait for a loop that is gone."""
    img, _ = two_halves(H, 96)
    seen = []
    trainer = LiveTrainer(config(snapshot_every=0.0))
    trainer.set_data([(img, rows_of_strokes(3))])
    real_loop = trainer._loop

    def loop_then_roll_back(*args, **kw):
        real_loop(*args, **kw)
        asker = threading.Thread(target=trainer.roll_back, args=(seen[0],))
        asker.start()
        asker.join(60)

    monkeypatch.setattr(trainer, "_loop", loop_then_roll_back)
    trainer.run(seen.append, lambda: len(seen) >= 3)
    assert same_weights(seen[0].checkpoint.state_dict, trainer.model.state_dict())
