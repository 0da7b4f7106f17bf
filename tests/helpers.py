"""Paths and small helpers shared by the tests."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
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


# A warehouse's rows by content, for comparing two runs over the same documents (ids, times and
# run ids differ between them).
WAREHOUSE_CONTENT = {
    "documents": "SELECT sha256, source, format, bytes, pages, status, problem_code,"
    " problem_message, parser_version, raw_path FROM documents",
    "reports": "SELECT r.document_sha256, r.agency, r.region, r.year, a.key, r.agency_source,"
    " r.region_code, r.level, r.template, r.parser_version FROM reports r"
    " LEFT JOIN agencies a ON a.id = r.agency_id",
    "current": "SELECT agency, year, COUNT(*) FROM reports WHERE is_current GROUP BY agency, year",
    "sections": "SELECT r.document_sha256, s.position, s.code, s.heading, s.text"
    " FROM sections s JOIN reports r ON r.id = s.report_id",
    "facts": "SELECT r.document_sha256, f.table_code, f.row_code, f.col_code, f.value, f.raw,"
    " f.label, f.unit, f.state, f.source, f.evidence, f.section"
    " FROM facts f JOIN reports r ON r.id = f.report_id",
    "checks": "SELECT r.document_sha256, c.rule, c.scope, c.ok, c.detail"
    " FROM checks c JOIN reports r ON r.id = c.report_id",
    "findings": "SELECT r.document_sha256, g.code, g.message"
    " FROM findings g JOIN reports r ON r.id = g.report_id",
}


def warehouse_content(db_url: str) -> dict[str, list[tuple]]:
    """The rows of each WAREHOUSE_CONTENT query, sorted."""
    return {
        name: sorted(map(tuple, rows(db_url, sql)), key=repr)
        for name, sql in WAREHOUSE_CONTENT.items()
    }


def load_bench(name: str) -> ModuleType:
    """bench/<name>.py as a module, its sibling modules (bench_ingest, corpus) importable as a
    script run finds them."""
    folder = str(ROOT / "bench")
    sys.path.insert(0, folder)
    try:
        spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(folder)
    return module
