"""The overlay: opacity, hiding, outlines, per-class visibility, the class list and its edits."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, qAlpha

from core.classes import ClassInfo, default_color
from tests.gui.helpers import view_pos, write_image


def open_with_square(window, tmp_path, value=1):
    path = write_image(tmp_path / "flat.png", 60, 80)
    window.open_images([path])
    doc = window.document
    labels = np.zeros(doc.shape, np.uint8)
    labels[10:40, 20:60] = value
    doc.apply_labels(labels)
    window.canvas.set_scale(4.0)
    window.canvas.centerOn(40, 25)
    return doc


def screen_color(window, x, y) -> QColor:
    image = window.canvas.viewport().grab().toImage()
    return image.pixelColor(view_pos(window, x, y))


def test_opacity_slider_changes_table_and_pixels(qtbot, window, tmp_path):
    open_with_square(window, tmp_path)
    slider = window.class_panel.opacity_slider
    assert slider.objectName() == "opacity_slider" and (slider.minimum(), slider.maximum()) == (0, 100)
    slider.setValue(0)
    assert qAlpha(window.canvas.mask_layer.table[1]) == 0
    bare = screen_color(window, 30.5, 20.5)
    slider.setValue(100)
    assert qAlpha(window.canvas.mask_layer.table[1]) == 255
    assert qAlpha(window.canvas.mask_layer.table[0]) == 0  # background stays transparent
    full = screen_color(window, 30.5, 20.5)
    red = window.document.classes[1].color
    assert (full.red(), full.green(), full.blue()) == red != (bare.red(), bare.green(), bare.blue())
    slider.setValue(50)
    half = screen_color(window, 30.5, 20.5)
    assert abs(half.red() - (bare.red() + red[0]) / 2) <= 3
    outside = screen_color(window, 5.5, 5.5)
    slider.setValue(100)
    assert screen_color(window, 5.5, 5.5) == outside  # background pixels never tinted


def test_opacity_keys_step_the_slider(qtbot, window, tmp_path):
    open_with_square(window, tmp_path)
    slider = window.class_panel.opacity_slider
    slider.setValue(50)
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Period)
    assert slider.value() == 60
    qtbot.keyClick(window.canvas, Qt.Key.Key_Comma)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Comma)
    assert slider.value() == 40
    assert abs(window.canvas.opacity - 0.4) < 1e-9


def test_toggle_mask_hides_and_shows(qtbot, window, tmp_path):
    open_with_square(window, tmp_path)
    window.class_panel.opacity_slider.setValue(100)
    shown = screen_color(window, 30.5, 20.5)
    action = window.findChild(type(window.commands.toggle_mask), "action_toggle_mask")
    assert action is window.commands.toggle_mask
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_H)
    assert not action.isChecked() and not window.canvas.mask_layer.isVisible()
    hidden = screen_color(window, 30.5, 20.5)
    assert hidden != shown
    qtbot.keyClick(window.canvas, Qt.Key.Key_H)
    assert screen_color(window, 30.5, 20.5) == shown


def test_outline_mode_draws_only_region_borders(qtbot, window, tmp_path):
    open_with_square(window, tmp_path)
    window.class_panel.opacity_slider.setValue(100)
    window.canvas.setFocus()
    inside_filled = screen_color(window, 40.5, 25.5)
    qtbot.keyClick(window.canvas, Qt.Key.Key_O)
    assert window.commands.outline.isChecked() and window.canvas.outline
    red = window.document.classes[1].color
    edge = screen_color(window, 20.1, 25.5)  # the band: 2 screen pixels (the default width) inside the edge
    inside = screen_color(window, 40.5, 25.5)
    assert (edge.red(), edge.green(), edge.blue()) == red
    assert inside != inside_filled and (inside.red(), inside.green(), inside.blue()) != red
    qtbot.keyClick(window.canvas, Qt.Key.Key_O)
    assert screen_color(window, 40.5, 25.5) == inside_filled


def test_class_list_swatches_presence_and_visibility(qtbot, window, tmp_path):
    doc = open_with_square(window, tmp_path)
    lst = window.class_panel.class_list
    assert lst.objectName() == "class_list" and lst.count() == 2
    assert not lst.item(0).icon().isNull() and "background" in lst.item(0).text()
    window.class_panel.refresh_counts()
    assert window.class_panel.count_of(1) == 30 * 40
    assert lst.item(1).font().bold() and not lst.item(0).font().bold()
    window.class_panel.opacity_slider.setValue(100)
    shown = screen_color(window, 30.5, 20.5)
    lst.item(1).setCheckState(Qt.CheckState.Unchecked)  # the visibility checkbox
    assert 1 in window.canvas.hidden_classes and qAlpha(window.canvas.mask_layer.table[1]) == 0
    assert screen_color(window, 30.5, 20.5) != shown
    lst.item(1).setCheckState(Qt.CheckState.Checked)
    assert screen_color(window, 30.5, 20.5) == shown
    doc.apply_labels(np.zeros(doc.shape, np.uint8))
    window.class_panel.refresh_counts()
    assert not lst.item(1).font().bold()


def test_counts_follow_edits_after_a_pause(qtbot, window, tmp_path):
    doc = open_with_square(window, tmp_path)
    window.class_panel.refresh_counts()
    doc.begin_stroke("eraser")
    doc.set_brush_size(1)
    doc.stroke_to(30.5, 20.5)
    doc.end_stroke()
    qtbot.waitUntil(lambda: window.class_panel.count_of(1) == 30 * 40 - 1, timeout=2000)


def test_clicking_a_class_makes_it_active(qtbot, window, tmp_path):
    doc = open_with_square(window, tmp_path)
    lst = window.class_panel.class_list
    rect = lst.visualItemRect(lst.item(0))
    qtbot.mouseClick(lst.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert doc.active_class == 0
    doc.set_active_class(1)
    assert lst.currentRow() == 1


def test_double_click_renames_and_recolours(qtbot, window, tmp_path, dialogs):
    doc = open_with_square(window, tmp_path)
    dialogs.answers["ask_class_edit"] = lambda parent, info: ClassInfo(info.id, "nucleus", (0, 200, 0))
    lst = window.class_panel.class_list
    rect = lst.visualItemRect(lst.item(1))
    qtbot.mouseClick(lst.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(lst.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    asked_about = dialogs.of("ask_class_edit")[0][1]
    assert asked_about == ClassInfo(1, "class 1", default_color(1))
    assert doc.classes[1] == ClassInfo(1, "nucleus", (0, 200, 0))
    assert "nucleus" in lst.item(1).text()
    window.class_panel.opacity_slider.setValue(100)
    c = screen_color(window, 30.5, 20.5)
    assert (c.red(), c.green(), c.blue()) == (0, 200, 0)
    # the next image opened starts with the same classes
    window.open_images([write_image(tmp_path / "other.png", 30, 30)])
    assert window.document.classes[1].name == "nucleus"


def test_cancelled_class_edit_changes_nothing(qtbot, window, tmp_path, dialogs):
    doc = open_with_square(window, tmp_path)
    before = doc.classes
    dialogs.answers["ask_class_edit"] = None
    window.edit.edit_class(1)
    assert doc.classes == before and len(dialogs.of("ask_class_edit")) == 1
