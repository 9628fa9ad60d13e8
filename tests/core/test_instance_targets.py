"""Instance annotations become training targets: background, each object's class inside, a boundary
band on every object's edge (also where two touch), and nothing where nothing was painted; bad
label images are one sentence naming the file."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from core.training.instance_targets import (UNANNOTATED, InstanceAnnotation, build_targets, instance_targets,
                                            object_classes, read_instance_labels)
from core.training.loop import IGNORE, TrainingDataError


def annotation() -> np.ndarray:
    """40 x 40, not annotated except: two touching 10 x 10 objects (ids 7 and 9), one object cut
    by the image's left edge (id 3), and a background stroke (0)."""
    objects = np.full((40, 40), UNANNOTATED, np.uint32)
    objects[10:20, 10:20] = 7
    objects[10:20, 20:30] = 9  # touches 7 along column 19/20
    objects[30:36, 0:6] = 3
    objects[2:5, 5:35] = 0
    return objects


def test_targets_mark_background_objects_and_their_edge_band():
    target = instance_targets(annotation(), {7: 1, 9: 1, 3: 1}, boundary_class=2, width=2)
    assert (target[2:5, 5:35] == 0).all()  # painted background
    assert target[0, 0] == IGNORE and target[25, 25] == IGNORE  # nothing painted there: teaches nothing
    assert (target[13:17, 13:17] == 1).all()  # inside
    assert (target[10:12, 10:20] == 2).all() and (target[18:20, 10:20] == 2).all()  # 2-pixel band at the edges
    assert (target[12:18, 18:22] == 2).all()  # where the two touch: both objects' bands, 4 pixels wide
    assert (target[12:18, 17] == 1).all()
    assert (target[32:34, 0] == 1).all()  # the image's own border is not an object's edge
    assert (target[30:32, 0:6] == 2).all()


def test_an_objects_class_is_its_hints_majority_and_strokes_elsewhere_only_mark_background():
    objects = annotation()
    hint = np.full(objects.shape, IGNORE, np.uint8)
    hint[12:18, 12:15] = 3  # votes for object 7: class 3
    hint[12:14, 15:17] = 1
    hint[30:40, 30:40] = 0  # a background stroke in the unannotated area
    hint[22:26, 30:34] = 4  # a class stroke where no object is painted: no outline known there
    classes = object_classes(objects, hint)
    assert classes == {3: 1, 7: 3, 9: 1}
    target = instance_targets(objects, classes, boundary_class=5, hint=hint)
    assert (target[13:17, 13:17] == 3).all() and (target[13:17, 23:27] == 1).all()
    assert (target[30:40, 30:40] == 0).all()
    assert (target[22:26, 30:34] == IGNORE).all()


def test_images_without_objects_are_skipped_and_counted():
    empty = np.full((20, 20), UNANNOTATED, np.uint32)
    empty[:5] = 0  # only background: nothing to separate
    built = build_targets([InstanceAnnotation(empty), InstanceAnnotation(annotation()), InstanceAnnotation(empty)])
    assert built.kept == [1] and built.skipped == [0, 2] and built.objects == 3
    assert built.spec.boundary_class == 2 and built.spec.object_classes == (1,)
    with pytest.raises(TrainingDataError, match="no label image has a painted object"):
        build_targets([InstanceAnnotation(empty)])


# --------------------------------------------------------------------------- reading label images


def test_a_16_bit_label_image_keeps_65535_as_not_annotated(tmp_path):
    raw = np.full((8, 9), 65535, np.uint16)
    raw[2:4, 2:4] = 12
    raw[6:] = 0
    tifffile.imwrite(tmp_path / "a.tif", raw)
    labels = read_instance_labels(tmp_path / "a.tif", (8, 9), "a.png")
    assert labels.dtype == np.uint32 and labels[2, 2] == 12 and labels[7, 0] == 0 and labels[0, 0] == UNANNOTATED


@pytest.mark.parametrize("array, message", [
    (np.zeros((8, 9), np.float32), r"^f\.tif: holds float32 values, but a label image holds whole-number object ids"),
    (np.full((8, 9), -1, np.int32), r"^f\.tif: holds negative ids \(-1\)"),
    (np.full((8, 9), 2**40, np.uint64), r"^f\.tif: holds the id 1099511627776, more than 2\^32 - 1 objects"),
    (np.zeros((3, 8, 9), np.uint16), r"^f\.tif: is a 3x8x9 array, not a 2-D label image"),
])
def test_bad_label_images_are_one_sentence_naming_the_file(tmp_path, array, message):
    tifffile.imwrite(tmp_path / "f.tif", array, photometric="minisblack")
    with pytest.raises(TrainingDataError, match=message):
        read_instance_labels(tmp_path / "f.tif", (8, 9), "f.png")


def test_a_label_image_of_another_size_names_both_files(tmp_path):
    tifffile.imwrite(tmp_path / "cells.tif", np.zeros((10, 12), np.uint16))
    with pytest.raises(TrainingDataError, match=r"^cells\.tif is 12x10 pixels but its image cells\.png is 9x8; "):
        read_instance_labels(tmp_path / "cells.tif", (8, 9), "cells.png")
