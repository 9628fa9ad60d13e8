"""The built-in models on shape scenes from sources their training never used (issue 15's test).

    python bench/independent_quality.py [--scenes 100] [--seed 7] [--models large small NAME=FILE]

Scenes: bench/new_look.py, look "mixed" (1/f noise, Voronoi cells, wood, weave backgrounds; lit,
textured and shadowed shapes; colour cast, vignetting, blur, noise, JPEG), 256x256.  Neither
core.training.synthetic nor core.training.appearance draws any of these.  IoU pooled over every pixel, mean over
the four shapes, each model with its defaults.  Targets (issue 15): large >= 0.92, small >= 0.82,
and large never below small.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from new_look import new_look_set  # noqa: E402

from core.segment.inference import Segmenter  # noqa: E402
from core.metrics import IoUAccumulator  # noqa: E402

TARGETS = {"large": 0.92, "small": 0.82}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--look", default="mixed", choices=("mixed", "stone"))
    parser.add_argument("--models", nargs="+", default=["large", "small"],
                        help="built-in names, or NAME=FILE to score a candidate file against NAME's target")
    args = parser.parse_args()
    scenes = new_look_set(args.scenes, args.seed, look=args.look)
    print(f"{args.scenes} independent '{args.look}' scenes (seed {args.seed}), 256x256")
    print(f"{'model':<28}{'mIoU 1-4':>9}{'ellipse':>9}{'rectangle':>10}{'triangle':>9}{'star':>7}{'target':>8}{'time':>7}")
    for spec in args.models:
        name, _, path = spec.partition("=")
        seg = Segmenter.load(path or name, device="cpu")
        acc = IoUAccumulator(5)
        t0 = time.perf_counter()
        for rgb, labels in scenes:
            acc.update(seg.segment(rgb), labels)
        per = acc.per_class_iou()
        miou = acc.mean_iou([1, 2, 3, 4])
        target = TARGETS.get(name)
        print(f"{spec[:28]:<28}{miou:>9.4f}" + "".join(f"{per.get(c, float('nan')):>{w}.4f}"
                                                        for c, w in zip(range(1, 5), (9, 10, 9, 7)))
              + f"{target if target else float('nan'):>8.2f}{time.perf_counter() - t0:>6.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
