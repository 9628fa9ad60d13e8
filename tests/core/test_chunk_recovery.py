"""Recovery copies of chunked masks hold only the changed chunks and restore over the saved mask."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from core.document.chunked_labels import ChunkedLabels
from core.classes import default_classes
from core.document.recovery import RecoveryError, RecoveryStore

CLASSES = default_classes(4)


def test_a_copy_of_a_new_huge_mask_holds_its_changed_chunks_only(tmp_path):
    image = tmp_path / "slide.svs"
    c = ChunkedLabels.create(100_000, 100_000)
    c[10:20, 10:20] = 1
    c[70_000:70_600, 5_000:5_100] = 2  # two chunks of rows
    store = RecoveryStore(tmp_path / "appdata")
    snap = store.save(image, c, CLASSES, 7)  # save() hands a chunked mask to save_chunked
    assert snap.kind == "chunks" and snap.chunk == (512, 512) and snap.problem is None
    assert snap.chunks == [(0, 0), (136, 9), (137, 9)] and snap.base_path is None
    with zipfile.ZipFile(snap.data_path) as zf:
        assert sorted(zf.namelist()) == ["0.0.npy", "69632.4608.npy", "70144.4608.npy"]
    assert snap.data_path.stat().st_size < 20_000
    manifest = json.loads(snap.manifest_path.read_text())
    assert manifest["image_size"] == [100_000, 100_000] and manifest["chunks"] == [[0, 0], [136, 9], [137, 9]]
    with pytest.raises(RecoveryError, match="load_chunked"):
        store.load(snap)
    other = RecoveryStore(tmp_path / "appdata")
    [found] = other.recoverable(set())
    back = other.load_chunked(found)
    assert back.shape == (100_000, 100_000) and back.path is None
    assert back[15, 15] == 1 and back[70_599, 5_099] == 2 and back[70_600, 5_099] == 0
    assert back.class_counts()[2] == 600 * 100 and back.changed_chunks() == [(0, 0), (136, 9), (137, 9)]
    back.close()
    c.close()


def test_a_copy_restores_over_the_saved_mask_and_is_replaced_and_removed(tmp_path):
    image = tmp_path / "a.tif"
    saved = tmp_path / "a_mask.ome.zarr"
    c = ChunkedLabels.create(700, 900, chunk=128)
    c[:, :] = 3
    c.save_to(saved)
    c[0:5, 0:5] = 1
    store = RecoveryStore(tmp_path / "appdata")
    store.save_chunked(image, c, CLASSES, 1)
    c[600:700, 800:900] = 2
    snap = store.save_chunked(image, c, CLASSES, 2)  # replaces the first copy
    assert len(list(store.folder.glob("*.zip"))) == 1 and len(store.own()) == 1
    assert snap.mask_path == saved.resolve() and snap.base_path == saved.resolve()
    assert snap.chunks == [(0, 0), (4, 6), (4, 7), (5, 6), (5, 7)]
    expected = c[:, :]
    c.close()
    back = store.load_chunked(store.own()[0], cache_bytes=1 << 20)
    np.testing.assert_array_equal(back[:, :], expected)
    assert back.path == saved and back.changed_chunks() == [(0, 0), (4, 6), (4, 7), (5, 6), (5, 7)]
    np.testing.assert_array_equal(back.read_level(1, 300, 350, 400, 450), expected[600::2, 800::2])
    back.close()
    store.remove_image(image)
    assert list(store.folder.iterdir()) == []


def test_damaged_or_orphaned_chunk_copies_are_one_sentence(tmp_path):
    image = tmp_path / "a.tif"
    saved = tmp_path / "a_mask.ome.zarr"
    c = ChunkedLabels.create(300, 300, chunk=128)
    c.save_to(saved)
    c[0, 0] = 1
    store = RecoveryStore(tmp_path / "appdata")
    snap = store.save_chunked(image, c, CLASSES, 1)
    c.close()
    snap.data_path.write_bytes(b"not a zip")
    with pytest.raises(RecoveryError, match=r"^a.tif: the recovery copy is damaged \("):
        store.load_chunked(snap)
    snap.data_path.unlink()
    with pytest.raises(RecoveryError, match="data file is missing"):
        store.load_chunked(snap)
    c = ChunkedLabels.open(saved)
    c[1, 1] = 2
    snap = store.save_chunked(image, c, CLASSES, 1)
    c.close()
    import shutil

    shutil.rmtree(saved)
    with pytest.raises(RecoveryError, match="a_mask.ome.zarr, is gone"):
        store.load_chunked(snap)
    manifest = json.loads(snap.manifest_path.read_text())
    manifest["chunks"] = "many"
    snap.manifest_path.write_text(json.dumps(manifest))
    [bad] = store.snapshots()
    assert bad.problem == "the recovery copy does not record its chunks"
    np_snap = store.save(tmp_path / "small.png", np.zeros((4, 4), np.uint8), CLASSES, 0)
    with pytest.raises(RecoveryError, match="not a chunked mask's"):
        store.load_chunked(np_snap)
