"""CPU throughput of Segmenter.segment against this machine's float32 matmul, in one run.

    python bench/inference_speed.py [--size 1024] [--repeats 3]

Each model is measured in a fresh process (glibc's heap state after one big run changes the
speed of the next, so nothing is measured after something else in the same process except as
stated).  In that process, in this order:
  eager   a plain NCHW PyTorch forward + argmax of the same weights (the naive baseline)
  first   the first Segmenter.segment call of the process (includes preparing the model)
  segment the median of the next calls
  batch   the median of calls inside one ``reuse_freed_memory`` block, as `unetseg segment`
          runs a batch of images
  stream  the median of core.segment.streaming.segment_source runs of the same image (read from an
          in-memory source, labels into a store-sized block: the streaming path)
The float32 2048x2048 matmul is measured before, between and after, and ratios use its median.
GFLOP of a model = its FLOPs per pixel (2 x multiply-adds of every conv; core.model.networks.flops_per_pixel)
x pixels.  Target: Segmenter.segment of UNetLarge on 1024x1024 reaches >= 0.7 of matmul GFLOP/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, statistics, sys, time
import numpy as np, torch
sys.path.insert(0, sys.argv[1])
from core.model.checkpoints import checkpoint_from_state_dict
from core.segment.inference import Segmenter
from core.model.networks import UNetLarge, flops_per_pixel
from core.model.optimize import reuse_freed_memory
from core.training.synthetic import generate_scene

which, size, repeats = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def matmul():
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    t0 = time.perf_counter()
    for _ in range(5):
        a @ b
    return 2 * 2048**3 * 5 / (time.perf_counter() - t0) / 1e9

def median_time(fn, n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)

tile = generate_scene(1, 512, 512)[0]
image = np.ascontiguousarray(np.tile(tile, (size // 512 + 1, size // 512 + 1, 1))[:size, :size])
if which == "builtin":
    seg = Segmenter.load("large", device="cpu")
else:
    seg = Segmenter(checkpoint_from_state_dict(UNetLarge().state_dict()), "cpu")
model = seg.checkpoint.build().eval()
x = torch.from_numpy(image.astype(np.float32) / 255).permute(2, 0, 1)[None].contiguous()

def eager():
    with torch.no_grad():
        model(x).argmax(1)

mm = [matmul()]
eager()
t_eager = median_time(eager, max(1, repeats - 1))
mm.append(matmul())
t0 = time.perf_counter()
seg.segment(image, tta=False, refine=False)
t_first = time.perf_counter() - t0
t_seg = median_time(lambda: seg.segment(image, tta=False, refine=False), repeats)
mm.append(matmul())
with reuse_freed_memory():
    seg.segment(image, tta=False, refine=False)
    t_batch = median_time(lambda: seg.segment(image, tta=False, refine=False), repeats)
mm.append(matmul())
from core.io.sources import ArraySource
from core.segment.streaming import segment_source
source = ArraySource(image)
t_stream = median_time(lambda: segment_source(seg, source, tta=False, refine=False), repeats)
mm.append(matmul())
print(json.dumps({"gflop": flops_per_pixel(model) * size * size / 1e9, "eager": t_eager, "first": t_first,
                  "segment": t_seg, "batch": t_batch, "stream": t_stream, "matmul": mm, "threads": torch.get_num_threads(),
                  "torch": torch.__version__}))
"""

NAMES = {"builtin": "built-in large (5 classes)", "seed": "UNetLarge, 256 classes (seed default)"}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results = {}
    for which in NAMES:
        out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), which, str(args.size), str(args.repeats)],
                             capture_output=True, text=True, check=True)
        results[which] = json.loads(out.stdout.strip().splitlines()[-1])
    first = next(iter(results.values()))
    print(f"torch {first['torch']}, {first['threads']} threads, image {args.size}x{args.size}")
    header = f"{'model':<38}{'GFLOP':>6}{'matmul':>8}" + "".join(f"{k + ' s':>10}{'ratio':>6}"
                                                              for k in ("eager", "first", "segment", "batch", "stream"))
    print(header)
    for which, r in results.items():
        ref = statistics.median(r["matmul"])
        cells = "".join(f"{r[k]:>10.3f}{r['gflop'] / r[k] / ref:>6.2f}"
                        for k in ("eager", "first", "segment", "batch", "stream"))
        print(f"{NAMES[which]:<38}{r['gflop']:>6.0f}{ref:>8.0f}{cells}")
    print("matmul: median float32 GFLOP/s of that model's process; ratio = model GFLOP/s / matmul GFLOP/s")
    print("target: Segmenter.segment ratio >= 0.70; back-to-back segment calls and streaming >= 0.85")
    return 0


if __name__ == "__main__":
    sys.exit(main())
