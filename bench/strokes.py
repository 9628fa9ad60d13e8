"""Learning from a few strokes: our live UNet trainer against the random-forest pixel classifier.

    PYTHONPATH=. python bench/strokes.py --seconds 10 30 60 120 300 [--repeats 2]
    PYTHONPATH=. python bench/strokes.py --steps 250 500 1000 2000 4000 [--set KEY=VALUE ...]

Scenes are made here (bench/stroke_tasks.py; never images shipped in a package): texture scenes,
scanned documents (thin text and lines), 16-bit fluorescence-like nuclei with bright specks, and
aerial-like land cover.  A simulated user paints 3 short strokes per class, well under 1 % of the
pixels.  On the same strokes, in the same run:

* **ours**: core.training.live.LiveTrainer with LiveConfig's defaults (or ``--set`` overrides),
  scored on the whole image against the full ground truth (mIoU over the task's classes) with
  the snapshot the app would show at each mark: ``--seconds``: the newest published by that
  much wall time since ``set_data`` (scored afterwards, off the clock); ``--steps``: the newest
  after that many training steps (quality against work, what a loaded machine cannot distort);
* **peer**: scikit-image's trainable segmentation, the ilastik method in Python:
  ``multiscale_basic_features`` + ``fit_segmenter``/``predict_segmenter`` with a scikit-learn
  ``RandomForestClassifier`` (scikit-image's documented settings), timed end to end.

``--repeats N`` runs every scene N times (the forest too) to show the run-to-run spread: in
seconds mode the steps a run gets in its time vary with the machine's load.  ``--speed`` only
measures training steps per second.  ``--latency`` adds the preview latency: new weights to the
labels of a 1920x1080 view (Segmenter built included).  Needs the ``bench`` extra (scikit-image,
scikit-learn).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields, replace

import numpy as np

from bench.stroke_tasks import TASKS, scene, simulate_strokes
from core.metrics import IoUAccumulator
from core.segment.inference import Segmenter
from core.training.live import LiveConfig, LiveTrainer
from core.training.loop import IGNORE


def miou(pred: np.ndarray, truth: np.ndarray, classes: int) -> float:
    acc = IoUAccumulator(classes)
    acc.update(pred, truth)
    return acc.mean_iou(range(classes))


def random_forest(img: np.ndarray, strokes: np.ndarray, threads: int, seed: int | None = None) -> tuple[np.ndarray, float]:
    """scikit-image's trainable segmentation with its documented settings; (labels, seconds)."""
    from functools import partial

    from skimage.feature import multiscale_basic_features
    from skimage.future import fit_segmenter, predict_segmenter
    from sklearn.ensemble import RandomForestClassifier

    t0 = time.perf_counter()
    grey = img.shape[2] == 1
    data = img[..., 0].astype(np.float32) if grey else img
    features = partial(multiscale_basic_features, intensity=True, edges=True, texture=True,
                       sigma_min=1, sigma_max=16, channel_axis=None if grey else -1)(data)
    labels = np.where(strokes == IGNORE, 0, strokes.astype(np.int32) + 1)  # skimage: 0 = not annotated
    clf = RandomForestClassifier(n_estimators=50, n_jobs=threads, max_depth=10, max_samples=0.05, random_state=seed)
    clf = fit_segmenter(labels, features, clf)
    pred = predict_segmenter(features, clf) - 1
    return pred.astype(np.uint8), time.perf_counter() - t0


def ours_seconds(img: np.ndarray, strokes: np.ndarray, config: LiveConfig, marks: list[float]) -> dict:
    """Train for max(marks) s of wall time; the newest snapshot published by each mark."""
    trainer = LiveTrainer(config)
    published: list[tuple[float, object]] = []
    t0 = time.perf_counter()
    trainer.set_data([(img, strokes)])
    trainer.run(lambda s: published.append((time.perf_counter() - t0, s)),
                should_stop=lambda: time.perf_counter() - t0 >= max(marks))
    found = {}
    for mark in marks:
        before = [s for t, s in published if t <= mark + 0.5]
        if before:
            found[mark] = before[-1]
    return {"at": found, "steps": trainer.steps, "last": published[-1][1]}


def ours_steps(img: np.ndarray, strokes: np.ndarray, config: LiveConfig, marks: list[int]) -> dict:
    """Train to each mark of steps in turn; the snapshot published at each (what the app shows)."""
    trainer = LiveTrainer(replace(config, snapshot_every=1e9))
    trainer.set_data([(img, strokes)])
    found, t0 = {}, time.perf_counter()
    for mark in sorted(marks):
        got = []
        trainer.run(got.append, should_stop=lambda: trainer.steps >= mark)
        found[mark] = got[-1] if got else found[max(found)]
    return {"at": found, "steps": trainer.steps, "last": found[max(found)],
            "steps_per_s": trainer.steps / (time.perf_counter() - t0)}


def preview_latency(checkpoint, channels: int, repeats: int = 3) -> float:
    """Seconds from new weights to the labels of a 1920x1080 view (Segmenter built each time)."""
    rng = np.random.default_rng(0)
    view = (rng.integers(0, 255, (1080, 1920, 3), dtype=np.uint8) if channels == 3
            else rng.integers(0, 4000, (1080, 1920, channels)).astype(np.uint16))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        Segmenter(checkpoint, device="cpu").segment(view)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def parse_overrides(pairs: list[str]) -> dict:
    types = {f.name: f.type for f in fields(LiveConfig)}
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in types:
            raise SystemExit(f"unknown LiveConfig field {key!r}")
        out[key] = None if value == "None" else json.loads(value) if value[:1] in "0123456789.-tf[" else value
    return out


def summary(rows: list[dict], keys: list[str]) -> dict:
    """Mean over scenes per key; with repeats, also each repeat's mean and their spread."""
    out = {}
    for key in keys:
        values = [r[key] for r in rows if key in r]
        if not values:
            continue
        out[key] = round(float(np.mean(values)), 4)
        repeats = sorted({r["repeat"] for r in rows})
        if len(repeats) > 1:
            per = [float(np.mean([r[key] for r in rows if r["repeat"] == k and key in r])) for k in repeats]
            out[key + " runs"] = [round(v, 4) for v in per]
            out[key + " spread"] = round(max(per) - min(per), 4)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--per-task", type=int, default=2, help="scenes per task")
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--strokes", type=int, default=3, help="strokes per class")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--seconds", type=float, nargs="+", default=None)
    group.add_argument("--steps", type=int, nargs="+", default=None)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for training (the app's default "
                        "on 2 cores) and random-forest jobs")
    parser.add_argument("--set", nargs="*", default=[], help="LiveConfig overrides, KEY=VALUE")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--latency", action="store_true", help="also measure the preview latency")
    parser.add_argument("--speed", action="store_true", help="only training steps per second")
    args = parser.parse_args(argv)

    # nice=0: the peer runs at normal priority, so ours does too (the app lowers it to keep the window quick)
    config = replace(LiveConfig(), threads=args.threads, nice=0, device="cpu", snapshot_every=2.0,
                     **parse_overrides(args.set))
    print(f"config: {config}", flush=True)
    if args.speed:
        img, truth, n = scene("texture", args.first_seed)
        strokes = simulate_strokes(truth, np.random.default_rng(args.first_seed), args.strokes, classes=n)
        run = ours_steps(img, strokes, config, [50, 50 + 400])
        print(json.dumps({"steps_per_s": round(run["steps_per_s"], 1)}), flush=True)
        return 0
    seconds_mode = args.steps is None
    marks = sorted(args.seconds or [10, 30, 60, 120]) if seconds_mode else sorted(args.steps)
    unit = "s" if seconds_mode else "st"
    rows = []
    for repeat in range(args.repeats):
        for task in args.tasks:
            for i in range(args.per_task):
                seed = args.first_seed + i
                img, truth, n = scene(task, seed)
                strokes = simulate_strokes(truth, np.random.default_rng(seed), args.strokes, classes=n)
                row = {"task": task, "seed": seed, "repeat": repeat, "annotated": float((strokes != IGNORE).mean())}
                if not args.no_peer:
                    pred, took = random_forest(img, strokes, args.threads, seed=repeat)
                    row["rf"], row["rf_seconds"] = miou(pred, truth, n), took
                cfg = replace(config, seed=seed + 1000 * repeat)
                run = (ours_seconds if seconds_mode else ours_steps)(img, strokes, cfg, marks)
                for mark, snap in run["at"].items():
                    pred = Segmenter(snap.checkpoint, device="cpu").segment(img)
                    row[f"ours@{mark:g}{unit}"] = miou(pred, truth, n)
                row["steps"] = run["steps"]
                if "steps_per_s" in run:
                    row["steps_per_s"] = run["steps_per_s"]
                if args.latency and not rows:
                    row["preview_s"] = preview_latency(run["last"].checkpoint, img.shape[2])
                rows.append(row)
                print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    keys = [k for k in rows[0] if k.startswith(("rf", "ours", "annotated", "preview", "steps"))]
    for task in args.tasks:
        print(f"mean {task} " + json.dumps(summary([r for r in rows if r["task"] == task], keys)), flush=True)
    print("mean all " + json.dumps(summary(rows, keys)), flush=True)
    if not args.no_peer:
        for key in (k for k in keys if k.startswith("ours")):
            worst = min(r[key] - r["rf"] for r in rows if key in r)
            print(f"{key}: ours - rf, worst scene {worst:+.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
