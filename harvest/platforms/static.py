"""Static HTML listings: entries are links in the page, more pages are linked from it.

The fallback for any listing no platform module recognises: 下一页 links, `index_N` pages and
numbered links are followed breadth-first; the portal's selectors narrow what is read.
"""

from __future__ import annotations

from collections import deque

from nianbao.harvest.crawl import parse_listing
from nianbao.harvest.platforms.base import Fetch, ListingOptions, ListingRead, Page, Reader


class StaticListing(Reader):
    name = "static"

    def __init__(self, first: Page, start_url: str, options: ListingOptions) -> None:
        self.first = first
        self.start_url = start_url
        self.options = options

    @classmethod
    def recognise(cls, page: Page, start_url: str, options: ListingOptions) -> StaticListing:
        return cls(page, start_url, options)

    def read(self, fetch: Fetch, found: ListingRead) -> None:
        queue: deque[str] = deque()
        seen = {self.start_url, self.first.url}
        # Pagers link the first page under another name (`./` and `index.html`): read it once.
        bodies: set[str] = set()
        page: Page | None = self.first
        while True:
            if page is not None and page.digest not in bodies:
                bodies.add(page.digest)
                listing = parse_listing(
                    page.text, page.url, self.options.entry_selector, self.options.next_selector
                )
                if page is not self.first:
                    found.pages += 1
                found.add(listing.entries, listing.links_seen)
                for next_url in listing.next_pages:
                    if next_url not in seen:
                        seen.add(next_url)
                        queue.append(next_url)
            if not queue:
                return
            if not found.budget_left:
                found.stopped_at_max_pages(
                    self.start_url, f"{len(queue)} more listing pages linked"
                )
                return
            page = fetch(queue.popleft())
