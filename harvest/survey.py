"""`nianbao portals check`: what a harvest would find on each portal, without harvesting.

Reads each portal's listing exactly as the harvest does (its platform recognised, robots.txt,
politeness, hosts) but opens no entry, downloads no report and touches no database: it says the
platform, the report entries per year, and which entries a harvest would open.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from nianbao.harvest.client import ClientSettings, PoliteClient, decode_body
from nianbao.harvest.crawl import Entry
from nianbao.harvest.platforms import ListingUnreachable, Page, read_listing
from nianbao.harvest.portals import Portal

# Portals looked at the same time; the client keeps each host polite.
PORTALS_AT_ONCE = 8


@dataclass(slots=True)
class PortalSurvey:
    portal: Portal
    platform: str | None = None
    pages: int = 0  # listing pages and API answers read
    links_seen: int = 0
    entries: list[Entry] = field(default_factory=list)  # every annual-report entry
    to_open: list[Entry] = field(default_factory=list)  # those in the year range
    problems: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None or not self.entries

    def lines(self) -> list[str]:
        name = self.portal.name
        if self.error:
            return [f"{name}: FAILED: {self.error}"]
        out = [
            f"{name}: {self.platform} listing, {self.pages} page(s) read, "
            f"{len(self.entries)} report entries among {self.links_seen} links"
        ]
        if not self.entries:
            out[0] += " — nothing found (layout changed? set entry_selector)"
        per_year = Counter(entry.year for entry in self.entries)
        if per_year:
            out.append("  per year: " + ", ".join(f"{y}: {n}" for y, n in sorted(per_year.items())))
        out.append(f"  a harvest would open {len(self.to_open)}:")
        out += [
            f"    {entry.year}  {entry.published or '—':10}  {entry.title}  {entry.url}"
            for entry in self.to_open
        ]
        out += [f"  {url}: {problem}" for url, problem in self.problems]
        return out


def survey_portal(
    portal: Portal, client: PoliteClient, years: tuple[int, int] | None = None
) -> PortalSurvey:
    survey = PortalSurvey(portal)
    hosts = portal.allowed_hosts

    def fetch(url: str, form: Mapping[str, str] | None = None) -> Page | None:
        response = client.get(url, hosts) if form is None else client.post(url, form, hosts)
        if not response.ok:
            survey.problems.append((url, response.error or f"HTTP {response.status}"))
            return None
        return Page(response.url, decode_body(response.content or b"", response.content_type))

    try:
        listing = read_listing(portal.url, fetch, portal.listing_options, hosts)
    except ListingUnreachable:
        survey.error = f"listing page not fetched: {survey.problems[-1][1]}"
        return survey
    survey.platform = listing.platform
    survey.pages = listing.pages
    survey.links_seen = listing.links_seen
    survey.problems += listing.problems
    survey.entries = sorted(listing.entries.values(), key=lambda e: (-e.year, e.url))
    survey.to_open = [
        entry for entry in survey.entries if not years or years[0] <= entry.year <= years[1]
    ]
    return survey


def survey_portals(
    portals: list[Portal],
    years: tuple[int, int] | None = None,
    settings: ClientSettings | None = None,
) -> list[PortalSurvey]:
    """Every portal surveyed, several at once; in the order given. One portal's failure, even a
    bug, is its own line and never stops the others."""

    def survey(portal: Portal, client: PoliteClient) -> PortalSurvey:
        try:
            return survey_portal(portal, client, years)
        except Exception as exc:
            return PortalSurvey(portal, error=repr(exc))

    with (
        PoliteClient(settings) as client,
        ThreadPoolExecutor(max_workers=PORTALS_AT_ONCE) as pool,
    ):
        return list(pool.map(lambda portal: survey(portal, client), portals))
