"""大汉 (Hanweb) columns: `/col/colN/index.html` pages that list through the jpage plug-in.

The page calls

    $('#div').jpage({totalRecord: 35, perPage: 15, groupSize: 3,
                     proxyUrl: '/module/web/jpage/dataproxy.jsp',
                     ajaxParam: {col: 1, appid: 1, webid: 2, path: '/', columnid: 1234, …}});

and the list comes from `POST {proxyUrl}?startrecord=1&endrecord=45&perpage=15` with ajaxParam as
the form: one answer holds a group of perPage × groupSize records, as XML:

    <datastore><totalrecord>35</totalrecord><totalpage>3</totalpage>
      <recordset><record><![CDATA[<li><a href="/art/2024/1/15/art_1234_5.html" title="…">…</a>
      <span>2024-01-15</span></li>]]></record>…</recordset></datastore>

Some pages embed the first group inline in a `<script type="text/xml"><datastore>`; the reading
then starts at the second group. Everything (the proxy's path above all) is read from the page.
"""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import urlencode, urljoin

from nianbao.harvest.crawl import parse_listing
from nianbao.harvest.platforms.base import Fetch, ListingOptions, ListingRead, Page, Reader
from nianbao.harvest.platforms.js import as_int, object_after

_CALL = re.compile(r"\.jpage\s*\(\s*\{")
# `.jpage(settings)` with `var settings = {…}` written before it.
_CALL_BY_NAME = re.compile(r"\.jpage\s*\(\s*([A-Za-z_$][\w$]*)\s*\)")
_DATASTORE = re.compile(r"<datastore>(.*?)</datastore>", re.S | re.I)
_RECORD = re.compile(r"<record>\s*(?:<!\[CDATA\[(.*?)\]\]>|(.*?))\s*</record>", re.S | re.I)
_TOTAL = re.compile(r"<totalrecord>\s*(\d+)\s*</totalrecord>", re.I)
# The plug-in's own defaults, for a call that leaves them out.
_PER_PAGE, _GROUP_SIZE = 15, 3


def records(answer: str) -> list[str]:
    """The HTML of each record of a datastore answer, in order."""
    return [
        cdata if cdata is not None and cdata != "" else html.unescape(plain or "")
        for cdata, plain in _RECORD.findall(answer)
    ]


def _form_value(value: Any) -> str:
    """A form field as the browser sends it: JavaScript's spelling of true, false and null."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def total_records(answer: str) -> int | None:
    match = _TOTAL.search(answer)
    return int(match.group(1)) if match else None


class JpageListing(Reader):
    name = "jpage"

    def __init__(
        self,
        first: Page,
        config: dict[str, Any] | None,
        inline: str | None,
        options: ListingOptions,
    ) -> None:
        self.first = first
        self.config = config or {}
        self.inline = inline  # the datastore embedded in the page, if any
        self.options = options

    @classmethod
    def recognise(cls, page: Page, start_url: str, options: ListingOptions) -> JpageListing | None:
        config = object_after(page.text, _CALL)
        if config is None and (named := _CALL_BY_NAME.search(page.text)):
            name = re.escape(named.group(1))
            config = object_after(page.text, re.compile(rf"\b{name}\s*=\s*\{{"))
        inline = _DATASTORE.search(page.text)
        if config is None and inline is None:
            return None
        return cls(page, config, inline.group(0) if inline else None, options)

    def _add_records(self, answer: str, base: str, found: ListingRead) -> int:
        """Entries of a datastore's records (links relative to the listing page); how many records."""
        items = records(answer)
        listing = parse_listing(
            "<ul>" + "".join(items) + "</ul>", base, self.options.entry_selector
        )
        found.add(listing.entries, listing.links_seen)
        return len(items)

    def read(self, fetch: Fetch, found: ListingRead) -> None:
        base = self.first.url
        per_page = as_int(self.config.get("perPage")) or _PER_PAGE
        group = per_page * (as_int(self.config.get("groupSize")) or _GROUP_SIZE)
        total = as_int(self.config.get("totalRecord"))
        start = 1
        if self.inline is not None:
            # The embedded group: the list goes on after its last record.
            start = self._add_records(self.inline, base, found) + 1
            total = total or total_records(self.inline)
        proxy = self.config.get("proxyUrl")
        if not isinstance(proxy, str) or not proxy.strip():
            if self.inline is None:
                found.problems.append((base, "jpage call without a proxyUrl: no list to ask for"))
            return
        parameters = self.config.get("ajaxParam")
        form = (
            {str(k): _form_value(v) for k, v in parameters.items()}
            if isinstance(parameters, dict)
            else {}
        )
        endpoint = urljoin(base, proxy.strip())
        previous: list[str] = []
        while total is None or start <= total:
            if not found.budget_left:
                left = f"records {start}–{total}" if total else f"records from {start} on"
                found.stopped_at_max_pages(endpoint, left)
                return
            end = start + group - 1 if total is None else min(start + group - 1, total)
            query = urlencode({"startrecord": start, "endrecord": end, "perpage": per_page})
            answer = fetch(f"{endpoint}{'&' if '?' in endpoint else '?'}{query}", form)
            if answer is None:  # the caller noted why
                if total is None:
                    return  # without this group's answer the end of the list is unknown
                start = end + 1
                continue
            found.pages += 1
            total = total_records(answer.text) or total
            group_records = records(answer.text)
            # An empty group ends the list; so does one repeated (a proxy ignoring startrecord).
            if not group_records or group_records == previous:
                return
            previous = group_records
            self._add_records(answer.text, base, found)
            start = end + 1
