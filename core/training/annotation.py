"""What every training path agrees on without needing torch: the id of "not annotated" in a
stroke or training mask, and the error that names an unusable file (the app imports these at
start-up, before torch is loaded), and the one rule that pairs images with their annotations."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

IGNORE = 255


class TrainingDataError(ValueError):
    """Unusable training data; ``str()`` is one sentence naming the file."""


def annotated_images(images_dir: Path, masks_dir: Path, find: Callable[[Path, Path], Any]) -> tuple[list[tuple[Path, Any]], list[str]]:
    """(image, ``find(masks_dir, image)``) for each image it finds an annotation for, and the names
    of the images it finds none for: the folder rule every training command shares."""
    from core.io.images import list_images

    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    for folder, what in ((images_dir, "images"), (masks_dir, "masks")):
        if not folder.is_dir():
            raise TrainingDataError(f"{folder}: the {what} folder does not exist.")
    images = list_images(images_dir)
    if not images:
        raise TrainingDataError(f"{images_dir}: the images folder holds no images.")
    pairs, missing = [], []
    for image in images:
        found = find(masks_dir, image)
        if found is None:
            missing.append(image.name)
        else:
            pairs.append((image, found))
    return pairs, missing
