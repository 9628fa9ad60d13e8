"""How large a pixel (and a Z step, and a time step) is in the world, read from the file's metadata.

Measurements report areas and lengths in micrometres when the image says how large its pixels
are, and a stack keeps its Z spacing.  The sources, in the order they are believed:

* OME-XML (OME-TIFF): ``Pixels`` ``PhysicalSizeX/Y/Z`` with their ``...Unit`` attributes
  (default µm), ``TimeIncrement`` (default s);
* ImageJ TIFFs: the ``spacing`` (Z), ``finterval`` (T) and ``unit`` of the ImageJ description,
  with X and Y from the resolution tags (pixels per unit);
* OME-Zarr: the first dataset's ``scale`` transformation, per named axis with its ``unit``.

Lengths are converted to micrometres and times to seconds; a size whose unit is not one of
those known (pixel, "reference frame", an empty unit in a plain TIFF) is left out, never guessed.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

# metres per unit, as OME's UnitsLength and ImageJ's unit strings spell them
_LENGTH = {"m": 1.0, "cm": 1e-2, "mm": 1e-3, "µm": 1e-6, "um": 1e-6, "micron": 1e-6, "microns": 1e-6,
           "micrometer": 1e-6, "micrometre": 1e-6, "\\u00B5m": 1e-6, "nm": 1e-9, "nanometer": 1e-9,
           "nanometre": 1e-9, "Å": 1e-10, "angstrom": 1e-10, "millimeter": 1e-3, "millimetre": 1e-3,
           "centimeter": 1e-2, "centimetre": 1e-2, "meter": 1.0, "metre": 1.0, "inch": 0.0254, "in": 0.0254}
_TIME = {"s": 1.0, "sec": 1.0, "second": 1.0, "ms": 1e-3, "millisecond": 1e-3, "µs": 1e-6, "us": 1e-6,
         "min": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0}


def _factor(table: dict[str, float], unit: str) -> float | None:
    unit = unit.strip()
    return table.get(unit, table.get(unit.lower()))


def to_micrometres(value: float, unit: str | None) -> float | None:
    """``value`` in ``unit`` (OME's default: µm) as micrometres; None for an unknown unit or no size."""
    factor = _factor(_LENGTH, unit or "µm")
    return None if factor is None or not value or value <= 0 else round(float(value) * factor * 1e6, 9)


def to_seconds(value: float, unit: str | None) -> float | None:
    factor = _factor(_TIME, unit or "s")
    return None if factor is None or not value or value <= 0 else float(value) * factor


def physical_sizes(path: str | os.PathLike) -> dict[str, float]:
    """{"X": µm, "Y": µm, "Z": µm, "T": s} for the axes the file states (any may be missing).

    Never raises for a file without such metadata, or one that cannot be read: returns {}.
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".zarr" or (path.is_dir() and any(
                (path / m).exists() for m in (".zattrs", "zarr.json"))):
            return _from_zarr(path)
        if path.suffix.lower() in (".tif", ".tiff", ".btf", ".tf8"):
            return _from_tiff(path)
    except Exception:  # noqa: BLE001 - metadata is a bonus: a file without it still measures in pixels
        return {}
    return {}


def from_ome_xml(xml: str | None) -> dict[str, float]:
    """The first OME Image's physical sizes (see the module doc)."""
    if not xml:
        return {}
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return {}
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] != "Pixels":
            continue
        found: dict[str, float] = {}
        for axis in "XYZ":
            value = el.get(f"PhysicalSize{axis}")
            if value is not None:
                size = to_micrometres(float(value), el.get(f"PhysicalSize{axis}Unit"))
                if size is not None:
                    found[axis] = size
        if el.get("TimeIncrement") is not None:
            step = to_seconds(float(el.get("TimeIncrement")), el.get("TimeIncrementUnit"))
            if step is not None:
                found["T"] = step
        return found
    return {}


def _from_tiff(path: Path) -> dict[str, float]:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        if tif.is_ome:
            found = from_ome_xml(tif.ome_metadata)
            if found:
                return found
        if not tif.is_imagej:
            return {}
        meta = tif.imagej_metadata or {}
        unit = meta.get("unit")
        found = {}
        page = tif.pages.first
        for axis, tag in (("X", "XResolution"), ("Y", "YResolution")):
            value = page.tags.get(tag)
            if value is not None:
                num, den = value.value
                if num:
                    size = to_micrometres(den / num, unit)
                    if size is not None:
                        found[axis] = size
        if meta.get("spacing"):
            size = to_micrometres(float(meta["spacing"]), unit)
            if size is not None:
                found["Z"] = size
        if meta.get("finterval"):
            step = to_seconds(float(meta["finterval"]), meta.get("tunit") or "s")
            if step is not None:
                found["T"] = step
        return found


def _from_zarr(path: Path) -> dict[str, float]:
    import zarr

    attrs = dict(zarr.open_group(str(path), mode="r").attrs)
    multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales") or []
    if not multiscales:
        return {}
    ms = multiscales[0]
    axes = ms.get("axes") or []
    transforms = (ms.get("datasets") or [{}])[0].get("coordinateTransformations") or []
    scale = next((t.get("scale") for t in transforms if t.get("type") == "scale"), None)
    if not scale or len(scale) != len(axes):
        return {}
    found = {}
    for axis, value in zip(axes, scale):
        name = (axis.get("name") if isinstance(axis, dict) else str(axis)).upper()[:1]
        unit = axis.get("unit") if isinstance(axis, dict) else None
        kind = axis.get("type") if isinstance(axis, dict) else None
        if name in "XYZ" and kind != "channel":
            size = to_micrometres(float(value), _ngff_length(unit)) if unit else None
            if size is not None:
                found[name] = size
        elif name == "T" and unit:
            step = to_seconds(float(value), _ngff_time(unit))
            if step is not None:
                found[name] = step
    return found


def _ngff_length(unit: str) -> str:
    """NGFF spells units out ("micrometer"); map the common ones onto the table's keys."""
    return {"micrometer": "µm", "nanometer": "nm", "millimeter": "mm", "meter": "m",
            "centimeter": "cm", "angstrom": "angstrom"}.get(unit, unit)


def _ngff_time(unit: str) -> str:
    return {"second": "s", "millisecond": "ms", "minute": "min", "hour": "h"}.get(unit, unit)
