"""Converted Markdown (what PDF-to-Markdown and OCR tools make of a report), made from the real
samples' gold by tests/fixtures/markdown/make_markdown.py, parses to every gold cell it holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from nianbao.flows.evaluate import cell_matches, read_gold
from nianbao.parsers.detect import sniff_format
from nianbao.parsers.markdown import read_markdown
from nianbao.parsers.report import parse_bytes, parse_file
from nianbao.parsers.result import Fact

from .helpers import ROOT, SAMPLES

CONVERTED = ROOT / "tests" / "fixtures" / "markdown"


@pytest.mark.parametrize("path", sorted(CONVERTED.glob("*.converted.md")), ids=lambda p: p.stem)
def test_a_conversion_parses_to_every_gold_cell(path: Path) -> None:
    gold = read_gold(path.with_name(path.stem + ".canon.json"))
    result = parse_file(str(path)).to_json()
    assert (result["format"], result["status"], result["year"]) == ("md", "parsed", gold["year"])
    assert result["template"] == gold["template"]
    facts = {f.key: f for f in map(Fact.from_json, result["facts"])}
    wrong = [k for k, v in gold["facts"].items() if not cell_matches(v, facts.get(k))]
    assert wrong == []
    assert not any(f["row"].startswith("extra.") for f in result["facts"])


def test_the_conversion_undoes_what_the_tool_did() -> None:
    text = (CONVERTED / "01_huaian_shizhengfu_2024.converted.md").read_text("utf-8")
    # The fixture has the damage it is meant to have.
    assert "| 类别 | 数据1 |" in text and "**" in text and "\n行政许可 447228\n" in text
    document = read_markdown(text.encode())
    labels = [row[0].text for table in document.tables() for row in table.rows]
    assert "二、上年结转政府信息公开申请数量" in labels  # put back from its loose line
    assert not any(label in ("类别", "数据1") for label in labels)
    assert ["行政许可", "447228"] in [
        [c.text for c in row] for table in document.tables() for row in table.rows
    ]
    headings = [p.text for p in document.paragraphs() if p.kind == "heading"]
    assert "三、收到和处理政府信息公开申请情况" in headings


def test_a_row_without_a_label_is_placed_by_the_template_order_and_the_sums() -> None:
    markdown = (CONVERTED / "01_huaian_shizhengfu_2024.converted.md").read_text("utf-8")
    # A tool that dropped a label outright, at the top of a table piece.
    damaged = markdown.replace("二、上年结转政府信息公开申请数量\n", "", 1)
    result = parse_bytes(damaged.encode(), "converted.md").to_json()
    facts = {(f["row"], f["col"]): f["value"] for f in result["facts"]}
    # Between 本年新收 and 予以公开 the template prints one row, and R1 holds only with it there.
    assert facts["carried_over", "natural_person"] == 34 and facts["carried_over", "total"] == 34
    placed = [p for p in result["problems"] if p["code"] == "row_placed_by_order"]
    assert len(placed) == 1 and "applications/carried_over" in placed[0]["message"]
    assert "R1 natural_person" in placed[0]["message"]
    assert not any(p["code"] == "row_label_missing" for p in result["problems"])
    assert all(c["ok"] for c in result["checks"] if c["rule"] in ("R1", "R2", "R3"))


def test_a_row_without_a_label_that_the_sums_refute_is_reported_not_guessed() -> None:
    markdown = (CONVERTED / "01_huaian_shizhengfu_2024.converted.md").read_text("utf-8")
    damaged = markdown.replace("二、上年结转政府信息公开申请数量\n", "", 1)
    # Its figures no longer fit the printed totals: the order alone does not place it.
    damaged = damaged.replace("| 34 | 0 | 0 | 0 | 0 | 0 | 34 |", "| 35 | 0 | 0 | 0 | 0 | 0 | 35 |")
    result = parse_bytes(damaged.encode(), "converted.md").to_json()
    missing = [p for p in result["problems"] if p["code"] == "row_label_missing"]
    assert len(missing) == 1 and "applications/carried_over" in missing[0]["message"]
    rows = {f["row"] for f in result["facts"]}
    assert "carried_over" not in rows and not any(r.startswith("extra.") for r in rows)
    assert "new_received" in rows and "granted" in rows


def test_two_rows_without_labels_in_one_gap_of_zeros_are_placed_in_order() -> None:
    markdown = (CONVERTED / "huzhu-employment-2023.converted.md").read_text("utf-8")
    # 3.危及三安全一稳定 and 4.保护第三方合法权益 both lose their labels: a row of zeros
    # changes no sum, so the template's order alone places them.
    damaged = markdown.replace("| 3.危及三安全一稳定 | 0", "| 0", 1)
    damaged = damaged.replace("4.保护第三方合法权益\n", "", 1)
    assert damaged.count("\n| 0 | 0 | 0 | 0 | 0 | 0 | 0 |\n| 0 | 0") == 1
    result = parse_bytes(damaged.encode(), "converted.md").to_json()
    rows = [f["row"] for f in result["facts"] if f["col"] == "total"]
    assert rows.index("denied.security_stability") + 1 == rows.index("denied.third_party")
    placed = [p["message"] for p in result["problems"] if p["code"] == "row_placed_by_order"]
    assert len(placed) == 2 and all("a row of zeros" in message for message in placed)


@pytest.mark.parametrize(
    ("name", "printed", "misread"),
    [
        ("huzhu-employment-2023", "互助县就业服务局", "互助县就业服条局"),
        ("04_shanghai_szfbgt_2019", "上海市人民政府办公厅", "上海市人民玫府办公厅"),
    ],
)
def test_a_name_the_tool_misread_in_the_title_gives_way_to_its_right_spelling(
    name: str, printed: str, misread: str
) -> None:
    markdown = (CONVERTED / f"{name}.converted.md").read_text("utf-8")
    assert markdown.startswith(f"# **{printed}**")
    # One character misread in the title only; the report prints the name right elsewhere.
    result = parse_bytes(markdown.replace(printed, misread, 1).encode(), "converted.md").to_json()
    assert result["agency"] == printed
    assert result["agency_source"] == "title"


def test_markdown_is_recognised_by_its_bytes() -> None:
    converted = (CONVERTED / "huzhu-employment-2023.converted.md").read_bytes()
    assert sniff_format(converted, "report") == "md"
    assert sniff_format(b"# a\n\nsome text\n", "notes.md") == "md"
    assert sniff_format((SAMPLES / "huzhu-employment-2023.txt").read_bytes(), "x.txt") == "txt"
