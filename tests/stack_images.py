"""Generated stacks for the stack tests: the same T x Z x C x Y x X data written in every layout we read."""

from __future__ import annotations

from pathlib import Path

import numpy as np

NAMES = ("DAPI", "GFP")


def stack_data(t: int = 1, z: int = 5, c: int = 2, h: int = 40, w: int = 48, seed: int = 0) -> np.ndarray:
    """T x Z x C x Y x X uint16 with a different pattern on every plane (so a wrong plane shows)."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 4000, (t, z, c, h, w), dtype=np.uint16)
    for ti in range(t):
        for zi in range(z):
            data[ti, zi, :, 0, 0] = 100 * ti + zi  # a plane's own marker
    return data


def write_ome_tiff(path: Path, data: np.ndarray, axes: str, names=NAMES, z_step: float = 0.5, **options) -> Path:
    """``data`` (in ``axes`` order) as OME-TIFF with channel names and pixel sizes (Z in µm)."""
    import tifffile

    channels = data.shape[axes.index("C")] if "C" in axes else 1
    metadata = {"axes": axes, "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.25, "PhysicalSizeZ": z_step,
                "Channel": {"Name": list(names)[:channels]}}
    tifffile.imwrite(path, data, metadata=metadata, **options)
    return path


def write_imagej(path: Path, tzcyx: np.ndarray, z_step: float = 1.5) -> Path:
    import tifffile

    tifffile.imwrite(path, tzcyx, imagej=True, resolution=(4.0, 4.0),
                     metadata={"axes": "TZCYX", "spacing": z_step, "unit": "um", "finterval": 2})
    return path


def write_ome_zarr(path: Path, data: np.ndarray, axes: str, names=NAMES, scale=None, levels: int = 1) -> Path:
    """An NGFF 0.4 multiscales group (zarr format 2); lower levels halve Y and X only."""
    import zarr

    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    datasets = []
    level = data
    for k in range(levels):
        chunks = tuple(1 if a in "TZ" else n for a, n in zip(axes, level.shape))
        group.create_array(str(k), data=level, chunks=chunks)
        factors = [float(2 ** k) if a in "YX" else 1.0 for a in axes]
        base = scale or [1.0] * len(axes)
        datasets.append({"path": str(k), "coordinateTransformations": [
            {"type": "scale", "scale": [b * f for b, f in zip(base, factors)]}]})
        index = tuple(slice(None, None, 2) if a in "YX" else slice(None) for a in axes)
        level = level[index]
    kinds = {"T": "time", "C": "channel"}
    group.attrs["multiscales"] = [{"version": "0.4", "datasets": datasets, "axes": [
        {"name": a.lower(), "type": kinds.get(a, "space"), **({"unit": "micrometer"} if a in "ZYX" else {})}
        for a in axes]}]
    if "C" in axes:
        group.attrs["omero"] = {"channels": [{"label": n} for n in list(names)[:data.shape[axes.index("C")]]]}
    return Path(path)


def write_plane_folder(folder: Path, zyx: np.ndarray, pattern: str = "z{}.tif") -> Path:
    """One file per plane, numbered without zero padding (so only a natural sort orders them)."""
    import tifffile

    folder.mkdir(parents=True, exist_ok=True)
    for i, plane in enumerate(zyx):
        name = pattern.format(i)
        if name.endswith(".png"):
            from PIL import Image

            Image.fromarray(plane).save(folder / name)
        else:
            tifffile.imwrite(folder / name, plane)
    return folder
