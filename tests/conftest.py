"""Shared fixtures: warehouse databases on SQLite and on a throwaway PostgreSQL cluster."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from nianbao.schema.db import upgrade

_database_names = itertools.count()


def pytest_configure(config: pytest.Config) -> None:
    # The test session starts runs as the CLI does: nianbao's Prefect settings (no telemetry,
    # a quiet terminal) before any test module imports Prefect through the flows.
    from nianbao.flows.orchestrator import configure_prefect

    configure_prefect()


class PostgresUnavailable(Exception):
    pass


def _run(cmd: list[str], as_postgres: bool) -> None:
    # PostgreSQL refuses to run as root: run its tools as the `postgres` user instead.
    tool = Path(cmd[0]).name
    if as_postgres:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise PostgresUnavailable(f"{tool} failed: {(done.stderr or done.stdout).strip()[-500:]}")


def _bindir() -> Path:
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not found:
        raise PostgresUnavailable(
            "no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql)"
        )
    return Path(max(found, key=lambda p: int(Path(p).parts[-3]))).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The password of the throwaway clusters' `postgres` role: the server checks passwords (SCRAM),
# so tests can see that a wrong one is refused and that the right one is never shown.
PG_PASSWORD = "pg-test-Secret-42"


class PostgresCluster:
    """A throwaway PostgreSQL cluster in a temporary folder, on a port of its own."""

    def __init__(self) -> None:
        self.root = tempfile.mkdtemp(prefix="nianbao-pg-")
        self.data = os.path.join(self.root, "data")
        self.as_postgres = os.geteuid() == 0
        self.bindir = _bindir()
        self.port = _free_port()
        if self.as_postgres:
            try:
                postgres = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable("running as root and there is no postgres user") from None
            os.chown(self.root, postgres.pw_uid, postgres.pw_gid)
        password_file = Path(self.root, "pw")
        password_file.write_text(PG_PASSWORD)
        if self.as_postgres:
            os.chown(password_file, postgres.pw_uid, postgres.pw_gid)
        _run(
            [str(self.bindir / "initdb"), "-D", self.data, "-U", "postgres", "--no-sync"]
            + ["-A", "scram-sha-256", "--pwfile", str(password_file), "-E", "UTF8", "--locale=C"],
            self.as_postgres,
        )
        self.start()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres:{PG_PASSWORD}@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        log = Path(self.root, "log")
        try:
            options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c fsync=off -k {self.root}"
            _run(
                [str(self.bindir / "pg_ctl"), "start", "-w", "-t", "30", "-D", self.data]
                + ["-l", str(log), "-o", options],
                self.as_postgres,
            )
        except PostgresUnavailable as exc:
            # pg_ctl only says "examine the log": the reason is in the server log.
            tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
            raise PostgresUnavailable(f"{exc}\n{tail}") from None

    def stop(self) -> None:
        _run(
            [str(self.bindir / "pg_ctl"), "stop", "-m", "immediate", "-D", self.data],
            self.as_postgres,
        )

    def remove(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start_cluster() -> PostgresCluster:
    """A new cluster; skips the test when PostgreSQL cannot start, unless CI=true (fails)."""
    try:
        return PostgresCluster()
    except (PostgresUnavailable, OSError, subprocess.TimeoutExpired) as exc:
        reason = f"PostgreSQL not available: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def new_database(server_url: str) -> str:
    """URL of a new, empty database on the server of `server_url`."""
    name = f"test_{next(_database_names)}"
    conninfo = server_url.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of the `postgres` database of a throwaway cluster, started once per test session."""
    cluster = start_cluster()
    try:
        yield cluster.url
    finally:
        cluster.remove()


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """One Prefect test server for the session; subprocesses reach it by its URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of a new, upgraded warehouse on each backend."""
    if request.param == "sqlite":
        # A file, not :memory:, since the code under test opens several connections.
        url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    else:
        url = new_database(request.getfixturevalue("pg_url"))
    upgrade(url)
    return url
