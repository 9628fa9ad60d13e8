"""Recovery copies and session locks (core.document.recovery): written atomically, listed, restored."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from core.atomic import WriteError
from core.classes import ClassInfo, default_classes
from core.document.recovery import (RecoveryError, RecoveryStore, SessionLock, process_alive,
                           process_start_token)

CLASSES = default_classes(3)


def labels(seed=0, shape=(20, 30)):
    return np.random.default_rng(seed).integers(0, 3, shape).astype(np.uint8)


@pytest.fixture
def dead_pid():
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(30)
    return proc.pid


def test_snapshot_round_trip_lives_in_the_data_folder(tmp_path):
    image = tmp_path / "photos" / "cells 1.png"
    image.parent.mkdir()
    image.write_bytes(b"x")
    data = tmp_path / "appdata"
    store = RecoveryStore(data, version="9.9")
    mask = labels()
    classes = [*CLASSES, ClassInfo(7, "extra", (1, 2, 3))]
    snap = store.save(image, mask, classes, 12, image.with_name("cells 1_mask.png"))
    assert sorted(p.name for p in image.parent.iterdir()) == ["cells 1.png"]  # nothing beside it
    assert {p.suffix for p in (data / "recovery").iterdir()} == {".json", ".npy"}
    [listed] = store.snapshots()
    assert listed.problem is None and listed.image_exists and listed.name == "cells 1.png"
    assert (listed.image_path, listed.mask_path) == (image.resolve(), image.with_name("cells 1_mask.png").resolve())
    assert listed.image_size == (30, 20) and listed.history_position == 12
    assert listed.classes == classes and listed.app_version == "9.9"
    assert abs(listed.saved_at - snap.saved_at) < 1e-6
    manifest = json.loads(listed.manifest_path.read_text())
    assert manifest["pid"] == os.getpid() and manifest["session"] == store.session
    assert (store.load(listed) == mask).all()


def test_saving_again_replaces_the_copy_and_remove_cleans_it(tmp_path):
    store = RecoveryStore(tmp_path)
    image = tmp_path / "a.png"
    for seed in range(3):
        store.save(image, labels(seed), CLASSES, seed)
    assert len(list(store.folder.glob("*.json"))) == 1 and len(list(store.folder.glob("*.npy"))) == 1
    assert (store.load(store.own()[0]) == labels(2)).all()
    store.save(tmp_path / "b.png", labels(5), CLASSES, 1)
    store.remove_image(image)
    assert [s.name for s in store.own()] == ["b.png"]
    store.remove_own()
    assert list(store.folder.iterdir()) == []


def test_recoverable_means_not_ours_and_not_running(tmp_path):
    mine, running, dead = (RecoveryStore(tmp_path, session=s) for s in ("aaaa", "bbbb", "cccc"))
    for i, store in enumerate((mine, running, dead)):
        store.save(tmp_path / f"{i}.png", labels(i), CLASSES, i)
    assert [s.session for s in mine.recoverable({"bbbb"})] == ["cccc"]
    assert {s.session for s in mine.recoverable(set())} == {"bbbb", "cccc"}


def test_damaged_copies_are_reported_not_fatal(tmp_path):
    store = RecoveryStore(tmp_path)
    good = store.save(tmp_path / "good.png", labels(), CLASSES, 1)
    (store.folder / "zzzz-0000.json").write_text("{not json")
    wrong = store.save(tmp_path / "wrong.png", labels(), CLASSES, 1)
    np.save(wrong.data_path, np.zeros((3, 3), np.uint8))
    gone = store.save(tmp_path / "gone.png", labels(), CLASSES, 1)
    gone.data_path.unlink()
    noise = store.save(tmp_path / "noise.png", labels(), CLASSES, 1)
    noise.data_path.write_bytes(b"\x93NUMPY garbage")
    snaps = {s.manifest_path.name: s for s in store.snapshots()}
    broken = snaps["zzzz-0000.json"]
    assert broken.problem and "damaged" in broken.problem and not broken.image_exists
    assert (store.load(snaps[good.manifest_path.name]) == labels()).all()
    for snap, why in ((broken, "damaged"), (wrong, "damaged"), (gone, "missing"), (noise, "damaged")):
        with pytest.raises(RecoveryError, match=why) as info:
            store.load(snaps[snap.manifest_path.name])
        assert "\n" not in str(info.value)
    store.remove(broken)
    assert "zzzz-0000.json" not in {s.manifest_path.name for s in store.snapshots()}


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_failed_write_keeps_the_previous_copy(tmp_path, monkeypatch, code):
    store = RecoveryStore(tmp_path)
    image = tmp_path / "a.png"
    store.save(image, labels(1), CLASSES, 1)
    real = os.replace

    def failing(src, dst):
        if str(dst).endswith(".json"):
            raise OSError(code, os.strerror(code))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(WriteError, match="a.png|json"):
        store.save(image, labels(2), CLASSES, 2)
    monkeypatch.setattr(os, "replace", real)
    [snap] = store.own()
    assert snap.history_position == 1 and (store.load(snap) == labels(1)).all()
    assert sorted(p.suffix for p in store.folder.iterdir()) == [".json", ".npy"]  # no temp files


def test_a_live_lock_is_not_a_crash_and_a_clean_exit_leaves_none(tmp_path):
    first, second = SessionLock(tmp_path), SessionLock(tmp_path)
    first.acquire()
    second.acquire()
    live, stale = second.survey()
    assert live == {first.session} and stale == []
    assert json.loads(first.path.read_text())["pid"] == os.getpid()
    first.release()
    assert not first.path.exists() and second.survey() == (set(), [])


def test_a_lock_whose_process_is_gone_is_an_unclean_exit(tmp_path, dead_pid):
    crashed = SessionLock(tmp_path)
    crashed.acquire()
    raw = json.loads(crashed.path.read_text())
    crashed.path.write_text(json.dumps({**raw, "pid": dead_pid, "start_token": None}))
    reused = SessionLock(tmp_path)  # our pid, but a different process start: the pid was reused
    reused.acquire()
    raw = json.loads(reused.path.read_text())
    if raw["start_token"] is not None:
        reused.path.write_text(json.dumps({**raw, "start_token": "1"}))
    (crashed.folder / "garbage.lock").write_text("\x00\x01 not json")
    remote = SessionLock(tmp_path)
    remote.acquire()
    remote.path.write_text(json.dumps({**raw, "host": "another-computer", "pid": dead_pid}))
    me = SessionLock(tmp_path)
    live, stale = me.survey()
    expected = {crashed.session, "garbage"} | ({reused.session} if raw["start_token"] else set())
    assert {s.session for s in stale} == expected
    assert remote.session in live  # cannot be checked from here: treated as running
    SessionLock.clear(stale)
    assert not crashed.path.exists() and remote.path.exists()


def test_process_alive(dead_pid):
    assert process_alive(os.getpid(), process_start_token(os.getpid()))
    assert not process_alive(dead_pid) and not process_alive(-1) and not process_alive(0)
    if sys.platform.startswith("linux"):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            assert process_alive(child.pid)
            os.kill(child.pid, signal.SIGKILL)
            for _ in range(200):  # until the kernel has made it a zombie (not reaped yet)
                if not process_alive(child.pid):
                    break
                time.sleep(0.01)
            assert not process_alive(child.pid)
        finally:
            child.kill()
            child.wait(10)
