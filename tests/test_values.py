import pytest

from nianbao.parsers.values import parse_value


@pytest.mark.parametrize("raw", ["", " ", "\xa0", "—", "-", "/", "无", "不适用"])
def test_printed_blank_and_dashes_are_null_not_zero(raw):
    cell = parse_value(raw)
    assert cell.value is None and cell.readable


def test_zero_is_zero():
    assert parse_value("0").value == 0


def test_unit_inside_cell_is_parsed_and_kept():
    cell = parse_value("251000元")
    assert (cell.value, cell.unit, cell.raw) == (251000, "元", "251000元")


def test_decimal_amount_stays_decimal():
    assert parse_value("96171.6").value == 96171.6


def test_thousands_separators_and_full_width_digits():
    assert parse_value("3,985,758").value == 3985758
    assert parse_value("１２").value == 12


def test_unreadable_text_is_flagged_not_guessed():
    cell = parse_value("约三十")
    assert cell.value is None and not cell.readable
