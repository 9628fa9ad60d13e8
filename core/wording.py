"""Counted nouns in messages: "1 plane", "2 planes", never "1 plane(s)"; lists of names that stay short.

In core so every layer may word its messages alike (the CLI, gui.state and the controllers)."""

from __future__ import annotations

from typing import Sequence


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and ``noun``, the noun plural unless the count is one (``plural`` when not noun + "s")."""
    return f"{count:,} {noun if count == 1 else (plural or noun + 's')}"


def some_names(names: Sequence[str], shown: int = 3) -> str:
    """The first ``shown`` names, then how many more: "a.png, b.png, c.png and 4 more"."""
    names = list(names)
    if len(names) > shown:
        return f"{', '.join(names[:shown])} and {len(names) - shown:,} more"
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"
