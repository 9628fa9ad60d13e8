"""``unetseg train --instances [--time-budget S]``: a model that separates touching objects
(core.training.instance_training), with the same options as ``unetseg train``."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace


def train_instances(args: argparse.Namespace) -> int:
    from core.training.loop import classes_for
    from core.training.record import command_line, record_dataset

    named = classes_for(args.masks, args.classes)
    command = command_line(sys.argv[1:])
    if args.time_budget is not None:
        result, data = _timed(args, named, command)
        kept = result.kept
        why = (f"held-out mIoU {kept.held_out_miou:.4f}" if kept.held_out_miou is not None
               else "the newest; too few strokes to hold some out")
        summary = (f"kept snapshot {kept.index} of {result.snapshots} ({kept.seconds:.0f} s of training, {kept.steps} "
                   f"steps, {why})")
        path = result.path
    else:
        result, data = _epochs(args, named, command)
        if result.path is None:
            print("no checkpoint was written", file=sys.stderr)
            return 1
        summary = f"kept epoch {result.best_epoch}"
        path = result.path
    record_dataset(path, "training", data.pairs, args.images.as_posix())
    spec = data.spec
    skipped = len(data.skipped)
    print(f"{summary} from {data.built.objects} painted objects in {len(data.pairs)} image"
          f"{'s' if len(data.pairs) != 1 else ''}; {skipped} skipped; objects: seeds of classes "
          f"{', '.join(map(str, spec.object_classes))} grown {spec.grow} px into boundary class {spec.boundary_class}; "
          f"saved {path}")
    return 0


def _timed(args: argparse.Namespace, named, command: str):
    from core.training.instance_training import train_instances_timed
    from core.training.live import LiveConfig

    if args.time_budget <= 0:
        raise ValueError(f"--time-budget must be a positive number of seconds, got {args.time_budget:g}")
    live = LiveConfig()
    init = None if str(args.init).lower() == "none" else args.init or (args.arch if live.init else None)
    live = replace(live, arch=args.arch, init=init, patch=_given(args.patch, live.patch),
                   batch=_given(args.batch, live.batch), lr=_given(args.lr, live.lr),
                   augment=_given(args.augment, live.augment), seed=args.seed, device=args.device)

    def shown(snap) -> None:
        held = "" if snap.held_out_miou is None else f"  held-out mIoU {snap.held_out_miou:.3f}"
        print(f"{snap.seconds:6.1f} s  step {snap.steps}  loss {snap.loss:.4f}{held}", file=sys.stderr)

    return train_instances_timed(args.images, args.masks, args.output, args.time_budget, live, named,
                                 log=lambda m: print(m, file=sys.stderr), on_snapshot=shown,
                                 extra={"command": command})


def _epochs(args: argparse.Namespace, named, command: str):
    from tqdm import tqdm

    from core.training.instance_training import train_instances_epochs
    from core.training.loop import TrainConfig

    defaults = TrainConfig(images=args.images, masks=args.masks, out=args.output)
    config = TrainConfig(
        images=args.images, masks=args.masks, out=args.output, arch=args.arch, init=args.init,
        epochs=args.epochs, patch=_given(args.patch, defaults.patch), batch=_given(args.batch, defaults.batch),
        lr=_given(args.lr, defaults.lr), val_fraction=args.val_fraction, seed=args.seed, dice=args.dice,
        lovasz=args.lovasz, augment=bool(args.augment), teacher=args.teacher, tta=args.tta,
        calibrate=False, device=args.device, steps_per_epoch=args.steps_per_epoch, command=command,
        channels=args.channels)
    bar = tqdm(unit="step", disable=None, file=sys.stderr, dynamic_ncols=True)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    def on_epoch(r) -> None:
        scored = "val" if r.held_out else "train"
        tqdm.write(f"epoch {r.epoch}/{r.epochs}  loss {r.train_loss:.4f}  {scored} mIoU {r.val_miou:.4f}"
                   f"{' *' if r.improved else ''}  {r.seconds:.0f}s", file=sys.stderr)

    try:
        return train_instances_epochs(config, named, log=lambda m: tqdm.write(m, file=sys.stderr),
                                      progress=progress, on_epoch=on_epoch)
    finally:
        bar.close()


def _given(value, default):
    return default if value is None else value
