"""bench/bench_parse.py times earlier commits next to this checkout (`--against`, by default
a97b3c2): it must read the results of both."""

from nianbao.parsers.report import parse_bytes

from .helpers import SAMPLES, load_bench


def test_the_bench_reads_a_typed_result_and_an_earlier_commits_dict():
    # Regression: after ParseResult became typed, the baseline side (a dict-returning commit)
    # failed in its warm-up with AttributeError, so the default run printed nothing.
    bench = load_bench("bench_parse")
    result = parse_bytes((SAMPLES / "huzhu-employment-2023.txt").read_bytes(), "bench")
    assert bench._outcome(result) == ("parsed", result.problems)
    as_json = result.to_json()
    assert bench._outcome(as_json) == ("parsed", as_json["problems"])
    broken = parse_bytes(b"%PDF-1.4 truncated", "broken.pdf").to_json()
    status, problems = bench._outcome(broken)
    assert status == "failed" and problems[0]["code"] == "corrupt_pdf"
