"""Separating touching objects from a few painted ones: which instance output, against three baselines.

    PYTHONPATH=. python bench/objects.py [--styles round dense] [--seeds 0 1 2] [--steps 250 500 1000 2000]
                                        [--seconds 120] [--threads 1]

The issue's protocol on images made here (bench/nuclei.py, two generators of different styles;
never scikit-image's samples): a 16-bit fluorescence-like image of about 125 nuclei, 12 of them
painted whole in one quadrant (two touching pairs among them) plus background strokes, about 2 %
of the pixels in all; everything is scored on the other three quadrants against the true
nuclei, by StarDist's matching (accuracy at IoU 0.5 = TP / (TP + FP + FN)), panoptic quality and
AJI (core.objects.matching).  Side by side, on the same annotation, in the same run:

* **perfect mask + CC**: the true foreground split by 8-connected components (the upper bound of
  "class mask + connected components"; 0.74 on the issue's real image);
* **perfect mask + DT watershed**: the classical distance-transform watershed on the true
  foreground (markers: peak_local_max with a minimum distance of 0.6 x the painted nuclei's median
  radius);
* **RF + DT watershed**: scikit-image's trainable segmentation (multiscale_basic_features, a
  scikit-learn RandomForest, scikit-image's documented settings) on the painted pixels
  (background / nucleus), its foreground split by the same watershed (0.44 on the real image);
* **RF 3-class + seeds**: the forest taught our boundary targets, then our instance step;
* **ours, classes + CC**: the live trainer taught background / nucleus only, objects = connected
  components (what the app did before: 67 objects for 125 nuclei);
* **ours, boundary** (the shipped approach, core.objects.instances): the live trainer taught
  background / nucleus / boundary (core.training.instance_targets), objects = seeds grown into
  the boundary, from the class map alone;
* **ours, boundary + probability watershed**: the same network, hysteresis seeds on its nucleus
  probability and a watershed on its boundary probability (the alternative the class-map step was
  measured against).

The network's quality is measured after fixed numbers of training steps (the machine is shared,
so seconds would measure the load); ``--seconds S`` also runs the issue's commands on each image,
``unetseg train --instances --time-budget S`` then ``unetseg segment --format instances
measurements``, scores the instances they wrote and prints the steps training reached.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace

import numpy as np
from scipy import ndimage as ndi

from bench.nuclei import NOT_ANNOTATED, scene, scored_region, simulate_annotation
from core.objects.instances import InstanceSpec, separate
from core.objects.matching import aji, match
from core.training.instance_targets import BOUNDARY_WIDTH, UNANNOTATED, InstanceAnnotation, build_targets

IGNORE = 255


# --------------------------------------------------------------------------- helpers


def as_annotation(ann16: np.ndarray) -> InstanceAnnotation:
    objects = ann16.astype(np.uint32)
    objects[ann16 == NOT_ANNOTATED] = UNANNOTATED
    return InstanceAnnotation(objects)


def painted_radius(ann16: np.ndarray) -> float:
    ids = [i for i in np.unique(ann16) if i not in (0, NOT_ANNOTATED)]
    areas = [int((ann16 == i).sum()) for i in ids]
    return float(np.sqrt(np.median(areas) / np.pi))


def dt_watershed(mask: np.ndarray, radius: float) -> np.ndarray:
    """The classical split: markers at distance-transform peaks, a watershed of -distance."""
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    distance = ndi.distance_transform_edt(mask)
    regions = ndi.label(mask, np.ones((3, 3)))[0]
    peaks = peak_local_max(distance, min_distance=max(2, int(round(0.6 * radius))), labels=regions,
                           exclude_border=False)
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return watershed(-distance, markers, mask=mask)


def components(mask: np.ndarray) -> np.ndarray:
    return ndi.label(mask, np.ones((3, 3)))[0]


def probability_watershed(probs: np.ndarray, spec: InstanceSpec, high: float = 0.7, low: float = 0.4) -> np.ndarray:
    """Hysteresis seeds on the object probability, a watershed on the boundary probability inside
    the foreground (not background)."""
    from skimage.filters import apply_hysteresis_threshold
    from skimage.segmentation import watershed

    objects = probs[list(spec.object_classes)].sum(0)
    seeds = ndi.label(apply_hysteresis_threshold(objects, low, high), ndi.generate_binary_structure(2, 1))[0]
    sizes = np.bincount(seeds.ravel())
    seeds[sizes[seeds] < spec.min_seed] = 0
    foreground = probs[0] < 0.5
    return watershed(probs[spec.boundary_class], seeds, mask=foreground)


def score(truth: np.ndarray, pred: np.ndarray, quadrant: int) -> dict:
    t, p = scored_region(truth, quadrant), scored_region(np.asarray(pred), quadrant)
    m = match(t, p)
    return {"acc": m.accuracy, "pq": m.panoptic_quality, "aji": aji(t, p), "n_true": m.n_true, "n_pred": m.n_pred}


def normalized(image: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(image, (1, 99.8))
    return ((image.astype(np.float32) - lo) / max(hi - lo, 1e-6)).astype(np.float32)


# --------------------------------------------------------------------------- peers


def random_forest(image: np.ndarray, target: np.ndarray, threads: int) -> tuple[np.ndarray, float]:
    """scikit-image's trainable segmentation on the annotated pixels: (class map, seconds)."""
    from functools import partial

    from skimage.feature import multiscale_basic_features
    from skimage.future import fit_segmenter, predict_segmenter
    from sklearn.ensemble import RandomForestClassifier

    t0 = time.perf_counter()
    features = partial(multiscale_basic_features, intensity=True, edges=True, texture=True,
                       sigma_min=1, sigma_max=16)(normalized(image))
    labels = np.where(target == IGNORE, 0, target.astype(np.int32) + 1)  # skimage: 0 = not annotated
    clf = RandomForestClassifier(n_estimators=50, n_jobs=threads, max_depth=10, max_samples=0.05, random_state=0)
    clf = fit_segmenter(labels, features, clf)
    return (predict_segmenter(features, clf) - 1).astype(np.uint8), time.perf_counter() - t0


# --------------------------------------------------------------------------- ours


def train_steps(image: np.ndarray, target: np.ndarray, marks: list[int], config) -> dict[int, object]:
    """The live trainer on one image; the checkpoint it publishes at each number of steps."""
    from core.training.live import LiveTrainer

    trainer = LiveTrainer(config)
    trainer.set_data([(image[..., None], target)])
    out = {}
    for mark in sorted(marks):
        snaps = []
        trainer.run(snaps.append, should_stop=lambda: trainer._steps >= mark)
        out[mark] = snaps[-1].checkpoint
    return out


def trained_maps(key: str, image: np.ndarray, target: np.ndarray, marks: list[int], config, cache,
                 probabilities_too: bool = False) -> dict[int, tuple[np.ndarray, np.ndarray | None]]:
    """{steps: (class map, probabilities or None)} of the live trainer after each number of steps;
    kept in ``cache`` (a folder, or None) so the instance step can be swept without training again."""
    from pathlib import Path

    files = {m: Path(cache) / f"{key}-{m}.npz" for m in marks} if cache else {}
    if cache and all(f.is_file() for f in files.values()):
        out = {}
        for m, f in files.items():
            data = np.load(f)
            out[m] = (data["cls"], data["probs"] if "probs" in data else None)
        return out
    out = {}
    for m, ck in train_steps(image, target, marks, config).items():
        out[m] = (class_map(ck, image), probabilities(ck, image) if probabilities_too else None)
        if cache:
            Path(cache).mkdir(parents=True, exist_ok=True)
            np.savez_compressed(files[m], cls=out[m][0], **({"probs": out[m][1]} if out[m][1] is not None else {}))
    return out


def class_map(checkpoint, image: np.ndarray) -> np.ndarray:
    from core.segment.inference import Segmenter

    seg = Segmenter(_without_instances(checkpoint), device="cpu")
    return seg.segment(image[..., None], tta=False, refine=False)


def probabilities(checkpoint, image: np.ndarray) -> np.ndarray:
    from core.segment.inference import Segmenter

    seg = Segmenter(_without_instances(checkpoint), device="cpu")
    return seg.probabilities(image[..., None], tta=False).numpy()


def _without_instances(checkpoint):
    """The bare network (its raw class map), whatever its metadata says."""
    return replace(checkpoint, metadata={k: v for k, v in checkpoint.metadata.items() if k != "instances"})


# --------------------------------------------------------------------------- run


def run_image(style: str, seed: int, marks: list[int], config, seconds: float | None, threads: int,
              variants: dict, cache: str | None = None) -> list[dict]:
    image, truth = scene(style, seed)
    ann16, quadrant = simulate_annotation(truth, seed)
    annotation = as_annotation(ann16)
    radius = painted_radius(ann16)
    base = {"style": style, "seed": seed, "annotated": round(float((ann16 != NOT_ANNOTATED).mean()), 4)}
    rows = []

    def row(method: str, pred: np.ndarray, **extra) -> None:
        r = {**base, "method": method, **score(truth, pred, quadrant), **extra}
        rows.append(r)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}), flush=True)

    row("perfect mask + CC", components(truth > 0))
    row("perfect mask + DT watershed", dt_watershed(truth > 0, radius))
    two_class = build_targets([annotation], width=0)  # nucleus / background only (no boundary band)
    fg_target = np.where(two_class.targets[0] == IGNORE, IGNORE, np.minimum(two_class.targets[0], 1)).astype(np.uint8)
    rf2, rf_seconds = random_forest(image, fg_target, threads)
    row("RF + DT watershed", dt_watershed(rf2 == 1, radius), seconds=rf_seconds)
    for width in variants["widths"]:
        built = build_targets([annotation], width=width)
        default = width == BOUNDARY_WIDTH
        if default:
            rf3, _ = random_forest(image, built.targets[0], threads)
            row("RF 3-class + seeds", separate(rf3, built.spec)[0])
        maps = trained_maps(f"{style}-{seed}-w{width}", image, built.targets[0], marks, replace(config, seed=seed),
                            cache, probabilities_too=default)
        for steps, (cls, probs) in maps.items():
            row("ours boundary" + ("" if default else f" w{width}"), separate(cls, built.spec)[0], steps=steps,
                min_seed=built.spec.min_seed)
            for grow in variants["grows"]:
                for min_seed in variants["min_seeds"]:
                    spec = replace(built.spec, grow=grow, min_seed=min_seed)
                    row(f"ours boundary w{width} g{grow} m{min_seed}", separate(cls, spec)[0], steps=steps)
            if probs is not None:
                row("ours boundary + prob watershed", probability_watershed(probs, built.spec), steps=steps)
    maps = trained_maps(f"{style}-{seed}-classes", image, fg_target, marks, replace(config, seed=seed), cache) \
        if variants.get("classes", True) else {}
    for steps, (cls, _) in maps.items():
        row("ours classes + CC", components(cls == 1), steps=steps)
        row("ours classes + DT watershed", dt_watershed(cls == 1, radius), steps=steps)
    if seconds:
        pred, steps = through_the_cli(image, ann16, seconds, seed)
        row(f"ours, unetseg train --instances --time-budget {seconds:g}", pred, steps=steps)
    return rows


def through_the_cli(image: np.ndarray, ann16: np.ndarray, seconds: float, seed: int) -> tuple[np.ndarray, int]:
    """The issue's commands on one image: ``unetseg train --instances --time-budget S`` on the label
    image, then ``unetseg segment --format instances measurements``; (the instances it wrote, steps)."""
    import subprocess
    import tempfile
    from pathlib import Path

    import tifffile

    from core.model.metadata_edit import read_metadata

    with tempfile.TemporaryDirectory(prefix="unetseg-bench-") as work:
        work = Path(work)
        for folder in ("images", "masks"):
            (work / folder).mkdir()
        tifffile.imwrite(work / "images" / "nuclei.tif", image)
        tifffile.imwrite(work / "masks" / "nuclei_instances.tif", ann16)
        model = work / "nuclei.safetensors"
        python = [sys.executable, "-m", "core"]
        subprocess.run(python + ["train", "--images", str(work / "images"), "--masks", str(work / "masks"),
                                 "--instances", "--time-budget", f"{seconds:g}", "--seed", str(seed), "-o", str(model)],
                       check=True, capture_output=True)
        subprocess.run(python + ["segment", str(work / "images"), "-o", str(work / "out"), "--model", str(model),
                                 "--format", "instances", "measurements"], check=True, capture_output=True)
        steps = int(read_metadata(model)["training"]["steps"])
        return tifffile.imread(work / "out" / "nuclei_instances.tif").astype(np.uint32), steps


def summarise(rows: list[dict]) -> None:
    keys = sorted({(r["method"], r.get("steps")) for r in rows}, key=lambda k: (k[0], k[1] or 0))
    print("\nmethod | steps | accuracy@0.5 mean (min-max) | PQ mean | AJI mean | images")
    for method, steps in keys:
        sel = [r for r in rows if r["method"] == method and r.get("steps") == steps]
        acc = np.array([r["acc"] for r in sel])
        print(f"{method} | {steps or ''} | {acc.mean():.3f} ({acc.min():.3f}-{acc.max():.3f}) | "
              f"{np.mean([r['pq'] for r in sel]):.3f} | {np.mean([r['aji'] for r in sel]):.3f} | {len(sel)}")
    for style in sorted({r["style"] for r in rows}):
        print(f"\n{style}:")
        for method, steps in keys:
            sel = [r["acc"] for r in rows if r["method"] == method and r.get("steps") == steps and r["style"] == style]
            if sel:
                print(f"  {method} {steps or ''}: {np.mean(sel):.3f} (sd {np.std(sel):.3f}, n {len(sel)})")


def main(argv: list[str] | None = None) -> int:
    import torch

    from core.training.live import LiveConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--styles", nargs="+", default=["round", "dense"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, nargs="+", default=[250, 500, 1000, 2000])
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--widths", type=int, nargs="+", default=[BOUNDARY_WIDTH],
                        help="boundary band widths to train (a sweep; the default is the shipped one)")
    parser.add_argument("--grows", type=int, nargs="*", default=[], help="growth steps to sweep (with --min-seeds)")
    parser.add_argument("--min-seeds", type=int, nargs="*", default=[], help="seed sizes to sweep (with --grows)")
    parser.add_argument("--no-classes-model", action="store_true",
                        help="leave out 'ours, classes + CC' (a second network per image)")
    parser.add_argument("--cache", default=None, help="a folder keeping the trained class maps (sweeps of the "
                                                      "instance step then need no training)")
    parser.add_argument("--set", nargs="*", default=[], help="LiveConfig overrides KEY=VALUE (JSON values)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    overrides = {k: json.loads(v) if v[:1] in "0123456789.-tf[n" else v
                 for k, v in (p.split("=", 1) for p in args.set)}
    config = replace(LiveConfig(), threads=args.threads, device="cpu", snapshot_every=1e9, **overrides)
    variants = {"widths": args.widths, "grows": args.grows, "min_seeds": args.min_seeds,
                "classes": not args.no_classes_model}
    print(f"config: {config}", flush=True)
    rows = []
    for style in args.styles:
        for seed in args.seeds:
            rows += run_image(style, seed, args.steps, config, args.seconds, args.threads, variants, args.cache)
    summarise(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
