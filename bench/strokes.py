"""Learning from a few strokes: our live UNet trainer against the random-forest pixel classifier.

    PYTHONPATH=. python bench/strokes.py [--images 4] [--seconds 10 30 60 120] [--set KEY=VALUE ...]

Images are made here (never scikit-image's samples): blobby regions of 4 classes that differ by
texture (stripes of an orientation and period, blobs of a scale, speckle, checks) with overlapping
mean colours, under uneven shading and sensor noise, so a pixel classifier with multiscale
features is a fair peer.  A simulated user paints 3 short strokes (3 px wide) inside each class,
well under 1 % of the pixels.  On the same strokes and the same machine, in the same run:

* **ours**: core.training.live.LiveTrainer (the defaults of LiveConfig, or ``--set`` overrides),
  scored on the whole image against the full ground truth with the newest snapshot published by
  10, 30, 60, 120 s of wall time (scoring is done afterwards, outside the clock);
* **peer**: scikit-image's trainable segmentation, the ilastik method in Python:
  ``multiscale_basic_features`` + ``fit_segmenter``/``predict_segmenter`` with a scikit-learn
  ``RandomForestClassifier`` (scikit-image's documented settings), timed end to end.

Also the preview latency: from a snapshot's weights to the labels of a 1920x1080 view with small
(building the Segmenter included), the step the app repeats after each snapshot.
Needs the ``bench`` extra (scikit-image, scikit-learn).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields, replace

import numpy as np
from PIL import Image, ImageDraw

from core.metrics import IoUAccumulator
from core.segment.inference import Segmenter
from core.training.live import LiveConfig, LiveTrainer
from core.training.loop import IGNORE

CLASSES = 4


# --------------------------------------------------------------------------- images


def _smooth(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth noise with features about ``cell`` pixels across, mean 0, std 1."""
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    small = rng.standard_normal((gh, gw)).astype(np.float32)
    big = np.asarray(Image.fromarray(small, mode="F").resize((w, h), Image.BICUBIC))
    return (big - big.mean()) / (big.std() + 1e-6)


def _texture(rng: np.random.Generator, kind: str, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "stripes":
        theta, period = rng.uniform(0, np.pi), rng.uniform(6, 14)
        return np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / period + rng.uniform(0, 6.3))
    if kind == "checks":
        period = rng.uniform(5, 12)
        return np.sign(np.sin(2 * np.pi * xx / period) * np.sin(2 * np.pi * yy / period)) * 0.8
    if kind == "blobs":
        return _smooth(rng, h, w, rng.uniform(4, 10))
    return _smooth(rng, h, w, 1.2)  # speckle


def texture_scene(seed: int, h: int = 384, w: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8, ground truth 0..CLASSES-1): regions that differ by texture more than by colour."""
    rng = np.random.default_rng(seed)
    while True:
        fields_ = np.stack([_smooth(rng, h, w, rng.uniform(90, 160)) for _ in range(CLASSES)])
        truth = fields_.argmax(0).astype(np.uint8)
        if np.bincount(truth.ravel(), minlength=CLASSES).min() > 0.06 * h * w:
            break
    kinds = rng.permutation(["stripes", "checks", "blobs", "speckle"])
    common = rng.uniform(70, 180, 3)
    img = np.zeros((h, w, 3), np.float32)
    for c, kind in enumerate(kinds):
        base = common + rng.uniform(-25, 25, 3)  # mean colours overlap: texture decides
        direction = rng.standard_normal(3)
        direction = np.abs(direction) / np.linalg.norm(direction) * rng.choice([-1, 1])
        amplitude = rng.uniform(22, 45)
        tex = _texture(rng, str(kind), h, w)
        inside = truth == c
        img[inside] = base + amplitude * tex[inside, None] * direction
    shading = 1 + 0.18 * _smooth(rng, h, w, 200)
    img = img * shading[..., None] + rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), truth


def simulate_strokes(truth: np.ndarray, rng: np.random.Generator, per_class: int = 3,
                     width: int = 3, length: tuple[int, int] = (20, 50)) -> np.ndarray:
    """A user's strokes: ``per_class`` short straight strokes well inside each class (255 elsewhere)."""
    from scipy.ndimage import binary_erosion
    from skimage.morphology import disk

    h, w = truth.shape
    strokes = np.full((h, w), IGNORE, np.uint8)
    for c in range(int(truth.max()) + 1):
        inside = binary_erosion(truth == c, structure=disk(8))
        ys, xs = np.nonzero(inside)
        for _ in range(per_class):
            for _try in range(50):
                k = rng.integers(ys.size)
                angle, n = rng.uniform(0, 2 * np.pi), rng.integers(*length)
                end = (xs[k] + n * np.cos(angle), ys[k] + n * np.sin(angle))
                canvas = Image.new("L", (w, h), 0)
                ImageDraw.Draw(canvas).line([(xs[k], ys[k]), end], fill=1, width=width)
                line = np.asarray(canvas, bool)
                if not (line & ~inside).any():
                    strokes[line] = c
                    break
    return strokes


# --------------------------------------------------------------------------- the two methods


def miou(pred: np.ndarray, truth: np.ndarray) -> float:
    acc = IoUAccumulator(CLASSES)
    acc.update(pred, truth)
    return acc.mean_iou()


def random_forest(img: np.ndarray, strokes: np.ndarray, threads: int) -> tuple[np.ndarray, float]:
    """scikit-image's trainable segmentation with its documented settings; (labels, seconds)."""
    from functools import partial

    from skimage.feature import multiscale_basic_features
    from skimage.future import fit_segmenter, predict_segmenter
    from sklearn.ensemble import RandomForestClassifier

    t0 = time.perf_counter()
    features = partial(multiscale_basic_features, intensity=True, edges=True, texture=True,
                       sigma_min=1, sigma_max=16, channel_axis=-1)(img)
    labels = np.where(strokes == IGNORE, 0, strokes.astype(np.int32) + 1)  # skimage: 0 = not annotated
    clf = RandomForestClassifier(n_estimators=50, n_jobs=threads, max_depth=10, max_samples=0.05)
    clf = fit_segmenter(labels, features, clf)
    pred = predict_segmenter(features, clf) - 1
    return pred.astype(np.uint8), time.perf_counter() - t0


def ours(img: np.ndarray, strokes: np.ndarray, config: LiveConfig, marks: list[float]) -> dict:
    """Train for max(marks) s of wall time; mIoU of the newest snapshot at each mark, scored afterwards."""
    trainer = LiveTrainer(config)
    published: list[tuple[float, object]] = []
    t0 = time.perf_counter()
    trainer.set_data([(img, strokes)])
    trainer.run(lambda s: published.append((time.perf_counter() - t0, s)),
                should_stop=lambda: time.perf_counter() - t0 >= max(marks))
    return {"snapshots": published, "steps": trainer._steps}


def preview_latency(checkpoint, repeats: int = 3) -> float:
    """Seconds from new weights to the labels of a 1920x1080 view (Segmenter built each time)."""
    view = np.random.default_rng(0).integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        Segmenter(checkpoint, device="cpu").segment(view)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


# --------------------------------------------------------------------------- run


def parse_overrides(pairs: list[str]) -> dict:
    types = {f.name: f.type for f in fields(LiveConfig)}
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in types:
            raise SystemExit(f"unknown LiveConfig field {key!r}")
        out[key] = None if value == "None" else json.loads(value) if value[:1] in "0123456789.-tf[" else value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--seconds", type=float, nargs="+", default=[10, 30, 60, 120])
    parser.add_argument("--threads", type=int, default=2, help="torch threads and random-forest jobs")
    parser.add_argument("--set", nargs="*", default=[], help="LiveConfig overrides, KEY=VALUE")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--latency", action="store_true", help="also measure the preview latency")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    config = replace(LiveConfig(), threads=args.threads, device="cpu", snapshot_every=2.0,
                     **parse_overrides(args.set))
    print(f"config: {config}", flush=True)
    marks = sorted(args.seconds)
    rows = []
    for i in range(args.images):
        seed = args.first_seed + i
        img, truth = texture_scene(seed)
        strokes = simulate_strokes(truth, np.random.default_rng(seed))
        share = float((strokes != IGNORE).mean())
        row = {"seed": seed, "annotated": share}
        if not args.no_peer:
            pred, seconds = random_forest(img, strokes, args.threads)
            row["rf"], row["rf_seconds"] = miou(pred, truth), seconds
        run = ours(img, strokes, replace(config, seed=seed), marks)
        for mark in marks:
            before = [s for t, s in run["snapshots"] if t <= mark + 0.5]
            if before:
                pred = Segmenter(before[-1].checkpoint, device="cpu").segment(img)
                row[f"ours@{mark:g}"] = miou(pred, truth)
        row["steps"] = run["steps"]
        if args.latency and i == 0:
            row["preview_s"] = preview_latency(run["snapshots"][-1][1].checkpoint)
        rows.append(row)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    keys = [k for k in rows[0] if k.startswith(("rf", "ours", "annotated", "preview"))]
    mean = {k: round(float(np.mean([r[k] for r in rows if k in r])), 4) for k in keys}
    print("mean " + json.dumps(mean), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
