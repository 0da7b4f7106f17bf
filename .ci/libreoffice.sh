#!/usr/bin/env bash
# Make sure LibreOffice's headless writer is installed: nianbao converts legacy .doc/.wps reports
# with it (parsers/legacy.py), and the tests convert tests/fixtures/bad/legacy.{doc,wps}.
# fonts-noto-cjk gives Chinese text real glyphs when tests/fixtures/make_bad_cases.py renders a
# PDF. Run by .ci/run; it neither sets shell options nor exits.
if ! command -v soffice >/dev/null 2>&1; then
    echo "LibreOffice missing: installing libreoffice-writer-nogui fonts-noto-cjk" >&2
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                libreoffice-writer-nogui fonts-noto-cjk
    else
        sudo apt-get update -qq &&
            sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                libreoffice-writer-nogui fonts-noto-cjk
    fi
fi
