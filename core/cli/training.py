"""``unetseg train``, ``unetseg calibrate``, ``unetseg generate`` and ``unetseg self-test``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.io.channels import channels_option


def add_training_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model on images and their masks")
    p.add_argument("--images", required=True, type=Path, help="folder of images")
    p.add_argument("--masks", required=True, type=Path, help="folder of masks with the same stems")
    p.add_argument("--arch", choices=("small", "large"), default="small")
    p.add_argument("--init", default=None, help="start from small, large or a weights file (fine-tuning); with "
                                                "--time-budget the default is the built-in --arch model, and none "
                                                "starts from scratch")
    p.add_argument("--epochs", type=int, default=None, help="passes over the data (default 30; not with "
                                                            "--time-budget)")
    p.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="learn from strokes (255 = not annotated) or masks for at most this wall time, with the "
                        "live-training defaults, keep the best weights and write them (--epochs, "
                        "--steps-per-epoch, --teacher and --calibrate do not apply and are refused)")
    p.add_argument("--patch", type=int, default=None, help="crop size in pixels (multiple of 8; default 128, "
                                                           "with --time-budget the live-training default)")
    p.add_argument("--batch", type=int, default=None, help="crops per step (default 16, or the live default)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 3e-3, or the live default)")
    p.add_argument("--val-fraction", type=float, default=None,
                   help="share of the images held out to choose the epoch (default 0.1); with --time-budget, "
                        "the share of each class's strokes held out to choose the snapshot (default 0.2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dice", action="store_true", help="add a soft Dice term to the cross-entropy")
    p.add_argument("--lovasz", action="store_true", help="add the Lovasz-softmax loss (optimises IoU directly)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="draw each crop at a random scale (0.7-1.4x) with random contrast, brightness, colour "
                        "balance, gamma, blur and noise (hue is kept; default off, with --time-budget the "
                        "live default)")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="make the saved model average its 8 flips/rotations when segmenting (8x the work; "
                        "default: as the --init model, else off)")
    p.add_argument("--calibrate", action=argparse.BooleanOptionalAction, default=None,
                   help="afterwards, fit edge refinement on the validation images and keep it if it helps "
                        "(default on; not with --time-budget)")
    p.add_argument("--teacher", default=None, help="distil from this model (small, large or a weights file)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--steps-per-epoch", type=int, default=None)
    p.add_argument("--classes", type=Path, default=None, help="JSON list of class names/colours")
    p.add_argument("--channels", type=channels_option, default=None, metavar="I,J,...",
                   help="train on these image channels, in this order (e.g. 0,2); the model gets one input per "
                        "channel and reads the raw values (default: 8-bit RGB for photos, else every channel)")
    p.add_argument("--instances", action="store_true",
                   help="learn to separate touching objects from label images (0 = background, 65535 = not "
                        "annotated, other values one object each; <stem>_instances.tif or <stem>.tif in --masks, "
                        "with optional <stem>_strokes.png for background strokes and classes)")
    p.add_argument("-o", "--output", required=True, type=Path, help="where to write the .safetensors")
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("calibrate", help="fit a model's edge refinement on annotated images (weights unchanged)")
    p.add_argument("model", help="small, large or a weights file")
    p.add_argument("--images", required=True, type=Path, help="folder of images the model was not trained on")
    p.add_argument("--masks", required=True, type=Path, help="folder of masks with the same stems")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="score with test-time augmentation (default: the model's own setting)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="where to write the calibrated .safetensors (default: replace MODEL's file)")
    p.set_defaults(handler=cmd_calibrate)

    p = sub.add_parser("generate", help="write the synthetic shapes dataset (the built-in models' data)")
    p.add_argument("-o", "--output", required=True, type=Path)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="processes to use (same output)")
    p.add_argument("--appearance", choices=("shapes", "broad"), default="shapes",
                   help="broad: wider backgrounds, colour and camera damage, occlusion (core/training/appearance.py)")
    p.set_defaults(handler=cmd_generate)

    p = sub.add_parser("self-test", help="check the built-in models, every export format and the devices")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.set_defaults(handler=cmd_self_test)


def cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core.training.loop import TrainConfig, train

    if args.patch is not None and (args.patch % 8 or args.patch < 16):
        raise ValueError(f"--patch must be a multiple of 8 and at least 16, got {args.patch}")
    if args.output.suffix.lower() != ".safetensors":
        raise ValueError(f"{args.output.name}: the output must be a .safetensors file")
    if getattr(args, "instances", False):
        from core.cli.instance_training import train_instances

        return train_instances(args)
    if args.time_budget is not None:
        return _train_timed(args)
    defaults = TrainConfig(images=args.images, masks=args.masks, out=args.output)
    config = TrainConfig(
        images=args.images, masks=args.masks, out=args.output, arch=args.arch, init=args.init,
        epochs=_given(args.epochs, defaults.epochs), patch=_given(args.patch, defaults.patch),
        batch=_given(args.batch, defaults.batch), lr=_given(args.lr, defaults.lr),
        val_fraction=_given(args.val_fraction, defaults.val_fraction), seed=args.seed, dice=args.dice,
        lovasz=args.lovasz, augment=bool(args.augment), teacher=args.teacher, tta=args.tta,
        calibrate=_given(args.calibrate, defaults.calibrate), device=args.device, steps_per_epoch=args.steps_per_epoch,
        classes_file=args.classes, command=_command(), channels=args.channels,
    )
    bar = tqdm(unit="step", disable=None, file=sys.stderr, dynamic_ncols=True)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    def on_epoch(r) -> None:
        ious = " ".join(f"{c}:{v:.2f}" for c, v in sorted(r.per_class_iou.items()))
        mark = " *" if r.improved else ""
        scored = "val" if r.held_out else "train"
        tqdm.write(f"epoch {r.epoch}/{r.epochs}  loss {r.train_loss:.4f}  {scored} mIoU {r.val_miou:.4f}{mark}  "
                   f"[{ious}]  {r.seconds:.0f}s", file=sys.stderr)
        bar.set_postfix(loss=f"{r.train_loss:.3f}", mIoU=f"{r.val_miou:.3f}")

    try:
        result = train(config, progress=progress, on_epoch=on_epoch, log=lambda m: tqdm.write(m, file=sys.stderr))
    finally:
        bar.close()
    if result.path is None:
        print("no checkpoint was written", file=sys.stderr)
        return 1
    _record_dataset(result.path, "training", args.images, args.masks)
    scored = "val" if result.selection == "held-out" else "train"
    print(f"kept epoch {result.best_epoch}, {scored} mIoU {result.best_miou:.4f}; saved {result.path}")
    return 0


def _given(value, default):
    return default if value is None else value


# flags of the epoch trainer that learning from strokes for a time cannot honour, and why
NOT_TIMED = {
    "epochs": "--epochs: training stops at the time budget, not after a number of epochs",
    "steps_per_epoch": "--steps-per-epoch: there are no epochs, training stops at the time budget",
    "teacher": "--teacher: distillation is not part of learning from strokes",
    "calibrate": "--calibrate: edge refinement is fitted on whole validation masks, which strokes are not "
                 "(fit it afterwards with unetseg calibrate on annotated images)",
}


def refused_with_time_budget(args: argparse.Namespace) -> str | None:
    """One sentence naming every given flag that ``--time-budget`` cannot honour, or None."""
    given = [flag for flag in NOT_TIMED if getattr(args, flag) is not None and getattr(args, flag) is not False]
    if not given:
        return None
    return "with --time-budget: " + "; ".join(NOT_TIMED[flag] for flag in given) + \
        f". Leave {'it' if len(given) == 1 else 'them'} out."


def _train_timed(args: argparse.Namespace) -> int:
    """``--time-budget``: the live trainer's recipe (core.training.timed), for at most that wall time.
    Every flag is honoured (``--val-fraction`` as the share of strokes held out, ``--tta`` as the
    saved model's setting, ``--no-calibrate`` as it is) or refused with one message naming it."""
    from dataclasses import replace

    from core.training.live import LiveConfig
    from core.training.loop import classes_for
    from core.training.record import record_dataset
    from core.training.timed import stroke_pairs, train_timed

    if args.time_budget <= 0:
        raise ValueError(f"--time-budget must be a positive number of seconds, got {args.time_budget:g}")
    refused = refused_with_time_budget(args)
    if refused:
        raise ValueError(refused)
    live = LiveConfig()
    if args.val_fraction is not None and not 0 <= args.val_fraction < 1:
        raise ValueError(f"--val-fraction must be at least 0 and below 1, got {args.val_fraction:g}")
    # default: the built-in model of the chosen architecture (as the live default); "none": from scratch
    init = None if str(args.init).lower() == "none" else args.init or (args.arch if live.init else None)
    live = replace(live, arch=args.arch, init=init, patch=_given(args.patch, live.patch),
                   batch=_given(args.batch, live.batch), lr=_given(args.lr, live.lr),
                   augment=_given(args.augment, live.augment), seed=args.seed, device=args.device,
                   dice=args.dice, lovasz=args.lovasz, held_out_share=_given(args.val_fraction, live.held_out_share),
                   channels=tuple(args.channels) if args.channels is not None else None)
    classes = classes_for(args.masks, args.classes)

    def shown(snap) -> None:
        held = "" if snap.held_out_miou is None else f"  held-out mIoU {snap.held_out_miou:.3f}"
        print(f"{snap.seconds:6.1f} s  step {snap.steps}  loss {snap.loss:.4f}{held}", file=sys.stderr)

    result = train_timed(args.images, args.masks, args.output, args.time_budget, live, classes,
                         log=lambda m: print(m, file=sys.stderr), on_snapshot=shown,
                         extra={"command": _command()}, tta=args.tta)
    record_dataset(result.path, "training", stroke_pairs(args.images, args.masks)[0], args.images.as_posix())
    kept = result.kept
    print(f"kept snapshot {kept.index} of {result.snapshots} ({kept.seconds:.0f} s of training, {kept.steps} steps, "
          f"{result.why}) from {kept.annotated_pixels} annotated pixels in {kept.images} image"
          f"{'s' if kept.images != 1 else ''}, starting from {result.started_from}; {len(result.skipped)} skipped; "
          f"saved {result.path}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core.segment.calibration import calibrate, write_calibrated
    from core.segment.inference import Segmenter
    from core.training.loop import find_pairs, load_pairs

    seg = Segmenter.load(args.model, device=args.device)
    output = args.output or seg.checkpoint.path
    if output.suffix.lower() != ".safetensors":
        raise ValueError(f"{output.name}: the output must be a .safetensors file (give one with -o)")
    samples, _ = load_pairs(find_pairs(args.images, args.masks), seg.num_classes, seg.classes, raw=seg.reads_raw)
    with tqdm(total=len(samples), unit="image", disable=None, file=sys.stderr) as bar:
        result = calibrate(seg, samples, tta=args.tta, progress=lambda done, total: bar.update(done - bar.n))
    for setting, score in result.scores.items():
        print(f"  {setting}: mIoU {score:.4f}")
    print(result.summary())
    write_calibrated(seg.checkpoint, output, result, command=_command())
    _record_dataset(output, "calibration", args.images, args.masks)
    print(f"saved {output}")
    return 0


def _command() -> str:
    from core.training.record import command_line

    return command_line(sys.argv[1:])


def _record_dataset(path: Path, section: str, images: Path, masks: Path) -> None:
    from core.training.loop import find_pairs
    from core.training.record import record_dataset

    record_dataset(path, section, find_pairs(images, masks), images.as_posix())


def cmd_generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core.atomic import write_text
    from core.classes import classes_to_json
    from core.training.synthetic import SHAPE_CLASSES, write_dataset

    with tqdm(total=args.count, unit="scene", disable=None, file=sys.stderr) as bar:
        images, masks = write_dataset(args.output, args.count, args.seed, workers=args.workers,
                                      appearance=args.appearance,
                                      progress=lambda done, total: bar.update(done - bar.n))
    write_text(args.output / "classes.json", json.dumps(classes_to_json(SHAPE_CLASSES), indent=1))
    print(f"wrote {args.count} scenes: {images} and {masks}")
    return 0


def cmd_self_test(args: argparse.Namespace) -> int:
    from core.cli.selftest import run_self_test

    return run_self_test(device=args.device)
