"""Memory of a long Live Training session: does the process grow while a user keeps painting?

    PYTHONPATH=. python bench/live_memory.py [--minutes 60] [--images 4] [--side 2048] [--kind raw|rgb]

A session as the app drives it (gui.controllers.live_training): the trainer runs on a worker
thread and publishes a snapshot every 3 s of training; the user adds a stroke every 2 s
(erasing one now and then) and every pause hands the trainer all images again, each mask a
fresh copy (as the app does); the app keeps the newest 30 snapshots.  Images are made here:
``raw`` = 2-channel 16-bit (the trainer scales them to float32), ``rgb`` = 8-bit RGB.

Prints the resident set size (RSS) every ``--every`` seconds, and at the end the growth between
the first sample after warm-up (a tenth of the session, and 3 snapshots) and the last one.  The
target: flat.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import numpy as np

from core.training.live import LiveConfig, LiveTrainer
from core.training.loop import IGNORE


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def steps_of(trainer) -> int:
    return getattr(trainer, "steps", getattr(trainer, "_steps", 0))  # (also the trainer before issue 25)


def make_images(count: int, side: int, kind: str, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for _ in range(count):
        if kind == "raw":
            img = rng.normal(1000, 30, (side, side, 2))
            img[: side // 2, :, 1] += 400  # the top half is class 1
            out.append(img.clip(0, 65535).astype(np.uint16))
        else:
            img = rng.normal(110, 20, (side, side, 3))
            img[: side // 2, :, 0] += 60
            out.append(img.clip(0, 255).astype(np.uint8))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--side", type=int, default=2048)
    parser.add_argument("--kind", choices=("raw", "rgb"), default="raw")
    parser.add_argument("--every", type=float, default=60.0, help="seconds between RSS samples")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between strokes")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    images = make_images(args.images, args.side, args.kind, rng)
    masks = [np.full((args.side, args.side), IGNORE, np.uint8) for _ in images]
    for i, mask in enumerate(masks):  # a first stroke of each class on every image
        mask[args.side // 4, 100:160] = 1
        mask[3 * args.side // 4, 100:160] = 0
    names = [f"image {i}.tif" for i in range(len(images))]
    trainer = LiveTrainer(LiveConfig(device="cpu", threads=1))
    trainer.set_data([(im, m.copy()) for im, m in zip(images, masks)], names)
    rows: list = []  # the app's history: the newest 30
    stop = threading.Event()

    def published(snap):
        rows.append(snap)
        del rows[:-30]

    worker = threading.Thread(target=trainer.run, args=(published, stop.is_set), daemon=True)
    worker.start()
    start = time.perf_counter()
    end = start + args.minutes * 60
    samples, next_sample, strokes = [], start, 0
    try:
        while time.perf_counter() < end:
            i = int(rng.integers(len(images)))
            y = int(rng.integers(0, args.side - 4))
            x = int(rng.integers(0, args.side - 64))
            c = 1 if y < args.side // 2 else 0
            if rng.random() < 0.1:  # now and then the eraser
                masks[i][y:y + 40, x:x + 64] = IGNORE
            else:
                masks[i][y:y + 3, x:x + int(rng.integers(20, 64))] = c
            strokes += 1
            trainer.set_data([(im, m.copy()) for im, m in zip(images, masks)], names)  # what each pause does
            time.sleep(args.pause)
            now = time.perf_counter()
            if now >= next_sample:
                sample = {"minutes": round((now - start) / 60, 2), "rss_mb": round(rss_mb(), 1),
                          "strokes": strokes, "steps": steps_of(trainer), "snapshots_kept": len(trainer.snapshots),
                          "rows": len(rows), "held_out_set": getattr(trainer, "held_out_set", None)}
                samples.append(sample)
                print(json.dumps(sample), flush=True)
                next_sample = now + args.every
    finally:
        stop.set()
        worker.join()
    warm = [s for s in samples if s["minutes"] >= args.minutes / 10 and s["snapshots_kept"] >= 3] or samples
    first, last = warm[0], samples[-1]
    print(json.dumps({"rss_after_warmup_mb": first["rss_mb"], "rss_end_mb": last["rss_mb"],
                      "growth_mb": round(last["rss_mb"] - first["rss_mb"], 1),
                      "peak_mb": max(s["rss_mb"] for s in samples), "strokes": strokes, "steps": steps_of(trainer)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
