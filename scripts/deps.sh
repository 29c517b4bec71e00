#!/usr/bin/env bash
# deps.sh - install the Debian 12 packages bms2mqtt needs to build, test and run its demo,
# make its man pages (pandoc), test its HTTP outputs (promtool from prometheus, headless
# chromium) and build and check its Debian package (scripts/check_package.sh).
# Runs apt-get as root (directly, or through sudo). Does nothing if all are present.
set -euo pipefail

PACKAGES=(
    build-essential pkg-config meson ninja-build
    libmodbus-dev libmosquitto-dev libssl-dev libyaml-dev libjansson-dev libcmocka-dev
    libsystemd-dev
    mosquitto mosquitto-clients openssl python3
    clang libclang-rt-14-dev
    pandoc man-db
    debhelper dpkg-dev lintian systemd
    libtsan2
    libmicrohttpd-dev prometheus chromium
)

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
