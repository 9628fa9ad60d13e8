"""The weights files the user loaded lately, newest first, kept in the settings.

Qt-free logic over any store with QSettings' ``value(key)`` / ``setValue(key, value)``, so the
Model menu can list them and a test can use a dict-backed store.  Files that no longer exist are
left out when read (a USB stick unplugged) but only forgotten when the user picks one or on
``prune``, so plugging the stick back in brings them back.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

KEY = "model/recent_weights"
LIMIT = 8


class SettingsStore(Protocol):
    def value(self, key: str) -> Any: ...

    def setValue(self, key: str, value: Any) -> None: ...  # noqa: N802 - QSettings' name


class RecentWeights:
    def __init__(self, store: SettingsStore, key: str = KEY, limit: int = LIMIT):
        self._store, self._key, self._limit = store, key, limit

    def _stored(self) -> list[str]:
        try:
            raw = self._store.value(self._key)
        except Exception:  # noqa: BLE001 - an unreadable value is an empty list
            return []
        if isinstance(raw, str):
            raw = [raw] if raw else []
        if not isinstance(raw, (list, tuple)):
            return []
        return list(dict.fromkeys(p for p in raw if isinstance(p, str) and p))[: self._limit]

    def paths(self) -> list[Path]:
        """The remembered files that exist now, newest first."""
        return [Path(p) for p in self._stored() if Path(p).is_file()]

    def add(self, path: str | os.PathLike) -> list[Path]:
        """Remember ``path`` as the newest (absolute, so another working directory finds it)."""
        text = str(Path(path).absolute())
        self._write([text] + [p for p in self._stored() if p != text])
        return self.paths()

    def remove(self, path: str | os.PathLike) -> None:
        text = str(Path(path).absolute())
        self._write([p for p in self._stored() if p != text])

    def prune(self) -> None:
        """Forget files that no longer exist."""
        self._write([p for p in self._stored() if Path(p).is_file()])

    def clear(self) -> None:
        self._write([])

    def _write(self, paths: list[str]) -> None:
        self._store.setValue(self._key, paths[: self._limit])
