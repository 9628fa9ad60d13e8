"""Which axis of a file is what: Y and X, the channels, and the planes (time T, depth Z).

One rule for every reader (core.io.images, core.io.sources):

* the axes the file names decide: OME-TIFF and OME-Zarr name T, C, Z, Y, X; ImageJ hyperstacks
  name T, Z, C; tifffile's shaped TIFFs carry the axes they were written with; S is samples
  per pixel (RGB);
* the channel axis is C or S, whichever holds more than one plane (both at once is refused);
* T and Z of more than one plane are planes, in the order ``"TZ"`` (docs/interfaces.md);
* a generic page axis (tifffile's I or Q: a multi-page TIFF without axes metadata) is
  ambiguous.  Its pages are channels when there are at most ``CHANNEL_PAGES`` of them and
  nothing else is a channel axis (a few fluorescence channels saved page by page, as issue 22
  read them), and Z planes when there are more, or when the pages are RGB (S) already: a Z
  series has tens of planes, a microscope seldom more than four channels.  ``--axes`` (the
  ``axes`` override) says otherwise for any file;
* anything else (two generic axes, an axis letter we do not know, C and S together) is one
  sentence naming the file, its axes and sizes, and saying how to name them (``--axes``).

Axes of a single plane are ignored (read at index 0) whatever their letter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

CHANNEL_PAGES = 4  # a generic page axis of at most this many pages holds channels; more: Z planes
PLANE_AXES = "TZ"
KNOWN = "TZCSYX"
GENERIC = "IQ"


@dataclass(frozen=True)
class AxesLayout:
    """What a reader needs: the file's axes (as overridden), the colour axis, the plane axes.

    ``axes`` may differ from the file's own letters: a generic page axis read as Z becomes "Z".
    """

    axes: str
    colour: str | None
    plane_axes: str  # "", "T", "Z" or "TZ"
    planes: tuple[int, ...]


def describe(axes: str, shape: Sequence[int]) -> str:
    """``"TCZYX (T 2 x C 2 x Z 3 x Y 16 x X 16)"``, for messages."""
    return f"{axes} ({' x '.join(f'{a} {int(n)}' for a, n in zip(axes, shape))})"


def parse_axes_option(text: str | None) -> str | None:
    """``--axes zcyx`` -> "ZCYX"; each letter once, from T Z C S Y X, with Y and X."""
    if text is None or not str(text).strip():
        return None
    axes = str(text).strip().upper()
    bad = sorted(set(axes) - set(KNOWN))
    if bad:
        raise ValueError(f"--axes {text}: {', '.join(bad)} is not an axis; use the letters T, Z, C, S, Y and X")
    if len(set(axes)) != len(axes):
        raise ValueError(f"--axes {text}: an axis is named twice")
    if "Y" not in axes or "X" not in axes:
        raise ValueError(f"--axes {text}: the axes must include Y and X")
    return axes


def layout(name: str, axes: str, shape: Sequence[int], override: str | None = None) -> AxesLayout:
    """The layout of an array with ``axes`` and ``shape`` (see the module doc).

    ``name`` starts the one-sentence ValueError; ``override`` (``--axes``) replaces the file's
    letters, one per dimension.
    """
    axes = axes.upper()
    shape = tuple(int(n) for n in shape)
    if override:
        if len(override) != len(shape):
            raise ValueError(f"{name}: --axes {override} names {len(override)} axes but the image has "
                             f"{len(shape)} ({describe(axes, shape)})")
        axes = override.upper()
    if len(axes) != len(shape):
        raise ValueError(f"{name}: the file names {len(axes)} axes ({axes}) for {len(shape)} dimensions")
    if axes.count("Y") != 1 or axes.count("X") != 1:
        raise ValueError(f"{name}: the image has no single Y and X axis (axes {describe(axes, shape)})")
    many = [(a, n) for a, n in zip(axes, shape) if a not in "YX" and n > 1]
    unknown = [a for a, _ in many if a not in KNOWN and a not in GENERIC]
    generic = [a for a, _ in many if a in GENERIC]
    what = f"{len(shape)}-D image with axes {describe(axes, shape)}"
    hint = "name them with --axes (for example --axes TZCYX)"
    if unknown:
        raise ValueError(f"{name}: a {what} has an axis UNetSeg does not know ({', '.join(unknown)}); {hint}")
    if len(generic) > 1 or any(axes.count(a) > 1 for a, _ in many):
        raise ValueError(f"{name}: a {what} does not say which axis is time, depth or channel; {hint}")
    colours = [a for a, _ in many if a in "CS"]
    if len(colours) > 1:
        raise ValueError(f"{name}: a {what} has two channel axes (C and S); {hint}")
    colour = colours[0] if colours else None
    planes_found = [a for a, _ in many if a in PLANE_AXES]
    if generic:
        g = generic[0]
        pages = shape[axes.index(g)]
        if colour is None and not planes_found and pages <= CHANNEL_PAGES:
            colour = g
        elif not planes_found and "Z" not in axes:
            axes = axes.replace(g, "Z")  # pages of RGB, or more pages than a microscope has channels
        else:
            raise ValueError(f"{name}: a {what} does not say which axis is time, depth or channel; {hint}")
    if colour is None:  # one plane: keep a declared colour axis, as the 8-bit view always did
        colour = "S" if "S" in axes else ("C" if "C" in axes else None)
    plane_axes = "".join(a for a in PLANE_AXES if a in axes and shape[axes.index(a)] > 1)
    return AxesLayout(axes, colour, plane_axes, tuple(shape[axes.index(a)] for a in plane_axes))


def plane_key(plane_axes: str, planes: Sequence[int], plane: Sequence[int] | int | None) -> tuple[int, ...]:
    """``plane`` checked against the stack: a tuple over ``plane_axes``; ``()`` means the first plane."""
    if plane is None or plane == ():
        return (0,) * len(plane_axes)
    if isinstance(plane, (int,)) or hasattr(plane, "__index__"):
        plane = (int(plane),)
    plane = tuple(int(p) for p in plane)
    if len(plane) != len(plane_axes):
        raise ValueError(f"plane {plane} names {len(plane)} axes but the image's planes are "
                         f"{plane_axes or 'none (a 2-D image)'}")
    for a, p, n in zip(plane_axes, plane, planes):
        if not 0 <= p < n:
            raise ValueError(f"plane {a} {p} does not exist (the image has {a} 0-{n - 1})")
    return plane


def plane_label(plane_axes: str, plane: Sequence[int]) -> str:
    """``"z 3"``, ``"t 1 z 3"``: how a plane is named in messages and logs."""
    return " ".join(f"{a.lower()} {int(p)}" for a, p in zip(plane_axes, plane))
