"""What making objects costs: the instance step against segmenting, and a slide's memory.

    PYTHONPATH=. python bench/objects_speed.py speed [--side 8192] [--repeats 3]
    PYTHONPATH=. python bench/objects_speed.py memory [--side 32768]    # 1.07 Gpx

``speed``: a model with an instance output (trained for a few hundred steps on a generated nuclei
image of bench/nuclei.py, so its class map has real objects and boundaries) segments an image of
``side`` x ``side`` pixels tiled from generated 16-bit nuclei scenes; in one run, alternating,
``Segmenter.segment`` of the same network without the instance step (the same checkpoint, its
``instances`` metadata removed) and with it (``instances=True``).  Prints the median times and
their ratio (the issue's target: at most 1.2).

``memory``: ``unetseg segment SLIDE --format ome-zarr instances measurements`` on a slide of ``side`` x ``side``
16-bit pixels (an OME-Zarr whose chunks repeat a few generated scenes, hard-linked: seconds to
write), in a child process; prints its peak RSS (the target: under 1.5 GB) and the time of the
class pass and of the instance passes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.nuclei import scene, simulate_annotation


def instance_model(path: Path, steps: int = 400) -> Path:
    """A boundary model trained ``steps`` steps on one generated image (for realistic class maps)."""
    from core.model.checkpoints import save_checkpoint
    from core.training.instance_targets import build_targets
    from core.training.live import LiveConfig, LiveTrainer
    from bench.objects import as_annotation

    image, truth = scene("round", 7)
    ann, _ = simulate_annotation(truth, 7)
    built = build_targets([as_annotation(ann)])
    trainer = LiveTrainer(replace(LiveConfig(), threads=1, device="cpu", snapshot_every=1e9))
    trainer.set_data([(image[..., None], built.targets[0])])
    snaps = []
    trainer.run(snaps.append, should_stop=lambda: trainer._steps >= steps)
    ck = snaps[-1].checkpoint
    return save_checkpoint(path, ck.build(), ck.classes, ck.normalization,
                           extra={"instances": built.spec.to_json(), "inference": {"tta": False, "refine": None}})


def mosaic(side: int) -> np.ndarray:
    tiles = [scene(style, s)[0] for style in ("round", "dense") for s in range(2)]
    n = -(-side // 512)
    rows = [np.concatenate([tiles[(r * 3 + c) % 4] for c in range(n)], 1) for r in range(n)]
    return np.ascontiguousarray(np.concatenate(rows, 0)[:side, :side])


def speed(args) -> None:
    import torch

    from core.model.checkpoints import load_checkpoint
    from core.segment.inference import Segmenter

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    model = instance_model(work / "objects.safetensors")
    ck = load_checkpoint(model)
    with_objects = Segmenter(ck, device="cpu")
    plain = Segmenter(replace(ck, metadata={k: v for k, v in ck.metadata.items() if k != "instances"}), device="cpu")
    image = mosaic(args.side)
    times = {"classes only": [], "classes + objects": []}
    cpu = {"classes only": [], "classes + objects": []}  # process CPU seconds: less swayed by other jobs
    objects = 0
    for _ in range(args.repeats):
        for key, run in (("classes only", lambda: plain.segment(image)),
                         ("classes + objects", lambda: with_objects.segment(image, instances=True))):
            t0, c0 = time.perf_counter(), time.process_time()
            result = run()
            times[key].append(time.perf_counter() - t0)
            cpu[key].append(time.process_time() - c0)
        objects = int(result.instances.max())
    med = {k: float(np.median(v)) for k, v in times.items()}
    cpu_med = {k: float(np.median(v)) for k, v in cpu.items()}
    print(json.dumps({"side": args.side, "threads": args.threads, "objects": objects,
                      **{f"{k} s": round(v, 2) for k, v in med.items()},
                      "ratio": round(med["classes + objects"] / med["classes only"], 3),
                      "cpu ratio": round(cpu_med["classes + objects"] / cpu_med["classes only"], 3),
                      "all": {k: [round(x, 2) for x in v] for k, v in times.items()},
                      "cpu": {k: [round(x, 2) for x in v] for k, v in cpu.items()}}))


def memory(args) -> None:
    import subprocess

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    model = instance_model(work / "objects.safetensors")
    slide = repeated_zarr(work / "slide.ome.zarr", args.side)
    out = work / "out"
    code = ("import resource, sys, time; from core.cli.main import main; t = time.perf_counter(); "
            f"rc = main(['segment', {str(slide)!r}, '-o', {str(out)!r}, '--model', {str(model)!r}, "
            "'--format', 'ome-zarr', 'instances', 'measurements']); "
            "print('rc', rc, 'seconds', round(time.perf_counter() - t, 1), 'peak_mb', "
            "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)")
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    print(run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-2000:])
    print(f"wall {time.perf_counter() - t0:.0f} s for {args.side}x{args.side} ({args.side ** 2 / 1e9:.2f} Gpx)")
    for table in sorted(out.glob("*_measurements.csv")):
        with open(table, encoding="utf-8") as f:
            rows = sum(1 for _ in f) - 1
        print(f"{table.name}: {rows:,} objects measured, {table.stat().st_size / 1e6:.0f} MB")


def repeated_zarr(path: Path, side: int, chunk: int = 512) -> Path:
    """A 1-channel uint16 OME-Zarr of ``side``^2 whose chunks repeat 4 generated scenes (hard links)."""
    import os
    import shutil

    import zarr

    shutil.rmtree(path, ignore_errors=True)
    tiles = [scene(style, s)[0] for style in ("round", "dense") for s in range(2)]
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    array = root.create_array("0", shape=(1, side, side), chunks=(1, chunk, chunk), dtype=np.uint16, fill_value=0,
                              chunk_key_encoding={"name": "v2", "separator": "/"})
    n = -(-side // chunk)
    first: dict[int, Path] = {}
    for ty in range(n):
        for tx in range(n):
            i = (ty * 3 + tx) % 4
            target = path / "0" / "0" / str(ty) / str(tx)
            if i in first and ty < n - 1 and tx < n - 1:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(first[i], target)
                continue
            array[0, ty * chunk:(ty + 1) * chunk, tx * chunk:(tx + 1) * chunk] = \
                tiles[i][: min(chunk, side - ty * chunk), : min(chunk, side - tx * chunk)]
            if ty < n - 1 and tx < n - 1:
                first.setdefault(i, target)
    root.attrs["multiscales"] = [{"version": "0.4", "axes": [{"name": "c", "type": "channel"},
                                                               {"name": "y", "type": "space"},
                                                               {"name": "x", "type": "space"}],
                                  "datasets": [{"path": "0", "coordinateTransformations": [
                                      {"type": "scale", "scale": [1.0, 1.0, 1.0]}]}]}]
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("speed", "memory"))
    parser.add_argument("--side", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", default="/tmp/unetseg-objects-bench")
    args = parser.parse_args(argv)
    if args.what == "speed":
        args.side = args.side or 8192
        speed(args)
    else:
        args.side = args.side or 32768
        memory(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
