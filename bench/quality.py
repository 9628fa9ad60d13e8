"""Segmentation quality of the built-in models on freshly generated scenes.

    python bench/quality.py [--scenes 200] [--seed 20261125]

The scenes come from a seed the training data never used (training: `unetseg generate --seed 0`),
so this is held-out data (nor did calibration, which used `--seed 1`).  IoU is pooled over all
pixels of all scenes, per class; the mean is over the four shape classes (1-4).  Each model is
scored with its defaults (test-time augmentation, edge refinement) and with each switched off.
Targets, for the defaults: large >= 0.90, small >= 0.80.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.segment.inference import Segmenter  # noqa: E402
from core.metrics import IoUAccumulator  # noqa: E402
from core.training.synthetic import SHAPE_CLASSES, generate_scene, scene_seed  # noqa: E402

TARGETS = {"large": 0.90, "small": 0.80}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--models", nargs="+", default=["large", "small"],
                        help="built-in names, or NAME=FILE to score a candidate file against NAME's target")
    args = parser.parse_args()
    scenes = [generate_scene(scene_seed(args.seed, i)) for i in range(args.scenes)]
    pixels = sum(lab.size for _, lab in scenes)
    print(f"{args.scenes} held-out scenes (seed {args.seed}), {pixels / 1e6:.1f} Mpixels")
    names = [c.name for c in SHAPE_CLASSES]
    print(f"{'model':<24}{'mIoU 1-4':>9}  " + "  ".join(f"{n:>9}" for n in names[1:]) + "   target  ratio   time")
    ok = True
    for spec in args.models:
        name, _, path = spec.partition("=")
        seg = Segmenter.load(path or name, device="cpu")
        default = (seg.tta, seg.refine)
        # every combination of the model's defaults switched off, plainest first, default last
        for tta, refine in dict.fromkeys([(False, None), (seg.tta, None), (False, seg.refine), default]):
            acc = IoUAccumulator(len(SHAPE_CLASSES))
            t0 = time.perf_counter()
            for rgb, labels in scenes:
                acc.update(seg.segment(rgb, tta=tta, refine=refine or False), labels)
            miou = acc.mean_iou([1, 2, 3, 4])
            per = acc.per_class_iou()
            label = name + (" +tta" if tta else "") + (" +refine" if refine else "")
            label += " (default)" if (tta, refine) == default else ""
            print(f"{label:<24}{miou:>9.4f}  " + "  ".join(f"{per.get(c, float('nan')):>9.4f}" for c in range(1, 5))
                  + f"   {TARGETS[name]:.2f}  {miou / TARGETS[name]:5.3f}  {time.perf_counter() - t0:5.1f}s")
            if (tta, refine) == default:
                ok &= miou >= TARGETS[name]
    print("all targets met" if ok else "NOT all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
