"""Reading the configuration a listing page writes in JavaScript (an object literal)."""

from __future__ import annotations

import re
from typing import Any

import chompjs


def object_after(text: str, pattern: re.Pattern[str]) -> dict[str, Any] | None:
    """The object literal that starts where `pattern` (ending at its `{`) matches, parsed.

    Unquoted keys, single quotes, trailing commas and functions as values are all read (chompjs);
    None when no match parses as an object.
    """
    for match in pattern.finditer(text):
        brace = text.rfind("{", match.start(), match.end())
        if brace < 0:
            continue
        try:
            value = chompjs.parse_js_object(text[brace:])
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def as_int(value: Any) -> int | None:
    """A count a page writes as 35, "35" or '35 '; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None
