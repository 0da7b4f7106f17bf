"""Property tests: real samples, mutated, never crash or hang the parser.

Each test damages a real file the way the web does — a cut download, flipped bytes, a zip
rewritten by a broken tool, a table mangled by a CMS or a crawler — and asserts that
`parse_bytes` returns a well-formed result, within a few seconds, whose problem codes are all
documented (`nianbao.parsers.problems`, listed in the README). `parser_error` is documented
too, but it is what `parse_bytes` says when a reader raised something unexpected, so here it
counts as a crash.

The number of examples is bounded so the module runs in well under a minute; the examples
differ from run to run (no example database is kept), so CI keeps exploring.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import signal
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nianbao.parsers.problems import FAILURES, PROBLEM_CODES
from nianbao.parsers.report import parse_bytes

from .helpers import SAMPLES

ACCEPTED = PROBLEM_CODES - {"parser_error"}
STATUSES = {"parsed", "failed", "not_a_report"}

# A real parse takes well under a second here; a mutated file may not take much longer.
GUARD_SECONDS = 8.0
# LibreOffice stops itself after parsers.legacy.CONVERSION_SECONDS; the guard only has to
# exceed that.
LEGACY_GUARD_SECONDS = 75.0

SAMPLE_NAMES = [
    "01_huaian_shizhengfu_2024.pdf",
    "huzhu-employment-2023.pdf",
    "huzhu-employment-2023.docx",
    "04_shanghai_szfbgt_2019.html",
    "huzhu-employment-2023.html",
    "huzhu-employment-2023.txt",
]
SAMPLE_BYTES = {name: (SAMPLES / name).read_bytes() for name in SAMPLE_NAMES}
DOCX = SAMPLE_BYTES["huzhu-employment-2023.docx"]
SEED_TEXT = SAMPLE_BYTES["huzhu-employment-2023.txt"].decode("utf-8")
HTML_PAGES = {
    # (text, encoding): the seed page is GBK, as many government sites still are.
    "04_shanghai_szfbgt_2019.html": (
        SAMPLE_BYTES["04_shanghai_szfbgt_2019.html"].decode(),
        "utf-8",
    ),
    "huzhu-employment-2023.html": (SAMPLE_BYTES["huzhu-employment-2023.html"].decode("gbk"), "gbk"),
}
LEGACY = Path(__file__).resolve().parent / "fixtures" / "bad" / "legacy.doc"

FUZZ = settings(
    max_examples=30,
    deadline=None,  # the SIGALRM guard bounds each call instead; timings here are noisy
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Hang(BaseException):
    """Raised by the guard's alarm. A BaseException, so the parser's own last-resort handler
    cannot turn a hang into a `parser_error` result."""


def _alarm(_signum: int, _frame: object) -> None:
    raise Hang


def check(data: bytes, name: str, guard: float = GUARD_SECONDS) -> dict:
    """Parse under a time guard and assert the result keeps the contract."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, guard)
    try:
        result = parse_bytes(data, name).to_json()
    except Hang:
        raise AssertionError(f"{name} ({len(data)} bytes) took over {guard:g} s") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    codes = [p["code"] for p in result["problems"]]
    assert set(codes) <= ACCEPTED, result["problems"]
    assert result["status"] in STATUSES
    if result["status"] == "failed":
        assert codes and codes[0] in FAILURES, result["problems"]
        assert not result["facts"]
    json.dumps(result)  # plain data: it crosses process boundaries and feeds the loader
    return result


# --- bytes: cut and flipped ------------------------------------------------------------------------


@FUZZ
@given(name=st.sampled_from(SAMPLE_NAMES), cut=st.floats(0, 1, exclude_max=True))
def test_truncated_sample(name: str, cut: float) -> None:
    data = SAMPLE_BYTES[name]
    check(data[: int(len(data) * cut)], name)


@FUZZ
@given(
    name=st.sampled_from(SAMPLE_NAMES),
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=20),
)
def test_flipped_bytes(name: str, flips: list[tuple[float, int]]) -> None:
    data = bytearray(SAMPLE_BYTES[name])
    for where, value in flips:
        data[int(len(data) * where)] = value
    check(bytes(data), name)


# --- DOCX: the zip rewritten -------------------------------------------------------------------------


def _docx_entries() -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(io.BytesIO(DOCX)) as package:
        return [(info, package.read(info)) for info in package.infolist()]


DOCX_ENTRIES = _docx_entries()


def _zip(entries: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        for info, data in entries:
            package.writestr(info.filename, data)
    return out.getvalue()


@FUZZ
@given(
    order=st.permutations(range(len(DOCX_ENTRIES))),
    dropped=st.sets(st.integers(0, len(DOCX_ENTRIES) - 1), max_size=3),
)
def test_docx_entries_shuffled_or_dropped(order: list[int], dropped: set[int]) -> None:
    check(_zip([DOCX_ENTRIES[i] for i in order if i not in dropped]), "report.docx")


@FUZZ
@given(
    entry=st.sampled_from(
        [i for i, (info, _) in enumerate(DOCX_ENTRIES) if info.filename.endswith((".xml", ".rels"))]
    ),
    flips=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.sampled_from(b'<>/"=&;: x0\x00\xff')),
        min_size=1,
        max_size=10,
    ),
)
def test_docx_xml_part_damaged(entry: int, flips: list[tuple[float, int]]) -> None:
    entries = list(DOCX_ENTRIES)
    info, part = entries[entry]
    damaged = bytearray(part)
    for where, value in flips:
        damaged[int(len(damaged) * where)] = value
    entries[entry] = (info, bytes(damaged))
    check(_zip(entries), "report.docx")


def _docx_with(name: str, damage: Callable[[bytes], bytes]) -> bytes:
    return _zip(
        [(info, damage(data) if info.filename == name else data) for info, data in DOCX_ENTRIES]
    )


# Crashes the fuzzing found, kept as plain regression tests.


def test_docx_package_rels_with_a_foreign_root_is_corrupt() -> None:
    damaged = _docx_with("_rels/.rels", lambda xml: xml.replace(b"Relationships", b"Relationshipz"))
    assert check(damaged, "report.docx")["problems"][0]["code"] == "corrupt_docx"


def test_docx_styles_part_with_a_wrong_content_type_is_corrupt() -> None:
    damaged = _docx_with("[Content_Types].xml", lambda xml: xml.replace(b"styles+xml", b"x+xml"))
    assert check(damaged, "report.docx")["problems"][0]["code"] == "corrupt_docx"


# --- tables mangled in text and HTML -----------------------------------------------------------------

JUNK = st.text(
    alphabet=st.sampled_from("|\t 0123456789-—/（）()一二三四五六七总计合计\n"), max_size=12
)


def _mangle_text(text: str, ops: list[tuple[str, int, int, str]]) -> str:
    lines = text.split("\n")
    for op, a, b, junk in ops:
        i = a % len(lines)
        separator = "\t" if "\t" in lines[i] else "|"
        cells = lines[i].split(separator)
        if op == "swap_cells" and len(cells) > 1:
            j, k = a % len(cells), b % len(cells)
            cells[j], cells[k] = cells[k], cells[j]
            lines[i] = separator.join(cells)
        elif op == "drop_separators":
            lines[i] = lines[i].replace(separator, " " if b % 2 else "")
        elif op == "insert_junk":
            lines.insert(i, junk)
        elif op == "replace_cell" and cells:
            cells[b % len(cells)] = junk
            lines[i] = separator.join(cells)
        elif op == "drop_line":
            del lines[i]
            lines = lines or [""]
        elif op == "swap_lines":
            j = b % len(lines)
            lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


TEXT_OPS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "swap_cells",
                "drop_separators",
                "insert_junk",
                "replace_cell",
                "drop_line",
                "swap_lines",
            ]
        ),
        st.integers(0, 10_000),
        st.integers(0, 10_000),
        JUNK,
    ),
    min_size=1,
    max_size=15,
)


@FUZZ
@given(ops=TEXT_OPS)
def test_text_table_mangled(ops: list[tuple[str, int, int, str]]) -> None:
    check(_mangle_text(SEED_TEXT, ops).encode("utf-8"), "report.txt")


_CELL = re.compile(r"<t[dh]\b[^>]*>.*?</t[dh]>", re.S | re.I)
_TAG = re.compile(r"</?(?:td|th|tr|tbody|table)\b[^>]*>", re.I)
HTML_JUNK = st.sampled_from(
    ["<table>", "</table>", "<tr>", "<td>", "</td>", "<td colspan=0>", "<br>", "&nbsp;",
     "<!--", "<![CDATA[", "&#0;", "\x00", "<script>", "一、总体情况", "总计", "0"]
)  # fmt: skip
SPAN = st.one_of(st.integers(-3, 1_000_000).map(str), st.sampled_from(["", "x", "2.5", " 3 "]))


def _html_op(page: str, op: str, a: int, b: int, junk: str, span: str) -> str:
    cells = list(_CELL.finditer(page))
    if op == "swap_cells" and len(cells) > 1:
        first, second = sorted(
            (cells[a % len(cells)], cells[b % len(cells)]), key=lambda m: m.start()
        )
        if first.start() == second.start():
            return page
        return (
            page[: first.start()] + second.group() + page[first.end() : second.start()]
            + first.group() + page[second.end() :]
        )  # fmt: skip
    if op == "drop_tag":
        tags = list(_TAG.finditer(page))
        if tags:
            tag = tags[a % len(tags)]
            return page[: tag.start()] + page[tag.end() :]
    if op == "span" and cells:
        cell = cells[a % len(cells)]
        attribute = "rowspan" if b % 2 else "colspan"
        opened = re.sub(r"^<(t[dh])", rf'<\1 {attribute}="{span}"', cell.group(), count=1)
        return page[: cell.start()] + opened + page[cell.end() :]
    if op == "insert_junk":
        where = a % (len(page) + 1)
        return page[:where] + junk + page[where:]
    return page


@FUZZ
@given(
    name=st.sampled_from(sorted(HTML_PAGES)),
    ops=st.lists(
        st.tuples(
            st.sampled_from(["swap_cells", "drop_tag", "span", "insert_junk"]),
            st.integers(0, 100_000),
            st.integers(0, 100_000),
            HTML_JUNK,
            SPAN,
        ),
        min_size=1,
        max_size=12,
    ),
)
# Always tried: Table.grid() places every position a span covers, so 40 cells of
# 1000 x 1000 took ~20 s before spans were bounded.
@example(
    name="huzhu-employment-2023.html",
    ops=[("span", cell, axis, "", "1000") for cell in range(40) for axis in (0, 1)],
)
def test_html_table_mangled(name: str, ops: list[tuple[str, int, int, str, str]]) -> None:
    page, encoding = HTML_PAGES[name]
    for op in ops:
        page = _html_op(page, *op)
    check(page.encode(encoding, errors="xmlcharrefreplace"), name)


# --- legacy Word through LibreOffice ---------------------------------------------------------------


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice is not installed")
@settings(FUZZ, max_examples=4)
@given(
    mutate=st.sampled_from(["cut", "flip"]),
    where=st.floats(0.05, 1, exclude_max=True),
    value=st.integers(0, 255),
)
def test_legacy_word_damaged(mutate: str, where: float, value: int) -> None:
    data = LEGACY.read_bytes()
    position = int(len(data) * where)
    if mutate == "cut":
        data = data[:position]
    else:
        data = data[:position] + bytes([value]) * 64 + data[position + 64 :]
    check(data, "report.doc", guard=LEGACY_GUARD_SECONDS)
