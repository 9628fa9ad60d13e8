"""Preferences persist across windows, and bad stored values fall back to defaults."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from gui.main_window import MainWindow
from gui.settings import DEFAULT_BRUSH, DEFAULT_OPACITY, Settings


def make_window(qtbot, dialogs):
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    return win


def test_opacity_brush_outline_and_geometry_persist(qtbot, dialogs, isolated_settings):
    first = make_window(qtbot, dialogs)
    first.class_panel.opacity_slider.setValue(73)
    first.brush_spin.setValue(31)
    first.commands.outline.setChecked(True)
    first.resize(700, 520)  # within the offscreen screen (800x600)
    assert first.close()
    second = make_window(qtbot, dialogs)
    assert second.class_panel.opacity_slider.value() == 73 and abs(second.canvas.opacity - 0.73) < 1e-9
    assert second.brush_spin.value() == 31
    assert second.commands.outline.isChecked() and second.canvas.outline
    assert (second.width(), second.height()) == (700, 520)
    assert isolated_settings.exists()  # the per-test file, never the user's settings


def test_corrupted_values_fall_back_to_defaults(qtbot, dialogs, isolated_settings):
    raw = QSettings(str(isolated_settings), QSettings.Format.IniFormat)
    raw.setValue("view/opacity", "banana")
    raw.setValue("edit/brush_size", 100000)
    raw.setValue("view/outline", "maybe")
    raw.setValue("model/device", "tpu")
    raw.setValue("model/name", "/nowhere/weights.pt")
    raw.setValue("window/geometry", "not bytes")
    raw.setValue("window/state", 12)
    raw.setValue("files/recent", 5)
    raw.setValue("files/last_folder", "/does/not/exist")
    raw.sync()
    win = make_window(qtbot, dialogs)
    assert win.class_panel.opacity_slider.value() == DEFAULT_OPACITY
    assert win.brush_spin.value() == DEFAULT_BRUSH
    assert not win.commands.outline.isChecked()
    s = Settings()
    assert (s.device, s.model, s.recent_files) == ("auto", "small", [])
    assert s.geometry is None and s.window_state is None
    assert s.last_folder != "/does/not/exist"


def test_recent_files_are_unique_and_bounded(isolated_settings, tmp_path):
    s = Settings()
    for i in range(15):
        s.add_recent(tmp_path / f"{i}.png")
    s.add_recent(tmp_path / "3.png")
    recent = s.recent_files
    assert len(recent) == 10 and recent[0].endswith("3.png") and len(set(recent)) == 10


def test_qsettings_path_and_application_names_are_honoured(qtbot, monkeypatch, tmp_path, qapp):
    monkeypatch.delenv("UNETSEG_SETTINGS")
    old = (qapp.organizationName(), qapp.applicationName())
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path))
    qapp.setOrganizationName("TestOrg")
    qapp.setApplicationName("TestApp")
    try:
        Settings().opacity = 12
        assert (tmp_path / "TestOrg" / "TestApp.ini").exists()
        assert Settings().opacity == 12
    finally:
        qapp.setOrganizationName(old[0])
        qapp.setApplicationName(old[1])
