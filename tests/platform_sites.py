"""Fixture portals of the listing platforms (gkmlpt, 大汉 jpage, TRS), built on FixtureSite.

Each is written from what is publicly known of the platform, not copied from a real site: report
entries mixed with ones that are not reports (解读, 一图读懂, 工作要点, 通知, news), two or more
listing pages or API groups, inline reports and PDF/DOCX attachments whose bodies are the sample
reports, a GBK page with no charset anywhere, and paths robots.txt forbids.

`FixturePortal` says what a harvest must take from a portal (`reports`: the path, with its query
when it has one, each report is taken from → the year loaded) and what it must never ask for.
"""

from __future__ import annotations

import html
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

import docx

from nianbao.harvest.client import decode_body

from .platform_server import FixtureSite, Reply, Request

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
REAL = Path(__file__).resolve().parent / "fixtures" / "real"


@dataclass
class FixturePortal:
    name: str
    site: FixtureSite
    listing: str  # the address a person copies, from the path on
    reports: dict[str, int]  # path[?query] a report is taken from → its year
    forbidden: set[str] = field(default_factory=set)  # paths[?query] never to be requested
    region: str | None = None

    @property
    def url(self) -> str:
        return self.site.url(self.listing)


def sample_body(name: str) -> str:
    """The <body> of a sample HTML report, decoded."""
    text = decode_body((SAMPLES / name).read_bytes())
    return re.search(r"<body[^>]*>(.*)</body>", text, re.S).group(1)


def flat_text_body(path: Path) -> str:
    """A plain-text report (tests/fixtures/real/*.flat.txt) as the paragraphs of an article."""
    lines = path.read_text("utf-8").splitlines()
    return "".join(f"<p>{html.escape(line)}</p>\n" for line in lines if line.strip())


def docx_bytes(document: docx.document.Document) -> bytes:
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def resaved_docx(name: str, subject: str) -> bytes:
    """A sample DOCX saved again with another subject: the same report in other bytes."""
    document = docx.Document(str(SAMPLES / name))
    document.core_properties.subject = subject
    return docx_bytes(document)


def titleless_docx() -> bytes:
    """The sample DOCX report without its title, preamble or document title: the file alone
    says neither agency nor year (common for attachments)."""
    document = docx.Document(str(SAMPLES / "huzhu-employment-2023.docx"))
    document.core_properties.title = ""
    for paragraph in list(document.paragraphs):
        text = paragraph.text
        paragraph._element.getparent().remove(paragraph._element)
        if "统计期限" in text:
            break
    return docx_bytes(document)


PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


# -- gkmlpt ------------------------------------------------------------------------------------

GKMLPT_SID = "sjj755"
GKMLPT_PUBLISHER = "某市政务服务数据管理局"
GKMLPT_SHELL = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>政府信息公开目录</title>
<script>
  window._CONFIG = {
    SID: '%(sid)s',
    SITE_NAME: '%(publisher)s',
    APP_URL: '/sjj/gkmlpt',
    TREE: [
      {id: 2470, name: '政府信息公开指南', parent: 0},
      {id: 2475, name: '政府信息公开年报', parent: 0, children: [
        {id: 2476, name: '部门年报', parent: 2475, jump_url: 'http://www.gov.cn/bmnb/'},
      ]},
    ],
  };
</script>
</head><body><div id="app"></div>
<script src="/sjj/gkmlpt/static/js/app.js"></script>
</body></html>
"""
GKMLPT_ARTICLE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>%(title)s</title></head><body>
<div class="header"><a href="/sjj/">首页</a> &gt; <a href="/sjj/gkmlpt/index">政府信息公开</a></div>
<h1 class="article-title">%(title)s</h1>
<div class="article-content">%(content)s</div>
%(attachments)s
</body></html>
"""


def _gkmlpt_article(site: FixtureSite, path: str, title: str, content: str = "", files=()):
    links = "".join(
        f'<p><a class="nfw-cms-attachment" href="{href}">{html.escape(text)}</a></p>'
        for href, text in files
    )
    site.add(path, GKMLPT_ARTICLE % {"title": title, "content": content, "attachments": links})


def gkmlpt_portal(site: FixtureSite) -> FixturePortal:
    site.add("/robots.txt", "User-agent: *\nDisallow: /sjj/gkmlpt/content/9/\n", "text/plain")
    site.add("/sjj/gkmlpt/index", GKMLPT_SHELL % {"sid": GKMLPT_SID, "publisher": GKMLPT_PUBLISHER})
    content = "/sjj/gkmlpt/content/2/2475"
    articles = [
        # (id, title, path or URL, date fields)
        (
            1001,
            "互助县就业服务局2023年度政府信息公开工作年度报告",
            f"{content}/post_1001.html",
            {"created_at": 1705302000},
        ),  # 2024-01-15 15:00 in China
        (
            1002,
            "《某市政务服务数据管理局2023年政府信息公开工作年度报告》解读",
            f"{content}/post_1002.html",
            {"date": "2024-01-16"},
        ),
        (
            1003,
            "淮安市人民政府2024年政府信息公开工作年度报告",
            f"{content}/post_1003.html",
            {"date": "2025-01-20 09:30:00"},
        ),
        (
            1004,
            "一图读懂某市政务服务数据管理局2024年政府信息公开工作年度报告",
            f"{content}/post_1004.html",
            {"date": "2025-01-21"},
        ),
        (
            1005,
            "某市政务服务数据管理局2023年政府信息公开工作年度报告",
            f"{content}/post_1005.html",
            {"created_at": "2024-01-18 10:00:00"},
        ),
        (
            1006,
            "某市2024年政府信息公开工作年度报告编制工作要点",
            f"{content}/post_1006.html",
            {"date": "2024-11-01"},
        ),
        (
            1007,
            "某市政务服务数据管理局2021年政府信息公开工作年度报告",
            "/sjj/gkmlpt/content/9/2475/post_1007.html",
            {"date": "2022-01-20"},
        ),
        (
            1008,
            "广东省人民政府2020年政府信息公开工作年度报告",
            "http://www.gd.gov.cn/gkmlpt/content/3/3001/post_1008.html",
            {"date": "2021-01-29"},
        ),
    ]
    _gkmlpt_article(
        site, f"{content}/post_1001.html", articles[0][1], sample_body("huzhu-employment-2023.html")
    )
    _gkmlpt_article(site, f"{content}/post_1002.html", articles[1][1], "<p>解读全文……</p>")
    _gkmlpt_article(
        site,
        f"{content}/post_1003.html",
        articles[2][1],
        "<p>详见附件。</p>",
        [("/sjj/attachment/0/512/512345.pdf", "淮安市2024年年报.pdf")],
    )
    _gkmlpt_article(site, f"{content}/post_1004.html", articles[3][1], "<p>图解……</p>")
    _gkmlpt_article(
        site,
        f"{content}/post_1005.html",
        articles[4][1],
        "",
        [("/sjj/attachment/0/512/512346.docx", "年度报告.docx")],
    )
    _gkmlpt_article(site, f"{content}/post_1006.html", articles[5][1], "<p>要点……</p>")
    _gkmlpt_article(site, "/sjj/gkmlpt/content/9/2475/post_1007.html", articles[6][1], "<p>……</p>")
    site.add(
        "/sjj/attachment/0/512/512345.pdf",
        (SAMPLES / "01_huaian_shizhengfu_2024.pdf").read_bytes(),
        PDF,
    )
    site.add("/sjj/attachment/0/512/512346.docx", titleless_docx(), DOCX)

    page_size = 3
    listed = [
        {
            "id": id_,
            "title": title,
            "url": url if url.startswith("http") else site.url(url),
            "publisher": GKMLPT_PUBLISHER,
            "identifier": f"11440300-{id_}",
            **dates,
        }
        for id_, title, url, dates in articles
    ]

    def api(request: Request) -> Reply:
        query = parse_qs(request.query)
        if query.get("sid") != [GKMLPT_SID]:
            return Reply(400, b'{"error": "sid"}', {"Content-Type": "application/json"})
        page = max(int(query.get("page", ["1"])[0]), 1)  # page=0 is answered as page=1
        chunk = listed[(page - 1) * page_size : page * page_size]
        body = {"total": len(listed), "page": page, "articles": chunk}
        return Reply(
            200,
            json.dumps(body, ensure_ascii=False).encode(),
            {"Content-Type": "application/json; charset=utf-8"},
        )

    site.apis["/sjj/gkmlpt/api/all/2475"] = api
    return FixturePortal(
        "某市政务服务数据管理局",
        site,
        "/sjj/gkmlpt/index#2475",
        reports={
            f"{content}/post_1001.html": 2023,  # inline
            "/sjj/attachment/0/512/512345.pdf": 2024,  # a PDF attachment
            "/sjj/attachment/0/512/512346.docx": 2023,  # a DOCX with no printed title
        },
        forbidden={
            f"{content}/post_1002.html",
            f"{content}/post_1004.html",
            f"{content}/post_1006.html",
            "/sjj/gkmlpt/content/9/2475/post_1007.html",  # robots.txt
            "/sjj/gkmlpt/api/all/2476",  # a category that jumps off site
        },
        region="广东省",
    )


# -- 大汉 jpage ---------------------------------------------------------------------------------

JPAGE_COLUMN = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>政府信息公开年报 某县人民政府</title>
<script type="text/javascript" src="/module/jslib/jquery/jquery.js"></script>
<script type="text/javascript" src="/module/jslib/jpage/jpage.js"></script>
</head><body>
<div class="bt-position"><a href="/">首页</a> &gt; <a href="/col/col1200/index.html">政务公开</a></div>
<div id="%(div)s">%(inline)s</div>
<script>
$(document).ready(function(){
  $('#%(div)s').jpage({
    dataStore: dataStore,
    totalRecord: %(total)d,
    perPage: %(per_page)d,
    groupSize: %(group_size)d,
    barPosition: 'bottom',
    proxyUrl: '%(proxy)s',
    ajaxParam: {col: 1, appid: 1, webid: 2, path: '/', columnid: %(column)d,
                sourceContentType: 1, unitid: 5678, webname: '某县人民政府', permissiontype: 0}
  });
});
</script>
</body></html>
"""
JPAGE_ARTICLE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>%(title)s</title></head><body>
<div class="bt-position"><a href="/">首页</a> &gt; <a href="/col/col1234/index.html">政府信息公开年报</a></div>
<div class="main-txt"><h1>%(title)s</h1><div id="zoom">%(content)s</div></div>
</body></html>
"""


def _record(path: str, title: str, day: str) -> str:
    return (
        f'<li><a href="{path}" title="{html.escape(title)}" target="_blank">'
        f"{html.escape(title[:24])}</a><span>{day}</span></li>"
    )


def _datastore(records: list[str], total: int, pages: int) -> str:
    body = "".join(f"<record><![CDATA[{record}]]></record>\n" for record in records)
    return (
        f'<datastore><nextgroup><![CDATA[<a href="#"></a>]]></nextgroup>'
        f"<recordset>\n{body}</recordset><totalrecord>{total}</totalrecord>"
        f"<totalpage>{pages}</totalpage></datastore>"
    )


def jpage_portals(site: FixtureSite) -> list[FixturePortal]:
    site.add("/robots.txt", "User-agent: *\nDisallow: /art/2018/\n", "text/plain")
    news = "某县召开{n}季度政务公开工作推进会"
    column = [
        _record(
            "/art/2024/1/15/art_1234_501.html",
            "某县人民政府2023年政府信息公开工作年度报告",
            "2024-01-15",
        ),
        _record(
            "/art/2023/12/1/art_1234_490.html",
            "关于做好2023年政府信息公开工作年度报告编制和发布工作的通知",
            "2023-12-01",
        ),
        *[
            _record(
                f"/art/2023/{n}/10/art_1234_4{n:02d}.html", news.format(n=n), f"2023-{n:02d}-10"
            )
            for n in (1, 2, 3, 4)
        ],
        _record(
            "/art/2020/1/31/art_1234_420.html",
            "上海市人民政府办公厅2019年政府信息公开工作年度报告",
            "2020-01-31",
        ),
        _record(
            "/art/2024/1/20/art_1234_502.html",
            "一图读懂某县人民政府2023年政府信息公开工作年度报告",
            "2024-01-20",
        ),
        _record(
            "/art/2023/1/30/art_1234_380.html",
            "我县2022年政府信息公开工作年度报告新鲜出炉",
            "2023-01-30",
        ),
        *[
            _record(
                f"/art/2022/{n}/10/art_1234_3{n:02d}.html", news.format(n=n), f"2022-{n:02d}-10"
            )
            for n in (5, 6, 7)
        ],
        _record(
            "/art/2024/1/25/art_1234_505.html",
            "某县人力资源和社会保障局2023年政府信息公开工作年度报告",
            "2024-01-25",
        ),
        _record(
            "/art/2018/1/20/art_1234_200.html",
            "某县人民政府2017年政府信息公开工作年度报告",
            "2018-01-20",
        ),
    ]
    per_page, group_size = 3, 2
    group = per_page * group_size
    site.add(
        "/col/col1234/index.html",
        JPAGE_COLUMN
        % {
            "div": "div1234",
            "total": len(column),
            "per_page": per_page,
            "group_size": group_size,
            "proxy": "/module/web/jpage/dataproxy.jsp",
            "column": 1234,
            "inline": '<script type="text/xml">'
            + _datastore(column[:group], len(column), 5)
            + "</script>",
        },
    )

    def article(path: str, title: str, content: str) -> None:
        site.add(path, JPAGE_ARTICLE % {"title": title, "content": content})

    article(
        "/art/2024/1/15/art_1234_501.html",
        "某县人民政府2023年政府信息公开工作年度报告",
        '<p>附件：<a href="/module/download/downfile.jsp?classid=0&amp;filename=6f2c1a9e.pdf">'
        "某县人民政府2023年政府信息公开工作年度报告.pdf</a></p>",
    )
    site.redirects["/module/download/downfile.jsp?classid=0&filename=6f2c1a9e.pdf"] = (
        "/attach/0/6f2c1a9e.pdf"
    )
    site.add("/attach/0/6f2c1a9e.pdf", (SAMPLES / "huzhu-employment-2023.pdf").read_bytes(), PDF)
    article(
        "/art/2020/1/31/art_1234_420.html",
        "上海市人民政府办公厅2019年政府信息公开工作年度报告",
        sample_body("04_shanghai_szfbgt_2019.html"),
    )
    article(
        "/art/2024/1/25/art_1234_505.html",
        "某县人力资源和社会保障局2023年政府信息公开工作年度报告",
        '<p><a href="/module/download/downfile.jsp?classid=0&amp;filename=9ab3c4d5.docx">下载附件</a></p>',
    )
    site.add(
        "/module/download/downfile.jsp?classid=0&filename=9ab3c4d5.docx",
        (SAMPLES / "huzhu-employment-2023.docx").read_bytes(),
        DOCX,
    )

    second = [
        _record(
            "/art/2023/2/8/art_1235_801.html",
            "平潭综合实验区2022年度政府信息公开工作年度报告",
            "2023-02-08",
        ),
        _record(
            "/art/2023/3/1/art_1235_802.html",
            "平潭综合实验区2022年度政府信息公开工作年度报告解读",
            "2023-03-01",
        ),
        _record(
            "/art/2023/3/9/art_1235_803.html", "平潭综合实验区召开政务公开培训会", "2023-03-09"
        ),
    ]
    site.add(
        "/col/col1235/index.html",
        JPAGE_COLUMN
        % {
            "div": "div1235",
            "total": len(second),
            "per_page": 2,
            "group_size": 1,
            "proxy": "/module/jpage/dataproxy.jsp",
            "column": 1235,
            "inline": "",
        },
    )
    article(
        "/art/2023/2/8/art_1235_801.html",
        "平潭综合实验区2022年度政府信息公开工作年度报告",
        flat_text_body(REAL / "08_pingtan_2022.flat.txt"),
    )
    columns = {"1234": column, "1235": second}

    def proxy(request: Request) -> Reply:
        if request.method != "POST":  # the data proxy wants the form posted
            return Reply(405, b"POST only")
        records = columns.get(request.form.get("columnid", ""))
        query = parse_qs(request.query)
        if records is None or request.form.get("webid") != "2":
            return Reply(200, _datastore([], 0, 0).encode())
        start, end = int(query["startrecord"][0]), int(query["endrecord"][0])
        per = int(query["perpage"][0])
        answer = _datastore(records[start - 1 : end], len(records), -(-len(records) // per))
        return Reply(
            200,
            ('<?xml version="1.0" encoding="UTF-8"?>' + answer).encode(),
            {"Content-Type": "text/xml;charset=UTF-8"},
        )

    site.apis["/module/web/jpage/dataproxy.jsp"] = proxy
    site.apis["/module/jpage/dataproxy.jsp"] = proxy
    not_reports = {
        "/art/2023/12/1/art_1234_490.html",
        "/art/2024/1/20/art_1234_502.html",
        "/art/2023/1/30/art_1234_380.html",
        "/art/2023/3/1/art_1235_802.html",
        "/art/2023/3/9/art_1235_803.html",
        "/art/2018/1/20/art_1234_200.html",  # robots.txt
    }
    return [
        FixturePortal(
            "某县人民政府",
            site,
            "/col/col1234/index.html",
            reports={
                "/attach/0/6f2c1a9e.pdf": 2023,  # a PDF behind downfile.jsp and a 302
                "/art/2020/1/31/art_1234_420.html": 2019,  # inline
                "/module/download/downfile.jsp?classid=0&filename=9ab3c4d5.docx": 2023,
            },
            forbidden=not_reports,
        ),
        FixturePortal(
            "平潭综合实验区",
            site,
            "/col/col1235/index.html",
            reports={"/art/2023/2/8/art_1235_801.html": 2022},
            forbidden=not_reports,
        ),
    ]


# -- TRS ---------------------------------------------------------------------------------------

TRS_LISTING = """<!DOCTYPE html>
<html><head><title>政府信息公开年报</title></head><body>
<div class="crumb"><a href="../../">首页</a> &gt; <a href="../">政府信息公开</a></div>
<ul class="list">
%(items)s
</ul>
<div class="page"><script type="text/javascript">%(pager)s</script></div>
</body></html>
"""
TRS_ARTICLE = """<!DOCTYPE html>
<html><head><title>%(title)s</title></head><body>
<div class="crumb"><a href="../../../">首页</a> &gt; <a href="../">政府信息公开年报</a></div>
<div class="TRS_Editor">%(content)s</div>
%(files)s
</body></html>
"""
# What TRS answers for a listing page past the last one: 200 and a few hundred bytes.
TRS_STUB = (
    "<html><head><title>政府信息公开</title></head><body>"
    "<script>var currentPage = 0;</script><!-- trs: no such page --></body></html>"
)


def _items(entries: list[tuple[str, str, str]]) -> str:
    return "\n".join(
        f'<li><a href="{href}" title="{html.escape(title)}">{html.escape(title)}</a>'
        f"<span>{day}</span></li>"
        for href, title, day in entries
    )


def trs_portals(site: FixtureSite) -> list[FixturePortal]:
    site.add("/robots.txt", "User-agent: *\nDisallow: /zfxxgk/ndbg/index_9.html\n", "text/plain")

    def gbk(path: str, text: str) -> None:
        # GBK with no charset in the header or the page: decoded by its bytes.
        site.add(path, text.encode("gbk"), "text/html")

    pages = [
        [
            (
                "./202202/t20220208_80613.html",
                "平潭综合实验区2021年度政府信息公开工作年度报告",
                "2022-02-08",
            ),
            (
                "./202202/t20220215_80700.html",
                "图解：平潭综合实验区2021年度政府信息公开工作年度报告",
                "2022-02-15",
            ),
            (
                "./202201/t20220110_80500.html",
                "平潭综合实验区关于开展政务公开检查的通知",
                "2022-01-10",
            ),
        ],
        [
            (
                "./202112/t20211201_80400.html",
                "关于报送2021年政府信息公开工作年度报告的通知",
                "2021-12-01",
            ),
            ("./202006/t20200601_70100.html", "平潭综合实验区2020年政务公开工作要点", "2020-06-01"),
        ],
        [
            (
                "./202002/t20200203_70000.html",
                "平潭综合实验区2019年度政府信息公开工作年度报告",
                "2020-02-03",
            ),
        ],
    ]
    pagers = [
        "createPageHTML('page_div', 3, 0, 'index', 'html', 6);",  # the 6-argument form
        'var countPage = 3//共多少页\nvar currentPage = 1;\ncreatePageHTML(countPage, currentPage, "index", "html");',
        'createPageHTML(3, 2, "index", "html");',
    ]
    for number, (entries, pager) in enumerate(zip(pages, pagers, strict=True)):
        name = "index.html" if number == 0 else f"index_{number}.html"
        gbk(f"/zfxxgk/ndbg/{name}", TRS_LISTING % {"items": _items(entries), "pager": pager})
    for path, report in (
        ("/zfxxgk/ndbg/202202/t20220208_80613.html", "09_pingtan_2021.flat.txt"),
        ("/zfxxgk/ndbg/202002/t20200203_70000.html", "10_pingtan_2019.flat.txt"),
    ):
        gbk(
            path,
            TRS_ARTICLE
            % {
                "title": "政府信息公开工作年度报告",
                "content": flat_text_body(REAL / report),
                "files": "",
            },
        )
    gbk("/zfxxgk/ndbg/index_3.html", TRS_STUB)

    # A department column whose page only says `var countPage = 4` (a stale count): two pages
    # exist, the third is the stub, and the fourth is never asked for.
    department = [
        [
            (
                "./202401/t20240115_301.html",
                "互助县就业服务局2023年度政府信息公开工作年度报告",
                "2024-01-15",
            )
        ],
        [
            (
                "./202301/t20230117_290.html",
                "互助县就业服务局2022年度政府信息公开工作年度报告解读",
                "2023-01-17",
            )
        ],
    ]
    stale = "var countPage = 4;//共多少页\nvar currentPage = %d;"
    for number, entries in enumerate(department):
        name = "index.html" if number == 0 else f"index_{number}.html"
        gbk(
            f"/zfxxgk/bmnb/{name}",
            TRS_LISTING % {"items": _items(entries), "pager": stale % number},
        )
    gbk("/zfxxgk/bmnb/index_2.html", TRS_STUB)
    gbk("/zfxxgk/bmnb/index_3.html", TRS_STUB)
    gbk(
        "/zfxxgk/bmnb/202401/t20240115_301.html",
        TRS_ARTICLE
        % {
            "title": "互助县就业服务局2023年度政府信息公开工作年度报告",
            "content": "<p>全文见附件。</p>",
            "files": '<p><a href="./P020240115301.docx">附件：2023年度报告</a></p>',
        },
    )
    document = resaved_docx("huzhu-employment-2023.docx", "部门年报")
    site.add("/zfxxgk/bmnb/202401/P020240115301.docx", document, DOCX)
    return [
        FixturePortal(
            "平潭综合实验区政府信息公开年报",
            site,
            "/zfxxgk/ndbg/",
            reports={
                "/zfxxgk/ndbg/202202/t20220208_80613.html": 2021,  # inline, GBK
                "/zfxxgk/ndbg/202002/t20200203_70000.html": 2019,  # on the third page
            },
            forbidden={
                "/zfxxgk/ndbg/202202/t20220215_80700.html",
                "/zfxxgk/ndbg/202201/t20220110_80500.html",
                "/zfxxgk/ndbg/202112/t20211201_80400.html",
                "/zfxxgk/ndbg/202006/t20200601_70100.html",
                "/zfxxgk/ndbg/index_3.html",  # past the last page
            },
            region="福建省",
        ),
        FixturePortal(
            "互助县就业服务局",
            site,
            "/zfxxgk/bmnb/index.html",
            reports={"/zfxxgk/bmnb/202401/P020240115301.docx": 2023},
            forbidden={"/zfxxgk/bmnb/index_3.html", "/zfxxgk/bmnb/202301/t20230117_290.html"},
        ),
    ]
