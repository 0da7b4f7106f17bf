"""Who published a report: agency, year, level and 行政区划 code of real reports, from every
place a report says them, and one identity for the spellings of one agency."""

from __future__ import annotations

import io
import json
import subprocess
import tomllib
from pathlib import Path

import docx
import pdfplumber
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from nianbao.flows.evaluate import evaluate_metadata, metadata_summary
from nianbao.parsers.agency import resolve_agency
from nianbao.parsers.legacy import find_soffice
from nianbao.parsers.metadata import _BODY_PATTERNS, SourceHints, _Anchored, extract_metadata
from nianbao.parsers.pdf import read_pdf
from nianbao.parsers.report import parse_bytes, parse_file

ROOT = Path(__file__).parent.parent
SAMPLES = ROOT / "samples"
REAL = Path(__file__).parent / "fixtures" / "real"
HUZHU_TEXT = (SAMPLES / "huzhu-employment-2023.txt").read_text("utf-8")
# The report from its preamble on (no title) and from 一、总体情况 on (no title, no preamble).
FROM_PREAMBLE = HUZHU_TEXT[HUZHU_TEXT.index("本报告由") :]
FROM_OVERVIEW = HUZHU_TEXT[HUZHU_TEXT.index("一、总体情况") :]


def _gold_table() -> list[tuple[Path, dict]]:
    rows = []
    for folder in (SAMPLES, REAL):
        gold = json.loads((folder / "metadata.gold.json").read_text("utf-8"))
        rows.extend((folder / name, expected) for name, expected in gold["documents"].items())
    return rows


@pytest.mark.parametrize("path, expected", _gold_table(), ids=lambda v: getattr(v, "name", ""))
def test_real_report_has_its_agency_year_level_and_code(path: Path, expected: dict) -> None:
    parsed = parse_file(str(path)).to_json()
    assert parsed["agency"] == expected["agency"]
    assert parsed["year"] == expected["year"]
    assert parsed["level"] == expected["level"]
    assert parsed["region_code"] == expected["region_code"]
    codes = {p["code"] for p in parsed["problems"]}
    # No agency printed is a finding, never a fragment of a sentence or a silent None.
    assert ("agency_missing" in codes) == (expected["agency"] is None)
    assert ("year_missing" in codes) == (expected["year"] is None)


def test_eval_scores_every_real_report() -> None:
    scores = evaluate_metadata([SAMPLES, REAL])
    assert len(scores) == 29
    assert [s.wrong for s in scores if s.wrong] == []
    assert metadata_summary(scores) == (
        "who published it over 29 documents: agency 29/29, year 29/29, level 29/29, "
        "region_code 29/29"
    )


def test_parse_json_carries_where_the_agency_came_from_and_its_place() -> None:
    parsed = parse_file(str(SAMPLES / "01_huaian_shizhengfu_2024.pdf")).to_json()
    assert parsed["agency_source"] == "title"
    assert parsed["agency_canonical"] == "淮安市人民政府"
    assert parsed["agency_kind"] == "government"
    assert parsed["region"] is None  # the portal's region: this file was not harvested
    assert parsed["region_names"] == {"province": "江苏省", "city": "淮安市", "county": None}


def _parse_text(text: str, name: str = "report.txt", hints: SourceHints | None = None) -> dict:
    return parse_bytes(text.encode("utf-8"), name, hints).to_json()


@pytest.mark.parametrize(
    "title",
    [
        "互助县就业服务局 2023 年\n\n政府信息公开工作年度报告",  # split over two lines
        "# 互助县就业服务局\n\n## 2 0 2 3 年度政府信息公开工作年度报告",  # Markdown, spaced digits
        "第 1 页 共 9 页\n\n互助县就业服务局2023年度政府信息公开\n工作年度报告",  # furniture, wrap
        "互 助 县 就 业 服 务 局\n2023年度政府信息公开工作年度报告",  # letter-spaced name
        "互 助 县 就 业 服 务 局 2 0 2 3 年 度 政 府 信 息 公 开 工 作 年 度 报 告",  # all spaced
        "首页 > 政务公开 > 附件1：互助县就业服务局2023年度政府信息公开工作年度报告",  # breadcrumb
        "互助县就业服\n务局2023年度政府信息公开工作年度报告",  # a line break inside the name
        "2024/1/20 10:15 互助县就业服务局2023年度政府信息公开工作年度报告",  # a browser's header
        "互助县就业服务局关于印发2023年度政府信息公开工作年度报告的通知",  # a covering notice
        "互助县就业服务局2023年信息公开年度报告",  # without 政府, as departments often title it
        "互助县就业服务局2023年度信息公开工作年度报告",
    ],
)
def test_title_however_printed_gives_agency_and_year(title: str) -> None:
    parsed = _parse_text(f"{title}\n\n{FROM_OVERVIEW}")
    assert (parsed["agency"], parsed["agency_source"], parsed["year"]) == (
        "互助县就业服务局",
        "title",
        2023,
    )
    assert parsed["region_code"] == "630223"


def test_preamble_names_the_agency_when_no_title_is_printed() -> None:
    parsed = _parse_text(FROM_PREAMBLE)
    assert (parsed["agency"], parsed["agency_source"], parsed["year"]) == (
        "互助县就业服务局",
        "preamble",
        2023,
    )


def test_preamble_saying_who_compiled_it_names_the_agency() -> None:
    # 31 (a 2015 report): 本年度报告是根据《条例》和…工作要求,由中原区审计局编制。
    meta = extract_metadata(
        [
            "本年度报告是根据《中华人民共和国政府信息公开条例》和中原区政府信息公开工作要求,"
            "由中原区审计局编制。本年报中所列数据的统计期限自2015年1月1日起至2015年12月31日止。"
        ]
    )
    assert (meta.agency, meta.agency_source, meta.year) == ("中原区审计局", "preamble", 2015)
    # A county-level place printed without its city resolves when its name is unique.
    assert (meta.resolved.region_code, meta.resolved.level) == ("410102", "县")
    assert meta.resolved.canonical == "郑州市中原区审计局"


ZHONGYUAN_TEXT = (REAL / "31_zhongyuan_shenjiju_2015_freeform.txt").read_text("utf-8")
ZHONGYUAN_HEADER, ZHONGYUAN_BODY = ZHONGYUAN_TEXT.split("本年度报告", 1)


@pytest.mark.parametrize(
    "header",
    [
        ZHONGYUAN_HEADER,  # 31's own information table: 发布机构:中原区审计局 | 关 键 词:… | |
        "索引号:005267169/2016-00001 | 主题分类:政府信息公开年报\n"
        "发 布 机 构 | 中原区审计局 | 发布日期 | 2016-04-08\n",  # label and name in two cells
        "发布机构：中原区审计局\n发布日期：2016-04-08\n",  # a crawler's page text, one per line
    ],
)
def test_page_information_table_names_the_publisher(header: str) -> None:
    # 31 without the preamble sentence that names the body: only the site's 发布机构 field does.
    body = ZHONGYUAN_BODY.split("\n", 1)[1]
    parsed = _parse_text(header + body)
    assert (parsed["agency"], parsed["agency_source"]) == ("中原区审计局", "page_header")
    assert (parsed["region_code"], parsed["level"]) == ("410102", "县")
    assert "agency_missing" not in {p["code"] for p in parsed["problems"]}


def test_the_reports_own_title_outweighs_the_sites_publisher() -> None:
    # A department's report filed on the county government's site (发布机构: the government).
    parsed = _parse_text(
        "发布机构: 平潭县人民政府\n平潭综合实验区地方税务局2013年信息公开年度报告\n\n"
        + FROM_OVERVIEW
    )
    assert (parsed["agency"], parsed["agency_source"]) == ("平潭综合实验区地方税务局", "title")


def test_year_from_the_year_end_the_overview_names() -> None:
    # 33 has no title and no 统计期限: 截至2010年底 in 概述 says which year it reports on.
    meta = extract_metadata(
        ["一、概述"],
        overview=["根据《条例》要求,2010年,我局继续开展政府信息公开工作。截至2010年底,我局…"],
    )
    assert (meta.agency, meta.year) == (None, 2010)
    assert [p.code for p in meta.problems] == ["agency_missing"]


def test_a_sentence_naming_the_report_is_not_its_title() -> None:
    """A notice about reports: its rule `…前，在本单位政府网站“政府信息公开年报”栏目发布` names the
    report's column but is prose, so it gives no title, agency or year (2025 is a deadline)."""
    meta = extract_metadata(
        [
            "关于做好 2024 年度政府信息公开工作年度报告编制发布工作的通知各县（区）人民政府，"
            "市政府各部门：根据《中华人民共和国政府信息公开条例》有关规定，现就做好 2024 年度"
            "政府信息公开工作年度报告编制发布工作通知如下：",
            "二、发布时间。各单位应于 2025 年 1 月 31 日前，在本单位政府网站政府信息公开年“报栏目"
            "发布年度报告。”",
        ]
    )
    assert (meta.title, meta.agency, meta.year) == (None, None, 2024)
    notice = parse_file(str(ROOT / "tests" / "fixtures" / "bad" / "not_a_report.pdf")).to_json()
    assert notice["status"] == "not_a_report"
    assert (notice["agency"], notice["year"]) == (None, 2024)


def test_signature_block_names_the_agency() -> None:
    parsed = _parse_text(f"{FROM_OVERVIEW}\n\n互助县就业服务局\n2024年1月15日\n")
    assert (parsed["agency"], parsed["agency_source"]) == ("互助县就业服务局", "signature")


def test_file_name_names_the_agency_and_year(tmp_path: Path) -> None:
    path = tmp_path / "互助县就业服务局2023年度政府信息公开工作年度报告.txt"
    path.write_text(FROM_OVERVIEW, "utf-8")
    parsed = parse_file(str(path)).to_json()
    assert (parsed["agency"], parsed["agency_source"], parsed["year"]) == (
        "互助县就业服务局",
        "file_name",
        2023,
    )


def test_listing_hints_name_the_agency_of_a_report_that_does_not() -> None:
    bare = _parse_text(FROM_OVERVIEW)
    assert bare["agency"] is None
    assert "agency_missing" in {p["code"] for p in bare["problems"]}
    titled = _parse_text(
        FROM_OVERVIEW, hints=SourceHints(title="互助县就业服务局2023年度政府信息公开工作年度报告")
    )
    assert (titled["agency"], titled["agency_source"], titled["year"]) == (
        "互助县就业服务局",
        "hint_title",
        2023,
    )
    published = _parse_text(FROM_OVERVIEW, hints=SourceHints(publisher="互助县就业服务局"))
    assert (published["agency"], published["agency_source"]) == (
        "互助县就业服务局",
        "hint_publisher",
    )


def test_portal_region_places_a_relative_name() -> None:
    # 23 names itself only 区统计局: on a district's portal that is the district's bureau.
    text = (REAL / "23_qu_tongjiju_2023.partial.txt").read_text("utf-8")
    parsed = _parse_text(text, hints=SourceHints(region="天津市红桥区"))
    assert parsed["agency"] == "红桥区统计局"
    assert parsed["agency_canonical"] == "天津市红桥区统计局"
    assert (parsed["level"], parsed["region_code"]) == ("县", "120106")
    assert parsed["region_names"] == {"province": "天津市", "city": None, "county": "红桥区"}
    assert parsed["region"] == "天津市红桥区"  # still the portal's region, as harvested
    assert _parse_text(text)["agency"] is None
    bare = resolve_agency("统计局", region_hint="天津市红桥区")
    assert bare is not None and (bare.name, bare.region_code) == ("红桥区统计局", "120106")


def test_a_wrapped_preamble_never_becomes_the_agency() -> None:
    meta = extract_metadata(
        [
            "本报告根据《中华人民共和国政府信息公开条例》和《国务院办公厅政府信息与政务公开办公室关于印发",
            "定》)和《关于印发中华人民共和国",
            "政府信息公开工作年度报告格式的通知》编制。统计期限为2023年1月1日至2023年12月31日。",
        ]
    )
    assert (meta.agency, meta.year) == (None, 2023)
    assert [p.code for p in meta.problems] == ["agency_missing"]


def test_body_names_the_agency_inside_a_longer_phrase() -> None:
    meta = extract_metadata(
        ["统计期限为2023年1月1日至2023年12月31日。"],
        overview=["调整充实了互助县就业服务局政府信息公开工作领导小组，明确专人负责。"],
    )
    assert (meta.agency, meta.agency_source) == ("互助县就业服务局", "body")
    meta = extract_metadata(["我局（互助县就业服务局）2023年主动公开政府信息70条。"])
    assert (meta.agency, meta.agency_source) == ("互助县就业服务局", "body")


def test_preamble_with_the_year_before_the_agency() -> None:
    meta = extract_metadata(["现将2023年度互助县就业服务局政府信息公开工作情况报告如下。"])
    assert (meta.agency, meta.agency_source, meta.year) == ("互助县就业服务局", "preamble", 2023)


def test_page_title_with_a_site_separator_names_the_agency() -> None:
    # A report printed to PDF from a web page carries the page's <title> as its Title.
    meta = extract_metadata(
        ["统计期限为2023年1月1日至2023年12月31日。"],
        title="互助县就业服务局-2023年度政府信息公开工作年度报告_海东市人民政府",
    )
    assert (meta.agency, meta.agency_source, meta.year) == ("互助县就业服务局", "properties", 2023)


def test_docx_without_a_printed_title_is_named_by_its_properties() -> None:
    word = docx.Document(str(SAMPLES / "huzhu-employment-2023.docx"))
    body = word.element.body
    # Drop everything before 一、总体情况: the printed title and the preamble that names the body.
    for paragraph in list(word.paragraphs):
        if paragraph.text.startswith("一、总体情况"):
            break
        body.remove(paragraph._element)
    buffer = io.BytesIO()
    word.save(buffer)
    parsed = parse_bytes(buffer.getvalue(), "report.docx").to_json()
    assert (parsed["agency"], parsed["agency_source"], parsed["year"]) == (
        "互助县就业服务局",
        "properties",
        2023,
    )


def test_pdf_printed_from_a_web_page_without_its_title(tmp_path: Path) -> None:
    """The seed's web page with its printed title and preamble cut, printed to PDF by
    LibreOffice: the page's <title> becomes the PDF's Title, the only place naming the body."""
    soffice = find_soffice()
    if soffice is None:
        pytest.skip("LibreOffice is not installed (.ci/system-packages.sh installs it)")
    page = (SAMPLES / "huzhu-employment-2023.html").read_bytes().decode("gbk")
    cut_from = page.index('<p align="center"><strong>互助县就业服务局')
    cut_to = page.rindex("<", 0, page.index("一、总体情况"))
    page = (page[:cut_from] + page[cut_to:]).replace('charset="gbk"', 'charset="utf-8"')
    (tmp_path / "report.html").write_text(page, "utf-8")
    subprocess.run(
        [
            soffice,
            f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}",
            "--headless",
            "--convert-to",
            "pdf:writer_web_pdf_Export",
            "--outdir",
            str(tmp_path),
            str(tmp_path / "report.html"),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    parsed = parse_file(str(tmp_path / "report.pdf")).to_json()
    assert parsed["status"] == "parsed"
    assert (parsed["agency"], parsed["agency_source"], parsed["year"]) == (
        "互助县就业服务局",
        "properties",
        2023,
    )
    assert parsed["region_code"] == "630223"


def test_pdf_properties_are_read_in_their_own_encoding() -> None:
    # The Huai'an PDF stores its Title as UTF-16; the huzhu one names its author.
    assert read_pdf((SAMPLES / "01_huaian_shizhengfu_2024.pdf").read_bytes()).title == (
        "政府信息公开工作年度报告"
    )
    huzhu = read_pdf((SAMPLES / "huzhu-employment-2023.pdf").read_bytes())
    assert huzhu.author == "互助县就业服务局"


def test_text_converted_by_another_tool_keeps_agency_and_year() -> None:
    with pdfplumber.open(SAMPLES / "01_huaian_shizhengfu_2024.pdf") as pdf:
        text = "\n".join(page.extract_text() or "" for page in pdf.pages)
    parsed = _parse_text(text)
    assert (parsed["agency"], parsed["year"], parsed["region_code"]) == (
        "淮安市人民政府",
        2024,
        "320800",
    )


def test_one_agency_with_and_without_its_city() -> None:
    short = resolve_agency("洪泽区人民政府", 2023)
    full = resolve_agency("淮安市洪泽区人民政府", 2024)
    assert short is not None and full is not None
    assert short.key == full.key
    assert short.canonical == full.canonical == "淮安市洪泽区人民政府"
    assert (full.region_code, full.level, full.kind) == ("320813", "县", "government")
    assert (full.province, full.city, full.county) == ("江苏省", "淮安市", "洪泽区")


@pytest.mark.parametrize(
    "name, code",
    [("本溪市人民政府", "210500"), ("将乐县人民政府", "350428"), ("和平区人民政府", None)],
)
def test_places_that_begin_with_a_function_word(name: str, code: str | None) -> None:
    agency = resolve_agency(name)
    assert agency is not None and agency.region_code == code  # 和平区: Tianjin or Shenyang


def test_short_county_name_and_department_resolve() -> None:
    agency = resolve_agency("互助县就业服务局")
    assert agency is not None
    assert (agency.region_code, agency.level, agency.kind) == ("630223", "县", "department")
    assert agency.canonical == "海东市互助土族自治县就业服务局"


def test_ambiguous_place_needs_the_portal_region() -> None:
    unplaced = resolve_agency("鼓楼区人民政府")
    assert unplaced is not None
    assert (unplaced.level, unplaced.region_code) == ("县", None)
    placed = resolve_agency("鼓楼区人民政府", region_hint="福建省")
    assert placed is not None and placed.region_code == "350102"


def test_place_renamed_since_resolves_in_its_own_year() -> None:
    # 洪泽县 became 洪泽区 in 2016: a 2015 report resolves against the 2015 code list.
    old = resolve_agency("洪泽县人民政府", 2015)
    assert old is not None and (old.region_code, old.county) == ("320829", "洪泽县")


def test_levels_of_national_township_and_zone_bodies() -> None:
    assert resolve_agency("国家新闻出版署").level == "国家"
    town = resolve_agency("河包镇", region_hint="重庆市荣昌区")
    assert (town.level, town.kind, town.region_code) == ("乡", "township", "500153")
    zone = resolve_agency("平潭综合实验区管委会")
    assert zone.key == resolve_agency("平潭综合实验区").key
    assert (zone.region_code, zone.kind) == ("350128", "development_zone")


@pytest.mark.parametrize("text", ["我局", "本机关", "统计局", "区统计局", "关于印发中华人民共和国"])
def test_not_an_agency(text: str) -> None:
    assert resolve_agency(text) is None


def test_every_override_zone_lies_in_a_listed_division() -> None:
    overrides = tomllib.loads((ROOT / "parsers" / "region_overrides.toml").read_text("utf-8"))
    for zone in overrides["zone"]:
        agency = resolve_agency(zone["name"])
        assert agency is not None, zone["name"]
        assert agency.region_code == zone["region_code"]
        assert agency.province is not None, zone["name"]  # the code is in the code table


def test_every_county_resolves_from_its_printed_names() -> None:
    """Over the whole code table: 'city + county' always resolves to the county, the county
    alone resolves to it or (a name shared by several counties) to no place, never another."""
    from nianbao.parsers.agency import code_table, newest_vintage

    table = code_table(newest_vintage())
    counties = [p for p in table.by_code.values() if p.tier == "县"]
    assert len(counties) > 2800
    wrong, unplaced = [], 0
    for county in counties:
        above = table.ancestors(county)[:-1]
        printed = "".join(p.name for p in above[-1:]) + county.name
        if resolve_agency(printed + "人民政府").region_code != county.code:
            wrong.append(printed)
        alone = resolve_agency(county.name + "教育局")
        if alone.region_code is None:
            unplaced += 1
        elif alone.region_code != county.code:
            wrong.append(county.name)
    assert wrong == []
    assert unplaced < 100  # 鼓楼区, 朝阳区 …: shared names wait for the portal's region


# Texts made of the pieces the body patterns turn on, runs long enough to pass their 40-character
# reach, and the stops and spaces that end a name.
_BODY_PIECES = st.sampled_from(
    [*"（(“我本局， 。", "以下简称", "政府信息公开", "工作", "领导小组", "XX县", "教育"]
    + ["长" * 10, "长" * 19]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_BODY_PIECES, max_size=40).map("".join))
@example("XX政府信息公开YY政府信息公开领导小组")
@example("长" * 41 + "政府信息公开工作领导小组")
@example("长" * 41 + "（以下简称“我局”）")
@example("XX政府信息公开领导小组，XX（以下简称我局）")
@example("长长长以下简称" + "长" * 33 + "（以下简称“我局”）")
@example("长" * 8 + "领导小组" + "长" * 28 + "政府信息公开工作领导小组")
@example("《条例》（以下简称《条例》），" + "长" * 39 + "（以下简称“本局”）")
def test_anchored_body_patterns_find_what_the_patterns_find(text: str) -> None:
    """The body patterns are tried only in reach of their fixed text, for speed: the names and
    places they find are the ones the plain patterns find, long runs and repeats included."""
    anchored = [pattern for pattern in _BODY_PATTERNS if isinstance(pattern, _Anchored)]
    assert len(anchored) == 2
    for pattern in anchored:
        found = [(m.span(), m.group(1)) for m in pattern.finditer(text)]
        assert found == [(m.span(), m.group(1)) for m in pattern.pattern.finditer(text)]
