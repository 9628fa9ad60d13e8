"""Live Training of painted objects, the app's way: accuracy after N training steps, beside the peer.

    PYTHONPATH=. python bench/objects_live.py [--styles round dense] [--seeds 0 1 2]
                                             [--steps 250 500 1000 2000] [--threads 1]

The issue's protocol (bench/nuclei.py, images made here, never scikit-image's samples): a
16-bit fluorescence-like image of about 125 touching nuclei; in one quadrant, 12 nuclei painted
whole (two touching pairs among them) and a few background strokes, about 2 % of the pixels.
Here the annotation is what the app holds after a user painted it: the 12 objects in the
document's object layer (class 1 under them, as the New Object brush writes it), the background
strokes in the strokes document (class 0), nothing else.  The targets are the app's own
(core.training.live_objects.object_data, what gui.controllers.live_training gives the trainer;
the bench checks they are byte-identical to `unetseg train --instances`'s for the same
annotation), the trainer is the app's (core.training.live.LiveTrainer with the app's LiveConfig
defaults and its model classes), and each checkpoint is given the instance settings as the app
gives them (``with_spec``) and segmented as Apply to Image does (``segment(..., instances=True)``).

Scored on the other three quadrants against the true nuclei by StarDist's matching (accuracy at
IoU 0.5 = TP / (TP + FP + FN)), panoptic quality and AJI (core.objects.matching), beside, on the
same annotation in the same run:

* **RF + DT watershed** (the peer): scikit-image's trainable segmentation (a scikit-learn random
  forest on multiscale_basic_features) taught background / nucleus from the same pixels, its
  foreground split by a distance-transform watershed (bench/objects.py);
* **perfect mask + CC**: the true foreground split by connected components (what "class mask +
  connected components" can reach at best).

Steps, not seconds, are the quality axis: the machine is shared, so seconds would measure its
load; the seconds printed beside them are for orientation only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace

import numpy as np

from bench.nuclei import NOT_ANNOTATED, scene, simulate_annotation
from bench.objects import IGNORE, components, dt_watershed, painted_radius, random_forest, score
from core.classes import default_classes
from core.training.instance_targets import UNANNOTATED, InstanceAnnotation, build_targets
from core.training.live_objects import PaintedImage, object_data, with_spec


def as_painted(image: np.ndarray, ann16: np.ndarray) -> PaintedImage:
    """The annotation as the app holds it: an object layer (0 = no object), the class labels the
    New Object brush wrote under the objects, and strokes (0 = background, 255 = none)."""
    objects = np.where((ann16 != 0) & (ann16 != NOT_ANNOTATED), ann16, 0).astype(np.uint32)
    classes = (objects > 0).astype(np.uint8)
    strokes = np.where(ann16 == 0, 0, 255).astype(np.uint8)
    return PaintedImage("nuclei.tif", image[..., None], objects, classes, strokes)


def cli_targets(ann16: np.ndarray):
    """`unetseg train --instances`'s targets of the same annotation as a label image."""
    return build_targets([InstanceAnnotation(_with_unannotated(ann16))])


def run_image(style: str, seed: int, marks: list[int], config, threads: int) -> list[dict]:
    from core.segment.inference import Segmenter
    from core.training.live import LiveTrainer

    image, truth = scene(style, seed)
    ann16, quadrant = simulate_annotation(truth, seed)
    data = object_data([as_painted(image, ann16)], default_classes(2))
    cli = cli_targets(ann16)
    same = np.array_equal(data.items[0][1], cli.targets[0]) and data.spec == cli.spec
    base = {"style": style, "seed": seed, "annotated": round(float((ann16 != NOT_ANNOTATED).mean()), 4),
            "painted": data.objects, "background_px": data.background_pixels, "targets_as_cli": same}
    rows = []

    def row(method: str, pred: np.ndarray, **extra) -> None:
        r = {**base, "method": method, **score(truth, pred, quadrant), **extra}
        rows.append(r)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}), flush=True)

    row("perfect mask + CC", components(truth > 0))
    fg = build_targets([InstanceAnnotation(_with_unannotated(ann16))], width=0).targets[0]  # nucleus / background
    fg = np.where(fg == IGNORE, IGNORE, np.minimum(fg, 1)).astype(np.uint8)
    rf, rf_seconds = random_forest(image, fg, threads)
    row("RF + DT watershed", dt_watershed(rf == 1, painted_radius(ann16)), seconds=round(rf_seconds, 1))

    trainer = LiveTrainer(replace(config, seed=seed), data.classes)
    trainer.set_data(data.items, ["nuclei.tif"])
    started = time.perf_counter()
    for mark in sorted(marks):
        snaps = []
        trainer.run(snaps.append, should_stop=lambda: trainer.steps >= mark)
        seconds = time.perf_counter() - started
        snap = with_spec(snaps[-1], data.spec, data.objects)  # as the app keeps each checkpoint
        seg = Segmenter(snap.checkpoint, device="cpu")
        out = seg.segment(image[..., None], tta=False, refine=False, instances=True)  # as Apply to Image does
        row("Live Training of painted objects (app)", out.instances, steps=trainer.steps, seconds=round(seconds, 1),
            started_from=trainer.started_from)
    return rows


def _with_unannotated(ann16: np.ndarray) -> np.ndarray:
    objects = ann16.astype(np.uint32)
    objects[ann16 == NOT_ANNOTATED] = UNANNOTATED
    return objects


def summarise(rows: list[dict]) -> None:
    keys = sorted({(r["method"], r.get("steps")) for r in rows}, key=lambda k: (k[0], k[1] or 0))
    print("\nmethod | steps | accuracy@0.5 mean (per image) | PQ mean | AJI mean | images")
    for method, steps in keys:
        sel = [r for r in rows if r["method"] == method and r.get("steps") == steps]
        acc = [r["acc"] for r in sel]
        print(f"{method} | {steps or ''} | {np.mean(acc):.3f} ({', '.join(f'{a:.3f}' for a in acc)}) | "
              f"{np.mean([r['pq'] for r in sel]):.3f} | {np.mean([r['aji'] for r in sel]):.3f} | {len(sel)}")
    peer = {(r["style"], r["seed"]): r["acc"] for r in rows if r["method"] == "RF + DT watershed"}
    for steps in sorted({r["steps"] for r in rows if r.get("steps")}):
        ours = [r for r in rows if r.get("steps") == steps]
        wins = sum(r["acc"] > peer[(r["style"], r["seed"])] for r in ours)
        ratio = np.mean([r["acc"] for r in ours]) / max(1e-9, np.mean(list(peer.values())))
        print(f"after {steps} steps: better than RF + DT watershed on {wins} of {len(ours)} images; "
              f"mean accuracy ratio ours / peer {ratio:.2f}")
    print(f"targets identical to `unetseg train --instances`: {all(r['targets_as_cli'] for r in rows)}")


def main(argv: list[str] | None = None) -> int:
    import torch

    from core.training.live import LiveConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--styles", nargs="+", default=["round", "dense"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, nargs="+", default=[250, 500, 1000, 2000])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    # the app's defaults (gui.controllers.live_training: LiveConfig(), started as the app starts it)
    config = replace(LiveConfig(), threads=args.threads, device="cpu", snapshot_every=1e9)
    print(f"config: {config}", flush=True)
    rows = []
    for style in args.styles:
        for seed in args.seeds:
            rows += run_image(style, seed, args.steps, config, args.threads)
    summarise(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
