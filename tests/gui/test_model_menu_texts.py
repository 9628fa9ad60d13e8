"""Menu texts that say what a model is, the recent-weights submenu and the outline-width menu."""

from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMenu

from gui.infra.recent_weights import RecentWeights
from gui.menus.model_labels import builtin_label, weights_label
from gui.menus.outline_width_menu import OutlineWidthMenu
from gui.menus.recent_weights_menu import RecentWeightsMenu


def test_builtin_entries_say_they_are_demos_and_loaded_files_say_what_they_have(small_weights):
    assert builtin_label("small") == "Built-in &Small: demo, synthetic shapes"
    assert builtin_label("large") == "Built-in &Large: demo, synthetic shapes"
    assert weights_label(small_weights) == "small5.safetensors: no description"


def test_recent_weights_menu_lists_loads_and_clears(qtbot, tmp_path, small_weights):
    recent = RecentWeights(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    menu = QMenu()
    qtbot.addWidget(menu)
    chosen = []
    submenu = RecentWeightsMenu(menu, recent, chosen.append)  # the owner keeps it (its slots are methods)
    assert [a.text() for a in menu.actions()] == ["No recent weights"]
    recent.add(small_weights)
    menu.aboutToShow.emit()
    first = menu.actions()[0]
    assert first.text() == "&1 small5.safetensors: no description" and first.toolTip() == str(small_weights)
    first.trigger()
    assert chosen == [str(small_weights)]
    next(a for a in submenu.menu.actions() if a.objectName() == "action_recent_weights_clear").trigger()
    assert recent.paths() == [] and [a.text() for a in menu.actions()] == ["No recent weights"]


def test_outline_width_menu_reports_the_choice(qtbot):
    menu = QMenu()
    qtbot.addWidget(menu)
    chosen = []
    widths = OutlineWidthMenu(menu, 2, chosen.append)
    assert widths.actions[2].isChecked()
    widths.actions[4].trigger()
    assert chosen == [4] and widths.actions[4].isChecked() and not widths.actions[2].isChecked()
