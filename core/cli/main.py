"""The ``unetseg`` command line: argument parsing and the commands that need no GUI.

``unetseg`` alone (or ``unetseg open IMAGE...``) starts the desktop app; that launcher is
passed in by ``unetseg/__main__.py`` so this module never imports Qt.  Every expected failure
(a bad image, a wrong checkpoint, a full disk) is printed as one line naming the file and the
reason, never a traceback; the exit status is 1 when anything failed, 0 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

from core.io.channels import channels_option
from core.io.mask_naming import unique_stems  # noqa: F401 - where callers have imported it from

EXPECTED_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, RuntimeError, MemoryError)
GuiLauncher = Callable[[list[str]], int]


def build_parser() -> argparse.ArgumentParser:
    from core.io.label_store import STORE_FORMATS
    from core.io.masks import MASK_FORMATS
    from core.cli.segment_large import add_arguments, add_convert_command

    parser = argparse.ArgumentParser(
        prog="unetseg",
        description="UNetSeg: segment images with UNets. With no command, the desktop app starts.",
    )
    parser.add_argument("--version", action="version", version=f"unetseg {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("open", help="start the desktop app with these images open")
    p.add_argument("images", nargs="*", help="image files or folders")
    p.add_argument("--startup-timing", action="store_true", help="print the time until the window is shown")
    p.add_argument("--quit-after", type=float, metavar="SECONDS", help=argparse.SUPPRESS)

    p = sub.add_parser("segment", help="segment images and write masks")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="folder for the masks")
    p.add_argument("--model", default="small", help="small, large, or a weights file (default: small)")
    p.add_argument("--format", nargs="+", default=["index"], choices=(*MASK_FORMATS, *STORE_FORMATS), metavar="FMT",
                   help=f"one or more of: {' '.join((*MASK_FORMATS, *STORE_FORMATS))} (default: index; "
                        "ome-tiff and ome-zarr work for images of any size)")
    _add_object_options(p)
    p.add_argument("--tile", type=int, default=None, metavar="N",
                   help="tile size in pixels fed to the network (0: whole image at once)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--opacity", type=float, default=0.5, help="mask opacity for the overlay format (0-1)")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="average the 8 flips/rotations (8x the work; default: the model's own setting)")
    p.add_argument("--channels", type=channels_option, default=None, metavar="I,J,...",
                   help="the image channels the model reads, in order, e.g. 0,2 (default: all of them, or "
                        "those the model was trained on)")
    p.add_argument("--refine", action=argparse.BooleanOptionalAction, default=None,
                   help="snap mask edges to the image's edges with a guided filter "
                        "(default: the model's calibrated setting; see `unetseg calibrate`)")
    add_arguments(p)
    from core.cli.segment_stack import add_stack_arguments

    add_stack_arguments(p)
    add_convert_command(sub)

    p = sub.add_parser("convert-mask", help="convert a mask file from any mask format to another")
    p.add_argument("input", metavar="IN", help="a mask file in any format (see --format)")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="the file to write, or an existing folder for the format's full layout")
    p.add_argument("--format", required=True, choices=MASK_FORMATS, metavar="FMT",
                   help=f"one of: {' '.join(MASK_FORMATS)}")
    p.add_argument("--image", default=None, metavar="IMAGE",
                   help="the mask's image: its size (YOLO, ImageJ), its entry in a COCO file, the overlay")
    p.add_argument("--classes", default=None, metavar="JSON", help="class list (classes.json) for names and colours")
    p.add_argument("--opacity", type=float, default=0.5, help="mask opacity for the overlay format (0-1)")
    _add_object_options(p)

    p = sub.add_parser("info", help="describe a model and the devices this machine offers")
    p.add_argument("model", nargs="?", default=None, help="small, large, or a weights file")
    p.add_argument("--json", action="store_true", help="print the full metadata as JSON (for scripts)")

    from core.cli.training import add_training_commands
    from core.cli.measure import add_measure_command

    add_training_commands(sub)
    add_measure_command(sub)
    return parser


def _add_object_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--coco-semantic", action="store_true",
                   help="COCO: one annotation per class and image instead of one per object")
    p.add_argument("--min-area", type=int, default=1, metavar="PX",
                   help="object formats: drop objects smaller than this many pixels (default: 1)")
    p.add_argument("--tolerance", type=float, default=0.5, metavar="PX",
                   help="object formats: how far a simplified outline may stray (default: 0.5; 0: exact)")


def object_options(args: argparse.Namespace):
    from core.io.objects import ObjectOptions

    return ObjectOptions(min_area=args.min_area, tolerance=args.tolerance)


def main(argv: Sequence[str] | None = None, launch_gui: GuiLauncher | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in _commands() and _looks_like_path(argv[0])):
        argv = ["open", *argv]  # `unetseg` and `unetseg image.png` open the app
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "open":
            if launch_gui is None:
                print("error: the desktop app is started by the `unetseg` command, not `python -m core`.",
                      file=sys.stderr)
                return 2
            return launch_gui(argv[1:])
        return int(args.handler(args) if hasattr(args, "handler") else COMMANDS[args.command](args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except EXPECTED_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _commands() -> set[str]:
    return {"open", "segment", "convert", "convert-mask", "info", "train", "calibrate", "self-test", "generate", "measure",
            "-h", "--help", "--version"}


def _looks_like_path(arg: str) -> bool:
    from core.io.images import is_image_path

    return Path(arg).exists() or is_image_path(arg)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("unetseg")
    except Exception:
        return "dev"


# --------------------------------------------------------------------------- segment


def expand_inputs(inputs: Sequence[str]) -> list[Path]:
    """Files as given and the images inside folders, each once, in order."""
    from core.io.images import list_images

    seen, out = set(), []
    for raw in inputs:
        path = Path(raw)
        for p in list_images(path) if path.is_dir() else [path]:
            key = str(p.resolve()) if p.exists() else str(p)
            if key not in seen:
                seen.add(key)
                out.append(p)
    return out


def cmd_segment(args: argparse.Namespace) -> int:
    from core.cli import segment_large, segment_stack

    stacks, plain = segment_stack.split_inputs(args)
    if stacks:  # stacks (and any 2-D images beside them) share one batch writer: one coco.json
        return segment_stack.run(args, stacks, plain)
    if segment_large.wants_stores(args):  # ome-tiff/ome-zarr: any size, streamed (then the rest here)
        return segment_large.run(args, cmd_segment)
    return segment_images(args, expand_inputs(args.inputs))


def segment_images(args: argparse.Namespace, inputs: list[Path], seg=None, writer=None,
                   stems: list[str] | None = None) -> int:
    """Segment 2-D images in memory into every format of ``writer`` (or args.format), then close it;
    ``stems``: their output stems (default: unique among ``inputs``)."""
    from tqdm import tqdm

    from core.segment.batch_writer import BatchWriter, write_batch
    from core.segment.inference import Segmenter
    from core.model.optimize import reuse_freed_memory

    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not 0.0 <= args.opacity <= 1.0:
        raise ValueError(f"--opacity must be between 0 and 1, got {args.opacity}")
    if not inputs:
        raise ValueError("no images found in the given inputs")
    if seg is None:
        seg = Segmenter.load(args.model, device=args.device,
                             warn=lambda m: tqdm.write(f"warning: {m}", file=sys.stderr))
        print(f"model: {seg.describe()}", file=sys.stderr)
    if writer is None:
        writer = BatchWriter(out_dir, args.format, seg.classes, opacity=args.opacity,
                             coco_semantic=args.coco_semantic, objects=object_options(args))
    with tqdm(total=len(inputs), unit="image", disable=None, file=sys.stderr, dynamic_ncols=True) as bar:
        jobs = [(path, stem, _segmenter_job(args, seg, path, bar))
                for path, stem in zip(inputs, stems or unique_stems(inputs))]
        with reuse_freed_memory():  # one warm heap for the whole batch instead of one per image
            result = write_batch(writer, jobs, progress=lambda done, total: bar.update(1))
    for image, error in result.failed:
        tqdm.write(f"{image}: {_without_name(str(error), image)}", file=sys.stderr)
    for image, _fmt, error in result.format_failed:
        tqdm.write(f"{image}: {_without_name(str(error), image)}", file=sys.stderr)
    for error in result.collection_errors:  # a collection file that could not be written
        tqdm.write(str(error), file=sys.stderr)
    failures = result.total - result.done
    print(f"segmented {result.done} of {len(inputs)} image(s) into {out_dir}" + (f"; {failures} failed" if failures else "")
          + format_failures(result.format_failed), file=sys.stderr)
    return 1 if result.errors else 0


def format_failures(format_failed) -> str:
    """The summary's tail: per format, on how many images (and which) it was not written."""
    by_format: dict[str, list[str]] = {}
    for image, fmt, _error in format_failed:
        by_format.setdefault(fmt, []).append(Path(image).name)
    parts = [f"{fmt} not written for {len(names)} image(s): {', '.join(names[:3])}"
             + (f" and {len(names) - 3} more" if len(names) > 3 else "") for fmt, names in by_format.items()]
    return "".join(f"; {p}" for p in parts)


def _segmenter_job(args: argparse.Namespace, seg, path: Path, bar) -> Callable:
    """What the batch writer calls for one image: load and segment it (tile progress below)."""

    def produce():
        from tqdm import tqdm

        from core.io.channels import nan_note
        from core.io.images import load_image

        from core.segment.batch_writer import ImageResult

        bar.set_postfix_str(path.name[:40])
        image = load_image(path, axes=getattr(args, "axes", None))
        if image.nan_count:
            tqdm.write(f"warning: {path.name}: {nan_note(image.nan_count)}", file=sys.stderr)
        with tqdm(unit="tile", leave=False, disable=None, file=sys.stderr, desc=path.name[:20]) as tiles:

            def progress(done: int, total: int) -> None:
                tiles.total = total
                tiles.n = done
                tiles.refresh()

            labels = seg.segment(seg.image_of(image), tile_size=args.tile, progress=progress, tta=args.tta,
                                 refine=args.refine, stats=_file_statistics(seg, path, args.channels,
                                                                            getattr(args, "axes", None)),
                                 channels=args.channels)
        return ImageResult(labels, image.rgb, raw=image)

    return produce


def _file_statistics(seg, path: Path, channels, axes: str | None = None):
    """A raw-channel model scales a file by the statistics its streamed run would use (a pyramid's
    coarse level), so `segment` gives the same mask whatever the output format; None otherwise."""
    if not seg.reads_raw:
        return None
    from core.io.sources import open_source

    with open_source(path, axes) as source:
        return seg.source_statistics(source, channels)


def _without_name(text: str, path: Path) -> str:
    """The error's sentence without its file-name prefix: the line starts with the path as given."""
    return text[len(path.name) + 2:] if text.startswith(f"{path.name}: ") else text


# --------------------------------------------------------------------------- info


def cmd_info(args: argparse.Namespace) -> int:
    """A readable summary per model (core.model.info), or with ``--json`` the full metadata."""
    from core.segment.inference import device_report
    from core.model.info import render_text, to_json

    names = [args.model] if args.model is not None else _installed_builtins()
    infos = [_model_info(name) for name in names]
    if getattr(args, "json", False):
        print(to_json(infos, device_report()))
        return 0
    for info in infos:
        print(info["error"] if "error" in info else render_text(info))
        print()
    print("devices:")
    for key, value in device_report().items():
        print(f"  {key}: {value}")
    return 0


def _installed_builtins() -> list[str]:
    from core.resources import BUILTIN_MODELS

    return list(BUILTIN_MODELS)


def _model_info(name: str) -> dict:
    from core.segment.inference import Segmenter
    from core.model.info import model_info
    from core.resources import BUILTIN_MODELS, builtin_model_path

    if name in BUILTIN_MODELS and not builtin_model_path(name).is_file():
        return {"name": name, "error": f"model {name}: not installed ({builtin_model_path(name)} is missing)"}
    seg = Segmenter.load(name, device="cpu")
    return model_info(seg.checkpoint, seg.name)


# --------------------------------------------------------------------------- convert-mask


def cmd_convert_mask(args: argparse.Namespace) -> int:
    """Read IN in whatever format it is, write it as --format (a file, or a folder's layout)."""
    import numpy as np

    from core.segment.batch_writer import BatchWriter, write_one
    from core.classes import default_classes
    from core.io.masks import read_mask

    source, out = Path(args.input), Path(args.output)
    classes = classes_file(Path(args.classes)) if args.classes else None
    rgb = shape = loaded = None
    if args.image:
        from core.io.images import load_image

        loaded = load_image(args.image)
        rgb = loaded.rgb
        shape = rgb.shape[:2]
    if args.format == "measurements" and loaded is None:
        raise ValueError("the measurements format measures the image's pixels: pass --image")
    if args.format == "overlay" and rgb is None:
        raise ValueError("the overlay format needs the image: pass --image")
    labels = read_mask(source, shape=shape, classes=classes,
                       image_name=Path(args.image).name if args.image else None)
    top = int(labels.max()) if labels.size else 0
    if classes is None or max(c.id for c in classes) < top:
        known = {c.id: c for c in classes or ()}
        classes = [known.get(c.id, c) for c in default_classes(top + 1)]
    image = args.image or source.with_suffix(".png").name
    stem = Path(args.image).stem if args.image else source.stem
    if out.is_dir():
        writer = BatchWriter(out, [args.format], classes, opacity=args.opacity,
                             coco_semantic=args.coco_semantic, objects=object_options(args))
        writer.add(image, stem, np.asarray(labels), rgb, raw=loaded)
        written = writer.close()
    else:
        written = write_one(out, args.format, labels, classes, image_rgb=rgb, opacity=args.opacity,
                            image_path=image, objects=object_options(args), coco_semantic=args.coco_semantic,
                            raw=loaded)
    print(f"wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    return 0


def classes_file(path: Path):
    import json

    from core.classes import normalize_classes
    from core.io.masks import MaskError

    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise MaskError(f"{path.name}: is not a readable class list ({exc}).") from None
    raw = raw.get("classes", raw) if isinstance(raw, dict) else raw
    if not isinstance(raw, list) or not raw:
        raise MaskError(f"{path.name}: must hold a list of classes.")
    return normalize_classes(raw, len(raw))


COMMANDS = {"segment": cmd_segment, "convert-mask": cmd_convert_mask, "info": cmd_info}


if __name__ == "__main__":  # python -m core.cli.main
    sys.exit(main())
