"""Segmenting an image source of any size into a label store, block by block, in bounded memory.

The tiles are exactly the tiles ``Segmenter.segment`` plans for an image of that size
(``Segmenter.tiling`` + ``plan_tiles``): their cores form a regular grid of ``step`` pixels
(window - 2 x halo), so a store whose chunks are a multiple of ``step`` gets whole tiles in each
chunk and no tile is computed twice.  Each tile's window (halo and the reflect padding past
the bottom/right edge included) is read from the source on a read-ahead thread, so decoding
overlaps compute; memory holds a few windows and one block, whatever the image size.  On an
image that fits in memory, the labels equal ``segment``'s byte for byte (same tiles, same code:
``Segmenter.run_tiles``).

A block (= one store chunk) is the unit of work: of progress records, of ``--resume`` (done
blocks are skipped) and of distribution (core.segment.cluster runs ``segment_block`` on workers).
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from core.segment.inference import MULTIPLE, Segmenter, ShouldCancel, Tile, plan_tiles, window_rows_cols
from core.io.fingerprint import file_fingerprint
from core.io.label_store import Block, LabelStore, StoreError
from core.model.optimize import reuse_freed_memory
from core.model.refine import Refinement
from core.io.sources import ImageSource

BLOCK_TARGET = 2048  # pixels per side a block aims for (a whole number of tile cores)
READ_AHEAD = 3  # windows decoded ahead of the network
BlockProgress = Callable[[int, int, int], None]  # (tiles done, tiles total, pixels done)


@dataclass
class StreamPlan:
    """Tiles and blocks for segmenting an h x w image with one Segmenter's settings."""

    height: int
    width: int
    window: int
    halo: int
    tta: bool
    refine: Refinement | None
    chunks: tuple[int, int]
    raw_input: tuple | None = None  # raw-channel models: (channel picks or None, ChannelStats of the source)
    _by_block: dict[Block, list[Tile]] = field(default_factory=dict, repr=False)

    @classmethod
    def make(cls, seg: Segmenter, height: int, width: int, tile_size: int | None = None, tta: bool | None = None,
             refine: Refinement | bool | None = None, block_target: int = BLOCK_TARGET,
             source: ImageSource | None = None, channels: Sequence[int] | None = None) -> "StreamPlan":
        """``source`` (needed for a raw-channel model): its statistics are measured here, once,
        so every block, on whichever worker, scales its pixels the same way."""
        window, halo, tta, refine = seg.tiling(height, width, tile_size, tta, refine)
        chunks = (_axis_chunk(height, window, halo, block_target), _axis_chunk(width, window, halo, block_target))
        raw_input = None
        if seg.reads_raw:
            if source is None:
                raise ValueError("a model trained on raw channels needs the source to plan a streamed run")
            picks = seg.channel_picks(source.channels, channels)
            raw_input = (None if picks is None else tuple(picks), seg.source_statistics(source, picks))
        return cls.from_spec((height, width, window, halo, tta, refine, chunks, raw_input))

    @classmethod
    def from_spec(cls, spec: tuple) -> "StreamPlan":
        """The plan ``spec()`` describes: a few numbers to send to workers instead of every tile."""
        height, width, window, halo, tta, refine, chunks, *rest = spec
        plan = cls(height, width, window, halo, tta, refine, tuple(chunks), rest[0] if rest else None)
        for t in plan_tiles(height, width, window, halo):
            plan._by_block.setdefault((t.cy0 // plan.chunks[0], t.cx0 // plan.chunks[1]), []).append(t)
        return plan

    def spec(self) -> tuple:
        return (self.height, self.width, self.window, self.halo, self.tta, self.refine, self.chunks, self.raw_input)

    def blocks(self) -> list[Block]:
        return list(self._by_block)

    def tiles(self, block: Block) -> list[Tile]:
        return self._by_block[block]

    def region(self, block: Block) -> tuple[int, int, int, int]:
        """(y0, y1, x0, x1) of ``block`` in the image."""
        return _block_region(self, block)

    @property
    def total_tiles(self) -> int:
        return sum(len(v) for v in self._by_block.values())

    def run_record(self, seg: Segmenter, source: ImageSource) -> dict:
        """What a resumed run must share with the first one to give the identical result."""
        return {
            "source": source.path.name, "content": file_fingerprint(source.path), "size": [self.height, self.width],
            "model": model_fingerprint(seg),
            "window": self.window, "halo": self.halo, "tta": self.tta,
            "refine": None if self.refine is None else [self.refine.radius, self.refine.eps],
            "chunks": list(self.chunks),
            **({} if self.raw_input is None else {"input": {
                "channels": None if self.raw_input[0] is None else list(self.raw_input[0]),
                "statistics": self.raw_input[1].to_json()}}),
        }


def create_store(seg: Segmenter, source: ImageSource, store_path: str | Path, plan: StreamPlan, resume: bool = False,
                 warn: Callable[[str], None] | None = None) -> LabelStore:
    """``LabelStore.create`` for this run.  With ``resume``, a store whose image has changed since (same
    name and settings, other content: ``run_record``'s fingerprint) is started over, with a warning,
    instead of finishing the new image with the old one's blocks."""
    run = json.loads(json.dumps(plan.run_record(seg, source)))  # as the store keeps it
    if resume and _source_changed(Path(store_path), run):
        if warn is not None:
            warn(f"{source.path.name}: the image is not the one the interrupted run segmented (its content "
                 "differs); segmenting it again from the start")
        resume = False
    return LabelStore.create(store_path, source.height, source.width, plan.chunks, run, resume=resume)


def _source_changed(store_path: Path, run: dict) -> bool:
    if not store_path.exists():
        return False
    try:
        previous = LabelStore.open(store_path).run
    except StoreError:
        return False  # not a store of ours: LabelStore.create says so
    if not isinstance(previous, dict):
        return False

    def settings(record: dict) -> dict:
        return {k: v for k, v in record.items() if k != "content"}

    return settings(previous) == settings(run) and previous.get("content") != run["content"]


def _axis_chunk(size: int, window: int, halo: int, target: int) -> int:
    canvas = size + (-size) % MULTIPLE
    if canvas <= window:
        return size  # one tile along this axis: one chunk
    step = window - 2 * halo
    return step * max(1, round(target / step))


def model_fingerprint(seg: Segmenter) -> str:
    """A short hash of the weights file (or the built-in model's name when it has none)."""
    path = seg.checkpoint.path
    if path is None or not Path(path).is_file():
        return seg.name
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for part in iter(lambda: f.read(1 << 20), b""):
            digest.update(part)
    return digest.hexdigest()[:16]


def read_window(source: ImageSource, t: Tile, channels: int = 3, raw: bool = False) -> np.ndarray:
    """Tile ``t``'s window from ``source`` (level 0), reflect-padded past the edge like ``segment``;
    ``raw``: every channel in the file's dtype (``read_raw``) instead of the 8-bit RGB view."""
    h, w = source.height, source.width
    rows, cols = window_rows_cols(t, h, w)
    r0, r1 = _span(rows)
    c0, c1 = _span(cols)
    region = (source.read_raw if raw else source.read)(r0, r1, c0, c1)
    if not isinstance(rows, slice):
        region = region[rows - r0]
    if not isinstance(cols, slice):
        region = region[:, cols - c0]
    return region


def _span(index) -> tuple[int, int]:
    if isinstance(index, slice):
        return index.start, index.stop
    return int(index.min()), int(index.max()) + 1


class _ReadAhead:
    """Reads tile windows on one background thread, ``depth`` tiles ahead of the consumer."""

    def __init__(self, tiles: Sequence[Tile], read: Callable[[Tile], np.ndarray], depth: int = READ_AHEAD):
        self._tiles, self._read, self._depth = list(tiles), read, depth
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="unetseg-read")
        self._pending: dict[int, Future] = {}
        self._next = 0
        self._index = {id(t): i for i, t in enumerate(self._tiles)}
        self._fill(0)

    def _fill(self, upto: int) -> None:
        while self._next < len(self._tiles) and self._next <= upto + self._depth:
            self._pending[self._next] = self._pool.submit(self._read, self._tiles[self._next])
            self._next += 1

    def get(self, t: Tile) -> np.ndarray:
        i = self._index[id(t)]
        self._fill(i)
        return self._pending.pop(i).result()

    def close(self) -> None:
        for f in self._pending.values():
            f.cancel()
        self._pool.shutdown(wait=True)


def segment_blocks(seg: Segmenter, source: ImageSource, plan: StreamPlan, blocks: Iterable[Block],
                   write: Callable[[Block, np.ndarray], None], should_cancel: ShouldCancel | None = None,
                   progress: Callable[[int], None] | None = None) -> None:
    """Segment ``blocks`` of ``plan`` from ``source``; ``write(block, labels)`` gets each finished block.

    ``progress(n)`` is called with the number of tiles just finished.
    """
    blocks = list(blocks)
    order = [t for b in blocks for t in plan.tiles(b)]
    if plan.raw_input is not None:
        picks, stats = plan.raw_input
        pixels_of = (lambda t: seg.as_input(read_window(source, t, raw=True), stats, picks))
    else:
        pixels_of = (lambda t: seg.as_input(read_window(source, t)))
    reader = _ReadAhead(order, pixels_of)
    try:
        with reuse_freed_memory():  # a warm heap across tiles, as in a CLI batch
            for block in blocks:
                y0, y1, x0, x1 = _block_region(plan, block)
                out = np.zeros((y1 - y0, x1 - x0), np.uint8)
                seg.run_tiles(plan.tiles(block), (plan.height, plan.width), reader.get,
                              lambda t: out[t.cy0 - y0:t.cy1 - y0, t.cx0 - x0:t.cx1 - x0], seg.batch_size(),
                              should_cancel, (lambda group, _: progress(len(group))) if progress else None,
                              plan.tta, plan.refine)
                write(block, out)
    finally:
        reader.close()


def _block_region(plan: StreamPlan, block: Block) -> tuple[int, int, int, int]:
    (by, bx), (cy, cx) = block, plan.chunks
    return by * cy, min(plan.height, (by + 1) * cy), bx * cx, min(plan.width, (bx + 1) * cx)


def segment_to_store(seg: Segmenter, source: ImageSource, store: LabelStore, plan: StreamPlan,
                     progress: BlockProgress | None = None, should_cancel: ShouldCancel | None = None) -> int:
    """Segment every block ``store`` has not recorded as done; returns how many blocks were run."""
    if store.chunks != plan.chunks or (store.height, store.width) != (plan.height, plan.width):
        raise ValueError(f"{store.path}: its chunks {store.chunks} do not match the plan's {plan.chunks}")
    done_blocks = store.done()
    todo = [b for b in plan.blocks() if b not in done_blocks]
    total = plan.total_tiles
    tiles_done = sum(len(plan.tiles(b)) for b in plan.blocks() if b in done_blocks)
    pixels_done = 0
    if progress:
        progress(tiles_done, total, 0)

    def tick(n: int) -> None:
        nonlocal tiles_done
        tiles_done += n
        if progress:
            progress(tiles_done, total, pixels_done)

    def write(block: Block, labels: np.ndarray) -> None:
        nonlocal pixels_done
        store.write_block(block, labels)
        pixels_done += labels.size
        if progress:
            progress(tiles_done, total, pixels_done)

    segment_blocks(seg, source, plan, todo, write, should_cancel, tick)
    return len(todo)


def segment_source(seg: Segmenter, source: ImageSource, tile_size: int | None = None, tta: bool | None = None,
                   refine: Refinement | bool | None = None, block_target: int = BLOCK_TARGET) -> np.ndarray:
    """The whole label image of a source that fits in memory, streamed (for tests and small sources)."""
    plan = StreamPlan.make(seg, source.height, source.width, tile_size, tta, refine, block_target, source)
    out = np.zeros((source.height, source.width), np.uint8)

    def write(block: Block, labels: np.ndarray) -> None:
        y0, y1, x0, x1 = _block_region(plan, block)
        out[y0:y1, x0:x1] = labels

    segment_blocks(seg, source, plan, plan.blocks(), write)
    return out


class Throughput:
    """Mpx/s over the pixels written so far, for progress bars."""

    def __init__(self):
        self.start = time.perf_counter()

    def mpx_per_s(self, pixels: int) -> float:
        return pixels / 1e6 / max(1e-9, time.perf_counter() - self.start)


def segment_into_store(seg: Segmenter, source: ImageSource, store_path: str | Path, tile_size: int | None = None,
                       tta: bool | None = None, refine: Refinement | bool | None = None, resume: bool = False,
                       progress: BlockProgress | None = None, should_cancel: ShouldCancel | None = None,
                       block_target: int = BLOCK_TARGET, name: str | None = None,
                       instances_path: str | Path | None = None) -> LabelStore:
    """Create (or, with ``resume``, continue) an OME-Zarr label store for ``source`` and fill and finish it.

    The one call an app needs: ``progress(tiles_done, tiles_total, pixels_written)``, and
    ``should_cancel()`` between tiles (Cancelled leaves the finished blocks recorded for ``resume``).
    A model with an instance output also writes its objects into ``instances_path`` (default:
    ``<stem>_instances.ome.zarr`` beside the store; core.segment.instance_stream) and folds its
    boundary class out of the class store before finishing it.
    """
    plan = StreamPlan.make(seg, source.height, source.width, tile_size, tta, refine, block_target, source)
    store = create_store(seg, source, store_path, plan, resume)
    if not store.complete:
        segment_to_store(seg, source, store, plan, progress, should_cancel)
        if seg.instances is not None:
            from core.io.mask_naming import image_stem, slide_instances_path
            from core.segment.instance_stream import separate_store

            target = instances_path or slide_instances_path(Path(store_path).parent, image_stem(store_path), "ome-zarr")
            separate_store(store, target, seg.instances, name=name or source.path.stem)
        store.finish(seg.classes, name=name or source.path.stem)
    return store
