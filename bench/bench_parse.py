"""Parse speed and memory per format on samples/, against pdfplumber's own extract_tables().

Run from the repository root (about 30 s on 2 cores):

    .venv/bin/python bench/bench_parse.py
    .venv/bin/python bench/bench_parse.py --repeat 9 --samples other/folder

What it measures, all in one invocation so that the ratios compare like with like on a noisy
machine:

- the whole parse (`parse_bytes`: bytes → the `parse --json` object) of every sample of each
  format (pdf, docx, html, txt): reports/s, ms/report and, for PDF, pages/s;
- the PDF reader alone (`read_pdf`), to show where the PDF time goes;
- the baseline: pdfplumber `page.extract_tables()` over every page of the same PDFs;
- peak memory: the tracemalloc peak of the worst single file (Python heap only) and the peak RSS
  of the process (interpreter, imports and native memory included);
- start-up: the wall time of `nianbao parse --json <a txt sample>` as a new process, against
  `python -c pass` and `python -c "import prefect"`.

Each side runs in a fresh process of its own (spawned, warmed up with one untimed pass), so peaks
do not mix; timed passes go round the sides in turn, so a burst of load from other users hits all
of them, and each figure is the median pass.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FORMATS = ("pdf", "docx", "html", "txt")
MIN_PASS_SECONDS = 0.3  # small formats loop over their files until a pass lasts this long

# --- the sides, each run in a worker process of its own ------------------------------------------

_blobs: list[bytes] = []
_run = None
_inner = 1


def _parse(data: bytes) -> None:
    from nianbao.parsers.report import parse_bytes

    result = parse_bytes(data, "bench")
    if result["status"] != "parsed":
        raise RuntimeError(f"a sample did not parse: {result['problems']}")


def _read_pdf(data: bytes) -> None:
    from nianbao.parsers.pdf import read_pdf

    read_pdf(data)


def _baseline(data: bytes) -> None:
    import pdfplumber

    with pdfplumber.open(io.BytesIO(data)) as pdf:
        for page in pdf.pages:
            page.extract_tables()


RUNNERS = {"parse": _parse, "read_pdf": _read_pdf, "baseline": _baseline}


def _start(runner: str, paths: list[str]) -> None:
    global _run, _blobs
    _run = RUNNERS[runner]
    _blobs = [Path(p).read_bytes() for p in paths]


def _warm_up() -> float:
    """One untimed pass (lazy imports, jieba, font caches); sets the loop count of a pass."""
    global _inner
    start = time.perf_counter()
    for data in _blobs:
        _run(data)
    seconds = time.perf_counter() - start
    _inner = max(1, round(MIN_PASS_SECONDS / max(seconds, 1e-6)))
    return seconds


def _timed_pass() -> float:
    """Seconds for one pass over every file, the mean over the pass's loops."""
    start = time.perf_counter()
    for _ in range(_inner):
        for data in _blobs:
            _run(data)
    return (time.perf_counter() - start) / _inner


def _memory() -> tuple[int, int]:
    # tracemalloc slows everything down several times, so it gets a pass of its own.
    heap_peak = 0
    tracemalloc.start()
    for data in _blobs:
        tracemalloc.reset_peak()
        _run(data)
        heap_peak = max(heap_peak, tracemalloc.get_traced_memory()[1])
    tracemalloc.stop()
    return heap_peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


# --- the driver ------------------------------------------------------------------------------------


@dataclass
class Side:
    name: str
    runner: str
    paths: list[str]
    pages: int = 0
    passes: list[float] | None = None
    heap_peak: int = 0
    rss_peak: int = 0

    @property
    def seconds(self) -> float:  # median pass over all files
        return statistics.median(self.passes)


def _pdf_pages(paths: list[str]) -> int:
    import pypdfium2

    total = 0
    for path in paths:
        pdf = pypdfium2.PdfDocument(path)
        total += len(pdf)
        pdf.close()
    return total


def measure(sides: list[Side], repeat: int) -> None:
    spawn = multiprocessing.get_context("spawn")
    pools = [
        ProcessPoolExecutor(1, mp_context=spawn, initializer=_start, initargs=(s.runner, s.paths))
        for s in sides
    ]
    try:
        for pool in pools:
            pool.submit(_warm_up).result()
        for side in sides:
            side.passes = []
        for _ in range(repeat):
            for side, pool in zip(sides, pools, strict=True):
                side.passes.append(pool.submit(_timed_pass).result())
        for side, pool in zip(sides, pools, strict=True):
            side.heap_peak, side.rss_peak = pool.submit(_memory).result()
    finally:
        for pool in pools:
            pool.shutdown()


def _wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT, timeout=120)
    return time.perf_counter() - start


def startup(txt_sample: Path, repeat: int) -> tuple[dict[str, float], bool]:
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        'python -c "import prefect"': [sys.executable, "-c", "import prefect"],
        f"nianbao parse --json {txt_sample.name}": [
            str(BIN / "nianbao"),
            "parse",
            "--json",
            str(txt_sample),
        ],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, cmd in commands.items():
            times[name].append(_wall(cmd))
    probe = (
        "import sys\nfrom nianbao.flows.cli import main\n"
        f"sys.argv = ['nianbao', 'parse', '--json', {str(txt_sample)!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('prefect' in sys.modules, file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    imports_prefect = done.stderr.strip().splitlines()[-1] == "True"
    return {name: statistics.median(t) for name, t in times.items()}, imports_prefect


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=ROOT / "samples")
    parser.add_argument("--repeat", type=int, default=5, help="timed passes per side")
    args = parser.parse_args()

    by_format = {fmt: sorted(str(p) for p in args.samples.glob(f"*.{fmt}")) for fmt in FORMATS}
    pdfs = by_format["pdf"]
    sides = [Side(fmt, "parse", paths) for fmt, paths in by_format.items() if paths]
    if pdfs:
        pages = _pdf_pages(pdfs)
        sides += [Side("pdf read only", "read_pdf", pdfs), Side("pdf baseline", "baseline", pdfs)]
        for side in sides:
            if side.paths is pdfs:
                side.pages = pages
    measure(sides, args.repeat)

    print(f"samples: {args.samples}; median of {args.repeat} timed passes, each side in a process")
    print("baseline: pdfplumber extract_tables() on every page of the same PDFs")
    head = f"{'':15}{'files':>6}{'pages':>6}{'reports/s':>11}{'ms/report':>11}{'pages/s':>9}"
    print(head + f"{'ms/page':>9}{'heap peak':>11}{'RSS peak':>10}")
    for s in sides:
        n = len(s.paths)
        line = (
            f"{s.name:15}{n:6d}{s.pages or '':>6}{n / s.seconds:11.1f}{1000 * s.seconds / n:11.1f}"
        )
        if s.pages:
            line += f"{s.pages / s.seconds:9.1f}{1000 * s.seconds / s.pages:9.1f}"
        else:
            line += f"{'':9}{'':9}"
        line += f"{s.heap_peak / 2**20:9.1f}MB{s.rss_peak / 2**20:8.1f}MB"
        print(line)
    named = {s.name: s for s in sides}
    if pdfs:
        ours, read, base = named["pdf"], named["pdf read only"], named["pdf baseline"]
        print(
            f"PDF whole parse vs baseline: {base.seconds / ours.seconds:.2f}x the speed "
            f"(reader only {base.seconds / read.seconds:.2f}x; the reader is "
            f"{read.seconds / ours.seconds:.0%} of the parse), "
            f"{ours.heap_peak / base.heap_peak:.2f}x the heap peak, "
            f"{ours.rss_peak / base.rss_peak:.2f}x the RSS peak"
        )

    txt = next(iter(by_format["txt"]), None)
    if txt:
        walls, imports_prefect = startup(Path(txt), args.repeat)
        base = walls["python -c pass"]
        print(
            f"\nstart-up, new process, median of {args.repeat} (wall s, and over `python -c pass`):"
        )
        for name, seconds in walls.items():
            print(f"  {name:45}{seconds:7.2f} s{seconds - base:+8.2f} s")
        print(f"  nianbao parse imports Prefect: {'YES' if imports_prefect else 'no'}")


if __name__ == "__main__":
    main()
