"""The one batch writer: per-image files at once, collections on close, errors per image."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.segment.batch_writer import BatchWriter, write_batch
from core.classes import default_classes
from core.io.masks import MaskError, read_mask

CLASSES = default_classes(5)


def labels(seed: int, h: int = 20, w: int = 30) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 5, (h, w)).astype(np.uint8)


def rgb(h: int = 20, w: int = 30) -> np.ndarray:
    return np.full((h, w, 3), 90, np.uint8)


def test_each_format_written_per_image_and_coco_on_close(tmp_path):
    writer = BatchWriter(tmp_path, ["index", "color", "overlay", "coco"], CLASSES)
    assert writer.needs_image
    paths = writer.add(tmp_path / "src" / "a.jpg", "a", labels(0), rgb())
    assert [p.name for p in paths] == ["a.png", "a_color.png", "a_overlay.png"]
    assert not (tmp_path / "coco.json").exists()  # collections wait for close()
    writer.add("b.png", "b", labels(1, 10, 12), rgb(10, 12))
    written = writer.close()
    assert written[-1] == tmp_path / "coco.json"
    assert (read_mask(tmp_path / "coco.json", image_name="a.jpg") == labels(0)).all()
    assert (read_mask(tmp_path / "coco.json", image_name="b.png") == labels(1, 10, 12)).all()
    assert (read_mask(tmp_path / "a.png") == labels(0)).all()
    doc = json.loads((tmp_path / "coco.json").read_text())
    assert [im["id"] for im in doc["images"]] == [1, 2]
    assert len({a["id"] for a in doc["annotations"]}) == len(doc["annotations"])
    with pytest.raises(RuntimeError):
        writer.add("c.png", "c", labels(2), rgb())


def test_a_failing_image_is_one_sentence_naming_it_and_the_batch_goes_on(tmp_path):
    def bad():
        raise OSError("cannot read it")

    def wrong_ids():
        return np.full((4, 4), 300, np.int32), None

    jobs = [("x/one.png", "one", lambda: (labels(0), None)), ("x/two.png", "two", bad),
            ("x/three.png", "three", wrong_ids), ("x/four.png", "four", lambda: (labels(3), None))]
    seen, done = [], []
    writer = BatchWriter(tmp_path, ["index", "coco"], CLASSES)
    result = write_batch(writer, jobs, progress=lambda d, t: seen.append((d, t)),
                         on_done=lambda image, paths, lab: done.append((image, [p.name for p in paths])))
    assert (result.done, result.total, result.cancelled) == (2, 4, False)
    assert [str(e) for e in result.errors] == ["two.png: cannot read it.",
                                               "three.png: a mask must hold class ids 0-255, not int32 values."]
    assert [image for image, _ in result.failed] == ["x/two.png", "x/three.png"]
    assert all(isinstance(e, MaskError) for e in result.errors)
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert done == [("x/one.png", ["one.png"]), ("x/four.png", ["four.png"])]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coco.json", "four.png", "one.png"]
    assert len(json.loads((tmp_path / "coco.json").read_text())["images"]) == 2


def test_a_mask_opened_for_the_export_is_closed_once_written_or_failed(tmp_path):
    """A mask opened only for the export (a slide's, with its file handles) is closed once its image
    is written or has failed: a handle left open keeps the file from being replaced (Windows)."""
    from core.segment.batch_writer import ImageResult

    closed = []
    jobs = [("x/one.png", "one", lambda: ImageResult(labels(1), close=lambda: closed.append("one"))),
            ("x/two.png", "two", lambda: ImageResult(np.full((4, 4), 300, np.int32), close=lambda: closed.append("two")))]
    result = write_batch(BatchWriter(tmp_path, ["index"], CLASSES), jobs)
    assert (result.done, len(result.failed)) == (1, 1)
    assert closed == ["one", "two"]


def test_cancel_stops_between_images_and_collections_match_the_files(tmp_path):
    asked = []

    def should_cancel():
        asked.append(1)
        return len(asked) > 2

    jobs = [(f"{i}.png", f"m{i}", lambda i=i: (labels(i), None)) for i in range(5)]
    result = write_batch(BatchWriter(tmp_path, ["npy", "coco"], CLASSES), jobs, should_cancel=should_cancel)
    assert result.cancelled and result.done == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coco.json", "m0.npy", "m1.npy"]
    doc = json.loads((tmp_path / "coco.json").read_text())
    assert [im["file_name"] for im in doc["images"]] == ["0.png", "1.png"]


def test_never_overwrites_the_source_image(tmp_path):
    source = tmp_path / "img.png"
    source.write_bytes(b"original")
    writer = BatchWriter(tmp_path, ["index"], CLASSES)
    with pytest.raises(MaskError, match=r"^img.png: the index mask would overwrite the image itself"):
        writer.add(source, "img", labels(0))
    protected = BatchWriter(tmp_path, ["tiff"], CLASSES, protect=[tmp_path / "other.tif"])
    with pytest.raises(MaskError, match="would overwrite"):
        protected.add("elsewhere/other.jpg", "other", labels(0))
    assert source.read_bytes() == b"original" and not (tmp_path / "other.tif").exists()


def test_overlay_without_the_image_is_refused_before_writing(tmp_path):
    writer = BatchWriter(tmp_path, ["index", "overlay"], CLASSES)
    with pytest.raises(MaskError, match="a.png: the overlay format needs the image"):
        writer.add("a.png", "a", labels(0))
    assert list(tmp_path.iterdir()) == []


def test_beside_each_image_with_the_app_save_name_or_a_chosen_target(tmp_path):
    (tmp_path / "d").mkdir()
    writer = BatchWriter(None, ["index"], CLASSES)
    assert writer.add(tmp_path / "d" / "cells.jpg", "cells", labels(0)) == [tmp_path / "d" / "cells_mask.png"]
    chosen = tmp_path / "mine.png"
    assert writer.add(tmp_path / "d" / "b.jpg", "b", labels(1), targets={"index": chosen}) == [chosen]
    assert (read_mask(chosen) == labels(1)).all()
    with pytest.raises(ValueError, match="index masks only"):
        BatchWriter(None, ["color"], CLASSES)
    with pytest.raises(ValueError, match="unknown mask format"):
        BatchWriter(tmp_path, ["index", "gif"], CLASSES)


def test_a_full_disk_on_a_collection_is_reported_not_raised(tmp_path):
    (tmp_path / "coco.json").mkdir()  # the collection's name is taken by a folder
    result = write_batch(BatchWriter(tmp_path, ["coco"], CLASSES), [("a.png", "a", lambda: (labels(0), None))])
    assert result.done == 1 and len(result.errors) == 1 and "coco.json" in str(result.errors[0])
    assert result.failed == []


def test_a_formats_own_failure_fails_that_format_alone_and_collections_hold_only_what_was_written(tmp_path):
    """Finding 9: a class id missing from the class list stops COCO and GeoJSON (which name classes) for
    that image only; index and the other image are written; coco.json holds only the images it got; a
    folder blocking every format of an image leaves that image failed, not done."""
    four = default_classes(4)  # ids 0-3: labels(0) holds id 4, ``small`` does not
    small = np.random.default_rng(1).integers(0, 4, (4, 4)).astype(np.uint8)
    (tmp_path / "c.geojson").mkdir()  # c's GeoJSON name is taken by a folder
    (tmp_path / "c.png").mkdir()  # and so is its index name
    jobs = [("a.png", "a", lambda: (labels(0), None)), ("b.png", "b", lambda: (small, None)),
            ("c.png", "c", lambda: (small, None))]
    result = write_batch(BatchWriter(tmp_path, ["index", "coco", "geojson"], four),
                         jobs[:2])
    assert result.done == 2 and result.failed == []
    assert [(image, fmt) for image, fmt, _ in result.format_failed] == [("a.png", "coco"), ("a.png", "geojson")]
    assert [str(e) for _, _, e in result.format_failed] == [
        f"a.png: {fmt} not written: the mask contains class id 4, which is not in the class list."
        for fmt in ("coco", "geojson")]
    assert (read_mask(tmp_path / "a.png") == labels(0)).all() and not (tmp_path / "a.geojson").exists()
    assert (read_mask(tmp_path / "b.geojson", shape=(4, 4)) == small).all()
    doc = json.loads((tmp_path / "coco.json").read_text())
    assert [im["file_name"] for im in doc["images"]] == ["b.png"]

    result = write_batch(BatchWriter(tmp_path, ["index", "geojson"], four), jobs[2:])
    assert result.done == 0 and result.failed == [] and len(result.format_failed) == 2
    assert all(str(e).startswith(f"c.png: {fmt} not written: cannot write ") for _, fmt, e in result.format_failed)
