"""Live Training's strokes document: a sparse index mask (255 = not annotated) with the mask's
editing, undo and file naming."""

from __future__ import annotations

import numpy as np
import pytest

from core.classes import default_classes
from core.document.strokes import UNANNOTATED, StrokeDocument, read_strokes, write_strokes
from core.io.mask_naming import strokes_path
from core.io.masks import MaskError


def paint(doc: StrokeDocument, tool: str, points) -> None:
    doc.begin_stroke(tool)
    for x, y in points:
        doc.stroke_to(x, y)
    doc.end_stroke()


def test_brush_annotates_the_eraser_un_annotates_and_undo_restores():
    doc = StrokeDocument.blank((40, 60), default_classes(3))
    assert doc.is_blank and (doc.labels == UNANNOTATED).all() and not doc.dirty
    doc.set_brush_size(5)
    doc.set_active_class(2)
    paint(doc, "brush", [(10, 10), (30, 10)])
    doc.set_active_class(0)  # background strokes are annotations too
    paint(doc, "brush", [(10, 30), (20, 30)])
    counts = doc.class_pixels()
    assert set(counts) == {0, 2} and counts[2] > counts[0] > 0
    assert doc.annotated_pixels == counts[0] + counts[2] and doc.dirty
    paint(doc, "eraser", [(10, 10), (30, 10)])  # erasing leaves "not annotated", not background
    assert set(doc.class_pixels()) == {0} and doc.labels[10, 20] == UNANNOTATED
    doc.undo()
    assert doc.class_pixels()[2] == counts[2]
    doc.undo()
    doc.undo()
    assert doc.is_blank and not doc.dirty


def test_id_255_cannot_be_painted_it_means_not_annotated():
    doc = StrokeDocument.blank((20, 20), default_classes(3))
    doc.set_active_class(255)
    paint(doc, "brush", [(5, 5), (15, 5)])
    assert doc.is_blank and not doc.history.can_undo


def test_the_same_255_as_the_trainer_ignores():
    from core.training.loop import IGNORE

    assert UNANNOTATED == IGNORE


def test_strokes_file_beside_the_image_round_trips(tmp_path):
    image = tmp_path / "slide 1.ome.tif"
    path = strokes_path(image)
    assert path == tmp_path / "slide 1_strokes.png"
    assert strokes_path(tmp_path / "cells.png") == tmp_path / "cells_strokes.png"
    labels = np.full((30, 50), UNANNOTATED, np.uint8)
    labels[3:6, 4:20] = 1
    labels[20:25, 30:40] = 0
    write_strokes(path, labels, default_classes(2))
    assert np.array_equal(read_strokes(path, (30, 50)), labels)
    with pytest.raises(MaskError, match="slide 1_strokes.png"):
        read_strokes(path, (31, 50))  # not the image's size: one message naming the file


def test_the_command_line_finds_the_apps_strokes_beside_the_images(tmp_path):
    """``unetseg train --images DIR --masks DIR`` on the folder the app saved strokes in."""
    from PIL import Image

    from core.training.timed import stroke_pairs

    Image.fromarray(np.zeros((30, 50, 3), np.uint8)).save(tmp_path / "cells.png")
    labels = np.full((30, 50), UNANNOTATED, np.uint8)
    labels[3:6, 4:20], labels[20:25, 30:40] = 1, 0
    write_strokes(strokes_path(tmp_path / "cells.png"), labels, default_classes(2))
    pairs, _missing = stroke_pairs(tmp_path, tmp_path)
    assert (tmp_path / "cells.png", tmp_path / "cells_strokes.png") in pairs
