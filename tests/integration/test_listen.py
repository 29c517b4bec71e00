#!/usr/bin/env python3
"""The bus tools tell the whole truth: `sniff` and passive mode know every protocol of the
daemon (Modbus RTU, EG4 legacy 7E..0D, Pylontech and LifePower4 ASCII), report what they
cannot frame, and `scan` shows each attempt, the identity of each pack and a configuration
that the daemon loads as it is. Against bms-sim (with its bus master) and a real mosquitto."""
import json
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_buses import BusSim, bus_config  # noqa: E402


def run(*args, timeout=60):
    return subprocess.run([harness.BMS2MQTT, *args], capture_output=True, text=True,
                          timeout=timeout)


class ListenTest(harness.StackTest):
    def start_bus_sim(self, *args):
        s = BusSim(list(args), self.dir)
        self.addCleanup(s.stop)
        self.sim = s
        return s

    def port(self):
        return os.path.join(self.dir, "pack1")

    def wait_state(self, cap, pack, timeout=15, since=0):
        got = cap.wait_for(lambda m: m[1] == harness.state_topic(pack), timeout, since)
        self.assertTrue(got, "no state of %s" % pack)
        return json.loads(got[2])

    def assert_cells(self, s, name):
        cells = [s["cell_%02d_voltage" % i] for i in range(1, 17)]
        self.assertTrue(all(3.0 < c < 3.6 for c in cells), "%s cells %s" % (name, cells))
        self.assertAlmostEqual(s["pack_voltage"], sum(cells), delta=0.05)

    def assert_ha_clean(self, cap):
        rc, out = harness.run_ha_check(cap.lines(), self.dir)
        self.assertTrue(out.strip().splitlines()[-1].endswith(" 0 problems"), out[-3000:])

    # ---- sniff ---------------------------------------------------------------------------

    def test_sniff_decodes_pylontech_group_polls_and_identity_reads(self):
        sim = self.start_bus_sim("--protocol", "pylontech", "--master", "200", "--master-group",
                                 "--master-identity", "--noise", "--packs", "0",
                                 "--bus", "2,3,4")
        r = run("sniff", "--port", self.port(), "--seconds", "2.5", timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout
        self.assertIn("adr 0x02 cid1 0x46 cmd 0x42 analog values, all modules 0xff", out)
        self.assertIn("adr 0x02 cid1 0x46 -> 0x42 analog values: normal", out)
        # The all-modules reply: one decoded line per module of the group.
        for adr in (2, 3, 4):
            self.assertRegex(out, r"Pylontech adr 0x%02x: \d+\.\d\d V [+-]\d+\.\d\d A SoC \d+ %%"
                             % adr)
        self.assertRegex(out, r"Pylontech adr 0x02: serial LP4V2SIM\d{8}")
        self.assertIn("pylontech:", r.stderr)  # the summary names the protocol it heard
        self.assertEqual(sim.pty_stats()[1].get("rx"), "0", "sniff wrote to the bus")

    def test_sniff_decodes_lifepower4_ascii_polls(self):
        self.start_bus_sim("--protocol", "lp4_ascii", "--master", "200", "--packs", "0",
                           "--bus", "1,2")
        r = run("sniff", "--port", self.port(), "--protocol", "lp4_ascii", "--seconds", "2",
                timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("adr 0x01 cid1 0x4a cmd 0x42 analog values", r.stdout)
        self.assertIn("adr 0x02 cid1 0x4a -> 0x42 analog values: normal, 101 bytes", r.stdout)
        self.assertRegex(r.stdout, r"LP4 ASCII adr 0x02: \d+\.\d\d V [+-]\d+\.\d\d A SoC \d+ %")

    def test_sniff_decodes_legacy_polls(self):
        self.start_bus_sim("--protocol", "eg4_legacy", "--master", "200", "--noise", "--packs", "0",
                           "--bus", "1,2")
        r = run("sniff", "--port", self.port(), "--seconds", "2", timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("addr 1 cmd 0x01 status request", r.stdout)
        self.assertIn("addr 2 -> 0x01 status: 88 data bytes", r.stdout)
        self.assertRegex(r.stdout, r"EG4 legacy addr 0x02: \d+\.\d\d V [+-]\d+\.\d\d A SoC \d+ %")

    def test_sniff_says_what_the_bytes_it_cannot_frame_look_like(self):
        self.start_bus_sim("--protocol", "lp4_ascii", "--master", "200", "--packs", "0",
                           "--bus", "1")
        # ASCII frames heard as Modbus RTU: nothing frames, and the hint says what it is.
        r = run("sniff", "--port", self.port(), "--protocol", "lp4v2", "--seconds", "1.5",
                timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("LP4V2", r.stdout)
        self.assertRegex(r.stderr, r"(\d+) of \1 bytes heard fit no frame")
        self.assertIn("printable ASCII with '~'/CR", r.stderr)
        # The other ASCII protocol's frames: good frames, but not this protocol's.
        r = run("sniff", "--port", self.port(), "--protocol", "pylontech", "--baud", "9600",
                "--seconds", "1.5", timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stderr, r"\d+ good frames of another protocol with the same framing")

    def record(self, seconds):
        """The raw bytes of the simulated bus for `seconds`, read from its pty (a recording
        such as `cat /dev/ttyUSB0 > bus.bin` makes), in the test's directory."""
        import select
        import termios
        import time
        import tty
        fd = os.open(self.port(), os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            tty.setraw(fd, termios.TCSANOW)
            data = b""
            end = time.monotonic() + seconds
            while (left := end - time.monotonic()) > 0:
                r, _, _ = select.select([fd], [], [], left)
                if r:
                    data += os.read(fd, 4096)
        finally:
            os.close(fd)
        path = os.path.join(self.dir, "bus.bin")
        with open(path, "wb") as f:
            f.write(data)
        return path, data

    def test_sniff_file_decodes_a_recording_by_checksums_alone(self):
        """No times in a file: the Modbus frames (with noise between them) are still found,
        paired and decoded; the frames are numbered."""
        self.start_bus_sim("--master", "100", "--master-identity", "--noise", "--packs", "0",
                           "--bus", "1,2")
        path, data = self.record(2.5)
        self.assertGreater(len(data), 500, "the simulated master did not poll")
        r = run("sniff", "--file", path, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"(?m)^\s+1 LP4V2 ")
        for slave in (1, 2):
            self.assertRegex(r.stdout, r"LP4V2 slave 0x%02x: \d+\.\d\d V [+-]\d+\.\d\d A SoC "
                             r"\d+ %%" % slave)
        self.assertRegex(r.stderr, r"read %d bytes of .* in [\d.]+ s \([\d.]+ MB/s\)" % len(data))
        # The same recording cut into any pieces frames the same: a file of it twice holds
        # twice the frames.
        with open(path, "ab") as f:
            f.write(data)
        r2 = run("sniff", "--file", path, "--protocol", "lp4v2", timeout=30)
        frames = lambda out: len(re.findall(r"(?m)^\s+\d+ LP4V2 ", out))  # noqa: E731
        self.assertEqual(frames(r2.stdout), 2 * frames(r.stdout))
        self.assertEqual(run("sniff", "--file", path, "--port", self.port()).returncode, 2)
        self.assertEqual(run("sniff", "--file", os.path.join(self.dir, "none")).returncode, 1)

    # ---- passive mode --------------------------------------------------------------------

    def test_passive_pylontech_publishes_every_module_of_group_polls(self):
        broker = self.start_broker()
        cap = self.start_capture()
        sim = self.start_bus_sim("--protocol", "pylontech", "--master", "300", "--master-group",
                                 "--master-identity", "--noise", "--packs", "0",
                                 "--bus", "2,3,4")
        packs = [("us2000_2", 2, None), ("us2000_3", 3, None)]  # module 4 is not configured
        text = bus_config(broker.port, "passive", self.port(), packs)
        text = text.replace("  baud: 9600\n", "  protocol: pylontech\n")  # 115200 by default
        daemon = self.start_daemon(self.write_config(text))
        for name in ("us2000_2", "us2000_3", "pylontech_addr_04"):
            s = self.wait_state(cap, name)
            self.assert_cells(s, name)
            self.assertEqual(s["full_capacity_ah"], 100.0)
            self.assertTrue(0 <= s["soc"] <= 100)
            # Only analog values were polled: the alarms and limits are unknown, not 0.
            self.assertIsNone(s["charge_voltage_limit"])
        self.assertTrue(daemon.wait_line(r"adr 0x04 answers Pylontech reads; publishing it as "
                                         r"pylontech_addr_04", 5))
        # Module 2's serial, from the master's 0x93 reads, is in its HA device.
        ok = cap.wait_for(lambda m: m[1] == harness.discovery_topic("sensor", "us2000_2", "soc")
                          and json.loads(m[2])["device"].get("serial_number"), 15)
        self.assertTrue(ok, "no serial number from the 0x93 replies heard")
        dev = json.loads(ok[2])["device"]
        self.assertRegex(dev["serial_number"], r"^LP4V2SIM\d{8}$")
        self.assertEqual(dev["manufacturer"], "Pylontech")
        # The broker holds QoS 1 configs for a subscriber that has 20 unacknowledged ones,
        # while it sends QoS 0 states at once: the config may come after the state.
        found = harness.discovery_topic("sensor", "pylontech_addr_04", "soc")
        self.assertTrue(cap.wait_topic(found, timeout=10), "no discovery config %s" % found)
        self.assert_ha_clean(cap)
        self.assertEqual(sim.pty_stats()[1].get("rx"), "0", "the listener wrote to the bus")

    def test_passive_legacy_and_lifepower4_ascii_buses(self):
        broker = self.start_broker()
        cap = self.start_capture()
        legacy = BusSim(["--protocol", "eg4_legacy", "--master", "300", "--packs", "0",
                         "--bus", "1,2"], os.path.join(self.dir))
        self.addCleanup(legacy.stop)
        text = bus_config(broker.port, "passive", self.port(), [("old_1", 1, None)])
        text = text.replace("  transport: serial\n", "  transport: serial\n  protocol: eg4_legacy\n")
        self.start_daemon(self.write_config(text, "legacy.yaml"))
        for name in ("old_1", "eg4_legacy_addr_02"):
            self.assert_cells(self.wait_state(cap, name), name)
        lp4 = os.path.join(self.dir, "lp4")
        os.mkdir(lp4)
        sim = BusSim(["--protocol", "lp4_ascii", "--master", "300", "--packs", "0",
                      "--bus", "3"], lp4)
        self.addCleanup(sim.stop)
        text = bus_config(broker.port, "passive", os.path.join(lp4, "pack1"), [("lp4_3", 3, None)])
        text = text.replace("  transport: serial\n", "  transport: serial\n  protocol: lp4_ascii\n")
        self.start_daemon(self.write_config(text, "lp4.yaml"))
        s = self.wait_state(cap, "lp4_3")
        self.assert_cells(s, "lp4_3")
        self.assertGreater(s["energy_charged_kwh"], 0)  # the pack's own counters
        self.assert_ha_clean(cap)

    # ---- scan ----------------------------------------------------------------------------

    def scan_to_file(self, *args, timeout=90):
        r = run("scan", "--port", self.port(), *args, timeout=timeout)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        path = self.write_config(r.stdout, "scanned.yaml")
        return r, path

    def test_scan_modbus_progress_identity_and_a_config_the_daemon_runs(self):
        self.start_bus_sim("--packs", "0", "--bus", "2,5")
        r, path = self.scan_to_file("--protocol", "lp4v2", "--baud", "9600")
        self.assertIn("scan: lp4v2      baud   9600 address   1 (0x01): no answer", r.stderr)
        self.assertIn("scan: lp4v2      baud   9600 address   2 (0x02): answers", r.stderr)
        self.assertIn("scan: lp4v2      baud   9600 address  64 (0x40): no answer", r.stderr)
        self.assertRegex(r.stdout, r"#   EG4 LifePower4 v2 \(Modbus RTU\), address 5 \(0x05\) at "
                         r"9600 baud, model 'LP4V2-48V-100AH', firmware 'V03R04', serial "
                         r"'LP4V2SIM\d{8}'")
        # Every line of stdout is YAML: comments or the config.
        self.assertIn("    address: 0x05\n    port: %s\n    baud: 9600" % self.port(), r.stdout)
        d = run("--dry-run", "-C", path, timeout=10)
        self.assertEqual(d.returncode, 0, d.stderr)
        self.assertIn("bms2mqtt/lifepower4_2/state", d.stdout)
        self.assertIn("bms2mqtt/lifepower4_5/state", d.stdout)

    def test_scan_pylontech_identity_and_a_config_that_polls_the_stack(self):
        broker = self.start_broker()
        cap = self.start_capture()
        self.start_bus_sim("--protocol", "pylontech", "--packs", "0", "--bus", "2,3")
        r, path = self.scan_to_file("--protocol", "pylontech")
        self.assertIn("scan: pylontech  baud 115200 address   4 (0x04): no answer", r.stderr)
        self.assertRegex(r.stdout, r"#   Pylontech \(RS485 V3.3\), address 3 \(0x03\) at 115200 "
                         r"baud, model 'LP4V2-48V-', firmware '3\.4/3\.4\.0', serial "
                         r"'LP4V2SIM\d{8}'")
        self.assertIn("bus:\n  mode: pylontech\n  port: %s\n  baud: 115200\n" % self.port(),
                      r.stdout)
        # The config as scan wrote it, plus where the broker is: the daemon polls both modules.
        with open(path, "a") as f:
            f.write("mqtt:\n  host: 127.0.0.1\n  port: %d\n" % broker.port)
        self.start_daemon(path, ["--once"])
        for name in ("pylontech_2", "pylontech_3"):
            self.assert_cells(self.wait_state(cap, name), name)

    def test_scan_legacy_and_lifepower4_ascii_configs_load(self):
        # Legacy address 0 is left out: the loader refuses address 0 on this branch.
        self.start_bus_sim("--protocol", "eg4_legacy", "--packs", "0", "--bus", "1,3")
        r, path = self.scan_to_file("--protocol", "eg4_legacy")
        self.assertIn("scan: eg4_legacy baud   9600 address   2 (0x02): no answer", r.stderr)
        self.assertIn("#   EG4 legacy (7E..0D), address 3 (0x03) at 9600 baud, firmware "
                      "'LP4-V1.2'", r.stdout)
        self.assertIn("  mode: active\n", r.stdout)
        d = run("--dry-run", "-C", path, timeout=10)
        self.assertEqual(d.returncode, 0, d.stderr)
        self.assertIn("bms2mqtt/eg4_legacy_3/state", d.stdout)
        self.sim.stop()
        lp4 = os.path.join(self.dir, "lp4")
        os.mkdir(lp4)
        sim = BusSim(["--protocol", "lp4_ascii", "--packs", "0", "--bus", "4"], lp4)
        self.addCleanup(sim.stop)
        r = run("scan", "--port", os.path.join(lp4, "pack1"), "--protocol", "lp4_ascii",
                timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("scan: lp4_ascii  baud   9600 address   4 (0x04): answers", r.stderr)
        self.assertIn("#   EG4 LifePower4 ASCII, address 4 (0x04) at 9600 baud, manufacturer "
                      "info (0x51): CID2 invalid", r.stdout)
        path = self.write_config(r.stdout, "lp4.yaml")
        d = run("--dry-run", "-C", path, timeout=10)
        self.assertNotRegex(d.stderr, re.escape(path) + r":\d+:\d+:")  # no config error

    def test_scan_with_nothing_there_says_so(self):
        self.start_bus_sim("--packs", "0", "--bus", "7")
        r = run("scan", "--port", self.port(), "--protocol", "lp4_ascii", timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn("nothing answered", r.stdout)
        self.assertEqual(len(re.findall(r"^scan: lp4_ascii .*: no answer$", r.stderr, re.M)), 15)


class ToolsCliTest(unittest.TestCase):
    """Numbers are numbers, and --help says what the tools cover."""

    def test_bad_numbers_are_refused_with_status_2(self):
        for args, what in ((["sniff", "--baud", "9600x"], "bad --baud '9600x'"),
                           (["scan", "--baud", "9600x"], "bad --baud '9600x'"),
                           (["scan", "--baud", ""], "bad --baud ''"),
                           (["sniff", "--baud", "12345"], "bad --baud '12345'"),
                           (["sniff", "--seconds", "abc"], "bad --seconds 'abc'"),
                           (["sniff", "--seconds", "-1"], "bad --seconds '-1'"),
                           (["sniff", "--seconds", "nan"], "bad --seconds 'nan'"),
                           (["sniff", "--seconds", "2s"], "bad --seconds '2s'"),
                           (["sniff", "--protocol", "modbus"], "unknown --protocol 'modbus'")):
            r = run(*args, "--port", "/nonexistent/tty", timeout=10)
            self.assertEqual(r.returncode, 2, "%s: status %d, stderr %r" % (args, r.returncode,
                                                                            r.stderr))
            self.assertIn(what, r.stderr, args)

    def test_help_lists_every_protocol(self):
        for tool in ("sniff", "scan"):
            r = run(tool, "--help", timeout=10)
            self.assertEqual(r.returncode, 0, r.stderr)
            for name in ("lp4v2", "eg4_legacy", "pylontech", "lp4_ascii"):
                self.assertIn(name, r.stdout, "%s --help does not list %s" % (tool, name))
        r = run("scan", "--help", timeout=10)
        for order in ("slave ids 1-16 and 0x40", "addresses 0-15, 9600 baud",
                      "addresses 2-9", "addresses 1-15, 9600 baud"):
            self.assertIn(order, r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
