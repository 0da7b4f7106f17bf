"""Bad input, one file per case (tests/fixtures/bad/, made by tests/fixtures/make_bad_cases.py):
each gets its status and problem code, one bad file never costs the others, nothing vanishes."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from functools import cache
from pathlib import Path

import pdfplumber
import pytest

from nianbao.harvest.rawstore import RawStore
from nianbao.parsers.blocks import ParseError
from nianbao.parsers.docx import DEFAULT_LIMITS
from nianbao.parsers.legacy import read_legacy_word
from nianbao.parsers.pool import DocumentLimits, WorkItem, parse_all
from nianbao.parsers.problems import PROBLEM_CODES
from nianbao.parsers.report import parse_bytes
from nianbao.parsers.traditional import is_traditional

from .helpers import ROOT, SAMPLES

BAD = Path(__file__).resolve().parent / "fixtures" / "bad"
NIANBAO = str(Path(sys.executable).with_name("nianbao"))
HAS_LIBREOFFICE = shutil.which("soffice") is not None
if not HAS_LIBREOFFICE and os.environ.get("CI") == "true":
    # .ci/run installs LibreOffice: in CI a skipped conversion test would hide a broken install.
    raise RuntimeError(
        "LibreOffice (soffice) is missing in CI; .ci/system-packages.sh should install it"
    )
needs_libreoffice = pytest.mark.skipif(not HAS_LIBREOFFICE, reason="LibreOffice is not installed")

# Without LibreOffice a legacy file cannot be read, and says so.
LEGACY = ("parsed", None) if HAS_LIBREOFFICE else ("failed", "needs_libreoffice")
# file -> (status, code of its first problem)
EXPECTED: dict[str, tuple[str, str | None]] = {
    "empty.pdf": ("failed", "empty_file"),
    "truncated.pdf": ("failed", "corrupt_pdf"),
    "encrypted.pdf": ("failed", "encrypted_pdf"),
    # OCR reads the scan: its one page holds the title and 一、总体情况, which make a report
    # (cut off, like the corpus's partial excerpts) — the agency and year read from the image.
    "scanned.pdf": ("parsed", "ocr_read"),
    "garbled.pdf": ("failed", "garbled_text"),
    "corrupt.docx": ("failed", "corrupt_docx"),
    "notzip.docx": ("failed", "corrupt_docx"),
    "bomb.docx": ("failed", "docx_zip_bomb"),
    "legacy.doc": LEGACY,
    "legacy.wps": LEGACY,
    "not_a_report.html": ("not_a_report", "not_a_report"),
    "not_a_report.pdf": ("not_a_report", "not_a_report"),
    "unknown.bin": ("failed", "unknown_format"),
    "gbk.txt": ("parsed", None),
    "traditional.txt": ("parsed", "traditional_characters"),
    "04_shanghai_szfbgt_2019.html": ("parsed", None),
    "huzhu-employment-2023.docx": ("parsed", None),
}
# parse status -> documents.status
DOCUMENT_STATUS = {"parsed": "loaded", "failed": "failed", "not_a_report": "not_a_report"}


@cache  # LibreOffice takes a second or two a file; the results are only read
def parse_fixture(name: str) -> dict:
    return parse_bytes((BAD / name).read_bytes(), name).to_json()


def values(result: dict) -> dict[tuple[str, str, str], object]:
    return {(f["table"], f["row"], f["col"]): f["value"] for f in result["facts"]}


@pytest.fixture(scope="module")
def seed() -> dict:
    return parse_bytes((SAMPLES / "huzhu-employment-2023.txt").read_bytes(), "seed.txt").to_json()


# --- the fixture folder ----------------------------------------------------------------------------


def test_every_fixture_has_an_expected_outcome() -> None:
    assert sorted(p.name for p in BAD.iterdir()) == sorted(EXPECTED)


def test_each_kind_of_failure_has_its_own_documented_code() -> None:
    codes = {code for _, code in EXPECTED.values() if code}
    assert codes <= PROBLEM_CODES
    # Two files share a code only where they are one case: a DOCX that is not a Word zip, a
    # page or PDF that is not a report.
    shared = {code for code, n in Counter(c for _, c in EXPECTED.values() if c).items() if n > 1}
    assert shared <= {"corrupt_docx", "not_a_report", "needs_libreoffice"}


# --- one test per case, through parse_bytes --------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_case_status_and_code(name: str) -> None:
    result = parse_fixture(name)
    status, code = EXPECTED[name]
    assert result["status"] == status, result["problems"]
    assert (result["problems"][0]["code"] if result["problems"] else None) == code
    if status == "failed":
        assert result["problems"][0]["message"]
        assert not result["facts"]
    else:
        # A report cut off before its tables (the one-page scan) is free_form, without facts.
        assert result["facts"] or status == "not_a_report" or result["template"] == "free_form"


def test_a_scanned_page_gives_its_agency_and_year_by_ocr() -> None:
    result = parse_fixture("scanned.pdf")
    assert (result["agency"], result["year"]) == ("互助县就业服务局", 2023)
    assert [s["code"] for s in result["sections"]] == ["preamble", "overview"]


def test_garbled_fixture_extracts_as_cid_codes() -> None:
    # The fixture must be what it claims: a PDF whose text comes out as glyph numbers.
    with pdfplumber.open(BAD / "garbled.pdf") as pdf:
        text = pdf.pages[0].extract_text()
    assert len(re.findall(r"\(cid:\d+\)", text)) > 100
    assert not re.search(r"[\u4e00-\u9fff]", text)


def test_scanned_fixture_is_an_image_without_text() -> None:
    with pdfplumber.open(BAD / "scanned.pdf") as pdf:
        assert pdf.pages[0].images
        assert not pdf.pages[0].chars


def test_zip_bomb_is_small_on_disk_and_huge_inflated() -> None:
    data = (BAD / "bomb.docx").read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        inflated = sum(info.file_size for info in package.infolist())
    assert len(data) < 10_000
    assert inflated > DEFAULT_LIMITS.max_total_uncompressed


def test_gbk_text_reads_like_the_seed(seed: dict) -> None:
    with pytest.raises(UnicodeDecodeError):
        (BAD / "gbk.txt").read_bytes().decode("utf-8")
    result = parse_fixture("gbk.txt")
    assert (result["agency"], result["year"]) == ("互助县就业服务局", 2023)
    assert values(result) == values(seed)


def test_traditional_text_is_converted_and_reads_like_the_seed(seed: dict) -> None:
    assert is_traditional((BAD / "traditional.txt").read_text("utf-8"))
    result = parse_fixture("traditional.txt")
    assert (result["agency"], result["year"]) == ("互助县就业服务局", 2023)
    assert values(result) == values(seed)
    assert [s["heading"] for s in result["sections"]] == [s["heading"] for s in seed["sections"]]
    labels = "".join(f["label"] or "" for f in result["facts"])
    assert not is_traditional(labels)
    assert "traditional_characters" in {p["code"] for p in result["problems"]}


@needs_libreoffice
@pytest.mark.parametrize("name", ["legacy.doc", "legacy.wps"])
def test_legacy_word_reads_like_the_docx(name: str) -> None:
    docx = parse_fixture("huzhu-employment-2023.docx")
    result = parse_fixture(name)
    assert result["format"] == name.rsplit(".", 1)[1]
    assert values(result) == values(docx)


def test_legacy_word_without_libreoffice_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    result = parse_bytes((BAD / "legacy.doc").read_bytes(), "legacy.doc").to_json()
    assert result["status"] == "failed"
    [problem] = result["problems"]
    assert problem["code"] == "needs_libreoffice"
    assert "apt-get install" in problem["message"]


@needs_libreoffice
def test_legacy_word_conversion_is_stopped_at_its_time_limit() -> None:
    with pytest.raises(ParseError) as error:
        read_legacy_word((BAD / "legacy.doc").read_bytes(), timeout=0.05)
    assert error.value.code == "conversion_timeout"


@needs_libreoffice
def test_truncated_legacy_word_is_corrupt() -> None:
    data = (BAD / "legacy.doc").read_bytes()
    assert (
        parse_bytes(data[: len(data) // 3], "report.doc").to_json()["problems"][0]["code"]
        == "corrupt_doc"
    )


def test_text_named_doc_is_corrupt_without_starting_libreoffice() -> None:
    result = parse_bytes(b"404 Not Found", "report.doc").to_json()
    assert result["problems"][0]["code"] == "corrupt_doc"


# --- XML entities are never resolved ----------------------------------------------------------------


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text("TOPSECRET-4f1d", "utf-8")
    return path


def test_html_external_entity_is_not_resolved(secret: Path) -> None:
    page = (
        f'<?xml version="1.0"?><!DOCTYPE html [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>'
        "<html><head><title>&xxe;</title></head><body><h2>一、总体情况</h2><p>&xxe;</p>"
        "<table><tr><td>&xxe;</td><td>1</td></tr></table></body></html>"
    )
    result = parse_bytes(page.encode(), "report.html").to_json()
    assert "TOPSECRET" not in json.dumps(result, ensure_ascii=False)


def _docx_with_entity(part: str, secret: Path, encoding: str) -> bytes:
    source = (SAMPLES / "huzhu-employment-2023.docx").read_bytes()
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(source)) as original,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package,
    ):
        for info in original.infolist():
            data = original.read(info)
            if info.filename == part:
                xml = data.decode("utf-8").split("?>", 1)[1]
                root = re.match(r"\s*<([\w:]+)", xml).group(1)
                # The entity goes where text is read: every w:t of the body, or the title.
                xml = re.sub(r"(<w:t(?: [^>]*)?>|<dc:title>)", r"\1&xxe;", xml)
                declaration = f'<?xml version="1.0" encoding="{encoding.upper()}"?>'
                doctype = f'<!DOCTYPE {root} [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>'
                data = (declaration + doctype + xml).encode(encoding)
            package.writestr(info, data)
    return out.getvalue()


@pytest.mark.parametrize(
    ("part", "encoding"),
    [
        ("word/document.xml", "utf-8"),
        ("word/document.xml", "utf-16"),
        ("docProps/core.xml", "utf-8"),
    ],
)
def test_docx_external_entity_is_not_resolved(part: str, encoding: str, secret: Path) -> None:
    result = parse_bytes(_docx_with_entity(part, secret, encoding), "report.docx").to_json()
    assert "TOPSECRET" not in json.dumps(result, ensure_ascii=False)
    assert result["problems"][0]["code"] == "corrupt_docx"


# --- the ingest flow's per-document limits ---------------------------------------------------------


def _parse_in_worker(path: Path, limits: DocumentLimits, raw: Path) -> dict:
    """One document through the worker pool the ingest flow uses, read from a raw store."""
    store = RawStore(raw)
    sha256, key = store.put_file(path)
    results: list[dict] = []
    parse_all([WorkItem(sha256, key, path.name)], 1, limits, results.extend, store)
    (result,) = results
    return result.to_json()


def test_document_over_its_time_limit_is_stopped_and_recorded(tmp_path: Path) -> None:
    started = time.monotonic()
    result = _parse_in_worker(
        SAMPLES / "01_huaian_shizhengfu_2024.pdf", DocumentLimits(seconds=0.001), tmp_path
    )
    assert result["status"] == "failed"
    assert result["problems"][0]["code"] == "parse_timeout"
    assert time.monotonic() - started < 60


@needs_libreoffice
def test_conversion_stopped_by_the_time_limit_leaves_no_office_behind(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The worker's temporary files go under tmp_path, so that its LibreOffice can be told apart
    # from any other on the machine.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = _parse_in_worker(BAD / "legacy.doc", DocumentLimits(seconds=0.5), tmp_path / "raw")
    assert result["problems"][0]["code"] == "parse_timeout"
    commands = [_command_line(p) for p in Path("/proc").glob("[0-9]*")]
    assert not [c for c in commands if str(tmp_path) in c]
    assert not list(tmp_path.glob("nianbao-legacy-*"))


def _command_line(process: Path) -> str:
    try:
        return (process / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:  # the process ended while we looked
        return ""


def test_document_over_the_size_cap_is_not_parsed(tmp_path: Path) -> None:
    result = _parse_in_worker(
        SAMPLES / "huzhu-employment-2023.txt", DocumentLimits(max_bytes=1000), tmp_path
    )
    assert result["status"] == "failed"
    assert result["problems"][0]["code"] == "too_large"


# --- done when: the whole folder through `nianbao ingest` -----------------------------------------


def _ingest(tmp_path: Path, prefect_api: str) -> subprocess.CompletedProcess[str]:
    # On the session's Prefect server: a temporary one, started by each run, costs ~20 s.
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_API_URL": prefect_api}
    return subprocess.run(
        [NIANBAO, "ingest", str(BAD), "--db", f"sqlite:///{tmp_path / 'w.db'}"]
        + ["--raw-dir", str(tmp_path / "raw")],
        capture_output=True,
        text=True,
        timeout=300,  # the run must end; a hang fails here
        env=env,
        cwd=ROOT,
    )


def _counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {
            table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("documents", "reports", "facts", "checks")
        }


@pytest.mark.slow
def test_ingest_of_bad_folder_keeps_every_file_and_reruns_unchanged(
    tmp_path: Path, prefect_api: str
) -> None:
    first = _ingest(tmp_path, prefect_api)
    output = first.stdout + first.stderr
    assert first.returncode == 1, output
    assert f"documents seen: {len(EXPECTED)}" in first.stdout, output

    with sqlite3.connect(tmp_path / "w.db") as conn:
        rows = {
            row[0]: row[1:]
            for row in conn.execute(
                "SELECT sha256, status, problem_code, problem_message, raw_path FROM documents"
            )
        }
        reported = {sha for (sha,) in conn.execute("SELECT document_sha256 FROM reports")}
    parsed = set()
    for name, (status, code) in EXPECTED.items():
        data = (BAD / name).read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        assert sha in rows, f"{name} has no documents row"
        row_status, row_code, message, raw_path = rows[sha]
        assert (row_status, row_code) == (DOCUMENT_STATUS[status], code), name
        if status == "failed":
            assert message, name
        # The raw bytes are kept, whatever became of the parse.
        kept = (tmp_path / "raw" / raw_path).read_bytes()
        assert hashlib.sha256(kept).hexdigest() == sha, name
        if status == "parsed":
            parsed.add(sha)
    assert len(rows) == len(EXPECTED)
    assert reported == parsed

    failures = Counter(code for status, code in EXPECTED.values() if status == "failed")
    [by_code] = [line for line in first.stdout.splitlines() if line.startswith("failed by reason")]
    for code, n in failures.items():
        assert f"{code} {n}" in by_code, by_code
    for name, (status, code) in EXPECTED.items():
        if status == "failed":
            assert re.search(rf"{code}: \S*{re.escape(name)}", first.stdout), name

    loaded = _counts(tmp_path / "w.db")
    second = _ingest(tmp_path, prefect_api)
    assert second.returncode == 1, second.stdout + second.stderr  # failures are still failures
    assert f"0 loaded, {len(EXPECTED)} unchanged" in second.stdout, second.stdout
    assert _counts(tmp_path / "w.db") == loaded
