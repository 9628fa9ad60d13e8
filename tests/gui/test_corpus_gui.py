"""The window's entry points over the generated corpus (tests/corpus.py): open, load weights,
import mask.  Each input gives a correct result or one clear message naming the file and the
reason, and the window stays usable; no pickle payload ever runs."""

from __future__ import annotations

import numpy as np
import pytest

from core.classes import default_classes
from tests.corpus import (CHECKPOINT_CLASSES, MASK_CLASSES, MASK_SHAPE, PAYLOAD_MARKER, Case,
                          build_corpus, clean_message, record)
from tests.gui.helpers import drag, write_image

MODEL_TIMEOUT = 60_000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[Case]:
    return build_corpus(tmp_path_factory.mktemp("gui corpus"))


def of_kind(corpus, kind):
    return [c for c in corpus if c.kind == kind]


def listed(message: str) -> list[str]:
    """The per-file lines of a "Could not open ..." message."""
    return message.split("\n\n", 1)[1].splitlines() if "\n\n" in message else [message]


def test_open_each_corpus_image(qtbot, window, dialogs, corpus):
    problems = []
    for case in of_kind(corpus, "image"):
        dialogs.calls.clear()
        previous = window.current
        opened = window.open_images([case.path])
        errors = dialogs.errors()
        if case.loads:
            entry = window.current
            ok = (opened == 1 and errors == [] and entry.path == case.path
                  and entry.image.rgb.shape == case.shape and window.mask.shape == case.shape[:2])
            why = None if ok else f"not shown ({errors})"
        else:
            lines = listed(errors[0]) if len(errors) == 1 else []
            why = clean_message(case, lines[0]) if len(lines) == 1 else f"{len(errors)} messages: {errors}"
            if why is None and (window.store.get(case.path) is not None or window.current is not previous):
                why = "a file that cannot be opened was kept in the list"
        record("gui open", "crash" if why else "loaded" if case.loads else "clean")
        if why:
            problems.append(f"{case.name} ({case.what}): {why}")
    assert problems == []
    drag(qtbot, window, [(0, 0), (3, 3)])  # still usable
    assert window.document.dirty


def test_open_the_whole_corpus_at_once(qtbot, window, dialogs, corpus):
    images = of_kind(corpus, "image")
    window.open_images([c.path for c in images])
    [message] = dialogs.errors()  # one message for every file refused at once
    refused = listed(message)
    problems = []
    for case in images:
        named = [ln for ln in refused if case.path.name in ln]
        entry = window.store.get(case.path)
        error = window.show_entry(entry) if entry is not None else None
        if case.loads:
            ok = not named and entry is not None and error is None and entry.image.rgb.shape == case.shape
            why = None if ok else f"not shown ({named or error})"
        elif named:  # refused from its header, or when first shown
            why = clean_message(case, named[0]) if len(named) == 1 and entry is None else f"{named}"
        else:  # listed; refused when shown, with the reason on the canvas and status bar
            why = clean_message(case, error) if error else "listed, and shown as if it were an image"
            if why is None and case.path.name not in window.canvas.placeholder:
                why = "the canvas does not say why it cannot be shown"
        record("gui open all", "crash" if why else "loaded" if case.loads else "clean")
        if why:
            problems.append(f"{case.name}: {why}")
    assert problems == []


def test_load_weights_over_the_checkpoint_corpus(qtbot, window, dialogs, corpus):
    checkpoints = of_kind(corpus, "checkpoint")
    good = next(c for c in checkpoints if c.name == "good.safetensors")
    with qtbot.waitSignal(window.model_ready, timeout=MODEL_TIMEOUT):
        window.load_model(good.path)
    results: list[str] = []
    window.model_ready.connect(lambda _d: results.append("ready"))
    window.model_failed.connect(lambda _m: results.append("failed"))
    problems = []
    for case in checkpoints:
        previous = window.models.segmenter
        dialogs.calls.clear()
        dialogs.answers["ask_weights_path"] = case.path
        window.commands.load_weights.trigger()
        qtbot.waitUntil(lambda: len(results) > 0, timeout=MODEL_TIMEOUT)
        result = results.pop()
        errors = dialogs.errors()
        if case.loads:
            seg = window.models.segmenter
            ok = result == "ready" and errors == [] and seg is not previous and seg.num_classes == CHECKPOINT_CLASSES
            why = None if ok else f"{result} {errors}"
        else:
            why = clean_message(case, errors[0]) if len(errors) == 1 else f"{len(errors)} messages: {errors}"
            if why is None and (result != "failed" or window.models.segmenter is not previous):
                why = "the previous model was not kept"
        record("gui load weights", "crash" if why else "loaded" if case.loads else "clean")
        if why:
            problems.append(f"{case.name} ({case.what}): {why}")
    assert not (good.path.parent / PAYLOAD_MARKER).exists(), "a pickle payload ran"
    assert problems == []


def test_import_mask_over_the_mask_corpus(qtbot, window, dialogs, corpus, tmp_path):
    h, w = MASK_SHAPE
    window.open_images([write_image(tmp_path / "target.png", h, w)])
    doc = window.document
    doc.set_classes(default_classes(MASK_CLASSES))
    before = np.zeros(MASK_SHAPE, np.uint8)
    before[2:8, 3:12] = 3
    doc.apply_labels(before)
    problems = []
    for case in of_kind(corpus, "mask"):
        dialogs.calls.clear()
        dialogs.answers["ask_mask_path"] = case.path
        window.commands.import_mask.trigger()
        errors = dialogs.errors()
        if case.loads:
            why = None if errors == [] and np.array_equal(window.mask, case.labels) else f"{errors}"
            window.commands.undo.trigger()  # Undo puts the previous mask back
        else:
            why = clean_message(case, errors[0]) if len(errors) == 1 else f"{len(errors)} messages: {errors}"
        if why is None and not np.array_equal(window.mask, before):
            why = "the mask in the window changed"
        record("gui import mask", "crash" if why else "loaded" if case.loads else "clean")
        if why:
            problems.append(f"{case.name} ({case.what}): {why}")
    assert not (corpus[0].path.parent / PAYLOAD_MARKER).exists(), "a pickle payload ran"
    assert problems == []
