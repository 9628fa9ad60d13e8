from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.document import editing
from core.classes import default_classes
from core.document.mask_document import MaskDocument
from core.document.editing import Box
from core.document.history import History


class Recorder:
    """Collects every event of a document, by name."""

    def __init__(self, doc: MaskDocument):
        self.events: list[tuple] = []
        for name in ("changed", "reset", "dirty_changed", "active_class_changed",
                     "history_changed", "classes_changed"):
            getattr(doc, name).connect(lambda *args, _n=name: self.events.append((_n, *args)))

    def of(self, name):
        return [e[1:] for e in self.events if e[0] == name]


def make(h=40, w=50):
    return MaskDocument(np.zeros((h, w), np.uint8), default_classes(4))


def test_stroke_is_one_step_and_buffer_is_never_rebound():
    doc = make()
    buf = doc.labels
    rec = Recorder(doc)
    doc.set_active_class(2)
    doc.set_brush_size(5)
    doc.begin_stroke("brush")
    first = doc.stroke_to(10.5, 10.5)  # a dot
    assert first == Box(8, 8, 13, 13) and doc.labels[10, 10] == 2
    doc.stroke_to(30.5, 12.5)
    doc.stroke_to(30.5, 30.5)
    assert not doc.can_undo  # committed only at end_stroke
    doc.end_stroke()
    assert doc.can_undo and len(doc.history) == 1 and doc.history.undo_label == "brush"
    assert doc.labels[30, 30] == 2 and doc.dirty
    assert len(rec.of("changed")) == 3 and rec.of("dirty_changed") == [(True,)]
    doc.begin_stroke("eraser")
    doc.stroke_to(10.5, 10.5)
    doc.end_stroke()
    assert doc.labels[10, 10] == 0 and doc.history.undo_label == "eraser"
    doc.undo()
    doc.undo()
    assert not doc.labels.any() and doc.labels is buf and not doc.dirty


def test_stroke_edge_cases():
    doc = make()
    assert doc.stroke_to(3, 3) is None  # no stroke begun
    with pytest.raises(ValueError):
        doc.begin_stroke("spray")
    doc.begin_stroke("brush", value=3)
    doc.stroke_to(5, 5)
    doc.undo()  # finishes the stroke first, then undoes it
    assert not doc.labels.any() and not doc.stroke_active and doc.can_redo
    doc.begin_stroke("brush")
    doc.end_stroke()  # nothing painted: no step, the redo stays
    assert doc.can_redo


def test_brush_size_clamps_and_radius():
    doc = make()
    doc.set_brush_size(0)
    assert doc.brush_size == 1 and doc.radius == 0.5
    doc.set_brush_size(10_000)
    assert doc.brush_size == 500 and doc.radius == 250
    doc.radius = 3
    assert doc.brush_size == 6


def test_fill_polygon_pick_and_classes():
    doc = make()
    rec = Recorder(doc)
    doc.active_class = 3
    assert doc.fill_polygon([(0, 0), (10, 0), (10, 10), (0, 10)]) == Box(0, 0, 10, 10)
    doc.active_class = 1
    assert doc.fill(20, 20) == Box(0, 0, 40, 50)
    assert doc.present_classes() == [1, 3]
    assert doc.pick(2.5, 2.5) == 3 and doc.active_class == 3
    assert doc.pick(-1, 2) is None and doc.active_class == 3
    assert len(doc.history) == 2 and doc.history.undo_label == "fill"
    assert rec.of("active_class_changed") == [(3,), (1,), (3,)]
    doc.set_classes(default_classes(6))
    assert rec.of("classes_changed") == [()] and len(doc.classes) == 6
    with pytest.raises(ValueError):
        doc.set_active_class(256)


def test_protected_classes_are_kept():
    doc = make()
    doc.labels[:, :25] = 2
    doc.protected = frozenset({2})
    doc.active_class = 1
    doc.set_brush_size(100)
    doc.begin_stroke()
    doc.stroke_to(25, 20)
    doc.end_stroke()
    assert (doc.labels[:, :25] == 2).all() and (doc.labels[:, 25:] == 1).all()
    assert doc.fill(3, 3).is_empty and (doc.labels[:, :25] == 2).all()
    assert len(doc.history) == 1


def test_dirty_follows_save_undo_redo():
    doc = make()
    rec = Recorder(doc)
    doc.fill(0, 0)
    doc.mark_saved()
    assert not doc.dirty
    doc.undo()
    assert doc.dirty
    doc.redo()
    assert not doc.dirty
    doc.undo()
    doc.active_class = 2
    doc.fill(0, 0)  # a new branch: the saved state is unreachable now
    assert doc.dirty
    assert rec.of("dirty_changed") == [(True,), (False,), (True,), (False,), (True,)]


def test_apply_labels_is_one_compressed_undo_step():
    doc = make(300, 400)
    buf = doc.labels
    new = np.zeros((300, 400), np.uint8)
    new[50:250, 100:300] = 2
    rec = Recorder(doc)
    assert doc.apply_labels(new) == Box(50, 100, 250, 300)
    assert np.array_equal(doc.labels, new) and doc.labels is buf
    assert doc.history.undo_label == "segment" and doc.history.nbytes < 40_000
    assert doc.apply_labels(new) == Box(0, 0, 0, 0) and len(doc.history) == 1
    doc.undo()
    assert not doc.labels.any() and rec.of("changed")[-1] == (Box(50, 100, 250, 300),)
    with pytest.raises(ValueError):
        doc.apply_labels(np.zeros((3, 3), np.uint8))


def test_preview_then_apply_undoes_to_before_the_preview():
    doc = make(100, 100)
    doc.fill(0, 0)  # all 1
    rec = Recorder(doc)
    assert doc.paste_region(0, 0, np.full((64, 100), 2, np.uint8)) == Box(0, 0, 64, 100)
    assert doc.paste_region(90, 90, np.full((64, 64), 3, np.uint8)) == Box(90, 90, 100, 100)
    assert doc.preview_active and len(doc.history) == 1 and not doc.can_undo
    assert doc.undo() is None and doc.fill(50, 50) is None  # edits wait for the preview
    final = np.full((100, 100), 2, np.uint8)
    doc.apply_labels(final)
    assert not doc.preview_active and len(doc.history) == 2
    assert rec.of("changed")[-1] == (Box(64, 0, 100, 100),)  # only what still differed
    doc.undo()
    assert (doc.labels == 1).all()


def test_cancel_preview_and_snapshot_restore():
    doc = make(100, 100)
    rec = Recorder(doc)
    doc.paste_region(10, 10, np.full((20, 20), 2, np.uint8))
    assert doc.cancel_preview() == Box(10, 10, 30, 30)
    assert not doc.labels.any() and not doc.preview_active and not doc.can_undo
    snap = doc.snapshot()
    doc.paste_region(-5, -5, np.full((20, 20), 3, np.uint8))
    assert doc.labels[0, 0] == 3
    doc.restore(snap)
    assert not doc.labels.any() and not doc.preview_active and rec.of("reset") == [()]
    doc.fill(0, 0)  # editing works again and history is consistent
    doc.undo()
    assert not doc.labels.any()


def test_set_labels_resets_history_and_is_clean():
    doc = make()
    doc.fill(0, 0)
    rec = Recorder(doc)
    doc.set_labels(np.ones((7, 9), np.int64))
    assert doc.labels.dtype == np.uint8 and doc.labels.flags.c_contiguous
    assert doc.shape == (7, 9) and not doc.can_undo and not doc.dirty
    assert rec.of("reset") == [()] and rec.of("dirty_changed") == [(False,)]
    with pytest.raises(ValueError):
        doc.set_labels(np.zeros((2, 2, 2), np.uint8))


# -- property test: random edit sequences against a history-free replay ------------------------
H, W = 11, 14
xs, ys = st.floats(-3, W + 3), st.floats(-3, H + 3)
point = st.tuples(xs, ys)
values = st.integers(0, 3)
protect = st.frozensets(st.integers(0, 3), max_size=2)
operation = st.one_of(
    st.tuples(st.just("stroke"), st.sampled_from(["brush", "eraser"]), values,
              st.lists(point, min_size=1, max_size=4), st.sampled_from([1, 2, 3, 5, 8]), protect),
    st.tuples(st.just("fill"), st.integers(-1, W), st.integers(-1, H), values,
              st.sampled_from([4, 8]), protect),
    st.tuples(st.just("polygon"), st.lists(point, max_size=6), values, protect),
    st.tuples(st.just("apply"), st.integers(0, 2**32 - 1)),
    st.tuples(st.just("preview"), st.integers(0, 2**32 - 1), st.booleans()),
    st.just(("undo",)), st.just(("redo",)), st.just(("save",)),
)


def replay(original, ops):
    a = original.copy()
    for op in ops:
        kind = op[0]
        if kind == "stroke":
            _, tool, value, pts, size, prot = op
            v = 0 if tool == "eraser" else value
            for p0, p1 in zip(pts[:1] + pts[:-1], pts):
                editing.stamp_segment(a, p0, p1, size / 2, v, prot)
        elif kind == "fill":
            _, x, y, value, conn, prot = op
            editing.flood_fill(a, x, y, value, conn, prot)
        elif kind == "polygon":
            _, pts, value, prot = op
            editing.fill_polygon(a, pts, value, prot)
        else:  # "apply" and an applied "preview" carry their result
            a[:] = op[-1]
    return a


def random_labels(seed, like):
    rng = np.random.default_rng(seed)
    out = like.copy()
    y0, x0 = rng.integers(0, H), rng.integers(0, W)
    out[y0:, x0:] = rng.integers(0, 4, out[y0:, x0:].shape)
    return out


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1), st.lists(operation, max_size=14))
def test_random_edit_sequences_replay_undo_and_redo(seed, ops):
    original = np.random.default_rng(seed).integers(0, 4, (H, W)).astype(np.uint8)
    doc = MaskDocument(original.copy(), default_classes(4), history=History(max_steps=1000))
    buf = doc.labels
    boxes: list[Box] = []
    doc.changed.connect(boxes.append)
    applied: list[tuple] = []  # ops on the undo stack, oldest first
    undone: list[tuple] = []
    saved: list[int] = []  # ids of the ops on the stack at the last save
    for n, op in enumerate(ops):
        before = doc.labels.copy()
        boxes.clear()
        kind = op[0]
        if kind == "stroke":
            _, tool, value, pts, size, prot = op
            doc.protected = prot
            doc.set_brush_size(size)
            doc.begin_stroke(tool, value)
            for x, y in pts:
                doc.stroke_to(x, y)
            doc.end_stroke()
        elif kind == "fill":
            doc.protected, doc.active_class = op[5], op[3]
            doc.fill(op[1], op[2], op[4])
        elif kind == "polygon":
            doc.protected, doc.active_class = op[3], op[2]
            doc.fill_polygon(op[1])
        elif kind == "apply":
            op = (*op, random_labels(op[1], before))
            doc.apply_labels(op[-1])
        elif kind == "preview":
            result = random_labels(op[1], before)
            for y0 in range(0, H, 4):
                doc.paste_region(y0, 0, result[y0:y0 + 4])
            if op[2]:
                doc.apply_labels(result)
                op = (*op, result)
            else:
                doc.cancel_preview()
        elif kind == "undo":
            if doc.undo() is not None:
                undone.append(applied.pop())
        elif kind == "redo":
            if doc.redo() is not None:
                applied.append(undone.pop())
        else:
            doc.mark_saved()
            saved = [id(o) for o in applied]
        if kind not in ("undo", "redo", "save") and not np.array_equal(before, doc.labels):
            applied.append(op)
            undone.clear()
        covered = np.zeros((H, W), bool)
        for b in boxes:
            covered[b.slices] = True
        assert not ((before != doc.labels) & ~covered).any(), f"op {n} {kind}: box misses a pixel"
        assert doc.dirty == ([id(o) for o in applied] != saved)
        assert np.array_equal(doc.labels, replay(original, applied))
    newest = replay(original, applied + undone[::-1])  # the state at the tip of redo
    while doc.undo() is not None:
        pass
    assert np.array_equal(doc.labels, original)
    while doc.redo() is not None:
        pass
    assert np.array_equal(doc.labels, newest) and doc.labels is buf


def test_a_read_only_buffer_is_copied_so_edits_work():
    from core.document.mask_document import MaskDocument

    frozen = np.zeros((8, 8), np.uint8)
    frozen.flags.writeable = False  # what a mask decoded from a PNG looks like
    doc = MaskDocument(frozen)
    doc.begin_stroke("brush", 1)
    doc.stroke_to(4, 4)
    doc.end_stroke()
    assert doc.labels[4, 4] == 1 and not frozen.any()
    doc.set_labels(frozen)
    assert doc.labels.flags.writeable
