"""A slide's objects, after its class store is finished: ``unetseg segment BIG --format ome-zarr|ome-tiff
instances measurements``.

* ``instances``: ``<stem>_instances.ome.zarr`` (an OME-Zarr label image) when ome-zarr is asked
  for, ``<stem>_instances.ome.tif`` (tiled, pyramidal OME-TIFF) when ome-tiff is; uint16 when
  the objects number under 65535, else uint32 (``core.io.label_images.label_dtype``).
* ``measurements``: ``<stem>_measurements.csv``, streamed from the instance labels, the slide's
  raw pixels and the class store block by block (``core.objects.measure``).

The instances are the model's when ``instances`` is given (any 2-D array-like of ids, read block
by block), else each 8-connected component of one class (``chunked_component_labels``: numbered
as the whole mask in memory would be, with no seams at chunk borders).  Work stores are hidden
files beside the outputs (``.<stem>_instances.work.zarr``), removed at the end.

API::

    write_slide_objects(source, classes_store, out_dir, stem, formats, store_formats, classes,
                        instances=None) -> list[Path]
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from core.classes import ClassInfo
from core.io.label_images import label_dtype
from core.io.label_store import LabelStore, export_ome_tiff, remove_store
from core.io.mask_naming import image_files, slide_instances_path

OBJECT_FORMATS = ("instances", "measurements")


def write_slide_objects(source, classes_store: LabelStore, out_dir: Path, stem: str, formats: Sequence[str],
                        store_formats: Sequence[str], classes: Sequence[ClassInfo], instances=None) -> list[Path]:
    """The object outputs of one finished slide; see the module doc."""
    from core.io.physical import physical_sizes
    from core.objects.measure import Columns, write_measurements

    out_dir = Path(out_dir)
    keep_zarr = "instances" in formats and "ome-zarr" in store_formats
    target = slide_instances_path(out_dir, stem, "ome-zarr") if keep_zarr else out_dir / f".{stem}_instances.work.zarr"
    written: list[Path] = []
    store = _instance_store(target, classes_store, instances, stem)
    try:
        if keep_zarr:
            written.append(target)
        if "instances" in formats and "ome-tiff" in store_formats:
            written.append(export_ome_tiff(store, slide_instances_path(out_dir, stem, "ome-tiff")))
        if "measurements" in formats:
            path = image_files(out_dir, stem, "measurements")[0]
            columns = Columns(source.channel_names, classes, physical_sizes(source.path))
            write_measurements(path, store.array, source, classes_store.array, columns)
            written.append(path)
    finally:
        if not keep_zarr:
            remove_store(target)
    return written


def _instance_store(target: Path, classes_store: LabelStore, instances, stem: str) -> LabelStore:
    """A finished instance label store at ``target``: the given instances copied, or the class store's components."""
    from core.objects.components import chunked_component_labels
    from core.io.sources import require_zarr

    h, w = classes_store.height, classes_store.width
    chunks = classes_store.chunks
    run = {"instances of": classes_store.path.name}
    made: list[LabelStore] = []

    def make(count: int):
        made.append(LabelStore.create(target, h, w, chunks, run, dtype=str(label_dtype(count))))
        return made[0].array

    if instances is None:
        work_path = target.with_name(f".{stem}_components.work.zarr")
        zarr = require_zarr()
        work = zarr.open_array(str(work_path), mode="w", shape=(h, w), chunks=chunks, dtype="uint32",
                               fill_value=0, zarr_format=2)
        try:
            chunked_component_labels(classes_store.array, work, block=max(chunks), make_out=make)
        finally:
            remove_store(work_path)
    else:
        top = 0
        for y0 in range(0, h, chunks[0]):
            for x0 in range(0, w, chunks[1]):
                top = max(top, int(np.asarray(instances[y0:y0 + chunks[0], x0:x0 + chunks[1]]).max(initial=0)))
        out = make(top)
        for y0 in range(0, h, chunks[0]):
            for x0 in range(0, w, chunks[1]):
                part = np.asarray(instances[y0:y0 + chunks[0], x0:x0 + chunks[1]])
                out[y0:y0 + part.shape[0], x0:x0 + part.shape[1]] = part
    store = made[0]
    store.finish((), name=f"{stem} instances")
    return store
