"""The view preferences that outlive a session: restored into the app state at start, then
written to the settings file whenever the state changes (the state is the one copy)."""

from __future__ import annotations

from gui.infra.settings import Settings
from gui.state.app_state import AppState

PERSISTED = ("opacity", "outline", "brush_size")


def bind_settings(state: AppState, settings: Settings) -> None:
    for name in PERSISTED:
        setattr(state, name, getattr(settings, name))
        getattr(state.events, name).connect(lambda value, *_, n=name: setattr(settings, n, value))
