"""The app state is the one copy of what the user works on: a change made to it shows in every
view, and a change made in a view lands in it (and in the settings where it persists)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PySide6.QtGui import qAlpha

from gui.state.app_state import AppState, Job, Tool
from tests.gui.helpers import write_image
from tests.gui.test_overlay import open_with_square, screen_color

ROOT = Path(__file__).resolve().parents[2]


def test_opacity_in_state_redraws_the_canvas_and_moves_the_slider(qtbot, window, tmp_path):
    open_with_square(window, tmp_path)
    window.state.opacity = 0
    bare = screen_color(window, 30.5, 20.5)
    window.state.opacity = 100
    assert window.class_panel.opacity_slider.value() == 100
    assert qAlpha(window.canvas.mask_layer.table[1]) == 255
    assert screen_color(window, 30.5, 20.5) != bare
    window.class_panel.opacity_slider.setValue(35)  # and the other way round
    assert window.state.opacity == 35 and window.settings.opacity == 35


def test_adding_an_image_to_the_store_updates_the_file_panel(qtbot, window, tmp_path):
    lst = window.file_panel.file_list
    assert lst.count() == 0
    window.store.add([write_image(tmp_path / "a.png"), write_image(tmp_path / "b.png")])
    assert [lst.item(i).text() for i in range(lst.count())] == ["a.png", "b.png"]
    entry = window.store.get(tmp_path / "b.png")
    entry.has_mask_file = True  # a mark set anywhere shows at once
    assert window.file_panel.state_of(entry) == "saved"
    window.store.remove(entry)
    assert lst.count() == 1


def test_showing_an_entry_binds_canvas_class_list_and_title(qtbot, window, tmp_path):
    entries = window.store.add([write_image(tmp_path / "a.png"), write_image(tmp_path / "b.png", seed=1)])
    assert window.state.show(entries[1]) is None
    assert window.document is entries[1].doc and window.canvas.document is entries[1].doc
    assert window.windowTitle().startswith("b.png") and window.file_panel.file_list.currentRow() == 1
    assert window.class_panel.class_list.count() == len(entries[1].doc.classes)
    entries[1].doc.apply_labels(np.ones(entries[1].doc.shape, np.uint8))
    assert window.isWindowModified() and window.file_panel.state_of(entries[1]) == "dirty"
    entries[0].doc = None
    window.state.show(entries[0])  # the old document's edits no longer reach the views
    entries[1].doc.apply_labels(np.zeros(entries[1].doc.shape, np.uint8))
    assert not window.isWindowModified() and window.canvas.document is entries[0].doc
    entries[1].doc.undo()


def test_brush_size_has_one_home(qtbot, window, tmp_path):
    open_with_square(window, tmp_path)
    window.state.brush_size = 31
    assert window.brush_spin.value() == 31 and window.document.brush_size == 31
    assert window.settings.brush_size == 31
    assert window.canvas.brush_cursor.radius == 15.5
    window.brush_spin.setValue(9)
    assert window.state.brush_size == 9 and window.document.brush_size == 9


def test_hidden_classes_in_state_uncheck_the_row_and_hide_the_colour(qtbot, window, tmp_path):
    open_with_square(window, tmp_path)
    window.state.set_class_visible(1, False)
    item = window.class_panel.class_list.item(1)
    assert item.checkState().name == "Unchecked" and qAlpha(window.canvas.mask_layer.table[1]) == 0
    window.state.set_class_visible(1, True)
    assert item.checkState().name == "Checked" and qAlpha(window.canvas.mask_layer.table[1]) > 0


def test_a_job_in_state_locks_the_tools_and_shows_progress(qtbot, window, tmp_path):
    open_with_square(window, tmp_path)
    cancelled = []
    window.state.job = Job("segment", 3, 10, "Segmenting: %v/%m tiles", cancel=lambda: cancelled.append(1))
    a = window.commands
    assert not a.brush.isEnabled() and not a.segment.isEnabled() and a.cancel.isEnabled()
    assert not window.canvas.editing_enabled and window.status.progress.value() == 3
    a.cancel.trigger()
    assert cancelled == [1]
    window.state.job = None
    assert a.brush.isEnabled() and a.segment.isEnabled() and not a.cancel.isEnabled()
    assert window.canvas.editing_enabled and not window.status.progress.isVisible()


def test_tool_actions_and_state_follow_each_other(qtbot, window, tmp_path):
    open_with_square(window, tmp_path)
    window.commands.fill.trigger()
    assert window.state.tool is Tool.FILL and window.canvas.tool is window.canvas._tools[Tool.FILL]
    window.state.tool = Tool.POLYGON
    assert window.commands.polygon.isChecked() and window.canvas.tool is window.canvas._tools[Tool.POLYGON]


def test_active_class_follows_the_document_and_carries_to_the_next_image(qtbot, window, tmp_path):
    window.open_images([write_image(tmp_path / "a.png"), write_image(tmp_path / "b.png", seed=1)])
    window.add_class()
    assert window.state.active_class == 2 == window.document.active_class
    window.document.pick(0.5, 0.5)  # the picker sets the document's class: the state follows
    assert window.state.active_class == 0
    window.state.active_class = 1
    window.opener.step(1)
    assert window.document.active_class == 1


def test_state_alone_needs_no_qt(tmp_path):
    state = AppState()
    seen = []
    state.events.opacity.connect(lambda new, old: seen.append((new, old)))
    state.set_opacity(140)
    state.set_opacity(100)  # unchanged: no event
    assert seen == [(100, 50)]
    state.step_brush(1)
    assert state.brush_size == 14


def test_no_module_below_the_window_mentions_it():
    """Only the entry points and the window itself name MainWindow (import-linter checks the
    imports; this catches the name in type hints and strings too)."""
    allowed = {"gui/app.py", "gui/screenshot.py", "gui/main_window.py"}
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "gui").rglob("*.py")
                 if re.search(r"\bMainWindow\b", p.read_text(encoding="utf-8"))
                 and str(p.relative_to(ROOT)) not in allowed]
    assert offenders == []
