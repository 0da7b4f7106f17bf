"""Absolutely positioned HTML text (a PDF converted to HTML: pdftohtml) → layout text.

Such a page has no <table>: each run of a line's text is an element placed at its own `top` and
`left`, so a table's cells are pieces on a common line. The pieces are laid out again as text,
one line for each top, each piece at the column its `left` falls on (in characters of the
page's commonest font size), at least two spaces from the piece before: the layout text that
`text.read_text` reads tables from, columns set apart by runs of spaces.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from unicodedata import east_asian_width

from lxml import etree

from .text import MIN_LAYOUT_ROWS

# A page whose text is mostly in positioned elements is laid out from their positions.
MIN_POSITIONED_SHARE = 0.8
# Pieces whose bottoms differ by less than this share of the font size are on one line.
_SAME_LINE = 0.4
_STYLE_PX = re.compile(r"(?<![-\w])(top|left|font-size|line-height)\s*:\s*(-?[\d.]+)px", re.I)
_CLASS_RULE = re.compile(r"\.([\w-]+)\s*\{([^}]*)\}")
_TEXT_NODES = etree.XPath(".//text()")
_DEFAULT_FONT_PX = 16.0
# Fonts smaller than the one that, with them, sets this share of the text are footnotes.
_COLUMN_FONT_SHARE = 0.05
# A digit or Latin letter is set about this share of an em wide.
_NARROW_EM = 0.55
# Pieces of one line less than this many ems apart are one run of text, not two cells.
_CELL_GAP = 1.0
# Elements that hold a block of text: one holding any is no run of a line.
_BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "dd",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    ]
)
# A run of a converted page is one printed line: a page of A4 at the smallest legible size sets
# under a hundred characters a line, so positioned elements averaging more place blocks of text.
_MAX_LINE_CHARS = 100


@dataclass(slots=True)
class _Piece:
    page: int
    bottom: float
    left: float
    text: str
    font: float  # px


def _width(text: str, font: float) -> float:
    """About how wide `text` is set: a CJK character an em, a Latin one or a digit about half."""
    return font * sum(1.0 if east_asian_width(ch) in "WF" else _NARROW_EM for ch in text)


def _styles(root: etree._Element) -> dict[str, dict[str, float]]:
    """The pixel sizes (font-size, line-height) each CSS class of the page's <style>s sets."""
    sizes: dict[str, dict[str, float]] = {}
    for style in root.iter("style"):
        for name, body in _CLASS_RULE.findall(style.text or ""):
            found = {key.lower(): float(value) for key, value in _STYLE_PX.findall(body)}
            if found:
                sizes.setdefault(name, {}).update(found)
    return sizes


def _defined_before(classes: dict[str, dict[str, float]], name: str, page: int) -> dict[str, float]:
    """pdftohtml names a font's class `ft` + page + font number, and defines it on the first page
    that uses the font only: the class of page `page` is the one an earlier page defined."""
    prefix = f"ft{page}"
    if not name.startswith(prefix) or len(name) == len(prefix):
        return {}
    font = name[len(prefix) :]
    for earlier in range(page - 1, 0, -1):
        if f"ft{earlier}{font}" in classes:
            return classes[f"ft{earlier}{font}"]
    return {}


def _position(element: etree._Element) -> dict[str, float]:
    style = element.get("style") or ""
    if "absolute" not in style:
        return {}
    where = {key.lower(): float(value) for key, value in _STYLE_PX.findall(style)}
    return where if "top" in where and "left" in where else {}


def _holds_blocks(element: etree._Element) -> bool:
    """An element holding paragraphs, divisions or a table places a block of text, not a run of
    one line (a CMS's positioned wrapper round a whole report)."""
    return any(
        isinstance(inner.tag, str) and inner.tag.lower() in _BLOCK_TAGS
        for inner in element.iterdescendants()
    )


def positioned_lines(root: etree._Element) -> list[str] | None:
    """The page as layout text lines, or None when its text is not mostly positioned runs.

    Each text node counts once, under its nearest positioned ancestor (a positioned element's
    place is relative to its positioned ancestors'); a positioned element that holds blocks is
    no run of a line, and its text is read by the normal reader. A page with a <table> has its
    table read as one, and a page whose runs stand on fewer than MIN_LAYOUT_ROWS lines, or
    average more than a printed line's characters a line, is no converted page.
    """
    body = root.find("body")
    body = root if body is None else body
    if body.find(".//table") is not None:
        return None
    total = sum(
        len("".join(text.split()))
        for text in _TEXT_NODES(body)
        if text.getparent().tag not in ("style", "script")
    )
    if not total:
        return None
    classes = _styles(root)
    # (page, top, left, its lines, font size and line height where its classes set them)
    placed_runs: list[tuple[int, float, float, list[str], float | None, float | None]] = []
    known: Counter[float] = Counter()
    placed = 0
    page = 0
    # Positioned elements by their place on the page, their own offsets added to their
    # positioned ancestors'.
    places: dict[etree._Element, tuple[float, float]] = {}
    for element in body.iter():
        if not isinstance(element.tag, str):
            continue
        if element.tag == "div" and "relative" in (element.get("style") or ""):
            page += 1  # pdftohtml: one relatively positioned <div> a page, tops within it
            continue
        where = _position(element)
        if not where:
            continue
        outer = next((a for a in element.iterancestors() if a in places), None)
        top, left = places[outer] if outer is not None else (0.0, 0.0)
        top, left = top + where["top"], left + where["left"]
        places[element] = (top, left)
        if _holds_blocks(element):
            continue
        text = _lines(element)
        if not any(line.strip() for line in text):
            continue
        size: dict[str, float] = {}
        for holder in [*reversed(list(element.iterancestors())), element]:
            for name in (holder.get("class") or "").split():
                size.update(classes.get(name, {}) or _defined_before(classes, name, page))
        size.update(where)
        font = size.get("font-size")
        if font is not None:
            known[font] += sum(map(len, text))
        placed_runs.append((page, top, left, text, font, size.get("line-height")))
        placed += len("".join("".join(text).split()))
    if placed < MIN_POSITIONED_SHARE * total:
        return None
    lines_placed = len({(page, top) for page, top, *_ in placed_runs})
    if lines_placed < MIN_LAYOUT_ROWS or placed > _MAX_LINE_CHARS * lines_placed:
        return None
    # A class its page does not define (pdftohtml defines each font once) is the common size.
    usual = known.most_common(1)[0][0] if known else _DEFAULT_FONT_PX
    pieces: list[_Piece] = []
    sizes: Counter[float] = Counter()
    for page, top, left, text, font, step in placed_runs:
        font = usual if font is None else font
        step = font * 1.2 if step is None else step
        for number, line in enumerate(text):
            if line.strip():
                # Lined up by the bottom of the text (about its baseline): a figure set larger
                # than its row's label starts higher.
                pieces.append(_Piece(page, top + number * step + font, left, line, font))
                sizes[font] += len(line)
    return _lay_out(pieces, _column_width(sizes))


def _column_width(sizes: Counter[float]) -> float:
    """The width a character of layout text stands for: a digit's in the smallest font that sets
    a fair share of the text (a table is often set smaller than the prose), so that a label
    laid out one character a column never runs into the values to its right."""
    total = sum(sizes.values())
    held = 0
    for size in sorted(sizes):
        held += sizes[size]
        if held >= _COLUMN_FONT_SHARE * total:
            return size * _NARROW_EM
    return _DEFAULT_FONT_PX * _NARROW_EM


def _lines(element: etree._Element) -> list[str]:
    """An element's text split at its <br>s (pdftohtml sets a paragraph's lines so), without the
    text of positioned elements inside it: each of those is a run of its own."""
    lines = [element.text or ""]

    def add(inner: etree._Element) -> None:
        for node in inner:
            if isinstance(node.tag, str) and node.tag.lower() == "br":
                lines.append("")
            elif isinstance(node.tag, str) and not _position(node):
                lines[-1] += node.text or ""
                add(node)
            lines[-1] += node.tail or ""

    add(element)
    return [line.replace("\xa0", " ") for line in lines]


def _lay_out(pieces: list[_Piece], column_width: float) -> list[str]:
    lines: list[str] = []
    pieces.sort(key=lambda p: (p.page, p.bottom, p.left))
    current: list[_Piece] = []
    for piece in pieces:
        if current and (
            piece.page != current[0].page
            or piece.bottom - current[0].bottom >= _SAME_LINE * min(piece.font, current[0].font)
        ):
            lines.append(_line(current, column_width))
            current = []
        current.append(piece)
    if current:
        lines.append(_line(current, column_width))
    return lines


def _line(pieces: list[_Piece], column_width: float) -> str:
    """One line of text: pieces that nearly touch (a figure set in another font inside a
    sentence) one space apart, others at their columns, two spaces apart at least."""
    text = ""
    end, font = 0.0, 0.0
    for piece in sorted(pieces, key=lambda p: p.left):
        words = piece.text.strip()
        if text and piece.left - end < _CELL_GAP * min(font, piece.font):
            text += " " + words
        else:
            column = round(piece.left / column_width)
            text += " " * max(column - len(text), 2 if text else 0) + words
        end, font = piece.left + _width(piece.text, piece.font), piece.font
    return text
