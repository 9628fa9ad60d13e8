"""Scientific images in the app: a 16-bit image with named channels is drawn through the channel
display (colour, contrast, visibility per channel), the Channels dock edits it, the view and the
overlay export follow, and the settings come back when the image is opened again."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QApplication

from core.io.display import Compositor, composite
from core.io.images import load_image
from gui.canvas.layers import ImageLayer
from tests.channel_images import NAMES, blobs, write_ome_tiff, write_repeated_ome_zarr
from tests.gui.conftest import new_window


@pytest.fixture
def fluo(tmp_path):
    return write_ome_tiff(tmp_path / "cells.ome.tif", blobs(120, 160, 3, seed=3))


def screen_rgb(window, x: int, y: int) -> tuple[int, int, int]:
    """The colour the canvas shows at image pixel (x, y) (zoomed in: no filtering), once the
    tiles in view are rendered with the display in force (multi-channel images are tiled)."""
    canvas = window.canvas
    deadline = time.monotonic() + 10
    while canvas._loader is not None and not _rendered(window):
        assert time.monotonic() < deadline, "the tiles in view were never rendered"
        QApplication.processEvents()
        time.sleep(0.005)
    canvas.viewport().repaint()
    QApplication.processEvents()
    pos = canvas.mapFromScene(x + 0.5, y + 0.5)
    color = canvas.viewport().grab().toImage().pixelColor(pos)
    return color.red(), color.green(), color.blue()


def expected_rgb(window, pixels: np.ndarray, x: int, y: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in composite(pixels[y:y + 1, x:x + 1], window.state.display.view.channels)[0, 0])


def brightest(pixels: np.ndarray, channel: int) -> tuple[int, int]:
    y, x = np.unravel_index(np.argmax(pixels[..., channel]), pixels.shape[:2])
    return int(x), int(y)


def test_channel_colour_and_contrast_change_the_view_and_are_remembered(qtbot, window, fluo, dialogs):
    assert window.open_images([fluo]) == 1
    pixels = window.current.image.pixels
    assert pixels.dtype == np.uint16 and pixels.shape[2] == 3
    panel = window.channel_panel
    assert [row.visible.text() for row in panel.rows] == list(NAMES)
    assert all(row.visible.isChecked() for row in panel.rows)
    view = window.state.display.view
    assert [c.color for c in view.channels] == [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    # auto-contrast: the 16-bit data fills the screen's range instead of staying dark
    lo, hi = view.channels[1].limits
    assert np.percentile(pixels[..., 1], 0.1) - 1 <= lo < hi <= np.percentile(pixels[..., 1], 99.9) + 1

    x, y = brightest(pixels, 1)  # a GFP blob
    window.canvas.set_scale(3)
    window.canvas.center_on_image(x, y)
    before = screen_rgb(window, x, y)
    assert before == expected_rgb(window, pixels, x, y) and before[1] == 255  # green, saturated

    gfp = panel.rows[1]
    red = next(a for a in gfp.color.menu().actions() if a.text() == "Red")
    red.trigger()  # GFP drawn red
    dim = round(hi * 4)
    gfp.high.setValue(dim)  # and dimmer
    after = screen_rgb(window, x, y)
    assert window.state.display.view.channels[1].color == (255, 0, 0)
    assert window.state.display.view.channels[1].limits[1] == dim
    assert after == expected_rgb(window, pixels, x, y) and after != before
    level = round(np.clip((float(pixels[y, x, 1]) - lo) / (dim - lo), 0, 1) * 255)
    assert after[1] < before[1] and after[0] >= level  # the blob's green moved to red, dimmer

    # hiding a channel removes its colour from the view
    panel.rows[0].visible.setChecked(False)
    panel.rows[1].visible.setChecked(False)
    shown = screen_rgb(window, x, y)
    assert shown == expected_rgb(window, pixels, x, y) and shown[0] == 0
    panel.rows[0].visible.setChecked(True)

    # the overlay export draws the image the way the view does
    dialogs.answers["ask_export_path"] = (fluo.with_name("cells_overlay.png"), "overlay")
    window.state.opacity = 0
    window.saver.export()
    exported = np.asarray(Image.open(fluo.with_name("cells_overlay.png")).convert("RGB"))
    np.testing.assert_array_equal(exported, composite(pixels, window.state.display.view.channels))
    remembered = window.state.display.view.channels
    window.close()

    # reopened in a new session: as it was left
    again = new_window(qtbot)
    again.open_images([fluo])
    assert again.state.display.view.channels == remembered
    assert screen_rgb(again, x, y) == expected_rgb(again, pixels, x, y)
    again.close()


def test_an_rgb_photograph_keeps_the_simple_view(window, image):
    window.open_images([image])
    assert window.state.display.view.photo and window.channel_panel.scroll.isHidden()
    assert window.channel_panel.note.text().startswith("RGB")
    assert isinstance(window.canvas.image_layer, ImageLayer)  # drawn as it is, not through tiles
    rgb = np.asarray(Image.open(image).convert("RGB"))
    window.canvas.set_scale(4)
    window.canvas.center_on_image(10, 10)
    assert screen_rgb(window, 10, 10) == tuple(int(v) for v in rgb[10, 10])


def test_a_multichannel_slide_rerenders_its_tiles_when_a_channel_changes(qtbot, window, tmp_path):
    store = write_repeated_ome_zarr(tmp_path / "slide.ome.zarr", 3000, channels=4, chunk=256)
    window.open_images([store])
    entry = window.current
    assert entry.source is not None and entry.source.channels == 4
    assert [row.visible.text() for row in window.channel_panel.rows] == ["Ch1", "Ch2", "Ch3", "Ch4"]
    x, y = 1300, 1700
    raw = entry.source.read_raw(y, y + 1, x, x + 1)
    window.canvas.set_scale(2)
    window.canvas.center_on_image(x, y)
    loader = window.canvas._loader
    qtbot.waitUntil(lambda: _rendered(window), timeout=10_000)
    assert screen_rgb(window, x, y) == expected_rgb(window, raw, 0, 0)
    decoded = loader.decoded
    for i in range(4):
        window.state.display.set_color(i, (255, 255, 255) if i == 3 else (0, 0, 0))  # Ch4 alone, in grey
    qtbot.waitUntil(lambda: _rendered(window), timeout=10_000)
    shown = screen_rgb(window, x, y)
    assert shown == expected_rgb(window, raw, 0, 0) and shown[0] == shown[1] == shown[2]
    assert loader.decoded - decoded <= len(_keys_in_view(window))  # re-rendered from cached raw tiles
    status = _pointer_text(qtbot, window, x, y)
    assert "Ch1 {}, Ch2 {}, Ch3 {}, Ch4 {}".format(*raw[0, 0].tolist()) in status


def _rendered(window) -> bool:
    """Every tile in view is decoded and rendered with the display in force."""
    window.canvas.viewport().repaint()  # a paint asks for what is missing or stale
    loader = window.canvas._loader
    return all(key in window.canvas.tile_cache and loader.is_current(key) for key in _keys_in_view(window))


def _keys_in_view(window):
    from gui.canvas.tiles import TILE

    box, level = window.canvas.visible_box(), window.canvas.level_in_use
    f = window.canvas.image_layer.factors[level]
    return [(level, ty, tx) for ty in range(int(box.y0 / f) // TILE, int((box.y1 - 1) / f) // TILE + 1)
            for tx in range(int(box.x0 / f) // TILE, int((box.x1 - 1) / f) // TILE + 1)]


def _pointer_text(qtbot, window, x, y) -> str:
    pos = window.canvas.mapFromScene(x + 0.5, y + 0.5)
    qtbot.mouseMove(window.canvas.viewport(), pos)
    text = window.status.pointer.text()
    qtbot.mouseMove(window.canvas.viewport(), pos + QPoint(7, 5))  # a later test's move to pos is a move
    return text


def test_compositor_matches_composite_for_an_image_read_from_disk(fluo):
    pixels = load_image(fluo).pixels
    from core.io.display import channel_stats, default_display, sample_values

    channels = default_display(NAMES, channel_stats(sample_values(pixels)))
    np.testing.assert_array_equal(Compositor(channels, pixels.dtype).rgb32(pixels)[..., 2::-1],
                                  composite(pixels, channels))


def test_any_colour_and_export_all_draws_each_image_as_it_was_left(qtbot, window, fluo, dialogs, tmp_path):
    from PySide6.QtGui import QColor

    window.open_images([fluo])
    dialogs.answers["ask_color"] = QColor(250, 120, 10)
    other = next(a for a in window.channel_panel.rows[2].color.menu().actions() if a.text().startswith("Other"))
    other.trigger()
    assert window.state.display.view.channels[2].color == (250, 120, 10)
    window.document.apply_labels(np.ones(window.document.shape, np.uint8))
    window.state.opacity = 0
    out = tmp_path / "out"
    out.mkdir()
    dialogs.answers["ask_export_folder"] = out
    dialogs.answers["ask_export_formats"] = ["overlay"]
    with qtbot.waitSignal(window.export_all_finished, timeout=20_000):
        window.commands.export_all.trigger()
    exported = np.asarray(Image.open(next(out.glob("*_overlay.png"))).convert("RGB"))
    np.testing.assert_array_equal(exported, composite(window.current.image.pixels, window.state.display.view.channels))


def test_dragging_a_limit_on_the_histogram_and_auto(qtbot, window, fluo):
    from PySide6.QtCore import Qt

    window.open_images([fluo])
    row = window.channel_panel.rows[0]
    histogram, display = row.histogram, window.state.display
    auto = display.view.stats[0].auto
    lo, hi = display.view.channels[0].limits
    start = QPoint(round(histogram._x(hi)), histogram.height() // 2)
    qtbot.mousePress(histogram, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(histogram, QPoint(start.x() - 30, start.y()))
    qtbot.mouseRelease(histogram, Qt.MouseButton.LeftButton, pos=QPoint(start.x() - 30, start.y()))
    new_lo, new_hi = display.view.channels[0].limits
    assert new_lo == lo and lo < new_hi < hi  # the upper limit moved left, the lower one stayed
    assert row.high.value() == pytest.approx(new_hi, abs=0.5)  # the numbers follow
    qtbot.mouseClick(row.auto, Qt.MouseButton.LeftButton)
    assert display.view.channels[0].limits == auto


def test_switching_images_while_tiles_render_draws_only_the_new_one(qtbot, window, fluo, image, tmp_path):
    grey16 = tmp_path / "grey16.png"
    Image.fromarray(blobs(50, 70, 1)[..., 0]).save(grey16)  # one 16-bit channel: another display
    window.open_images([fluo, image, grey16])
    for _ in range(2):  # back and forth before the loader has finished the tiles in view
        window.show_entry(window.store.get(fluo))
        window.canvas.set_scale(4)
        window.show_entry(window.store.get(grey16))
        window.show_entry(window.store.get(image))
        window.show_entry(window.store.get(grey16))
        window.show_entry(window.store.get(image))
    assert window.minimap._image.width() == 80  # the Overview shows the image shown
    qtbot.wait(300)  # tiles of the earlier views arrive now: they are dropped, not drawn
    assert isinstance(window.canvas.image_layer, ImageLayer) and window.canvas._loader is None
    rgb = np.asarray(Image.open(image).convert("RGB"))
    assert screen_rgb(window, 10, 10) == tuple(int(v) for v in rgb[10, 10])


def test_a_single_channel_image_is_described_as_one_channel_not_channels(qtbot, window, tmp_path):
    import tifffile

    path = tmp_path / "gray16.tif"
    tifffile.imwrite(path, (np.arange(256 * 256).reshape(256, 256) % 4000).astype(np.uint16))
    said = []
    window.state.message.connect(lambda text, *_: said.append(text))
    window.open_images([path])
    assert window.channel_panel.note.text() == "1 channel, uint16"
    assert "gray16.tif: 256x256, 1 channel of uint16" in said
