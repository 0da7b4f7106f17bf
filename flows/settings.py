"""Prefect settings nianbao needs before Prefect is imported."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def configure_prefect() -> None:
    """Defaults only: anything the user set in the environment wins."""
    # These machines are offline: telemetry only fills the logs with errors.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    if "PREFECT_HOME" not in os.environ:
        home = Path.home() / ".prefect"
        try:
            home.mkdir(parents=True, exist_ok=True)
            writable = os.access(home, os.W_OK)
        except OSError:
            writable = False
        if not writable:
            os.environ["PREFECT_HOME"] = str(Path(tempfile.gettempdir()) / "nianbao-prefect")
