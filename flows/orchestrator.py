"""The Prefect side of a run: settings, the API server it talks to, and runs left behind.

- `configure_prefect()` sets nianbao's defaults (anything the user set wins): no telemetry,
  INFO logs to the Prefect API, only warnings on the terminal, passwords masked in log records.
  Prefect reads its settings when it is first imported, so it is called where a run starts,
  before that: by the CLI, by the test session (tests/conftest.py), and by each flow at its
  start for the runs a Prefect worker starts (there, masking is what still takes effect).
- `prefect_api()` gives a run its server: PREFECT_API_URL when set (checked first, so an
  unreachable server is one clear error), else a temporary server started for this run. Starts
  are serialised by a lock file in PREFECT_HOME: temporary servers started together migrate the
  same database and time out or fail on the race.
- `recorded_run()` notes each flow run with the process running it; the next run marks the
  runs of processes that died (SIGKILL, power loss) as Crashed instead of leaving them RUNNING.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Seconds a temporary Prefect server may take to start; Prefect's own default (20 s) is not
# enough on a busy 2-core machine.
STARTUP_TIMEOUT = 120


class OrchestratorUnavailable(RuntimeError):
    """The Prefect server could not be reached or started."""


class NoPrefectServer(RuntimeError):
    """Serving a schedule was asked for with no Prefect server to hold it."""


def configure_prefect() -> None:
    """Defaults only: anything the user set in the environment wins."""
    # These machines are offline: telemetry only fills the logs with errors.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")
    # Runs log at INFO to the Prefect API (its UI shows them); the terminal stays quiet.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", str(STARTUP_TIMEOUT))
    if "PREFECT_HOME" not in os.environ:
        home = Path.home() / ".prefect"
        try:
            home.mkdir(parents=True, exist_ok=True)
            writable = os.access(home, os.W_OK)
        except OSError:
            writable = False
        if not writable:
            os.environ["PREFECT_HOME"] = str(Path(tempfile.gettempdir()) / "nianbao-prefect")
    from nianbao.schema.db import install_secret_masking

    install_secret_masking()


def _prefect_home() -> Path:
    from prefect.settings import PREFECT_HOME

    home = Path(PREFECT_HOME.value()).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home


@contextmanager
def _lock_file(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _check_server(api_url: str) -> None:
    import httpx

    try:
        response = httpx.get(f"{api_url.rstrip('/')}/health", timeout=10)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise OrchestratorUnavailable(
            f"the Prefect server at PREFECT_API_URL={api_url} does not answer ({exc}): "
            "start it (`prefect server start`) or unset PREFECT_API_URL for a temporary one"
        ) from None


@contextmanager
def prefect_api() -> Iterator[str]:
    """The URL of the Prefect API this process's flows use, for the duration of the block."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    configured = PREFECT_API_URL.value()
    if configured:
        _check_server(configured)
        yield configured
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    last_error: Exception | None = None
    with _lock_file(_prefect_home() / "nianbao-server-start.lock"):
        for _attempt in range(2):
            try:
                server.start(timeout=STARTUP_TIMEOUT)
                break
            except RuntimeError as exc:
                last_error = exc
                server.stop()
                server = SubprocessASGIServer()
        else:
            raise OrchestratorUnavailable(
                f"a temporary Prefect server did not start: {str(last_error)[:300]}"
            )
    watcher = _watch_server(server.server_process.pid)
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            try:
                yield server.api_url
            finally:
                _drain_to_server()
    finally:
        server.stop()
        watcher.kill()
        watcher.wait()


def _watch_server(server: int) -> subprocess.Popen:
    """A process that stops the temporary server `server` if this one is killed
    (`flows/server_watch.py`); in a session of its own, so that a kill of this process's group
    does not take it first."""
    return subprocess.Popen(
        [sys.executable, "-m", "nianbao.flows.server_watch", str(os.getpid()), str(server)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _drain_to_server() -> None:
    """Send the logs and events still queued, while the temporary server is there to take them."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=5)
    EventsWorker.drain_all(timeout=5)


# --- runs left behind by a killed process ----------------------------------------------------


def _process_start(pid: int) -> str | None:
    """The start time of process `pid` in clock ticks since boot, to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    # After the command name: state is field 3 of stat(5), starttime field 22.
    return None if fields[0] == b"Z" else fields[19].decode()


def _uses_temporary_server() -> bool:
    # `prefect_api()` sets the temporary server's URL in Prefect's settings, never in the
    # environment: a URL there was configured by the user.
    return "PREFECT_API_URL" not in os.environ


def _ledger() -> Path:
    folder = _prefect_home() / "nianbao-runs"
    folder.mkdir(exist_ok=True)
    return folder


@contextmanager
def recorded_run() -> Iterator[None]:
    """Inside a flow: note this run and this process until the run ends."""
    from prefect.runtime import flow_run
    from prefect.settings import PREFECT_API_URL

    run_id = flow_run.get_id()
    if not run_id:
        yield
        return
    entry = _ledger() / f"{run_id}.json"
    entry.write_text(
        json.dumps(
            {
                "flow_run_id": run_id,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "process_start": _process_start(os.getpid()),
                "api_url": PREFECT_API_URL.value(),
                "temporary_server": _uses_temporary_server(),
                "noted_at": time.time(),
            }
        )
    )
    try:
        yield
    finally:
        entry.unlink(missing_ok=True)


def mark_crashed_runs() -> list[str]:
    """Mark Crashed the RUNNING flow runs noted by processes of this host that are gone.

    Returns the ids marked. A run noted against another server is marked when that server is
    the one in use; one noted against a temporary server, by the next temporary server, which
    shares its database.
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL
    from prefect.states import Crashed

    current = PREFECT_API_URL.value()
    temporary = _uses_temporary_server()
    host = socket.gethostname()
    marked: list[str] = []
    with get_client(sync_client=True) as client:
        for path in sorted(_ledger().glob("*.json")):
            try:
                entry = json.loads(path.read_text())
            except (OSError, ValueError):
                path.unlink(missing_ok=True)
                continue
            if entry.get("host") != host:
                continue
            start = _process_start(entry["pid"])
            if start is not None and start == entry.get("process_start"):
                continue  # still running
            same_server = entry.get("api_url") == current or (
                temporary and entry.get("temporary_server")
            )
            if not same_server:
                continue
            try:
                run = client.read_flow_run(entry["flow_run_id"])
            except ObjectNotFound:
                path.unlink(missing_ok=True)
                continue
            if run.state is not None and run.state.is_running():
                client.set_flow_run_state(
                    run.id,
                    Crashed(
                        message=f"the process running it (pid {entry['pid']} on {host}) "
                        "died before the run ended; the next run redid its work"
                    ),
                    force=True,
                )
                marked.append(str(run.id))
            path.unlink(missing_ok=True)
    return marked
