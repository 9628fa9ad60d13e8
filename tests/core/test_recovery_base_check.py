"""A chunked recovery copy records which saved mask it applies over; restoring it over that mask
after the mask changed is refused (or asked first) with one sentence naming the file (issue 25,
finding 14)."""

from __future__ import annotations

import json

import pytest

from core.classes import default_classes
from core.document.chunked_labels import ChunkedLabels
from core.document.recovery import BaseChangedError, RecoveryError, RecoveryStore

CLASSES = default_classes(4)


def _copy_over_saved_mask(tmp_path):
    image, saved = tmp_path / "slide.tif", tmp_path / "slide_mask.ome.zarr"
    c = ChunkedLabels.create(600, 800, chunk=128)
    c[:, :] = 1
    c.save_to(saved)
    c[0:50, 0:50] = 2  # unsaved: what the copy holds
    store = RecoveryStore(tmp_path / "appdata")
    snap = store.save_chunked(image, c, CLASSES, 3)
    c.close()
    return store, snap, saved


def test_a_copy_over_a_mask_saved_again_since_is_refused_naming_the_mask(tmp_path):
    store, snap, saved = _copy_over_saved_mask(tmp_path)
    assert snap.base_changed() is None
    other = ChunkedLabels.open(saved)  # another window saves the mask in the meantime
    other[300:600, 400:800] = 3
    other.save_to(saved)
    other.close()
    [found] = RecoveryStore(tmp_path / "appdata").recoverable(set())
    message = found.base_changed()
    assert message.startswith("slide.tif: the saved mask ") and str(saved.resolve()) in message
    assert "would mix the two masks" in message
    with pytest.raises(BaseChangedError, match="would mix the two masks") as caught:
        store.load_chunked(found)
    assert str(caught.value) == message and caught.value.base_path == saved.resolve()
    assert isinstance(caught.value, RecoveryError)  # the app's restore lists it as any copy it cannot restore
    mixed = store.load_chunked(found, base_changed_ok=True)  # the user was asked and said yes
    assert mixed[10, 10] == 2 and mixed[500, 700] == 3 and mixed[200, 200] == 1
    mixed.close()


def test_a_mask_replaced_by_another_file_is_a_change_too(tmp_path):
    store, snap, saved = _copy_over_saved_mask(tmp_path)
    replacement = ChunkedLabels.create(600, 800, chunk=128)
    replacement[:, :] = 1  # the same pixels, written anew (`unetseg segment` again, a copy from elsewhere)
    import shutil

    shutil.rmtree(saved)
    replacement.save_to(saved)
    replacement.close()
    with pytest.raises(BaseChangedError):
        store.load_chunked(snap)


def test_an_unchanged_mask_and_an_older_copy_without_a_fingerprint_restore_as_before(tmp_path):
    store, snap, saved = _copy_over_saved_mask(tmp_path)
    with store.load_chunked(snap) as back:
        assert back[10, 10] == 2 and back[200, 200] == 1 and back.changed_chunks() == [(0, 0)]
    manifest = json.loads(snap.manifest_path.read_text())
    del manifest["base_fingerprint"], manifest["fill"]  # as an older version wrote it
    snap.manifest_path.write_text(json.dumps(manifest))
    other = ChunkedLabels.open(saved)
    other[599, 799] = 3
    other.save_to(saved)
    other.close()
    [old] = store.snapshots()
    assert old.base_fingerprint is None and old.base_changed() is None  # nothing to compare with
    with store.load_chunked(old) as back:
        assert back[10, 10] == 2 and back[599, 799] == 3
