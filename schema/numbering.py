"""The numbering reports print before headings and row labels, as data, and the patterns of it
every reader matches.

Reports number their parts 一、 （一） 1. 第一部分: the characters (numerals, brackets,
separators, ordinal words) are in `templates/numbering.json`, the section numbers in
`templates/sections.json`. Each pattern below is named for what a reader finds with it; the
readers differ only in how strict they are (a PDF heading takes 一、 only, a text heading also
一. and 一．, a label's numbering also 一，), and that is said here, once. A local variant —
another bracket, another separator — is a change of the data, and every reader sees it.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any


def _template(name: str) -> Any:
    return json.loads(resources.files(__package__).joinpath("templates", name).read_text("utf-8"))


_DATA = _template("numbering.json")


def _one_of(characters: str) -> str:
    """A character class of `characters`."""
    return "[" + "".join(re.escape(c) for c in characters) + "]"


NUMERALS: str = _DATA["numerals"]
NUMERAL = _one_of(NUMERALS)
# The numbers of the report's six sections (一 … 六).
SECTION_NUMERAL = _one_of("".join(s["number"] for s in _template("sections.json")["sections"]))
OPEN = _one_of(_DATA["brackets"]["open"])
CLOSE = _one_of(_DATA["brackets"]["close"])
_ORDINAL = _DATA["ordinal"]
ORDINAL = re.escape(_ORDINAL["prefix"])
_ORDINAL_NUMERAL = _one_of(_ORDINAL["numerals"])
_PARTS = "|".join(map(re.escape, _ORDINAL["parts"]))
_PART = re.escape(_ORDINAL["section_part"])
_SEPARATORS = _DATA["separators"]
# 一、 as a layout program prints it.
ENUMERATION = _one_of(_SEPARATORS["enumeration"])
# 一、 一. 一． in headings.
HEADING_SEPARATOR = _one_of(_SEPARATORS["heading"])
# … and 一， 一, before row labels.
LABEL_SEPARATOR = _one_of(_SEPARATORS["label"])
_SECTION_SEPARATOR = "[" + "".join(re.escape(c) for c in _SEPARATORS["section"]) + r"\s]"
_ARABIC = rf"\d{{1,{_DATA['arabic_digits']}}}"

# A heading line of a PDF page opens so: 一、 （一） 第一部分 第三章.
PDF_HEADING = re.compile(
    rf"(?:{NUMERAL}+{ENUMERATION}|{OPEN}{NUMERAL}+{CLOSE}|{ORDINAL}{_ORDINAL_NUMERAL}+(?:{_PARTS}))"
)
# How a table row label opens: a cell starting so is a new label, not the tail of one a page
# break cut: （一） （1） 一、 1.
ROW_LABEL_START = re.compile(
    rf"(?:{OPEN}[{NUMERALS}\d]+{CLOSE}|{NUMERAL}+{ENUMERATION}|\d+{HEADING_SEPARATOR})"
)
# A heading line of plain text: 第一部分 一、 一. （一）.
TEXT_HEADING = re.compile(
    rf"^\s*(?:{ORDINAL}{NUMERAL}+{_PART}|{NUMERAL}+{HEADING_SEPARATOR}|{OPEN}{NUMERAL}+{CLOSE})"
)
# The number of one of the six sections at the start of a line: 第三部分, 三、 三. 三：;
# group 1 or 2 is the number.
SECTION_NUMBER = re.compile(
    rf"^\s*(?:{ORDINAL}\s*({SECTION_NUMERAL})\s*{_PART}|({SECTION_NUMERAL})\s*{_SECTION_SEPARATOR})"
)
# A section number inside a line (a heading run on after a sentence): not （三） nor 第三条.
SECTION_NUMBER_INLINE = re.compile(
    rf"(?<!{_one_of(_DATA['brackets']['open'] + _ORDINAL['prefix'])})"
    rf"(?:{ORDINAL}\s*)?{SECTION_NUMERAL}\s*(?:{_PART}|{HEADING_SEPARATOR})"
)
# Numbering before a label, removed to compare labels: 一、 （一） (1) 1. 1、 1． 第一部分.
LABEL_NUMBERING = re.compile(
    rf"^\s*(?:{ORDINAL}{NUMERAL}+{_PART}|{OPEN}?{NUMERAL}+{CLOSE}|{NUMERAL}+{LABEL_SEPARATOR}|"
    rf"{OPEN}?{_ARABIC}{CLOSE}|{_ARABIC}\s*{LABEL_SEPARATOR}(?!\d))\s*"
)
# Where one label printed in run-together text ends and the next begins: before （一） or 一、.
LABEL_BOUNDARY = re.compile(rf"(?={OPEN}{NUMERAL}+{CLOSE})|(?={NUMERAL}{ENUMERATION})")
# A top-level heading of a free-form (pre-2019) report, inside its text: 一、 概述 / 三．主动公开;
# group 1 is the number.
FREEFORM_HEADING = re.compile(
    rf"(?:^|(?<=[\s。；：:！？）)]))({NUMERAL}{{1,3}})\s*{HEADING_SEPARATOR}\s*"
)
# A sub-heading of a free-form report: （一）.
FREEFORM_SUBHEADING = re.compile(rf"{OPEN}{NUMERAL}{{1,2}}{CLOSE}\s*")
