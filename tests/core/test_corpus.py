"""Every loader and the CLI over the generated corpus (tests/corpus.py): a correct result or one
clean line naming the file and the reason; never a crash, a hang, a traceback or a payload run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.model.checkpoints import CheckpointError, load_checkpoint
from core.cli.main import unique_stems
from core.io.images import ImageReadError, load_image
from core.io.masks import MaskError, read_mask
from tests.corpus import (CHECKPOINT_CLASSES, MASK_CLASSES, MASK_SHAPE, PAYLOAD_MARKER, Case,
                          build_corpus, clean_message, record)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[Case]:
    return build_corpus(tmp_path_factory.mktemp("corpus"))


def run_loader(name: str, cases: list[Case], load, error_type, correct) -> None:
    """Load each case, judge it, tally it; fail listing every case that misbehaved."""
    problems = []
    for case in cases:
        try:
            result = load(case.path)
        except error_type as exc:
            why = "should have loaded" if case.loads else clean_message(case, str(exc))
            outcome, detail = ("clean", None) if why is None else ("crash", f"{why}: {exc}")
        except BaseException as exc:  # noqa: BLE001 - exactly what the corpus looks for
            outcome, detail = "crash", f"raised {type(exc).__name__}: {exc}"
        else:
            why = correct(case, result) if case.loads else "loaded, but it should have failed"
            outcome, detail = ("loaded", None) if why is None else ("crash", why)
        record(name, outcome)
        if detail:
            problems.append(f"{case.name} ({case.what}): {detail}")
    assert not (cases[0].path.parent / PAYLOAD_MARKER).exists(), "a pickle payload ran"
    assert problems == []


def test_load_image_over_the_corpus(corpus):
    def correct(case, image):
        ok = image.rgb.shape == case.shape and image.rgb.dtype == np.uint8 and image.rgb.flags.c_contiguous
        return None if ok else f"loaded as {image.rgb.dtype} {image.rgb.shape}, expected {case.shape}"

    run_loader("load_image", [c for c in corpus if c.kind == "image"], load_image, ImageReadError, correct)


def test_read_mask_over_the_corpus(corpus):
    def load(path):
        return read_mask(path, shape=MASK_SHAPE, num_classes=MASK_CLASSES)

    def correct(case, labels):
        return None if np.array_equal(labels, case.labels) else "loaded the wrong class ids"

    run_loader("read_mask", [c for c in corpus if c.kind == "mask"], load, MaskError, correct)


def test_load_checkpoint_over_the_corpus(corpus):
    def correct(case, ckpt):
        model = ckpt.build()
        ok = ckpt.num_classes == CHECKPOINT_CLASSES and model.conv.out_channels == CHECKPOINT_CLASSES
        return None if ok else f"loaded {ckpt.num_classes} classes"

    run_loader("load_checkpoint", [c for c in corpus if c.kind == "checkpoint"], load_checkpoint,
               CheckpointError, correct)


def test_cli_segment_over_the_image_corpus(corpus, tmp_path, small_weights):
    """`unetseg segment` as a user runs it, over every corpus image at once."""
    images = [c for c in corpus if c.kind == "image"]
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "unetseg", "segment", *[str(c.path) for c in images], "-o", str(out),
         "--model", str(small_weights), "--device", "cpu"],
        cwd=ROOT, env=env, capture_output=True, text=True, encoding="utf-8", timeout=180)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.splitlines()
    problems = []
    for case, stem in zip(images, unique_stems([c.path for c in images])):
        named = [ln for ln in lines if ln.startswith(f"{case.path}: ")]
        target = out / f"{stem}.png"
        if case.loads:
            ok = not named and target.is_file() and read_mask(target).shape == case.shape[:2]
            outcome = "loaded" if ok else "crash"
            if not ok:
                problems.append(f"{case.name}: no correct output ({named})")
        else:
            why = clean_message(case, named[0]) if len(named) == 1 else f"{len(named)} lines name it"
            outcome = "clean" if why is None and not target.exists() else "crash"
            if outcome == "crash":
                problems.append(f"{case.name}: {why}")
        record("cli segment", outcome)
    assert f"segmented {sum(c.loads for c in images)} of {len(images)} image(s)" in proc.stderr
    assert problems == []
