"""bench/bench_scale.py reads how long a run's parser workers were parsing from their threads'
times in /proc: the share of a run outside parsing that issue 14 reads comes from it."""

import multiprocessing
import time

from .helpers import load_bench


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
