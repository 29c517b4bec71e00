#!/usr/bin/env python3
"""Summarise bms2mqtt's MQTT traffic ("topic payload" lines on stdin) for people."""
import json
import sys
import time

announced = set()
last_shown = {}  # device -> time its state was last printed (other devices than packs)


def other_device(now, dev, s, cfgs):
    """A few of the readings HA shows by default, every 30 s a device (a GX's devices)."""
    t = time.monotonic()
    if t - last_shown.get(dev, -1e9) < 30:
        return
    last_shown[dev] = t
    shown = []
    for _, cfg in cfgs.values():
        if cfg.get("enabled_by_default") is False or "value_template" not in cfg:
            continue
        key = cfg["value_template"].split("value_json.")[-1].split()[0].strip("}|")
        v = s.get(key)
        if v is None or isinstance(v, (list, dict)):
            continue
        shown.append("%s %s%s" % (cfg.get("name") or key, v,
                                   (" " + cfg["unit_of_measurement"])
                                   if cfg.get("unit_of_measurement") else ""))
        if len(shown) == 5:
            break
    if shown:  # (some services show nothing by default: ESS, platform)
        print(f"{now} {dev}: " + "; ".join(shown), flush=True)


def main():
    configs = {}
    for line in sys.stdin:
        line = line.rstrip("\n")
        topic, _, payload = line.partition(" ")
        parts = topic.split("/")
        now = time.strftime("%H:%M:%S")
        if topic.endswith("/config") and parts[0] == "homeassistant":
            if not payload:
                continue
            cfg = json.loads(payload)
            # The device whose state carries it: <base>/<device>/state.
            pack = cfg.get("state_topic", "?/?").split("/")[1]
            configs.setdefault(pack, {})[cfg["unique_id"]] = (parts[1], cfg)
        elif parts[-1] == "status" and parts[1] == "bridge":
            print(f"{now} bridge {parts[2]} is {payload}", flush=True)
        elif parts[-1] == "availability":
            print(f"{now} {parts[1]} is {payload}", flush=True)
        elif parts[-1] == "state":
            pack = parts[1]
            s = json.loads(payload)
            if pack not in announced and pack in configs:
                announced.add(pack)
                cfgs = configs[pack]
                dev = next(iter(cfgs.values()))[1]["device"]
                kinds = {}
                for comp, _ in cfgs.values():
                    kinds[comp] = kinds.get(comp, 0) + 1
                print(f"{now} HA discovery for {pack}: "
                      + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
                      + f" ({dev.get('manufacturer')} {dev.get('model')}, firmware "
                      f"{dev.get('sw_version', '?')}, serial {dev.get('serial_number', '?')})",
                      flush=True)
            if "packs_online" in s:
                print(f"{now} {pack} (bank of {s['packs_online']} online): {s.get('voltage')} V "
                      f"{s.get('current')} A {s.get('power')} W  SoC {s.get('soc')} %  "
                      f"cells {s.get('cell_voltage_min')}..{s.get('cell_voltage_max')} V  "
                      f"charged {s.get('energy_charged_kwh')} kWh, discharged "
                      f"{s.get('energy_discharged_kwh')} kWh", flush=True)
                continue
            if "pack_voltage" not in s:
                other_device(now, pack, s, configs.get(pack, {}))
                continue
            if s.get("pack_voltage") is None:
                print(f"{now} {pack}: no reading", flush=True)
                continue
            cells = [s.get(f"cell_{i:02d}_voltage") for i in range(1, 17)]
            cells = [c for c in cells if c is not None]
            print(f"{now} {pack}: {s.get('pack_voltage')} V {s.get('pack_current'):+} A "
                  f"{s.get('pack_power'):+} W  SoC {s.get('soc')} %  SoH {s.get('soh')} %  "
                  f"{s.get('status')}  cells {min(cells):.3f}..{max(cells):.3f} V "
                  f"(delta {s.get('cell_voltage_delta_mv')} mV)  {s.get('temperature_pcb')} °C",
                  flush=True)


if __name__ == "__main__":
    try:
        main()
    except (KeyboardInterrupt, BrokenPipeError):
        pass
