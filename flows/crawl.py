"""What a portal's pages say: report entries, next listing pages, attachments. Pure functions.

Nothing here fetches or decides policy (hosts, robots, years): it reads one page's text and its
URL and returns absolute URLs. Works on the static HTML listings most government CMSs emit
(TRS, 政务网站群, Hanweb) without per-site code; a portal may add a selector where that fails.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urldefrag, urljoin, urlsplit

from lxml import etree
from lxml import html as lxml_html

from nianbao.parsers.metadata import REPORT_TITLE, YEAR_IN_TITLE

ATTACHMENT_SUFFIXES = (".pdf", ".doc", ".docx", ".wps", ".xls", ".xlsx")

# Pages about a report that are not the report: a reading guide, an infographic, a notice asking
# agencies to write theirs, an evaluation of them.
_NOT_A_REPORT = re.compile(r"解读|图解|读懂|一图|通知|公告|考核|评估|测评|评议|培训|征集|目录")
# A year written as a year (2023年) beats a bare number; dates (2024-01-15) are not years.
_YEAR_BARE = re.compile(r"(?<![\d\-/.])((?:19|20)\d{2})(?![\d\-/.])")
_SPACES = re.compile(r"\s+")
_NEXT_TEXT = {"下一页", "下页", "后一页", "下一頁", "next", "next>", "next»", ">", "›", "»", ">>"}
_PAGE_NUMBER = re.compile(r"^\[?\d{1,4}\]?$")
_INDEX_PAGE = re.compile(r"^(?:index|list|default)_\d+\.(?:s?html?|jsp|php|aspx?)$", re.I)
# TRS and 政务网站群 CMSs write their pager with a script: createPageHTML(pages, current, "index", "shtml").
_PAGER_SCRIPT = re.compile(
    r"createPageHTML\(\s*['\"]?(\d+)['\"]?\s*,\s*['\"]?\d+['\"]?\s*,\s*['\"]([\w-]+)['\"]\s*,\s*['\"](\w+)['\"]"
)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


class SelectorError(ValueError):
    """A per-portal selector that cannot be compiled."""


@dataclass(frozen=True, slots=True)
class Link:
    url: str
    text: str


@dataclass(frozen=True, slots=True)
class Entry:
    """A listing entry that is an annual report: an article page, or the report file itself."""

    url: str
    title: str
    year: int


@dataclass(frozen=True, slots=True)
class Listing:
    entries: tuple[Entry, ...]
    next_pages: tuple[str, ...]
    # Links looked at for entries: "none among 40 links" points at a changed layout, where
    # "none among 0" points at an empty or scripted page.
    links_seen: int


Selector = Callable[[etree._Element], list]


def compile_selector(expression: str) -> Selector:
    """XPath when the expression starts like a path (`//`, `./`, `(`), CSS otherwise."""
    expression = expression.strip()
    if expression.startswith(("/", "./", "(")):
        try:
            return etree.XPath(expression)
        except etree.XPathSyntaxError as exc:
            raise SelectorError(f"not a valid XPath expression: {expression!r} ({exc})") from None
    try:
        from lxml.cssselect import CSSSelector
    except ImportError:
        raise SelectorError(
            f"{expression!r} is a CSS selector, which needs the cssselect package "
            "(pip install cssselect); or write it as XPath, e.g. //div[@class='list']//a"
        ) from None
    try:
        return CSSSelector(expression)
    except Exception as exc:  # cssselect raises its own SelectorSyntaxError family
        raise SelectorError(f"not a valid CSS selector: {expression!r} ({exc})") from None


def normalise(text: str) -> str:
    """Full-width digits and letters folded (２０２３ → 2023), whitespace removed (titles wrap)."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", text))


def report_year(title: str) -> int | None:
    """The year of an annual-report title; None when the title is not an annual report's."""
    title = normalise(title)
    if not REPORT_TITLE.search(title) or _NOT_A_REPORT.search(title):
        return None
    match = YEAR_IN_TITLE.search(title) or _YEAR_BARE.search(title)
    return int(match.group(1)) if match else None


def attachment_suffix(url: str, text: str = "") -> str | None:
    """The report-file suffix of a link, from its path or, for download scripts, its text."""
    path = urlsplit(url).path.lower()
    for candidate in (path, normalise(text).lower()):
        for suffix in ATTACHMENT_SUFFIXES:
            if candidate.endswith(suffix):
                return suffix
    return None


def parse_page(text: str) -> etree._Element | None:
    """An lxml tree of a page; None for an empty or unparseable one."""
    # lxml refuses a str that still carries an XML encoding declaration (XHTML pages).
    text = _XML_DECLARATION.sub("", text)
    if not text.strip():
        return None
    try:
        return lxml_html.document_fromstring(text)
    except (etree.ParserError, ValueError):
        return None


def _base_url(root: etree._Element, page_url: str) -> str:
    base = root.find(".//base[@href]")
    return urljoin(page_url, base.get("href").strip()) if base is not None else page_url


def _links(elements: list, base: str) -> list[Link]:
    found: list[Link] = []
    for element in elements:
        if not isinstance(element, etree._Element):
            continue
        anchors = [element] if element.tag == "a" else list(element.iter("a"))
        for anchor in anchors:
            href = (anchor.get("href") or "").strip()
            if not href or href.startswith(("#", "javascript:", "mailto:", "tel:")):
                continue
            try:
                url = urldefrag(urljoin(base, href)).url
                if urlsplit(url).scheme not in ("http", "https"):
                    continue
            except ValueError:  # a malformed href such as http://[broken
                continue
            # Listings often cut long titles in the text and keep the whole one in title="…".
            text = " ".join(t for t in (anchor.text_content(), anchor.get("title") or "") if t)
            found.append(Link(url, text.strip()))
    return found


def _directory(url: str) -> str:
    path = urlsplit(url).path
    return path if path.endswith("/") else str(PurePosixPath(path).parent).rstrip("/") + "/"


def _is_pager_link(link: Link, page_url: str) -> bool:
    text = normalise(link.text).lower()
    if text in _NEXT_TEXT:
        return True
    here, there = urlsplit(page_url), urlsplit(link.url)
    if there.netloc != here.netloc or _directory(link.url) != _directory(page_url):
        return False
    name = PurePosixPath(there.path).name
    # index_1.html-style pages, or a numbered link ("2", "[3]") to a page of the same column.
    return bool(_INDEX_PAGE.match(name)) or (bool(_PAGE_NUMBER.match(text)) and bool(name))


def _script_pages(root: etree._Element, page_url: str) -> list[str]:
    pages: list[str] = []
    for script in root.iter("script"):
        for match in _PAGER_SCRIPT.finditer(script.text or ""):
            count, stem, suffix = int(match.group(1)), match.group(2), match.group(3)
            directory = urljoin(page_url, _directory(page_url))
            pages += [urljoin(directory, f"{stem}_{n}.{suffix}") for n in range(1, count)]
    return pages


def parse_listing(
    text: str,
    page_url: str,
    entry_selector: str | None = None,
    next_selector: str | None = None,
) -> Listing:
    """Entries that are annual reports and the other listing pages linked from one listing page.

    Next pages are only those on the listing's own host: 下一页 links, index_N pages and
    numbered links in the listing's folder, and pages a createPageHTML() pager script writes.
    """
    root = parse_page(text)
    if root is None:
        return Listing((), (), 0)
    base = _base_url(root, page_url)
    candidates = (
        _links(compile_selector(entry_selector)(root), base)
        if entry_selector
        else _links([root], base)
    )
    entries: dict[str, Entry] = {}
    for link in candidates:
        year = report_year(link.text)
        if year is not None:
            entries.setdefault(link.url, Entry(link.url, normalise(link.text), year))

    if next_selector:
        pages = [link.url for link in _links(compile_selector(next_selector)(root), base)]
    else:
        pages = [link.url for link in _links([root], base) if _is_pager_link(link, page_url)]
        pages += _script_pages(root, base)
    host = urlsplit(page_url).netloc
    next_pages = [
        url for url in dict.fromkeys(pages) if urlsplit(url).netloc == host and url != page_url
    ]
    return Listing(tuple(entries.values()), tuple(next_pages), len(candidates))


def parse_attachments(text: str, page_url: str) -> tuple[Link, ...]:
    """Report files an entry page links or embeds (.pdf, .doc, .docx, .wps, .xls, .xlsx), once each."""
    root = parse_page(text)
    if root is None:
        return ()
    base = _base_url(root, page_url)
    links = _links([root], base)
    # PDF viewers embed the file instead of linking it.
    for element in root.xpath("//iframe[@src] | //embed[@src] | //object[@data]"):
        source = element.get("src") or element.get("data")
        links.append(Link(urldefrag(urljoin(base, source.strip())).url, ""))
    found: dict[str, Link] = {}
    for link in links:
        if attachment_suffix(link.url, link.text):
            found.setdefault(link.url, link)
    return tuple(found.values())
