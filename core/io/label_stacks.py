"""Label stacks: a stack's mask, ``planes + (H, W)`` uint8 class ids, with its axes recorded.

A mask of a stack has the image's planes (docs/interfaces.md).  Where it is written decides how:

* ``.tif`` / ``.tiff``: a multi-page ImageJ hyperstack (axes ``TZYX`` in its ImageJ description,
  uncompressed, so ImageJ's own opener and Fiji read it as a stack), for small stacks;
* ``.ome.tif``: OME-TIFF (axes in the OME-XML, zlib, tiled when a plane is large), BigTIFF past
  4 GB: what the app saves beside a stack (core.io.mask_naming.stack_mask_path);
* ``.ome.zarr``: an NGFF 0.4 label image (axes ``t``, ``z``, ``y``, ``x``; one chunk never spans
  two planes), for stacks of any size, written plane by plane (``StackStore``);
* ``.npy``: the array itself (the plane axes follow from its dimensions: 3-D is Z, 4-D is TZ).

Reading gives back the same shape: the recorded axes name the planes (T before Z); a TIFF or
array without axes reads its pages as Z (as T when the image is a time series).  Against an
image, a mask whose planes differ is one MaskError naming both shapes.  ``StackReader`` reads a
stack plane by plane without loading it (OME-TIFF through tifffile's zarr store, OME-Zarr).
Writes are atomic: a temporary file (or folder), then a rename.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from core.atomic import WriteError, atomic_path, describe_os_error, short_error
from core.io.masks import MaskError

PLANE_AXES = "TZ"
TILE = 512
TILED_PLANE_PIXELS = 4096 * 4096  # an OME-TIFF plane larger than this is written in tiles
CLASSES_NAMESPACE = "unetseg/image-label"  # an OME-TIFF label stack's class names and colours


def stack_format(path: str | os.PathLike) -> str:
    """"tiff", "ome-tiff", "ome-zarr" or "npy" from the file name."""
    name = Path(path).name.lower()
    if name.endswith((".ome.tif", ".ome.tiff")):
        return "ome-tiff"
    if name.endswith(".zarr"):
        return "ome-zarr"
    if name.endswith((".tif", ".tiff")):
        return "tiff"
    if name.endswith(".npy"):
        return "npy"
    raise MaskError(f"{Path(path).name}: a label stack is written as .tif, .ome.tif, .ome.zarr or .npy.")


def describe_shape(plane_axes: str, shape: Sequence[int]) -> str:
    """``"Z 20 x 512 x 512"``: a stack's planes by axis, then height x width."""
    planes = [f"{a} {int(n)}" for a, n in zip(plane_axes, shape)]
    return " x ".join(planes + [str(int(n)) for n in shape[len(plane_axes):]])


def check_planes(path: str | os.PathLike, mask_axes: str, mask_shape: Sequence[int], image_axes: str,
                 image_shape: Sequence[int]) -> None:
    """One MaskError naming both shapes when a mask stack does not fit its image's planes and size."""
    if tuple(mask_shape) != tuple(image_shape) or (mask_axes and image_axes and mask_axes != image_axes):
        raise MaskError(f"{Path(path).name}: the mask is {describe_shape(mask_axes, mask_shape)} "
                        f"but the image is {describe_shape(image_axes, image_shape)}.")


# --- writing ------------------------------------------------------------------------------------


def write_label_stack(path: str | os.PathLike, labels: np.ndarray, plane_axes: str, classes: Sequence = (),
                      physical: dict | None = None) -> Path:
    """Write ``labels`` (``planes + (H, W)``, planes over ``plane_axes``) by the file name's format."""
    labels = _checked(labels, plane_axes)
    fmt, path = stack_format(path), Path(path)
    if fmt == "ome-zarr":
        store = StackStore.create(path.with_name(f".{path.name}.writing"), plane_axes, labels.shape[:-2],
                                  labels.shape[-2], labels.shape[-1])
        for plane in np.ndindex(*labels.shape[:-2]):
            store.write_plane(plane, labels[plane])
        store.finish(classes, name=path.name, physical=physical)
        return store.move_to(path)
    with atomic_path(path, suffix=".npy" if fmt == "npy" else ".tif") as tmp:
        if fmt == "npy":
            with open(tmp, "wb") as f:
                np.save(f, labels)
        else:
            write_tiff_stack(tmp, (labels[p] for p in np.ndindex(*labels.shape[:-2])), plane_axes,
                             labels.shape, ome=fmt == "ome-tiff", physical=physical, classes=classes)
    return path


def write_tiff_stack(target: Path, planes: Iterable[np.ndarray], plane_axes: str, shape: Sequence[int],
                     ome: bool, physical: dict | None = None, dtype=np.uint8, classes: Sequence = ()) -> None:
    """Planes (in file order) into one TIFF: OME (tiled for large planes, zlib) or an ImageJ hyperstack.

    ``dtype``: uint8 class ids, or uint16/uint32 instance ids (core.objects).  ``classes``: their
    names and colours, kept in an OME-TIFF as the NGFF "image-label" an OME-Zarr label stack has
    (an OME MapAnnotation, namespace ``CLASSES_NAMESPACE``; ``StackReader.classes`` reads it back)."""
    dtype = np.dtype(dtype)
    planes = (np.asarray(p).astype(dtype, copy=False) for p in planes)
    import tifffile

    h, w = int(shape[-2]), int(shape[-1])
    axes = plane_axes + "YX"
    physical = physical or {}
    nbytes = int(np.prod(shape)) * dtype.itemsize
    if ome:
        metadata = {"axes": axes}
        for axis in "XYZ":
            if axis in physical:
                metadata[f"PhysicalSize{axis}"] = float(physical[axis])
        if "T" in physical:
            metadata["TimeIncrement"] = float(physical["T"])
        if classes:
            import json

            from core.io.label_store import ome_label_attrs

            label = json.dumps(ome_label_attrs(1, classes)["image-label"])
            metadata["StructuredAnnotations"] = {"MapAnnotation": {"Namespace": CLASSES_NAMESPACE,
                                                                   "Value": {"image-label": label}}}
        tiled = h * w > TILED_PLANE_PIXELS
        options = dict(tile=(TILE, TILE)) if tiled else dict(rowsperstrip=max(1, min(h, (1 << 20) // max(1, w))))
        data = _tiles(planes, h, w) if tiled else planes
        with tifffile.TiffWriter(target, bigtiff=nbytes > 2**31, ome=True) as tw:
            tw.write(data, shape=tuple(int(n) for n in shape), dtype=dtype, photometric="minisblack",
                     compression="zlib", metadata=metadata, **options)
        return
    if nbytes > 2**32 - 2**25:
        raise ValueError(f"a label stack of {nbytes / 2**30:.1f} GB is too large for a plain TIFF; write .ome.tif "
                         "or .ome.zarr")
    metadata = {"axes": axes}
    extra = {}
    if "Z" in physical:
        metadata.update(spacing=float(physical["Z"]), unit="um")
    if "T" in physical:
        metadata["finterval"] = float(physical["T"])
    if "X" in physical and "Y" in physical:
        extra["resolution"] = (1.0 / float(physical["X"]), 1.0 / float(physical["Y"]))
        metadata.setdefault("unit", "um")
    with tifffile.TiffWriter(target, imagej=True) as tw:
        tw.write(planes, shape=tuple(int(n) for n in shape), dtype=dtype, photometric="minisblack",
                 metadata=metadata, **extra)


def _tiles(planes: Iterable[np.ndarray], h: int, w: int) -> Iterator[np.ndarray]:
    for plane in planes:
        for y0 in range(0, h, TILE):
            for x0 in range(0, w, TILE):
                tile = plane[y0:y0 + TILE, x0:x0 + TILE]
                if tile.shape != (TILE, TILE):
                    tile = np.pad(tile, ((0, TILE - tile.shape[0]), (0, TILE - tile.shape[1])))
                yield np.ascontiguousarray(tile)


def _checked(labels: np.ndarray, plane_axes: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != len(plane_axes) + 2:
        raise ValueError(f"a label stack over {plane_axes or 'no planes'} has {len(plane_axes) + 2} dimensions, "
                         f"not shape {labels.shape}")
    if set(plane_axes) - set(PLANE_AXES) or "".join(a for a in PLANE_AXES if a in plane_axes) != plane_axes:
        raise ValueError(f"the plane axes of a label stack are T, Z or TZ, not {plane_axes!r}")
    if labels.dtype != np.uint8:
        if not np.issubdtype(labels.dtype, np.integer) or (labels.size and (labels.min() < 0 or labels.max() > 255)):
            raise ValueError(f"a label stack holds class ids 0-255, not {labels.dtype} values")
        labels = labels.astype(np.uint8)
    return labels


class StackStore:
    """An OME-Zarr label stack written plane by plane (the command line's segmentation output and
    work store): chunks are (1, ..., tile, tile), so a plane's write never touches another plane."""

    def __init__(self, path: Path, group):
        self.path, self._group = path, group
        self.array = group["0"]
        attrs = dict(group.attrs).get("unetseg", {})
        self.plane_axes: str = attrs.get("plane_axes", "")
        self.planes = tuple(int(n) for n in self.array.shape[:len(self.plane_axes)])
        self.height, self.width = (int(n) for n in self.array.shape[-2:])

    @classmethod
    def create(cls, path: str | os.PathLike, plane_axes: str, planes: Sequence[int], height: int, width: int,
               chunk: int = 1024, dtype="uint8") -> "StackStore":
        from core.io.sources import require_zarr

        zarr = require_zarr()
        path = Path(path)
        try:
            if path.exists():
                shutil.rmtree(path)
            group = zarr.open_group(str(path), mode="w", zarr_format=2)
            shape = tuple(int(n) for n in planes) + (int(height), int(width))
            chunks = (1,) * len(planes) + (min(chunk, int(height)), min(chunk, int(width)))
            group.create_array("0", shape=shape, chunks=chunks, dtype=dtype, fill_value=0,
                               chunk_key_encoding={"name": "v2", "separator": "/"}, compressors=_compressor())
            group.attrs.update({"unetseg": {"plane_axes": plane_axes}})
        except OSError as exc:
            raise WriteError(exc.errno, f"cannot write {path}: {describe_os_error(exc)}") from None
        return cls(path, group)

    def write_plane(self, plane: Sequence[int], labels: np.ndarray) -> None:
        try:
            self.array[tuple(int(p) for p in plane)] = labels
        except OSError as exc:
            raise WriteError(exc.errno, f"cannot write {self.path}: {describe_os_error(exc)}") from None

    def read_plane(self, plane: Sequence[int]) -> np.ndarray:
        return np.asarray(self.array[tuple(int(p) for p in plane)])

    def iter_planes(self) -> Iterator[np.ndarray]:
        for plane in np.ndindex(*self.planes):
            yield self.read_plane(plane)

    def finish(self, classes: Sequence = (), name: str = "labels", physical: dict | None = None) -> None:
        """The NGFF multiscales (axes t, z, y, x, with the image's physical scale) and image-label metadata."""
        from core.io.label_store import ome_label_attrs

        physical = physical or {}
        axes = [{"name": "t", "type": "time", **({"unit": "second"} if "T" in physical else {})} if a == "T" else
                {"name": a.lower(), "type": "space", **({"unit": "micrometer"} if a in physical else {})}
                for a in self.plane_axes + "YX"]
        scale = [float(physical.get(a, 1.0)) for a in self.plane_axes + "YX"]
        attrs = ome_label_attrs(1, classes, name)
        attrs["multiscales"][0]["axes"] = axes
        attrs["multiscales"][0]["datasets"][0]["coordinateTransformations"] = [{"type": "scale", "scale": scale}]
        try:
            self._group.attrs.update(attrs)
        except OSError as exc:
            raise WriteError(exc.errno, f"cannot write {self.path}: {describe_os_error(exc)}") from None

    def move_to(self, target: Path) -> Path:
        """Replace ``target`` with this store (a rename: the old one stays until the new one is whole)."""
        old = target.with_name(f".{target.name}.old")
        try:
            if target.exists():
                if old.exists():
                    shutil.rmtree(old)
                os.replace(target, old)
            os.replace(self.path, target)
            shutil.rmtree(old, ignore_errors=True)
        except OSError as exc:
            raise WriteError(exc.errno, f"cannot write {target}: {describe_os_error(exc)}") from None
        self.path = target
        return target

    def export_tiff(self, target: str | os.PathLike, ome: bool, physical: dict | None = None,
                    dtype=np.uint8, classes: Sequence = ()) -> Path:
        """This stack as one TIFF (OME or ImageJ), written plane by plane, atomically."""
        target = Path(target)
        shape = self.planes + (self.height, self.width)
        with atomic_path(target, suffix=".tif") as tmp:
            write_tiff_stack(tmp, self.iter_planes(), self.plane_axes, shape, ome=ome, physical=physical,
                             dtype=dtype, classes=classes)
        return target

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _compressor():
    from numcodecs import Blosc

    return Blosc(cname="zstd", clevel=3, shuffle=Blosc.BITSHUFFLE)


# --- reading ------------------------------------------------------------------------------------


class StackReader:
    """A label stack on disk read plane by plane: ``plane_axes``, ``planes``, ``shape``, ``read_plane``,
    ``classes`` (the names and colours the file records; [] when it records none).  ``objects``: a
    stack of object ids (``<stem>_instances.ome.tif``), read as uint32 ids, not class ids.

    Thread-safe: tifffile's and zarr's readers share one file handle, so reads are serialised."""

    def __init__(self, path: str | os.PathLike, image_axes: str = "", objects: bool = False):
        import threading

        self.path = Path(path)
        self._close = None
        self._objects = bool(objects)
        self._lock = threading.Lock()
        self.classes: list = []
        fmt = stack_format(self.path)
        try:
            if fmt == "npy":
                array = np.load(self.path, mmap_mode="r", allow_pickle=False)
                axes = _default_axes(array.ndim, image_axes)
            elif fmt == "ome-zarr":
                array, axes = _open_zarr(self.path, image_axes, self)
            else:
                array, axes = self._open_tiff(image_axes)
        except MaskError:
            raise
        except Exception as exc:  # noqa: BLE001 - tifffile, zarr and NumPy raise many types for a bad file
            raise MaskError(f"{self.path.name}: not a readable label stack ({short_error(exc)}).") from None
        self._array, self.plane_axes = array, axes
        self.shape = tuple(int(n) for n in array.shape)
        self.planes = self.shape[:-2]

    def _open_tiff(self, image_axes: str):
        import tifffile
        import zarr

        tif = tifffile.TiffFile(self.path)
        self._close = (tif,)  # closed even when the series cannot be read
        self.classes = _ome_classes(tif)
        series = tif.series[0]
        store = series.aszarr(level=0)
        self._close = (store, tif)
        axes, shape = series.axes.upper(), tuple(int(n) for n in series.shape)
        many = [a for a, n in zip(axes, shape) if a not in "YX" and n > 1]
        if axes.endswith("S") and shape[-1] > 1:  # colour pixels; planar samples (SYX) are read as planes
            raise MaskError(f"{self.path.name}: holds colour pixels (axes {axes}), not a label stack of class ids.")
        generic = [a for a in many if a not in PLANE_AXES]
        if len(generic) > 1 or (generic and "Z" in many and "T" in many):
            raise MaskError(f"{self.path.name}: its axes {axes} do not say which are time and depth.")
        if generic:  # pages without axes: Z planes (time points when the image is a time series)
            axes = axes.replace(generic[0], "T" if image_axes == "T" or "Z" in many else "Z")
        array = _Squeezed(zarr.open(store, mode="r"), axes, shape)
        return array, "".join(a for a in PLANE_AXES if a in array.axes)

    def read_plane(self, plane: Sequence[int] = ()) -> np.ndarray:
        plane = tuple(int(p) for p in plane)
        if len(plane) != len(self.planes) or any(not 0 <= p < n for p, n in zip(plane, self.planes)):
            raise ValueError(f"{self.path.name}: plane {plane} is not in a stack of {describe_shape(self.plane_axes, self.shape)}")
        with self._lock:
            data = np.asarray(self._array[plane])
        return self._values(data)

    def read(self) -> np.ndarray:
        with self._lock:
            data = np.asarray(self._array[...])
        return self._values(data)

    def _values(self, data: np.ndarray) -> np.ndarray:
        if not self._objects:
            return _ids(self.path, data)
        if not np.issubdtype(data.dtype, np.integer) or (data.size and int(data.min()) < 0):
            raise MaskError(f"{self.path.name}: holds {data.dtype} values, but object labels are whole-number ids.")
        return data.astype(np.uint32)

    def close(self) -> None:
        with self._lock:
            if self._close:
                for thing in self._close:
                    thing.close()
                self._close = None

    def __enter__(self) -> "StackReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Squeezed:
    """A TIFF series' array seen as T, Z, Y, X: single-plane axes dropped, planes ordered T before Z."""

    def __init__(self, array, axes: str, shape: tuple[int, ...]):
        self._array = array
        self._keep = [i for i, (a, n) in enumerate(zip(axes, shape)) if a in "YX" or (a in PLANE_AXES and n > 1)]
        kept = [axes[i] for i in self._keep]
        self._order = sorted(range(len(kept)), key=lambda j: "TZYX".index(kept[j]))
        self.axes = "".join(kept[j] for j in self._order)
        self.shape = tuple(shape[self._keep[j]] for j in self._order)

    def __getitem__(self, key) -> np.ndarray:
        key = () if key is Ellipsis else tuple(key)
        key = key + (slice(None),) * (len(self.shape) - len(key))
        full: list = [0] * len(self._array.shape)
        for pos, j in enumerate(self._order):
            full[self._keep[j]] = key[pos]
        block = np.asarray(self._array[tuple(full)])
        remaining = [j for j in range(len(self._keep)) if isinstance(full[self._keep[j]], slice)]
        return np.transpose(block, [remaining.index(j) for j in self._order if j in remaining])


def _ome_classes(tif) -> list:
    """The classes an OME-TIFF label stack records (``write_tiff_stack``'s MapAnnotation), else []."""
    import json

    from core.io.label_store import label_classes

    try:
        xml = tif.ome_metadata
        if not xml or CLASSES_NAMESPACE not in xml:
            return []
        import tifffile

        notes = tifffile.xml2dict(xml)["OME"].get("StructuredAnnotations", {}).get("MapAnnotation", [])
        for note in notes if isinstance(notes, list) else [notes]:
            if note.get("Namespace") != CLASSES_NAMESPACE:
                continue
            values = note.get("Value", {}).get("M", [])
            for value in values if isinstance(values, list) else [values]:
                if value.get("K") == "image-label":
                    return label_classes({"image-label": json.loads(value.get("value", "{}"))})
    except (ValueError, TypeError, KeyError, AttributeError):
        return []  # a damaged note: the ids still read, with the app's default classes
    return []


def _open_zarr(path: Path, image_axes: str, reader: "StackReader | None" = None):
    import zarr

    node = zarr.open(str(path), mode="r")
    if hasattr(node, "shape"):
        return node, _default_axes(node.ndim, image_axes)
    attrs = dict(node.attrs)
    if reader is not None:
        from core.io.label_store import label_classes

        reader.classes = label_classes(attrs)
    multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    if not multiscales:
        raise MaskError(f"{path.name}: a zarr group without OME-Zarr 'multiscales' metadata.")
    ms = multiscales[0]
    array = node[ms["datasets"][0]["path"]]
    names = "".join(str(a.get("name") if isinstance(a, dict) else a).upper()[:1] for a in ms.get("axes", []))
    if not names:
        return array, _default_axes(array.ndim, image_axes)
    if len(names) != array.ndim or names[-2:] != "YX" or set(names[:-2]) - set(PLANE_AXES):
        raise MaskError(f"{path.name}: a label stack's axes are t, z, y, x, not {', '.join(names.lower())}.")
    if names[:-2] != "".join(a for a in PLANE_AXES if a in names):
        raise MaskError(f"{path.name}: its axes {names} put Z before T.")
    return array, names[:-2]


def _default_axes(ndim: int, image_axes: str) -> str:
    if ndim < 2 or ndim > 4:
        raise MaskError(f"a {ndim}-D array is not a label stack (2 to 4 dimensions: T, Z, Y, X).")
    if ndim == 3:
        return "T" if image_axes == "T" else "Z"
    return {2: "", 4: "TZ"}[ndim]


def _ids(path: Path, array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if array.dtype == bool:
        return array.astype(np.uint8)
    if not np.issubdtype(array.dtype, np.integer):
        raise MaskError(f"{path.name}: holds {array.dtype} values, but a mask holds integer class ids.")
    if array.size and (int(array.min()) < 0 or int(array.max()) > 255):
        raise MaskError(f"{path.name}: has values {int(array.min())}..{int(array.max())}, but class ids are 0-255.")
    return array.astype(np.uint8)


def read_label_stack(path: str | os.PathLike, image_axes: str | None = None,
                     image_shape: Sequence[int] | None = None) -> tuple[np.ndarray, str]:
    """The whole label stack and its plane axes; with ``image_shape`` (planes + (H, W)) checked
    against the image (``check_planes``: one sentence naming both shapes)."""
    path = Path(path)
    if not path.exists():
        raise MaskError(f"{path.name}: file not found.")
    with StackReader(path, image_axes or "") as reader:
        if image_shape is not None:
            check_planes(path, reader.plane_axes, reader.shape, image_axes or "", image_shape)
        return reader.read(), reader.plane_axes
