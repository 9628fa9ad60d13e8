"""Checks made before Qt loads, because after that it is too late to explain anything.

Why: on a minimal Linux, Qt's X11 plugin cannot load (a missing ``libxcb-*`` library) and Qt
aborts the process with a paragraph that names the wrong library; here the plugin is loaded
first with ``dlopen`` so the one line the user sees names the library that is really missing
and the package that provides it.  And a frozen app started under a C/POSIX locale gets a
UTF-8 locale, which Python itself would otherwise have coerced (PEP 538) but a PyInstaller
bootloader does not, so Qt does not warn about it at every start.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path
from typing import Callable, MutableMapping

# Debian/Ubuntu package of each library Qt's xcb plugin needs that minimal systems often lack.
PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libEGL.so.1": "libegl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}
Loader = Callable[[str], object]


def uses_xcb(environ: MutableMapping[str, str], platform: str = sys.platform) -> bool:
    """Whether Qt will try its X11 plugin: Linux, and no other platform asked for (a Wayland
    session gets Qt's Wayland plugin first)."""
    if not platform.startswith("linux"):
        return False
    requested = environ.get("QT_QPA_PLATFORM", "").strip()
    if requested:
        return requested.split(";")[0].split(":")[0] == "xcb"
    return not (environ.get("WAYLAND_DISPLAY") and environ.get("XDG_SESSION_TYPE") == "wayland")


def xcb_problem(environ: MutableMapping[str, str], plugin: Path | None, load: Loader = ctypes.CDLL,
                platform: str = sys.platform) -> str | None:
    """One line saying why the X11 window cannot open, or None when it can (or we cannot tell)."""
    if not uses_xcb(environ, platform):
        return None
    missing = _missing_library(plugin, load)
    if missing:
        package = PACKAGES.get(missing)
        fix = f" Install it (Debian/Ubuntu: sudo apt install {package})." if package else ""
        return (f"UNetSeg cannot open a window: the system library {missing}, which Qt's X11 support "
                f"needs, is missing.{fix} README lists every package a minimal Linux needs; the command-line "
                "commands (unetseg segment, info, train) work without it.")
    if not environ.get("DISPLAY") and not environ.get("WAYLAND_DISPLAY"):
        return ("UNetSeg cannot open a window: there is no display (DISPLAY is not set). Start it from a "
                "desktop session; the command-line commands (unetseg segment, info, train) need none.")
    return None


def _missing_library(plugin: Path | None, load: Loader) -> str | None:
    """The first library the xcb plugin cannot find: loading the plugin names it exactly; without
    the plugin file, the usual suspects are tried one by one."""
    candidates = [str(plugin)] if plugin is not None and plugin.is_file() else list(PACKAGES)
    for name in candidates:
        try:
            load(name)
        except OSError as exc:
            # the frozen app's ctypes (PyInstaller) re-raises with its own text; the loader's is the cause
            for text in (str(exc), str(exc.__cause__ or "")):
                if ": cannot open shared object" in text:
                    return text.split(":", 1)[0].strip()
            return Path(name).name
    return None


def xcb_plugin_path() -> Path | None:
    """PySide6's ``libqxcb.so`` from source or in the bundle, found without importing Qt."""
    from importlib.util import find_spec

    roots = [Path(getattr(sys, "_MEIPASS"), "PySide6")] if getattr(sys, "_MEIPASS", None) else []
    try:
        spec = find_spec("PySide6")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        roots += [Path(p) for p in spec.submodule_search_locations]
    for root in roots:
        for plugin in (root / "Qt" / "plugins" / "platforms" / "libqxcb.so", root / "plugins" / "platforms" / "libqxcb.so"):
            if plugin.is_file():
                return plugin
    return None


def use_utf8_locale(environ: MutableMapping[str, str], frozen: bool, platform: str = sys.platform) -> bool:
    """In the frozen app on Linux, replace a C/POSIX character locale by C.UTF-8 (before Qt
    reads it); True when it did.  A real locale (de_DE.UTF-8, ...) is left alone."""
    if not frozen or not platform.startswith("linux"):
        return False
    for key in ("LC_ALL", "LC_CTYPE", "LANG"):  # the first one set decides, as for setlocale()
        value = environ.get(key, "")
        if value:
            if value not in ("C", "POSIX"):
                return False
            environ["LC_ALL" if key == "LC_ALL" else "LC_CTYPE"] = "C.UTF-8"
            return True
    environ["LC_CTYPE"] = "C.UTF-8"  # nothing set at all: the C locale
    return True


def prepare_gui_environment() -> str | None:
    """Run both checks for the real process; the returned line (if any) is why no window can open."""
    use_utf8_locale(os.environ, bool(getattr(sys, "frozen", False)))
    return xcb_problem(os.environ, xcb_plugin_path())
