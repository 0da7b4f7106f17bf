"""bench/bench_scale.py reads how long a run's parser workers were parsing from their threads'
times in /proc, and parse only's from its workers' own: the share of a run outside parsing that
issue 14 reads comes from the two."""

import multiprocessing
import shutil
import time
from dataclasses import replace

import pytest

from .helpers import SAMPLES, load_bench


def _parse_then_idle(cpu_seconds: float, used, busy_done) -> None:
    """A stand-in parser worker: its main thread runs `cpu_seconds` of CPU, then sleeps."""
    while time.thread_time() < cpu_seconds:
        pass
    used.value = time.thread_time()
    busy_done.set()
    time.sleep(30)


def test_the_watch_reads_the_parsing_threads_cpu_of_a_spawned_worker():
    bench = load_bench("bench_scale")
    spawn = multiprocessing.get_context("spawn")
    used, busy_done = spawn.Value("d", 0.0), spawn.Event()
    worker = spawn.Process(target=_parse_then_idle, args=(1.0, used, busy_done), daemon=True)
    started = time.perf_counter()
    watch = bench.ProcessWatch(multiprocessing.current_process().pid, started, interval=0.05)
    worker.start()
    try:
        assert busy_done.wait(60)
        busy_end = time.perf_counter() - started
        time.sleep(1.0)
        idle_end = time.perf_counter() - started
    finally:
        watch.stop()
        worker.kill()
        worker.join()  # reaped: no zombie left to later tests
    busy = watch.between(0.0, busy_end)
    idle = watch.between(busy_end + 0.1, idle_end)
    assert busy is not None and idle is not None
    (threads,) = busy[1].values()
    # What its main thread ran (its start-up and the loop) but what it ran before the first
    # poll that saw it, a poll (0.05 s) after it was spawned.
    assert 0.6 <= threads[worker.pid].running <= used.value + 0.05
    seconds, workers = idle
    assert seconds >= 0.8
    assert workers[worker.pid][worker.pid].running < 0.05
    idle_run = bench.Measured("local", 1, 0, 0.0, 0.0, window=seconds, parsing=0.0)
    assert bench.in_run_share(idle_run) == 1.0


def test_parse_only_reads_its_parsing_threads_cpu_between_its_documents(tmp_path):
    samples = ["huzhu-employment-2023.pdf", "huzhu-employment-2023.docx"]
    samples += ["huzhu-employment-2023.html", "04_shanghai_szfbgt_2019.html"]
    for name in samples:
        shutil.copy(SAMPLES / name, tmp_path)
    out = load_bench("bench_ingest").parse_only(str(tmp_path), 1)
    assert out["parsed"] == 4
    # One worker: its start-up and its first document's parse fall outside, as outside an
    # ingest's window of documents.
    assert out["parsing_documents"] == 3
    assert 0 < out["parsing"] < out["cpu"]


def test_the_counted_share_puts_the_parsing_threads_extra_cpu_outside_parsing():
    bench = load_bench("bench_scale")
    # 100 documents in a 10-s window, the parsing thread on a core 9 s of it: 90 ms a document.
    run = bench.Measured("local", 1, 100, 0.0, 0.0, window=10.0, window_documents=100, parsing=9.0)
    slower_bare = bench.Measured("parse only", 1, 100, 0.0, 0.0, window_documents=100, parsing=9.9)
    faster_bare = replace(slower_bare, parsing=8.1)  # 81 ms a document
    assert bench.in_run_share(run) == pytest.approx(0.1)
    # 9 ms of each 90 were not parsing: 10 % + 90 % × 10 %.
    assert bench.counted_share(run, faster_bare) == pytest.approx(0.19)
    assert bench.counted_share(run, slower_bare) == pytest.approx(0.1)
    assert bench.counted_share(run, None) == pytest.approx(0.1)
