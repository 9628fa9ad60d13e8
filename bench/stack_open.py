"""Opening a 2 GB stack lazily and reading its next plane: the source side of browsing a stack.

    PYTHONPATH=. python bench/stack_open.py [--formats ome-zarr ome-tiff] [--planes 20] [--side 5120]

Builds a Z x C x Y x X stack of 20 planes x 2 channels x 5120 x 5120 uint16 (2.1 GB of pixels) with a
pyramid (each level half the last, Z kept), cheaply: an OME-Zarr whose chunk files are written once
per distinct tile and hard-linked everywhere else, and a tiled, zstd-compressed pyramidal OME-TIFF
whose tiles repeat.  Then, in one process, per format:

* **open**: ``open_source`` (headers, levels, channel names, and the 8-bit view's stretch measured
  on 3 planes): seconds, against the 2 s target;
* **next plane, cold**: the file's pages dropped from the OS cache first (``posix_fadvise
  DONTNEED`` on its files only), then plane z+1 as the app's view needs it: the whole plane at
  the coarsest level at least 1080 pixels high ("fit" on a 1920 x 1080 screen), and a 1920 x 1080
  region at full resolution ("1:1"), as 8-bit RGB (``read``, what is drawn); the median of three
  successive planes; against the 300 ms target;
* **next plane, warm**: the same reads again (the OS cache warm; nothing is cached in our layer,
  so this is the decode cost alone; the app's own plane cache is the 100 ms target's);
* **peer**: the same regions through tifffile's / zarr's own array (``zarr.open(...)[z, :, y, x]``),
  raw, so the ratio is our layer's overhead (axes, conversion to 8-bit RGB);
* **RSS**: the process's resident memory after opening and after all reads, against the stack's size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TILE = 512


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tiles(channels: int) -> list[np.ndarray]:
    from tests.channel_images import blobs

    return [np.moveaxis(blobs(TILE, TILE, channels, seed=s), 2, 0) for s in range(4)]


def level_sides(side: int) -> list[int]:
    sides = [side]
    while sides[-1] > 1024:
        sides.append(-(-sides[-1] // 2))
    return sides


def build_zarr(path: Path, planes: int, channels: int, side: int) -> Path:
    """OME-Zarr Z x C x Y x X; chunks (1, 1, 512, 512); distinct chunk files written once, then linked."""
    import zarr

    distinct = tiles(channels)
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    datasets = []
    for k, s in enumerate(level_sides(side)):
        array = root.create_array(str(k), shape=(planes, channels, s, s), chunks=(1, 1, TILE, TILE),
                                  dtype=np.uint16, fill_value=0, chunk_key_encoding={"name": "v2", "separator": "/"})
        n = -(-s // TILE)
        written: dict[tuple, Path] = {}
        for z in range(planes):
            for c in range(channels):
                for ty in range(n):
                    for tx in range(n):
                        i = (ty * 3 + tx + z) % 4
                        hh, ww = min(TILE, s - ty * TILE), min(TILE, s - tx * TILE)
                        target = path / str(k) / str(z) / str(c) / str(ty) / str(tx)
                        key = (i, c, hh, ww)
                        if key in written:
                            target.parent.mkdir(parents=True, exist_ok=True)
                            os.link(written[key], target)
                            continue
                        array[z, c, ty * TILE:ty * TILE + hh, tx * TILE:tx * TILE + ww] = distinct[i][c, :hh, :ww]
                        written[key] = target
        datasets.append({"path": str(k), "coordinateTransformations": [
            {"type": "scale", "scale": [2.0, 1.0, 0.3 * 2 ** k, 0.3 * 2 ** k]}]})
    root.attrs["multiscales"] = [{"version": "0.4", "datasets": datasets, "axes": [
        {"name": "z", "type": "space", "unit": "micrometer"}, {"name": "c", "type": "channel"},
        {"name": "y", "type": "space", "unit": "micrometer"}, {"name": "x", "type": "space", "unit": "micrometer"}]}]
    root.attrs["omero"] = {"channels": [{"label": f"Ch{c + 1}"} for c in range(channels)]}
    return path


def build_tiff(path: Path, planes: int, channels: int, side: int) -> Path:
    """Tiled (512), zstd, pyramidal (SubIFDs) OME-TIFF Z x C x Y x X whose tiles repeat."""
    import tifffile

    distinct = tiles(channels)

    def stream(s: int):
        n = -(-s // TILE)
        for z in range(planes):
            for c in range(channels):
                for ty in range(n):
                    for tx in range(n):
                        yield distinct[(ty * 3 + tx + z) % 4][c]

    sides = level_sides(side)
    options = dict(tile=(TILE, TILE), compression="zstd", photometric="minisblack", dtype=np.uint16, maxworkers=2)
    with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tw:
        for k, s in enumerate(sides):
            shape = (planes, channels, s, s)
            if k == 0:
                tw.write(stream(s), shape=shape, subifds=len(sides) - 1, metadata={
                    "axes": "ZCYX", "PhysicalSizeZ": 2.0, "PhysicalSizeX": 0.3, "PhysicalSizeY": 0.3,
                    "Channel": {"Name": [f"Ch{c + 1}" for c in range(channels)]}}, **options)
            else:
                tw.write(stream(s), shape=shape, subfiletype=1, metadata=None, **options)
    return path


def drop_cache(path: Path) -> None:
    """Evict this stack's files (only) from the OS page cache, so the next read is cold."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    seen = set()
    for f in files:
        inode = f.stat().st_ino
        if inode in seen:
            continue
        seen.add(inode)
        fd = os.open(f, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def peer_reader(path: Path):
    """Raw regions straight from tifffile's / zarr's array: (level, z, y0, y1, x0, x1) -> C x h x w."""
    import zarr

    if path.suffix == ".zarr":
        root = zarr.open_group(str(path), mode="r")
        return lambda k, z, y0, y1, x0, x1: np.asarray(root[str(k)][z, :, y0:y1, x0:x1]), lambda: None
    import tifffile

    tif = tifffile.TiffFile(path)
    store = tif.series[0].aszarr()
    root = zarr.open(store, mode="r")

    def read(k, z, y0, y1, x0, x1):
        return np.asarray(root[str(k)][z, :, y0:y1, x0:x1])

    def close():
        store.close()
        tif.close()

    return read, close


def measure(path: Path, planes: int) -> dict:
    from core.io.sources import open_source

    drop_cache(path)
    base = rss_mb()
    t0 = time.perf_counter()
    source = open_source(path)
    opened = time.perf_counter() - t0
    after_open = rss_mb() - base
    # "fit": the whole plane at the coarsest level still at least 1080 px high (a 1920 x 1080 screen)
    fit = max([k for k, (w, h) in enumerate(source.levels) if min(w, h) >= 1080] or [0])
    fw, fh = source.levels[fit]
    y0, x0 = source.height // 3, source.width // 3
    views = {"fit": (fit, 0, fh, 0, fw),
             "1:1": (0, y0, min(source.height, y0 + 1080), x0, min(source.width, x0 + 1920))}
    row = {"format": path.name, "pixels_gb": round(source.width * source.height * source.channels * planes * 2 / 1e9, 2),
           "planes": list(source.planes), "levels": len(source.levels), "fit_level": f"{fw}x{fh}",
           "open_s": round(opened, 3), "rss_after_open_mb": round(after_open, 1)}
    peer, close = peer_reader(path)
    first = planes // 2

    def timed(read, plane: int, cold: bool) -> float:
        if cold:
            drop_cache(path)
        t0 = time.perf_counter()
        read(plane)
        return (time.perf_counter() - t0) * 1000

    for name, (k, a, b, c, d) in views.items():
        ours = lambda z: source.read(a, b, c, d, level=k, plane=(z,))  # noqa: E731 - what the view draws
        raw = lambda z: peer(k, z, a, b, c, d)  # noqa: E731
        cold, warm, peer_cold, peer_warm = [], [], [], []
        for step in range(1, 4):  # the next plane, three times: medians
            z = (first + step) % planes
            cold.append(timed(ours, z, True))
            warm.append(timed(ours, z, False))
            peer_cold.append(timed(raw, z, True))
            peer_warm.append(timed(raw, z, False))
        for key, values in (("cold", cold), ("warm", warm), ("peer_cold", peer_cold), ("peer_warm", peer_warm)):
            row[f"{name}_{key}_ms"] = round(float(np.median(values)), 1)
        row[f"{name}_ours_over_peer_warm"] = round(row[f"{name}_warm_ms"] / max(0.1, row[f"{name}_peer_warm_ms"]), 2)
    close()
    row["rss_after_reads_mb"] = round(rss_mb() - base, 1)
    row["rss_share_of_stack"] = round(row["rss_after_reads_mb"] / (row["pixels_gb"] * 1000), 4)
    row["open_vs_2s_target"] = round(opened / 2.0, 3)
    row["fit_cold_vs_300ms_target"] = round(row["fit_cold_ms"] / 300, 3)
    source.close()
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formats", nargs="+", default=["ome-zarr", "ome-tiff"], choices=["ome-zarr", "ome-tiff"])
    parser.add_argument("--planes", type=int, default=20)
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--side", type=int, default=5120)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="stack_open_"))
    try:
        for fmt in args.formats:
            t0 = time.perf_counter()
            path = (build_zarr(folder / "stack.ome.zarr", args.planes, args.channels, args.side) if fmt == "ome-zarr"
                    else build_tiff(folder / "stack.ome.tif", args.planes, args.channels, args.side))
            files = {p.stat().st_ino: p.stat().st_size for p in ([path] if path.is_file() else path.rglob("*"))
                     if p.is_file()}  # hard-linked chunks once
            size = sum(files.values())
            built = time.perf_counter() - t0
            row = measure(path, args.planes)
            row.update(build_s=round(built, 1), on_disk_mb=round(size / 1e6, 1), peak_rss_mb=round(peak_mb(), 1))
            print(json.dumps(row), flush=True)
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
