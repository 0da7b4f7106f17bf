"""Listing platforms: how a portal's list of documents is read, one module per platform.

A portal is known by the listing address a person copies from the browser; the first page says
which platform it is (gkmlpt's config, a jpage call, a TRS pager script) and that platform's
reader takes the whole listing through its API or pager. A page no platform recognises is read
as a static listing. A new platform is one more module and one more entry in `READERS`.

No Prefect here, and no policy: fetching (robots.txt, hosts, politeness, storage, logging) is
the caller's `Fetch`.
"""

from __future__ import annotations

from urllib.parse import urldefrag, urlsplit

from nianbao.harvest.platforms.base import (
    Fetch,
    ListingOptions,
    ListingRead,
    Page,
    Reader,
)
from nianbao.harvest.platforms.gkmlpt import GkmlptListing
from nianbao.harvest.platforms.jpage import JpageListing
from nianbao.harvest.platforms.static import StaticListing
from nianbao.harvest.platforms.trs import TrsListing

__all__ = [
    "READERS",
    "Fetch",
    "ListingOptions",
    "ListingRead",
    "ListingUnreachable",
    "Page",
    "Reader",
    "read_listing",
]

# Tried in order on the listing's first page; the static reader recognises every page.
READERS: tuple[type[Reader], ...] = (GkmlptListing, JpageListing, TrsListing, StaticListing)
# A category that jumps to another listing that jumps again: followed this many times at most.
_MAX_JUMPS = 3


class ListingUnreachable(Exception):
    """The listing's first page could not be fetched."""


def recognise(page: Page, start_url: str, options: ListingOptions) -> Reader:
    for reader in READERS:
        found = reader.recognise(page, start_url, options)
        if found is not None:
            return found
    raise AssertionError("the static reader recognises every page")  # pragma: no cover


def read_listing(
    start_url: str,
    fetch: Fetch,
    options: ListingOptions,
    hosts: frozenset[str] | None = None,
) -> ListingRead:
    """Every report entry of the listing at `start_url` (the address a person copies, `#…`
    included), read by the platform its first page shows.

    Listings another one jumps to are read too when on `hosts`, else noted as a problem.
    Raises ListingUnreachable when the first page cannot be fetched.
    """
    found: ListingRead | None = None
    todo, done = [start_url], set()
    while todo and len(done) <= _MAX_JUMPS:
        url = todo.pop(0)
        done.add(url)
        first = fetch(urldefrag(url).url)
        if first is None:
            if found is None:
                raise ListingUnreachable(url)
            continue
        reader = recognise(first, url, options)
        if found is None:
            found = ListingRead(reader.name, options.max_pages)
        found.pages += 1
        reader.read(fetch, found)
        for jump in found.jumps:
            if jump in done or jump in todo:
                continue
            if hosts is not None and (urlsplit(jump).hostname or "") not in hosts:
                found.problems.append(
                    (jump, f"a category of {url} lives on another site: add it as a portal")
                )
                continue
            todo.append(jump)
        found.jumps.clear()
    assert found is not None
    return found
