"""The open-images cache and the worker registry on their own."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core.document.mask_document import MaskDocument
from gui.state.image_store import ImageStore
from gui.infra.workers import TaskCancelled, describe_error, live_threads, start_task, start_thread


def loaded(store: ImageStore, name: str, dirty: bool = False):
    entry = store.add([Path(f"/tmp/{name}")])[0]
    entry.doc = MaskDocument(np.zeros((4, 4), np.uint8))
    entry.image = object()  # stands for a decoded image
    if dirty:
        entry.doc.apply_labels(np.ones((4, 4), np.uint8))
    store.set_current(entry)
    store.touch(entry)
    return entry


def test_cache_drops_least_recent_clean_documents_only():
    store = ImageStore(keep_documents=3, keep_images=1)
    a = loaded(store, "a.png", dirty=True)
    b = loaded(store, "b.png")
    c = loaded(store, "c.png")
    d = loaded(store, "d.png")
    assert b.doc is None  # the least recently used clean document goes first
    assert a.doc is not None and c.doc is not None and d.doc is not None
    assert d.image is not None and c.image is None and a.image is None  # images: tighter budget
    c.busy = True
    loaded(store, "e.png")
    assert a.doc is not None  # unsaved edits: never dropped, however old
    assert c.doc is not None  # a running job's document is never dropped
    assert d.doc is None


def test_replace_keeps_unsaved_entries_at_the_end():
    store = ImageStore()
    a = loaded(store, "a.png", dirty=True)
    loaded(store, "b.png")
    store.replace([Path("/tmp/x.png"), Path("/tmp/y.png")])
    assert [e.name for e in store] == ["x.png", "y.png", "a.png"] and store.get("/tmp/a.png") is a


def test_task_reports_result_progress_and_cancel(qtbot):
    seen = []

    def work(rep):
        for i in range(3):
            rep.progress(i + 1, 3)
        return "done"

    task = start_task(work, "t1")
    task.progress.connect(lambda d, t: seen.append((d, t)))
    with qtbot.waitSignal(task.finished, timeout=5000) as blocker:
        pass
    assert blocker.args == ["done"] and seen[-1] == (3, 3)

    started = threading.Event()

    def slow(rep):
        started.set()
        while True:
            rep.check()
            time.sleep(0.01)

    task = start_task(slow, "t2")
    started.wait(5)
    assert "task t2" in live_threads()
    with qtbot.waitSignal(task.cancelled, timeout=5000):
        task.cancel()
    assert task.wait(5000)


def test_task_failure_is_one_sentence(qtbot):
    def broken(rep):
        raise ValueError("cells.png: the file is truncated.")

    task = start_task(broken, "t3")
    with qtbot.waitSignal(task.failed, timeout=5000) as blocker:
        pass
    assert blocker.args == ["cells.png: the file is truncated."]
    assert describe_error(KeyError("x")) == "KeyError: 'x'"
    assert describe_error(TaskCancelled()) == "TaskCancelled"


def test_loader_threads_are_registered_until_they_end():
    release = threading.Event()
    thread = start_thread(release.wait, "probe")
    assert "thread probe" in live_threads() and thread.daemon
    release.set()
    thread.join(5)
    assert "thread probe" not in live_threads()


@pytest.mark.parametrize("value", [0, 1])
def test_registry_is_empty_between_tests(value):
    assert live_threads() == []
