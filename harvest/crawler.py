"""One portal's crawl: its listing read through its platform, the annual-report entries taken,
each report fetched once (the file, its page's attachments, or the page itself), every body kept
in the raw store and every request logged, with what the listing said of each document.

Resumable by construction: a body is stored before its harvest_log row is written, so a logged
URL is always held; the next run asks for it with its ETag/Last-Modified (304: not downloaded
again). No Prefect here: flows/harvest.py runs one crawl a portal as a task.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import urlsplit

from sqlalchemy import Engine

from nianbao.parsers.detect import sniff_format
from nianbao.parsers.metadata import SourceHints
from nianbao.schema import harvestlog

from .client import PoliteClient, Response, Validators, decode_body
from .crawl import Entry, parse_attachments
from .platforms import ListingUnreachable, Page, read_listing
from .portals import Portal
from .rawstore import RawStore, StoredDocument


@dataclass(slots=True)
class PortalResult:
    portal: str
    region: str | None = None
    error: str | None = None  # why the portal failed; None when it did not
    platform: str | None = None  # how its listing was read: gkmlpt, jpage, trs, static
    pages: int = 0  # listing pages read
    reports: int = 0  # annual-report entries in the year range
    out_of_range: int = 0  # annual-report entries outside it, not opened
    downloaded: int = 0  # bodies received (200)
    not_modified: int = 0  # answered 304 from the copy we hold
    new: int = 0  # documents handed to the ingest flow
    loaded: int = 0  # of those, loaded as reports
    not_loaded: int = 0  # of those, failed or left for the next run
    problems: list[tuple[str, str]] = field(default_factory=list)  # (url, what went wrong)

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass(slots=True)
class HarvestSummary:
    portals: list[PortalResult] = field(default_factory=list)

    @property
    def failed(self) -> list[PortalResult]:
        return [p for p in self.portals if p.failed]

    def failure_message(self) -> str | None:
        """What made the harvest fail, in one line; None when nothing did."""
        reasons = []
        if self.failed:
            names = ", ".join(p.portal for p in self.failed)
            reasons.append(f"{len(self.failed)} of {len(self.portals)} portals failed ({names})")
        not_loaded = sum(p.not_loaded for p in self.portals)
        if not_loaded:
            reasons.append(f"{not_loaded} harvested documents did not load")
        return "; ".join(reasons) or None

    def lines(self) -> list[str]:
        out = []
        for p in self.portals:
            platform = f"{p.platform} listing, " if p.platform else ""
            counts = (
                f"{platform}{p.pages} listing pages, {p.reports} reports ({p.out_of_range} outside the"
                f" years), {p.downloaded} downloaded, {p.not_modified} unchanged, {p.new} new,"
                f" {p.loaded} loaded"
            )
            out += (
                [f"{p.portal}: FAILED: {p.error}", f"  {counts}"]
                if p.failed
                else [f"{p.portal}: {counts}"]
            )
            out += [f"  {url}: {problem}" for url, problem in p.problems]
        out.append(f"portals: {len(self.portals)}, failed: {len(self.failed)}")
        return out


class PortalFailed(Exception):
    """The portal as a whole could not be harvested (site down, nothing found)."""


@dataclass(frozen=True, slots=True)
class Held:
    """The last copy of a URL we stored: its bytes' sha256 and the validators to re-ask with."""

    sha256: str
    key: str  # in the raw store
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True, slots=True)
class Fetched:
    url: str  # after redirects
    sha256: str
    key: str  # in the raw store
    content_type: str | None  # None when answered 304 from our copy


class PortalCrawl:
    """One portal's crawl: everything it fetches is stored, logged and fetched once."""

    def __init__(
        self,
        portal: Portal,
        client: PoliteClient,
        history: FetchHistory,
        years: tuple[int, int] | None,
    ) -> None:
        self.portal = portal
        self.client = client
        self.history = history
        self.years = years
        self.result = PortalResult(portal.name, portal.region)
        self.fetched: dict[str, Fetched | None] = {}
        self.documents: dict[str, StoredDocument] = {}  # by sha256
        self._downloaded: tuple[str, bytes] = ("", b"")  # the last body received, by its key

    def run(self) -> dict[str, StoredDocument]:
        entries = self._entries()
        for entry in entries:
            if self.years and not self.years[0] <= entry.year <= self.years[1]:
                self.result.out_of_range += 1
                continue
            self.result.reports += 1
            self._take(entry)
        return self.documents

    def _entries(self) -> list[Entry]:
        try:
            listing = read_listing(
                self.portal.url, self._page, self.portal.listing_options, self.portal.allowed_hosts
            )
        except ListingUnreachable:
            raise PortalFailed(f"listing page not fetched: {self.result.problems[-1][1]}") from None
        self.result.platform = listing.platform
        self.result.pages = listing.pages
        self.result.problems += listing.problems
        if not listing.entries:
            hint = (
                "layout changed? set entry_selector"
                if listing.platform == "static"
                else f"read as a {listing.platform} listing"
            )
            raise PortalFailed(
                f"nothing found: no annual-report entry among {listing.links_seen} links on "
                f"{listing.pages} listing page(s) ({hint})"
            )
        return list(listing.entries.values())

    def _page(self, url: str, form: Mapping[str, str] | None = None) -> Page | None:
        """A listing page or API answer as text, fetched like everything else (stored, logged)."""
        fetched = self.fetch(url, form)
        if fetched is None:
            return None
        return Page(fetched.url, decode_body(self._bytes(fetched), fetched.content_type))

    def _bytes(self, fetched: Fetched) -> bytes:
        # What was just downloaded is read at once: not again from a store that may be remote.
        key, body = self._downloaded
        return body if key == fetched.key else self.history.store.read(fetched.key)

    def _text(self, fetched: Fetched) -> str | None:
        """The page's text, or None when the bytes are not a page.

        By the bytes: a link named .pdf may lead to an article page, and the other way round.
        """
        data = self._bytes(fetched)
        if sniff_format(data, urlsplit(fetched.url).path) != "html":
            return None
        return decode_body(data, fetched.content_type)

    def _take(self, entry: Entry) -> None:
        """The report of an entry: the file it links, its page's attachments, or its page."""
        fetched = self.fetch(entry.url)
        if fetched is None:
            return
        page = self._text(fetched)
        if page is None:
            # The listing linked the report file itself.
            self._keep(fetched, entry)
            return
        attachments = parse_attachments(page, fetched.url)
        if not attachments:
            self._keep(fetched, entry)
        for link in attachments:
            attachment = self.fetch(link.url)
            if attachment is not None:
                self._keep(attachment, entry)

    def _keep(self, fetched: Fetched, entry: Entry) -> None:
        # Identical bytes at two URLs are one document, known by the first URL and its entry.
        hints = SourceHints(
            title=entry.title,
            publisher=entry.publisher,
            published=entry.published,
            region=self.portal.region,
        )
        self.documents.setdefault(fetched.sha256, StoredDocument(fetched.key, fetched.url, hints))
        self.history.record_entry(self.portal.name, self.result.platform, entry, fetched)

    def fetch(self, url: str, form: Mapping[str, str] | None = None) -> Fetched | None:
        """GET (or POST `form`) once per run; the body stored and every request logged; None
        (and a problem) if not got."""
        asked = url if form is None else f"{url} {sorted(form.items())}"
        if asked in self.fetched:
            return self.fetched[asked]
        hosts = self.portal.allowed_hosts
        response = (
            self.client.get(url, hosts) if form is None else self.client.post(url, form, hosts)
        )
        fetched: Fetched | None = None
        if response.ok:
            assert response.content is not None
            fmt = sniff_format(response.content, urlsplit(response.url).path)
            name = f"file.{fmt}" if fmt != "unknown" else ""
            sha256, raw_key = self.history.store.put(response.content, name)
            fetched = Fetched(response.url, sha256, raw_key, response.content_type)
            self._downloaded = (raw_key, response.content)
            self.result.downloaded += 1
        elif response.not_modified and (held := self.history.held(response.url)):
            fetched = Fetched(response.url, held.sha256, held.key, None)
            self.result.not_modified += 1
        else:
            self.result.problems.append((url, response.error or f"HTTP {response.status}"))
        # Logged after the bytes are stored: a logged sha256 is always in the raw store.
        self.history.log(self.portal.name, response, fetched)
        self.fetched[asked] = fetched
        return fetched


class FetchHistory:
    """What was fetched before, from harvest_log and the raw store; and the log of this run."""

    def __init__(self, engine: Engine, store: RawStore) -> None:
        self.engine = engine
        self.store = store
        self._held: dict[str, Held | None] = {}

    def held(self, url: str) -> Held | None:
        if url not in self._held:
            self._held[url] = self._lookup(url)
        return self._held[url]

    def validators(self, url: str) -> Validators | None:
        held = self.held(url)
        return (held.etag, held.last_modified) if held else None

    def _lookup(self, url: str) -> Held | None:
        row = harvestlog.last_stored_copy(self.engine, url)
        if row is None or not (row.etag or row.last_modified):
            return None
        # Only a copy still in the raw store may be re-asked conditionally: a 304 gives no bytes.
        key = self.store.find(row.sha256)
        return Held(row.sha256, key, row.etag, row.last_modified) if key else None

    def record_entry(
        self, portal: str, platform: str | None, entry: Entry, fetched: Fetched
    ) -> None:
        """What the listing said of a document, once per (document, entry)."""
        harvestlog.record_entry(
            self.engine,
            {
                "sha256": fetched.sha256,
                "portal": portal,
                "platform": platform,
                "entry_url": entry.url,
                "document_url": fetched.url,
                "title": entry.title,
                "year": entry.year,
                "published": date.fromisoformat(entry.published) if entry.published else None,
                "publisher": entry.publisher,
            },
        )

    def log(self, portal: str, response: Response, fetched: Fetched | None) -> None:
        """One harvest_log row per request; the final one names the bytes it stands for."""
        held = self.held(response.url) if response.not_modified else None
        rows = []
        for i, exchange in enumerate(response.exchanges):
            final = fetched is not None and i == len(response.exchanges) - 1
            rows.append(
                {
                    "url": exchange.url,
                    "portal": portal,
                    "http_status": exchange.status,
                    "sha256": fetched.sha256 if final else None,
                    # A 304 may omit its validators: keep the ones the copy was fetched with.
                    "etag": exchange.etag or (held.etag if final and held else None),
                    "last_modified": exchange.last_modified
                    or (held.last_modified if final and held else None),
                    "error": exchange.error,
                }
            )
        harvestlog.log_requests(self.engine, rows)
        if fetched is not None and response.ok:
            # Another link redirecting here later in this run may now be answered with a 304.
            self._held[response.url] = Held(
                fetched.sha256, fetched.key, response.etag, response.last_modified
            )


def crawl(
    portal: Portal,
    client: PoliteClient,
    history: FetchHistory,
    years: tuple[int, int] | None,
) -> tuple[PortalResult, dict[str, StoredDocument]]:
    """Crawl one portal and download what is new: its counts, and its documents by sha256.

    A portal that fails as a whole is an outcome (`PortalResult.error`), not an exception.
    """
    portal_crawl = PortalCrawl(portal, client, history, years)
    try:
        return portal_crawl.result, portal_crawl.run()
    except PortalFailed as exc:
        # An outcome to report, not a bug: no traceback, and the counts so far are kept.
        portal_crawl.result.error = str(exc)
        return portal_crawl.result, {}
