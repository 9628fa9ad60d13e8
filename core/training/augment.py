"""Training-crop augmentation: scale, contrast, brightness, colour balance, gamma, blur, noise.

Why: with a handful of annotated images (the correct-and-retrain loop) the network fits those
images' exact colours, sizes and sharpness and generalises worse to the next image of the same
kind (bench/retrain.py).  Drawing each crop at a random scale and with a random photometric
change is the standard cure (nnU-Net, Cellpose).  Hue is never rotated and colour gains stay
within +-15 %: a user's classes may be told apart by colour.  Labels follow the geometry only
(nearest-neighbour when scaled); padding beyond the image is ``ignore``.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageFilter

SCALES = (0.7, 1.4)  # crop drawn from patch/scale pixels of the image, resized to the patch


def scaled_crop(rgb: np.ndarray, labels: np.ndarray, patch: int, fy: float, fx: float, scale: float,
                ignore: int) -> tuple[np.ndarray, np.ndarray]:
    """A patch x patch crop covering ``patch / scale`` image pixels at relative offset (fy, fx)."""
    side = max(8, int(round(patch / scale)))
    h, w = labels.shape
    y0, x0 = int(fy * max(1, h - side + 1)), int(fx * max(1, w - side + 1))
    img = np.zeros((side, side, rgb.shape[2]), rgb.dtype)
    tgt = np.full((side, side), ignore, np.uint8)
    part = rgb[y0:y0 + side, x0:x0 + side]
    img[:part.shape[0], :part.shape[1]] = part
    tgt[:part.shape[0], :part.shape[1]] = labels[y0:y0 + side, x0:x0 + side]
    if side != patch:
        img = _resize(img, patch)
        tgt = np.asarray(Image.fromarray(tgt).resize((patch, patch), Image.NEAREST))
    return img, tgt


def _resize(img: np.ndarray, patch: int) -> np.ndarray:
    """Bilinear resize: 8-bit RGB by Pillow as always; any other channels one float plane at a time."""
    if img.dtype == np.uint8 and img.shape[2] == 3:
        return np.asarray(Image.fromarray(img).resize((patch, patch), Image.BILINEAR))
    planes = [np.asarray(Image.fromarray(np.ascontiguousarray(img[..., c], np.float32), "F")
                         .resize((patch, patch), Image.BILINEAR)) for c in range(img.shape[2])]
    return np.stack(planes, axis=2).astype(img.dtype)


def random_scale(rng: np.random.Generator) -> float:
    """Log-uniform in SCALES, so zooming in and out are equally likely."""
    return float(math.exp(rng.uniform(math.log(SCALES[0]), math.log(SCALES[1]))))


def photometric(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """One random contrast/brightness/gain/gamma change, maybe blur, maybe noise (uint8 in and out).

    Raw channels (float32, scaled to about 0..1 per channel) get the same kinds of change per
    channel, without blur, gamma or clipping (``_photometric_scaled``).
    """
    if img.dtype != np.uint8:
        return _photometric_scaled(rng, img)
    if rng.random() < 0.25:
        img = np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5))))
    x = img.astype(np.float32)
    mean = x.mean()
    x = (x - mean) * rng.uniform(0.6, 1.4) + mean + rng.uniform(-30, 30)
    x *= rng.uniform(0.85, 1.15, 3).astype(np.float32)
    if rng.random() < 0.5:
        x = 255 * (np.clip(x, 0, 255) / 255) ** rng.uniform(0.7, 1.4)
    if rng.random() < 0.3:
        x += rng.standard_normal(x.shape).astype(np.float32) * rng.uniform(2, 12)
    return np.clip(x, 0, 255).astype(np.uint8)


def _photometric_scaled(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    x = img.astype(np.float32)
    mean = x.mean(axis=(0, 1))
    x = (x - mean) * np.float32(rng.uniform(0.6, 1.4)) + mean + np.float32(rng.uniform(-0.12, 0.12))
    x *= rng.uniform(0.85, 1.15, x.shape[2]).astype(np.float32)
    if rng.random() < 0.3:
        x += rng.standard_normal(x.shape).astype(np.float32) * np.float32(rng.uniform(0.01, 0.05))
    return x.astype(img.dtype)
