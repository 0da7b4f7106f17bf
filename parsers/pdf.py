"""PDF reader: bytes of a report → `Document` of paragraphs and tables in reading order.

Text comes from pypdfium2 (a few ms a page). pdfplumber's table finder costs ~60–100 ms a page,
so it only runs on pages whose vector paths could rule a table of two or more columns: walking
the path segments through pdfium's raw API costs ~1–2 ms a page. Pages of running prose (most of
a report), even under a header rule or inside a framed text box, never reach pdfplumber.
"""

from __future__ import annotations

import ctypes
import io
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

import pdfplumber
import pypdfium2
import pypdfium2.raw as pdfium_c

from .blocks import Block, Cell, Document, Paragraph, ParseError, Table

# Form XObjects can nest; pdfium's own object iterator stops at the same depth.
_MAX_FORM_DEPTH = 15
# Share of unreadable characters above which the text layer is useless for extraction.
_GARBLED_SHARE = 0.5
# Lines whose top lies in the outer tenth of the page may be page furniture (numbers, headers).
_MARGIN_BAND = 0.1
# A running header must repeat on this many pages (and on half of them) before it is dropped, so
# a heading that happens to open two pages is kept.
_RUNNING_MIN_PAGES = 3
# Indent and short-line thresholds, in units of the line's own height (≈ one CJK character).
_INDENT_EM = 0.8
_SHORT_EM = 1.5
# pdfplumber snaps a table's cell edges to shared coordinates; this only absorbs float noise.
_EDGE_EPS = 0.5
# Two columns need three vertical rules: a page with fewer distinct rule positions holds no table
# that `_to_table` keeps, so pdfplumber is not asked.
_MIN_RULE_XS = 3
# pdfplumber calls an edge horizontal only when its ends share one y; every other segment,
# slanted ones included, counts as vertical (at its smaller x), as it does there.
_FLAT = 0.01
_IDENTITY = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)

# ASCII and Latin: words in these scripts keep a space between them; CJK text never does.
_NARROW = "\x21-\u024f"
_SPACE_BETWEEN_WIDE = re.compile(rf"(?<=[^\s{_NARROW}]) (?=[^\s{_NARROW}])")
_WHITESPACE = re.compile(r"\s+")
_NUMBER = re.compile(r"[-+]?\d[\d,，]*(?:\.\d+)?%?")
_PAGE_NUMBER = re.compile(
    r"[-–—－‐]*\s*(?:第\s*)?\d{1,4}(?:\s*页)?(?:\s*[/／]\s*\d{1,4}|\s*共\s*\d{1,4}\s*页)?\s*[-–—－‐]*"
)
_HEADING = re.compile(
    r"(?:[一二三四五六七八九十]+、|[（(][一二三四五六七八九十]+[）)]|第[一二三四五六七八九十百]+(?:部分|章|节))"
)
# How a table row label opens: a cell starting like this is a new label, not the tail of one
# broken by a page break.
_LABEL_START = re.compile(
    r"(?:[（(][一二三四五六七八九十\d]+[）)]|[一二三四五六七八九十]+、|\d+[.、．])"
)
_CID = re.compile(r"\(cid:\d+\)")
_SENTENCE_END = "。！？.!?…"
_CLOSERS = "”’」』）)"


@dataclass(slots=True)
class _Char:
    text: str
    x0: float
    x1: float
    top: float
    bottom: float


@dataclass(slots=True)
class _Line:
    text: str
    page: int
    x0: float
    x1: float
    top: float
    bottom: float

    @property
    def em(self) -> float:
        return self.bottom - self.top


@dataclass(slots=True)
class _PageTable:
    table: Table
    bbox: tuple[float, float, float, float]  # x0, top, x1, bottom, in pdfplumber's frame


@dataclass(slots=True)
class _Page:
    number: int
    height: float
    chars: list[_Char]
    ruled: bool  # its paths have vertical segments at _MIN_RULE_XS or more distinct x
    has_images: bool
    tables: list[_PageTable] = field(default_factory=list)

    @property
    def has_text(self) -> bool:
        return any(not ch.text.isspace() for ch in self.chars)


@dataclass(slots=True)
class _Margins:
    left: float
    right: float


def read_pdf(data: bytes) -> Document:
    """Read a PDF report into blocks; raise `ParseError` for a file that cannot be read."""
    if not data:
        raise ParseError("empty_file", "The file is empty (0 bytes); download it again.")
    pdf = _open_pdfium(data)
    try:
        with _library_errors("pypdfium2"):
            pages = [_scan_page(pdf[i], i + 1) for i in range(len(pdf))]
    finally:
        pdf.close()

    if not any(page.has_text for page in pages):
        raise ParseError(
            "no_text_layer",
            "No page has extractable text: the PDF is probably scanned images. "
            "Run OCR on it (e.g. ocrmypdf) or find a text version of the report.",
        )
    doc = Document(format="pdf", pages=len(pages))
    doc.problems = [
        {
            "code": "no_text_layer",
            "page": str(page.number),
            "message": f"Page {page.number} is an image without text; its content is missing.",
        }
        for page in pages
        if page.has_images and not page.has_text
    ]
    if any(page.ruled for page in pages):
        _find_tables(data, pages)
    doc.blocks = _assemble(pages)
    _check_garbled(doc.blocks)
    return doc


# --- opening and errors -------------------------------------------------------------------------


def _open_pdfium(data: bytes) -> pypdfium2.PdfDocument:
    try:
        return pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        if getattr(exc, "err_code", None) in (
            pdfium_c.FPDF_ERR_PASSWORD,
            pdfium_c.FPDF_ERR_SECURITY,
        ):
            raise _encrypted() from exc
        raise _corrupt("pypdfium2", exc) from exc


def _encrypted() -> ParseError:
    return ParseError(
        "encrypted_pdf",
        "The PDF is encrypted and needs a password to open; ask the publisher for an unprotected "
        "copy, or remove the password (e.g. qpdf --decrypt) before ingesting.",
    )


def _corrupt(library: str, exc: BaseException) -> ParseError:
    return ParseError(
        "corrupt_pdf",
        f"The PDF is damaged or truncated ({library}: {str(exc) or type(exc).__name__}); "
        "download it again or re-export it from the source.",
    )


@contextmanager
def _library_errors(library: str) -> Iterator[None]:
    # pdfminer raises anything from PSSyntaxError to KeyError on a broken file; callers must only
    # ever see ParseError for a bad input.
    try:
        yield
    except Exception as exc:
        raise _corrupt(library, exc) from exc


def _check_garbled(blocks: list[Block]) -> None:
    text = "".join(_block_text(block) for block in blocks)
    cids = len(_CID.findall(text))
    text = _CID.sub("", text)
    bad = cids + sum(1 for ch in text if _unreadable(ch))
    total = cids + sum(1 for ch in text if not ch.isspace())
    if total and bad / total > _GARBLED_SHARE:
        raise ParseError(
            "garbled_text",
            f"{bad} of {total} characters cannot be decoded (fonts without a Unicode map): the "
            "text layer is unusable. OCR the rendered pages or find another copy of the report.",
        )


def _block_text(block: Block) -> str:
    if isinstance(block, Paragraph):
        return block.text
    return "".join(cell.text for row in block.rows for cell in row)


def _unreadable(ch: str) -> bool:
    code = ord(ch)
    return ch == "\ufffd" or 0xE000 <= code <= 0xF8FF or (code < 0x20 and not ch.isspace())


# --- pdfium: characters, object kinds, rules ------------------------------------------------------


def _scan_page(page: pypdfium2.PdfPage, number: int) -> _Page:
    left, bottom, _, top = page.get_mediabox()
    textpage = page.get_textpage()
    raw, box = textpage.raw, pdfium_c.FS_RECTF()
    chars = []
    # Per-character calls (~3 ms a page) rather than one get_text_range(): each character gets
    # its box, and nothing drifts where pdfium's text output inserts or drops characters.
    for i in range(textpage.count_chars()):
        code = pdfium_c.FPDFText_GetUnicode(raw, i)
        if code == 0x0D:  # pdfium ends lines with \r\n; \n alone marks the break
            continue
        if pdfium_c.FPDFText_HasUnicodeMapError(raw, i) == 1:
            # A font with no ToUnicode map: pdfium passes the glyph number through as if it
            # were a code point, which reads as random scripts, not as unreadable text.
            code = 0xFFFD
        pdfium_c.FPDFText_GetLooseCharBox(raw, i, box)
        # pdfplumber measures from the top-left of the media box; use its frame throughout.
        chars.append(
            _Char(chr(code), box.left - left, box.right - left, top - box.top, top - box.bottom)
        )
    textpage.close()
    objects = _Objects(rotated=page.get_rotation() in (90, 270))
    objects.scan(
        pdfium_c.FPDFPage_CountObjects(page.raw), partial(pdfium_c.FPDFPage_GetObject, page.raw)
    )
    page.close()
    return _Page(
        number=number,
        height=top - bottom,
        chars=chars,
        ruled=len(objects.rule_xs) >= _MIN_RULE_XS,
        has_images=pdfium_c.FPDF_PAGEOBJ_IMAGE in objects.kinds,
    )


Matrix = tuple[float, float, float, float, float, float]  # a b c d e f, as in PDF


@dataclass(slots=True)
class _Objects:
    """The object kinds on a page, and the x positions of its vertical path segments in
    pdfplumber's frame (which turns with the page's /Rotate)."""

    rotated: bool
    kinds: set[int] = field(default_factory=set)
    rule_xs: set[int] = field(default_factory=set)
    _x: ctypes.c_float = field(default_factory=ctypes.c_float)
    _y: ctypes.c_float = field(default_factory=ctypes.c_float)

    def scan(
        self, count: int, get: Callable[[int], object], outer: Matrix = _IDENTITY, depth: int = 0
    ) -> None:
        # Raw calls: PdfPage.get_objects() wraps every object in a helper, which costs ~3x more.
        for i in range(count):
            obj = get(i)
            kind = pdfium_c.FPDFPageObj_GetType(obj)
            self.kinds.add(kind)
            if kind == pdfium_c.FPDF_PAGEOBJ_PATH:
                self._path(obj, _compose(outer, _matrix(obj)))
            elif kind == pdfium_c.FPDF_PAGEOBJ_FORM and depth < _MAX_FORM_DEPTH:
                # Objects inside a form are in the form's space; its matrix maps that to the page.
                self.scan(
                    pdfium_c.FPDFFormObj_CountObjects(obj),
                    partial(pdfium_c.FPDFFormObj_GetObject, obj),
                    _compose(outer, _matrix(obj)),
                    depth + 1,
                )

    def _path(self, obj: object, matrix: Matrix) -> None:
        a, b, c, d, e, f = matrix
        start = prev = None
        for i in range(pdfium_c.FPDFPath_CountSegments(obj)):
            segment = pdfium_c.FPDFPath_GetPathSegment(obj, i)
            pdfium_c.FPDFPathSegment_GetPoint(segment, self._x, self._y)
            x, y = self._x.value, self._y.value
            point = (a * x + c * y + e, b * x + d * y + f)
            if self.rotated:
                point = (point[1], point[0])
            if pdfium_c.FPDFPathSegment_GetType(segment) == pdfium_c.FPDF_SEGMENT_MOVETO:
                start = point
            elif prev is not None:  # a line, or a Bézier leg between control points
                self._edge(prev, point)
            if start is not None and pdfium_c.FPDFPathSegment_GetClose(segment):
                self._edge(point, start)
            prev = point

    def _edge(self, p: tuple[float, float], q: tuple[float, float]) -> None:
        if abs(p[1] - q[1]) >= _FLAT:
            self.rule_xs.add(round(min(p[0], q[0])))


def _matrix(obj: object) -> Matrix:
    m = pdfium_c.FS_MATRIX()
    if not pdfium_c.FPDFPageObj_GetMatrix(obj, m):
        return _IDENTITY
    return (m.a, m.b, m.c, m.d, m.e, m.f)


def _compose(outer: Matrix, inner: Matrix) -> Matrix:
    """The matrix that applies `inner`, then `outer`."""
    a, b, c, d, e, f = outer
    p, q, r, s, t, u = inner
    return (
        p * a + q * c,
        p * b + q * d,
        r * a + s * c,
        r * b + s * d,
        t * a + u * c + e,
        t * b + u * d + f,
    )


# --- pdfplumber: ruled tables --------------------------------------------------------------------


def _find_tables(data: bytes, pages: list[_Page]) -> None:
    with _library_errors("pdfplumber"), pdfplumber.open(io.BytesIO(data)) as pdf:
        for page in pages:
            if not page.ruled:
                continue
            plumber_page = pdf.pages[page.number - 1]
            for found in plumber_page.find_tables():
                table = _to_table(found, page.number)
                if table is not None:
                    page.tables.append(_PageTable(table, found.bbox))
            # pdfplumber caches every char and edge of a page; drop them once the page is done.
            plumber_page.close()


def _to_table(found: pdfplumber.table.Table, page: int) -> Table | None:
    """Rebuild spans from cell boxes; None for a framed text box posing as a one-column table."""
    xs = sorted({box[0] for box in found.cells})
    tops = sorted({box[1] for box in found.cells})
    if len(xs) < 2:
        return None
    rows = []
    for row, texts in zip(found.rows, found.extract(), strict=True):
        cells = []
        for box, text in zip(row.cells, texts, strict=True):
            if box is None:  # covered by a span from above or the left
                continue
            x0, top, x1, bottom = box
            colspan = sum(1 for x in xs if x0 - _EDGE_EPS <= x < x1 - _EDGE_EPS)
            rowspan = sum(1 for y in tops if top - _EDGE_EPS <= y < bottom - _EDGE_EPS)
            cells.append(Cell(_join_lines((text or "").split("\n")), rowspan, colspan))
        rows.append(cells)
    return Table(rows=rows, page=page)


# --- text normalisation --------------------------------------------------------------------------


def _clean_line(text: str) -> str:
    # Letter-spaced headers ('结 果', '商 业 企') lose their spaces; '2024 年' keeps its own.
    return _SPACE_BETWEEN_WIDE.sub("", _WHITESPACE.sub(" ", text).strip())


def _join_lines(lines: list[str]) -> str:
    """Join wrapped lines: no space next to CJK text, one space between two Latin/digit tokens."""
    out = ""
    for line in map(_clean_line, lines):
        if not line:
            continue
        if out and _is_narrow(out[-1]) and _is_narrow(line[0]):
            out += " "
        out += line
    return out


def _is_narrow(ch: str) -> bool:
    return "\x21" <= ch <= "\u024f"


def _is_number(text: str) -> bool:
    return _NUMBER.fullmatch(text) is not None


# --- layout: lines, furniture, paragraphs --------------------------------------------------------


def _page_lines(page: _Page) -> list[_Line]:
    """Text lines in pdfium's (content) order, without the characters inside kept tables."""
    lines: list[_Line] = []
    current: list[_Char] = []
    for ch in [*page.chars, _Char("\n", 0, 0, 0, 0)]:
        if ch.text == "\n":
            ink = [c for c in current if not c.text.isspace()]
            if ink:
                text = "".join(c.text for c in current)
                lines.append(
                    _Line(
                        text=text,
                        page=page.number,
                        x0=ink[0].x0,
                        x1=ink[-1].x1,
                        top=min(c.top for c in ink),
                        bottom=max(c.bottom for c in ink),
                    )
                )
            current = []
        elif not any(_inside(ch, t.bbox) for t in page.tables):
            current.append(ch)
    return lines


def _inside(ch: _Char, bbox: tuple[float, float, float, float]) -> bool:
    x, y = (ch.x0 + ch.x1) / 2, (ch.top + ch.bottom) / 2
    return bbox[0] <= x <= bbox[2] and bbox[1] <= y <= bbox[3]


def _in_margin(line: _Line, height: float) -> bool:
    return line.top < height * _MARGIN_BAND or line.top > height * (1 - _MARGIN_BAND)


def _furniture_key(text: str) -> str:
    # Running headers differ only in their page number.
    return re.sub(r"\d+", "#", _clean_line(text))


def _drop_furniture(pages: list[tuple[_Page, list[_Line]]]) -> None:
    seen: Counter[str] = Counter()
    for page, lines in pages:
        seen.update({_furniture_key(ln.text) for ln in lines if _in_margin(ln, page.height)})
    needed = max(_RUNNING_MIN_PAGES, (len(pages) + 1) // 2)
    running = {key for key, count in seen.items() if count >= needed}
    for page, lines in pages:
        lines[:] = [
            ln
            for ln in lines
            if not (
                _in_margin(ln, page.height)
                and (
                    _PAGE_NUMBER.fullmatch(_clean_line(ln.text))
                    or _furniture_key(ln.text) in running
                )
            )
        ]


def _margins(lines: list[_Line]) -> _Margins:
    # The body's edges are where most lines start and end; titles, indents and last lines of
    # paragraphs are the minority.
    left = Counter(round(ln.x0) for ln in lines).most_common(1)[0][0]
    right = Counter(round(ln.x1) for ln in lines).most_common(1)[0][0]
    return _Margins(left, right)


def _starts_paragraph(prev: _Line | None, line: _Line, margins: _Margins) -> bool:
    if prev is None:
        return True
    if prev.x1 < margins.right - _SHORT_EM * prev.em:
        return True  # the previous line stopped short: its paragraph (or heading) ended there
    if line.page != prev.page and prev.text.rstrip().rstrip(_CLOSERS)[-1:] in _SENTENCE_END:
        return True  # a full last line may still end its paragraph; at a page end, trust the stop
    if line.text[:1] in ("\u3000", " ") or line.x0 > margins.left + _INDENT_EM * line.em:
        return True
    return _HEADING.match(_clean_line(line.text)) is not None


# --- assembly ------------------------------------------------------------------------------------


def _assemble(pages: list[_Page]) -> list[Block]:
    per_page = [(page, _page_lines(page)) for page in pages]
    _drop_furniture(per_page)
    all_lines = [ln for _, lines in per_page for ln in lines]
    margins = _margins(all_lines) if all_lines else _Margins(0, 0)

    blocks: list[Block] = []
    paragraph: list[_Line] = []
    tail_page = 0  # page of the last line or table placed

    def flush() -> None:
        if paragraph:
            blocks.append(Paragraph(_join_lines([ln.text for ln in paragraph]), paragraph[0].page))
            paragraph.clear()

    for page, lines in per_page:
        for i, item in enumerate(_page_items(page, lines)):
            if isinstance(item, _Line):
                if _starts_paragraph(paragraph[-1] if paragraph else None, item, margins):
                    flush()
                paragraph.append(item)
            else:
                flush()
                prev = blocks[-1] if blocks else None
                if (
                    i == 0
                    and tail_page == page.number - 1
                    and isinstance(prev, Table)
                    and _continues_table(prev, item)
                ):
                    _append_continuation(prev, item)
                else:
                    blocks.append(item)
            tail_page = page.number
    flush()
    return blocks


def _page_items(page: _Page, lines: list[_Line]) -> Iterator[_Line | Table]:
    """Lines in content order, each table placed before the first line that lies below its top."""
    tables = sorted(page.tables, key=lambda t: t.bbox[1])
    for line in lines:
        while tables and tables[0].bbox[1] < line.top:
            yield tables.pop(0).table
        yield line
    for found in tables:
        yield found.table


def _width(table: Table) -> int:
    # Nothing covers the first row from above, so its spans add up to the table's width.
    return sum(cell.colspan for cell in table.rows[0])


def _continues_table(prev: Table, table: Table) -> bool:
    """A table that opens a page continues the one that closed the previous page when the
    columns match and its first row holds data rather than a header of its own."""
    return _width(prev) == _width(table) and any(_is_number(c.text) for c in table.rows[0])


def _append_continuation(table: Table, more: Table) -> None:
    """Append `more`'s rows; first-row label cells that carry on a spanning label from above (a
    group cell broken mid-word, '（四）无' / '法提供', or left blank) extend that cell instead."""
    last = table.grid()[-1]
    head: list[Cell] = []
    col = 0
    labels = True  # group labels sit left of the row's first value, never among the values
    for cell in more.rows[0]:
        labels = labels and not _is_number(cell.text)
        above = last[col]
        if (
            labels
            and above is not None
            and (col == 0 or last[col - 1] is not above)
            and above.colspan == cell.colspan
            and _carries_on(above, cell)
        ):
            grown = Cell(
                _join_lines([above.text, cell.text]), above.rowspan + cell.rowspan, above.colspan
            )
            _replace(table, above, grown)
        else:
            head.append(cell)
        col += cell.colspan
    table.rows.extend([head, *more.rows[1:]])


def _carries_on(above: Cell, cell: Cell) -> bool:
    if not above.text or _is_number(above.text):
        return False
    if not cell.text:
        return True
    # A label tail spans the rows it groups; a one-row cell is a row label in its own right.
    return cell.rowspan > 1 and _LABEL_START.match(cell.text) is None


def _replace(table: Table, old: Cell, new: Cell) -> None:
    for row in table.rows:
        for i, cell in enumerate(row):
            if cell is old:
                row[i] = new
                return
