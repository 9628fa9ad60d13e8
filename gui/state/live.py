"""Live Training's state, one evented model that its panel, the canvas and the actions observe.

The controller (gui.controllers.live_training) is the only writer; every field change emits
``live.events.<field>(new, old)`` as the app state does.  Qt-free.

A checkpoint is known by its ``uid`` (core.training.live.LiveSnapshot.uid: unique for the session,
also across restarts), never by its place in its run, which starts again at #0 with every run.
One checkpoint is *marked*: the preview, Apply and Save Model use it, and it stays marked until
the user rolls back to another or a better one (a higher score on the same held-out strokes,
``comparable_score``) arrives.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from psygnal import evented

from core.document.editing import Box

NONE = -1  # no checkpoint


@dataclass(frozen=True, eq=False)
class Prediction:
    """The model's view of ``box`` of one image: class ids and uncertainty (uint8, 255 = most
    unsure), both ``factor`` times coarser than the image."""

    image: Path
    box: Box
    factor: int
    labels: np.ndarray
    uncertainty: np.ndarray
    uid: int  # the LiveSnapshot.uid it came from
    instances: np.ndarray | None = None  # object ids (uint32, 0 = none) when the checkpoint separates objects


def comparable_score(snapshot: Any) -> tuple[Any, float] | None:
    """(what the score was measured on, the score) of a checkpoint, or None when it has none.

    Two checkpoints compare only when the first items are equal: the same held-out strokes, in
    the same run (the running trainer's own rescoring, LiveRunner.score, comes first)."""
    score, held = getattr(snapshot, "held_out_miou", None), getattr(snapshot, "held_out_set", None)
    if score is None or held is None:
        return None
    return ("held-out", getattr(snapshot, "run", 0), held), float(score)


def better(new: Any, old: Any) -> bool | None:
    """True/False when ``new`` scores higher/not higher than ``old`` on the same strokes, None when
    the two were not measured on the same strokes (or one was not measured)."""
    a, b = comparable_score(new), comparable_score(old)
    if a is None or b is None or a[0] != b[0]:
        return None
    return a[1] > b[1]


@dataclass(frozen=True, eq=False)
class HistoryRow:
    """One kept checkpoint as the history list shows it (``snapshot``: core's LiveSnapshot;
    ``run``: the run's number in this window, 1 for the first)."""

    snapshot: Any
    run: int = 1

    @property
    def uid(self) -> int:
        return int(self.snapshot.uid)

    @property
    def index(self) -> int:
        return int(self.snapshot.index)

    @property
    def label(self) -> str:
        """What the user reads everywhere a checkpoint is named: "Run 2 · #5"."""
        return f"Run {self.run} · #{self.index}"

    def text(self) -> str:
        s = self.snapshot
        minutes, seconds = divmod(int(round(s.seconds)), 60)
        images = f" in {s.images} images" if s.images != 1 else ""
        held = getattr(s, "held_out_pixels", 0)
        held = f", {held:,} held out" if held else ""
        score = "not scored yet" if s.held_out_miou is None else f"held-out strokes {s.held_out_miou:.2f}"
        held_set = getattr(s, "held_out_set", None)
        if s.held_out_miou is not None and held_set is not None:  # rows compare only on the same set
            score += f" (set {held_set})"
        return f"{self.label}  {minutes}:{seconds:02d}  trained on {s.annotated_pixels:,} px{images}{held}  {score}"


def best_of_runs(rows: tuple) -> set[int]:
    """The uid of each run's best checkpoint: the highest score on the held-out strokes its newest
    scored checkpoint was measured on (the earliest of equals)."""
    best: set[int] = set()
    for run in {r.run for r in rows}:
        scored = [(r, comparable_score(r.snapshot)) for r in rows if r.run == run]
        scored = [(r, s) for r, s in scored if s is not None]
        if scored:
            latest = scored[-1][1][0]
            same = [(r, s[1]) for r, s in scored if s[0] == latest]
            top = max(v for _, v in same)
            best.add(next(r.uid for r, v in same if v == top))
    return best


def trimmed(rows: tuple, limit: int, keep: set[int]) -> tuple:
    """At most ``limit`` rows (oldest dropped first), never dropping the uids in ``keep`` nor any
    run's best checkpoint (``best_of_runs``)."""
    protected = set(keep) | best_of_runs(rows)
    excess = len(rows) - limit
    out = []
    for row in rows:
        if excess > 0 and row.uid not in protected:
            excess -= 1
            continue
        out.append(row)
    return tuple(out)


FROM_SCRATCH, FROM_MODEL = "scratch", "model"


@evented
@dataclass(eq=False)
class LiveState:
    on: bool = False
    held: bool = False  # paused by the user ("paused" is a name psygnal reserves)
    status: str = "Off. Paint strokes of at least two classes (Stroke tool, S), then turn Live Training on."
    warning: str = ""  # something the user must know, shown until it is resolved ("" = none)
    learns: str = ""  # what the running trainer learns when it is not the strokes' classes (painted objects)
    start_from: str = FROM_SCRATCH  # FROM_SCRATCH or FROM_MODEL (the controller sets the measured default)
    history: tuple = ()  # HistoryRow per kept checkpoint, oldest first, every run of this window
    marked: int = NONE  # the uid of the checkpoint that the preview, Apply and Save Model use
    pinned: bool = False  # the user chose the marked checkpoint: only a better one replaces it
    saved: frozenset = frozenset()  # uids written by Save Model
    best: frozenset = frozenset()  # the uid of each run's best scored checkpoint (never trimmed)
    prediction: Prediction | None = None
    show_uncertainty: bool = False
    levels: tuple = ()  # the shown slide's pyramid levels to train at: (level, downsample, (w, h)); () if no slide
    level: int = NONE  # the level the shown slide's strokes are trained at (core.training.slide_strokes)

    def row(self, uid: int) -> HistoryRow | None:
        return next((r for r in self.history if r.uid == uid), None)

    @property
    def marked_row(self) -> HistoryRow | None:
        return self.row(self.marked)

    @property
    def newest(self) -> HistoryRow | None:
        return self.history[-1] if self.history else None

    @property
    def unsaved_model(self) -> HistoryRow | None:
        """The marked checkpoint when Save Model has not written it (what quitting would lose)."""
        row = self.marked_row
        return row if row is not None and row.uid not in self.saved else None
