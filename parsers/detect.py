"""File format from the bytes (names and extensions lie on government sites)."""

from __future__ import annotations

import re
import zipfile
from io import BytesIO

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# LibreOffice's and WPS's own format, and what LibreOffice users save reports as.
ODT_MIMETYPE = b"application/vnd.oasis.opendocument.text"


def sniff_format(data: bytes, name: str = "") -> str:
    """One of pdf, docx, odt, doc, wps, xlsx, xls, zip, html, md, txt, or unknown."""
    head = data[:2048]
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if head.lstrip()[:5] == b"%PDF-" or b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        try:
            archive = zipfile.ZipFile(BytesIO(data))
            names = set(archive.namelist())
            # An OpenDocument package names its type in a first, uncompressed `mimetype` entry.
            mimetype = archive.read("mimetype")[:100] if "mimetype" in names else b""
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            return "docx" if suffix == "docx" else "zip"
        if "word/document.xml" in names:
            return "docx"
        if mimetype.strip() == ODT_MIMETYPE and "content.xml" in names:
            return "odt"
        if any(n.startswith("xl/") for n in names):
            return "xlsx"
        return "docx" if suffix == "docx" else "zip"
    if head.startswith(OLE_MAGIC):
        return suffix if suffix in ("doc", "wps", "xls", "et") else "doc"
    lowered = head.lower()
    if (
        b"<html" in lowered
        or b"<!doctype html" in lowered
        or b"<table" in lowered
        or b"<body" in lowered
    ):
        return "html"
    if suffix in ("htm", "html", "shtml") and b"<" in head:
        return "html"
    if suffix in ("pdf", "docx", "odt", "doc", "wps", "xls", "xlsx"):
        # The name promises a binary format the bytes do not have.
        return suffix
    if _looks_like_text(head):
        return "md" if suffix in ("md", "markdown") or _looks_like_markdown(data) else "txt"
    return "unknown"


# Pipe-table delimiter rows and ATX headings: what converted Markdown has and plain text lacks.
_MD_DELIMITER = re.compile(rb"^\s*\|?\s*:?-{3,}:?\s*\|[\s|:-]*$", re.MULTILINE)
_MD_HEADING = re.compile(rb"^#{1,6} \S", re.MULTILINE)


def _looks_like_markdown(data: bytes) -> bool:
    head = data[:65536]
    return bool(_MD_DELIMITER.search(head)) or len(_MD_HEADING.findall(head)) >= 2


def _looks_like_text(head: bytes) -> bool:
    if not head:
        return True
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False
    for encoding in ("utf-8", "gb18030"):
        try:
            head.decode(encoding)
            return True
        except UnicodeDecodeError as error:
            # A multi-byte character cut at the 2 KiB boundary is still text.
            if error.start >= len(head) - 4:
                return True
    return False
