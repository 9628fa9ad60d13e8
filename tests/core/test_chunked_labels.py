"""ChunkedLabels against a numpy reference, and MaskDocument editing it exactly as it edits numpy."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from core.document import chunked_labels
from core.document.chunked_labels import ChunkedLabels
from core.document.mask_document import MaskDocument
from core.document.editing import Box
from core.io.label_store import PYRAMID_MIN, level_sample


def _pyramid_ok(c: ChunkedLabels, ref: np.ndarray) -> None:
    """Every level equals the label_store rule applied to the reference."""
    for k in range(c.num_levels):
        h, w = c.level_shape(k)
        expected = level_sample(ref, 0, 0, 2**k)[2]
        assert expected.shape == (h, w)
        np.testing.assert_array_equal(c.read_level(k, 0, h, 0, w), expected)


def test_random_writes_match_numpy_at_every_level_and_in_counts():
    rng = np.random.default_rng(0)
    h, w = 700, 1100
    ref = np.zeros((h, w), np.uint8)
    c = ChunkedLabels.create(h, w, chunk=64)
    assert c.shape == (h, w) and c.dtype == np.uint8 and c.ndim == 2 and c.chunks == (64, 64) and c.size == h * w
    assert c.num_levels == 3 and c.level_shape(2) == (175, 275)  # halved until <= PYRAMID_MIN
    assert max(c.level_shape(c.num_levels - 1)) <= PYRAMID_MIN
    for _ in range(60):
        y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
        y1, x1 = min(h, y0 + int(rng.integers(1, 200))), min(w, x0 + int(rng.integers(1, 200)))
        if rng.random() < 0.5:
            value = rng.integers(0, 6, (y1 - y0, x1 - x0), dtype=np.uint8)
        else:
            value = int(rng.integers(0, 6))
        c[y0:y1, x0:x1] = value
        ref[y0:y1, x0:x1] = value
    np.testing.assert_array_equal(c[:, :], ref)
    np.testing.assert_array_equal(c.read(10, 500, 33, 1000), ref[10:500, 33:1000])
    np.testing.assert_array_equal(np.bincount(ref.ravel(), minlength=256), c.class_counts())
    assert c.class_counts_exact
    _pyramid_ok(c, ref)
    c.close()


def test_indexing_like_numpy():
    c = ChunkedLabels.create(300, 200, chunk=64)
    c[5, 7] = 9
    c[-1, -1] = 4
    assert c[5, 7] == 9 and c[299, 199] == 4 and isinstance(c[5, 7], np.uint8)
    np.testing.assert_array_equal(c[5, 0:10], [0] * 7 + [9, 0, 0])
    assert c[0:10, 7].shape == (10,) and c[290:400, 190:].shape == (10, 10)
    piece = c[0:10, 0:10]
    piece[...] = 1  # a new array: the mask is unchanged
    assert c[0, 0] == 0
    with pytest.raises(IndexError, match="step 1"):
        c[::2, :]
    with pytest.raises(IndexError):
        c[300, 0]
    with pytest.raises(ValueError, match="0..255"):
        c[0:2, 0:2] = 300
    assert np.asarray(c).shape == (300, 200)


def test_whole_array_conversion_is_refused_above_the_limit(monkeypatch):
    monkeypatch.setattr(chunked_labels, "ARRAY_LIMIT", 1000)
    c = ChunkedLabels.create(100, 100)
    with pytest.raises(MemoryError, match="100x100 chunked mask is too large"):
        np.asarray(c)


def test_cache_is_bounded_and_evicted_edits_survive():
    rng = np.random.default_rng(1)
    h, w = 640, 640
    ref = rng.integers(0, 4, (h, w), dtype=np.uint8)
    c = ChunkedLabels.create(h, w, chunk=64, cache_bytes=8 * 64 * 64)
    for y0 in range(0, h, 100):
        c[y0:y0 + 100, :] = ref[y0:y0 + 100]
        assert c.cached_bytes <= c.cache_bytes
    assert c._levels[0].in_scratch  # spilled to the private scratch store
    np.testing.assert_array_equal(c[:, :], ref)
    _pyramid_ok(c, ref)
    c.flush()
    assert not c._dirty
    np.testing.assert_array_equal(c[100:300, 50:600], ref[100:300, 50:600])
    tmp = c._tmp
    assert tmp.exists()
    c.close()
    assert not tmp.exists()  # the private store goes with close()


def test_changed_chunks_are_the_ones_really_changed():
    c = ChunkedLabels.create(1000, 1000, chunk=256)
    c[0:10, 0:10] = 0  # same value: nothing changes
    assert c.changed_chunks() == []
    c[300:310, 600:900] = 2
    assert c.changed_chunks() == [(1, 2), (1, 3)]
    assert c.chunk_region((1, 3)) == (256, 512, 768, 1000)


def test_a_huge_mask_costs_nothing_and_200_strokes_stay_bounded():
    """100,000 x 100,000: only written chunks exist; cache, history and Python heap stay bounded."""
    c = ChunkedLabels.create(100_000, 100_000, cache_bytes=16 * 2**20)
    doc = MaskDocument(c)
    doc.set_brush_size(40)
    rng = np.random.default_rng(2)
    tracemalloc.start()
    for i in range(200):
        x, y = rng.uniform(0, 100_000, 2)
        doc.begin_stroke("brush", value=1 + i % 3)
        for t in range(4):
            doc.stroke_to(x + 30 * t, y + 20 * t)
        doc.end_stroke()
        assert c.cached_bytes <= c.cache_bytes
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 80 * 2**20
    assert doc.history.nbytes <= doc.history.max_bytes and len(doc.history) == 200
    assert doc.present_classes() == [0, 1, 2, 3]
    painted = int(c.class_counts()[1:4].sum())
    assert 200 * 4000 < painted < 200 * 7000  # a 40 px brush dragged 108 px paints ~5,600 px
    assert len(c.changed_chunks()) <= 800
    for _ in range(200):
        doc.undo()
    assert doc.present_classes() == [0] and c.class_counts()[0] == 10**10
    # the coarsest level shows nothing left either
    k = c.num_levels - 1
    assert not c.read_level(k, 0, c.level_shape(k)[0], 0, c.level_shape(k)[1]).any()
    c.close()


# --------------------------------------------------------------------------- document parity


def _pair(h=300, w=400, chunk=64):
    rng = np.random.default_rng(3)
    base = (rng.random((h, w)) < 0.02).astype(np.uint8) * 2
    base[100:200, 100:300] = 3
    c = ChunkedLabels.create(h, w, chunk=chunk)
    c[:, :] = base
    return MaskDocument(base.copy()), MaskDocument(c)


def _same(a: MaskDocument, b: MaskDocument) -> None:
    np.testing.assert_array_equal(a.labels, b.labels[:, :])
    assert a.present_classes() == b.present_classes()
    assert (a.can_undo, a.can_redo, a.dirty) == (b.can_undo, b.can_redo, b.dirty)


def test_document_edits_a_chunked_mask_exactly_as_numpy():
    a, b = _pair()
    assert b.is_chunked and not a.is_chunked
    ops = [
        lambda d: (d.set_active_class(1), d.begin_stroke(), d.stroke_to(10, 10), d.stroke_to(250, 120),
                   d.stroke_to(390, 290), d.end_stroke()),
        lambda d: (d.set_brush_size(25), d.begin_stroke("eraser"), d.stroke_to(150, 150), d.stroke_to(170, 60),
                   d.end_stroke()),
        lambda d: (d.set_active_class(4), d.fill_polygon([(20, 250), (200, 180), (380, 299), (50, 299)])),
        lambda d: (setattr(d, "protected", frozenset({3})), d.set_active_class(5),
                   d.fill_polygon([(0, 0), (400, 0), (400, 160), (0, 160)]), setattr(d, "protected", frozenset())),
        lambda d: d.pick(150.5, 120.5),
        lambda d: (d.set_active_class(6), d.fill(150, 120)),
    ]
    for op in ops:
        op(a)
        op(b)
        _same(a, b)
        assert a.active_class == b.active_class
    for _ in range(3):
        assert a.undo() == b.undo()
        _same(a, b)
    for _ in range(2):
        assert a.redo() == b.redo()
        _same(a, b)
    counts = np.bincount(a.labels.ravel(), minlength=256)
    np.testing.assert_array_equal(b.labels.class_counts(), counts)
    _pyramid_ok(b.labels, a.labels)


def test_preview_cancel_and_commit_on_a_chunked_mask():
    a, b = _pair()
    before = a.labels.copy()
    for d in (a, b):
        d.paste_region(0, 0, np.full((100, 120), 7, np.uint8))
        d.paste_region(250, 350, np.full((100, 100), 8, np.uint8))  # clipped at the edge
        assert d.preview_active and not d.can_undo
        assert d.begin_stroke() is None and d.fill(5, 5) is None  # edits refused during a preview
    _same(a, b)
    assert a.cancel_preview() == b.cancel_preview()
    np.testing.assert_array_equal(b.labels[:, :], before)
    _same(a, b)
    # a cancelled segmentation keeps its finished tiles: one undo step
    for d in (a, b):
        d.paste_region(10, 20, np.full((64, 64), 9, np.uint8))
        box = d.commit_preview("segment (cancelled)")
        assert box == Box(10, 20, 74, 84) and not d.preview_active and d.dirty
        assert d.history.undo_label == "segment (cancelled)"
    _same(a, b)
    assert b.commit_preview() is None
    a.undo()
    b.undo()
    np.testing.assert_array_equal(b.labels[:, :], before)
    _same(a, b)


@pytest.mark.parametrize("chunked", [False, True])
def test_bounded_fill_reports_clipping(chunked):
    labels = np.zeros((200, 300), np.uint8)
    labels[:, 150] = 2  # a wall: the left region is 200 x 150
    labels[50:60, 200:210] = 3  # a closed square on the right
    if chunked:
        c = ChunkedLabels.create(200, 300, chunk=64)
        c[:, :] = labels
        doc = MaskDocument(c)
    else:
        doc = MaskDocument(labels.copy())
    doc.set_active_class(1)
    box, clipped = doc.fill_bounded(10, 10, Box(0, 0, 100, 100))
    assert box == Box(0, 0, 100, 100) and clipped and doc.last_fill_clipped
    assert doc.labels[99, 99] == 1 and doc.labels[100, 10] == 0  # nothing outside the bound
    box, clipped = doc.fill_bounded(205, 55, Box(40, 190, 80, 230))  # the square fits: not clipped
    assert box == Box(50, 200, 60, 210) and not clipped
    box = doc.fill(120, 10, bound=Box(0, 0, 200, 150))  # the rest of the left region, up to the wall
    assert box == Box(0, 0, 200, 150) and not doc.last_fill_clipped
    assert int((doc.labels[:, :] == 1).sum()) == 200 * 150 + 100
    doc.undo()
    assert doc.labels[150, 10] == 0 and doc.labels[10, 10] == 1
    if not chunked:  # numpy without a bound: today's unbounded fill
        assert doc.fill(250, 150) == Box(0, 151, 200, 300) and not doc.last_fill_clipped


def test_bounded_fill_with_8_connectivity_sees_diagonal_escapes():
    labels = np.ones((20, 20), np.uint8)
    labels[:10, :10] = 0
    labels[10, 10] = 0  # touches the region only diagonally, outside the bound
    doc = MaskDocument(labels)
    doc.set_active_class(5)
    assert doc.fill_bounded(0, 0, Box(0, 0, 10, 10), connectivity=4)[1] is False
    doc.undo()
    assert doc.fill_bounded(0, 0, Box(0, 0, 10, 10), connectivity=8)[1] is True


def test_whole_mask_operations_are_refused_or_chunked():
    c = ChunkedLabels.create(300, 200, chunk=64)
    doc = MaskDocument(c)
    with pytest.raises(TypeError, match="chunked mask"):
        doc.snapshot()
    with pytest.raises(TypeError, match="chunked mask"):
        doc.restore(np.zeros((300, 200), np.uint8))
    new = np.zeros((300, 200), np.uint8)
    new[100:130, 20:50] = 2
    assert doc.apply_labels(new) == Box(100, 20, 130, 50)
    assert doc.present_classes() == [0, 2] and doc.history.undo_label == "segment"
    doc.undo()
    assert doc.present_classes() == [0]
    with pytest.raises(ValueError, match="Mpx"):
        big = MaskDocument(ChunkedLabels.create(100_000, 100_000))
        big.fill(5, 5)


def test_a_preview_larger_than_the_history_bound_is_kept_without_undo():
    """A whole-slide segmentation pasted tile by tile must not hold the slide's old content."""
    from core.document.history import History

    c = ChunkedLabels.create(2048, 2048)
    doc = MaskDocument(c, history=History(max_bytes=1 << 20))
    doc.begin_stroke()
    doc.stroke_to(5, 5)
    doc.end_stroke()
    assert doc.history.group_limit == 1 << 20 and doc.can_undo
    tile = np.full((512, 512), 2, np.uint8)
    for y in range(0, 2048, 512):
        for x in range(0, 2048, 512):
            doc.paste_region(y, x, tile)
            assert doc.history.nbytes <= 1 << 20
    assert doc.history.overflowed
    assert doc.cancel_preview() == Box(0, 0, 0, 0)  # nothing was kept to put back: the tiles stay
    assert not doc.preview_active and not doc.can_undo and doc.dirty
    assert doc.present_classes() == [2]
    # numpy documents keep today's unbounded groups
    assert MaskDocument(np.zeros((4, 4), np.uint8)).history.group_limit is None


def test_history_group_limit_refuses_rollback():
    from core.document.history import History

    h = History()
    h.group_limit = 64 * 64
    labels = np.zeros((256, 256), np.uint8)
    h.record_before(labels, Box(0, 0, 256, 256))
    assert h.overflowed and h.nbytes == 0
    with pytest.raises(RuntimeError, match="group_limit"):
        h.rollback(labels)
    position = h.position
    assert h.commit(labels) is None and h.position != position and not h.overflowed


def test_a_huge_polygon_is_filled_band_by_band(monkeypatch):
    from core.document import editing

    monkeypatch.setattr(editing, "_POLYGON_BAND_PIXELS", 1000)  # bands of a few rows
    labels = np.zeros((300, 400), np.uint8)
    pts = [(10.2, 5.7), (390.0, 40.0), (300.5, 290.2), (40.0, 250.0), (120.0, 130.0)]
    box = editing.fill_polygon(labels, pts, 3)
    monkeypatch.setattr(editing, "_POLYGON_BAND_PIXELS", 1 << 26)
    whole = np.zeros((300, 400), np.uint8)
    assert editing.fill_polygon(whole, pts, 3) == box
    np.testing.assert_array_equal(labels, whole)
    c = ChunkedLabels.create(300, 400, chunk=64)
    assert editing.fill_polygon(c, pts, 3) == box
    np.testing.assert_array_equal(c[:, :], whole)


def test_a_tile_worker_reads_while_the_gui_thread_paints():
    import threading

    c = ChunkedLabels.create(2000, 2000, chunk=128, cache_bytes=40 * 128 * 128)
    doc = MaskDocument(c)
    errors, stop = [], threading.Event()

    def worker():
        try:
            while not stop.is_set():
                for k in range(c.num_levels):
                    h, w = c.level_shape(k)
                    tile = c.read_level(k, 0, min(h, 300), 0, min(w, 300))
                    assert set(np.unique(tile)) <= {0, 1}
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    ref = MaskDocument(np.zeros((2000, 2000), np.uint8))  # the same strokes on a numpy mask
    for i in range(40):
        for d in (doc, ref):
            d.begin_stroke()
            d.stroke_to(50 * i, 10)
            d.stroke_to(50 * i, 1990)
            d.end_stroke()
    stop.set()
    t.join()
    assert not errors
    assert c.cached_bytes <= c.cache_bytes
    assert ref.labels[20:1980, 197:204].all() and ref.labels.any(axis=0).sum() > 300  # the strokes painted
    np.testing.assert_array_equal(c[:, :], ref.labels)  # every painted pixel, not 90% of them
    _pyramid_ok(c, c[:, :])


def test_level_box_maps_a_changed_box_to_each_zoom():
    assert ChunkedLabels.level_box(Box(5, 8, 9, 17), 0) == Box(5, 8, 9, 17)
    assert ChunkedLabels.level_box(Box(5, 8, 9, 17), 2) == Box(2, 2, 3, 5)  # rows 8, cols 8, 12, 16


def test_rows_and_columns_assign_like_numpy():
    c = ChunkedLabels.create(100, 100, chunk=32)
    ref = np.zeros((100, 100), np.uint8)
    for target in (c, ref):
        target[3, 10:20] = np.arange(10)
        target[40:50, 7] = np.arange(10)
        target[60:62, 0:3] = [1, 2, 3]
    np.testing.assert_array_equal(c[:, :], ref)


def test_the_scratch_file_is_compacted(monkeypatch):
    monkeypatch.setattr(chunked_labels, "SCRATCH_SLACK", 0)
    rng = np.random.default_rng(4)
    c = ChunkedLabels.create(256, 256, chunk=64, cache_bytes=64 * 64)  # one chunk cached: every write spills
    ref = np.zeros((256, 256), np.uint8)
    sizes = []
    for i in range(60):
        block = rng.integers(0, 4, (64, 64), dtype=np.uint8)
        y, x = 64 * (i % 2), 64 * (i % 3)
        c[y:y + 64, x:x + 64] = block
        ref[y:y + 64, x:x + 64] = block
        sizes.append(c.scratch_bytes)
        live = sum(length for _, length in c._levels[0].in_scratch.values())
        assert c.scratch_bytes <= 2 * live + 5000  # dead copies never outweigh live ones for long
    assert c.num_levels == 1 and max(sizes) < 100_000  # 6 live chunks of ~4 kB, not 60 spills' 240 kB
    np.testing.assert_array_equal(c[:, :], ref)


class _DiskFullAfter:
    """A file whose writes fail with ENOSPC once ``limit`` bytes are written (part of the last one lands)."""

    def __init__(self, f, limit: int):
        self._f, self._left = f, limit

    def write(self, data) -> int:
        import errno

        if len(data) > self._left:
            self._f.write(bytes(data[:self._left]))
            self._left = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self._left -= len(data)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)


@pytest.mark.parametrize("limit", [0, 1, 3000, 9000])
def test_a_full_disk_while_compacting_the_scratch_file_loses_no_chunk(monkeypatch, limit):
    from core.atomic import WriteError

    rng = np.random.default_rng(5)
    c = ChunkedLabels.create(256, 256, chunk=64, cache_bytes=64 * 64)  # one chunk cached: every write spills
    ref = np.zeros((256, 256), np.uint8)

    def paint(i):
        block = rng.integers(0, 4, (64, 64), dtype=np.uint8)
        y, x = 64 * (i % 4), 64 * (i % 3)
        ref[y:y + 64, x:x + 64] = block  # the document holds the edit even when the spill fails
        c[y:y + 64, x:x + 64] = block

    for i in range(30):  # 12 chunks spilled again and again: dead copies everywhere in the file
        paint(i)
    real_open = open

    def full_temp_disk(name, mode="r", *args, **kwargs):
        f = real_open(name, mode, *args, **kwargs)
        return _DiskFullAfter(f, limit) if str(name).endswith("scratch.new") else f

    monkeypatch.setattr(chunked_labels, "open", full_temp_disk, raising=False)
    monkeypatch.setattr(chunked_labels, "SCRATCH_SLACK", 0)  # the next spill compacts
    with pytest.raises(WriteError, match="the disk is full"):
        paint(30)
    c.cache_bytes = 2**30  # read back without spilling (the disk is still full)
    np.testing.assert_array_equal(c[:, :], ref)  # every chunk decodes to its own data
    monkeypatch.undo()
    c.cache_bytes = 64 * 64
    c.flush()
    np.testing.assert_array_equal(c[:, :], ref)
    assert c.scratch_bytes < 30 * 4000  # compacted once the disk had room
    c.close()
