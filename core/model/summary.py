"""A model's few-word summary for a menu entry, read without torch.

Why: the Model menu is built before torch loads (the window must show in half a second), yet it
should say "Built-in Small: demo, synthetic shapes".  A ``.safetensors`` header is 8 bytes of
length and then JSON, so its metadata can be read with the standard library alone.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any, Mapping

NO_DESCRIPTION = "no description"
META_KEY = "unetseg"
MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit


def description_of(meta: Mapping[str, Any]) -> str:
    text = meta.get("description")
    return text.strip() if isinstance(text, str) and text.strip() else NO_DESCRIPTION


def summary_of(meta: Mapping[str, Any]) -> str:
    """The ``summary`` metadata, else the description's first clause (at most 40 characters)."""
    text = meta.get("summary")
    if isinstance(text, str) and text.strip():
        return text.strip()
    first = description_of(meta).split(". ")[0].split(": ")[0].rstrip(".")
    return first if len(first) <= 40 else first[:39].rstrip() + "…"


def peek_metadata(path: str | os.PathLike) -> dict:
    """The ``unetseg`` metadata of a ``.safetensors`` file from its header (``{}`` for anything
    else: a ``.pt`` file, a damaged file, no metadata)."""
    try:
        with open(Path(path), "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            if not 0 < size <= MAX_HEADER:
                return {}
            header = json.loads(f.read(size))
        meta = json.loads(header.get("__metadata__", {}).get(META_KEY, "{}"))
    except (OSError, struct.error, ValueError, AttributeError, TypeError):
        return {}
    return meta if isinstance(meta, dict) else {}


def peek_summary(path: str | os.PathLike) -> str:
    return summary_of(peek_metadata(path))
