"""One place that knows where bundled files live, from source and from a PyInstaller bundle.

From source that is the repository's ``resources/``; in the packaged app (build.spec) the same
tree is bundled as ``_internal/resources``, i.e. ``sys._MEIPASS/resources``.
"""

from __future__ import annotations

import sys
from pathlib import Path

BUILTIN_MODELS = ("small", "large")


def resource_root() -> Path:
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def resource_path(*parts: str) -> Path:
    return resource_root().joinpath(*parts)


def app_icon_path() -> Path:
    """The application icon (256x256 PNG; ``resources/icons/make_icon.py`` draws it)."""
    return resource_path("icons", "unetseg.png")


def builtin_model_path(name: str) -> Path:
    return resource_path("models", f"{name}.safetensors")


def sample_images() -> list[Path]:
    folder = resource_path("samples")
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.png") if not p.stem.endswith("_mask"))

