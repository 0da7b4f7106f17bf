"""Harvest: portals.toml, the crawl's page reading, the polite client, and the harvest flow
against a fixture portal served over real HTTP on 127.0.0.1 (tests/portal_server.py).

The flow tests share one Prefect test server and, in order, one warehouse: a first run, a second
run that finds nothing new, and a run after a report changed. Backfill, failing portals, a
killed run and the nightly schedule each use a warehouse of their own.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from sqlalchemy import create_engine, func, select, text
from typer.testing import CliRunner

from nianbao.flows.cli import app
from nianbao.flows.harvest import HarvestSummary, PortalResult, harvest_flow
from nianbao.harvest.client import ClientSettings, PoliteClient, decode_body
from nianbao.harvest.crawl import parse_attachments, parse_listing, report_year
from nianbao.harvest.platforms.trs import page_urls, read_pager
from nianbao.harvest.portals import Portal, PortalsError, parse_portals
from nianbao.harvest.rawstore import RawStore, key_for
from nianbao.schema.db import upgrade
from nianbao.schema.models import HarvestLog

from .helpers import ROOT, WAREHOUSE_CONTENT, warehouse_content
from .portal_server import LISTING, PortalSite

FAST = ClientSettings(min_interval=0, backoff=0.01, timeout=5, retries=2)
# The reports of the fixture portal: the path each is taken from → the year of the report loaded.
REPORTS = {
    "/zwgk/nb/202401/P020240115.pdf": 2023,  # an attachment, linked twice, and from the listing
    "/zwgk/nb/202301/t20230120_88.html": 2022,  # inline, behind a 302
    "/zwgk/nb/202201/W020220118.docx": 2021,  # an attachment
    "/zwgk/nb/202101/t20210125_50.html": 2020,  # inline, answers 500 once
    "/zwgk/nb/201902/t20190130_10.html": 2019,  # inline, UTF-8
}
FLAKY = "/zwgk/nb/202101/t20210125_50.html"
DISALLOWED = "/zwgk/nb/private/t2018.html"
MISSING = "/zwgk/nb/201801/t20180130_20.html"
NOT_REPORTS = (
    "/zwgk/nb/202312/t20231205_99.html",  # a notice about writing the reports
    "/zwgk/nb/202402/t20240201_102.html",  # an infographic of a report
    "/zwgk/nb/202306/t20230601_90.html",  # another kind of document
)
NIANBAO = str(Path(sys.executable).with_name("nianbao"))

README_EXAMPLE = """
[[portal]]
name = "平潭综合实验区"
url  = "https://www.pingtan.gov.cn/zwgk/zfxxgk/zfxxgknb/"   # the listing page of the column
region = "福建省"                                            # optional
"""


# -- portals.toml ------------------------------------------------------------------------------


def test_portals_toml_loads_into_frozen_portals():
    (portal,) = parse_portals(README_EXAMPLE)
    assert portal == Portal(
        "平潭综合实验区", "https://www.pingtan.gov.cn/zwgk/zfxxgk/zfxxgknb/", region="福建省"
    )
    assert portal.allowed_hosts == {"www.pingtan.gov.cn"}


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[portals]]\nname = "a"\nurl = "http://a.gov.cn/"', "unknown top-level key(s) portals"),
        ('[[portal]]\nname = "a"', "portal 1 (a): `url` is required"),
        ('[[portal]]\nname = "a"\nurl = "ftp://a.gov.cn/nb/"', "`url` must be an http(s) URL"),
        ('[[portal]]\nname = "a"\nurl = "http://a.gov.cn/"\nselector = "a"', "unknown key(s)"),
        ('[[portal]]\nname = "a"\nurl = "http://a.gov.cn/"\nmax_pages = 0', "`max_pages`"),
        ('[[portal]]\nname = "a"\nurl = "http://a.gov.cn/"\nentry_selector = "//a["', "XPath"),
        (
            '[[portal]]\nname = "a"\nurl = "http://a.gov.cn/"\n' * 2,
            "two portals are named 'a'",
        ),
        ('[[portal]]\nname = "a"\nurl = "http://a.gov.cn/', "not valid TOML"),
    ],
)
def test_portals_toml_errors_say_where_and_why(toml: str, message: str):
    with pytest.raises(PortalsError, match=r"^portals\.toml") as error:
        parse_portals(toml)
    assert message in str(error.value)


def test_css_selector_without_cssselect_says_how_to_fix_it(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "lxml.cssselect", None)
    toml = '[[portal]]\nname = "a"\nurl = "http://a.gov.cn/"\nentry_selector = "ul.list a"'
    with pytest.raises(PortalsError, match="cssselect.*or write it as XPath"):
        parse_portals(toml)


# -- reading pages -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "year"),
    [
        ("平潭综合实验区2023年政府信息公开工作年度报告", 2023),
        ("政府信息公开年报（２０２２年度）", 2022),
        ("2021年度 政府信息公开 工作年度报告", 2021),
        ("某县统计局政府信息公开工作年度报告 2024-01-15", None),  # a date is not the year
        ("图解：2023年政府信息公开工作年度报告", None),
        ("关于做好2023年政府信息公开工作年度报告编制工作的通知", None),
        ("2023年政务公开工作要点", None),
    ],
)
def test_report_year_of_a_title(title: str, year: int | None):
    assert report_year(title) == year


def test_listing_pages_from_a_pager_script():
    page = '<ul><li><a href="a.html">2023年政府信息公开年报</a></li></ul><script>createPageHTML(3, 0, "index", "shtml");</script>'
    assert page_urls(read_pager(page), "http://a.gov.cn/nb/index.shtml") == [
        "http://a.gov.cn/nb/index_1.shtml",
        "http://a.gov.cn/nb/index_2.shtml",
    ]


def test_entry_selector_keeps_the_sidebar_out():
    page = """<div class="side"><a href="/other/nb.html">省政府2023年政府信息公开工作年度报告</a></div>
    <ul class="list"><li><a href="t1.html">2022年政府信息公开工作年度报告</a></li></ul>"""
    every = parse_listing(page, "http://a.gov.cn/nb/")
    selected = parse_listing(page, "http://a.gov.cn/nb/", entry_selector="//ul[@class='list']")
    assert [e.year for e in every.entries] == [2023, 2022]
    assert [e.url for e in selected.entries] == ["http://a.gov.cn/nb/t1.html"]


def test_css_entry_selector():
    pytest.importorskip("cssselect")
    page = '<a href="x.html">2023年政府信息公开年报</a><ul class="list"><li><a href="t1.html">2022年政府信息公开年报</a></li></ul>'
    listing = parse_listing(page, "http://a.gov.cn/nb/", entry_selector="ul.list a")
    assert [e.year for e in listing.entries] == [2022]


def test_attachments_by_path_by_link_text_and_embedded():
    page = """<a href="/images/logo.png">logo</a>
    <a href="P0201.pdf">年报.pdf</a> <a href="P0201.pdf">下载</a>
    <a href="/download.jsp?id=7">2023年度报告.docx</a>
    <iframe src="/files/nb2023.wps"></iframe>
    <a href="/files/nb2023.ODT">OpenDocument</a>"""
    found = [link.url for link in parse_attachments(page, "http://a.gov.cn/nb/t1.html")]
    assert found == [
        "http://a.gov.cn/nb/P0201.pdf",
        "http://a.gov.cn/download.jsp?id=7",
        "http://a.gov.cn/files/nb2023.ODT",
        "http://a.gov.cn/files/nb2023.wps",
    ]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("<p>政府信息公开</p>".encode("gbk"), "text/html; charset=GBK"),
        ('<meta charset="gb2312"><p>政府信息公开</p>'.encode("gbk"), "text/html"),
        # A server's default ISO-8859-1 is not believed over the page's own <meta>.
        ('<meta charset="gbk"><p>政府信息公开</p>'.encode("gbk"), "text/html; charset=ISO-8859-1"),
        ("<p>政府信息公开</p>".encode("gb18030"), None),
    ],
)
def test_pages_decode_by_header_meta_or_bytes(body: bytes, content_type: str | None):
    assert "政府信息公开" in decode_body(body, content_type)


# -- the polite client -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site() -> Iterator[PortalSite]:
    with PortalSite() as served:
        yield served


HOST = {"127.0.0.1"}


def test_client_retries_5xx_with_backoff_then_gives_up(site: PortalSite):
    site.fail("/zwgk/nb/index_2.html", times=5)
    with PoliteClient(FAST) as client:
        response = client.get(site.url("/zwgk/nb/index_2.html"), HOST)
    site.fail("/zwgk/nb/index_2.html", times=0)
    assert [e.status for e in response.exchanges] == [
        200,
        500,
        500,
        500,
    ]  # robots.txt, 1 + 2 retries
    assert response.error == "HTTP 500" and response.content is None


def test_client_does_not_retry_4xx(site: PortalSite):
    with PoliteClient(FAST) as client:
        response = client.get(site.url(MISSING), HOST)
    assert [(urlsplit(e.url).path, e.status) for e in response.exchanges] == [
        ("/robots.txt", 200),
        (MISSING, 404),
    ]


def test_client_retries_timeouts(site: PortalSite, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(site.slow, "/zwgk/nb/index.html", 1.0)
    settings = ClientSettings(min_interval=0, timeout=0.2, retries=1, backoff=0.01)
    with PoliteClient(settings) as client:
        response = client.get(site.url("/zwgk/nb/index.html"), HOST)
    assert [e.error for e in response.exchanges[1:]] == ["timeout (ReadTimeout)"] * 2


def test_client_obeys_robots_txt(site: PortalSite):
    before = len(site.requests)
    with PoliteClient(FAST) as client:
        response = client.get(site.url(DISALLOWED), HOST)
    assert response.error == "disallowed by robots.txt"
    assert site.paths(before) == ["/robots.txt"]


def test_client_waits_between_requests_to_one_host(site: PortalSite):
    before = len(site.requests)
    with PoliteClient(ClientSettings(min_interval=0.3)) as client:
        for path in ("/zwgk/nb/index.html", "/zwgk/nb/index_1.html"):
            client.get(site.url(path), HOST)
    arrivals = [r.at for r in site.requests[before:]]  # robots.txt and the two pages
    assert len(arrivals) == 3
    assert min(b - a for a, b in zip(arrivals, arrivals[1:], strict=False)) >= 0.28


def test_client_sends_validators_and_accepts_304(site: PortalSite):
    with PoliteClient(FAST) as client:
        first = client.get(site.url(LISTING), HOST)
    with PoliteClient(FAST, validators=lambda _url: (first.etag, None)) as client:
        again = client.get(site.url(LISTING), HOST)
    assert first.ok and first.etag
    assert again.not_modified and again.content is None
    assert site.requests[-1].headers["If-None-Match"] == first.etag


def test_client_cuts_a_body_over_the_size_cap(site: PortalSite):
    with PoliteClient(ClientSettings(min_interval=0, max_bytes=1000)) as client:
        response = client.get(site.url("/zwgk/nb/202401/P020240115.pdf"), HOST)
    assert response.content is None
    assert response.error == "larger than the 1000-byte limit: not kept"


def test_client_follows_no_redirect_to_another_host(site: PortalSite, monkeypatch):
    away = site.url(LISTING).replace("127.0.0.1", "localhost")
    monkeypatch.setitem(site.redirects, "/away", away)
    before = len(site.requests)
    with PoliteClient(FAST) as client:
        response = client.get(site.url("/away"), HOST)
    assert response.error == "not fetched: localhost is not a host of this portal"
    assert site.paths(before) == ["/robots.txt", "/away"]


def test_client_names_the_project(site: PortalSite):
    with PoliteClient(FAST) as client:
        client.get(site.url(LISTING), HOST)
    assert site.requests[-1].headers["User-Agent"].startswith("nianbao/")


# -- the harvest flow --------------------------------------------------------------------------


@dataclass
class Run:
    summary: HarvestSummary
    db_url: str
    requests_before: int  # how many requests the site had had when the run started
    log_id_before: int  # the last harvest_log id before the run
    flow_run_id: str  # Prefect's, to find the artifacts it published

    @property
    def portal(self) -> PortalResult:
        (result,) = self.summary.portals
        return result


def _portal(site: PortalSite) -> Portal:
    return Portal("互助县就业服务局", site.url(LISTING), region="青海省")


def _harvest(site: PortalSite, db_url: str, raw: str | Path, **options) -> Run:
    upgrade(db_url)
    start, last_id = len(site.requests), _last_log_id(db_url)
    options.setdefault("portals", [_portal(site)])
    state = harvest_flow(
        db_url=db_url, raw_dir=str(raw), client_settings=FAST, return_state=True, **options
    )
    # A run with a failed portal ends Failed and still returns its summary.
    summary = state.result(raise_on_failure=False)
    assert isinstance(summary, HarvestSummary), summary
    return Run(summary, db_url, start, last_id, str(state.state_details.flow_run_id))


def _rows(db_url: str, query) -> list:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(query))
    finally:
        engine.dispose()


def _last_log_id(db_url: str) -> int:
    return _rows(db_url, select(func.coalesce(func.max(HarvestLog.id), 0)))[0][0]


def _log(db_url: str, after_id: int = 0) -> list[tuple[str, int | None, str | None]]:
    """(path, status, sha256) of the harvest_log rows after `after_id`, in order."""
    query = (
        select(HarvestLog.url, HarvestLog.http_status, HarvestLog.sha256)
        .where(HarvestLog.id > after_id)
        .order_by(HarvestLog.id)
    )
    return [(urlsplit(url).path, status, sha) for url, status, sha in _rows(db_url, query)]


def _loaded(db_url: str) -> list[tuple[str, str, int | None]]:
    """(path of the source, document status, report year) of every document, by source."""
    query = text(
        "SELECT d.source, d.status, r.year FROM documents d"
        " LEFT JOIN reports r ON r.document_sha256 = d.sha256 ORDER BY d.source"
    )
    return [(urlsplit(source).path, status, year) for source, status, year in _rows(db_url, query)]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("harvest")
    # The raw store given as an fsspec URL: the crawl writes through it and ingest reads the
    # documents by key. A file:// root is still a local folder underneath; the store's remote
    # branches are held by test_rawstore's memory:// root.
    return f"sqlite:///{root / 'warehouse.db'}", f"file://{root / 'raw'}"


@pytest.fixture(scope="module")
def first_run(site: PortalSite, prefect_api: str, warehouse: tuple[str, str]) -> Run:
    site.fail(FLAKY)
    return _harvest(site, *warehouse)


@pytest.fixture(scope="module")
def second_run(first_run: Run, site: PortalSite, warehouse: tuple[str, str]) -> Run:
    return _harvest(site, *warehouse)


CHANGED = "/zwgk/nb/202301/t20230120_88.html"


@pytest.fixture(scope="module")
def changed_run(second_run: Run, site: PortalSite, warehouse: tuple[str, str]) -> Run:
    corrected = site.content(CHANGED).replace("统计期限".encode("gbk"), "统计时限".encode("gbk"))
    site.change(CHANGED, corrected)
    return _harvest(site, *warehouse)


def test_exactly_the_reports_are_harvested_and_loaded(first_run: Run):
    assert _loaded(first_run.db_url) == sorted(
        (path, "loaded", year) for path, year in REPORTS.items()
    )
    assert (first_run.portal.new, first_run.portal.loaded) == (5, 5)


def test_harvested_documents_are_loaded_from_the_raw_store_by_key(
    first_run: Run, warehouse: tuple[str, str]
):
    query = text(
        "SELECT d.sha256, d.raw_path, count(f.id) FROM documents d"
        " JOIN reports r ON r.document_sha256 = d.sha256 LEFT JOIN facts f ON f.report_id = r.id"
        " GROUP BY d.sha256, d.raw_path"
    )
    rows = _rows(first_run.db_url, query)
    assert len(rows) == len(REPORTS)
    store = RawStore(warehouse[1])
    for sha, raw_key, facts in rows:
        # The warehouse names the bytes by key only: nothing of where the store is.
        assert raw_key == key_for(sha, raw_key)
        assert hashlib.sha256(store.read(raw_key)).hexdigest() == sha
        assert facts > 0, raw_key


def test_reports_carry_the_region_of_their_portal(first_run: Run):
    engine = create_engine(first_run.db_url)
    with engine.connect() as conn:
        regions = conn.execute(text("SELECT DISTINCT region FROM reports")).scalars().all()
    engine.dispose()
    assert regions == ["青海省"]


def test_every_request_is_in_harvest_log(first_run: Run, site: PortalSite):
    sent = site.paths(first_run.requests_before)
    logged = [path for path, _, _ in _log(first_run.db_url, first_run.log_id_before)]
    assert Counter(logged) == Counter(sent)


def test_listing_pages_are_followed_in_gbk_and_utf8(first_run: Run, site: PortalSite):
    sent = site.paths(first_run.requests_before)
    assert {"/zwgk/nb/", "/zwgk/nb/index_1.html", "/zwgk/nb/index_2.html"} <= set(sent)
    assert first_run.portal.pages == 3  # `./` and index.html are one page


def test_robots_txt_rule_keeps_a_report_unfetched(first_run: Run, site: PortalSite):
    assert DISALLOWED not in site.paths()
    assert (site.url(DISALLOWED), "disallowed by robots.txt") in first_run.portal.problems


def test_entries_that_are_not_reports_are_not_opened(first_run: Run, site: PortalSite):
    assert not set(NOT_REPORTS) & set(site.paths(first_run.requests_before))


def test_an_attachment_linked_twice_is_downloaded_once(first_run: Run, site: PortalSite):
    pdf = "/zwgk/nb/202401/P020240115.pdf"
    assert site.paths(first_run.requests_before).count(pdf) == 1


def test_a_transient_500_is_retried(first_run: Run):
    statuses = [
        s for path, s, _ in _log(first_run.db_url, first_run.log_id_before) if path == FLAKY
    ]
    assert statuses == [500, 200]


def test_a_404_is_logged_and_reported_and_the_portal_goes_on(first_run: Run):
    assert (MISSING, 404, None) in _log(first_run.db_url, first_run.log_id_before)
    assert any(url.endswith(MISSING) and p == "HTTP 404" for url, p in first_run.portal.problems)
    assert not first_run.portal.failed


def test_a_redirect_is_followed_within_the_site(first_run: Run):
    rows = _log(first_run.db_url, first_run.log_id_before)
    assert ("/zwgk/nb/old/2022.html", 302, None) in rows
    assert any(path == CHANGED and status == 200 and sha for path, status, sha in rows)


def test_an_entry_on_another_host_is_not_fetched(first_run: Run):
    assert not any(path.startswith("/zhengce/") for path, _, _ in _log(first_run.db_url))
    offsite = [p for url, p in first_run.portal.problems if "www.gov.cn" in url]
    assert offsite == ["not fetched: www.gov.cn is not a host of this portal"]


def test_the_summary_is_published_as_prefect_artifacts(first_run: Run):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    # This run's artifact: other tests' harvests publish theirs to the session's server.
    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["harvest-portals"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[first_run.flow_run_id]),
            )
        )
    rows = json.loads(artifact.data)
    assert [(r["portal"], r["status"], r["loaded"]) for r in rows] == [
        ("互助县就业服务局", "ok", 5)
    ]


def test_harvest_on_a_local_dask_cluster_loads_what_the_first_run_loaded(
    first_run: Run, site: PortalSite, prefect_api: str, tmp_path: Path
):
    # After the tests of what the first run requested: this run's requests are the site's too.
    # The real command, `--cluster local`: a Dask cluster started for the harvest parses the
    # documents it reads by key from a file:// raw store; SQLite is loaded from this process.
    portals = _portals_file(site, tmp_path)
    db_url = f"sqlite:///{tmp_path / 'w.db'}"
    command = [NIANBAO, "harvest", "--portals", str(portals), "--db", db_url, "--delay", "0"]
    command += ["--raw-dir", f"file://{tmp_path / 'raw'}", "--cluster", "local"]

    def harvest() -> None:
        done = subprocess.run(
            command,
            env={**os.environ, "PREFECT_API_URL": prefect_api},
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stdout + done.stderr[-3000:]

    harvest()
    expected, got = warehouse_content(first_run.db_url), warehouse_content(db_url)
    assert len(got["documents"]) == len(expected["documents"]) == len(REPORTS)
    assert len(got["facts"]) > 100 * len(REPORTS)
    for name in WAREHOUSE_CONTENT:
        assert got[name] == expected[name], name
    # The ingest subflow ran on the cluster the harvest started: its parse-and-load tasks are
    # Dask's (the local pool has none), sent to that cluster's scheduler.
    (first,) = _harvest_runs(cluster="local")
    (ingest,) = _subflow_runs(first.id)
    assert ingest.parameters["cluster"].startswith("tcp://127.0.0.1:")
    assert _task_run_names(ingest.id)["parse-and-load"] >= 1
    assert _cluster_starts(first.id) == [ingest.parameters["cluster"]]

    # Nothing new the second time: no ingest, and no cluster started for it.
    harvest()
    rerun = next(run for run in _harvest_runs(cluster="local") if run.id != first.id)
    assert _subflow_runs(rerun.id) == []
    assert _cluster_starts(rerun.id) == []
    assert warehouse_content(db_url) == got


def _harvest_runs(**parameters) -> list:
    """The harvest runs given these parameters."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with get_client(sync_client=True) as client:
        harvests = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["nianbao-harvest"]))
        )
    return [run for run in harvests if parameters.items() <= run.parameters.items()]


def _subflow_runs(flow_run_id) -> list:
    """The subflow runs (a portal's ingest) of the flow run `flow_run_id`."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])
            )
        )


def _cluster_starts(flow_run_id) -> list[str]:
    """The scheduler addresses of the local Dask clusters the harvest run logged starting."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
    prefix = "local Dask cluster of "
    return [log.message.rsplit(" ", 1)[1] for log in logs if log.message.startswith(prefix)]


def _task_run_names(flow_run_id) -> Counter[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return Counter(run.name.split(" ")[0].rsplit("-", 1)[0] for run in runs)


def _quality_report(run: Run) -> list[str]:
    """The lines of the `quality-report` artifact the harvest run published."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["quality-report"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[run.flow_run_id]),
            )
        )
    return artifact.data.splitlines()


def test_the_quality_report_covers_what_the_harvest_loaded(first_run: Run, second_run: Run):
    # The first run loaded the reports: its ingest's run, with every document it loaded.
    title, _, _, totals, *_ = _quality_report(first_run)
    assert "of run " in title
    documents, failed, not_reports, current = totals.strip("|").split("|")[:4]
    assert (int(documents), int(current)) == (len(_loaded(first_run.db_url)), len(REPORTS))
    # The second loaded nothing: its report says so, though the warehouse holds the reports.
    title, _, _, totals, *_ = _quality_report(second_run)
    assert "of no run (nothing loaded)" in title
    assert totals.startswith("| 0 | 0 | 0 | 0 | 0 | 0 |")


def test_a_second_run_downloads_nothing_and_loads_nothing(second_run: Run):
    rows = _log(second_run.db_url, second_run.log_id_before)
    bodies = [path for path, status, _ in rows if status == 200 and path != "/robots.txt"]
    assert bodies == []
    assert {s for path, s, _ in rows if path in REPORTS} == {304}
    assert (second_run.portal.new, second_run.portal.loaded) == (0, 0)
    assert len(_loaded(second_run.db_url)) == len(REPORTS)


def test_a_changed_report_is_picked_up(changed_run: Run):
    rows = _log(changed_run.db_url, changed_run.log_id_before)
    assert [path for path, status, _ in rows if status == 200 and path != "/robots.txt"] == [
        CHANGED
    ]
    assert (changed_run.portal.new, changed_run.portal.loaded) == (1, 1)
    versions = [row for row in _loaded(changed_run.db_url) if row[0] == CHANGED]
    assert versions == [(CHANGED, "loaded", 2022)] * 2


def test_a_backfill_takes_only_its_years(site: PortalSite, prefect_api: str, tmp_path: Path):
    run = _harvest(site, f"sqlite:///{tmp_path / 'w.db'}", tmp_path / "raw", years=(2019, 2020))
    assert [year for _, _, year in _loaded(run.db_url)] == [2019, 2020]
    opened = set(site.paths(run.requests_before)) - {"/robots.txt"}
    assert not {"/zwgk/nb/old/2022.html", "/zwgk/nb/202201/t20220118_70.html"} & opened
    assert run.portal.out_of_range == 7


def test_failing_portals_are_reported_and_do_not_stop_the_others(
    site: PortalSite, prefect_api: str, tmp_path: Path
):
    down = Portal("站点关闭", f"http://127.0.0.1:{_closed_port()}/nb/")
    empty = Portal("通知公告", site.url("/zwgk/tzgg/"))
    run = _harvest(
        site,
        f"sqlite:///{tmp_path / 'w.db'}",
        tmp_path / "raw",
        portals=[down, empty, _portal(site)],
        years=(2019, 2019),
    )
    errors = {p.portal: p.error for p in run.summary.portals}
    assert errors["站点关闭"].startswith(
        "listing page not fetched: robots.txt unreachable (ConnectError"
    )
    assert errors["通知公告"].startswith("nothing found: no annual-report entry among 2 links")
    assert errors["互助县就业服务局"] is None
    assert _loaded(run.db_url) == [("/zwgk/nb/201902/t20190130_10.html", "loaded", 2019)]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_crawl_stops_at_max_pages_and_says_so(site: PortalSite, prefect_api: str, tmp_path: Path):
    portal = Portal("互助县就业服务局", site.url(LISTING), max_pages=1)
    run = _harvest(
        site,
        f"sqlite:///{tmp_path / 'w.db'}",
        tmp_path / "raw",
        portals=[portal],
        years=(2030, 2030),
    )
    assert run.portal.pages == 1
    assert run.portal.problems == [
        (site.url(LISTING), "stopped at max_pages (1): 3 more listing pages linked, not read")
    ]


# -- the command line: a killed run, the schedule ----------------------------------------------


def _portals_file(site: PortalSite, folder: Path) -> Path:
    """A portals.toml holding the portal `_portal` gives."""
    portal = _portal(site)
    path = folder / "portals.toml"
    path.write_text(
        f'[[portal]]\nname = "{portal.name}"\nurl = "{portal.url}"\nregion = "{portal.region}"\n',
        "utf-8",
    )
    return path


def _stop(process: subprocess.Popen, sig: signal.Signals) -> None:
    # The whole process group: the parser pool's workers go with the command.
    os.killpg(process.pid, sig)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)


def test_a_killed_harvest_resumes_where_it_stopped(
    site: PortalSite, prefect_api: str, tmp_path: Path
):
    db_url = f"sqlite:///{tmp_path / 'w.db'}"
    upgrade(db_url)
    command = [NIANBAO, "harvest", "--portals", str(_portals_file(site, tmp_path))]
    # The raw store given as a URL on the command line.
    command += ["--db", db_url, "--raw-dir", f"file://{tmp_path / 'raw'}"]
    env = {**os.environ, "PREFECT_API_URL": prefect_api}

    def reports_logged() -> set[str]:
        return {path for path, status, sha in _log(db_url) if sha and path in REPORTS}

    # Slow enough (0.3 s a request) to be stopped half way.
    first = subprocess.Popen(
        [*command, "--delay", "0.3"],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not reports_logged():
        assert first.poll() is None, "the harvest ended before it could be stopped"
        assert time.monotonic() < deadline, "no report downloaded within 60 s"
        time.sleep(0.05)
    _stop(first, signal.SIGKILL)
    assert 0 < len(reports_logged()) < len(REPORTS)

    second = subprocess.run(
        [*command, "--delay", "0"], env=env, capture_output=True, text=True, timeout=180
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert _loaded(db_url) == sorted((path, "loaded", year) for path, year in REPORTS.items())
    downloads = Counter(path for path, status, _ in _log(db_url) if status == 200)
    del downloads["/robots.txt"]
    assert max(downloads.values()) == 1


def test_prefect_yaml_declares_the_same_nightly_deployment():
    from prefect.flows import load_flow_from_entrypoint

    (deployment,) = yaml.safe_load((ROOT / "prefect.yaml").read_text("utf-8"))["deployments"]
    assert deployment["schedules"] == [
        {"cron": "0 2 * * *", "timezone": "Asia/Shanghai", "active": True}
    ]
    harvest = load_flow_from_entrypoint(deployment["entrypoint"])
    assert harvest.name == "nianbao-harvest"
    assert set(deployment["parameters"]) <= set(inspect.signature(harvest.fn).parameters)


def test_harvest_command_rejects_a_backwards_year_range(site: PortalSite, tmp_path: Path):
    portals = _portals_file(site, tmp_path)
    result = CliRunner().invoke(app, ["harvest", "--portals", str(portals), "--years", "2023-2019"])
    assert result.exit_code == 2
    assert "ends before it starts" in result.output


def test_harvest_command_names_the_broken_field_of_portals_toml(tmp_path: Path):
    portals = tmp_path / "portals.toml"
    portals.write_text('[[portal]]\nname = "a"\nurl = "a.gov.cn/nb/"\n', "utf-8")
    result = CliRunner().invoke(app, ["harvest", "--portals", str(portals)])
    assert result.exit_code == 2
    assert "`url` must be an http(s) URL" in result.output


def test_the_ingest_subflow_publishes_its_counts_as_artifacts(first_run: Run):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["ingest-counts"]))
        )
    loaded = [
        {row["what"]: row["count"] for row in json.loads(artifact.data)}.get("loaded")
        for artifact in artifacts
    ]
    assert len(REPORTS) in loaded  # the first run's ingest loaded every report


@pytest.mark.postgres
def test_a_key_missing_from_the_raw_store_fails_at_plan_time_and_is_tried_again(
    pg_url: str, prefect_api: str, tmp_path: Path
):
    # A harvest hands ingest its documents by key. One key's bytes are gone from the store (a
    # store pruned or restored from an older copy): the run records that document as
    # `raw_missing` when it plans, under the sha256 its key names, and loads the others.
    from nianbao.flows.ingest import IngestSummary, ingest_flow
    from nianbao.harvest.rawstore import StoredDocument

    from .conftest import new_database

    db_url, store = new_database(pg_url), RawStore(tmp_path / "raw")
    held, lost = (
        ROOT / "samples/huzhu-employment-2023.html",
        ROOT / "samples/huzhu-employment-2023.pdf",
    )
    _, held_key = store.put_file(held)
    lost_bytes = lost.read_bytes()
    lost_sha = hashlib.sha256(lost_bytes).hexdigest()
    lost_key = key_for(lost_sha, lost.name)
    stored = [
        StoredDocument(held_key, "http://127.0.0.1/nb/2023.html"),
        StoredDocument(lost_key, "http://127.0.0.1/nb/2023.pdf"),
    ]

    def ingest() -> tuple[IngestSummary, str]:
        state = ingest_flow([], db_url, raw_dir=store.root, stored=stored, return_state=True)
        summary = state.result(raise_on_failure=False)
        assert isinstance(summary, IngestSummary), summary
        return summary, state.type.value

    def documents() -> dict[str, tuple]:
        query = text(
            "SELECT d.sha256, d.status, d.problem_code, d.problem_message, d.bytes, d.format,"
            " d.raw_path, count(r.id) FROM documents d"
            " LEFT JOIN reports r ON r.document_sha256 = d.sha256 GROUP BY d.sha256"
        )
        return {row[0]: row[1:] for row in _rows(db_url, query)}

    summary, state = ingest()
    assert state == "FAILED"
    assert summary.failures == Counter({"raw_missing": 1})
    assert (summary.outcomes["loaded"], summary.outcomes["failed"]) == (1, 1)
    ((source, code, message),) = summary.failed_files
    assert (source, code) == ("http://127.0.0.1/nb/2023.pdf", "raw_missing")
    rows = documents()
    assert rows[hashlib.sha256(held.read_bytes()).hexdigest()][0] == "loaded"
    status, code, message, size, fmt, raw_path, reports = rows[lost_sha]
    assert (status, code, size, fmt, raw_path, reports) == (
        "failed",
        "raw_missing",
        0,
        "unknown",
        lost_key,
        0,
    )
    assert f"holds no bytes under {lost_key}" in message and store.root in message

    # The bytes are back: the next run over the documents parses and loads the missing one.
    store.put(lost_bytes, lost.name)
    summary, state = ingest()
    assert state == "COMPLETED"
    assert (summary.outcomes["loaded"], summary.outcomes["unchanged"]) == (1, 1)
    assert not summary.failed_files
    status, code, _, size, fmt, raw_path, reports = documents()[lost_sha]
    assert (status, code, size, fmt, raw_path, reports) == (
        "loaded",
        None,
        len(lost_bytes),
        "pdf",
        lost_key,
        1,
    )


@pytest.mark.postgres
def test_a_document_held_by_an_older_parser_keeps_its_rows_when_its_key_is_missing(
    pg_url: str, prefect_api: str, tmp_path: Path
):
    # After a parser version bump a harvest hands ingest the documents the warehouse holds
    # parsed by the older version. One's bytes are gone from the store: the run cannot parse
    # it again, so it says the key is missing, and the warehouse keeps its report and facts
    # (a raw_missing row in their place would delete them).
    from nianbao.flows.ingest import IngestSummary, ingest_flow
    from nianbao.harvest.rawstore import StoredDocument

    from .conftest import new_database

    db_url, store = new_database(pg_url), RawStore(tmp_path / "raw")
    sample = ROOT / "samples/huzhu-employment-2023.txt"
    sha, key = store.put_file(sample)
    stored = [StoredDocument(key, "http://127.0.0.1/nb/2023.txt")]
    assert ingest_flow([], db_url, raw_dir=store.root, stored=stored).outcomes["loaded"] == 1
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE documents SET parser_version = 'older'"))
    engine.dispose()

    def document() -> tuple:
        query = text(
            "SELECT d.status, d.problem_code, d.format, d.bytes, d.parser_version, d.raw_path,"
            " count(DISTINCT r.id), count(f.id) FROM documents d"
            " LEFT JOIN reports r ON r.document_sha256 = d.sha256"
            " LEFT JOIN facts f ON f.report_id = r.id GROUP BY d.sha256"
        )
        ((row),) = _rows(db_url, query)
        return tuple(row)

    held = ("loaded", None, "txt", sample.stat().st_size, "older", key, 1, 186)
    assert document() == held
    # The store the next run reads from has lost the bytes.
    state = ingest_flow(
        [], db_url, raw_dir=str(tmp_path / "pruned"), stored=stored, return_state=True
    )
    summary = state.result(raise_on_failure=False)
    assert isinstance(summary, IngestSummary), summary
    assert state.type.value == "FAILED"
    assert summary.failures == Counter({"raw_missing": 1})
    assert summary.outcomes == Counter({"unchanged": 1})
    ((source, code, message),) = summary.failed_files
    assert (source, code) == ("http://127.0.0.1/nb/2023.txt", "raw_missing")
    assert f"holds no bytes under {key}" in message and "keeps its rows of parser older" in message
    assert document() == held


def test_the_raw_store_says_which_keys_it_holds_bytes_under(tmp_path: Path):
    # `plan` checks every key of a run in one call: the store answers for each key once.
    store = RawStore(tmp_path / "raw")
    sample = ROOT / "samples/huzhu-employment-2023.txt"
    _, kept = store.put_file(sample)
    lost = key_for(hashlib.sha256(b"pruned").hexdigest(), "2023.pdf")
    assert store.held([kept, lost, kept]) == {kept}
    assert store.held([]) == set()
