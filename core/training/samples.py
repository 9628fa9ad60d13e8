"""The demo images bundled in ``resources/samples`` and how they were made.

Each sample is a synthetic scene (``core.training.synthetic``) written as ``<name>.png`` with its
ground truth as ``ground_truth/<name>.png`` (an index PNG; kept in a sub-folder so the app
does not load it as the image's own mask).  ``python -m core.training.samples`` rewrites them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

from core.io.masks import write_mask
from core.resources import resource_path
from core.training.synthetic import SHAPE_CLASSES, generate_scene

SAMPLES = {"shapes_waves": 4, "shapes_meadow": 11, "shapes_pink": 10}  # name -> scene seed
SIZE = (384, 512)


def ground_truth_path(sample: Path) -> Path:
    return sample.parent / "ground_truth" / sample.name


def write_samples(folder: Path | None = None) -> list[Path]:
    folder = Path(folder) if folder else resource_path("samples")
    (folder / "ground_truth").mkdir(parents=True, exist_ok=True)
    written = []
    for name, seed in SAMPLES.items():
        rgb, labels = generate_scene(seed, *SIZE)
        path = folder / f"{name}.png"
        Image.fromarray(rgb).save(path)
        write_mask(ground_truth_path(path), labels, "index", SHAPE_CLASSES)
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write_samples(Path(sys.argv[1]) if len(sys.argv) > 1 else None):
        print(p)
