"""Dask: a LocalCluster of 2 processes on the loopback writes the same store as one process, even when a
worker is killed; a worker that always dies, a bad region and an unreachable scheduler are named."""

from __future__ import annotations

import os
import signal
import socket

import numpy as np
import pytest

pytest.importorskip("distributed")

from core.segment.cluster import ClusterError, connect, segment_on_cluster  # noqa: E402
from core.io.images import ImageReadError  # noqa: E402
from core.segment.inference import Segmenter  # noqa: E402
from core.io.label_store import LabelStore  # noqa: E402
from core.io.sources import open_source  # noqa: E402
from core.segment.streaming import StreamPlan  # noqa: E402
from core.training.synthetic import generate_scene  # noqa: E402
from tests.large_images import write_pyramid_tiff  # noqa: E402

TILE, BLOCK = 128, 64  # 24 one-tile blocks


@pytest.fixture(scope="module")
def client():
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        with connect("local:2") as c:
            yield c


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    image = generate_scene(8, 250, 330)[0]
    return image, write_pyramid_tiff(tmp_path_factory.mktemp("src") / "scene.tif", image, levels=1, tile=32)


def run(client, weights, path, store_path, progress=None):
    seg = Segmenter.load(weights, device="cpu")
    with open_source(path) as src:
        plan = StreamPlan.make(seg, src.height, src.width, TILE, False, False, block_target=BLOCK)
        store = LabelStore.create(store_path, src.height, src.width, plan.chunks, plan.run_record(seg, src))
    segment_on_cluster(client, str(weights), "cpu", path, store, plan, progress)
    return store, seg, plan


@pytest.fixture(scope="module")
def expected(small_weights, scene):
    return Segmenter.load(small_weights, device="cpu").segment(scene[0], tile_size=TILE, tta=False, refine=False)


def test_two_workers_local_or_through_a_tcp_scheduler_give_the_single_process_result(client, small_weights, scene,
                                                                                      expected, tmp_path):
    _, path = scene
    store, _, plan = run(client, small_weights, path, tmp_path / "a.ome.zarr")
    assert len(plan.blocks()) >= 20 and np.array_equal(store.read(), expected)
    with connect(client.scheduler.address) as remote:  # tcp://127.0.0.1:PORT: a running scheduler
        store, _, _ = run(remote, small_weights, path, tmp_path / "c.ome.zarr")
    assert np.array_equal(store.read(), expected)


def test_a_worker_killed_mid_run_changes_nothing(client, small_weights, scene, expected, tmp_path):
    _, path = scene
    pids = client.run(os.getpid)
    killed = []

    def kill_one_worker(done, total, pixels):
        if pixels and not killed:  # mid-run: the first block is in, the others are not
            killed.append(next(iter(pids.values())))
            os.kill(killed[0], signal.SIGKILL)
            assert done < total

    store, _, _ = run(client, small_weights, path, tmp_path / "b.ome.zarr", kill_one_worker)
    assert killed and killed[0] not in client.run(os.getpid).values()  # it really died and was replaced
    assert np.array_equal(store.read(), expected)


from distributed.diagnostics.plugin import WorkerPlugin  # noqa: E402


class _DieOnBlock(WorkerPlugin):
    """Worker plugin: the worker process exits whenever it segments block (1, 1), while ``flag`` exists."""

    name = "unetseg-test-die"

    def __init__(self, flag):
        self.flag = str(flag)

    def setup(self, worker):
        import core.segment.streaming as streaming

        real, flag = streaming.segment_blocks, self.flag

        def dying(seg, source, plan, blocks, *args, **kwargs):
            if os.path.exists(flag) and (1, 1) in list(blocks):
                os._exit(1)
            return real(seg, source, plan, blocks, *args, **kwargs)

        streaming.segment_blocks = dying


def test_a_worker_dying_on_every_retry_and_a_bad_region_are_named(client, small_weights, scene, tmp_path):
    image, path = scene
    flag = tmp_path / "die"
    flag.write_text("")
    client.register_plugin(_DieOnBlock(flag))
    try:
        # (the block named may be another one that was queued on the dying worker)
        with pytest.raises(ClusterError, match=r"scene\.tif: block rows \d+:\d+, columns \d+:\d+: the worker "
                                               r"running it died on every retry; the blocks already written are kept"):
            run(client, small_weights, path, tmp_path / "d.ome.zarr")
    finally:
        flag.unlink()
    assert (1, 1) not in LabelStore.open(tmp_path / "d.ome.zarr").done()

    bad = tmp_path / "bad.tif"
    import tifffile

    tifffile.imwrite(bad, image, tile=(32, 32), compression="zlib")
    with tifffile.TiffFile(bad) as tif:
        offset, count = tif.pages[0].dataoffsets[12], tif.pages[0].databytecounts[12]  # row 1, column 1
    data = bytearray(bad.read_bytes())
    data[offset:offset + count] = b"\x01" * count
    bad.write_bytes(bytes(data))
    with pytest.raises(ImageReadError, match=r"bad\.tif: region y \d+:\d+, x \d+:\d+ of level 0 cannot be read"):
        run(client, small_weights, bad, tmp_path / "e.ome.zarr")


def test_an_unreachable_scheduler_is_one_clear_message():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # a port nobody listens on
    with pytest.raises(ClusterError, match=rf"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:{port}"):
        with connect(f"tcp://127.0.0.1:{port}", timeout_s=2):
            pass
    with pytest.raises(ClusterError, match="local:N or the scheduler's address"):
        with connect("somewhere"):
            pass



@pytest.mark.parametrize("replaced", ["model", "image", "store"])
def test_workers_read_a_model_image_or_store_again_when_replaced_under_the_same_path(client, tmp_path, replaced):
    """Finding 10: the workers' cached model, source and store are keyed by content (and the run), not by
    path: new weights, another image, or a store made again with other chunks, under the old path, give
    the new result on the same warm workers."""
    from tests.helpers import write_checkpoint

    weights, path, store_path = tmp_path / "w.safetensors", tmp_path / "src.tif", tmp_path / "s.ome.zarr"
    for run_no in range(2):
        new = run_no if replaced == "model" else 0
        image = generate_scene(3 + 8 * (run_no if replaced == "image" else 0), 130, 190)[0]
        block = BLOCK * (1 + (run_no if replaced == "store" else 0))
        fresh = tmp_path / f"new{run_no}"
        fresh.mkdir()
        write_checkpoint(fresh / "w.safetensors", "small", 5, seed=new)
        write_pyramid_tiff(fresh / "src.tif", image, levels=1, tile=32)
        os.replace(fresh / "w.safetensors", weights)  # a new file (inode) under the old path, as a save does
        os.replace(fresh / "src.tif", path)
        seg = Segmenter.load(weights, device="cpu")
        with open_source(path) as src:
            plan = StreamPlan.make(seg, src.height, src.width, TILE, False, False, block_target=block)
            store = LabelStore.create(store_path, src.height, src.width, plan.chunks, plan.run_record(seg, src))
        segment_on_cluster(client, str(weights), "cpu", path, store, plan)
        expected = seg.segment(image, tile_size=TILE, tta=False, refine=False)
        assert np.array_equal(LabelStore.open(store_path).read(), expected), f"run {run_no + 1}"
