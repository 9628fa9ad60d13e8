"""Segmenting on a Dask cluster: one task per label-store block, workers writing chunks straight into the store.

    with connect("local:4") as client:          # or "tcp://scheduler:8786"
        segment_on_cluster(client, model, device, source_path, store, plan)

Each task runs ``core.segment.streaming.segment_blocks`` for one block, on the same tiles as a single
process, so the store ends up byte-identical.  A worker loads the model, opens the source and
the store once and keeps them for its later tasks, keyed by what they hold, not by path: the model
and the source by their content fingerprint (``core.io.fingerprint``, taken once per run by the
client), the store by the run, so a weights file, an image or a store replaced under the same path
is read again by the next run.  A worker keeps the last ``KEEP_PER_KIND`` of each kind (two runs
sharing a cluster do not evict each other) and closes the one it drops.  A worker that dies has its tasks re-run by
Dask's scheduler; one that dies on every retry ends the run with one message naming the block.
Blocks already written stay recorded, so ``--resume`` continues from there.

dask.distributed is an optional extra (``pip install unetseg[dask]``); nothing imports it
until a cluster is asked for.  The workers must see the same paths (a shared file system).
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Iterator

from core.segment.inference import Cancelled, ShouldCancel
from core.io.label_store import Block, LabelStore
from core.segment.streaming import StreamPlan

CONNECT_TIMEOUT_S = 10
KEEP_PER_KIND = 2
_WORKER_STATE: dict[str, "OrderedDict"] = {}
_WORKER_LOCK = threading.Lock()


class ClusterError(RuntimeError):
    """A cluster that cannot be used or a block no worker could finish; the message says which and why."""


@contextlib.contextmanager
def connect(spec: str, timeout_s: float = CONNECT_TIMEOUT_S) -> Iterator:
    """A dask.distributed Client for ``local:N`` (N worker processes on the loopback) or ``tcp://HOST:PORT``."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ClusterError("--dask needs dask.distributed: pip install 'unetseg[dask]' "
                           "(or pip install 'dask[distributed]')") from None
    if spec.startswith("local:"):
        try:
            n = int(spec.split(":", 1)[1])
            if n < 1:
                raise ValueError
        except ValueError:
            raise ClusterError(f"--dask {spec}: N in local:N must be a whole number of workers >= 1") from None
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as cluster, Client(cluster) as client:
            yield client
        return
    if "://" not in spec:
        raise ClusterError(f"--dask {spec}: use local:N or the scheduler's address, tcp://HOST:PORT")
    try:
        client = Client(spec, timeout=f"{timeout_s}s")
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {spec}: {_first_line(exc)}") from None
    try:
        yield client
    finally:
        client.close()


def segment_on_cluster(client, model: str, device: str, source_path: Path, store: LabelStore, plan: StreamPlan,
                       progress: Callable[[int, int, int], None] | None = None,
                       should_cancel: ShouldCancel | None = None) -> int:
    """Run every block ``store`` has not recorded as done on the cluster; returns how many ran."""
    from distributed import as_completed

    done = store.done()
    todo = [b for b in plan.blocks() if b not in done]
    total = plan.total_tiles
    tiles_done = sum(len(plan.tiles(b)) for b in done if b in plan._by_block)
    pixels = 0
    if progress:
        progress(tiles_done, total, 0)
    if not todo:
        return 0
    from core.io.fingerprint import file_fingerprint

    job = {"model": str(model), "device": device, "source": str(Path(source_path).resolve()),
           "store": str(Path(store.path).resolve()),
           # what the workers' caches are keyed by: a file changed under the same path is read again
           "model_key": file_fingerprint(model) if Path(model).exists() else str(model),
           "source_key": file_fingerprint(source_path), "store_key": uuid.uuid4().hex}
    spec = plan.spec()  # a few numbers: nothing scattered that a dying worker could take with it
    futures = {client.submit(run_block, job, spec, block, pure=False, key=f"unetseg-block-{block[0]}-{block[1]}-"
                             f"{os.getpid()}-{id(plan)}"): block for block in todo}
    cancelled: list[Block] = []
    try:
        for future in as_completed(futures):
            block = futures[future]
            try:
                future.result()
            except Exception as exc:
                if type(exc).__name__ in ("CancelledError", "FutureCancelledError"):
                    cancelled.append(block)  # a casualty of another block's failure: that one is named
                    continue
                raise _block_error(exc, source_path, store, block) from None
            tiles_done += len(plan.tiles(block))
            y0, y1, x0, x1 = store.region(block)
            pixels += (y1 - y0) * (x1 - x0)
            if progress:
                progress(tiles_done, total, pixels)
            if should_cancel is not None and should_cancel():
                raise Cancelled()
    finally:
        client.cancel(list(futures))
    if cancelled:
        y0, y1, x0, x1 = store.region(cancelled[0])
        raise ClusterError(f"{Path(source_path).name}: block rows {y0}:{y1}, columns {x0}:{x1} and "
                           f"{len(cancelled) - 1} other(s) were cancelled by the scheduler; the blocks already "
                           "written are kept (--resume continues)")
    return len(todo)


def run_block(job: dict, spec: tuple, block: Block) -> Block:
    """The task a worker runs: segment one block and write it into the store (model loaded once per worker)."""
    from core.segment.streaming import segment_blocks

    plan = _worker_cached("plan", spec, lambda: StreamPlan.from_spec(spec))
    seg = _worker_cached("model", (job["model"], job["model_key"], job["device"]), lambda: _load_model(job))
    source = _worker_cached("source", (job["source"], job["source_key"]), lambda: _open_source(job["source"]))
    store = _worker_cached("store", (job["store"], job["store_key"]),
                           lambda: LabelStore.open(job["store"], mode="r+"))
    segment_blocks(seg, source, plan, [block], store.write_block)
    return block


def _load_model(job: dict):
    import torch

    from core.segment.inference import Segmenter

    with contextlib.suppress(Exception):
        from distributed import get_worker

        torch.set_num_threads(max(1, int(get_worker().state.nthreads)))
    return Segmenter.load(job["model"], device=job["device"])


def _open_source(path: str):
    from core.io.sources import open_source

    return open_source(path)


def _worker_cached(kind: str, key, make):
    """The worker's ``kind`` object for ``key``, made once; the oldest beyond ``KEEP_PER_KIND`` is closed."""
    with _WORKER_LOCK:
        held = _WORKER_STATE.setdefault(kind, OrderedDict())
        if key in held:
            held.move_to_end(key)
            return held[key]
        value = held[key] = make()
        while len(held) > KEEP_PER_KIND:
            _key, dropped = held.popitem(last=False)
            with contextlib.suppress(Exception):
                getattr(dropped, "close", lambda: None)()
        return value


def _block_error(exc: BaseException, source_path: Path, store: LabelStore, block: Block) -> BaseException:
    y0, y1, x0, x1 = store.region(block)
    where = f"{Path(source_path).name}: block rows {y0}:{y1}, columns {x0}:{x1}"
    if type(exc).__name__ == "KilledWorker":
        return ClusterError(f"{where}: the worker running it died on every retry; the blocks already "
                            f"written are kept (--resume continues)")
    if isinstance(exc, (ValueError, OSError, MemoryError, RuntimeError)):
        return exc  # already one sentence naming the file (and region)
    return ClusterError(f"{where}: {type(exc).__name__}: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
