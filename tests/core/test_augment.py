"""Augmented training crops: labels stay on the pixels they describe, whatever the scale."""

from __future__ import annotations

import numpy as np

from core.training.augment import photometric, random_scale, scaled_crop, SCALES
from core.training.loop import IGNORE, CropSampler


def _disc_scene(size: int = 200) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size]
    labels = ((yy - 90) ** 2 + (xx - 110) ** 2 < 40**2).astype(np.uint8)
    rgb = np.zeros((size, size, 3), np.uint8)
    rgb[labels == 1] = (230, 40, 40)
    rgb[labels == 0] = (20, 60, 200)
    return rgb, labels


def test_a_scaled_crop_keeps_labels_on_their_pixels_and_ignores_what_lies_outside_the_image():
    rgb, labels = _disc_scene()
    for scale in (0.5, 0.8, 1.0, 1.3, 2.0):
        img, tgt = scaled_crop(rgb, labels, 64, 0.4, 0.6, scale, IGNORE)
        assert img.shape == (64, 64, 3) and tgt.shape == (64, 64)
        inside = tgt != IGNORE
        red = img[..., 0] > 128
        agree = (red == (tgt == 1))[inside].mean()
        assert agree > 0.97, (scale, agree)  # only a thin band of resampled edge pixels may differ
    img, tgt = scaled_crop(rgb[:40, :40], labels[:40, :40], 64, 0.0, 0.0, 0.5, IGNORE)
    assert (tgt[40:, :] == IGNORE).all() and (img[40:, :] == 0).all()  # 128 px wanted, 40 exist


def test_photometric_changes_only_colours_and_keeps_the_shape_visible():
    rgb, labels = _disc_scene()
    rng = np.random.default_rng(0)
    for _ in range(20):
        out = photometric(rng, rgb)
        assert out.shape == rgb.shape and out.dtype == np.uint8
        inside, outside = out[labels == 1].astype(float).mean(0), out[labels == 0].astype(float).mean(0)
        assert inside[0] - outside[0] > 60 and outside[2] - inside[2] > 60  # hue kept: red stays red
    scales = [random_scale(rng) for _ in range(2000)]
    assert SCALES[0] <= min(scales) and max(scales) <= SCALES[1]
    assert 0.4 < np.mean(np.array(scales) > 1) < 0.6  # zooming in and out equally likely


def test_the_sampler_augments_only_when_asked_and_stays_reproducible():
    data = [_disc_scene()]
    plain = CropSampler(data, 64, np.random.default_rng(3)).batch(4)
    again = CropSampler(data, 64, np.random.default_rng(3)).batch(4)
    varied = CropSampler(data, 64, np.random.default_rng(3), augment=True).batch(4)
    varied_again = CropSampler(data, 64, np.random.default_rng(3), augment=True).batch(4)
    assert all(np.array_equal(a, b) for a, b in zip(plain, again))
    assert all(np.array_equal(a, b) for a, b in zip(varied, varied_again))
    colours = {tuple(c) for c in plain[0].reshape(-1, 3).numpy()}
    assert colours <= {(230, 40, 40), (20, 60, 200)}  # without augmentation the pixels are the image's own
    assert not np.array_equal(plain[0], varied[0])
