"""The DOCX reader, on the seed report rendered by samples/render_seed.py and on small built files."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import docx
import pytest
from docx.document import Document as WordDocument
from docx.enum.style import WD_STYLE_TYPE
from docx.oxml import OxmlElement
from docx.oxml.ns import qn

from nianbao.parsers.blocks import Cell, Document, ParseError, Table
from nianbao.parsers.docx import DocxLimits, read_docx

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "huzhu-employment-2023.docx"
MB = 1024 * 1024


def flat(text: str) -> str:
    return re.sub(r"\s+", "", text)


def find(table: Table, label: str) -> tuple[int, Cell]:
    """The row a cell starts in and the cell, found by its text without whitespace."""
    for r, row in enumerate(table.rows):
        for cell in row:
            if flat(cell.text) == label:
                return r, cell
    raise AssertionError(f"no cell {label!r}")


def table_with(document: Document, label: str) -> Table:
    return next(
        t for t in document.tables() if any(flat(c.text) == label for r in t.rows for c in r)
    )


def docx_bytes(document: WordDocument) -> bytes:
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def rezip(data: bytes, replace: dict[str, bytes | None]) -> bytes:
    """A copy of the zip with entries replaced (bytes) or dropped (None)."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for name in src.namelist():
            if name not in replace:
                dst.writestr(name, src.read(name))
        for name, blob in replace.items():
            if blob is not None:
                dst.writestr(name, blob)
    return out.getvalue()


@pytest.fixture(scope="module")
def seed() -> Document:
    return read_docx(SAMPLE.read_bytes())


@pytest.fixture(scope="module")
def applications(seed: Document) -> Table:
    return table_with(seed, "申请人情况")


@pytest.fixture(scope="module")
def review(seed: Document) -> Table:
    return table_with(seed, "行政复议")


# --- the seed report ---------------------------------------------------------------------------


def test_seed_section_headings_come_from_the_heading_style(seed: Document) -> None:
    headings = [p.text for p in seed.paragraphs() if p.kind == "heading"]
    assert [h[:2] for h in headings] == ["一、", "二、", "三、", "四、", "五、", "六、"]


def test_seed_active_disclosure_heading_precedes_its_table(seed: Document) -> None:
    heading = next(
        i
        for i, b in enumerate(seed.blocks)
        if getattr(b, "text", None) == "二、主动公开政府信息情况"
    )
    table = seed.blocks.index(table_with(seed, "规章"))
    assert heading + 1 == table


def test_seed_article_20_blocks_span_the_whole_table(seed: Document) -> None:
    table = table_with(seed, "规章")
    width = len(table.grid()[0])
    for label in [
        "第二十条第（一）项",
        "第二十条第（五）项",
        "第二十条第（六）项",
        "第二十条第（八）项",
    ]:
        assert find(table, label)[1].colspan == width == 4


def test_seed_applicant_header_merges(applications: Table) -> None:
    corner = applications.rows[0][0]
    assert (corner.rowspan, corner.colspan) == (3, 3)
    assert find(applications, "申请人情况")[1].colspan == 7
    assert find(applications, "法人或其他组织")[1].colspan == 5
    assert find(applications, "自然人")[1].rowspan == 2
    assert find(applications, "总计")[1].rowspan == 2


def test_seed_outcome_head_spans_every_outcome_row(applications: Table) -> None:
    start, head = find(applications, "三、本年度办理结果")
    carried_forward, _ = find(applications, "四、")
    # 予以公开, 部分公开, 8 不予公开, 3 无法提供, 5 不予处理, one 其他处理 row, 总计.
    assert head.rowspan == carried_forward - start == 20


@pytest.mark.parametrize(
    ("group", "reasons"), [("(三)不予公开", 8), ("(四)无法提供", 3), ("(五)不予处理", 5)]
)
def test_seed_outcome_group_spans_its_numbered_reasons(
    applications: Table, group: str, reasons: int
) -> None:
    start, cell = find(applications, group)
    assert cell.rowspan == reasons
    grid = applications.grid()
    numbers = [flat(grid[r][2].text).split(".")[0] for r in range(start, start + reasons)]
    assert numbers == [str(n) for n in range(1, reasons + 1)]


def test_seed_other_handling_is_one_row(applications: Table) -> None:
    _, cell = find(applications, "(六)其他处理")
    assert (cell.rowspan, cell.colspan) == (1, 2)


def test_seed_every_applications_data_row_has_seven_zero_values(applications: Table) -> None:
    data_rows = applications.grid()[3:]
    assert len(data_rows) == 26 - 3
    for row in data_rows:
        values = row[3:]
        assert len({id(cell) for cell in values}) == 7
        assert [cell.text for cell in values] == ["0"] * 7


def test_seed_review_litigation_value_row_has_fifteen_cells(review: Table) -> None:
    assert [cell.text for cell in review.rows[-1]] == ["0"] * 15


def test_seed_cell_paragraphs_are_joined_by_newlines(review: Table) -> None:
    assert review.rows[1][0].text == "结果\n维持"
    assert review.rows[1][0].rowspan == 2


# --- small built documents ---------------------------------------------------------------------


def test_nested_table_follows_its_outer_table() -> None:
    document = docx.Document()
    outer = document.add_table(rows=1, cols=2)
    outer.cell(0, 0).text = "附表"
    holder = outer.cell(0, 1)
    holder.text = "见下表"
    inner = holder.add_table(rows=1, cols=2)
    inner.cell(0, 0).text, inner.cell(0, 1).text = "行政许可", "3"
    document.add_paragraph("表后文字")

    blocks = read_docx(docx_bytes(document)).blocks

    assert [type(b).__name__ for b in blocks] == ["Table", "Table", "Paragraph"]
    assert [c.text for c in blocks[0].rows[0]] == ["附表", "见下表"]
    assert [c.text for c in blocks[1].rows[0]] == ["行政许可", "3"]


def test_heading_style_named_in_chinese_is_a_heading() -> None:
    document = docx.Document()
    document.styles.add_style("标题 1", WD_STYLE_TYPE.PARAGRAPH)
    document.add_paragraph("一、总体情况", style="标题 1")

    (paragraph,) = read_docx(docx_bytes(document)).paragraphs()

    assert paragraph.kind == "heading"


def test_row_starting_after_grid_before_keeps_its_columns() -> None:
    document = docx.Document()
    table = document.add_table(rows=2, cols=3)
    for c, text in enumerate(["信息内容", "本年制发件数", "本年废止件数"]):
        table.cell(0, c).text = text
    table.cell(1, 1).text, table.cell(1, 2).text = "2", "1"
    # Word writes a row that skips its first grid column as w:gridBefore and one cell fewer.
    late = table.rows[1]._tr
    late.remove(late.tc_lst[0])
    grid_before = OxmlElement("w:gridBefore")
    grid_before.set(qn("w:val"), "1")
    late.get_or_add_trPr().append(grid_before)

    (read,) = read_docx(docx_bytes(document)).tables()

    assert [c.text if c else None for c in read.grid()[1]] == ["", "2", "1"]


def test_column_no_cell_starts_in_is_dropped() -> None:
    document = docx.Document()
    table = document.add_table(rows=2, cols=3)
    table.cell(0, 0).text = "信息内容"
    table.cell(0, 1).merge(table.cell(0, 2)).text = "本年处理决定数量"
    table.cell(1, 0).text = "行政许可"
    table.cell(1, 1).merge(table.cell(1, 2)).text = "0"

    (read,) = read_docx(docx_bytes(document)).tables()

    assert [[c.text for c in row] for row in read.grid()] == [
        ["信息内容", "本年处理决定数量"],
        ["行政许可", "0"],
    ]


def test_hairline_column_between_misaligned_borders_is_dropped() -> None:
    # LibreOffice's DOCX export of table 四: 行政诉讼 starts one twip right of where 总计 ends.
    document = docx.Document()
    table = document.add_table(rows=2, cols=3)
    table.cell(0, 0).text = "行政复议"
    table.cell(0, 1).merge(table.cell(0, 2)).text = "行政诉讼"
    table.cell(1, 0).merge(table.cell(1, 1)).text = "总计"
    table.cell(1, 2).text = "结果维持"
    table._tbl.tblGrid.gridCol_lst[1].set(qn("w:w"), "1")

    (read,) = read_docx(docx_bytes(document)).tables()

    assert [[c.text for c in row] for row in read.grid()] == [
        ["行政复议", "行政诉讼"],
        ["总计", "结果维持"],
    ]


# --- the package: only the parts the reader uses ----------------------------------------------

SEED_STYLES = zipfile.ZipFile(SAMPLE).read("word/styles.xml")


def _prefixed(xml: bytes, prefix: bytes) -> bytes:
    return re.sub(rb"(</?| )w:", rb"\1" + prefix + b":", xml).replace(
        b"xmlns:w=", b"xmlns:" + prefix + b"="
    )


@pytest.mark.parametrize(
    "styles",
    [
        pytest.param(_prefixed(SEED_STYLES, b"wx"), id="another-prefix"),
        pytest.param(
            SEED_STYLES.replace(b"<w:docDefaults>", b"<!-- a comment --><w:docDefaults>"),
            id="a-comment",
        ),
        pytest.param(
            SEED_STYLES.replace(b'w:styleId="Heading1"', b'w:styleId="Head&#105;ng1"'),
            id="a-character-reference-in-the-id",
        ),
        pytest.param(
            SEED_STYLES.replace(b'w:styleId="Heading1"', b"w:styleId = 'Heading1'"),
            id="single-quotes",
        ),
        pytest.param(SEED_STYLES.replace(b"<w:style ", b"<w:style\n "), id="line-breaks-in-tags"),
        pytest.param(SEED_STYLES.replace(b"</w:style>", b"</w:style >"), id="spaced-end-tags"),
        pytest.param(
            SEED_STYLES.decode("utf-8").replace("'UTF-8'", "'UTF-16'").encode("utf-16"),
            id="utf-16",
        ),
    ],
)
def test_heading_styles_are_found_however_the_styles_part_is_written(
    seed: Document, styles: bytes
) -> None:
    document = read_docx(rezip(SAMPLE.read_bytes(), {"word/styles.xml": styles}))

    assert [(p.text, p.kind) for p in document.paragraphs()] == [
        (p.text, p.kind) for p in seed.paragraphs()
    ]


def test_style_renamed_away_from_heading_is_no_longer_a_heading() -> None:
    styles = SEED_STYLES.replace(b'<w:name w:val="heading 1"/>', b'<w:name w:val="Quote"/>')
    document = read_docx(rezip(SAMPLE.read_bytes(), {"word/styles.xml": styles}))

    assert not [p for p in document.paragraphs() if p.kind == "heading"]


def test_damaged_heading_style_makes_the_document_corrupt() -> None:
    styles = SEED_STYLES.replace(b'<w:name w:val="heading 1"/>', b'<w:name w:val="heading 1">')
    with pytest.raises(ParseError) as error:
        read_docx(rezip(SAMPLE.read_bytes(), {"word/styles.xml": styles}))
    assert error.value.code == "corrupt_docx"


def test_damaged_part_the_reader_does_not_use_is_not_read(seed: Document) -> None:
    # python-docx parsed every part on open, so this used to fail the whole report.
    damaged = rezip(SAMPLE.read_bytes(), {"word/settings.xml": b"<w:settings"})

    assert read_docx(damaged) == seed


def test_main_part_of_another_content_type_is_corrupt() -> None:
    types = zipfile.ZipFile(SAMPLE).read("[Content_Types].xml")
    types = types.replace(b"document.main+xml", b"template.main+xml")
    with pytest.raises(ParseError) as error:
        read_docx(rezip(SAMPLE.read_bytes(), {"[Content_Types].xml": types}))
    assert error.value.code == "corrupt_docx"


# --- files that must not be read ---------------------------------------------------------------


def test_empty_file() -> None:
    with pytest.raises(ParseError) as error:
        read_docx(b"")
    assert error.value.code == "empty_file"


def test_random_bytes_are_corrupt() -> None:
    with pytest.raises(ParseError) as error:
        read_docx(bytes(range(256)) * 8)
    assert error.value.code == "corrupt_docx"


def test_zip_without_main_document_is_corrupt() -> None:
    data = rezip(SAMPLE.read_bytes(), {"word/document.xml": None})
    with pytest.raises(ParseError) as error:
        read_docx(data)
    assert error.value.code == "corrupt_docx"


def test_document_declaring_entities_is_corrupt() -> None:
    xml = (
        b'<?xml version="1.0"?><!DOCTYPE w:document [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        b"<w:body><w:p><w:r><w:t>&x;</w:t></w:r></w:p></w:body></w:document>"
    )
    with pytest.raises(ParseError) as error:
        read_docx(rezip(SAMPLE.read_bytes(), {"word/document.xml": xml}))
    assert error.value.code == "corrupt_docx"


def test_highly_compressed_entry_is_a_zip_bomb() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bomb:
        bomb.writestr("[Content_Types].xml", b"<Types/>")
        with bomb.open("word/media/image1.png", "w") as entry:
            for _ in range(64):
                entry.write(bytes(MB))
    with pytest.raises(ParseError) as error:
        read_docx(out.getvalue())
    assert error.value.code == "docx_zip_bomb"


def test_total_uncompressed_size_over_the_limit_is_a_zip_bomb() -> None:
    with pytest.raises(ParseError) as error:
        read_docx(SAMPLE.read_bytes(), DocxLimits(max_total_uncompressed=10_000))
    assert error.value.code == "docx_zip_bomb"


def test_too_many_entries_is_a_zip_bomb() -> None:
    with pytest.raises(ParseError) as error:
        read_docx(SAMPLE.read_bytes(), DocxLimits(max_entries=5))
    assert error.value.code == "docx_zip_bomb"
