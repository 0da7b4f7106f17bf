"""The PDF reader, on a real report (01 淮安市人民政府 2024) and on small PDFs built here."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pypdfium2
import pytest

from nianbao.parsers.blocks import Document, Paragraph, ParseError, Table
from nianbao.parsers.pdf import _join_lines, read_pdf
from nianbao.parsers.report import parse_bytes

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
HUAIAN = SAMPLES / "01_huaian_shizhengfu_2024.pdf"


def flat(text: str) -> str:
    return re.sub(r"\s+", "", text)


def table_with(document: Document, label: str) -> Table:
    return next(
        t for t in document.tables() if any(flat(c.text) == label for r in t.rows for c in r)
    )


def row_values(table: Table, label: str) -> list[str]:
    """Up to 7 value cells right of `label`, in the first grid row that holds it."""
    for row in table.grid():
        texts = [c.text if c else "" for c in row]
        if label in texts:
            return texts[texts.index(label) + 1 :][-7:]
    raise AssertionError(f"no row {label!r}")


@pytest.fixture(scope="module")
def huaian() -> Document:
    return read_pdf(HUAIAN.read_bytes())


# --- the real report -------------------------------------------------------------------------------


def test_page_count_and_block_pages(huaian: Document) -> None:
    assert huaian.format == "pdf"
    assert huaian.pages == 6
    pages = [b.page for b in huaian.blocks]
    assert pages == sorted(pages)
    assert table_with(huaian, "1.属于国家秘密").page == 4


def test_table3_is_one_table_across_the_page_break(huaian: Document) -> None:
    table = table_with(huaian, "1.属于国家秘密")
    assert row_values(table, "2.没有现成信息需要另行制作") == ["11", "0", "0", "0", "0", "0", "11"]
    assert row_values(table, "四、结转下年度继续办理") == ["103", "0", "0", "0", "0", "0", "103"]
    assert len(table.grid()[0]) == 10


def test_group_label_broken_by_the_page_break_is_merged(huaian: Document) -> None:
    table = table_with(huaian, "1.属于国家秘密")
    texts = [c.text for row in table.rows for c in row]
    assert "法提供" not in texts and "（四）无" not in texts
    grid = table.grid()
    covered = [r for r, row in enumerate(grid) if row[1] and row[1].text == "（四）无法提供"]
    labels = [grid[r][2].text for r in covered]
    assert labels == [
        "1.本机关不掌握相关政府信息",
        "2.没有现成信息需要另行制作",
        "3.补正后申请内容仍不明确",
    ]


def test_group_column_spans_down_across_the_page_break(huaian: Document) -> None:
    table = table_with(huaian, "1.属于国家秘密")
    _, cell = next(
        (r, c) for r, row in enumerate(table.rows) for c in row if c.text == "三、本年度办理结果"
    )
    # (一) to (七): 2 one-row groups, 8 + 3 + 5 + 3 sub-rows and 总计.
    assert cell.rowspan == 2 + 8 + 3 + 5 + 3 + 1


def test_one_character_per_line_header_comes_out_whole(huaian: Document) -> None:
    texts = {c.text for t in huaian.tables() for row in t.rows for c in row}
    assert "三、本年度办理结果" in texts


def test_letter_spaced_wrapped_headers_lose_their_spaces(huaian: Document) -> None:
    texts = {c.text for t in huaian.tables() for row in t.rows for c in row}
    assert {"商业企业", "社会公益组织", "法律服务机构", "结果维持", "尚未审结"} <= texts


def test_table3_application_columns_balance(huaian: Document) -> None:
    # R1: 一 + 二 = 三(七)总计 + 四, for every applicant column including 总计.
    table = table_with(huaian, "1.属于国家秘密")

    def values(label: str) -> list[int]:
        return [int(v) for v in row_values(table, label)]

    received = [
        a + b
        for a, b in zip(
            values("一、本年新收政府信息公开申请数量"),
            values("二、上年结转政府信息公开申请数量"),
            strict=True,
        )
    ]
    handled = [
        a + b for a, b in zip(values("（七）总计"), values("四、结转下年度继续办理"), strict=True)
    ]
    assert received == handled


def test_table3_values_match_the_gold_transcription(huaian: Document) -> None:
    gold = json.loads((SAMPLES / "01_huaian_shizhengfu_2024.gold.json").read_text("utf-8"))
    expected = Counter(tuple(str(v) for v in values) for values in gold["table3"]["rows"].values())
    grid = table_with(huaian, "1.属于国家秘密").grid()
    found = Counter(
        tuple(c.text for c in row[-7:]) for row in grid if row[-1] and row[-1].text.isdigit()
    )
    assert found == expected


def test_table4_last_row_holds_15_values(huaian: Document) -> None:
    table = table_with(huaian, "未经复议直接起诉")
    values = [72, 64, 178, 37, 351, 13, 4, 8, 1, 26, 12, 1, 1, 6, 20]
    assert [int(c.text) for c in table.rows[-1]] == values


def test_table2_sub_tables_keep_their_captions(huaian: Document) -> None:
    texts = {c.text for t in huaian.tables() for row in t.rows for c in row}
    assert {"第二十条第（一）项", "第二十条第（五）项", "第二十条第（八）项"} <= texts
    assert row_values(table_with(huaian, "第二十条第（一）项"), "行政规范性文件") == [
        "8",
        "26",
        "66",
    ]


def test_framed_text_box_comes_out_as_paragraphs(huaian: Document) -> None:
    box = next(p for p in huaian.paragraphs() if "统计期限自 2024 年 1 月 1 日" in p.text)
    assert box.page == 1
    assert box.text.startswith("本报告由淮安市人民政府办公室根据《中华人民共和国政府信息公开条例》")
    assert all(len(t.grid()[0]) > 1 for t in huaian.tables())


def test_paragraph_split_by_a_page_break_is_joined(huaian: Document) -> None:
    paragraph = next(p for p in huaian.paragraphs() if "“建设‘四最’一流营商环境" in p.text)
    assert paragraph.page == 1
    assert paragraph.text.endswith("回应舆论关切。")


def test_headings_are_paragraphs_of_their_own(huaian: Document) -> None:
    texts = [p.text for p in huaian.paragraphs()]
    assert {"一、总体情况", "二、主动公开政府信息情况", "六、其他需要报告的事项"} <= set(texts)


def test_heading_sits_right_before_its_table(huaian: Document) -> None:
    blocks = huaian.blocks
    i = blocks.index(table_with(huaian, "1.属于国家秘密"))
    assert isinstance(blocks[i - 1], Paragraph)
    assert blocks[i - 1].text == "三、收到和处理政府信息公开申请情况"


def test_page_numbers_are_dropped(huaian: Document) -> None:
    assert not [p.text for p in huaian.paragraphs() if re.fullmatch(r"[-\s\d]+", p.text)]
    assert not any(p.text.startswith("- ") for p in huaian.paragraphs())


@pytest.mark.parametrize(
    ("lines", "joined"),
    [
        (["三、", "本", "年", "度"], "三、本年度"),
        (["商 业 企", "业"], "商业企业"),
        (["政策解读", "21 个"], "政策解读21 个"),
        (["Annual", "report 2024"], "Annual report 2024"),
    ],
)
def test_wrapped_lines_join_without_spaces_next_to_cjk(lines: list[str], joined: str) -> None:
    assert _join_lines(lines) == joined


# --- small PDFs built here -------------------------------------------------------------------------


def build_pdf(objects: list[bytes], trailer: bytes = b"") -> bytes:
    """A PDF whose object n is objects[n - 1]; object 1 must be the catalog."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R %s >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        trailer,
        xref,
    )
    return bytes(out)


def stream(content: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s >>\nstream\n%s\nendstream" % (len(content), extra, content)


def pages_pdf(contents: list[bytes], to_unicode: bytes | None = None) -> bytes:
    """One page per content stream, with Helvetica as /F1 (mapped through `to_unicode` if given)
    and a 1x1 grey image as /Im1."""
    first_page = 5
    cmap = first_page + 2 * len(contents)
    kids = b" ".join(b"%d 0 R" % (first_page + 2 * i) for i in range(len(contents)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(contents)),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica %s >>"
        % (b"/ToUnicode %d 0 R" % cmap if to_unicode else b""),
        stream(
            b"\x80",
            b"/Type /XObject /Subtype /Image /Width 1 /Height 1 "
            b"/ColorSpace /DeviceGray /BitsPerComponent 8",
        ),
    ]
    for i, content in enumerate(contents):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents %d 0 R "
            b"/Resources << /Font << /F1 3 0 R >> /XObject << /Im1 4 0 R >> >> >>"
            % (first_page + 2 * i + 1)
        )
        objects.append(stream(content))
    if to_unicode:
        objects.append(stream(to_unicode))
    return build_pdf(objects)


def text_at(lines: list[tuple[float, float, str]]) -> bytes:
    return b"\n".join(b"BT /F1 12 Tf %g %g Td (%s) Tj ET" % (x, y, t.encode()) for x, y, t in lines)


SCAN = b"q 595 0 0 842 0 0 cm /Im1 Do Q"


def test_empty_file() -> None:
    with pytest.raises(ParseError) as err:
        read_pdf(b"")
    assert err.value.code == "empty_file"


def test_truncated_file_is_corrupt() -> None:
    data = HUAIAN.read_bytes()
    with pytest.raises(ParseError) as err:
        read_pdf(data[: len(data) * 3 // 10])
    assert err.value.code == "corrupt_pdf"


def test_bytes_that_are_not_a_pdf_are_corrupt() -> None:
    with pytest.raises(ParseError) as err:
        read_pdf(b"<html><body>404 Not Found</body></html>")
    assert err.value.code == "corrupt_pdf"


def rc4(key: bytes, data: bytes) -> bytes:
    s, j = list(range(256)), 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256
        s[i], s[j] = s[j], s[i]
    out, i, j = bytearray(), 0, 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + s[i]) % 256
        s[i], s[j] = s[j], s[i]
        out.append(byte ^ s[(s[i] + s[j]) % 256])
    return bytes(out)


def encrypted_pdf(user_password: bytes) -> bytes:
    """A blank page under the standard security handler, revision 2 (40-bit RC4). The page has
    no strings or streams, so nothing but the /O and /U entries needs computing."""
    pad = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")
    file_id, permissions = b"0123456789abcdef", -4
    owner = rc4(hashlib.md5((b"owner" + pad)[:32]).digest()[:5], (user_password + pad)[:32])
    key = hashlib.md5(
        (user_password + pad)[:32]
        + owner
        + permissions.to_bytes(4, "little", signed=True)
        + file_id
    ).digest()[:5]
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
            b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P %d >>"
            % (owner.hex().encode(), rc4(key, pad).hex().encode(), permissions),
        ],
        b"/Encrypt 4 0 R /ID [<%s> <%s>]" % (file_id.hex().encode(), file_id.hex().encode()),
    )


def test_encrypted_pdf() -> None:
    data = encrypted_pdf(b"secret")
    assert len(pypdfium2.PdfDocument(data, password="secret")) == 1  # the file itself is sound
    with pytest.raises(ParseError) as err:
        read_pdf(data)
    assert err.value.code == "encrypted_pdf"


def test_blank_pdf_has_no_text_layer() -> None:
    pdf = pypdfium2.PdfDocument.new()
    pdf.new_page(595, 842)
    out = io.BytesIO()
    pdf.save(out)
    with pytest.raises(ParseError) as err:
        read_pdf(out.getvalue())
    assert err.value.code == "no_text_layer"


def test_scanned_pdf_has_no_text_layer() -> None:
    with pytest.raises(ParseError) as err:
        read_pdf(pages_pdf([SCAN, SCAN]))
    assert err.value.code == "no_text_layer"


def test_a_scanned_page_among_text_pages_is_reported() -> None:
    document = read_pdf(pages_pdf([text_at([(72, 700, "Report text.")]), SCAN]))
    assert [p.text for p in document.paragraphs()] == ["Report text."]
    assert [(p.code, p.page) for p in document.problems] == [("no_text_layer", "2")]


def test_text_without_a_unicode_map_is_garbled() -> None:
    # Every code mapped to U+FFFD: what a broken embedded font's ToUnicode map looks like.
    cmap = (
        b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /Broken def "
        b"1 begincodespacerange <00> <FF> endcodespacerange "
        b"1 beginbfrange <00> <FF> [" + b"<FFFD> " * 256 + b"] endbfrange "
        b"endcmap CMapName currentdict /CMap defineresource pop end end"
    )
    data = pages_pdf([text_at([(72, 700, "Gibberish to the reader")])], to_unicode=cmap)
    with pytest.raises(ParseError) as err:
        read_pdf(data)
    assert err.value.code == "garbled_text"


def test_a_character_above_u_ffff_is_one_character_and_a_lone_half_unreadable() -> None:
    # Regression: pdfium gives a character past U+FFFF (CJK Extension B, in rare names and
    # places) as its two UTF-16 halves; passed on as they were, `parse --json` failed to
    # encode them. A half without its partner reads as U+FFFD.
    cmap = (
        b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /Ext def "
        b"1 begincodespacerange <00> <FF> endcodespacerange "
        b"3 beginbfchar <41> <D840DC00> <42> <D840> <43> <4E2D> endbfchar "
        b"endcmap CMapName currentdict /CMap defineresource pop end end"
    )
    data = pages_pdf([text_at([(72, 700, "ACAB")])], to_unicode=cmap)
    assert [p.text for p in read_pdf(data).paragraphs()] == ["\U00020000中\U00020000\ufffd"]
    parsed = json.loads(parse_bytes(data, "ext-b.pdf").json_line())
    assert "\U00020000中\U00020000" in json.dumps(parsed, ensure_ascii=False)


def test_running_headers_and_page_numbers_are_dropped() -> None:
    pages = [
        text_at(
            [
                (72, 800, "Huaian People's Government"),
                (72, 400, f"Body text {n}."),
                (290, 40, str(n)),
            ]
        )
        for n in range(1, 5)
    ]
    document = read_pdf(pages_pdf(pages))
    assert [p.text for p in document.paragraphs()] == [f"Body text {n}." for n in range(1, 5)]


def ruled(cells: list[tuple[int, int, int, int, str]]) -> bytes:
    """Content of a page holding one ruled table on a 100 x 20 pt grid near the top;
    each cell is (row, col, rowspan, colspan, text)."""
    ops = []
    for row, col, rowspan, colspan, text in cells:
        x, y = 72 + 100 * col, 742 - 20 * (row + rowspan)
        ops.append(b"%d %d %d %d re S" % (x, y, 100 * colspan, 20 * rowspan))
        top = y + 20 * rowspan - 14
        ops.append(b"BT /F1 10 Tf %d %d Td (%s) Tj ET" % (x + 3, top, text.encode()))
    return b"\n".join(ops)


FIRST_PAGE = ruled(
    [
        (0, 0, 1, 2, "Outcome"),
        (0, 2, 1, 1, "Count"),
        (1, 0, 1, 2, "Granted"),
        (1, 2, 1, 1, "5"),
        (2, 0, 1, 1, "Cannot"),
        (2, 1, 1, 1, "1. Not held"),
        (2, 2, 1, 1, "7"),
    ]
)


def test_group_label_continuing_on_the_next_page_extends_its_cell() -> None:
    second = ruled(
        [
            (0, 0, 2, 1, "provide"),
            (0, 1, 1, 1, "2. Not made"),
            (0, 2, 1, 1, "3"),
            (1, 1, 1, 1, "3. Unclear"),
            (1, 2, 1, 1, "1"),
            (2, 0, 1, 2, "Total"),
            (2, 2, 1, 1, "16"),
        ]
    )
    [table] = read_pdf(pages_pdf([FIRST_PAGE, second])).tables()
    grid = [[c.text if c else None for c in row] for row in table.grid()]
    assert grid[2:] == [
        ["Cannot provide", "1. Not held", "7"],
        ["Cannot provide", "2. Not made", "3"],
        ["Cannot provide", "3. Unclear", "1"],
        ["Total", "Total", "16"],
    ]


def test_new_group_label_on_the_next_page_starts_its_own_cell() -> None:
    second = ruled(
        [
            (0, 0, 2, 1, "(5) Refused"),
            (0, 1, 1, 1, "1. Complaint"),
            (0, 2, 1, 1, "4"),
            (1, 1, 1, 1, "2. Repeated"),
            (1, 2, 1, 1, "2"),
        ]
    )
    [table] = read_pdf(pages_pdf([FIRST_PAGE, second])).tables()
    assert [row[0].text for row in table.grid()[2:]] == ["Cannot", "(5) Refused", "(5) Refused"]


def test_rows_with_blank_values_under_a_group_cut_by_the_break_continue_the_table() -> None:
    # The next page opens on a row whose value is blank, and the group label's column holds
    # nothing there: no column at all, so the table on it is one column narrower.
    second = ruled(
        [
            (0, 1, 1, 1, "2. Not made"),
            (0, 2, 1, 1, ""),
            (1, 1, 1, 1, "3. Unclear"),
            (1, 2, 1, 1, "1"),
        ]
    )
    [table] = read_pdf(pages_pdf([FIRST_PAGE, second])).tables()
    assert [[c.text for c in row] for row in table.rows[3:]] == [
        ["2. Not made", ""],
        ["3. Unclear", "1"],
    ]


def test_table_with_its_own_header_on_the_next_page_stays_separate() -> None:
    second = ruled(
        [(0, 0, 1, 2, "Outcome"), (0, 2, 1, 1, "Count"), (1, 0, 1, 2, "Other"), (1, 2, 1, 1, "2")]
    )
    assert len(read_pdf(pages_pdf([FIRST_PAGE, second])).tables()) == 2


def test_only_pages_with_ruled_tables_go_to_the_table_finder():
    # Page 1 holds a framed text box and page 6 only prose: neither is searched for tables.
    from nianbao.parsers.pdf import _scan_page

    document = pypdfium2.PdfDocument(str(SAMPLES / "01_huaian_shizhengfu_2024.pdf"))
    ruled = [_scan_page(document, i).ruled for i in range(len(document))]
    assert ruled == [False, False, True, True, True, False]


def test_table_pages_are_not_parsed_by_pdfminer():
    # The ruled pages' tables come from pdfium's paths and characters: pdfminer, which cost
    # ~100 ms a page under pdfplumber.open(), must not run at all. A profiler in a fresh process
    # records every Python function called during read_pdf.
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from nianbao.parsers.pdf import read_pdf\n"
        "data = Path(sys.argv[1]).read_bytes()\n"
        "called = set()\n"
        "def profile(frame, event, arg):\n"
        "    if event == 'call':\n"
        "        called.add(frame.f_code.co_filename)\n"
        "sys.setprofile(profile)\n"
        "document = read_pdf(data)\n"
        "sys.setprofile(None)\n"
        "print(len(document.tables()))\n"
        "print(sorted({f for f in called if 'pdfminer' in f or f.endswith(('pdfplumber/pdf.py',"
        " 'pdfplumber/page.py'))}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(HUAIAN)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    tables, modules = result.stdout.splitlines()
    assert int(tables) >= 2
    assert modules == "[]"


def test_a_narrower_table_whose_first_row_is_blank_stays_separate() -> None:
    # Regression: a first row of blank cells counted as "labels, then figures or blanks", so a
    # table whose header row OCR left blank was joined to the table above it.
    second = ruled(
        [
            (0, 1, 1, 1, ""),
            (0, 2, 1, 1, ""),
            (1, 1, 1, 1, "Other"),
            (1, 2, 1, 1, "2"),
        ]
    )
    assert len(read_pdf(pages_pdf([FIRST_PAGE, second])).tables()) == 2
