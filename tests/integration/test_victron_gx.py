#!/usr/bin/env python3
"""bms2mqtt with a victron_gx bus against bms-sim's GX (Modbus TCP): the scan and its cache,
one HA device per (GX, unit id, service) that passes the HA discovery checker, values end to
end, availability per GX and per device (the MPPT away at night), the poll's request count,
`bms2mqtt scan --port modbus-tcp://`. Facts: shared/protocols/victron/README.md."""
import json
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_buses import BusSim  # noqa: E402
from test_victron_sim import Client, s16  # noqa: E402

SERIAL = "c0619ab1f2e3"  # the simulated GX's (system register 800)


def gx_config(mqtt_port, gx_port, extra="", poll_interval_s=1, name="gx", state_file=None):
    lines = [
        "mqtt:",
        "  host: 127.0.0.1",
        "  port: %d" % mqtt_port,
        "buses:",
        "  - name: %s" % name,
        "    mode: victron_gx",
        "    port: modbus-tcp://%s" % gx_port,
        "    poll_interval_s: %s" % poll_interval_s,
        "    timeout_s: 1",
    ]
    lines += ["    " + line for line in extra.splitlines() if line]
    if state_file:
        lines.append("state_file: %s" % state_file)
    return "\n".join(lines) + "\n"


def uid(unit, reg):
    return "victron_%s_%d_%d" % (SERIAL, unit, reg)


class VictronGxTest(harness.StackTest):
    def start_gx(self, *args):
        # Two listeners of one GX: the daemon on the first, the test's own client on the
        # second (a listener serves one connection at a time).
        sim = BusSim(["--protocol", "victron_gx", "--tcp", "--packs", "2", *args], self.dir)
        self.addCleanup(sim.stop)
        return sim

    def stack(self, *sim_args, extra="", poll_interval_s=1, env=None):
        broker = self.start_broker()
        cap = self.start_capture()
        sim = self.start_gx(*sim_args)
        state = os.path.join(self.dir, "state", "bms2mqtt.json")
        os.makedirs(os.path.dirname(state), exist_ok=True)
        cfg = self.write_config(gx_config(broker.port, sim.tcp[1], extra, poll_interval_s,
                                          state_file=state))
        d = self.start_daemon(cfg, env=env)
        return broker, cap, sim, d

    def full_table(self, sim):
        return "register table attributes.csv" in sim.log_text()

    def wait_state(self, cap, device, pred=lambda s: True, timeout=20, since=0):
        got = cap.wait_for(lambda m: m[1] == harness.state_topic(device) and
                           pred(json.loads(m[2])), timeout, since)
        self.assertIsNotNone(got, "no state of %s\n%s" % (device, self.diag()))
        return json.loads(got[2])

    def test_devices_discovery_and_values(self):
        broker, cap, sim, d = self.stack()
        devices = ["gx", "gx_100_system", "gx_100_settings", "gx_100_hub4", "gx_227_vebus",
                   "gx_225_battery", "gx_226_solarcharger", "gx_30_grid"]
        for dev in devices:
            self.wait_state(cap, dev)
        gx = self.wait_state(cap, "gx", lambda s: s["requests"] <= 8)
        self.assertEqual(gx["devices"], 8 if self.full_table(sim) else 7)
        # Values end to end: the daemon's battery state against the GX's registers read now.
        client = Client(sim.tcp[2])
        self.addCleanup(client.close)
        since = cap.mark()
        soc = client.read(225, 266, 1)[0] / 10
        bat = self.wait_state(cap, "gx_225_battery", since=since)
        self.assertAlmostEqual(bat["soc"], soc, delta=1.0)
        self.assertTrue(45 < bat["dc_0_voltage"] < 58, bat["dc_0_voltage"])
        grid = self.wait_state(cap, "gx_30_grid", since=since)
        self.assertAlmostEqual(grid["ac_l1_power"], s16(client.read(30, 2600, 1)[0]), delta=800)
        vebus = self.wait_state(cap, "gx_227_vebus", since=since)
        self.assertIn(vebus["mode"], ("On", "Charger Only", "Inverter Only", "Off"))
        system = self.wait_state(cap, "gx_100_system", since=since)
        self.assertEqual(system["serial"], SERIAL)  # a string register, as text
        # Unknown is never 0: L2/L3 of a single-phase Multi read 0 on a GX; spacers and
        # not-available registers are null, never 65535.
        for dev in ("gx_227_vebus", "gx_225_battery", "gx_100_system"):
            for k, v in self.wait_state(cap, dev).items():
                self.assertNotEqual(v, 65535, "%s %s" % (dev, k))
        # Discovery: per-register unique_ids, the device via the GX, availability of three.
        configs = cap.last_configs()
        soc_topic = "homeassistant/sensor/%s/config" % uid(225, 266)
        self.assertIn(soc_topic, configs, "\n".join(sorted(configs)[:20]))
        c = json.loads(configs[soc_topic])
        self.assertEqual(c["unique_id"], uid(225, 266))
        self.assertEqual(c["device"]["via_device"], "victron_" + SERIAL)
        self.assertEqual(c["device"]["identifiers"], ["victron_%s_225_battery" % SERIAL])
        self.assertEqual(c["device_class"], "battery")
        self.assertEqual([a["topic"] for a in c["availability"]][1:],
                         ["bms2mqtt/gx/availability", "bms2mqtt/gx_225_battery/availability"])
        self.assertNotIn("enabled_by_default", c)  # the core set is shown
        gxc = json.loads(configs["homeassistant/sensor/victron_%s_gx_requests/config" % SERIAL])
        self.assertEqual(gxc["device"]["identifiers"], ["victron_" + SERIAL])
        if self.full_table(sim):
            nominal = json.loads(configs["homeassistant/sensor/%s/config" % uid(227, 130)])
            self.assertFalse(nominal["enabled_by_default"])
            self.assertEqual(json.loads(configs["homeassistant/sensor/%s/config" % uid(
                227, 140)])["device"]["name"], "MultiPlus-II 48/")  # its custom name
        # The HA checker over everything published: 0 problems.
        rc, out = harness.run_ha_check(cap.lines(), self.dir)
        self.assertEqual(rc, 0, out[-3000:])
        self.assertRegex(out, r" 0 problems")

    def test_night_device_goes_offline_and_back(self):
        broker, cap, sim, d = self.stack()
        self.wait_state(cap, "gx_226_solarcharger")
        cap.wait_topic(harness.avail_topic("gx_226_solarcharger"), "online", 20)
        since = cap.mark()
        sim.command("night on")
        self.assertIsNotNone(cap.wait_topic(harness.avail_topic("gx_226_solarcharger"), "offline",
                                            20, since), self.diag())
        self.assertIsNotNone(d.wait_line(r"gx_226_solarcharger: the GX has no solarcharger at "
                                         r"unit 226 any more \(exception 0x0A\)", 10))
        # The others stay online, the GX too.
        self.assertIsNone(cap.quiet(lambda m: m[1].endswith("/availability") and
                                    m[2] == "offline" and "solarcharger" not in m[1], 3, since))
        since = cap.mark()
        sim.command("night off")
        self.assertIsNotNone(cap.wait_topic(harness.avail_topic("gx_226_solarcharger"), "online",
                                            20, since), self.diag())

    def test_scan_cache_spares_the_next_start_its_scan(self):
        broker, cap, sim, d = self.stack()
        self.assertIsNotNone(d.wait_line(r"scan done: \d+ devices in (\d+) requests", 30))
        self.wait_state(cap, "gx_30_grid")
        path = os.path.join(self.dir, "state", "bms2mqtt-gx-gx.json")
        with open(path) as f:
            cache = json.load(f)
        self.assertEqual(cache["serial"], SERIAL)
        self.assertIn([227, "vebus"], cache["devices"])
        d.stop()
        d2 = self.start_daemon(d.proc.args[2], name="second")
        self.assertIsNotNone(d2.wait_line(r"devices of GX %s from the scan cache" % SERIAL, 20),
                             d2.stderr_text())
        since = cap.mark()
        self.wait_state(cap, "gx_30_grid", since=since)
        self.assertNotIn("scanning GX", d2.stderr_text())

    def test_units_pick_the_devices(self):
        broker, cap, sim, d = self.stack(extra="units: [100, 225]")
        self.wait_state(cap, "gx_225_battery")
        m = d.wait_line(r"scan done: (\d+) devices in (\d+) requests", 20)
        self.assertIsNotNone(m)
        self.assertLess(int(m.group(2)), 80)  # two unit ids, one probe per service
        self.assertIsNone(cap.quiet(lambda m: "gx_227_vebus" in m[1], 2))

    def test_scan_command_prints_a_config_that_loads(self):
        sim = self.start_gx()
        r = subprocess.run([harness.BMS2MQTT, "scan", "--port", "modbus-tcp://" + sim.tcp[1]],
                           capture_output=True, timeout=120)
        out = r.stdout.decode()
        self.assertEqual(r.returncode, 0, r.stderr.decode()[-2000:])
        m = re.search(r"Victron GX %s, firmware v3\.70: (\d+) devices in (\d+) requests" % SERIAL,
                      out)
        self.assertIsNotNone(m, out)
        # unit 100 first, unitid2di.csv's ids, small ids: bounded, far below hass-victron's
        # 6166 block reads.
        self.assertLess(int(m.group(2)), 2500)
        self.assertIn("units: [100, ", out)
        cfg = self.write_config(out + "mqtt:\n  host: 127.0.0.1\n", "scanned.yaml")
        r = subprocess.run([harness.BMS2MQTT, "-C", cfg, "--dry-run"], capture_output=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr.decode()[-2000:])


if __name__ == "__main__":
    unittest.main()
