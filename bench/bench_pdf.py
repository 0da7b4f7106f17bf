"""Speed and memory of `read_pdf` against pdfplumber's `extract_tables()` on every page.

Run from the repository root:

    .venv/bin/python bench/bench_pdf.py            # all samples/*.pdf
    .venv/bin/python bench/bench_pdf.py --repeat 5 samples/01_huaian_shizhengfu_2024.pdf

Each side runs in a fresh process of its own, so its peak RSS is its own and neither warms the
other's caches; both run in the same invocation, so the ratio compares like with like on a noisy
machine. Peak RSS includes the interpreter and imports (and pdfium's native memory, which
tracemalloc cannot see); the tracemalloc figure is the Python heap of the worst single file.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import resource
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pdfplumber
import pypdfium2

from nianbao.parsers.pdf import read_pdf

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def _baseline(data: bytes) -> None:
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        for page in pdf.pages:
            page.extract_tables()


RUNNERS = {"read_pdf": read_pdf, "pdfplumber extract_tables": _baseline}


@dataclass
class Result:
    name: str
    pages: int
    seconds: float  # per pass over all files
    heap_peak: int  # bytes, worst single file
    rss_peak: int  # bytes, whole process

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.seconds


def measure(name: str, paths: list[str], repeat: int) -> Result:
    run = RUNNERS[name]
    blobs = [Path(p).read_bytes() for p in paths]
    pages = sum(len(pypdfium2.PdfDocument(data)) for data in blobs)
    for data in blobs:  # warm-up: lazy imports, font and CMap caches
        run(data)
    start = time.perf_counter()
    for _ in range(repeat):
        for data in blobs:
            run(data)
    seconds = (time.perf_counter() - start) / repeat
    # tracemalloc slows everything down several times, so it gets a pass of its own.
    heap_peak = 0
    tracemalloc.start()
    for data in blobs:
        tracemalloc.reset_peak()
        run(data)
        heap_peak = max(heap_peak, tracemalloc.get_traced_memory()[1])
    tracemalloc.stop()
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return Result(name, pages, seconds, heap_peak, rss_peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pdfs", nargs="*", help="PDF files (default: samples/*.pdf)")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes per side")
    args = parser.parse_args()
    paths = args.pdfs or sorted(str(p) for p in SAMPLES.glob("*.pdf"))

    results = []
    for name in RUNNERS:
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            results.append(pool.submit(measure, name, paths, args.repeat).result())

    print(f"{len(paths)} file(s), {results[0].pages} pages, mean of {args.repeat} timed passes")
    print(f"{'':28}{'pages/s':>10}{'ms/page':>10}{'heap peak':>12}{'RSS peak':>12}")
    for r in results:
        print(
            f"{r.name:28}{r.pages_per_second:10.1f}{1000 / r.pages_per_second:10.1f}"
            f"{r.heap_peak / 2**20:10.1f}MB{r.rss_peak / 2**20:10.1f}MB"
        )
    ours, base = results
    print(
        f"read_pdf vs baseline: {ours.pages_per_second / base.pages_per_second:.2f}x the speed, "
        f"{ours.heap_peak / base.heap_peak:.2f}x the heap peak, "
        f"{ours.rss_peak / base.rss_peak:.2f}x the RSS peak"
    )


if __name__ == "__main__":
    main()
