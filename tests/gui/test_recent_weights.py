"""Recently loaded weights: newest first, no duplicates, capped, persisted, gone files hidden."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from gui.infra.recent_weights import LIMIT, RecentWeights


def weights(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"w")
    return path


def test_newest_first_without_duplicates_and_persisted_in_qsettings(tmp_path):
    ini = str(tmp_path / "s.ini")
    recent = RecentWeights(QSettings(ini, QSettings.Format.IniFormat))
    a, b = weights(tmp_path, "a.safetensors"), weights(tmp_path, "b.pt")
    recent.add(a)
    recent.add(b)
    assert recent.add(a) == [a, b]
    again = RecentWeights(QSettings(ini, QSettings.Format.IniFormat))
    assert again.paths() == [a, b]
    again.remove(b)
    assert again.paths() == [a]


def test_missing_files_are_hidden_until_pruned_and_the_list_is_capped(tmp_path):
    store: dict = {}

    class Store:
        def value(self, key):
            return store.get(key)

        def setValue(self, key, value):  # noqa: N802
            store[key] = value

    recent = RecentWeights(Store())
    paths = [weights(tmp_path, f"m{i}.safetensors") for i in range(LIMIT + 2)]
    for p in paths:
        recent.add(p)
    assert recent.paths() == list(reversed(paths))[:LIMIT]
    paths[-1].unlink()
    assert paths[-1] not in recent.paths() and len(store["model/recent_weights"]) == LIMIT
    recent.prune()
    assert len(store["model/recent_weights"]) == LIMIT - 1
    store["model/recent_weights"] = 42  # a damaged settings value reads as empty
    assert recent.paths() == []
