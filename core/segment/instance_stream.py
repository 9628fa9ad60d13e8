"""Objects of an image of any size: the instance step (core.objects.instances) over label stores,
chunk by chunk, in one process or on a Dask cluster, with the whole image's result.

A model with an instance output first writes its class map into a label store, block by block
(core.segment.streaming or core.segment.cluster); then ``separate_store`` makes the objects:

1. **seeds**, per block: its seeds are labelled (local ids) into a scratch store beside the
   output, and each block returns its seeds' classes, sizes, first pixels and edge ids;
2. **join** (here, small tables): seeds touching across block borders become one object, small
   ones are dropped, ids are numbered in raster order of the first pixel, as the whole image
   numbers them;
3. **growth**, per block: the block and a halo of ``spec.grow`` pixels of the scratch store,
   mapped to object ids, grown into the boundary; the block's ids go into the object store
   (``<stem>_instances.ome.zarr``: OME-Zarr labels, uint32);
4. **fold**, per block: the class store's boundary pixels take their object's class (idempotent,
   so a run interrupted here is finished by running it again).

Objects crossing block borders therefore get one id and no seam, and the result is the whole
image's ``separate`` byte for byte; on Dask each pass is one task per block, running the same
functions (the workers must see the stores' paths).  Memory: one block and its halo per task,
plus the tables of step 2 (tens of bytes per object).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import numpy as np

from core.io.label_store import Block, LabelStore
from core.objects.instances import InstanceSpec, Linked, Seeds, fold, grow_window, label_seeds, link_seeds

Progress = Callable[[str, int, int], None]  # (pass name, blocks done, blocks total)


def scratch_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.seeds.zarr")


def separate_store(classes: LabelStore, target: str | Path, spec: InstanceSpec, client=None,
                   progress: Progress | None = None, name: str | None = None) -> LabelStore:
    """Write the objects of a class store (every block written, not yet finished) into ``target``
    and fold the class store's boundary; returns the finished object store.  ``client``: a
    dask.distributed Client (None: this process)."""
    target = Path(target)
    run = {"classes": str(Path(classes.path).name), "instances": spec.to_json(), "class_run": classes.run}
    run = json.loads(json.dumps(run))
    existing = _finished(target, run)
    if existing is None:
        scratch = _create_scratch(scratch_path(target), classes)
        try:
            seeds = _map_blocks(client, _seed_task, classes, [(str(classes.path), str(scratch), spec.to_json())],
                                "seeds", progress)
            linked = link_seeds(seeds, spec)
            store = LabelStore.create(target, classes.height, classes.width, classes.chunks, run, dtype="uint32")
            jobs = {b: (str(scratch), str(store.path), spec.to_json(), _neighbour_luts(linked, b, classes, spec))
                    for b in classes.blocks()}
            _map_blocks(client, _grow_task, classes, jobs, "objects", progress)
            _write_object_classes(store.path, linked.object_classes)
            store.finish(name=name or target.name.split(".")[0])
        finally:
            shutil.rmtree(scratch_path(target), ignore_errors=True)
        existing = store
    object_classes = read_object_classes(existing.path)
    if client is not None:  # one copy per worker, not one per task
        object_classes = client.scatter(object_classes, broadcast=True)
    _map_blocks(client, _fold_task, classes, [(str(classes.path), str(existing.path), spec.to_json(), object_classes)],
                "fold", progress)
    return existing


OBJECT_CLASSES = "object_classes"  # a 1-D array in the object store: the class of each id (index 0: none)


def _write_object_classes(path: Path, object_classes: np.ndarray) -> None:
    from core.io.sources import require_zarr

    group = require_zarr().open_group(str(path), mode="r+", zarr_format=2)
    array = group.create_array(OBJECT_CLASSES, shape=object_classes.shape, chunks=(max(1, min(len(object_classes), 1 << 20)),),
                               dtype="uint8", fill_value=0, overwrite=True)
    array[:] = object_classes


def read_object_classes(path: str | Path) -> np.ndarray:
    """The class of each object id of an object store (index 0 is background)."""
    from core.io.sources import require_zarr

    return np.asarray(require_zarr().open_group(str(path), mode="r", zarr_format=2)[OBJECT_CLASSES][:])


def _finished(target: Path, run: dict) -> LabelStore | None:
    """The object store of an earlier run with the same class store and settings, when it was finished."""
    if not target.exists():
        return None
    try:
        store = LabelStore.open(target)
    except ValueError:
        return None
    return store if store.complete and store.run == run else None


def _create_scratch(path: Path, classes: LabelStore) -> Path:
    """The seeds' scratch store: a uint32 zarr array with the class store's chunks."""
    from core.io.sources import require_zarr

    zarr = require_zarr()
    shutil.rmtree(path, ignore_errors=True)
    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    group.create_array("0", shape=(classes.height, classes.width), chunks=classes.chunks, dtype="uint32",
                       fill_value=0, chunk_key_encoding={"name": "v2", "separator": "/"})
    return path


def _open_array(path: str, mode: str = "r"):
    from core.io.sources import require_zarr

    return require_zarr().open_group(path, mode=mode, zarr_format=2)["0"]


def _map_blocks(client, task, classes: LabelStore, jobs, label: str, progress: Progress | None) -> dict:
    """Run ``task(block, *job)`` for every block (``jobs``: one job for all, or a job per block);
    returns {block: result}."""
    blocks = classes.blocks()
    job_of = (lambda b: jobs[b]) if isinstance(jobs, dict) else (lambda b: jobs[0])
    results = {}
    if progress:
        progress(label, 0, len(blocks))
    if client is None:
        for i, b in enumerate(blocks, start=1):
            results[b] = task(b, *job_of(b))
            if progress:
                progress(label, i, len(blocks))
        return results
    from distributed import as_completed

    futures = {client.submit(task, b, *job_of(b), pure=False): b for b in blocks}
    try:
        for i, future in enumerate(as_completed(futures), start=1):
            results[futures[future]] = future.result()
            if progress:
                progress(label, i, len(blocks))
    finally:
        client.cancel(list(futures))
    return results


def _region(array, block: Block) -> tuple[int, int, int, int]:
    (by, bx), (cy, cx) = block, array.chunks
    h, w = array.shape
    return by * cy, min(h, (by + 1) * cy), bx * cx, min(w, (bx + 1) * cx)


# --------------------------------------------------------------------------- tasks (workers run these)


def _seed_task(block: Block, classes_path: str, scratch_path_: str, spec_json: dict) -> Seeds:
    spec = InstanceSpec.from_json(spec_json)
    classes = _open_array(classes_path)
    y0, y1, x0, x1 = _region(classes, block)
    local, seeds = label_seeds(np.asarray(classes[y0:y1, x0:x1]), spec, (y0, x0), classes.shape[1])
    _open_array(scratch_path_, "r+")[y0:y1, x0:x1] = local
    return seeds


def _neighbour_luts(linked: Linked, block: Block, classes: LabelStore, spec: InstanceSpec) -> dict[Block, np.ndarray]:
    """The object-id tables of a block and the blocks its halo reaches (what its task needs)."""
    by, bx = block
    (cy, cx), halo = classes.chunks, spec.halo
    ry, rx = -(-halo // cy), -(-halo // cx)  # blocks the halo reaches on each side
    return {(y, x): linked.luts[(y, x)] for y in range(by - ry, by + ry + 1) for x in range(bx - rx, bx + rx + 1)
            if (y, x) in linked.luts}


def _grow_task(block: Block, scratch_path_: str, store_path: str, spec_json: dict,
               luts: dict[Block, np.ndarray]) -> None:
    spec = InstanceSpec.from_json(spec_json)
    scratch = _open_array(scratch_path_)
    h, w = scratch.shape
    cy, cx = scratch.chunks
    y0, y1, x0, x1 = _region(scratch, block)
    wy0, wy1, wx0, wx1 = max(0, y0 - spec.halo), min(h, y1 + spec.halo), max(0, x0 - spec.halo), min(w, x1 + spec.halo)
    local = np.asarray(scratch[wy0:wy1, wx0:wx1])
    parts = []
    for (by, bx) in luts:
        ry0, ry1, rx0, rx1 = max(wy0, by * cy), min(wy1, (by + 1) * cy), max(wx0, bx * cx), min(wx1, (bx + 1) * cx)
        if ry1 > ry0 and rx1 > rx0:
            parts.append(((by, bx), (slice(ry0 - wy0, ry1 - wy0), slice(rx0 - wx0, rx1 - wx0))))
    ids = grow_window(local, parts, luts, spec, (slice(y0 - wy0, y1 - wy0), slice(x0 - wx0, x1 - wx0)))
    LabelStore.open(store_path, mode="r+").write_block(block, ids)


def _fold_task(block: Block, classes_path: str, store_path: str, spec_json: dict, object_classes: np.ndarray) -> None:
    spec = InstanceSpec.from_json(spec_json)
    classes = LabelStore.open(classes_path, mode="r+")
    y0, y1, x0, x1 = classes.region(block)
    ids = LabelStore.open(store_path).read(y0, y1, x0, x1)
    classes.write_block(block, fold(classes.read(y0, y1, x0, x1), ids, object_classes, spec))
