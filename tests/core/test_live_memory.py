"""Memory over a long session (finding 9 of issue 25): the trainer keeps a bounded number of
snapshots (the best among them), and taking new strokes costs a few bytes per pixel, not a
float32 copy of every image and a full-size mask per held-out stroke.  The hour-long RSS
measurement is bench/live_memory.py."""

from __future__ import annotations

import tracemalloc

import numpy as np

from core.training.live import LiveConfig, LiveTrainer
from core.training.loop import IGNORE

from tests.core.test_live_training import strokes, two_halves


def test_the_trainer_keeps_its_newest_snapshots_and_no_more():
    img, _ = two_halves()
    seen = []
    trainer = LiveTrainer(LiveConfig(patch=48, batch=2, threads=1, snapshot_every=0.0, device="cpu", keep=4))
    trainer.set_data([(img, strokes())])
    trainer.run(seen.append, lambda: len(seen) >= 12)
    assert len(seen) == 12 and trainer.snapshots == seen[-4:]  # nothing scored: the newest is the best


def test_new_strokes_on_a_big_raw_image_cost_a_few_bytes_a_pixel():
    side = 1536
    rng = np.random.default_rng(0)
    img = rng.normal(1000, 20, (side, side, 2))
    img[: side // 2, :, 1] += 300
    img = img.astype(np.uint16)  # raw channels: the trainer scales them to float32 (8 bytes a pixel)
    mask = np.full((side, side), IGNORE, np.uint8)
    for k in range(6):  # 6 strokes a class: the 5th of each is held out
        mask[100 + 60 * k:102 + 60 * k, 100:140] = 1
        mask[side - 100 - 60 * k:side - 98 - 60 * k, 100:140] = 0
    trainer = LiveTrainer(LiveConfig(patch=48, batch=4, threads=1, snapshot_every=1e9, device="cpu"))
    trainer.set_data([(img, mask.copy())], ["a.tif"])
    first = trainer.run(lambda s: None, lambda: trainer.steps >= 2)
    assert first.held_out_set is not None
    mask[700:702, 300:340] = 1  # one more stroke: the app hands every image over again
    tracemalloc.start()
    try:
        trainer.set_data([(img, mask.copy())], ["a.tif"])
        snap = trainer.run(lambda s: None, lambda: trainer.steps >= 4)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert snap.annotated_pixels == first.annotated_pixels + 80
    # the old trainer made a float32 copy of the image and full-size masks per held-out stroke
    # again at every pause (19 bytes a pixel here); now the scaled image is reused
    assert peak < 5 * mask.nbytes, peak / mask.nbytes
