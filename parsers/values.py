"""Cell text -> value. Blank, 0, dashes and 无 are kept apart: null is not 0."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# Printed instead of a number where nothing applies; the value is null, the raw text is kept.
NULL_MARKERS = frozenset(
    {
        "",
        "无",
        "/",
        "／",
        "\\",
        "-",
        "—",
        "——",
        "－",
        "–",
        "─",
        "一",
        "不适用",
        "空",
        "暂无",
        "x",
        "X",
        "*",
    }
)
UNITS = ("万元", "亿元", "元", "件", "条", "个", "项", "次", "人次", "人", "份", "期", "%")
_NUMBER = re.compile(
    r"^(?P<sign>[+\-−])?(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s*(?P<unit>"
    + "|".join(re.escape(u) for u in UNITS)
    + r")?$"
)


@dataclass(frozen=True, slots=True)
class CellValue:
    raw: str
    value: int | float | None
    unit: str | None = None
    readable: bool = True


def clean(text: str) -> str:
    """Width-fold and collapse the spacing a cell picked up from layout (NBSP, line breaks)."""
    text = unicodedata.normalize("NFKC", text or "")
    return re.sub(r"\s+", "", text)


def parse_value(raw: str) -> CellValue:
    """Parse one printed cell. Unreadable text is flagged, never guessed."""
    text = clean(raw)
    shown = (raw or "").strip()
    if text in NULL_MARKERS:
        return CellValue(shown, None)
    match = _NUMBER.match(text)
    if not match:
        return CellValue(shown, None, readable=False)
    digits = match["num"].replace(",", "")
    try:
        number = Decimal(digits)
    except InvalidOperation:
        return CellValue(shown, None, readable=False)
    if match["sign"] in ("-", "−"):
        number = -number
    value: int | float = int(number) if "." not in digits else float(number)
    return CellValue(shown, value, match["unit"])


def is_value_text(raw: str) -> bool:
    """True for text that reads as a cell value (a number, possibly with a unit, or a null marker)."""
    text = clean(raw)
    return text in NULL_MARKERS or bool(_NUMBER.match(text))
