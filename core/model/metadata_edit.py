"""Changing what a ``.safetensors`` checkpoint says about itself without touching its weights.

Why: a description, a quality figure or a note on how a model was made is metadata; rewriting
the weights for it (building the model and saving its ``state_dict``, as calibration does)
could change dtypes or key order and would make "the weights are unchanged" a claim instead of
a fact.  Here every tensor is copied as the raw bytes safetensors stored, so the weights stay
bit for bit what they were.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from core.atomic import atomic_path
from core.model.checkpoints import META_KEY, CheckpointError, read_safetensors


def read_metadata(path: str | os.PathLike) -> dict:
    """The checkpoint's ``unetseg`` metadata as stored (``{}`` when it has none)."""
    return _read(Path(path))[1]


def update_metadata(path: str | os.PathLike, changes: Mapping[str, Any],
                    dst: str | os.PathLike | None = None) -> Path:
    """Write ``path``'s tensors unchanged with its metadata updated by ``changes`` (a key set to
    ``None`` is removed) to ``dst`` (default: ``path`` itself, replaced atomically)."""
    from safetensors.torch import save_file

    src = Path(path)
    tensors, meta = _read(src)
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    target = Path(dst) if dst is not None else src
    with atomic_path(target) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(meta)})
    return target


def _read(path: Path) -> tuple[dict, dict]:
    if path.suffix.lower() != ".safetensors":
        raise CheckpointError(f"{path.name}: only .safetensors files carry metadata that can be edited.")
    return read_safetensors(path)
