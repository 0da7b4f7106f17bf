#!/usr/bin/env bash
# The system packages the tests need, installed where missing (a fresh machine has none of the
# optional ones). Run by .ci/run; it neither sets shell options nor exits. Each line: what tells
# the package is there, and the Debian packages that bring it.
#   PostgreSQL server binaries: the tests start a throwaway cluster (tests/conftest.py).
#   LibreOffice: legacy .doc/.wps conversion (parsers/legacy.py), and PDFs of the bad cases.
#   Chromium: the quality report rendered headless (tests/test_bi.py), reports printed to PDF
#   (tests/test_conversions.py).
#   poppler-utils: pdftocairo, which re-writes a report's PDF (tests/test_conversions.py).
#   libGL and GLib: OpenCV, which the OCR engine loads at import (parsers/ocr.py).
#   fonts-noto-cjk: Chinese glyphs for the PDFs and screenshots the tests render.
#   A C compiler, the C library's headers and Python's: `pip install` builds the PDF reader's
#   extension (parsers/_pdfium_reader.c); python3-dev only where python3 is Debian's own.

missing=()
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v soffice >/dev/null 2>&1 || missing+=(libreoffice-writer-nogui)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v pdftocairo >/dev/null 2>&1 || missing+=(poppler-utils)
ldconfig -p | grep -q 'libGL\.so\.1' || missing+=(libgl1)
ldconfig -p | grep -q 'libglib-2\.0\.so\.0' || missing+=(libglib2.0-0)
fc-list 2>/dev/null | grep -qi 'Noto Sans CJK' || missing+=(fonts-noto-cjk)
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
[ -e /usr/include/stdio.h ] || missing+=(libc6-dev)
python3 -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(sysconfig.get_path("include") + "/Python.h"))' 2>/dev/null ||
    missing+=(python3-dev)

if [ ${#missing[@]} -gt 0 ]; then
    echo "installing system packages the tests need: ${missing[*]}" >&2
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${missing[@]}"
fi
