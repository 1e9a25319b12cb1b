"""Defensive readers for 23's JSON in both dialects: legacy strings ("1", "t"/"f") and api/2's
numbers and booleans (``video_length`` may be a float)."""

from __future__ import annotations

import math
import re
from typing import Any

MAX_PHOTO_ID = 2**53 - 1  # what a JSON number can hold exactly
# ASCII digits only: "²" and "١٢٣" are digits to str.isdigit() but no photo's id.
_PHOTO_ID_RE = re.compile(r"[1-9][0-9]{0,15}")

_TRUE = frozenset({"1", "t", "true", "yes"})
_FALSE = frozenset({"0", "f", "false", "no", ""})


def as_int(value: Any) -> int | None:
    """An int from an int, a whole float (``7.0``) or a numeric string; None for anything
    else (bools included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def as_seconds(value: Any) -> int | None:
    """A duration in whole seconds, rounded up (a 7199.5 s video needs 7200 s of token):
    from an int, a float or a numeric string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value) and value >= 0:
        return math.ceil(value)
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


def photo_id(value: Any) -> int | None:
    """A photo id from a JSON number or a decimal string (ASCII digits), else None.

    The one parser for every place an id arrives: the mint API, pingbacks, visitor links and
    the player's protection calls.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if not _PHOTO_ID_RE.fullmatch(value):
            return None
        value = int(value)
    if isinstance(value, int) and 0 < value <= MAX_PHOTO_ID:
        return value
    return None
