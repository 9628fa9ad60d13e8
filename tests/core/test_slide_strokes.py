"""Strokes on a whole slide (issue 25): painted in the slide's chunked layout at full resolution with
undo, saved beside the slide and reopened, recovered after a crash, and turned into training items
from only the tiles under the strokes, at the level the user picks, in bounded memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from core.classes import default_classes
from core.document.chunked_labels import ChunkedLabels
from core.document.recovery import STROKES_DIR, RecoveryStore
from core.document.strokes import UNANNOTATED, StrokeDocument, open_chunked_strokes
from core.io.label_store import StoreError
from core.io.mask_naming import chunked_strokes_path
from core.io.sources import open_source
from core.training.loop import TrainingDataError
from core.training.slide_strokes import SlideStrokes, level_choices, slide_training_items
from core.training.sparse import StrokeSampler, stroke_set
from tests.large_images import write_flat_slide

SIDE = 100_000
CLASSES = default_classes(3)


def paint(doc: StrokeDocument, tool: str, cls: int, size: int, points) -> None:
    doc.set_active_class(cls)
    doc.set_brush_size(size)
    doc.begin_stroke(tool)
    for x, y in points:
        doc.stroke_to(x, y)
    doc.end_stroke()


def far_apart_strokes() -> StrokeDocument:
    """Three strokes on a 100k slide, tens of thousands of pixels apart."""
    doc = StrokeDocument.blank_chunked((SIDE, SIDE), CLASSES)
    paint(doc, "brush", 1, 20, [(2000, 3000), (2300, 3080)])
    paint(doc, "brush", 2, 20, [(96_000, 94_000), (96_150, 94_020)])
    paint(doc, "brush", 0, 12, [(50_000, 10_000), (50_100, 10_200)])  # a background stroke
    return doc


@pytest.fixture(scope="module")
def slide(tmp_path_factory):
    return write_flat_slide(tmp_path_factory.mktemp("slide") / "slide.ome.tif", SIDE)


def test_strokes_on_a_100k_slide_paint_erase_undo_save_and_reopen(tmp_path):
    doc = far_apart_strokes()
    labels = doc.labels
    assert labels.fill == UNANNOTATED and labels[50_000, 50_000] == UNANNOTATED
    painted = doc.class_pixels()
    assert set(painted) == {0, 1, 2} and doc.annotated_pixels == sum(painted.values()) > 10_000
    paint(doc, "eraser", 0, 30, [(2000, 3000), (2100, 3030)])  # the eraser un-annotates
    assert labels[3000, 2000] == UNANNOTATED and doc.class_pixels()[1] < painted[1]
    doc.undo()
    assert labels[3000, 2000] == 1 and doc.class_pixels() == painted
    path = chunked_strokes_path(tmp_path / "slide.ome.tif")
    assert path == tmp_path / "slide_strokes.ome.zarr"
    labels.save_to(path, classes=CLASSES)
    doc.mark_saved()
    stored = [p for p in (path / "0").rglob("*") if p.is_file() and p.name.isdigit()]
    assert 0 < len(stored) <= 6  # the chunks under the strokes; the other 38,000 hold 255 and are not written
    reopened = StrokeDocument(open_chunked_strokes(path, (SIDE, SIDE)), CLASSES)
    assert reopened.class_pixels() == painted and not reopened.dirty
    np.testing.assert_array_equal(reopened.labels[2990:3100, 1990:2320], labels[2990:3100, 1990:2320])
    assert reopened.labels[60_000, 60_000] == UNANNOTATED
    paint(reopened, "brush", 2, 10, [(70_000, 70_000), (70_040, 70_000)])
    reopened.labels.save_to(path)  # in place: only the new chunk is written
    again = StrokeDocument(open_chunked_strokes(path, (SIDE, SIDE)), CLASSES)
    assert again.labels[70_000, 70_020] == 2 and again.labels[3000, 2000] == 1
    for d in (doc, reopened, again):
        d.labels.close()


def test_a_mask_or_a_strokes_file_of_another_size_is_refused_naming_it(tmp_path):
    mask = tmp_path / "slide_mask.ome.zarr"
    ChunkedLabels.create(300, 400, path=mask).close()
    with pytest.raises(StoreError, match=r"slide_mask.ome.zarr: not a strokes file \(its unpainted pixels are 0"):
        open_chunked_strokes(mask)
    strokes = tmp_path / "slide_strokes.ome.zarr"
    ChunkedLabels.create(300, 400, path=strokes, fill=UNANNOTATED).close()
    with pytest.raises(StoreError, match="slide_strokes.ome.zarr: the strokes are 400x300, the image 500x300"):
        open_chunked_strokes(strokes, (300, 500))


@pytest.mark.parametrize("saved_first", [False, True])
def test_strokes_on_a_slide_come_back_from_their_recovery_copy(tmp_path, saved_first):
    image = tmp_path / "slide.ome.tif"
    doc = far_apart_strokes()
    if saved_first:  # the copy then holds only what changed since, applied over the saved strokes
        doc.labels.save_to(chunked_strokes_path(image))
        paint(doc, "brush", 1, 8, [(40_000, 40_000), (40_030, 40_000)])
    store = RecoveryStore(tmp_path / "appdata", folder=STROKES_DIR)
    snap = store.save(image, doc.labels, CLASSES, doc.history.position)
    assert snap.fill == UNANNOTATED and len(snap.chunks) <= (2 if saved_first else 6)
    [found] = RecoveryStore(tmp_path / "appdata", folder=STROKES_DIR).recoverable(set())
    back = store.load_chunked(found)
    assert back.fill == UNANNOTATED and back[50_000, 50_000] == UNANNOTATED
    for y0, y1, x0, x1 in [(2990, 3100, 1990, 2320), (93_990, 94_040, 95_990, 96_170), (39_990, 40_010, 39_990, 40_040)]:
        np.testing.assert_array_equal(back[y0:y1, x0:x1], doc.labels[y0:y1, x0:x1])
    assert StrokeDocument(back, CLASSES).class_pixels() == doc.class_pixels()
    back.close()
    doc.labels.close()


def _spy_reads(src) -> list[tuple[int, int, int, int, int]]:
    seen, real = [], src._read_raw

    def read(y0, y1, x0, x1, level, plane=()):
        seen.append((y0, y1, x0, x1, level))
        return real(y0, y1, x0, x1, level, plane)

    src._read_raw = read
    return seen


def test_training_items_read_only_the_tiles_under_the_strokes_at_the_chosen_level(slide):
    doc = far_apart_strokes()
    with open_source(slide) as src:
        assert [round(f) for _, f, _ in level_choices(src)] == [1, 2, 4, 8, 16, 32, 64, 128]
        reads = _spy_reads(src)
        tracemalloc.start()
        found = SlideStrokes(src, doc.labels, level=2).items()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < 16 * 2**20  # a few tiles and one strokes chunk at a time, not a 25,000^2 level
    assert found.level == 2 and found.downsample == (4.0, 4.0) and len(found.items) == 3
    assert found.chunks_decoded <= 6  # the strokes' chunks, not the slide's 38,000
    assert sorted(reads) == sorted((*r, 2) for r in found.regions)  # the slide is read there and only there
    read = sum((y1 - y0) * (x1 - x0) for y0, y1, x0, x1 in found.regions)
    assert read < 10**6  # a tile or two of 256 (and a margin) per stroke, of the level's 625 million pixels
    for (pixels, mask), (y0, y1, x0, x1), name in zip(found.items, found.regions, found.names):
        assert pixels.shape == (y1 - y0, x1 - x0, 3) and pixels.dtype == np.uint8 and mask.shape == pixels.shape[:2]
        assert name.startswith("slide.ome.tif (level 2, x ")
    by_class = {int(np.setdiff1d(np.unique(m), [UNANNOTATED])[0]): r for (_, m), r in zip(found.items, found.regions)}
    assert by_class[1][0] <= 3000 // 4 < by_class[1][1] and by_class[1][2] <= 2000 // 4 < by_class[1][3]
    assert by_class[2][0] <= 94_000 // 4 < by_class[2][1] and by_class[2][2] <= 96_000 // 4 < by_class[2][3]
    painted = doc.class_pixels()
    for cls in (0, 1, 2):  # about a sixteenth of the level-0 pixels, each class where it was painted
        assert painted[cls] / 16 * 0.8 < found.counts[cls] < painted[cls] / 16 * 1.5
    strokes = stroke_set(found.items, found.names)  # what LiveTrainer.set_data checks
    assert strokes.class_ids == [0, 1, 2]
    x, y = StrokeSampler(found.items, 48, np.random.default_rng(0)).batch(16)
    assert x.shape == (16, 48, 48, 3) and set(np.unique(y.numpy())) >= {0, 1, 2, UNANNOTATED}
    doc.labels.close()


def test_a_thin_stroke_keeps_its_class_at_a_coarse_level(slide):
    doc = StrokeDocument.blank_chunked((SIDE, SIDE), CLASSES)
    paint(doc, "brush", 2, 1, [(50_001.5, 20_000.5), (50_001.5, 20_399.5)])  # one pixel wide, 400 long
    paint(doc, "brush", 1, 1, [(50_003.5, 20_000.5), (50_003.5, 20_399.5)])  # beside it, another class
    assert doc.class_pixels() == {1: 400, 2: 400}
    with open_source(slide) as src:
        found = slide_training_items(src, doc.labels, 3)
    [(_, mask)], [(y0, y1, x0, x1)] = found.items, found.regions
    column = mask[20_000 // 8 - y0:20_400 // 8 - y0, 50_001 // 8 - x0]
    assert (column == 1).all()  # both strokes fall in one level-3 column; a tie keeps the lower id
    assert found.counts[1] == 50 and found.counts[2] == 0
    nearest = doc.labels.read_level(3, 20_000 // 8, 20_400 // 8, 50_000 // 8, 50_008 // 8)
    assert (nearest == UNANNOTATED).all()  # the pyramid's nearest-neighbour rule drops both
    doc.labels.close()


def test_painting_more_rereads_only_the_new_region_and_far_too_much_is_refused(slide):
    doc = far_apart_strokes()
    with open_source(slide) as src:
        reader = SlideStrokes(src, doc.labels, level=2)
        first = reader.items()
        reads = _spy_reads(src)
        paint(doc, "brush", 1, 20, [(20_000, 60_000), (20_100, 60_000)])
        second = reader.items()
        assert len(second.items) == 4 and [r[4] for r in reads] == [2]  # one new region read
        assert all(any(p is q for q, _ in second.items) for p, _ in first.items)  # the others kept
        with pytest.raises(TrainingDataError, match=r"slide.ome.tif: the strokes cover 1.0 million pixels at level 0 "
                                                    r"\(with the image around them\), more than the 0.1 million .* "
                                                    "train at a coarser level"):
            SlideStrokes(src, doc.labels, level=0, max_pixels=100_000).items()
        with pytest.raises(TrainingDataError, match="level 8 does not exist; the slide has levels 0-7"):
            SlideStrokes(src, doc.labels, level=8)
        small = StrokeDocument.blank_chunked((300, 300), CLASSES)
        with pytest.raises(TrainingDataError, match="the strokes are 300x300 pixels but the slide is 100000x100000"):
            SlideStrokes(src, small.labels, level=0)
        mask = ChunkedLabels.create(SIDE, SIDE)
        with pytest.raises(TrainingDataError, match="must hold 255 where nothing is annotated"):
            SlideStrokes(src, mask, level=0)
    doc.labels.close()


def test_touching_stroked_tiles_are_one_item_until_it_would_be_too_large(slide):
    doc = StrokeDocument.blank_chunked((SIDE, SIDE), CLASSES)
    paint(doc, "brush", 1, 10, [(1000, 1000), (3000, 1000)])  # 2,000 px: 8 tiles of 256 at level 0, touching
    paint(doc, "brush", 2, 10, [(1000, 1200), (1100, 1200)])  # in the next row of tiles: touching
    with open_source(slide) as src:
        whole = slide_training_items(src, doc.labels, 0)
        split = slide_training_items(src, doc.labels, 0, max_item_pixels=512 * 512)
    assert len(whole.items) == 1  # one stroke stays in one item, so holding strokes out keeps them whole
    assert len(split.items) > 8 and split.counts.tolist() == whole.counts.tolist()
    masks = [m for _, m in split.items]
    assert sum(int((m != UNANNOTATED).sum()) for m in masks) == whole.annotated_pixels  # no pixel twice
    doc.labels.close()
