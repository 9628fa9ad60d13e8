"""Physical pixel sizes read from OME-TIFF, ImageJ TIFF and OME-Zarr metadata (core.io.physical)."""

import numpy as np
import pytest
import tifffile

from core.io.physical import from_ome_xml, physical_sizes


def test_ome_tiff_sizes_with_units(tmp_path):
    path = tmp_path / "s.ome.tif"
    tifffile.imwrite(path, np.zeros((3, 2, 16, 16), np.uint16),
                     metadata={"axes": "ZCYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5,
                               "PhysicalSizeZ": 2000.0, "PhysicalSizeZUnit": "nm"})
    assert physical_sizes(path) == {"X": 0.5, "Y": 0.5, "Z": 2.0}


def test_imagej_spacing_resolution_and_interval(tmp_path):
    path = tmp_path / "ij.tif"
    tifffile.imwrite(path, np.zeros((3, 2, 16, 16), np.uint16), imagej=True, resolution=(4.0, 4.0),
                     metadata={"axes": "ZCYX", "spacing": 1.5, "unit": "um", "finterval": 2})
    assert physical_sizes(path) == {"X": 0.25, "Y": 0.25, "Z": 1.5, "T": 2.0}


def test_ome_zarr_scale(tmp_path):
    zarr = pytest.importorskip("zarr")
    group = zarr.open_group(str(tmp_path / "z.zarr"), mode="w")
    group.create_array("0", shape=(2, 16, 16), dtype="u1")
    group.attrs["multiscales"] = [{"axes": [{"name": n, "type": "space", "unit": "micrometer"} for n in "zyx"],
                                   "datasets": [{"path": "0", "coordinateTransformations": [
                                       {"type": "scale", "scale": [3.0, 0.2, 0.2]}]}]}]
    assert physical_sizes(tmp_path / "z.zarr") == {"Z": 3.0, "Y": 0.2, "X": 0.2}


def test_no_metadata_unknown_units_and_broken_files_give_nothing(tmp_path):
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.zeros((16, 16), np.uint8))
    assert physical_sizes(plain) == {}
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00garbage")
    assert physical_sizes(broken) == {}
    assert physical_sizes(tmp_path / "missing.tif") == {}
    pixels = '<OME><Image><Pixels PhysicalSizeX="1" PhysicalSizeXUnit="pixel" PhysicalSizeY="0.3"/></Image></OME>'
    assert from_ome_xml(pixels) == {"Y": 0.3}
