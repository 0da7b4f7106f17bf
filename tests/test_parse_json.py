"""`nianbao parse --json` is a contract with users: its bytes change only on purpose.

`fixtures/parse_json.sha256.json` holds the sha256 of the line `parse --json` writes for every sample and
corpus file (samples/, tests/fixtures/real, markdown and bad). A change to the parser's output —
a refactoring that should change nothing, or a fix that should change one report — shows here
file by file. When a change is meant, record the new output and say why in the commit:

    .venv/bin/python -m tests.test_parse_json --record

Left out: files read by OCR (tests/fixtures/scans, bad/scanned.pdf: test_ocr.py scores them; the
recogniser's confidences are not a byte contract) and legacy .doc/.wps (their text depends on the
LibreOffice version that converts them).
"""

from __future__ import annotations

import hashlib
import json
import sys

import pytest

from nianbao.parsers.report import parse_bytes
from nianbao.parsers.result import ParseResult

from .helpers import ROOT

FOLDERS = ("samples", "tests/fixtures/real", "tests/fixtures/markdown", "tests/fixtures/bad")
NOT_DOCUMENTS = (".json", ".py")
LEFT_OUT = ("README.md", "scanned.pdf", "legacy.doc", "legacy.wps")
DIGESTS = ROOT / "tests" / "fixtures" / "parse_json.sha256.json"
# The keys of the parse --json object, in the order it prints them (docs/template.md).
CONTRACT_KEYS = [
    "source", "sha256", "format", "bytes", "pages", "status", "agency", "agency_source",
    "agency_canonical", "agency_kind", "level", "region_code", "region", "region_names", "year",
    "template", "parser_version", "sections", "facts", "checks", "problems",
]  # fmt: skip


def documents() -> list[str]:
    """Every document of the folders, as the path `parse --json` is given (from the repo root)."""
    return [
        path.relative_to(ROOT).as_posix()
        for folder in FOLDERS
        for path in sorted((ROOT / folder).iterdir())
        if path.is_file() and not path.name.endswith(NOT_DOCUMENTS) and path.name not in LEFT_OUT
    ]


def parsed(source: str) -> ParseResult:
    return parse_bytes((ROOT / source).read_bytes(), source)


def _digest(line: str) -> str:
    return hashlib.sha256(line.encode("utf-8")).hexdigest()


def _recorded() -> dict[str, str]:
    return json.loads(DIGESTS.read_text("utf-8"))


def test_every_document_has_a_recorded_output():
    assert sorted(_recorded()) == sorted(documents())


@pytest.mark.parametrize("source", documents())
def test_parse_json_is_byte_for_byte_what_was_recorded(source: str):
    result = parsed(source)
    line = result.json_line()
    assert _digest(line) == _recorded()[source], f"parse --json of {source} changed"
    # The loader may be handed the JSON instead of the typed result: both say the same.
    obj = json.loads(line)
    assert list(obj) == CONTRACT_KEYS
    assert ParseResult.from_json(obj).json_line() == line


def record() -> None:
    digests = {source: _digest(parsed(source).json_line()) for source in documents()}
    DIGESTS.write_text(json.dumps(digests, indent=1, ensure_ascii=False) + "\n", "utf-8")
    print(f"recorded {len(digests)} outputs in {DIGESTS.relative_to(ROOT)}")


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    record()
