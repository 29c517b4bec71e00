#!/usr/bin/env bash
# deps.sh - install the Debian 12 packages bms2mqtt needs to build and run its demo; with
# --test also what its tests need: the sanitizers' and fuzzers' compilers, pandoc for the man
# pages, promtool (prometheus) and headless chromium for the HTTP outputs, and what builds and
# checks its Debian package (scripts/check_package.sh).
# Runs apt-get as root (directly, or through sudo). Does nothing if all are present.
# Usage: scripts/deps.sh [--test]
set -euo pipefail

PACKAGES=(
    build-essential pkg-config meson ninja-build
    libmodbus-dev libmosquitto-dev libssl-dev libyaml-dev libjansson-dev libcmocka-dev
    libsystemd-dev libmicrohttpd-dev
    mosquitto mosquitto-clients openssl python3
)
if [ "${1:-}" = --test ]; then
    PACKAGES+=(
        clang libclang-rt-14-dev libtsan2
        pandoc man-db
        debhelper dpkg-dev lintian systemd
        prometheus chromium
    )
elif [ $# -gt 0 ]; then
    echo "usage: scripts/deps.sh [--test]" >&2
    exit 2
fi

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps.sh: installing ${missing[*]}" >&2
SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
