"""Scanned and converted reports: OCR seconds per scanned page, and cell accuracy on the
fixtures made from the real samples (tests/fixtures/scans, tests/fixtures/markdown).

Run from the repository root (about 1–2 min on 2 cores):

    .venv/bin/python bench/bench_ocr.py
    .venv/bin/python bench/bench_ocr.py --repeat 3

For each scanned fixture (every PDF in tests/fixtures/scans: whole scans and text PDFs with
tables pasted as pictures) it prints the pages (or pictures) OCR read, the median seconds per
such page of the whole parse (`parse_file`: rasterise, deskew, grid, recognition, then the usual
stages), the same for the text sample it was made from (its PDF, or the HTML page printed to
make it; the baseline, in the same run), their ratio, and the share of gold cells right with
agency and year; then the totals. The OCR engine is loaded before timing (≈1 s once per
process); the peak RSS of the process is printed at the end.
"""

from __future__ import annotations

import argparse
import re
import resource
import statistics
import time
from pathlib import Path

from nianbao.flows.evaluate import read_gold, score_document
from nianbao.parsers import ocr
from nianbao.parsers.report import parse_file
from nianbao.parsers.result import ParseResult

ROOT = Path(__file__).resolve().parents[1]
SCANS = ROOT / "tests" / "fixtures" / "scans"
CONVERTED = ROOT / "tests" / "fixtures" / "markdown"


def timed(path: Path, repeat: int) -> tuple[float, ParseResult]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = parse_file(str(path))
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def gold_of(path: Path) -> dict:
    return read_gold(path.parent / (path.name.rsplit(".", 1)[0] + ".canon.json"))


def original_of(scan: Path) -> Path:
    """The sample a scan was made from: its PDF, or the HTML page printed to make it."""
    sample = ROOT / "samples" / scan.name.split(".")[0]
    pdf = sample.with_suffix(".pdf")
    return pdf if pdf.exists() else sample.with_suffix(".html")


def ocr_pages(result: ParseResult) -> int:
    """Pages (or pasted pictures) OCR read, from the `ocr_read` findings."""
    count = 0
    for problem in result.problems:
        if problem.code != "ocr_read":
            continue
        scanned = re.match(r"(\d+) image-only page", problem.message)
        count += int(scanned.group(1)) if scanned else 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="timed passes (median is shown)")
    args = parser.parse_args()
    ocr._engine()
    print(f"OCR threads: {ocr.threads()}")
    print(
        f"{'scanned fixture':44} {'OCR pages':>9} {'s/page':>7} {'text s/page':>11} {'ratio':>6}  cells"
    )
    total_pages = total_seconds = 0.0
    total_cells = total_right = 0
    for scan in sorted(SCANS.glob("*.pdf")):
        seconds, result = timed(scan, args.repeat)
        base, _ = timed(original_of(scan), args.repeat)
        pages = ocr_pages(result) or 1
        score = score_document(scan, gold_of(scan))
        meta = (
            "agency/year right" if not score.metadata_errors else "; ".join(score.metadata_errors)
        )
        # Per OCR'd page: the text baseline is the same document's parse, spread the same way.
        print(
            f"{scan.name:44} {pages:9d} {seconds / pages:7.2f} {base / pages:11.3f} "
            f"{seconds / base:6.0f}x  {score.right}/{score.cells} = {score.accuracy:.1%} ({meta})"
        )
        total_pages += pages
        total_seconds += seconds
        total_cells += score.cells
        total_right += score.right
    print(
        f"{'all scanned fixtures':44} {int(total_pages):9d} {total_seconds / total_pages:7.2f}"
        f"{'':21}{total_right}/{total_cells} = {total_right / total_cells:.1%}"
    )
    print()
    for converted in sorted(CONVERTED.glob("*.converted.md")):
        score = score_document(converted, gold_of(converted))
        print(f"{converted.name:44} cells {score.right}/{score.cells} = {score.accuracy:.1%}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
