"""What edge refinement and test-time augmentation cost, as ratios to one plain pass, in one run.

    python bench/refine_cost.py [--size 2048] [--repeats 3]

Each built-in model segments one size x size scene (a 512 px scene tiled) four ways: plain,
with its calibrated edge refinement, with 8-fold TTA, and with both; the median of ``repeats``
calls each, after one warm-up.  Quality for the same settings: bench/quality.py.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.segment.inference import Segmenter  # noqa: E402
from core.training.synthetic import generate_scene  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tile = generate_scene(1, 512, 512)[0]
    reps = args.size // 512 + 1
    image = np.ascontiguousarray(np.tile(tile, (reps, reps, 1))[: args.size, : args.size])
    print(f"image {args.size}x{args.size}; median of {args.repeats} calls; ratio = seconds / plain seconds")
    print(f"{'model':<8}{'setting':<52}{'seconds':>9}{'ratio':>8}")
    for name in ("small", "large"):
        seg = Segmenter.load(name, device="cpu")
        ways = [("plain", False, False), (f"refine ({seg.refine})", False, True)]
        if name == "small":  # TTA on large: 8 x 15 s a call here, and it is not large's default
            ways += [("tta", True, False), ("tta + refine (default)", True, True)]
        plain = None
        for label, tta, refine in ways:
            seg.segment(image[:512, :512], tta=tta, refine=refine)
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                seg.segment(image, tta=tta, refine=refine)
                times.append(time.perf_counter() - t0)
            seconds = statistics.median(times)
            plain = plain or seconds
            print(f"{name:<8}{label:<52}{seconds:>9.2f}{seconds / plain:>8.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
