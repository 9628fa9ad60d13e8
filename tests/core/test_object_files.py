"""Where the app keeps a document's objects: <stem>_instances.tif beside the image (written and
read by core.io.label_images), and recovery copies of unsaved objects."""

from __future__ import annotations

import numpy as np
import pytest

from core.classes import default_classes
from core.document.recovery import RecoveryError, RecoveryStore
from core.io.mask_naming import instances_path


def test_the_name_is_beside_the_image_with_the_stem_rule(tmp_path):
    assert instances_path(tmp_path / "cells.png") == tmp_path / "cells_instances.tif"
    assert instances_path(tmp_path / "slide.ome.tif") == tmp_path / "slide_instances.tif"
    assert instances_path(tmp_path / "a" / "b.tiff") == tmp_path / "a" / "b_instances.tif"  # as --format instances


def test_a_recovery_copy_keeps_the_objects_and_replaces_them(tmp_path):
    image = tmp_path / "cells.png"
    image.write_bytes(b"x")
    store = RecoveryStore(tmp_path / "data", session="s1")
    labels = np.zeros((20, 30), np.uint8)
    ids = np.zeros((20, 30), np.uint32)
    ids[3:8, 3:8] = 5
    store.save(image, labels, default_classes(2), 3, objects=ids)
    snap = store.snapshots()[0]
    assert np.array_equal(store.load_objects(snap), ids) and snap.objects_path.is_file()
    ids[10:15, 10:15] = 70000
    store.save(image, labels, default_classes(2), 4, objects=ids)
    snap2 = store.snapshots()[0]
    assert np.array_equal(store.load_objects(snap2), ids)
    assert not snap.objects_path.exists()  # the earlier copy's objects went with it
    store.save(image, labels, default_classes(2), 5)  # no objects any more
    assert store.load_objects(store.snapshots()[0]) is None
    assert len(list((tmp_path / "data" / "recovery").glob("*.npy"))) == 1
    store.remove_image(image)
    assert not list((tmp_path / "data" / "recovery").iterdir())


def test_damaged_object_copies_say_so(tmp_path):
    image = tmp_path / "cells.png"
    image.write_bytes(b"x")
    store = RecoveryStore(tmp_path / "data", session="s1")
    store.save(image, np.zeros((5, 6), np.uint8), default_classes(2), 1, objects=np.ones((5, 6), np.uint32))
    snap = store.snapshots()[0]
    np.save(snap.objects_path, np.ones((5, 7), np.uint32))
    with pytest.raises(RecoveryError, match="objects are damaged"):
        store.load_objects(snap)
    snap.objects_path.unlink()
    with pytest.raises(RecoveryError, match="objects file is missing"):
        store.load_objects(snap)
