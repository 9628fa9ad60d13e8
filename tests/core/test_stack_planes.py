"""A stack's documents per plane (core.document.stack_planes), its recovery copies per plane, and
one plane of a stack as a 2-D source (core.io.plane_view)."""

from __future__ import annotations

import numpy as np
import pytest

from core.classes import default_classes
from core.document.recovery import RecoveryStore
from core.document.stack_planes import StackPlanes, mask_format, open_mask_stack
from core.io.masks import MaskError
from tests.stack_images import stack_data, write_ome_tiff


def paint(doc, x: float, y: float) -> None:
    doc.begin_stroke()
    doc.stroke_to(x, y)
    doc.end_stroke()


def test_undo_on_one_plane_never_touches_another_and_save_writes_every_plane(tmp_path):
    planes = StackPlanes("Z", (4,), 30, 40, default_classes(3))
    one, two = planes.select((1,)), planes.select((2,))
    paint(one.mask, 10, 10)
    paint(two.mask, 20, 20)
    before_two = two.mask.labels.copy()
    one.mask.undo()
    assert not one.mask.labels.any() and np.array_equal(two.mask.labels, before_two)
    assert planes.dirty_planes() == [(2,)]
    target = planes.save_masks(tmp_path / "cells_mask.ome.tif")
    assert not planes.dirty
    with open_mask_stack(target, "Z", (4, 30, 40)) as reader:
        assert np.array_equal(reader.read_plane((2,)), before_two)
        assert not reader.read_plane((0,)).any() and not reader.read_plane((1,)).any()


def test_planes_never_visited_keep_the_saved_stack_when_saved_again(tmp_path):
    mask = np.zeros((3, 20, 24), np.uint8)
    mask[0, 2:5, 2:5] = 2
    from core.io.label_stacks import write_label_stack

    path = write_label_stack(tmp_path / "s_mask.ome.tif", mask, "Z")
    planes = StackPlanes("Z", (3,), 20, 24, default_classes(3), mask=open_mask_stack(path, "Z", (3, 20, 24)))
    paint(planes.select((2,)).mask, 10, 10)
    planes.save_masks(path)  # the reader of the same file is replaced under it
    with open_mask_stack(path, "Z", (3, 20, 24)) as reader:
        assert np.array_equal(reader.read_plane((0,)), mask[0])  # plane 0 was never opened
        assert reader.read_plane((2,))[10, 10] == 1


def test_clean_planes_are_dropped_beyond_the_budget_dirty_ones_never(tmp_path):
    planes = StackPlanes("Z", (10,), 8, 8, default_classes(2), keep=2)
    paint(planes.select((0,)).mask, 3, 3)
    for z in range(1, 10):
        planes.select((z,))
    assert set(planes.loaded()) == {(0,), (7,), (8,), (9,)}  # dirty 0, two clean, the shown one
    assert planes.documents((0,)).mask.labels[3, 3] == 1


def test_a_class_renamed_on_one_plane_is_the_stacks():
    planes = StackPlanes("TZ", (2, 3), 8, 8, default_classes(3))
    a = planes.select((0, 1))
    renamed = [c if c.id != 2 else c.__class__(2, "nucleus", c.color) for c in a.mask.classes]
    a.mask.set_classes(renamed)
    assert planes.select((1, 2)).mask.classes == renamed and planes.peek((0, 1)).strokes.classes == renamed


def test_a_mask_with_other_planes_is_one_message_naming_both_shapes(tmp_path):
    from core.io.label_stacks import write_label_stack

    path = write_label_stack(tmp_path / "s_mask.ome.tif", np.zeros((4, 20, 24), np.uint8), "Z")
    with pytest.raises(MaskError, match=r"the mask is Z 4 x 20 x 24 but the image is Z 5 x 20 x 24"):
        open_mask_stack(path, "Z", (5, 20, 24))
    from PIL import Image

    flat = tmp_path / "s_mask.png"
    Image.fromarray(np.zeros((20, 24), np.uint8)).save(flat)
    with pytest.raises(MaskError, match=r"the mask is 20 x 24 but the image is Z 5 x 20 x 24"):
        open_mask_stack(flat, "Z", (5, 20, 24))


def test_large_mask_stacks_are_saved_as_ome_zarr():
    assert mask_format((20,), 512, 512) == "ome-tiff"
    assert mask_format((40,), 8192, 8192) == "ome-zarr"


def test_each_plane_has_its_own_recovery_copy(tmp_path):
    store = RecoveryStore(tmp_path, session="s1")
    image = tmp_path / "stack.tif"
    image.write_bytes(b"x")
    a, b = np.zeros((5, 6), np.uint8), np.ones((5, 6), np.uint8)
    store.save(image, a, default_classes(2), 1, plane=(2,), plane_axes="Z")
    store.save(image, b, default_classes(2), 1, plane=(3,), plane_axes="Z")
    snaps = RecoveryStore(tmp_path, session="s2").recoverable(set())
    assert sorted(s.plane for s in snaps) == [(2,), (3,)]
    by_plane = {s.plane: s for s in snaps}
    assert np.array_equal(store.load(by_plane[(3,)]), b) and by_plane[(2,)].name == "stack.tif Z 3"
    store.remove_image(image, (2,))
    assert [s.plane for s in store.own()] == [(3,)]


def test_a_plane_view_reads_its_plane_and_the_stack_sample_spans_planes(tmp_path):
    from core.io.plane_view import PlaneView, stack_sample
    from core.io.sources import open_source

    data = stack_data(z=6, c=2, h=32, w=40)
    data[0, 5] += 5000  # a bright last plane: a sample of the first plane alone would miss it
    path = write_ome_tiff(tmp_path / "s.ome.tif", data[0], "ZCYX")
    with open_source(path) as source:
        view = PlaneView(source, (5,))
        assert np.array_equal(view.read_raw(0, 32, 0, 40), np.moveaxis(data[0, 5], 0, -1))
        assert (view.width, view.height, view.channels) == (40, 32, 2)
        sample = stack_sample(source)
        assert sample.max() >= 5000 and sample.min() < 4000


def test_whole_planes_read_page_by_page_equal_the_sources_planes_in_every_layout(tmp_path):
    import tifffile

    from core.io.plane_cache import PlaneCache
    from core.io.sources import all_planes, open_source
    from core.io.whole_planes import TiffPlanes
    from tests.stack_images import write_imagej

    data = stack_data(t=2, z=3, c=2, h=20, w=24)
    rgb = np.random.default_rng(0).integers(0, 255, (6, 20, 24, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "bare.tif", np.concatenate([data[0, :, 0]] * 3))  # 9 bare pages: Z
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")  # pages of RGB: Z
    files = [write_ome_tiff(tmp_path / "zcyx.ome.tif", data[0], "ZCYX"),
             write_ome_tiff(tmp_path / "tczyx.ome.tif", np.moveaxis(data, 1, 2), "TCZYX"),
             write_imagej(tmp_path / "hyper.tif", data), tmp_path / "bare.tif", tmp_path / "rgb.tif"]
    for path in files:
        with open_source(path) as source:
            whole = TiffPlanes.open(path, source)
            assert whole is not None, path.name
            into = np.full((20, 24, source.channels), 7, np.dtype(source.dtype))  # a plane read before
            for plane in all_planes(source):
                truth = source.read_raw(0, 20, 0, 24, plane=plane)
                assert np.array_equal(whole.read(plane), truth), (path.name, plane)
                assert np.array_equal(whole.read(plane, out=into), truth), (path.name, plane)
            cache = PlaneCache(source, raw=False, whole=whole)  # the 8-bit view, as a photograph is shown
            assert np.array_equal(cache.get(all_planes(source)[-1]), source.read(0, 20, 0, 24, plane=all_planes(source)[-1]))
            cache.stop()


def test_browsing_reuses_a_dropped_planes_memory_but_never_one_still_shown(tmp_path, monkeypatch):
    """Each plane read while browsing a stack goes into the memory of one the cache dropped (fresh
    memory was up to 10x slower to fill), unless something still holds that plane: the plane on
    screen never changes under the user."""
    from core.io import plane_cache
    from core.io.plane_cache import PlaneCache
    from core.io.sources import open_source
    from core.io.whole_planes import TiffPlanes

    fresh, new_plane = [], plane_cache.plane_buffer
    monkeypatch.setattr(plane_cache, "plane_buffer", lambda *a: fresh.append(a) or new_plane(*a))
    data = stack_data(z=8, c=2, h=32, w=40)
    path = write_ome_tiff(tmp_path / "s.ome.tif", data[0], "ZCYX")
    truth = lambda z: np.moveaxis(data[0, z], 0, -1)  # noqa: E731
    with open_source(path) as source:
        cache = PlaneCache(source, raw=True, budget=2 * 32 * 40 * 2 * 2, whole=TiffPlanes.open(path, source))
        shown = cache.get((0,))  # held, as the view holds the plane it shows
        tile = cache.get((1,))[4:12, 8:24]  # a part of another, as a tile being drawn holds it
        for z in range(2, 8):
            plane = cache.get((z,))
            assert np.array_equal(plane, truth(z)), z
            del plane
        assert np.array_equal(shown, truth(0))  # dropped from the cache long ago, never written over
        assert np.array_equal(tile, truth(1)[4:12, 8:24])
        assert len(fresh) == 5  # 8 planes, new memory only until the cache was full (and for the 2 held)
        cache.stop()


def test_the_plane_cache_reads_ahead_and_keeps_to_its_budget(tmp_path):
    import time

    from core.io.plane_cache import PlaneCache
    from core.io.sources import open_source

    data = stack_data(z=8, c=2, h=32, w=40)
    path = write_ome_tiff(tmp_path / "s.ome.tif", data[0], "ZCYX")
    with open_source(path) as source:
        plane_bytes = 32 * 40 * 2 * 2
        cache = PlaneCache(source, raw=True, budget=4 * plane_bytes)
        assert np.array_equal(cache.get((2,)), np.moveaxis(data[0, 2], 0, -1))
        cache.prefetch([(3,), (1,), (4,), (0,), (5,)])
        deadline = time.monotonic() + 10
        while not ((3,) in cache and (1,) in cache and (4,) in cache) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (3,) in cache and (1,) in cache and (4,) in cache and (5,) not in cache  # the budget's room
        reads = cache.reads
        assert np.array_equal(cache.get((3,)), np.moveaxis(data[0, 3], 0, -1)) and cache.reads == reads
        cache.stop()


def test_segment_stack_takes_a_planes_saved_objects_along_with_its_new_classes(tmp_path):
    """A plane not in memory gets its documents on the worker: its saved objects on pixels the
    result makes background are gone in the same undo step, and adopting the plane keeps that."""
    from core.document.stack_planes import segmented_documents
    from core.io.label_stacks import StackReader

    planes = StackPlanes("Z", (3,), 20, 24, default_classes(3))
    layer = planes.select((1,)).mask.objects
    layer.begin_paint(1)
    layer.stroke_to(6, 6)
    layer.end_stroke()
    saved = planes.save_objects(tmp_path / "s_instances.ome.tif")
    assert planes.sources()[2] == saved
    with StackReader(saved, "Z", objects=True) as objects:
        docs = segmented_documents((1,), np.zeros((20, 24), np.uint8), default_classes(3), None, None, objects)
    assert docs.mask.objects.is_empty and docs.mask.history.undo_label == "segment stack"
    fresh = StackPlanes("Z", (3,), 20, 24, default_classes(3), objects=StackReader(saved, "Z", objects=True))
    assert fresh.adopt((1,), docs) and fresh.objects_to_save()
    assert not fresh.objects_plane((1,)).any()
    docs.mask.undo()
    assert fresh.objects_plane((1,))[6, 6] == 1
    fresh.close()
    planes.close()


def new_object(doc, x: float, y: float) -> int:
    object_id = doc.objects.begin_paint(1)
    doc.objects.stroke_to(x, y)
    doc.objects.end_stroke()
    return object_id


def test_an_object_id_names_one_object_in_the_whole_stack_saved_and_reopened(tmp_path):
    """Objects painted on two planes get ids free over the stack (the planes in memory and the
    saved objects stack), so the saved instance stack never repeats an id on two planes."""
    from core.io.label_stacks import StackReader

    planes = StackPlanes("Z", (4,), 20, 24, default_classes(3), keep=0)
    assert [new_object(planes.select((3,)).mask, x, 6) for x in (4, 16)] == [1, 2]
    assert [new_object(planes.select((1,)).mask, x, 12) for x in (4, 16)] == [3, 4]
    saved = planes.save_objects(tmp_path / "s_instances.ome.tif")
    planes.close()
    with StackReader(saved, "Z", objects=True) as reader:
        ids = [set(np.unique(reader.read_plane((z,))).tolist()) - {0} for z in range(4)]
    assert ids == [set(), {3, 4}, set(), {1, 2}]

    again = StackPlanes("Z", (4,), 20, 24, default_classes(3), objects=StackReader(saved, "Z", objects=True))
    doc = again.select((0,)).mask  # a plane without objects: the saved planes' ids are taken
    assert new_object(doc, 10, 10) == 5
    doc.objects.split([(10, 0), (10.5, 19)])  # a split's new piece is numbered over the stack too
    assert doc.objects.ids().tolist() == [5, 6]
    again.close()


def test_an_id_deleted_on_one_plane_is_not_given_to_another_where_undo_would_repeat_it():
    """Each plane has its own undo: an object deleted on plane 0 comes back with plane 0's Ctrl+Z,
    whatever was painted elsewhere meanwhile.  So the stack never gives an id again in a session
    (and each plane's largest id, remembered between new objects since reading a large plane takes
    milliseconds, is forgotten by any change of that plane)."""
    planes = StackPlanes("Z", (3,), 20, 24, default_classes(3), keep=5)
    first = planes.select((0,)).mask
    assert [new_object(first, x, 6) for x in (4, 16)] == [1, 2]
    first.objects.delete(2)
    other = planes.select((2,)).mask
    assert new_object(other, 4, 12) == 3  # not 2, which plane 0's undo brings back
    first.undo()
    assert set(first.objects.ids().tolist()) == {1, 2} and other.objects.ids().tolist() == [3]
    other.undo()
    other.redo()
    assert new_object(planes.select((1,)).mask, 10, 10) == 4
    planes.close()


def test_segment_all_on_a_stack_leaves_unsaved_the_objects_its_new_mask_cleared(tmp_path):
    """Segment All writes the mask stack, not the objects stack: a plane whose objects the new
    classes cleared stays unsaved (Save writes them), a plane without objects counts as saved."""
    from core.io.label_stacks import write_label_stack

    planes = StackPlanes("Z", (2,), 20, 24, default_classes(3))
    new_object(planes.select((0,)).mask, 6, 6)
    paint(planes.select((1,)).mask, 6, 6)
    planes.save_objects(tmp_path / "s_instances.ome.tif")
    planes.save_masks(tmp_path / "s_mask.ome.tif")
    segmented = write_label_stack(tmp_path / "s_mask.ome.tif", np.zeros((2, 20, 24), np.uint8), "Z")
    planes.reload_mask(segmented)
    assert planes.peek((0,)).mask.objects.is_empty and planes.dirty_planes() == [(0,)]
    assert planes.objects_to_save()
    planes.close()
