"""What objects cost: measuring a 2048^2 mask with ~800 objects, and the memory of a slide's
instances and measurements streamed from chunked labels.

    python bench/objects_measure.py [--side 32768] [--quick]

Part 1 (one process, ratios from one run): a 2048 x 2048 instance image of ~800 generated
ellipses (some touching), 2 channels of uint16 pixels and a class mask.  Times
``core.objects.measure.measure`` (the whole image as one block), the same measured block by block
from a chunked zarr array (512^2 chunks, so objects cross chunk borders), and scikit-image's
``regionprops_table`` with the same properties (the peer the table is built from); checks the
streamed table equals the in-memory one.

Part 2 (a fresh subprocess per step, its peak RSS: VmHWM, which unlike ru_maxrss does not inherit
the parent's high-water mark across exec): a side x side label image that
is never in memory: each 1024^2 tile repeats one pattern of ellipses with its own ids, the tile grid
shifted by half a tile against the 2048^2 chunks so objects cross chunk borders; raw pixels (2 x
uint16) and the class mask are made the same way, on the fly, region by region.
  * components: ``chunked_component_labels`` of the class mask into a zarr store on disk
    (the instances ``unetseg segment --format instances`` writes until a model gives its own);
  * measurements: ``write_measurements`` of the instance labels streamed into a CSV.
Both at two sizes (side / 2 and side), so "flat" reads as the ratio of the two peaks.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def ellipses(h: int, w: int, n: int, seed: int, touching: bool = True) -> np.ndarray:
    """~n ellipses with ids 1..k; with ``touching`` some share an edge (they may not overlap)."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((h, w), np.uint32)
    k = 0
    for _ in range(n * 6):
        if k == n:
            break
        cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
        ry, rx, a = rng.uniform(6, 18), rng.uniform(5, 14), rng.uniform(0, np.pi)
        y0, y1, x0, x1 = max(0, cy - 19), min(h, cy + 20), max(0, cx - 19), min(w, cx + 20)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        u = (yy - cy) * np.cos(a) + (xx - cx) * np.sin(a)
        v = -(yy - cy) * np.sin(a) + (xx - cx) * np.cos(a)
        inside = (u / ry) ** 2 + (v / rx) ** 2 <= 1
        box = labels[y0:y1, x0:x1]
        if inside.any() and not box[inside].any():
            if not touching and (box != 0).any():
                continue
            k += 1
            box[inside] = k
    return labels


class Repeated:
    """A huge 2-D (or H x W x C) array made of one repeated tile, computed region by region: tile
    (ty, tx)'s non-zero ids get + (ty * tiles_per_row + tx) * ids_per_tile, so every object has its
    own id; the grid is shifted by ``shift`` pixels."""

    def __init__(self, tile: np.ndarray, side: int, chunks: int, shift: int, ids: bool):
        self.tile, self.side, self.shift, self.ids = tile, side, shift, ids
        self.shape = (side, side) + tile.shape[2:]
        self.dtype = tile.dtype
        self.chunks = (chunks, chunks) + tile.shape[2:]
        self.top = int(tile.max()) if ids else 0

    def __getitem__(self, key):
        ys, xs = key[0], key[1]
        y0, y1 = ys.start or 0, min(self.side, ys.stop)
        x0, x1 = xs.start or 0, min(self.side, xs.stop)
        t = self.tile.shape[0]
        out = np.zeros((y1 - y0, x1 - x0) + self.tile.shape[2:], self.tile.dtype)
        per_row = -(-(self.side + self.shift) // t)
        for ty in range((y0 + self.shift) // t, (y1 - 1 + self.shift) // t + 1):
            for tx in range((x0 + self.shift) // t, (x1 - 1 + self.shift) // t + 1):
                ty0, tx0 = ty * t - self.shift, tx * t - self.shift  # the tile's top-left in the image
                a0, a1, b0, b1 = max(y0, ty0), min(y1, ty0 + t), max(x0, tx0), min(x1, tx0 + t)
                part = self.tile[a0 - ty0:a1 - ty0, b0 - tx0:b1 - tx0]
                if self.ids:
                    part = np.where(part > 0, part + np.uint32((ty * per_row + tx) * self.top), 0)
                out[a0 - y0:a1 - y0, b0 - x0:b1 - x0] = part
        return out


def part1(side: int = 2048, objects: int = 800) -> None:
    import zarr
    from skimage.measure import regionprops_table

    from core.objects.measure import Columns, measure

    labels = ellipses(side, side, objects, seed=0)
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 4000, (side, side, 2)).astype(np.uint16)
    classes = np.where(labels % 3 == 0, 2, 1).astype(np.uint8) * (labels > 0)
    columns = Columns(("DAPI", "GFP"))
    n = len(np.unique(labels)) - 1
    measure(labels[:64, :64], pixels[:64, :64], classes[:64, :64], columns)  # imports out of the timing
    with tempfile.TemporaryDirectory() as tmp:
        chunked = zarr.open_array(f"{tmp}/l.zarr", mode="w", shape=labels.shape, chunks=(512, 512), dtype="uint32")
        chunked[:] = labels
        t0 = time.perf_counter()
        ours = measure(labels, pixels, classes, columns)
        t1 = time.perf_counter()
        streamed = measure(chunked, pixels, classes, columns, block=512)
        t2 = time.perf_counter()
        regionprops_table(labels, pixels, properties=(
            "label", "area", "bbox", "centroid_local", "perimeter", "equivalent_diameter_area", "axis_major_length",
            "axis_minor_length", "orientation", "eccentricity", "solidity", "intensity_mean", "intensity_std",
            "intensity_min", "intensity_max"))
        t3 = time.perf_counter()
    same = all(np.array_equal(ours[k], streamed[k]) for k in ours)
    print(f"part 1: {side}x{side}, {n} objects, 2 x uint16 channels, {len(ours)} columns")
    print(f"  measure (whole image):      {t1 - t0:6.2f} s  {1000 * (t1 - t0) / n:5.2f} ms/object")
    print(f"  measure (512^2 chunks):     {t2 - t1:6.2f} s  ratio to whole {((t2 - t1) / (t1 - t0)):.2f}; "
          f"identical table: {same}")
    print(f"  skimage regionprops_table:  {t3 - t2:6.2f} s  ratio ours / skimage {(t1 - t0) / (t3 - t2):.2f}")


CHILD = r"""
import json, resource, sys, time, tempfile, shutil
import numpy as np

def peak_mb():
    try:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[1] + "/bench")
from objects_measure import Repeated, ellipses
step, side = sys.argv[2], int(sys.argv[3])
tile = ellipses(1024, 1024, 40, seed=5, touching=False)
labels = Repeated(tile, side, 2048, 512, ids=True)
rng = np.random.default_rng(2)
raw = Repeated(rng.integers(0, 4000, (1024, 1024, 2)).astype(np.uint16), side, 2048, 512, ids=False)
cls = Repeated(np.where(tile % 3 == 0, 2, 1).astype(np.uint8) * (tile > 0), side, 2048, 512, ids=False)
import skimage.measure, scipy.ndimage, zarr  # the imports, in "base"
base = peak_mb()
t0 = time.perf_counter()
tmp = tempfile.mkdtemp(dir=sys.argv[4])
try:
    if step == "components":
        import zarr
        from core.objects.components import chunked_component_labels
        work = zarr.open_array(tmp + "/w.zarr", mode="w", shape=(side, side), chunks=(2048, 2048), dtype="uint32")
        made = []
        def make(count):
            made.append(zarr.open_array(tmp + "/o.zarr", mode="w", shape=(side, side), chunks=(2048, 2048),
                                        dtype="uint16" if count < 65535 else "uint32"))
            return made[0]
        count = chunked_component_labels(cls, work, block=2048, make_out=make)
    else:
        import numpy
        from core.objects.measure import Columns, write_measurements
        count = write_measurements(tmp + "/m.csv", labels, raw, cls, Columns(("a", "b")))
finally:
    shutil.rmtree(tmp, ignore_errors=True)
seconds = time.perf_counter() - t0
print(json.dumps({"base_mb": base, "peak_mb": peak_mb(), "seconds": seconds, "objects": int(count)}))
"""


def part2(side: int) -> None:
    print(f"part 2: peak RSS of a fresh process, labels {side}^2 never in memory (chunks 2048^2, tiles 1024^2 "
          "shifted by 512)")
    results = {}
    for step in ("components", "measurements"):
        for s in (side // 2, side):
            with tempfile.TemporaryDirectory() as tmp:
                out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), step, str(s), tmp],
                                     capture_output=True, text=True)
            if out.returncode:
                print(out.stderr[-3000:])
                raise SystemExit(1)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            results[(step, s)] = r
            print(f"  {step:12s} {s:6d}^2 = {s * s / 1e9:5.2f} Gpx: peak {r['peak_mb']:6.0f} MB "
                  f"(imports {r['base_mb']:4.0f} MB), {r['objects']} objects, {r['seconds']:6.1f} s")
        small, large = results[(step, side // 2)], results[(step, side)]
        print(f"  {step}: 4x the pixels -> peak x{large['peak_mb'] / small['peak_mb']:.2f}, "
              f"time x{large['seconds'] / small['seconds']:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", type=int, default=32768, help="the large chunked mask's side (default 1 Gpx)")
    parser.add_argument("--quick", action="store_true", help="8192^2 in part 2")
    args = parser.parse_args()
    part1()
    part2(8192 if args.quick else args.side)
    return 0


if __name__ == "__main__":
    sys.exit(main())
