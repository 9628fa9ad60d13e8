"""What the GUI needs of a segmenter: core.segment.inference.Segmenter has it, and so do test fakes.

Typed so the controllers call it directly instead of probing with getattr/hasattr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from core.classes import ClassInfo


class Weights(Protocol):
    path: Path | None  # the weights file, when the model came from one


class SegmenterLike(Protocol):
    classes: list[ClassInfo]
    device: str  # where it runs, as the status bar shows it
    arch: str  # "small" or "large": what training can fine-tune
    tta: bool  # the model's own default for test-time augmentation
    refine: Any  # its calibrated edge refinement, or None
    checkpoint: Weights | None

    def describe(self) -> str: ...

    def segment(self, image: np.ndarray, tile_size: int | None = None,
                progress: Callable[[int, int], None] | None = None,
                should_cancel: Callable[[], bool] | None = None,
                on_tile: Callable[[int, int, np.ndarray], None] | None = None,
                warn: Callable[[str], None] | None = None, tta: bool | None = None,
                refine: Any = None) -> np.ndarray: ...
