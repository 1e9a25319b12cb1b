"""Defensive readers for 23's loosely typed JSON ("1" vs 1, "t"/"f" flags)."""

from __future__ import annotations

from typing import Any

_TRUE = frozenset({"1", "t", "true", "yes"})
_FALSE = frozenset({"0", "f", "false", "no", ""})


def as_int(value: Any) -> int | None:
    """An int from an int or a numeric string; None for anything else (bools included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def as_flag(value: Any) -> bool | None:
    """A bool from 1/0, "1"/"0", "t"/"f", true/false; None when unrecognisable."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    return None
