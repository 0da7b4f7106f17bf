"""HTML -> blocks with lxml: rowspan/colspan, <br>/<p> inside cells, &nbsp;, page chrome ignored."""

from __future__ import annotations

import re
from functools import lru_cache

from lxml import etree

from .blocks import Cell, Document, Paragraph, ParseError, Table
from .encoding import declared_charset, decode_text
from .positioned import positioned_lines
from .problems import MESSAGES
from .text import read_text

_SKIP_TAGS = {
    "script",
    "style",
    "nav",
    "footer",
    "header",
    "aside",
    "noscript",
    "form",
    "iframe",
    "select",
    "button",
    "head",
    "template",
    "svg",
}
_CHROME = re.compile(
    r"(?:^|[\s_-])(?:nav|navbar|menu|footer|breadcrumb|crumbs?|sidebar|share|copyright)(?:$|[\s_-])",
    re.I,
)
_BLOCK_TAGS = {
    "p",
    "div",
    "section",
    "article",
    "main",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "pre",
    "center",
    "dl",
    "dt",
    "dd",
    "body",
    "tbody",
}
_HEADING_TAGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
# Grid positions one table's spans may cover; the largest template table has a few hundred.
_MAX_TABLE_AREA = 20_000
_SPACES = re.compile(r"[ \t\r\f\v\xa0\u3000]+")
# An element's text with its descendants' (lxml.html's text_content()).
_STRING_CONTENT = etree.XPath("string()", smart_strings=False)


def _is_chrome(element: etree._Element) -> bool:
    if element.tag in _SKIP_TAGS:
        return True
    marker = f"{element.get('class', '')} {element.get('id', '')}"
    return bool(marker.strip()) and bool(_CHROME.search(marker))


def _cell_text(cell: etree._Element) -> str:
    if len(cell) == 0:  # most cells: text alone, nothing to walk
        return _tidy(cell.text or "")
    parts: list[str] = []

    def walk(node: etree._Element) -> None:
        if node.tag in ("br",) or node.tag in ("p", "div") and parts:
            parts.append("\n")
        if node.text and node.tag not in ("script", "style"):
            parts.append(node.text)
        for child in node:
            if isinstance(child.tag, str) and child.tag != "table":
                walk(child)
            if child.tail:
                parts.append(child.tail)

    walk(cell)
    return _tidy("".join(parts))


# Cell texts repeat (0, 无, labels); longer ones rarely do, so the cache stays small.
@lru_cache(maxsize=1 << 12)
def _tidy(text: str) -> str:
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return "\n".join(line for line in lines if line)


def _span(cell: etree._Element, name: str) -> int:
    value = cell.get(name)
    return 1 if value is None else _span_value(value)


@lru_cache(maxsize=1024)
def _span_value(value: str) -> int:
    try:
        return max(1, min(int(value.strip() or 1), 1000))
    except ValueError:
        return 1


def _table(element: etree._Element) -> Table:
    rows = []
    for tr in element.iter("tr"):
        # Rows of a nested table belong to that table, not this one.
        if next(tr.iterancestors("table")) is not element:
            continue
        cells = [
            Cell(_cell_text(td), _span(td, "rowspan"), _span(td, "colspan"))
            for td in tr
            if td.tag in ("td", "th")
        ]
        if cells:
            rows.append(cells)
    if sum(c.rowspan * c.colspan for row in rows for c in row) > _MAX_TABLE_AREA:
        # Spans this large are broken markup, not a layout, and Table.grid() would place every
        # position they cover: seconds of work for a few bytes of HTML.
        rows = [[Cell(c.text) for c in row] for row in rows]
    return Table(rows)


class _Collector:
    def __init__(self) -> None:
        self.blocks: list[Paragraph | Table] = []
        self.buffer: list[str] = []
        self.kind = "paragraph"

    def flush(self) -> None:
        text = _SPACES.sub(" ", "".join(self.buffer)).strip()
        if text:
            self.blocks.append(Paragraph(text, kind=self.kind))  # type: ignore[arg-type]
        self.buffer.clear()
        self.kind = "paragraph"

    def walk(self, node: etree._Element) -> None:
        if not isinstance(node.tag, str) or _is_chrome(node):
            return
        if node.tag == "table":
            self.flush()
            self.blocks.append(_table(node))
            for inner in node.iter("table"):
                if inner is not node and next(inner.iterancestors("table")) is node:
                    self.blocks.append(_table(inner))
            return
        block = node.tag in _BLOCK_TAGS
        if block or node.tag == "br":
            self.flush()
        if node.tag in _HEADING_TAGS:
            self.kind = "heading"
        if node.text:
            self.buffer.append(node.text)
        for child in node:
            self.walk(child)
            if child.tail:
                self.buffer.append(child.tail)
        if block:
            self.flush()


def read_html(data: bytes) -> Document:
    text = decode_text(data, declared_charset(data))
    if not text.strip():
        raise ParseError("empty_file", MESSAGES["empty_file"])
    # The text parser never fetches anything: no DTDs, no external entities, no network. Plain
    # lxml elements: lxml.html's element classes cost a class lookup on every element touched,
    # and the tree is the same (lxml.html.HTMLParser only adds that lookup).
    parser = etree.HTMLParser(no_network=True, remove_comments=True, recover=True)
    try:
        root = etree.fromstring(text, parser)
        if root is None:  # as lxml.html.document_fromstring says it
            raise etree.ParserError("Document is empty")
    except (etree.ParserError, ValueError) as error:
        raise ParseError("corrupt_html", f"the HTML could not be parsed: {error}") from error
    title_element = root.find(".//title")
    title = _STRING_CONTENT(title_element).strip() if title_element is not None else None
    laid_out = positioned_lines(root)
    if laid_out is not None:
        # A PDF converted to HTML (pdftohtml): pieces of text at their positions, no <table>.
        document = read_text("\n".join(laid_out).encode("utf-8"))
        return Document("html", document.blocks, title=title or None)
    collector = _Collector()
    body = root.find("body")
    collector.walk(body if body is not None else root)
    collector.flush()
    return Document("html", collector.blocks, title=title or None)
