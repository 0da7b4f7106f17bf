"""Plain text -> blocks. Tables are tab- or `|`-separated lines, or one `cell |` per line.

Text carries no spans, so tables come out with `spans_known=False`: the facts stage then aligns
values by order. Paragraphs broken by a page or line break mid-sentence are joined.
"""

from __future__ import annotations

import re

from .blocks import Cell, Document, Paragraph, Table
from .encoding import decode_text
from .values import is_value_text

_ROW_END = re.compile(r"^\|+$")
# A paragraph that ends like this is complete; anything else ran on to the next line.
_SENTENCE_END = tuple("。！？；：!?;:」』”）)")
_HEADING_START = re.compile(
    r"^\s*(?:第[一二三四五六七八九十]+部分|[一二三四五六七八九十]+[、.．]|[（(][一二三四五六七八九十]+[)）])"
)


def _is_table_line(line: str) -> bool:
    return "\t" in line.strip("\r\n") or "|" in line


def _split_cells(line: str) -> list[str]:
    line = line.rstrip("\r\n")
    if "\t" in line:
        return [c.strip() for c in line.split("\t")]
    cells = [c.strip() for c in line.split("|")]
    # A closing `|` is a terminator, not an empty last cell.
    if line.rstrip().endswith("|"):
        cells = cells[:-1]
    return cells


def _table_from_lines(lines: list[str]) -> Table:
    cell_lines = [line for line in lines if not _ROW_END.match(line.strip())]
    single = sum(1 for line in cell_lines if len([c for c in _split_cells(line) if c]) <= 1)
    if cell_lines and single / len(cell_lines) > 0.6:
        rows = _cell_per_line_rows(lines)
    else:
        rows = [_split_cells(line) for line in lines]
    return Table([[Cell(text) for text in row] for row in rows if any(row)], spans_known=False)


def _cell_per_line_rows(lines: list[str]) -> list[list[str]]:
    """Rows written one `cell |` per line.

    A line of bare pipes closes a row where the page printed one; otherwise a label after a
    value starts the next row. Empty cells carry no position in this layout and are dropped.
    """
    rows: list[list[str]] = []
    current: list[str] = []
    has_value = False
    for line in lines:
        stripped = line.strip()
        if _ROW_END.match(stripped):
            if current:
                rows.append(current)
            current, has_value = [], False
            continue
        for cell in (c for c in _split_cells(stripped) if c):
            value = is_value_text(cell)
            if has_value and not value:
                rows.append(current)
                current, has_value = [], False
            current.append(cell)
            has_value |= value
    if current:
        rows.append(current)
    return rows


def _is_heading(text: str) -> bool:
    return bool(_HEADING_START.match(text)) and len(text) <= 40


def _join_paragraphs(paragraphs: list[str]) -> list[str]:
    joined: list[str] = []
    for text in paragraphs:
        if (
            joined
            and not joined[-1].endswith(_SENTENCE_END)
            and not _is_heading(joined[-1])
            and not _is_heading(text)
            and len(joined[-1]) > 40
        ):
            joined[-1] += text
        else:
            joined.append(text)
    return joined


def read_text(data: bytes) -> Document:
    text = decode_text(data)
    blocks: list[Paragraph | Table] = []
    pending_paragraphs: list[str] = []
    table_lines: list[str] = []

    def flush_paragraphs() -> None:
        blocks.extend(Paragraph(p) for p in _join_paragraphs(pending_paragraphs))
        pending_paragraphs.clear()

    def flush_table() -> None:
        if table_lines:
            table = _table_from_lines(table_lines)
            if table.rows:
                blocks.append(table)
            table_lines.clear()

    for line in text.splitlines():
        if _is_table_line(line) and line.strip():
            flush_paragraphs()
            table_lines.append(line)
            continue
        if not line.strip():
            continue
        flush_table()
        pending_paragraphs.append(line.strip())
    flush_table()
    flush_paragraphs()
    return Document("txt", blocks)
