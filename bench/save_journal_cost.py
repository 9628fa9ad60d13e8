"""What the save journal costs: an in-place save of N changed chunks (journal written and fsynced,
committed, applied, fsynced) against writing the same chunks straight into the store with zarr,
as saves did before the journal (no fsync, a kill mid-way left a mix of old and new).

    PYTHONPATH=. python bench/save_journal_cost.py [changed_chunks]

Prints both times and their ratio, measured in one run (median of 5).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from core.document.chunked_labels import ChunkedLabels


def main(changed: int = 64) -> None:
    rng = np.random.default_rng(0)
    side, chunk = 8192, 512
    folder = Path(tempfile.mkdtemp(prefix="journal-bench-"))
    path = folder / "m.ome.zarr"
    base = ChunkedLabels.create(side, side, chunk=chunk)
    for y in range(0, side, 2048):  # a mask with labels everywhere: every chunk stored
        base[y:y + 2048, :] = rng.integers(0, 4, (2048, side), dtype=np.uint8) // 3
    base.save_to(path)
    base.close()
    grid = side // chunk
    keys = [(int(k) // grid, int(k) % grid) for k in rng.choice(grid * grid, changed, replace=False)]
    journaled, direct = [], []
    for run in range(5):
        blocks = {k: rng.integers(0, 6, (chunk, chunk), dtype=np.uint8) for k in keys}
        c = ChunkedLabels.open(path)
        for (by, bx), block in blocks.items():
            c[by * chunk:(by + 1) * chunk, bx * chunk:(bx + 1) * chunk] = block
        t = time.perf_counter()
        c.save_to(path)
        journaled.append(time.perf_counter() - t)
        c.close()
        import zarr

        group = zarr.open_group(str(path), mode="r+", zarr_format=2)
        level0, level1 = group["0"], group["1"]
        t = time.perf_counter()
        for (by, bx), block in blocks.items():  # what the save wrote before: each level's changed chunks
            level0[by * chunk:(by + 1) * chunk, bx * chunk:(bx + 1) * chunk] = block
            level1[by * chunk // 2:(by + 1) * chunk // 2, bx * chunk // 2:(bx + 1) * chunk // 2] = block[::2, ::2]
        direct.append(time.perf_counter() - t)
    j, d = statistics.median(journaled), statistics.median(direct)
    print(f"{changed} changed chunks of {chunk}x{chunk} in a {side}x{side} mask (median of 5)")
    print(f"journaled in-place save: {j * 1000:.0f} ms; chunks written straight by zarr: {d * 1000:.0f} ms; "
          f"ratio {j / d:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 64)
