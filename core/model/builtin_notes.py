"""What the built-in models say about themselves: description, menu summary, measured quality.

Why: a new user who segments a photograph with the built-in small model sees "stars" painted
over a face and deserves to be told it is a demo that knows four synthetic shapes.  The text
lives in each checkpoint's metadata (so `unetseg info`, the Model menu and About This Model all
read it from the model itself) and is written from here by ``make describe-models``
(``python -m core.model.builtin_notes``), which copies the weights byte for byte (core.model.metadata_edit).
The quality figures are bench/quality.py's, as README lists them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from core.model.metadata_edit import update_metadata
from core.resources import builtin_model_path

BENCHMARK = ("bench/quality.py: 200 freshly generated scenes (seed 20261125, never used for training "
             "or calibration); mean IoU over the four shapes, pooled over pixels")
KNOWS = ("ellipses, rectangles, triangles and five-pointed stars, by shape, whatever their colour, "
         "size (8-80 px), rotation and background")


def _demo(miou: str, defaults: str) -> str:
    """What both built-in models are, and what each scores with its own defaults."""
    return (f"Demo model: recognises {KNOWS}. Trained only on 6,000 generated scenes "
            "(`unetseg generate`), never on photographs, so on your own images it paints shapes where "
            "there are none: load weights trained for your images, or correct a few masks and train. "
            f"Mean IoU {miou} on 200 unseen synthetic scenes (with its default {defaults}).")


NOTES = {
    "small": {
        "summary": "demo, synthetic shapes",
        "description": _demo("0.854", "test-time augmentation and edge refinement"),
        "quality": {"benchmark": BENCHMARK, "results": [
            {"setting": "8-fold test-time augmentation + edge refinement (its default)", "miou": 0.854,
             "per_class": {"ellipse": 0.895, "rectangle": 0.856, "triangle": 0.794, "star": 0.871}},
            {"setting": "single pass + edge refinement", "miou": 0.837,
             "per_class": {"ellipse": 0.882, "rectangle": 0.833, "triangle": 0.768, "star": 0.864}},
            {"setting": "network only", "miou": 0.725,
             "per_class": {"ellipse": 0.793, "rectangle": 0.700, "triangle": 0.653, "star": 0.752}},
        ]},
    },
    "large": {
        "summary": "demo, synthetic shapes",
        "description": _demo("0.939", "edge refinement"),
        "quality": {"benchmark": BENCHMARK, "results": [
            {"setting": "edge refinement (its default)", "miou": 0.939,
             "per_class": {"ellipse": 0.961, "rectangle": 0.946, "triangle": 0.916, "star": 0.936}},
            {"setting": "network only", "miou": 0.925,
             "per_class": {"ellipse": 0.950, "rectangle": 0.928, "triangle": 0.898, "star": 0.924}},
        ]},
    },
}

# The small model's recorded commands were typed on the build machine; this says what they mean
# (the record itself is left as it was typed: it is evidence, not documentation).
SMALL_PROVENANCE = (
    "The training commands above are recorded as they were typed on the GPU build machine. "
    "/tmp/data held the set `unetseg generate --count 6000 --seed 0` writes: regenerating that set "
    "gives exactly the recorded 5,400/600 split and 310,559,296 training pixels (the same as large's "
    "data/shapes run; data set identity: 6000 pairs, files sha256 6492db8cb0d1eb7f). "
    ".device/stage1.safetensors and /root/out/scratch.safetensors are the stage-1 model, and "
    "/root/out/s2b.safetensors is the file shipped as resources/models/small.safetensors. "
    "The same run in the README's paths: `make train-models`."
)


def notes_for(name: str) -> dict:
    notes = dict(NOTES[name])
    if name == "small":
        notes["provenance"] = SMALL_PROVENANCE
    return notes


def write_notes(names: tuple[str, ...] = ("small", "large")) -> list[Path]:
    """Write each built-in model's notes into its file (weights copied unchanged)."""
    return [update_metadata(builtin_model_path(name), notes_for(name)) for name in names]


if __name__ == "__main__":  # make describe-models
    for path in write_notes():
        print(f"described {path}")
    sys.exit(0)
