"""Held-out strokes: a stroke is held out of training or trained on from the moment it is first
seen, whatever the user paints, erases or opens afterwards (finding 4 of issue 25)."""

from __future__ import annotations

import numpy as np

from core.training.loop import IGNORE
from core.training.sparse import StrokeRoles, strokes_of


def blank(h: int = 200, w: int = 200) -> np.ndarray:
    return np.full((h, w), IGNORE, np.uint8)


def paint(mask: np.ndarray, row: int, c: int, x0: int = 10, length: int = 30) -> np.ndarray:
    out = mask.copy()
    out[row:row + 2, x0:x0 + length] = c
    return out


def held_rows(roles: StrokeRoles, name: str, mask: np.ndarray) -> set[tuple[int, int]]:
    """(row, class) of the strokes whose pixels are held out."""
    where, classes = roles.held_pixels(name, mask)
    rows = where // mask.shape[1]
    return {(int(r) // 2 * 2, int(c)) for r, c in zip(rows, classes)}


def two_classes(rows) -> np.ndarray:
    mask = blank()
    for r in rows:
        mask = paint(paint(mask, r, 0), r, 1, x0=120)
    return mask


def test_the_fifth_stroke_of_each_class_is_held_out_and_the_first_four_always_train():
    roles = StrokeRoles(share=0.2, min_strokes=5)
    mask = two_classes(range(10, 100, 20))  # 5 strokes a class, in raster order
    assert len(strokes_of(mask)) == 10
    assert held_rows(roles, "a", mask) == {(90, 0), (90, 1)}
    few = StrokeRoles()
    assert held_rows(few, "a", two_classes(range(10, 80, 20))) == set()  # 4 strokes a class: all train


def test_roles_stay_when_strokes_are_added_erased_and_images_come_and_go():
    roles = StrokeRoles()
    mask = two_classes(range(10, 100, 20))
    first = held_rows(roles, "a", mask)
    # the user paints 4 more strokes per class above the held-out ones (raster order puts them first)
    more = mask
    for r in (0, 4, 104, 108):
        more = paint(paint(more, r, 0), r, 1, x0=120)
    assert held_rows(roles, "a", more) == first  # the new ones (strokes 6-9) train; 5 stays held out
    # ... erases a trained stroke
    erased = more.copy()
    erased[10:12] = IGNORE
    assert held_rows(roles, "a", erased) == first
    # ... opens another image with strokes, listed before the first one
    other = two_classes((30,))
    assert held_rows(roles, "b", other) == set()  # the 10th stroke of a class would be the next held-out one
    assert held_rows(roles, "a", erased) == first
    # ... and makes a held-out stroke longer: it stays held out, longer
    longer = paint(erased, 90, 0, x0=10, length=60)
    where, _ = roles.held_pixels("a", longer)
    assert (longer.reshape(-1)[where] != IGNORE).all() and held_rows(roles, "a", longer) == first
    assert where.size > roles.held_pixels("a", erased)[0].size


def test_the_same_strokes_in_another_order_of_calls_keep_their_roles():
    """Re-running the split with a fixed seed (the old hold_out) moved strokes between the roles
    as strokes were added; here a stroke's role never changes once given."""
    roles = StrokeRoles()
    seen: dict[tuple[int, int], bool] = {}
    mask = blank(400, 200)
    for k, r in enumerate(range(0, 384, 16)):  # 24 strokes a class, one at a time
        mask = paint(paint(mask, r, 0), r, 1, x0=120)
        held = held_rows(roles, "a", mask)
        for stroke in [(rr, c) for rr in range(0, r + 1, 16) for c in (0, 1)]:
            is_held = stroke in held
            assert seen.setdefault(stroke, is_held) == is_held, (k, stroke)
    assert sum(seen.values()) == 2 * 4  # strokes 5, 10, 15, 20 of each class
