"""Agency and report year, from every place a report says them (never from the publish date).

The agency is read from the title (also split over lines, letter-spaced, in Markdown or among
page furniture), the preamble, the opening of 总体情况, the body's own names for itself, the
signature block, the document properties, the file name and what a harvest knows of the file
(`SourceHints`). Each place gives a candidate with a weight; a candidate counts only when it
is a credible agency (`agency.resolve_agency`), so a fragment of a sentence never becomes one.
Candidates naming the same body add up, and the report records which place won.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import PurePath

from nianbao.schema.registry import nfkc

from .agency import Agency, fold, resolve_agency
from .result import Problem

# 政府信息公开工作年度报告, 政府信息公开年报, 政府信息公开工作报告 …, and a department's
# 信息公开(工作)年度报告 without 政府 (平潭综合实验区地方税务局2013年信息公开年度报告): the crawler
# picks listing entries with the same pattern that names a document's title here.
REPORT_TITLE = re.compile(
    r"政府信息公开.{0,8}?(?:年度报告|年报|工作报告)|信息公开(?:工作)?年度报告"
)
# A year written as a year (2023年, 2023年度), not a number inside a longer one.
YEAR_IN_TITLE = re.compile(r"(?<!\d)((?:19|20)\d{2})\s*年")
_PERIOD = re.compile(
    r"统计(?:期限|时限|时间|区间|范围)[^。；]{0,12}?((?:19|20)\d{2})\s*年\s*1\s*月\s*1\s*日"
)
# 现将我局2020年度政府信息公开情况报告如下, 现将2023年度XX局政府信息公开工作情况报告如下
_REPORT_OF_YEAR = re.compile(
    r"(?<!\d)((?:19|20)\d{2})\s*年度?[^。；;，,《》]{0,30}?(?:政府)?信息公开(?:工作)?"
    r"(?:情况|年度报告|年报|工作报告)"
)
_OPENING_YEAR = re.compile(r"^\s*(?:[（(]?[一1][）)、.]?\s*)?((?:19|20)\d{2})\s*年度?(?!\d)")
# 截至2023年12月31日, 截至2010年底: the end of the year reported on.
_YEAR_END = re.compile(r"截[至止]\s*((?:19|20)\d{2})\s*年\s*(?:12\s*月\s*31\s*日|底|末)")
_LABEL_PREFIX = re.compile(r"^\s*(?:标题|题目|title)\s*[:：]\s*", re.I)
_MARKUP = re.compile(r"^[\s#>*_=-]+|[\s*_=]+$")
# Page numbers, running heads and rules: lines that are never part of a title.
_FURNITURE = re.compile(r"^[\s\-—–_·•.\d第页共/|]*$|^第\s*\d+\s*页|^-\s*\d+\s*-$")
_SPACED_DIGITS = re.compile(r"(?<=\d)\s+(?=\d)")
_LETTER_SPACED = re.compile(r"(?:\S\s+){4,}\S")
# A browser's print header before a page's title: 2024/1/20 10:15, 1/6.
_LEADING_STAMP = re.compile(r"^[\d\s/:.\-]+")
# A name this long with one character unlike another's is that name misread (shorter names of
# one place differ in a character by meaning: 淮安市水利局, 淮安市水务局).
_MISREAD_MIN_CHARS = 7
_ATTACHMENT = re.compile(r"^附件\s*\d*\s*[:：]?\s*")
# Where a breadcrumb or a label ends and the title's own words begin.
_LAST_DELIMITER = re.compile(r".*[。，,；;：:！!？?>》\]】|]")
_SENTENCE = re.compile(r"[。，,；;：:！!？?]")
# A title is not a sentence: a line with a full stop before its report words is prose that
# happens to name the report (…于2025年1月31日前，在本单位政府网站“政府信息公开年报”栏目发布).
_SENTENCE_END = re.compile(r"[。！!？?]")
# 发布机构：XX局 in the information table a government site prints above a document (索引号 |
# 发布机构 | 成文日期 …): the body the site files the page under. Labels may be letter-spaced.
_PUBLISHER_FIELD = re.compile(
    r"(?:发\s*布\s*(?:机\s*构|单\s*位)|发\s*文\s*(?:机\s*关|单\s*位))[ \t]*[:：]?[ \t|]*"
    r"([^|\s:：,，;；]{2,40})"
)

_PREAMBLE_PATTERNS = (
    re.compile(
        r"本(?:年度)?(?:报告|年报)(?:是)?由([^，,。；;（(]{2,40}?)(?:按照|根据|依据|依照|编制|编写|制作)"
    ),
    re.compile(
        r"现(?:将|公布|公开|发布|予以公布|向社会公布)([^，,。；;（(]{2,40}?)(?:19|20)\d{2}\s*年"
    ),
    # 现将2023年度XX局政府信息公开工作情况报告如下
    re.compile(
        r"现(?:将|公布|公开|发布|予以公布|向社会公布)(?:19|20)\d{2}\s*年度?([^，,。；;（(]{2,40}?)政府信息公开"
    ),
    # 本年度报告是根据《条例》和…工作要求，由XX局编制。
    re.compile(r"[，,]由([^，,。；;、（(《》]{2,40}?)(?:负责)?(?:编制|编写|制作)"),
)


@dataclass(frozen=True, slots=True)
class _Anchored:
    """A pattern that opens with a lazy run of 2–40 characters, found by way of the fixed text
    (`anchor`) every match holds `near` to `far` characters after its start, in matches at most
    `longest` characters long. `re` tries such a pattern at every character of the text, each
    try up to 40 steps long; here it is tried only in reach of an anchor. Same matches as the
    pattern's own `finditer` (`tests/test_agency.py` holds it to that)."""

    pattern: re.Pattern[str]
    anchor: str
    near: int
    far: int
    longest: int

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        pos = 0
        while (at := text.find(self.anchor, pos + self.near)) != -1:
            # A match starting at or before `last` holds this anchor or a later one within `far`;
            # one starting after it needs a later anchor. All of it lies within `longest`.
            last = at - self.near
            match = self.pattern.search(text, max(pos, at - self.far), last + self.longest)
            if match is not None and match.start() <= last:
                yield match
                pos = match.end()
            else:
                pos = last + 1


_BODY_PATTERNS = (
    # XX局（以下简称“我局”）
    _Anchored(
        re.compile(r"([^，,。；;、（(\s“”\"]{2,40}?)[（(]以下简称[“\"]?(?:我|本)"),
        anchor="以下简称",
        near=3,
        far=41,
        longest=47,
    ),
    # XX局政府信息公开工作领导小组办公室
    _Anchored(
        re.compile(r"([^，,。；;、（(\s“”\"]{2,40}?)政府信息公开(?:工作)?领导小组"),
        anchor="领导小组",  # rarer than 政府信息公开, which most sentences of a report hold
        near=8,
        far=48,
        longest=52,
    ),
    # 本机关（XX局）, 我局（XX局）
    re.compile(r"(?:本|我)(?:机关|局|委|办|厅|署|院|中心|单位)[（(]([^）)]{2,40})[）)]"),
)
# The verbs that follow the agency in 2024年，XX局坚持… at the opening of 总体情况.
_OPENING_VERB = re.compile(
    r"坚持|认真|深入|全面|进一步|紧紧|严格|按照|以|在|围绕|继续|持续|不断|始终|高度|积极|扎实|切实"
    r"|把|将|聚焦|坚决|全力|着力|主动|根据|依据|贯彻|落实|结合|立足|对照|共|加强|强化|完善|推进"
    r"|重视|紧扣|大力|着眼|健全|强力|深化|全年|依法"
)
_DATE_LINE = re.compile(
    r"((?:19|20)\d{2}|[〇零一二三四五六七八九○]{4})\s*年\s*[\d一二三四五六七八九十]{1,3}\s*月"
    r"\s*[\d一二三四五六七八九十]{1,3}\s*日$"
)

# How much each place is believed: the printed title first, what a listing says last.
WEIGHTS = {
    "title": 100,
    "properties": 90,
    "preamble": 80,
    "signature": 75,
    "hint_title": 70,
    "file_name": 65,
    "body": 60,
    "page_header": 50,  # 发布机构: a site's field, below the report's own words for itself
    "hint_publisher": 45,
    "author": 40,  # the properties' author, reported as agency_source "properties"
}


@dataclass(frozen=True, slots=True)
class SourceHints:
    """What is known of a document from where it was found, not from its bytes.

    A harvest fills these from the listing entry and the portal; a plain file has none. The
    parser prefers what the report itself prints and falls back on these.
    """

    title: str | None = None  # the listing entry's title
    publisher: str | None = None  # the body the listing names as publisher
    published: str | None = None  # the entry's date, ISO 8601 (YYYY-MM-DD)
    region: str | None = None  # the portal's region (portals.toml)


@dataclass(frozen=True, slots=True)
class Metadata:
    agency: str | None
    year: int | None
    title: str | None
    agency_source: str | None = None
    resolved: Agency | None = None
    # Findings about who published the report (agency_missing, year_missing).
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Candidate:
    agency: Agency
    source: str
    weight: int


def _fold(text: str) -> str:
    return nfkc(text).strip()


def _clean_line(text: str) -> str:
    line = _LABEL_PREFIX.sub("", _MARKUP.sub("", _fold(text)))
    line = _ATTACHMENT.sub("", line)
    if _LETTER_SPACED.fullmatch(line):
        # 互 助 县 就 业 服 务 局 2 0 2 3 年 …: a title set with a space after every character.
        return re.sub(r"\s+", "", line)
    return _SPACED_DIGITS.sub("", line)


def _title_parts(text: str) -> tuple[str | None, int | None]:
    """The agency text and the year of a title line (either may be missing)."""
    head = REPORT_TITLE.split(text, maxsplit=1)[0]
    year = ([None, *YEAR_IN_TITLE.finditer(head)])[-1]
    if year:
        before = head[: year.start()]
        after = re.sub(r"^度", "", head[year.end() :])
        name = after if len(fold(after)) >= 2 else before
    else:
        name = head
    name = re.sub(r"关于(?:印发|发布|公布)?$", "", _LAST_DELIMITER.sub("", name).strip(" \t-_—–·|"))
    name = _LEADING_STAMP.sub("", name)
    tokens = name.split()
    # A title among page furniture keeps its agency in the last token; a letter-spaced one
    # (互 助 县 …) only when the spaces are removed.
    options = [
        option
        for option in (fold(name), tokens[-1] if tokens else "")
        if option and _SENTENCE.search(option) is None and len(option) <= 40
    ]
    found = next((o for o in options if _credible(o)), options[0] if options else None)
    return found, int(year.group(1)) if year else None


def _title_block(lines: list[str]) -> tuple[str | None, str | None, int | None]:
    """The report's title (joined when printed over several lines), its agency and year.

    Of the title-like lines, the first that names a credible agency and a year wins, then one
    with a year (a breadcrumb ending in 政府信息公开年报 names neither).
    """
    blocks: list[tuple[bool, bool, str, str | None, int | None]] = []
    for index, line in enumerate(lines):
        if len(line) > 80:
            continue
        joined = line
        if not REPORT_TITLE.search(line):
            following = lines[index + 1] if index + 1 < len(lines) else ""
            # 平潭综合实验区2020年政府信息公开 / 工作年度报告
            if (
                len(following) <= 40
                and not REPORT_TITLE.search(following)
                and REPORT_TITLE.search(line + following)
            ):
                joined = line + following
            else:
                continue
        if _SENTENCE_END.search(REPORT_TITLE.split(joined, maxsplit=1)[0]):
            continue
        # 平潭综合实验区 2020 年 / 政府信息公开工作年度报告, or 淮安市洪泽区人民 / 政府2023年…: the
        # agency begins on a line before. The reading with a credible agency, then a year, and
        # the fewest lines wins.
        readings = [joined]
        for previous in (lines[index - 1 : index], lines[max(index - 2, 0) : index]):
            if len(previous) != len(readings) or any(
                len(p) > 30 or _SENTENCE.search(p) or REPORT_TITLE.search(p) for p in previous
            ):
                break
            readings.append("".join(previous) + joined)
        scored = [
            (_credible(name), year is not None, text, name, year)
            for text in readings
            for name, year in [_title_parts(text)]
        ]
        blocks.append(max(scored, key=lambda reading: reading[:2]))
    if not blocks:
        return None, None, None
    # Ranked as the readings are; the first of the best wins.
    _, _, joined, name, year = max(blocks, key=lambda block: block[:2])
    return joined, name, year


def _credible(name: str | None) -> bool:
    return name is not None and resolve_agency(name) is not None


def _names_in(text: str, patterns: Sequence[re.Pattern[str] | _Anchored]) -> list[str]:
    """What the patterns capture, cut to the longest tail that is a body's name:
    调整充实了XX县教育局政府信息公开工作领导小组 gives XX县教育局."""
    names = []
    for pattern in patterns:
        for match in pattern.finditer(text):
            phrase = fold(match.group(1))
            tail = next(
                (phrase[i:] for i in range(len(phrase) - 1) if resolve_agency(phrase[i:])), None
            )
            names.append(tail or phrase)
    return names


def _opening_name(paragraph: str, region_hint: str | None) -> str | None:
    """XX局 in `2024年，XX局坚持…`, the usual first sentence of 总体情况."""
    match = _OPENING_YEAR.match(paragraph)
    if not match:
        return None
    rest = re.sub(r"^[\s,，、]+", "", paragraph[match.end() :])
    for end in range(2, min(30, len(rest)) + 1):
        if _OPENING_VERB.match(rest, end) and resolve_agency(rest[:end], None, region_hint):
            return rest[:end]
    return None


def _signature(closing: Sequence[str]) -> str | None:
    """The body named above (or beside) the date at the end of the report."""
    lines = [_clean_line(line) for line in closing if _clean_line(line)]
    for index in range(len(lines) - 1, -1, -1):
        date = _DATE_LINE.search(lines[index])
        if not date:
            continue
        beside = lines[index][: date.start()].strip()
        if beside:
            return beside
        if index > 0 and len(lines[index - 1]) <= 40:
            return lines[index - 1]
    return None


def _publishers(rows: Sequence[str]) -> list[str]:
    """What the 发布机构 fields of a page's information table name."""
    return [match.group(1) for row in rows for match in _PUBLISHER_FIELD.finditer(row)]


def _file_title(source: str | None) -> str | None:
    if not source or source.startswith("<"):
        return None
    stem = PurePath(source).stem
    stem = re.sub(r"^[\d_\-.\s]+", "", stem.replace("_", " "))
    return stem if REPORT_TITLE.search(fold(stem)) else None


def _first_year(*found: tuple[re.Pattern[str], str]) -> int | None:
    for pattern, text in found:
        match = pattern.search(text)
        if match:
            return int(match.group(1))
    return None


def extract_metadata(
    paragraphs: list[str],
    title: str | None = None,
    hints: SourceHints | None = None,
    *,
    overview: Sequence[str] = (),
    closing: Sequence[str] = (),
    author: str | None = None,
    source: str | None = None,
    page_header: Sequence[str] = (),
) -> Metadata:
    """Who published the report and for which year.

    `paragraphs` are the document's first paragraphs (its preamble), in order; `title` and
    `author` its document properties (PDF/DOCX metadata, HTML <title>); `overview` the
    paragraphs of 总体情况; `closing` its last paragraphs; `source` the file's name;
    `page_header` the rows (cells joined by `|`) of the tables printed above the first heading,
    where a web page's information table (索引号 | 发布机构 …) stands.
    """
    hints = hints or SourceHints()
    lines = [line for line in (_clean_line(p) for p in paragraphs) if line]
    lines = [line for line in lines if not _FURNITURE.match(line)]
    title_text, title_name, title_year = _title_block(lines)
    property_text, property_name, property_year = _title_block([_clean_line(title or "")])
    hint_text, hint_name, hint_year = _title_block([_clean_line(hints.title or "")])
    file_text = _file_title(source)
    file_name, file_year = _title_parts(fold(file_text)) if file_text else (None, None)

    preamble = "\n".join(lines)
    body = "\n".join([preamble, *(_fold(p) for p in overview)])
    opening = _fold(overview[0]) if overview else ""

    year = title_year or _first_year(
        (_PERIOD, preamble),
        (_REPORT_OF_YEAR, preamble),
        (_OPENING_YEAR, opening),
        (_PERIOD, body),
        (_YEAR_END, body),
    )
    year = year or property_year or hint_year or file_year

    printed: list[tuple[str | None, str, int]] = [
        (title_name, "title", WEIGHTS["title"]),
        (property_name, "properties", WEIGHTS["properties"]),
        *((n, "preamble", WEIGHTS["preamble"]) for n in _names_in(preamble, _PREAMBLE_PATTERNS)),
        (_signature(closing), "signature", WEIGHTS["signature"]),
        (hint_name, "hint_title", WEIGHTS["hint_title"]),
        *((n, "page_header", WEIGHTS["page_header"]) for n in _publishers([*lines, *page_header])),
        (file_name, "file_name", WEIGHTS["file_name"]),
        (_opening_name(opening, hints.region), "body", WEIGHTS["body"]),
        *((n, "body", WEIGHTS["body"]) for n in _names_in(body, _BODY_PATTERNS)),
        # An author may be whoever made the template the report was typed into: believed least.
        (author, "properties", WEIGHTS["author"]),
        (hints.publisher, "hint_publisher", WEIGHTS["hint_publisher"]),
    ]
    candidates = [
        _Candidate(agency, where, weight)
        for name, where, weight in printed
        if name and (agency := resolve_agency(_clean_line(name), year, hints.region)) is not None
    ]
    chosen = _choose(candidates)
    problems = _missing(chosen, year)
    shown_title = title_text or property_text or hint_text
    return Metadata(
        agency=chosen.agency.name if chosen else None,
        year=year,
        title=shown_title,
        agency_source=chosen.source if chosen else None,
        resolved=chosen.agency if chosen else None,
        problems=problems,
    )


def _missing(chosen: _Candidate | None, year: int | None) -> list[Problem]:
    """Findings for what no source gave: the publishing body, the report year."""
    problems = []
    if chosen is None:
        problems.append(
            Problem(
                "agency_missing",
                "no credible agency: the report does not print a full name of the body "
                "that published it (only 我局, 本机关 or a name without its place)",
            )
        )
    if year is None:
        problems.append(
            Problem("year_missing", "no report year: neither the title nor the 统计期限 names one")
        )
    return problems


def _misread_of(agency: Agency, other: Agency) -> bool:
    """Two names of one place, as long, that differ in one character only (the kind may
    differ: 人民玫府办公厅 reads as a department, 人民政府办公厅 as the government's office)."""
    a, b = agency.name, other.name
    return (
        agency.region_code == other.region_code
        and len(a) == len(b) >= _MISREAD_MIN_CHARS
        and sum(x != y for x, y in zip(a, b, strict=True)) == 1
    )


@cache
def _words_in(name: str) -> int:
    """How many dictionary words and stray characters a name reads as (jieba's own dictionary,
    loaded only for this): a misread character breaks a word apart."""
    with warnings.catch_warnings():
        # jieba imports pkg_resources, which warns about our editable install's namespace.
        warnings.simplefilter("ignore")
        import jieba

    jieba.setLogLevel(logging.WARNING)
    return len(jieba.lcut(name, HMM=False))


def _choose(candidates: list[_Candidate]) -> _Candidate | None:
    """The best-supported candidate: weight of its best place, plus a little per other place
    naming the same body; within a body, the most precisely placed name."""
    if not candidates:
        return None
    placed = [c for c in candidates if c.agency.region_code]

    def identity(candidate: _Candidate) -> str:
        if candidate.agency.region_code:
            # 互助县就业服条局 beside 互助县就业服务局: one character misread (by OCR, or by the
            # tool that converted the report) in one of the places that print the name.
            # Both spellings take the key of whichever comes first among the candidates.
            return next(
                other.agency.key
                for other in placed
                if other.agency.key == candidate.agency.key
                or _misread_of(candidate.agency, other.agency)
            )
        # 河包镇 beside 荣昌区河包镇人民政府: the placed name says which 河包镇.
        for other in placed:
            if other.agency.name.endswith(candidate.agency.name) or other.agency.name.startswith(
                candidate.agency.name
            ):
                return other.agency.key
        return candidate.agency.key

    groups: dict[str, list[_Candidate]] = {}
    for candidate in candidates:
        groups.setdefault(identity(candidate), []).append(candidate)

    def support(members: list[_Candidate]) -> int:
        sources = {m.source for m in members}
        return max(m.weight for m in members) + 5 * (len(sources) - 1)

    best = max(groups.values(), key=support)
    leader = max(best, key=lambda m: m.weight)
    precise = max(best, key=lambda m: (m.agency.region_code is not None, m.weight))
    # A spelling with one character misread gives way to the other: the one printed in more
    # places, else the one that reads as dictionary words (服务局, not 服/条/局).
    variants = [m for m in best if m is precise or _misread_of(precise.agency, m.agency)]
    if len(variants) > 1:
        printed_in = {
            name: len({m.source for m in best if m.agency.name == name})
            for name in {m.agency.name for m in variants}
        }
        precise = min(
            variants,
            key=lambda m: (-printed_in[m.agency.name], _words_in(m.agency.name), -m.weight),
        )
    return _Candidate(precise.agency, leader.source, leader.weight)
