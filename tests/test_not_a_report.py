"""Is it a report? Junk pages full of template words are `not_a_report` and load nothing; a
table of other statistics on a real report's page gives no facts.

The junk pages come from tests/junk_pages.py (deterministic seeds): randomly nested tables, one
chain 300 deep, colspan=1000/rowspan=65534 cells, template row labels and numbers scattered
about, and no title, section heading or template table header.
"""

from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy import func, select

from nianbao.parsers.evidence import ordered_sections
from nianbao.parsers.html import read_html
from nianbao.parsers.metadata import SourceHints
from nianbao.parsers.pool import DocumentLimits, WorkItem, parse_all
from nianbao.parsers.report import parse_bytes
from nianbao.parsers.tables import header_of, row_views
from nianbao.schema.db import engine_for
from nianbao.schema.load import LoadOutcome, load_document
from nianbao.schema.models import Check, Document, Fact, Finding, Report, Section
from nianbao.schema.registry import normalize_label, template

from .helpers import SAMPLES
from .junk_pages import junk_page

# (seed, bytes): a few pages of moderate size and one large one.
JUNK = [(1, 200_000), (2, 300_000), (3, 400_000), (4, 4_000_000)]
# Headroom a parser process gets over the test process's address space, and its time limit:
# the ingest flow's own bounds, set tight. A 4 MB junk page needs ~70 MB and ~3 s here.
MEMORY_HEADROOM = 512 * 1024 * 1024
SECONDS = 60.0


def _address_space() -> int:
    with open("/proc/self/status") as status:
        kilobytes = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    return kilobytes * 1024


@pytest.fixture(scope="module")
def pages() -> list[bytes]:
    return [junk_page(seed, size) for seed, size in JUNK]


@pytest.fixture(scope="module")
def junk(pages: list[bytes], tmp_path_factory: pytest.TempPathFactory) -> list[tuple[bytes, dict]]:
    """Each junk page and what the ingest flow's parser worker made of it, under its limits."""
    folder = tmp_path_factory.mktemp("junk")
    memory = _address_space() + MEMORY_HEADROOM
    limits = DocumentLimits(seconds=SECONDS, memory_bytes=memory)
    items = []
    for index, data in enumerate(pages):
        path = folder / f"junk-{index}.html"
        path.write_bytes(data)
        items.append(WorkItem(hashlib.sha256(data).hexdigest(), str(path), path.name))
    results: dict[str, dict] = {}
    parse_all(
        items, 1, limits, lambda batch: results.update((r.sha256, r.to_json()) for r in batch)
    )
    return [(data, results[item.sha256]) for data, item in zip(pages, items, strict=True)]


def test_junk_pages_are_deterministic() -> None:
    assert junk_page(1, 50_000) == junk_page(1, 50_000) != junk_page(2, 50_000)


def test_junk_pages_hold_what_report_tables_hold(pages: list[bytes]) -> None:
    # The pages must be a real trial: the reader finds many rows that name a template row and
    # carry numbers, which is what an earlier parser loaded as a report with ~100 facts.
    spec = template("2021")
    labels = {
        label
        for row in spec.active_disclosure.rows + spec.applications.rows
        for label in row.labels()
    }
    for page in pages[:3]:
        assert b'colspan="1000"' in page and b'rowspan="65534"' in page
        assert page.endswith(b"</td></tr></table>" * 300 + b"</body></html>")
        assert not re.search(rb"<title|<h[1-6]", page)
        document = read_html(page)
        assert not any(
            header_of([c.text for c in row]) for t in document.tables() for row in t.rows
        )
        named = [
            view
            for table in document.tables()
            for view in row_views(table)
            if view.values and normalize_label(view.leaf) in labels
        ]
        assert len(document.tables()) > 100
        assert len(named) > 200


def test_junk_pages_are_not_reports(junk: list[tuple[bytes, dict]]) -> None:
    for data, result in junk:
        assert result["status"] == "not_a_report", result["problems"][:3]
        assert result["bytes"] == len(data)
        assert result["facts"] == [] and result["template"] is None
        assert (result["agency"], result["year"]) == (None, None)
        # The message says what was missing: all three kinds of evidence.
        assert [p["code"] for p in result["problems"]] == ["not_a_report"]
        message = result["problems"][0]["message"]
        assert "0 of the 2" in message
        assert "title" in message and "section headings" in message and "header" in message


def test_junk_pages_load_nothing_but_their_documents_row(
    junk: list[tuple[bytes, dict]], db_url: str
) -> None:
    engine = engine_for(db_url)
    try:
        for _, result in junk:
            assert load_document(engine, result) is LoadOutcome.NOT_A_REPORT
        with engine.connect() as conn:
            for model in (Report, Section, Fact, Check, Finding):
                assert conn.scalar(select(func.count()).select_from(model)) == 0, model
            documents = conn.execute(select(Document.status, Document.problem_code)).all()
        assert sorted(documents) == [("not_a_report", "not_a_report")] * len(junk)
    finally:
        engine.dispose()


def test_a_harvest_title_alone_does_not_make_junk_a_report() -> None:
    hints = SourceHints(
        title="某县人民政府2023年政府信息公开工作年度报告", publisher="某县人民政府"
    )
    result = parse_bytes(junk_page(5, 100_000), "junk.html", hints).to_json()
    assert result["status"] == "not_a_report"
    assert result["facts"] == []
    assert "1 of the 2" in result["problems"][0]["message"]


# --- tables that are not the template's, on a real report's page ----------------------------------

SHANGHAI = (SAMPLES / "04_shanghai_szfbgt_2019.html").read_text("utf-8")
HEADING_2 = "<p>二、主动公开政府信息情况</p>"
HEADING_3 = "<p>三、收到和处理政府信息公开申请情况</p>"
# Site statistics with template row labels, and a row named like table 三's first row.
STATISTICS = (
    "<table><tr><td>类别</td><td>条数</td><td>同比</td><td>占比</td></tr>"
    "<tr><td>规章</td><td>31</td><td>4</td><td>2%</td></tr>"
    "<tr><td>行政规范性文件</td><td>66</td><td>-3</td><td>5%</td></tr>"
    "<tr><td>本年新收政府信息公开申请数量</td><td>856</td><td>12</td><td>30%</td>"
    "<td>1</td><td>2</td><td>3</td><td>4</td></tr>"
    "<tr><td>行政许可</td><td>4096</td><td>17</td><td>60%</td></tr></table>"
)


def _cells(result: dict) -> dict[tuple[str, str, str], str]:
    return {(f["table"], f["row"], f["col"]): f["raw"] for f in result["facts"]}


@pytest.fixture(scope="module")
def printed() -> dict[tuple[str, str, str], str]:
    result = parse_bytes(SHANGHAI.encode(), "shanghai.html").to_json()
    assert len(result["facts"]) == 198
    return _cells(result)


def _with(anchor: str, table: str, before: bool = True) -> bytes:
    assert SHANGHAI.count(anchor) == 1
    return SHANGHAI.replace(anchor, table + anchor if before else anchor + table).encode()


@pytest.mark.parametrize(
    "where",
    [
        pytest.param((HEADING_2, True), id="overview"),
        pytest.param(("<p>一、总体情况</p>", True), id="preamble"),
        pytest.param(("<p>无。</p>", False), id="other_matters"),
    ],
)
def test_statistics_table_outside_the_table_sections_gives_no_facts(
    printed: dict[tuple[str, str, str], str], where: tuple[str, bool]
) -> None:
    # Regression: its 本年新收… row made it table 三, and the real row 本年新收 (821, 35, …)
    # was then dropped as a duplicate of the statistics row (856, 12, …).
    result = parse_bytes(_with(*where[:1], STATISTICS, where[1]), "shanghai.html").to_json()
    assert result["status"] == "parsed"
    assert _cells(result) == printed
    assert _cells(result)[("applications", "new_received", "natural_person")] == "821"
    assert not any(p["code"] == "duplicate_row" for p in result["problems"])


def test_unrelated_table_after_table_two_in_its_section_gives_no_facts(
    printed: dict[tuple[str, str, str], str],
) -> None:
    # Regression: a table following table 二 in section 二 was read as its continuation, and
    # its rows became facts (a local extra row 政务微博发布 1200, 3, 9).
    after = (
        "<table><tr><td>政务微博发布</td><td>1200</td><td>3</td><td>9</td></tr>"
        "<tr><td>规章</td><td>99</td><td>99</td><td>99</td></tr></table>"
    )
    result = parse_bytes(_with(HEADING_3, after), "shanghai.html").to_json()
    assert _cells(result) == printed


def test_table_broken_over_a_page_keeps_the_rows_after_the_break() -> None:
    # The other side of the rule above: table 三 printed as two blocks (a page break) with no
    # header on the second keeps its rows, since they follow on in the template's order.
    rows = SHANGHAI.split("</tr>")
    cut = next(i for i, row in enumerate(rows) if "（四）无法提供" in row)
    page = "</tr>".join(rows[:cut]) + "</tr></tbody></table><table><tbody>"
    page += "</tr>".join(rows[cut:])
    assert page.count("<table") == SHANGHAI.count("<table") + 1
    split = _cells(parse_bytes(page.encode(), "split.html").to_json())
    whole = _cells(parse_bytes(SHANGHAI.encode(), "whole.html").to_json())
    assert split == whole
    assert split[("applications", "unavailable.not_held", "natural_person")] == "252"


# --- the evidence ---------------------------------------------------------------------------------

TABLE_TWO = (
    "<table><tr><td>信息内容</td><td>本年制发件数</td><td>本年废止件数</td><td>现行有效件数</td></tr>"
    "<tr><td>规章</td><td>1</td><td>0</td><td>4</td></tr>"
    "<tr><td>行政规范性文件</td><td>12</td><td>3</td><td>40</td></tr></table>"
)


def test_one_template_table_alone_is_one_point_and_a_listing_title_the_second() -> None:
    page = f"<html><body>{TABLE_TWO}</body></html>".encode()
    alone = parse_bytes(page, "table.html").to_json()
    assert alone["status"] == "not_a_report" and alone["facts"] == []
    assert "1 of the 2" in alone["problems"][0]["message"]
    hints = SourceHints(title="某区统计局2023年政府信息公开工作年度报告")
    hinted = parse_bytes(page, "table.html", hints).to_json()
    assert hinted["status"] == "parsed"
    assert {(f["row"], f["col"]): f["value"] for f in hinted["facts"]} == {
        ("rules", "issued"): 1,
        ("rules", "repealed"): 0,
        ("rules", "in_force"): 4,
        ("normative_documents", "issued"): 12,
        ("normative_documents", "repealed"): 3,
        ("normative_documents", "in_force"): 40,
    }


def test_title_and_section_one_cut_off_is_a_report() -> None:
    text = "某镇2023年政府信息公开工作年度报告\n一、总体情况\n2023年，我镇认真贯彻《条例》……"
    result = parse_bytes(text.encode(), "cut.txt").to_json()
    assert result["status"] == "parsed"
    assert result["template"] == "free_form"
    assert [s["code"] for s in result["sections"]] == ["preamble", "overview"]


def test_sections_count_only_in_the_template_order() -> None:
    assert ordered_sections(
        ["preamble", "overview", "review_litigation", "active_disclosure", "applications"]
    ) == ("overview", "active_disclosure", "applications")
    assert ordered_sections(["preamble"]) == ()


@pytest.mark.parametrize(
    ("cells", "table"),
    [
        (["信息内容", "本年制发件数", "本年废止件数", "现行有效件数"], "active_disclosure"),
        (["信息内容", "上一年项目数量(指2019年事项数)", "本年增/减"], "active_disclosure"),
        (["第二十条第(一)项", "信息内容", "本年新制作数量", "规章", "0"], "active_disclosure"),
        (["自 然 人", "法人或其他组织", "总 计"], "applications"),
        (["商业", "科研", "社会公益组织", "法律服务机构", "其他"], "applications"),
        (["结果 维持", "结果 纠正", "其他 结果", "尚未 审结", "总计"], "review_litigation"),
        # Words data rows print too, one header word alone, and data rows are no header.
        (["其他", "总计"], None),
        (["行政复议", "行政诉讼"], None),
        (["本年处理决定数量", "5"], None),
        (["本年新收政府信息公开申请数量", "3", "0"], None),
        (["（三）不予公开", "1.属于国家秘密", "0"], None),
    ],
)
def test_header_rows_are_known_by_two_header_words(cells: list[str], table: str | None) -> None:
    assert header_of(cells) == table
