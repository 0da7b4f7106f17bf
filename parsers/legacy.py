"""Legacy binary Word (.doc), WPS (.wps) and OpenDocument text (.odt) → `Document`, through
LibreOffice.

No Python library reads these formats with their table merges; LibreOffice does. It converts
the file to DOCX, which `read_docx` then reads, so spans come from the same code as every other
Word file. Each call runs its own `soffice` in a private temporary directory with a fresh
profile, so parallel workers never share a profile lock or an office process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from .blocks import Document, ParseError
from .detect import ODT_MIMETYPE, OLE_MAGIC, sniff_format
from .docx import read_docx

CONVERSION_SECONDS = 60.0
# A .doc on a government site is often RTF under a Word name; LibreOffice reads both. The import
# filter is named, because LibreOffice would otherwise read a damaged file as plain text and
# hand back noise. Kingsoft .wps files are Word 97 inside (LibreOffice lists .wps under it).
_RTF_MAGIC = b"{\\rtf"
_IMPORT_FILTERS = {OLE_MAGIC: "MS Word 97", _RTF_MAGIC: "Rich Text Format"}
_ODT_FILTER = "writer8"

# Written into each fresh profile: a document must not fetch anything (linked images, OLE
# links) or run macros while it is converted. LibreOffice does neither on a headless
# conversion today; these make that a setting rather than a default.
_PROFILE_SETTINGS = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry"
           xmlns:xs="http://www.w3.org/2001/XMLSchema"
           xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="BlockUntrustedRefererLinks" oor:op="fuse"><value>true</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="DisableMacrosExecution" oor:op="fuse"><value>true</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="MacroSecurityLevel" oor:op="fuse"><value>3</value></prop></item>
</oor:items>
"""


def find_soffice() -> str | None:
    """Path of LibreOffice's `soffice` (or `libreoffice`) on PATH, None when not installed."""
    return shutil.which("soffice") or shutil.which("libreoffice")


def read_legacy_word(data: bytes, timeout: float = CONVERSION_SECONDS) -> Document:
    """Convert a .doc/.wps file to DOCX with LibreOffice and read it; `ParseError` on failure."""
    import_filter = next(
        (f for magic, f in _IMPORT_FILTERS.items() if data.startswith(magic)), None
    )
    if import_filter is None:
        raise ParseError(
            "corrupt_doc",
            "not a Word 97-2003 or WPS file (no OLE compound-file header): the download is "
            "probably damaged or an error page; fetch it again",
        )
    return _through_libreoffice(data, import_filter, timeout)


def read_open_document(data: bytes, timeout: float = CONVERSION_SECONDS) -> Document:
    """Convert an OpenDocument text (.odt) to DOCX with LibreOffice and read it; `ParseError`
    on failure."""
    if sniff_format(data) != "odt":
        raise ParseError(
            "corrupt_doc",
            f"not an OpenDocument text (a zip whose mimetype is {ODT_MIMETYPE.decode()}): the "
            "download is probably damaged or an error page; fetch it again",
        )
    return _through_libreoffice(data, _ODT_FILTER, timeout)


def _through_libreoffice(data: bytes, import_filter: str, timeout: float) -> Document:
    soffice = find_soffice()
    if soffice is None:
        raise ParseError(
            "needs_libreoffice",
            "legacy .doc/.wps and .odt files are converted with LibreOffice, which is not "
            "installed: run `apt-get install -y --no-install-recommends libreoffice-writer-nogui "
            "fonts-noto-cjk` and ingest the file again",
        )
    with tempfile.TemporaryDirectory(prefix="nianbao-legacy-") as tmp:
        converted = _convert(soffice, import_filter, data, Path(tmp), timeout)
        return read_docx(converted)


def _convert(soffice: str, import_filter: str, data: bytes, work: Path, timeout: float) -> bytes:
    # Fixed names only: nothing from the document or its URL ever becomes a path.
    source, outdir, home, profile = (work / n for n in ("input.doc", "out", "home", "profile"))
    home.mkdir()
    (profile / "user").mkdir(parents=True)
    (profile / "user" / "registrymodifications.xcu").write_text(_PROFILE_SETTINGS, "utf-8")
    source.write_bytes(data)
    command = [
        soffice,
        f"-env:UserInstallation={profile.as_uri()}",
        "--headless",
        "--invisible",
        "--norestore",
        "--nolockcheck",
        "--nodefault",
        f"--infilter={import_filter}",
        "--convert-to",
        "docx:MS Word 2007 XML",
        "--outdir",
        str(outdir),
        str(source),
    ]
    # A minimal environment: HOME and TMPDIR inside the private directory (LibreOffice writes
    # to both), and no proxy variables or display to inherit.
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TMPDIR": str(work),
        "LANG": "C.UTF-8",
    }
    # soffice is a launcher that starts soffice.bin: a session of its own lets a timeout (or the
    # ingest worker's own time limit, which arrives as an exception here) kill both.
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=work,
        start_new_session=True,
    )
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(process)
        raise ParseError(
            "conversion_timeout",
            f"LibreOffice did not convert the file within {timeout:g} s and was stopped; the "
            "file is probably damaged or pathological",
        ) from None
    except BaseException:
        _kill(process)
        raise
    result = outdir / "input.docx"
    if process.returncode != 0 or not result.is_file():
        # stderr also carries start-up noise (a javaldx warning); its Error line is the reason.
        lines = stderr.decode("utf-8", "replace").strip().splitlines()
        detail = next((ln for ln in lines if ln.startswith("Error")), f"exit {process.returncode}")
        raise ParseError(
            "corrupt_doc",
            f"LibreOffice could not read this .doc/.wps/.odt file ({detail}); it is probably "
            "damaged: fetch it again or ask the publisher for a PDF or DOCX",
        )
    return result.read_bytes()


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have exited meanwhile
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
