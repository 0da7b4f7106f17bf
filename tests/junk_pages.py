"""Hostile junk pages: what a crawler meets on a statistics page, a table-heavy notice or spam.

Randomly nested tables (one chain ~300 deep), a few cells spanning colspan=1000 / rowspan=65534,
and cells holding the template's row labels and numbers scattered at random: rows that look
like template rows (a label, then three or seven numbers) but no title, no section heading and
no template table header. The same seed gives the same page.
"""

from __future__ import annotations

import random

from nianbao.schema.registry import VERSIONS, template

# Odd spans a broken or hostile page prints; 65534 is the most rowspan browsers honour.
HOSTILE_SPANS = (' colspan="1000"', ' rowspan="65534"', ' colspan="1000" rowspan="65534"')


def scattered_words() -> list[str]:
    """The labels a template prints down its tables' left side, in both versions, with and
    without their numbering: the words a junk page may hold by chance or by copying."""
    words: set[str] = set()
    for version in VERSIONS:
        spec = template(version)
        for table in (spec.active_disclosure, spec.applications):
            words.update(row.label for row in table.rows)
            words.update(table.groups.values())
        words.update(group.label for group in spec.review_groups)
    numbered = [f"{prefix}{word}" for word in sorted(words) for prefix in ("", "（三）", "1.")]
    return sorted(words) + numbered


class _Page:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.words = scattered_words()
        self.parts: list[str] = []
        self.size = 0

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text.encode("utf-8"))

    def number(self) -> str:
        return self.rng.choice(
            [str(self.rng.randint(0, 9)), str(self.rng.randint(0, 99_999)), "0", ""]
            + [f"{self.rng.random() * 1000:.2f}"]
        )

    def cell(self, text: str) -> None:
        span = self.rng.choice(HOSTILE_SPANS) if self.rng.random() < 0.01 else ""
        self.write(f"<td{span}>{text}</td>")

    def row(self) -> None:
        self.write("<tr>")
        shape = self.rng.random()
        if shape < 0.5:
            # A template-looking row: a label, then the width of table 二 or 三.
            self.cell(self.rng.choice(self.words))
            for _ in range(self.rng.choice((1, 2, 3, 7, 8))):
                self.cell(self.number())
        else:
            for _ in range(self.rng.randint(1, 9)):
                pick = self.rng.random()
                self.cell(self.rng.choice(self.words) if pick < 0.4 else self.number())
        self.write("</tr>")

    def table(self, nested: int) -> None:
        """A table whose cells hold `nested` more tables, each a level deeper, and so on."""
        self.write("<table>")
        for _ in range(self.rng.randint(2, 12)):
            self.row()
        for _ in range(nested):
            self.write(f"<tr><td>{self.rng.choice(self.words)}")
            self.table(self.rng.randint(0, nested - 1))
            self.write("</td></tr>")
        self.write("</table>")

    def chain(self, depth: int) -> None:
        """Tables nested `depth` deep, each in the last cell of the one before."""
        for _ in range(depth):
            self.write(f"<table><tr><td>{self.rng.choice(self.words)}</td><td>{self.number()}")
            self.write(f"</td></tr><tr><td>{self.rng.choice(self.words)}</td><td>")
        self.write("</td></tr></table>" * depth)


def junk_page(seed: int, size: int, depth: int = 300) -> bytes:
    """A junk page of about `size` bytes (UTF-8 HTML) whose deepest table chain is `depth`."""
    page = _Page(seed)
    page.write('<html><head><meta charset="utf-8"></head><body>')
    while page.size < size:
        page.table(page.rng.randint(0, 3))
        if page.rng.random() < 0.2:
            page.write(f"<p>{page.rng.choice(page.words)} {page.number()}</p>")
    # Last: an HTML parser gives up below some depth (libxml2 at 256 elements) and drops the
    # rest of the page, which would leave the scattered tables above unread.
    page.chain(depth)
    page.write("</body></html>")
    return "".join(page.parts).encode("utf-8")
