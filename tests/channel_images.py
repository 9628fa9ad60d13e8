"""Fluorescence-like test images: blobs in a few 16-bit channels, as OME-TIFF or OME-Zarr."""

from __future__ import annotations

from pathlib import Path

import numpy as np

NAMES = ("DAPI", "GFP", "mCherry")


def blobs(h: int, w: int, channels: int = 3, seed: int = 0, peak: int = 3000) -> np.ndarray:
    """H x W x C uint16: round blobs of different sizes per channel on a dim noisy background,
    the way nuclei, cytoplasm and spots look in a 12-bit camera's range."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    out = np.empty((h, w, channels), np.float32)
    for c in range(channels):
        image = np.zeros((h, w), np.float32)
        radius = (w / 14, w / 30, w / 60)[c % 3]
        for _ in range(int(12 * (c + 1))):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            r = radius * rng.uniform(0.6, 1.4)
            image += rng.uniform(0.4, 1.0) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        out[..., c] = 100 + 30 * c + peak * np.clip(image, 0, 1.2) + rng.normal(0, 25, (h, w))
    return np.clip(out, 0, 65535).astype(np.uint16)


def write_ome_tiff(path: Path, hwc: np.ndarray, names=NAMES, **options) -> Path:
    import tifffile

    metadata = {"axes": "CYX", "Channel": {"Name": list(names)[:hwc.shape[2]]}}
    tifffile.imwrite(path, np.moveaxis(hwc, 2, 0), metadata=metadata, **options)
    return path


def write_repeated_ome_zarr(path: Path, side: int, channels: int = 4, chunk: int = 512,
                            names: tuple[str, ...] | None = None) -> Path:
    """A side x side OME-Zarr (axes c, y, x; uint16; a pyramid down to about one chunk) whose
    chunks all repeat a few blob tiles: every chunk file is written once per distinct tile and
    hard-linked, so a 40,000 x 40,000 x 4 store takes seconds and a few MB."""
    import os
    import zarr

    tiles = [np.moveaxis(blobs(chunk, chunk, channels, seed=s), 2, 0) for s in range(4)]
    names = list(names or (f"Ch{i + 1}" for i in range(channels)))
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    levels = max(1, int(np.ceil(np.log2(side / chunk))) + 1)
    datasets = []
    for k in range(levels):
        s = max(1, -(-side // (1 << k)))
        array = root.create_array(str(k), shape=(channels, s, s), chunks=(channels, chunk, chunk),
                                  dtype=np.uint16, fill_value=0,
                                  chunk_key_encoding={"name": "v2", "separator": "/"})
        n = -(-s // chunk)
        # write each distinct edge-clipped tile once, then link the same bytes everywhere else
        written: dict[tuple, Path] = {}
        for ty in range(n):
            for tx in range(n):
                i = (ty * 3 + tx) % 4
                hh, ww = min(chunk, s - ty * chunk), min(chunk, s - tx * chunk)
                target = Path(path) / str(k) / "0" / str(ty) / str(tx)
                key = (i, hh, ww)
                if key in written:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.link(written[key], target)
                    continue
                array[:, ty * chunk:ty * chunk + hh, tx * chunk:tx * chunk + ww] = tiles[i][:, :hh, :ww]
                written[key] = target
        datasets.append({"path": str(k), "coordinateTransformations": [
            {"type": "scale", "scale": [1.0, float(1 << k), float(1 << k)]}]})
    root.attrs["multiscales"] = [{"version": "0.4", "axes": [
        {"name": "c", "type": "channel"}, {"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
        "datasets": datasets}]
    root.attrs["omero"] = {"channels": [{"label": n} for n in names]}
    return Path(path)
