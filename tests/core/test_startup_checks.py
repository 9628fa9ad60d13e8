"""Before Qt loads: one line for a missing X11 library or display, and a UTF-8 locale when frozen."""

from __future__ import annotations

from pathlib import Path

from unetseg.startup_checks import uses_xcb, use_utf8_locale, xcb_problem


def missing(name):
    def load(path):
        if Path(path).name == name or path.endswith("libqxcb.so"):
            raise OSError(f"{name}: cannot open shared object file: No such file or directory")
    return load


def test_a_missing_xcb_library_is_one_line_naming_it_and_its_package(tmp_path):
    plugin = tmp_path / "libqxcb.so"
    plugin.write_bytes(b"")
    line = xcb_problem({"DISPLAY": ":0"}, plugin, load=missing("libxcb-cursor.so.0"), platform="linux")
    assert "\n" not in line and "libxcb-cursor.so.0" in line and "sudo apt install libxcb-cursor0" in line
    # without the plugin file the usual suspects are tried one by one
    line = xcb_problem({"DISPLAY": ":0"}, None, load=missing("libxkbcommon-x11.so.0"), platform="linux")
    assert "libxkbcommon-x11.so.0" in line and "libxkbcommon-x11-0" in line


def test_the_frozen_apps_rewrapped_loader_error_still_names_the_library(tmp_path):
    plugin = tmp_path / "libqxcb.so"
    plugin.write_bytes(b"")

    def pyinstaller_cdll(path):  # what PyInstaller's ctypes hook raises in the bundle
        try:
            raise OSError("libxcb-icccm.so.4: cannot open shared object file: No such file or directory")
        except OSError as exc:
            raise OSError(f"Failed to load dynlib/dll {path!r}. Most likely this dynlib/dll was not found "
                          "when the application was frozen.") from exc

    line = xcb_problem({"DISPLAY": ":0"}, plugin, load=pyinstaller_cdll, platform="linux")
    assert "libxcb-icccm.so.4" in line and "sudo apt install libxcb-icccm4" in line


def test_no_display_is_explained_and_a_working_setup_passes():
    ok = lambda name: None  # noqa: E731
    assert "no display" in xcb_problem({}, None, load=ok, platform="linux")
    assert xcb_problem({"DISPLAY": ":0"}, None, load=ok, platform="linux") is None


def test_only_linux_x11_is_checked():
    assert uses_xcb({}, "linux") and uses_xcb({"QT_QPA_PLATFORM": "xcb"}, "linux")
    assert not uses_xcb({"QT_QPA_PLATFORM": "offscreen"}, "linux")
    assert not uses_xcb({"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, "linux")
    assert not uses_xcb({}, "darwin") and not uses_xcb({}, "win32")
    assert xcb_problem({"QT_QPA_PLATFORM": "offscreen"}, None, load=missing("x"), platform="linux") is None


def test_the_frozen_app_replaces_a_c_locale_by_c_utf8():
    env = {"LANG": "C"}
    assert use_utf8_locale(env, frozen=True, platform="linux") and env == {"LANG": "C", "LC_CTYPE": "C.UTF-8"}
    env = {"LC_ALL": "POSIX"}
    assert use_utf8_locale(env, frozen=True, platform="linux") and env["LC_ALL"] == "C.UTF-8"
    env = {}
    assert use_utf8_locale(env, frozen=True, platform="linux") and env == {"LC_CTYPE": "C.UTF-8"}
    for env, frozen in (({"LANG": "de_DE.UTF-8"}, True), ({"LANG": "C"}, False)):
        before = dict(env)
        assert not use_utf8_locale(env, frozen=frozen, platform="linux") and env == before
