#!/usr/bin/env bash
# OpenCV (pulled in by rapidocr-onnxruntime, the OCR engine) loads libGL and GLib at import. The
# machine image has them; this installs them where it does not. The OCR models themselves come
# with the pip install. Run by .ci/run; it neither sets shell options nor exits.
if ! ldconfig -p | grep -q 'libGL\.so\.1' || ! ldconfig -p | grep -q 'libglib-2\.0\.so\.0'; then
    echo "OpenCV's system libraries missing: installing libgl1 libglib2.0-0" >&2
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                libgl1 libglib2.0-0
    else
        sudo apt-get update -qq &&
            sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                libgl1 libglib2.0-0
    fi
fi
