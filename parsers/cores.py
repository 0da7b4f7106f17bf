"""Which cores a parser process runs on: one core for its Python threads, every core the
process may use for OCR's thread pools.

A worker that loads what it parses (PostgreSQL) has two busy Python threads, the parse and the
loader, which hand the GIL to each other; left to the scheduler, they run on different cores,
beside the database and the flow, and each hand-over wakes a thread on another core. Measured
(`bench/bench_worker.py` and the probes before it: 1 local worker, PostgreSQL, a long-lived
Prefect server, 1,200 documents, 14 pairs of runs in turn): pinned, the parsing thread ran
less CPU in 13 pairs (by 0.4–5.2 s), the run took less wall time in 11 (by 3.6 s in the median
pair, of ~40 s), and the thread blocked 220–510 times a run against 1,400–2,200.

A worker takes a core no other pinned worker on the machine holds, so that the workers of runs
side by side do not share one; once every core is held, the next runs unpinned.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from . import switched_on

# On unless `--no-pin-workers` (`NIANBAO_PIN_WORKERS=off`).
PIN_VARIABLE = "NIANBAO_PIN_WORKERS"

# Every core the process may use, once its threads are pinned to one; None while they are not.
_allowed: frozenset[int] | None = None
# The lock file of the core this process holds, kept open: the lock ends with the process,
# however it ends.
_held: IO[str] | None = None


def pinning_on() -> bool:
    """Whether a run's local parser workers are pinned, one to a core (`NIANBAO_PIN_WORKERS`)."""
    return switched_on(PIN_VARIABLE)


def locks_folder() -> Path:
    """Where pinned processes hold a lock a core: this user's, in the temporary folder."""
    return Path(tempfile.gettempdir()) / f"nianbao-cores-{os.getuid()}"


def pin_to_free_core() -> None:
    """Hold the calling thread, and the threads it starts from now on, on the first core the
    process may use that no other pinned process holds (`_lock_free_core`): the workers of one
    pool, and of runs side by side on a machine, get cores of their own. It runs where the
    scheduler puts it when every core is held, where the system cannot pin, or where the
    process may use only one core."""
    global _allowed, _held
    if not hasattr(os, "sched_setaffinity") or _held is not None:  # not Linux, or pinned
        return
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return
    try:
        free = _lock_free_core(allowed)
    except OSError:  # no lock folder: run unpinned
        return
    if free is None:
        return
    core, handle = free
    try:
        os.sched_setaffinity(0, {core})
    except OSError:  # a cpuset changed under us: run unpinned, and leave the core to others
        handle.close()
        return
    _allowed, _held = frozenset(allowed), handle


def _lock_free_core(cores: list[int]) -> tuple[int, IO[str]] | None:
    """The first of `cores` whose lock file (`locks_folder()`) no other process holds, with
    that file, locked and open; None when every one is held."""
    folder = locks_folder()
    folder.mkdir(exist_ok=True)
    for core in cores:
        handle = (folder / f"{core}.lock").open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return core, handle
    return None


@contextmanager
def every_core() -> Iterator[None]:
    """The calling thread on every core the process may use while inside, as are the threads
    it starts there: OCR's thread pools (onnxruntime, OpenCV) run as many threads as the
    worker's share of the cores, and start them at their first use."""
    if _allowed is None:
        yield
        return
    home = os.sched_getaffinity(0)
    os.sched_setaffinity(0, _allowed)
    try:
        yield
    finally:
        os.sched_setaffinity(0, home)
