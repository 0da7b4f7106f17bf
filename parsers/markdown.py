"""Markdown and text that another tool converted from a report -> blocks.

PDF-to-Markdown and OCR tools rearrange a report in a few typical ways, undone here:

- `#` headings and `**bold**`/`__bold__` marks: the marks go, a `#` line is a heading;
- pipe tables, with their `|---|` delimiter rows dropped;
- a header row of placeholders (`类别 | 数据1 | … | 总计`) a tool gave each piece of a split
  table: dropped, since it names no template column (the pieces are one stream of rows to
  `tables.py`, which maps rows by their labels and the section they sit in);
- a row label moved out of the table onto a loose line just above a row of values: put back
  as the row's first cell;
- a row of values with no label at all: kept without one; `tables.py` places it by the
  template's row order where the printed sums agree (`placement.py`), else reports it as
  `row_label_missing`;
- table-二 cells written as plain lines (`行政许可 97`, `规章 0 0 0`): a one-row table.
"""

from __future__ import annotations

import re

from .blocks import Cell, Document, Paragraph, Table
from .encoding import decode_text
from .values import is_value_text

_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_DELIMITER = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")
_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1")
# Header cells a converter invents for a table piece it could not name.
_PLACEHOLDER = re.compile(
    r"^(?:类别|项目|内容|名称|指标|数据\s*\d*|列\s*\d*|字段\s*\d*|col(?:umn)?\s*\d*|总计|合计|小计)$",
    re.IGNORECASE,
)
_INVENTED = re.compile(r"^(?:数据\s*\d+|列\s*\d+|字段\s*\d+|col(?:umn)?\s*\d+|类别|项目)$", re.I)
# A plain line that is a table-二 row: a short label, then one or more numbers (with a unit).
_NUMBER = r"[-\d.,]+(?:万元|元|%|件|条|个)?"
_LABELLED_NUMBERS = re.compile(
    rf"^(?P<label>[^\d|。；;，,]{{2,30}}?)\s+(?P<values>{_NUMBER}(?:\s+{_NUMBER})*)$"
)
# A loose line that may be a row label: short, and not a sentence.
_MAX_LABEL_CHARS = 60
_SENTENCE_END = ("。", "；", ";", "：", ":")


def read_markdown(data: bytes) -> Document:
    """Read converted Markdown (or text with pipe tables) into blocks."""
    document = Document("md")
    rows: list[list[str]] = []
    pending_label: str | None = None

    def flush_table() -> None:
        if rows:
            document.blocks.append(Table([[Cell(text) for text in row] for row in rows]))
            rows.clear()

    def flush_label() -> None:
        nonlocal pending_label
        if pending_label is not None:
            flush_table()
            document.blocks.append(Paragraph(pending_label))
            pending_label = None

    for raw_line in decode_text(data).splitlines():
        line = _plain(raw_line)
        if not line:
            continue
        heading = _HEADING.match(line)
        if heading:
            flush_label()
            flush_table()
            document.blocks.append(Paragraph(_plain(heading.group(2)), kind="heading"))
            continue
        if "|" in line:
            if _DELIMITER.match(line):
                continue
            cells = _cells(line)
            if (not any(cells) and pending_label is None) or _is_invented_header(cells):
                continue
            if pending_label is not None and all(is_value_text(c) for c in cells if c):
                cells = [pending_label, *cells]
                pending_label = None
            flush_label()
            rows.append(cells)
            continue
        numbers = _LABELLED_NUMBERS.match(line)
        if numbers and not is_value_text(numbers.group("label")):
            flush_label()
            flush_table()
            values = numbers.group("values").split()
            document.blocks.append(
                Table([[Cell(numbers.group("label").strip())] + [Cell(v) for v in values]])
            )
            continue
        flush_label()
        if len(line) <= _MAX_LABEL_CHARS and not line.endswith(_SENTENCE_END):
            # Held back: a row label moved out of its table, if a row of values follows.
            pending_label = line
            continue
        flush_table()
        document.blocks.append(Paragraph(line))
    flush_label()
    flush_table()
    return document


def _plain(line: str) -> str:
    """The line without emphasis marks, quote markers and surrounding space."""
    line = _EMPHASIS.sub(r"\2", line.strip())
    return line.lstrip(">").strip()


def _cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|"):
        line = line[:-1]
    return [_plain(cell) for cell in line.split("|")]


def _is_invented_header(cells: list[str]) -> bool:
    texts = [c for c in cells if c]
    return all(_PLACEHOLDER.match(t) for t in texts) and any(_INVENTED.match(t) for t in texts)
