import re
import sys
import unicodedata

import pytest

from nianbao.flows.evaluate import SECTION_CODES
from nianbao.parsers.report import parse_file
from nianbao.parsers.sections import match_heading
from nianbao.schema.registry import NFKC_INERT, nfkc

from .helpers import REAL, SAMPLES


@pytest.mark.parametrize(
    ("heading", "code"),
    [
        ("一、总 体 情 况", "overview"),
        ("一. 总体情况", "overview"),
        ("第五部分 政府信息公开工作存在的主要问题及改进情况", "problems"),
        ("五、存在问题及改进情况", "problems"),
        ("四、因政府信息公开工作被申请行政复议、提起行政诉讼的情况", "review_litigation"),
        ("四、政府信息公开行政法复议、行政诉讼情况", "review_litigation"),
        ("六、其他需要报告的事项", "other_matters"),
    ],
)
def test_heading_variants_map_to_section_codes(heading, code):
    assert match_heading(heading).code == code


@pytest.mark.parametrize(
    "line", ["（一）主动公开情况", "一、本年新收政府信息公开申请数量", "四、结转下年度继续办理"]
)
def test_sub_headings_and_table_labels_are_not_sections(line):
    assert match_heading(line) is None


def test_seed_has_all_six_sections_with_text():
    result = parse_file(str(SAMPLES / "huzhu-employment-2023.txt")).to_json()
    sections = {s["code"]: s for s in result["sections"]}
    assert tuple(sections)[-6:] == SECTION_CODES
    assert "主动公开政府信息 70 条" in sections["overview"]["text"]


def test_paragraph_broken_at_a_page_break_is_joined():
    result = parse_file(str(SAMPLES / "huzhu-employment-2023.txt")).to_json()
    overview = next(s for s in result["sections"] if s["code"] == "overview")
    assert "办公室主抓，其余部门各负其责" in overview["text"]


def test_headings_run_on_inside_flattened_page_text_are_found():
    result = parse_file(str(REAL / "08_pingtan_2022.flat.txt")).to_json()
    codes = [s["code"] for s in result["sections"]]
    assert tuple(codes[-6:]) == SECTION_CODES
    problems = next(s for s in result["sections"] if s["code"] == "problems")
    assert problems["heading"] == "五、存在的主要问题及改进情况"
    assert problems["text"].startswith("2022年")


def _composition_parts() -> set[str]:
    """Every character that is the first or second of a canonical two-character decomposition,
    i.e. may take part in an NFC/NFKC composition."""
    parts = set()
    for code in range(sys.maxunicode + 1):
        decomposition = unicodedata.decomposition(chr(code))
        if decomposition and not decomposition.startswith("<"):
            fields = decomposition.split()
            if len(fields) == 2:
                parts.update(chr(int(f, 16)) for f in fields)
    return parts


def test_nfkc_inert_characters_are_inert_by_the_unicode_data():
    parts = _composition_parts()
    inert = [c for c in map(chr, range(sys.maxunicode + 1)) if re.fullmatch(f"[{NFKC_INERT}]", c)]
    assert "年" in inert and "0" in inert and "，" not in inert and "e" not in inert
    for char in inert:
        assert unicodedata.combining(char) == 0, hex(ord(char))
        assert unicodedata.decomposition(char) == "", hex(ord(char))
        assert char not in parts, hex(ord(char))


def test_nfkc_matches_unicodedata_on_reports_and_edge_cases():
    texts = [
        # combining marks next to inert characters, compositions, Hangul, compatibility forms
        "e\u0301年\u0301 a\u0308\u0301\u0316 <\u0338 =\u0338 \u1100\u1161\u11a8 한국 ㈠ ﬁ Ⅻ ①",
        "\u0301开头 年\u0316\u0301 2024\u20e3 （一）：，；！？　全角空格\xa0ｎｂｓｐ１２３",
        "",
    ]
    for path in [*SAMPLES.glob("*.txt"), *REAL.glob("*.txt"), *SAMPLES.glob("*.html")]:
        texts.append(path.read_bytes().decode("utf-8", "replace"))
    for text in texts:
        assert nfkc(text) == unicodedata.normalize("NFKC", text)
