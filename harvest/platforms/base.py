"""What every listing platform reader is given and gives back.

A reader is handed the first page of the listing (already fetched), a `Fetch` that gets more
pages or API answers (politely, logged and stored by the caller) and a `ListingRead` to fill:
report entries, pages read, problems. Readers hold no policy of their own: hosts, robots.txt,
retries and years are the caller's; the reader knows only how its platform lists documents.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from nianbao.harvest.crawl import Entry


@dataclass(frozen=True, slots=True)
class Page:
    """A fetched listing page or API answer: where it came from (after redirects) and its text."""

    url: str
    text: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8", "surrogatepass")).hexdigest()


class Fetch(Protocol):
    """GET `url`, or POST `form` to it; None when it could not be fetched (the caller notes why)."""

    def __call__(self, url: str, form: Mapping[str, str] | None = None) -> Page | None: ...


@dataclass(frozen=True, slots=True)
class ListingOptions:
    """What portals.toml says about reading a listing."""

    entry_selector: str | None = None
    next_selector: str | None = None
    max_pages: int = 50  # listing pages or API requests read at most


@dataclass(slots=True)
class ListingRead:
    """What reading one listing found; filled by a reader as it goes."""

    platform: str
    max_pages: int
    pages: int = 0  # listing pages and API answers read, the first page included
    links_seen: int = 0  # links or records looked at for entries
    entries: dict[str, Entry] = field(default_factory=dict)  # by URL, in listing order
    problems: list[tuple[str, str]] = field(default_factory=list)  # (url, what went wrong)
    # Other listings this one sends to (a gkmlpt category that jumps elsewhere): read after it.
    jumps: list[str] = field(default_factory=list)

    @property
    def budget_left(self) -> bool:
        return self.pages < self.max_pages

    def add(self, entries: list[Entry] | tuple[Entry, ...], links_seen: int) -> None:
        self.links_seen += links_seen
        for entry in entries:
            self.entries.setdefault(entry.url, entry)

    def stopped_at_max_pages(self, url: str, more: str) -> None:
        self.problems.append((url, f"stopped at max_pages ({self.max_pages}): {more}, not read"))


class Reader(ABC):
    """One platform's way of listing documents. `recognise` says whether a listing's first page
    is of this platform; `read` reads the rest of the listing."""

    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def recognise(cls, page: Page, start_url: str, options: ListingOptions) -> Reader | None:
        """A reader for this listing when `page` (fetched from `start_url`) is of this platform."""

    @abstractmethod
    def read(self, fetch: Fetch, found: ListingRead) -> None:
        """Read the whole listing into `found`; the first page counts as read already."""
