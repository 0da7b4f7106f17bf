"""TRS WCM (and the 政务网站群 CMSs that copy it): static listing pages written by a pager script.

The listing page says how many pages it has in a script, never in links:

    createPageHTML(7, 0, "index", "html");                      // pages, current, stem, suffix
    createPageHTML('page_div', 7, 0, 'index', 'shtml', 136);    // the 6-argument form
    var countPage = 7; createPageHTML(countPage, currentPage, "index", "html");

Pages are `index.html`, `index_1.html` … `index_{pages-1}.html` in the listing's folder; entries
are `./YYYYMM/tYYYYMMDD_ID.html`. Asked for a page past the last, TRS answers 200 with a stub of
a few hundred bytes, so the pages are read in order and the reading stops at the first stub.
Pages are often GBK with no charset in the header: the caller decodes them by their bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urljoin, urlsplit

from nianbao.harvest.crawl import parse_listing
from nianbao.harvest.platforms.base import Fetch, ListingOptions, ListingRead, Page, Reader

_CALL = re.compile(r"createPageHTML\s*\(([^()]*)\)")
_VARIABLE = re.compile(r"\bvar\s+(\w+)\s*=\s*(['\"]?)([\w.\-]*)\2")
_SUFFIX = re.compile(r"^(?:s?html?|jsp|php|aspx?)$", re.I)
# Pages past the last are a stub; a real listing page, even an empty one, is larger than this.
_STUB_BYTES = 1024
# When only `countPage` is known: the page's own name (index.shtml) says the rest, else these.
_DEFAULT_STEM, _DEFAULT_SUFFIX = "index", "html"
_PAGE_NAME = re.compile(r"^([\w-]+?)(?:_\d+)?\.(s?html?|jsp|php|aspx?)$", re.I)


@dataclass(frozen=True, slots=True)
class Pager:
    pages: int  # how many listing pages, the first included
    stem: str | None  # index; None when the page does not say (`var countPage` alone)
    suffix: str | None  # html


def read_pager(text: str) -> Pager | None:
    """The pager a TRS listing page declares in its scripts; None when it declares none."""
    variables = {name: value for name, _quote, value in _VARIABLE.findall(text)}
    for call in _CALL.finditer(text):
        arguments = [_resolve(arg, variables) for arg in call.group(1).split(",")]
        numbers = [int(arg) for arg in arguments if arg.isdigit()]
        suffixes = [i for i, arg in enumerate(arguments) if _SUFFIX.match(arg)]
        if not numbers or not suffixes or suffixes[0] == 0:
            continue
        stem = arguments[suffixes[0] - 1]
        if not stem or stem.isdigit():
            continue
        # The first number is the page count in both forms (the 6-argument one leads with the
        # pager's element id, a word).
        return Pager(numbers[0], stem, arguments[suffixes[0]])
    count = variables.get("countPage", "")
    if count.isdigit():
        return Pager(int(count), None, None)
    return None


def _resolve(argument: str, variables: dict[str, str]) -> str:
    argument = argument.strip().strip("'\"").strip()
    return variables.get(argument, argument)


def page_urls(pager: Pager, page_url: str) -> list[str]:
    """The listing's other pages, in order: `{stem}_1.{suffix}` … in the folder of `page_url`.

    A pager that names no stem or suffix takes the page's own (`list.shtml` → `list_1.shtml`).
    """
    path = urlsplit(page_url).path
    folder = path if path.endswith("/") else str(PurePosixPath(path).parent).rstrip("/") + "/"
    own = _PAGE_NAME.match(PurePosixPath(path).name) if not path.endswith("/") else None
    stem = pager.stem or (own.group(1) if own else _DEFAULT_STEM)
    suffix = pager.suffix or (own.group(2) if own else _DEFAULT_SUFFIX)
    base = urljoin(page_url, folder)
    return [urljoin(base, f"{stem}_{n}.{suffix}") for n in range(1, pager.pages)]


def is_stub(page: Page, links_seen: int) -> bool:
    """A page past the last: tiny, and linking nothing."""
    return links_seen == 0 or (len(page.text.encode("utf-8")) < _STUB_BYTES and links_seen < 2)


class TrsListing(Reader):
    name = "trs"

    def __init__(self, first: Page, pager: Pager, options: ListingOptions) -> None:
        self.first = first
        self.pager = pager
        self.options = options

    @classmethod
    def recognise(cls, page: Page, start_url: str, options: ListingOptions) -> TrsListing | None:
        if options.next_selector:  # the portal says how its pages are linked: the static reader
            return None
        pager = read_pager(page.text)
        return cls(page, pager, options) if pager else None

    def read(self, fetch: Fetch, found: ListingRead) -> None:
        listing = parse_listing(self.first.text, self.first.url, self.options.entry_selector)
        found.add(listing.entries, listing.links_seen)
        others = page_urls(self.pager, self.first.url)
        bodies = {self.first.digest}
        for index, url in enumerate(others):
            if not found.budget_left:
                found.stopped_at_max_pages(
                    url, f"{len(others) - index} more listing pages declared"
                )
                return
            page = fetch(url)
            if page is None:
                continue  # the caller noted why; the next page may still answer
            listing = parse_listing(page.text, page.url, self.options.entry_selector)
            found.pages += 1
            if is_stub(page, listing.links_seen) or page.digest in bodies:
                return  # past the last page (a stub, or a page seen already): the count was stale
            bodies.add(page.digest)
            found.add(listing.entries, listing.links_seen)
