"""CPU speed of a training step against this machine's float32 matmul, and its page faults.

    python bench/train_speed.py [--arch large] [--steps 8] [--batch 16] [--patch 128]

The real loop (core.training.loop.train, fine-tuning the built-in model with the app's defaults:
16 crops of 128x128, AdamW) runs on 10 generated 256x256 scenes, in a fresh process per
variant:
  before  glibc's default heap: every freed activation goes back to the kernel
  after   as training runs now, inside core.model.optimize.reuse_freed_memory
Before each step's timer starts and after it stops, a float32 2048x2048 matmul is timed (in
the progress callback, outside the step's time), so each step's ratio uses the matmul speed of
the same moment: the machine is shared and its speed drifts.  The second ratio divides by the
fastest matmul seen in the process instead, which is the conservative figure on a busy machine.  GFLOP of a step = 3 x the
forward's (forward, gradient of the input, gradient of the weights; core.model.networks.flops_per_pixel
x pixels).  Minor page faults per step: ``resource.getrusage(RUSAGE_SELF).ru_minflt``.
The first two steps are left out.  Target: UNetLarge's ratio >= 0.5.
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
import contextlib, json, resource, sys, tempfile, time
from pathlib import Path
import torch
sys.path.insert(0, sys.argv[1])
import core.training.loop as training
from core.model.networks import build_model, flops_per_pixel
from core.training.synthetic import write_dataset

variant, arch, steps, batch, patch = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
if variant == "before":
    training.reuse_freed_memory = contextlib.nullcontext
a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
a @ b

def matmul():
    t0 = time.perf_counter()
    for _ in range(8):
        a @ b
    return 2 * 2048**3 * 8 / (time.perf_counter() - t0) / 1e9

marks = []  # per step: (time the step ended, faults then, matmul GFLOP/s around the boundary, time resumed, faults then)

def progress(done, total):
    t, f = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    g = matmul()
    marks.append((t, f, g, time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt))

with tempfile.TemporaryDirectory() as root:
    write_dataset(root, 10, seed=11, height=256, width=256)
    config = training.TrainConfig(images=Path(root) / "images", masks=Path(root) / "masks",
                                  out=Path(root) / "m.safetensors", arch=arch, init=arch, epochs=1,
                                  steps_per_epoch=steps, batch=batch, patch=patch, lr=1e-3, calibrate=False,
                                  device="cpu", seed=0)
    training.train(config, progress=progress, log=lambda m: None)
gflop = 3 * flops_per_pixel(build_model(arch, 3, 5)) * batch * patch * patch / 1e9
rows = []
for (_, _, g0, resumed, f0), (ended, f1, g1, _, _) in zip(marks, marks[1:]):
    seconds = ended - resumed
    rows.append({"seconds": seconds, "faults": f1 - f0, "matmul": (g0 + g1) / 2,
                 "ratio": gflop / seconds / ((g0 + g1) / 2)})
print(json.dumps({"gflop": gflop, "steps": rows[1:], "fastest_matmul": max(m[2] for m in marks), "threads": torch.get_num_threads(), "torch": torch.__version__}))
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="large", choices=("small", "large"))
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=128)
    args = parser.parse_args()
    print(f"UNet{args.arch.title()} training step: {args.batch} crops of {args.patch}x{args.patch}, CPU")
    print(f"{'heap':<8}{'GFLOP':>7}{'step s':>8}{'GFLOP/s':>9}{'matmul':>8}{'ratio':>7}{'(min-max)':>12}"
          f"{'fastest matmul':>15}{'ratio':>7}{'minor faults/step':>19}")
    for variant in ("before", "after"):
        out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), variant, args.arch, str(args.steps),
                              str(args.batch), str(args.patch)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        steps = r["steps"]
        med = {k: statistics.median(s[k] for s in steps) for k in ("seconds", "faults", "matmul", "ratio")}
        ratios = [s["ratio"] for s in steps]
        print(f"{variant:<8}{r['gflop']:>7.0f}{med['seconds']:>8.2f}{r['gflop'] / med['seconds']:>9.0f}"
              f"{med['matmul']:>8.0f}{med['ratio']:>7.2f}{f'({min(ratios):.2f}-{max(ratios):.2f})':>12}"
              f"{r['fastest_matmul']:>15.0f}{r['gflop'] / med['seconds'] / r['fastest_matmul']:>7.2f}"
              f"{med['faults']:>19,.0f}")
    print(f"medians over {args.steps - 3} steps; torch {r['torch']}, {r['threads']} threads")
    print("ratio = step GFLOP/s / float32 2048x2048 matmul GFLOP/s measured around that step (median of steps);")
    print("second ratio: median step GFLOP/s / the fastest matmul of the process (conservative); target >= 0.5")
    return 0


if __name__ == "__main__":
    sys.exit(main())
