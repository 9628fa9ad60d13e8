"""``unetseg self-test``: is this installation (source or packaged) able to do its job?

It loads each built-in model, segments the bundled samples and scores them against their
ground truth, writes every export format to a temporary folder and reads each back, and
prints a device report.  Exit status 0 only if all of that worked.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

# Pooled mean IoU over classes 1-4 on the three bundled samples must reach these (the shipped
# models score 0.85 and 0.98 there on the CPU; a broken install scores near 0).
THRESHOLDS = {"small": 0.6, "large": 0.85}


def run_self_test(device: str = "auto", out: Callable[[str], None] = print) -> int:
    from core.segment.inference import device_report

    failures: list[str] = []
    out("device report:")
    for key, value in device_report().items():
        out(f"  {key}: {value}")
    labels = _check_models(device, out, failures)
    if labels is not None:
        _check_formats(labels, out, failures)
    if failures:
        out(f"self-test FAILED ({len(failures)} problem(s)):")
        for problem in failures:
            out(f"  - {problem}")
        return 1
    out("self-test passed")
    return 0


def _check_models(device: str, out, failures: list[str]):
    from core.io.images import load_image
    from core.segment.inference import Segmenter
    from core.io.masks import read_mask
    from core.resources import BUILTIN_MODELS, sample_images
    from core.training.samples import ground_truth_path
    from core.metrics import IoUAccumulator

    samples = sample_images()
    if not samples:
        failures.append("no bundled sample images found")
        return None
    last = None
    for name in BUILTIN_MODELS:
        try:
            seg = Segmenter.load(name, device=device)
            acc = IoUAccumulator(seg.num_classes)
            t0 = time.perf_counter()
            for path in samples:
                image = load_image(path).rgb
                last = seg.segment(image)
                acc.update(last, read_mask(ground_truth_path(path), shape=last.shape))
            miou = acc.mean_iou(range(1, seg.num_classes))
            ok = miou >= THRESHOLDS[name]
            out(f"model {name}: {seg.describe()}: mIoU {miou:.3f} on {len(samples)} samples "
                f"(needs {THRESHOLDS[name]}) in {time.perf_counter() - t0:.2f}s: {'ok' if ok else 'TOO LOW'}")
            if not ok:
                failures.append(f"model {name} scored mIoU {miou:.3f} < {THRESHOLDS[name]}")
        except Exception as exc:  # report every kind of breakage, keep checking the rest
            failures.append(f"model {name}: {exc}")
            out(f"model {name}: FAILED: {exc}")
    if last is not None:
        last = np.asarray(last)
    return last


def _check_formats(labels: np.ndarray, out, failures: list[str]) -> None:
    from core.segment.batch_writer import BatchWriter
    from core.io.mask_naming import MASK_FORMATS, output_path
    from core.io.masks import read_mask
    from core.io.objects import ObjectOptions
    from core.training.synthetic import SHAPE_CLASSES

    image = np.dstack([labels * 40] * 3).astype(np.uint8)
    with tempfile.TemporaryDirectory(prefix="unetseg-selftest-") as tmp:
        for fmt in MASK_FORMATS:
            folder = Path(tmp) / fmt
            path = output_path(folder, "sample", fmt)
            try:  # outlines at tolerance 0, so every format must give the same pixels back
                writer = BatchWriter(folder, [fmt], SHAPE_CLASSES, objects=ObjectOptions(tolerance=0))
                writer.add("sample.png", "sample", labels, image, raw=image)
                writer.close()
                if fmt in ("instances", "measurements"):
                    good = _objects_read_back(path, fmt, labels)
                elif fmt == "overlay":
                    from core.io.images import load_image

                    back = load_image(path).rgb
                    good = back.shape[:2] == labels.shape
                else:
                    back = read_mask(path, shape=labels.shape, classes=SHAPE_CLASSES, image_name="sample.png")
                    good = np.array_equal(back, labels)
                out(f"format {fmt}: {path.name} written and read back: {'ok' if good else 'MISMATCH'}")
                if not good:
                    failures.append(f"format {fmt} did not read back equal")
            except Exception as exc:
                failures.append(f"format {fmt}: {exc}")
                out(f"format {fmt}: FAILED: {exc}")


def _objects_read_back(path: Path, fmt: str, labels: np.ndarray) -> bool:
    """The instance image holds the mask's objects (8-connected components of one class); the
    measurements have one row per object whose areas add up to the mask's object pixels."""
    from core.io.label_images import read_label_image
    from core.objects.components import component_labels
    from core.objects.measure import read_measurements

    objects = component_labels(labels)
    if fmt == "instances":
        return np.array_equal(read_label_image(path), objects)
    table = read_measurements(path)
    return len(table["label"]) == int(objects.max()) and sum(map(int, table["area"])) == int((labels > 0).sum())
