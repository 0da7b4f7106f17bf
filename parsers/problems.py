"""Every problem code nianbao reports, in one place: the README's table and the tests read it.

A *failure* means the document yielded no report; a *finding* is recorded beside a report that
still loads.
"""

from __future__ import annotations

FAILURES: dict[str, str] = {
    "empty_file": "the file has 0 bytes",
    "unknown_format": "not PDF, DOCX, DOC/WPS, HTML or text (the bytes are sniffed; names lie)",
    "corrupt_pdf": "a PDF that cannot be opened: truncated or damaged",
    "encrypted_pdf": "a PDF that needs a password",
    "no_text_layer": "a PDF of scanned images with no text to read (OCR off with `--no-ocr`, or it read nothing)",
    "garbled_text": "a PDF whose fonts extract as (cid:…) or U+FFFD instead of characters",
    "corrupt_docx": "a DOCX that is not a valid Word zip, or whose XML declares a DTD or entities",
    "docx_zip_bomb": "a DOCX whose entries or decompressed size are out of bounds",
    "corrupt_doc": "a legacy .doc/.wps or an .odt that LibreOffice could not convert",
    "needs_libreoffice": "a legacy .doc/.wps or an .odt while LibreOffice is not installed",
    "conversion_timeout": "LibreOffice took too long converting a legacy .doc/.wps or an .odt",
    "corrupt_html": "an HTML page that cannot be parsed",
    "not_a_report": "under two points of a report's evidence (a title naming 政府信息公开 and 年度报告/年报, each section heading in the template's order, each template table header); its cells are not facts",
    "too_large": "over the size bound, or more memory than a parser process may use",
    "parse_timeout": "parsing took longer than the per-document time limit and was stopped",
    "worker_crashed": "the parser process died on this file (a crash in a native library)",
    "parser_error": "a bug in nianbao: the file is kept and the batch goes on; please report it",
    "raw_missing": "a document handed over by its raw-store key (a harvest's) whose bytes the raw store does not hold; recorded under the sha256 its key names, with 0 bytes, and the next run over it tries again",
    "load_failed": "the warehouse refused the document's rows (e.g. a row a constraint rejects); the rest of its batch loads, and the next run over the file tries it again",
}

FINDINGS: dict[str, str] = {
    "row_cells_missing": "a row printed fewer cells than it has columns (blank cells dropped); not guessed",
    "duplicate_row": "a template row printed twice; the first is kept",
    "unreadable_cell": "a cell whose text is not a number or a blank marker; kept raw, value null",
    "fused_cells": "cells run together in page text that cannot be split unambiguously",
    "fused_cells_decoded": "cells run together in page text, split where only one split fits the printed totals",
    "ambiguous_binding": "a pre-2019 prose figure whose clause names two codes; not bound",
    "prose_table_disagree": "a pre-2019 report's prose and 统计表 give different figures; both kept",
    "prose_parts_disagree": "a pre-2019 report's prose gives a total and parts (占N%) that do not add up to it",
    "agency_missing": "no credible agency: the report names no full body (only 我局, or a name without its place)",
    "year_missing": "no report year in the title, the 统计期限 or the opening of 总体情况",
    "traditional_characters": "converted from traditional characters (OpenCC tw2sp); raw bytes keep the original",
    "row_label_missing": "a table row of values with no label that the template's order and the printed sums do not place; not mapped, not guessed",
    "row_label_unmatched": "a row of table 三 whose label matches no template row, where the template's order suggests one but the printed sums do not confirm it; kept as an extra row",
    "row_values_unread": "a row of table 二 or 三 whose label names a template row and whose value cells read as text (OCR noise run into digits, a figure read as a word); not mapped, not guessed",
    "row_placed_by_order": "a row of table 三 whose label is misread or missing, placed by the template's row order where the printed sums R1/R2 confirm it (or it is all zeros); a row of table 二 whose OCR'd label names no row, placed where the template prints exactly one unread row between rows read by their labels",
    "ocr_read": "image-only pages were read by OCR; each value read so carries its `confidence`",
    "ocr_corrected": "a low-confidence OCR digit, or a value a re-read of its cell's image contradicts, replaced by the only other reading that makes every printed sum hold; the fact keeps the original in `ocr_reading`",
    "ocr_low_confidence": "an OCR value read with low confidence, or contradicted by a re-read of its cell's image, that no printed sum confirms; kept as read, not guessed (the message says which)",
}

PROBLEM_CODES: frozenset[str] = frozenset(FAILURES) | frozenset(FINDINGS)

# The message of each problem kind whose message has no detail of its own: one wording,
# whichever stage finds it.
MESSAGES: dict[str, str] = {
    "empty_file": "the file is empty (0 bytes)",
    "traditional_characters": FINDINGS["traditional_characters"],
    "worker_crashed": "the parser process died on this file (out of memory or a crash in a native library)",
}
