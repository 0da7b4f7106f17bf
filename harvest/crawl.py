"""What a portal's pages say: report entries, next listing pages, attachments. Pure functions.

Nothing here fetches or decides policy (hosts, robots, years): it reads one page's text and its
URL and returns absolute URLs. Works on the static HTML listings most government CMSs emit
without per-site code; a portal may add a selector where that fails. How a platform pages its
listing (a pager script, an API) is each platform's own module, in harvest/platforms/.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import PurePosixPath
from urllib.parse import parse_qsl, urldefrag, urljoin, urlsplit

from lxml import etree
from lxml import html as lxml_html

from nianbao.parsers.metadata import REPORT_TITLE, YEAR_IN_TITLE

ATTACHMENT_SUFFIXES = (".pdf", ".doc", ".docx", ".wps", ".odt", ".xls", ".xlsx")

# Pages about a report that are not the report: a reading guide, an infographic (一图读懂), a
# notice asking agencies to write theirs, the year's work points (工作要点), an evaluation of
# them, news that one was published.
_NOT_A_REPORT = re.compile(
    r"解读|图解|读懂|一图|通知|公告|要点|考核|评估|测评|评议|培训|征集|目录|新闻|动态|出炉|发布会|召开"
)
# A year written as a year (2023年) beats a bare number; dates (2024-01-15) are not years.
_YEAR_BARE = re.compile(r"(?<![\d\-/.])((?:19|20)\d{2})(?![\d\-/.])")
_SPACES = re.compile(r"\s+")
_NEXT_TEXT = {"下一页", "下页", "后一页", "下一頁", "next", "next>", "next»", ">", "›", "»", ">>"}
_PAGE_NUMBER = re.compile(r"^\[?\d{1,4}\]?$")
_INDEX_PAGE = re.compile(r"^(?:index|list|default)_\d+\.(?:s?html?|jsp|php|aspx?)$", re.I)
# 2024-01-15, 2024/1/15, 2024.01.15, 2024年1月15日: the date a listing prints beside an entry.
_DATE = re.compile(r"(?<!\d)((?:19|20)\d{2})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})(?!\d)")
_YEARS = re.compile(r"^\s*((?:19|20)\d{2})\s*(?:-\s*((?:19|20)\d{2})\s*)?$")
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


class SelectorError(ValueError):
    """A per-portal selector that cannot be compiled."""


@dataclass(frozen=True, slots=True)
class Link:
    url: str
    text: str  # the link's text and its title="…", for matching
    date: str | None = None  # ISO date printed beside the link in its list item, if any
    title: str = ""  # the longer of the two: the entry's title as the listing shows it


@dataclass(frozen=True, slots=True)
class Entry:
    """A listing entry that is an annual report: an article page, or the report file itself.

    `published` (ISO 8601 date) and `publisher` are what the listing says of it, when it does.
    """

    url: str
    title: str
    year: int
    published: str | None = None
    publisher: str | None = None


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


def iso_date(text: str) -> str | None:
    """The first date written in `text`, as YYYY-MM-DD; None when there is no valid one."""
    # Folded but not stripped of spaces: "2024-01-20 09:30" must not become "2024-01-2009:30".
    for match in _DATE.finditer(unicodedata.normalize("NFKC", text)):
        try:
            return date(*(int(part) for part in match.groups())).isoformat()
        except ValueError:  # 2023-13-45 is a number, not a date
            continue
    return None


def parse_years(text: str) -> tuple[int, int]:
    """`2019-2023` → (2019, 2023); `2023` → (2023, 2023)."""
    match = _YEARS.match(text)
    if not match:
        raise ValueError(f"expected a year or a range like 2019-2023, got {text!r}")
    first, last = int(match.group(1)), int(match.group(2) or match.group(1))
    if first > last:
        raise ValueError(f"the range {text!r} ends before it starts")
    return first, last


def attachment_suffix(url: str, text: str = "") -> str | None:
    """The report-file suffix of a link: from its path or, for download scripts
    (downfile.jsp?filename=….pdf), from a query value or its text."""
    parts = urlsplit(url)
    query_values = [value.lower() for _, value in parse_qsl(parts.query)]
    for candidate in (parts.path.lower(), *query_values, normalise(text).lower()):
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
            shown, full = anchor.text_content().strip(), (anchor.get("title") or "").strip()
            text = " ".join(t for t in (shown, full) if t)
            found.append(Link(url, text, _date_beside(anchor), max(shown, full, key=len)))
    return found


def _date_beside(anchor: etree._Element) -> str | None:
    """The date of the list item (li, tr, dd …) that holds `anchor` and no other link."""
    item = anchor.getparent()
    for _level in range(3):
        if item is None or len(item.xpath(".//a[@href]")) > 1:
            return None
        found = iso_date(item.text_content())
        if found:
            return found
        item = item.getparent()
    return None


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


def parse_listing(
    text: str,
    page_url: str,
    entry_selector: str | None = None,
    next_selector: str | None = None,
) -> Listing:
    """Entries that are annual reports and the other listing pages linked from one listing page.

    Next pages are only those on the listing's own host: 下一页 links, and index_N pages and
    numbered links in the listing's folder.
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
            entries.setdefault(
                link.url, Entry(link.url, normalise(link.title), year, published=link.date)
            )

    if next_selector:
        pages = [link.url for link in _links(compile_selector(next_selector)(root), base)]
    else:
        pages = [link.url for link in _links([root], base) if _is_pager_link(link, page_url)]
    host = urlsplit(page_url).netloc
    next_pages = [
        url for url in dict.fromkeys(pages) if urlsplit(url).netloc == host and url != page_url
    ]
    return Listing(tuple(entries.values()), tuple(next_pages), len(candidates))


def parse_attachments(text: str, page_url: str) -> tuple[Link, ...]:
    """Report files an entry page links or embeds (.pdf, .doc, .docx, .wps, .odt, .xls, .xlsx), once
    each."""
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
