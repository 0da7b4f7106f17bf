"""bench/bench_parse.py times earlier commits next to this checkout (`--against`, by default
a97b3c2): it must read the results of both."""

import importlib.util
import sys

from nianbao.parsers.report import parse_bytes

from .helpers import ROOT, SAMPLES


def _bench():
    spec = importlib.util.spec_from_file_location("bench_parse", ROOT / "bench" / "bench_parse.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_bench_reads_a_typed_result_and_an_earlier_commits_dict():
    # Regression: after ParseResult became typed, the baseline side (a dict-returning commit)
    # failed in its warm-up with AttributeError, so the default run printed nothing.
    bench = _bench()
    result = parse_bytes((SAMPLES / "huzhu-employment-2023.txt").read_bytes(), "bench")
    assert bench._outcome(result) == ("parsed", result.problems)
    as_json = result.to_json()
    assert bench._outcome(as_json) == ("parsed", as_json["problems"])
    broken = parse_bytes(b"%PDF-1.4 truncated", "broken.pdf").to_json()
    status, problems = bench._outcome(broken)
    assert status == "failed" and problems[0]["code"] == "corrupt_pdf"
