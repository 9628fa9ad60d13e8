"""Class lists: ids, names and display colours shared by models, masks and the GUI.

A class list is a plain list of ``ClassInfo`` tuples, so it compares and prints like
``[(id, name, (r, g, b)), ...]`` and crosses into JSON metadata without a custom encoder.
"""

from __future__ import annotations

import colorsys
import functools
from typing import Iterable, NamedTuple, Sequence

RGB = tuple[int, int, int]


class ClassInfo(NamedTuple):
    id: int
    name: str
    color: RGB


# Kelly's maximally distinct colours (minus white/black), then generated hues.  Class 0 is
# background and is drawn black (and transparent in overlays).
_KELLY = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
    (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128),
]


def default_color(class_id: int) -> RGB:
    """A fixed, distinct colour for any class id in 0..255 (same id -> same colour, always)."""
    if class_id <= 0:
        return (0, 0, 0)
    if class_id <= len(_KELLY):
        return _KELLY[class_id - 1]
    k = class_id - len(_KELLY)
    hue = (k * 0.618033988749895) % 1.0
    sat = 0.55 + 0.4 * ((k * 7) % 5) / 4
    val = 0.6 + 0.4 * ((k * 3) % 4) / 3
    r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
    return (round(r * 255), round(g * 255), round(b * 255))


def default_classes(num_classes: int) -> list[ClassInfo]:
    """Class 0 is background, the others 'class N' with the fixed palette."""
    return [
        ClassInfo(i, "background" if i == 0 else f"class {i}", default_color(i))
        for i in range(num_classes)
    ]


def complete_classes(*lists: Iterable[ClassInfo], top: int = 0) -> list[ClassInfo]:
    """One class list from several, sorted by id: an id takes its entry from the first list
    that names it, and every id up to ``top`` without one gets its default entry.

    The one rule for filling out a class list: a mask opened with ids its classes do not name,
    a recovery copy, the classes training sees across open documents, a new document.
    """
    merged: dict[int, ClassInfo] = {}
    for classes in lists:
        for c in classes:
            merged.setdefault(c.id, c)
    for c in default_classes(top + 1):
        merged.setdefault(c.id, c)
    return sorted(merged.values(), key=lambda c: c.id)


@functools.lru_cache(maxsize=4)
def _default_palette(size: int) -> "numpy.ndarray":  # noqa: F821
    """Every id's default colour (256 colours took 10 ms, and the view asks at every plane change)."""
    import numpy as np

    lut = np.array([default_color(i) for i in range(size)], dtype=np.uint8)
    lut.flags.writeable = False
    return lut


def palette_array(classes: Sequence[ClassInfo], size: int = 256) -> "numpy.ndarray":  # noqa: F821
    """A (size, 3) uint8 lookup table: ids without a class get their default colour."""
    lut = _default_palette(size).copy()
    for c in classes:
        if 0 <= c.id < size:
            lut[c.id] = c.color
    return lut


def normalize_classes(raw: Iterable, num_classes: int) -> list[ClassInfo]:
    """Build a full class list of ``num_classes`` entries from partial user metadata.

    Accepts ``[(id, name, colour)]``, ``[{"id":, "name":, "color":}]`` or a bare list of names;
    anything missing or malformed falls back to the defaults instead of failing the load.
    """
    classes = {c.id: c for c in default_classes(num_classes)}
    for index, item in enumerate(raw or []):
        try:
            if isinstance(item, str):
                cid, name, color = index, item, None
            elif isinstance(item, dict):
                cid, name, color = int(item.get("id", index)), item.get("name"), item.get("color")
            else:
                cid, name, color = int(item[0]), item[1], item[2] if len(item) > 2 else None
        except (TypeError, ValueError, IndexError):
            continue
        if not 0 <= cid < num_classes:
            continue
        base = classes[cid]
        name = str(name) if name not in (None, "") else base.name
        rgb = _parse_color(color) or base.color
        classes[cid] = ClassInfo(cid, name, rgb)
    return [classes[i] for i in range(num_classes)]


def _parse_color(color) -> RGB | None:
    if isinstance(color, str) and color.startswith("#") and len(color) == 7:
        try:
            return tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
        except ValueError:
            return None
    try:
        r, g, b = (int(v) for v in list(color)[:3])
    except (TypeError, ValueError):
        return None
    if all(0 <= v <= 255 for v in (r, g, b)):
        return (r, g, b)
    return None


def classes_to_json(classes: Sequence[ClassInfo]) -> list[dict]:
    return [{"id": c.id, "name": c.name, "color": list(c.color)} for c in classes]
