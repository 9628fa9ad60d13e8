"""Whole-slide images in the app, as a user works with one: a generated 40,000 x 40,000
pyramidal TIFF (26 MB on disk: its tiles repeat and compress) opened, zoomed, painted, undone,
segmented in view, segmented whole and stopped, saved, reopened and recovered after a crash."""

from __future__ import annotations

import os

import numpy as np
import pytest

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from core.document.editing import Box
from core.io.mask_naming import default_mask_path
from tests.gui.helpers import drag, run_until_autosaved
from tests.gui.test_autosave import CRASHING_SESSION
from tests.large_images import write_repeated_pyramid

SIDE = 40_000


@pytest.fixture(scope="module")
def slide(tmp_path_factory):
    return write_repeated_pyramid(tmp_path_factory.mktemp("slide") / "slide.ome.tif", SIDE)


@pytest.fixture
def opened(qtbot, window, slide, tmp_path):
    image = tmp_path / slide.name
    os.symlink(slide, image)  # the mask is saved beside the image: keep each test's apart
    assert window.open_images([image]) == 1
    return image


def settle(qtbot, window, timeout=10_000):
    """Let the loader decode what the view asked for, and the view repaint."""
    canvas = window.canvas
    canvas.viewport().repaint()
    loader = canvas._loader
    qtbot.waitUntil(lambda: not loader._pending, timeout=timeout)
    QApplication.processEvents()
    canvas.viewport().repaint()


def look_at(qtbot, window, x, y, scale=1.0):
    window.canvas.set_scale(scale)
    window.canvas.center_on_image(x, y)
    settle(qtbot, window)


def test_a_slide_opens_in_tiles_at_the_level_that_matches_the_zoom(qtbot, window, opened):
    entry = window.current
    assert entry.source is not None and entry.image is None  # never decoded whole
    assert window.mask.shape == (SIDE, SIDE)
    settle(qtbot, window)
    fitted_level = window.canvas.level_in_use
    assert fitted_level >= 5  # 40,000 px in a ~1000 px view: a coarse level
    look_at(qtbot, window, 31_000, 17_000)
    assert window.canvas.level_in_use == 0
    # what the screen shows is the image's own pixel there
    x, y = 31_000, 17_000
    expected = entry.source.read(y, y + 1, x, x + 1)[0, 0]
    pos = window.canvas.mapFromScene(x + 0.5, y + 0.5)
    shown = window.canvas.viewport().grab().toImage().pixelColor(pos)
    assert (shown.red(), shown.green(), shown.blue()) == tuple(int(v) for v in expected)
    text = _pointer_text(qtbot, window, x, y)
    assert text.startswith(("x 31000, y 1700", "x 31001, y 1700")) and "level 0" in text and "RGB" in text


def _pointer_text(qtbot, window, x, y) -> str:
    pos = window.canvas.mapFromScene(x + 0.5, y + 0.5)
    qtbot.mouseMove(window.canvas.viewport(), pos)
    return window.status.pointer.text()


def test_paint_undo_and_redo_far_into_the_slide(qtbot, window, opened):
    look_at(qtbot, window, 35_000, 36_000)
    window.state.brush_size = 20
    drag(qtbot, window, [(34_990, 36_000), (35_010, 36_000)])
    region = np.asarray(window.mask[35_980:36_020, 34_970:35_030])
    assert (region == 1).sum() > 600
    assert window.document.dirty and window.commands.undo.isEnabled()
    window.commands.undo.trigger()
    assert not np.asarray(window.mask[35_980:36_020, 34_970:35_030]).any()
    window.commands.redo.trigger()
    assert (np.asarray(window.mask[35_980:36_020, 34_970:35_030]) == region).all()
    # the stroke shows zoomed out too: the label pyramid was updated for the changed chunks
    labels = window.document.labels
    for level in range(1, 4):  # while the 20-px stroke is at least 2 samples wide
        f = 1 << level
        assert labels.read_level(level, 36_000 // f - 1, 36_000 // f + 2, 35_000 // f - 1, 35_000 // f + 2).any()
    window.class_panel.refresh_counts()
    assert window.class_panel.count_of(1) == int((region == 1).sum())


def test_fill_stays_in_view_and_says_it_was_clipped(qtbot, window, opened):
    look_at(qtbot, window, 20_000, 20_000)
    window.commands.fill.trigger()
    view = window.canvas.visible_box()
    drag(qtbot, window, [(20_000, 20_000)])
    inside = np.asarray(window.mask[view.y0:view.y1, view.x0:view.x1])
    assert (inside == 1).all()
    assert not np.asarray(window.mask[view.y1:view.y1 + 5, view.x0:view.x1]).any()
    assert "edge of the view" in window.statusBar().currentMessage()
    labels = window.document.labels  # a region this size shows on every level of the pyramid
    top = labels.num_levels - 1
    f = 1 << top
    assert (labels.read_level(top, 20_000 // f, 20_000 // f + 1, 20_000 // f, 20_000 // f + 1) == 1).all()


def test_segment_view_segments_exactly_what_is_in_view(qtbot, window, opened, small_weights):
    from core.segment.inference import Segmenter

    window.models.set_segmenter(Segmenter.load(small_weights, device="cpu"))
    look_at(qtbot, window, 12_345, 23_456)
    view = window.canvas.visible_box()
    with qtbot.waitSignal(window.segmentation_finished, timeout=120_000):
        window.commands.segment_view.trigger()
    doc = window.document
    inside = np.asarray(window.mask[view.y0:view.y1, view.x0:view.x1])
    assert inside.any()
    ring = Box(view.y0 - 64, view.x0 - 64, view.y1 + 64, view.x1 + 64)
    around = np.asarray(window.mask[ring.y0:ring.y1, ring.x0:ring.x1]).copy()
    around[64:-64, 64:-64] = 0
    assert not around.any()  # nothing outside the view changed
    assert doc.can_undo and doc.history.undo_label == "segment"
    window.commands.undo.trigger()
    assert not np.asarray(window.mask[view.y0:view.y1, view.x0:view.x1]).any()


def test_stopping_a_whole_slide_segmentation_keeps_its_finished_tiles(qtbot, window, opened, small_weights):
    from core.segment.inference import Segmenter

    window.models.set_segmenter(Segmenter.load(small_weights, device="cpu"))
    window.segmentation.tile_size = 256
    pasted = []
    window.document.changed.connect(lambda box: pasted.append(box))
    window.commands.segment.trigger()
    qtbot.waitUntil(lambda: len(pasted) >= 1, timeout=120_000)
    with qtbot.waitSignal(window.segmentation_cancelled, timeout=60_000):
        window.commands.cancel.trigger()
    first = pasted[0]
    kept = np.asarray(window.mask[first.y0:first.y1, first.x0:first.x1])
    assert kept.any() and window.document.dirty
    assert not np.asarray(window.mask[SIDE - 100:SIDE, SIDE - 100:SIDE]).any()  # never reached
    window.commands.undo.trigger()  # one step takes the stopped run back
    assert not np.asarray(window.mask[first.y0:first.y1, first.x0:first.x1]).any()


def test_save_writes_a_chunked_mask_beside_the_slide_and_it_comes_back(qtbot, window, opened):
    look_at(qtbot, window, 8_000, 9_000)
    window.state.brush_size = 30
    drag(qtbot, window, [(8_000, 9_000), (8_040, 9_000)])
    painted = np.asarray(window.mask[8_970:9_030, 7_960:8_080]).copy()
    window.commands.save.trigger()
    target = default_mask_path(opened, chunked=True)
    assert target.exists() and not window.document.dirty
    window.commands.close_image.trigger()
    assert window.current is None
    window.open_images([opened])
    assert (np.asarray(window.mask[8_970:9_030, 7_960:8_080]) == painted).all()
    assert "Loaded the mask" in window.statusBar().currentMessage()


def test_memory_stays_bounded_while_panning_across_the_slide(qtbot, window, opened):
    window.canvas.tile_cache.budget = 64 * 1024 * 1024
    before = _rss_mb()
    for scale in (1 / 32, 1 / 4, 1.0):
        for i in range(6):
            look_at(qtbot, window, 2_000 + i * 6_500, 38_000 - i * 6_000, scale)
    assert window.canvas.tile_cache.bytes <= 64 * 1024 * 1024
    assert _rss_mb() - before < 400


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_export_offers_only_chunked_formats_for_a_slide_and_says_why(qtbot, window, dialogs, opened, tmp_path):
    look_at(qtbot, window, 5_000, 5_000)
    drag(qtbot, window, [(5_000, 5_000), (5_030, 5_000)])
    offered = {}

    def answer(parent, suggested, fmt, note=None):
        offered.update(suggested=dict(suggested), note=note)
        return tmp_path / "out.ome.zarr", "ome-zarr"

    dialogs.answers["ask_export_path"] = answer
    window.commands.export.trigger()
    assert set(offered["suggested"]) == {"ome-zarr", "ome-tiff", "geojson", "imagej"}
    assert "does not fit in memory" in offered["note"]
    from core.document.chunked_labels import ChunkedLabels

    with ChunkedLabels.open(tmp_path / "out.ome.zarr") as copy:
        assert (copy[4_990:5_010, 4_990:5_040] == window.mask[4_990:5_010, 4_990:5_040]).all()
    assert window.document.dirty  # an export is not the image's saved mask


def test_tile_memory_is_a_setting_that_bounds_the_cache(qtbot, window, dialogs, opened):
    dialogs.answers["ask_tile_cache_mb"] = 128
    window.commands.tile_cache.trigger()
    assert window.settings.tile_cache_mb == 128 and window.canvas.tile_cache.budget == 128 * 2**20





def test_a_slide_mask_is_recovered_after_the_process_is_killed(qtbot, dialogs, slide, tmp_path):
    from gui.main_window import MainWindow

    image = tmp_path / "crashed slide.ome.tif"
    os.symlink(slide, image)
    appdata, painted_file = tmp_path / "appdata", tmp_path / "painted.npy"
    proc = run_until_autosaved(CRASHING_SESSION, [str(image), str(painted_file), "30000", "21000"], appdata,
                               tmp_path / "crash.ini", 90)
    proc.kill()
    proc.wait(30)
    painted = np.load(painted_file)
    copies = list((appdata / "recovery").glob("*.zip"))
    assert painted.any() and len(copies) == 1 and copies[0].stat().st_size < 200_000  # changed chunks only
    dialogs.answers["ask_recovery"] = "restore"
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: bool(dialogs.of("ask_recovery")), timeout=10_000)
    assert window.current.path.resolve() == image.resolve() and window.current.source is not None
    assert np.array_equal(window.mask[21_000:21_080, 30_000:30_080], painted) and window.document.dirty
    window.commands.undo.trigger()  # over the slide's saved state: nothing was ever saved
    assert not np.asarray(window.mask[21_000:21_080, 30_000:30_080]).any()
    dialogs.answers["ask_save_discard_cancel"] = "discard"
    assert window.close()


def test_polygon_eraser_and_picker_work_far_into_the_slide(qtbot, window, opened):

    from tests.gui.helpers import click

    look_at(qtbot, window, 38_500, 1_500)
    window.commands.polygon.trigger()
    for x, y in ((38_400, 1_400), (38_600, 1_400), (38_600, 1_600)):
        click(qtbot, window, x, y)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    tri = np.asarray(window.mask[1_400:1_600, 38_400:38_600])
    assert tri[150, 190] == 1 and tri[150, 10] == 0 and 15_000 < (tri == 1).sum() < 25_000
    window.commands.eraser.trigger()
    window.state.brush_size = 30
    drag(qtbot, window, [(38_560, 1_500), (38_580, 1_500)])
    assert not np.asarray(window.mask[1_495:1_505, 38_565:38_575]).any()
    window.add_class()  # class 2 active
    window.commands.picker.trigger()
    click(qtbot, window, 38_590, 1_560)
    assert window.state.active_class == 1 == window.document.active_class


def test_the_overview_shows_the_view_and_a_click_moves_there(qtbot, window, opened):
    minimap = window.minimap
    look_at(qtbot, window, 10_000, 10_000)
    assert minimap.view.x0 < 10_000 < minimap.view.x1 and minimap._image is not None
    target = minimap._target()
    point = target.topLeft() + (target.bottomRight() - target.topLeft()) * 0.75  # (30000, 30000)
    qtbot.mouseClick(minimap, Qt.MouseButton.LeftButton, pos=point.toPoint())
    view = window.canvas.visible_box()
    assert abs((view.x0 + view.x1) / 2 - 30_000) < 200 and abs((view.y0 + view.y1) / 2 - 30_000) < 200
    assert minimap.view == view


def test_an_ome_zarr_image_opens_as_one_slide(qtbot, window, tmp_path):
    from core.io.convert import convert
    from tests.gui.helpers import write_image

    image = write_image(tmp_path / "small.png", 700, 900, seed=3)
    zarr = convert(image, tmp_path / "small.ome.zarr")
    assert window.open_images([zarr]) == 1
    entry = window.current
    assert entry.source is not None and window.mask.shape == (700, 900)
    settle(qtbot, window)
    from PIL import Image

    expected = np.asarray(Image.open(image).convert("RGB"))[350, 450]
    assert entry.source.read(350, 351, 450, 451)[0, 0].tolist() == expected.tolist()


def test_a_chunked_mask_exports_geojson_objects(qtbot, window, dialogs, tmp_path):
    import json

    from core.io.convert import convert
    from tests.gui.helpers import write_image

    zarr = convert(write_image(tmp_path / "tile.png", 700, 900, seed=4), tmp_path / "tile.ome.zarr")
    window.open_images([zarr])
    window.document.labels[100:200, 300:650] = 1  # crosses the 512-px chunk border
    window.document.labels[400:450, 50:90] = 1
    dialogs.answers["ask_export_path"] = lambda parent, suggested, fmt, note=None: (tmp_path / "o.geojson", "geojson")
    window.commands.export.trigger()
    assert dialogs.errors() == []
    from shapely.geometry import shape

    features = json.loads((tmp_path / "o.geojson").read_text())["features"]
    # two objects: the one across the chunk border is one, with its exact pixel area
    assert sorted(round(shape(f["geometry"]).area) for f in features) == [40 * 50, 100 * 350]


def test_a_segmented_slide_mask_keeps_its_classes_through_save_and_exports_a_rare_class(
        qtbot, window, dialogs, tmp_path, monkeypatch):
    import json

    from core.classes import ClassInfo
    from core.document import chunked_labels
    from core.io.convert import convert
    from core.io.label_store import LabelStore
    from core.io.mask_naming import chunked_mask_path
    from tests.gui.helpers import write_image

    monkeypatch.setattr(chunked_labels, "COUNT_LEVEL_PIXELS", 100)  # as on a whole slide: estimates are coarse
    image = convert(write_image(tmp_path / "tile.png", 700, 900, seed=4), tmp_path / "tile.ome.zarr")
    ref = np.zeros((700, 900), np.uint8)
    ref[100:300, 100:300] = 1
    ref[601, 601] = 9  # one pixel of a rare class that no coarse level samples
    classes = [ClassInfo(0, "background", (0, 0, 0)), ClassInfo(1, "tumour", (250, 10, 10)),
               ClassInfo(9, "mitosis", (10, 250, 10))]
    store = LabelStore.create(chunked_mask_path(image), 700, 900, (256, 256), {"k": 1})  # as `unetseg segment`
    for block in store.blocks():
        y0, y1, x0, x1 = store.region(block)
        store.write_block(block, ref[y0:y1, x0:x1])
    store.finish(classes)
    window.open_images([image])
    assert "Loaded the mask" in window.statusBar().currentMessage()
    named = {c.id: (c.name, c.color) for c in window.document.classes}
    assert named[1] == ("tumour", (250, 10, 10)) and named[9] == ("mitosis", (10, 250, 10))
    window.document.labels[500:520, 500:520] = 1
    window.commands.save.trigger()
    assert dialogs.errors() == [] and not window.document.dirty
    label = json.loads((chunked_mask_path(image) / ".zattrs").read_text())["image-label"]
    assert {p["label-value"]: p["name"] for p in label["properties"]}[9] == "mitosis"  # not "class 9"
    dialogs.answers["ask_export_path"] = lambda parent, suggested, fmt, note=None: (tmp_path / "o.geojson", "geojson")
    window.commands.export.trigger()
    assert dialogs.errors() == []
    features = json.loads((tmp_path / "o.geojson").read_text())["features"]
    assert "mitosis" in json.dumps([f["properties"] for f in features])
