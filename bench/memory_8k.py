"""Peak memory of segmenting an 8192x8192 image with UNetSmall (target: under 1.5 GB RSS).

    python bench/memory_8k.py [--model small] [--size 8192]

Runs the whole job in a fresh subprocess and reads its peak resident set size (ru_maxrss),
so the figure includes Python, torch, the 192 MB image and the 64 MB label output.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
from core.segment.inference import Segmenter
from core.training.synthetic import generate_scene
size, model = int(sys.argv[2]), sys.argv[3]
seg = Segmenter.load(model, device="cpu")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tile = generate_scene(2, 512, 512)[0]
image = np.tile(tile, (size // 512, size // 512, 1))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
labels = seg.segment(image)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"after_load_mb": base / 1024, "with_image_mb": before / 1024, "peak_mb": peak / 1024,
                  "seconds": seconds, "classes_found": int(len(np.unique(labels)))}))
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="small")
    parser.add_argument("--size", type=int, default=8192)
    args = parser.parse_args()
    out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(args.size), args.model],
                         capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{args.model} on {args.size}x{args.size}: peak RSS {r['peak_mb']:.0f} MB "
          f"(after loading the model {r['after_load_mb']:.0f} MB, with the image {r['with_image_mb']:.0f} MB), "
          f"{r['seconds']:.1f} s, {r['classes_found']} classes found; target < 1536 MB: ratio {r['peak_mb'] / 1536:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
