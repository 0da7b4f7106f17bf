"""Listing platforms (gkmlpt, 大汉 jpage, TRS): their readers on page text, the client's 429 and
thread handling, and the harvest of fixture portals of each platform served over real HTTP on
127.0.0.1 (tests/platform_sites.py), crawled at once in one run.

The flow tests run on the session's Prefect test server and share, in order, one warehouse: a
first run of all five portals, then a second run that must download nothing unchanged.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from nianbao.flows.cli import app
from nianbao.flows.harvest import HarvestSummary, harvest_flow
from nianbao.harvest.client import ClientSettings, PoliteClient
from nianbao.harvest.crawl import attachment_suffix, iso_date, parse_listing, report_year
from nianbao.harvest.platforms import ListingOptions, ListingRead, Page, read_listing
from nianbao.harvest.platforms.gkmlpt import GkmlptListing, app_bases, category_of, published
from nianbao.harvest.platforms.jpage import JpageListing, records, total_records
from nianbao.harvest.platforms.trs import Pager, page_urls, read_pager
from nianbao.harvest.portals import Portal
from nianbao.schema.db import upgrade

from .helpers import rows
from .platform_server import FixtureSite, Reply
from .platform_sites import (
    GKMLPT_PUBLISHER,
    GKMLPT_SHELL,
    FixturePortal,
    gkmlpt_portal,
    jpage_portals,
    trs_portals,
)

FAST = ClientSettings(min_interval=0, backoff=0.01, timeout=5, retries=2)
HOST = {"127.0.0.1"}


# -- what the pages say ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "pager"),
    [
        ('createPageHTML(7, 0, "index", "shtml");', Pager(7, "index", "shtml")),
        ("createPageHTML('page_div', 5, 1, 'list', 'html', 98);", Pager(5, "list", "html")),
        (
            "var countPage = 4//共多少页\nvar currentPage = 0;\n"
            'createPageHTML(countPage, currentPage, "index", "htm");',
            Pager(4, "index", "htm"),
        ),
        ("var countPage = 3;", Pager(3, None, None)),
        ("document.write('no pager');", None),
    ],
)
def test_trs_pager_in_each_of_its_forms(script: str, pager: Pager | None):
    assert read_pager(f"<script>{script}</script>") == pager


def test_trs_pages_hang_from_the_listing_folder():
    urls = page_urls(Pager(3, "index", "html"), "http://a.gov.cn/zfxxgk/nb/index.html")
    # `var countPage` alone: the stem and suffix of the page itself, or index.html.
    assert page_urls(Pager(2, None, None), "http://a.gov.cn/nb/list.shtml") == [
        "http://a.gov.cn/nb/list_1.shtml"
    ]
    assert page_urls(Pager(2, None, None), "http://a.gov.cn/nb/") == [
        "http://a.gov.cn/nb/index_1.html"
    ]
    assert urls == [
        "http://a.gov.cn/zfxxgk/nb/index_1.html",
        "http://a.gov.cn/zfxxgk/nb/index_2.html",
    ]


def test_gkmlpt_category_base_and_dates():
    assert category_of("http://a.gov.cn/sjj/gkmlpt/index#2475") == "2475"
    assert category_of("http://a.gov.cn/gkmlpt/index") is None
    page = "http://a.gov.cn/sjj/gkmlpt/index"
    assert app_bases({"SID": "x"}, page) == ["http://a.gov.cn/sjj"]
    # The config's own URLs come first (the app may hang from another path than the page), on
    # the page's host before elsewhere; a logo is no base.
    config = {
        "STATIC": "//static.gd.gov.cn/gkmlpt/static/js",
        "BASE_URL": "http://a.gov.cn/xxgk",
        "LOGO": "/images/logo.png",
    }
    assert app_bases(config, page) == [
        "http://a.gov.cn/xxgk",
        "http://a.gov.cn/sjj",
        "http://static.gd.gov.cn",
    ]
    assert published({"created_at": 1705302000}) == "2024-01-15"  # Unix seconds, China time
    assert published({"created_at": 1705302000000}) == "2024-01-15"  # milliseconds
    assert published({"date": "2025-01-20 09:30:00"}) == "2025-01-20"
    assert published({"date": ""}) is None


def test_gkmlpt_without_a_category_reads_the_annual_report_ones():
    shell = GKMLPT_SHELL % {"sid": "s1", "publisher": GKMLPT_PUBLISHER}
    url = "http://a.gov.cn/sjj/gkmlpt/index"
    reader = GkmlptListing.recognise(Page(url, shell), url, ListingOptions())
    found = ListingRead("gkmlpt", 10)
    assert reader is not None and reader.categories(found) == ["2475"]
    assert found.jumps == ["http://www.gov.cn/bmnb/"]  # 部门年报 lives on another site


def test_a_page_with_a_sid_but_no_gkmlpt_is_not_taken_for_one():
    page = Page("http://a.gov.cn/nb/", "<script>var conf = {SID: 'x'};</script>")
    assert GkmlptListing.recognise(page, page.url, ListingOptions()) is None


def test_jpage_records_with_and_without_cdata():
    answer = (
        "<datastore><totalrecord>12</totalrecord><recordset>"
        '<record><![CDATA[<li><a href="/art/2024/1/2/art_1_1.html">a</a></li>]]></record>'
        "<record>&lt;li&gt;&lt;a href=&quot;/art/2024/1/3/art_1_2.html&quot;&gt;b&lt;/a&gt;&lt;/li&gt;</record>"
        "</recordset></datastore>"
    )
    assert records(answer) == [
        '<li><a href="/art/2024/1/2/art_1_1.html">a</a></li>',
        '<li><a href="/art/2024/1/3/art_1_2.html">b</a></li>',
    ]
    assert total_records(answer) == 12


def test_jpage_is_recognised_by_its_call_or_its_inline_datastore():
    call = "<script>$('#d').jpage({perPage: 10, proxyUrl: '/p.jsp', ajaxParam: {columnid: 7}});</script>"
    inline = '<script type="text/xml"><datastore><recordset></recordset></datastore></script>'
    url = "http://a.gov.cn/col/col7/index.html"
    assert JpageListing.recognise(Page(url, call), url, ListingOptions()) is not None
    assert JpageListing.recognise(Page(url, inline), url, ListingOptions()) is not None
    assert JpageListing.recognise(Page(url, "<p>plain</p>"), url, ListingOptions()) is None
    named = "<script>var cfg = {perPage: 5, proxyUrl: '/p.jsp'}; $('#d').jpage(cfg);</script>"
    reader = JpageListing.recognise(Page(url, named), url, ListingOptions())
    assert reader is not None and reader.config["proxyUrl"] == "/p.jsp"


@pytest.mark.parametrize(
    "title",
    [
        "一图读懂某县2023年政府信息公开工作年度报告",
        "某市2024年政府信息公开工作年度报告编制工作要点",
        "我县2022年政府信息公开工作年度报告新鲜出炉",
        "关于报送2021年政府信息公开工作年度报告的通知",
    ],
)
def test_pages_about_a_report_are_not_reports(title: str):
    assert report_year(title) is None


def test_the_date_beside_an_entry_and_its_full_title():
    page = (
        '<ul><li><a href="t1.html" title="某县人民政府2023年政府信息公开工作年度报告">某县人民政府2023年政府'
        "信息公开…</a><span>2024-01-15</span></li></ul>"
    )
    (entry,) = parse_listing(page, "http://a.gov.cn/nb/").entries
    assert (entry.title, entry.year, entry.published) == (
        "某县人民政府2023年政府信息公开工作年度报告",
        2023,
        "2024-01-15",
    )
    assert iso_date("发布时间：2024年1月5日") == "2024-01-05"
    assert iso_date("2023-13-45") is None


def test_a_download_script_names_its_file_type_in_the_query():
    url = "http://a.gov.cn/module/download/downfile.jsp?classid=0&filename=6f2c1a9e.pdf"
    assert attachment_suffix(url) == ".pdf"


# -- the client: 429, POST, threads ------------------------------------------------------------


@pytest.fixture
def site() -> Iterator[FixtureSite]:
    with FixtureSite() as served:
        served.add("/robots.txt", "User-agent: *\nDisallow:\n", "text/plain")
        served.add("/a.html", "<p>a</p>")
        served.add("/b.html", "<p>b</p>")
        yield served


def test_429_waits_out_its_retry_after_then_succeeds(site: FixtureSite):
    site.throttled["/a.html"] = [1]
    with PoliteClient(FAST) as client:
        response = client.get(site.url("/a.html"), HOST)
    assert [e.status for e in response.exchanges] == [200, 429, 200]
    first, again = [r.at for r in site.sent() if r.path == "/a.html"]
    assert again - first >= 0.95
    assert response.ok


def test_a_retry_after_longer_than_allowed_is_not_waited(site: FixtureSite):
    site.throttled["/a.html"] = [3600]
    with PoliteClient(FAST) as client:
        response = client.get(site.url("/a.html"), HOST)
    assert [e.status for e in response.exchanges] == [200, 429]
    assert response.error == "HTTP 429: Retry-After 3600 s is longer than the 300 s waited at most"


def test_post_sends_the_form(site: FixtureSite):
    site.apis["/proxy.jsp"] = lambda request: Reply(
        200, repr(sorted(request.form.items())).encode()
    )
    with PoliteClient(FAST) as client:
        response = client.post(site.url("/proxy.jsp?startrecord=1"), {"columnid": "7"}, HOST)
    (request,) = [r for r in site.sent() if r.path == "/proxy.jsp"]
    assert (request.method, request.query, request.form) == (
        "POST",
        "startrecord=1",
        {"columnid": "7"},
    )
    assert response.content == b"[('columnid', '7')]"


def test_threads_sharing_a_client_keep_one_host_polite(site: FixtureSite):
    with PoliteClient(ClientSettings(min_interval=0.3)) as client:
        threads = [
            threading.Thread(target=client.get, args=(site.url(path), HOST))
            for path in ("/a.html", "/b.html", "/a.html", "/b.html")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    arrivals = sorted(r.at for r in site.sent())
    assert [r.path for r in site.sent()].count("/robots.txt") == 1  # asked once, for all threads
    assert len(arrivals) == 5
    # Booked 0.3 s apart; without the lock the threads would arrive together. The margin is
    # for a busy machine, where one request may leave its thread late.
    assert min(b - a for a, b in zip(arrivals, arrivals[1:], strict=False)) >= 0.15


# -- fixture portals: read, check, harvest -----------------------------------------------------


@dataclass
class Portals:
    sites: list[FixtureSite]
    fixtures: list[FixturePortal]

    @property
    def portals(self) -> list[Portal]:
        return [Portal(f.name, f.url, region=f.region) for f in self.fixtures]

    def of(self, name: str) -> FixturePortal:
        return next(f for f in self.fixtures if f.name == name)

    def since(self, site: FixtureSite, marks: list[int]) -> list:
        """The requests `site` received since `marks`."""
        return site.sent(marks[self.sites.index(site)])

    def marks(self) -> list[int]:
        return [len(site.requests) for site in self.sites]

    def sent(self, marks: list[int]) -> list[tuple[FixtureSite, str, str]]:
        """(site, method, path?query) of every request since `marks`."""
        return [
            (site, request.method, request.target)
            for site, mark in zip(self.sites, marks, strict=True)
            for request in site.sent(mark)
        ]


@pytest.fixture(scope="module")
def served() -> Iterator[Portals]:
    with FixtureSite() as gkmlpt, FixtureSite() as jpage, FixtureSite() as trs:
        fixtures = [gkmlpt_portal(gkmlpt), *jpage_portals(jpage), *trs_portals(trs)]
        yield Portals([gkmlpt, jpage, trs], fixtures)


def _never_asked(served: Portals, marks: list[int]) -> list[str]:
    asked = {(site, target) for site, _, target in served.sent(marks)}
    return [
        target
        for fixture in served.fixtures
        for target in fixture.forbidden
        if (fixture.site, target) in asked
    ]


def test_each_platform_is_recognised_from_the_address_a_person_copies(served: Portals):
    expected = {
        "某市政务服务数据管理局": "gkmlpt",
        "某县人民政府": "jpage",
        "平潭综合实验区": "jpage",
        "平潭综合实验区政府信息公开年报": "trs",
        "互助县就业服务局": "trs",
    }
    with PoliteClient(FAST) as client:
        for fixture in served.fixtures:

            def fetch(url, form=None, fixture=fixture):
                hosts = {"127.0.0.1"}
                got = client.get(url, hosts) if form is None else client.post(url, form, hosts)
                return Page(got.url, got.content.decode("utf-8", "replace")) if got.ok else None

            listing = read_listing(fixture.url, fetch, ListingOptions())
            assert listing.platform == expected[fixture.name]


def test_portals_check_lists_entries_and_downloads_nothing(served: Portals, tmp_path: Path):
    portals = tmp_path / "portals.toml"
    portals.write_text(
        "".join(f'[[portal]]\nname = "{p.name}"\nurl = "{p.url}"\n' for p in served.portals),
        "utf-8",
    )
    marks = served.marks()
    # The command run as a user runs it, and asked which heavy layers it loaded: none.
    code = (
        "import sys\n"
        f"sys.argv = ['nianbao', 'portals', 'check', '--portals', {str(portals)!r},"
        " '--delay', '0', '--years', '2023']\n"
        "from nianbao.flows.cli import main\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    code = exit.code\n"
        "print(code, sorted(m for m in ('prefect', 'sqlalchemy') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert result.stdout.splitlines()[-1] == "0 []", result.stdout + result.stderr
    out = result.stdout
    assert "某市政务服务数据管理局: gkmlpt listing, 4 page(s) read, 5 report entries" in out
    assert "per year: 2020: 1, 2021: 1, 2023: 2, 2024: 1" in out
    assert "某县人民政府: jpage listing, 3 page(s) read, 4 report entries" in out
    assert "平潭综合实验区政府信息公开年报: trs listing, 3 page(s) read, 2 report entries" in out
    assert out.count("a harvest would open 2:") == 2  # 2023 only: gkmlpt and jpage 某县
    assert "2023  2024-01-18  某市政务服务数据管理局2023年政府信息公开工作年度报告" in out
    # Listings only: no entry page, no attachment, and nothing at all on disk.
    opened = [t for _, _, t in served.sent(marks) if "/content/" in t or t.startswith("/art/")]
    assert opened == []
    assert not _never_asked(served, marks)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["portals.toml"]


def test_portals_check_reports_a_portal_that_is_down_and_goes_on(served: Portals, tmp_path: Path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    department = served.of("互助县就业服务局")
    portals = tmp_path / "portals.toml"
    portals.write_text(
        f'[[portal]]\nname = "站点关闭"\nurl = "http://127.0.0.1:{closed}/gkmlpt/index#1"\n'
        f'[[portal]]\nname = "{department.name}"\nurl = "{department.url}"\n',
        "utf-8",
    )
    result = CliRunner().invoke(
        app, ["portals", "check", "--portals", str(portals), "--delay", "0"]
    )
    assert result.exit_code == 1
    assert "站点关闭: FAILED: listing page not fetched: robots.txt unreachable" in result.output
    assert "互助县就业服务局: trs listing, 3 page(s) read, 1 report entries" in result.output
    assert result.output.splitlines()[-1] == "portals: 2, failed or empty: 1"


def test_portals_check_has_an_example_in_its_help():
    result = CliRunner().invoke(app, ["portals", "check", "--help"])
    assert "Example:" in result.output
    assert "nianbao portals check --portals portals.toml" in result.output


@dataclass
class Run:
    summary: HarvestSummary
    db_url: str
    marks: list[int]
    log_id_before: int

    def result(self, name: str):
        return next(p for p in self.summary.portals if p.portal == name)


def _target(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    root = tmp_path_factory.mktemp("platforms")
    return f"sqlite:///{root / 'warehouse.db'}", root / "raw"


def _harvest(served: Portals, warehouse: tuple[str, Path]) -> Run:
    db_url, raw = warehouse
    upgrade(db_url)
    marks = served.marks()
    (log_id_before,) = rows(db_url, "SELECT COALESCE(MAX(id), 0) FROM harvest_log")[0]
    summary = harvest_flow(served.portals, db_url=db_url, raw_dir=str(raw), client_settings=FAST)
    return Run(summary, db_url, marks, log_id_before)


@pytest.fixture(scope="module")
def first_run(served: Portals, prefect_api: str, warehouse: tuple[str, Path]) -> Run:
    served.of("某市政务服务数据管理局").site.throttled["/sjj/gkmlpt/api/all/2475"] = [1]
    return _harvest(served, warehouse)


@pytest.fixture(scope="module")
def second_run(first_run: Run, served: Portals, warehouse: tuple[str, Path]) -> Run:
    return _harvest(served, warehouse)


def test_exactly_the_reports_of_every_platform_are_loaded(first_run: Run, served: Portals):
    loaded = rows(
        first_run.db_url,
        "SELECT d.source, d.status, r.year FROM documents d"
        " LEFT JOIN reports r ON r.document_sha256 = d.sha256",
    )
    expected = sorted(
        (fixture.site.url(path), "loaded", year)
        for fixture in served.fixtures
        for path, year in fixture.reports.items()
    )
    assert sorted(loaded) == expected
    assert all(not p.failed for p in first_run.summary.portals), first_run.summary.lines()
    assert {p.portal: p.platform for p in first_run.summary.portals} == {
        "某市政务服务数据管理局": "gkmlpt",
        "某县人民政府": "jpage",
        "平潭综合实验区": "jpage",
        "平潭综合实验区政府信息公开年报": "trs",
        "互助县就业服务局": "trs",
    }


def test_no_forbidden_request_is_sent(first_run: Run, served: Portals):
    assert _never_asked(served, first_run.marks) == []
    result = first_run.result("某市政务服务数据管理局")
    problems = dict(result.problems)
    assert (
        problems[
            served.of("某市政务服务数据管理局").site.url(
                "/sjj/gkmlpt/content/9/2475/post_1007.html"
            )
        ]
        == "disallowed by robots.txt"
    )
    offsite = "http://www.gd.gov.cn/gkmlpt/content/3/3001/post_1008.html"
    assert problems[offsite] == "not fetched: www.gd.gov.cn is not a host of this portal"


def test_every_request_is_in_harvest_log(first_run: Run, served: Portals):
    sent = Counter(target for _, _, target in served.sent(first_run.marks))
    logged = Counter(
        _target(url) for (url,) in rows(first_run.db_url, "SELECT url FROM harvest_log ORDER BY id")
    )
    assert logged == sent


def test_the_jpage_data_proxy_is_posted_its_form(first_run: Run, served: Portals):
    site = served.of("某县人民政府").site
    posts = [r for r in served.since(site, first_run.marks) if r.path.endswith("dataproxy.jsp")]
    assert {r.method for r in posts} == {"POST"}
    groups = sorted(r.query for r in posts if r.form["columnid"] == "1234")
    # The first group is inline in the page: only the second and third are asked for.
    assert groups == [
        "startrecord=13&endrecord=14&perpage=3",
        "startrecord=7&endrecord=12&perpage=3",
    ]


def test_a_429_is_waited_out_while_other_portals_go_on(first_run: Run, served: Portals):
    site = served.of("某市政务服务数据管理局").site
    api = [r for r in served.since(site, first_run.marks) if r.path == "/sjj/gkmlpt/api/all/2475"]
    assert api[1].at - api[0].at >= 0.95  # the 429, then the same page after its Retry-After
    assert api[0].query == api[1].query == "page=1&sid=sjj755"
    # Portals are crawled at once: the gkmlpt portal comes first in the harvest's list, yet the
    # others are read before its wait ends. (Whether they are read during the wait depends on
    # how fast they go: on a quiet machine they may all be done before its API is first asked.)
    others = [
        r.at
        for other in served.sites
        if other is not site
        for r in served.since(other, first_run.marks)
    ]
    assert others and min(others) < api[1].at


def test_what_the_listing_knows_travels_with_the_document(first_run: Run, served: Portals):
    docx = served.of("某市政务服务数据管理局").site.url("/sjj/attachment/0/512/512346.docx")
    # The DOCX prints no title: its agency and year come from its gkmlpt entry. The fixture's
    # 某市 is no place in the code table, so the name is completed from the portal's region.
    assert rows(
        first_run.db_url,
        f"SELECT r.agency, r.year, r.region FROM reports r JOIN documents d"
        f" ON d.sha256 = r.document_sha256 WHERE d.source = '{docx}'",
    ) == [("广东省某市政务服务数据管理局", 2023, "广东省")]
    entries = rows(
        first_run.db_url,
        "SELECT platform, document_url, title, published, publisher FROM harvest_entries",
    )
    by_document = {_target(row[1]): row for row in entries}
    assert len(entries) == sum(len(fixture.reports) for fixture in served.fixtures)
    assert by_document["/sjj/attachment/0/512/512346.docx"][2:] == (
        "某市政务服务数据管理局2023年政府信息公开工作年度报告",
        "2024-01-18",
        GKMLPT_PUBLISHER,
    )
    assert by_document["/attach/0/6f2c1a9e.pdf"][0] == "jpage"
    assert str(by_document["/attach/0/6f2c1a9e.pdf"][3]) == "2024-01-15"
    assert by_document["/zfxxgk/ndbg/202202/t20220208_80613.html"][:1] == ("trs",)
    assert str(by_document["/zfxxgk/ndbg/202202/t20220208_80613.html"][3]) == "2022-02-08"


def test_the_trs_reading_stops_at_the_stub_past_the_last_page(first_run: Run, served: Portals):
    site = served.of("互助县就业服务局").site
    asked = [r.target for r in served.since(site, first_run.marks)]
    assert "/zfxxgk/bmnb/index_2.html" in asked  # the stub: the count was stale
    assert "/zfxxgk/bmnb/index_3.html" not in asked


def test_a_second_run_downloads_nothing_unchanged(second_run: Run, served: Portals):
    log = rows(
        second_run.db_url,
        f"SELECT url, http_status FROM harvest_log WHERE id > {second_run.log_id_before}",
    )
    downloaded = {_target(url) for url, status in log if status == 200} - {"/robots.txt"}
    # Listing APIs are re-read each night; pages, articles and report files answer 304.
    assert downloaded and all("/api/all/" in t or "dataproxy.jsp" in t for t in downloaded)
    statuses = {_target(url): status for url, status in log}
    reports = [target for fixture in served.fixtures for target in fixture.reports]
    assert {statuses[target] for target in reports} == {304}
    assert [(p.new, p.loaded) for p in second_run.summary.portals] == [(0, 0)] * 5
