"""Live Training's objects: what the listed images' object layers and strokes give the trainer,
and the instance settings each checkpoint of such a run carries.

The controller (gui.controllers.live_training) asks ``gather`` for the training data each time it
would read the strokes: None while no listed image has objects (it learns the strokes' classes),
else core.training.live_objects.ObjectData (it learns to separate the painted objects).  A run
learns one or the other: when that changes, or the boundary's class id moves (an object of a new
class), ``needs_restart`` says so and the controller starts a new run.  ``snapshot`` gives each
checkpoint of an objects run the instance settings of the data it learnt, so the preview, Apply
and Save Model separate objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from core.training.live_objects import ObjectData, PaintedImage, object_data, with_spec
from gui.state.image_store import ImageEntry


class LiveObjects:
    def __init__(self) -> None:
        self.data: ObjectData | None = None  # what the running trainer was given last (None: classes)
        self.used: dict[int, list[tuple[str, int]]] = {}  # uid of an objects checkpoint -> (image, pixels) it learnt
        self._disk: dict[Path, tuple[float, Any]] = {}  # objects files read: path -> (mtime, (ids, classes))

    def gather(self, entries: Iterable[ImageEntry], strokes_of: Callable[[ImageEntry], Any],
               pixels_of: Callable[[ImageEntry], Any], reads_raw: bool, user_classes) -> ObjectData | None:
        """The objects' training data of ``entries`` (None when none has painted objects).

        ``strokes_of(entry)``: (image, strokes) or None, as the controller reads strokes (memory or
        file); ``pixels_of(entry)``: a LoadedImage of an image the store no longer holds."""
        from core.training.raw_input import trainer_pixels

        painted: list[PaintedImage] = []
        images = []
        for entry in entries:
            if entry.source is not None:
                continue  # a whole slide: no object layer
            objects, classes = self._objects(entry)
            pair = strokes_of(entry)
            if objects is None and pair is None:
                continue
            image = pair[0] if pair is not None else (entry.image if entry.image is not None else pixels_of(entry))
            painted.append(PaintedImage(entry.name, None, objects, classes, None if pair is None else pair[1]))
            images.append(image)
        if not any(p.has_objects for p in painted):
            return None
        for p, px in zip(painted, trainer_pixels(images, reads_raw)):
            p.pixels = px
        return object_data(painted, user_classes)

    def _objects(self, entry: ImageEntry) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(object ids, class labels) of an image: its document's, or for an image the store no
        longer holds, the objects file beside it (core.io.mask_naming.instances_path) and its mask."""
        doc = entry.doc
        if doc is not None:
            layer = doc.objects
            if layer is None or layer.is_empty:
                return None, None
            return layer.labels.copy(), np.array(doc.labels, copy=True)
        from core.io.mask_naming import instances_path

        path = instances_path(entry.path)
        if not path.is_file():
            return None, None
        stamp = path.stat().st_mtime
        cached = self._disk.get(path)
        if cached is None or cached[0] != stamp:
            cached = (stamp, _read_objects(entry.path, path))
            self._disk[path] = cached
        return cached[1]

    def needs_restart(self, data: ObjectData | None) -> bool:
        """Whether ``data`` cannot continue the running trainer's run: objects instead of classes
        (or back), or the boundary's class id moved."""
        old = self.data
        if (old is None) != (data is None):
            return True
        return old is not None and data is not None and old.boundary != data.boundary

    def snapshot(self, snap: Any) -> Any:
        """A published checkpoint as the app keeps it: with the instance settings of an objects run."""
        data = self.data
        if data is None:
            return snap
        self.used[int(snap.uid)] = list(data.used)
        return with_spec(snap, data.spec, data.objects)


def _read_objects(image: Path, path: Path) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The ids of an objects file (65535 in 16-bit: no object) and the class labels of the saved mask."""
    from core.io.label_images import NOT_ANNOTATED, read_label_image
    from core.io.masks import MaskError, find_mask_for_image, read_mask

    try:
        ids = read_label_image(path)
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                if np.dtype(tif.pages.first.dtype) == np.uint16:  # 65535 there: not annotated (no object)
                    ids[ids == NOT_ANNOTATED[np.dtype(np.uint16)]] = 0
    except (MaskError, ValueError, OSError):
        return None, None
    mask = find_mask_for_image(image)
    classes = None
    if mask is not None:
        try:
            classes = np.asarray(read_mask(mask, shape=ids.shape))
        except (MaskError, ValueError, OSError):
            classes = None
    return (ids if ids.any() else None), classes
