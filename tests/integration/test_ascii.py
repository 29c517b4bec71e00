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
        sim = self.start_bus_sim("--protocol", "lp4ascii", "--packs", "0", "--bus", "1,2")
        port = os.path.join(self.dir, "pack1")
        packs = [("lp4a_1", 1, None), ("lp4a_2", 2, None)]
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
        c = json.loads(configs[harness.discovery_topic("sensor", "lp4a_1", "energy_charged_kwh")])
        self.assertEqual((c["device_class"], c["state_class"], c["unit_of_measurement"]),
                         ("energy", "total_increasing", "kWh"))
        # A bad CHKSUM is never published.
        sim.fault(2, "badcrc 1")
        mark = cap.mark()
        self.assertTrue(cap.wait_topic(harness.avail_topic("lp4a_2"), "offline", 15, mark))
        self.assertEqual(cap.states("lp4a_2", mark), [])
        rc, out = harness.run_ha_check(cap.lines(), self.dir)
        self.assertTrue(out.strip().splitlines()[-1].endswith(" 0 problems"), out[-3000:])

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
