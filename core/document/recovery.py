"""Recovery copies of unsaved masks, and the session lock that tells a crash from a clean exit.

The GUI snapshots every mask with unsaved edits into the app-data folder (never beside the
user's files): ``recovery/<session>-<key>.npy`` holds the labels, ``<session>-<key>.json`` the
manifest (image, mask target, classes, undo position, time).  A chunked whole-slide mask
(``save_chunked``, kind "chunks") stores only its changed chunks in ``<session>-<key>-<n>.zip``
(core.document.chunk_recovery) and restores them over the saved mask the manifest names, whose
fingerprint it records: a mask saved again or replaced since would receive another mask's chunks,
so that is refused (``BaseChangedError``, naming the file) unless the user was asked and agreed
(``Snapshot.base_changed``, ``load_chunked(..., base_changed_ok=True)``).  Both are written atomically,
data first, so a manifest always names complete data; a crash between the two writes leaves
the previous pair valid.  Each running window holds ``sessions/<session>.lock`` with its pid;
a lock whose process is gone marks an unclean exit, and the copies of sessions that are not
running any more are what the next start offers to restore.  Qt-free, like the rest of core.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from core.atomic import atomic_path, remove_quietly, short_error, write_text
from core.classes import ClassInfo, default_classes, normalize_classes
from core.document.owners import process_alive, process_start_token

if TYPE_CHECKING:
    from core.document.chunked_labels import ChunkedLabels

FORMAT = "unetseg-recovery"
DATA_SUFFIXES = (".npy", ".zip")
VERSION = 1
RECOVERY_DIR = "recovery"
STROKES_DIR = "recovery-strokes"  # Live Training's strokes (core.document.strokes): the same copies, apart
SESSIONS_DIR = "sessions"


class RecoveryError(ValueError):
    """A recovery copy that cannot be used; ``str()`` says which and why in one sentence."""


class BaseChangedError(RecoveryError):
    """A chunked copy's saved mask was saved again (or replaced) after the copy was taken: its
    chunks would land on another mask.  The app may ask, then ``load_chunked(..., base_changed_ok=True)``."""

    def __init__(self, message: str, base_path: Path):
        super().__init__(message)
        self.base_path = base_path


def app_version() -> str:
    try:
        from importlib.metadata import version

        return version("unetseg")
    except Exception:  # noqa: BLE001 - not installed (a source checkout): still usable
        return "dev"


def new_session_id() -> str:
    return uuid.uuid4().hex[:12]


# --------------------------------------------------------------------------- session lock


@dataclass
class LockInfo:
    session: str
    path: Path
    pid: int | None
    host: str
    started: float | None


class SessionLock:
    """``sessions/<session>.lock`` in the app-data folder for as long as a window runs."""

    def __init__(self, data_dir: str | os.PathLike, session: str | None = None):
        self.folder = Path(data_dir) / SESSIONS_DIR
        self.session = session or new_session_id()
        self.path = self.folder / f"{self.session}.lock"
        self.held = False

    def acquire(self) -> None:
        """Write the lock (raises WriteError when the folder is not writable)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        pid = os.getpid()
        write_text(self.path, json.dumps({
            "session": self.session, "pid": pid, "start_token": process_start_token(pid),
            "host": socket.gethostname(), "started": time.time(), "app_version": app_version(),
        }))
        self.held = True

    def release(self) -> None:
        """A clean exit: the lock goes, so the next start sees no crash."""
        with contextlib.suppress(OSError):
            self.path.unlink()
        self.held = False

    def survey(self) -> tuple[set[str], list[LockInfo]]:
        """(sessions still running, locks left by sessions that died), this one excluded.

        A lock from another computer (a shared home folder) cannot be checked, so it counts as
        running: its owner may be editing right now.
        """
        live, stale = set(), []
        host = socket.gethostname()
        for path in sorted(self.folder.glob("*.lock")) if self.folder.is_dir() else []:
            info = read_lock(path)
            if info.session == self.session:
                continue
            raw = _read_json(path) or {}
            token = raw.get("start_token") if isinstance(raw.get("start_token"), str) else None
            if info.host and info.host != host:
                live.add(info.session)
            elif info.pid is not None and process_alive(info.pid, token):
                live.add(info.session)
            else:
                stale.append(info)
        return live, stale

    @staticmethod
    def clear(stale: Sequence[LockInfo]) -> None:
        for info in stale:
            with contextlib.suppress(OSError):
                info.path.unlink()


def read_lock(path: Path) -> LockInfo:
    raw = _read_json(path) or {}
    pid = raw.get("pid")
    started = raw.get("started")
    return LockInfo(
        session=path.stem,
        path=path,
        pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
        host=raw.get("host") if isinstance(raw.get("host"), str) else "",
        started=float(started) if isinstance(started, (int, float)) else None,
    )


# --------------------------------------------------------------------------- snapshots


@dataclass
class Snapshot:
    """One recovery copy as listed; ``problem`` says why it cannot be restored (or None)."""

    key: str
    session: str
    manifest_path: Path
    data_path: Path | None
    image_path: Path | None
    image_size: tuple[int, int] | None  # (width, height)
    mask_path: Path | None
    classes: list[ClassInfo]
    history_position: int
    saved_at: float
    app_version: str
    problem: str | None = None
    kind: str = "labels"  # "labels": the whole mask (.npy); "chunks": changed chunks (.zip)
    chunk: tuple[int, int] | None = None  # a "chunks" copy: the mask's chunk size (rows, columns)
    chunks: list[tuple[int, int]] = field(default_factory=list)  # and its changed chunks
    base_path: Path | None = None  # a "chunks" copy applies over this saved mask (None: an empty one)
    base_fingerprint: str | None = None  # that mask's core.io.fingerprint when the copy was taken
    fill: int = 0  # a "chunks" copy: what unwritten pixels hold (255 in a strokes file)
    plane: tuple[int, ...] = ()  # a plane of a stack (over ``plane_axes``); () for a 2-D image
    plane_axes: str = ""
    objects_path: Path | None = None  # the document's object ids (core.document.objects), when it had any

    @property
    def name(self) -> str:
        """The image's name; a plane's copy adds the plane, numbered from 1 as the app shows it."""
        name = self.image_path.name if self.image_path is not None else self.manifest_path.name
        if self.plane:
            name += " " + " ".join(f"{a} {p + 1}" for a, p in zip(self.plane_axes or "?" * len(self.plane), self.plane))
        return name

    @property
    def image_exists(self) -> bool:
        """The image is there: a file, or a folder (an OME-Zarr, a folder of a stack's planes)."""
        return self.image_path is not None and (self.image_path.is_file() or self.image_path.is_dir())

    def base_changed(self) -> str | None:
        """One sentence naming the saved mask when it changed since this chunked copy was taken
        (restoring would mix two masks: ask before ``load_chunked(..., base_changed_ok=True)``);
        None when it is as it was, or when the copy records no fingerprint (older versions)."""
        if self.kind != "chunks" or self.base_path is None or not self.base_fingerprint:
            return None
        from core.document.mask_files import mask_fingerprint

        if mask_fingerprint(self.base_path) == self.base_fingerprint:
            return None
        return _changed_message(self)


class RecoveryStore:
    """Reads and writes recovery copies in ``<data_dir>/recovery`` for one session."""

    def __init__(self, data_dir: str | os.PathLike, session: str | None = None,
                 version: str | None = None, folder: str = RECOVERY_DIR):
        self.folder = Path(data_dir) / folder
        self.session = session or new_session_id()
        self.version = version or app_version()

    def key_for(self, image_path: str | os.PathLike, plane: Sequence[int] = ()) -> str:
        """This session's key of an image's copy (of one plane of a stack: each plane has its own)."""
        name = _absolute(image_path) + (f"#{','.join(str(int(p)) for p in plane)}" if plane else "")
        digest = hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{self.session}-{digest[:16]}"

    def save(self, image_path: str | os.PathLike, labels: np.ndarray, classes: Sequence[ClassInfo],
             history_position: int, mask_path: str | os.PathLike | None = None,
             objects: np.ndarray | None = None, plane: Sequence[int] = (), plane_axes: str = "") -> Snapshot:
        """Write (or replace) this session's copy for ``image_path`` (its ``plane``, for a stack:
        one copy per plane); raises WriteError.

        ``objects``: the document's object ids, copied beside the labels (``load_objects``).
        A ChunkedLabels is saved as its changed chunks (``save_chunked``)."""
        from core.document.chunked_labels import ChunkedLabels

        if isinstance(labels, ChunkedLabels):
            return self.save_chunked(image_path, labels, classes, history_position, mask_path)
        labels = np.asarray(labels)
        if labels.ndim != 2 or labels.dtype != np.uint8:
            raise ValueError(f"a recovery copy holds an H x W uint8 mask, not {labels.dtype} {labels.shape}")
        self.folder.mkdir(parents=True, exist_ok=True)
        key = self.key_for(image_path, plane)
        data = self.folder / f"{key}-{time.time_ns()}.npy"
        with atomic_path(data) as tmp:
            with open(tmp, "wb") as f:  # a file object: np.save would append ".npy" to a name
                np.save(f, labels, allow_pickle=False)
        manifest = self._manifest(image_path, labels.shape, mask_path, classes, history_position, data)
        if plane:
            manifest.update(plane=[int(p) for p in plane], plane_axes=str(plane_axes))
        keep = ()
        if objects is not None:
            ids = np.asarray(objects)
            if ids.shape != labels.shape or ids.dtype != np.uint32:
                raise ValueError(f"a recovery copy's objects are H x W uint32 ids like the mask, not {ids.dtype} {ids.shape}")
            keep = (data.with_name(data.stem + ".objects.npy"),)
            with atomic_path(keep[0]) as tmp:
                with open(tmp, "wb") as f:
                    np.save(f, ids, allow_pickle=False)
            manifest["objects"] = keep[0].name
        return self._write_manifest(key, data, manifest, keep)

    def save_chunked(self, image_path: str | os.PathLike, labels: "ChunkedLabels", classes: Sequence[ClassInfo],
                     history_position: int, mask_path: str | os.PathLike | None = None) -> Snapshot:
        """Write (or replace) this session's copy of a chunked mask: only the chunks changed since
        its last save.  They apply over ``labels.path`` (the file it was opened from or last saved
        to: the manifest's ``base_path``; None: an empty mask); ``mask_path`` is the save target
        (default ``labels.path``).  Raises WriteError."""
        from core.document.chunk_recovery import data_name, write_chunks

        self.folder.mkdir(parents=True, exist_ok=True)
        key = self.key_for(image_path)
        data = self.folder / data_name(key, time.time_ns())
        keys = write_chunks(data, labels)
        target = mask_path if mask_path is not None else labels.path
        manifest = self._manifest(image_path, labels.shape, target, classes, history_position, data)
        manifest.update({"kind": "chunks", "chunk": list(labels.chunks), "chunks": [list(k) for k in keys],
                         "base_path": _absolute(labels.path) if labels.path is not None else None,
                         "base_fingerprint": labels.base_fingerprint if labels.path is not None else None,
                         "fill": labels.fill})
        return self._write_manifest(key, data, manifest)

    def _manifest(self, image_path, shape, mask_path, classes, history_position, data: Path) -> dict:
        now = time.time()
        h, w = shape
        return {
            "format": FORMAT, "version": VERSION, "session": self.session, "pid": os.getpid(),
            "image_path": _absolute(image_path), "image_size": [w, h],
            "mask_path": _absolute(mask_path) if mask_path is not None else None,
            "classes": [{"id": c.id, "name": c.name, "color": list(c.color)} for c in classes],
            "history_position": int(history_position), "saved_at": now,
            "saved_at_text": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)),
            "app_version": self.version, "data": data.name, "shape": [h, w],
        }

    def _write_manifest(self, key: str, data: Path, manifest: dict, keep: Sequence[Path] = ()) -> Snapshot:
        path = self.folder / f"{key}.json"
        try:
            write_text(path, json.dumps(manifest, indent=1))
        except OSError:
            remove_quietly(data)
            for extra in keep:
                remove_quietly(extra)
            raise
        for old in self._data_files(key):  # earlier data of the same copy
            if old != data and old not in keep:
                remove_quietly(old)
        return _parse(path, manifest)

    def _data_files(self, key: str) -> list[Path]:
        return [p for suffix in DATA_SUFFIXES for p in self.folder.glob(f"{key}-*{suffix}")]

    def snapshots(self) -> list[Snapshot]:
        """Every copy in the folder, of any session, oldest first; unreadable ones included
        (with ``problem`` set) so they can be reported and discarded."""
        if not self.folder.is_dir():
            return []
        found = [_parse(p, _read_json(p)) for p in self.folder.glob("*.json")]
        return sorted(found, key=lambda s: (s.saved_at, s.name))

    def own(self) -> list[Snapshot]:
        return [s for s in self.snapshots() if s.session == self.session]

    def recoverable(self, live_sessions: set[str]) -> list[Snapshot]:
        """Copies left by sessions that are no longer running."""
        return [s for s in self.snapshots()
                if s.session != self.session and s.session not in live_sessions]

    def load(self, snap: Snapshot) -> np.ndarray:
        """The saved labels, checked against the manifest (RecoveryError otherwise)."""
        if snap.problem:
            raise RecoveryError(f"{snap.name}: {snap.problem}.")
        if snap.kind == "chunks":
            raise RecoveryError(f"{snap.name}: the recovery copy holds a chunked mask's changed chunks; "
                                "restore it with load_chunked.")
        assert snap.data_path is not None
        try:
            with open(snap.data_path, "rb") as f:
                labels = np.load(f, allow_pickle=False)
        except FileNotFoundError:
            raise RecoveryError(f"{snap.name}: the recovery copy's data file is missing.") from None
        except Exception as exc:  # noqa: BLE001 - np.load raises many types for a bad file
            raise RecoveryError(f"{snap.name}: the recovery copy is damaged ({short_error(exc)}).") from None
        w, h = snap.image_size or (-1, -1)
        if labels.ndim != 2 or labels.dtype != np.uint8 or labels.shape != (h, w):
            raise RecoveryError(f"{snap.name}: the recovery copy is damaged "
                                f"({labels.dtype} {labels.shape}, expected uint8 {(h, w)}).")
        return labels

    def load_objects(self, snap: Snapshot) -> np.ndarray | None:
        """The copy's object ids (None: it has none), checked like ``load``'s labels."""
        if snap.objects_path is None:
            return None
        try:
            with open(snap.objects_path, "rb") as f:
                ids = np.load(f, allow_pickle=False)
        except FileNotFoundError:
            raise RecoveryError(f"{snap.name}: the recovery copy's objects file is missing.") from None
        except Exception as exc:  # noqa: BLE001 - np.load raises many types for a bad file
            raise RecoveryError(f"{snap.name}: the recovery copy's objects are damaged ({short_error(exc)}).") from None
        w, h = snap.image_size or (-1, -1)
        if ids.ndim != 2 or ids.dtype != np.uint32 or ids.shape != (h, w):
            raise RecoveryError(f"{snap.name}: the recovery copy's objects are damaged "
                                f"({ids.dtype} {ids.shape}, expected uint32 {(h, w)}).")
        return ids

    def load_chunked(self, snap: Snapshot, cache_bytes: int | None = None,
                     base_changed_ok: bool = False) -> "ChunkedLabels":
        """The recovered chunked mask: the saved mask the copy applies over (``base_path``; an empty
        mask if it has none) with the copy's chunks applied; they count as unsaved.  RecoveryError
        (one sentence) when the copy is damaged or that saved mask is gone or of another size;
        BaseChangedError when that mask changed since the copy was taken, unless ``base_changed_ok``
        (the user was asked, ``Snapshot.base_changed``, and chose to restore anyway)."""
        from core.document.chunk_recovery import apply_chunks
        from core.document.chunked_labels import DEFAULT_CACHE_BYTES, ChunkedLabels
        from core.io.label_store import StoreError

        if snap.problem:
            raise RecoveryError(f"{snap.name}: {snap.problem}.")
        if snap.kind != "chunks" or snap.chunk is None or snap.image_size is None:
            raise RecoveryError(f"{snap.name}: the recovery copy is not a chunked mask's; restore it with load.")
        assert snap.data_path is not None
        if not snap.data_path.is_file():
            raise RecoveryError(f"{snap.name}: the recovery copy's data file is missing.")
        w, h = snap.image_size
        cache = cache_bytes or DEFAULT_CACHE_BYTES
        try:
            if snap.base_path is not None:
                if not snap.base_path.exists():
                    raise RecoveryError(f"{snap.name}: the saved mask it applies over, {snap.base_path}, is gone.")
                labels = ChunkedLabels.open(snap.base_path, cache_bytes=cache)
            else:
                labels = ChunkedLabels.create(h, w, chunk=snap.chunk[0], cache_bytes=cache, fill=snap.fill)
        except StoreError as exc:
            raise RecoveryError(f"{snap.name}: the saved mask it applies to cannot be read ({exc})") from None
        if labels.shape != (h, w):
            labels.close()
            raise RecoveryError(f"{snap.name}: the saved mask {snap.base_path} is {labels.width}x{labels.height}, "
                                f"the recovery copy {w}x{h}.")
        if snap.base_path is not None and snap.base_fingerprint and not base_changed_ok \
                and labels.base_fingerprint != snap.base_fingerprint:
            labels.close()
            raise BaseChangedError(_changed_message(snap), snap.base_path)
        if labels.fill != snap.fill:
            labels.close()
            raise RecoveryError(f"{snap.name}: the saved mask {snap.base_path} is not of the recovery copy's kind "
                                f"(unwritten pixels {labels.fill}, the copy's {snap.fill}).")
        try:
            apply_chunks(labels, snap.data_path)
        except Exception as exc:  # noqa: BLE001 - zipfile and np.load raise many types for a bad file
            labels.close()
            raise RecoveryError(f"{snap.name}: the recovery copy is damaged ({short_error(exc)}).") from None
        return labels

    def remove(self, snap: Snapshot) -> None:
        remove_quietly(snap.manifest_path)
        for data in self._data_files(snap.key):
            remove_quietly(data)

    def remove_image(self, image_path: str | os.PathLike, plane: Sequence[int] = ()) -> None:
        """Drop this session's copy for ``image_path`` (or its ``plane``) (saved, or discarded)."""
        key = self.key_for(image_path, plane)
        remove_quietly(self.folder / f"{key}.json")
        for data in self._data_files(key):
            remove_quietly(data)

    def remove_own(self) -> None:
        for snap in self.own():
            self.remove(snap)


def _parse(path: Path, raw: object) -> Snapshot:
    """A Snapshot from a manifest, never raising: what is wrong goes into ``problem``."""
    key = path.stem
    session = key.split("-", 1)[0]
    problem = None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raw, problem = {}, "the recovery copy is unreadable (its manifest is damaged)"
    image = raw.get("image_path")
    mask = raw.get("mask_path")
    size = raw.get("image_size")
    if problem is None and not isinstance(image, str):
        problem = "the recovery copy does not say which image it belongs to"
    if not (isinstance(size, list) and len(size) == 2 and all(_is_int(v) and v > 0 for v in size)):
        size = None
        problem = problem or "the recovery copy does not record the image size"
    data = raw.get("data")
    data_path = path.with_name(data) if isinstance(data, str) and data == Path(data).name else None
    if data_path is None:
        problem = problem or "the recovery copy does not name its data file"
    position = raw.get("history_position")
    saved_at = raw.get("saved_at")
    version = raw.get("app_version")
    kind = raw.get("kind", "labels")
    plane = raw.get("plane", [])
    if not (isinstance(plane, list) and all(_is_int(p) and p >= 0 for p in plane)):
        plane, problem = [], problem or "the recovery copy names no valid plane"
    chunk, chunks = raw.get("chunk"), raw.get("chunks")
    if kind == "chunks":
        ok = isinstance(chunk, list) and len(chunk) == 2 and all(_is_int(v) and v > 0 for v in chunk) and \
            isinstance(chunks, list) and all(isinstance(k, list) and len(k) == 2 and all(map(_is_int, k))
                                             for k in chunks)
        if not ok:
            chunk, chunks = None, []
            problem = problem or "the recovery copy does not record its chunks"
    elif kind != "labels":
        problem = problem or f"the recovery copy is of an unknown kind ({kind!r})"
    return Snapshot(
        key=key,
        session=raw.get("session") if isinstance(raw.get("session"), str) else session,
        manifest_path=path,
        data_path=data_path,
        image_path=Path(image) if isinstance(image, str) and image else None,
        image_size=(int(size[0]), int(size[1])) if size else None,
        mask_path=Path(mask) if isinstance(mask, str) and mask else None,
        classes=_classes(raw.get("classes")),
        history_position=int(position) if _is_int(position) else 0,
        saved_at=float(saved_at) if isinstance(saved_at, (int, float)) else _mtime(path),
        app_version=version if isinstance(version, str) else "",
        problem=problem,
        kind=kind if isinstance(kind, str) else "labels",
        chunk=(int(chunk[0]), int(chunk[1])) if kind == "chunks" and chunk else None,
        chunks=[(int(a), int(b)) for a, b in chunks] if kind == "chunks" and chunks else [],
        base_path=Path(raw["base_path"]) if isinstance(raw.get("base_path"), str) and raw["base_path"] else None,
        base_fingerprint=raw["base_fingerprint"] if isinstance(raw.get("base_fingerprint"), str) else None,
        fill=int(raw["fill"]) if _is_int(raw.get("fill")) and 0 <= raw["fill"] <= 255 else 0,
        plane=tuple(int(p) for p in plane),
        plane_axes=raw["plane_axes"] if isinstance(raw.get("plane_axes"), str) else "",
        objects_path=path.with_name(raw["objects"]) if isinstance(raw.get("objects"), str)
        and raw["objects"] == Path(raw["objects"]).name else None,
    )


def _changed_message(snap: Snapshot) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(snap.saved_at))
    return (f"{snap.name}: the saved mask {snap.base_path} was changed after this recovery copy was taken "
            f"({when}); restoring the copy over it would mix the two masks.")


def _classes(raw: object) -> list[ClassInfo]:
    items = [c for c in raw if isinstance(c, dict)] if isinstance(raw, list) else []
    ids = [c.get("id") for c in items if _is_int(c.get("id")) and 0 <= c.get("id") <= 255]
    if not ids:
        return default_classes(2)
    wanted = set(ids)
    full = normalize_classes(items, max(ids) + 1)
    return [c for c in full if c.id in wanted or c.id == 0]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _absolute(path: str | os.PathLike) -> str:
    try:
        return str(Path(path).resolve())
    except OSError:
        return str(Path(path).absolute())


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0




# --------------------------------------------------------------------------- newer work


def saved_since(snap: Snapshot, path: str | os.PathLike | None = None) -> float | None:
    """When ``path`` (default: the copy's save target) was written after the copy was taken, its
    modification time; else None.  Such a copy must never replace that file's content: it is
    older work."""
    target = Path(path) if path is not None else snap.mask_path
    if target is None:
        return None
    try:
        mtime = target.stat().st_mtime
    except OSError:
        return None
    return mtime if mtime > snap.saved_at else None


def merge_sparse(older: np.ndarray, newer: np.ndarray, unannotated: int) -> np.ndarray:
    """Sparse annotations (strokes) of an older copy under newer saved ones: the newer ones
    everywhere they annotate, the older ones only where the newer have nothing."""
    return np.where(newer != unannotated, newer, older).astype(newer.dtype, copy=False)
