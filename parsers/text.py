"""Plain text -> blocks. Tables are tab- or `|`-separated lines, or one `cell |` per line.

Text carries no spans: every cell spans one column, and the facts stage aligns values by order.
Paragraphs broken by a page or line break mid-sentence are joined.
"""

from __future__ import annotations

from nianbao.schema import numbering
from nianbao.schema.registry import prints_header

from .blocks import Cell, Document, Paragraph, Table
from .encoding import decode_text
from .sections import match_heading
from .values import is_value_text

# A paragraph that ends like this is complete; anything else ran on to the next line.
_SENTENCE_END = tuple("。！？；：!?;:」』”）)")


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


def _table_from_lines(lines: list[str], force_cells: bool = False) -> Table:
    single = sum(1 for line in lines if len([c for c in _split_cells(line) if c]) <= 1)
    if force_cells or single / len(lines) > 0.6:
        rows = _cell_per_line_rows(lines)
    else:
        rows = [_split_cells(line) for line in lines]
    return Table([[Cell(text) for text in row] for row in rows if any(row)])


def _cell_per_line_rows(lines: list[str]) -> list[list[str]]:
    """Rows written one `cell |` per line, as crawlers flatten HTML tables.

    A lone `|` is an empty cell; two or more pipes after the last cell close the row. Where no
    row end is printed, a label after a value starts the next row.
    """
    rows: list[list[str]] = []
    current: list[str] = []
    has_value = False

    def close() -> None:
        nonlocal current, has_value
        if current:
            rows.append(current)
        current, has_value = [], False

    for line in lines:
        stripped = line.strip()
        if stripped == "|":
            current.append("")
            has_value = True
            continue
        texts = [c.strip() for c in stripped.split("|")]
        last = max((i for i, t in enumerate(texts) if t), default=-1)
        for cell in (t for t in texts[: last + 1] if t):
            value = is_value_text(cell)
            if has_value and not value:
                close()
            current.append(cell)
            has_value |= value
        tail = stripped.rsplit(texts[last], 1)[1] if last >= 0 else stripped
        if tail.count("|") >= 2:
            close()
    close()
    return rows


def _is_heading(text: str) -> bool:
    return bool(numbering.TEXT_HEADING.match(text)) and len(text) <= 40


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
    return Document("txt", _tables_from_short_lines(blocks))


# A run of at least this many short lines, some of them bare values, is a table printed one
# cell per line with no separators at all.
MIN_CELL_RUN = 6
MAX_CELL_CHARS = 40


def _is_cell_line(block: Paragraph | Table) -> bool:
    return (
        isinstance(block, Paragraph)
        and len(block.text) <= MAX_CELL_CHARS
        and not block.text.endswith(("。", "；", ";"))
        and match_heading(block.text) is None
    )


def _tables_from_short_lines(blocks: list[Paragraph | Table]) -> list[Paragraph | Table]:
    result: list[Paragraph | Table] = []
    index = 0
    while index < len(blocks):
        end = index
        while end < len(blocks) and _is_cell_line(blocks[end]):
            end += 1
        run = [b.text for b in blocks[index:end]]  # type: ignore[union-attr]
        values = sum(1 for text in run if is_value_text(text))
        if len(run) >= MIN_CELL_RUN and values >= 2 and values >= len(run) // 5:
            # Leading lines up to the first table-like label stay paragraphs (headings).
            start = next((i for i, t in enumerate(run) if prints_header(None, t)), 0)
            result.extend(blocks[index : index + start])
            table = _table_from_lines([f"{t} |" for t in run[start:]], force_cells=True)
            result.append(table)
            index = end
        elif end > index:
            result.extend(blocks[index:end])
            index = end
        else:
            result.append(blocks[index])
            index += 1
    return result
