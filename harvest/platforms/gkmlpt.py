"""广东 政府信息公开目录 (`gkmlpt`): a JavaScript shell listing through a JSON API.

The address a person copies is `HOST[/prefix]/gkmlpt/index#CATID`; the category id is only in the
fragment, which never reaches the server. The page holds an inline config (`window._CONFIG = {…}`
or similar) with the site id `SID`, the `TREE` of categories (some of which jump to another site
through `jump_url`) and the app's base URL. The list is

    GET {base}/gkmlpt/api/all/{CATID}?page=N&sid={SID}
    → {"total": 37, "articles": [{"id", "title", "url", "created_at" | "date", "publisher", …}]}

with a page size that varies by site (read from the first answer); some sites answer `page=0` as
`page=1`, so pages are counted from 1 and a page that repeats the last is the end. Without a
CATID the categories whose name is an annual report's (年报, 年度报告) are read.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from nianbao.harvest.crawl import Entry, iso_date, normalise, report_year
from nianbao.harvest.platforms.base import Fetch, ListingOptions, ListingRead, Page, Reader
from nianbao.harvest.platforms.js import as_int, object_after

# An object literal assigned to a *CONFIG* name, or any object literal that names a SID.
_CONFIG = re.compile(r"\w*CONFIG\w*\s*=\s*\{", re.I)
_WITH_SID = re.compile(r"\{(?=[^{}]{0,2000}?['\"]?\bSID\b['\"]?\s*:)", re.I)
_APP = "/gkmlpt"
# Config keys that name where the site or the app lives (BASE_URL, APP_ROOT, SITE_DOMAIN …).
_BASE_KEY = re.compile(r"url|base|root|host|domain|app|api|site|path", re.I)
_REPORT_CATEGORY = re.compile(r"年报|年度报告")
_CHINA = timezone(timedelta(hours=8))
_DATE_FIELDS = (
    "date",
    "created_at",
    "publish_time",
    "first_publish_time",
    "pub_date",
    "updated_at",
)
_PUBLISHER_FIELDS = ("publisher", "publisher_name", "source", "organ")


def _key(config: dict[str, Any], name: str) -> Any:
    """A config value by name, whatever its case (SID, sid, Sid)."""
    for key, value in config.items():
        if key.lower() == name.lower():
            return value
    return None


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    """Every category of a TREE, depth first, whatever its children are called."""
    if isinstance(tree, list):
        for item in tree:
            yield from _nodes(item)
    elif isinstance(tree, dict):
        if "id" in tree:
            yield tree
        for value in tree.values():
            if isinstance(value, list):
                yield from _nodes(value)


def category_of(url: str) -> str | None:
    """The category id after `#` in the address a person copies (`…/gkmlpt/index#2475`)."""
    match = re.search(r"\d+", urlsplit(url).fragment)
    return match.group(0) if match else None


def app_bases(config: dict[str, Any], page_url: str) -> list[str]:
    """Where the app's paths may hang from (`…/gkmlpt` excluded), most likely first.

    The config's URLs come first (a value naming `/gkmlpt`, then any other URL or path it
    holds), then the page's own address; those on the page's host before those elsewhere (a
    static-file host is no API). The reader tries them in turn until one answers the list.
    """
    naming_app, other = [], []
    for key, value in config.items():
        if not isinstance(value, str) or not value.strip().startswith(("/", "http:", "https:")):
            continue
        absolute = urljoin(page_url, value.strip())
        if _APP in absolute:
            naming_app.append(absolute[: absolute.index(_APP)])
        elif _BASE_KEY.search(key) and not PurePosixPath(urlsplit(absolute).path).suffix:
            other.append(absolute.rstrip("/"))
    parts = urlsplit(page_url)
    own = (
        page_url[: page_url.index(_APP + "/")]
        if _APP + "/" in page_url
        else f"{parts.scheme}://{parts.netloc}"
    )
    candidates = list(dict.fromkeys([*naming_app, *other, own]))
    host = parts.netloc
    return sorted(candidates, key=lambda base: urlsplit(base).netloc != host)


def published(article: dict[str, Any]) -> str | None:
    """The article's date as YYYY-MM-DD: from a date string, or a Unix time (s or ms) in China."""
    for name in _DATE_FIELDS:
        value = article.get(name)
        if isinstance(value, str) and (found := iso_date(value)):
            return found
        number = as_int(value)
        if number and number > 10**8:
            seconds = number / 1000 if number > 10**11 else number
            return datetime.fromtimestamp(seconds, UTC).astimezone(_CHINA).date().isoformat()
    return None


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _publisher(article: dict[str, Any]) -> str | None:
    for name in _PUBLISHER_FIELDS:
        value = article.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


class GkmlptListing(Reader):
    name = "gkmlpt"

    def __init__(self, first: Page, start_url: str, config: dict[str, Any]) -> None:
        self.first = first
        self.start_url = start_url
        self.config = config

    @classmethod
    def recognise(cls, page: Page, start_url: str, options: ListingOptions) -> GkmlptListing | None:
        config = object_after(page.text, _CONFIG)
        if config is None or _key(config, "SID") is None:
            config = object_after(page.text, _WITH_SID)
        if config is None or _key(config, "SID") is None:
            return None
        if _key(config, "TREE") is None and _APP + "/" not in start_url:
            return None  # a SID alone is not enough to call it gkmlpt
        return cls(page, start_url, config)

    def categories(self, found: ListingRead) -> list[str]:
        """The category ids to list: the one in the address, else the annual-report ones."""
        nodes = list(_nodes(_key(self.config, "TREE")))
        wanted = category_of(self.start_url)
        if wanted is None:
            chosen = [n for n in nodes if _REPORT_CATEGORY.search(str(n.get("name", "")))]
            if not chosen:
                found.problems.append(
                    (
                        self.start_url,
                        "gkmlpt address without #category, and no annual-report "
                        "category in the TREE: copy the column's address with its #number",
                    )
                )
            return [str(n["id"]) for n in chosen if not self._jumped(n, found)]
        node = next((n for n in nodes if str(n.get("id")) == wanted), None)
        return [] if node is not None and self._jumped(node, found) else [wanted]

    def _jumped(self, node: dict[str, Any], found: ListingRead) -> bool:
        """A category that lives on another site: its listing is read from there, if allowed."""
        jump = node.get("jump_url")
        if isinstance(jump, str) and jump.strip():
            found.jumps.append(urljoin(self.first.url, jump.strip()))
            return True
        return False

    def read(self, fetch: Fetch, found: ListingRead) -> None:
        sid = str(_key(self.config, "SID"))
        bases = app_bases(self.config, self.first.url)
        for category in self.categories(found):
            for base in bases:
                if self._read_category(fetch, found, f"{base}{_APP}/api/all/{category}", sid):
                    bases = [base]  # the app is there: the other categories are too
                    break

    def _read_category(self, fetch: Fetch, found: ListingRead, endpoint: str, sid: str) -> bool:
        """Every page of one category; False when `endpoint` answers no list at all."""
        seen: set[str] = set()
        page, pages = 1, None
        base = endpoint[: endpoint.index(_APP)]
        while pages is None or page <= pages:
            if not found.budget_left:
                found.stopped_at_max_pages(endpoint, f"API pages {page}–{pages or '?'}")
                return True
            url = f"{endpoint}?{urlencode({'page': page, 'sid': sid})}"
            answer = fetch(url)
            if answer is None:
                return page > 1
            found.pages += 1
            data = _json_object(answer.text)
            if data is None or not isinstance(data.get("articles", []), list):
                if page == 1:
                    return False
                found.problems.append((url, "the gkmlpt API answered something that is not a list"))
                return True
            articles = [a for a in data.get("articles") or [] if isinstance(a, dict)]
            keys = {str(a.get("id") or a.get("url")) for a in articles}
            if not articles or keys <= seen:
                return True  # past the end, or a page answered as another (page=0 as page=1)
            seen |= keys
            total = as_int(data.get("total"))
            if pages is None and total is not None:
                pages = math.ceil(total / len(articles))
            found.add(self._entries(articles, base), len(articles))
            page += 1
        return True

    def _entries(self, articles: list[dict[str, Any]], base: str) -> list[Entry]:
        entries = []
        for article in articles:
            title, url = article.get("title"), article.get("url")
            if not isinstance(title, str) or not isinstance(url, str) or not url.strip():
                continue
            year = report_year(title)
            if year is None:
                continue
            entries.append(
                Entry(
                    urljoin(base + "/", url.strip()),
                    normalise(title),
                    year,
                    published=published(article),
                    publisher=_publisher(article),
                )
            )
        return entries
