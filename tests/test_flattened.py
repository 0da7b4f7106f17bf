"""Tables whose cells ran together in a crawler's page text (平潭 2019/2021/2022)."""

from nianbao.parsers.flattened import decode_run, recover_table
from nianbao.parsers.report import parse_file
from nianbao.schema.checks import APPLICANT_COLUMNS

from .helpers import REAL, cells


def test_digit_run_split_where_only_one_split_fits_the_printed_total():
    found = cells(parse_file(str(REAL / "08_pingtan_2022.flat.txt")).to_json())
    row = [
        found[f"applications/new_received/{col}"]["value"] for col in (*APPLICANT_COLUMNS, "total")
    ]
    assert row == [71, 3, 0, 0, 0, 0, 74]


def test_sub_row_number_glued_to_the_previous_run_stays_with_its_label():
    found = cells(parse_file(str(REAL / "08_pingtan_2022.flat.txt")).to_json())
    assert found["applications/unavailable.not_held/natural_person"]["value"] == 37
    assert found["applications/other_handling.no_correction/total"]["value"] == 2


def test_ambiguous_run_is_reported_not_guessed():
    assert (
        decode_run("270020130", 7, None) is None
    )  # 27|0|0|2|0|1|30 and 2|7|0|0|20|1|30 both add up
    result = parse_file(str(REAL / "08_pingtan_2022.flat.txt")).to_json()
    assert "active_disclosure/normative_documents/issued" not in cells(result)
    assert any(p["code"] == "fused_cells" and "8855698" in p["message"] for p in result["problems"])


def test_space_separated_review_row_and_single_cell_rows():
    found = cells(parse_file(str(REAL / "08_pingtan_2022.flat.txt")).to_json())
    assert [
        found[f"review_litigation/review/{c}"]["value"]
        for c in ("upheld", "corrected", "other", "pending", "total")
    ] == [0, 1, 1, 0, 2]
    assert found["active_disclosure/licensing/decisions"]["value"] == 10690
    assert found["active_disclosure/fees/amount_10k_yuan"]["value"] == 9116.36


def test_label_repeated_mid_table_keeps_one_row_each():
    result = parse_file(str(REAL / "10_pingtan_2019.flat.txt")).to_json()
    found = cells(result)
    assert found["applications/unavailable.not_held/total"]["value"] == 7
    assert not any(p["code"] == "duplicate_row" for p in result["problems"])


def test_digits_after_a_row_name_in_prose_are_not_a_table():
    table, problems = recover_table(
        "active_disclosure", "全年办理行政许可1件，行政处罚2件。", "2021"
    )
    assert table is None and problems == []
