"""Render the seed report as DOCX, HTML and PDF, so every reader has the same report to test on.

Run by hand from the repository root, with the project's venv:

    .venv/bin/python samples/render_seed.py

It reads `samples/huzhu-employment-2023.txt` (a text extraction of a real report) and writes, next
to it:

- `huzhu-employment-2023.docx` — python-docx: centred title lines, section headings in the
  Heading 1 style, body paragraphs, and tables 二, 三 and 四 laid out like the national template
  with real merges (w:gridSpan / w:vMerge);
- `huzhu-employment-2023.html` — the same content as a GBK page (`<meta charset="gbk">`) with
  rowspan/colspan, `<br>` inside header cells, `&nbsp;` padding in label cells, and a `<nav>`
  menu and `<footer>` that a reader must ignore;
- `huzhu-employment-2023.pdf` — the DOCX converted by LibreOffice (`soffice` must be on PATH:
  `apt-get install -y --no-install-recommends libreoffice-writer-nogui fonts-noto-cjk`).

Labels are the seed's own wording (规范性文件 without 行政, `(一) 予以公开` with ASCII brackets,
`(六) 其他处理` as one row); a line break where the seed shows a space inside a header cell
(`结果 维持`). Values are read from the seed's table lines and checked against
`huzhu-employment-2023.canon.json` before anything is written. Two things differ from the seed on
purpose, because they are artefacts of its PDF extraction, not of the report: paragraphs cut by
a page break are joined again, and the extra ninth `0` on the `(六)`/`(七)` lines is dropped.
Nothing here needs the network.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from docx import Document as new_docx
from docx.document import Document as DocxDocument
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_ALIGN_VERTICAL, WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Cm, Pt, RGBColor
from docx.styles.style import CharacterStyle
from docx.table import Table as DocxTable
from docx.text.run import Run

from nianbao.parsers.blocks import Cell, Table

HERE = Path(__file__).resolve().parent
STEM = "huzhu-employment-2023"

BODY_FONT, HEADING_FONT, TITLE_FONT = "仿宋_GB2312", "黑体", "方正小标宋简体"
_HEADING = re.compile(r"^[一二三四五六七八九十]、\S")
_NUMBER = re.compile(r"^\d+(\.\d+)?$")
# A prose line that stops without closing punctuation was cut by a page break.
_SENTENCE_END = ("。", "！", "？", "；", "：", "）", ")")


@dataclass
class Seed:
    title: list[str]
    # ("heading" | "paragraph", text) or ("table", the section's numeral: 二, 三 or 四)
    body: list[tuple[str, str]]
    table_lines: dict[str, list[list[str]]]


def read_seed(text: str) -> Seed:
    """Split the seed into its two title lines, the body in order, and each section's table lines."""
    title: list[str] = []
    body: list[tuple[str, str]] = []
    table_lines: dict[str, list[list[str]]] = {}
    section = ""
    for line in text.splitlines():
        if "\t" in line:
            if section not in table_lines:
                table_lines[section] = []
                body.append(("table", section))
            table_lines[section].append([cell.strip() for cell in line.split("\t")])
            continue
        line = line.strip()
        if not line:
            continue
        if len(title) < 2:
            title.append(line)
        elif _HEADING.match(line) and len(line) < 30:
            section = line[0]
            body.append(("heading", line))
        elif body and body[-1][0] == "paragraph" and not body[-1][1].endswith(_SENTENCE_END):
            body[-1] = ("paragraph", body[-1][1] + line)
        else:
            body.append(("paragraph", line))
    return Seed(title, body, table_lines)


def _numbers(cells: list[str]) -> list[str]:
    return [c for c in cells if _NUMBER.match(c)]


def _labelled_values(lines: list[list[str]]) -> dict[str, list[str]]:
    """Seed row label (its last text cell) → the numbers printed on that row."""
    rows: dict[str, list[str]] = {}
    for cells in lines:
        labels = [c for c in cells if c and not _NUMBER.match(c)]
        if labels:
            rows[labels[-1]] = _numbers(cells)
    return rows


# Table 二 as the template prints it: each 第二十条 block, its column headers, and its rows as
# (label, row code, column codes).
TABLE2_BLOCKS = [
    ("第二十条第（一）项", ["本年制发件数", "本年废止件数", "现行有效件数"], [
        ("规章", "rules", ["issued", "repealed", "in_force"]),
        ("规范性文件", "normative_documents", ["issued", "repealed", "in_force"]),
    ]),
    ("第二十条第（五）项", ["本年处理决定数量"], [("行政许可", "licensing", ["decisions"])]),
    ("第二十条第（六）项", ["本年处理决定数量"], [
        ("行政处罚", "penalty", ["decisions"]),
        ("行政强制", "coercion", ["decisions"]),
    ]),
    ("第二十条第（八）项", ["本年收费金额（单位：万元）"], [
        ("行政事业性收费", "fees", ["amount_10k_yuan"]),
    ]),
]  # fmt: skip

T3_CORNER = "(本列数据的勾稽关系为：第一项加第二项之和，\n等于第三项加第四项之和)"
T3_COLUMNS = ["natural_person", "commercial", "research", "public_interest", "legal_service",
              "other_org", "total"]  # fmt: skip
T3_OUTCOME_HEAD = "三、\n本年度\n办理结果"
# Outcome groups of table 三: (group label or None for a one-row outcome, [(label, code)]).
T3_OUTCOMES: list[tuple[str | None, list[tuple[str, str]]]] = [
    (None, [("(一) 予以公开", "granted")]),
    (None, [("(二) 部分公开（区分处理的，只计这一情形，不计其他情形）", "partially_granted")]),
    ("(三) 不予公开", [
        ("1. 属于国家秘密", "denied.state_secret"),
        ("2. 其他法律行政法规禁止公开", "denied.prohibited_by_law"),
        ("3. 危及“三安全一稳定”", "denied.security_stability"),
        ("4. 保护第三方合法权益", "denied.third_party"),
        ("5. 属于三类内部事务信息", "denied.internal_affairs"),
        ("6. 属于四类过程性信息", "denied.process_information"),
        ("7. 属于行政执法案卷", "denied.enforcement_files"),
        ("8. 属于行政查询事项", "denied.query_matters"),
    ]),
    ("(四) 无法提供", [
        ("1. 本机关不掌握相关政府信息", "unavailable.not_held"),
        ("2. 没有现成信息需要另行制作", "unavailable.needs_creation"),
        ("3. 补正后申请内容仍不明确", "unavailable.still_unclear"),
    ]),
    ("(五) 不予处理", [
        ("1. 信访举报投诉类申请", "not_processed.petition"),
        ("2. 重复申请", "not_processed.repeated"),
        ("3. 要求提供公开出版物", "not_processed.publications"),
        ("4. 无正当理由大量反复申请", "not_processed.excessive"),
        ("5. 要求行政机关确认或重新出具已获取信息", "not_processed.confirmation"),
    ]),
    (None, [("(六) 其他处理", "other_handling")]),
    (None, [("(七) 总计", "total_processed")]),
]  # fmt: skip
T4_GROUPS = [("review", "行政复议"), ("litigation_direct", "未经复议直接起诉"),
             ("litigation_after_review", "复议后起诉")]  # fmt: skip
T4_COLUMNS = [("upheld", "结果\n维持"), ("corrected", "结果\n纠正"), ("other", "其他\n结果"),
              ("pending", "尚未\n审结"), ("total", "总计")]  # fmt: skip


# Values written into the tables, keyed like the canon (`table/row/col`).
Facts = dict[str, str]


def table2(lines: list[list[str]], facts: Facts) -> Table:
    values = _labelled_values(lines)
    rows: list[list[Cell]] = []
    for block, headers, data in TABLE2_BLOCKS:
        rows.append([Cell(block, colspan=4)])
        wide = 4 - len(headers)  # one header under a full-width block spans the three columns
        rows.append([Cell("信息内容"), *(Cell(h, colspan=wide) for h in headers)])
        for label, code, cols in data:
            printed = values[label]
            assert len(printed) == len(cols), (label, printed)
            for col, value in zip(cols, printed, strict=True):
                facts[f"active_disclosure/{code}/{col}"] = value
            rows.append([Cell(label), *(Cell(v, colspan=wide) for v in printed)])
    return Table(rows)


def table3(lines: list[list[str]], facts: Facts) -> Table:
    values = _labelled_values(lines)

    def data(code: str, label: str) -> list[Cell]:
        # The seed's (六)/(七) lines carry one 0 too many (see the module docstring).
        printed = values[label][-len(T3_COLUMNS) :]
        for col, value in zip(T3_COLUMNS, printed, strict=True):
            facts[f"applications/{code}/{col}"] = value
        return [Cell(v) for v in printed]

    outcome_rows = sum(len(items) for _, items in T3_OUTCOMES)
    rows: list[list[Cell]] = [
        [Cell(T3_CORNER, rowspan=3, colspan=3), Cell("申请人情况", colspan=7)],
        [Cell("自然人", rowspan=2), Cell("法人或其他组织", colspan=5), Cell("总计", rowspan=2)],
        [Cell(h) for h in ["商业企业", "科研机构", "社会公益组织", "法律服务机构", "其他"]],
        [Cell("一、"), Cell("本年新收政府信息公开申请数量", colspan=2),
         *data("new_received", "本年新收政府信息公开申请数量")],
        [Cell("二、"), Cell("上年结转政府信息公开申请数量", colspan=2),
         *data("carried_over", "上年结转政府信息公开申请数量")],
    ]  # fmt: skip
    first = True
    for group, items in T3_OUTCOMES:
        for i, (label, code) in enumerate(items):
            row = [Cell(T3_OUTCOME_HEAD, rowspan=outcome_rows)] if first else []
            first = False
            if group is None:
                row.append(Cell(label, colspan=2))
            else:
                if i == 0:
                    row.append(Cell(group, rowspan=len(items)))
                row.append(Cell(label))
            rows.append(row + data(code, label))
    rows.append(
        [
            Cell("四、"),
            Cell("结转下年度继续办理", colspan=2),
            *data("carried_forward", "结转下年度继续办理"),
        ]
    )
    return Table(rows)


def table4(lines: list[list[str]], facts: Facts) -> Table:
    (printed,) = [_numbers(cells) for cells in lines if cells and all(map(_NUMBER.match, cells))]
    width = len(T4_COLUMNS)
    for g, (group, _) in enumerate(T4_GROUPS):
        for c, (col, _) in enumerate(T4_COLUMNS):
            facts[f"review_litigation/{group}/{col}"] = printed[g * width + c]
    heads = [label for _, label in T4_COLUMNS]
    return Table(
        [
            [Cell(T4_GROUPS[0][1], colspan=width), Cell("行政诉讼", colspan=2 * width)],
            [
                *(Cell(h, rowspan=2) for h in heads),
                *(Cell(g, colspan=width) for _, g in T4_GROUPS[1:]),
            ],
            [Cell(h) for h in heads * 2],
            [Cell(v) for v in printed],
        ]
    )


def check_against_canon(facts: Facts, canon: dict[str, dict[str, int]]) -> None:
    expected = {key: str(value) for key, value in canon["facts"].items()}
    assert dict(facts) == expected, sorted(set(facts.items()) ^ set(expected.items()))


def check_labels(tables: list[Table], seed_text: str) -> None:
    """Every label we print is the seed's, give or take the line breaks in header cells."""
    flat = seed_text.replace("\t", " ")
    for table in tables:
        for row in table.rows:
            for cell in row:
                if not _NUMBER.match(cell.text):
                    assert cell.text.replace("\n", " ") in flat, cell.text


def origins(table: Table) -> list[tuple[int, int, Cell]]:
    """(row, column, cell) for each cell at its top-left position."""
    seen: set[int] = set()
    placed = []
    for r, row in enumerate(table.grid()):
        for c, cell in enumerate(row):
            if cell is not None and id(cell) not in seen:
                seen.add(id(cell))
                placed.append((r, c, cell))
    return placed


# ---------------------------------------------------------------------------------------- DOCX


def _east_asian(target: Run | CharacterStyle, font: str) -> None:
    # font.name only sets the Latin slots; Chinese text takes w:eastAsia.
    target.font.name = font
    target.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), font)


def _docx_table(document: DocxDocument, table: Table, widths_cm: list[float]) -> DocxTable:
    width = len(table.grid()[0])
    assert len(widths_cm) == width
    out = document.add_table(rows=len(table.rows), cols=width)
    out.style = "Table Grid"
    out.alignment = WD_TABLE_ALIGNMENT.CENTER
    out.autofit = False
    for c, w in enumerate(widths_cm):
        out.columns[c].width = Cm(w)
        for docx_cell in out.columns[c].cells:
            docx_cell.width = Cm(w)
    for r, c, cell in origins(table):
        target = out.cell(r, c)
        if cell.rowspan > 1 or cell.colspan > 1:
            target = target.merge(out.cell(r + cell.rowspan - 1, c + cell.colspan - 1))
        target.vertical_alignment = WD_ALIGN_VERTICAL.CENTER
        lines = cell.text.split("\n")
        target.paragraphs[0].text = lines[0]
        for line in lines[1:]:
            target.add_paragraph(line)
        for paragraph in target.paragraphs:
            paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
            paragraph.paragraph_format.space_after = Pt(0)
            for run in paragraph.runs:
                run.font.size = Pt(9)
    return out


def write_docx(seed: Seed, tables: dict[str, Table], path: Path) -> None:
    document = new_docx()
    section = document.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Cm(21), Cm(29.7)
    section.left_margin = section.right_margin = Cm(2.2)
    section.top_margin = section.bottom_margin = Cm(2.5)

    normal = document.styles["Normal"]
    _east_asian(normal, BODY_FONT)
    normal.font.size = Pt(14)
    # python-docx's template marks East Asian text en-US; a Chinese report is zh-CN.
    for lang in document.styles.element.iter(qn("w:lang")):
        lang.set(qn("w:eastAsia"), "zh-CN")
    heading = document.styles["Heading 1"]
    _east_asian(heading, HEADING_FONT)
    heading.font.size, heading.font.bold = Pt(16), False
    heading.font.color.rgb = RGBColor(0, 0, 0)

    for line in seed.title:
        paragraph = document.add_paragraph()
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
        run = paragraph.add_run(line)
        _east_asian(run, TITLE_FONT)
        run.font.size, run.bold = Pt(20), True

    widths = {
        "二": [5.0, 4.0, 4.0, 4.0],
        "三": [1.5, 2.0, 4.3] + [1.2] * 7,
        "四": [1.1] * 15,
    }
    for kind, content in seed.body:
        if kind == "heading":
            document.add_heading(content, level=1)
        elif kind == "paragraph":
            document.add_paragraph(content).paragraph_format.first_line_indent = Pt(28)
        else:
            _docx_table(document, tables[content], widths[content])

    properties = document.core_properties
    properties.title = "".join(seed.title)
    properties.author = properties.last_modified_by = seed.title[0]
    properties.comments = ""
    document.save(path)


# ---------------------------------------------------------------------------------------- HTML


def _html_cell(cell: Cell, is_value: bool) -> str:
    spans = "".join(
        f' {name}="{n}"'
        for name, n in (("rowspan", cell.rowspan), ("colspan", cell.colspan))
        if n > 1
    )
    text = "<br>".join(html.escape(line) for line in cell.text.split("\n"))
    if not is_value:
        # Word-pasted pages pad label cells with non-breaking spaces.
        text = f"&nbsp;{text}&nbsp;"
    return f"<td{spans}>{text}</td>"


def _html_table(table: Table) -> str:
    rows = []
    for row in table.rows:
        cells = "".join(_html_cell(cell, bool(_NUMBER.match(cell.text))) for cell in row)
        rows.append(f"<tr>{cells}</tr>")
    return '<table border="1" cellspacing="0" cellpadding="2">\n' + "\n".join(rows) + "\n</table>"


def write_html(seed: Seed, tables: dict[str, Table], path: Path) -> None:
    title = html.escape("".join(seed.title))
    parts = [f'<p align="center"><strong>{html.escape(line)}</strong></p>' for line in seed.title]
    for kind, content in seed.body:
        if kind == "heading":
            parts.append(f"<h2>{html.escape(content)}</h2>")
        elif kind == "paragraph":
            parts.append(f"<p>&nbsp;&nbsp;&nbsp;&nbsp;{html.escape(content)}</p>")
        else:
            parts.append(_html_table(tables[content]))
    body = "\n".join(parts)
    page = f"""<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="gbk">
<title>{title}_互助县人民政府</title>
<style>
td {{ border: 1px solid #000; text-align: center; font-size: 12px; }}
table {{ border-collapse: collapse; margin: 0 auto; }}
</style>
</head>
<body>
<nav class="menu">
<ul>
<li><a href="/">首页</a></li>
<li><a href="/zwgk/">政务公开</a></li>
<li><a href="/zwgk/xxgknb/">政府信息公开年报</a></li>
<li><a href="/hdjl/">互动交流</a></li>
</ul>
</nav>
<div class="article">
{body}
</div>
<footer>
<p>版权所有：互助县人民政府&nbsp;&nbsp;主办：互助县人民政府办公室</p>
<p>网站标识码：6302230001&nbsp;&nbsp;青ICP备00000000号</p>
</footer>
</body>
</html>
"""
    path.write_bytes(page.encode("gbk"))


# ----------------------------------------------------------------------------------------- PDF


def write_pdf(docx_path: Path) -> None:
    soffice = shutil.which("soffice")
    if soffice is None:
        sys.exit("soffice not found: apt-get install -y --no-install-recommends "
                 "libreoffice-writer-nogui fonts-noto-cjk")  # fmt: skip
    with tempfile.TemporaryDirectory() as home:
        subprocess.run(
            [soffice, f"-env:UserInstallation=file://{home}/profile", "--headless",
             "--convert-to", "pdf", "--outdir", str(docx_path.parent), str(docx_path)],
            check=True,
            env={**os.environ, "HOME": home},
            capture_output=True,
        )  # fmt: skip


def main() -> None:
    seed_text = (HERE / f"{STEM}.txt").read_text(encoding="utf-8")
    canon = json.loads((HERE / f"{STEM}.canon.json").read_text(encoding="utf-8"))
    seed = read_seed(seed_text)
    facts: Facts = {}
    tables = {
        "二": table2(seed.table_lines["二"], facts),
        "三": table3(seed.table_lines["三"], facts),
        "四": table4(seed.table_lines["四"], facts),
    }
    check_against_canon(facts, canon)
    check_labels(list(tables.values()), seed_text)

    docx_path = HERE / f"{STEM}.docx"
    write_docx(seed, tables, docx_path)
    write_html(seed, tables, HERE / f"{STEM}.html")
    write_pdf(docx_path)
    for suffix in ("docx", "html", "pdf"):
        print(HERE / f"{STEM}.{suffix}")


if __name__ == "__main__":
    main()
