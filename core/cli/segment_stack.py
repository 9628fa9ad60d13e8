"""``unetseg segment STACK``: Z-stacks and time series, plane by plane, into label stacks with the input's planes.

An input is a stack when core.io.sources opens it with planes (an OME-TIFF or OME-Zarr with Z or T,
an ImageJ hyperstack, a multi-page TIFF of more than four bare pages; ``--axes`` names axes a file
does not state) or, with ``--stack-folder``, when it is a folder of numbered planes.  Each plane is
segmented by the 2-D model (core.segment.stack.segment_stack, with ``--smooth-z`` and
``--stitch-threshold``), and written as it is finished through the one batch writer
(core.segment.batch_writer: ``tiff``, ``ome-tiff``, ``ome-zarr`` and ``npy`` give one label stack
with the input's T and Z, so it reads back with the same shape; ``instances`` one label stack of
object ids, ``measurements`` one table with ``t``/``z`` measured on the stack's raw pixels, the
per-object formats every plane's objects with their plane; one-image formats per plane).  The
model's own objects, when it gives them, reach every object output through segment_stack's
``on_plane``.  2-D images given beside stacks go through the usual paths into the same writer
(one ``coco.json``), under the batch's stems.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.io.axes import parse_axes_option

STACK_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8", ".zarr")


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--axes", type=_axes_option, default=None, metavar="AXES",
                        help="the axes of TIFF and zarr inputs when the file does not name them, e.g. ZYX for a "
                             "multi-page TIFF of Z planes or TCZYX for a plain 5-D zarr array (letters T Z C S Y X)")
    parser.add_argument("--stack-folder", action="store_true",
                        help="each folder given is one stack of numbered planes (plane_000.tif, z01.png...), "
                             "not a folder of images")
    parser.add_argument("--smooth-z", type=int, default=0, metavar="N",
                        help="stacks: average the class probabilities of N planes above and below each Z plane "
                             "(default 0: each plane alone)")
    parser.add_argument("--stitch-threshold", type=float, default=None, metavar="IOU",
                        help="stacks: link objects of neighbouring Z planes that overlap by this IoU into one 3-D "
                             "object, as Cellpose does (e.g. 0.25); writes <stem>_instances.ome.tif")


def _axes_option(text: str) -> str | None:
    try:
        return parse_axes_option(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1]) from None


def split_inputs(args: argparse.Namespace) -> tuple[list[Path], list[Path]]:
    """(stacks, other images): the inputs expanded as the 2-D paths would, stacks picked out by
    their headers (a file whose header cannot be read stays with the others, which report it)."""
    from core.cli.main import expand_inputs
    from core.cli.segment_large import expand_source_inputs, wants_stores
    from core.io.sources import is_plane_folder

    stacks: list[Path] = []
    files: list[str] = []
    for raw in args.inputs:
        path = Path(raw)
        if getattr(args, "stack_folder", False) and path.is_dir() and path.suffix.lower() != ".zarr":
            if not is_plane_folder(path):
                raise ValueError(f"{path.name}: --stack-folder: the folder holds no numbered planes "
                                 "(plane_000.tif, z01.png...)")
            stacks.append(path)
        else:
            files.append(raw)
    try:
        store_formats = wants_stores(args)
    except ValueError:
        store_formats = False  # --resume/--dask without a store format: the 2-D path says so
    expanded = expand_source_inputs(files) if store_formats else expand_inputs(files)
    plain = []
    for path in expanded:
        (stacks if _is_stack(path, args.axes) else plain).append(path)
    return list(dict.fromkeys(stacks)), plain


def _is_stack(path: Path, axes: str | None) -> bool:
    if path.suffix.lower() not in STACK_SUFFIXES or not path.exists():
        return False
    from core.io.images import ImageReadError
    from core.io.sources import open_source

    try:
        with open_source(path, axes) as source:
            return bool(source.planes)
    except (ImageReadError, ValueError, OSError, RuntimeError):
        return False


def run(args: argparse.Namespace, stacks: list[Path], plain: list[Path]) -> int:
    """Segment every stack, then the 2-D images beside them, into one batch writer."""
    from tqdm import tqdm

    from core.cli.main import EXPECTED_ERRORS, format_failures, object_options, segment_images
    from core.io.label_store import STORE_FORMATS
    from core.io.mask_naming import unique_stems
    from core.segment.batch_writer import BatchWriter, FormatErrors, image_error
    from core.segment.inference import Segmenter
    from core.segment.stack import StackOptions

    if getattr(args, "dask", None) or getattr(args, "resume", False):
        raise ValueError("--dask and --resume are for 2-D images of any size, not stacks")
    if not 0.0 <= args.opacity <= 1.0:
        raise ValueError(f"--opacity must be between 0 and 1, got {args.opacity}")
    options = StackOptions(tile_size=args.tile, tta=args.tta, refine=args.refine, channels=args.channels,
                           smooth_z=args.smooth_z, stitch_threshold=args.stitch_threshold)
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    warn = lambda m: tqdm.write(f"warning: {m}", file=sys.stderr)  # noqa: E731
    seg = Segmenter.load(args.model, device=args.device, warn=warn)
    print(f"model: {seg.describe()}", file=sys.stderr)
    writer = BatchWriter(out_dir, args.format, seg.classes, opacity=args.opacity,
                         coco_semantic=args.coco_semantic, objects=object_options(args))
    stems = unique_stems(stacks + plain)
    failures, partial = 0, []
    for path, stem in zip(stacks, stems):
        try:
            segment_one(seg, path, stem, writer, options, args.axes)
        except FormatErrors as exc:  # a format's own limit: the stack's other formats are written
            partial += [(path, fmt, error) for fmt, error in exc.failures.items()]
            for error in exc.failures.values():
                tqdm.write(str(error), file=sys.stderr)
        except EXPECTED_ERRORS as exc:
            failures += 1
            tqdm.write(str(image_error(path, exc)), file=sys.stderr)
    print(f"segmented {len(stacks) - failures} of {len(stacks)} stack(s) into {out_dir}"
          + (f"; {failures} failed" if failures else "") + format_failures(partial), file=sys.stderr)
    status = 1 if failures or partial else 0
    if not plain:
        writer.close()
        return status
    stores = [f for f in dict.fromkeys(args.format) if f in STORE_FORMATS]
    if stores:  # 2-D images into ome-tiff/ome-zarr stream tile by tile, as without stacks
        from core.cli import segment_large

        rest = [f for f in dict.fromkeys(args.format) if f not in STORE_FORMATS]
        streamed = argparse.Namespace(**{**vars(args), "inputs": [str(p) for p in plain], "format": stores})
        named = dict(zip(plain, stems[len(stacks):]))  # a 2-D cells.png beside the stack cells.ome.tif is cells-2
        status = max(status, segment_large.run(streamed, lambda a: 0, named))
        if not rest:
            writer.close()
            return status
    return max(status, segment_images(args, plain, seg, writer, stems[len(stacks):]))


def segment_one(seg, path: Path, stem: str, writer, options, axes: str | None = None) -> bool:
    """Segment one stack into ``writer``'s formats; False when cancelled (the planes done are written)."""
    from tqdm import tqdm

    from core.io.sources import open_source
    from core.segment.stack import segment_stack

    with open_source(path, axes) as source:
        sizes = " x ".join(f"{a} {n}" for a, n in zip(source.plane_axes, source.planes))
        tqdm.write(f"{path.name}: {sizes} planes of {source.width}x{source.height}, {source.channels} "
                   f"{source.dtype} channel(s)", file=sys.stderr)
        job = writer.stack(path, stem, source.plane_axes, source.planes, source.height, source.width,
                           physical=source.physical_sizes, raw=source,
                           stitched=options.stitch_threshold is not None)
        with tqdm(total=int(_count(source.planes)), unit="plane", leave=False, disable=None, file=sys.stderr,
                  desc=path.name[:24], dynamic_ncols=True) as bar:

            def done(plane, labels, instances) -> None:
                rgb = source.read(0, source.height, 0, source.width, plane=plane) if writer.needs_image else None
                job.add_plane(plane, labels, rgb, instances)

            try:
                result = segment_stack(seg, source, options=options, on_plane=done, keep=False,
                                       progress=lambda d, t: bar.update(d - bar.n))
            except BaseException:
                job.abort()
                raise
        job.close()
    return not result.cancelled


def _count(planes) -> int:
    n = 1
    for p in planes:
        n *= int(p)
    return n
