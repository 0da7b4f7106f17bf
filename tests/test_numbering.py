"""The numbering reports print is one vocabulary, read from data by every reader."""

from __future__ import annotations

import json

from nianbao.schema import numbering
from nianbao.schema.registry import sections, strip_numbering

from .helpers import ROOT

DATA = json.loads((ROOT / "schema" / "templates" / "numbering.json").read_text("utf-8"))


def test_each_reader_finds_the_numbering_reports_print():
    assert numbering.PDF_HEADING.match("三、收到和处理政府信息公开申请情况")
    assert numbering.PDF_HEADING.match("（二）主动公开情况")
    assert numbering.PDF_HEADING.match("第二部分 主动公开")
    assert not numbering.PDF_HEADING.match("2023年，本机关坚持")
    assert numbering.ROW_LABEL_START.match("（1）属于国家秘密")
    assert numbering.ROW_LABEL_START.match("3.危及“三安全一稳定”")
    assert not numbering.ROW_LABEL_START.match("信息或者申请人")
    assert numbering.TEXT_HEADING.match("  一. 总体情况")
    assert numbering.SECTION_NUMBER.match("第三部分 收到和处理").group(1) == "三"
    assert numbering.SECTION_NUMBER.match("五：存在的主要问题").group(2) == "五"
    assert not numbering.SECTION_NUMBER.match("七、其他")  # the report has six sections
    inline = "……全年未收到复议。四、政府信息公开行政复议"
    assert [m.group() for m in numbering.SECTION_NUMBER_INLINE.finditer(inline)] == ["四、"]
    assert not numbering.SECTION_NUMBER_INLINE.search("依据第四条、（四）项")
    assert numbering.LABEL_BOUNDARY.split("（三）不予公开1.属于国家秘密") == [
        "",
        "（三）不予公开1.属于国家秘密",
    ]
    assert numbering.FREEFORM_HEADING.search("情况如下。三．依申请公开").group(1) == "三"


def test_labels_lose_their_numbering_but_not_their_figures():
    assert strip_numbering("三、（一）予以公开") == "予以公开"
    assert strip_numbering("(2) 部分公开") == "部分公开"
    assert strip_numbering("第一部分 总体情况") == "总体情况"
    assert strip_numbering("12、其他") == "其他"
    assert strip_numbering("1.5万元") == "1.5万元"  # a figure, not a number


def test_the_patterns_are_built_from_the_data():
    assert DATA["numerals"] == numbering.NUMERALS
    for numeral in DATA["numerals"]:
        assert numbering.PDF_HEADING.match(numeral + DATA["separators"]["enumeration"])
    for separator in DATA["separators"]["heading"]:
        assert numbering.TEXT_HEADING.match("二" + separator + "主动公开")
    for opening, closing in zip(*DATA["brackets"].values(), strict=True):
        assert numbering.ROW_LABEL_START.match(f"{opening}七{closing}其他处理")
    numbers = "".join(spec.number for spec in sections())
    assert all(numbering.SECTION_NUMBER.match(n + "、") for n in numbers)
