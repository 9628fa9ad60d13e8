"""Persistent preferences, read defensively: a bad or old value never stops the app starting.

Every getter validates type and range and falls back to its default; QSettings stores INI
files everywhere so a test (or a portable install) can point it at one file with the
``UNETSEG_SETTINGS`` environment variable.  ``app_data_dir`` is the one place that decides
where recovery copies and the log go (``UNETSEG_DATA_DIR`` overrides it the same way).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QCoreApplication, QRect, QSettings, QStandardPaths

from gui.infra.display_memory import DisplayMemory
from gui.infra.recent_weights import RecentWeights

ORGANIZATION = "UNetSeg"
APPLICATION = "UNetSeg"
ENV_FILE = "UNETSEG_SETTINGS"
ENV_DATA_DIR = "UNETSEG_DATA_DIR"
DEVICES = ("auto", "cpu", "cuda", "mps")
BUILTIN_MODELS = ("small", "large")
MAX_RECENT = 10

DEFAULT_OPACITY = 50
DEFAULT_BRUSH = 10
DEFAULT_OUTLINE_WIDTH = 2
DEFAULT_TILE_CACHE_MB = 512


def open_qsettings() -> QSettings:
    """``$UNETSEG_SETTINGS`` if set; else the INI file of the application's organisation/name
    (ours unless a host such as a test set its own), under QSettings' user path."""
    path = os.environ.get(ENV_FILE)
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    app = QCoreApplication.instance()
    org = app.organizationName() if app is not None else ""
    name = app.applicationName() if app is not None and org else ""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, org or ORGANIZATION,
                     name or APPLICATION)


def app_data_dir() -> Path:
    """``$UNETSEG_DATA_DIR`` if set, else Qt's AppDataLocation for our organisation/name
    (~/.local/share/UNetSeg/UNetSeg on Linux): recovery copies and the log, never beside the
    user's images."""
    path = os.environ.get(ENV_DATA_DIR)
    if path:
        return Path(path)
    app = QCoreApplication.instance()
    if app is not None and app.organizationName():
        location = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    else:  # a host without our names (a script, a test): still our folder, not Python's
        generic = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
        location = str(Path(generic) / ORGANIZATION / APPLICATION) if generic else ""
    return Path(location) if location else Path.home() / f".{APPLICATION.lower()}"


def restore_geometry(window, blob: QByteArray | None) -> bool:
    """``window.restoreGeometry(blob)`` unless the result is unusable (a saved geometry from
    another monitor set-up, or garbage that still parses): then the size stays as it was."""
    if blob is None:
        return False
    before = window.geometry()
    if not window.restoreGeometry(blob) or not geometry_is_usable(window.geometry()):
        window.setGeometry(before)
        return False
    return True


def geometry_is_usable(rect: QRect) -> bool:
    """At least 200x150 and no bigger than 16384 pixels, with its top strip on some screen."""
    from PySide6.QtGui import QGuiApplication

    if not (200 <= rect.width() <= 16384 and 150 <= rect.height() <= 16384):
        return False
    title = QRect(rect.left(), rect.top(), rect.width(), 40)
    screens = QGuiApplication.screens()
    return not screens or any(s.availableVirtualGeometry().intersects(title) for s in screens)


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("a bool is not a number here")
    if isinstance(value, (int, float)):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("not finite")
        return int(value)
    return int(str(value).strip())


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


class Settings:
    """Typed access to the app's QSettings; setters write through immediately."""

    def __init__(self, qsettings: QSettings | None = None):
        self._qs = qsettings if qsettings is not None else open_qsettings()

    def _get(self, key: str) -> Any:
        try:
            return self._qs.value(key)
        except Exception:  # noqa: BLE001 - an unreadable value is a missing value
            return None

    def _int(self, key: str, default: int, lo: int, hi: int) -> int:
        try:
            value = _to_int(self._get(key))
        except (TypeError, ValueError, OverflowError):
            return default
        return value if lo <= value <= hi else default

    def _bool(self, key: str, default: bool) -> bool:
        try:
            return _to_bool(self._get(key))
        except (TypeError, ValueError):
            return default

    def _bytes(self, key: str) -> QByteArray | None:
        value = self._get(key)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def _str_list(self, key: str) -> list[str]:
        value = self._get(key)
        if isinstance(value, str):
            value = [value] if value else []
        if not isinstance(value, (list, tuple)):
            return []
        return [v for v in value if isinstance(v, str) and v]

    # -- view ---------------------------------------------------------------------------------
    @property
    def opacity(self) -> int:
        """Mask opacity in percent (0-100)."""
        return self._int("view/opacity", DEFAULT_OPACITY, 0, 100)

    @opacity.setter
    def opacity(self, value: int) -> None:
        self._qs.setValue("view/opacity", int(value))

    @property
    def outline(self) -> bool:
        return self._bool("view/outline", False)

    @outline.setter
    def outline(self, value: bool) -> None:
        self._qs.setValue("view/outline", bool(value))

    @property
    def outline_width(self) -> int:
        """Outline width in screen pixels (1-4; gui.canvas.outline draws them)."""
        return self._int("view/outline_width", DEFAULT_OUTLINE_WIDTH, 1, 4)

    @outline_width.setter
    def outline_width(self, value: int) -> None:
        self._qs.setValue("view/outline_width", int(value))

    @property
    def show_first_run_notice(self) -> bool:
        """False once the user ticked "Don't show again" on the demo-model notice."""
        return self._bool("guide/show_first_run_notice", True)

    @show_first_run_notice.setter
    def show_first_run_notice(self, value: bool) -> None:
        self._qs.setValue("guide/show_first_run_notice", bool(value))

    def recent_weights(self) -> RecentWeights:
        """The weights files loaded lately, kept in these settings."""
        return RecentWeights(self._qs)

    def display_memory(self) -> DisplayMemory:
        """Each image's channel display, kept in these settings."""
        return DisplayMemory(self._qs)

    @property
    def brush_size(self) -> int:
        return self._int("edit/brush_size", DEFAULT_BRUSH, 1, 500)

    @brush_size.setter
    def brush_size(self, value: int) -> None:
        self._qs.setValue("edit/brush_size", int(value))

    @property
    def tile_cache_mb(self) -> int:
        """Memory for decoded tiles of large images, in MB (default 512)."""
        return self._int("view/tile_cache_mb", DEFAULT_TILE_CACHE_MB, 64, 65536)

    @tile_cache_mb.setter
    def tile_cache_mb(self, value: int) -> None:
        self._qs.setValue("view/tile_cache_mb", int(value))

    # -- model --------------------------------------------------------------------------------
    @property
    def model(self) -> str:
        """"small", "large", or the path of a weights file that still exists."""
        value = self._get("model/name")
        if isinstance(value, str):
            if value in BUILTIN_MODELS:
                return value
            if value and Path(value).is_file():
                return value
        return "small"

    @model.setter
    def model(self, value: str) -> None:
        self._qs.setValue("model/name", str(value))

    @property
    def device(self) -> str:
        value = self._get("model/device")
        return value if isinstance(value, str) and value in DEVICES else "auto"

    @device.setter
    def device(self, value: str) -> None:
        self._qs.setValue("model/device", str(value))

    # -- files --------------------------------------------------------------------------------
    @property
    def last_folder(self) -> str:
        value = self._get("files/last_folder")
        if isinstance(value, str) and value and Path(value).is_dir():
            return value
        return str(Path.home())

    @last_folder.setter
    def last_folder(self, value: str | os.PathLike) -> None:
        self._qs.setValue("files/last_folder", str(value))

    @property
    def last_export_folder(self) -> str:
        """"" when unset or gone (callers then start from the image's folder)."""
        value = self._get("files/last_export_folder")
        return value if isinstance(value, str) and value and Path(value).is_dir() else ""

    @last_export_folder.setter
    def last_export_folder(self, value: str | os.PathLike) -> None:
        self._qs.setValue("files/last_export_folder", str(value))

    @property
    def export_formats(self) -> list[str]:
        """The formats Export All wrote last (its checkboxes start so); ["index"] when unset."""
        return self._str_list("files/export_formats") or ["index"]

    @export_formats.setter
    def export_formats(self, formats: list[str]) -> None:
        self._qs.setValue("files/export_formats", [str(f) for f in formats])

    @property
    def recent_files(self) -> list[str]:
        return list(dict.fromkeys(self._str_list("files/recent")))[:MAX_RECENT]

    @recent_files.setter
    def recent_files(self, paths: list[str]) -> None:
        self._qs.setValue("files/recent", [str(p) for p in paths][:MAX_RECENT])

    def add_recent(self, path: str | os.PathLike, stack: bool = False) -> list[str]:
        """``path`` first in Open Recent; ``stack``: a folder of numbered planes opened as one stack
        (Open Stack Folder), which Open Recent opens so again, not as a folder of images."""
        path = str(path)
        recent = [path] + [p for p in self.recent_files if p != path]
        self.recent_files = recent
        stacks = [p for p in self.recent_stack_folders if p != path and p in self.recent_files]
        self._qs.setValue("files/recent_stacks", ([path] if stack else []) + stacks)
        return self.recent_files

    @property
    def recent_stack_folders(self) -> list[str]:
        """The recent entries that are stack folders (Open Stack Folder)."""
        return list(dict.fromkeys(self._str_list("files/recent_stacks")))

    def remove_recent(self, path: str | os.PathLike) -> None:
        self.recent_files = [p for p in self.recent_files if p != str(path)]

    # -- window -------------------------------------------------------------------------------
    @property
    def geometry(self) -> QByteArray | None:
        return self._bytes("window/geometry")

    @geometry.setter
    def geometry(self, value: QByteArray) -> None:
        self._qs.setValue("window/geometry", value)

    @property
    def window_state(self) -> QByteArray | None:
        return self._bytes("window/state")

    @window_state.setter
    def window_state(self, value: QByteArray) -> None:
        self._qs.setValue("window/state", value)

    def sync(self) -> None:
        self._qs.sync()
