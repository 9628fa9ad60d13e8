"""Strokes on a whole slide, the core: brush cost, training items and training memory on a 100k² slide.

    PYTHONPATH=. python bench/slide_strokes.py [--side 100000] [--strokes 30] [--seconds 20] [--level 2]

A generated side x side pyramidal OME-TIFF (tests/large_images.py's ``write_flat_slide``: repeated
pre-compressed tiles, about 5 MB; never scikit-image's samples) and a simulated user's strokes,
``--strokes`` of them (3 classes in turn, 300 px long, brush 20), at random places far apart.
Measured in one run:

* the brush: time of each ``stroke_to`` on the slide's chunked StrokeDocument
  (``StrokeDocument.blank_chunked``) and on an in-memory 8192² StrokeDocument, the same strokes
  (ratio slide / in memory; the app's target for the whole brush with repaint: under 16 ms);
* training items (``core.training.slide_strokes.SlideStrokes``) at levels 0-3: items, strokes
  chunks decoded, pixels read from the slide, the first call and a call after one more stroke
  (items read before are kept), and the largest Python allocation (tracemalloc);
* ``--seconds`` of LiveTrainer (the defaults of LiveConfig) on the items at ``--level``, and the
  process's peak RSS (the app's target, window and slide view included: under 1.5 GB).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.classes import default_classes  # noqa: E402
from core.document.strokes import StrokeDocument  # noqa: E402
from core.io.sources import open_source  # noqa: E402
from tests.large_images import write_flat_slide  # noqa: E402


def strokes(side: int, count: int, seed: int = 0) -> list[tuple[int, list[tuple[float, float]]]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        x, y = rng.uniform(1000, side - 1000, 2)
        angle = rng.uniform(0, np.pi)
        points = [(x + t * np.cos(angle), y + t * np.sin(angle)) for t in np.linspace(0, 300, 16)]
        out.append((i % 3, points))
    return out


def paint(doc: StrokeDocument, plan, within: int | None = None) -> list[float]:
    """Each stroke_to's milliseconds; ``within``: each stroke moved (not scaled) into a side of that size."""
    times = []
    doc.set_brush_size(20)
    for cls, points in plan:
        dx = dy = 0.0
        if within is not None:
            dx, dy = 1000 + points[0][0] % (within - 2000) - points[0][0], 1000 + points[0][1] % (within - 2000) - points[0][1]
        doc.set_active_class(cls)
        doc.begin_stroke("brush")
        for x, y in points:
            t0 = time.perf_counter()
            doc.stroke_to(x + dx, y + dy)
            times.append(1000 * (time.perf_counter() - t0))
        doc.end_stroke()
    return times


def describe(times: list[float]) -> str:
    times = sorted(times)
    return (f"median {statistics.median(times):.2f} ms, p95 {times[int(0.95 * (len(times) - 1))]:.2f} ms, "
            f"worst {times[-1]:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=100_000)
    parser.add_argument("--strokes", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--level", type=int, default=2)
    args = parser.parse_args()
    classes = default_classes(3)
    plan = strokes(args.side, args.strokes)
    with tempfile.TemporaryDirectory(prefix="bench-slide-strokes-") as tmp:
        t0 = time.perf_counter()
        path = write_flat_slide(Path(tmp) / "slide.ome.tif", args.side)
        print(f"slide {args.side}x{args.side}: written in {time.perf_counter() - t0:.1f} s, "
              f"{path.stat().st_size / 2**20:.1f} MB")

        doc = StrokeDocument.blank_chunked((args.side, args.side), classes)
        slide_ms = paint(doc, plan)
        small = StrokeDocument.blank((8192, 8192), classes)
        small_ms = paint(small, plan, within=8192)
        print(f"brush on the slide's strokes: {describe(slide_ms)}")
        print(f"brush on an 8192² in-memory strokes image: {describe(small_ms)}")
        print(f"ratio slide / in memory: median {statistics.median(slide_ms) / statistics.median(small_ms):.2f}, "
              f"worst {max(slide_ms) / max(small_ms):.2f}")
        print(f"annotated pixels {doc.annotated_pixels:,} ({doc.annotated_pixels / args.side ** 2:.6%}), "
              f"strokes chunks changed {len(doc.labels.changed_chunks())}")
        del small

        from core.training.slide_strokes import SlideStrokes

        with open_source(path) as src:
            print("level | items | strokes chunks decoded | slide Mpx read | first call | after one more stroke "
                  "| largest allocation")
            chosen = None
            for level in range(4):
                reader = SlideStrokes(src, doc.labels, level)
                tracemalloc.start()
                t0 = time.perf_counter()
                found = reader.items()
                first = time.perf_counter() - t0
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                extra = StrokeDocument(doc.labels, classes)
                paint(extra, [(1, [(500 + 40 * level, 500), (600 + 40 * level, 500)])])
                t0 = time.perf_counter()
                reader.items()
                again = time.perf_counter() - t0
                read = sum((y1 - y0) * (x1 - x0) for y0, y1, x0, x1 in found.regions)
                print(f"{level} | {len(found.items)} | {found.chunks_decoded} | {read / 1e6:.2f} | "
                      f"{first:.2f} s | {again:.2f} s | {peak / 2**20:.1f} MB")
                if level == args.level:
                    chosen = reader.items()
            if args.seconds > 0:
                from core.training.live import LiveConfig, LiveTrainer

                trainer = LiveTrainer(LiveConfig(), classes)
                trainer.set_data(chosen.items, chosen.names)
                deadline = time.monotonic() + args.seconds
                snaps = []
                trainer.run(snaps.append, lambda: time.monotonic() > deadline)
                peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                print(f"LiveTrainer at level {args.level}: {len(chosen.items)} items, {trainer._steps} steps, "
                      f"{len(snaps)} snapshots in {args.seconds:.0f} s; peak RSS of this process {peak_rss:.0f} MB")
        doc.labels.close()


if __name__ == "__main__":
    main()
