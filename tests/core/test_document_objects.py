"""The object layer of a MaskDocument: paint, erase, delete, merge and split objects, each one undo
step in the document's one history, with the class labels kept by the layer's rules."""

from __future__ import annotations

import numpy as np
import pytest

from core.document.editing import Box
from core.document.history import History
from core.document.mask_document import MaskDocument
from core.document.objects import split_pieces


def doc_of(h=120, w=160, **kw) -> MaskDocument:
    return MaskDocument(np.zeros((h, w), np.uint8), **kw)


def paint_object(doc: MaskDocument, points, class_id=1, grow=0) -> int:
    obj = doc.objects
    new = obj.begin_paint(class_id, grow)
    for x, y in points:
        obj.stroke_to(x, y)
    obj.end_stroke()
    return new


def disc(doc, cx, cy, r, class_id=1, grow=0):
    doc.set_brush_size(2 * r)
    return paint_object(doc, [(cx, cy)], class_id, grow)


def test_a_new_object_takes_the_next_id_paints_its_class_and_is_one_undo_step():
    doc = doc_of()
    changed, obj_changed = [], []
    doc.changed.connect(changed.append)
    doc.objects.changed.connect(obj_changed.append)
    assert not doc.objects.allocated and doc.objects.next_id() == 1
    first = disc(doc, 40, 40, 10, class_id=2)
    second = disc(doc, 100, 40, 10, class_id=1)
    ids, classes = doc.objects.labels, doc.labels
    assert (first, second) == (1, 2)
    assert doc.objects.count == 2 and doc.objects.next_id() == 3
    assert ids.dtype == np.uint32 and ids.shape == doc.shape
    assert np.array_equal(classes[ids == 1], np.full((ids == 1).sum(), 2))  # class 2 painted under it
    assert (classes[ids == 2] == 1).all() and not classes[ids == 0].any()
    assert changed and obj_changed and doc.dirty
    assert doc.history.undo_label == "new object" and len(doc.history) == 2
    doc.undo()
    assert doc.objects.count == 1 and not (doc.labels[ids == 0] == 1).any()
    assert not (doc.objects.labels == 2).any() and not doc.labels[60:, 85:].any()
    doc.redo()
    assert doc.objects.count == 2 and (doc.labels[doc.objects.labels == 2] == 1).all()


def test_a_new_object_never_takes_pixels_of_another():
    doc = doc_of()
    disc(doc, 50, 50, 15)
    before = doc.objects.labels == 1
    disc(doc, 70, 50, 15)  # overlaps the first one's right side
    assert np.array_equal(doc.objects.labels == 1, before)  # the first one is whole
    second = doc.objects.labels == 2
    assert second.any() and not (second & before).any()
    # they touch: some pixel of 2 has a 4-neighbour of 1
    touching = (second[:, 1:] & before[:, :-1]).any() or (second[:, :-1] & before[:, 1:]).any()
    assert touching


def test_growing_an_object_adds_to_it():
    doc = doc_of()
    disc(doc, 40, 40, 8)
    area = int((doc.objects.labels == 1).sum())
    doc.set_brush_size(6)
    assert paint_object(doc, [(45, 40), (70, 40)], grow=1) == 1
    assert doc.objects.count == 1 and int((doc.objects.labels == 1).sum()) > area + 50


def test_erasing_from_one_object_leaves_its_neighbour_and_clears_the_class():
    doc = doc_of()
    disc(doc, 50, 50, 15, class_id=3)
    disc(doc, 75, 50, 15, class_id=3)
    second = (doc.objects.labels == 2).copy()
    obj = doc.objects
    doc.set_brush_size(30)
    assert obj.begin_erase(1)
    obj.stroke_to(62, 50)  # the brush covers both objects' touching sides
    obj.end_stroke()
    assert np.array_equal(obj.labels == 2, second)
    erased = (obj.labels == 0) & (np.hypot(*np.mgrid[:120, :160][::-1] - np.array([62, 50])[:, None, None]) < 14)
    assert erased.any() and not doc.labels[erased].any()  # class 0 where object 1 was erased
    assert doc.history.undo_label == "erase object"
    doc.undo()
    assert (doc.labels[obj.labels == 1] == 3).all() and int((obj.labels == 1).sum()) > 600


def test_delete_by_click_clears_both_layers_and_undo_brings_it_back():
    doc = doc_of()
    disc(doc, 40, 40, 10, class_id=2)
    disc(doc, 100, 60, 10, class_id=2)
    ids_before, classes_before = doc.objects.labels.copy(), doc.labels.copy()
    target = doc.objects.object_at(40.5, 40.5)
    assert target == 1 and doc.objects.object_at(5, 5) == 0 and doc.objects.object_at(-3, 500) == 0
    box = doc.objects.delete(target)
    assert box is not None and doc.objects.count == 1 and not (doc.objects.labels == 1).any()
    assert not doc.labels[ids_before == 1].any() and (doc.labels[ids_before == 2] == 2).all()
    assert doc.objects.delete(99) is None and doc.history.undo_label == "delete object"
    doc.undo()
    assert np.array_equal(doc.objects.labels, ids_before) and np.array_equal(doc.labels, classes_before)


def test_merge_makes_one_object_and_keeps_classes():
    doc = doc_of()
    disc(doc, 40, 40, 10, class_id=1)
    disc(doc, 58, 40, 10, class_id=2)
    classes = doc.labels.copy()
    both = doc.objects.labels > 0
    assert doc.objects.merge(1, 2) is not None
    assert doc.objects.count == 1 and np.array_equal(doc.objects.labels > 0, both)
    assert (doc.objects.labels[both] == 1).all() and np.array_equal(doc.labels, classes)
    assert doc.objects.merge(1, 1) is None and doc.objects.merge(1, 7) is None
    assert len(doc.history) == 3
    doc.undo()
    assert doc.objects.count == 2


def test_split_along_a_line_makes_two_objects_and_loses_no_pixel():
    doc = doc_of()
    doc.set_brush_size(10)
    paint_object(doc, [(20, 60), (140, 60)], class_id=2)  # a long bar, object 1
    disc(doc, 80, 20, 6)  # object 2, not crossed
    bar = doc.objects.labels == 1
    classes = doc.labels.copy()
    new = doc.objects.split([(80.2, 40), (79.6, 80)])  # a vertical cut through the middle
    ids = doc.objects.labels
    assert new == [3]
    assert np.array_equal((ids == 1) | (ids == 3), bar)  # every pixel kept, in one of the two
    left, right = np.nonzero(ids == 1)[1], np.nonzero(ids == 3)[1]
    if left.mean() > right.mean():
        left, right = right, left
    assert left.max() <= 80 and right.min() >= 79  # one on each side of the (slanted) line
    assert abs(int((ids == 1).sum()) - int((ids == 3).sum())) < 40  # near halves
    assert np.array_equal(doc.labels, classes)  # classes untouched
    assert doc.history.undo_label == "split object"
    doc.undo()
    assert np.array_equal(doc.objects.labels == 1, bar) and doc.objects.count == 2


def test_a_line_that_does_not_cross_an_object_splits_nothing():
    doc = doc_of()
    disc(doc, 60, 60, 20)
    steps = len(doc.history)
    assert doc.objects.split([(60, 60), (60, 120)]) == []  # from the inside out: one piece
    assert doc.objects.split([(5, 5), (30, 5)]) == []  # on background
    assert doc.objects.count == 1 and len(doc.history) == steps


def test_split_pieces_gives_cut_pixels_and_crumbs_to_the_nearest_piece():
    inside = np.zeros((20, 20), bool)
    inside[2:18, 2:18] = True
    cut = np.zeros_like(inside)
    cut[:, 9] = True
    cut[3, 2] = cut[2, 3] = True  # cuts the corner pixel (2, 2) off: a crumb below the minimum
    pieces, n = split_pieces(inside, cut, min_piece=5)
    assert n == 2 and np.array_equal(pieces > 0, inside)
    left, right = pieces[2:18, 2:9], pieces[2:18, 10:18]
    assert len(np.unique(left)) == 1 and len(np.unique(right)) == 1 and left[0, 0] != right[0, 0]
    assert pieces[2, 2] == left[0, 0]  # the crumb went back to its side


def test_object_edits_wait_for_a_segmentation_preview():
    doc = doc_of()
    disc(doc, 40, 40, 8)
    doc.paste_region(0, 0, np.ones((10, 10), np.uint8))
    assert doc.objects.begin_paint(1) == 0 and doc.objects.delete(1) is None
    assert doc.objects.count == 1
    doc.cancel_preview()
    assert doc.objects.delete(1) is not None


def test_class_edits_and_object_edits_share_one_history():
    doc = doc_of()
    doc.set_active_class(2)
    doc.begin_stroke("brush")
    doc.stroke_to(10, 10)
    doc.end_stroke()
    disc(doc, 60, 60, 8, class_id=1)
    doc.fill(150, 110)  # fill the background with class 2
    assert [doc.history.undo_label] == ["fill"]
    doc.undo()
    doc.undo()  # the object
    assert doc.objects.count == 0 and doc.labels[10, 10] == 2
    doc.undo()
    assert not doc.labels.any()
    doc.redo()
    doc.redo()
    assert doc.objects.count == 1


def test_object_steps_count_against_the_history_bound():
    doc = doc_of(256, 256, history=History(max_bytes=60_000))
    rng = np.random.default_rng(0)
    for k in range(12):  # noisy objects: their patches do not compress to nothing
        ids = np.where(rng.random((256, 256)) < 0.5, k + 1, 0).astype(np.uint32)
        doc.objects.apply(ids, "noise")
    assert doc.history.nbytes < 60_000 + 300_000 and len(doc.history) < 12  # the oldest were dropped
    while doc.undo() is not None:
        pass
    assert doc.objects.count == 1  # the state before the oldest kept step, not the start


def test_apply_labels_with_objects_is_one_step():
    doc = doc_of(40, 40)
    labels = np.zeros((40, 40), np.uint8)
    labels[5:15, 5:15] = 1
    ids = np.zeros((40, 40), np.uint32)
    ids[5:15, 5:10], ids[5:15, 10:15] = 7, 8
    doc.apply_labels(labels, "restore", objects=ids)
    assert len(doc.history) == 1 and doc.objects.count == 2 and doc.objects.next_id() == 9
    doc.undo()
    assert not doc.labels.any() and doc.objects.count == 0


def test_set_labels_refuses_floats_and_other_sizes():
    doc = doc_of(10, 10)
    with pytest.raises(ValueError, match="integers"):
        doc.objects.set_labels(np.zeros((10, 10), np.float32))
    with pytest.raises(ValueError, match="fit"):
        doc.objects.set_labels(np.zeros((9, 10), np.uint16))
    doc.objects.set_labels(np.full((10, 10), 3, np.uint16))
    assert doc.objects.ids().tolist() == [3] and doc.objects.box_of(3) == Box(0, 0, 10, 10)


def test_new_class_labels_take_the_objects_along_in_the_same_step():
    """Segment with a model that gives classes only: object pixels it makes background are no
    object's (an object left without pixels is gone), one that changes class stays; one undo."""
    doc = doc_of(60, 80)
    gone, kept = disc(doc, 20, 20, 8), disc(doc, 55, 30, 8)
    before_ids, before_classes = doc.objects.labels.copy(), doc.labels.copy()
    new = np.zeros((60, 80), np.uint8)
    new[:, 40:] = 2  # the second object's pixels become class 2, the first's background
    doc.apply_labels(new, "segment")
    ids = doc.objects.labels
    assert doc.objects.ids().tolist() == [kept] and gone == 1
    assert np.array_equal(ids == kept, (before_ids == kept) & (new > 0))  # its pixels on background left it
    assert not ids[new == 0].any()
    assert len(doc.history) == 3 and doc.history.undo_label == "segment"
    doc.undo()  # one step back: both layers as before
    assert np.array_equal(doc.objects.labels, before_ids) and np.array_equal(doc.labels, before_classes)
    doc.redo()
    assert doc.objects.ids().tolist() == [kept]
