"""Staging the app's annotated images for core.training.loop, which reads one images folder and one
masks folder paired by stem.

The app saves each mask beside its image (``<stem>_mask.png``) and trains on the images it
lists, not on everything in the folder (the masks themselves are image files too), so a
temporary pair of folders holds links to exactly those files, under their own names so that
training errors name files the user knows.  The document's class list goes in as
``classes.json`` so the trained model keeps the app's class names and colours.  Qt-free.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from core.atomic import atomic_path, write_text
from core.classes import ClassInfo, classes_to_json, normalize_classes
from core.io.masks import MaskError, default_mask_path, read_mask

Pair = tuple[Path, Path]
MODEL_SUFFIX = ".safetensors"


class StageError(ValueError):
    """The pairs cannot be staged; ``str()`` is one sentence naming the file."""


def annotated_pairs(images: Iterable[str | os.PathLike],
                    mask_for: Callable[[Path], Path] = default_mask_path) -> tuple[list[Pair], list[Path]]:
    """(image, mask) for every image whose saved mask exists, and the images without one."""
    pairs, missing = [], []
    for image in (Path(p) for p in images):
        mask = Path(mask_for(image))
        if mask.is_file():
            pairs.append((image, mask))
        else:
            missing.append(image)
    return pairs, missing


def free_model_path(folder: str | os.PathLike, stem: str = "unetseg_model") -> Path:
    """``<folder>/<stem>.safetensors``, or ``<stem>-2``, ``-3``… when taken: a new training run
    never replaces an earlier model (perhaps the one being fine-tuned) unasked."""
    folder = Path(folder)
    candidate, n = folder / f"{stem}{MODEL_SUFFIX}", 2
    while candidate.exists():
        candidate, n = folder / f"{stem}-{n}{MODEL_SUFFIX}", n + 1
    return candidate


def link_or_copy(src: Path, dst: Path) -> str:
    """Make ``dst`` show ``src``: a symlink, else a hard link (Windows without the symlink
    privilege), else a copy (another volume).  Returns which one was made."""
    src = Path(src).resolve()
    try:
        os.symlink(src, dst)
        return "symlink"
    except (OSError, NotImplementedError):
        pass
    try:
        os.link(src, dst)
        return "hardlink"
    except OSError:
        shutil.copyfile(src, dst)
        return "copy"


def training_classes(classes: Sequence[ClassInfo], at_least: int = 2) -> list[ClassInfo]:
    """Ids 0..max with no gaps (a model's output channels), keeping the given names/colours;
    ids up to ``at_least - 1`` that have no class get a default one."""
    top = max((c.id for c in classes), default=1)
    return normalize_classes(classes_to_json(classes), max(top + 1, at_least, 2))


def highest_class_id(masks: Iterable[Path], classes: Sequence[ClassInfo] | None = None) -> int:
    """The largest class id any readable mask uses (unreadable ones are training's to report)."""
    top = 0
    for mask in masks:
        try:
            labels = read_mask(mask, classes=classes)
        except (MaskError, OSError):
            continue
        if labels.size:
            top = max(top, int(labels.max()))
    return top


def stage_pairs(pairs: Sequence[Pair], root: str | os.PathLike,
                classes: Sequence[ClassInfo] | None = None) -> tuple[Path, Path]:
    """Fill ``root/images`` and ``root/masks`` (created) with the pairs; returns the two folders.

    Each image keeps its name and its mask becomes ``<stem>_mask<suffix>``; stems that repeat
    (same name in two folders, or ``a.png`` beside ``a.tif``) get ``-2``, ``-3``….  ``classes``
    becomes ``masks/classes.json``, extended with default classes up to the highest id the
    masks use: images opened at different times can hold classes the current one lacks.
    """
    if not pairs:
        raise StageError("There are no annotated images to train on.")
    root = Path(root)
    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    for image, mask in pairs:
        image, mask = Path(image), Path(mask)
        for path, what in ((image, "image"), (mask, "mask")):
            if not path.is_file():
                raise StageError(f"{path.name}: the {what} file is missing ({path}).")
        stem, n = image.stem, 2
        while stem.lower() in taken:  # case-insensitive: macOS and Windows file systems
            stem, n = f"{image.stem}-{n}", n + 1
        taken.add(stem.lower())
        link_or_copy(image, images / f"{stem}{image.suffix}")
        link_or_copy(mask, masks / f"{stem}_mask{mask.suffix}")
    if classes:
        needed = highest_class_id((mask for _, mask in pairs), classes) + 1
        write_text(masks / "classes.json",
                   json.dumps(classes_to_json(training_classes(classes, needed)), indent=1))
    return images, masks


@contextlib.contextmanager
def staged_pairs(pairs: Sequence[Pair], classes: Sequence[ClassInfo] | None = None) -> Iterator[tuple[Path, Path]]:
    """``stage_pairs`` in a temporary folder that is removed afterwards (the originals stay)."""
    with tempfile.TemporaryDirectory(prefix="unetseg-train-", ignore_cleanup_errors=True) as root:
        yield stage_pairs(pairs, root, classes)


def copy_model(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy a weights file atomically (Save Copy As): a failed copy leaves no partial file."""
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        return dst
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return dst
