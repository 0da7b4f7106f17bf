#!/usr/bin/env bash
# Make sure PostgreSQL server binaries exist: the test suite starts its own throwaway cluster
# from /usr/lib/postgresql/*/bin (tests/conftest.py), so only the package is needed, no service.
# Sourced by .ci/run or run on its own; it neither sets shell options nor exits.
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    echo "PostgreSQL server binaries missing: installing postgresql" >&2
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql
    else
        sudo apt-get update -qq &&
            sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql
    fi
fi
