"""Live Training's state, one evented model that its panel, the canvas and the actions observe.

The controller (gui.controllers.live_training) is the only writer; every field change emits
``live.events.<field>(new, old)`` as the app state does.  Qt-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from psygnal import evented

from core.document.editing import Box


@dataclass(frozen=True, eq=False)
class Prediction:
    """The model's view of ``box`` of one image: class ids and uncertainty (uint8, 255 = most
    unsure), both ``factor`` times coarser than the image."""

    image: Path
    box: Box
    factor: int
    labels: np.ndarray
    uncertainty: np.ndarray
    snapshot: int  # the LiveSnapshot.index it came from


@dataclass(frozen=True, eq=False)
class HistoryRow:
    """One kept checkpoint as the history list shows it (``snapshot``: core's LiveSnapshot)."""

    snapshot: Any

    @property
    def index(self) -> int:
        return int(self.snapshot.index)

    def text(self) -> str:
        s = self.snapshot
        minutes, seconds = divmod(int(round(s.seconds)), 60)
        score = "–" if s.held_out_miou is None else f"{s.held_out_miou:.2f}"
        return f"#{s.index}  {minutes}:{seconds:02d}  {s.annotated_pixels} px, {s.images} img  held-out {score}"


FROM_SCRATCH, FROM_MODEL = "scratch", "model"


@evented
@dataclass(eq=False)
class LiveState:
    on: bool = False
    held: bool = False  # paused by the user ("paused" is a name psygnal reserves)
    status: str = "Off. Paint strokes of at least two classes (Stroke tool, S), then turn Live Training on."
    start_from: str = FROM_SCRATCH  # FROM_SCRATCH or FROM_MODEL (the controller sets the measured default)
    history: tuple = ()  # HistoryRow per kept checkpoint, oldest first
    current: int = -1  # the LiveSnapshot.index training continues from (after a roll back) or the newest
    prediction: Prediction | None = None
    show_uncertainty: bool = False

    def row(self, index: int) -> HistoryRow | None:
        return next((r for r in self.history if r.index == index), None)

    @property
    def newest(self) -> HistoryRow | None:
        return self.history[-1] if self.history else None
