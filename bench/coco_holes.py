"""COCO export of objects with holes on a large canvas: the image-sized canvas per object (before
issue 20) against the object's box (``core.io.formats.coco_objects.rle_counts``), measured in one run.

    PYTHONPATH=. python bench/coco_holes.py [--side 8000] [--objects 40]

Prints the time and the traced peak memory of each way for the same objects, their ratio, and
checks that both give the same RLE strings.  Synthetic rings (not skimage.data).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np


def main() -> None:
    from pycocotools import mask as coco_mask

    from core.io.formats.coco_objects import rle_counts
    from core.io.objects import ObjectOptions, mask_objects, rasterize

    ap = argparse.ArgumentParser()
    ap.add_argument("--side", type=int, default=8000)
    ap.add_argument("--objects", type=int, default=40)
    args = ap.parse_args()
    side = args.side
    labels = np.zeros((side, side), np.uint8)
    rng = np.random.default_rng(0)
    for _ in range(args.objects):  # 40 x 40 rings with a 10 x 10 hole
        y, x = rng.integers(0, side - 40, 2)
        labels[y:y + 40, x:x + 40] = 1
        labels[y + 15:y + 25, x + 15:x + 25] = 0
    objs = [o for o in mask_objects(labels, ObjectOptions(tolerance=0)) if o.has_holes]
    shape = labels.shape

    def canvas():
        return [coco_mask.encode(np.asfortranarray(rasterize(o.exact, shape)))["counts"] for o in objs]

    def box():
        return [coco_mask.frPyObjects({"size": list(shape), "counts": rle_counts(o, shape)}, *shape)["counts"]
                for o in objs]

    results = {}
    for name, fn in (("image-sized canvas", canvas), ("object's box", box)):
        tracemalloc.start()
        t0 = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        results[name] = (seconds, peak, out)
        print(f"{name:>20}: {seconds:8.3f} s  peak {peak / 2**20:8.2f} MiB  ({len(objs)} objects with holes, "
              f"{side}x{side} canvas)")
    (t_a, m_a, a), (t_b, m_b, b) = results.values()
    assert a == b, "the two ways disagree"
    print(f"same RLE strings; box/canvas time {t_b / t_a:.4f}, peak memory {m_b / m_a:.4f}")


if __name__ == "__main__":
    main()
