"""``unetseg segment --format ome-tiff|ome-zarr [--dask ...] [--resume]``: masks of any size, streamed into stores.

Each input is opened as a lazy source (core.io.sources) and segmented block by block
(core.segment.streaming, or core.segment.cluster with ``--dask``) into an OME-Zarr label store: the output
itself for ``ome-zarr`` (``OUT/<stem>.ome.zarr``), a hidden work store beside the output for
``ome-tiff`` (``OUT/<stem>.ome.tif`` is exported from it at the end, then the work store is
removed).  An interrupted run leaves its finished blocks recorded; ``--resume`` continues it.
With ``instances`` and/or ``measurements`` the slide's objects follow from the finished store
(core.segment.slide_objects: ``<stem>_instances.ome.zarr|.ome.tif``, ``<stem>_measurements.csv``,
streamed).  Other in-memory formats asked for in the same command are then written by the usual path.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from core.io.label_store import STORE_FORMATS, export_ome_tiff, remove_store

WHOLE_PASS_PIXELS = 4096 * 4096  # --tile 0 (one pass) is refused above this with the store formats
SLIDE_SUFFIXES = (".svs", ".ndpi", ".scn", ".bif", ".qptiff", ".btf")  # TIFF-based slides tifffile reads


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dask", metavar="local:N|tcp://HOST:PORT", default=None,
                        help="segment on a Dask cluster: N local worker processes, or a running scheduler "
                             "(with --format ome-tiff/ome-zarr)")
    parser.add_argument("--chunk", type=int, default=None, metavar="N",
                        help="side of the ome-tiff/ome-zarr work chunks in pixels, rounded to whole tiles "
                             "(the unit of --resume and --dask; default 2048)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted ome-tiff/ome-zarr run from its finished chunks")


def wants_stores(args: argparse.Namespace) -> bool:
    if set(args.format) & set(STORE_FORMATS):
        return True
    if getattr(args, "dask", None) or getattr(args, "resume", False):
        raise ValueError("--dask and --resume need --format ome-tiff or --format ome-zarr")
    return False


def run(args: argparse.Namespace, in_memory: Callable[[argparse.Namespace], int],
        stems: dict[Path, str] | None = None) -> int:
    """Write the store formats for every input, then the other formats through ``in_memory``;
    ``stems``: the output stems of inputs already named in a larger batch (stacks beside them)."""
    from tqdm import tqdm

    from core.segment.batch_writer import image_error
    from core.cli.main import EXPECTED_ERRORS
    from core.segment.inference import Segmenter

    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    inputs = expand_source_inputs(args.inputs)
    if not inputs:
        raise ValueError("no images found in the given inputs")
    from core.segment.slide_objects import OBJECT_FORMATS

    formats = [f for f in dict.fromkeys(args.format) if f in STORE_FORMATS or f in OBJECT_FORMATS]
    rest = [f for f in dict.fromkeys(args.format) if f not in formats]
    warn = lambda m: tqdm.write(f"warning: {m}", file=sys.stderr)  # noqa: E731
    seg = Segmenter.load(args.model, device="cpu" if args.dask else args.device, warn=warn)
    print(f"model: {seg.describe()}" + (f"; workers on {args.dask}" if args.dask else ""), file=sys.stderr)
    failures = 0
    with _cluster(args.dask) as client:
        for path, stem in zip(inputs, source_stems(inputs)):
            stem = (stems or {}).get(path, stem)
            try:
                segment_one(seg, path, stem, out_dir, formats, args, client, warn)
            except EXPECTED_ERRORS as exc:
                failures += 1
                tqdm.write(str(image_error(path, exc)), file=sys.stderr)
    print(f"wrote {' and '.join(formats)} for {len(inputs) - failures} of {len(inputs)} image(s) into {out_dir}"
          + (f"; {failures} failed" if failures else ""), file=sys.stderr)
    status = 1 if failures else 0
    if rest:
        args.format, args.dask, args.resume = rest, None, False
        status = max(status, in_memory(args))
    return status


def segment_one(seg, path: Path, stem: str, out_dir: Path, formats: list[str], args, client=None,
                warn: Callable[[str], None] | None = None) -> list[Path]:
    """Segment one source into the requested store formats; returns the files written."""
    from core.io.sources import open_source
    from core.segment.streaming import BLOCK_TARGET, StreamPlan, create_store

    with open_source(path) as source:
        if args.tile == 0 and source.width * source.height > WHOLE_PASS_PIXELS:
            raise ValueError(f"--tile 0 runs the whole {source.width}x{source.height} image in one pass, which would "
                             "need memory for all of it; leave --tile out to stream it")
        plan = StreamPlan.make(seg, source.height, source.width, args.tile, args.tta, args.refine,
                               args.chunk or BLOCK_TARGET, source, getattr(args, "channels", None))
        zarr_target = out_dir / f"{stem}{STORE_FORMATS['ome-zarr']}"
        store_path = zarr_target if "ome-zarr" in formats else out_dir / f".{stem}.ome.tif.work.zarr"
        store = create_store(seg, source, store_path, plan, args.resume, warn)
        if not store.complete:
            _segment(seg, source, store, plan, path, args, client)
            store.finish(seg.classes, name=stem)
        written = []
        if "ome-zarr" in formats:
            written.append(store_path)
        if "ome-tiff" in formats:
            written.append(export_ome_tiff(store, out_dir / f"{stem}{STORE_FORMATS['ome-tiff']}"))
        objects = [f for f in formats if f not in STORE_FORMATS]
        if objects:
            from core.segment.slide_objects import write_slide_objects

            written += write_slide_objects(source, store, out_dir, stem, objects,
                                           [f for f in formats if f in STORE_FORMATS], seg.classes)
    if store_path != zarr_target:  # only once everything is written: a failed export can --resume
        remove_store(store_path)
    return written


def _segment(seg, source, store, plan, path: Path, args, client) -> None:
    from tqdm import tqdm

    from core.segment.streaming import Throughput, segment_to_store

    speed = Throughput()
    with tqdm(total=plan.total_tiles, unit="tile", leave=False, disable=None, file=sys.stderr,
              desc=path.name[:24], dynamic_ncols=True) as bar:

        def progress(done: int, total: int, pixels: int) -> None:
            bar.n = done
            bar.set_postfix_str(f"{speed.mpx_per_s(pixels):.2f} Mpx/s", refresh=False)
            bar.refresh()

        if client is None:
            segment_to_store(seg, source, store, plan, progress)
        else:
            from core.segment.cluster import segment_on_cluster

            model = seg.checkpoint.path if seg.checkpoint.path else args.model
            segment_on_cluster(client, str(model), args.device, path, store,
                               plan, progress)


def _cluster(spec: str | None):
    import contextlib

    if not spec:
        return contextlib.nullcontext(None)
    from core.segment.cluster import connect

    return connect(spec)


def expand_source_inputs(inputs) -> list[Path]:
    """Like the CLI's inputs, but a ``.zarr`` folder is one image, and folders also yield slides and OME-Zarrs."""
    from core.cli.main import expand_inputs

    out: list[Path] = []
    for raw in inputs:
        path = Path(raw)
        if path.suffix.lower() == ".zarr":
            out.append(path)
            continue
        out.extend(expand_inputs([raw]))
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if not p.name.startswith(".") and
                              (p.suffix.lower() in SLIDE_SUFFIXES or p.suffix.lower() == ".zarr")))
    return list(dict.fromkeys(out))


def source_stems(paths: list[Path]) -> list[str]:
    """Output stems: ``a.ome.tif`` and ``a.ome.zarr`` give ``a``; repeats get -2, -3, ... (the one
    naming rule, core.io.mask_naming)."""
    from core.io.mask_naming import unique_stems

    return unique_stems(paths)


def cmd_convert(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core.io.convert import convert

    with tqdm(unit="tile", disable=None, file=sys.stderr, desc=Path(args.input).name[:24]) as bar:

        def progress(done: int, total: int) -> None:
            bar.total, bar.n = total, done
            bar.refresh()

        target = convert(args.input, args.output, progress)
    print(f"wrote {target}", file=sys.stderr)
    return 0


def add_convert_command(sub) -> None:
    p = sub.add_parser("convert", help="write a tiled, pyramidal OME-TIFF or OME-Zarr copy of an image")
    p.add_argument("input", metavar="IN", help="any image the app reads (also OME-Zarr)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="OUT.ome.tif or OUT.ome.zarr")
    p.set_defaults(handler=cmd_convert)
