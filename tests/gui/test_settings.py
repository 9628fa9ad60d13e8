"""Preferences persist across windows, and bad stored values fall back to defaults."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QSettings

from gui.main_window import MainWindow
from gui.infra.settings import DEFAULT_BRUSH, DEFAULT_OPACITY, Settings


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


def _geometry_blob(x: int, y: int, w: int, h: int):
    """A saveGeometry() blob (format 3.0) that parses, with whatever rectangle we like."""
    from PySide6.QtCore import QByteArray, QDataStream, QIODevice, QRect

    blob = QByteArray()
    out = QDataStream(blob, QIODevice.OpenModeFlag.WriteOnly)
    out.writeUInt32(0x1D9D0CB)
    out.writeUInt16(3)
    out.writeUInt16(0)
    rect = QRect(x, y, w, h)
    out << rect << rect
    out.writeInt32(0)
    out.writeUInt8(0)
    out.writeUInt8(0)
    out.writeInt32(800)
    out << rect
    return blob


RAW_GARBAGE = rb"""[view]
opacity=@Variant(\0\0\0\x7f\0\0\0\x10QStringListModel)
outline=@Invalid()
[edit]
brush_size=1e308
[model]
name=/vanished/weights.safetensors
device=tpu
[files]
recent=1, @Invalid(), @ByteArray(abc), @Variant(\0\0\0\x2\0\0\0\x5), @Variant(\0\0\0\x0c\x7f\xff\xff\xff)
last_folder=@Rect(-1 -1 -99999999 99999999)
last_export_folder=@Variant(\0\0\0\x0c\x7f\xff\xff\xff)
[window]
geometry=AdnQywADAAAAAAAA!!!not-base64
state=@ByteArray(\x1\xd9\xd0\xcb\0\x3\0\0garbage)
""" + b"\xff\xfe\x00 a line that is not text\n[\n=\n"


@pytest.mark.parametrize("variant", ["wrong types", "huge and negative", "raw garbage", "random bytes",
                                     "a folder"])
def test_garbage_settings_never_stop_the_app(qtbot, dialogs, isolated_settings, variant):
    from PySide6.QtCore import QByteArray, QPoint, QRect

    from gui.infra.settings import BUILTIN_MODELS, DEVICES, geometry_is_usable

    path = isolated_settings
    if variant in ("wrong types", "huge and negative"):
        raw = QSettings(str(path), QSettings.Format.IniFormat)
        values = {
            "wrong types": {"view/opacity": [1, 2], "view/outline": QRect(1, 2, 3, 4),
                            "edit/brush_size": "ten", "model/name": QByteArray(b"\xff\x00"),
                            "model/device": 3.5, "files/recent": [1, None, b"x", 2.5, "/gone.png", ["a"]],
                            "files/last_folder": QPoint(3, 4), "files/last_export_folder": 7,
                            "window/geometry": _geometry_blob(-100000, -100000, 300, 200),
                            "window/state": QByteArray(b"garbage")},
            "huge and negative": {"view/opacity": -5, "view/outline": 2, "edit/brush_size": 10**12,
                                  "model/name": "", "model/device": "",
                                  "files/recent": [str(i) * 5000 for i in range(50)],
                                  "window/geometry": _geometry_blob(-2**31 + 1, -2**31 + 1, 2**31 - 2, 2**31 - 2),
                                  "window/state": QByteArray(b"\x00" * 100_000)},
        }[variant]
        for key, value in values.items():
            raw.setValue(key, value)
        raw.sync()
    elif variant == "raw garbage":
        path.write_bytes(RAW_GARBAGE)
    elif variant == "random bytes":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    else:
        path.mkdir()
    win = make_window(qtbot, dialogs)
    qtbot.waitExposed(win)
    assert geometry_is_usable(win.frameGeometry()) and win.isVisible()
    s = Settings()
    assert 0 <= s.opacity <= 100 and 1 <= s.brush_size <= 500 and isinstance(s.outline, bool)
    assert s.device in DEVICES and s.model in BUILTIN_MODELS
    assert all(isinstance(p, str) for p in s.recent_files) and len(s.recent_files) <= 10
    assert isinstance(s.last_folder, str) and isinstance(s.last_export_folder, str)
    win.opener.fill_recent_menu(win.menus.recent)  # the menu copes with what is left
    assert win.close()
    assert dialogs.calls == []
