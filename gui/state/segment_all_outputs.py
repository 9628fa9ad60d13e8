"""What Segment All writes beside each image, in words, from the naming rule (core.io.mask_naming).

Asked before Segment All replaces masks, so the user knows which files change: a stack gets a
label stack, not a PNG, and a model that separates objects also writes their labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from core.io.mask_naming import (chunked_mask_path, default_mask_path, instances_path, stack_instances_path,
                                 stack_mask_path)

if TYPE_CHECKING:
    from gui.state.image_store import ImageEntry

NAME = Path("<name>.png")  # stands for any image: the files are named from its stem
KINDS = {  # kind: (what it is called, its mask file, its objects file or None)
    "image": ("an image", default_mask_path(NAME).name, instances_path(NAME).name),
    "stack": ("a stack", stack_mask_path(NAME).name, stack_instances_path(NAME).name),
    "slide": ("a whole slide", chunked_mask_path(NAME).name, None),
}


def kind_of(entry: "ImageEntry") -> str:
    from gui.state.stack_loading import is_stack

    return "stack" if is_stack(entry) else "slide" if entry.source is not None else "image"


def saved_as(entries: Iterable["ImageEntry"], objects: bool) -> str:
    """"Segment All saves each result beside its image as <name>_mask.png." (with the objects'
    file when the model separates objects; one clause per kind when stacks or slides are among them)."""
    kinds = [k for k in KINDS if k in {kind_of(e) for e in entries}]

    def files(kind: str) -> str:
        _, mask, labels = KINDS[kind]
        return f"{mask} and its objects as {labels}" if objects and labels else mask

    if len(kinds) <= 1:
        return f"Segment All saves each result beside its image as {files(kinds[0] if kinds else 'image')}."
    clauses = "; ".join(f"{KINDS[k][0]} as {files(k)}" for k in kinds)
    return f"Segment All saves each result beside its image: {clauses}."
