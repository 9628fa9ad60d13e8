"""A stack's mask and strokes in the app: one MaskDocument and one StrokeDocument per plane.

docs/interfaces.md: the mask of a stack is a label stack with the image's planes, and each plane
has its own documents, created on first visit, so editing, undo and autosave are per plane by
construction (an undo step on one plane never touches another).  A plane's documents start
from the saved label stacks beside the image (read plane by plane, core.io.label_stacks), else
empty.  Clean documents beyond ``keep`` are dropped (least recently used first; they are read
again from the files when visited); a plane with unsaved edits is never dropped.

Save writes every plane, in file order, streaming: a plane in memory as it is, any other as the
saved file has it (or empty), so a stack of any depth costs one plane of memory to save.  The
planes share one class list: a class renamed or added on one plane is the stack's.  Qt-free.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from core.classes import ClassInfo, complete_classes
from core.document.history import History
from core.document.mask_document import MaskDocument
from core.document.strokes import UNANNOTATED, StrokeDocument
from core.memory_pages import small_pages

KEEP_PLANES = 6  # clean planes' documents kept in memory besides the shown one
HISTORY_BYTES = 64 * 2**20  # undo memory per plane (a 2-D image's document has 256 MB)
ZARR_ABOVE = 2 * 2**30  # a mask stack larger than this (bytes) is saved as OME-Zarr, not OME-TIFF


def mask_format(planes: Sequence[int], height: int, width: int) -> str:
    """"ome-tiff" (one multi-page OME-TIFF, what Fiji and napari open) unless the label stack is
    over ``ZARR_ABOVE`` bytes: then "ome-zarr", chunked by plane."""
    size = int(np.prod(planes, dtype=np.int64)) * int(height) * int(width)
    return "ome-zarr" if size > ZARR_ABOVE else "ome-tiff"


def open_mask_stack(path: Path, plane_axes: str, shape: Sequence[int], objects: bool = False):
    """A StackReader of the label stack ``path`` for an image of ``shape`` (planes + (H, W));
    MaskError naming both shapes when the mask has other planes or another size (a 2-D mask
    beside a stack included).  ``objects``: a stack of object ids (read as uint32)."""
    from core.io.label_stacks import StackReader, check_planes, stack_format
    from core.io.masks import MaskError, read_mask

    try:
        stack_format(path)
    except MaskError:  # a 2-D mask format (PNG...): it cannot hold the planes
        flat = read_mask(path)
        check_planes(path, "", np.shape(flat), plane_axes, shape)
    reader = StackReader(path, plane_axes, objects=objects)
    try:
        check_planes(path, reader.plane_axes, reader.shape, plane_axes, shape)
    except MaskError:
        reader.close()
        raise
    return reader


def saved_planes(plane: tuple, mask, strokes, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A plane's saved class ids and strokes (from the StackReaders ``mask``/``strokes``, else empty)."""
    labels = mask.read_plane(plane) if mask is not None else np.zeros((height, width), np.uint8)
    if strokes is not None:
        marks = strokes.read_plane(plane)
    else:  # filled at once: in small pages, which the first touch of a new plane finds in 6-10 ms, not 10-70
        marks = small_pages(np.empty((height, width), np.uint8))
        marks.fill(UNANNOTATED)
    return labels, marks


def new_documents(labels: np.ndarray, strokes: np.ndarray, classes: Sequence[ClassInfo]) -> "PlaneDocuments":
    return PlaneDocuments(MaskDocument(labels, classes, history=History(max_bytes=HISTORY_BYTES)),
                          StrokeDocument(strokes, classes, history=History(max_bytes=HISTORY_BYTES)))


def saved_objects_into(plane: tuple, docs: "PlaneDocuments", objects) -> None:
    """A new plane document's object layer from the saved objects stack ``objects`` (a StackReader
    with objects=True, or None), outside the history, as an image's saved objects when it opens;
    a plane without objects allocates nothing."""
    layer = docs.mask.objects
    if objects is None or layer is None or layer.allocated:
        return
    ids = objects.read_plane(plane)
    if ids.any():
        layer.set_labels(ids)


def segmented_documents(plane: tuple, result: np.ndarray, classes: Sequence[ClassInfo], mask, strokes,
                        objects=None, label: str = "segment stack", ids: np.ndarray | None = None) -> "PlaneDocuments":
    """A plane's documents as its saved state (with its saved objects) and ``result`` applied as
    one undo step, which takes the objects along (MaskDocument.apply_labels): the model's object
    ``ids`` when it gave them, else the saved objects as the new classes leave them.  Built where
    the result is made (a worker), since diffing a large plane into an undo step takes long, then
    taken by ``StackPlanes.adopt`` when the plane has no documents in memory."""
    labels, marks = saved_planes(plane, mask, strokes, *np.shape(result))
    docs = new_documents(labels, marks, classes)
    saved_objects_into(plane, docs, objects)
    docs.mask.apply_labels(result, label, objects=ids if docs.mask.objects is not None else None)
    return docs


@dataclass
class PlaneDocuments:
    mask: MaskDocument
    strokes: StrokeDocument

    @property
    def dirty(self) -> bool:
        return self.mask.dirty or self.strokes.dirty


class StackPlanes:
    """The documents of a stack's planes (``plane_axes``, ``planes``; each ``height`` x ``width``).

    ``mask`` / ``strokes``: the saved label stacks to start from (StackReaders, or None: empty).
    ``on_dirty(dirty)`` is called whenever a plane's documents become dirty or clean.
    """

    def __init__(self, plane_axes: str, planes: Sequence[int], height: int, width: int,
                 classes: Sequence[ClassInfo], mask=None, strokes=None, keep: int = KEEP_PLANES,
                 on_dirty: Callable[[bool], None] | None = None, objects=None):
        self.plane_axes, self.planes = plane_axes, tuple(int(n) for n in planes)
        self.height, self.width = int(height), int(width)
        self._classes = list(classes)
        self._mask, self._strokes = mask, strokes
        self._objects = objects  # the saved object ids (a StackReader with objects=True), or None
        self._saved_top: int | None = None  # the largest id in the saved objects stack (read on first need)
        self._ids_held: str | None = None  # why new objects wait (hold_new_objects), None: they do not
        # the largest object id a plane in memory has held this session, never lowered: an id
        # deleted on one plane comes back with that plane's undo, so no other plane may take it
        self._given = 0
        self.keep = max(0, int(keep))
        self.on_dirty = on_dirty
        self.plane: tuple[int, ...] = (0,) * len(self.planes)  # the plane shown
        self._docs: OrderedDict[tuple, PlaneDocuments] = OrderedDict()  # least recently used first
        self._syncing = False
        self._annotated_on_disk: set[tuple] | None = None  # planes the strokes file annotates (read once)

    # -- what is on disk --------------------------------------------------------------------------
    @property
    def mask_path(self) -> Path | None:
        """The saved label stack the masks come from (None: none yet)."""
        return self._mask.path if self._mask is not None else None

    @property
    def strokes_path(self) -> Path | None:
        return self._strokes.path if self._strokes is not None else None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.planes + (self.height, self.width)

    def all_planes(self) -> list[tuple[int, ...]]:
        return [tuple(int(v) for v in p) for p in np.ndindex(*self.planes)]

    def check(self, plane: Sequence[int]) -> tuple[int, ...]:
        plane = tuple(int(p) for p in plane)
        if len(plane) != len(self.planes) or any(not 0 <= p < n for p, n in zip(plane, self.planes)):
            raise ValueError(f"plane {plane} is not in a stack of {' x '.join(map(str, self.planes))} planes")
        return plane

    # -- the documents ----------------------------------------------------------------------------
    @property
    def classes(self) -> list[ClassInfo]:
        return list(self._classes)

    def set_classes(self, classes: Sequence[ClassInfo]) -> None:
        """The stack's classes, on every plane in memory (and every plane made later)."""
        self._classes = list(classes)
        self._syncing = True
        try:
            for docs in self._docs.values():
                if docs.mask.classes != self._classes:
                    docs.mask.set_classes(self._classes)
                if docs.strokes.classes != self._classes:
                    docs.strokes.set_classes(self._classes)
        finally:
            self._syncing = False

    def documents(self, plane: Sequence[int]) -> PlaneDocuments:
        """The documents of ``plane``, made on first visit from the saved stacks (or empty)."""
        plane = self.check(plane)
        docs = self._docs.get(plane)
        if docs is None:
            labels, strokes = saved_planes(plane, self._mask, self._strokes, self.height, self.width)
            top = int(labels.max()) if labels.size else 0
            if top > max((c.id for c in self._classes), default=0):  # ids the saved stack has beyond the classes
                self.set_classes(complete_classes(self._classes, top=top))
            docs = new_documents(labels, strokes, self._classes)
            saved_objects_into(plane, docs, self._objects)
            self._connect(plane, docs)
        self._docs.move_to_end(plane)
        return docs

    def adopt(self, plane: Sequence[int], docs: PlaneDocuments) -> bool:
        """Take ``docs`` made elsewhere (``segmented_documents``, on a worker) as ``plane``'s; False,
        and nothing changes, when the plane's documents are already in memory."""
        plane = self.check(plane)
        if plane in self._docs:
            return False
        for doc in (docs.mask, docs.strokes):
            if doc.classes != self._classes:
                doc.set_classes(self._classes)
        saved_objects_into(plane, docs, self._objects)
        self._connect(plane, docs)
        self._docs.move_to_end(plane, last=False)  # first in line to go once saved
        if docs.dirty:
            self._dirty_changed(True)
        return True

    def sources(self) -> tuple[Path | None, Path | None, Path | None]:
        """The saved mask, strokes and objects stacks the planes start from (for a worker's own
        readers, in ``segmented_documents``' order)."""
        return self.mask_path, self.strokes_path, self.objects_path

    def _connect(self, plane: tuple, docs: PlaneDocuments) -> None:
        mask = docs.mask
        layer = mask.objects
        if layer is not None:
            layer.taken_elsewhere = self._top_for_new_object
            self._seen(layer)
            layer.changed.connect(lambda box, layer=layer: self._seen(layer, box))  # an edit, undo or redo
            layer.reset.connect(lambda layer=layer: self._seen(layer))
        mask.classes_changed.connect(lambda m=mask: self._classes_from(m))
        for doc in (docs.mask, docs.strokes):
            doc.dirty_changed.connect(self._dirty_changed)
        self._docs[plane] = docs

    def select(self, plane: Sequence[int]) -> PlaneDocuments:
        """Show ``plane``: its documents, and the cache trimmed around it."""
        self.plane = self.check(plane)
        docs = self.documents(self.plane)
        self.trim()
        return docs

    def loaded(self) -> dict[tuple, PlaneDocuments]:
        """The planes whose documents are in memory (file order)."""
        return dict(sorted(self._docs.items()))

    def peek(self, plane: Sequence[int]) -> PlaneDocuments | None:
        """The documents of ``plane`` when in memory (never reads or makes them)."""
        return self._docs.get(tuple(int(p) for p in plane))

    def trim(self, protect: Sequence[tuple] = ()) -> list[tuple]:
        """Drop clean planes' documents beyond ``keep`` (never the shown plane, ``protect``ed
        planes or one with unsaved edits); returns the planes dropped."""
        keep = {self.plane, *(tuple(p) for p in protect)}
        clean = [p for p, d in self._docs.items() if p not in keep and not d.dirty and not d.mask.preview_active]
        dropped = clean[:max(0, len(clean) - self.keep)]
        for plane in dropped:
            docs = self._docs.pop(plane)
            for doc in (docs.mask, docs.strokes):
                doc.dirty_changed.disconnect(self._dirty_changed)
        return dropped

    def _classes_from(self, doc: MaskDocument) -> None:
        if not self._syncing and doc.classes != self._classes:
            self.set_classes(doc.classes)

    def _dirty_changed(self, dirty: bool) -> None:
        if self.on_dirty is not None:
            self.on_dirty(dirty)

    @property
    def dirty(self) -> bool:
        return any(d.dirty for d in self._docs.values())

    @property
    def masks_dirty(self) -> bool:
        return any(d.mask.dirty for d in self._docs.values())

    @property
    def strokes_dirty(self) -> bool:
        return any(d.strokes.dirty for d in self._docs.values())

    def dirty_planes(self) -> list[tuple]:
        return [p for p, d in sorted(self._docs.items()) if d.dirty]

    # -- planes as saved ---------------------------------------------------------------------------
    def mask_plane(self, plane: Sequence[int]) -> np.ndarray:
        """``plane``'s class ids as they are now: its document's, else the saved stack's, else 0."""
        docs = self.peek(plane)
        if docs is not None:
            return docs.mask.labels
        if self._mask is not None:
            return self._mask.read_plane(tuple(plane))
        return np.zeros((self.height, self.width), np.uint8)

    def strokes_plane(self, plane: Sequence[int]) -> np.ndarray:
        """``plane``'s strokes as they are now (255 where nothing is annotated)."""
        docs = self.peek(plane)
        if docs is not None:
            return docs.strokes.labels
        if self._strokes is not None:
            return self._strokes.read_plane(tuple(plane))
        return np.full((self.height, self.width), UNANNOTATED, np.uint8)

    # -- objects (core.document.objects: each plane's object layer) --------------------------------
    @property
    def objects_path(self) -> Path | None:
        """The saved objects stack the planes' object layers start from (None: none)."""
        return self._objects.path if self._objects is not None else None

    def has_objects(self) -> bool:
        """A plane has objects: painted in memory, or in the saved objects stack."""
        return self._objects is not None or any(
            d.mask.objects is not None and not d.mask.objects.is_empty for d in self._docs.values())

    def objects_plane(self, plane: Sequence[int]) -> np.ndarray:
        """``plane``'s object ids as they are now (uint32): its object layer's when in use, else the
        saved stack's, else none."""
        docs = self.peek(plane)
        layer = docs.mask.objects if docs is not None else None
        if layer is not None and layer.allocated:
            return layer.labels
        if self._objects is not None:
            return self._objects.read_plane(tuple(plane))
        return np.zeros((self.height, self.width), np.uint32)

    def hold_new_objects(self, reason: str | None) -> None:
        """While a run numbers the stack's objects (Segment Plane/Stack with objects: it starts above
        ``top_object_id`` and hands out ids as planes finish), a new object painted or split meanwhile
        could take one of those ids; so new objects wait, with ``reason`` as the message (ValueError
        from ``ObjectLayer.next_id``).  None: new objects are numbered again."""
        self._ids_held = reason

    def _top_for_new_object(self) -> int:
        if self._ids_held:
            raise ValueError(self._ids_held)
        return self.top_object_id()

    def top_object_id(self) -> int:
        """The largest object id of the stack: in the saved objects stack or on a plane in memory.
        A new object on any plane is numbered above it (ObjectLayer.taken_elsewhere), so the saved
        stack never holds one id on two planes unless Link Objects Across Z made it one 3-D object."""
        if self._saved_top is None:
            self._saved_top = 0 if self._objects is None else max(
                (int(self._objects.read_plane(p).max()) for p in self.all_planes()), default=0)
        return max(self._saved_top, self._given)

    def _seen(self, layer, box=None) -> None:
        """Raise the largest id held this session by what ``layer`` holds (within ``box``: an edit
        only brings ids into its box, so a brush move costs its box, not the plane)."""
        if not layer.allocated:
            return
        if box is None:
            self._given = max(self._given, layer.top)
        elif not box.is_empty:
            self._given = max(self._given, int(layer.labels[box.slices].max()))

    def objects_to_save(self) -> bool:
        """Whether Save writes the objects stack: a plane's object layer is in use (an emptied one
        still empties a saved stack)."""
        layers = [d.mask.objects for d in self._docs.values() if d.mask.objects is not None]
        return any(layer.allocated and (self._objects is not None or not layer.is_empty) for layer in layers)

    def save_objects(self, target: str | os.PathLike, physical: dict | None = None) -> Path:
        """Write every plane's object ids to the OME-TIFF ``target`` (uint16, or uint32 past 65,534
        ids: core.io.label_images.label_dtype), then read the planes from it."""
        from core.atomic import atomic_path
        from core.io.label_images import label_dtype
        from core.io.label_stacks import StackReader, write_tiff_stack

        target = Path(target)
        planes = self.all_planes()
        top = max((int(self.objects_plane(p).max()) for p in planes), default=0)
        reader = self._objects
        with atomic_path(target, suffix=".tif") as tmp:
            write_tiff_stack(tmp, (self.objects_plane(p) for p in planes), self.plane_axes, self.shape, ome=True,
                             physical=physical, dtype=label_dtype(top))
            if reader is not None:
                reader.close()  # before the rename: Windows does not replace an open file
        self._objects, self._saved_top = StackReader(target, self.plane_axes, objects=True), top
        return target

    def reload_objects(self, path: str | os.PathLike) -> None:
        """The objects stack at ``path`` was written anew from the planes' own objects (Segment
        Stack's 3-D objects, which each segmented plane's layer took in its undo step): planes
        read from now on take it; the planes in memory keep their layers (and their undo)."""
        from core.io.label_stacks import StackReader

        old, self._objects = self._objects, StackReader(path, self.plane_axes, objects=True)
        self._saved_top = None
        if old is not None:
            old.close()

    def reload_mask(self, path: str | os.PathLike, label: str = "segment",
                    objects: str | os.PathLike | None = None) -> None:
        """The mask stack at ``path`` (and the objects stack at ``objects``) was written anew
        (Segment All): planes read from now on take it, and each plane in memory takes its plane
        (classes and objects) as one undo step, saved."""
        from core.io.label_stacks import StackReader

        old, self._mask = self._mask, StackReader(path, self.plane_axes)
        if old is not None:
            old.close()
        if objects is not None:
            self.reload_objects(objects)
        for plane, docs in self._docs.items():
            labels = self._mask.read_plane(plane)
            layer = docs.mask.objects
            ids = self._objects.read_plane(plane) if objects is not None and layer is not None else None
            same = ids is None or (np.array_equal(ids, layer.labels) if layer.allocated else not ids.any())
            if np.array_equal(labels, docs.mask.labels) and same:
                docs.mask.mark_saved()
            else:
                docs.mask.apply_saved_labels(labels, label, objects=ids)

    def annotated_planes(self) -> list[tuple]:
        """Planes with at least one stroke (in memory, or in the saved strokes file, read once)."""
        if self._annotated_on_disk is None:
            self._annotated_on_disk = set() if self._strokes is None else {
                p for p in self.all_planes() if (self._strokes.read_plane(p) != UNANNOTATED).any()}
        out = []
        for plane in self.all_planes():
            docs = self.peek(plane)
            if (not docs.strokes.is_blank) if docs is not None else plane in self._annotated_on_disk:
                out.append(plane)
        return out

    def save_masks(self, target: str | os.PathLike, physical: dict | None = None) -> Path:
        """Write every plane's mask to the label stack ``target`` (.ome.tif or .ome.zarr), then
        read from it; the planes in memory count as saved.  WriteError / ValueError name the file."""
        target = Path(target)
        self._mask = self._written(target, self.mask_plane, self._mask, physical)
        for docs in self._docs.values():
            docs.mask.mark_saved()
        return target

    def save_strokes(self, target: str | os.PathLike, physical: dict | None = None) -> Path:
        """Write every plane's strokes (255: not annotated) to ``target`` (an OME-TIFF)."""
        target = Path(target)
        self._strokes = self._written(target, self.strokes_plane, self._strokes, physical)
        self._annotated_on_disk = None
        for docs in self._docs.values():
            docs.strokes.mark_saved()
        return target

    def _written(self, target: Path, plane_of, reader, physical):
        """The reader of ``target`` once written; on failure the old file is read again as before
        (the write may have closed its reader just before the rename)."""
        from core.io.label_stacks import StackReader

        try:
            return self._write(target, plane_of, reader, physical)
        except BaseException:
            if reader is not None:
                reader.close()
                fresh = StackReader(reader.path, self.plane_axes)
                if plane_of == self.mask_plane:
                    self._mask = fresh
                else:
                    self._strokes = fresh
            raise

    def _write(self, target: Path, plane_of, reader, physical):
        from core.atomic import atomic_path
        from core.io.label_stacks import StackReader, StackStore, stack_format, write_tiff_stack

        fmt = stack_format(target)
        planes = self.all_planes()

        def each() -> Iterator[np.ndarray]:
            for plane in planes:
                yield np.asarray(plane_of(plane))

        if fmt == "ome-zarr":
            store = StackStore.create(target.with_name(f".{target.name}.writing"), self.plane_axes, self.planes,
                                      self.height, self.width)
            try:
                for plane, labels in zip(planes, each()):
                    store.write_plane(plane, labels)
                store.finish(self._classes, name=target.name, physical=physical)
            except BaseException:
                store.remove()
                raise
            if reader is not None:
                reader.close()  # its files are replaced next
            store.move_to(target)
        elif fmt in ("ome-tiff", "tiff"):
            with atomic_path(target, suffix=".tif") as tmp:
                write_tiff_stack(tmp, each(), self.plane_axes, self.shape, ome=fmt == "ome-tiff", physical=physical,
                                 classes=self._classes)
                if reader is not None:
                    reader.close()  # before the rename: Windows does not replace an open file
        else:
            raise ValueError(f"{target.name}: a stack's mask is saved as .ome.tif or .ome.zarr")
        if reader is not None and Path(reader.path) != target:
            reader.close()
        return StackReader(target, self.plane_axes)

    def close(self) -> None:
        for reader in (self._mask, self._strokes, self._objects):
            if reader is not None:
                reader.close()
