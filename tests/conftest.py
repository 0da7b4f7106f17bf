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


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of the `postgres` database of a throwaway cluster, started once per test session.

    Skips the tests that need it when PostgreSQL cannot start, unless CI=true, where that fails.
    """
    root = tempfile.mkdtemp(prefix="nianbao-pg-")
    data = os.path.join(root, "data")
    as_postgres = os.geteuid() == 0
    try:
        bindir = _bindir()
        if as_postgres:
            try:
                postgres = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable("running as root and there is no postgres user") from None
            os.chown(root, postgres.pw_uid, postgres.pw_gid)
        port = _free_port()
        _run(
            [str(bindir / "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "--no-sync"]
            + ["-E", "UTF8", "--locale=C"],
            as_postgres,
        )
        log = Path(root, "log")
        try:
            options = f"-c listen_addresses=127.0.0.1 -p {port} -c fsync=off -k {root}"
            _run(
                [
                    str(bindir / "pg_ctl"),
                    "start",
                    "-w",
                    "-t",
                    "30",
                    "-D",
                    data,
                    "-l",
                    str(log),
                    "-o",
                    options,
                ],
                as_postgres,
            )
        except PostgresUnavailable as exc:
            # pg_ctl only says "examine the log": the reason is in the server log.
            tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
            raise PostgresUnavailable(f"{exc}\n{tail}") from None
    except (PostgresUnavailable, OSError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(root, ignore_errors=True)
        reason = f"PostgreSQL not available: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        _run([str(bindir / "pg_ctl"), "stop", "-m", "immediate", "-D", data], as_postgres)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of a new, upgraded warehouse on each backend."""
    if request.param == "sqlite":
        # A file, not :memory:, since the code under test opens several connections.
        url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    else:
        server: str = request.getfixturevalue("pg_url")
        name = f"test_{next(_database_names)}"
        conninfo = server.replace("postgresql+psycopg", "postgresql")
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = server.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    return url
