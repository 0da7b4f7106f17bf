"""Real reports after another tool has converted them: every printed cell and every rule outcome
must survive the conversion.

The fast conversions run here, into `tmp_path`, with the real tools: pdftocairo (poppler)
re-writes a PDF through cairo, `pdftotext -layout` keeps a PDF's layout as text, `pdftohtml` sets
each run of a PDF's text at its position in HTML, Chromium prints an HTML report to PDF, python-docx
re-saves a DOCX. LibreOffice's conversions take a second or two each, so they are committed in
`tests/fixtures/converted/` (made by its `make_converted.py`). Cells are scored by the project's own
evaluation (`flows.evaluate`) against the sample's hand-checked gold, named by reference in a
`*.canon.json` beside the conversion; rule outcomes are held against the sample's own parse.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import zipfile
from functools import cache
from pathlib import Path

import docx
import pytest

from nianbao.flows.evaluate import cell_matches, evaluate
from nianbao.parsers.detect import sniff_format
from nianbao.parsers.report import parse_bytes, parse_file
from nianbao.parsers.text import read_text

from .helpers import REAL, ROOT, SAMPLES

CONVERTED = ROOT / "tests" / "fixtures" / "converted"
HUAIAN = SAMPLES / "01_huaian_shizhengfu_2024.pdf"
SHANGHAI = SAMPLES / "04_shanghai_szfbgt_2019.html"
HUZHU_DOCX = SAMPLES / "huzhu-employment-2023.docx"
HUZHU_HTML = SAMPLES / "huzhu-employment-2023.html"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (.ci/system-packages.sh installs it)")
    return found


@cache
def _checks(path: Path) -> list[tuple[str, str, bool]]:
    return sorted((c.rule, c.scope, c.ok) for c in parse_file(str(path)).checks)


def _assert_like_sample(converted: Path, sample: Path) -> None:
    """Every gold cell of `sample` read right from `converted`, with the same metadata and
    sections, and every rule (R1–R6) with the same outcome as the sample's own parse."""
    gold = converted.with_name(converted.name.split(".")[0] + ".test.canon.json")
    gold.write_text(
        json.dumps(
            {
                "applies_to": [converted.name],
                "facts_from": str(sample.with_name(sample.name.split(".")[0] + ".canon.json")),
            }
        ),
        "utf-8",
    )
    (score,) = evaluate([converted.parent])
    assert score.wrong == [] and score.cells > 180, score.wrong
    assert score.metadata_errors == [] and score.missing_sections == []
    assert _checks(converted) == _checks(sample)
    assert _checks(sample)  # the rules ran: a report with no checks would pass vacuously


def _pdftocairo(sample: Path, out: Path) -> Path:
    converted = out / f"{sample.stem}.cairo.pdf"
    subprocess.run([_tool("pdftocairo"), "-pdf", str(sample), str(converted)], check=True)
    return converted


def _chromium_print(sample: Path, out: Path) -> Path:
    converted = out / f"{sample.stem}.chromium.pdf"
    subprocess.run(
        [
            _tool("chromium"),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            f"--user-data-dir={out / 'profile'}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={converted}",
            sample.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return converted


def test_pdftocairo_rewrite_of_a_wps_pdf_keeps_every_cell(tmp_path: Path) -> None:
    # cairo cannot write WPS's fake-bold headings (text filled and stroked) as text alone: it
    # adds each glyph's outline as paths, and their straight strokes used to rule columns
    # through the table below (表二's 规章 row read as `规章 1 | ''`, 447228 as 28).
    converted = _pdftocairo(HUAIAN, tmp_path)
    facts = {f.key: f for f in parse_file(str(converted)).facts}
    assert facts["active_disclosure/rules/issued"].value == 1
    assert facts["active_disclosure/normative_documents/issued"].value == 8
    assert facts["active_disclosure/licensing/decisions"].value == 447228
    _assert_like_sample(converted, HUAIAN)


def test_pdftocairo_rewrite_of_a_libreoffice_pdf_keeps_every_cell(tmp_path: Path) -> None:
    sample = SAMPLES / "huzhu-employment-2023.pdf"
    _assert_like_sample(_pdftocairo(sample, tmp_path), sample)


def test_chromium_print_of_a_spanned_html_table_keeps_every_column(tmp_path: Path) -> None:
    # Chromium draws each cell's border as a bar, and the table's border as another beside it;
    # their sides chained in the snapping into the next table's border, which moved the last
    # column's rule off the rows' ends and lost 本年增/减 and 采购总金额.
    converted = _chromium_print(SHANGHAI, tmp_path)
    facts = {f.key: f for f in parse_file(str(converted)).facts}
    assert facts["active_disclosure/procurement/projects"].value == 6
    procurement = facts["active_disclosure/procurement/amount"]
    assert (procurement.value, procurement.unit) == (251000, "元")
    assert facts["active_disclosure/fees/change"].value == 0
    _assert_like_sample(converted, SHANGHAI)


def test_chromium_print_of_the_seed_html_keeps_every_cell(tmp_path: Path) -> None:
    _assert_like_sample(_chromium_print(HUZHU_HTML, tmp_path), HUZHU_HTML)


def _pdftotext_layout(sample: Path, out: Path) -> Path:
    converted = out / f"{sample.stem}.layout.txt"
    subprocess.run([_tool("pdftotext"), "-layout", str(sample), str(converted)], check=True)
    return converted


def test_pdftotext_layout_of_a_wps_pdf_keeps_every_cell(tmp_path: Path) -> None:
    # Columns set apart by runs of spaces; 表四's header over seven lines with a line of fifteen
    # values under it; sub-row labels wrapped over two lines with their values level with one.
    converted = _pdftotext_layout(HUAIAN, tmp_path)
    text = converted.read_text("utf-8")
    assert "|" not in text and "\t" not in text
    facts = {f.key: f for f in parse_file(str(converted)).facts}
    assert facts["review_litigation/review/total"].value == 351
    assert facts["review_litigation/litigation_after_review/total"].value == 20
    _assert_like_sample(converted, HUAIAN)


def test_pdftotext_layout_puts_wrapped_labels_back_together(tmp_path: Path) -> None:
    # The seed PDF's 表三 sets a wrapped label's values level with the line between its pieces
    # (`(二) 部分公开（区分处理的，只计这一情` / values / `形，不计其他情形）`), and a group's
    # label (`(三) 不予公` / `开`) on lines between its sub-rows.
    sample = SAMPLES / "huzhu-employment-2023.pdf"
    converted = _pdftotext_layout(sample, tmp_path)
    assert "(二) 部分公开（区分处理的，只计这一情\n" in converted.read_text("utf-8")
    _assert_like_sample(converted, sample)


def test_pdftotext_layout_table_opening_on_a_wrapped_label_keeps_its_first_piece(
    tmp_path: Path,
) -> None:
    # The seed's 表三 cut where a sentence ends and the table's first row is the wrapped
    # `(二) 部分公开（区分处理的，只计这一情` / values / `形，不计其他情形）`: the fragment above
    # the first row of values opened no run, stayed a paragraph, and the row's label was its
    # second piece alone.
    lines = _pdftotext_layout(SAMPLES / "huzhu-employment-2023.pdf", tmp_path).read_text("utf-8")
    lines = lines.splitlines()
    first = next(i for i, line in enumerate(lines) if "(二) 部分公开（区分处理的" in line)
    text = "\n".join(["（三）本年度办理结果如下。", *lines[first : first + 4]]) + "\n"
    blocks = read_text(text.encode("utf-8")).blocks
    assert [type(b).__name__ for b in blocks] == ["Paragraph", "Table"]
    rows = [[cell.text for cell in row] for row in blocks[1].rows]  # type: ignore[union-attr]
    assert "(二) 部分公开（区分处理的，只计这一情形，不计其他情形）" in rows[0]
    assert rows[0][-7:] == ["0"] * 7
    assert "1. 属于国家秘密" in rows[1]


def test_pdftotext_layout_of_a_chromium_print_keeps_every_cell(tmp_path: Path) -> None:
    # Two conversions: Chromium's PDF sets long labels one space from their first value
    # (`…不计其他 0`) and a label's last character alone under its row (`息`).
    converted = _pdftotext_layout(_chromium_print(HUZHU_HTML, tmp_path), tmp_path)
    _assert_like_sample(converted, HUZHU_HTML)


def test_pdftotext_layout_with_blank_cells_reports_them_and_guesses_nothing(
    tmp_path: Path,
) -> None:
    # The Shanghai report prints zeros blank: as layout text its rows show fewer values than
    # columns, and which column each belongs to is not guessed from spacing.
    converted = _pdftotext_layout(_chromium_print(SHANGHAI, tmp_path), tmp_path)
    result = parse_file(str(converted))
    gold = json.loads((SAMPLES / "04_shanghai_szfbgt_2019.canon.json").read_text("utf-8"))
    facts = {f.key: f for f in result.facts}
    read = [key for key in gold["facts"] if key in facts]
    assert len(read) >= 19  # 表二's full rows
    assert [key for key in read if not cell_matches(gold["facts"][key], facts[key])] == []
    assert sum(p.code == "row_cells_missing" for p in result.problems) >= 10


def test_layout_text_line_with_a_figure_inside_its_text_is_no_row(tmp_path: Path) -> None:
    # A sentence whose figure a converter set apart (`国令第  711  号`) ends in text, not a value:
    # it was read as a row of values and its missing value cell crashed the table reader.
    text = (
        "二、主动公开政府信息情况\n"
        "   信息内容      本年制发件数    本年废止件数    现行有效件数\n"
        "   规章            1            0           11\n"
        "   行政规范性文件    8            26          66\n"
        "   根据《条例》（国令第   711   号）规定\n"
    )
    result = parse_bytes(text.encode("utf-8"), "layout.txt")
    assert result.status != "failed", result.problems
    facts = {f.key: f.value for f in result.facts}
    assert facts["active_disclosure/rules/in_force"] == 11
    assert facts["active_disclosure/normative_documents/repealed"] == 26


def _pdftohtml(sample: Path, out: Path, *options: str) -> Path:
    converted = out / f"{sample.stem}.pdftohtml.html"
    subprocess.run(
        [_tool("pdftohtml"), "-s", "-noframes", "-i", "-q", *options, str(sample), str(converted)],
        check=True,
    )
    return converted


def test_pdftohtml_positioned_text_of_a_wps_pdf_keeps_every_cell(tmp_path: Path) -> None:
    # No <table>: every run of text is a <p> at its own top and left, a figure set in another
    # font than its label starts higher, and the prose's figures are runs of their own.
    converted = _pdftohtml(HUAIAN, tmp_path)
    assert "<table" not in converted.read_text("utf-8")
    facts = {f.key: f for f in parse_file(str(converted)).facts}
    assert facts["active_disclosure/rules/issued"].value == 1
    assert facts["active_disclosure/normative_documents/in_force"].value == 66
    _assert_like_sample(converted, HUAIAN)


def test_pdftohtml_complex_output_of_the_seed_pdf_keeps_every_cell(tmp_path: Path) -> None:
    sample = SAMPLES / "huzhu-employment-2023.pdf"
    _assert_like_sample(_pdftohtml(sample, tmp_path, "-c"), sample)


def test_pdftohtml_of_a_chromium_print_keeps_every_cell(tmp_path: Path) -> None:
    # Chromium's PDF maps some characters to Kangxi radicals (⾏政许可), and a table's caption
    # (第二十条第（六）项) sits under a row, left of its values, but not under its label.
    converted = _pdftohtml(_chromium_print(HUZHU_HTML, tmp_path), tmp_path)
    _assert_like_sample(converted, HUZHU_HTML)


# A CMS's wrapper round a whole page: positioned, but holding the page's paragraphs and tables.
_POSITIONED_WRAPPER = '<div style="position:absolute; top:120px; left:0px">'


def _wrap_body(html: str, opening: str, closing: str) -> str:
    html, opened = re.subn(r"(<body[^>]*>)", lambda m: m.group(1) + opening, html, count=1)
    assert opened == 1
    return html.replace("</body>", closing + "</body>")


def test_positioned_wrapper_round_an_html_report_is_read_as_html(tmp_path: Path) -> None:
    # The wrapper's style has `absolute`, a top and a left: it was taken for one positioned run
    # holding the whole report, laid out as one line, and all 198 cells were lost (status
    # `parsed`, no facts).
    converted = tmp_path / "04_shanghai_szfbgt_2019.wrapped.html"
    converted.write_text(
        _wrap_body(SHANGHAI.read_text("utf-8"), _POSITIONED_WRAPPER, "</div>"), "utf-8"
    )
    _assert_like_sample(converted, SHANGHAI)


def test_pdftohtml_runs_nested_in_positioned_elements_count_once(tmp_path: Path) -> None:
    # pdftohtml's pages inside a positioned wrapper, and each run's text inside a positioned
    # <span> of its own (0, 0 from its run): the wrapper holds blocks and is no run, the text of
    # each span is placed once, where the span's offsets added to its run's put it.
    made = tmp_path / "made"
    made.mkdir()
    html = _pdftohtml(HUAIAN, made).read_text("utf-8")
    runs = re.compile(r'(<p style="position:absolute;[^"]*"[^>]*>)(.*?)(</p>)', re.S)
    html, nested = runs.subn(
        lambda m: (
            m.group(1)
            + '<span style="position:absolute;top:0px;left:0px">'
            + m.group(2)
            + "</span>"
            + m.group(3)
        ),
        html,
    )
    assert nested > 100
    converted = tmp_path / f"{HUAIAN.stem}.nested.html"
    converted.write_text(_wrap_body(html, _POSITIONED_WRAPPER, "</div>"), "utf-8")
    _assert_like_sample(converted, HUAIAN)


def _figures_set_apart(text: str) -> str:
    """A report's text as a converter sets it: each figure of its prose two spaces from the words
    round it (`共计  120  条`); the crawl's metadata lines above its 正文 rule and the lines of a
    table printed with bars stay as they are."""
    head, rule, body = text.rpartition("正文 ====================\n")
    figure = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)(?![\d.%])")
    lines = [line if "|" in line else figure.sub(r"  \1  ", line) for line in body.split("\n")]
    return head + rule + "\n".join(lines)


FREE_FORM = sorted(REAL.glob("*_freeform.txt"))


@pytest.mark.parametrize("path", FREE_FORM, ids=[p.stem for p in FREE_FORM])
def test_prose_with_figures_set_apart_is_no_layout_table(path: Path, tmp_path: Path) -> None:
    # `2013年制作、获取政府信息总数  3618  条，其中…` ends in a value and has three cells or more:
    # it was read as a row of a layout table, and the report's prose facts were lost (平潭 2013
    # 31 → 0, 2015 22 → 0). A cell with a clause's punctuation, or longer than a cell, is prose.
    # And the spaces before a figure ended its words, so no row's cue matched (29 → 31 of 49).
    original = path.read_text("utf-8")
    spaced = _figures_set_apart(original)
    assert spaced.count("  ") >= original.count("  ") + 10  # figures set apart
    kinds = [type(b).__name__ for b in read_text(spaced.encode("utf-8")).blocks]
    assert kinds == [type(b).__name__ for b in read_text(original.encode("utf-8")).blocks]
    (tmp_path / path.name).write_text(spaced, "utf-8")
    shutil.copy(path.with_suffix(".facts.json"), tmp_path)
    (score,) = evaluate([tmp_path])
    # Every gold figure read but 平潭 2015's 统计表 cells that the crawl ran into the next row's
    # number (`2949819162、`): spaced as one figure, they no longer split at the numbering.
    read = score.cells - len(score.wrong)
    assert read == score.cells - (12 if path.name.startswith("30_") else 0), score.wrong
    assert not [w for w in score.wrong if not w.endswith("not found")], score.wrong


def test_layout_prose_line_between_table_rows_is_no_row() -> None:
    # A sentence ending in a figure set apart, between a layout table's rows and the text after.
    text = (
        "二、主动公开政府信息情况\n"
        "   信息内容      本年制发件数    本年废止件数    现行有效件数\n"
        "   规章            1            0           11\n"
        "   行政规范性文件    8            26          66\n"
        "2023年，本机关主动公开政府信息共计  120  条，其中规章  2  件，规范性文件  15\n"
    )
    result = parse_bytes(text.encode("utf-8"), "layout.txt")
    facts = {f.key: f.value for f in result.facts}
    assert facts["active_disclosure/rules/in_force"] == 11
    assert facts["active_disclosure/normative_documents/in_force"] == 66
    (table,) = [b for b in read_text(text.encode("utf-8")).blocks if type(b).__name__ == "Table"]
    assert len(table.rows) == 3


def test_python_docx_resave_keeps_every_cell(tmp_path: Path) -> None:
    converted = tmp_path / "huzhu-employment-2023.resaved.docx"
    docx.Document(str(HUZHU_DOCX)).save(str(converted))
    assert converted.read_bytes() != HUZHU_DOCX.read_bytes()
    _assert_like_sample(converted, HUZHU_DOCX)


@pytest.mark.parametrize(
    ("name", "sample"),
    [
        ("04_shanghai_szfbgt_2019.libreoffice.docx", SHANGHAI),
        ("04_shanghai_szfbgt_2019.libreoffice.pdf", SHANGHAI),
        ("huzhu-employment-2023.libreoffice.html", HUZHU_DOCX),
        ("huzhu-employment-2023.libreoffice.odt", HUZHU_DOCX),
    ],
)
def test_libreoffice_conversions_keep_every_cell(name: str, sample: Path, tmp_path: Path) -> None:
    converted = tmp_path / name
    shutil.copy(CONVERTED / name, converted)
    _assert_like_sample(converted, sample)


def test_committed_conversions_score_full_marks_through_their_gold() -> None:
    # The fixtures' own gold pointers, as `nianbao eval tests/fixtures/converted` reads them.
    scores = evaluate([CONVERTED])
    assert len(scores) == 4
    assert [s.wrong for s in scores] == [[]] * 4
    assert sum(s.cells for s in scores) == 2 * 198 + 2 * 186


def test_odt_is_sniffed_from_its_package_and_a_damaged_one_is_a_clear_error() -> None:
    odt = (CONVERTED / "huzhu-employment-2023.libreoffice.odt").read_bytes()
    assert sniff_format(odt, "report") == "odt"  # by its mimetype entry, not its name
    assert sniff_format(odt, "report.docx") == "odt"
    # A zip without the OpenDocument mimetype is no .odt, whatever its name.
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("content.xml", "<x/>")
    result = parse_bytes(package.getvalue(), "report.odt")
    assert (result.status, [p.code for p in result.problems]) == ("failed", ["unknown_format"])
    # An error page saved under an .odt name: the name's promise is not kept.
    result = parse_bytes("服务器错误，请稍后再试".encode(), "report.odt")
    assert (result.status, [p.code for p in result.problems]) == ("failed", ["corrupt_doc"])
    assert "OpenDocument" in result.problems[0].message
