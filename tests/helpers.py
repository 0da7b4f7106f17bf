"""Paths and small helpers shared by the tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
REAL = Path(__file__).resolve().parent / "fixtures" / "real"


def gold(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text("utf-8"))


def cells(result: dict) -> dict[str, dict]:
    return {f"{f['table']}/{f['row']}/{f['col']}": f for f in result["facts"]}


def rows(db_url: str, sql: str, **params: Any) -> list:
    """The rows a SQL query returns from the warehouse at `db_url`."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params))
    finally:
        engine.dispose()
