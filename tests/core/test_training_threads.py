"""Live training's torch threads: training gets its own count, and no other thread loses its
own, neither the caller nor a segmentation started afterwards (finding 6 of issue 25).

How torch behaves (OpenMP build): ``set_num_threads`` sets the calling thread's count and the
default that threads take at their first parallel operation; threads already past it keep theirs.
"""

from __future__ import annotations

import os
import sys
import threading

import pytest
import torch

from core.training.live import LiveConfig, LiveTrainer

from tests.core.test_live_training import config, strokes, two_halves


def count_in_new_thread() -> int:
    """What a job started now (the app's preview, Segment, Segment All) runs with."""
    found = []
    worker = threading.Thread(target=lambda: found.append(torch.get_num_threads()))
    worker.start()
    worker.join()
    return found[0]


def test_set_num_threads_in_a_thread_is_the_default_of_every_later_thread():
    """The behaviour the trainer has to live with (what made the old one leak its count)."""
    default = count_in_new_thread()
    done = threading.Event()

    def worker():
        torch.set_num_threads(default + 1)
        done.set()

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    try:
        assert done.is_set() and count_in_new_thread() == default + 1  # leaked into every later thread
    finally:
        restore = threading.Thread(target=torch.set_num_threads, args=(default,))
        restore.start()
        restore.join()
    assert count_in_new_thread() == default


def trained_with(threads: int, **kw) -> list[int]:
    """Train a few steps; the torch thread count seen by the training thread at each snapshot."""
    img, _ = two_halves()
    seen: list[int] = []
    trainer = LiveTrainer(LiveConfig(patch=48, batch=4, threads=threads, snapshot_every=0.0, device="cpu", **kw))
    trainer.set_data([(img, strokes())])
    trainer.run(lambda s: seen.append(torch.get_num_threads()), lambda: len(seen) >= 3)
    return seen


def test_training_runs_with_its_thread_count_and_the_caller_keeps_its_own():
    default, caller = count_in_new_thread(), torch.get_num_threads()
    wanted = max(default, caller) + 1  # differs from both, whatever the machine
    seen = trained_with(wanted)
    assert seen and set(seen) == {wanted}
    assert torch.get_num_threads() == caller
    assert count_in_new_thread() == default  # a segmentation started now gets its normal count


def test_training_on_a_worker_leaves_later_threads_their_normal_count():
    """The app: training runs on a worker thread; the preview and Segment start threads later."""
    default = count_in_new_thread()
    seen: list[list[int]] = []
    worker = threading.Thread(target=lambda: seen.append(trained_with(default + 1)))
    worker.start()
    worker.join()
    assert seen and set(seen[0]) == {default + 1}
    assert count_in_new_thread() == default


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread priorities are per thread on Linux only")
def test_training_thread_runs_at_a_lower_priority_and_the_caller_keeps_its_own():
    img, _ = two_halves()
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: list[int] = []
    trainer = LiveTrainer(config(nice=5, snapshot_every=0.0))
    trainer.set_data([(img, strokes())])
    trainer.run(lambda s: seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id())),
                lambda: trainer.steps >= 2)
    assert seen and set(seen) == {min(19, base + 5)}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread priorities are per thread on Linux only")
def test_zarrs_shared_threads_keep_normal_priority_when_first_used_by_a_less_urgent_thread(tmp_path):
    """zarr's I/O threads live as long as the process and take the priority of the thread that first
    uses zarr: a background run (training, Segment All) must not leave every later read of a slide
    by the window at its lower priority.  In a fresh process, where zarr has not run yet."""
    import subprocess
    import textwrap

    script = textwrap.dedent(f"""
        import os, threading
        from core.training.threads import lower_priority

        base = os.getpriority(os.PRIO_PROCESS, 0)

        def work():
            lower_priority(5)
            import zarr
            z = zarr.create_array({str(tmp_path / 'a.zarr')!r}, shape=(64, 64), chunks=(16, 16), dtype="u1")
            z[:] = 1
            assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == min(19, base + 5)

        t = threading.Thread(target=work)
        t.start()
        t.join()
        zarr_threads = [th for th in threading.enumerate() if th.name == "zarr_io" or th.name.startswith("asyncio")]
        assert zarr_threads
        print(sorted({{os.getpriority(os.PRIO_PROCESS, th.native_id) for th in zarr_threads}}))
    """)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=root,
                         env={**os.environ, "PYTHONPATH": root}, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == str([os.getpriority(os.PRIO_PROCESS, 0)])
