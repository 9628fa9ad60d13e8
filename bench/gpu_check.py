"""Checks and timings of the CUDA path (run on a machine with an NVIDIA GPU).

    python bench/gpu_check.py [--quick]

Prints: the device, training-step times for both architectures (bf16 autocast, channels_last),
Segmenter throughput on a 2048x2048 image, agreement of GPU (fp16) labels with the CPU's
float32 labels, tiled-vs-whole agreement on the GPU, and a real out-of-memory recovery: the
allocator is capped so the first tile batch cannot fit, and the Segmenter must halve and retry.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.model.checkpoints import checkpoint_from_state_dict  # noqa: E402
from core.segment.inference import Segmenter  # noqa: E402
from core.model.networks import build_model, flops_per_pixel  # noqa: E402
from core.training.synthetic import generate_scene  # noqa: E402
from tests.helpers import calibrated_model  # noqa: E402


def train_step_time(arch: str, batch: int = 32, patch: int = 128, steps: int = 30) -> float:
    model = build_model(arch, 3, 5).cuda().to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x = torch.randn(batch, 3, patch, patch, device="cuda").contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 5, (batch, patch, patch), device="cuda")
    torch.backends.cudnn.benchmark = True
    for i in range(steps + 5):
        if i == 5:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(x)
        loss = torch.nn.functional.cross_entropy(out.float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 0
    print(f"device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}")
    for arch in ("small", "large"):
        dt = train_step_time(arch)
        print(f"train step {arch}: {dt * 1e3:.1f} ms for 32x128x128 ({32 * 128 * 128 / dt / 1e6:.1f} Mpx/s)")

    model = calibrated_model("large", 5)
    ck = checkpoint_from_state_dict(model.state_dict())
    gpu, cpu = Segmenter(ck, "cuda"), Segmenter(ck, "cpu")
    size = 1024 if args.quick else 2048
    image = np.tile(generate_scene(11, 512, 512)[0], (size // 512, size // 512, 1))
    gpu.segment(image)  # warm-up: cuDNN autotuning
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    runs = 3
    for _ in range(runs):
        labels = gpu.segment(image)
    dt = (time.perf_counter() - t0) / runs
    tflops = flops_per_pixel(model) * size * size / dt / 1e12
    print(f"segment large {size}x{size} on {gpu.device}: {dt * 1e3:.0f} ms ({size * size / dt / 1e6:.0f} Mpx/s, "
          f"{tflops:.1f} TFLOP/s effective)")
    crop = image[:512, :512]
    agree = (gpu.segment(crop) == cpu.segment(crop)).mean()
    print(f"GPU fp16 vs CPU fp32 labels agree on {agree * 100:.3f}% of pixels")
    whole = gpu.segment(crop, tile_size=0)
    tiled = gpu.segment(crop, tile_size=144)
    print(f"GPU tiled (144) vs whole agree on {(whole == tiled).mean() * 100:.3f}% of pixels")

    # Real OOM: cap this process's share of GPU memory so a 4x1024x1024 batch cannot fit.
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(1.2e9 / total)
    warnings: list[str] = []
    capped = Segmenter(ck, "cuda", warn=warnings.append)
    t0 = time.perf_counter()
    got = capped.segment(image)
    print(f"with a 1.2 GB cap: {len(warnings)} warning(s): {warnings}; device now {capped.device}; "
          f"{time.perf_counter() - t0:.2f}s; agrees with uncapped on {(got == labels).mean() * 100:.3f}%")
    torch.cuda.set_per_process_memory_fraction(1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
