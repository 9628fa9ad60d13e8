"""Images of any size: streaming segmentation's memory and speed against the in-memory path, Dask, resume.

    python bench/large_image.py --sizes 8192,32768 [--memory-side 4096] [--tmp DIR] [--skip-dask] [--skip-resume]

Generates a pyramidal tiled TIFF per size from 16 varied synthetic scenes (1024x1024 tiles,
zlib), then, each in a fresh process so peak RSS (``wait4``) is that run's own:

* stream: ``segment_to_store`` of UNetSmall (no TTA, no refinement) into an OME-Zarr store;
* memory: the same model's ``Segmenter.segment`` on a ``--memory-side`` image read whole;
* dask: the stream run on ``--dask local:2`` against one process on the same cores (identical store?);
* resume: the CLI killed at about 50% of its chunks, then ``--resume``: chunks redone, time lost.

Prints one JSON line per measurement and the ratios at the end.  Figures: bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TILE = 1024
SCENES = 16
OPTS = dict(tta=False, refine=False)


def make_tiff(path: Path, side: int) -> Path:
    """side x side, tiles of 16 scenes in a varied pattern, levels down to <= 1024 (2x2 means)."""
    import tifffile

    from core.training.synthetic import generate_scene

    if path.exists():
        return path
    scenes = [generate_scene(100 + s, TILE, TILE)[0] for s in range(SCENES)]
    pyramid = [scenes]
    while TILE >> len(pyramid) >= 16 and side >> len(pyramid) >= TILE:
        prev = pyramid[-1]
        pyramid.append([(p.reshape(p.shape[0] // 2, 2, p.shape[1] // 2, 2, 3).mean((1, 3))).astype(np.uint8)
                        for p in prev])
    levels = len(pyramid)
    n = side // TILE

    def seed(ty, tx):
        return (ty * 7 + tx * 3 + (ty * tx) % 5) % SCENES

    def level_tiles(k):
        f = 1 << k
        for ty in range(n // f):
            for tx in range(n // f):
                rows = [np.concatenate([pyramid[k][seed(ty * f + i, tx * f + j)] for j in range(f)], axis=1)
                        for i in range(f)]
                yield np.concatenate(rows, axis=0)

    tmp = path.with_suffix(".partial.tif")
    with tifffile.TiffWriter(tmp, bigtiff=True, ome=True) as tw:
        for k in range(levels):
            s = side >> k
            options = dict(shape=(s, s, 3), dtype=np.uint8, tile=(TILE, TILE), compression="zlib", photometric="rgb")
            if k == 0:
                tw.write(level_tiles(0), subifds=levels - 1, metadata={"axes": "YXS"}, **options)
            else:
                tw.write(level_tiles(k), subfiletype=1, metadata=None, **options)
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------- workers (fresh processes)


def worker(mode: str, path: str, out: str) -> dict:
    import torch

    from core.segment.inference import Segmenter

    seg = Segmenter.load("small", device="cpu")
    if mode == "memory":
        import tifffile

        image = tifffile.imread(path, level=0)
        seg.segment(image[:512, :512], **OPTS)  # warm-up, as the stream run gets on its first tile
        t = time.perf_counter()
        labels = seg.segment(image, **OPTS)
        seconds = time.perf_counter() - t
        return {"mode": mode, "pixels": labels.size, "seconds": seconds, "threads": torch.get_num_threads()}
    from core.io.label_store import LabelStore
    from core.io.sources import open_source
    from core.segment.streaming import StreamPlan, segment_to_store

    with open_source(path) as src:
        plan = StreamPlan.make(seg, src.height, src.width, None, **OPTS)
        store = LabelStore.create(out, src.height, src.width, plan.chunks, plan.run_record(seg, src))
        seg.segment(np.zeros((512, 512, 3), np.uint8), **OPTS)  # same warm-up as memory
        t = time.perf_counter()
        if mode == "dask":
            from core.segment.cluster import connect, segment_on_cluster

            t0 = time.perf_counter()
            with connect("local:2") as client:
                start = time.perf_counter() - t0
                client.run(lambda: 0)
                t = time.perf_counter()
                segment_on_cluster(client, "small", "cpu", Path(path), store, plan)
                seconds = time.perf_counter() - t
            return {"mode": mode, "pixels": src.width * src.height, "seconds": seconds, "cluster_start_s": start}
        segment_to_store(seg, src, store, plan)
        seconds = time.perf_counter() - t
    return {"mode": mode, "pixels": src.width * src.height, "seconds": seconds, "threads": torch.get_num_threads()}


def run_worker(mode: str, path: Path, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.Popen([sys.executable, __file__, "--worker", mode, str(path), str(out)], stdout=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    result = json.loads(proc.stdout.read().decode().strip().splitlines()[-1])
    result.update(peak_rss_mb=round(usage.ru_maxrss / 1024), file=path.name,
                  mpx_per_s=round(result["pixels"] / 1e6 / result["seconds"], 3))
    print(json.dumps(result), flush=True)
    return result


def resume_check(path: Path, out_dir: Path) -> dict:
    """Kill the CLI at about half its chunks, resume, and count the chunks and time redone."""
    from core.io.label_store import DONE_DIR

    cmd = [sys.executable, "-m", "core", "segment", str(path), "-o", str(out_dir), "--format", "ome-zarr",
           "--model", "small", "--no-tta", "--no-refine", "--chunk", "1024"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    shutil.rmtree(out_dir, ignore_errors=True)
    store = out_dir / (path.name.split(".")[0] + ".ome.zarr")
    t = time.perf_counter()
    full = subprocess.run(cmd, env=env, capture_output=True)
    full_s = time.perf_counter() - t
    assert full.returncode == 0, full.stderr[-500:]
    reference = _read(store)
    from core.io.label_store import LabelStore

    total = len(LabelStore.open(store).blocks())
    shutil.rmtree(out_dir)
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
    while True:
        time.sleep(0.05)
        done = len(os.listdir(store / DONE_DIR)) if (store / DONE_DIR).exists() else 0
        if done >= total // 2:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            break
    first_s = time.perf_counter() - t
    at_kill = len(os.listdir(store / DONE_DIR))
    t = time.perf_counter()
    subprocess.run(cmd + ["--resume"], env=env, check=True, capture_output=True)
    second_s = time.perf_counter() - t
    result = {"mode": "resume", "chunks": total, "done_at_kill": at_kill, "redone_by_resume": total - at_kill,
              "full_s": round(full_s, 1), "killed_plus_resumed_s": round(first_s + second_s, 1),
              "identical": bool(np.array_equal(_read(store), reference))}
    print(json.dumps(result), flush=True)
    return result


def _read(store: Path) -> np.ndarray:
    import zarr

    return np.asarray(zarr.open_group(str(store), mode="r")["0"][:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="8192", help="comma-separated sides of the streamed images")
    p.add_argument("--memory-side", type=int, default=4096)
    p.add_argument("--tmp", default="/tmp/unetseg-bench-large")
    p.add_argument("--skip-dask", action="store_true")
    p.add_argument("--skip-resume", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the generated TIFFs")
    p.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    tmp = Path(args.tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    small = make_tiff(tmp / f"scenes_{args.memory_side}.ome.tif", args.memory_side)
    memory = run_worker("memory", small, tmp / "m.ome.zarr")
    stream_small = run_worker("stream", small, tmp / "s.ome.zarr")
    streams = []
    for side in (int(s) for s in args.sizes.split(",")):
        path = make_tiff(tmp / f"scenes_{side}.ome.tif", side)
        streams.append(run_worker("stream", path, tmp / f"s{side}.ome.zarr"))
    report = {"stream/memory throughput at the same size": round(stream_small["mpx_per_s"] / memory["mpx_per_s"], 3)}
    for s in streams:
        report[f"stream {s['file']}: Mpx/s vs memory {args.memory_side}"] = round(s["mpx_per_s"] / memory["mpx_per_s"], 3)
        report[f"stream {s['file']}: peak RSS MB"] = s["peak_rss_mb"]
    rss = [stream_small["peak_rss_mb"]] + [s["peak_rss_mb"] for s in streams]
    report["peak RSS spread across sizes"] = round(max(rss) / min(rss) - 1, 3)
    if not args.skip_dask:
        dask = run_worker("dask", small, tmp / "d.ome.zarr")
        same = np.array_equal(_read(tmp / "d.ome.zarr"), _read(tmp / "s.ome.zarr"))
        report["dask local:2 time / one process (excluding cluster start)"] = round(dask["seconds"] / stream_small["seconds"], 3)
        report["dask local:2 identical to one process"] = bool(same)
    if not args.skip_resume:
        report["resume"] = resume_check(small, tmp / "resume")
    print(json.dumps(report, indent=1))
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
