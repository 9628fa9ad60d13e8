"""Model menu texts that say what each model is: "Built-in Small: demo, synthetic shapes".

Read from the weights file's header (core.model.summary), so the menu can say it before torch
has loaded; a file without a description says "no description".
"""

from __future__ import annotations

import os
from pathlib import Path

from core.model.summary import peek_summary
from core.resources import builtin_model_path


def builtin_label(name: str) -> str:
    """Menu text of a built-in model, with its accelerator: "Built-in &Small: demo, synthetic shapes"."""
    path = builtin_model_path(name)
    text = f"Built-in &{name.title()}"
    return f"{text}: {peek_summary(path)}" if path.is_file() else text


def weights_label(path: str | os.PathLike) -> str:
    """Menu text of a weights file: its name and summary ("cells.safetensors: no description")."""
    return f"{Path(path).name}: {peek_summary(path)}".replace("&", "&&")
