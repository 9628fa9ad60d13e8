"""A stack through the one batch writer as the app uses it (issue 27): a StackMasks job in
write_batch, Export Mask's chosen names, Segment All's label stack beside the stack; class names
and object ids in the OME-TIFF label stacks; reads of one stack from several threads at once."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import tifffile

from core.classes import ClassInfo
from core.io.label_stacks import StackReader, write_label_stack
from core.io.mask_naming import export_stem, stack_export_path, stack_instances_path, stack_mask_path
from core.io.sources import all_planes, open_source
from core.segment.batch_writer import BatchWriter, ImageResult, StackMasks, write_batch
from tests.stack_images import stack_data, write_ome_tiff

CLASSES = [ClassInfo(0, "background", (0, 0, 0)), ClassInfo(1, "nucleus", (200, 20, 20)),
           ClassInfo(2, "membrane", (20, 200, 20))]


def masks_of(z: int, h: int, w: int) -> np.ndarray:
    masks = np.zeros((z, h, w), np.uint8)
    for k in range(z):
        masks[k, 2 + 2 * k:8 + 2 * k, 4:20] = 1 + k % 2
    return masks


def stack_job(path, masks, **kwargs):
    """A write_batch job's produce(): the stack's own source, its planes' masks from ``masks``."""
    def produce():
        source = open_source(path)

        def fill(add):
            for plane in all_planes(source):
                add(plane, masks[plane])
        return StackMasks(source, fill, close=source.close, **kwargs)
    return produce


def test_write_batch_writes_a_stack_beside_2d_images_into_one_folder(tmp_path):
    path = write_ome_tiff(tmp_path / "cells.ome.tif", stack_data(z=4)[0], "ZCYX")
    masks = masks_of(4, 40, 48)
    flat = np.zeros((40, 48), np.uint8)
    flat[5:9, 5:9] = 2
    out = tmp_path / "out"
    writer = BatchWriter(out, ["tiff", "coco"], CLASSES)
    result = write_batch(writer, [(path, "cells", stack_job(path, masks)),
                                  (tmp_path / "flat.png", "flat", lambda: ImageResult(flat))])
    assert result.done == 2 and not result.errors
    with StackReader(out / "cells.tif") as reader:  # the stack: one label stack with its Z
        assert reader.plane_axes == "Z" and reader.shape == (4, 40, 48)
        assert all(np.array_equal(reader.read_plane((z,)), masks[z]) for z in range(4))
    assert tifffile.imread(out / "flat.tif").shape == (40, 48)
    coco = json.loads((out / "coco.json").read_text())
    assert [im.get("z") for im in coco["images"]] == [0, 1, 2, 3, None]
    assert not list(out.glob(".*"))  # no work stores left


def test_beside_the_image_a_stack_gets_its_mask_stack_and_a_cancel_writes_nothing(tmp_path):
    path = write_ome_tiff(tmp_path / "cells.ome.tif", stack_data(z=3)[0], "ZCYX")
    masks = masks_of(3, 40, 48)
    writer = BatchWriter(None, ["index"], CLASSES)  # Segment All: beside each image, the app's save name
    result = write_batch(writer, [(path, "cells", stack_job(path, masks), {"index": stack_mask_path(path)})])
    assert result.done == 1 and result.written == [stack_mask_path(path)]
    with StackReader(stack_mask_path(path), "Z") as reader:
        assert reader.shape == (3, 40, 48) and np.array_equal(reader.read(), masks)
        assert reader.classes == CLASSES  # the class names and colours travel in the OME-TIFF

    stack_mask_path(path).unlink()

    def cancelled():
        source = open_source(path)

        def fill(add):
            add((0,), masks[0])
            return False  # stopped after the first plane
        return StackMasks(source, fill, close=source.close)

    result = write_batch(BatchWriter(None, ["index"], CLASSES), [(path, "cells", cancelled)])
    assert result.cancelled and result.written == [] and not stack_mask_path(path).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cells.ome.tif"]  # no partial mask, no work store


def test_export_mask_names_a_stacks_files(tmp_path):
    path = write_ome_tiff(tmp_path / "cells.ome.tif", stack_data(z=3)[0], "ZCYX")
    masks = masks_of(3, 40, 48)
    out = tmp_path / "out"
    out.mkdir()
    for fmt in ("ome-tiff", "geojson", "coco", "measurements"):
        chosen = out / f"chosen_{stack_export_path(path, out, fmt).name}"
        writer = BatchWriter(out, [fmt], CLASSES, create_folder=False, shared={fmt: chosen})
        result = write_batch(writer, [(path, export_stem(chosen, fmt), stack_job(path, masks, targets={fmt: chosen}))])
        assert not result.errors and chosen in result.written, fmt
    assert StackReader(out / "chosen_cells.ome.tif").shape == (3, 40, 48)
    assert {f["properties"]["z"] for f in json.loads((out / "chosen_cells.geojson").read_text())["features"]} == {0, 1, 2}
    assert stack_export_path(tmp_path / "cells.tif", tmp_path, "tiff").name == "cells_mask.tif"  # never the stack
    assert export_stem(out / "cells_color.png", "color") == "cells"
    assert stack_instances_path(path).name == "cells_instances.ome.tif"


@pytest.mark.parametrize("name", ["m.ome.tif", "m.ome.zarr"])
def test_class_names_read_back_from_label_stacks(tmp_path, name):
    labels = masks_of(3, 20, 24)
    with StackReader(write_label_stack(tmp_path / name, labels, "Z", CLASSES), "Z") as reader:
        assert reader.classes == CLASSES
    with StackReader(write_label_stack(tmp_path / f"plain_{name}", labels, "Z"), "Z") as reader:
        assert reader.classes == []


def test_an_objects_stack_reads_as_ids(tmp_path):
    from core.io.label_stacks import write_tiff_stack

    ids = np.zeros((3, 20, 24), np.uint16)
    ids[1, 2:6, 2:6], ids[2, 8:12, 3:9] = 300, 70000 % 65535
    write_tiff_stack(tmp_path / "o.ome.tif", iter(ids), "Z", ids.shape, ome=True, dtype=np.uint16)
    with StackReader(tmp_path / "o.ome.tif", "Z", objects=True) as reader:
        plane = reader.read_plane((1,))
        assert plane.dtype == np.uint32 and int(plane.max()) == 300
    with pytest.raises(ValueError, match="class ids are 0-255"):
        with StackReader(tmp_path / "o.ome.tif", "Z") as reader:  # as a class mask: refused, naming the file
            reader.read_plane((1,))


def test_one_stack_and_its_mask_read_from_several_threads_at_once(tmp_path):
    """The window, the read-ahead thread and a worker may read one source and one mask stack at once."""
    data = stack_data(z=8, h=96, w=80, seed=2)[0]
    path = write_ome_tiff(tmp_path / "s.ome.tif", data, "ZCYX", compression="zlib", rowsperstrip=8)
    labels = np.random.default_rng(1).integers(0, 4, (8, 96, 80), dtype=np.uint8)
    write_label_stack(tmp_path / "m.ome.tif", labels, "Z")
    from core.io.whole_planes import TiffPlanes

    wrong = []
    with open_source(path) as source, StackReader(tmp_path / "m.ome.tif", "Z") as reader:
        whole = TiffPlanes.open(path, source)  # the plane cache's page-by-page reader

        def work(k: int) -> None:
            for i in range(24):
                z = (i * 3 + k) % 8
                if not np.array_equal(source.read_raw(0, 96, 0, 80, plane=(z,)), np.moveaxis(data[z], 0, -1)):
                    wrong.append(("pixels", z))
                if not np.array_equal(whole.read((z,)), np.moveaxis(data[z], 0, -1)):
                    wrong.append(("whole plane", z))
                if not np.array_equal(reader.read_plane((z,)), labels[z]):
                    wrong.append(("mask", z))

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        whole.close()
    assert wrong == []


class GatedSource:
    """A stack source whose plane reads wait until the test opens the gate (a slow disk, made
    deterministic), so what waits for a read shows without timing anything."""

    def __init__(self, source):
        self._source, self.gate = source, threading.Event()

    def __getattr__(self, name):
        return getattr(self._source, name)

    def read_raw(self, *args, **kwargs):
        self.gate.wait(30)
        return self._source.read_raw(*args, **kwargs)


def test_a_cold_plane_is_read_on_the_read_ahead_thread_and_waited_for(tmp_path):
    from core.io.plane_cache import PlaneCache

    data = stack_data(z=5, h=24, w=32)[0]
    path = write_ome_tiff(tmp_path / "s.ome.tif", data, "ZCYX")
    with open_source(path) as source:
        gated = GatedSource(source)
        cache = PlaneCache(gated, raw=True)
        assert cache.plane_bytes == 24 * 32 * 2 * 2
        assert not cache.pending((3,)) and not cache.wait((3,), 0.0)  # never asked for: nothing to wait on
        cache.prefetch([(3,)])
        assert cache.pending((3,)) and not cache.wait((3,), 0.05)  # asked for, still being read
        assert (3,) not in cache
        gated.gate.set()
        assert cache.wait((3,), 10) and not cache.pending((3,))
        assert np.array_equal(cache.get((3,)), np.moveaxis(data[3], 0, -1)) and cache.reads == 1
        cache.stop()
