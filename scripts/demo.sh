#!/usr/bin/env bash
# demo.sh - the main job, out of the box: a local mosquitto broker, three simulated
# EG4 LifePower4 v2 packs on pseudo-terminals, and bms2mqtt polling them with a config
# in the original eg4-battery format. Shows the HA discovery and the states arriving.
# Usage: scripts/demo.sh [SECONDS]   (default: run until Ctrl-C)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
seconds=${1:-${DEMO_SECONDS:-0}}

scripts/deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null

tmp=$(mktemp -d /tmp/bms2mqtt-demo.XXXXXX)
pids=()
cleanup() {
    trap - EXIT INT TERM
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill "${pids[i]}" 2>/dev/null || true
        wait "${pids[i]}" 2>/dev/null || true
    done
    if [ -s "$tmp/capture.txt" ] && [ -f "$top/../shared/ha/ha_discovery_check.py" ]; then
        echo "== Home Assistant discovery check of everything published:"
        python3 "$top/../shared/ha/ha_discovery_check.py" "$tmp/capture.txt" | tail -n 1
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$port" >"$tmp/mosquitto.conf"
mosquitto -c "$tmp/mosquitto.conf" >"$tmp/mosquitto.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    mosquitto_sub -h 127.0.0.1 -p "$port" -t '$SYS/broker/version' -C 1 -W 1 >/dev/null 2>&1 && break
done
echo "== mosquitto listening on 127.0.0.1:$port"

mkfifo "$tmp/sim.out"
build/bms-sim --packs 3 --link "$tmp" >"$tmp/sim.out" 2>"$tmp/sim.log" &
pids+=($!)
while read -r line; do
    echo "   bms-sim: $line"
    [ "$line" = READY ] && break
done <"$tmp/sim.out"
cat "$tmp/sim.out" >/dev/null &  # keep the simulator's stdout drained
pids+=($!)

cat >"$tmp/bms2mqtt.yaml" <<YAML
# The original eg4-battery format, unchanged: one USB adapter per pack.
bus:
  mode: modbus_per_pack
  transport: serial
  baud: 9600
  timeout_s: 1.5
  poll_interval_s: 2.0
mqtt:
  host: 127.0.0.1
  port: $port
  username: ""
  password: ""
  discovery_prefix: homeassistant
packs:
  - name: lifepower4_1
    address: 0x40
    port: $tmp/pack1
    baud: 9600
  - name: lifepower4_2
    address: 0x40
    port: $tmp/pack2
    baud: 9600
  - name: lifepower4_3
    address: 0x40
    port: $tmp/pack3
    baud: 9600
cell_count: 16
YAML
echo "== config: $tmp/bms2mqtt.yaml"

mosquitto_sub -h 127.0.0.1 -p "$port" -F '%t %p' -t 'homeassistant/#' -t 'bms2mqtt/#' \
    >"$tmp/capture.txt" 2>/dev/null &
pids+=($!)
build/bms2mqtt -C "$tmp/bms2mqtt.yaml" 2> >(sed 's/^/   bms2mqtt: /' >&2) &
pids+=($!)
echo "== bms2mqtt running (Ctrl-C to stop); what arrives at the broker:"
if [ "$seconds" -gt 0 ]; then
    timeout "$seconds" tail -n +1 -f "$tmp/capture.txt" | python3 scripts/demo_view.py || true
else
    tail -n +1 -f "$tmp/capture.txt" | python3 scripts/demo_view.py
fi
