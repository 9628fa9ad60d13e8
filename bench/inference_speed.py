"""CPU throughput of Segmenter.segment against this machine's float32 matmul, in one run.

    python bench/inference_speed.py [--size 1024] [--repeats 3]

The machine is shared and noisy, so matmul is measured before, between and after the model
runs and the ratio uses the median of those measurements.  GFLOP/s of a model = its FLOPs per
pixel (2 x multiply-adds of every conv, see core.models.flops_per_pixel) x pixels / seconds.
Target: Segmenter.segment of UNetLarge on 1024x1024 reaches >= 0.7 of matmul GFLOP/s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.checkpoints import checkpoint_from_state_dict  # noqa: E402
from core.inference import Segmenter  # noqa: E402
from core.models import UNetLarge, flops_per_pixel  # noqa: E402
from core.synthetic import generate_scene  # noqa: E402


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e9


def timed(fn, repeats: int) -> float:
    fn()  # warm-up: oneDNN primitive creation
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    size = args.size
    tile = generate_scene(1, 512, 512)[0]
    image = np.ascontiguousarray(np.tile(tile, (size // 512 + 1, size // 512 + 1, 1))[:size, :size])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, image {size}x{size}")

    candidates = {
        "built-in large (5 classes)": Segmenter.load("large", device="cpu"),
        "UNetLarge, 256 classes (seed default)": Segmenter(checkpoint_from_state_dict(UNetLarge().state_dict()), "cpu"),
    }
    mm = [matmul_gflops()]
    rows = []
    for name, seg in candidates.items():
        model = seg.checkpoint.build().eval()
        gflop = flops_per_pixel(model) * size * size / 1e9
        t_seg = timed(lambda: seg.segment(image, tta=False), args.repeats)
        mm.append(matmul_gflops())
        x = torch.from_numpy(image.astype(np.float32) / 255).permute(2, 0, 1)[None].contiguous()

        def eager():
            with torch.no_grad():
                model(x).argmax(1)

        t_eager = timed(eager, max(1, args.repeats - 1))
        mm.append(matmul_gflops())
        rows.append((name, gflop, t_seg, t_eager))
    ref = statistics.median(mm)
    print(f"float32 matmul 2048x2048: median {ref:.0f} GFLOP/s (min {min(mm):.0f}, max {max(mm):.0f}, {len(mm)} runs)")
    print(f"{'model':<40}{'GFLOP':>7}{'segment s':>11}{'GFLOP/s':>9}{'ratio':>7}{'eager s':>9}{'ratio':>7}")
    for name, gflop, t_seg, t_eager in rows:
        print(f"{name:<40}{gflop:>7.0f}{t_seg:>11.3f}{gflop / t_seg:>9.0f}{gflop / t_seg / ref:>7.2f}"
              f"{t_eager:>9.3f}{gflop / t_eager / ref:>7.2f}")
    print("target: segment ratio >= 0.70 (eager NCHW PyTorch shown for comparison)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
