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

missing=()
for p in "${packages[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
                missing+=("$p")
        fi
done

if [ "${#missing[@]}" -eq 0 ]; then
        echo "setup: all ${#packages[@]} build and test packages are installed"
        exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
        sudo="sudo"
fi
echo "setup: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
