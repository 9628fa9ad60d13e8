"""The one naming rule: batch names, the app's save name and Export Mask's proposal agree."""

from __future__ import annotations

import pytest

from core.io.mask_naming import (
    FORMATS,
    MASK_FORMATS,
    collection_files,
    default_mask_path,
    export_suffix,
    image_files,
    output_path,
    planned_collisions,
    suggested_export_path,
    unique_stems,
)


def test_batch_names_are_the_cli_names(tmp_path):
    names = {fmt: [p.relative_to(tmp_path).as_posix()
                   for p in image_files(tmp_path, "img 1", fmt) + collection_files(tmp_path, fmt)]
             for fmt in MASK_FORMATS}
    assert names == {"index": ["img 1.png"], "color": ["img 1_color.png"], "overlay": ["img 1_overlay.png"],
                     "tiff": ["img 1.tif"], "npy": ["img 1.npy"], "coco": ["coco.json"],
                     "yolo": ["labels/img 1.txt", "data.yaml"], "labelme": ["img 1.json"],
                     "voc": ["SegmentationClass/img 1.png", "SegmentationObject/img 1.png"],
                     "geojson": ["img 1.geojson"], "imagej": ["img 1_rois.zip"],
                     "instances": ["img 1_instances.tif"], "measurements": ["img 1_measurements.csv"]}
    assert output_path(tmp_path, "a", "yolo") == tmp_path / "labels" / "a.txt"
    assert image_files(tmp_path, "a", "coco") == [] and collection_files(tmp_path, "coco") == [tmp_path / "coco.json"]
    assert list(FORMATS) == list(MASK_FORMATS)
    with pytest.raises(ValueError, match="unknown mask format 'jpeg'; expected one of index"):
        output_path(tmp_path, "x", "jpeg")


def test_export_proposal_is_the_batch_name_unless_it_is_the_image(tmp_path):
    image = tmp_path / "cells.png"
    other = tmp_path / "out"
    assert suggested_export_path(image, other, "color") == other / "cells_color.png"  # not _mask_color
    assert suggested_export_path(image, other, "index") == other / "cells.png"
    assert suggested_export_path(image, tmp_path, "index") == tmp_path / "cells_mask.png"
    assert suggested_export_path(tmp_path / "cells.jpg", tmp_path, "index") == tmp_path / "cells.png"
    assert suggested_export_path(image, tmp_path, "coco") == tmp_path / "coco.json"
    assert default_mask_path(image) == tmp_path / "cells_mask.png"


def test_typed_export_names_get_the_format_extension(tmp_path):
    assert export_suffix(tmp_path / "a", "tiff") == tmp_path / "a.tif"
    assert export_suffix(tmp_path / "a.TIFF", "tiff") == tmp_path / "a.TIFF"
    assert export_suffix(tmp_path / "a.png", "npy") == tmp_path / "a.png.npy"


def test_unique_stems_ignore_case_and_folders():
    assert unique_stems(["a/x.png", "b/x.jpg", "c/X.tif", "y.png"]) == ["x", "x-2", "X-3", "y"]


def test_collisions_with_sources_and_between_formats(tmp_path):
    assert planned_collisions(tmp_path, ["a", "b"], ["index", "color", "coco"]) == []
    problems = planned_collisions(tmp_path, ["a"], ["index", "tiff"], protect=[tmp_path / "a.png"])
    assert problems == ["a.png: the index file would overwrite a source image"]
    assert planned_collisions(tmp_path, ["coco"], ["coco", "index"]) == []  # coco.json, coco.png
    assert planned_collisions(tmp_path, ["coco"], ["coco", "labelme"]) == [
        "coco.json: the labelme and coco files would have the same name"]
    assert suggested_export_path(tmp_path / "a.png", tmp_path / "o", "yolo") == tmp_path / "o" / "a.txt"
