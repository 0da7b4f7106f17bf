"""DOCX reader: bytes → `Document` (format "docx").

The zip is vetted with `zipfile` before any part is inflated. Only the parts the reader uses are
read: the main document, its styles (which paragraph styles are headings) and the core
properties (title, author), found through the package's content types and relationships the
way python-docx finds them. python-docx's own open inflates every part the package reaches and
parses each one it has a class for (a Word template's 350 KB of styles, settings, numbering,
headers...). Of the styles, only those the body's paragraphs name are parsed (`_used_styles`).

The body is walked in document order (w:p, w:tbl, and the content of block-level content
controls); table spans come from w:gridSpan and w:vMerge.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
import zlib
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from operator import attrgetter

from docx.enum.style import WD_STYLE_TYPE
from docx.opc.constants import CONTENT_TYPE as CT
from docx.opc.constants import RELATIONSHIP_TARGET_MODE as RTM
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.oxml.ns import qn
from docx.oxml.parser import parse_xml
from docx.oxml.styles import CT_Styles
from docx.parts.styles import StylesPart
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

# python-docx's parser settings (blank text between elements dropped, entities left alone), so
# the trees are the ones python-docx would build, without its element classes (which cost a
# Python lookup on every element touched).
_XML_PARSER = etree.XMLParser(remove_blank_text=True, resolve_entities=False)
_TYPES_NS = "{http://schemas.openxmlformats.org/package/2006/content-types}"
_TYPES, _DEFAULT, _OVERRIDE = f"{_TYPES_NS}Types", f"{_TYPES_NS}Default", f"{_TYPES_NS}Override"
_RELS_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_RELATIONSHIPS, _RELATIONSHIP = f"{_RELS_NS}Relationships", f"{_RELS_NS}Relationship"
_CORE_PROPERTIES, _TITLE, _CREATOR = qn("cp:coreProperties"), qn("dc:title"), qn("dc:creator")

# A DTD has no business in an OOXML part; its only use in the wild is entity expansion.
_DTD_MARKERS = tuple(
    marker.encode(encoding)
    for marker in ("<!DOCTYPE", "<!ENTITY")
    for encoding in ("utf-8", "utf-16-le", "utf-16-be")
)

_HEADING_STYLE = re.compile(r"^(heading\s*[1-3]|title|标题(\s*[1-3])?)$", re.IGNORECASE)

# About half a millimetre: narrower than any column that can hold a character.
_HAIRLINE_TWIPS = 30

_DOCUMENT, _BODY = qn("w:document"), qn("w:body")
_P, _TBL, _TR, _TC, _R = qn("w:p"), qn("w:tbl"), qn("w:tr"), qn("w:tc"), qn("w:r")
_SDT, _SDT_CONTENT, _CUSTOM_XML = qn("w:sdt"), qn("w:sdtContent"), qn("w:customXml")
_WRAPPERS = {_SDT, _CUSTOM_XML}
_TAG = attrgetter("tag")
_T, _TAB, _BR, _CR = qn("w:t"), qn("w:tab"), qn("w:br"), qn("w:cr")
_NB_HYPHEN, _VAL, _TYPE = qn("w:noBreakHyphen"), qn("w:val"), qn("w:type")
# Properties as (container, property) tags, spelt out once: qn() on every cell cost more than
# the lookups.
_P_STYLE = (qn("w:pPr"), qn("w:pStyle"))
_GRID_BEFORE = (qn("w:trPr"), qn("w:gridBefore"))
_TC_PR, _GRID_SPAN, _V_MERGE = qn("w:tcPr"), qn("w:gridSpan"), qn("w:vMerge")
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
    archive = _open_zip(data, limits)
    with archive:
        try:
            package = _Package(archive)
            main = package.related("/", RT.OFFICE_DOCUMENT)
            content_type = package.content_type(main)
            if content_type != CT.WML_DOCUMENT_MAIN:
                raise ParseError(
                    "corrupt_docx", f"not a Word document: the main part is {content_type}"
                )
            root = package.parse(main)
            body = root.find(_BODY) if root.tag == _DOCUMENT else None
            if body is None:
                raise ParseError("corrupt_docx", "the main document part has no w:document/w:body")
            content = _body(body)
            headings = _heading_style_ids(package, main, content)
            title, author = _title_and_author(package)
        except (*_ZIP_ERRORS, KeyError, etree.LxmlError, AttributeError, TypeError) as exc:
            # What a broken package raises on the way: a missing part or relationship
            # (KeyError), several where one belongs (ValueError), an unknown style type
            # (python-docx's KeyError), damaged XML.
            raise ParseError("corrupt_docx", f"not a readable Word document: {exc}") from exc
    blocks: list[Block] = [
        Paragraph(item[0], kind="heading" if item[1] in headings else "paragraph")
        if isinstance(item, tuple)
        else item
        for item in content
    ]
    return Document(format="docx", blocks=blocks, title=title, author=author)


def _open_zip(data: bytes, limits: DocxLimits) -> zipfile.ZipFile:
    """The archive, once its declared sizes are within `limits`."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _ZIP_ERRORS as exc:
        raise ParseError("corrupt_docx", f"not a zip archive: {exc}") from exc
    entries = archive.infolist()
    # zipfile stops every read at the declared size (and fails the CRC past it), so the
    # declared sizes bound what a read can inflate.
    if len(entries) > limits.max_entries:
        archive.close()
        raise ParseError(
            "docx_zip_bomb", f"{len(entries)} zip entries (limit {limits.max_entries})"
        )
    total = sum(entry.file_size for entry in entries)
    if total > limits.max_total_uncompressed:
        archive.close()
        raise ParseError(
            "docx_zip_bomb", f"{total} bytes uncompressed (limit {limits.max_total_uncompressed})"
        )
    for entry in entries:
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.file_size > limits.ratio_applies_above and ratio > limits.max_ratio:
            archive.close()
            raise ParseError(
                "docx_zip_bomb",
                f"{entry.filename} inflates {ratio:.0f}:1 to {entry.file_size} bytes",
            )
    return archive


class _Package:
    """The OPC package: content types and relationships, resolved as python-docx resolves them
    (`docx.opc.pkgreader`), but only for the parts asked for."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self._archive = archive
        self._relationships_of: dict[str, list[etree._Element]] = {}
        types = self.parse("/[Content_Types].xml")
        if types.tag != _TYPES:
            raise ParseError("corrupt_docx", "[Content_Types].xml is not a content-types list")
        # Part names and extensions match without regard to case, as in python-docx.
        self._overrides = {
            _attribute(o, "PartName").lower(): _attribute(o, "ContentType")
            for o in types.iterchildren(_OVERRIDE)
        }
        self._defaults = {
            _attribute(d, "Extension").lower(): _attribute(d, "ContentType")
            for d in types.iterchildren(_DEFAULT)
        }

    def read(self, partname: str) -> bytes:
        try:
            return self._archive.read(partname[1:])
        except _ZIP_ERRORS as exc:
            raise ParseError("corrupt_docx", f"{partname} cannot be unzipped: {exc}") from exc

    def parse(self, partname: str) -> etree._Element:
        """The part's XML tree, as python-docx's parser builds it (without its element
        classes); a part that declares a DTD is refused."""
        xml = self.read(partname)
        _refuse_dtd(partname, xml)
        return etree.fromstring(xml, _XML_PARSER)

    def content_type(self, partname: str) -> str:
        found = self._overrides.get(partname.lower())
        if found is not None:
            return found
        extension = posixpath.splitext(partname)[1]
        found = self._defaults.get(extension[1:].lower() if extension.startswith(".") else "")
        if found is None:
            raise KeyError(f"no content type for partname {partname!r} in [Content_Types].xml")
        return found

    def related(self, source: str, reltype: str) -> str:
        """The part `source` (a part name, or "/" for the package) relates to by its one
        relationship of `reltype`: KeyError when there is none, ValueError when there are
        several or it points outside the package."""
        matching = [rel for rel in self._relationships(source) if rel.get("Type") == reltype]
        if not matching:
            raise KeyError(f"{source} has no relationship of type {reltype}")
        if len(matching) > 1:
            raise ValueError(f"{source} has several relationships of type {reltype}")
        (rel,) = matching
        if rel.get("TargetMode", RTM.INTERNAL) == RTM.EXTERNAL:
            raise ValueError(f"the {reltype} of {source} is outside the package")
        return posixpath.abspath(posixpath.join(posixpath.dirname(source), rel.get("Target")))

    def _relationships(self, source: str) -> list[etree._Element]:
        found = self._relationships_of.get(source)
        if found is None:
            base, name = posixpath.split(source)
            try:
                xml = self.read(posixpath.join(base, "_rels", f"{name}.rels"))
            except KeyError:
                found = []  # no relationships part: no relationships
            else:
                _refuse_dtd(source, xml)
                rels = etree.fromstring(xml, _XML_PARSER)
                if rels.tag != _RELATIONSHIPS:
                    raise ParseError(
                        "corrupt_docx", f"the relationships of {source} are not a list"
                    )
                # Keyed by id as python-docx keys them: a repeated id keeps its last one.
                found = list(
                    {rel.get("Id"): rel for rel in rels.iterchildren(_RELATIONSHIP)}.values()
                )
            self._relationships_of[source] = found
        return found


def _attribute(element: etree._Element, name: str) -> str:
    value = element.get(name)
    if value is None:
        raise ParseError("corrupt_docx", f"[Content_Types].xml: an entry without {name}")
    return value


def _refuse_dtd(partname: str, xml: bytes) -> None:
    # Every marker holds a "!", in any of the encodings; a scan for one byte is the fast one.
    if b"!" in xml and any(marker in xml for marker in _DTD_MARKERS):
        raise ParseError("corrupt_docx", f"{partname[1:]} declares a DTD or entities")


def _children(element: etree._Element) -> list[etree._Element]:
    """Children of `element`, looking through content controls and custom-XML wrappers."""
    children = list(element)
    return list(_unwrapped(element)) if _has_wrapper(children) else children


def _has_wrapper(children: list[etree._Element]) -> bool:
    return not _WRAPPERS.isdisjoint(map(_TAG, children))


def _unwrapped(element: etree._Element) -> Iterator[etree._Element]:
    for child in element:
        if child.tag == _SDT:
            for inner in child.iterchildren(_SDT_CONTENT):
                yield from _unwrapped(inner)
        elif child.tag == _CUSTOM_XML:
            yield from _unwrapped(child)
        else:
            yield child


def _paragraph_text(p: etree._Element) -> str:
    # python-docx's Paragraph.text only sees direct runs and hyperlinks, which drops inserted
    # revisions, smart tags and fields; walk every run instead.
    parts: list[str] = []
    _collect_text(p, parts)
    return "".join(parts)


def _collect_text(element: etree._Element, parts: list[str]) -> None:
    for child in element:
        tag = child.tag
        if tag == _R:  # most children; the same tests, one call less
            for leaf in child:
                tag = leaf.tag
                if tag == _T:
                    parts.append(leaf.text or "")
                elif tag in _SKIPPED_INLINE:
                    continue
                elif tag == _TAB:
                    parts.append("\t")
                elif tag == _CR or (tag == _BR and leaf.get(_TYPE) in (None, "textWrapping")):
                    parts.append("\n")
                elif tag == _NB_HYPHEN:
                    parts.append("-")
                else:
                    _collect_text(leaf, parts)
        elif tag in _SKIPPED_INLINE:
            continue
        elif tag == _T:
            parts.append(child.text or "")
        elif tag == _TAB:
            parts.append("\t")
        elif tag == _CR or (tag == _BR and child.get(_TYPE) in (None, "textWrapping")):
            parts.append("\n")
        elif tag == _NB_HYPHEN:
            parts.append("-")
        else:
            _collect_text(child, parts)


def _property(
    element: etree._Element | list[etree._Element], tags: tuple[str, str]
) -> etree._Element | None:
    """`element.find("container/property")`: the first match in document order, in an
    element or in a list of its children. Plain iteration: lxml's path machinery, and even
    `iterchildren(tag)`, cost more than the lookup on every cell and paragraph."""
    container_tag, property_tag = tags
    for container in element:
        if container.tag == container_tag:
            for found in container:
                if found.tag == property_tag:
                    return found
    return None


def _style_id(p: etree._Element) -> str | None:
    style = _property(p, _P_STYLE)
    return None if style is None else style.get(_VAL)


def _body(body: etree._Element) -> list[Table | tuple[str, str | None]]:
    """The body's tables, and its paragraphs as (text, style id), in document order."""
    content: list[Table | tuple[str, str | None]] = []
    for element in _children(body):
        if element.tag == _P:
            text = _paragraph_text(element).strip()
            if text:
                content.append((text, _style_id(element)))
        elif element.tag == _TBL:
            content.extend(_tables(element))
    return content


def _heading_style_ids(
    package: _Package, main: str, content: list[Table | tuple[str, str | None]]
) -> frozenset[str | None]:
    """Ids of the paragraph styles named as headings, among those the body's paragraphs use
    (and any style without an id: a paragraph without a style would take it)."""
    try:
        partname = package.related(main, RT.STYLES)
    except KeyError:
        return _default_heading_style_ids()  # python-docx's default styles stand in
    content_type = package.content_type(partname)
    if content_type != CT.WML_STYLES:
        raise ParseError("corrupt_docx", f"the styles part is {content_type}")
    xml = package.read(partname)
    _refuse_dtd(partname, xml)
    used = {item[1] for item in content if isinstance(item, tuple) and item[1] is not None}
    styles = None
    fragment = _used_styles(xml, used)
    if fragment is not None:
        try:
            styles = parse_xml(fragment)
        except etree.XMLSyntaxError:
            styles = None  # the cut went wrong somewhere; the whole part decides
    if styles is None:
        styles = parse_xml(xml)
    if not isinstance(styles, CT_Styles):
        raise ParseError("corrupt_docx", "the styles part holds no w:styles")
    return _headings_among(styles)


@cache
def _default_heading_style_ids() -> frozenset[str | None]:
    return _headings_among(StylesPart.default(None).element)


def _headings_among(styles: CT_Styles) -> frozenset[str | None]:
    # Chinese Word keeps built-in names in English ("heading 1") under numeric ids; WPS and
    # hand-made templates may name them 标题 1. Matching names, not ids, covers both.
    # The style elements are read directly: python-docx's style objects convert w:type through
    # its enum on every access. A missing or unknown w:type goes through python-docx, which
    # raises on it as `Document.styles` would.
    ids = set()
    for element in styles.style_lst:
        kind = _STYLE_TYPES.get(element.get(_TYPE))
        if kind is None:
            kind = StyleFactory(element).type
        if kind != WD_STYLE_TYPE.PARAGRAPH:
            continue
        name = element.name_val
        name = None if name is None else BabelFish.internal2ui(name)
        if _HEADING_STYLE.match((name or "").strip()):
            ids.add(element.styleId)
    return frozenset(ids)


# The styles part as Word and LibreOffice write it: an XML declaration (UTF-8), then the root
# start tag, which declares the WordprocessingML namespace; attribute values quoted.
_DECLARATION = re.compile(rb"<\?xml\s[^?]*\?>")
_ENCODING = re.compile(rb"""encoding\s*=\s*["']([^"']*)["']""")
_ATTRIBUTES = rb"""((?:\s+[^\s=<>/]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*"""
_STYLES_ROOT = re.compile(rb"\s*<([A-Za-z_][\w.-]*):styles" + _ATTRIBUTES + rb">")
_XMLNS = re.compile(rb"xmlns")
# A reference or a white-space character in an attribute value reads differently once parsed.
_NOT_PLAIN = re.compile(rb"[&\t\n\r]")
_W_NAMESPACE = b"http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def _used_styles(xml: bytes, used: set[str]) -> bytes | None:
    """The styles part cut down to its root and the w:style elements that can matter to
    `used` (those with one of its ids, without an id, or whose id is not plain text); None
    when the part is not written in the plain form this cut relies on.

    Parsing all of a Word styles part (~9,000 elements of table and latent styles, 350 KB)
    costs more than the rest of reading the document; a report uses a handful of styles.
    The cut finds elements by their tags, which is exact for a part whose w:style elements
    are children of the root, as the schema has them, once it has no comments, CDATA or
    processing instructions (where a tag could be quoted), one UTF-8 encoding and one prefix
    for the namespace everywhere. The cut is parsed as XML, so a mistake in it shows as a
    parse error, and then the whole part is parsed. Damage outside the styles it keeps goes
    unseen, as it does in the parts the reader does not read.
    """
    position = 0
    declaration = _DECLARATION.match(xml)
    if declaration is not None:
        encoding = _ENCODING.search(declaration.group())
        if encoding is not None and encoding.group(1).lower() not in (b"utf-8", b"utf8"):
            return None
        position = declaration.end()
    # A scan for one byte runs at memory speed; one for "<" followed by another does not.
    if (b"!" in xml and b"<!" in xml) or (
        xml.find(b"?", position) != -1 and xml.find(b"<?", position) != -1
    ):
        return None
    root = _STYLES_ROOT.match(xml, position)
    if root is None:
        return None
    prefix = re.escape(root.group(1))
    declared = root.group(2)
    if declared.count(_W_NAMESPACE) != 1 or not re.search(
        rb"\sxmlns:" + prefix + rb"""\s*=\s*["']""" + re.escape(_W_NAMESPACE) + rb"""["']""",
        declared,
    ):
        return None
    if _XMLNS.search(xml, root.end()):  # a prefix bound again further in
        return None
    # A start tag as XML writes it, or else any other opening of a w:style element.
    tags = re.compile(rb"<" + prefix + rb":style(?:" + _ATTRIBUTES + rb"(/?)>|[\s/>])")
    end_tag = re.compile(rb"</" + prefix + rb":style\s*>")
    style_id = re.compile(rb"""\s""" + prefix + rb""":styleId\s*=\s*(?:"([^"]*)"|'([^']*)')""")
    wanted = {style.encode() for style in used}
    kept = []
    end = root.end()
    for tag in tags.finditer(xml, end):
        attributes = tag.group(1)
        if attributes is None or tag.start() < end:  # unreadable, or a style inside a style
            return None
        value = style_id.search(attributes)
        if value is not None:
            raw = value.group(1) if value.group(1) is not None else value.group(2)
            if raw not in wanted and not _NOT_PLAIN.search(raw):
                continue
        if tag.group(2):
            end = tag.end()
        else:
            close = end_tag.search(xml, tag.end())
            if close is None:
                return None
            end = close.end()
        kept.append(xml[tag.start() : end])
    return b"".join((xml[: root.end()], *kept, b"</", root.group(1), b":styles>"))


def _title_and_author(package: _Package) -> tuple[str | None, str | None]:
    try:
        partname = package.related("/", RT.CORE_PROPERTIES)
    except KeyError:
        # python-docx gives a package without core properties a default part, titled so.
        return "Word Document", None
    content_type = package.content_type(partname)
    if content_type != CT.OPC_CORE_PROPERTIES:
        raise ParseError("corrupt_docx", f"the core properties part is {content_type}")
    core = package.parse(partname)
    if core.tag != _CORE_PROPERTIES:
        raise ParseError("corrupt_docx", "the core properties part holds no cp:coreProperties")
    return _core_text(core, _TITLE), _core_text(core, _CREATOR)


def _core_text(core: etree._Element, tag: str) -> str | None:
    element = core.find(tag)
    return ((element.text if element is not None else None) or "").strip() or None


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
    for tr in _children(tbl):
        if tr.tag != _TR:
            continue
        row: list[_PendingCell] = []
        continued: dict[int, _PendingCell] = {}
        # One list of the row's children serves the property lookup and the cells, so lxml
        # makes each child's Python object once.
        cells = list(tr)
        col = _int_value(_property(cells, _GRID_BEFORE), default=0)
        if _has_wrapper(cells):
            cells = list(_unwrapped(tr))
        if col:
            # Cells are placed by order, so a row that starts late needs a blank in front.
            row.append(_PendingCell("", col=0, colspan=col))
        for tc in cells:
            if tc.tag != _TC:
                continue
            content = list(tc)
            span_element, merge_element = _cell_properties(content)
            span = max(_int_value(span_element, default=1), 1)
            # The cell's vertical merge: restart, continue (a w:vMerge without val) or None.
            merge = None if merge_element is None else merge_element.get(_VAL, "continue")
            if _has_wrapper(content):
                content = list(_unwrapped(tc))
            texts = []
            for inner in content:
                if inner.tag == _P:
                    texts.append(_paragraph_text(inner))
                elif inner.tag == _TBL:
                    nested.extend(_tables(inner))
            text = "\n".join(texts).strip()
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


def _cell_properties(
    children: list[etree._Element],
) -> tuple[etree._Element | None, etree._Element | None]:
    """The cell's first w:tcPr/w:gridSpan and w:tcPr/w:vMerge, in one pass."""
    span = merge = None
    for container in children:
        if container.tag == _TC_PR:
            for found in container:
                if found.tag == _GRID_SPAN:
                    span = found if span is None else span
                elif found.tag == _V_MERGE:
                    merge = found if merge is None else merge
    return span, merge


def _int_value(element: etree._Element | None, default: int) -> int:
    if element is None:
        return default
    try:
        return int(element.get(_VAL, default))
    except ValueError:
        return default
