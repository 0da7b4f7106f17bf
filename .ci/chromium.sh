#!/usr/bin/env bash
# Make sure a headless Chromium is installed: tests/test_bi.py opens the quality report
# (`nianbao report`) in it and checks that it renders with no console error. Debian's package,
# so no browser is downloaded at test time; fonts-noto-cjk gives the Chinese labels glyphs.
# Run by .ci/run; it neither sets shell options nor exits.
if ! command -v chromium >/dev/null 2>&1; then
    echo "Chromium missing: installing chromium fonts-noto-cjk" >&2
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                chromium fonts-noto-cjk
    else
        sudo apt-get update -qq &&
            sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                chromium fonts-noto-cjk
    fi
fi
