"""What a run costs before it does any work: time to the first line, and a run with nothing new.

    .venv/bin/python bench/bench_startup.py            # 3 runs of each, medians
    .venv/bin/python bench/bench_startup.py --runs 5

Ingests samples/ once into a new SQLite warehouse, then times `nianbao ingest samples/` (all six
documents unchanged) as a subprocess, interleaved:
- `temporary`: no PREFECT_API_URL, so each run starts (and stops) a temporary Prefect server;
- `server`: against a long-lived `prefect server start` on 127.0.0.1, started here.
For each it prints the seconds to the first line on stderr, to "Prefect ready", and to the end;
the `server` figures are also shown as a share of the `temporary` ones (same run, same machine).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def timed_run(args: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(first line, Prefect ready, end) in seconds since the start of `nianbao ARGS`."""
    started = time.monotonic()
    process = subprocess.Popen(
        [str(BIN / "nianbao"), *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = ready = None
    assert process.stderr is not None
    for line in process.stderr:
        now = time.monotonic() - started
        first = first if first is not None else now
        if "Prefect ready" in line:
            ready = now
    process.wait()
    end = time.monotonic() - started
    if process.returncode != 0:
        raise SystemExit(f"nianbao {' '.join(args)} exited {process.returncode}")
    return first or end, ready or end, end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nianbao-bench-startup-"))
    base = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    base["PREFECT_HOME"] = str(work / "prefect-home")
    base["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    args = [
        "ingest",
        "samples/",
        "--db",
        f"sqlite:///{work / 'w.db'}",
        "--raw-dir",
        str(work / "raw"),
    ]
    timed_run(args, base)  # loads the samples; every timed run then finds nothing new

    port = _free_port()
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=base,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with_server = {**base, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
    try:
        import httpx

        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).is_success:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the Prefect server did not start within 120 s")
            time.sleep(0.5)
        figures: dict[str, list[tuple[float, float, float]]] = {"temporary": [], "server": []}
        for _ in range(options.runs):
            figures["temporary"].append(timed_run(args, base))
            figures["server"].append(timed_run(args, with_server))
    finally:
        server.terminate()
        server.wait(timeout=30)

    medians = {
        mode: tuple(statistics.median(run[i] for run in runs) for i in range(3))
        for mode, runs in figures.items()
    }
    print(f"`nianbao ingest samples/` with nothing new, median of {options.runs} runs (seconds):")
    print(f"{'':>10} {'first line':>11} {'Prefect ready':>14} {'whole run':>10}")
    for mode, (first, ready, end) in medians.items():
        print(f"{mode:>10} {first:11.2f} {ready:14.2f} {end:10.2f}")
    ratio = medians["server"][2] / medians["temporary"][2]
    print(
        f"a run against a long-lived server takes {ratio:.2f}× the time of one that starts its own"
    )


if __name__ == "__main__":
    main()
