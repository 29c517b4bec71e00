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


class GxStack(harness.StackTest):
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


class VictronGxTest(GxStack):
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


WRITE = ("write:\n  ac_current_max_a: 39\n  dc_current_max_a: 100\n  dc_voltage_profile: 16s\n"
         "  ac_voltage: 230\n")
SETPOINT = "bms2mqtt/gx_100_settings/cgwacs_ac_power_set_point/set"
SETPOINT32 = "bms2mqtt/gx_100_hub4/overrides_setpoint/set"


class VictronGxWriteTest(GxStack):
    def writes(self, sim):
        return [line for line in sim.command("writes") if line.startswith("WRITE")]

    def ready_for_commands(self, cap, d):
        """The controls are announced and the daemon subscribed (its session is up)."""
        self.assertIsNotNone(cap.wait_topic("homeassistant/number/%s/config" % uid(100, 2700),
                                            timeout=20), self.diag())
        # The sensor it was: removed (an empty retained config), after the device's configs.
        self.assertIsNotNone(cap.wait_topic("homeassistant/sensor/%s/config" % uid(100, 2700),
                                            "", timeout=20), self.diag())
        self.wait_state(cap, "gx_100_hub4")

    def test_writes_within_their_rails_land_and_are_read_back(self):
        broker, cap, sim, d = self.stack(extra=WRITE)
        self.ready_for_commands(cap, d)
        for topic in ("homeassistant/select/%s/config" % uid(227, 33),
                      "homeassistant/switch/%s/config" % uid(100, 806)):
            self.assertIsNotNone(cap.wait_topic(topic, timeout=20), topic)
        configs = cap.last_configs()
        number = json.loads(configs["homeassistant/number/%s/config" % uid(100, 2700)])
        self.assertEqual(number["command_topic"], SETPOINT)
        self.assertEqual((number["min"], number["max"]), (-8970, 8970))  # 230 V x 39 A x 1
        self.assertEqual(configs["homeassistant/sensor/%s/config" % uid(100, 2700)], "")
        select = json.loads(configs["homeassistant/select/%s/config" % uid(227, 33)])
        self.assertIn("Inverter Only", select["options"])
        switch = json.loads(configs["homeassistant/switch/%s/config" % uid(100, 806)])
        self.assertEqual((switch["state_on"], switch["state_off"]), ("Closed", "Open"))
        # A negative int16 setpoint: function 6, two's complement; read back, republished.
        since = cap.mark()
        harness.publish(broker.port, SETPOINT, "-200")
        self.wait_state(cap, "gx_100_settings",
                        lambda st: st["cgwacs_ac_power_set_point"] == -200, since=since)
        self.assertIsNotNone(d.wait_line(r"gx_100_settings: .* \(register 2700\) 50 W -> -200 W",
                                         10), d.stderr_text()[-3000:])
        # The 32-bit twin: one function-16 write of both words, high word first.
        since = cap.mark()
        harness.publish(broker.port, SETPOINT32, "-6000")
        self.wait_state(cap, "gx_100_hub4", lambda st: st["overrides_setpoint"] == -6000,
                        since=since)
        got = self.writes(sim)
        self.assertEqual(len(got), 2, got)
        self.assertRegex(got[0], r"unit=100 fn=6 reg=2700 words=FF38 ok")
        self.assertRegex(got[1], r"unit=100 fn=16 reg=2716 words=FFFF,E890 ok")
        # A select: the option's code.
        harness.publish(broker.port, "bms2mqtt/gx_227_vebus/mode/set", "Charger Only")
        self.wait_state(cap, "gx_227_vebus", lambda st: st["mode"] == "Charger Only", since=since)
        self.assertRegex(self.writes(sim)[-1], r"unit=227 fn=6 reg=33 words=0001 ok")
        rc, out = harness.run_ha_check(cap.lines(), self.dir)
        self.assertEqual(rc, 0, out[-3000:])

    def test_refused_commands_never_reach_the_gx(self):
        broker, cap, sim, d = self.stack(extra=WRITE)
        self.ready_for_commands(cap, d)
        mark = d.mark()
        harness.publish(broker.port, SETPOINT, "-20000")  # beyond 230 V x 39 A
        harness.publish(broker.port, "bms2mqtt/gx_227_vebus/ac_active_in_current_limit/set", "45")
        harness.publish(broker.port, "bms2mqtt/gx_225_battery/soc/set", "50")  # not a control
        self.assertIsNotNone(d.wait_line(r"cgwacs_ac_power_set_point .* = '-20000' refused: "
                                         r"-20000 W is outside -8970 \.\. 8970 W", 10, mark))
        self.assertIsNotNone(d.wait_line(r"ac_active_in_current_limit .* = '45' refused: 45 A is "
                                         r"outside 0 \.\. 39 A", 10, mark))
        self.assertIsNotNone(d.wait_line(r"gx_225_battery: command soc = '50' refused: not on "
                                         r"the write allow-list", 10, mark))
        self.assertEqual(self.writes(sim), [])

    def test_one_write_per_register_per_second(self):
        broker, cap, sim, d = self.stack(extra=WRITE)
        self.ready_for_commands(cap, d)
        mark = d.mark()
        for v in ("-100", "-110", "-120", "-130"):
            harness.publish(broker.port, SETPOINT, v)
        m = d.wait_line(r"\(register 2700\) .* -> -130 W", 15, mark)
        self.assertIsNotNone(m, d.stderr_text()[-3000:])
        done = [line for line in d.lines(mark) if "(register 2700)" in line and "->" in line]
        stamps = [float(line.split()[1].split(":")[2]) + 60 * int(line.split()[1].split(":")[1])
                  for line in done]
        for a, b in zip(stamps, stamps[1:]):
            self.assertGreaterEqual(b - a, 0.9, done)  # at most one a second (clock rounding)
        self.assertLessEqual(len(self.writes(sim)), 3)  # newer values replace waiting ones

    def test_read_only_gx_explains_exception_02(self):
        broker, cap, sim, d = self.stack("--read-only", extra=WRITE)
        self.ready_for_commands(cap, d)
        harness.publish(broker.port, SETPOINT, "-200")
        self.assertIsNotNone(d.wait_line(r"refused with exception 0x02: the GX's Modbus server "
                                         r"is read-only .*, or this register is not writable", 10),
                             d.stderr_text()[-3000:])

    def test_without_write_nothing_is_written(self):
        broker, cap, sim, d = self.stack()
        self.wait_state(cap, "gx_100_settings")
        harness.publish(broker.port, SETPOINT, "-200")
        harness.publish(broker.port, SETPOINT32, "-200")
        since = cap.mark()
        self.wait_state(cap, "gx", since=since)  # a poll after the commands
        self.wait_state(cap, "gx", since=cap.mark())
        self.assertEqual(self.writes(sim), [])
        self.assertFalse([t for t in cap.last_configs() if t.startswith(
            ("homeassistant/number/", "homeassistant/select/", "homeassistant/switch/")) and
            cap.last_configs()[t]])


if __name__ == "__main__":
    unittest.main()
