"""Editing with the pointer and keys the way a person does: strokes, fills, polygons, picking."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from tests.gui.helpers import click, drag, view_pos


def open_one(window, image):
    assert window.open_images([image]) == 1
    assert window.document is not None
    return window.document


def test_brush_stroke_is_one_undo_step(qtbot, window, image):
    doc = open_one(window, image)
    window.commands.brush.trigger()
    window.brush_spin.setValue(6)
    window.select_class(1)
    drag(qtbot, window, [(10, 10), (20, 10), (30, 12), (40, 15)])
    mask = window.mask
    assert mask[10, 10] == 1 and mask[10, 20] == 1 and mask[15, 40] == 1
    assert mask[40, 70] == 0
    assert doc.dirty and window.isWindowModified()
    assert len(doc.history) == 1  # the whole stroke
    window.commands.undo.trigger()
    assert not window.mask.any() and not doc.dirty
    window.commands.redo.trigger()
    assert window.mask[10, 20] == 1
    window.commands.undo.trigger()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert window.mask[10, 20] == 1  # Ctrl+Shift+Z redoes
    window.commands.undo.trigger()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert window.mask[10, 20] == 1  # and so does Ctrl+Y


def test_eraser_and_keyboard_tool_switch(qtbot, window, image):
    doc = open_one(window, image)
    doc.apply_labels(np.ones(doc.shape, np.uint8))
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_E)
    assert window.commands.eraser.isChecked() and window.canvas.tool.name == "eraser"
    drag(qtbot, window, [(30, 30), (35, 30)])
    assert window.mask[30, 30] == 0 and window.mask[30, 33] == 0 and window.mask[5, 5] == 1
    qtbot.keyClick(window.canvas, Qt.Key.Key_B)
    assert window.canvas.tool.name == "brush"


def test_flood_fill_fills_the_connected_region(qtbot, window, image):
    doc = open_one(window, image)
    labels = np.zeros(doc.shape, np.uint8)
    labels[:, 40] = 1  # a wall splitting the image
    doc.apply_labels(labels)
    window.add_class()  # a new document has background and class 1; add class 2
    window.commands.fill.trigger()
    window.select_class(2)
    assert doc.active_class == 2
    click(qtbot, window, 10.5, 10.5)
    assert (window.mask[:, :40] == 2).all()
    assert (window.mask[:, 41:] == 0).all() and (window.mask[:, 40] == 1).all()
    window.commands.undo.trigger()
    assert (window.mask[:, :40] == 0).all()


def test_polygon_by_clicks_and_enter(qtbot, window, image):
    open_one(window, image)
    window.commands.polygon.trigger()
    window.select_class(1)
    for x, y in [(10, 10), (40, 10), (40, 40), (10, 40)]:
        click(qtbot, window, x, y)
    assert not window.mask.any()  # nothing until it is closed
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    assert window.mask[25, 25] == 1 and window.mask[5, 5] == 0 and window.mask[45, 45] == 0
    assert 800 < int((window.mask == 1).sum()) < 1000


def test_polygon_escape_cancels_and_double_click_closes(qtbot, window, image):
    open_one(window, image)
    window.commands.polygon.trigger()
    for x, y in [(10, 10), (40, 10), (40, 40)]:
        click(qtbot, window, x, y)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Escape)
    assert not window.canvas.tool.busy and not window.mask.any()
    for x, y in [(10, 10), (40, 10)]:
        click(qtbot, window, x, y)
    qtbot.mouseDClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, pos=view_pos(window, 25, 40))
    assert window.mask[20, 25] == window.document.active_class != 0


def test_lasso_drag_fills_on_release(qtbot, window, image):
    open_one(window, image)
    window.commands.polygon.trigger()
    window.select_class(1)
    window.canvas.actual_size()
    ring = [(20 + 15 * np.cos(t), 30 + 15 * np.sin(t)) for t in np.linspace(0, 2 * np.pi, 40)]
    drag(qtbot, window, ring)
    assert window.mask[30, 20] == 1 and window.mask[5, 5] == 0
    assert len(window.document.history) == 1


def test_picker_tool_and_alt_click(qtbot, window, image):
    doc = open_one(window, image)
    labels = np.zeros(doc.shape, np.uint8)
    labels[:, 40:] = 1
    labels[50:, :] = 3
    window.add_class()  # classes 0..2 -> add 2
    window.add_class()  # and 3
    doc.apply_labels(labels)
    window.select_class(0)
    window.commands.picker.trigger()
    click(qtbot, window, 60, 20)
    assert doc.active_class == 1
    window.commands.brush.trigger()
    click(qtbot, window, 10, 55, Qt.KeyboardModifier.AltModifier)
    assert doc.active_class == 3
    assert (window.mask == labels).all()  # picking never paints
    row = window.class_panel.class_list.currentRow()
    assert window.class_panel.class_list.item(row).text().startswith("3")


def test_number_keys_choose_the_class(qtbot, window, image):
    doc = open_one(window, image)
    window.add_class()
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_2)
    assert doc.active_class == 2
    qtbot.keyClick(window.canvas, Qt.Key.Key_0)
    assert doc.active_class == 0
    qtbot.keyClick(window.canvas, Qt.Key.Key_7)  # no class 7: unchanged, and said so
    assert doc.active_class == 0
    assert "no class 7" in window.statusBar().currentMessage()


def test_brush_size_keys_and_cursor_outline_scale(qtbot, window, image):
    doc = open_one(window, image)
    window.brush_spin.setValue(10)
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_BracketRight)
    assert doc.brush_size == 12 and window.brush_spin.value() == 12
    qtbot.keyClick(window.canvas, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(window.canvas, Qt.Key.Key_BracketLeft)
    assert doc.brush_size == 8
    cursor = window.canvas.brush_cursor
    assert cursor.radius == doc.radius == 4.0
    # the outline is in image units: its on-screen size follows the zoom
    window.canvas.set_scale(2.0)
    qtbot.mouseMove(window.canvas.viewport(), view_pos(window, 30, 30))
    assert cursor.isVisible()
    for scale in (2.0, 4.0):
        window.canvas.set_scale(scale)
        on_screen = window.canvas.mapFromScene(cursor.mapRectToScene(cursor.boundingRect())).boundingRect()
        pad = 2 * 4  # the bounding box adds 4 screen pixels each side for the cosmetic pen
        assert abs((on_screen.width() - pad) - 2 * doc.radius * scale) <= 2


def test_zoom_wheel_anchored_fit_and_actual_size(qtbot, window, tmp_path):
    from tests.gui.helpers import write_image

    open_one(window, write_image(tmp_path / "big.png", 400, 600))
    canvas = window.canvas
    canvas.actual_size()
    assert canvas.scale_factor == 1.0
    canvas.set_scale(2.0)
    canvas.centerOn(150, 100)
    anchor = view_pos(window, 120, 90)
    before = canvas.image_point(QPointF(anchor))
    event = QWheelEvent(QPointF(anchor), QPointF(canvas.viewport().mapToGlobal(anchor)), QPoint(0, 0),
                        QPoint(0, 120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(canvas.viewport(), event)
    assert abs(canvas.scale_factor - 2.5) < 1e-6
    after = canvas.image_point(QPointF(anchor))
    assert abs(after.x() - before.x()) < 1.0 and abs(after.y() - before.y()) < 1.0
    window.commands.fit.trigger()
    viewport = canvas.viewport().rect()
    assert abs(canvas.scale_factor - min((viewport.width() - 8) / 600, (viewport.height() - 8) / 400)) < 1e-6
    qtbot.keyClick(canvas, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert canvas.scale_factor == 1.0
    window.commands.zoom_in.trigger()
    assert canvas.scale_factor > 1.0
    assert window.status.zoom.text() == f"{canvas.scale_factor * 100:.0f}%"


def test_pan_with_middle_drag_and_space_drag(qtbot, window, tmp_path):
    from tests.gui.helpers import write_image

    open_one(window, write_image(tmp_path / "big.png", 400, 600))
    canvas = window.canvas
    canvas.set_scale(4.0)
    h0 = canvas.horizontalScrollBar().value()
    vp = canvas.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.MiddleButton, pos=QPoint(300, 300))
    qtbot.mouseMove(vp, QPoint(200, 300))
    qtbot.mouseRelease(vp, Qt.MouseButton.MiddleButton, pos=QPoint(200, 300))
    assert canvas.horizontalScrollBar().value() == h0 + 100
    before = window.mask.copy()
    canvas.setFocus()
    qtbot.keyPress(canvas, Qt.Key.Key_Space)
    drag(qtbot, window, [(80, 60), (70, 60)])
    qtbot.keyRelease(canvas, Qt.Key.Key_Space)
    assert (window.mask == before).all()  # space+drag pans, never paints
    assert canvas.horizontalScrollBar().value() != h0 + 100


def test_status_bar_shows_pixel_and_class_under_pointer(qtbot, window, image):
    doc = open_one(window, image)
    labels = np.zeros(doc.shape, np.uint8)
    labels[20:30, 30:40] = 1
    doc.apply_labels(labels)
    qtbot.mouseMove(window.canvas.viewport(), view_pos(window, 35.5, 25.5))
    text = window.status.pointer.text()
    assert "x 35, y 25" in text and "class 1 (1)" in text
