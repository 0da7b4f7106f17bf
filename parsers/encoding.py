"""Bytes -> text for the text formats. Government sites still publish GBK/GB2312/GB18030."""

from __future__ import annotations

import codecs
import re

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-]+)""", re.I)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# GB2312 and GBK are subsets of GB18030: decoding with the superset never loses a character.
_GB_FAMILY = {"gb2312", "gbk", "gb18030", "x-gbk", "cp936", "hz-gb-2312"}


def declared_charset(data: bytes) -> str | None:
    match = _META_CHARSET.search(data[:4096])
    return match.group(1).decode("ascii").lower() if match else None


def decode_text(data: bytes, declared: str | None = None) -> str:
    """Decode by BOM, then the declared charset, then UTF-8, then GB18030, without NULs."""
    # A NUL prints nothing, and PostgreSQL refuses it in text: a stray one would fail the
    # report's load.
    return _decoded(data, declared).replace("\x00", "")


def _decoded(data: bytes, declared: str | None) -> str:
    for bom, name in _BOMS:
        if data.startswith(bom):
            return data.decode(name, errors="replace")
    candidates = []
    if declared:
        candidates.append("gb18030" if declared.lower() in _GB_FAMILY else declared)
    candidates += ["utf-8", "gb18030"]
    for name in candidates:
        try:
            return data.decode(name)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode("gb18030", errors="replace")
