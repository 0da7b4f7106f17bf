"""Converted Markdown (what PDF-to-Markdown and OCR tools make of a report), made from the real
samples' gold by tests/fixtures/markdown/make_markdown.py, parses to every gold cell it holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nianbao.flows.evaluate import cell_matches
from nianbao.parsers.detect import sniff_format
from nianbao.parsers.markdown import read_markdown
from nianbao.parsers.report import parse_bytes, parse_file
from nianbao.parsers.result import Fact

from .helpers import ROOT, SAMPLES

CONVERTED = ROOT / "tests" / "fixtures" / "markdown"


@pytest.mark.parametrize("path", sorted(CONVERTED.glob("*.converted.md")), ids=lambda p: p.stem)
def test_a_conversion_parses_to_every_gold_cell(path: Path) -> None:
    gold = json.loads(path.with_name(path.stem + ".canon.json").read_text("utf-8"))
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


def test_a_row_of_values_without_a_label_is_reported_not_guessed() -> None:
    markdown = (CONVERTED / "huzhu-employment-2023.converted.md").read_text("utf-8")
    # A tool that dropped a label outright, at the top of a table piece.
    damaged = markdown.replace("二、上年结转政府信息公开申请数量\n", "", 1)
    result = parse_bytes(damaged.encode(), "converted.md").to_json()
    missing = [p for p in result["problems"] if p["code"] == "row_label_missing"]
    assert len(missing) == 1
    rows = {f["row"] for f in result["facts"]}
    assert "carried_over" not in rows and not any(r.startswith("extra.") for r in rows)
    assert "new_received" in rows and "granted" in rows


def test_markdown_is_recognised_by_its_bytes() -> None:
    converted = (CONVERTED / "huzhu-employment-2023.converted.md").read_bytes()
    assert sniff_format(converted, "report") == "md"
    assert sniff_format(b"# a\n\nsome text\n", "notes.md") == "md"
    assert sniff_format((SAMPLES / "huzhu-employment-2023.txt").read_bytes(), "x.txt") == "txt"
