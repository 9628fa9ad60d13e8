"""Read UNetSeg's label outputs with napari's own reader plugins: the OME-Zarr label image
(``unetseg segment --format ome-zarr``, the app's Save of a slide) and the OME-TIFF labels.

napari needs OpenGL for a viewer, which a headless machine lacks, so this calls the readers the
viewer would call (npe2 with the napari-ome-zarr plugin, napari's built-in TIFF reader).  Run it
in its own environment (napari is not a UNetSeg dependency):

    python -m venv /tmp/napvenv && /tmp/napvenv/bin/pip install "napari[pyside6]" napari-ome-zarr
    python bench/napari_read_check.py OUT.ome.zarr OUT.ome.tif     # with /tmp/napvenv/bin/python

Prints each layer napari would add: kind (labels / image), pyramid levels, shape, pixel sum.
"""

import sys

import npe2
import numpy as np

npe2.PluginManager.instance().discover()
for path, plugin in ((sys.argv[1], "napari-ome-zarr"), (sys.argv[2], None)):
    for layer in npe2.read([path], stack=False, plugin_name=plugin):
        data, meta, kind = (tuple(layer) + ({}, "image"))[:3]
        first = data[0] if isinstance(data, list) else data
        print(path.split("/")[-1], kind, "levels", len(data) if isinstance(data, list) else 1,
              "shape", tuple(first.shape), "sum", int(np.asarray(first).sum()),
              "colours" if "colormap" in meta else "", "names" if "properties" in meta else "")
