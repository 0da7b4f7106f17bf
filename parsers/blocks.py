"""The block model every format reader produces.

A reader turns bytes into a `Document`: headings, paragraphs and tables in document order, each
with the page it came from (None where the format has no pages). Tables are rows of cells that
*start* in that row, left to right, with their spans, exactly like HTML's `<tr>`/`<td>`: a cell
covered by a span from above is not repeated. `Table.grid()` places them on a rectangle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .result import Problem

BlockKind = Literal["heading", "paragraph"]


@dataclass(frozen=True, slots=True)
class Cell:
    text: str
    rowspan: int = 1
    colspan: int = 1
    # Set where the text was read by OCR: the lowest character confidence, the other readings
    # its low-confidence digits allow (checked against the printed sums later), the keys of
    # the cell lines it was read from (their images in `Document.ocr_lines`), and the readings
    # of its image read again another way that differ from the text.
    confidence: float | None = None
    alternatives: tuple[str, ...] = ()
    lines: tuple[int, ...] = ()
    rereads: tuple[str, ...] = ()


@dataclass(slots=True)
class Paragraph:
    text: str
    page: int | None = None
    # Readers that know a heading (HTML <h2>, a DOCX heading style) say so; the sections stage
    # still recognises headings printed as plain paragraphs.
    kind: BlockKind = "paragraph"


@dataclass(slots=True)
class Table:
    rows: list[list[Cell]]
    page: int | None = None

    def grid(self) -> list[list[Cell | None]]:
        """Place every cell on a rectangle; covered positions hold the covering cell.

        A cell takes the first free position of its row, left to right, and covers its spans;
        a later cell's span may cover a position again. Spans below the last row are dropped.
        """
        height = len(self.rows)
        lines: list[list[Cell | None]] = [[] for _ in range(height)]
        width = 0
        for r, row in enumerate(self.rows):
            line = lines[r]
            c = 0
            for cell in row:
                while c < len(line) and line[c] is not None:
                    c += 1
                colspan = cell.colspan if cell.colspan > 1 else 1
                end = c + colspan
                for below in lines[r : r + max(cell.rowspan, 1)]:
                    if len(below) < end:
                        below.extend([None] * (end - len(below)))
                    below[c:end] = [cell] * colspan
                c = end
                if c > width:
                    width = c
        for line in lines:
            line.extend([None] * (width - len(line)))
        return lines


Block = Paragraph | Table


@dataclass(slots=True)
class Document:
    format: str
    blocks: list[Block] = field(default_factory=list)
    pages: int | None = None
    # Document properties (PDF Info / DOCX core properties; HTML <title>): a report rendered
    # from a web page may print no title but still carry one here.
    title: str | None = None
    author: str | None = None
    # Reader-level findings that do not stop the parse (e.g. a page with no text layer).
    problems: list[Problem] = field(default_factory=list)
    # The images of the table cell lines OCR read, by key (`Cell.lines`): read again where a
    # printed sum that their values take part in fails.
    ocr_lines: dict[int, Any] = field(default_factory=dict)

    def paragraphs(self) -> list[Paragraph]:
        return [b for b in self.blocks if isinstance(b, Paragraph)]

    def tables(self) -> list[Table]:
        return [b for b in self.blocks if isinstance(b, Table)]


class ParseError(Exception):
    """A document that cannot be read at all; `code` is one of the documented problem codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
