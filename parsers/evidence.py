"""Is a document an annual report? Weighed on what a real report prints and other pages do not.

A crawler also lands on statistics pages, notices and spam whose cells hold the template's row
labels; labels alone prove nothing. Each of these counts one point:

- a title or preamble line naming 政府信息公开 and 年度报告/年报 (or a harvest hint's title that does);
- each section heading found in the template's order (一、总体情况, 二、主动公开政府信息情况 …);
- each template table recognised by its printed header (信息内容 | 本年制发件数, the applicant
  columns, 结果维持 | 结果纠正).

Two points make a report: a title and section 一 (an excerpt cut off after it), two headings, or
a title and one template table. A notice about compiling the reports names them in its title
and has nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nianbao.schema.registry import sections

from .metadata import REPORT_TITLE, SourceHints

POINTS_NEEDED = 2
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class ReportEvidence:
    title: str | None  # the words naming the report (and up to 30 characters before), or None
    sections: tuple[str, ...]  # section codes found in the template's order
    headers: tuple[str, ...]  # template tables recognised by their printed header

    @property
    def points(self) -> int:
        return (self.title is not None) + len(self.sections) + len(self.headers)

    @property
    def is_report(self) -> bool:
        return self.points >= POINTS_NEEDED

    def shortfall(self) -> str:
        """The not_a_report message: what was found and what was missing."""
        found, missing = [], []
        if self.title is not None:
            found.append(f"a title naming the report ({self.title})")
        else:
            missing.append("a title or preamble naming 政府信息公开 and 年度报告/年报")
        if self.sections:
            found.append(f"section headings {', '.join(self.sections)}")
        else:
            missing.append("section headings in the template's order (一、总体情况 …)")
        if self.headers:
            found.append(f"template table headers {', '.join(self.headers)}")
        else:
            missing.append(
                "a template table header (信息内容 | 本年制发件数 …, the applicant columns "
                "自然人 | 法人或其他组织 …, 结果维持 | 结果纠正 …)"
            )
        message = (
            f"not an annual report: {self.points} of the {POINTS_NEEDED} points of evidence "
            f"needed; missing {'; '.join(missing)}"
        )
        return message + (f"; found {'; '.join(found)}" if found else "")


def report_title(lines: list[str], hints: SourceHints | None = None) -> str | None:
    """Where the first of `lines` naming the report names it, else where the harvest hint's title
    does. `lines` are the document's title and opening paragraphs only: a long page may quote
    report titles anywhere (a notice, a list of links)."""
    candidates = [*lines, *([hints.title] if hints and hints.title else [])]
    for line in candidates:
        squeezed = _SPACES.sub("", line)
        match = REPORT_TITLE.search(squeezed)
        if match:
            # The name and what precedes it on the line (the agency and year), not the body after.
            return squeezed[max(0, match.start() - 30) : match.end()]
    return None


def ordered_sections(codes: list[str]) -> tuple[str, ...]:
    """The longest run of `codes` (document order) that follows the template's section order."""
    place = {spec.code: index for index, spec in enumerate(sections())}
    known = [code for code in codes if code in place]
    # Longest increasing run by template place; a document has at most six headings.
    runs: list[tuple[str, ...]] = []
    for index, code in enumerate(known):
        before = (run for run in runs[:index] if place[run[-1]] < place[code])
        runs.append((*max(before, key=len, default=()), code))
    return max(runs, key=len, default=())


def weigh(
    title_lines: list[str],
    hints: SourceHints | None,
    section_codes: list[str],
    headers: list[str],
) -> ReportEvidence:
    """The evidence that a document is a report, from its title and opening paragraphs, its
    section codes in document order and the template tables recognised by their header."""
    return ReportEvidence(
        report_title(title_lines, hints), ordered_sections(section_codes), tuple(headers)
    )
