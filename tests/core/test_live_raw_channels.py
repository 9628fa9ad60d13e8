"""Live training (and ``--time-budget``) on an image's raw channels: a faint 16-bit signal that the
8-bit view flattens is learnt from strokes; 8-bit RGB photos keep the 3-channel fixed path."""

from __future__ import annotations

import numpy as np
import tifffile
from PIL import Image

from core.io.images import load_image
from core.metrics import IoUAccumulator
from core.model.checkpoints import load_checkpoint
from core.segment.inference import Segmenter
from core.training.live import LiveConfig, LiveTrainer
from core.training.loop import IGNORE
from core.training.timed import train_timed

from tests.core.test_live_training import strokes, two_halves

SIZE = 160


def faint_halves(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """2 x uint16 channels at ~1000 counts; the right half (class 1) is +25 in channel 2 only."""
    rng = np.random.default_rng(seed)
    img = 1000 + rng.normal(0, 4, (SIZE, SIZE, 2))
    img[:, SIZE // 2:, 1] += 25
    truth = np.zeros((SIZE, SIZE), np.uint8)
    truth[:, SIZE // 2:] = 1
    return img.round().astype(np.uint16), truth


def thin_strokes() -> np.ndarray:
    mask = strokes(SIZE, SIZE, rows=(20, 80, 140))
    mask[1::2] = np.where(mask[1::2] != IGNORE, IGNORE, mask[1::2])  # 1-px strokes
    return mask


def miou(pred: np.ndarray, truth: np.ndarray) -> float:
    acc = IoUAccumulator(2)
    acc.update(pred, truth)
    return acc.mean_iou([0, 1])


def config(**kw) -> LiveConfig:
    return LiveConfig(**{**dict(patch=48, batch=4, threads=1, snapshot_every=1.0, device="cpu", seed=1), **kw})


def test_live_training_learns_a_faint_16bit_channel_the_8bit_view_flattens():
    img, truth = faint_halves()
    mask = thin_strokes()
    assert (mask != IGNORE).mean() < 0.01
    trainer = LiveTrainer(config())
    trainer.set_data([(img, mask)])
    best = trainer.run(lambda s: None, lambda: False, time_budget=2.0)
    ck = best.checkpoint
    assert ck.in_channels == 2 and ck.normalization.reads_raw and ck.normalization.mode == "percentile"
    pred = Segmenter(ck, device="cpu").segment(img)
    assert miou(pred, truth) >= 0.8


def test_live_training_on_an_8bit_photo_keeps_the_rgb_fixed_path():
    img, truth = two_halves()
    trainer = LiveTrainer(config())
    trainer.set_data([(img, strokes())])
    best = trainer.run(lambda s: None, lambda: False, time_budget=1.0)
    assert best.checkpoint.in_channels == 3 and not best.checkpoint.normalization.reads_raw


def test_time_budget_trains_on_the_raw_channels_of_a_16bit_tiff(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    img, truth = faint_halves(1)
    tifffile.imwrite(images / "a.tif", img.transpose(2, 0, 1), metadata={"axes": "CYX"})
    Image.fromarray(thin_strokes()).save(masks / "a.png")
    # the 8-bit view the app shows: the faint signal is (nearly) gone from it
    rgb = load_image(images / "a.tif").rgb.astype(float)
    assert abs(rgb[:, SIZE // 2:].mean() - rgb[:, :SIZE // 2].mean()) < 8
    result = train_timed(images, masks, tmp_path / "m.safetensors", 3.0, config(), log=lambda m: None)
    ck = load_checkpoint(result.path)
    assert ck.in_channels == 2 and ck.normalization.reads_raw
    seg = Segmenter.load(result.path, device="cpu")
    assert miou(seg.segment(seg.image_of(load_image(images / "a.tif"))), truth) >= 0.8
