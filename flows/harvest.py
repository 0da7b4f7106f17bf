"""The harvest flow: portals → listing pages → annual-report entries → new files → ingest.

For each portal: read its listing the way its platform lists (flows/platforms: gkmlpt's API,
大汉 jpage's data proxy, TRS's pager, or static pages), pick the entries that are annual reports
(in the year range, when one is given), open each and take the report (the page itself when it
is inline HTML, else its attachments), keep every body fetched in the raw store and every request
in harvest_log, and hand the documents the warehouse does not hold to `ingest_flow` with what the
listing said of them (title, date, publisher) as hints; those are kept in harvest_entries.
Several portals are crawled at once, each in a thread, with one polite client between them.

Resumable by construction: a body is stored before its harvest_log row is written, so a logged
URL is always held; the next run asks for it with its ETag/Last-Modified (304: not downloaded
again) and still ingests it if the run that fetched it was stopped before ingesting.
A portal's failure (site down, layout changed, nothing found) is caught, reported in the summary
and the Prefect artifacts, and never stops the other portals.

No `from __future__ import annotations` here: a deployment's run validates the flow's parameters
against its annotations, and string annotations of classes (Portal) do not resolve there.
"""

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nianbao.flows.orchestrator import configure_prefect

configure_prefect()

from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.artifacts import create_table_artifact  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.schedules import Cron, Schedule  # noqa: E402
from prefect.settings import PREFECT_API_URL  # noqa: E402
from prefect.states import Failed, State  # noqa: E402
from prefect.task_runners import ThreadPoolTaskRunner  # noqa: E402
from prefect.types.entrypoint import EntrypointType  # noqa: E402
from sqlalchemy import Engine, insert, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from nianbao.flows.client import (  # noqa: E402
    ClientSettings,
    PoliteClient,
    Response,
    Validators,
    decode_body,
)
from nianbao.flows.crawl import Entry, parse_attachments  # noqa: E402

# Lives with the crawl's pure helpers (`portals check` needs it without Prefect); kept importable
# from here, where the harvest command has always taken it.
from nianbao.flows.crawl import parse_years as parse_years  # noqa: E402
from nianbao.flows.ingest import (  # noqa: E402
    IngestSummary,
    ingest_flow,
    publish_quality_report,
)
from nianbao.flows.orchestrator import NoPrefectServer, recorded_run  # noqa: E402
from nianbao.flows.platforms import (  # noqa: E402
    ListingUnreachable,
    Page,
    read_listing,
)
from nianbao.flows.portals import Portal, load_portals  # noqa: E402
from nianbao.flows.rawstore import DEFAULT_RAW_DIR, RawStore  # noqa: E402
from nianbao.parsers.detect import sniff_format  # noqa: E402
from nianbao.parsers.metadata import SourceHints  # noqa: E402
from nianbao.parsers.report import PARSER_VERSION  # noqa: E402
from nianbao.schema.db import (  # noqa: E402
    DB_URL_ENV,
    complete_db_url,
    engine_for,
    mask_secrets,
    public_db_url,
    resolve_db_url,
    upgrade,
)
from nianbao.schema.load import LoadOutcome, known_documents  # noqa: E402
from nianbao.schema.models import HarvestEntry, HarvestLog  # noqa: E402

DEFAULT_TIMEZONE = "Asia/Shanghai"
# `nianbao serve` registers this deployment; prefect.yaml declares `nightly` for workers. Two
# names, so that deploying one never overwrites the other's parameters and schedule.
SERVE_DEPLOYMENT = "nightly-serve"
# Portals crawled at the same time, one thread each; the client keeps each host polite.
PORTALS_AT_ONCE = 8


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
            counts = (
                f"{p.pages} listing pages, {p.reports} reports ({p.out_of_range} outside the"
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
class _Held:
    """The last copy of a URL we stored: its bytes' sha256 and the validators to re-ask with."""

    sha256: str
    path: Path
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True, slots=True)
class _Fetched:
    url: str  # after redirects
    sha256: str
    path: Path
    content_type: str | None  # None when answered 304 from our copy

    def text(self) -> str | None:
        """The page's text, or None when the bytes are not a page.

        By the bytes: a link named .pdf may lead to an article page, and the other way round.
        """
        data = self.path.read_bytes()
        if sniff_format(data, urlsplit(self.url).path) != "html":
            return None
        return decode_body(data, self.content_type)


class Harvested(NamedTuple):
    """A document the crawl took: its raw file, where it came from, what its listing said."""

    path: Path
    url: str
    hints: SourceHints


class _Harvest:
    """One portal's crawl: everything it fetches is stored, logged and fetched once."""

    def __init__(
        self,
        portal: Portal,
        client: PoliteClient,
        history: "_History",
        years: tuple[int, int] | None,
    ) -> None:
        self.portal = portal
        self.client = client
        self.history = history
        self.years = years
        self.result = PortalResult(portal.name, portal.region)
        self.fetched: dict[str, _Fetched | None] = {}
        self.documents: dict[str, Harvested] = {}  # by sha256

    def run(self) -> dict[str, Harvested]:
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
        return Page(fetched.url, decode_body(fetched.path.read_bytes(), fetched.content_type))

    def _take(self, entry: Entry) -> None:
        """The report of an entry: the file it links, its page's attachments, or its page."""
        fetched = self.fetch(entry.url)
        if fetched is None:
            return
        page = fetched.text()
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

    def _keep(self, fetched: _Fetched, entry: Entry) -> None:
        # Identical bytes at two URLs are one document, known by the first URL and its entry.
        hints = SourceHints(
            title=entry.title,
            publisher=entry.publisher,
            published=entry.published,
            region=self.portal.region,
        )
        self.documents.setdefault(fetched.sha256, Harvested(fetched.path, fetched.url, hints))
        self.history.record_entry(self.portal.name, self.result.platform, entry, fetched)

    def fetch(self, url: str, form: Mapping[str, str] | None = None) -> _Fetched | None:
        """GET (or POST `form`) once per run; the body stored and every request logged; None
        (and a problem) if not got."""
        key = url if form is None else f"{url} {sorted(form.items())}"
        if key in self.fetched:
            return self.fetched[key]
        hosts = self.portal.allowed_hosts
        response = (
            self.client.get(url, hosts) if form is None else self.client.post(url, form, hosts)
        )
        fetched: _Fetched | None = None
        if response.ok:
            assert response.content is not None
            fmt = sniff_format(response.content, urlsplit(response.url).path)
            name = f"file.{fmt}" if fmt != "unknown" else ""
            sha256, path = self.history.store.put(response.content, name)
            fetched = _Fetched(response.url, sha256, path, response.content_type)
            self.result.downloaded += 1
        elif response.not_modified and (held := self.history.held(response.url)):
            fetched = _Fetched(response.url, held.sha256, held.path, None)
            self.result.not_modified += 1
        else:
            self.result.problems.append((url, response.error or f"HTTP {response.status}"))
        # Logged after the bytes are stored: a logged sha256 is always in the raw store.
        self.history.log(self.portal.name, response, fetched)
        self.fetched[key] = fetched
        return fetched


class _History:
    """What was fetched before, from harvest_log and the raw store; and the log of this run."""

    def __init__(self, engine: Engine, store: RawStore) -> None:
        self.engine = engine
        self.store = store
        self._held: dict[str, _Held | None] = {}

    def held(self, url: str) -> _Held | None:
        if url not in self._held:
            self._held[url] = self._lookup(url)
        return self._held[url]

    def validators(self, url: str) -> Validators | None:
        held = self.held(url)
        return (held.etag, held.last_modified) if held else None

    def _lookup(self, url: str) -> _Held | None:
        query = (
            select(HarvestLog.sha256, HarvestLog.etag, HarvestLog.last_modified)
            .where(HarvestLog.url == url, HarvestLog.sha256.is_not(None))
            .order_by(HarvestLog.fetched_at.desc(), HarvestLog.id.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).one_or_none()
        if row is None or not (row.etag or row.last_modified):
            return None
        # Only a copy still in the raw store may be re-asked conditionally: a 304 gives no bytes.
        path = next(self.store.path_for(row.sha256).parent.glob(f"{row.sha256}*"), None)
        return _Held(row.sha256, path, row.etag, row.last_modified) if path else None

    def record_entry(
        self, portal: str, platform: str | None, entry: Entry, fetched: _Fetched
    ) -> None:
        """What the listing said of a document, once per (document, entry)."""
        known = select(HarvestEntry.id).where(
            HarvestEntry.sha256 == fetched.sha256, HarvestEntry.entry_url == entry.url
        )
        with self.engine.begin() as conn:
            if conn.execute(known.limit(1)).first() is not None:
                return
            conn.execute(
                insert(HarvestEntry),
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

    def log(self, portal: str, response: Response, fetched: _Fetched | None) -> None:
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
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(HarvestLog), rows)
        if fetched is not None and response.ok:
            # Another link redirecting here later in this run may now be answered with a 304.
            self._held[response.url] = _Held(
                fetched.sha256, fetched.path, response.etag, response.last_modified
            )


@task(name="crawl-portal", task_run_name="crawl {portal.name}", cache_policy=NO_CACHE)
def crawl_portal(
    portal: Portal,
    client: PoliteClient,
    history: _History,
    years: tuple[int, int] | None,
) -> tuple[PortalResult, dict[str, Harvested]]:
    """Crawl one portal and download what is new: its counts, and its documents by sha256."""
    harvest = _Harvest(portal, client, history, years)
    try:
        return harvest.result, harvest.run()
    except PortalFailed as exc:
        # An outcome to report, not a bug: no traceback, and the counts so far are kept.
        harvest.result.error = str(exc)
        return harvest.result, {}


def _new_documents(engine: Engine, documents: dict[str, Harvested]) -> dict[str, Harvested]:
    known = known_documents(engine, documents)
    return {
        sha: doc
        for sha, doc in documents.items()
        if sha not in known or known[sha].parser_version != PARSER_VERSION
    }


@flow(
    name="nianbao-harvest",
    log_prints=False,
    task_runner=ThreadPoolTaskRunner(max_workers=PORTALS_AT_ONCE),
)
def harvest_flow(
    portals: list[Portal] | str,
    db_url: str | None = None,
    years: tuple[int, int] | None = None,
    raw_dir: str = DEFAULT_RAW_DIR,
    workers: int = 1,
    client_settings: ClientSettings | None = None,
) -> HarvestSummary | State:
    """Harvest the portals (a list, or the path of a portals.toml) and ingest what is new.

    `db_url` is the warehouse without its password (a flow parameter is shown by Prefect): the
    password comes from $NIANBAO_DB, PGPASSWORD or ~/.pgpass where the run executes. The run
    ends Failed when a portal failed or a harvested document did not load.
    """
    with recorded_run():
        return _harvest(portals, db_url, years, raw_dir, workers, client_settings)


def _harvest(
    portals: list[Portal] | str,
    db_url: str | None,
    years: tuple[int, int] | None,
    raw_dir: str,
    workers: int,
    client_settings: ClientSettings | None,
) -> HarvestSummary | State:
    logger = get_run_logger()
    if isinstance(portals, str):
        portals = load_portals(portals)
    url = complete_db_url(resolve_db_url(db_url))
    upgrade(url)
    engine = engine_for(url)
    history = _History(engine, RawStore(raw_dir))
    summary = HarvestSummary()
    with PoliteClient(client_settings, history.validators) as client:
        crawls = [crawl_portal.submit(portal, client, history, years) for portal in portals]
        for portal, crawl in zip(portals, crawls, strict=True):
            result = PortalResult(portal.name, portal.region)
            try:
                result, documents = crawl.result()
                new = _new_documents(engine, documents)
                result.new = len(new)
                if new:
                    _ingest_new(new, url, raw_dir, workers, result)
            except Exception as exc:  # a bug or a database error: still never stop the others
                result.error = mask_secrets(repr(exc))
            if result.failed:
                logger.error("portal %s failed: %s", portal.name, result.error)
            else:
                logger.info(
                    "portal %s: %d listing pages, %d reports, %d downloaded, %d new, %d loaded",
                    portal.name,
                    result.pages,
                    result.reports,
                    result.downloaded,
                    result.new,
                    result.loaded,
                )
            summary.portals.append(result)
    _publish(summary)
    publish_quality_report(engine)
    engine.dispose()
    message = summary.failure_message()
    return Failed(message=message, data=summary) if message else summary


def _ingest_new(
    new: dict[str, Harvested],
    url: str,
    raw_dir: str,
    workers: int,
    result: PortalResult,
) -> None:
    """Ingest a portal's new documents (a subflow); its counts and problems go to `result`."""
    state = ingest_flow(
        [str(document.path) for document in new.values()],
        public_db_url(url),
        workers,
        raw_dir=raw_dir,
        sources={str(document.path): document.url for document in new.values()},
        hints={str(document.path): document.hints for document in new.values()},
        return_state=True,
    )
    ingested = state.result(raise_on_failure=False)
    if not isinstance(ingested, IngestSummary):
        raise ingested if isinstance(ingested, BaseException) else RuntimeError(state.message)
    result.loaded = (
        ingested.outcomes[LoadOutcome.LOADED.value] + ingested.outcomes[LoadOutcome.RELOADED.value]
    )
    result.not_loaded = ingested.failed + ingested.not_loaded
    result.problems += [
        (source, f"not loaded: {code}: {message}")
        for source, code, message in ingested.failed_files
    ]
    if ingested.stopped:
        result.error = f"ingest stopped: {ingested.stopped}"


def _publish(summary: HarvestSummary) -> None:
    create_table_artifact(
        key="harvest-portals",
        table=[
            {
                "portal": p.portal,
                "region": p.region or "",
                "status": "failed" if p.failed else "ok",
                "error": p.error or "",
                "listing pages": p.pages,
                "reports": p.reports,
                "outside the years": p.out_of_range,
                "downloaded": p.downloaded,
                "unchanged": p.not_modified,
                "new": p.new,
                "loaded": p.loaded,
                "problems": len(p.problems),
            }
            for p in summary.portals
        ],
        description="What each portal gave in this harvest",
    )
    create_table_artifact(
        key="harvest-problems",
        table=[
            {"portal": p.portal, "url": url, "problem": problem}
            for p in summary.portals
            for url, problem in p.problems
        ]
        or [{"portal": "", "url": "", "problem": "none"}],
        description="URLs that were not fetched or not loaded, and why",
    )


def cron_schedule(cron: str, timezone: str = DEFAULT_TIMEZONE) -> Schedule:
    """A Prefect cron schedule; ValueError for a bad expression or an unknown time zone."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {timezone!r} (an IANA name like Asia/Shanghai)"
        ) from None
    return Cron(cron, timezone=timezone)


def serve_harvest(
    portals_file: str | Path,
    schedule: Schedule,
    *,
    name: str = SERVE_DEPLOYMENT,
    db_url: str | None = None,
    raw_dir: str = DEFAULT_RAW_DIR,
    workers: int = 1,
    client_settings: ClientSettings | None = None,
) -> None:
    """Register the harvest as a deployment on `schedule` and run its runs (Prefect serve).

    The portals file is re-read by every run, so edits take effect without a restart; it is
    validated here too, so a broken file fails now rather than at the first scheduled run.
    """
    if not PREFECT_API_URL.value():
        raise NoPrefectServer(
            "a schedule needs a Prefect server (the temporary one Prefect starts on its own runs "
            "no scheduler): start one with `prefect server start` and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    path = Path(portals_file).resolve()
    load_portals(path)
    url = resolve_db_url(db_url)
    if make_url(url).password:
        # Runs start as subprocesses of this one and inherit its environment: they complete
        # the password-free URL of their parameters from it, so Prefect never stores it.
        os.environ[DB_URL_ENV] = url
    parameters = {
        "portals": str(path),
        "db_url": public_db_url(url),
        "raw_dir": str(Path(raw_dir).resolve()),
        "workers": workers,
    }
    if client_settings:
        parameters["client_settings"] = asdict(client_settings)
    harvest_flow.serve(
        name=name,
        schedules=[schedule],
        parameters=parameters,
        description="Harvest the annual-report columns of portals.toml and ingest what is new",
        # The package is installed: a module path works from any working directory.
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
