"""The app's object files (<stem>_instances.tif) and recovery copies of a document's objects."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from core.classes import default_classes
from core.document.recovery import RecoveryError, RecoveryStore
from core.io.instance_files import read_instances, write_instances
from core.io.mask_naming import instances_path
from core.io.masks import MaskError


def test_the_name_is_beside_the_image_with_the_stem_rule(tmp_path):
    assert instances_path(tmp_path / "cells.png") == tmp_path / "cells_instances.tif"
    assert instances_path(tmp_path / "slide.ome.tif") == tmp_path / "slide_instances.tif"


def test_uint16_while_ids_are_under_65535_then_uint32(tmp_path):
    ids = np.zeros((30, 40), np.uint32)
    ids[2:10, 3:9], ids[20:25, 30:38] = 7, 65534
    path = write_instances(tmp_path / "a_instances.tif", ids)
    assert tifffile.imread(path).dtype == np.uint16
    back, holes = read_instances(path, (30, 40))
    assert back.dtype == np.uint32 and np.array_equal(back, ids) and holes == 0
    ids[0, 0] = 65535  # would read as "not annotated" in 16 bits
    write_instances(path, ids)
    assert tifffile.imread(path).dtype == np.uint32
    assert np.array_equal(read_instances(path)[0], ids)


def test_65535_in_a_16_bit_file_is_not_annotated(tmp_path):
    arr = np.zeros((8, 8), np.uint16)
    arr[:2] = 65535
    arr[4:, 4:] = 3
    tifffile.imwrite(tmp_path / "t.tif", arr)
    ids, holes = read_instances(tmp_path / "t.tif")
    assert holes == 16 and not ids[:2].any() and (ids[4:, 4:] == 3).all()


def test_bad_files_are_one_message_naming_the_files(tmp_path):
    tifffile.imwrite(tmp_path / "f_instances.tif", np.zeros((8, 8), np.float32))
    with pytest.raises(MaskError, match="f_instances.tif: holds float32 values"):
        read_instances(tmp_path / "f_instances.tif")
    tifffile.imwrite(tmp_path / "s_instances.tif", np.zeros((8, 9), np.uint16))
    with pytest.raises(MaskError, match=r"s_instances.tif is 9x8, but the image s.png is 10x8"):
        read_instances(tmp_path / "s_instances.tif", (8, 10), tmp_path / "s.png")
    (tmp_path / "n_instances.tif").write_bytes(b"hello")
    with pytest.raises(MaskError, match="n_instances.tif: not a TIFF"):
        read_instances(tmp_path / "n_instances.tif")


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
