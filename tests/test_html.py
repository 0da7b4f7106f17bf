from nianbao.parsers.html import read_html
from nianbao.parsers.report import parse_bytes, parse_file

from .helpers import SAMPLES, cells, gold


def test_shanghai_2019_html_every_cell_matches_gold():
    result = parse_file(str(SAMPLES / "04_shanghai_szfbgt_2019.html")).to_json()
    found = cells(result)
    expected = gold("04_shanghai_szfbgt_2019.canon.json")["facts"]
    for key, value in expected.items():
        if value == "":
            assert found[key]["value"] is None, key
        elif isinstance(value, str):
            assert found[key]["raw"] == value, key
        else:
            assert found[key]["value"] == value, key
    assert (result["agency"], result["year"], result["template"]) == (
        "上海市人民政府办公厅",
        2019,
        "2019",
    )


def test_header_and_value_colspans_that_do_not_line_up_keep_columns_apart():
    # 行政事业性收费: header spans differ from value spans; values align by order, not grid.
    found = cells(parse_file(str(SAMPLES / "04_shanghai_szfbgt_2019.html")).to_json())
    assert found["active_disclosure/procurement/projects"]["value"] == 6
    assert found["active_disclosure/procurement/amount"]["unit"] == "元"
    assert found["active_disclosure/procurement/amount"]["value"] == 251000


def test_gbk_page_with_meta_charset_and_page_chrome():
    page = (
        '<html><head><meta charset="gb2312"><title>2022年某县统计局政府信息公开工作年度报告</title></head>'
        "<body><nav>首页 政务公开 一、总体情况</nav><p>一、总体情况</p><p>本年新收申请3件。</p>"
        '<div class="footer">版权所有</div></body></html>'
    ).encode("gbk")
    document = read_html(page)
    texts = [b.text for b in document.paragraphs()]
    assert texts == ["一、总体情况", "本年新收申请3件。"]
    assert document.title == "2022年某县统计局政府信息公开工作年度报告"


def test_rowspan_cells_are_placed_once():
    page = "<table><tr><td rowspan=2>（三）不予公开</td><td>1.属于国家秘密</td><td>1</td></tr><tr><td>2.其他</td><td>0</td></tr></table>".encode()
    table = read_html(page).tables()[0]
    grid = table.grid()
    assert grid[1][0] is grid[0][0]
    assert [c.text for c in table.rows[1]] == ["2.其他", "0"]


def test_html_without_a_report_is_not_a_report():
    result = parse_bytes("<html><body><p>欢迎访问</p></body></html>".encode(), "x.html").to_json()
    assert result["status"] == "not_a_report"
    assert result["problems"][0]["code"] == "not_a_report"
