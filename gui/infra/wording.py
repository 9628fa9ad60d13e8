"""Counted nouns in messages: "1 plane", "2 planes", never "1 plane(s)"."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and ``noun``, the noun plural unless the count is one (``plural`` when not noun + "s")."""
    return f"{count:,} {noun if count == 1 else (plural or noun + 's')}"
