"""Row and column mapping on real quirks: one test per quirk, named after it."""

import pytest

from nianbao.parsers.blocks import Cell, Table
from nianbao.parsers.report import parse_file
from nianbao.parsers.tables import extract_facts

from .helpers import REAL, SAMPLES, cells, gold


def _applications(rows: list[list[str]], version: str = "2021") -> dict:
    table = Table([[Cell(text) for text in row] for row in rows])
    extraction = extract_facts([table], ["applications"], version)
    return {f"{f.row}/{f.col}": f for f in extraction.facts}


def test_seed_text_every_cell_matches_gold():
    result = parse_file(str(SAMPLES / "huzhu-employment-2023.txt")).to_json()
    found = cells(result)
    for key, value in gold("huzhu-employment-2023.canon.json")["facts"].items():
        assert found[key]["value"] == value, key
    assert (result["agency"], result["year"], result["template"]) == (
        "互助县就业服务局",
        2023,
        "2021",
    )


def test_other_handling_printed_as_one_row_in_2021_template():
    found = cells(parse_file(str(SAMPLES / "huzhu-employment-2023.txt")).to_json())
    assert found["applications/other_handling/total"]["value"] == 0
    assert not any(k.startswith("applications/other_handling.") for k in found)


def test_typo_in_row_label_still_maps():
    facts = _applications(
        [["（三）不予公开", "2.其他法律行政止公开", "1", "0", "0", "0", "0", "0", "1"]]
    )
    assert facts["denied.prohibited_by_law/total"].value == 1


@pytest.mark.parametrize("numbering", ["1、", "1.", "1．", "（1）"])
def test_sub_row_numbering_styles(numbering):
    facts = _applications(
        [["（六）其他处理", f"{numbering}其他", "2", "0", "0", "0", "0", "0", "2"]]
    )
    assert facts["other_handling.other/natural_person"].value == 2


def test_missing_quotes_around_san_anquan():
    facts = _applications(
        [["（三）不予公开", "3.危及三安全一稳定", "5", "0", "0", "0", "0", "0", "5"]]
    )
    assert facts["denied.security_stability/natural_person"].value == 5


def test_local_extra_row_is_kept_with_an_extra_code():
    result = parse_file(str(REAL / "14_xiaogan_szfbgs_2020.partial.txt")).to_json()
    extra = [f for f in result["facts"] if f["row"].startswith("extra.")]
    assert {f["label"] for f in extra} == {"其他主动公开文件"}
    assert [f["value"] for f in extra][:2] == [56, 45]


def test_letter_spaced_applicant_headers_do_not_become_rows():
    result = parse_file(str(REAL / "16_chibi_pufang_yuanqu_2020.partial.txt")).to_json()
    rows = {f["row"] for f in result["facts"] if f["table"] == "applications"}
    assert rows == {"new_received", "carried_over"}


def test_applicant_header_split_over_two_rows():
    result = parse_file(str(REAL / "20_zhanjiang_xuwen_sfj_2023.partial.txt")).to_json()
    found = cells(result)
    assert found["applications/new_received/natural_person"]["value"] == 0
    assert found["applications/new_received/commercial"]["value"] is None
    assert found["applications/carried_over/total"]["value"] == 0


def test_blank_cells_dropped_from_a_row_are_reported_not_guessed():
    result = parse_file(str(REAL / "12_yueyang_nanhu_ju_2019.partial.txt")).to_json()
    assert not any(f["table"] == "applications" for f in result["facts"])
    assert any(
        p["code"] == "row_cells_missing" and "new_received" in p["message"]
        for p in result["problems"]
    )


def test_template_version_comes_from_the_table_not_the_year():
    result = parse_file(str(REAL / "22_unknown_xian_ju_2023_oldtemplate.partial.txt")).to_json()
    assert (result["year"], result["template"]) == (2023, "2019")
    assert "active_disclosure/rules/made" in cells(result)


# Row labels of the huaian report's table 三 as OCR read them off a degraded scan.
_GARBLED = {
    "denied.query_matters": "8.属子转越查询事项",
    "denied.process_information": "6.属于时美建税性体息",
    "total_processed": "七)基计",
}


def _huaian_applications(
    read_by_ocr: bool, garbled: dict[str, str] = _GARBLED, read_as_words: str | None = None
):
    """Table 三 of the huaian report, labels from the registry but for the `garbled` ones; the
    figures of row `read_as_words` read as words (日), as OCR reads blurred 11s."""
    from nianbao.schema.registry import template

    expected = gold("01_huaian_shizhengfu_2024.canon.json")["facts"]
    spec = template("2021").applications
    columns = [c.code for c in spec.columns]
    confidence = 0.97 if read_by_ocr else None
    rows = []
    for index, row in enumerate(spec.rows_for("2021")):
        if f"applications/{row.code}/total" not in expected:
            continue
        # Sub-rows are numbered within their group, as printed (3.其他).
        number = sum(1 for r in spec.rows_for("2021")[:index] if r.group and r.group == row.group)
        label = f"{number + 1}.{row.label}" if row.group else row.label
        label = garbled.get(row.code, label)
        values = [str(expected[f"applications/{row.code}/{c}"]) for c in columns]
        if row.code == read_as_words:
            values = ["日"] * len(values)
        # A sub-row carries its group's label (不予公开 …) in a cell before its own.
        labels = [Cell(spec.groups[row.group]), Cell(label)] if row.group else [Cell(label)]
        rows.append(labels + [Cell(v, confidence=confidence) for v in values])
    return extract_facts([Table(rows)], ["applications"], "2021"), expected


def test_an_ocr_label_garbled_past_the_match_is_the_next_row_it_is_clearly_like():
    extraction, expected = _huaian_applications(read_by_ocr=True)
    found = {f"applications/{f.row}/{f.col}": f.value for f in extraction.facts}
    for code in _GARBLED:
        assert found[f"applications/{code}/total"] == expected[f"applications/{code}/total"]
    assert not any(f.row.startswith("extra.") for f in extraction.facts)
    assert extraction.problems == []


def test_a_row_of_table_3_whose_figures_read_as_words_is_reported_not_dropped():
    # Regression: the scan of the Shanghai print-out read a row's 11s as 日; the row had no
    # value cells and vanished as if it were a header row.
    extraction, _ = _huaian_applications(
        read_by_ocr=True, garbled={}, read_as_words="denied.state_secret"
    )
    assert not any(f.row == "denied.state_secret" for f in extraction.facts)
    assert [p.code for p in extraction.problems] == ["row_values_unread"]
    assert extraction.problems[0].message.startswith("applications/denied.state_secret: the row")
    clean, _ = _huaian_applications(read_by_ocr=True, garbled={})
    assert clean.problems == []


def test_garbled_labels_in_text_are_placed_only_by_order_and_sums():
    misspelt = {"denied.query_matters": _GARBLED["denied.query_matters"]}
    extraction, _ = _huaian_applications(read_by_ocr=False, garbled=misspelt)
    found = {f"applications/{f.row}/{f.col}": f.value for f in extraction.facts}
    # 属子转越查询事项 is like its row, and R2 holds only with it there.
    assert found["applications/denied.query_matters/total"] == 105
    assert [p.code for p in extraction.problems] == ["row_placed_by_order"]
    # 属于时美建税性体息 is too unlike 属于四类过程性信息 for a printed text label: kept aside.
    unlike = {"denied.process_information": _GARBLED["denied.process_information"]}
    extraction, _ = _huaian_applications(read_by_ocr=False, garbled=unlike)
    assert not any(f.row == "denied.process_information" for f in extraction.facts)
    assert [p.code for p in extraction.problems] == ["row_label_unmatched"]
    assert any(f.row.startswith("extra.") for f in extraction.facts)


def _huaian_disclosure(garbled: dict[str, str]):
    """Table 二 of the huaian report as its PDF prints it, the rows in `garbled` (by label)
    given those labels and every cell of theirs an OCR confidence."""
    from nianbao.parsers.pdf import read_pdf

    document = read_pdf((SAMPLES / "01_huaian_shizhengfu_2024.pdf").read_bytes())
    tables = [block for block in document.blocks if isinstance(block, Table)][:2]
    for table in tables:
        for r, row in enumerate(table.rows):
            if row[0].text in garbled:
                table.rows[r] = [Cell(garbled[row[0].text], confidence=0.8)] + [
                    Cell(cell.text, confidence=0.99) for cell in row[1:]
                ]
    return extract_facts(tables, ["active_disclosure"] * len(tables), "2021")


def test_an_ocr_label_of_table_2_naming_no_row_is_placed_where_one_row_is_missing():
    extraction = _huaian_disclosure({"行政强制": "可以理制"})
    found = {(f.row, f.col): f.value for f in extraction.facts}
    assert found[("coercion", "decisions")] == 88283
    assert [p.code for p in extraction.problems] == ["row_placed_by_order"]
    assert "active_disclosure/coercion: the row '可以理制'" in extraction.problems[0].message
    # In print order, between 行政处罚 and 行政事业性收费.
    rows = [f.row for f in extraction.facts]
    assert rows.index("penalty") < rows.index("coercion") < rows.index("fees")


def test_two_ocr_labels_of_table_2_side_by_side_are_not_placed_by_order():
    # 行政处罚 and 行政强制 both unread: with no sums to check, the order alone cannot tell
    # whether one of two such rows is a local extra row. They stay extra rows, nothing guessed.
    extraction = _huaian_disclosure({"行政处罚": "行攻处司", "行政强制": "可以理制"})
    rows = {f.row for f in extraction.facts}
    assert not rows & {"penalty", "coercion"}
    assert sum(row.startswith("extra.") for row in rows) == 2
    assert not [p for p in extraction.problems if p.code == "row_placed_by_order"]
