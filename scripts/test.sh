#!/usr/bin/env bash
# test.sh - install what is missing, build with -Werror, and run every test.
# Usage: scripts/test.sh [BUILD_DIR] [extra meson setup options...]
# Prints meson's summary and ends with a line "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

build=${1:-build}
shift || true
scripts/deps.sh --test

if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" -Dwerror=true "$@" >/dev/null
fi
ninja -C "$build"
set +e
meson test -C "$build" --print-errorlogs --num-processes 2
rc=$?
set -e
python3 scripts/test_summary.py "$build/meson-logs/testlog.json"
exit $rc
