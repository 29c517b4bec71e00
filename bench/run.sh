#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/run.sh - run bms2mqtt against 3 simulated packs and a real local mosquitto for a
# fixed time and print CPU per pack-poll, peak RSS, 3-pack cycle time and wake-ups.
#
#   bench/run.sh [--idle] [--profile callgrind|perf] [SECONDS]
#
#   SECONDS    length of the measured window (default $BENCH_SECONDS, else 30; 60 with --idle)
#   --idle     poll_interval_s 10 instead of 0: CPU and wake-ups per minute of a quiet daemon
#   --profile  run the daemon under callgrind, or attach perf record, for the window only,
#              and print the top costs (the figures themselves are then not representative)
#
# Everything it starts (mosquitto, bms-sim, mosquitto_sub, the daemon) it stops again by
# pid, on success, failure or interrupt. Needs python3, mosquitto and mosquitto-clients
# (valgrind or perf for --profile).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
build="$top/build-bench"
packs=3
baud=9600

mode=busy
profile=
seconds=
while [ $# -gt 0 ]; do
    case "$1" in
    --idle) mode=idle ;;
    --profile)
        profile=${2:-}
        shift
        ;;
    --profile=*) profile=${1#--profile=} ;;
    -h | --help)
        sed -n '3,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *[!0-9.]* | '')
        echo "run.sh: unknown argument '$1' (try --help)" >&2
        exit 2
        ;;
    *) seconds=$1 ;;
    esac
    shift
done
case "$profile" in
'' | callgrind | perf) ;;
*)
    echo "run.sh: --profile takes callgrind or perf" >&2
    exit 2
    ;;
esac
if [ "$mode" = idle ]; then
    seconds=${seconds:-${BENCH_SECONDS:-60}}
    interval=10
else
    seconds=${seconds:-${BENCH_SECONDS:-30}}
    interval=0
fi

need=(python3 mosquitto mosquitto_sub mosquitto_pub meson ninja stdbuf)
case "$profile" in
callgrind) need+=(valgrind callgrind_control callgrind_annotate) ;;
perf) need+=(perf) ;;
esac
for tool in "${need[@]}"; do
    command -v "$tool" >/dev/null || { echo "run.sh: '$tool' not found" >&2; exit 1; }
done

# A release build of its own, so a debug tree elsewhere never skews the figures.
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$top" --buildtype=release >/dev/null
fi
ninja -C "$build" bms2mqtt bms-sim >/dev/null

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bms2mqtt-bench.XXXXXX")
pids=() # started here, stopped in reverse order
sim_fd_open=false

stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "run.sh: pid $pid ignored SIGTERM for 5 s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        stop_pid "${pids[i]}"
    done
    if $sim_fd_open; then exec 3>&-; fi
    if [ "$rc" -ne 0 ] && [ -s "$tmp/daemon.log" ]; then
        echo "run.sh: the daemon's log:" >&2
        tail -n 20 "$tmp/daemon.log" >&2
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- mosquitto on a free loopback port -------------------------------------------------
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$tmp/mosquitto.conf" <<EOF
listener $port 127.0.0.1
allow_anonymous true
persistence false
log_dest file $tmp/mosquitto.log
log_type error
log_type warning
EOF
mosquitto -c "$tmp/mosquitto.conf" >/dev/null 2>&1 &
pids+=($!)
broker_pid=$!

python3 - "$port" "$broker_pid" <<'EOF'
import os, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
deadline = time.monotonic() + 10
while True:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        break
    except OSError:
        if not os.path.exists(f"/proc/{pid}") or time.monotonic() > deadline:
            sys.exit(f"run.sh: mosquitto did not accept connections on port {port}")
        time.sleep(0.05)
EOF

# --- three simulated packs ------------------------------------------------------------
mkdir "$tmp/dev"
mkfifo "$tmp/sim.in"
"$build/bms-sim" --packs "$packs" --baud "$baud" --link "$tmp/dev" <"$tmp/sim.in" \
    >"$tmp/sim.out" 2>"$tmp/sim.err" &
pids+=($!)
sim_pid=$!
exec 3>"$tmp/sim.in" # keep the sim's stdin open: commands go here
sim_fd_open=true
for ((i = 0; i < 100; i++)); do
    grep -qx READY "$tmp/sim.out" 2>/dev/null && break
    kill -0 "$sim_pid" 2>/dev/null || break
    sleep 0.05
done
if ! grep -qx READY "$tmp/sim.out" 2>/dev/null; then
    echo "run.sh: bms-sim did not get ready" >&2
    cat "$tmp/sim.err" >&2
    exit 1
fi

# --- the original-format configuration ------------------------------------------------
{
    printf 'bus:\n  mode: modbus_per_pack\n  transport: serial\n  baud: %s\n' "$baud"
    printf '  read_chunk: 512\n  timeout_s: 1.0\n  poll_interval_s: %s\n' "$interval"
    printf 'mqtt:\n  host: 127.0.0.1\n  port: %s\n  discovery_prefix: homeassistant\n' "$port"
    printf 'packs:\n'
    for ((i = 1; i <= packs; i++)); do
        printf -- '- name: pack%d\n  address: 0x40\n  port: %s\n  baud: %s\n' \
            "$i" "$tmp/dev/pack$i" "$baud"
    done
    printf 'cell_count: 16\n'
} >"$tmp/bms2mqtt.yaml"
names=$(seq -f 'pack%g' -s , 1 "$packs")

# --- capture of the state messages, subscribed before the daemon starts ----------------
# The probe topic proves the subscription is live before the daemon publishes anything.
stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$port" -q 0 -F '%U %t %l' \
    -t 'bms2mqtt/+/state' -t 'bench/probe' >"$tmp/capture.txt" 2>"$tmp/sub.err" &
pids+=($!)
sub_pid=$!
for ((i = 0; i < 100; i++)); do
    mosquitto_pub -h 127.0.0.1 -p "$port" -t bench/probe -m x 2>/dev/null || true
    grep -q ' bench/probe ' "$tmp/capture.txt" 2>/dev/null && break
    sleep 0.1
done
grep -q ' bench/probe ' "$tmp/capture.txt" || { echo "run.sh: mosquitto_sub never subscribed" >&2; exit 1; }

# --- the daemon -----------------------------------------------------------------------
wrap=()
hooks=()
settle_timeout=30
profile_out=${BENCH_PROFILE_OUT:-${TMPDIR:-/tmp}/bms2mqtt-bench.$profile}
case "$profile" in
callgrind)
    # Instrumentation is switched on for the window only: start-up (discovery) is left out.
    wrap=(valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$profile_out")
    hooks=(--on-start "callgrind_control -i on {pid}" --on-end "callgrind_control -i off {pid}")
    settle_timeout=120
    ;;
perf)
    hooks=(--during "perf record -q -e cpu-clock -F 10000 -g -p {pid} -o $profile_out")
    ;;
esac
# No energy state file from the caller's environment (systemd's STATE_DIRECTORY).
env -u STATE_DIRECTORY "${wrap[@]}" "$build/bms2mqtt" -C "$tmp/bms2mqtt.yaml" 2>"$tmp/daemon.log" &
pids+=($!)
daemon_pid=$!

echo "run.sh: $mode run, $packs packs, ${seconds} s window; broker 127.0.0.1:$port; daemon pid $daemon_pid" >&2
# In the background, so that a signal to this script is handled at once, not after the window.
python3 "$here/measure.py" window --pid "$daemon_pid" --capture "$tmp/capture.txt" \
    --pack-names "$names" --seconds "$seconds" --out "$tmp/window.json" \
    --settle-timeout "$settle_timeout" "${hooks[@]}" &
pids+=($!)
wait $!

# Stop the daemon first (it publishes its offline status), then the capture.
stop_pid "$daemon_pid"
echo stats >&3
sleep 0.2
stop_pid "$sub_pid"

python3 "$here/measure.py" report --window "$tmp/window.json" --capture "$tmp/capture.txt" \
    --pack-names "$names" --mode "$mode" --baud "$baud" --interval "$interval" \
    --daemon-log "$tmp/daemon.log"
total=$(grep -cE ' bms2mqtt/pack[0-9]+/state ' "$tmp/capture.txt" || true)
replies=$(awk '/^STATS/ { for (i = 3; i <= NF; i++) if ($i ~ /^replies=/) { sub("replies=", "", $i); n += $i } } END { print n + 0 }' "$tmp/sim.out")
echo "whole run: $total state messages published, $replies replies sent by bms-sim" \
    "(one identity read per pack is not a state)"

case "$profile" in
callgrind)
    echo
    echo "callgrind, window only: $profile_out (top self cost, then inclusive)"
    callgrind_annotate --inclusive=no "$profile_out" 2>/dev/null | grep -E '^ *[0-9,]+ \(' | head -25
    echo
    callgrind_annotate --inclusive=yes "$profile_out" 2>/dev/null | grep -E '^ *[0-9,]+ \(' | head -40
    ;;
perf)
    echo
    echo "perf cpu-clock samples, window only: $profile_out"
    perf report -i "$profile_out" --stdio --no-children --sort dso -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -12
    perf report -i "$profile_out" --stdio --no-children --sort dso,sym -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40
    ;;
esac
