"""What a trained checkpoint records about how it was made, so two runs can be compared.

Why: a command typed with the build machine's absolute paths (``/tmp/data/images``) cannot be
compared with the README's (``data/shapes/images``), and two folders of the same name may hold
different scenes.  So the command is recorded with its paths relative to the working directory,
and the data set by identity: how many image/mask pairs, and a hash of their sorted file names
and image dimensions (not file sizes or bytes: those change with the PNG encoder's version, while
``unetseg generate`` gives the same names and dimensions for a seed and count everywhere).
"""

from __future__ import annotations

import hashlib
import os
import shlex
from pathlib import Path
from typing import Sequence

PATH_OPTIONS = ("--images", "--masks", "--init", "--teacher", "--classes", "-o", "--output")
BUILTIN_NAMES = ("small", "large")


def command_line(argv: Sequence[str], cwd: str | os.PathLike | None = None) -> str:
    """``unetseg ARGS`` with every path option (``--images DIR``, ``-o FILE``...) and the
    positional model of ``calibrate`` written relative to ``cwd``; built-in model names as is."""
    cwd = Path(cwd or os.getcwd())
    out, expect_path = [], False
    for i, arg in enumerate(argv):
        if expect_path:
            out.append(_relative(arg, cwd))
            expect_path = False
            continue
        name, eq, value = arg.partition("=")
        if arg in PATH_OPTIONS:
            expect_path = True
            out.append(arg)
        elif eq and name in PATH_OPTIONS:
            out.append(f"{name}={_relative(value, cwd)}")
        elif i == 1 and argv[0] == "calibrate" and not arg.startswith("-"):
            out.append(_relative(arg, cwd))
        else:
            out.append(arg)
    return "unetseg " + " ".join(shlex.quote(a) for a in out)


def _relative(arg: str, cwd: Path) -> str:
    if arg in BUILTIN_NAMES or not arg:
        return arg
    return Path(os.path.relpath(cwd / Path(arg).expanduser(), cwd)).as_posix()


def dataset_identity(pairs: Sequence[tuple[Path, Path]]) -> dict:
    """``{"images": N, "files_sha256": ...}`` over the sorted ``image mask WxH`` lines of ``pairs``
    (names, not folders, so a moved copy of the same data has the same identity)."""
    lines = sorted(f"{img.name}\t{mask.name}\t{_dimensions(img)}" for img, mask in pairs)
    digest = hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()
    return {"images": len(lines), "files_sha256": digest[:16],
            "hashed": "sorted image and mask file names and image dimensions"}


def _dimensions(image: Path) -> str:
    """``WxH`` from the file's header (cheap); ``?`` for a file Pillow cannot size."""
    from PIL import Image

    try:
        with Image.open(image) as im:
            return f"{im.width}x{im.height}"
    except (OSError, ValueError, Image.DecompressionBombError):
        return "?"


def trained_description(meta: dict, source: str) -> dict:
    """A description and menu summary for a model this machine just trained, from its own record:
    what it recognises (its classes), what it was trained on, and its validation mIoU."""
    training = meta.get("training") if isinstance(meta.get("training"), dict) else {}
    names = [c.get("name", "?") for c in meta.get("classes", []) if isinstance(c, dict)][1:]
    shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    images = training.get("train_images", 0) + training.get("val_images", 0)
    init = training.get("init") if isinstance(training.get("init"), dict) else None
    start = f", fine-tuned from {Path(str(init.get('model'))).name}" if init else ""
    if isinstance(training.get("val_miou"), (int, float)):
        quality = f" Validation mIoU {training['val_miou']:.3f} on {training.get('val_images', 0)} held-out images."
    elif isinstance(training.get("train_miou"), (int, float)):
        quality = f" mIoU {training['train_miou']:.3f} on its own training images (none were held out)."
    else:
        quality = ""
    return {"description": f"Recognises {shown or 'its classes'}. Trained on {images} annotated images from "
                           f"{source}{start}.{quality}",
            "summary": f"trained on {images} images of {Path(source).name or source}"}


def record_dataset(path: Path, section: str, pairs: Sequence[tuple[Path, Path]], source: str) -> None:
    """Add the data set's identity to the ``section`` ("training" or "calibration") record of the
    checkpoint at ``path``, and describe a newly trained one (``source``: where the images came
    from).  The weights are copied byte for byte (core.model.metadata_edit)."""
    from core.model.metadata_edit import read_metadata, update_metadata

    meta = read_metadata(path)
    record = meta.get(section)
    if not isinstance(record, dict):
        return
    changes = {section: {**record, "dataset": dataset_identity(pairs)}}
    if section == "training" and not meta.get("description"):
        changes.update(trained_description({**meta, **changes}, source))
    update_metadata(path, changes)
