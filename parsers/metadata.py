"""Agency and report year, from the title and 统计期限 (never from the publish date)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# 政府信息公开工作年度报告, 政府信息公开年报, 政府信息公开工作报告 …: the crawler picks listing
# entries with the same pattern that names a document's title here.
REPORT_TITLE = re.compile(r"政府信息公开.{0,8}?(?:年度报告|年报|工作报告)")
# A year written as a year (2023年, 2023年度), not a number inside a longer one.
YEAR_IN_TITLE = re.compile(r"(?<!\d)((?:19|20)\d{2})\s*年")
_PERIOD = re.compile(
    r"统计(?:期限|时限|时间|区间|范围)[^。；]{0,12}?((?:19|20)\d{2})\s*年\s*1\s*月\s*1\s*日"
)
_LABEL_PREFIX = re.compile(r"^\s*(?:标题|题目|title)\s*[:：]\s*", re.I)
_AGENCY_NOISE = re.compile(r"^[\s\d年度:：,，、（）()]+|[\s（(]*$")
_AGENCY_IN_PREAMBLE = re.compile(
    r"(?:本报告由|由)\s*([^\s，,。（(]{2,30}?)\s*(?:按照|根据|依据|编制|编写)"
)


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


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def _title_line(candidates: list[str]) -> tuple[int, str] | None:
    """The first title-like line, preferring one that names a year (breadcrumbs do not)."""
    titles = [
        (index, line)
        for index, line in ((i, _LABEL_PREFIX.sub("", _fold(t))) for i, t in enumerate(candidates))
        if REPORT_TITLE.search(line) and len(line) <= 80
    ]
    with_year = [t for t in titles if YEAR_IN_TITLE.search(t[1])]
    return (with_year or titles or [None])[0]


def _agency_from_title(title: str) -> str | None:
    head = REPORT_TITLE.split(title, maxsplit=1)[0]
    year = YEAR_IN_TITLE.search(head)
    if year:
        before = head[: year.start()].strip()
        after = re.sub(r"^年?度?", "", head[year.end() :]).strip()
        name = after or before
    else:
        name = head
    name = _AGENCY_NOISE.sub("", name).strip()
    return name if len(name) >= 2 else None


def extract_metadata(
    paragraphs: list[str], title: str | None = None, hints: SourceHints | None = None
) -> Metadata:
    """`paragraphs` are the document's first paragraphs (its preamble), in order; `hints` are
    read only where the document itself says nothing."""
    lines = ([title] if title else []) + paragraphs
    found = _title_line(lines)
    year = agency = None
    title_text = None
    if found:
        index, title_text = found
        match = YEAR_IN_TITLE.search(title_text)
        year = int(match.group(1)) if match else None
        agency = _agency_from_title(title_text)
        if agency is None and index > 0:
            previous = _LABEL_PREFIX.sub("", _fold(lines[index - 1]))
            if 2 <= len(previous) <= 30 and not re.search(r"[。，,]", previous):
                agency = previous
    body = "\n".join(_fold(p) for p in paragraphs)
    period = _PERIOD.search(body)
    if year is None and period:
        year = int(period.group(1))
    if agency is None:
        match = _AGENCY_IN_PREAMBLE.search(body)
        agency = match.group(1) if match else None
    if hints and (agency is None or year is None) and hints.title:
        hinted = extract_metadata([hints.title])
        agency = agency or hinted.agency
        year = year or hinted.year
    if hints and agency is None and hints.publisher:
        agency = _fold(hints.publisher) or None
    return Metadata(agency, year, title_text)
