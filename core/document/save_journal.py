"""The journal that makes an in-place save of a chunked mask all or nothing, even when killed.

Why: an in-place save writes the changed chunks of every level one by one into the user's store.
A crash or a full disk in between would leave a mask that is partly the old one and partly the
new, with a pyramid and class counts that match neither.  So, as SQLite's journal (rolled forward):

1. ``Journal`` writes the new chunks (compressed) and the new root attributes into a pending
   folder ``.unetseg-journal.tmp-<owner>-<id>`` inside the store, and levels written whole as
   ``<k>.unetseg-new-<owner>-<id>`` arrays beside the old ones; everything is fsynced;
2. ``commit`` renames the folder to ``.unetseg-journal``: from then on the save counts as done;
3. ``finish_interrupted_save`` applies it (chunks, whole levels, attributes), fsyncs the chunk
   files and deletes it.

Opening the store, and the next save, run ``finish_interrupted_save`` first: a committed journal is
applied again (every step can be repeated), an uncommitted one is dropped.  So the mask on disk is
always the state before a save or the one after it, never a mix.

Who may finish or drop a journal: only its owner (the process and the save that wrote it, named
by ``core.document.owners``), or anyone once that owner is dead.  A second window opening the
store while the first saves leaves the pending journal and new levels alone, and a committed
journal whose owner still runs raises ``SaveInProgress`` instead of being applied twice at once.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from pathlib import Path

import numpy as np

from core.atomic import fsync
from core.document.mask_files import CHUNK_CODEC, zarr_module
from core.document.owners import owner_tag, parse_tag, tag_alive

JOURNAL = ".unetseg-journal"
PENDING = JOURNAL + ".tmp"  # + "-<owner>-<id>"; older versions wrote it bare
NEW_LEVEL = ".unetseg-new"  # "<k>.unetseg-new-<owner>-<id>": a level written whole, renamed over "<k>"
_META = "journal.json"

_active: set[str] = set()  # ids of this process's journals from their start to the save's end
_active_lock = threading.Lock()


class SaveInProgress(OSError):
    """A committed journal whose owner still runs: another window is finishing its save now."""

    def __init__(self, path: Path, owner: str):
        parsed = parse_tag(owner)
        self.pid = parsed[0] if parsed else None
        who = f"process {self.pid}" if self.pid else "another process"
        super().__init__(f"{path}: another UNetSeg window ({who}) is saving this mask right now")


class Journal:
    """The pending save of one store: ``add`` chunks, then ``commit`` (or ``discard``); ``release``
    when the save is over, whatever happened."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.owner, self.id = owner_tag(), uuid.uuid4().hex[:8]
        with _active_lock:
            _active.add(self.id)
        self.folder = self.path / f"{PENDING}-{self.owner}-{self.id}"  # the owner is in the name from the start
        self.folder.mkdir()
        self.chunks: dict[str, list[int]] = {}

    def new_level_name(self, k: int) -> str:
        """The name level ``k`` is written whole under, until the journal is applied."""
        return f"{k}{NEW_LEVEL}-{self.owner}-{self.id}"

    def add(self, level: int, key: tuple[int, int], chunk_size: tuple[int, int], data: np.ndarray) -> None:
        """Record the new content of chunk ``key`` (on a grid of ``chunk_size``) of ``level``."""
        self.chunks[str(level)] = [int(chunk_size[0]), int(chunk_size[1])]
        _write_file(self.folder / f"{level}.{key[0]}.{key[1]}", CHUNK_CODEC.encode(data))

    def commit(self, attrs: dict, whole_levels: list[int]) -> None:
        """Make the save durable: after this one rename, opening the store yields the new mask."""
        whole = {str(int(k)): self.new_level_name(k) for k in whole_levels}
        meta = {"chunks": self.chunks, "whole": whole, "attrs": attrs, "owner": self.owner, "id": self.id}
        _write_file(self.folder / _META, json.dumps(meta).encode())
        for name in whole.values():
            _fsync_tree(self.path / name)
        fsync(*self.folder.iterdir(), self.folder)
        os.rename(self.folder, self.path / JOURNAL)
        fsync(self.path)

    def discard(self) -> None:
        """Drop this uncommitted journal and its new levels (the store keeps its old state)."""
        shutil.rmtree(self.folder, ignore_errors=True)
        for leftover in self.path.glob(f"*{NEW_LEVEL}-{self.owner}-{self.id}"):
            shutil.rmtree(leftover, ignore_errors=True)

    def release(self) -> None:
        """The save is over: from now on what it left (a committed journal that could not be
        applied) is anyone's to finish."""
        with _active_lock:
            _active.discard(self.id)


def finish_interrupted_save(path: Path, own: Journal | None = None) -> bool:
    """Apply a committed journal left in store ``path`` and drop uncommitted ones whose owner is
    gone; True when a save was finished.  ``own``: the journal the caller has just committed (its
    owner finishing it).  Raises SaveInProgress when the committed journal's owner still runs,
    OSError when the store cannot be written."""
    path = Path(path)
    journal = path / JOURNAL
    finished = False
    if journal.is_dir():
        meta = json.loads((journal / _META).read_text())
        owner, jid = meta.get("owner"), meta.get("id")
        mine = own is not None and (owner, jid) == (own.owner, own.id)
        if isinstance(owner, str) and not mine and _owner_running(owner, jid):
            raise SaveInProgress(path, owner)
        _apply(path, journal, meta)
        finished = True
    for leftover in _abandoned(path):
        shutil.rmtree(leftover, ignore_errors=True)
    return finished


def _apply(path: Path, journal: Path, meta: dict) -> None:
    whole = meta["whole"]
    if isinstance(whole, list):  # an older version's journal: "<k>.unetseg-new"
        whole = {str(k): f"{k}{NEW_LEVEL}" for k in whole}
    for k, name in whole.items():
        new, old = path / name, path / str(k)
        if new.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.rename(new, old)
    fsync(path)
    group = zarr_module().open_group(str(path), mode="r+", zarr_format=2)
    written, arrays = [], {}
    for name in sorted(os.listdir(journal)):
        if name == _META:
            continue
        level, by, bx = (int(v) for v in name.split("."))
        array = arrays.get(level) or arrays.setdefault(level, group[str(level)])
        cy, cx = meta["chunks"][str(level)]
        (h, w), y0, x0 = array.shape, by * cy, bx * cx
        y1, x1 = min(h, y0 + cy), min(w, x0 + cx)
        raw = CHUNK_CODEC.decode((journal / name).read_bytes())
        array[y0:y1, x0:x1] = np.frombuffer(raw, np.uint8).reshape(y1 - y0, x1 - x0)
        written.extend(_chunk_files(path / str(level), array, y0, y1, x0, x1))
    fsync(*written, *{p.parent for p in written})
    group.attrs.put(meta["attrs"])
    fsync(path / ".zattrs")
    from core.io.label_store import DONE_DIR

    shutil.rmtree(path / DONE_DIR, ignore_errors=True)  # a LabelStore run record: the mask is complete now
    shutil.rmtree(journal)
    fsync(path)


def _owner_running(owner: str, jid: object) -> bool:
    """Does the save that wrote a journal still run?  In this process: is it one of ours in progress."""
    if owner == owner_tag():
        with _active_lock:
            return jid in _active
    return tag_alive(owner)


def _abandoned(path: Path) -> list[Path]:
    """Pending journals and new levels whose owner is gone (an older version's bare names too)."""
    out = []
    try:
        entries = list(path.iterdir())
    except OSError:
        return out
    for entry in entries:
        name = entry.name
        if name.startswith(PENDING):
            rest = name[len(PENDING):]
        elif NEW_LEVEL in name and name.split(NEW_LEVEL, 1)[0].isdigit():
            rest = name.split(NEW_LEVEL, 1)[1]
        else:
            continue
        if not rest:
            out.append(entry)  # bare: no owner recorded
            continue
        owner, _, jid = rest[1:].rpartition("-") if rest.startswith("-") else ("", "", "")
        if owner and parse_tag(owner) is not None and _owner_running(owner, jid):
            continue
        out.append(entry)
    return out


def _chunk_files(folder: Path, array, y0: int, y1: int, x0: int, x1: int) -> list[Path]:
    """The files of the zarr v2 chunks that rows y0:y1, columns x0:x1 of ``array`` lie in."""
    fy, fx = (int(c) for c in array.chunks)
    sep = array.metadata.dimension_separator or "."
    return [folder / f"{by}{sep}{bx}" for by in range(y0 // fy, -(-y1 // fy)) for bx in range(x0 // fx, -(-x1 // fx))]


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _fsync_tree(folder: Path) -> None:
    for dirpath, _dirs, files in os.walk(folder):
        fsync(*(Path(dirpath) / n for n in files), dirpath)
