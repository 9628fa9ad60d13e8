"""How the app names a model and whether a built-in one is installed (file system only)."""

from __future__ import annotations

from pathlib import Path

from core.resources import BUILTIN_MODELS, builtin_model_path


def builtin_status(name: str) -> tuple[bool, str]:
    """(installed?, tooltip) for a built-in model."""
    path = builtin_model_path(name)
    if path.is_file():
        return True, f"Built-in {name} model ({path.name})"
    return False, (f"Not installed: {path} is missing (run `make train-models`), "
                   "or load a weights file with Model > Load Weights…")


def model_label(spec: str) -> str:
    return spec if spec in BUILTIN_MODELS else Path(spec).name
