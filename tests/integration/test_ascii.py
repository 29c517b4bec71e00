#!/usr/bin/env python3
"""The ASCII-frame batteries end to end: a 3-module Pylontech stack and EG4 LifePower4
packs (ASCII protocol), against bms-sim and a real mosquitto."""
import json
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_buses import BusSim, bus_config  # noqa: E402


class AsciiTest(harness.StackTest):
    def start_bus_sim(self, *args):
        s = BusSim(list(args), self.dir)
        self.addCleanup(s.stop)
        self.sim = s
        return s

    def wait_state(self, cap, pack, timeout=15, since=0):
        got = cap.wait_for(lambda m: m[1] == harness.state_topic(pack), timeout, since)
        self.assertTrue(got, "no state of %s" % pack)
        return json.loads(got[2])

    def test_pylontech_stack_of_three_modules_with_its_totals(self):
        broker = self.start_broker()
        cap = self.start_capture()
        sim = self.start_bus_sim("--protocol", "pylontech", "--baud", "115200", "--packs", "0",
                                 "--bus", "2,3,4")
        port = os.path.join(self.dir, "pack1")
        packs = [("us3000_%d" % a, a, None) for a in (2, 3, 4)]
        text = bus_config(broker.port, "pylontech", port, packs)
        cfg = self.write_config(text.replace("  baud: 9600\n", ""))  # the mode's default
        daemon = self.start_daemon(cfg)
        totals = {"current": 0.0}
        for name, _, _ in packs:
            s = self.wait_state(cap, name)
            cells = [s["cell_%02d_voltage" % i] for i in range(1, 17)]
            self.assertTrue(all(3.0 < c < 3.6 for c in cells), "%s cells %s" % (name, cells))
            self.assertAlmostEqual(s["pack_voltage"], sum(cells), delta=0.05)
            self.assertTrue(0 <= s["soc"] <= 100)
            self.assertEqual(s["full_capacity_ah"], 100.0)  # 3-byte field: packs over 65 Ah
            self.assertTrue(10 < s["temperature_01"] < 40, s["temperature_01"])
            self.assertIn(s["charge_enable"], (0, 1))
            self.assertGreater(s["charge_voltage_limit"], 50)
        configs = cap.last_configs()
        dev = json.loads(configs[harness.discovery_topic("sensor", "us3000_3", "soc")])["device"]
        self.assertEqual(dev["manufacturer"], "Pylontech")
        self.assertTrue(dev.get("serial_number"), "no serial from command 0x93")
        self.assertTrue(dev.get("sw_version"), "no firmware from command 0x96")
        self.assertIn(harness.discovery_topic("binary_sensor", "us3000_2", "alarm_cell_voltage_low"),
                      configs)
        # The stack's totals: one bank device over the three modules.
        got = cap.wait_for(lambda m: re.fullmatch(r"bms2mqtt/bank_[0-9a-f]{8}/state", m[1])
                           and json.loads(m[2])["packs_online"] == 3, 15)
        self.assertTrue(got, "no bank state with the three modules online")
        bank = json.loads(got[2])
        self.assertAlmostEqual(bank["full_capacity_ah"], 300.0)
        # A module that stops answering goes offline, the others go on.
        sim.fault(2, "silence")
        mark = cap.mark()
        self.assertTrue(cap.wait_topic(harness.avail_topic("us3000_3"), "offline", 15, mark))
        self.wait_state(cap, "us3000_2", 5, mark)
        rc, out = harness.run_ha_check(cap.lines(), self.dir)
        self.assertTrue(out.strip().splitlines()[-1].endswith(" 0 problems"), out[-3000:])
        self.assertIsNone(daemon.proc.poll())

    def test_lifepower4_ascii_packs_with_their_own_energy_counters(self):
        broker = self.start_broker()
        cap = self.start_capture()
        sim = self.start_bus_sim("--protocol", "lp4_ascii", "--packs", "0", "--bus", "1,2")
        port = os.path.join(self.dir, "pack1")
        packs = [("lp4_ascii_1", 1, None), ("lp4_ascii_2", 2, None)]
        cfg = self.write_config(bus_config(broker.port, "lp4_ascii", port, packs))
        self.start_daemon(cfg)
        for name, _, _ in packs:
            s = self.wait_state(cap, name)
            cells = [s["cell_%02d_voltage" % i] for i in range(1, 17)]
            self.assertTrue(all(3.0 < c < 3.6 for c in cells), "%s cells %s" % (name, cells))
            self.assertAlmostEqual(s["pack_voltage"], sum(cells), delta=0.05)
            self.assertTrue(0 <= s["soc"] <= 100)
            # The pack's cumulative meters, as it reports them (not integrated by us).
            self.assertIsInstance(s["energy_charged_kwh"], (int, float))
            self.assertGreater(s["energy_charged_kwh"], 0)
            self.assertGreater(s["energy_discharged_kwh"], 0)
        configs = cap.last_configs()
        c = json.loads(configs[harness.discovery_topic("sensor", "lp4_ascii_1", "energy_charged_kwh")])
        self.assertEqual((c["device_class"], c["state_class"], c["unit_of_measurement"]),
                         ("energy", "total_increasing", "kWh"))
        # A bad CHKSUM is never published.
        sim.fault(2, "badcrc 1")
        mark = cap.mark()
        self.assertTrue(cap.wait_topic(harness.avail_topic("lp4_ascii_2"), "offline", 15, mark))
        self.assertEqual(cap.states("lp4_ascii_2", mark), [])
        rc, out = harness.run_ha_check(cap.lines(), self.dir)
        self.assertTrue(out.strip().splitlines()[-1].endswith(" 0 problems"), out[-3000:])

    def command_counts(self, sim, pack):
        """{command code: requests} of simulated pack `pack` (1-based), from `stats`."""
        for line in sim.command("stats"):
            parts = line.split()
            if parts[0] == "STATS" and parts[1] == str(pack):
                cmds = dict(p.split("=", 1) for p in parts[2:])["commands"]
                return {} if cmds == "-" else {int(k, 16): int(v) for k, v in
                                               (c.split(":") for c in cmds.split(","))}
        self.fail("no STATS line for pack %d" % pack)

    def test_refused_commands_publish_unknown_never_off_or_zero(self):
        """A module that refuses 0x44 (alarms), 0x92 (limits) and 0x47 (system parameters)
        publishes its analog values, and null for everything those commands carry; the
        refused commands are then asked only now and then."""
        broker = self.start_broker()
        cap = self.start_capture()
        sim = self.start_bus_sim("--protocol", "pylontech", "--baud", "115200", "--packs", "0",
                                 "--bus", "2", "--refuse", "1:0x44", "--refuse", "1:0x92",
                                 "--refuse", "1:0x47")
        port = os.path.join(self.dir, "pack1")
        text = bus_config(broker.port, "pylontech", port, [("us3000_2", 2, None)],
                          poll_interval_s=0.2)
        daemon = self.start_daemon(self.write_config(text.replace("  baud: 9600\n", "")))
        topic = harness.state_topic("us3000_2")
        got = cap.wait_until(lambda items: [m for m in items if m[1] == topic][10:], 30)
        self.assertTrue(got, "fewer than 11 states%s" % self.diag())
        for _, _, payload in got:
            s = json.loads(payload)
            self.assertGreater(s["pack_voltage"], 40)  # analog values keep publishing
            for key in ("alarm_cell_voltage_low", "alarm_other_error", "protection_pack_ov",
                        "charge_mos", "discharge_mos", "cell_voltage_error", "alarm_status_1",
                        "charge_enable", "discharge_enable", "charge_immediately",
                        "charge_voltage_limit", "charge_current_limit",
                        "discharge_current_limit", "cell_voltage_high_limit",
                        "charge_current_max", "discharge_current_max"):
                self.assertIn(key, s)
                self.assertIsNone(s[key], "%s = %r, but the module never gave it" % (key, s[key]))
        counts = self.command_counts(sim, 1)
        self.assertGreaterEqual(counts.get(0x42, 0), 11)
        # Three refusals in a row, then one try every 50th poll (0x44 is asked for all modules
        # of the group and for the module itself: three times each).
        for cmd, most in ((0x44, 7), (0x92, 4)):
            self.assertLessEqual(counts.get(cmd, 0), most, "command 0x%02x asked %d times in %d "
                                 "polls" % (cmd, counts.get(cmd, 0), counts[0x42]))
        self.assertTrue(daemon.wait_line(r"command 0x44 \(alarms\) refused 3 times in a row", 5))
        rc, out = harness.run_ha_check(cap.lines(), self.dir)
        self.assertTrue(out.strip().splitlines()[-1].endswith(" 0 problems"), out[-3000:])
        # The module starts answering: its alarms come back within one retry period.
        sim.command("refuse 1 none")
        mark = cap.mark()
        got = cap.wait_for(lambda m: m[1] == topic and
                           json.loads(m[2])["alarm_cell_voltage_low"] is not None, 30, mark)
        self.assertTrue(got, "alarms still unknown after the module answers 0x44%s" % self.diag())
        self.assertIn(json.loads(got[2])["alarm_cell_voltage_low"], (0, 1))

    def stack_of_three(self, *sim_args):
        broker = self.start_broker()
        cap = self.start_capture()
        sim = self.start_bus_sim("--protocol", "pylontech", "--baud", "115200", "--packs", "0",
                                 "--bus", "2,3,4", *sim_args)
        port = os.path.join(self.dir, "pack1")
        packs = [("us3000_%d" % a, a, None) for a in (2, 3, 4)]
        text = bus_config(broker.port, "pylontech", port, packs, poll_interval_s=0.3)
        daemon = self.start_daemon(self.write_config(text.replace("  baud: 9600\n", "")))
        topics = [harness.state_topic(name) for name, _, _ in packs]
        got = cap.wait_until(lambda items: all(len([m for m in items if m[1] == t]) >= 6
                                               for t in topics), 30)
        self.assertTrue(got, "fewer than 6 states of each module%s" % self.diag())
        for t in topics:
            s = json.loads(cap.of_topic(t)[-1][2])
            self.assertGreater(s["pack_voltage"], 40)
            self.assertIn(s["alarm_cell_voltage_low"], (0, 1))
            self.assertIn(s["charge_enable"], (0, 1))
        return sim, daemon, [self.command_counts(sim, k) for k in (1, 2, 3)]

    def test_pylontech_master_answers_for_all_modules(self):
        """Analog values and alarms of the whole stack in two requests to the master (INFO
        0xFF) per cycle; only 0x92 goes to each module."""
        _, _, (master, second, third) = self.stack_of_three()
        self.assertGreaterEqual(master.get(0x42, 0), 6)
        self.assertGreaterEqual(master.get(0x44, 0), 6)
        for counts in (second, third):
            self.assertEqual(counts.get(0x42, 0), 0, "a module asked on its own: %s" % counts)
            self.assertEqual(counts.get(0x44, 0), 0, "a module asked on its own: %s" % counts)
            self.assertGreaterEqual(counts.get(0x92, 0), 6)

    def test_pylontech_without_all_modules_asks_each_module(self):
        _, daemon, counts = self.stack_of_three("--no-all-modules")
        for c in counts:
            self.assertGreaterEqual(c.get(0x42, 0), 6)
        # Three refused requests for all modules, then one every 50th cycle only.
        self.assertLessEqual(counts[0].get(0x42, 0), counts[1].get(0x42, 0) + 4)
        self.assertTrue(daemon.wait_line(r"group master 0x02 does not answer requests for all "
                                         r"modules", 5))

    def test_lifepower4_ascii_refusing_alarms_has_no_status_standby(self):
        broker = self.start_broker()
        cap = self.start_capture()
        self.start_bus_sim("--protocol", "lp4_ascii", "--packs", "0", "--bus", "1",
                           "--refuse", "1:0x44")
        port = os.path.join(self.dir, "pack1")
        cfg = self.write_config(bus_config(broker.port, "lp4_ascii", port, [("lp4_ascii_1", 1, None)]))
        self.start_daemon(cfg)
        s = self.wait_state(cap, "lp4_ascii_1")
        self.assertGreater(s["pack_voltage"], 40)
        for key in ("status", "alarm_cell_voltage_low", "warning_cell_ov", "protection_cell_ov",
                    "charge_mos", "heater", "balancing", "cell_01_balancing"):
            self.assertIsNone(s[key], "%s = %r, but the pack refused 0x44" % (key, s[key]))

    def test_scan_finds_pylontech_modules_from_address_2(self):
        self.start_bus_sim("--protocol", "pylontech", "--baud", "115200", "--packs", "0",
                           "--bus", "2,3")
        port = os.path.join(self.dir, "pack1")
        r = subprocess.run([harness.BMS2MQTT, "scan", "--port", port, "--baud", "9600"],
                           capture_output=True, text=True, timeout=90)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("scan: pylontech  baud 115200 address   2 (0x02): answers", r.stderr)
        self.assertIn("scan: pylontech  baud 115200 address   3 (0x03): answers", r.stderr)
        self.assertIn("scan: pylontech  baud 115200 address   4 (0x04): no answer", r.stderr)
        self.assertNotIn("(0x04)", r.stdout)
        self.assertIn("  mode: pylontech\n  port: %s\n  baud: 115200" % port, r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
