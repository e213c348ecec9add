#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# setup.sh: installs every Debian package ringflow needs to build and test
# (systemd for systemd-analyze, which checks the shipped units).
# Idempotent: packages already installed are not fetched again. Needs root
# (or sudo) only when something is missing.
set -euo pipefail

packages=(
        build-essential autoconf automake pkg-config
        clang libclang-rt-14-dev
        libmicrohttpd-dev libjson-c-dev libsqlite3-dev liburing-dev
        libinih-dev libwslay-dev libsystemd-dev libcriterion-dev zlib1g-dev
        systemd
)
# The dashboard's end-to-end test: Debian's browser, and node for playwright-core.
packages+=(chromium nodejs)
# The api benchmark (make bench-api): wrk drives POSTs and GETs. promtool (Debian's
# prometheus package: ~96 MB with a server and its service) is not installed here;
# test_api checks /metrics with it when it is on PATH or in $PROMTOOL.
packages+=(wrk)

missing=()
for p in "${packages[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
                missing+=("$p")
        fi
done

sudo=""
if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
fi
apt_install() {
        if [ -n "$sudo" ] && ! command -v sudo >/dev/null; then
                echo "setup: need root or sudo to install: $*" >&2
                exit 1
        fi
        echo "setup: installing $*"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
}

if [ "${#missing[@]}" -eq 0 ]; then
        echo "setup: all ${#packages[@]} build and test packages are installed"
else
        apt_install "${missing[@]}"
fi

# The dashboard's uPlot and the end-to-end test's playwright-core come from the
# npm registry, pinned by ui/package-lock.json, into ui/node_modules (never
# committed). Debian's nodejs ships npm separately; other builds bundle it.
if ! command -v npm >/dev/null; then
        apt_install npm
fi
ui="$(cd "$(dirname "$0")/.." && pwd)/ui"
if [ ! -f "$ui/node_modules/.package-lock.json" ] || [ "$ui/package-lock.json" -nt "$ui/node_modules/.package-lock.json" ]; then
        echo "setup: npm ci in $ui"
        (cd "$ui" && npm ci --no-audit --no-fund --loglevel=error)
else
        echo "setup: ui/node_modules is up to date with ui/package-lock.json"
fi
