"""portals.toml: the annual-report columns to harvest, validated into frozen dataclasses.

    [[portal]]
    name = "平潭综合实验区"
    url  = "https://www.pingtan.gov.cn/zwgk/zfxxgk/zfxxgknb/"   # the column's listing page, as
                                                               # copied from the browser (#… kept)
    region = "福建省"                                            # optional
    entry_selector = "div.list li a"   # optional: CSS (needs cssselect) or XPath (//ul[@class='list']//a)
    next_selector = "a.next"           # optional
    hosts = ["file.pingtan.gov.cn"]    # optional: other hosts that serve its attachments
    max_pages = 50                     # optional: listing pages crawled at most

Errors name the file, the portal and the field, so a typo fails the command at once instead of
a portal failing silently at 2 a.m.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from nianbao.harvest.crawl import SelectorError, compile_selector
from nianbao.harvest.platforms.base import ListingOptions

DEFAULT_MAX_PAGES = 50


class PortalsError(ValueError):
    """portals.toml cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Portal:
    name: str
    url: str
    region: str | None = None
    entry_selector: str | None = None
    next_selector: str | None = None
    hosts: tuple[str, ...] = ()
    max_pages: int = DEFAULT_MAX_PAGES

    @property
    def allowed_hosts(self) -> frozenset[str]:
        """The listing's host and the extra `hosts`: pages, redirects and files stay within them."""
        return frozenset({(urlsplit(self.url).hostname or "").lower(), *self.hosts})

    @property
    def listing_options(self) -> ListingOptions:
        return ListingOptions(self.entry_selector, self.next_selector, self.max_pages)


_KEYS = {f.name for f in fields(Portal)}


def load_portals(path: str | Path) -> list[Portal]:
    """Read and validate a portals.toml file."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise PortalsError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise PortalsError(f"{path}: not UTF-8 text (TOML files are UTF-8)") from None
    return parse_portals(text, str(path))


def parse_portals(text: str, origin: str = "portals.toml") -> list[Portal]:
    """Validate the text of a portals.toml; `origin` names it in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PortalsError(f"{origin}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"portal"})
    if unknown:
        raise PortalsError(
            f"{origin}: unknown top-level key(s) {', '.join(unknown)}; portals are [[portal]] tables"
        )
    tables = data.get("portal")
    if not isinstance(tables, list) or not tables:
        raise PortalsError(f"{origin}: no [[portal]] tables: add one per annual-report column")
    portals = [_portal(table, f"{origin}, portal {i}") for i, table in enumerate(tables, 1)]
    seen: set[str] = set()
    for portal in portals:
        if portal.name in seen:
            raise PortalsError(
                f"{origin}: two portals are named {portal.name!r}; names must differ"
            )
        seen.add(portal.name)
    return portals


def _portal(table: dict[str, Any], where: str) -> Portal:
    if "name" in table and isinstance(table["name"], str):
        where = f"{where} ({table['name']})"
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise PortalsError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_KEYS))}"
        )
    for key in ("name", "url"):
        if not isinstance(table.get(key), str) or not table[key].strip():
            raise PortalsError(f"{where}: `{key}` is required and must be a non-empty string")
    url = table["url"].strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PortalsError(f"{where}: `url` must be an http(s) URL of a listing page, got {url!r}")
    for key in ("region", "entry_selector", "next_selector"):
        if key in table and not isinstance(table[key], str):
            raise PortalsError(f"{where}: `{key}` must be a string")
    for key in ("entry_selector", "next_selector"):
        if key in table:
            try:
                compile_selector(table[key])
            except SelectorError as exc:
                raise PortalsError(f"{where}: `{key}`: {exc}") from None
    hosts = table.get("hosts", [])
    if not isinstance(hosts, list) or not all(isinstance(h, str) and h.strip() for h in hosts):
        raise PortalsError(
            f'{where}: `hosts` must be a list of host names, e.g. ["files.x.gov.cn"]'
        )
    max_pages = table.get("max_pages", DEFAULT_MAX_PAGES)
    # bool is an int in Python: `max_pages = true` must not mean one page.
    if not isinstance(max_pages, int) or isinstance(max_pages, bool) or max_pages < 1:
        raise PortalsError(f"{where}: `max_pages` must be a whole number of at least 1")
    return Portal(
        name=table["name"].strip(),
        url=url,
        region=table.get("region"),
        entry_selector=table.get("entry_selector"),
        next_selector=table.get("next_selector"),
        hosts=tuple(h.strip().lower() for h in hosts),
        max_pages=max_pages,
    )
