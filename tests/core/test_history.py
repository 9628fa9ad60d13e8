from __future__ import annotations

import numpy as np
import pytest

from core.document.editing import Box, stamp_segment
from core.document.history import History


def paint(history, labels, box, value, label="brush"):
    history.begin()
    history.record_before(labels, box)
    labels[box.slices] = value
    return history.commit(labels, label)


def stroke(history, labels, p0, p1, radius, value):
    history.begin()
    stamp_segment(labels, p0, p1, radius, value,
                  before=lambda b: history.record_before(labels, b))
    return history.commit(labels)


def test_commit_undo_redo_round_trip():
    labels = np.zeros((300, 200), np.uint8)
    h = History()
    assert h.position == 0 and not h.can_undo and not h.can_redo
    step = paint(h, labels, Box(10, 20, 150, 130), 3)
    after = labels.copy()
    assert step is not None and step.box == Box(10, 20, 150, 130) and step.label == "brush"
    assert h.can_undo and h.position == step.id != 0 and h.undo_label == "brush"
    assert h.undo(labels) == step.box and not labels.any()
    assert h.position == 0 and h.can_redo and h.redo_label == "brush"
    assert h.redo(labels) == step.box and np.array_equal(labels, after)
    assert h.position == step.id
    assert h.undo(labels) is not None and h.undo(labels) is None


def test_unchanged_group_makes_no_step():
    labels = np.full((100, 100), 2, np.uint8)
    h = History()
    assert paint(h, labels, Box(0, 0, 50, 50), 2) is None
    assert h.commit(labels) is None  # no open group
    assert not h.can_undo and h.position == 0 and h.nbytes == 0


def test_new_commit_clears_redo_and_positions_never_repeat():
    labels = np.zeros((64, 64), np.uint8)
    h = History()
    first = paint(h, labels, Box(0, 0, 5, 5), 1)
    h.undo(labels)
    second = paint(h, labels, Box(0, 0, 5, 5), 2)
    assert not h.can_redo and second.id != first.id and h.position == second.id
    assert h.redo(labels) is None


def test_only_changed_pixels_of_touched_tiles_are_kept():
    labels = np.zeros((2048, 2048), np.uint8)
    h = History()
    h.begin()
    stamp_segment(labels, (10.0, 10.0), (2000.0, 2000.0), 2, 1,
                  before=lambda b: h.record_before(labels, b))
    assert h.nbytes >= 2000 * 2000  # one bounding-box-sized tile copy set, for now
    step = h.commit(labels)
    raw = sum(2 * b.area for b, _ in step.patches)
    assert raw < 0.05 * 2 * 2048 * 2048  # a diagonal line does not cost its bounding box
    assert step.nbytes < raw  # and the patches are compressed
    h.undo(labels)
    assert not labels.any()


def test_incompressible_patches_are_stored_raw_and_round_trip():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 256, (128, 128), dtype=np.uint8)
    original = labels.copy()
    h = History()
    h.begin()
    h.record_before(labels, Box(0, 0, 128, 128))
    labels[:] = rng.integers(0, 256, (128, 128), dtype=np.uint8)
    new = labels.copy()
    step = h.commit(labels)
    assert any(len(data) == 2 * box.area for box, data in step.patches)
    h.undo(labels)
    assert np.array_equal(labels, original)
    h.redo(labels)
    assert np.array_equal(labels, new)


def test_max_steps_drops_oldest_and_moves_base_position():
    labels = np.zeros((32, 32), np.uint8)
    h = History(max_steps=3)
    steps = [paint(h, labels, Box(i, 0, i + 1, 32), 1) for i in range(5)]
    assert len(h) == 3
    while h.undo(labels) is not None:
        pass
    assert h.position == steps[1].id  # not 0: the state is not the original one
    assert labels[:2].all() and not labels[2:].any()


def test_max_bytes_drops_oldest_but_keeps_the_last_step():
    rng = np.random.default_rng(2)
    labels = np.zeros((256, 256), np.uint8)
    h = History(max_bytes=100_000)
    for _ in range(4):
        h.begin()
        h.record_before(labels, Box(0, 0, 256, 256))
        labels[:] = rng.integers(0, 256, labels.shape, dtype=np.uint8)  # ~128 KiB per step
        h.commit(labels)
    assert len(h) == 1 and h.nbytes > h.max_bytes
    h2 = History(max_bytes=10**9)
    for i in range(4):
        paint(h2, labels, Box(i, 0, i + 1, 10), 9)
    assert len(h2) == 4


def test_clear_changes_position():
    labels = np.zeros((16, 16), np.uint8)
    h = History()
    paint(h, labels, Box(0, 0, 2, 2), 1)
    h.undo(labels)
    h.clear()
    assert h.position != 0 and not h.can_undo and not h.can_redo and h.nbytes == 0


def test_rollback_and_discard():
    labels = np.zeros((200, 200), np.uint8)
    h = History()
    h.record_before(labels, Box(10, 10, 100, 100))  # opens a group by itself
    assert h.in_group
    labels[10:100, 10:100] = 5
    assert h.rollback(labels) == Box(10, 10, 100, 100)
    assert not labels.any() and not h.in_group and not h.can_undo
    h.record_before(labels, Box(0, 0, 5, 5))
    labels[0:5, 0:5] = 1
    h.discard()
    assert not h.in_group and h.nbytes == 0 and labels[0, 0] == 1


def test_undo_with_open_group_is_an_error():
    labels = np.zeros((16, 16), np.uint8)
    h = History()
    paint(h, labels, Box(0, 0, 2, 2), 1)
    h.begin()
    with pytest.raises(RuntimeError):
        h.undo(labels)


def test_record_before_mask_saves_only_marked_tiles():
    labels = np.zeros((512, 512), np.uint8)
    h = History()
    mask = np.zeros((500, 500), bool)
    mask[0, 0] = mask[499, 499] = True
    h.record_before(labels, Box(5, 5, 505, 505), mask)
    assert h.nbytes == 2 * 64 * 64
    h.record_before(labels, Box(0, 0, 64, 64))  # already saved: no second copy
    assert h.nbytes == 2 * 64 * 64


def test_tiles_keep_their_first_content_within_a_group():
    labels = np.zeros((100, 100), np.uint8)
    h = History()
    h.begin()
    for value in (1, 2, 3):
        h.record_before(labels, Box(0, 0, 50, 50))
        labels[:50, :50] = value
    h.commit(labels)
    h.undo(labels)
    assert not labels.any()


def test_hundred_strokes_on_8k_mask_stay_small():
    """100 radius-20, ~200 px strokes on 8192x8192: the budget is 64 MB of history."""
    rng = np.random.default_rng(0)
    labels = np.zeros((8192, 8192), np.uint8)
    h = History()
    for _ in range(100):
        x, y = rng.uniform(300, 7800, 2)
        angle = rng.uniform(0, 2 * np.pi)
        value = int(rng.integers(1, 6))
        h.begin()
        points = [(x + 200 * s * np.cos(angle), y + 200 * s * np.sin(angle))
                  for s in np.linspace(0, 1, 21)]
        for p0, p1 in zip(points[:1] + points[:-1], points):
            stamp_segment(labels, p0, p1, 20, value, before=lambda b: h.record_before(labels, b))
        h.commit(labels)
    assert len(h) == 100
    assert h.nbytes < 64 * 2**20
    assert h.nbytes < 2 * 2**20  # measured ~0.4 MB: diffs of changed pixels, compressed
    while h.undo(labels) is not None:
        pass
    assert not labels.any()


def test_a_step_over_two_layers_of_different_dtypes_undoes_both():
    labels = np.zeros((100, 100), np.uint8)
    ids = np.zeros((100, 100), np.uint32)
    layers = {"labels": labels, "objects": ids}
    h = History()
    h.record_before(labels, Box(10, 10, 30, 30))
    h.record_before(ids, Box(10, 10, 30, 90), layer="objects")
    labels[10:30, 10:30] = 2
    ids[10:30, 10:90] = 70_000  # beyond 16 bits: the patch keeps all 32
    step = h.commit(layers, "new object")
    assert step.touches("objects") and step.layer_box("objects") == Box(10, 10, 30, 90)
    assert step.layer_box("labels") == Box(10, 10, 30, 30) and step.box == Box(10, 10, 30, 90)
    assert h.undo(layers) == step.box and not labels.any() and not ids.any()
    h.redo(layers)
    assert (ids[10:30, 10:90] == 70_000).all() and (labels[10:30, 10:30] == 2).all()
    with pytest.raises(KeyError, match="objects"):
        h.undo(labels)  # the objects' array was not given: nothing is half undone
    assert (ids[10:30, 10:90] == 70_000).all() and (labels[10:30, 10:30] == 2).all() and h.can_undo
