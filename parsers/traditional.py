"""Reports in traditional characters are converted to Mainland simplified before matching."""

from __future__ import annotations

import re
from dataclasses import replace
from functools import cache
from itertools import islice

from .blocks import Cell, Document, Paragraph, Table

# Characters common in these reports that only traditional text uses.
_TRADITIONAL_MARKERS = frozenset("資訊開與機關處請復審議訴務報據辦執規實體當時個數總計結轉獲")
MIN_MARKERS = 8
# Searched by the regex engine: a Python test per character took ~1 ms of a report.
_MARKER = re.compile(f"[{''.join(sorted(_TRADITIONAL_MARKERS))}]")


@cache
def _converter():
    import opencc

    # tw2sp, not t2s: it maps 資訊 to the Mainland 信息, so labels match the template.
    return opencc.OpenCC("tw2sp")


def to_simplified(text: str) -> str:
    """The text as a converted document shows it (for comparing with its evidence)."""
    return _converter().convert(text)


def is_traditional(text: str) -> bool:
    return len(list(islice(_MARKER.finditer(text), MIN_MARKERS))) >= MIN_MARKERS


def to_simplified_document(document: Document) -> bool:
    """Convert the document in place when it is written in traditional characters."""
    sample = "".join(
        b.text if isinstance(b, Paragraph) else "".join(c.text for row in b.rows for c in row)
        for b in document.blocks
    )
    if not is_traditional(sample):
        return False
    convert = _converter().convert
    for index, block in enumerate(document.blocks):
        if isinstance(block, Paragraph):
            document.blocks[index] = replace(block, text=convert(block.text))
        elif isinstance(block, Table):
            block.rows = [
                [Cell(convert(c.text), c.rowspan, c.colspan) for c in row] for row in block.rows
            ]
    if document.title:
        document.title = convert(document.title)
    return True
