"""Saving and opening chunked masks: OME-Zarr in place (changed chunks only) or copied, OME-TIFF,
LabelStore output, and failures that name the file and keep the previous one usable."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
import tifffile
import zarr

from core.document import chunked_labels
from core.atomic import WriteError
from core.document.chunked_labels import ChunkedLabels
from core.classes import default_classes
from core.io.label_store import LabelStore, StoreError


def truth(h=700, w=900):
    y, x = np.mgrid[:h, :w]
    out = ((x // 37 + y // 53) % 4).astype(np.uint8)
    out[:, 600:] = 0  # whole chunks of background: never stored
    return out


def painted(h=700, w=900, chunk=128, path=None):
    c = ChunkedLabels.create(h, w, chunk=chunk, path=path)
    c[:, :] = truth(h, w)
    return c


def _levels_ok(c, ref):
    for k in range(c.num_levels):
        h, w = c.level_shape(k)
        np.testing.assert_array_equal(c.read_level(k, 0, h, 0, w), ref[::2**k, ::2**k])


def test_save_a_new_mask_as_ome_zarr_and_open_it_again(tmp_path):
    ref = truth()
    c = painted()
    target = tmp_path / "slide_mask.ome.zarr"
    assert c.save_to(target, classes=default_classes(4)) == target
    assert c.changed_chunks() == [] and c.path == target and c.format == "ome-zarr"
    group = zarr.open_group(str(target), mode="r")
    attrs = dict(group.attrs)
    assert [d["path"] for d in attrs["multiscales"][0]["datasets"]] == ["0", "1"]
    assert attrs["image-label"]["properties"][1]["label-value"] == 1
    np.testing.assert_array_equal(group["0"][:], ref)
    np.testing.assert_array_equal(group["1"][:], ref[::2, ::2])
    assert not (target / "0" / "0" / "6").exists()  # an all-background chunk is not stored
    assert LabelStore.open(target).complete  # the layout LabelStore.finish writes
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary copy left
    c.close()
    with ChunkedLabels.open(target) as again:
        assert again.chunks == (128, 128) and again.class_counts_exact
        np.testing.assert_array_equal(again[:, :], ref)
        np.testing.assert_array_equal(again.class_counts(), np.bincount(ref.ravel(), minlength=256))
        _levels_ok(again, ref)


def test_saving_in_place_writes_only_the_changed_chunks(tmp_path):
    target = tmp_path / "m.ome.zarr"
    painted().save_to(target)
    c = ChunkedLabels.open(target)
    for root, _dirs, files in os.walk(target):
        for name in files:
            os.utime(os.path.join(root, name), (1, 1))
    c[130:140, 260:270] = 3  # inside chunk (1, 2)
    c[0, 899] = 2  # chunk (0, 7)
    assert c.changed_chunks() == [(1, 2), (0, 7)][::-1]
    c.save_to(target)
    touched = sorted(os.path.relpath(os.path.join(r, n), target) for r, _d, fs in os.walk(target) for n in fs
                     if os.stat(os.path.join(r, n)).st_mtime != 1)
    assert touched == [".zattrs", ".zgroup", "0/0/7", "0/1/2", "1/0/1"]  # (0, 899) is not on level 1
    assert c.changed_chunks() == []
    ref = truth()
    ref[130:140, 260:270] = 3
    ref[0, 899] = 2
    c.close()
    with ChunkedLabels.open(target) as again:
        np.testing.assert_array_equal(again[:, :], ref)
        _levels_ok(again, ref)
        np.testing.assert_array_equal(again.class_counts(), np.bincount(ref.ravel(), minlength=256))


def test_create_with_a_path_writes_an_empty_store_and_a_huge_one_is_free(tmp_path):
    big = ChunkedLabels.create(100_000, 100_000, path=tmp_path / "big.ome.zarr")
    assert big.num_levels == 9 and big[99_999, 99_999] == 0
    big[50_176:50_600, 50_176:50_600] = 1  # inside one chunk of every level, and seen by every level
    big.save_to(tmp_path / "big.ome.zarr")
    files = [n for _r, _d, fs in os.walk(tmp_path / "big.ome.zarr") for n in fs if not n.startswith(".")]
    assert len(files) == 9  # one chunk per level, nothing else
    big.close()
    with pytest.raises(StoreError, match="big.ome.zarr: already exists"):
        ChunkedLabels.create(10, 10, path=tmp_path / "big.ome.zarr")


def test_open_what_unetseg_segment_writes(tmp_path):
    ref = truth(1100, 1300)
    store = LabelStore.create(tmp_path / "s.ome.zarr", 1100, 1300, (400, 512), {"k": 1})
    for block in store.blocks():
        y0, y1, x0, x1 = store.region(block)
        store.write_block(block, ref[y0:y1, x0:x1])
    store.finish(default_classes(4))
    with ChunkedLabels.open(tmp_path / "s.ome.zarr") as c:
        assert c.shape == (1100, 1300) and c.chunks == (400, 512) and c.num_levels == 3
        np.testing.assert_array_equal(c.read(300, 900, 100, 1200), ref[300:900, 100:1200])
        _levels_ok(c, ref)
        assert c.class_counts_exact  # 1.4 Mpx: counted from level 0 at open


def test_counts_are_estimated_from_a_coarse_level_until_counted_exactly(tmp_path, monkeypatch):
    ref = truth()
    target = tmp_path / "m.ome.zarr"
    c = painted()
    c.save_to(target)
    c.close()
    group = zarr.open_group(str(target), mode="r+")
    attrs = dict(group.attrs)
    del attrs["unetseg"]["class_counts"]  # as a store from LabelStore: no counts recorded
    group.attrs.put(attrs)
    monkeypatch.setattr(chunked_labels, "COUNT_LEVEL_PIXELS", 400 * 500)
    with ChunkedLabels.open(target) as c:
        exact = np.bincount(ref.ravel(), minlength=256)
        estimate = c.class_counts()
        assert not c.class_counts_exact and estimate.sum() == ref.size
        assert np.allclose(estimate[:4], exact[:4], rtol=0.05)
        c[0:10, 0:10] = 9
        assert c.class_counts()[9] == 100
        counted = c.count_exactly()
        ref[0:10, 0:10] = 9
        np.testing.assert_array_equal(counted, np.bincount(ref.ravel(), minlength=256))
        assert c.class_counts_exact


def test_missing_pyramid_levels_are_built_at_open(tmp_path):
    ref = truth()
    store = LabelStore.create(tmp_path / "u.ome.zarr", 700, 900, (256, 256), {"k": 1})
    for block in store.blocks():  # never finished: level 0 only
        y0, y1, x0, x1 = store.region(block)
        store.write_block(block, ref[y0:y1, x0:x1])
    with ChunkedLabels.open(tmp_path / "u.ome.zarr") as c:
        _levels_ok(c, ref)
        c.save_to(tmp_path / "u.ome.zarr")
    group = zarr.open_group(str(tmp_path / "u.ome.zarr"), mode="r")
    np.testing.assert_array_equal(group["1"][:], ref[::2, ::2])


def test_ome_tiff_save_is_pyramidal_and_opens_lazily(tmp_path):
    ref = truth()
    c = painted()
    target = tmp_path / "m_mask.ome.tif"
    c.save_to(target, fmt="ome-tiff")
    assert c.format == "ome-tiff" and c.changed_chunks() == []
    with tifffile.TiffFile(target) as tif:
        assert tif.is_ome and tif.pages[0].is_tiled
        assert [lv.shape for lv in tif.series[0].levels] == [(700, 900), (350, 450)]
        np.testing.assert_array_equal(tif.series[0].levels[1].asarray(), ref[::2, ::2])
    c[5:10, 5:10] = 1
    ref[5:10, 5:10] = 1
    np.testing.assert_array_equal(c[:, :], ref)  # edits over the TIFF base
    c.save_to(tmp_path / "again.ome.zarr")  # a full copy from the TIFF base
    c.close()
    with ChunkedLabels.open(target) as t:
        np.testing.assert_array_equal(t[:, :], truth())
    with ChunkedLabels.open(tmp_path / "again.ome.zarr") as z:
        np.testing.assert_array_equal(z[:, :], ref)


def test_failed_saves_name_the_file_and_keep_the_previous_one(tmp_path, monkeypatch):
    target = tmp_path / "m.ome.zarr"
    c = painted()
    c.save_to(target)
    c[0:300, 0:300] = 5
    (tmp_path / "afile").write_text("x")
    with pytest.raises(WriteError, match="afile/m.ome.zarr"):
        c.save_to(tmp_path / "afile" / "m.ome.zarr")
    with pytest.raises(WriteError, match="not an OME-Zarr store"):
        c.save_to(tmp_path / "afile")
    real = zarr.Array.__setitem__
    calls = []

    def full_disk(self, key, value):
        calls.append(1)
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, key, value)

    monkeypatch.setattr(zarr.Array, "__setitem__", full_disk)
    with pytest.raises(WriteError, match=r"cannot write .*copy.ome.zarr: the disk is full"):
        c.save_to(tmp_path / "copy.ome.zarr")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert c.changed_chunks()  # still unsaved
    calls.clear()
    with pytest.raises(WriteError, match=r"cannot write .*m.ome.zarr: the disk is full"):
        c.save_to(target)  # in place: chunks written before the failure are whole chunks
    monkeypatch.setattr(zarr.Array, "__setitem__", real)
    assert (c[0:300, 0:300] == 5).all() and c.changed_chunks()  # the document keeps the edit
    with ChunkedLabels.open(target) as old:  # the whole mask is the old one or the new one, never a mix
        a = old[:, :]
        before, after = truth(), truth()
        after[0:300, 0:300] = 5
        assert np.array_equal(a, before) or np.array_equal(a, after)
    c.save_to(target)
    with ChunkedLabels.open(target) as new:
        assert (new[0:300, 0:300] == 5).all()


def test_bad_masks_are_refused_with_the_file_named(tmp_path):
    with pytest.raises(StoreError, match="nothere.ome.zarr: the mask does not exist"):
        ChunkedLabels.open(tmp_path / "nothere.ome.zarr")
    (tmp_path / "junk.ome.zarr").mkdir()
    with pytest.raises(StoreError, match="junk.ome.zarr: not an OME-Zarr label mask"):
        ChunkedLabels.open(tmp_path / "junk.ome.zarr")
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(StoreError, match="rgb.tif: a label mask must be a 2-D uint8 image"):
        ChunkedLabels.open(tmp_path / "rgb.tif")
    (tmp_path / "text.tif").write_text("no")
    with pytest.raises(StoreError, match="text.tif: not a readable TIFF mask"):
        ChunkedLabels.open(tmp_path / "text.tif")


def test_the_app_names_a_chunked_mask_beside_the_image_and_finds_it(tmp_path):
    from core.io.masks import find_mask_for_image
    from core.io.mask_naming import chunked_mask_path, default_mask_path

    image = tmp_path / "slide.ome.tif"
    image.write_bytes(b"x")
    assert chunked_mask_path(image) == tmp_path / "slide_mask.ome.zarr"
    assert chunked_mask_path(tmp_path / "a.svs", "ome-tiff") == tmp_path / "a_mask.ome.tif"
    with pytest.raises(ValueError, match="not 'png'"):
        chunked_mask_path(image, "png")
    assert find_mask_for_image(image) is None
    (tmp_path / "slide_mask.ome.zarr").mkdir()  # an empty folder is not a mask
    assert find_mask_for_image(image) is None
    (tmp_path / "slide_mask.ome.zarr").rmdir()
    (tmp_path / "slide_mask.ome.tif").write_bytes(b"x")
    assert find_mask_for_image(image) == tmp_path / "slide_mask.ome.tif"
    c = ChunkedLabels.create(10, 10, path=chunked_mask_path(image))
    c.close()
    assert find_mask_for_image(image) == tmp_path / "slide_mask.ome.zarr"  # zarr before TIFF
    default_mask_path(image).write_bytes(b"x")
    assert find_mask_for_image(image) == default_mask_path(image)  # a PNG the app saved still wins


def _foreign_store(path, ref, zarr_format, chunks, coarse_chunks=None):
    """A label pyramid written by zarr-python itself (not by UNetSeg): zarr v3 with NGFF 0.5's "ome"
    attributes and "c/<y>/<x>" chunk keys, or zarr v2 with another chunk grid per level."""
    group = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    levels = [ref, ref[::2, ::2]]
    for k, data in enumerate(levels):
        a = group.create_array(str(k), shape=data.shape, dtype="uint8", fill_value=0,
                               chunks=chunks if k == 0 else (coarse_chunks or chunks))
        a[:, :] = data
    ms = [{"version": "0.4", "axes": [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
           "datasets": [{"path": str(k), "coordinateTransformations": [{"type": "scale", "scale": [2.0**k] * 2}]}
                        for k in range(len(levels))]}]
    image_label = {"colors": [{"label-value": 3, "rgba": [1, 2, 3, 255]}],
                   "properties": [{"label-value": 3, "name": "gland"}]}
    if zarr_format == 3:
        group.attrs.update({"ome": {"version": "0.5", "multiscales": ms, "image-label": image_label}})
    else:
        group.attrs.update({"multiscales": ms, "image-label": image_label})


@pytest.mark.parametrize("zarr_format, chunks, coarse", [
    (3, (128, 128), None),  # NGFF 0.5: "c/<y>/<x>" keys the v2 listing never saw
    (2, (32, 32), None),  # chunks under 64: the in-memory grid is coarser than the file's
    (2, (128, 128), (64, 96)),  # a coarse level chunked otherwise than level 0
    (2, (128, 512), "cap"),  # chunks over CHUNK_MAX: split in memory, three per file chunk
])
def test_a_store_in_another_layout_is_saved_whole(tmp_path, monkeypatch, zarr_format, chunks, coarse):
    if coarse == "cap":
        monkeypatch.setattr(chunked_labels, "CHUNK_MAX", 192)
        coarse = None
    ref = truth()
    source = tmp_path / "theirs.ome.zarr"
    _foreign_store(source, ref, zarr_format, chunks, coarse)
    c = ChunkedLabels.open(source)
    assert max(c.chunks) <= chunked_labels.CHUNK_MAX
    np.testing.assert_array_equal(c[:, :], ref)
    c[650:700, 850:900] = 5  # one edit far from the others
    edited = ref.copy()
    edited[650:700, 850:900] = 5
    c.save_to(tmp_path / "copy.ome.zarr")  # Save As: a copy of every chunk that may hold a label
    with ChunkedLabels.open(tmp_path / "copy.ome.zarr") as copy:
        np.testing.assert_array_equal(copy[:, :], edited)
        _levels_ok(copy, edited)
    c.close()
    c = ChunkedLabels.open(source)
    c[0:10, 0:10] = 6
    ref[0:10, 0:10] = 6
    c.save_to(source)  # in place
    c.close()
    with ChunkedLabels.open(source) as again:
        np.testing.assert_array_equal(again[:, :], ref)
        _levels_ok(again, ref)
        assert [(k.id, k.name, k.color) for k in again.classes] == [(3, "gland", (1, 2, 3))]  # kept


_KILLED_SAVE = r"""
import os, shutil, sys
import numpy as np, zarr
from core.document import save_journal
from core.document.chunked_labels import ChunkedLabels

path, kill_at = sys.argv[1], int(sys.argv[2])
c = ChunkedLabels.open(path)
c[100:140, 100:140] = 7  # with the next edit: 3 chunks of level 0, 1 of level 1
c[300:310, 0:300] = 2
calls = 0

def dies_at_step(real):
    def step(*args, **kwargs):
        global calls
        calls += 1
        if calls == kill_at:
            os._exit(9)  # a kill: no cleanup, no flush
        return real(*args, **kwargs)
    return step

zarr.Array.__setitem__ = dies_at_step(zarr.Array.__setitem__)
os.rename, os.replace = dies_at_step(os.rename), dies_at_step(os.replace)
shutil.rmtree = dies_at_step(shutil.rmtree)
save_journal._write_file = dies_at_step(save_journal._write_file)
c.save_to(path)
print("saved after", calls, "steps")
"""


def _edited(ref):
    new = ref.copy()
    new[100:140, 100:140] = 7
    new[300:310, 0:300] = 2
    return new


@pytest.mark.slow
@pytest.mark.parametrize("finished", [True, False])
def test_a_save_killed_at_any_step_leaves_the_old_mask_or_the_new(tmp_path, finished):
    import subprocess
    import sys

    old = truth(600, 600)  # 3 x 3 chunks of 256, and a level of 2 x 2: few steps to kill at
    new = _edited(old)
    states = {"old": old, "new": new}
    seen, step = set(), 0
    while True:
        step += 1
        target = tmp_path / f"k{step}.ome.zarr"
        if finished:  # a mask the app saved: every level and exact counts in the file
            painted(600, 600, chunk=256).save_to(target)
        else:  # what an interrupted `unetseg segment` leaves: level 0 only, the pyramid built at open
            store = LabelStore.create(target, 600, 600, (256, 256), {"k": 1})
            for block in store.blocks():
                y0, y1, x0, x1 = store.region(block)
                store.write_block(block, old[y0:y1, x0:x1])
        run = subprocess.run([sys.executable, "-c", _KILLED_SAVE, str(target), str(step)], capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": os.getcwd()}, timeout=60)
        assert run.returncode in (0, 9), run.stderr
        with ChunkedLabels.open(target) as again:
            level0 = again[:, :]
            which = [name for name, ref in states.items() if np.array_equal(level0, ref)]
            assert which, f"killed at step {step}: the mask is a mix of the old and the new"
            _levels_ok(again, states[which[0]])  # the pyramid shows the same state
            if again.class_counts_exact:
                np.testing.assert_array_equal(again.class_counts(), np.bincount(level0.ravel(), minlength=256))
        assert not [p.name for p in target.iterdir() if "unetseg-journal" in p.name or "unetseg-new" in p.name]
        seen.add(which[0])
        if run.returncode == 0:
            break
    assert seen == {"old", "new"} and step > 8  # killed before and after the commit, at every step


# bytes the disk takes: the journal needs about 4.4 kB, then come the chunks and the attributes
@pytest.mark.parametrize("budget", [0, 1, 1500, 3100, 4400, 5000, 5300, 8000, 60_000])
def test_a_full_disk_at_any_byte_of_an_in_place_save_leaves_the_old_mask_or_the_new(tmp_path, monkeypatch, budget):
    import zarr.storage._local as local

    from core.document import save_journal

    old = truth(600, 600)
    new = _edited(old)
    target = tmp_path / "m.ome.zarr"
    painted(600, 600, chunk=256).save_to(target)
    c = ChunkedLabels.open(target)
    c[100:140, 100:140] = 7
    c[300:310, 0:300] = 2
    left = [budget]

    def spend(data: bytes) -> bytes:
        """What fits on the disk; ENOSPC (after writing it) when not all of ``data`` does."""
        fits = data[:left[0]]
        left[0] -= len(fits)
        return fits

    real_write, real_put = save_journal._write_file, local._put

    def write_file(path, data):
        fits = spend(bytes(data))
        real_write(path, fits)
        if len(fits) < len(data):
            raise OSError(errno.ENOSPC, "No space left on device")

    def put(path, value, exclusive=False):  # zarr's chunk writer with the disk full part way
        data = bytes(value.as_buffer_like())
        fits = spend(data)
        if len(fits) == len(data):
            return real_put(path, value, exclusive)
        path.parent.mkdir(parents=True, exist_ok=True)
        with local._atomic_write(path, "wb", exclusive=exclusive) as f:
            f.write(fits)
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(save_journal, "_write_file", write_file)
    monkeypatch.setattr(local, "_put", put)
    try:
        c.save_to(target)
        failed = False
    except WriteError as exc:
        assert "m.ome.zarr: the disk is full" in str(exc)
        failed = True
    monkeypatch.undo()
    np.testing.assert_array_equal(c[:, :], new)  # the document holds every edit
    assert bool(c.changed_chunks()) == failed  # and still counts them as unsaved after a failure
    with ChunkedLabels.open(target) as again:
        level0 = again[:, :]
        state = new if np.array_equal(level0, new) else old
        np.testing.assert_array_equal(level0, state)
        _levels_ok(again, state)
        np.testing.assert_array_equal(again.class_counts(), np.bincount(level0.ravel(), minlength=256))
    c.save_to(target)  # once the disk has room
    c.close()
    with ChunkedLabels.open(target) as again:
        np.testing.assert_array_equal(again[:, :], new)


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_a_strip_tiff_mask_is_read_and_exported_in_bounded_chunks(tmp_path, monkeypatch, compression):
    import tracemalloc

    from core.io import objects

    ref = np.zeros((4096, 4096), np.uint8)
    ref[1000:1100, 2000:2300] = 3
    ref[4000:4096, 0:50] = 1
    path = tmp_path / "plain_mask.tif"
    tifffile.imwrite(path, ref, compression=compression)  # one strip of 16 MB, or strips of 64 whole rows
    tracemalloc.start()
    try:
        c = ChunkedLabels.open(path, cache_bytes=2**20)  # builds its pyramid: one pass over level 0
        assert c.read(1050, 1060, 2100, 2110).tolist() == [[3] * 10] * 10
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert max(c.chunks) <= chunked_labels.CHUNK_MAX and min(c.chunks) >= 64  # not the file's whole strip
    assert peak < ref.nbytes // 2  # the 16 MB strip is never decoded whole
    blocks = []
    real = objects.block_objects

    def spy(array, options=objects.ObjectOptions(), block=1024):
        blocks.append(block)
        return real(array, options, block)

    monkeypatch.setattr(objects, "block_objects", spy)
    found = objects.objects_of(c)
    assert blocks and max(blocks) <= objects.BLOCK  # object exports read blocks of whole capped chunks
    assert sorted((o.class_id, o.bbox, o.area) for o in found) == [(1, (0, 4000, 50, 96), 4800),
                                                                    (3, (2000, 1000, 300, 100), 30000)]
    c.close()


def test_a_mask_from_unetseg_segment_keeps_its_classes_and_knows_a_rare_class(tmp_path, monkeypatch):
    from core.classes import ClassInfo

    monkeypatch.setattr(chunked_labels, "COUNT_LEVEL_PIXELS", 100)  # an estimate would read the coarsest level
    ref = truth(1100, 1300)
    ref[1001, 1001] = 7  # one pixel of a rare class, off every coarse level's grid
    classes = [ClassInfo(0, "background", (0, 0, 0)), ClassInfo(1, "gland", (10, 20, 30)),
               ClassInfo(2, "stroma", (40, 50, 60)), ClassInfo(3, "fat", (70, 80, 90)),
               ClassInfo(7, "mitosis", (200, 0, 0))]
    path = tmp_path / "s.ome.zarr"
    store = LabelStore.create(path, 1100, 1300, (400, 512), {"k": 1})
    for block in store.blocks():
        y0, y1, x0, x1 = store.region(block)
        store.write_block(block, ref[y0:y1, x0:x1])
    store.finish(classes)
    with ChunkedLabels.open(path) as c:
        assert c.class_counts_exact and c.class_counts()[7] == 1  # counted by finish, not estimated
        np.testing.assert_array_equal(c.class_counts(), np.bincount(ref.ravel(), minlength=256))
        assert c.classes == classes  # the file's names and colours
        c[0:10, 0:10] = 2
        c.save_to(path)  # in place, as the app's Save without a class list
    label = dict(zarr.open_group(str(path), mode="r").attrs)["image-label"]
    assert [(p["label-value"], p["name"]) for p in label["properties"]] == [(c.id, c.name) for c in classes]
    assert label["colors"][-1] == {"label-value": 7, "rgba": [200, 0, 0, 255]}
