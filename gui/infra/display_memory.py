"""Each image's channel display (colours, contrast limits, visibility), kept in the settings so
reopening an image shows it as it was left.

Like RecentWeights, Qt-free logic over any store with QSettings' ``value``/``setValue``.  One
JSON value per image under ``display/<hash of its path>``; the ``LIMIT`` most recently saved are
kept.  A value that does not parse is a value never saved.
"""

from __future__ import annotations

import hashlib
import json

from core.io.display import ChannelDisplay
from gui.infra.recent_weights import SettingsStore

GROUP = "display"
LIMIT = 500


class DisplayMemory:
    def __init__(self, store: SettingsStore, limit: int = LIMIT):
        self._store, self._limit = store, limit

    @staticmethod
    def _key(image_key: str) -> str:
        return f"{GROUP}/{hashlib.sha1(image_key.encode()).hexdigest()[:20]}"

    def _read(self, key: str):
        try:
            return self._store.value(key)
        except Exception:  # noqa: BLE001 - an unreadable value is a missing value
            return None

    def load(self, image_key: str) -> list[ChannelDisplay] | None:
        raw = self._read(self._key(image_key))
        try:
            data = json.loads(raw)
            if data["image"] != image_key:
                return None
            return [ChannelDisplay.from_json(c) for c in data["channels"]]
        except (TypeError, ValueError, KeyError):
            return None

    def save(self, image_key: str, channels: list[ChannelDisplay]) -> None:
        key = self._key(image_key)
        self._store.setValue(key, json.dumps({"image": image_key, "channels": [c.to_json() for c in channels]}))
        order = self._read(f"{GROUP}/order")
        order = [order] if isinstance(order, str) else order if isinstance(order, list) else []  # INI: 1 item is a str
        order = [k for k in order if isinstance(k, str) and k and k != key]
        order.append(key)
        for old in order[:-self._limit]:
            self._store.setValue(old, "")
        self._store.setValue(f"{GROUP}/order", order[-self._limit:])
