"""Drawing cost stays proportional to what is on screen, and the helpers draw the right pixels."""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QApplication

from core.classes import default_classes
from core.document.mask_document import MaskDocument
from core.document.editing import Box
from gui.infra import raster
from gui.canvas.view import Canvas
from gui.panels.class_stats import ClassCounts


def big_canvas(qtbot, size=4096):
    canvas = Canvas()
    qtbot.addWidget(canvas)
    canvas.resize(800, 600)
    canvas.show()
    qtbot.waitExposed(canvas)
    rgb = np.zeros((size, size, 3), np.uint8)
    rgb[::7] = 200
    doc = MaskDocument(np.zeros((size, size), np.uint8), default_classes(3))
    canvas.set_content(rgb, doc, levels={2: rgb[::2, ::2], 4: rgb[::4, ::4], 8: rgb[::8, ::8]})
    QApplication.processEvents()
    return canvas, doc


def test_a_brush_dab_repaints_only_its_box(qtbot):
    canvas, doc = big_canvas(qtbot)
    canvas.actual_size()
    canvas.centerOn(2000, 2000)
    QApplication.processEvents()
    canvas.viewport().repaint()
    layer = canvas.mask_layer
    before = layer.painted_pixels
    doc.set_brush_size(40)
    doc.begin_stroke("brush")
    doc.stroke_to(2000.5, 2000.5)
    doc.end_stroke()
    QApplication.processEvents()
    painted = layer.painted_pixels - before
    assert 0 < painted <= 60 * 60  # the 40-pixel dab (plus rounding), not the 800x600 view


def test_zoomed_out_full_repaint_costs_screen_pixels_not_image_pixels(qtbot):
    canvas, doc = big_canvas(qtbot)
    canvas.fit()
    QApplication.processEvents()
    layer = canvas.mask_layer
    before = layer.painted_pixels
    canvas.viewport().repaint()
    painted = layer.painted_pixels - before
    # at most 2x the screen's resolution per axis: 4 samples per screen pixel of the image,
    # never the 16.7M pixels of the image itself
    on_screen = (4096 * canvas.scale_factor) ** 2
    assert 0 < painted <= 4 * on_screen < 4096 * 4096 / 8
    image_before = canvas.image_layer.painted_pixels
    canvas.viewport().repaint()
    assert canvas.image_layer.painted_pixels - image_before <= 4 * on_screen


def test_sampling_step_is_a_power_of_two_not_coarser_than_the_screen():
    assert raster.sampling_step(1.0) == 1 and raster.sampling_step(3.0) == 1
    assert raster.sampling_step(0.5) == 2 and raster.sampling_step(0.49) == 2
    assert raster.sampling_step(0.26) == 2 and raster.sampling_step(0.25) == 4
    assert raster.sampling_step(0.1) == 8


def test_indexed_image_odd_widths_and_colours():
    labels = np.arange(35, dtype=np.uint8).reshape(5, 7) % 3
    table = [0xFF000000 | (i * 40) for i in range(256)]
    image, _buffer = raster.indexed_image(labels, table)
    assert (image.width(), image.height()) == (7, 5)
    assert image.pixelIndex(6, 4) == labels[4, 6] and image.pixel(6, 4) == table[labels[4, 6]]


def test_pyramid_levels_are_box_filtered():
    rgb = np.zeros((1200, 1100, 3), np.uint8)
    rgb[::2] = 255
    levels = raster.build_pyramid(rgb, min_side=256)
    assert sorted(levels) == [2, 4]
    assert levels[2].shape == (600, 550, 3) and abs(int(levels[2][10, 10, 0]) - 128) <= 1


def test_class_counts_stay_exact_through_edits():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, (700, 600)).astype(np.uint8)
    counts = ClassCounts(labels)
    assert (counts.counts() == np.bincount(labels.ravel(), minlength=256)).all()
    for _ in range(5):
        y, x = rng.integers(0, 650), rng.integers(0, 550)
        labels[y:y + 40, x:x + 30] = rng.integers(0, 6)
        counts.invalidate(Box(y, x, y + 40, x + 30))
        assert (counts.counts() == np.bincount(labels.ravel(), minlength=256)).all()
