"""The view preferences that outlive a session: restored into the app state at start, then
written to the settings file whenever the state changes (the state is the one copy); and the
tile memory for large images, asked for and applied to the view's tile cache."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from gui import dialogs
from gui.infra.settings import Settings
from gui.state.app_state import AppState

PERSISTED = ("opacity", "outline", "outline_width", "brush_size")


def bind_settings(state: AppState, settings: Settings) -> None:
    state.display.memory = settings.display_memory()  # each image's channel display, remembered
    for name in PERSISTED:
        setattr(state, name, getattr(settings, name))
        getattr(state.events, name).connect(lambda value, *_, n=name: setattr(settings, n, value))


def ask_tile_memory(parent: QWidget, settings: Settings, cache) -> None:
    """View > Tile Memory…: a new byte budget for ``cache`` (gui.canvas.tiles.TileCache), kept."""
    mb = dialogs.ask_tile_cache_mb(parent, settings.tile_cache_mb)
    if mb is not None:
        settings.tile_cache_mb = mb
        cache.budget = mb * 1024 * 1024
