from nianbao.parsers.report import parse_file
from nianbao.parsers.result import Fact
from nianbao.schema.checks import run_checks

from .helpers import SAMPLES


def _failed(result: dict) -> set[tuple[str, str]]:
    return {(c["rule"], c["scope"]) for c in result["checks"] if not c["ok"]}


def test_printed_totals_that_do_not_add_up_are_findings_not_repairs():
    result = parse_file(str(SAMPLES / "04_shanghai_szfbgt_2019.html")).to_json()
    # The gold's consistency findings: 11 rows with a blank 总计, and the 总计 column of R2.
    assert _failed(result) == {("R2", "total")} | {
        ("R3", row)
        for row in [
            "granted",
            "partially_granted",
            "denied.state_secret",
            "denied.internal_affairs",
            "denied.process_information",
            "denied.query_matters",
            "unavailable.not_held",
            "unavailable.needs_creation",
            "unavailable.still_unclear",
            "not_processed.petition",
            "not_processed.repeated",
        ]
    }
    assert result["status"] == "parsed"


def test_r1_detail_shows_the_arithmetic():
    result = parse_file(str(SAMPLES / "huzhu-employment-2023.txt")).to_json()
    r1 = [c for c in result["checks"] if c["rule"] == "R1"]
    assert len(r1) == 7 and all(c["ok"] for c in r1)
    assert r1[0]["detail"] == "0+0 = 0+0"


def test_r4_per_group_of_table_four():
    facts = [
        Fact("review_litigation", "review", col, value, str(value or ""), col)
        for col, value in zip(
            ["upheld", "corrected", "other", "pending", "total"], [5, None, None, 2, 8], strict=True
        )
    ]
    [check] = run_checks(facts, "2019")
    assert (check.rule, check.scope, check.ok) == ("R4", "review", False)


def test_r6_prose_figures_against_table_cells():
    result = parse_file(str(SAMPLES / "04_shanghai_szfbgt_2019.html")).to_json()
    r6 = {c["scope"]: c for c in result["checks"] if c["rule"] == "R6"}
    assert r6["new_received"]["ok"] and "859" in r6["new_received"]["detail"]
    assert r6["review"]["ok"] and r6["litigation"]["ok"]
