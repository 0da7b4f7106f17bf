"""OCR of scanned reports: scans made from the real samples (tests/fixtures/scans/make_scans.py)
parse to their gold cells, every OCR'd value carries its confidence, digits are verified
against the printed sums, and `--no-ocr` leaves a scan `no_text_layer` as before."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import time
from itertools import pairwise

import numpy as np
import pypdfium2
import pytest

from nianbao.flows.evaluate import cell_matches, read_gold
from nianbao.harvest.rawstore import RawStore
from nianbao.parsers import ocr
from nianbao.parsers.ocr_check import verify_digits
from nianbao.parsers.pdf import read_pdf
from nianbao.parsers.pool import DocumentLimits, WorkItem, parse_all
from nianbao.parsers.report import parse_file
from nianbao.parsers.result import Fact, ParseResult

from .helpers import ROOT, SAMPLES

SCANS = ROOT / "tests" / "fixtures" / "scans"
HUZHU_SCAN = SCANS / "huzhu-employment-2023.scan.pdf"
HUAIAN_SCAN = SCANS / "01_huaian_shizhengfu_2024.scan.pdf"
HUAIAN_PICTURES = SCANS / "01_huaian_shizhengfu_2024.picture.pdf"
HUAIAN_HEAVY = SCANS / "01_huaian_shizhengfu_2024.heavy.pdf"
SHANGHAI_SCAN = SCANS / "04_shanghai_szfbgt_2019.scan.pdf"
HUAIAN_200 = SCANS / "01_huaian_shizhengfu_2024.scan200.pdf"
NIANBAO = str(ROOT / ".venv" / "bin" / "nianbao")


def gold(scan) -> dict:
    return read_gold(scan.with_name(scan.name.replace(".pdf", ".canon.json")))


def right_cells(result: dict, expected: dict) -> int:
    facts = {f.key: f for f in map(Fact.from_json, result["facts"])}
    return sum(cell_matches(value, facts.get(key)) for key, value in expected["facts"].items())


@pytest.fixture(scope="module")
def huzhu_scan() -> dict:
    return parse_file(str(HUZHU_SCAN)).to_json()


@pytest.fixture(scope="module")
def huaian_scan() -> dict:
    return parse_file(str(HUAIAN_SCAN)).to_json()


def test_a_scanned_word_report_parses_to_its_gold_cells(huzhu_scan: dict) -> None:
    expected = gold(HUZHU_SCAN)
    assert huzhu_scan["status"] == "parsed"
    assert (huzhu_scan["agency"], huzhu_scan["year"], huzhu_scan["template"]) == (
        "互助县就业服务局",
        2023,
        "2021",
    )
    assert right_cells(huzhu_scan, expected) >= 0.98 * len(expected["facts"])
    codes = {s["code"] for s in huzhu_scan["sections"]}
    assert {"overview", "active_disclosure", "applications", "review_litigation"} <= codes


def test_every_ocr_value_carries_its_confidence(huzhu_scan: dict) -> None:
    assert huzhu_scan["facts"]
    assert all(0 <= f["confidence"] <= 1 for f in huzhu_scan["facts"])
    read = [p for p in huzhu_scan["problems"] if p["code"] == "ocr_read"]
    assert len(read) == 1 and "4 image-only page(s)" in read[0]["message"]


def test_a_scanned_pdf_report_keeps_its_title_and_most_cells(huaian_scan: dict) -> None:
    expected = gold(HUAIAN_SCAN)
    assert (huaian_scan["agency"], huaian_scan["year"]) == ("淮安市人民政府", 2024)
    facts = {f.key: f for f in map(Fact.from_json, huaian_scan["facts"])}
    # Large figures of table 三, read from a 150 dpi, skewed, noisy JPEG.
    for key in (
        "applications/new_received/natural_person",
        "applications/new_received/total",
        "applications/granted/total",
        "active_disclosure/penalty/decisions",
        "active_disclosure/fees/amount_10k_yuan",
    ):
        assert cell_matches(expected["facts"][key], facts.get(key)), key
    assert right_cells(huaian_scan, expected) >= 0.99 * len(expected["facts"])


def test_a_value_a_failing_sum_takes_part_in_is_read_again_from_its_image(
    huaian_scan: dict,
) -> None:
    # 454 read as 151: neither 4 was among the digits the recogniser allowed, so no reading of
    # the first pass could make a sum hold. R2 of the total column fails; its values are read
    # again from their cells' images (bolder, lighter, larger …), one of which reads 454.
    facts = {f.key: f for f in map(Fact.from_json, huaian_scan["facts"])}
    fact = facts["applications/partially_granted/total"]
    assert (fact.value, fact.ocr_reading) == (454, "151")
    corrected = [p["message"] for p in huaian_scan["problems"] if p["code"] == "ocr_corrected"]
    (message,) = [
        m for m in corrected if m.startswith("applications/partially_granted/total: read '151'")
    ]
    assert "contradicted by a re-read of the cell image" in message
    # Values whose sums hold are not read again, nor changed.
    assert facts["applications/partially_granted/natural_person"].ocr_reading is None


@pytest.fixture(scope="module")
def shanghai_scan() -> dict:
    return parse_file(str(SHANGHAI_SCAN)).to_json()


def test_a_scanned_web_page_print_out_parses_to_its_gold_cells(shanghai_scan: dict) -> None:
    # The HTML report as Chromium prints it: double ruling lines (cellspacing), table 三 cut
    # over three pages, its group label 三、本年度办理结果 left with no rule below it at a break.
    result = shanghai_scan
    expected = gold(SHANGHAI_SCAN)
    assert (result["agency"], result["year"], result["template"]) == (
        "上海市人民政府办公厅",
        2019,
        "2019",
    )
    assert right_cells(result, expected) >= 0.99 * len(expected["facts"])
    facts = {f.key: f for f in map(Fact.from_json, result["facts"])}
    # Read once each: the open cell's box holds the rows beside it, its own pixels do not.
    assert "予以公开" in facts["applications/granted/natural_person"].label
    assert facts["applications/granted/natural_person"].value == 258
    # A lone digit beside a double rule, and a blank cell: the paler line is no 1.
    assert facts["applications/denied.internal_affairs/natural_person"].raw == "5"
    assert cell_matches("", facts.get("applications/denied.security_stability/natural_person"))
    # The page after a break opens on rows whose values are blank: they continue table 三.
    for key in (
        "applications/not_processed.excessive/natural_person",
        "applications/total_processed/total",
        "applications/carried_forward/total",
    ):
        assert cell_matches(expected["facts"][key], facts.get(key)), key


def test_a_blurred_number_read_surely_as_a_word_is_read_again_as_digits(tmp_path) -> None:
    # At 200 dpi, skewed 1.5°, the 11 of 2.没有现成信息需要另行制作 in table 三 reads as 日 with
    # confidence 0.91; its column holds numbers, so it is read again as digits (11, surely).
    source = pypdfium2.PdfDocument(str(HUAIAN_200))
    page = pypdfium2.PdfDocument.new()
    page.import_pages(source, [3])
    path = tmp_path / "table-page.pdf"
    page.save(str(path))
    page.close()
    source.close()
    rows = [row for table in read_pdf(path.read_bytes()).tables() for row in table.rows]
    row = next(row for row in rows if any("另行制作" in cell.text for cell in row))
    label = next(i for i, cell in enumerate(row) if "另行制作" in cell.text)
    assert row[label + 1].text == "11"


@pytest.fixture(scope="module")
def huaian_heavy() -> dict:
    return parse_file(str(HUAIAN_HEAVY)).to_json()


def test_a_heavily_degraded_scan_keeps_its_rows_by_order_and_sums(huaian_heavy: dict) -> None:
    # Fainter ink, more blur, noise and JPEG loss: most row labels of table 三 come out garbled.
    result = huaian_heavy
    expected = gold(HUAIAN_HEAVY)
    assert (result["agency"], result["year"]) == ("淮安市人民政府", 2024)
    facts = {f.key: f for f in map(Fact.from_json, result["facts"])}
    # Rows whose labels OCR garbled (（七）总计 read as (七)要计), found by the template's order.
    for key in ("applications/total_processed/total", "applications/carried_forward/total"):
        assert cell_matches(expected["facts"][key], facts.get(key)), key
    assert "总计" not in facts["applications/total_processed/total"].label
    # Rows whose labels are past recognition are not guessed where the sums do not agree.
    unmatched = [p for p in result["problems"] if p["code"] == "row_label_unmatched"]
    assert all("not mapped" in p["message"] for p in unmatched)
    assert not any(f["row"].startswith("extra.") for f in result["facts"])
    # （一）予以公开 read as 手以会票: with it in place a misread 4 (read 1) elsewhere breaks a sum
    # that held by chance; judged with the digits the sums mend, the row stands.
    placed = [p["message"] for p in result["problems"] if p["code"] == "row_placed_by_order"]
    assert any(m.startswith("applications/granted:") for m in placed)
    for key in ("applications/granted/natural_person", "applications/total_processed/other_org"):
        assert cell_matches(expected["facts"][key], facts.get(key)), key
    # A total read right is not mended to cover a misread elsewhere its own row contradicts.
    assert facts["applications/other_handling.other/total"].value == 110
    # Table 四 under a header row OCR could not read.
    assert facts["review_litigation/review/total"].value == 351
    assert right_cells(result, expected) >= 0.99 * len(expected["facts"])


def test_a_shaded_row_does_not_break_the_grid_of_the_rows_around_it(huaian_heavy: dict) -> None:
    # The grey band 第二十条 第（八）项 below 行政强制 88283: its grain thresholded as ink joined
    # the rules along it into a band too thick to be a rule, and the row read the band's noise
    # into its cells. With the fill divided out, the rules and the row stand.
    facts = {f.key: f for f in map(Fact.from_json, huaian_heavy["facts"])}
    assert facts["active_disclosure/coercion/decisions"].value == 88283
    assert facts["active_disclosure/penalty/decisions"].value == 3985758
    assert not [p for p in huaian_heavy["problems"] if p["code"] == "row_values_unread"]
    # Every row of table 二 is read once, by its label: the slivers between the skewed frame
    # and the table's box are no cells (they read a shaded row's text a second time).
    rows = [f["row"] for f in huaian_heavy["facts"] if f["table"] == "active_disclosure"]
    assert sorted(set(rows)) == [
        "coercion",
        "fees",
        "licensing",
        "normative_documents",
        "penalty",
        "rules",
    ]


def test_two_equal_digits_the_recogniser_ran_into_one_are_read_apart(huaian_heavy: dict) -> None:
    # 11 read as 1 in both cells of one row (its own sum still held, the column's did not), and
    # 110 read as 10: the ink shows one glyph more than the digits read.
    facts = {f.key: f for f in map(Fact.from_json, huaian_heavy["facts"])}
    for column in ("natural_person", "total"):
        assert facts[f"applications/unavailable.needs_creation/{column}"].value == 11
    assert facts["applications/other_handling.other/total"].value == 110
    # Set apart, the glyphs read otherwise than the recogniser did: another reading, which
    # the printed sums took, saying so.
    corrected = [p["message"] for p in huaian_heavy["problems"] if p["code"] == "ocr_corrected"]
    for key, reading in (
        ("applications/unavailable.needs_creation/natural_person", "1"),
        ("applications/unavailable.needs_creation/total", "1"),
        ("applications/other_handling.other/total", "10"),
    ):
        assert facts[key].ocr_reading == reading
        (message,) = [m for m in corrected if m.startswith(f"{key}: read {reading!r}")]
        assert "contradicted by a re-read of the cell image" in message
    # With them right, the sums place the row of 重复申请 (label read as 2.业复中话).
    assert facts["applications/not_processed.repeated/total"].value == 25


def test_a_glyph_broken_by_a_faint_stroke_is_read_whole(huaian_heavy: dict) -> None:
    # A blurred 2 whose foot a faint diagonal parted from its top: the top alone read as 9.
    facts = {f.key: f for f in map(Fact.from_json, huaian_heavy["facts"])}
    assert facts["applications/other_handling.other/commercial"].value == 2
    assert ocr._joined_fragments([(0, 9), (11, 16), (40, 55)]) == [(0, 16), (40, 55)]
    # Two lines of a label, however close, stay two.
    assert ocr._joined_fragments([(0, 15), (18, 33)]) == [(0, 15), (18, 33)]


def test_a_cell_merged_over_rows_and_columns_is_kept_whatever_its_shape() -> None:
    # Table 三 of the huaian scan, its rules painted out to merge six cells into an L: the row
    # of 3.危及"三安全一稳定" over four value columns (5 0 0 0) and, under its first, the cells of
    # the next two rows (6, 7). The L fills less of its box than a cell must (the slivers
    # between a skewed frame and its box do too), but it lies inside the frame and is as tall
    # as rows: it is a cell, and its text is read, not dropped.
    scan = pypdfium2.PdfDocument(str(HUAIAN_SCAN))
    gray, _ = ocr._render(scan[3], None)
    scan.close()
    clean = ocr._normalise(ocr._rotate(gray, ocr._skew_angle(gray)))
    grid = ocr._find_grid(clean)
    table = max(grid.tables, key=lambda box: box[3] - box[1])

    def cell_at(cells, x: int, y: int):
        return next(
            (box, region)
            for box, region in cells
            if box[0] <= x < box[2] and box[1] <= y < box[3] and region[y - box[1], x - box[0]]
        )

    cells = ocr._cells(grid.mask, table)
    top = [cell_at(cells, x, 1750)[0] for x in (760, 860, 960, 1070)]
    under = [cell_at(cells, 760, y)[0] for y in (1820, 1885)]
    drawn = clean.copy()
    for left, right in pairwise(top):  # the rules between the top row's cells
        drawn[left[1] : left[3], left[2] : right[0]] = 255
    for upper, lower in pairwise([top[0], *under]):  # the rules under the first cell
        drawn[upper[3] : lower[1], upper[0] : upper[2]] = 255
    merged_grid = ocr._find_grid(drawn)
    merged_table = max(merged_grid.tables, key=lambda box: box[3] - box[1])
    merged = ocr._cells(merged_grid.mask, merged_table)
    box, region = cell_at(merged, 760, 1750)
    assert box[:2] <= top[0][:2] and box[2] >= top[-1][2] and box[3] >= under[-1][3]
    assert region.mean() < ocr._CELL_FILL  # what the fill test alone would have dropped
    assert not region[1820 - box[1], 960 - box[0]]  # the notch of the L is another cell's
    assert len(merged) == len(cells) - 5
    image, ink = ocr._without_grid(drawn, merged_grid)
    lines = ocr._cell_lines(image, ink, box, region)
    # A line in each row of the L, read from it.
    for (_, (_, y0, _, y1)), row in zip(lines, [top[0], *under], strict=True):
        assert row[1] <= y0 < y1 <= row[3]
    read = ["".join(t for t, _, _ in r.chars) for r in ocr._recognise([c for c, _ in lines])]
    assert len(read) == 3 and read[0].startswith("5") and read[1:] == ["6", "7"]


def test_tables_pasted_as_pictures_into_a_text_pdf_are_read() -> None:
    result = parse_file(str(HUAIAN_PICTURES)).to_json()
    expected = gold(HUAIAN_PICTURES)
    pages = sorted(p["page"] for p in result["problems"] if p["code"] == "ocr_read")
    assert pages == ["3", "4", "5"]
    facts = {f.key: f for f in map(Fact.from_json, result["facts"])}
    for key in (
        "active_disclosure/licensing/decisions",
        "active_disclosure/penalty/decisions",
        "active_disclosure/fees/amount_10k_yuan",
    ):
        assert cell_matches(expected["facts"][key], facts.get(key)), key
        assert facts[key].confidence is not None
    # The text tables keep their exact text: no confidence on them.
    assert facts["applications/new_received/total"].confidence is None
    assert facts["applications/new_received/total"].value == 3119
    assert right_cells(result, expected) >= 0.95 * len(expected["facts"])


def test_without_ocr_a_scan_has_no_text_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIANBAO_OCR", "off")
    result = parse_file(str(HUZHU_SCAN)).to_json()
    assert result["status"] == "failed"
    assert [p["code"] for p in result["problems"]] == ["no_text_layer"]


def test_the_no_ocr_option_of_parse() -> None:
    run = subprocess.run(
        [NIANBAO, "parse", "--no-ocr", "--json", str(HUAIAN_SCAN)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert run.returncode == 1
    assert json.loads(run.stdout)["problems"][0]["code"] == "no_text_layer"


def test_skew_is_measured_on_a_rotated_page() -> None:
    page = pypdfium2.PdfDocument(str(SAMPLES / "01_huaian_shizhengfu_2024.pdf"))[3]
    gray = np.ascontiguousarray(page.render(scale=150 / 72, grayscale=True).to_numpy())
    for angle in (1.3, -0.7):
        assert ocr._skew_angle(ocr._rotate(gray, -angle)) == pytest.approx(angle, abs=0.15)


# --- digits verified by the printed sums, on the real facts of the huaian report -------------


def real_facts() -> list[Fact]:
    return list(parse_file(str(SAMPLES / "01_huaian_shizhengfu_2024.pdf")).facts)


def unsure(facts: list[Fact], key: str, raw: str, alternatives: tuple[str, ...]) -> int:
    """Make the fact at `key` an unsure OCR reading `raw`; return its index in `facts`."""
    index = next(i for i, f in enumerate(facts) if f.key == key)
    value = float(raw) if "." in raw else int(raw)
    facts[index] = dataclasses.replace(
        facts[index], raw=raw, value=value, confidence=0.6, alternatives=alternatives
    )
    return index


def test_a_misread_digit_is_corrected_where_one_reading_makes_the_sums_hold() -> None:
    facts = real_facts()
    index = unsure(facts, "applications/partially_granted/total", "154", ("454", "754"))
    findings = verify_digits(facts, "2021")
    fact = facts[index]
    assert [f.code for f in findings] == ["ocr_corrected"]
    assert "'154'" in findings[0].message and "'454'" in findings[0].message
    assert (fact.value, fact.raw, fact.ocr_reading) == (454, "454", "154")
    assert fact.to_json()["ocr_reading"] == "154"


def test_a_misread_digit_no_reading_repairs_is_kept_and_reported() -> None:
    facts = real_facts()
    index = unsure(facts, "applications/partially_granted/total", "154", ("184", "754"))
    findings = verify_digits(facts, "2021")
    fact = facts[index]
    assert [f.code for f in findings] == ["ocr_low_confidence"]
    assert "do not hold" in findings[0].message
    assert (fact.value, fact.ocr_reading) == (154, None)


def test_with_another_misread_read_sure_each_sum_is_mended_on_its_own() -> None:
    facts = real_facts()
    index = unsure(facts, "applications/partially_granted/total", "154", ("454", "754"))
    # A misread the recogniser was sure of (no other reading): R2's total can never hold, so no
    # set of readings makes every sum hold; R3 of the row alone is mended by 454.
    at = next(i for i, f in enumerate(facts) if (f.row, f.col) == ("granted", "total"))
    facts[at] = dataclasses.replace(facts[at], raw="1562", value=1562, confidence=0.99)
    findings = verify_digits(facts, "2021")
    fact, sure = facts[index], facts[at]
    assert [f.code for f in findings] == ["ocr_corrected"]
    assert "R3 partially_granted" in findings[0].message
    assert (fact.value, fact.ocr_reading) == (454, "154")
    assert sure.value == 1562 and sure.ocr_reading is None


def test_a_reading_that_mends_one_sum_but_not_its_own_row_is_not_taken() -> None:
    facts = real_facts()
    # 2 read sure as 9 (its row's sum fails) and 11 read unsure as 1 (the column 合计 falls 10
    # short). 110 → 120 would make the column's sum hold by a chance meeting of the two
    # misreads, while its own row (108 + 9 ≠ 120), all read sure but it, still says no.
    at = next(i for i, f in enumerate(facts) if f.key.endswith("other_handling.other/commercial"))
    facts[at] = dataclasses.replace(facts[at], raw="9", value=9, confidence=0.99)
    unsure(facts, "applications/unavailable.needs_creation/total", "1", ())
    index = unsure(facts, "applications/other_handling.other/total", "110", ("120",))
    findings = verify_digits(facts, "2021")
    assert [f.code for f in findings] == ["ocr_low_confidence", "ocr_low_confidence"]
    assert (facts[index].value, facts[index].ocr_reading) == (110, None)


def test_a_sum_two_readings_could_mend_is_not_guessed() -> None:
    facts = real_facts()
    # 72 + 64 + 178 + 37 = 351: a total read 352 could be 351, or 64 could be 65; no other sum
    # tells which.
    total = unsure(facts, "review_litigation/review/total", "352", ("351",))
    corrected = unsure(facts, "review_litigation/review/corrected", "64", ("65",))
    findings = verify_digits(facts, "2021")
    assert [f.code for f in findings] == ["ocr_low_confidence", "ocr_low_confidence"]
    assert (facts[total].value, facts[corrected].value) == (352, 64)


def test_an_unsure_value_the_sums_confirm_needs_no_finding() -> None:
    facts = real_facts()
    unsure(facts, "applications/granted/natural_person", "1288", ("1280",))
    assert verify_digits(facts, "2021") == []


def test_an_unsure_value_no_sum_checks_is_reported() -> None:
    facts = real_facts()
    index = unsure(facts, "active_disclosure/penalty/decisions", "3985758", ("3985759",))
    findings = verify_digits(facts, "2021")
    fact = facts[index]
    assert [f.code for f in findings] == ["ocr_low_confidence"]
    assert "no printed sum checks it" in findings[0].message
    assert fact.value == 3985758


def reread_otherwise(facts: list[Fact], key: str, raw: str, rereads: tuple[str, ...]) -> int:
    """Make the fact at `key` a sure OCR reading `raw` that a re-read of its cell image
    (its glyphs set apart) read as `rereads`; return its index in `facts`."""
    index = next(i for i, f in enumerate(facts) if f.key == key)
    facts[index] = dataclasses.replace(
        facts[index], raw=raw, value=int(raw), confidence=0.97, rereads=rereads
    )
    return index


def test_a_reading_a_re_read_contradicts_is_replaced_only_where_the_sums_prefer_it() -> None:
    facts = real_facts()
    # 11 read surely as 1 in both cells of its row (the row's own sum holds, the columns' do
    # not), their glyphs set apart read 11; and a misread 454 elsewhere the recogniser allowed
    # for. The recogniser's readings settle first, then the re-reads make every sum hold.
    cells = [
        reread_otherwise(facts, f"applications/unavailable.needs_creation/{column}", "1", ("11",))
        for column in ("natural_person", "total")
    ]
    misread = unsure(facts, "applications/partially_granted/total", "154", ("454", "754"))
    findings = verify_digits(facts, "2021")
    assert [f.code for f in findings] == ["ocr_corrected"] * 3
    assert [(facts[i].value, facts[i].ocr_reading) for i in cells] == [(11, "1"), (11, "1")]
    assert (facts[misread].value, facts[misread].ocr_reading) == (454, "154")
    reread = [f.message for f in findings if "needs_creation" in f.message]
    assert all("contradicted by a re-read of the cell image ('11')" in m for m in reread)
    assert "re-read" not in next(f.message for f in findings if "partially_granted" in f.message)


def test_a_sure_reading_the_sums_confirm_is_kept_whatever_a_re_read_says() -> None:
    facts = real_facts()
    # Glyphs set apart read a speck as an 8 more: every sum 1288 takes part in holds.
    index = reread_otherwise(facts, "applications/granted/natural_person", "1288", ("12888",))
    assert verify_digits(facts, "2021") == []
    assert (facts[index].value, facts[index].ocr_reading) == (1288, None)


def test_a_reading_a_re_read_contradicts_that_no_reading_repairs_is_reported() -> None:
    facts = real_facts()
    index = reread_otherwise(facts, "review_litigation/review/total", "352", ("353",))
    findings = verify_digits(facts, "2021")
    assert [f.code for f in findings] == ["ocr_low_confidence"]
    assert findings[0].message == (
        "review_litigation/review/total: read '352' with confidence 0.97, contradicted by a "
        "re-read of the cell image ('353'), and kept (the printed sums do not hold)"
    )
    assert (facts[index].value, facts[index].ocr_reading) == (352, None)


def test_a_finding_names_a_few_re_readings_and_counts_the_rest() -> None:
    facts = real_facts()
    rereads = ("353", "358", "382", "852", "3520")
    index = reread_otherwise(facts, "review_litigation/review/total", "352", rereads)
    findings = verify_digits(facts, "2021")
    assert [f.code for f in findings] == ["ocr_low_confidence"]
    assert findings[0].message == (
        "review_litigation/review/total: read '352' with confidence 0.97, contradicted by a "
        "re-read of the cell image ('353', '358', '382' and 2 more), and kept (the printed "
        "sums do not hold)"
    )
    assert (facts[index].value, facts[index].rereads) == (352, rereads)


# --- OCR inside the parser workers: threads and the time limit ----------------------------------


def _first_page_scan(tmp_path) -> tuple[WorkItem, int]:
    """A one-page scan (the title page of the huzhu scan) as a work item in the raw store
    `tmp_path/raw`."""
    source = pypdfium2.PdfDocument(str(HUZHU_SCAN))
    single = pypdfium2.PdfDocument.new()
    single.import_pages(source, [0])
    path = tmp_path / "title-page.scan.pdf"
    single.save(str(path))
    sha256, key = RawStore(tmp_path / "raw").put_file(path)
    return WorkItem(sha256, key, path.name), len(single)


def test_the_time_limit_of_a_scan_grows_with_the_pages_ocr_reads(tmp_path) -> None:
    item, pages = _first_page_scan(tmp_path)
    raw = RawStore(tmp_path / "raw")
    results: list[ParseResult] = []
    # One second is too short to OCR a page; a minute more for each page read is enough.
    parse_all([item], 1, DocumentLimits(seconds=1, ocr_seconds_per_page=60), results.extend, raw)
    (result,) = (r.to_json() for r in results)
    assert not any(p["code"] == "parse_timeout" for p in result["problems"])
    assert any(p["code"] == "ocr_read" for p in result["problems"])
    assert result["year"] == 2023


def test_a_scan_over_its_time_limit_says_ocr_took_it(tmp_path) -> None:
    item, pages = _first_page_scan(tmp_path)
    raw = RawStore(tmp_path / "raw")
    results: list[ParseResult] = []
    started = time.monotonic()
    parse_all([item], 1, DocumentLimits(seconds=1, ocr_seconds_per_page=0.5), results.extend, raw)
    (result,) = (r.to_json() for r in results)
    assert result["status"] == "failed"
    assert [p["code"] for p in result["problems"]] == ["parse_timeout"]
    message = result["problems"][0]["message"]
    assert f"0.5 s for each of the {pages} page(s) read by OCR = 1.5 s" in message
    assert time.monotonic() - started < 60


def test_ocr_threads_are_the_workers_share_of_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    cores = os.cpu_count() or 1
    monkeypatch.delenv(ocr.THREADS_VARIABLE, raising=False)
    assert ocr.threads() == cores
    monkeypatch.setenv(ocr.THREADS_VARIABLE, "1")
    assert ocr.threads() == 1
    monkeypatch.setenv(ocr.THREADS_VARIABLE, str(cores + 8))
    assert ocr.threads() == cores
