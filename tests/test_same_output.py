"""The parse's fast paths give what the plain computations they replace give.

Caches, bisection and bounds are only allowed where the output stays the same: these tests hold
each one against the reference it stands for (pdfplumber's own table functions, difflib's full
ratio, python-docx's style objects, a parse with every cache empty).
"""

from __future__ import annotations

import gc
import io
import random
import zipfile
from difflib import SequenceMatcher

import docx
import pdfplumber.table
import pypdfium2
import pytest
from docx.enum.style import WD_STYLE_TYPE
from docx.oxml.parser import parse_xml
from hypothesis import given
from hypothesis import strategies as st
from pdfplumber.utils import filter_edges

from nianbao.parsers import agency, pdf, sections, tables
from nianbao.parsers.blocks import Cell, Table
from nianbao.parsers.docx import _HEADING_STYLE, _headings_among, _used_styles
from nianbao.parsers.report import _reader, parse_bytes
from nianbao.schema import numbering, registry

from .helpers import REAL, SAMPLES

SAMPLE_FILES = sorted(
    p for p in SAMPLES.iterdir() if p.suffix in (".pdf", ".docx", ".html", ".txt")
)


def _ruled_pages() -> list[pdf._Page]:
    pages = []
    for path in sorted(SAMPLES.glob("*.pdf")):
        document = pypdfium2.PdfDocument(str(path))
        pages += [pdf._scan_page(document, i) for i in range(len(document))]
        document.close()
    return [page for page in pages if page.ruled]


_EDGE_KEYS = ("x0", "top", "x1", "bottom", "width", "height")


def _as_dicts(vertical: list[pdf.Edge], horizontal: list[pdf.Edge]) -> list[dict]:
    """Edges as pdfplumber's dicts (vertical ones first)."""
    return [
        dict(zip(_EDGE_KEYS, edge, strict=True), orientation=orientation)
        for orientation, edges in (("v", vertical), ("h", horizontal))
        for edge in edges
    ]


def _pdfplumbers_merge(edges: list[dict]) -> list[dict]:
    settings = pdf._SETTINGS
    merged = pdfplumber.table.merge_edges(
        edges,
        snap_x_tolerance=settings.snap_x_tolerance,
        snap_y_tolerance=settings.snap_y_tolerance,
        join_x_tolerance=settings.join_x_tolerance,
        join_y_tolerance=settings.join_y_tolerance,
    )
    merged = filter_edges(merged, min_length=settings.edge_min_length)
    # The same edges, vertical first: pdfplumber lists its horizontal ones first.
    return [e for e in merged if e["orientation"] == "v"] + [
        e for e in merged if e["orientation"] == "h"
    ]


def test_table_functions_match_pdfplumbers_on_every_ruled_sample_page():
    settings = pdf._SETTINGS
    pages = _ruled_pages()
    assert len(pages) >= 4
    for page in pages:
        vertical, horizontal = pdf._edges(page.subpaths)
        edges = _pdfplumbers_merge(_as_dicts(vertical, horizontal))
        merged = pdf._merged(vertical, horizontal)
        assert _as_dicts(*merged) == edges
        tolerances = (settings.intersection_x_tolerance, settings.intersection_y_tolerance)
        v_boxes, h_boxes = pdf._intersections(*merged, *tolerances)
        intersections = pdfplumber.table.edges_to_intersections(edges, *tolerances)
        assert list(v_boxes) == list(h_boxes) == list(intersections)
        for point, crossing in intersections.items():  # edges told apart by their boxes
            assert len(v_boxes[point]) == len(set(map(pdfplumber.utils.obj_to_bbox, crossing["v"])))
            assert len(h_boxes[point]) == len(set(map(pdfplumber.utils.obj_to_bbox, crossing["h"])))
        cells = pdf._intersections_to_cells(v_boxes, h_boxes)
        assert cells == pdfplumber.table.intersections_to_cells(intersections)
        assert len(cells) > 10
        assert pdf._cells_to_tables(cells) == pdfplumber.table.cells_to_tables(cells)


# Edges on a coarse grid with small offsets, so that many snap together and join end to end.
_COORDINATE = st.builds(
    lambda step, offset: step * 7.0 + offset,
    st.integers(0, 12),
    st.sampled_from([0.0, 0.5, 1.25, 2.9, 3.1, -0.75]),
)
_SPAN = st.tuples(_COORDINATE, _COORDINATE, st.floats(0.0, 40.0))


@given(st.lists(_SPAN, max_size=40), st.lists(_SPAN, max_size=40))
def test_merged_edges_are_pdfplumbers(vertical_spans, horizontal_spans):
    vertical = [pdf._edge(x, top, x, top + length) for x, top, length in vertical_spans]
    horizontal = [pdf._edge(x0, y, x0 + length, y) for y, x0, length in horizontal_spans]
    merged = pdf._merged(vertical, horizontal)
    assert _as_dicts(*merged) == _pdfplumbers_merge(_as_dicts(vertical, horizontal))


def test_cells_hold_the_characters_whose_centre_is_inside_them():
    for page in _ruled_pages():
        pdf._find_tables(page)
        index = page.by_centre()
        for found in page.tables:
            # Every character the table shows lies in its box, by the test pdfplumber uses.
            shown = "".join(cell.text for row in found.table.rows for cell in row)
            inside = {page.chars[i].text for i in index.within(found.bbox)}
            assert set(shown) - {" "} <= inside


def test_bulk_character_read_matches_pypdfium2s_per_character_calls():
    # _page_chars maps pdfium's calls over the page, reads the boxes back from one array and
    # computes its columns by maps; pypdfium2's own per-character API must give the same
    # characters, in the same frame.
    paths = [*SAMPLES.glob("*.pdf"), REAL.parent / "bad" / "garbled.pdf"]
    checked = unmapped = 0
    for path in paths:
        document = pypdfium2.PdfDocument(str(path))
        for page in document:
            left, _, _, top = page.get_mediabox()
            textpage = page.get_textpage()
            expected = []
            for i in range(textpage.count_chars()):
                code = pypdfium2.raw.FPDFText_GetUnicode(textpage, i)
                if code == 0x0D:
                    continue
                if pypdfium2.raw.FPDFText_HasUnicodeMapError(textpage, i) == 1:
                    code = 0xFFFD
                    unmapped += 1
                x0, bottom, x1, box_top = textpage.get_charbox(i, loose=True)
                expected.append((chr(code), x0 - left, x1 - left, top - box_top, top - bottom))
            found = pdf._page_chars(textpage.raw, left, top)
            columns = zip(found.text, found.x0, found.x1, found.top, found.bottom, strict=True)
            assert list(columns) == expected
            checked += len(found)
            textpage.close()
        document.close()
    assert checked > 5000 and unmapped > 0


def _clear_caches() -> None:
    for cached in (
        registry.normalize_label,
        registry.similarity,
        registry._nfkc_run,
        registry._normalized_labels,
        agency.resolve_agency,
        sections._matcher,
        tables._label_like,
        tables._parse_value,
        tables._longest_marker,
        tables._group_code,
        pdf._clean_line,
    ):
        cached.cache_clear()


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_a_parse_with_warm_caches_equals_one_with_empty_caches(path):
    data = path.read_bytes()
    _clear_caches()
    cold = parse_bytes(data, path.name)
    for other in reversed(SAMPLE_FILES):  # fill the caches with every other sample's labels
        parse_bytes(other.read_bytes(), other.name)
    warm = parse_bytes(data, path.name)
    assert warm == cold
    assert cold.status == "parsed" and len(cold.facts) > 100


def _leading_heading_by_full_ratio(text: str):
    """leading_heading's typo fallback as first written: every prefix scored in full."""
    match = numbering.SECTION_NUMBER.match(text[:12])
    number = match.group(1) or match.group(2)
    after = match.end()
    candidates = [s for s in registry.sections() if s.number == number]
    for spec in candidates:
        for label in sorted(spec.labels, key=len, reverse=True):
            end = sections._label_end(text[after:], label)
            if end is not None:
                return None  # an exact label: not the fallback
    best = None
    for spec in candidates:
        for label in spec.labels:
            reference = registry.normalize_label(label)
            for end in range(after + 2, min(len(text), after + sections.MAX_HEADING_CHARS) + 1):
                prefix = registry.normalize_label(text[after:end])
                score = SequenceMatcher(None, prefix, reference, autojunk=False).ratio()
                if best is None or score > best[0]:
                    best = (score, spec, end)
    return (best[1], best[2]) if best and best[0] >= sections.FUZZY_RUN_ON else None


def test_run_on_headings_with_typos_match_as_with_full_ratios():
    rng = random.Random(14)
    labels = [(s.number, label) for s in registry.sections() for label in s.labels]
    noise = "行政法复议信息公开的情况工作主动申请"
    checked = matched = 0
    for _ in range(300):
        number, label = rng.choice(labels)
        chars = list(label)
        for _ in range(rng.randint(1, 3)):  # a dropped, an extra or a wrong character
            at = rng.randrange(len(chars))
            kind = rng.randrange(3)
            if kind == 0 and len(chars) > 2:
                chars.pop(at)
            elif kind == 1:
                chars.insert(at, rng.choice(noise))
            else:
                chars[at] = rng.choice(noise)
        text = f"{number}、{''.join(chars)}本年度共收到申请十二件"
        found = sections.leading_heading(text)
        exact = any(
            sections._label_end(text[2:], label) is not None
            for spec in registry.sections()
            if spec.number == number
            for label in spec.labels
        )
        if not exact:
            assert found == _leading_heading_by_full_ratio(text)
            checked += 1
            matched += found is not None
    assert checked > 200 and matched > 50


def test_heading_styles_match_python_docx_style_objects():
    data = (SAMPLES / "huzhu-employment-2023.docx").read_bytes()
    word = docx.Document(io.BytesIO(data))
    expected = {
        style.style_id
        for style in word.styles
        if style.type == WD_STYLE_TYPE.PARAGRAPH
        and _HEADING_STYLE.match((style.name or "").strip())
    }
    assert _headings_among(word.styles.element) == expected
    assert expected
    # The styles part cut down to the styles a body names keeps the headings among them.
    xml = zipfile.ZipFile(io.BytesIO(data)).read("word/styles.xml")
    every_id = {style.style_id for style in word.styles}
    assert _headings_among(parse_xml(_used_styles(xml, every_id))) == expected
    some = {"Normal", "Heading2", "TableGrid", "Title"}
    assert _headings_among(parse_xml(_used_styles(xml, some))) == expected & some


def test_a_parse_leaves_garbage_collection_as_it_found_it():
    # parse_bytes pauses the cyclic collector for one document; a failed parse must resume it
    # too, and a caller that turned it off keeps it off.
    good = (SAMPLES / "huzhu-employment-2023.txt").read_bytes()
    broken = (REAL.parent / "bad" / "truncated.pdf").read_bytes()
    assert gc.isenabled()
    assert parse_bytes(good, "good.txt").status == "parsed"
    assert parse_bytes(broken, "broken.pdf").status == "failed"
    assert gc.isenabled()
    gc.disable()
    try:
        assert parse_bytes(good, "good.txt").facts
        assert not gc.isenabled()
    finally:
        gc.enable()


def _reference_grid(table: Table) -> list[list[Cell | None]]:
    # Table.grid() as it was: every covered position a key of one dict.
    placed: dict[tuple[int, int], Cell] = {}
    width = 0
    for r, row in enumerate(table.rows):
        c = 0
        for cell in row:
            while (r, c) in placed:
                c += 1
            for dr in range(max(cell.rowspan, 1)):
                for dc in range(max(cell.colspan, 1)):
                    placed[(r + dr, c + dc)] = cell
            c += max(cell.colspan, 1)
            width = max(width, c)
    return [[placed.get((r, c)) for c in range(width)] for r in range(len(table.rows))]


_SPAN = st.integers(min_value=-1, max_value=4)


@given(
    st.lists(
        st.lists(st.builds(Cell, st.text(max_size=2), _SPAN, _SPAN), max_size=6),
        max_size=8,
    )
)
def test_grid_places_cells_as_the_dict_of_positions_did(rows):
    table = Table(rows)
    assert table.grid() == _reference_grid(table)


def test_grid_of_every_sample_table_is_unchanged():
    tables = 0
    for path in SAMPLE_FILES:
        for block in _reader(path.suffix[1:])(path.read_bytes()).blocks:
            if isinstance(block, Table):
                assert block.grid() == _reference_grid(block)
                tables += 1
    assert tables >= 10
