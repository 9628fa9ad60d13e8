"""Label stores: OME-Zarr and pyramidal OME-TIFF read back by zarr and tifffile; failed writes named."""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest
import tifffile
import zarr

from core.atomic import WriteError
from core.classes import default_classes
from core.io.label_store import LabelStore, StoreError, export_ome_tiff


def labels(h=1100, w=1300):
    y, x = np.mgrid[:h, :w]
    return ((x // 37 + y // 53) % 5).astype(np.uint8)


def filled_store(path, truth, chunks=(400, 512)):
    store = LabelStore.create(path, *truth.shape, chunks, {"k": 1})
    for block in store.blocks():
        y0, y1, x0, x1 = store.region(block)
        store.write_block(block, truth[y0:y1, x0:x1])
    store.finish(default_classes(5), name="t")
    return store


def test_ome_zarr_round_trip_through_zarr_with_a_nearest_pyramid(tmp_path):
    truth = labels()
    filled_store(tmp_path / "t.ome.zarr", truth)
    group = zarr.open_group(str(tmp_path / "t.ome.zarr"), mode="r")
    attrs = dict(group.attrs)
    datasets = attrs["multiscales"][0]["datasets"]
    assert [d["path"] for d in datasets] == ["0", "1", "2"]
    assert np.array_equal(group["0"][:], truth)
    assert np.array_equal(group["1"][:], truth[::2, ::2]) and np.array_equal(group["2"][:], truth[::4, ::4])
    assert attrs["image-label"]["colors"][1]["label-value"] == 1
    assert attrs["unetseg"]["run"] == {"k": 1} and not (tmp_path / "t.ome.zarr" / ".unetseg-done").exists()
    assert LabelStore.create(tmp_path / "t.ome.zarr", *truth.shape, (400, 512), {"k": 1}, resume=True).complete
    with pytest.raises(StoreError, match="was started with other settings"):  # never the old result silently
        LabelStore.create(tmp_path / "t.ome.zarr", *truth.shape, (400, 512), {"k": 2}, resume=True)
    assert json.loads((tmp_path / "t.ome.zarr" / "0" / ".zarray").read_text())["dimension_separator"] == "/"


def test_napari_s_ome_zarr_reader_reads_the_label_images(tmp_path):
    """ome-zarr-py is the reader napari-ome-zarr uses: it must see a label image with its
    pyramid and class colours, from a streamed store and from an edited chunked mask alike."""
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Multiscales, Reader

    from core.document.chunked_labels import ChunkedLabels

    truth = labels(700, 900)
    filled_store(tmp_path / "streamed.ome.zarr", truth, chunks=(256, 256))
    with ChunkedLabels.create(700, 900, chunk=256) as edited:
        edited[0:700, 0:900] = truth
        edited.save_to(tmp_path / "edited.ome.zarr", classes=default_classes(5))
    for name in ("streamed.ome.zarr", "edited.ome.zarr"):
        [node] = list(Reader(parse_url(str(tmp_path / name)))())
        assert {type(s) for s in node.specs} == {Label, Multiscales}
        assert [d.shape for d in node.data][:2] == [(700, 900), (350, 450)]
        assert np.array_equal(np.asarray(node.data[0]), truth)
        classes = default_classes(5)
        assert node.metadata["color"][3] == [c / 255 for c in classes[3].color] + [1.0]
        assert node.metadata["properties"][2] == {"name": classes[2].name}


def test_ome_tiff_labels_carry_schema_valid_ome_xml(tmp_path):
    """QuPath and Fiji open OME-TIFF through Bio-Formats, which needs valid OME-XML: checked
    against the OME schema (ome-types with xmlschema), for the CLI's export and the app's save."""
    import ome_types

    from core.document.chunked_labels import ChunkedLabels

    truth = labels(700, 900)
    store = filled_store(tmp_path / "s.ome.zarr", truth, chunks=(256, 256))
    export_ome_tiff(store, tmp_path / "cli.ome.tif")
    with ChunkedLabels.create(700, 900, chunk=256) as edited:
        edited[0:700, 0:900] = truth
        edited.save_to(tmp_path / "app.ome.tif", "ome-tiff", classes=default_classes(5))
    for name in ("cli.ome.tif", "app.ome.tif"):
        with tifffile.TiffFile(tmp_path / name) as tif:
            pixels = ome_types.from_xml(tif.ome_metadata, validate=True).images[0].pixels
            assert (pixels.size_x, pixels.size_y, pixels.type.value) == (900, 700, "uint8")
            assert len(tif.series[0].levels) >= 2 and np.array_equal(tif.series[0].asarray(), truth)


def test_ome_tiff_export_round_trip_through_tifffile(tmp_path):
    truth = labels()
    store = filled_store(tmp_path / "t.ome.zarr", truth)
    export_ome_tiff(store, tmp_path / "t.ome.tif")
    with tifffile.TiffFile(tmp_path / "t.ome.tif") as tif:
        assert tif.is_ome and tif.pages[0].is_tiled
        series = tif.series[0]
        assert [lv.shape for lv in series.levels] == [(1100, 1300), (550, 650), (275, 325)]
        assert np.array_equal(series.levels[0].asarray(), truth)
        assert np.array_equal(series.levels[1].asarray(), truth[::2, ::2])
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_done_blocks_are_recorded_and_resume_needs_the_same_settings(tmp_path):
    truth = labels(300, 300)
    store = LabelStore.create(tmp_path / "r.ome.zarr", 300, 300, (128, 128), {"model": "a"})
    store.write_block((1, 2), truth[128:256, 256:300])
    again = LabelStore.create(tmp_path / "r.ome.zarr", 300, 300, (128, 128), {"model": "a"}, resume=True)
    assert again.done() == {(1, 2)} and np.array_equal(again.read(128, 256, 256, 300), truth[128:256, 256:300])
    with pytest.raises(StoreError, match=r"r\.ome\.zarr: was started with other settings \(model: 'a' then"):
        LabelStore.create(tmp_path / "r.ome.zarr", 300, 300, (128, 128), {"model": "b"}, resume=True)
    fresh = LabelStore.create(tmp_path / "r.ome.zarr", 300, 300, (128, 128), {"model": "b"})
    assert fresh.done() == set()


def test_a_folder_that_is_not_a_store_is_never_replaced(tmp_path):
    (tmp_path / "mine.ome.zarr").mkdir()
    (tmp_path / "mine.ome.zarr" / "notes.txt").write_text("keep")
    with pytest.raises(StoreError, match="is not a UNetSeg label store"):
        LabelStore.create(tmp_path / "mine.ome.zarr", 10, 10, (10, 10), {})
    assert (tmp_path / "mine.ome.zarr" / "notes.txt").read_text() == "keep"


def test_a_full_disk_names_the_store_and_region_and_keeps_earlier_chunks(tmp_path, monkeypatch):
    truth = labels(256, 256)
    store = LabelStore.create(tmp_path / "f.ome.zarr", 256, 256, (128, 128), {})
    store.write_block((0, 0), truth[:128, :128])
    import zarr.storage._local as local

    seen = []

    def full(path, value, exclusive=False):  # zarr's own chunk writer, the disk full halfway through
        path.parent.mkdir(parents=True, exist_ok=True)
        with local._atomic_write(path, "wb", exclusive=exclusive) as f:
            data = bytes(value.as_buffer_like())
            f.write(data[:len(data) // 2])
            f.flush()
            seen.extend(path.parent.glob("*.partial"))  # the half chunk exists, under another name
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(local, "_put", full)
    with pytest.raises(WriteError, match=r"cannot write .*f\.ome\.zarr \(rows 0:128, columns 128:256\): the disk is full"):
        store.write_block((0, 1), truth[:128, 128:])
    monkeypatch.undo()
    assert not (tmp_path / "f.ome.zarr" / "0" / "0" / "1").exists()  # no half-written chunk under its name
    assert seen and store.done() == {(0, 0)}
    again = LabelStore.open(tmp_path / "f.ome.zarr")
    assert np.array_equal(again.read(0, 128, 0, 128), truth[:128, :128])
    assert not (again.read(0, 128, 128, 256)).any()  # the chunk reads as never written
    assert not list((tmp_path / "f.ome.zarr").rglob("*.partial"))  # and its half copy is gone


def test_a_block_is_on_disk_before_it_is_marked_done(tmp_path, monkeypatch):
    import os

    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst, **kwargs):
        events.append(("rename", str(dst)))
        return real_replace(src, dst, **kwargs)

    store = LabelStore.create(tmp_path / "d.ome.zarr", 300, 300, (128, 128), {})
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    store.write_block((1, 2), labels(300, 300)[128:256, 256:300])
    chunk = str(tmp_path / "d.ome.zarr" / "0" / "1" / "2")
    marker = str(tmp_path / "d.ome.zarr" / ".unetseg-done" / "1.2")
    assert ("fsync", chunk) in events and ("rename", marker) in events
    assert events.index(("fsync", chunk)) < events.index(("rename", marker))  # --resume trusts only synced data


def test_a_zarr_without_atomic_chunk_writes_is_refused(monkeypatch, tmp_path):
    from core.io.sources import require_zarr

    monkeypatch.setattr(zarr, "__version__", "3.1.2")  # chunks written in place: a crash tears them
    with pytest.raises(RuntimeError, match=r"zarr 3\.1\.3 or newer.*this is 3\.1\.2"):
        LabelStore.create(tmp_path / "old.ome.zarr", 10, 10, (10, 10), {})
    monkeypatch.setattr(zarr, "__version__", "3.1.3")
    assert require_zarr() is zarr
