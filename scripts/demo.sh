#!/usr/bin/env bash
# demo.sh - the main job, out of the box: a local mosquitto broker, three simulated
# EG4 LifePower4 v2 packs on pseudo-terminals, a simulated Victron GX (a single-phase ESS:
# Multi, CAN-bus BMS, MPPT, grid meter) on Modbus TCP, and bms2mqtt polling them all, with
# its status page on a local HTTP port. Shows the HA discovery and the states arriving.
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

mkfifo "$tmp/gx.out"
build/bms-sim --protocol victron_gx --tcp --layout ess1 >"$tmp/gx.out" 2>"$tmp/gx.log" &
pids+=($!)
gx=
while read -r line; do
    echo "   bms-sim (GX): $line"
    case "$line" in TCP\ *) gx=${line##* } ;; READY) break ;; esac
done <"$tmp/gx.out"
cat "$tmp/gx.out" >/dev/null &
pids+=($!)
http=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

cat >"$tmp/bms2mqtt.yaml" <<YAML
# The packs as the original eg4-battery config had them (one USB adapter per pack), and a
# Victron GX beside them.
buses:
  - name: rack
    mode: modbus_per_pack
    baud: 9600
    timeout_s: 1.5
    poll_interval_s: 2.0
    packs:
      - {name: lifepower4_1, address: 0x40, port: $tmp/pack1}
      - {name: lifepower4_2, address: 0x40, port: $tmp/pack2}
      - {name: lifepower4_3, address: 0x40, port: $tmp/pack3}
  - name: gx
    mode: victron_gx
    port: modbus-tcp://$gx
    poll_interval_s: 5
mqtt:
  host: 127.0.0.1
  port: $port
  discovery_prefix: homeassistant
cell_count: 16
state_file: $tmp/state.json
http:
  listen: "127.0.0.1:$http"
YAML
echo "== config: $tmp/bms2mqtt.yaml"

mosquitto_sub -h 127.0.0.1 -p "$port" -F '%t %p' -t 'homeassistant/#' -t 'bms2mqtt/#' \
    >"$tmp/capture.txt" 2>/dev/null &
pids+=($!)
build/bms2mqtt -C "$tmp/bms2mqtt.yaml" 2> >(sed 's/^/   bms2mqtt: /' >&2) &
pids+=($!)
echo "== status page: http://127.0.0.1:$http/ (metrics: /metrics, JSON: /api/v1/state)"
echo "== bms2mqtt running (Ctrl-C to stop); what arrives at the broker:"
if [ "$seconds" -gt 0 ]; then
    timeout "$seconds" tail -n +1 -f "$tmp/capture.txt" | python3 scripts/demo_view.py || true
else
    tail -n +1 -f "$tmp/capture.txt" | python3 scripts/demo_view.py
fi
