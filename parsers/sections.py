"""Headings -> section codes of the spec, tolerant of numbering, spacing and wording variants.

Rules first (a top-level number and a known heading), jieba tokens for the fuzzy rest. jieba is
loaded with a small domain dictionary of its own: its default dictionary costs ~1 s a process.
"""

from __future__ import annotations

import logging
import re
import unicodedata
import warnings
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import cache
from importlib import resources

from nianbao.schema import numbering
from nianbao.schema.registry import SectionSpec, nfkc, normalize_label, sections, similarity

from .blocks import Block, Paragraph, Table

_STOPWORDS = frozenset(
    ["、", "的", "和", "及", "与", "工作", "情况", "政府信息公开", "政府信息", "信息公开", "年度"]
)
# A heading is a short line; body sentences that merely mention a section name are longer.
MAX_HEADING_CHARS = 40
FUZZY_THRESHOLD = 0.5
FUZZY_RUN_ON = 0.85


@dataclass(slots=True)
class Section:
    code: str
    heading: str
    paragraphs: list[str]
    first_block: int

    @property
    def text(self) -> str:
        return "\n".join(self.paragraphs)


@cache
def _tokenizer():
    with warnings.catch_warnings():
        # jieba imports pkg_resources, which warns about our editable install's namespace.
        warnings.simplefilter("ignore")
        import jieba

    jieba.setLogLevel(logging.WARNING)
    path = resources.files(__package__).joinpath("domain_words.txt")
    return jieba.Tokenizer(dictionary=str(path))


def load_tokenizer() -> None:
    """Load jieba's dictionary now (about a second) rather than at the first heading matched."""
    _tokenizer().initialize()


def _tokens(text: str) -> set[str]:
    return {t for t in _tokenizer().lcut(text) if t.strip() and t not in _STOPWORDS}


def _number_of(text: str) -> str | None:
    match = numbering.SECTION_NUMBER.match(text)
    return (match.group(1) or match.group(2)) if match else None


def match_heading(text: str, styled: bool = False) -> SectionSpec | None:
    """The section a printed heading opens, or None when the line is not a section heading.

    `styled`: the reader knows the line is a heading (an HTML <h2>, a Word heading style), so an
    unnumbered one needs a close match only, not an exact one.
    """
    folded = nfkc(text).strip()
    squeezed = re.sub(r"\s+", "", folded)
    if not squeezed or len(squeezed) > MAX_HEADING_CHARS or squeezed.startswith(("(", "（")):
        return None
    number = _number_of(folded)
    body = normalize_label(squeezed)
    specs = sections()
    best: tuple[float, SectionSpec] | None = None
    for spec in specs:
        score = max(similarity(body, normalize_label(label)) for label in spec.labels)
        if number and number != spec.number:
            score -= 0.3
        if best is None or score > best[0]:
            best = (score, spec)
    if best and best[0] >= 0.8 and (number or styled or best[0] >= 0.95):
        return best[1]
    if not number:
        return None
    # Fuzzy: the numbered heading shares key tokens with the section of the same number.
    spec = next(s for s in specs if s.number == number)
    words = _tokens(body)
    for label in spec.labels:
        reference = _tokens(normalize_label(label))
        if reference and len(words & reference) / len(reference) >= FUZZY_THRESHOLD:
            return spec
    return None


def _label_end(text: str, label: str) -> int | None:
    """Index just past `label` at the start of `text`, skipping spaces and punctuation."""
    wanted = normalize_label(label)
    position = 0
    for char in wanted:
        while position < len(text) and normalize_label(text[position]) == "":
            position += 1
        if position >= len(text) or unicodedata.normalize("NFKC", text[position]) != char:
            return None
        position += 1
    return position


def leading_heading(text: str) -> tuple[SectionSpec, int] | None:
    """A numbered section heading at the start of `text` and where it ends (exact labels only)."""
    match = numbering.SECTION_NUMBER.match(unicodedata.normalize("NFKC", text[:12]))
    if not match:
        return None
    number = match.group(1) or match.group(2)
    after = match.end()
    candidates = [s for s in sections() if s.number == number]
    for spec in candidates:
        for label in sorted(spec.labels, key=len, reverse=True):
            end = _label_end(text[after:], label)
            if end is not None:
                return spec, after + end
    # A typo in the heading (行政法复议): the prefix most like one of the labels, if close.
    # The first prefix with the highest ratio wins when it reaches FUZZY_RUN_ON. A prefix whose
    # upper bound on the ratio (difflib's quick ratios) is below that, or no higher than the best
    # so far, can neither win nor change which prefix does, so its full ratio is not computed.
    best: tuple[float, SectionSpec, int] | None = None
    for spec in candidates:
        for label in spec.labels:
            matcher = _matcher(normalize_label(label))
            for end in range(after + 2, min(len(text), after + MAX_HEADING_CHARS) + 1):
                matcher.set_seq1(normalize_label(text[after:end]))
                floor = FUZZY_RUN_ON if best is None else max(FUZZY_RUN_ON, best[0])
                if matcher.real_quick_ratio() < floor or matcher.quick_ratio() < floor:
                    continue
                score = matcher.ratio()
                if best is None or score > best[0]:
                    best = (score, spec, end)
    if best and best[0] >= FUZZY_RUN_ON:
        return best[1], best[2]
    return None


@cache
def _matcher(reference: str) -> SequenceMatcher:
    # difflib indexes the second sequence once per matcher; the labels are a fixed set.
    return SequenceMatcher(None, "", reference, autojunk=False)


def _split_run_on(text: str) -> list[tuple[SectionSpec | None, str, str]]:
    """Pieces of a flattened paragraph: (section, heading, body) where a heading runs on inside it."""
    cuts = [
        m.start()
        for m in numbering.SECTION_NUMBER_INLINE.finditer(text)
        if leading_heading(text[m.start() :])
    ]
    if not cuts or cuts[0] != 0:
        cuts.insert(0, 0)
    pieces = []
    for start, stop in zip(cuts, [*cuts[1:], len(text)], strict=True):
        chunk = text[start:stop]
        found = leading_heading(chunk)
        if found:
            spec, end = found
            pieces.append((spec, chunk[:end].strip(), chunk[end:].strip()))
        else:
            pieces.append((None, "", chunk.strip()))
    return pieces


def find_sections(blocks: list[Block]) -> tuple[list[Section], list[str | None]]:
    """Sections in document order, and for each block the code of the section it falls in."""
    result: list[Section] = [Section("preamble", "", [], 0)]
    block_section: list[str | None] = []
    seen: set[str] = set()
    for index, block in enumerate(blocks):
        if isinstance(block, Table):
            block_section.append(result[-1].code)
            continue
        assert isinstance(block, Paragraph)
        spec = match_heading(block.text, styled=block.kind == "heading")
        if spec is not None:
            pieces = [(spec, block.text.strip(), "")]
        elif len(block.text) > MAX_HEADING_CHARS:
            pieces = _split_run_on(block.text)
        else:
            pieces = [(None, "", block.text.strip())]
        for spec, heading, body in pieces:
            if spec is not None and spec.code not in seen:
                seen.add(spec.code)
                result.append(Section(spec.code, heading, [body] if body else [], index))
            elif body or heading:
                result[-1].paragraphs.append(f"{heading} {body}".strip())
        block_section.append(result[-1].code)
    return result, block_section
