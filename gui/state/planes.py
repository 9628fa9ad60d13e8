"""Which plane of a stack is shown: one evented model the Z/T sliders, the keys and the window follow.

``axes`` is the shown image's plane axes ("" for a 2-D image, else "Z", "T" or "TZ",
core.io.sources), ``sizes`` their sizes and ``plane`` the shown plane (0-based, a tuple over
``axes``).  Only gui.state.app_state writes it (AppState.show_plane and on a new image).
Planes are numbered from 1 where the user reads them ("Z 5/20", as Fiji does). Qt-free.
"""

from __future__ import annotations

from dataclasses import dataclass

from psygnal import evented

NAMES = {"Z": "Z", "T": "T"}


@evented
@dataclass(eq=False)
class PlaneState:
    axes: str = ""
    sizes: tuple = ()
    plane: tuple = ()

    def set(self, axes: str, sizes: tuple, plane: tuple) -> None:
        """Another image: every field, in an order whose every step is consistent (no axes while
        the sizes and plane change)."""
        if (axes, tuple(sizes), tuple(plane)) == (self.axes, self.sizes, self.plane):
            return
        self.axes = ""
        self.sizes, self.plane = tuple(sizes), tuple(plane)
        self.axes = axes

    @property
    def is_stack(self) -> bool:
        return bool(self.axes)

    def stepped(self, axis: str, step: int) -> tuple | None:
        """The plane ``step`` planes along ``axis`` from the shown one; None past either end or
        when the image has no such axis."""
        if axis not in self.axes:
            return None
        i = self.axes.index(axis)
        value = self.plane[i] + int(step)
        if not 0 <= value < self.sizes[i]:
            return None
        return self.plane[:i] + (value,) + self.plane[i + 1:]

    def inner_axis(self) -> str | None:
        """The axis Page Up/Down steps: Z when there is one, else T."""
        return "Z" if "Z" in self.axes else ("T" if "T" in self.axes else None)

    def text(self, axis: str | None = None) -> str:
        """"Z 5/20" for one axis, "T 2/3  Z 5/20" for every axis; "" for a 2-D image."""
        axes = [axis] if axis else list(self.axes)
        parts = [f"{a} {self.plane[self.axes.index(a)] + 1}/{self.sizes[self.axes.index(a)]}"
                 for a in axes if a in self.axes]
        return "  ".join(parts)


def plane_text(axes: str, plane, sizes=None) -> str:
    """How the app names a plane in messages: "Z 5" (or "Z 5/20" with ``sizes``), numbered from 1."""
    if sizes is None:
        return " ".join(f"{a} {int(p) + 1}" for a, p in zip(axes, plane))
    return " ".join(f"{a} {int(p) + 1}/{int(n)}" for a, p, n in zip(axes, plane, sizes))
