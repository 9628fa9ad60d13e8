"""Object formats, each checked by its real consumer (or that consumer's parsing and fill),
plus round trips through read_mask and one-line errors for damaged files."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import roifile
import shapely
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw
from pycocotools.coco import COCO

from core.segment.batch_writer import BatchWriter
from core.classes import ClassInfo
from core.io.formats.voc import voc_colormap
from core.io.masks import MaskError, read_mask, write_coco, write_mask
from core.io.objects import ObjectOptions, mask_objects, rasterize
from tests.core.test_masks import mask_error
from tests.core.test_objects import masks

CLASSES = [ClassInfo(0, "background", (0, 0, 0)), ClassInfo(1, "cell", (250, 10, 10)),
           ClassInfo(2, "nucleus", (10, 240, 20)), ClassInfo(3, "membrane", (30, 40, 230))]
EXACT = ObjectOptions(tolerance=0)
OBJECT_FORMATS = ["coco", "yolo", "labelme", "voc", "geojson", "imagej"]
pycoco_decode = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def scene(seed: int = 0, h: int = 48, w: int = 60) -> np.ndarray:
    """Blocky objects of three classes: holes, touching objects, corner contacts, 1-px
    objects and objects on the border."""
    rng = np.random.default_rng(seed)
    labels = np.kron(rng.integers(0, 4, (h // 6 + 1, w // 6 + 1)), np.ones((6, 6), np.uint8))[:h, :w]
    labels = labels.astype(np.uint8)
    labels[rng.random((h, w)) < 0.03] = 0
    labels[0, 0], labels[h - 1, w - 1], labels[h // 2, 0] = 1, 2, 3
    return labels


def own_pixels(labels: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(class id, full-size bool mask) per object, in the objects' order."""
    out = []
    for o in mask_objects(labels, EXACT):
        out.append((o.class_id, rasterize(o.exact, labels.shape).astype(bool)))
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / max(1, (a | b).sum())


def pillow_fill(points, shape, image=None, value=1, hole=False):
    """labelme's shape_to_mask: ImageDraw.polygon(xy, outline=1, fill=1)."""
    image = image or Image.new("L", (shape[1], shape[0]))
    ImageDraw.Draw(image).polygon([tuple(p) for p in points], fill=0 if hole else value, outline=value)
    return image


def write(tmp_path, fmt, labels, options=ObjectOptions(), stem="img"):
    writer = BatchWriter(tmp_path, [fmt], CLASSES, objects=options)
    writer.add(tmp_path / f"{stem}.png", stem, labels)
    return writer.close()


# --- each format through its consumer -----------------------------------------------------


@pycoco_decode
@pytest.mark.parametrize("seed", range(3))
def test_coco_pycocotools_union_equals_the_mask_at_tolerance_0(tmp_path, seed):
    labels = scene(seed)
    write(tmp_path, "coco", labels, EXACT)
    coco = COCO(str(tmp_path / "coco.json"))
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    union = np.zeros_like(labels)
    for ann in anns:
        pixels = coco.annToMask(ann).astype(bool)
        assert not union[pixels].any()  # objects never overlap
        union[pixels] = ann["category_id"]
        assert ann["iscrowd"] == 0 and ann["area"] == pixels.sum()
        ys, xs = np.nonzero(pixels)
        assert ann["bbox"] == [xs.min(), ys.min(), np.ptp(xs) + 1, np.ptp(ys) + 1]
    np.testing.assert_array_equal(union, labels)
    objs = mask_objects(labels, EXACT)
    assert len(anns) == len(objs)
    assert [isinstance(a["segmentation"], dict) for a in anns] == [o.has_holes for o in objs]
    assert [c["id"] for c in coco.loadCats(coco.getCatIds())] == [1, 2, 3]


@pycoco_decode
def test_coco_default_tolerance_and_semantic_layout(tmp_path):
    labels = scene(4)
    path = write_coco(tmp_path / "c.json", [("a.png", *labels.shape, labels)], CLASSES)
    coco = COCO(str(path))
    for ann, (cid, pixels) in zip(coco.loadAnns(coco.getAnnIds()), own_pixels(labels)):
        assert ann["category_id"] == cid
        if pixels.sum() >= 20:
            assert iou(coco.annToMask(ann).astype(bool), pixels) >= 0.98
    semantic = write_coco(tmp_path / "s.json", [("a.png", *labels.shape, labels)], CLASSES, semantic=True)
    doc = json.loads(semantic.read_text())
    assert sorted(a["category_id"] for a in doc["annotations"]) == [1, 2, 3]


def ultralytics_lines(path):
    """As ultralytics.data.utils.verify_image_label: class, then x y pairs in [0, 1]."""
    rows = [x.split() for x in path.read_text().strip().splitlines() if len(x)]
    classes = np.array([x[0] for x in rows], dtype=np.float32)
    segments = [np.array(x[1:], dtype=np.float32).reshape(-1, 2) for x in rows]
    return classes, segments


@pytest.mark.parametrize("seed", range(3))
def test_yolo_parsed_like_ultralytics_and_filled_with_pillow(tmp_path, seed):
    labels = scene(seed)
    h, w = labels.shape
    write(tmp_path, "yolo", labels)
    classes, segments = ultralytics_lines(tmp_path / "labels" / "img.txt")
    objects = own_pixels(labels)
    assert len(segments) == len(objects)
    for cls, seg, (cid, pixels) in zip(classes, segments, objects):
        assert cls == cid - 1 and seg.min() >= 0 and seg.max() <= 1
        filled = np.asarray(pillow_fill(seg * [w, h], labels.shape)).astype(bool)
        if pixels.sum() >= 20:
            assert iou(filled, pixels) >= 0.98
    data = yaml.safe_load((tmp_path / "data.yaml").read_text())
    assert data["names"] == {0: "cell", 1: "nucleus", 2: "membrane"} and data["nc"] == 3


@pytest.mark.parametrize("seed", range(3))
def test_labelme_filled_as_shape_to_mask(tmp_path, seed):
    labels = scene(seed)
    write(tmp_path, "labelme", labels)
    doc = json.loads((tmp_path / "img.json").read_text())
    assert doc["imagePath"] == "img.png" and doc["imageData"] is None
    assert (doc["imageHeight"], doc["imageWidth"]) == labels.shape
    groups: dict = {}
    for shape in doc["shapes"]:
        assert shape["shape_type"] == "polygon" and shape["label"] in {"cell", "nucleus", "membrane"}
        groups.setdefault(shape["group_id"], []).append(shape)
    objects = own_pixels(labels)
    assert sorted(groups) == list(range(1, len(objects) + 1))
    for group, (cid, pixels) in zip(sorted(groups), objects):
        image = None
        for shape in sorted(groups[group], key=lambda s: bool(s["flags"].get("hole"))):
            image = pillow_fill(shape["points"], labels.shape, image, hole=bool(shape["flags"].get("hole")))
        if pixels.sum() >= 20:
            assert iou(np.asarray(image).astype(bool), pixels) >= 0.98


def test_voc_palette_pngs_hold_class_and_object_ids(tmp_path):
    labels = scene(1)
    write(tmp_path, "voc", labels)
    with Image.open(tmp_path / "SegmentationClass" / "img.png") as im:
        assert im.mode == "P"
        np.testing.assert_array_equal(np.asarray(im), labels)
        palette = np.frombuffer(bytes(im.getpalette()), np.uint8).reshape(-1, 3)
    np.testing.assert_array_equal(palette[:256], voc_colormap())
    assert [tuple(palette[i]) for i in (0, 1, 2, 3)] == [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0)]
    with Image.open(tmp_path / "SegmentationObject" / "img.png") as im:
        assert im.mode == "P"
        ids = np.asarray(im)
    objects = own_pixels(labels)
    assert ids.max() == len(objects)
    for n, (_cid, pixels) in enumerate(objects, start=1):
        np.testing.assert_array_equal(ids == n, pixels)


@pytest.mark.parametrize("seed", range(3))
def test_geojson_valid_for_shapely_with_qupath_properties(tmp_path, seed):
    labels = scene(seed)
    write(tmp_path, "geojson", labels)
    doc = json.loads((tmp_path / "img.geojson").read_text())
    assert doc["type"] == "FeatureCollection"
    objects = own_pixels(labels)
    assert len(doc["features"]) == len(objects)
    for feature, (cid, pixels) in zip(doc["features"], objects):
        geometry = shapely.geometry.shape(feature["geometry"])
        assert geometry.geom_type in ("Polygon", "MultiPolygon") and geometry.is_valid
        props = feature["properties"]
        assert props["objectType"] == "annotation"
        assert props["classification"] == {"name": CLASSES[cid].name, "color": list(CLASSES[cid].color)}
        if pixels.sum() >= 20:
            assert iou(rasterize(geometry, labels.shape).astype(bool), pixels) >= 0.98


def test_imagej_roifile_reads_one_named_roi_per_object(tmp_path):
    labels = scene(2)
    write(tmp_path, "imagej", labels)
    rois = roifile.roiread(tmp_path / "img_rois.zip")
    objects = mask_objects(labels)
    assert len(rois) == len(objects)
    names = [r.name for r in rois]
    assert names[0] == "cell-1" and len(set(names)) == len(names)
    assert all(r.roitype == roifile.ROI_TYPE.POLYGON for r in rois)
    for roi, obj in zip(rois, objects):
        assert roi.name.startswith(CLASSES[obj.class_id].name + "-") and roi.group == obj.class_id


# --- round trips, names, errors ------------------------------------------------------------


@pytest.mark.parametrize("fmt", OBJECT_FORMATS)
def test_round_trip_exact_at_tolerance_0_and_close_by_default(tmp_path, fmt):
    labels = scene(5)
    for options, sub in ((EXACT, "exact"), (ObjectOptions(), "default")):
        folder = tmp_path / sub
        files = write(folder, fmt, labels, options)
        back = read_mask(files[0], shape=labels.shape, classes=CLASSES, image_name="img.png")
        if options is EXACT:
            np.testing.assert_array_equal(back, labels)
        else:
            for cid in (1, 2, 3):
                assert iou(back == cid, labels == cid) >= 0.98


@settings(max_examples=30, deadline=None)
@given(masks, st.sampled_from(OBJECT_FORMATS))
def test_any_mask_round_trips_exactly_at_tolerance_0(tmp_path_factory, labels, fmt):
    folder = tmp_path_factory.mktemp(fmt)
    path = write(folder, fmt, labels, EXACT)[0]
    back = read_mask(path, shape=labels.shape, classes=CLASSES, image_name="img.png")
    np.testing.assert_array_equal(back, labels)


def test_single_file_exports_and_minimum_area(tmp_path):
    labels = scene(3)
    path = write_mask(tmp_path / "x.txt", labels, "yolo", CLASSES, objects=ObjectOptions(min_area=30))
    assert len(path.read_text().splitlines()) == sum(o.area >= 30 for o in mask_objects(labels))
    (tmp_path / "sub").mkdir()
    path = write_mask(tmp_path / "sub" / "x.json", labels, "labelme", CLASSES, image_path=tmp_path / "im" / "x.png")
    assert json.loads(path.read_text())["imagePath"] == "../im/x.png"
    voc = write_mask(tmp_path / "v.png", labels, "voc", CLASSES)
    np.testing.assert_array_equal(read_mask(voc), labels)


def test_labelme_reads_what_labelme_users_write(tmp_path):
    doc = {"shapes": [
        {"label": "Nucleus", "points": [[1, 1], [5, 1], [5, 4], [1, 4]], "shape_type": "polygon", "group_id": None},
        {"label": "cell", "points": [[7, 0], [9, 2]], "shape_type": "rectangle"}],
        "imagePath": "a.png", "imageData": None, "imageHeight": 6, "imageWidth": 10}
    (tmp_path / "a.json").write_text(json.dumps(doc))
    labels = read_mask(tmp_path / "a.json", classes=CLASSES)
    assert (labels[1:5, 1:6] == 2).all() and (labels[0:3, 7:10] == 1).all() and labels.sum() == 2 * 20 + 9


def test_damaged_files_are_one_line_errors(tmp_path):
    def put(name, text):
        (tmp_path / name).write_text(text if isinstance(text, str) else json.dumps(text))
        return tmp_path / name

    cases = {
        put("bad.json", "{not json"): "not valid JSON",
        put("lm.json", {"shapes": [], "imageWidth": 4}): "imageHeight and imageWidth",
        put("lm2.json", {"shapes": [{"label": "dog", "points": [[0, 0], [1, 0], [1, 1]]}],
                         "imageHeight": 4, "imageWidth": 4}): "the label 'dog' is not one of the classes",
        put("lm3.json", {"shapes": [{"label": "cell", "points": [[0, 0]], "shape_type": "circle"}],
                         "imageHeight": 4, "imageWidth": 4}): "shape 1 is a circle",
        put("g.geojson", {"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [2, 0], [2, 2], [0, 0]]]},
             "properties": {}}]}): "feature 1 has no classification",
        put("g2.geojson", {"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": "x"},
             "properties": {"classification": {"name": "cell"}}}]}): "feature 1 has no valid geometry",
        put("g3.geojson", {"hello": 1}): "not a GeoJSON feature collection",
        put("y.txt", "0 0.1 0.1 0.5\n"): "line 1 is not a polygon",
        put("y2.txt", "0 0.1 0.1 0.5 0.5 1.5 0.2\n"): "outside 0-1",
        put("y3.txt", "cat 0.1 0.1 0.5 0.5 0.9 0.2\n"): "line 1 is not numbers",
        put("r.zip", "not a zip"): "not an ImageJ ROI file",
    }
    for path, reason in cases.items():
        assert reason in mask_error(path, shape=(8, 8), classes=CLASSES), path.name
    assert "does not record the image size" in mask_error(tmp_path / "y.txt")
    with zipfile.ZipFile(tmp_path / "junk_rois.zip", "w") as z:
        z.writestr("a.roi", b"garbage")
    assert "not an ImageJ ROI file" in mask_error(tmp_path / "junk_rois.zip", shape=(8, 8))


# --- chunked masks -------------------------------------------------------------------------


class OnlyChunks:
    """A chunked 2-D mask that can only be read in blocks of whole chunks, never whole."""

    def __init__(self, array: np.ndarray, chunk: int):
        self.array, self.chunks, self.shape, self.reads = array, (chunk, chunk), array.shape, []

    def __getitem__(self, key):
        rows, cols = key
        assert rows.start % self.chunks[0] == 0 and cols.start % self.chunks[1] == 0
        block = self.array[key]
        self.reads.append(block.size)
        return block

    def __array__(self, *args, **kwargs):
        raise AssertionError("read whole")


@pytest.mark.parametrize("fmt", ["geojson", "imagej"])
def test_geojson_and_imagej_from_a_chunked_mask_read_chunk_by_chunk(tmp_path, fmt, monkeypatch):
    import core.io.objects

    monkeypatch.setattr(core.io.objects, "BLOCK", 32)  # blocks of 32 px: many objects cross borders
    labels = scene(6, 150, 130)
    chunked = OnlyChunks(labels, 16)
    whole = write(tmp_path / "whole", fmt, labels)[0]
    parts = BatchWriter(tmp_path / "chunked", [fmt], CLASSES)
    [path] = parts.add("img.png", "img", chunked)
    parts.close()
    assert max(chunked.reads) <= 32 * 32 and sum(chunked.reads) == labels.size
    if fmt == "geojson":
        a, b = (json.loads(p.read_text())["features"] for p in (path, whole))
        assert len(a) == len(b)
        for fa in a:  # the same objects (streamed band by band: in another order; the order means nothing)
            ga = shapely.geometry.shape(fa["geometry"])
            same = [fb for fb in b if fb["properties"] == fa["properties"] and  # outlines may start elsewhere
                    ga.symmetric_difference(gb := shapely.geometry.shape(fb["geometry"])).area <= 0.5 * gb.length]
            assert ga.is_valid and len(same) == 1
    else:
        assert [r.name for r in roifile.roiread(path)] == [r.name for r in roifile.roiread(whole)]
    np.testing.assert_array_equal(read_mask(path, shape=labels.shape, classes=CLASSES), read_mask(whole, shape=labels.shape, classes=CLASSES))


def test_geojson_from_the_apps_chunked_labels(tmp_path):
    from core.document.chunked_labels import ChunkedLabels

    labels = scene(8, 200, 170)
    with ChunkedLabels.create(*labels.shape, chunk=64) as chunked:
        chunked[:, :] = labels
        path = write_mask(tmp_path / "c.geojson", chunked, "geojson", CLASSES, objects=EXACT)
    np.testing.assert_array_equal(read_mask(path, shape=labels.shape, classes=CLASSES), labels)


def test_labelme_group_ids_are_per_label(tmp_path):
    """labelme users number instances per label: one group id under two labels is two objects."""
    doc = {"shapes": [{"label": "cell", "points": [[0, 0], [2, 0], [2, 2], [0, 2]], "group_id": 1},
                      {"label": "nucleus", "points": [[4, 0], [5, 0], [5, 1], [4, 1]], "group_id": 1}],
           "imageHeight": 3, "imageWidth": 6}
    (tmp_path / "g.json").write_text(json.dumps(doc))
    labels = read_mask(tmp_path / "g.json", classes=CLASSES)
    assert (labels[:3, :3] == 1).all() and (labels[:2, 4:6] == 2).all() and labels.sum() == 9 + 2 * 4


def holed_rings(h: int, w: int) -> np.ndarray:
    """Rings with holes (one as tall as the image, whose runs go on from column to column), on
    the borders and inside, among ``scene``'s objects."""
    labels = scene(9, h, w)
    labels[:, 3:9] = 1
    labels[10:14, 5:7] = 0  # a full-height object with a hole
    labels[h - 12:h, w - 12:w] = 2
    labels[h - 9:h - 3, w - 9:w - 3] = 3  # a hole filled by another object
    labels[20:30, 30:42] = 3
    labels[23:26, 33:35] = 0
    labels[27, 38] = 0
    return labels


@pycoco_decode
@pytest.mark.parametrize("shape", [(48, 60), (61, 47)])
def test_coco_objects_with_holes_are_encoded_from_their_box_as_from_the_whole_image(shape, monkeypatch):
    """Finding 10: the RLE of an object with holes is the one pycocotools encodes from an image-sized
    canvas, byte for byte, but every array rasterised is the object's box, never the image."""
    from pycocotools import mask as coco_mask

    import core.io.formats.coco_objects as coco_objects
    import core.io.objects as objects
    from core.io.formats.coco_objects import object_annotations

    labels = holed_rings(*shape)
    holed = [o for o in mask_objects(labels, EXACT) if o.has_holes]
    assert len(holed) >= 3 and any(o.bbox[3] == shape[0] for o in holed)
    before = [coco_mask.encode(np.asfortranarray(rasterize(o.exact, labels.shape)))["counts"].decode("ascii")
              for o in holed]  # what the export wrote until now
    shapes = []
    real = objects.rasterize

    def spy(geometry, shape, *args, **kwargs):
        shapes.append(tuple(shape))
        return real(geometry, shape, *args, **kwargs)

    monkeypatch.setattr(objects, "rasterize", spy)
    monkeypatch.setattr(coco_objects, "rasterize", spy, raising=False)
    anns = [a for a in object_annotations(labels, CLASSES, 1, 1, EXACT) if isinstance(a["segmentation"], dict)]
    assert [a["segmentation"]["counts"] for a in anns] == before
    assert all(a["segmentation"]["size"] == list(shape) for a in anns)
    assert sorted(shapes) == sorted((o.bbox[3], o.bbox[2]) for o in holed)  # each object's box, once


class Watched(OnlyChunks):
    """OnlyChunks that calls ``on_read(row)`` before each block is read."""

    def __init__(self, array: np.ndarray, chunk: int, on_read):
        super().__init__(array, chunk)
        self.on_read = on_read

    def __getitem__(self, key):
        self.on_read(key[0].start)
        return super().__getitem__(key)


def test_geojson_of_a_chunked_mask_is_streamed_and_valid(tmp_path, monkeypatch):
    """Finding 10: features are in the file (beside it, under a temporary name) before the last band of a
    chunked mask is read, and the finished file is GeoJSON that json and shapely read, pixel-exact."""
    import core.io.objects

    monkeypatch.setattr(core.io.objects, "BLOCK", 32)
    labels = scene(6, 150, 130)  # 5 bands of 32 rows
    seen: dict[int, int] = {}

    def on_read(row):  # the bytes already written when a band is read
        seen.setdefault(row, sum(p.stat().st_size for p in tmp_path.glob(".c.geojson.*")))

    path = write_mask(tmp_path / "c.geojson", Watched(labels, 16, on_read), "geojson", CLASSES, objects=EXACT)
    assert seen[0] == 0 and seen[128] > 1000  # the first bands' features went out before the last was read
    doc = json.loads(path.read_text())
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == len(mask_objects(labels, EXACT))
    assert all(shapely.geometry.shape(f["geometry"]).is_valid for f in doc["features"])
    np.testing.assert_array_equal(read_mask(path, shape=labels.shape, classes=CLASSES), labels)
    assert [p.name for p in tmp_path.iterdir()] == ["c.geojson"]


def test_an_interrupted_geojson_write_leaves_the_previous_file_and_no_half_one(tmp_path, monkeypatch):
    import core.io.objects

    monkeypatch.setattr(core.io.objects, "BLOCK", 32)
    labels = scene(6, 150, 130)
    path = tmp_path / "c.geojson"
    path.write_text("previous")

    def interrupt(row):
        if row == 128:  # features of four bands are written by now
            assert sum(p.stat().st_size for p in tmp_path.glob(".c.geojson.*")) > 1000
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_mask(path, Watched(labels, 16, interrupt), "geojson", CLASSES)
    assert path.read_text() == "previous" and [p.name for p in tmp_path.iterdir()] == ["c.geojson"]


def test_streamed_geojson_holds_one_band_of_features_not_the_document(tmp_path, monkeypatch):
    """Memory traced by Python while writing a chunked mask's GeoJSON stays far below the file's size
    (the document, its features as dicts and its JSON text were all held at once before)."""
    import tracemalloc

    import core.io.objects

    monkeypatch.setattr(core.io.objects, "BLOCK", 32)
    labels = np.zeros((1024, 96), np.uint8)
    labels[::4, ::4] = 1  # 6144 one-pixel objects in 32 bands: one band is a small part of the file
    chunked = OnlyChunks(labels, 32)
    write_mask(tmp_path / "warm.geojson", OnlyChunks(labels[:64], 32), "geojson", CLASSES)  # imports, caches
    tracemalloc.start()
    try:
        path = write_mask(tmp_path / "d.geojson", chunked, "geojson", CLASSES)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    size = path.stat().st_size
    assert len(json.loads(path.read_text())["features"]) == 6144
    assert peak < size / 4, f"peak {peak} B for a {size} B file"
