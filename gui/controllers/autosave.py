"""Autosave and crash recovery: the window's side of core.document.recovery.

Every mask and every image's Live Training strokes with unsaved edits are copied to the
app-data folder a few seconds after the last edit (a debounced timer) and whenever the shown
image changes; one that becomes clean (saved, undone to the saved state, closed with Discard)
loses its copy at once.  The real files are written only by Save / Export.  On start, copies
left by sessions that are no longer running (a crash, or "Later" last time) are offered back,
masks and strokes alike: Restore opens them as unsaved edits, Discard deletes them, Later keeps
them for the next start.  A copy never replaces work saved after it was taken: a mask copy older
than its saved mask is not restored (it is reported, and kept unless discarded), and an older
strokes copy only adds strokes where the saved ones have none.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QWidget

from core.classes import complete_classes
from core.io.images import ImageReadError
from core.io.mask_naming import default_mask_path, stack_strokes_path
from core.document.recovery import (STROKES_DIR, RecoveryError, RecoveryStore, SessionLock, Snapshot,
                                    merge_sparse, saved_since)
from core.document.scratch_folders import sweep as sweep_scratch_folders
from core.document.strokes import UNANNOTATED
from core.io.label_store import StoreError
from gui import dialogs
from gui.infra.settings import app_data_dir
from core.wording import counted
from gui.state.app_state import AppState
from gui.state.image_store import ImageEntry, path_key
from gui.state.loading import load_entry, mark_mask_files, top_class

if TYPE_CHECKING:
    from gui.state.app_state import Job

DEFAULT_DELAY_MS = 3000
STEP_BYTES = 16 * 2**20  # labels one automatic pass copies (at least one document) before the window's events run again
log = logging.getLogger("unetseg.autosave")


class Autosave(QObject):
    saved = Signal(int)  # copies written by one flush (tests and scripts wait on it)
    restored = Signal(int)  # masks restored from an earlier session

    def __init__(self, state: AppState, parent: QWidget, data_dir: Path | None = None,
                 delay_ms: int = DEFAULT_DELAY_MS):
        super().__init__(parent)
        self.state, self.images, self.parent_widget = state, state.store, parent
        self.folder = Path(data_dir) if data_dir is not None else app_data_dir()
        self.lock = SessionLock(self.folder)
        self.store = RecoveryStore(self.folder, session=self.lock.session)
        self.strokes_store = RecoveryStore(self.folder, session=self.lock.session, folder=STROKES_DIR)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.step)
        self._more = QTimer(self)  # the rest of an automatic pass, after the window's events
        self._more.setSingleShot(True)
        self._more.setInterval(0)
        self._more.timeout.connect(self.step)
        self.delay_ms = delay_ms
        self._written: dict[str, tuple[Path, tuple]] = {}  # path key -> (image, what was written)
        self._written_strokes: dict[str, tuple[Path, tuple]] = {}  # the same for Live Training's strokes
        self._closed = False
        self._last_error = ""
        self.crashed, live = self._start_session()
        self.pending = self.store.recoverable(live) + self.strokes_store.recoverable(live)
        self.images.current_changed.connect(self._on_image_shown)
        state.events.job.connect(self._on_job)
        doc = state.document
        doc.history_changed.connect(self._poke)
        doc.classes_changed.connect(self._poke)
        doc.dirty_changed.connect(self._on_dirty)
        state.strokes.history_changed.connect(self._poke)
        state.strokes.dirty_changed.connect(self._on_dirty)
        if self.pending:
            QTimer.singleShot(0, self, self.offer)  # once the window is up

    @property
    def delay_ms(self) -> int:
        return self._timer.interval()

    @delay_ms.setter
    def delay_ms(self, value: int) -> None:
        self._timer.setInterval(max(0, int(value)))

    def _start_session(self) -> tuple[bool, set[str]]:
        sweep_scratch_folders()  # slide masks' temporary folders that killed runs left (issue 25)
        try:
            live, stale = self.lock.survey()
            self.lock.acquire()
        except OSError as exc:
            self._report(f"Autosave is off: {exc}")
            return False, set()
        if stale:
            log.warning("found %s that did not close properly", counted(len(stale), "session"))
            SessionLock.clear(stale)
        return bool(stale), live

    # -- autosave -----------------------------------------------------------------------------
    def _on_image_shown(self, _entry) -> None:
        self.flush()  # every switch

    def _on_job(self, job: "Job | None", old: "Job | None" = None) -> None:
        if job is None and old is not None and old.kind in ("segment_all", "segment_stack"):
            self.step()  # Segment All saved masks: copies of what it replaced go; a stack's planes changed

    def _poke(self) -> None:
        if not self._closed:
            self._timer.start()  # restarts: a copy a few seconds after the last change

    def _on_dirty(self, dirty: bool) -> None:
        if dirty:
            self._poke()
        else:
            self.flush()  # saved: the copy goes now

    def step(self) -> int:
        """An automatic pass: copies of about ``STEP_BYTES`` of labels now (at least one), the rest
        after the window's events (Segment Stack leaves every plane of a stack with unsaved edits:
        copying 40 large planes at once would freeze the window for as long)."""
        return self.flush(STEP_BYTES)

    def flush(self, limit: int | None = None) -> int:
        """Write a copy of each mask with new unsaved edits; drop copies of clean ones.  ``limit``:
        bytes of labels to copy now (at least one document), the others in later passes (``step``)."""
        if self._closed or not self.lock.held:
            return 0
        self._timer.stop()
        self._more.stop()
        masks = {path_key(e.path): (e, e.doc, e.save_target) for e in self.images
                 if e.doc is not None and e.doc.dirty and e.stack is None}
        strokes = {path_key(e.path): (e, e.strokes, e.strokes_target) for e in self.images
                   if e.doc is not None and e.strokes is not None and e.strokes.dirty and e.stack is None}
        for e in self.images:  # a stack: a copy per plane with unsaved edits
            for plane, docs in e.stack.loaded().items() if e.stack is not None else ():
                key = f"{path_key(e.path)}#{plane}"
                if e.busy and plane != e.stack.plane and key not in self._written:
                    continue  # planes Segment Stack is filling are copied when it ends, not while the user paints
                if docs.mask.dirty:
                    masks[key] = (e, docs.mask, e.save_target, plane)
                if docs.strokes.dirty:
                    strokes[key] = (e, docs.strokes, stack_strokes_path(e.path), plane)
        budget = [limit]
        written = self._copy(self.store, self._written, masks, budget) + \
            self._copy(self.strokes_store, self._written_strokes, strokes, budget)
        if budget[0] is not None and budget[0] <= 0 and not self._closed:
            self._more.start()  # more to copy, once the window has handled its events
        if written:
            self._last_error = ""
            self.saved.emit(written)
        return written

    def _copy(self, store: RecoveryStore, done: dict, dirty: dict, budget: list | None = None) -> int:
        """Copy each dirty document not yet copied in its state (while ``budget[0]`` bytes, when not
        None, are left: it counts down); drop copies of clean ones."""
        written = 0
        budget = budget if budget is not None else [None]
        for key, (entry, doc, target, *plane) in dirty.items():
            if budget[0] is not None and budget[0] <= 0:
                break
            plane = tuple(plane[0]) if plane else ()
            if doc.preview_active or doc.stroke_active:
                self._timer.start()  # a segmentation preview is not an edit: try again later
                continue
            state = (id(doc), doc.history.position, tuple(entry.doc.classes))
            if key in done and done[key][1] == state:
                continue
            objects = doc.objects.labels if doc.objects is not None and doc.objects.allocated else None
            try:
                extra = dict(plane=plane, plane_axes=entry.stack.plane_axes) if plane else {}
                store.save(entry.path, doc.labels, entry.doc.classes, doc.history.position, target, objects=objects,
                           **extra)
            except (OSError, ValueError) as exc:
                self._report(f"Autosave failed: {exc}")
                continue
            done[key] = (entry.path, state, plane)
            written += 1
            if budget[0] is not None:  # a chunked (slide) mask's copy is its changed chunks: one pass each
                size = doc.labels.nbytes if isinstance(doc.labels, np.ndarray) else budget[0]
                budget[0] -= size + (objects.nbytes if objects is not None else 0)
        for key in [k for k in done if k not in dirty]:
            path, _state, plane = done.pop(key)
            store.remove_image(path, plane)
        return written

    def _report(self, message: str) -> None:
        log.warning("%s", message)
        if message != self._last_error:  # once, not every few seconds
            self._last_error = message
            self.state.message.emit(message, 15000)

    def close_session(self) -> None:
        """The window closes cleanly (every edit saved or discarded): no copies, no lock."""
        if self._closed:
            return
        self._closed = True
        self._timer.stop()
        self._more.stop()
        if self.lock.held:
            self.store.remove_own()
            self.strokes_store.remove_own()
            self.lock.release()

    # -- recovery -----------------------------------------------------------------------------
    def offer(self) -> str | None:
        """Ask Restore / Discard / Later about copies of sessions no longer running."""
        try:
            live, _ = self.lock.survey()
        except OSError:
            live = set()
        snaps = self.store.recoverable(live) + self.strokes_store.recoverable(live)
        self.pending = []
        if not snaps or self._closed:
            return None
        answer = dialogs.ask_recovery(self.parent_widget, self.crashed, [describe(s) for s in snaps])
        log.info("recovery of %d copies: %s", len(snaps), answer)
        if answer == "discard":
            for snap in snaps:
                self._store_of(snap).remove(snap)
        elif answer == "restore":
            self.restore(snaps)
        return answer

    def restore(self, snaps: list[Snapshot]) -> list[ImageEntry]:
        """Open each copy as unsaved edits on its image; report what cannot be restored."""
        restored: list[ImageEntry] = []
        problems: list[tuple[Snapshot, str]] = []
        for snap in snaps:
            try:
                entry = self._restore_one(snap)
            except (RecoveryError, ImageReadError, MemoryError) as exc:
                problems.append((snap, str(exc)))
                continue
            self._store_of(snap).remove(snap)
            restored.append(entry)
        if restored:
            self.state.show(restored[0])
            self.flush()  # this session's copies replace the old ones right away
            self.state.message.emit(f"Restored the unsaved edits of {counted(len(restored), 'image')}; save them "
                                    "with File > Save.", 10000)
            self.restored.emit(len(restored))
        if problems:
            lines = "\n".join(f"{reason}" for _, reason in problems)
            if dialogs.confirm(self.parent_widget, "Some Edits Could Not Be Restored",
                               f"{lines}\n\nDiscard these recovery copies? (Cancel keeps them "
                               "for the next start.)", "Discard Them"):
                for snap, _ in problems:
                    self._store_of(snap).remove(snap)
        return restored

    def _store_of(self, snap: Snapshot) -> RecoveryStore:
        return self.strokes_store if is_strokes(snap) else self.store

    def _restore_one(self, snap: Snapshot) -> ImageEntry:
        if snap.problem:
            raise RecoveryError(f"{snap.name}: {snap.problem}.")
        image = snap.image_path
        assert image is not None
        if not snap.image_exists:
            raise RecoveryError(f"{snap.name}: the image is gone ({image}).")
        chunked = snap.kind == "chunks"
        if snap.plane:
            return self._restore_plane(snap)
        if is_strokes(snap):
            return self._restore_strokes(snap)
        if not chunked:
            newer = saved_since(snap)
            if newer is not None:
                raise RecoveryError(f"{snap.name}: the mask was saved at {_when(newer)}, after this copy of "
                                    f"{_when(snap.saved_at)} was taken; the saved mask is kept.")
        labels = self._load_chunked(snap) if chunked else self.store.load(snap)
        objects = None if chunked else self.store.load_objects(snap)
        store = self.images
        entry = store.get(image)
        new = entry is None
        if entry is None:
            entry = store.add([image])[0]
            mark_mask_files([entry])
        try:
            if chunked:  # its chunks apply over the saved mask the copy records, not the one beside the image
                self._onto_base(entry, snap)
                load_entry(entry, list(self.state.class_template), chunked_base=snap.base_path)
            else:
                load_entry(entry, list(self.state.class_template))
            doc = entry.doc
            assert doc is not None
            if doc.shape != labels.shape:
                h, w = doc.shape
                raise RecoveryError(f"{snap.name}: the image is now {w}x{h}, not the size of its "
                                    f"recovery copy ({labels.shape[1]}x{labels.shape[0]}).")
        except StoreError as exc:
            if new:
                store.remove(entry)
            labels.close()
            raise RecoveryError(f"{snap.name}: the saved mask it applies over cannot be read ({exc})") from None
        except (RecoveryError, ImageReadError, MemoryError):
            if new:
                store.remove(entry)
            if chunked:
                labels.close()
            raise
        top = top_class(labels) if chunked else (int(labels.max()) if labels.size else 0)
        classes = complete_classes(snap.classes, top=top)
        if classes != doc.classes:
            doc.set_classes(classes)
        if chunked:  # only the copy's changed chunks are put back, as one undo step
            for key in labels.changed_chunks():
                y0, y1, x0, x1 = labels.chunk_region(key)
                doc.paste_region(y0, x0, labels[y0:y1, x0:x1])
            doc.commit_preview("restore unsaved edits")
            labels.close()
        else:
            doc.apply_labels(labels, "restore unsaved edits", objects=objects)
        if snap.mask_path is not None and path_key(snap.mask_path) != path_key(
                default_mask_path(image, chunked=chunked)):
            entry.save_path = snap.mask_path  # it was being saved elsewhere (Save As)
        store.trim()
        return entry

    def _load_chunked(self, snap: Snapshot):
        """A slide mask's copy over the saved mask it records; when that mask was changed since the
        copy was taken, the user chooses whether to mix the two (no: the copy is reported and kept)."""
        changed = base_changed(snap)
        if changed is None:
            return self.store.load_chunked(snap)
        if not dialogs.confirm(self.parent_widget, "Restore Over a Changed Mask?",
                               f"{changed}\n\nRestore the edited chunks of the copy over the mask as it is "
                               "now? (Undo takes them back.)", "Restore Anyway"):
            raise RecoveryError(changed)
        return self.store.load_chunked(snap, base_changed_ok=True)

    @staticmethod
    def _onto_base(entry: ImageEntry, snap: Snapshot) -> None:
        """Drop an open, clean document that is not on the copy's saved mask (it is reopened on
        that one); one with unsaved edits is never replaced."""
        doc = entry.doc
        if doc is None:
            return
        now, recorded = (None if p is None else path_key(p) for p in (getattr(doc.labels, "path", None), snap.base_path))
        if now == recorded:
            return
        if doc.dirty:
            raise RecoveryError(f"{snap.name}: the image is open with unsaved edits on another mask; "
                                "save or discard them, then restore this copy.")
        entry.doc, entry.mask_source = None, None

    def _restore_plane(self, snap: Snapshot) -> ImageEntry:
        """One plane of a stack: its mask (or strokes) copy onto that plane's documents, one undo step;
        as for an image, a mask copy older than the saved mask stack is not restored, and an older
        strokes copy only adds strokes where the saved ones have none."""
        strokes = is_strokes(snap)
        newer = saved_since(snap)
        if newer is not None and not strokes:
            raise RecoveryError(f"{snap.name}: the mask was saved at {_when(newer)}, after this copy of "
                                f"{_when(snap.saved_at)} was taken; the saved mask is kept.")
        labels = self._store_of(snap).load(snap)
        objects = None if strokes else self.store.load_objects(snap)

        def unfit(e: ImageEntry) -> str | None:
            if e.stack is None:
                return "the image is no longer a stack."
            try:
                docs = e.stack.documents(snap.plane)
            except ValueError:
                return "the stack no longer has this plane."
            doc = docs.strokes if strokes else docs.mask
            return None if doc.shape == labels.shape else "the planes are no longer the size of the recovery copy."

        entry = self._listed_entry(snap, unfit)
        docs = entry.stack.documents(snap.plane)
        doc = docs.strokes if strokes else docs.mask
        if strokes:
            if newer is not None:
                labels = merge_sparse(labels, doc.labels, UNANNOTATED)
            if not np.array_equal(labels, doc.labels):
                doc.apply_labels(labels, "restore unsaved strokes")
        else:
            classes = complete_classes(snap.classes, top=int(labels.max()) if labels.size else 0)
            if classes != entry.stack.classes:
                entry.stack.set_classes(classes)
            doc.apply_labels(labels, "restore unsaved edits", objects=objects)
        self.images.trim()
        return entry

    def _restore_strokes(self, snap: Snapshot) -> ImageEntry:
        """Live Training's strokes of an image that fits in memory, as one undo step of its strokes;
        under the strokes saved since the copy was taken, when they were (they win where both annotate)."""
        if snap.kind == "chunks":
            return self._restore_slide_strokes(snap)
        labels = self.strokes_store.load(snap)
        entry = self._listed_entry(snap, lambda e: None if e.strokes is not None and e.strokes.shape == labels.shape
                                   else "the image is no longer the size of its strokes' recovery copy.")
        if saved_since(snap) is not None:
            labels = merge_sparse(labels, entry.strokes.labels, UNANNOTATED)
        if not np.array_equal(labels, entry.strokes.labels):
            entry.strokes.apply_labels(labels, "restore unsaved strokes")
        self.images.trim()
        return entry

    def _listed_entry(self, snap: Snapshot, unfit: Callable[[ImageEntry], str | None]) -> ImageEntry:
        """The entry of the copy's image (listed now if it was not), loaded; RecoveryError naming the
        copy and why, when ``unfit`` says why the copy is not of it (an entry listed here is taken off again)."""
        entry = self.images.get(snap.image_path)
        new = entry is None
        if new:
            entry = self.images.add([snap.image_path])[0]
            mark_mask_files([entry])
        try:
            load_entry(entry, list(self.state.class_template))
            why = unfit(entry)
            if why is not None:
                raise RecoveryError(f"{snap.name}: {why}")
        except StoreError as exc:
            if new:
                self.images.remove(entry)
            raise RecoveryError(f"{snap.name}: {exc}") from None
        except (RecoveryError, ImageReadError, MemoryError):
            if new:
                self.images.remove(entry)
            raise
        return entry

    def _restore_slide_strokes(self, snap: Snapshot) -> ImageEntry:
        """A slide's strokes: the copy's changed chunks over the saved strokes, as one undo step of
        the slide's strokes; where strokes were saved after the copy was taken, those win wherever
        both annotate (as for an image's strokes), so nothing saved is lost and no question is needed."""
        newer = strokes_saved_since(snap)
        labels = self.strokes_store.load_chunked(snap, base_changed_ok=True)  # merged below when changed
        try:
            entry = self._listed_entry(
                snap, lambda e: None if e.strokes is not None and e.strokes.is_chunked and e.strokes.shape == labels.shape
                else "the image is no longer the slide of its strokes' recovery copy.")
        except (RecoveryError, ImageReadError, MemoryError):
            labels.close()
            raise
        strokes = entry.strokes
        for key in labels.changed_chunks():
            y0, y1, x0, x1 = labels.chunk_region(key)
            block = labels[y0:y1, x0:x1]
            if newer:
                block = merge_sparse(block, strokes.labels[y0:y1, x0:x1], UNANNOTATED)
            strokes.paste_region(y0, x0, block)
        strokes.commit_preview("restore unsaved strokes")
        labels.close()
        self.images.trim()
        return entry


def base_changed(snap: Snapshot) -> str | None:
    """The sentence saying a chunked copy's saved mask (or strokes) changed since the copy was taken;
    None when it did not, or when it is gone (loading the copy then says so)."""
    if snap.base_path is not None and not snap.base_path.exists():
        return None
    return snap.base_changed()


def strokes_saved_since(snap: Snapshot) -> bool:
    """A slide's strokes were saved after this copy of them was taken: the file it applies over
    changed, or there was none and there is one now."""
    if snap.base_path is not None:
        return base_changed(snap) is not None
    return snap.mask_path is not None and snap.mask_path.exists()


def is_strokes(snap: Snapshot) -> bool:
    """A copy of Live Training's strokes (kept in their own folder), not of a mask."""
    return snap.manifest_path.parent.name == STROKES_DIR


def describe(snap: Snapshot) -> str:
    """One line of the recovery dialog: image name, what was edited and when, and what is wrong
    with it or what restoring does when newer work was saved since."""
    strokes = is_strokes(snap)
    text = f"{snap.name}, {'strokes' if strokes else 'mask'} edited {_when(snap.saved_at)}"
    if snap.problem:
        return f"{text} ({snap.problem})"
    if not snap.image_exists:
        return f"{text} (the image is gone: {snap.image_path})"
    if snap.kind == "chunks" and strokes and strokes_saved_since(snap):
        return text + " (older than the strokes saved since: only adds strokes where those have none)"
    if snap.kind == "chunks" and not strokes and base_changed(snap):
        return text + " (its saved mask was changed since: you will be asked before it is restored over it)"
    newer = saved_since(snap) if snap.kind == "labels" else None
    if newer is not None:
        return text + (f" (older than the strokes saved {_when(newer)}: only adds strokes where those have none)"
                       if strokes else f" (older than the mask saved {_when(newer)}: it will not replace it)")
    return text


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds)) if seconds else "?"
