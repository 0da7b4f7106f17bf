"""Plain text -> blocks. Tables are tab- or `|`-separated lines, one `cell |` per line, or
columns set apart by runs of spaces (a PDF's layout kept as text: `pdftotext -layout`).

Text carries no spans: every cell spans one column, and the facts stage aligns values by order.
Paragraphs broken by a page or line break mid-sentence are joined.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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

    lines = text.splitlines()
    layout = _layout_tables(lines)
    for number, line in enumerate(lines):
        if number in layout:
            flush_paragraphs()
            flush_table()
            table = layout[number]
            if table is not None:
                blocks.append(table)
            continue
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
    return isinstance(block, Paragraph) and _is_cell_text(block.text)


def _is_cell_text(text: str) -> bool:
    """Text short enough for a table's cell that ends no sentence and is no section heading."""
    return (
        len(text) <= MAX_CELL_CHARS
        and not text.endswith(("。", "；", ";"))
        and match_heading(text) is None
    )


# Punctuation that parts a sentence's clauses: a label or header prints none outside brackets.
_CLAUSE_MARKS = ("。", "；", "，")
# A bracketed aside, or the piece of one a wrapped label opens or closes on this line: a label
# such as 部分公开（区分处理的，只计这一情形，不计其他情形） prints its commas inside.
_BRACKETED = re.compile(r"[（(][^（()）]*(?:[）)]|$)|^[^（()）]*[）)]")


def _is_prose_cell(cell: str) -> bool:
    """A cell no table prints: longer than a cell, or a sentence's clause (a converter sets a
    sentence's figures apart, `2023年，本机关主动公开政府信息共计  120  条`)."""
    return len(cell) > MAX_CELL_CHARS or any(
        mark in _BRACKETED.sub("", cell) for mark in _CLAUSE_MARKS
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


# A layout kept as text (`pdftotext -layout`, a crawler's rendering) sets a table's columns apart
# by runs of spaces; words within a cell are one space apart, if any.
_CELL = re.compile(r"\S+(?:[ \u00a0\u3000]\S+)*")
_WORD = re.compile(r"\S+")
# A run of lines is a layout table once this many of them hold values or a header of columns,
# or one of them this many cells.
MIN_LAYOUT_ROWS = 3
# A page's number as a layout prints it between a table's rows at a page break: - 3 -, 第3页,
# 第3页 共6页, 3/6.
_PAGE_NUMBER = re.compile(
    r"\s*(?:[-–—－]+\s*\d{1,4}\s*[-–—－]+|第\s*\d{1,4}\s*页(?:\s*[,，/／]?\s*共\s*\d{1,4}\s*页)?"
    r"|\d{1,4}\s*[/／]\s*\d{1,4})\s*$"
)
# Pieces of one wrapped label start within this many characters of each other (they are centred).
_LABEL_COLUMN_SLACK = 4


@dataclass(slots=True)
class _LayoutLine:
    cells: list[str]
    starts: list[int]  # the character column each cell starts at
    ends: list[int]
    # `values` (a row with values), `header` (three or more columns, no value), `fragment` (a
    # short label or a piece of one, wrapped off its row) or `prose`.
    kind: str

    def label_count(self) -> int:
        """How many cells, from the left, are label: those up to the last that is no value."""
        flags = [is_value_text(cell) for cell in self.cells]
        return len(flags) - next((i for i, f in enumerate(reversed(flags)) if not f), len(flags))


def _layout_line(line: str) -> _LayoutLine:
    cells: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for cell in _CELL.finditer(line):
        words = list(_WORD.finditer(cell.group()))
        # Values one space apart (narrow columns) are cells each; words of a label are one.
        if len(words) > 1 and all(is_value_text(w.group()) for w in words):
            pieces = [(w.group(), cell.start() + w.start(), cell.start() + w.end()) for w in words]
        else:
            pieces = [(cell.group(), cell.start(), cell.end())]
        for text, start, end in pieces:
            cells.append(text)
            starts.append(start)
            ends.append(end)
    _split_last_label(cells, starts, ends)
    return _LayoutLine(cells, starts, ends, _layout_kind(cells))


def _split_last_label(cells: list[str], starts: list[int], ends: list[int]) -> None:
    """A label that runs up to one space from the first of the values after it (a long label
    in a narrow column) ends before that word: `…不计其他 0` is the label `…不计其他` and 0."""
    flags = [is_value_text(cell) for cell in cells]
    if not flags or flags[-1] is False or all(flags):
        return
    last_label = len(flags) - 1 - flags[::-1].index(False)
    head, _, word = cells[last_label].rpartition(" ")
    if head and is_value_text(word):
        cells[last_label : last_label + 1] = [head, word]
        end = ends[last_label]
        ends[last_label : last_label + 1] = [starts[last_label] + len(head), end]
        starts.insert(last_label + 1, end - len(word))


def _layout_kind(cells: list[str]) -> str:
    if any(_is_prose_cell(cell) for cell in cells):
        return "prose"
    if is_value_text(cells[-1]):
        # One lone value is a row of a one-column table, or a page number.
        return "values" if len(cells) >= 2 else "fragment"
    # A line of text whose last cell is no value is a label or a header, whatever it holds.
    text = "".join(cells)
    if len(cells) >= 3 or (len(cells) == 2 and prints_header(None, text)):
        return "header"
    return "fragment" if _is_cell_text(text) else "prose"


def _layout_tables(lines: list[str]) -> dict[int, Table | None]:
    """Tables whose columns are set apart by runs of spaces, by the number of their first line;
    the other lines of each table map to None. Blank lines inside a table belong to it."""
    read = {
        number: _layout_line(line)
        for number, line in enumerate(lines)
        if line.strip() and not _is_table_line(line) and not _PAGE_NUMBER.match(line)
    }
    tables: dict[int, Table | None] = {}
    run: list[int] = []

    def close() -> None:
        # Fragments after the last row of columns are the text that follows the table.
        while run and read[run[-1]].kind == "fragment":
            run.pop()
        rows = sum(read[n].kind in ("values", "header") for n in run)
        values = max((len(read[n].cells) for n in run if read[n].kind == "values"), default=0)
        # Three lines of columns, or one line of three values or more, make a table.
        if values and max(rows, values) >= MIN_LAYOUT_ROWS:
            table = _layout_table([read[n] for n in run])
            tables.update(dict.fromkeys(range(run[0], run[-1] + 1)))
            tables[run[0]] = table
        run.clear()

    # Fragments on the lines just above a run's first line: the opening of its first row's
    # wrapped label, or a caption that stays text.
    lead: list[int] = []
    for number in range(len(lines)):
        line = read.get(number)
        if line is None:
            if _is_table_line(lines[number]):
                close()
            lead.clear()
            continue  # a blank line, or a page's number where a table runs over a page break
        kind = line.kind
        if kind == "prose":
            close()
            lead.clear()
            continue
        if kind == "fragment" and not run:
            lead.append(number)
            continue
        if not run and kind == "values":
            run.extend(_label_opening([read[n] for n in lead], line, lead))
        lead.clear()
        run.append(number)
    close()
    return tables


def _label_opening(
    fragments: list[_LayoutLine], first: _LayoutLine, numbers: list[int]
) -> list[int]:
    """The numbers of the fragments above a table's first row of values that `_layout_table`
    takes into the row's wrapped label: from the last that opens a row's label (its numbering),
    or the one just above a row that prints no label; all left of the row's values. A row whose
    own numbered label starts in their column takes none (they are a caption)."""
    labels = first.label_count()
    opening = [i for i, line in enumerate(fragments) if _opens_label(line)]
    if opening:
        start = opening[-1]
    elif fragments and not labels:
        start = len(fragments) - 1
    else:
        return []
    taken = fragments[start:]
    if any(line.ends[-1] > first.starts[labels] for line in taken):
        return []
    if (
        labels
        and first.starts[labels - 1] >= taken[0].starts[-1] - _LABEL_COLUMN_SLACK
        and numbering.ROW_LABEL_START.match(first.cells[labels - 1])
    ):
        return []
    return numbers[start:]


def _layout_table(lines: list[_LayoutLine]) -> Table:
    """Rows from a layout table's lines, one a line, but for labels wrapped over lines.

    A layout sets a row's values level with the middle of its label, so a label wrapped over
    lines leaves label text above and below a line of values that prints none of it (or only a
    piece of a group's label, further left). Such a line takes the label lines next to it that
    lie wholly left of its values: those since the row above, from the one that opens with a
    row's numbering, and those up to the next row when that one prints a label of its own.
    Pieces starting in the label's column (within a few characters) are the label; text further
    left is its group's. Label lines below a row that open no label are the end of its label.
    Every other line is a row: a group's label on its own, a header over the values.
    """
    rows: list[list[str]] = []
    pending: list[_LayoutLine] = []
    # The last row of values: its row, the place of its label in it, its label's first and
    # last column, and its first value's column.
    last: tuple[list[str], int, int, int, int] | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if line.kind == "fragment":
            pending.append(line)
            continue
        if last is not None:
            pending = _end_of_label(pending, *last)
        labels = line.label_count()
        last = None
        if line.kind == "values":
            first_value = line.starts[labels]
            before = [p for p in pending if p.ends[-1] <= first_value]
            opening = [i for i, p in enumerate(before) if _opens_label(p)]
            before = before[opening[-1] :] if opening else before
            end = index
            while (
                end < len(lines)
                and lines[end].kind == "fragment"
                and lines[end].ends[-1] <= first_value
                and not _opens_label(lines[end])
            ):
                end += 1
            after = lines[index:end]
            if end < len(lines) and lines[end].kind == "values" and not lines[end].label_count():
                after = []  # the next row of values has no label: these are its
            # A row that prints a label of its own takes another only where one opens above it.
            wrapped = (before or after) if not labels else (before if opening else [])
            column = wrapped[0].starts[-1] if wrapped else 0
            # Its own label is a group's when it lies left of the wrapped one or is unnumbered.
            if wrapped and (
                not labels
                or line.starts[labels - 1] < column - _LABEL_COLUMN_SLACK
                or not numbering.ROW_LABEL_START.match(line.cells[labels - 1])
            ):
                rows.extend(p.cells for p in pending if p not in before)
                rows.append(_wrapped_row(line, labels, before + after, column))
                pending = []
                if after and (before or not labels):
                    index = end
                continue
            if labels:
                leaf = labels - 1
                last = (line.cells, leaf, line.starts[leaf], line.ends[leaf], first_value)
        rows.extend(p.cells for p in pending)
        rows.append(line.cells)
        pending = []
    if last is not None:
        pending = _end_of_label(pending, *last)
    rows.extend(p.cells for p in pending)
    return Table([[Cell(text) for text in row] for row in rows])


def _end_of_label(
    pending: list[_LayoutLine], row: list[str], leaf: int, start: int, end: int, first_value: int
) -> list[_LayoutLine]:
    """Label lines under a row of values that continue its label (they open none, start under
    it and end left of its values) are added to it; the other lines are returned."""
    taken = 0
    for part in pending:
        if (
            _opens_label(part)
            or len(part.cells) != 1
            or part.ends[-1] > first_value
            or not start - _LABEL_COLUMN_SLACK <= part.starts[0] <= end
        ):
            break
        row[leaf] += part.cells[0]
        taken += 1
    return pending[taken:]


def _opens_label(line: _LayoutLine) -> bool:
    return bool(numbering.ROW_LABEL_START.match(line.cells[-1]))


def _wrapped_row(
    line: _LayoutLine, labels: int, wrapped: list[_LayoutLine], column: int
) -> list[str]:
    """The row of `line`'s values under the label wrapped over the lines `wrapped`, whose pieces
    start near `column`; the rest of their text and `line`'s own label text go before it."""
    groups = list(line.cells[:labels])
    pieces = []
    for part in wrapped:
        for text, start in zip(part.cells, part.starts, strict=True):
            if start >= column - _LABEL_COLUMN_SLACK:
                pieces.append(text)
            else:
                groups.append(text)
    return [*groups, "".join(pieces), *line.cells[labels:]]
