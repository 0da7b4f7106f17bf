"""PDF reader: bytes of a report → `Document` of paragraphs and tables in reading order.

Text comes from pypdfium2 (a few ms a page). Ruled tables come from the same pass: the path
segments walked through pdfium's raw API (~1–2 ms a page) become edges as pdfplumber would see
them, and pdfplumber's own table functions (snap, join, intersections, cells) turn them into cell
boxes (a few ms a page) that the page's pdfium characters fill. pdfminer never parses the file.
Only pages whose paths could rule a table of two or more columns are searched for tables.
"""

from __future__ import annotations

import ctypes
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import pairwise, product

import pypdfium2
import pypdfium2.raw as pdfium_c
from pdfplumber.table import (
    TableSettings,
    cells_to_tables,
    edges_to_intersections,
    intersections_to_cells,
    merge_edges,
)
from pdfplumber.utils import filter_edges

from .blocks import Block, Cell, Document, Paragraph, ParseError, Table

# Form XObjects can nest; pdfium's own object iterator stops at the same depth.
_MAX_FORM_DEPTH = 15
# An image covering at least this share of a text page, with no text on it, is read by OCR.
_PICTURE_SHARE = 0.05
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
# that `_to_table` keeps, so it is not searched for tables.
_MIN_RULE_XS = 3
# pdfplumber's default table settings (find_tables() with no arguments): the tolerances that
# snap, join and intersect edges, and the shortest edges kept.
_SETTINGS = TableSettings()
# extract_text()'s defaults for cell text: a gap wider than this starts a new word, and a char
# whose top lies within this of the line's previous one stays on that line.
_TEXT_X_TOLERANCE = 3
_TEXT_Y_TOLERANCE = 3
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
    # Set for characters read by OCR: the recogniser's probability, and other digits it may be.
    confidence: float | None = None
    alternatives: tuple[str, ...] = ()


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


Box = tuple[float, float, float, float]  # x0, top, x1, bottom, in pdfplumber's frame
Point = tuple[float, float]
Subpath = tuple[str, list[Point]]  # pdfminer's shape ('m', 'l', 'c', 'h' operators) and points


@dataclass(slots=True)
class _PageTable:
    table: Table
    bbox: Box


@dataclass(slots=True)
class _Page:
    number: int
    height: float
    chars: list[_Char]
    ruled: bool  # its paths have vertical segments at _MIN_RULE_XS or more distinct x
    has_images: bool
    subpaths: list[Subpath]
    tables: list[_PageTable] = field(default_factory=list)

    @property
    def has_text(self) -> bool:
        return any(not ch.text.isspace() for ch in self.chars)


@dataclass(slots=True)
class _Margins:
    left: float
    right: float


def read_pdf(data: bytes) -> Document:
    """Read a PDF report into blocks; raise `ParseError` for a file that cannot be read.

    Image-only pages are read by OCR (`ocr.py`) unless it is turned off (`NIANBAO_OCR=off`).
    """
    if not data:
        raise ParseError("empty_file", "The file is empty (0 bytes); download it again.")
    pdf = _open_pdfium(data)
    ocr_findings: list[dict[str, str]] = []
    try:
        with _library_errors("pypdfium2"):
            pages = [_scan_page(pdf[i], i + 1) for i in range(len(pdf))]
        ocr_findings = _ocr_image_pages(pdf, pages)
    finally:
        pdf.close()

    if not any(page.has_text for page in pages):
        raise ParseError(
            "no_text_layer",
            "No page has extractable text: the PDF is probably scanned images. "
            "Run OCR on it (e.g. ocrmypdf) or find a text version of the report.",
        )
    doc = Document(format="pdf", pages=len(pages))
    doc.problems = ocr_findings + [
        {
            "code": "no_text_layer",
            "page": str(page.number),
            "message": f"Page {page.number} is an image without text; its content is missing.",
        }
        for page in pages
        if page.has_images and not page.has_text
    ]
    for page in pages:
        if page.ruled:
            _find_tables(page)
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
    # pdfium's wrappers raise PdfiumError or worse on a broken file; callers must only ever see
    # ParseError for a bad input.
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


def _ocr_image_pages(pdf: pypdfium2.PdfDocument, pages: list[_Page]) -> list[dict[str, str]]:
    """Give each image-only page the characters and ruling lines OCR reads from it, and a text
    page those of each large image on it that no text lies on (a table pasted as a picture)."""
    scanned = [page for page in pages if page.has_images and not page.has_text]
    pictured = [page for page in pages if page.has_images and page.has_text]
    if not scanned and not pictured:
        return []
    from . import ocr

    if not ocr.enabled():
        return []
    findings = _ocr_pictures(pdf, pictured, ocr)
    skews = []
    for page in scanned:
        read = ocr.read_page(pdf[page.number - 1])
        page.chars = [
            _Char(c.text, c.x0, c.x1, c.top, c.bottom, c.confidence, c.alternatives)
            for c in read.chars
        ]
        page.subpaths = [("ml", [(x0, top), (x1, bottom)]) for x0, top, x1, bottom in read.rules]
        page.ruled = len({round(x0) for x0, _, x1, _ in read.rules if x0 == x1}) >= _MIN_RULE_XS
        if page.has_text:  # a page OCR read nothing on stays no_text_layer
            skews.append(f"{page.number} ({read.skew_degrees:+.1f}°)")
    if skews:
        findings.insert(
            0,
            {
                "code": "ocr_read",
                "message": f"{len(skews)} image-only page(s) read by OCR, deskewed by: "
                + ", ".join(skews),
            },
        )
    return findings


def _ocr_pictures(pdf: pypdfium2.PdfDocument, pages: list[_Page], ocr) -> list[dict[str, str]]:
    findings = []
    for page in pages:
        pdf_page = pdf[page.number - 1]
        left, _, _, top = pdf_page.get_mediabox()
        width, height = pdf_page.get_size()
        for image in pdf_page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=1):
            x0, y0, x1, y1 = image.get_bounds()
            box = (x0 - left, top - y1, x1 - left, top - y0)
            area = (box[2] - box[0]) * (box[3] - box[1])
            if area < _PICTURE_SHARE * width * height or any(
                _inside(ch, box) for ch in page.chars if not ch.text.isspace()
            ):
                continue
            read = ocr.read_page(pdf_page, box)
            if not any(not c.text.isspace() for c in read.chars):
                continue
            page.chars += [
                _Char(c.text, c.x0, c.x1, c.top, c.bottom, c.confidence, c.alternatives)
                for c in read.chars
            ]
            page.subpaths += [("ml", [(a, b), (c, d)]) for a, b, c, d in read.rules]
            rule_xs = {round(a) for a, _, c, _ in read.rules if a == c}
            page.ruled = page.ruled or len(rule_xs) >= _MIN_RULE_XS
            findings.append(
                {
                    "code": "ocr_read",
                    "page": str(page.number),
                    "message": f"an image on page {page.number} with no text on it was read by "
                    "OCR (a table or text pasted as a picture)",
                }
            )
    return findings


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
    objects = _Objects(rotated=page.get_rotation() in (90, 270), left=left, top=top)
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
        subpaths=objects.subpaths,
    )


Matrix = tuple[float, float, float, float, float, float]  # a b c d e f, as in PDF


@dataclass(slots=True)
class _Objects:
    """The object kinds on a page, the x positions of its vertical path segments in pdfplumber's
    frame (which turns with the page's /Rotate), and its subpaths as pdfminer would paint them,
    in the characters' frame (top-left of the media box)."""

    rotated: bool
    left: float
    top: float
    kinds: set[int] = field(default_factory=set)
    rule_xs: set[int] = field(default_factory=set)
    subpaths: list[Subpath] = field(default_factory=list)
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
        shape: list[str] = []
        points: list[Point] = []
        bezier = 0  # pdfium gives a Bézier curve as three points; pdfminer keeps only the last
        for i in range(pdfium_c.FPDFPath_CountSegments(obj)):
            segment = pdfium_c.FPDFPath_GetPathSegment(obj, i)
            pdfium_c.FPDFPathSegment_GetPoint(segment, self._x, self._y)
            x, y = self._x.value, self._y.value
            page_x, page_y = a * x + c * y + e, b * x + d * y + f
            at = (page_x - self.left, self.top - page_y)
            point = (page_y, page_x) if self.rotated else (page_x, page_y)
            kind = pdfium_c.FPDFPathSegment_GetType(segment)
            if kind == pdfium_c.FPDF_SEGMENT_MOVETO:
                self._subpath(shape, points)
                shape, points = ["m"], [at]
                start = point
            else:
                if prev is not None:  # a line, or a Bézier leg between control points
                    self._edge(prev, point)
                if kind == pdfium_c.FPDF_SEGMENT_BEZIERTO:
                    bezier = (bezier + 1) % 3
                    if bezier == 0:
                        shape.append("c")
                        points.append(at)
                else:
                    shape.append("l")
                    points.append(at)
            if start is not None and pdfium_c.FPDFPathSegment_GetClose(segment):
                self._edge(point, start)
                if points:
                    shape.append("h")
                    points.append(points[0])
            prev = point
        self._subpath(shape, points)

    def _subpath(self, shape: list[str], points: list[Point]) -> None:
        if len(points) > 1:  # a lone moveto paints nothing
            self.subpaths.append(("".join(shape), points))

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


# --- ruled tables: pdfium's paths through pdfplumber's table functions ---------------------------


def _find_tables(page: _Page) -> None:
    """What pdfplumber's `page.find_tables()` finds, from the paths and characters pdfium gave."""
    edges = merge_edges(
        _edges(page.subpaths),
        snap_x_tolerance=_SETTINGS.snap_x_tolerance,
        snap_y_tolerance=_SETTINGS.snap_y_tolerance,
        join_x_tolerance=_SETTINGS.join_x_tolerance,
        join_y_tolerance=_SETTINGS.join_y_tolerance,
    )
    intersections = edges_to_intersections(
        filter_edges(edges, min_length=_SETTINGS.edge_min_length),
        _SETTINGS.intersection_x_tolerance,
        _SETTINGS.intersection_y_tolerance,
    )
    for cells in cells_to_tables(intersections_to_cells(intersections)):
        table = _to_table(cells, page)
        if table is not None:
            bbox = (
                min(c[0] for c in cells),
                min(c[1] for c in cells),
                max(c[2] for c in cells),
                max(c[3] for c in cells),
            )
            page.tables.append(_PageTable(table, bbox))


def _edges(subpaths: list[Subpath]) -> list[dict[str, float | str]]:
    """The page's edges as pdfplumber's `page.edges` gives them (lines, then rectangles, then
    curves), kept as its table finder keeps them: vertical or horizontal, at least
    `edge_min_length_prefilter` long."""
    lines, rects, curves = [], [], []
    for shape, points in subpaths:
        # pdfminer drops a closing lineto that returns to the start before an 'h'.
        if len(shape) > 3 and shape.endswith("lh") and points[-2] == points[0]:
            shape, points = shape[:-2] + "h", points[:-1]
        if shape in ("ml", "mlh"):
            (x0, y0), (x1, y1) = points[:2]
            edge = _edge(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
            edge["orientation"] = "h" if y0 == y1 else "v"
            lines.append(edge)
        elif shape in ("mlllh", "mllll") and _is_rect(points):
            x0, x1 = sorted((points[0][0], points[2][0]))
            top, bottom = sorted((points[0][1], points[2][1]))
            rects += [
                _edge(x0, top, x1, top, "h"),
                _edge(x0, bottom, x1, bottom, "h"),
                _edge(x0, top, x0, bottom, "v"),
                _edge(x1, top, x1, bottom, "v"),
            ]
        else:
            for (x0, y0), (x1, y1) in pairwise(points):
                orientation = "v" if x0 == x1 else "h" if y0 == y1 else None
                if orientation:
                    curves.append(
                        _edge(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1), orientation)
                    )
    minimum = _SETTINGS.edge_min_length_prefilter
    return [
        e
        for e in lines + rects + curves
        if e["height" if e["orientation"] == "v" else "width"] >= minimum
    ]


def _edge(
    x0: float, top: float, x1: float, bottom: float, orientation: str = ""
) -> dict[str, float | str]:
    return {
        "x0": x0,
        "x1": x1,
        "top": top,
        "bottom": bottom,
        "width": x1 - x0,
        "height": bottom - top,
        "orientation": orientation,
    }


def _is_rect(points: list[Point]) -> bool:
    (x0, y0), (x1, y1), (x2, y2), (x3, y3), end = points
    return end == points[0] and (
        (x0 == x1 and y1 == y2 and x2 == x3 and y3 == y0)
        or (y0 == y1 and x1 == x2 and y2 == y3 and x3 == x0)
    )


def _to_table(cells: list[Box], page: _Page) -> Table | None:
    """Rebuild spans from cell boxes; None for a framed text box posing as a one-column table."""
    xs = sorted({box[0] for box in cells})
    tops = sorted({box[1] for box in cells})
    if len(xs) < 2:
        return None
    rows = []
    for row_top in tops:  # pdfplumber's rows: the cells that share a top, left to right
        row = sorted(box for box in cells if box[1] == row_top)
        row_box = (row[0][0], row_top, max(b[2] for b in row), max(b[3] for b in row))
        chars = [ch for ch in page.chars if ch.text != "\n" and _centre_in(ch, row_box)]
        rowcells = []
        for box in row:
            x0, top, x1, bottom = box
            colspan = sum(1 for x in xs if x0 - _EDGE_EPS <= x < x1 - _EDGE_EPS)
            rowspan = sum(1 for y in tops if top - _EDGE_EPS <= y < bottom - _EDGE_EPS)
            cell_chars = [ch for ch in chars if _centre_in(ch, box)]
            text = _join_lines(_text_lines(cell_chars))
            rowcells.append(_cell(text, rowspan, colspan, cell_chars))
        rows.append(rowcells)
    return Table(rows=rows, page=page.number)


def _cell(text: str, rowspan: int, colspan: int, chars: list[_Char]) -> Cell:
    """A cell; one read by OCR carries its lowest character confidence and the other readings
    its low-confidence digits allow."""
    confidences = [ch.confidence for ch in chars if ch.confidence is not None]
    if not confidences:
        return Cell(text, rowspan, colspan)
    from .ocr import LOW_CONFIDENCE, MAX_UNSURE_DIGITS

    unsure = [i for i, ch in enumerate(chars) if ch.alternatives and ch.confidence < LOW_CONFIDENCE]
    readings: set[str] = set()
    if len(unsure) <= MAX_UNSURE_DIGITS:
        for choice in product(*([chars[i].text, *chars[i].alternatives] for i in unsure)):
            changed = list(chars)
            for i, digit in zip(unsure, choice, strict=True):
                changed[i] = replace(chars[i], text=digit)
            readings.add(_join_lines(_text_lines(changed)))
    readings.discard(text)
    return Cell(text, rowspan, colspan, min(confidences), tuple(sorted(readings)))


def _centre_in(ch: _Char, box: Box) -> bool:
    # pdfplumber's test for a cell's characters: the centre, on the top-left sides only.
    x, y = (ch.x0 + ch.x1) / 2, (ch.top + ch.bottom) / 2
    return box[0] <= x < box[2] and box[1] <= y < box[3]


def _text_lines(chars: list[_Char]) -> list[str]:
    """A cell's characters as lines of text, top to bottom, the way extract_text() reads them:
    lines by top, characters left to right, a space where a space character or a gap parts two
    words."""
    lines: list[list[_Char]] = []
    for ch in sorted(chars, key=lambda c: c.top):
        if lines and ch.top <= lines[-1][-1].top + _TEXT_Y_TOLERANCE:
            lines[-1].append(ch)
        else:
            lines.append([ch])
    texts = []
    for line in lines:
        line.sort(key=lambda c: c.x0)
        text = line[0].text
        for prev, ch in pairwise(line):
            text += (" " if ch.x0 > prev.x1 + _TEXT_X_TOLERANCE else "") + ch.text
        texts.append(text)
    return texts


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
