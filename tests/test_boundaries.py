"""Stages import one way: the parser knows no database or orchestrator, the crawler no Prefect,
the warehouse no reader, crawler or flow. Each import runs in a fresh interpreter; every module
of each stage package is checked, the entry points also one by one."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable

import pytest

from .helpers import ROOT

READERS = ("pdf", "docx", "html", "text", "legacy")
# The warehouse may use the parser's vocabulary (registry, agency resolution), not its readers.
NOT_IN_SCHEMA = ("prefect", "nianbao.flows", "nianbao.harvest") + tuple(
    f"nianbao.parsers.{reader}" for reader in READERS
)
BOUNDARIES = {
    # module: top-level packages and nianbao sub-packages it must not load
    "nianbao.parsers.report": ("prefect", "sqlalchemy", "nianbao.flows", "nianbao.harvest"),
    "nianbao.parsers.pool": ("prefect", "sqlalchemy", "nianbao.flows", "nianbao.harvest"),
    "nianbao.harvest.crawler": ("prefect", "nianbao.flows"),
    "nianbao.harvest.survey": ("prefect", "sqlalchemy", "nianbao.flows"),
    "nianbao.schema.load": NOT_IN_SCHEMA,
    # What a parser process imports to load its batches: engines, not migrations (Alembic's
    # import is a third of the loader's, paid again by every worker of every run).
    "nianbao.schema.batchload": (*NOT_IN_SCHEMA, "alembic"),
    "nianbao.schema.db": NOT_IN_SCHEMA,
    "nianbao.schema.crossyear": NOT_IN_SCHEMA,
    "nianbao.schema.harvestlog": NOT_IN_SCHEMA,
    "nianbao.schema.export": NOT_IN_SCHEMA,
    "nianbao.schema.quality": NOT_IN_SCHEMA,
}


# Every module of a stage package at once: what they load together, none of them loads alone.
PACKAGES = {
    "parsers": ("prefect", "sqlalchemy", "nianbao.flows", "nianbao.harvest"),
    "schema": NOT_IN_SCHEMA,
    "harvest": ("prefect", "nianbao.flows"),
}


def _modules(package: str) -> list[str]:
    """The package's modules (schema's migrations are Alembic scripts, not modules to import)."""
    folder = ROOT / package
    return sorted(
        ".".join(("nianbao", package, *path.relative_to(folder).with_suffix("").parts))
        for path in folder.rglob("*.py")
        if path.name != "__init__.py" and "migrations" not in path.parts
    )


def _loaded_by(*modules: str) -> set[str]:
    code = f"import json, sys, {', '.join(modules)}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(done.stdout))


def _crossing(loaded: set[str], forbidden: Iterable[str]) -> list[str]:
    """The loaded modules that are, or are inside, a forbidden package."""
    return sorted(
        name for name in loaded for f in forbidden if name == f or name.startswith(f + ".")
    )


@pytest.mark.parametrize("module", sorted(BOUNDARIES))
def test_a_stage_loads_nothing_across_its_boundary(module: str):
    assert _crossing(_loaded_by(module), BOUNDARIES[module]) == []


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_module_of_a_stage_package_loads_anything_across_its_boundary(package: str):
    modules = _modules(package)
    assert len(modules) >= 8
    loaded = _loaded_by(*modules)
    assert set(modules) <= loaded
    assert _crossing(loaded, PACKAGES[package]) == []


def test_the_parse_stage_loads_no_reader_it_does_not_need():
    # Readers are imported on demand: a text parse does not pay for pdfplumber or python-docx.
    loaded = _loaded_by("nianbao.parsers.report")
    assert not [r for r in READERS if f"nianbao.parsers.{r}" in loaded]
    assert "pdfplumber" not in loaded and "docx" not in loaded
