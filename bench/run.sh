#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/run.sh - run bms2mqtt against 4 simulated packs on one RS-485 bus and a real local
# mosquitto for a fixed time, once per way the adapter delivers a reply (1-byte, 4-byte or
# 16 ms chunks), and print wake-ups per reply, CPU per pack-poll, peak RSS and the 4-pack
# cycle against 4 wire times.
#
#   bench/run.sh [--chunk MODE]... [--daemon PATH | --link-only] [--idle]
#                [--profile callgrind|perf] [SECONDS]
#
#   SECONDS    length of each measured window (default $BENCH_SECONDS, else 30; 60 with --idle)
#   --chunk    how bms-sim delivers each reply: 1 or 4 (bytes a write, each write when its
#              last byte has crossed the wire), 16ms (everything that crossed the wire, every
#              16 ms: an FTDI adapter's latency timer) or frame (one write a frame);
#              repeatable; default: 1, 4 and 16ms in turn (4 with --idle or --profile)
#   --daemon   measure this bms2mqtt binary instead of the tree's release build (e.g. one
#              built from another commit, for a before/after comparison)
#   --link-only  no daemon and no broker: the line alone (bench/link_cost.c, or
#              $BENCH_LINK_COST), block reads from the same simulated bus for about the
#              window, CPU and wake-ups each
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
packs=4
baud=9600

mode=busy
profile=
seconds=
chunks=()
daemon_bin=
link_only_mode=false
while [ $# -gt 0 ]; do
    case "$1" in
    --idle) mode=idle ;;
    --link-only) link_only_mode=true ;;
    --chunk)
        chunks+=("${2:-}")
        shift
        ;;
    --chunk=*) chunks+=("${1#--chunk=}") ;;
    --daemon)
        daemon_bin=${2:-}
        shift
        ;;
    --daemon=*) daemon_bin=${1#--daemon=} ;;
    --profile)
        profile=${2:-}
        shift
        ;;
    --profile=*) profile=${1#--profile=} ;;
    -h | --help)
        sed -n '3,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
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
if [ ${#chunks[@]} -eq 0 ]; then
    if [ "$mode" = idle ] || [ -n "$profile" ]; then chunks=(4); else chunks=(1 4 16ms); fi
fi
if [ -n "$profile" ] && [ ${#chunks[@]} -gt 1 ]; then
    echo "run.sh: --profile runs one --chunk mode" >&2
    exit 2
fi
for c in "${chunks[@]}"; do
    case "$c" in
    1 | 4 | 16ms | frame) ;;
    *)
        echo "run.sh: --chunk takes 1, 4, 16ms or frame, not '$c'" >&2
        exit 2
        ;;
    esac
done
if [ -n "$daemon_bin" ] && [ ! -x "$daemon_bin" ]; then
    echo "run.sh: --daemon: '$daemon_bin' is not an executable" >&2
    exit 2
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
ninja -C "$build" bms2mqtt bms-sim bench/link-cost >/dev/null
daemon_bin=${daemon_bin:-$build/bms2mqtt}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bms2mqtt-bench.XXXXXX")
pids=() # started here, stopped in reverse order
sim_fd_open=false

# Stop a pid started here and forget it, so that the exit trap never signals a number the
# system may have handed to another process since.
stop_pid() {
    local pid=$1 i keep=()
    for i in "${pids[@]}"; do [ "$i" = "$pid" ] || keep+=("$i"); done
    pids=("${keep[@]}")
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

# --- the simulated bus ---------------------------------------------------------------------
# sim_start CHUNK: 4 packs (slaves 1..4) on one pty, DIR/dev/pack1, delivering replies as
# CHUNK says; its pid in sim_pid.
sim_start() {
    local chunk=$1 sim_args=() i
    case "$chunk" in
    1 | 4) sim_args=(--chunk "$chunk") ;;
    16ms) sim_args=(--chunk-ms 16) ;;
    frame) sim_args=() ;;
    esac
    rm -rf "$tmp/dev" "$tmp/sim.in" "$tmp/capture.txt" "$tmp/daemon.log"
    mkdir "$tmp/dev"
    mkfifo "$tmp/sim.in"
    "$build/bms-sim" --bus "$(seq -s , 1 "$packs")" --baud "$baud" --link "$tmp/dev" \
        "${sim_args[@]}" <"$tmp/sim.in" >"$tmp/sim.out" 2>"$tmp/sim.err" &
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
}

sim_stop() {
    exec 3>&-
    sim_fd_open=false
    stop_pid "$sim_pid"
}

# link_only CHUNK: the line alone (bench/link_cost.c) against the same bus: block reads from
# the four packs in turn for about the window, no daemon, no broker.
link_only() {
    local chunk=$1 n
    sim_start "$chunk"
    n=$(awk -v s="$seconds" 'BEGIN { printf "%d", s / 0.1115 }')
    echo "run.sh: the link alone, $packs packs on one bus, replies in chunks of $chunk," \
        "$n exchanges" >&2
    printf '%-6s ' "$chunk"
    "${BENCH_LINK_COST:-$build/bench/link-cost}" "$tmp/dev/pack1" "$packs" "$n" \
        2>"$tmp/link-cost.err" || { cat "$tmp/link-cost.err" >&2; exit 1; }
    sim_stop
}

# --- one run: the simulated bus, the capture, the daemon, the window --------------------
# run_mode CHUNK: the daemon against sim_start CHUNK.
run_mode() {
    local chunk=$1 i names
    sim_start "$chunk"

    # The original configuration format; packs that name the same port share its bus.
    {
        printf 'bus:\n  mode: modbus_per_pack\n  transport: serial\n'
        printf '  baud: %s\n  read_chunk: 512\n  timeout_s: 1.0\n' "$baud"
        printf '  poll_interval_s: %s\n' "$interval"
        printf 'mqtt:\n  host: 127.0.0.1\n  port: %s\n  discovery_prefix: homeassistant\n' "$port"
        printf 'packs:\n'
        for ((i = 1; i <= packs; i++)); do
            printf -- '- name: pack%d\n  address: %d\n  port: %s\n  baud: %s\n' \
                "$i" "$i" "$tmp/dev/pack1" "$baud"
        done
        printf 'cell_count: 16\n'
    } >"$tmp/bms2mqtt.yaml"
    names=$(seq -f 'pack%g' -s , 1 "$packs")

    # The capture of the state messages, subscribed before the daemon starts: the probe
    # topic proves the subscription is live before the daemon publishes anything.
    stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$port" -q 0 -F '%U %t %l' \
        -t 'bms2mqtt/+/state' -t 'bench/probe' >"$tmp/capture.txt" 2>"$tmp/sub.err" &
    pids+=($!)
    local sub_pid=$!
    for ((i = 0; i < 100; i++)); do
        mosquitto_pub -h 127.0.0.1 -p "$port" -t bench/probe -m x 2>/dev/null || true
        grep -q ' bench/probe ' "$tmp/capture.txt" 2>/dev/null && break
        sleep 0.1
    done
    grep -q ' bench/probe ' "$tmp/capture.txt" || { echo "run.sh: mosquitto_sub never subscribed" >&2; exit 1; }

    local wrap=() hooks=() settle_timeout=30
    local profile_out=${BENCH_PROFILE_OUT:-${TMPDIR:-/tmp}/bms2mqtt-bench.$profile}
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
    env -u STATE_DIRECTORY "${wrap[@]}" "$daemon_bin" -C "$tmp/bms2mqtt.yaml" 2>"$tmp/daemon.log" &
    pids+=($!)
    local daemon_pid=$!

    echo "run.sh: $mode run, $packs packs on one bus, replies in chunks of $chunk," \
        "${seconds} s window; broker 127.0.0.1:$port; daemon pid $daemon_pid" >&2
    # In the background, so that a signal to this script is handled at once, not after the window.
    python3 "$here/measure.py" window --pid "$daemon_pid" --capture "$tmp/capture.txt" \
        --pack-names "$names" --seconds "$seconds" --out "$tmp/window.json" \
        --settle-timeout "$settle_timeout" "${hooks[@]}" &
    pids+=($!)
    local measure_pid=$!
    wait $measure_pid
    stop_pid "$measure_pid"

    # Stop the daemon first (it publishes its offline status), then the capture.
    stop_pid "$daemon_pid"
    echo stats >&3
    sleep 0.2
    stop_pid "$sub_pid"
    sim_stop

    python3 "$here/measure.py" report --window "$tmp/window.json" --capture "$tmp/capture.txt" \
        --pack-names "$names" --mode "$mode" --baud "$baud" --interval "$interval" \
        --chunk "$chunk" --daemon-log "$tmp/daemon.log" --json-out "$tmp/result-$chunk.json"
    local total replies
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
}

# --- mosquitto on a free loopback port -------------------------------------------------
broker_start() {
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
}

if $link_only_mode; then
    for c in "${chunks[@]}"; do link_only "$c"; done
    exit 0
fi
broker_start
echo "run.sh: daemon $daemon_bin" >&2
results=()
for c in "${chunks[@]}"; do
    run_mode "$c"
    results+=("$tmp/result-$c.json")
done
if [ ${#results[@]} -gt 1 ]; then
    python3 "$here/measure.py" summary "${results[@]}"
fi
