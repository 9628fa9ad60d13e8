"""Learning a stack from strokes on 2 of its 20 planes: `unetseg train --time-budget` + `unetseg segment`,
scored on every plane of another stack, beside the random-forest pixel classifier on the same strokes.

    PYTHONPATH=. python bench/stack_training.py [--budget 60] [--seeds 0] [--planes 20] [--size 256]

Stacks are made here (never a package's sample data): 2-channel 12-bit Z x C x Y x X, cells as
ellipsoids of two kinds spread through the depth (class 1: bright in channel 0, a nucleus stain;
class 2: textured in channel 1 and dim in channel 0), blurred more along Z than in the plane, dimmer
with depth, with shot and read noise and a smooth autofluorescence background.  A simulated user
paints 3 short strokes (2 px wide) inside each class on planes 6 and 13 only: under 0.1 % of the
voxels.  In one run, on the same strokes:

* **ours**: ``unetseg train --time-budget B`` on the stroke stack (in process, the command's own
  code; its snapshots are recorded on the way to score quality against training *steps*, which the
  machine's load does not distort), then ``unetseg segment HELD --format ome-tiff``: the output is
  read back and must have the held-out stack's Z; mIoU over every plane of it (classes 0-2, pooled
  over voxels, core.metrics), also with ``--smooth-z 1``;
* **peer**: scikit-image's trainable segmentation (``multiscale_basic_features`` on both channels,
  each scaled by the stack's 1-99.8 percentiles, + scikit-learn's random forest, scikit-image's
  documented settings) fitted on the same strokes of the same two planes, predicting every plane.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from core.metrics import IoUAccumulator
from core.training.loop import IGNORE

CLASSES = 3
STROKE_PLANES = (6, 13)


def cell_stack(seed: int, z: int = 20, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(Z x 2 x H x W uint16 in 12 bits, truth Z x H x W in 0..2)."""
    from scipy.ndimage import gaussian_filter, zoom

    rng = np.random.default_rng(seed)
    h = w = size
    truth = np.zeros((z, h, w), np.uint8)
    zz, yy, xx = np.ogrid[:z, :h, :w]
    for _ in range(int(45 * (size / 256) ** 2)):
        cls = 1 if rng.random() < 0.55 else 2
        cz, cy, cx = rng.uniform(-2, z + 1), rng.uniform(0, h), rng.uniform(0, w)
        ry, rx, rz = rng.uniform(14, 26), rng.uniform(14, 26), rng.uniform(3, 7)
        truth[((zz - cz) / rz) ** 2 + ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = cls

    def smooth(cell: float) -> np.ndarray:
        small = rng.standard_normal((z, int(h / cell) + 2, int(w / cell) + 2))
        big = zoom(small, (1, h / small.shape[1], w / small.shape[2]), order=1)[:, :h, :w]
        return (big - big.mean()) / (big.std() + 1e-6)

    texture = 0.6 + 0.4 * np.clip(smooth(3.0), -1.5, 1.5) / 1.5
    ch0 = np.where(truth == 1, 1.0, np.where(truth == 2, 0.3, 0.0))
    ch1 = np.where(truth == 2, 0.8 * texture, np.where(truth == 1, 0.12, 0.0))
    background = 0.08 + 0.04 * smooth(80.0)
    signal = np.stack([ch0, ch1 + background], axis=1).astype(np.float32)
    signal = gaussian_filter(signal, sigma=(1.2, 0, 1.3, 1.3))
    signal *= (1.0 - 0.4 * np.arange(z) / max(1, z - 1))[:, None, None, None]  # dimmer with depth
    counts = signal * 2400
    noisy = counts + rng.normal(0, 1, counts.shape) * np.sqrt(np.maximum(counts, 1)) + rng.normal(100, 12, counts.shape)
    return np.clip(noisy, 0, 4095).astype(np.uint16), truth


def stroke_stack(truth: np.ndarray, seed: int) -> np.ndarray:
    from bench.strokes import simulate_strokes

    strokes = np.full(truth.shape, IGNORE, np.uint8)
    rng = np.random.default_rng(seed)
    for z in STROKE_PLANES:
        strokes[z] = simulate_strokes(truth[z], rng, per_class=3, width=2, length=(15, 35))
    return strokes


def miou(pred: np.ndarray, truth: np.ndarray, classes=None) -> float:
    acc = IoUAccumulator(CLASSES)
    acc.update(pred, truth)
    return acc.mean_iou(classes)


def random_forest(data: np.ndarray, strokes: np.ndarray, held: np.ndarray) -> tuple[np.ndarray, float]:
    """scikit-image's trainable segmentation on both channels; (labels of every held-out plane, seconds)."""
    from functools import partial

    from sklearn.ensemble import RandomForestClassifier
    from skimage.feature import multiscale_basic_features
    from skimage.future import fit_segmenter, predict_segmenter

    t0 = time.perf_counter()

    def scaled(stack: np.ndarray) -> np.ndarray:  # Z x C x H x W -> Z x H x W x C floats, stack percentiles
        lo, hi = np.percentile(stack, (1, 99.8), axis=(0, 2, 3))
        return np.moveaxis((stack - lo[:, None, None]) / (hi - lo)[:, None, None], 1, -1).astype(np.float32)

    features = partial(multiscale_basic_features, intensity=True, edges=True, texture=True, sigma_min=1,
                       sigma_max=16, channel_axis=-1)
    train, test = scaled(data), scaled(held)
    planes = [z for z in range(len(strokes)) if (strokes[z] != IGNORE).any()]
    feats = np.concatenate([features(train[z]) for z in planes], axis=0)
    labels = np.concatenate([np.where(strokes[z] == IGNORE, 0, strokes[z].astype(np.int32) + 1) for z in planes])
    clf = RandomForestClassifier(n_estimators=50, n_jobs=1, max_depth=10, max_samples=0.05)
    clf = fit_segmenter(labels, feats, clf)
    pred = np.stack([predict_segmenter(features(test[z]), clf) - 1 for z in range(len(test))])
    return pred.astype(np.uint8), time.perf_counter() - t0


def score_snapshots(snapshots: list, held_path: Path, truth: np.ndarray, count: int = 8) -> list[dict]:
    """mIoU over every held-out plane of up to ``count`` snapshots spread over the run (by steps)."""
    from core.io.sources import open_source
    from core.segment.inference import Segmenter
    from core.segment.stack import segment_stack

    picks = sorted({round(i * (len(snapshots) - 1) / max(1, count - 1)) for i in range(min(count, len(snapshots)))})
    rows = []
    with open_source(held_path) as source:
        for i in picks:
            snap = snapshots[i]
            seg = Segmenter(snap.checkpoint, device="cpu")
            pred = segment_stack(seg, source).labels
            rows.append({"steps": snap.steps, "seconds": round(snap.seconds, 1), "miou": round(miou(pred, truth), 4)})
    return rows


def run_seed(seed: int, budget: float, planes: int, size: int, folder: Path) -> dict:
    import core.training.timed as timed
    from core.cli.main import main
    from core.io.label_stacks import read_label_stack, write_label_stack
    from tests.stack_images import write_ome_tiff

    data, truth = cell_stack(seed, planes, size)
    held, held_truth = cell_stack(seed + 1000, planes, size)
    strokes = stroke_stack(truth, seed)
    images, masks, out = folder / f"images{seed}", folder / f"masks{seed}", folder / f"out{seed}"
    images.mkdir()
    masks.mkdir()
    write_ome_tiff(images / "train.ome.tif", data, "ZCYX", names=("Hoechst", "Actin"), z_step=1.0)
    write_label_stack(masks / "train_strokes.ome.tif", strokes, "Z")
    held_path = write_ome_tiff(folder / f"held{seed}.ome.tif", held, "ZCYX", names=("Hoechst", "Actin"), z_step=1.0)
    row = {"seed": seed, "annotated": round(float((strokes != IGNORE).mean()), 5),
           "annotated_planes": len(STROKE_PLANES), "planes": planes}

    snapshots = []
    original = timed.train_timed

    def recording(*args, **kwargs):  # the command runs as typed; its snapshots are kept for the curve
        chained = kwargs.get("on_snapshot")

        def keep(snap):
            snapshots.append(snap)
            if chained:
                chained(snap)

        kwargs["on_snapshot"] = keep
        return original(*args, **kwargs)

    timed.train_timed = recording
    model = folder / f"m{seed}.safetensors"
    t0 = time.perf_counter()
    try:
        assert main(["train", "--images", str(images), "--masks", str(masks), "-o", str(model),
                     "--time-budget", f"{budget:g}", "--device", "cpu"]) == 0
    finally:
        timed.train_timed = original
    row["train_seconds"] = round(time.perf_counter() - t0, 1)
    row["steps"] = snapshots[-1].steps if snapshots else 0
    for smooth in (0, 1):
        target = out / f"smooth{smooth}"
        t0 = time.perf_counter()
        assert main(["segment", str(held_path), "-o", str(target), "--model", str(model), "--format", "ome-tiff",
                     "--device", "cpu", "--smooth-z", str(smooth)]) == 0
        seconds = time.perf_counter() - t0
        labels, axes = read_label_stack(target / f"held{seed}.ome.tif", "Z", held_truth.shape)  # the input's Z
        key = "ours" if smooth == 0 else "ours_smooth_z1"
        row[key] = round(miou(labels, held_truth), 4)
        row[key + "_fg"] = round(miou(labels, held_truth, (1, 2)), 4)
        row[key + "_segment_seconds"] = round(seconds, 1)
        row["output_shape"] = list(labels.shape)
    row["curve"] = score_snapshots(snapshots, held_path, held_truth)
    pred, seconds = random_forest(data, strokes, held)
    row["rf"], row["rf_fg"], row["rf_seconds"] = round(miou(pred, held_truth), 4), round(
        miou(pred, held_truth, (1, 2)), 4), round(seconds, 1)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--planes", type=int, default=20)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="stack_training_") as tmp:
        for seed in args.seeds:
            row = run_seed(seed, args.budget, args.planes, args.size, Path(tmp))
            rows.append(row)
            print(json.dumps(row), flush=True)
    keys = ["annotated", "steps", "ours", "ours_fg", "ours_smooth_z1", "ours_smooth_z1_fg", "rf", "rf_fg"]
    print("mean " + json.dumps({k: round(float(np.mean([r[k] for r in rows])), 4) for k in keys}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
