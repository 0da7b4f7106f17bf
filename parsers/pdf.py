"""PDF reader: bytes of a report → `Document` of paragraphs and tables in reading order.

Text comes from pypdfium2's pdfium, its characters and boxes read by a small C extension
(`_pdfium_reader.c`, which loops over pdfium's per-character calls). Ruled tables come from the
same pass: the path segments, walked by the extension too, become edges as pdfplumber would see
them, and pdfplumber's table algorithms (its own snap and join; intersections, cells and tables
redone here with the same output, without its rescans) turn them into cell boxes that the page's
pdfium characters fill, found by bisection in an index of the page's characters built once.
pdfminer never parses the file. Only pages whose paths could rule a table of two or more
columns are searched for tables.
"""

from __future__ import annotations

import ctypes
import re
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import compress, dropwhile, groupby, pairwise, product, repeat
from math import isnan
from operator import add, gt, itemgetter, ne, not_, truediv
from typing import Any

import pypdfium2
import pypdfium2.raw as pdfium_c
from pdfplumber.table import TableSettings

from nianbao.schema import numbering, registry

from . import _pdfium_reader
from .blocks import Block, Cell, Document, Paragraph, ParseError, Table
from .problems import MESSAGES
from .result import Problem

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
# A path this wide or tall is never one glyph drawn as a path (see _rules).
_GLYPH_MAX = 40.0
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

# ASCII and Latin: words in these scripts keep a space between them; CJK text never does.
_NARROW = "\x21-\u024f"
_SPACE_BETWEEN_WIDE = re.compile(rf"(?<=[^\s{_NARROW}]) (?=[^\s{_NARROW}])")
_WHITESPACE = re.compile(r"\s+")
_NUMBER = re.compile(r"[-+]?\d[\d,，]*(?:\.\d+)?%?")
_PAGE_NUMBER = re.compile(
    r"[-–—－‐]*\s*(?:第\s*)?\d{1,4}(?:\s*页)?(?:\s*[/／]\s*\d{1,4}|\s*共\s*\d{1,4}\s*页)?\s*[-–—－‐]*"
)
_CID = re.compile(r"\(cid:\d+\)")
# What _check_garbled counts, as character classes: the replacement character, the private use
# area and control characters that are not whitespace (\s is str.isspace() here).
_UNREADABLE = re.compile(r"[\ufffd\ue000-\uf8ff\x00-\x08\x0e-\x1b]")
_SPACE = re.compile(r"\s")
_SENTENCE_END = "。！？.!?…"
_CLOSERS = "”’」』）)"


@dataclass(slots=True)
class _Char:
    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    # Set for characters read by OCR: the recogniser's probability, other digits it may be, the
    # key of the table cell line it was read from (`Document.ocr_lines`), and other readings of
    # that whole line (`ocr.OcrChar.rereads`).
    confidence: float | None = None
    alternatives: tuple[str, ...] = ()
    line: int | None = None
    rereads: tuple[str, ...] = ()


@dataclass(slots=True)
class _Chars:
    """A page's characters as columns, in pdfium's (content) order: its text, one code point a
    character, and the sides of their boxes. Prose lines are read from the columns with C-level
    string and list operations; a `_Char` is built only for a character that a table cell
    holds, which spares the Python object and its __init__ for most of a report's characters."""

    text: str
    x0: list[float]
    x1: list[float]
    top: list[float]
    bottom: list[float]
    # Characters read by OCR: each one's (confidence, alternatives, line, rereads); None for
    # pdfium's.
    readings: list[tuple[float | None, tuple[str, ...], int | None, tuple[str, ...]]] | None = None

    @classmethod
    def of(cls, chars: list[_Char]) -> _Chars:
        text = "".join(ch.text for ch in chars)
        if len(text) != len(chars):  # positions in the text must be positions in the columns
            raise ValueError("a character's text must be one code point")
        return cls(
            text,
            [ch.x0 for ch in chars],
            [ch.x1 for ch in chars],
            [ch.top for ch in chars],
            [ch.bottom for ch in chars],
            [(ch.confidence, ch.alternatives, ch.line, ch.rereads) for ch in chars],
        )

    def __len__(self) -> int:
        return len(self.text)

    def __getitem__(self, position: int) -> _Char:
        reading = self.readings[position] if self.readings else (None, (), None, ())
        return _Char(
            self.text[position],
            self.x0[position],
            self.x1[position],
            self.top[position],
            self.bottom[position],
            *reading,
        )

    def all(self) -> list[_Char]:
        return list(map(self.__getitem__, range(len(self.text))))

    def columns(self) -> tuple[list[float], list[float], list[float], list[float]]:
        return self.x0, self.x1, self.top, self.bottom


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
    chars: _Chars
    ruled: bool  # its paths have vertical segments at _MIN_RULE_XS or more distinct x
    has_images: bool
    subpaths: list[Subpath]
    tables: list[_PageTable] = field(default_factory=list)
    _by_centre: _CentreIndex | None = None

    @property
    def has_text(self) -> bool:
        text = self.chars.text
        return bool(text) and not text.isspace()  # some character is not whitespace

    def by_centre(self) -> _CentreIndex:
        """The page's characters indexed by centre, built once for all of its tables."""
        if self._by_centre is None:
            self._by_centre = _CentreIndex(self.chars)
        return self._by_centre


class _CentreIndex:
    """A page's characters (line breaks aside) sorted by the y of their centre, so that the ones
    whose centre lies in a band of the page are one bisection away. Held as columns (centre y,
    centre x, position), built and sorted by C-level maps and key functions."""

    def __init__(self, chars: _Chars) -> None:
        ys = list(map(truediv, map(add, chars.top, chars.bottom), repeat(2)))
        xs = list(map(truediv, map(add, chars.x0, chars.x1), repeat(2)))
        if any(map(isnan, ys)) or any(map(isnan, xs)):
            # A NaN centre fails every comparison, so it lies in no cell or table: leave it out
            # of the sort, where it would break the order.
            positions = [
                position
                for position, (text, y, x) in enumerate(zip(chars.text, ys, xs, strict=True))
                if text != "\n" and y == y and x == x
            ]
        else:
            positions = list(compress(range(len(ys)), map(ne, chars.text, repeat("\n"))))
        positions.sort(key=ys.__getitem__)  # stable: pdfium's order among equal centres
        self._positions = positions
        self._ys = list(map(ys.__getitem__, positions))
        self._xs = list(map(xs.__getitem__, positions))

    def within(self, box: Box) -> set[int]:
        """Positions of the characters whose centre lies in `box`, its sides included."""
        x0, top, x1, bottom = box
        start, end = bisect_left(self._ys, top), bisect_right(self._ys, bottom)
        return {
            position
            for position, x in zip(self._positions[start:end], self._xs[start:end], strict=True)
            if x0 <= x <= x1
        }

    def band(self, top: float, bottom: float) -> tuple[list[float], list[float], list[int]]:
        """The centre y, centre x and position of the characters whose centre y is in
        [top, bottom), sorted by centre x."""
        start, end = bisect_left(self._ys, top), bisect_left(self._ys, bottom)
        order = sorted(range(start, end), key=self._xs.__getitem__)
        return (
            list(map(self._ys.__getitem__, order)),
            list(map(self._xs.__getitem__, order)),
            list(map(self._positions.__getitem__, order)),
        )


@dataclass(slots=True)
class _Margins:
    left: float
    right: float


def read_pdf(data: bytes) -> Document:
    """Read a PDF report into blocks; raise `ParseError` for a file that cannot be read.

    Image-only pages are read by OCR (`ocr.py`) unless it is turned off (`NIANBAO_OCR=off`).
    """
    if not data:
        raise ParseError("empty_file", MESSAGES["empty_file"])
    pdf = _open_pdfium(data)
    ocr_findings: list[Problem] = []
    ocr_lines: dict[int, Any] = {}
    try:
        with _library_errors("pypdfium2"):
            pages = [_scan_page(pdf, i) for i in range(len(pdf))]
            properties = _properties(pdf)
        ocr_findings = _ocr_image_pages(pdf, pages, ocr_lines)
    finally:
        pdf.close()

    if not any(page.has_text for page in pages):
        raise ParseError(
            "no_text_layer",
            "No page has extractable text: the PDF is probably scanned images. "
            "Run OCR on it (e.g. ocrmypdf) or find a text version of the report.",
        )
    doc = Document(
        format="pdf",
        pages=len(pages),
        title=properties.get("Title"),
        author=properties.get("Author"),
        ocr_lines=ocr_lines,
    )
    doc.problems = ocr_findings + [
        Problem(
            "no_text_layer",
            f"Page {page.number} is an image without text; its content is missing.",
            page=str(page.number),
        )
        for page in pages
        if page.has_images and not page.has_text
    ]
    for page in pages:
        if page.ruled:
            _find_tables(page)
    doc.blocks = _assemble(pages)
    _check_garbled(doc.blocks)
    return doc


def _properties(pdf: pypdfium2.PdfDocument) -> dict[str, str]:
    """The Info dictionary's non-empty Title and Author, the entries a report is read for
    (pdfium decodes UTF-16 ones right)."""
    try:
        values = {key: pdf.get_metadata_value(key) for key in ("Title", "Author")}
    except pypdfium2.PdfiumError:
        return {}  # unreadable metadata is no reason to lose the report
    return {key: value.strip() for key, value in values.items() if value and value.strip()}


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
    bad = cids + len(_UNREADABLE.findall(text))
    total = cids + len(text) - len(_SPACE.findall(text))
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


def _ocr_image_pages(
    pdf: pypdfium2.PdfDocument, pages: list[_Page], lines: dict[int, Any]
) -> list[Problem]:
    """Give each image-only page the characters and ruling lines OCR reads from it, and a text
    page those of each large image on it that no text lies on (a table pasted as a picture);
    the images of the table cell lines read go into `lines`."""
    scanned = [page for page in pages if page.has_images and not page.has_text]
    pictured = [page for page in pages if page.has_images and page.has_text]
    if not scanned and not pictured:
        return []
    from . import ocr

    if not ocr.enabled():
        return []
    ocr.announce_pages(len(scanned) + len(pictured))
    findings = _ocr_pictures(pdf, pictured, ocr, lines)
    skews = []
    for page in scanned:
        read = ocr.read_page(pdf[page.number - 1])
        lines.update(read.lines)
        page.chars = _Chars.of(_ocr_chars(read))
        page.subpaths = [("ml", [(x0, top), (x1, bottom)]) for x0, top, x1, bottom in read.rules]
        page.ruled = len({round(x0) for x0, _, x1, _ in read.rules if x0 == x1}) >= _MIN_RULE_XS
        if page.has_text:  # a page OCR read nothing on stays no_text_layer
            skews.append(f"{page.number} ({read.skew_degrees:+.1f}°)")
    if skews:
        findings.insert(
            0,
            Problem(
                "ocr_read",
                f"{len(skews)} image-only page(s) read by OCR, deskewed by: " + ", ".join(skews),
            ),
        )
    return findings


def _ocr_chars(read: Any) -> list[_Char]:
    """The characters of an `ocr.OcrPage`, with their readings."""
    return [
        _Char(c.text, c.x0, c.x1, c.top, c.bottom, c.confidence, c.alternatives, c.line, c.rereads)
        for c in read.chars
    ]


def _ocr_pictures(
    pdf: pypdfium2.PdfDocument, pages: list[_Page], ocr, lines: dict[int, Any]
) -> list[Problem]:
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
                not page.chars.text[i].isspace() for i in page.by_centre().within(box)
            ):
                continue
            read = ocr.read_page(pdf_page, box)
            if not any(not c.text.isspace() for c in read.chars):
                continue
            lines.update(read.lines)
            page.chars = _Chars.of(page.chars.all() + _ocr_chars(read))
            page._by_centre = None  # built before these characters were added
            page.subpaths += [("ml", [(a, b), (c, d)]) for a, b, c, d in read.rules]
            rule_xs = {round(a) for a, _, c, _ in read.rules if a == c}
            page.ruled = page.ruled or len(rule_xs) >= _MIN_RULE_XS
            findings.append(
                Problem(
                    "ocr_read",
                    f"an image on page {page.number} with no text on it was read by "
                    "OCR (a table or text pasted as a picture)",
                    page=str(page.number),
                )
            )
    return findings


# --- pdfium: characters, object kinds, rules ------------------------------------------------------


def _scan_page(pdf: pypdfium2.PdfDocument, index: int) -> _Page:
    """Page `index` (from 0): its characters, whether it holds images, and its rules.

    The page and its text page are loaded and closed through pdfium's raw calls: pypdfium2's
    helper objects (a finalizer and a parent link each) cost about as much as loading the text
    of a short page.
    """
    page = pdfium_c.FPDF_LoadPage(pdf.raw, index)
    if not page:
        raise pypdfium2.PdfiumError("Failed to load page.")
    try:
        left, bottom, top = _media_box(page)
        textpage = pdfium_c.FPDFText_LoadPage(page)
        if not textpage:
            raise pypdfium2.PdfiumError("Failed to load text page.")
        try:
            chars = _page_chars(textpage, left, top)
        finally:
            pdfium_c.FPDFText_ClosePage(textpage)
        rotation = pdfium_c.FPDFPage_GetRotation(page)  # quarter turns, clockwise
        if rotation == -1:
            raise pypdfium2.PdfiumError("Failed to get page rotation.")
        objects = _Objects(rotated=rotation in (1, 3), left=left, top=top)
        objects.scan(page)
    finally:
        pdfium_c.FPDF_ClosePage(page)
    return _Page(
        number=index + 1,
        height=top - bottom,
        chars=chars,
        ruled=len(objects.rule_xs) >= _MIN_RULE_XS,
        has_images=objects.has_images,
        subpaths=objects.subpaths,
    )


def _media_box(page: pdfium_c.FPDF_PAGE) -> tuple[float, float, float]:
    """Left, bottom and top of the page's MediaBox; US Letter where it has none, as pypdfium2's
    `get_mediabox()` gives it."""
    left, bottom, right, top = (ctypes.c_float() for _ in range(4))
    if not pdfium_c.FPDFPage_GetMediaBox(page, left, bottom, right, top):
        return 0, 0, 792
    return left.value, bottom.value, top.value


def _address(handle: Any) -> int:
    """The address a pdfium handle (a ctypes pointer) holds."""
    return ctypes.cast(handle, ctypes.c_void_p).value


# The per-character and per-object loops run in C (parsers/_pdfium_reader.c): through ctypes each
# of pdfium's calls cost ~2,700 instructions of marshalling, three a character and two for each
# text object only to pass it over. The extension calls the functions of pypdfium2's own pdfium.
_pdfium_reader.bind(
    **{
        name: _address(getattr(pdfium_c, name))
        for name in (
            "FPDFText_CountChars",
            "FPDFText_GetUnicode",
            "FPDFText_HasUnicodeMapError",
            "FPDFText_GetLooseCharBox",
            "FPDFPage_CountObjects",
            "FPDFPage_GetObject",
            "FPDFPageObj_GetType",
            "FPDFPageObj_GetMatrix",
            "FPDFFormObj_CountObjects",
            "FPDFFormObj_GetObject",
            "FPDFPath_CountSegments",
            "FPDFPath_GetPathSegment",
            "FPDFPathSegment_GetPoint",
            "FPDFPathSegment_GetType",
            "FPDFPathSegment_GetClose",
        )
    }
)


def _page_chars(textpage: pdfium_c.FPDF_TEXTPAGE, left: float, top: float) -> _Chars:
    """Every character of the page with its loose box, in pdfplumber's frame (top-left of the
    media box), but pdfium's generated carriage returns (its line feed alone marks a line
    break). U+FFFD for a character whose font has no Unicode map (pdfium would pass its glyph
    number through as a code point, which reads as random scripts rather than as unreadable
    text), and for half of a UTF-16 pair without its partner; a whole pair, which pdfium gives
    as two characters, is one. pdfium's bulk text (`FPDFText_GetText`) is not used: it leaves
    out characters of the list, so text and boxes would drift apart."""
    return _Chars(*_pdfium_reader.page_chars(_address(textpage), left, top))


Matrix = tuple[float, float, float, float, float, float]  # a b c d e f, as in PDF
_MOVETO, _BEZIERTO = pdfium_c.FPDF_SEGMENT_MOVETO, pdfium_c.FPDF_SEGMENT_BEZIERTO


@dataclass(slots=True)
class _Objects:
    """Whether a page holds images, the x positions of its vertical path segments in pdfplumber's
    frame (which turns with the page's /Rotate), and its subpaths as pdfminer would paint them,
    in the characters' frame (top-left of the media box)."""

    rotated: bool
    left: float
    top: float
    has_images: bool = False
    rule_xs: set[int] = field(default_factory=set)
    subpaths: list[Subpath] = field(default_factory=list)

    def scan(self, page: pdfium_c.FPDF_PAGE) -> None:
        # pdfium's object walk (forms included) and the paths' segments come from C; most
        # objects are text (often one a character), which needs nothing here.
        self.has_images, paths = _pdfium_reader.page_objects(_address(page), _MAX_FORM_DEPTH)
        for matrix, coordinates, kinds, closes in paths:
            self._path(matrix, coordinates, kinds, closes)

    def _path(self, matrix: Matrix, coordinates: list[float], kinds: bytes, closes: bytes) -> None:
        """One path object: its segments' points (x, y pairs in the object's space), pdfium's
        segment kinds, and whether each closes its subpath."""
        a, b, c, d, e, f = matrix
        start = prev = None
        shape: list[str] = []
        points: list[Point] = []
        bezier = 0  # pdfium gives a Bézier curve as three points; pdfminer keeps only the last
        points_in = iter(coordinates)
        for x, y, kind, closes_here in zip(points_in, points_in, kinds, closes, strict=True):
            page_x, page_y = a * x + c * y + e, b * x + d * y + f
            at = (page_x - self.left, self.top - page_y)
            point = (page_y, page_x) if self.rotated else (page_x, page_y)
            if kind == _MOVETO:
                self._subpath(shape, points)
                shape, points = ["m"], [at]
                start = point
            else:
                if prev is not None:  # a line, or a Bézier leg between control points
                    self._edge(prev, point)
                if kind == _BEZIERTO:
                    bezier = (bezier + 1) % 3
                    if bezier == 0:
                        shape.append("c")
                        points.append(at)
                else:
                    shape.append("l")
                    points.append(at)
            if start is not None and closes_here:
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


# --- ruled tables: pdfium's paths through pdfplumber's table functions ---------------------------


def _find_tables(page: _Page) -> None:
    """What pdfplumber's `page.find_tables()` finds, from the paths and characters pdfium gave."""
    v_boxes, h_boxes = _intersections(
        *_merged(*_edges(_rules(page))),
        _SETTINGS.intersection_x_tolerance,
        _SETTINGS.intersection_y_tolerance,
    )
    for cells in _cells_to_tables(_intersections_to_cells(v_boxes, h_boxes)):
        table = _to_table(cells, page)
        if table is not None:
            bbox = (
                min(c[0] for c in cells),
                min(c[1] for c in cells),
                max(c[2] for c in cells),
                max(c[3] for c in cells),
            )
            page.tables.append(_PageTable(table, bbox))


def _rules(page: _Page) -> list[Subpath]:
    """The page's subpaths as rules: a thin one (a filled bar, or a border side drawn as a
    trapezoid) becomes the line along its middle, and one drawn inside a character's box (a
    glyph painted as a path) is left out.

    A bar's two long sides are two edges a bar's width apart, and snapping chains positions
    that lie within its tolerance of the next: Chromium's bordered cells (a bar each side of each
    cell, the table's border a bar beside them) chain across the gap to the next table, and the
    cluster's mean moves off the rows' ends, so a column is lost. Its middle line is where
    snapping would put the bar alone. Tools that cannot write a stroked or outlined glyph as text
    (pdftocairo re-writing the fill-and-stroke of a fake-bold heading) draw its outline as paths
    over the text; their straight strokes would otherwise rule columns through a table below."""
    index, chars = None, page.chars
    tolerance = _SETTINGS.snap_x_tolerance
    kept = []
    for subpath in page.subpaths:
        xs, ys = [p[0] for p in subpath[1]], [p[1] for p in subpath[1]]
        x0, x1, top, bottom = min(xs), max(xs), min(ys), max(ys)
        width, height = x1 - x0, bottom - top
        if width > _GLYPH_MAX or height > _GLYPH_MAX:
            kept.append(_middle_line(subpath, x0, top, x1, bottom, tolerance))
            continue
        if index is None:
            index = page.by_centre()
        reach = _GLYPH_MAX / 2
        near = index.within((x0 - reach, top - reach, x1 + reach, bottom + reach))
        if not any(
            chars.x0[i] - _EDGE_EPS <= x0
            and x1 <= chars.x1[i] + _EDGE_EPS
            and chars.top[i] - _EDGE_EPS <= top
            and bottom <= chars.bottom[i] + _EDGE_EPS
            for i in near
        ):
            kept.append(_middle_line(subpath, x0, top, x1, bottom, tolerance))
    return kept


def _middle_line(
    subpath: Subpath, x0: float, top: float, x1: float, bottom: float, thinnest: float
) -> Subpath:
    """A straight subpath no thicker than `thinnest` and longer than that, as a line along its
    middle; any other subpath as it is."""
    if "c" in subpath[0]:
        return subpath
    width, height = x1 - x0, bottom - top
    if height <= thinnest < width:
        middle = (top + bottom) / 2
        return ("ml", [(x0, middle), (x1, middle)])
    if width <= thinnest < height:
        middle = (x0 + x1) / 2
        return ("ml", [(middle, top), (middle, bottom)])
    return subpath


# An edge as pdfplumber's table finder keeps it (its dict's numbers, its orientation apart).
Edge = tuple[float, float, float, float, float, float]  # x0, top, x1, bottom, width, height
_X0, _TOP, _X1, _BOTTOM, _WIDTH, _HEIGHT = range(6)


def _edges(subpaths: list[Subpath]) -> tuple[list[Edge], list[Edge]]:
    """The page's vertical and horizontal edges as pdfplumber's `page.edges` gives them (lines,
    then rectangles, then curves), kept as its table finder keeps them: vertical or horizontal,
    at least `edge_min_length_prefilter` long."""
    lines, rects, curves = [], [], []  # (orientation, edge)
    for shape, points in subpaths:
        # pdfminer drops a closing lineto that returns to the start before an 'h'.
        if len(shape) > 3 and shape.endswith("lh") and points[-2] == points[0]:
            shape, points = shape[:-2] + "h", points[:-1]
        if shape in ("ml", "mlh"):
            (x0, y0), (x1, y1) = points[:2]
            edge = _edge(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
            lines.append(("h" if y0 == y1 else "v", edge))
        elif shape in ("mlllh", "mllll") and _is_rect(points):
            x0, x1 = sorted((points[0][0], points[2][0]))
            top, bottom = sorted((points[0][1], points[2][1]))
            rects += [
                ("h", _edge(x0, top, x1, top)),
                ("h", _edge(x0, bottom, x1, bottom)),
                ("v", _edge(x0, top, x0, bottom)),
                ("v", _edge(x1, top, x1, bottom)),
            ]
        else:
            for (x0, y0), (x1, y1) in pairwise(points):
                orientation = "v" if x0 == x1 else "h" if y0 == y1 else None
                if orientation:
                    edge = _edge(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
                    curves.append((orientation, edge))
    minimum = _SETTINGS.edge_min_length_prefilter
    edges = lines + rects + curves
    return (
        [e for orientation, e in edges if orientation == "v" and e[_HEIGHT] >= minimum],
        [e for orientation, e in edges if orientation == "h" and e[_WIDTH] >= minimum],
    )


def _edge(x0: float, top: float, x1: float, bottom: float) -> Edge:
    return (x0, top, x1, bottom, x1 - x0, bottom - top)


def _merged(vertical: list[Edge], horizontal: list[Edge]) -> tuple[list[Edge], list[Edge]]:
    """pdfplumber's `merge_edges` and `filter_edges(min_length=edge_min_length)` with the
    default settings, on tuples: each orientation's edges snapped to their cluster's mean
    position, then those on one line joined where they touch, then the short ones dropped.
    Same edges, same numbers, same order within each orientation (its dicts cost a copy of the
    whole edge for every move and resize)."""
    settings = _SETTINGS
    vertical = _joined(_snapped(vertical, _X0, settings.snap_x_tolerance), _X0, settings)
    horizontal = _joined(_snapped(horizontal, _TOP, settings.snap_y_tolerance), _TOP, settings)
    minimum = settings.edge_min_length
    return (
        [e for e in vertical if e[_HEIGHT] >= minimum],
        [e for e in horizontal if e[_WIDTH] >= minimum],
    )


def _snapped(edges: list[Edge], at: int, tolerance: float) -> list[Edge]:
    """pdfplumber's `snap_objects` on the position `at` (x0 of vertical edges, top of
    horizontal ones): positions within `tolerance` of the previous one form a cluster, and its
    edges move to the cluster's mean, cluster by cluster in order of position."""
    values = [e[at] for e in edges]
    cluster: dict[float, int] = {}
    number, last = -1, 0.0
    for value in sorted(set(values)):
        if number < 0 or not value <= last + tolerance:
            number += 1
        cluster[value] = number
        last = value
    moved: list[Edge] = []
    ordered = sorted(zip(edges, map(cluster.get, values), strict=True), key=itemgetter(1))
    for _, members in groupby(ordered, key=itemgetter(1)):
        group = [edge for edge, _ in members]
        mean = sum(e[at] for e in group) / len(group)
        for x0, top, x1, bottom, width, height in group:
            if at == _X0:
                shift = mean - x0
                moved.append((x0 + shift, top, x1 + shift, bottom, width, height))
            else:
                shift = mean - top
                moved.append((x0, top + shift, x1, bottom + shift, width, height))
    return moved


def _joined(edges: list[Edge], at: int, settings: TableSettings) -> list[Edge]:
    """pdfplumber's `join_edge_group` over each line's edges, lines in order of position:
    an edge that starts within the join tolerance of the previous one's end extends it."""
    if at == _X0:  # vertical edges: joined along y
        start, end, tolerance = _TOP, _BOTTOM, settings.join_y_tolerance
    else:
        start, end, tolerance = _X0, _X1, settings.join_x_tolerance
    line_key = itemgetter(slice(at, at + 1))  # pdfplumber sorts and groups by a tuple key
    joined: list[Edge] = []
    for _, line in groupby(sorted(edges, key=line_key), key=line_key):
        on_line = sorted(line, key=itemgetter(start))
        joined.append(on_line[0])
        for edge in on_line[1:]:
            last = joined[-1]
            if edge[start] <= last[end] + tolerance:
                if edge[end] > last[end]:
                    joined[-1] = _resized(last, end, edge[end])
            else:
                joined.append(edge)
    return joined


def _resized(edge: Edge, end: int, value: float) -> Edge:
    """pdfplumber's `resize_object` of an edge's far end (bottom or x1)."""
    x0, top, x1, bottom, width, height = edge
    if end == _BOTTOM:
        return (x0, top, x1, value, width, height + (value - bottom))
    return (x0, top, value, bottom, value - x0, height)


def _is_rect(points: list[Point]) -> bool:
    (x0, y0), (x1, y1), (x2, y2), (x3, y3), end = points
    return end == points[0] and (
        (x0 == x1 and y1 == y2 and x2 == x3 and y3 == y0)
        or (y0 == y1 and x1 == x2 and y2 == y3 and x3 == x0)
    )


def _intersections(
    vertical_edges: list[Edge],
    horizontal_edges: list[Edge],
    x_tolerance: float,
    y_tolerance: float,
) -> tuple[dict[Point, set[int]], dict[Point, set[int]]]:
    """pdfplumber's `edges_to_intersections`: its points, each with the vertical and the
    horizontal edges that cross there, as sets of edge numbers. Edges with the same box share a
    number, since pdfplumber tells edges apart by their boxes (`obj_to_bbox`); each box is built
    and hashed once, not once per point. The horizontal edges are sorted once rather than once
    for every vertical edge."""
    numbers: dict[Box, int] = {}
    vertical = [
        (e[_X0], e[_TOP], e[_BOTTOM], numbers.setdefault(e[:4], len(numbers)))
        for e in sorted(vertical_edges, key=_V_ORDER)
    ]
    horizontal = [
        (e[_TOP], e[_X0], e[_X1], numbers.setdefault(e[:4], len(numbers)))
        for e in sorted(horizontal_edges, key=_H_ORDER)
    ]
    v_boxes: dict[Point, set[int]] = {}
    h_boxes: dict[Point, set[int]] = {}
    for x, v_top, v_bottom, v_number in vertical:
        for y, h_x0, h_x1, h_number in horizontal:
            if (
                (v_top <= (y + y_tolerance))
                and (v_bottom >= (y - y_tolerance))
                and (x >= (h_x0 - x_tolerance))
                and (x <= (h_x1 + x_tolerance))
            ):
                vertex = (x, y)
                if vertex in v_boxes:
                    v_boxes[vertex].add(v_number)
                    h_boxes[vertex].add(h_number)
                else:
                    v_boxes[vertex] = {v_number}
                    h_boxes[vertex] = {h_number}
    return v_boxes, h_boxes


# The orders pdfplumber's edges_to_intersections sorts edges in: (x0, top), (top, x0).
_V_ORDER, _H_ORDER = itemgetter(_X0, _TOP), itemgetter(_TOP, _X0)


def _intersections_to_cells(
    v_boxes: dict[Point, set[int]], h_boxes: dict[Point, set[int]]
) -> list[Box]:
    """pdfplumber's `intersections_to_cells`, same cells in the same order, without its cost.

    It rebuilds the set of edge boxes at both points of every pair it tests, and scans all later
    points for the ones below and to the right of each point. Here each point's edges are
    sets built once (`_intersections`), and the points in each column and row are grouped once.
    """
    points = sorted(v_boxes)
    # In sorted order, a column's points come top to bottom and a row's left to right, so the
    # points below (right of) one are those after it in its column (row).
    column: defaultdict[float, list[Point]] = defaultdict(list)
    row: defaultdict[float, list[Point]] = defaultdict(list)
    place = {}
    for point in points:
        place[point] = (len(column[point[0]]), len(row[point[1]]))
        column[point[0]].append(point)
        row[point[1]].append(point)

    cells = []
    for point in points[:-1]:
        in_column, in_row = place[point]
        below = column[point[0]][in_column + 1 :]
        right = row[point[1]][in_row + 1 :]
        cell = _smallest_cell(point, below, right, v_boxes, h_boxes)
        if cell is not None:
            cells.append(cell)
    return cells


def _smallest_cell(
    point: Point,
    below: list[Point],
    right: list[Point],
    v_boxes: dict[Point, set[int]],
    h_boxes: dict[Point, set[int]],
) -> Box | None:
    # pdfplumber's edge_connects joins two points sharing an x by a common vertical edge, and
    # two sharing a y by a horizontal one. A point below shares only the x, one to the right
    # only the y; the bottom-right corner shares only the x with the right point and only the
    # y with the point below. So each test needs one orientation.
    vertical, horizontal = v_boxes[point], h_boxes[point]
    for below_point in below:
        if vertical.isdisjoint(v_boxes[below_point]):
            continue
        for right_point in right:
            if horizontal.isdisjoint(h_boxes[right_point]):
                continue
            corner = (right_point[0], below_point[1])
            if (
                corner in v_boxes
                and not v_boxes[corner].isdisjoint(v_boxes[right_point])
                and not h_boxes[corner].isdisjoint(h_boxes[below_point])
            ):
                return (point[0], point[1], corner[0], corner[1])
    return None


def _cells_to_tables(cells: list[Box]) -> list[list[Box]]:
    """pdfplumber's `cells_to_tables`: the same groups of cells that touch at a corner, in the
    same order, with each pass keeping the cells it did not take rather than removing the ones
    it took from a list (quadratic on a page of many cells)."""
    remaining = list(cells)
    corners: set[Point] = set()
    current: list[Box] = []
    tables = []
    while remaining:
        before = len(current)
        kept = []
        for cell in remaining:
            x0, top, x1, bottom = cell
            cell_corners = ((x0, top), (x0, bottom), (x1, top), (x1, bottom))
            if not current or not corners.isdisjoint(cell_corners):
                corners.update(cell_corners)
                current.append(cell)
            else:
                kept.append(cell)
        remaining = kept
        if len(current) == before:  # nothing touched the group: it is a table; start another
            tables.append(list(current))
            corners.clear()
            current.clear()
    if current:
        tables.append(list(current))
    tables.sort(key=lambda t: min((c[1], c[0]) for c in t))
    return [t for t in tables if len(t) > 1]


def _to_table(cells: list[Box], page: _Page) -> Table | None:
    """Rebuild spans from cell boxes; None for a framed text box posing as a one-column table.

    A cell holds the characters whose centre lies inside it, on its top and left sides only
    (pdfplumber's test). They are found with one sort-based pass per row of cells: the page's
    characters in the row's band, sorted by x, then bisected at each cell's sides.
    """
    xs = sorted({box[0] for box in cells})
    tops = sorted({box[1] for box in cells})
    if len(xs) < 2:
        return None
    by_top: defaultdict[float, list[Box]] = defaultdict(list)
    for box in cells:
        by_top[box[1]].append(box)
    index, chars = page.by_centre(), page.chars
    rows = []
    for row_top in tops:  # pdfplumber's rows: the cells that share a top, left to right
        row = sorted(by_top[row_top])
        band_ys, band_xs, band_positions = index.band(row_top, max(b[3] for b in row))
        rowcells = []
        for x0, top, x1, bottom in row:
            # xs and tops between a cell's sides, as counts of sorted positions.
            colspan = bisect_left(xs, x1 - _EDGE_EPS) - bisect_left(xs, x0 - _EDGE_EPS)
            rowspan = bisect_left(tops, bottom - _EDGE_EPS) - bisect_left(tops, top - _EDGE_EPS)
            start, end = bisect_left(band_xs, x0), bisect_left(band_xs, x1)
            inside = band_positions[start:end]
            ys = band_ys[start:end]
            if ys and max(ys) >= bottom:  # the band reaches below this cell (a taller neighbour)
                inside = list(compress(inside, map(gt, repeat(bottom), ys)))
            inside.sort()  # back in pdfium's order, which _text_lines' stable sorts keep for ties
            text = _join_lines(_text_lines(inside, chars)) if inside else ""
            rowcells.append(_cell(text, rowspan, colspan, inside, chars))
        rows.append(rowcells)
    return Table(rows=rows, page=page.number)


def _cell(text: str, rowspan: int, colspan: int, inside: list[int], chars: _Chars) -> Cell:
    """A cell of the characters at positions `inside`; one read by OCR carries its lowest
    character confidence, the other readings its low-confidence digits allow, the keys of the
    cell lines it was read from, and, a cell of one line, that line's other readings."""
    readings = chars.readings
    if readings is None:
        return Cell(text, rowspan, colspan)
    confidences = [readings[i][0] for i in inside if readings[i][0] is not None]
    if not confidences:
        return Cell(text, rowspan, colspan)
    from .ocr import LOW_CONFIDENCE, MAX_UNSURE_DIGITS

    unsure = [i for i in inside if readings[i][1] and readings[i][0] < LOW_CONFIDENCE]
    others: set[str] = set()
    if len(unsure) <= MAX_UNSURE_DIGITS:
        for choice in product(*([chars.text[i], *readings[i][1]] for i in unsure)):
            changed = list(chars.text)
            for i, digit in zip(unsure, choice, strict=True):
                changed[i] = digit
            others.add(_join_lines(_text_lines(inside, chars, changed)))
    others.discard(text)
    lines = tuple(dict.fromkeys(readings[i][2] for i in inside if readings[i][2] is not None))
    rereads: tuple[str, ...] = ()
    if len(lines) == 1:
        rereads = tuple(r for r in readings[inside[0]][3] if r != text)
    return Cell(text, rowspan, colspan, min(confidences), tuple(sorted(others)), lines, rereads)


def _text_lines(inside: list[int], chars: _Chars, text: Sequence[str] | None = None) -> list[str]:
    """The characters at positions `inside` (of `chars`, read with `text` in place of their own
    where given) as lines of text, top to bottom, the way extract_text() reads them: lines by
    top, characters left to right, a space where a space character or a gap parts two words."""
    text = chars.text if text is None else text
    if len(inside) == 1:
        return [text[inside[0]]]
    tops, x0s, x1s = chars.top, chars.x0, chars.x1
    if len(inside) == 2:  # the commonest cell (a two-digit figure): the steps below, unrolled
        first, second = inside
        if tops[second] < tops[first]:
            first, second = second, first
        if tops[second] > tops[first] + _TEXT_Y_TOLERANCE:
            return [text[first], text[second]]
        if x0s[second] < x0s[first]:
            first, second = second, first
        gap = " " if x0s[second] > x1s[first] + _TEXT_X_TOLERANCE else ""
        return [text[first] + gap + text[second]]
    by_top = sorted(inside, key=tops.__getitem__)
    lowest, highest = tops[by_top[0]], tops[by_top[-1]]
    if highest <= lowest + _TEXT_Y_TOLERANCE:
        # Most cells hold one line: every step between sorted tops is then within the
        # tolerance too, so the walk below would make this one line.
        lines = [by_top]
    else:
        lines = []
        previous_top = 0.0
        for i in by_top:
            top = tops[i]
            if lines and top <= previous_top + _TEXT_Y_TOLERANCE:
                lines[-1].append(i)
            else:
                lines.append([i])
            previous_top = top
    texts = []
    for line in lines:
        line.sort(key=x0s.__getitem__)
        gaps = map(
            gt,
            map(x0s.__getitem__, line[1:]),
            map(add, map(x1s.__getitem__, line), repeat(_TEXT_X_TOLERANCE)),
        )
        if not any(gaps):  # no word gap: the characters run together
            texts.append("".join(map(text.__getitem__, line)))
            continue
        words = text[line[0]]
        for prev, i in pairwise(line):
            words += (" " if x0s[i] > x1s[prev] + _TEXT_X_TOLERANCE else "") + text[i]
        texts.append(words)
    return texts


# --- text normalisation --------------------------------------------------------------------------


# Cell and line texts repeat (labels, numbers); prose lines rarely do, so the cache stays small.
@lru_cache(maxsize=1 << 12)
def _clean_line(text: str) -> str:
    # Letter-spaced headers ('结 果', '商 业 企') lose their spaces; '2024 年' keeps its own.
    return _SPACE_BETWEEN_WIDE.sub("", _WHITESPACE.sub(" ", text).strip())


def _join_lines(lines: list[str]) -> str:
    """Join wrapped lines: no space next to CJK text, one space between two Latin/digit tokens."""
    if len(lines) == 1:
        return _clean_line(lines[0])
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
    """Text lines in pdfium's (content) order, without the characters inside kept tables.

    A line's text is its characters', whitespace included; its box is its ink's (non-whitespace
    characters): the first one's left, the last one's right, the highest top, the lowest
    bottom. Read from the page's columns by slices and C-level min/max."""
    chars = page.chars
    text, x0s, x1s, tops, bottoms = chars.text, chars.x0, chars.x1, chars.top, chars.bottom
    covered = set().union(*(page.by_centre().within(t.bbox) for t in page.tables))
    lines: list[_Line] = []
    start = 0
    for segment in text.split("\n"):
        end = start + len(segment)
        if covered and not covered.isdisjoint(range(start, end)):
            kept = [i for i in range(start, end) if i not in covered]
            segment = "".join(map(text.__getitem__, kept))
            ink: Sequence[int] = [i for i in kept if not text[i].isspace()]
        elif _SPACE.search(segment) is None:
            ink = range(start, end)
        else:
            ink = list(compress(range(start, end), map(not_, map(str.isspace, segment))))
        if ink:
            lines.append(
                _Line(
                    text=segment,
                    page=page.number,
                    x0=x0s[ink[0]],
                    x1=x1s[ink[-1]],
                    top=min(map(tops.__getitem__, ink)),
                    bottom=max(map(bottoms.__getitem__, ink)),
                )
            )
        start = end + 1
    return lines


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
    return numbering.PDF_HEADING.match(_clean_line(line.text)) is not None


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
    """A table that opens a page continues the one that closed the previous page when its first
    row holds data rather than a header of its own: figures under the same columns, or a row
    label with blank values and no header word of the template. It may be narrower: a group
    label cut by the page break leaves its column empty there, which is no column at all."""
    first = table.rows[0]
    if _width(table) == _width(prev) and any(_is_number(c.text) for c in first):
        return True
    return (
        _width(table) <= _width(prev)
        and _labels_then_values(first)
        and not registry.prints_header(None, "".join(c.text for c in first))
    )


def _labels_then_values(row: list[Cell]) -> bool:
    """Text cells (labels) first, then at least one cell, each a figure or blank: the shape of
    a data row; a header row prints words after a blank corner or among its column titles."""
    values = list(dropwhile(lambda cell: cell.text and not _is_number(cell.text), row))
    return 0 < len(values) < len(row) and all(
        not cell.text or _is_number(cell.text) for cell in values
    )


def _append_continuation(table: Table, more: Table) -> None:
    """Append `more`'s rows; first-row label cells that carry on a spanning label from above (a
    group cell broken mid-word, '（四）无' / '法提供', or left blank) extend that cell instead."""
    last = table.grid()[-1]
    head: list[Cell] = []
    col = _width(table) - _width(more)  # a narrower continuation lacks the left columns
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
    return cell.rowspan > 1 and numbering.ROW_LABEL_START.match(cell.text) is None


def _replace(table: Table, old: Cell, new: Cell) -> None:
    for row in table.rows:
        for i, cell in enumerate(row):
            if cell is old:
                row[i] = new
                return
