"""The parse's fast paths give what the plain computations they replace give.

Caches, bisection and bounds are only allowed where the output stays the same: these tests hold
each one against the reference it stands for (pdfplumber's own table functions, difflib's full
ratio, python-docx's style objects, a parse with every cache empty).
"""

from __future__ import annotations

import ctypes
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
from .test_pdf import build_pdf, stream

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
    # _page_chars reads the characters in C (parsers/_pdfium_reader.c); pypdfium2's own
    # per-character API must give the same characters, in the same frame, to the bit.
    # scanned.pdf: a page with no characters at all.
    paths = [
        *SAMPLES.glob("*.pdf"),
        *(REAL.parent / "bad" / n for n in ("garbled.pdf", "scanned.pdf")),
    ]
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


def _objects_by_pdfium_calls(page: pypdfium2.PdfPage, max_depth: int) -> tuple[bool, list]:
    """What `_pdfium_reader.page_objects` gives, from pypdfium2's typed per-object calls in
    Python: whether an image is on the page, and each path with its matrix to page space."""
    raw = pypdfium2.raw
    paths = []
    has_images = False

    def matrix(obj) -> tuple[float, ...]:
        m = raw.FS_MATRIX()
        if not raw.FPDFPageObj_GetMatrix(obj, m):
            return (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
        return (m.a, m.b, m.c, m.d, m.e, m.f)

    def compose(outer: tuple[float, ...], inner: tuple[float, ...]) -> tuple[float, ...]:
        a, b, c, d, e, f = outer
        p, q, r, s, t, u = inner
        return (p * a + q * c, p * b + q * d, r * a + s * c, r * b + s * d,
                t * a + u * c + e, t * b + u * d + f)  # fmt: skip

    def walk(objects: list, outer: tuple[float, ...], depth: int) -> None:
        nonlocal has_images
        for obj in objects:
            kind = raw.FPDFPageObj_GetType(obj)
            if kind == raw.FPDF_PAGEOBJ_IMAGE:
                has_images = True
            elif kind == raw.FPDF_PAGEOBJ_PATH:
                points, kinds, closes = [], bytearray(), bytearray()
                for i in range(raw.FPDFPath_CountSegments(obj)):
                    segment = raw.FPDFPath_GetPathSegment(obj, i)
                    x, y = ctypes.c_float(), ctypes.c_float()
                    raw.FPDFPathSegment_GetPoint(segment, x, y)
                    points += [x.value, y.value]
                    kinds.append(raw.FPDFPathSegment_GetType(segment) % 256)
                    closes.append(bool(raw.FPDFPathSegment_GetClose(segment)))
                paths.append((compose(outer, matrix(obj)), points, bytes(kinds), bytes(closes)))
            elif kind == raw.FPDF_PAGEOBJ_FORM and depth < max_depth:
                count = raw.FPDFFormObj_CountObjects(obj)
                inner = [raw.FPDFFormObj_GetObject(obj, i) for i in range(count)]
                walk(inner, compose(outer, matrix(obj)), depth + 1)

    count = raw.FPDFPage_CountObjects(page.raw)
    walk([raw.FPDFPage_GetObject(page.raw, i) for i in range(count)], (1.0, 0, 0, 1.0, 0, 0), 0)
    return has_images, paths


def _nested_forms_pdf(chain: int) -> bytes:
    """A page with a path, then a scaled form holding a rectangle, a curve, an image and a
    turned form with a line in it; then `chain` forms nested one in the next, each drawing a
    line."""
    form = b"/Type /XObject /Subtype /Form /BBox [-1000 -1000 1000 1000] "
    first_chained = 8
    chained = [
        stream(
            b"0 0 m %d 10 l S" % (10 + n) + (b" /Fc Do" if n + 1 < chain else b""),
            form
            + b"/Matrix [1 0 0 1 3 4] /Resources << /XObject << /Fc %d 0 R >> >>"
            % (first_chained + n + 1),
        )
        for n in range(chain)
    ]
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
            b"/Resources << /XObject << /Fm1 5 0 R /Fc %d 0 R >> >> >>" % first_chained,
            stream(b"100 700 m 300 700 l S q 1 0 0 1 50 60 cm /Fm1 Do Q /Fc Do"),
            stream(
                b"0 0 100 50 re S 10 10 m 20 30 40 30 50 10 c h S /Im1 Do /Fm2 Do",
                form + b"/Matrix [2 0 0 1.5 10 20] "
                b"/Resources << /XObject << /Fm2 6 0 R /Im1 7 0 R >> >>",
            ),
            stream(b"0 0 m 0 80 l S", form + b"/Matrix [0 1 -1 0 5.5 7.25]"),
            stream(
                b"\x80",
                b"/Type /XObject /Subtype /Image /Width 1 /Height 1 "
                b"/ColorSpace /DeviceGray /BitsPerComponent 8",
            ),
            *chained,
        ]
    )


def test_object_walk_in_c_matches_pdfiums_per_object_calls():
    # page_objects walks the page objects, forms and path segments in C: the same calls made
    # one by one from Python, with the reader's matrix arithmetic, must give the same paths to
    # the bit, in the same order, and the same images. The built page nests forms past the
    # depth the reader stops at (_MAX_FORM_DEPTH).
    documents = [pypdfium2.PdfDocument(str(path)) for path in sorted(SAMPLES.glob("*.pdf"))]
    documents.append(pypdfium2.PdfDocument(_nested_forms_pdf(chain=pdf._MAX_FORM_DEPTH + 3)))
    documents.append(pypdfium2.PdfDocument(str(REAL.parent / "bad" / "scanned.pdf")))
    segments = images = 0
    try:
        for document in documents:
            for page in document:
                found = pdf._pdfium_reader.page_objects(pdf._address(page.raw), pdf._MAX_FORM_DEPTH)
                assert found == _objects_by_pdfium_calls(page, pdf._MAX_FORM_DEPTH)
                segments += sum(len(kinds) for _, _, kinds, _ in found[1])
                images += found[0]
                page.close()
        assert segments > 500 and images == 2
        nested = documents[-2][0]
        has_images, paths = pdf._pdfium_reader.page_objects(pdf._address(nested.raw), 15)
        # The page's line; the rectangle and the curve of the scaled form; the line of the
        # turned form in it; one line for each chained form entered, down to depth 15 (the
        # chain's first form lies on the page, at depth 0).
        assert has_images and len(paths) == 4 + 15
        # The turned form's matrix to the page: its own, then the scaled form's, then the cm.
        assert paths[3][0] == (0.0, 1.5, -2.0, 0.0, 71.0, 90.875)
        assert paths[-1][:2] == ((1.0, 0.0, 0.0, 1.0, 45.0, 60.0), [0.0, 0.0, 24.0, 10.0])
        nested.close()
    finally:
        for document in documents:
            document.close()


def test_c_reader_refuses_a_null_handle():
    # A page or text page pdfium failed to load never reaches a loop: a clear error, no crash.
    with pytest.raises(ValueError, match="no text page handle"):
        pdf._pdfium_reader.page_chars(0, 0.0, 792.0)
    with pytest.raises(ValueError, match="no page handle"):
        pdf._pdfium_reader.page_objects(0, pdf._MAX_FORM_DEPTH)


def test_c_reader_binds_only_every_pdfium_function_at_an_address():
    # A refused bind leaves the functions bound at import in place: the reads still work.
    with pytest.raises(TypeError, match="takes the 15 pdfium function addresses"):
        pdf._pdfium_reader.bind(FPDFText_CountChars=1)
    names = ["FPDFText_GetUnicode", "FPDFText_HasUnicodeMapError", "FPDFText_GetLooseCharBox",
             "FPDFPage_CountObjects", "FPDFPage_GetObject", "FPDFPageObj_GetType",
             "FPDFPageObj_GetMatrix", "FPDFFormObj_CountObjects", "FPDFFormObj_GetObject",
             "FPDFPath_CountSegments", "FPDFPath_GetPathSegment", "FPDFPathSegment_GetPoint",
             "FPDFPathSegment_GetType", "FPDFPathSegment_GetClose"]  # fmt: skip
    with pytest.raises(TypeError, match="needs FPDFText_CountChars"):
        pdf._pdfium_reader.bind(**dict.fromkeys([*names, "FPDF_Unknown"], 1))
    with pytest.raises(ValueError, match="FPDFText_CountChars has no address"):
        pdf._pdfium_reader.bind(**dict.fromkeys([*names, "FPDFText_CountChars"], 0))
    document = pdf.read_pdf((SAMPLES / "01_huaian_shizhengfu_2024.pdf").read_bytes())
    assert len(document.tables()) >= 3


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
