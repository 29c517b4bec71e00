#!/usr/bin/env python3
"""Several packs on one RS-485 bus, a port unplugged and plugged back, the legacy EG4
protocol (bus.mode active) and the listen-only sniffer (bus.mode passive), each against
bms-sim on pseudo-terminals and a real mosquitto broker."""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


class BusSim(harness.Sim):
    """bms-sim with any arguments; records its PTY and SLAVES lines."""

    def __init__(self, args, link_dir):
        self.link_dir = link_dir
        self.log_path = os.path.join(link_dir, "sim.log")
        self.log = open(self.log_path, "wb")
        link = [] if "--tcp" in args else ["--link", link_dir]  # TCP buses have no path
        self.proc = subprocess.Popen([harness.BMS_SIM, *link, *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log)
        self.buf = b""
        self.ptys, self.slaves, self.tcp = {}, {}, {}
        while True:
            line = self.line(harness.START_TIMEOUT)
            if line == "READY":
                break
            kind, i, rest = line.split(" ", 2)
            if kind == "PTY":
                self.ptys[int(i)] = rest
            elif kind == "SLAVES":
                self.slaves[int(i)] = rest
            elif kind == "TCP":
                self.tcp[int(i)] = rest

    def pty_stats(self):
        """{pty: {key: value}} from the PTYSTATS lines of `stats`."""
        out = {}
        for line in self.command("stats"):
            if line.startswith("PTYSTATS"):
                parts = line.split()
                out[int(parts[1])] = dict(p.split("=", 1) for p in parts[2:])
        return out


def bus_config(mqtt_port, mode, port, packs, baud=9600, timeout_s=0.5, poll_interval_s=1.0):
    """Original-format config of one shared bus: packs [(name, address, port or None)]."""
    lines = ["bus:", "  mode: %s" % mode, "  transport: serial"]
    if port:
        lines.append("  port: %s" % port)
    lines += ["  baud: %d" % baud, "  timeout_s: %s" % timeout_s,
              "  poll_interval_s: %s" % poll_interval_s,
              "mqtt:", "  host: 127.0.0.1", "  port: %d" % mqtt_port,
              '  username: ""', '  password: ""', "  discovery_prefix: homeassistant",
              "packs:"]
    for name, address, pack_port in packs:
        lines += ["  - name: %s" % name, "    address: %s" % address]
        if pack_port:
            lines += ["    port: %s" % pack_port, "    baud: %d" % baud]
    lines.append("cell_count: 16")
    return "\n".join(lines) + "\n"


class BusTest(harness.StackTest):
    def start_bus_sim(self, *args):
        s = BusSim(list(args), self.dir)
        self.addCleanup(s.stop)
        self.sim = s
        return s

    def wait_states(self, cap, pack, n, timeout, since=0):
        topic = harness.state_topic(pack)
        ok = cap.wait_until(lambda items: sum(1 for m in items[since:] if m[1] == topic) >= n,
                            timeout)
        self.assertTrue(ok, "%s published %d states, want %d within %.0f s"
                        % (pack, len(cap.states(pack, since)), n, timeout))

    def wait_avail(self, cap, pack, value, timeout, since=0):
        got = cap.wait_topic(harness.avail_topic(pack), value, timeout, since)
        self.assertTrue(got, "%s did not become %s within %.0f s" % (pack, value, timeout))

    def last_state(self, cap, pack):
        return json.loads(cap.states(pack)[-1][2])

    def test_four_packs_on_one_bus_one_silent_others_keep_their_cycle(self):
        broker = self.start_broker()
        cap = self.start_capture()
        sim = self.start_bus_sim("--packs", "0", "--bus", "1,2,3,4")
        port = os.path.join(self.dir, "pack1")
        packs = [("bank_pack_%d" % i, i, port) for i in range(1, 5)]
        cfg = self.write_config(bus_config(broker.port, "modbus_per_pack", None, packs))
        self.start_daemon(cfg)
        for name, _, _ in packs:
            self.wait_states(cap, name, 2, 15)
        sim.fault(3, "silence")
        mark = cap.mark()
        self.wait_avail(cap, "bank_pack_3", "offline", 10, mark)
        # While pack 3 times out every cycle, the others are still read every second.
        mark = cap.mark()
        for name in ("bank_pack_1", "bank_pack_2", "bank_pack_4"):
            self.wait_states(cap, name, 4, 8, mark)
            times = [t for t, _, _ in cap.states(name, mark)]
            gaps = [b - a for a, b in zip(times, times[1:])]
            self.assertLess(max(gaps), 1.6, "%s: gaps %s with a silent pack on the bus"
                            % (name, ["%.2f" % g for g in gaps]))
        self.assertEqual(cap.states("bank_pack_3", mark), [], "a silent pack published a state")
        sim.clear(3)
        self.wait_avail(cap, "bank_pack_3", "online", 10, mark)

    def test_back_to_back_polls_cycle_in_about_n_wire_times(self):
        broker = self.start_broker()
        cap = self.start_capture()
        self.start_bus_sim("--packs", "0", "--bus", "1,2,3")
        port = os.path.join(self.dir, "pack1")
        packs = [("bb_%d" % i, i, port) for i in range(1, 4)]
        cfg = self.write_config(bus_config(broker.port, "modbus_per_pack", None, packs,
                                           poll_interval_s=0))
        self.start_daemon(cfg)
        self.wait_states(cap, "bb_1", 3, 15)
        mark = cap.mark()
        self.wait_states(cap, "bb_1", 10, 15, mark)
        times = [t for t, _, _ in cap.states("bb_1", mark)]
        period = (times[-1] - times[0]) / (len(times) - 1)
        wire = 107 * 10 / 9600  # request + reply of one pack at 9600 baud
        self.assertLess(period, 3 * wire * 1.2,
                        "3 packs on one bus cycled in %.0f ms, %.2f wire times"
                        % (period * 1000, period / wire))

    def test_unplugged_port_is_reopened_when_it_comes_back(self):
        broker = self.start_broker()
        cap = self.start_capture()
        sim = self.start_bus_sim("--packs", "1")
        port = os.path.join(self.dir, "pack1")
        cfg = self.write_config(bus_config(broker.port, "modbus_per_pack", None,
                                           [("plug_1", "0x40", port)]))
        daemon = self.start_daemon(cfg)
        self.wait_states(cap, "plug_1", 2, 15)
        mark = cap.mark()
        sim.command("unplug 1")
        self.wait_avail(cap, "plug_1", "offline", 10, mark)
        mark = cap.mark()
        sim.command("replug 1")
        self.wait_avail(cap, "plug_1", "online", 10, mark)
        self.wait_states(cap, "plug_1", 2, 10, mark)
        self.assertIsNone(daemon.proc.poll(), "the daemon exited")

    def test_active_mode_reads_legacy_packs_with_the_real_checksum(self):
        broker = self.start_broker()
        cap = self.start_capture()
        sim = self.start_bus_sim("--protocol", "eg4_legacy", "--packs", "0", "--bus", "1,2")
        port = os.path.join(self.dir, "pack1")
        packs = [("legacy_1", 1, None), ("legacy_2", 2, None)]
        cfg = self.write_config(bus_config(broker.port, "active", port, packs))
        self.start_daemon(cfg)
        for name, _, _ in packs:
            self.wait_states(cap, name, 2, 15)
            s = self.last_state(cap, name)
            cells = [s["cell_%02d_voltage" % i] for i in range(1, 17)]
            self.assertTrue(all(3.0 < c < 3.6 for c in cells), "%s cells %s" % (name, cells))
            self.assertAlmostEqual(s["pack_voltage"], sum(cells), delta=0.05)
            self.assertTrue(-100 < s["current"] < 100, "%s current %r" % (name, s["current"]))
            self.assertTrue(0 <= s["soc"] <= 100)
            self.assertTrue(10 <= s["temperature_1"] <= 40, "%s temperature_1 %r"
                            % (name, s["temperature_1"]))
            self.assertIn(s["alarm_voltage_high"], (0, 1))
        configs = cap.last_configs()
        self.assertIn(harness.discovery_topic("binary_sensor", "legacy_1", "alarm_voltage_low"),
                      configs)
        # Command 0x33, read once, names the firmware in the HA device.
        dev = json.loads(configs[harness.discovery_topic("sensor", "legacy_1", "soc")])["device"]
        self.assertEqual(dev.get("sw_version"), "LP4-V1.2")
        # The script's text sensor of that alarm is removed.
        self.assertEqual(configs.get(harness.discovery_topic("sensor", "legacy_1",
                                                             "alarm_voltage_low")), "")
        # A reply with a bad checksum is never published.
        sim.fault(2, "badcrc 1")
        mark = cap.mark()
        self.wait_avail(cap, "legacy_2", "offline", 10, mark)
        self.assertEqual(cap.states("legacy_2", mark), [])
        rc, out = harness.run_ha_check(cap.lines(), self.dir)
        self.assertTrue(out.strip().splitlines()[-1].endswith(" 0 problems"), out[-2000:])

    def test_passive_mode_publishes_what_the_master_reads_and_never_transmits(self):
        broker = self.start_broker()
        cap = self.start_capture()
        sim = self.start_bus_sim("--master", "300", "--noise", "--packs", "0", "--bus", "1,2")
        port = os.path.join(self.dir, "pack1")
        packs = [("heard_1", 1, None), ("heard_2", 2, None)]
        cfg = self.write_config(bus_config(broker.port, "passive", port, packs))
        daemon = self.start_daemon(cfg)
        for name, _, _ in packs:
            self.wait_states(cap, name, 3, 15)
            s = self.last_state(cap, name)
            cells = [s["cell_%02d_voltage" % i] for i in range(1, 17)]
            self.assertAlmostEqual(s["pack_voltage"], sum(cells), delta=0.05)
            self.assertEqual(s["full_capacity_ah"], 100.0)
        self.assertEqual(sim.pty_stats()[1].get("rx"), "0",
                         "the listener wrote to the bus it only listens to")
        daemon.stop()
        self.assertEqual(sim.pty_stats()[1].get("rx"), "0",
                         "the listener wrote to the bus when it stopped")

    def test_passive_mode_names_a_slave_nobody_configured(self):
        broker = self.start_broker()
        cap = self.start_capture()
        self.start_bus_sim("--master", "300", "--packs", "0", "--bus", "1,7")
        port = os.path.join(self.dir, "pack1")
        cfg = self.write_config(bus_config(broker.port, "passive", port, [("heard_1", 1, None)]))
        daemon = self.start_daemon(cfg)
        self.wait_states(cap, "heard_1", 2, 15)
        # The script's automatic name for slave 7.
        self.wait_states(cap, "lifepower4_addr_07", 2, 15)
        self.assertTrue(daemon.wait_line(r"slave 0x07 answers LP4V2 reads; publishing it as "
                                         r"lifepower4_addr_07", 5))
        configs = cap.last_configs()
        self.assertIn(harness.discovery_topic("sensor", "lifepower4_addr_07", "soc"), configs)
        rc, out = harness.run_ha_check(cap.lines(), self.dir)
        self.assertTrue(out.strip().splitlines()[-1].endswith(" 0 problems"), out[-2000:])

    def test_passive_mode_publishes_other_reads_raw_by_address(self):
        broker = self.start_broker()
        cap = self.start_capture()
        self.start_bus_sim("--master", "200", "--master-identity", "--packs", "0", "--bus", "1")
        port = os.path.join(self.dir, "pack1")
        cfg = self.write_config(bus_config(broker.port, "passive", port, [("heard_1", 1, None)]))
        self.start_daemon(cfg)
        got = cap.wait_topic("bms2mqtt/heard_1/raw", timeout=15)
        self.assertTrue(got, "no raw message for the identity read")
        raw = json.loads(got[2])
        self.assertEqual((raw["slave"], raw["function"]), (1, 3))
        regs = raw["registers"]
        self.assertEqual(sorted(int(a) for a in regs), list(range(105, 128)))
        fw = b"".join(regs[str(a)].to_bytes(2, "big") for a in (117, 118, 119)).decode()
        self.assertEqual(fw, "V03R04")
        # The block reads still make states.
        self.wait_states(cap, "heard_1", 2, 10)

    def test_scan_finds_legacy_packs_and_prints_an_active_config(self):
        self.start_bus_sim("--protocol", "eg4_legacy", "--packs", "0", "--bus", "3")
        port = os.path.join(self.dir, "pack1")
        r = subprocess.run([harness.BMS2MQTT, "scan", "--port", port, "--baud", "9600"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("scan: eg4_legacy baud   9600 address   3 (0x03): answers", r.stderr)
        self.assertNotRegex(r.stderr, r"scan: lp4v2 .*: answers")
        self.assertIn("  mode: active\n  port: %s" % port, r.stdout)
        self.assertIn("    address: 0x03", r.stdout)

    def test_sniff_prints_every_frame_decoded_and_never_transmits(self):
        sim = self.start_bus_sim("--master", "200", "--noise", "--packs", "0", "--bus", "1,2")
        port = os.path.join(self.dir, "pack1")
        r = subprocess.run([harness.BMS2MQTT, "sniff", "--port", port, "--seconds", "2"],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("slave 0x01 fn 0x03 read 47 registers from 0", r.stdout)
        self.assertIn("slave 0x02 fn 0x03 -> 47 registers from 0", r.stdout)
        self.assertRegex(r.stdout, r"LP4V2 slave 0x01: \d+\.\d\d V")
        self.assertEqual(sim.pty_stats()[1].get("rx"), "0", "sniff wrote to the bus")

    def test_scan_finds_the_slaves_and_prints_a_config(self):
        self.start_bus_sim("--packs", "0", "--bus", "2,5")
        port = os.path.join(self.dir, "pack1")
        r = subprocess.run([harness.BMS2MQTT, "scan", "--port", port, "--baud", "9600"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("scan: lp4v2      baud   9600 address   2 (0x02): answers", r.stderr)
        self.assertIn("scan: lp4v2      baud   9600 address   5 (0x05): answers", r.stderr)
        self.assertIn("scan: lp4v2      baud   9600 address   3 (0x03): no answer", r.stderr)
        self.assertNotIn("(0x03)", r.stdout)
        self.assertIn("    address: 0x05\n    port: %s\n    baud: 9600" % port, r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
