"""Pre-2019 free-form reports (template 2008): prose figures and the 统计表, on real reports.

The fixtures are crawled page text of real reports (tests/fixtures/real/28…32); their
hand-transcribed gold is beside them as `*.facts.json`.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest
from sqlalchemy import select, text

from nianbao.flows.evaluate import evaluate
from nianbao.parsers.freeform import match_row
from nianbao.parsers.report import parse_bytes, parse_file
from nianbao.schema.checks import run_checks
from nianbao.schema.db import engine_for
from nianbao.schema.load import LoadOutcome, load_document
from nianbao.schema.models import Fact
from nianbao.schema.registry import FREEFORM_VERSION, freeform_template

from .helpers import SAMPLES

REAL = Path(__file__).parent / "fixtures" / "real"
PINGTAN_2012 = REAL / "28_pingtan_2012_freeform.txt"
COUNTY_2013 = REAL / "29_pingtan_county_2013_freeform.txt"
PINGTAN_2015 = REAL / "30_pingtan_2015_freeform.txt"
ZHONGYUAN_2015 = REAL / "31_zhongyuan_shenjiju_2015_freeform.txt"
DISHUI_2013 = REAL / "32_pingtan_dishui_2013_freeform.txt"
SHANGHAI_2010 = REAL / "33_shanghai_szfbm_2010_traditional.txt"


@cache
def parsed(path: Path) -> dict:
    return parse_file(str(path)).to_json()


def facts(path: Path, table: str, row: str) -> dict[str, dict]:
    """The facts of one row, by column."""
    return {f["col"]: f for f in parsed(path)["facts"] if f["table"] == table and f["row"] == row}


def problems(path: Path, code: str) -> list[str]:
    return [p["message"] for p in parsed(path)["problems"] if p["code"] == code]


def test_free_form_report_is_template_2008_with_provenance() -> None:
    result = parsed(PINGTAN_2012)
    assert result["template"] == FREEFORM_VERSION
    assert result["checks"] == []  # the national-table rules have nothing to check here
    items = facts(PINGTAN_2012, "prose", "active.items")["year"]
    assert (items["value"], items["unit"], items["source"]) == (1913, "条", "prose")
    assert "2012年主动公开政府信息1913条" in items["evidence"]
    assert items["section"] == "active_disclosure"
    row = facts(PINGTAN_2012, "statistics", "active.items")
    assert {col: f["value"] for col, f in row.items()} == {"year": 739, "cumulative": 4359}
    assert row["year"]["evidence"] == "主动公开信息数 条 739 4359"
    assert row["year"]["source"] == "table"


def test_negations_read_as_zero() -> None:
    received = facts(PINGTAN_2012, "prose", "applications.received")["year"]
    assert received["value"] == 0 and received["raw"].startswith("未收到")
    assert facts(PINGTAN_2012, "prose", "review.total")["year"]["value"] == 0
    fees = facts(PINGTAN_2015, "prose", "fees.collected")["year"]
    assert (fees["value"], fees["raw"]) == (0, "暂不收费")
    for row in ("review.total", "litigation.total", "complaints.total"):
        assert facts(ZHONGYUAN_2015, "prose", row)["year"]["value"] == 0
    # A heading (依申请公开政府信息减免收费情况) states nothing; the sentence under it does.
    fee = facts(SHANGHAI_2010, "prose", "fees.collected")["year"]
    assert (fee["value"], fee["raw"]) == (0, "未收取费用")
    assert facts(SHANGHAI_2010, "prose", "fees.waived")["year"]["value"] == 0


def test_qualified_prose_figures_are_local_rows() -> None:
    """1913 is the report's figure; 1397 (区直、县直) and 534 (各乡镇) are parts, kept as extra."""
    extras = {
        f["value"]: f["label"]
        for f in parsed(PINGTAN_2012)["facts"]
        if f["table"] == "prose" and f["row"].startswith("extra.")
    }
    assert extras[1397] == "区直、县直各单位主动公开政府信息"
    assert extras[534] == "各乡镇主动公开政府信息"


def test_parts_that_do_not_add_up_are_a_finding() -> None:
    """1397 (占73%) + 534 (占27%) = 1931, not the 1913 of the same paragraph."""
    (message,) = problems(PINGTAN_2012, "prose_parts_disagree")
    assert "1913条" in message and "1931" in message
    # 1251 (占67.5%) + 602 (占32.5%) = 1853: no finding.
    assert problems(COUNTY_2013, "prose_parts_disagree") == []


def test_prose_and_table_disagreement_keeps_both() -> None:
    (message,) = [m for m in problems(PINGTAN_2012, "prose_table_disagree") if "active.items" in m]
    assert "1913条" in message and "739条" in message
    online = {
        f["table"]: f["value"]
        for f in parsed(COUNTY_2013)["facts"]
        if f["row"] == "applications.online" and f["col"] == "year"
    }
    assert online == {"prose": 3, "statistics": 4}


@pytest.mark.parametrize(
    ("row", "year", "cumulative"),
    [
        ("active.items", 1853, 5395),  # 18535395: the prose's 1853 picks the split
        ("active.via_portal", 1713, 5017),  # 17135017: the only split below its parent row
        ("applications.received", 7, 28),  # 728: 72 > 8 cannot be
        ("applications.in_person", 0, 18),
        ("applications.email", 3, 6),
        ("replies.partially_granted", 1, 3),  # the next row's "3." glued on, dropped
        ("complaints.total", 0, 0),
    ],
)
def test_run_together_cells_split_where_one_split_fits(
    row: str, year: int, cumulative: int
) -> None:
    cells = facts(COUNTY_2013, "statistics", row)
    assert (cells["year"]["value"], cells["cumulative"]["value"]) == (year, cumulative)
    assert cells["year"]["unit"] == "条"  # from the 计量单位 column, even for 行政申诉数


def test_ambiguous_run_is_reported_not_guessed() -> None:
    text = (
        "某县2013年政府信息公开工作年度报告 一、概述 本报告…… "
        "二、政府信息公开情况统计表 指标名称计量单位2013年度历年累计主动公开信息数条18535395"
    )
    result = parse_bytes(text.encode(), "run.txt").to_json()
    assert [p for p in result["problems"] if p["code"] == "fused_cells"]
    assert not [f for f in result["facts"] if f["row"] == "active.items"]


def test_label_variants_match_their_row() -> None:
    vocabulary = freeform_template()
    assert match_row("受理政府信息依申请公开总数", vocabulary).code == "applications.received"
    assert match_row("其中：1、政府网站公开数", vocabulary).code == "active.via_portal"
    assert match_row("接受行政诉讼、举报数", vocabulary) is None  # two rows' words: local


def test_running_total_in_prose_is_cumulative() -> None:
    text = (
        "一、概述 本年度工作稳步推进。 二、主动公开政府信息情况 "
        "本区到年底累计主动公开政府信息5928条，其中，本年度新增主动公开政府信息2110条。"
    )
    result = parse_bytes(text.encode(), "cumulative.txt").to_json()
    items = {f["col"]: f["value"] for f in result["facts"] if f["row"] == "active.items"}
    assert items == {"cumulative": 5928, "year": 2110}


def test_local_table_row_keeps_its_label() -> None:
    local = [f for f in parsed(PINGTAN_2015)["facts"] if f["label"] == "接受行政诉讼、举报数"]
    assert {f["col"] for f in local} == {"year", "cumulative"}
    assert all(f["row"].startswith("extra.") for f in local)
    assert facts(PINGTAN_2015, "statistics", "fees.waived")["year"]["unit"] == "元"


def test_ambiguous_clause_is_a_finding() -> None:
    text = (
        "一、概述 本年度工作稳步推进。 三、依申请公开情况 2016年共受理政府信息公开申请5件。"
        " 四、行政复议和行政诉讼情况 因政府信息公开被申请行政复议和提起行政诉讼共3件。"
    )
    result = parse_bytes(text.encode(), "ambiguous.txt").to_json()
    assert [p for p in result["problems"] if p["code"] == "ambiguous_binding"]
    rows = {f["row"] for f in result["facts"]}
    assert "applications.received" in rows
    assert not rows & {"review.total", "litigation.total"}


@pytest.mark.parametrize("path", [PINGTAN_2015, DISHUI_2013])
def test_figures_of_other_matters_are_not_bound(path: Path) -> None:
    """窗口 applications (136437件) and tax relief (219062.78元) are not disclosure figures."""
    gold = json.loads(path.with_suffix(".facts.json").read_text("utf-8"))
    bound = {(f"{f['table']}/{f['row']}/{f['col']}", f["value"]) for f in parsed(path)["facts"]}
    for wrong in gold["not_facts"]:
        assert (wrong["code"], wrong["value"]) not in bound


def test_eval_scores_the_facts_gold_files() -> None:
    scores = {Path(s.path).name: s for s in evaluate([REAL])}
    assert {p.name for p in (PINGTAN_2012, COUNTY_2013, PINGTAN_2015, ZHONGYUAN_2015)} <= set(
        scores
    )
    for score in scores.values():
        assert score.wrong == [] and score.metadata_errors == []
        assert score.cells > 0 and score.right == score.cells


def test_vocabulary_rows_are_unique_and_narrow_known_codes() -> None:
    vocabulary = freeform_template()
    codes = [row.code for row in vocabulary.rows]
    assert len(codes) == len(set(codes))
    # Each printed label names one row, also once the filler words are dropped.
    for row in vocabulary.rows:
        for label in (row.label, *row.aliases):
            assert match_row(label, vocabulary) == row, label
    assert {row.narrows for row in vocabulary.rows if row.narrows} <= set(codes)
    assert run_checks([], FREEFORM_VERSION) == []


def test_warehouse_keeps_provenance_and_the_key_series_spans_templates(db_url: str) -> None:
    engine = engine_for(db_url)
    try:
        for path in (PINGTAN_2012, COUNTY_2013, SAMPLES / "04_shanghai_szfbgt_2019.html"):
            assert load_document(engine, parse_file(str(path))) == LoadOutcome.LOADED
        with engine.connect() as conn:
            series = conn.execute(
                text("SELECT year, series, value, source FROM v_key_series ORDER BY year, series")
            ).all()
            stored = conn.execute(
                select(Fact.value, Fact.source, Fact.evidence, Fact.section).where(
                    Fact.table_code == "prose", Fact.row_code == "active.items"
                )
            ).all()
    finally:
        engine.dispose()
    assert [(y, s, float(v), src) for y, s, v, src in series] == [
        (2012, "applications_received", 0.0, "table"),
        (2012, "lawsuits", 0.0, "table"),
        (2012, "reviews", 0.0, "table"),
        (2013, "applications_received", 7.0, "table"),
        (2013, "lawsuits", 0.0, "table"),
        (2013, "reviews", 0.0, "table"),
        (2019, "applications_received", 859.0, "template"),
        (2019, "lawsuits", 9.0, "template"),  # 9 direct + a blank after review
        (2019, "reviews", 7.0, "template"),
    ]
    assert {(float(v), src, sec) for v, src, _, sec in stored} == {
        (1913.0, "prose", "active_disclosure"),
        (1853.0, "prose", "active_disclosure"),
    }
    assert all("主动公开政府信息" in evidence for _, _, evidence, _ in stored)


def test_key_series_falls_back_to_prose_without_a_table(db_url: str) -> None:
    engine = engine_for(db_url)
    try:
        assert load_document(engine, parse_file(str(ZHONGYUAN_2015))) == LoadOutcome.LOADED
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT series, value, source FROM v_key_series ORDER BY series")
            ).all()
    finally:
        engine.dispose()
    assert [(s, float(v), src) for s, v, src in rows] == [
        ("applications_received", 0.0, "prose"),
        ("lawsuits", 0.0, "prose"),
        ("reviews", 0.0, "prose"),
    ]


def test_docs_list_every_vocabulary_code() -> None:
    page = (Path(__file__).parent.parent / "docs" / "template-2008.md").read_text("utf-8")
    documented = set(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", page, re.MULTILINE))
    assert documented == {row.code for row in freeform_template().rows}


def test_statistics_table_printed_as_a_real_table() -> None:
    """An HTML 统计表 (the 2012 平潭 rows, with a blank cell) is not a 2019 table of extras."""
    rows = [
        ("指标名称", "计量单位", "2012年度", "历年累计"),
        ("主动公开信息数", "条", "739", "4359"),
        ("其中：1、网站公开", "条", "739", "4359"),
        ("受理依申请公开信息总数", "条", "0", "0"),
        ("行政复议数", "件", "", "0"),
    ]
    table = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    page = (
        "<html><head><title>平潭综合实验区2012年政府信息公开工作年度报告</title></head><body>"
        "<p>一、概述</p><p>2012年全区政府信息公开工作稳步开展。</p>"
        "<p>二、主动公开政府信息情况</p><p>2012年主动公开政府信息1913条。</p>"
        f"<p>三、政府信息公开情况统计表</p><table>{table}</table></body></html>"
    )
    result = parse_bytes(page.encode(), "table.html").to_json()
    assert result["template"] == FREEFORM_VERSION
    cells = {
        (f["row"], f["col"]): f["value"] for f in result["facts"] if f["table"] == "statistics"
    }
    assert cells[("active.items", "year")] == 739
    assert cells[("active.via_portal", "cumulative")] == 4359
    assert cells[("review.total", "year")] is None  # printed blank: null, not 0
    assert cells[("review.total", "cumulative")] == 0


def test_quoted_reply_outcomes_and_fee_subsection() -> None:
    """The 上海 style of the 2010s: outcomes in quotes, fees under a （三） sub-heading."""
    text = (
        "一、概述\n2011年，本局继续推进政府信息公开工作。\n"
        "三、依申请公开政府信息情况\n（二）申请处理情况\n"
        "在已答复的26件申请中，“同意公开”的18件，“同意部分公开”的3件，“信息不存在”的2件，"
        "“非本机关职责权限范围”的2件，“申请内容不明确”的1件。\n"
        "（三）依申请公开政府信息收费情况\n本局未收取任何费用。\n"
    )
    result = parse_bytes(text.encode(), "quoted.txt").to_json()
    replies = {f["row"]: f["value"] for f in result["facts"] if f["row"].startswith("replies.")}
    assert replies == {
        "replies.total": 26,
        "replies.granted": 18,
        "replies.partially_granted": 3,
        "replies.not_held": 2,
        "replies.not_this_body": 2,
        "replies.unclear": 1,
    }
    fee = next(f for f in result["facts"] if f["row"] == "fees.collected")
    assert (fee["value"], fee["section"]) == (0, "fees")
