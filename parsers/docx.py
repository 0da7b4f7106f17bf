"""DOCX reader: bytes → `Document` (format "docx").

The zip is vetted with `zipfile` before python-docx touches it, because python-docx reads every
part of the package into memory. The body is then walked in document order (w:p, w:tbl, and the
content of block-level content controls); table spans come from w:gridSpan and w:vMerge.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass

import docx
from docx.document import Document as WordDocument
from docx.enum.style import WD_STYLE_TYPE
from docx.opc.exceptions import OpcError
from docx.oxml.ns import qn
from docx.styles import BabelFish
from docx.styles.style import StyleFactory
from lxml import etree

from .blocks import Block, Cell, Document, Paragraph, ParseError, Table
from .problems import MESSAGES

_MB = 1024 * 1024

# What zipfile raises on a damaged archive, found by fuzzing real files: a bad central directory
# (BadZipFile, ValueError on a negative seek), a bad deflate stream (zlib.error, EOFError), an
# unknown version or method (NotImplementedError), an encrypted entry (RuntimeError).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    OSError,
)


@dataclass(frozen=True, slots=True)
class DocxLimits:
    """What a DOCX may cost to open; anything beyond is rejected as `docx_zip_bomb`."""

    max_total_uncompressed: int = 200 * _MB
    max_entries: int = 10_000
    # Text XML compresses 10-30:1 and runs of zeros far more, so the ratio only counts for
    # entries big enough to hurt.
    max_ratio: float = 200.0
    ratio_applies_above: int = 10 * _MB


DEFAULT_LIMITS = DocxLimits()

# A DTD has no business in an OOXML part; its only use in the wild is entity expansion.
_DTD_MARKERS = tuple(
    marker.encode(encoding)
    for marker in ("<!DOCTYPE", "<!ENTITY")
    for encoding in ("utf-8", "utf-16-le", "utf-16-be")
)

_HEADING_STYLE = re.compile(r"^(heading\s*[1-3]|title|标题(\s*[1-3])?)$", re.IGNORECASE)

# About half a millimetre: narrower than any column that can hold a character.
_HAIRLINE_TWIPS = 30

_P, _TBL, _TR, _TC = qn("w:p"), qn("w:tbl"), qn("w:tr"), qn("w:tc")
_SDT, _SDT_CONTENT, _CUSTOM_XML = qn("w:sdt"), qn("w:sdtContent"), qn("w:customXml")
_T, _TAB, _BR, _CR = qn("w:t"), qn("w:tab"), qn("w:br"), qn("w:cr")
_NB_HYPHEN, _VAL, _TYPE = qn("w:noBreakHyphen"), qn("w:val"), qn("w:type")
# Properties as (container, property) tags, spelt out once: qn() on every cell cost more than
# the lookups.
_P_STYLE = (qn("w:pPr"), qn("w:pStyle"))
_GRID_BEFORE = (qn("w:trPr"), qn("w:gridBefore"))
_GRID_SPAN = (qn("w:tcPr"), qn("w:gridSpan"))
_V_MERGE = (qn("w:tcPr"), qn("w:vMerge"))
_STYLE_TYPES = {member.xml_value: member for member in WD_STYLE_TYPE}
# Deleted revisions, and drawings whose text boxes would otherwise leak (often twice, through
# mc:Fallback) into the paragraph that anchors them.
_SKIPPED_INLINE = {
    qn("w:del"),
    qn("w:moveFrom"),
    qn("w:drawing"),
    qn("w:pict"),
    qn("w:object"),
    "{http://schemas.openxmlformats.org/markup-compatibility/2006}AlternateContent",
    # Paragraph and run properties hold formatting only, never text: most of a run's elements.
    qn("w:pPr"),
    qn("w:rPr"),
}


def read_docx(data: bytes, limits: DocxLimits = DEFAULT_LIMITS) -> Document:
    """Read a .docx file into blocks; raise `ParseError` when it cannot or should not be opened."""
    if not data:
        raise ParseError("empty_file", MESSAGES["empty_file"])
    _vet_package(data, limits)
    try:
        word = docx.Document(io.BytesIO(data))
        root = word.element
        headings = _heading_style_ids(word)
        title = (word.core_properties.title or "").strip() or None
        author = (word.core_properties.author or "").strip() or None
    except (*_ZIP_ERRORS, KeyError, OpcError, etree.LxmlError, AttributeError, TypeError) as exc:
        # python-docx reports a broken package through whichever of these its internals hit;
        # ValueError is also how it says the main part is not a Word document, and a part of
        # the wrong type (a .rels or styles part with a foreign root or content type) surfaces
        # as an AttributeError on a plain lxml element or Part.
        raise ParseError("corrupt_docx", f"not a readable Word document: {exc}") from exc

    body = root.find(qn("w:body")) if root.tag == qn("w:document") else None
    if body is None:
        raise ParseError("corrupt_docx", "the main document part has no w:document/w:body")
    blocks: list[Block] = []
    for element in _content(body):
        if element.tag == _P:
            text = _paragraph_text(element).strip()
            if text:
                kind = "heading" if _style_id(element) in headings else "paragraph"
                blocks.append(Paragraph(text, kind=kind))
        elif element.tag == _TBL:
            blocks.extend(_tables(element))
    return Document(format="docx", blocks=blocks, title=title, author=author)


def _vet_package(data: bytes, limits: DocxLimits) -> None:
    try:
        package = zipfile.ZipFile(io.BytesIO(data))
    except _ZIP_ERRORS as exc:
        raise ParseError("corrupt_docx", f"not a zip archive: {exc}") from exc
    with package:
        entries = package.infolist()
        # zipfile stops every read at the declared size (and fails the CRC past it), so the
        # declared sizes bound what python-docx can inflate.
        if len(entries) > limits.max_entries:
            raise ParseError(
                "docx_zip_bomb", f"{len(entries)} zip entries (limit {limits.max_entries})"
            )
        total = sum(entry.file_size for entry in entries)
        if total > limits.max_total_uncompressed:
            raise ParseError(
                "docx_zip_bomb",
                f"{total} bytes uncompressed (limit {limits.max_total_uncompressed})",
            )
        for entry in entries:
            ratio = entry.file_size / max(entry.compress_size, 1)
            if entry.file_size > limits.ratio_applies_above and ratio > limits.max_ratio:
                raise ParseError(
                    "docx_zip_bomb",
                    f"{entry.filename} inflates {ratio:.0f}:1 to {entry.file_size} bytes",
                )
        for entry in entries:
            if entry.filename.endswith((".xml", ".rels")):
                try:
                    part = package.read(entry)
                except _ZIP_ERRORS as exc:
                    raise ParseError(
                        "corrupt_docx", f"{entry.filename} cannot be unzipped: {exc}"
                    ) from exc
                if any(marker in part for marker in _DTD_MARKERS):
                    raise ParseError("corrupt_docx", f"{entry.filename} declares a DTD or entities")


def _content(element: etree._Element) -> Iterator[etree._Element]:
    """Children of `element`, looking through content controls and custom-XML wrappers."""
    for child in element:
        if child.tag == _SDT:
            for inner in child.iterchildren(_SDT_CONTENT):
                yield from _content(inner)
        elif child.tag == _CUSTOM_XML:
            yield from _content(child)
        else:
            yield child


def _paragraph_text(p: etree._Element) -> str:
    # python-docx's Paragraph.text only sees direct runs and hyperlinks, which drops inserted
    # revisions, smart tags and fields; walk every run instead.
    parts: list[str] = []

    def walk(element: etree._Element) -> None:
        for child in element:
            tag = child.tag
            if tag in _SKIPPED_INLINE:
                continue
            if tag == _T:
                parts.append(child.text or "")
            elif tag == _TAB:
                parts.append("\t")
            elif tag == _CR or (tag == _BR and child.get(_TYPE) in (None, "textWrapping")):
                parts.append("\n")
            elif tag == _NB_HYPHEN:
                parts.append("-")
            else:
                walk(child)

    walk(p)
    return "".join(parts)


def _property(element: etree._Element, tags: tuple[str, str]) -> etree._Element | None:
    """`element.find("container/property")`, the first match in document order, without
    lxml's path machinery, which costs more than the lookup on every cell and paragraph."""
    container_tag, property_tag = tags
    for container in element.iterchildren(container_tag):
        for found in container.iterchildren(property_tag):
            return found
    return None


def _style_id(p: etree._Element) -> str | None:
    style = _property(p, _P_STYLE)
    return None if style is None else style.get(_VAL)


def _heading_style_ids(word: WordDocument) -> set[str]:
    # Chinese Word keeps built-in names in English ("heading 1") under numeric ids; WPS and
    # hand-made templates may name them 标题 1. Matching names, not ids, covers both.
    # The style elements are read directly: python-docx's style objects convert w:type through
    # its enum on every access. A missing or unknown w:type goes through python-docx, which
    # raises on it as `word.styles` would.
    ids = set()
    for element in word.styles.element.style_lst:
        kind = _STYLE_TYPES.get(element.get(_TYPE))
        if kind is None:
            kind = StyleFactory(element).type
        if kind != WD_STYLE_TYPE.PARAGRAPH:
            continue
        name = element.name_val
        name = None if name is None else BabelFish.internal2ui(name)
        if _HEADING_STYLE.match((name or "").strip()):
            ids.add(element.styleId)
    return ids


@dataclass(slots=True)
class _PendingCell:
    text: str
    col: int
    colspan: int
    rowspan: int = 1


def _tables(tbl: etree._Element) -> list[Table]:
    """The table, then every table nested in its cells (each followed by its own nested ones)."""
    rows: list[list[_PendingCell]] = []
    nested: list[Table] = []
    # Column where a vertical merge started → the cell it keeps growing.
    open_merges: dict[int, _PendingCell] = {}
    for tr in _content(tbl):
        if tr.tag != _TR:
            continue
        row: list[_PendingCell] = []
        continued: dict[int, _PendingCell] = {}
        col = _int_property(tr, _GRID_BEFORE, default=0)
        if col:
            # Cells are placed by order, so a row that starts late needs a blank in front.
            row.append(_PendingCell("", col=0, colspan=col))
        for tc in _content(tr):
            if tc.tag != _TC:
                continue
            span = max(_int_property(tc, _GRID_SPAN, default=1), 1)
            content = list(_content(tc))
            text = "\n".join(_paragraph_text(p) for p in content if p.tag == _P).strip()
            nested.extend(t for inner in content if inner.tag == _TBL for t in _tables(inner))
            merge = _vmerge(tc)
            above = open_merges.get(col)
            if merge == "continue" and above is not None:
                above.rowspan += 1
                if text:
                    # Text left in a continued cell belongs to the merged cell; keep it.
                    above.text = f"{above.text}\n{text}" if above.text else text
                continued[col] = above
            else:
                cell = _PendingCell(text, col=col, colspan=span)
                row.append(cell)
                if merge is not None:
                    continued[col] = cell
            col += span
        open_merges = continued
        rows.append(row)
    kept = _kept_columns(rows, _grid_widths(tbl))
    table = Table(
        [
            [
                Cell(
                    c.text,
                    c.rowspan,
                    bisect_left(kept, c.col + c.colspan) - bisect_left(kept, c.col),
                )
                for c in row
            ]
            for row in rows
        ]
    )
    return [table, *nested]


def _grid_widths(tbl: etree._Element) -> list[int | None]:
    """Width of each w:tblGrid column in twips, None where it is not a plain number."""
    widths: list[int | None] = []
    for column in tbl.iterfind(f"{qn('w:tblGrid')}/{qn('w:gridCol')}"):
        try:
            widths.append(int(column.get(qn("w:w"), "")))
        except ValueError:
            widths.append(None)
    return widths


def _kept_columns(rows: list[list[_PendingCell]], widths: list[int | None]) -> list[int]:
    """Grid columns that separate cells, so spans can be counted over them alone.

    Word and LibreOffice leave columns that no cell starts in (every row spans across them) and
    hairline columns a few twips wide where two rows' borders almost line up; neither is a
    column a reader sees. A hairline stays when dropping it would leave a cell with no column.
    """
    starts = {cell.col for row in rows for cell in row}
    cells = [cell for row in rows for cell in row]
    hairlines = {c for c, w in enumerate(widths) if w is not None and w < _HAIRLINE_TWIPS}
    kept = sorted(starts - hairlines)
    if all(bisect_left(kept, c.col + c.colspan) > bisect_left(kept, c.col) for c in cells):
        return kept
    return sorted(starts)


def _int_property(element: etree._Element, tags: tuple[str, str], default: int) -> int:
    found = _property(element, tags)
    if found is None:
        return default
    try:
        return int(found.get(_VAL, default))
    except ValueError:
        return default


def _vmerge(tc: etree._Element) -> str | None:
    """The cell's vertical merge: restart, continue (a w:vMerge without val) or None."""
    element = _property(tc, _V_MERGE)
    if element is None:
        return None
    return element.get(_VAL, "continue")
