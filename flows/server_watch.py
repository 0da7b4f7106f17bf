"""Stop a run's temporary Prefect server once the run's process is gone, however it ended.

`orchestrator.prefect_api` starts the server as a child process (Prefect's
SubprocessASGIServer) and stops it as the run ends; a SIGKILL of the run's process alone left
the server running, orphaned, for good. This process, started beside the server, stops it then:

    python -m nianbao.flows.server_watch RUN_PID SERVER_PID

It imports nothing heavy, and ends with the server.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from nianbao.parsers import process_alive

# How often the run and the server are looked at.
WATCH_INTERVAL = 0.5


def watch(run: int, server: int) -> None:
    """Until the server ends: once the run is gone, ask the server to stop (uvicorn shuts down
    on SIGTERM)."""
    while process_alive(server):
        if not process_alive(run):
            os.kill(server, signal.SIGTERM)
            return
        time.sleep(WATCH_INTERVAL)


if __name__ == "__main__":
    watch(int(sys.argv[1]), int(sys.argv[2]))
