#!/usr/bin/env python3
"""bms-sim --protocol victron_gx: a GX's Modbus TCP server as a client sees it. Layouts and unit
ids, exception 0x0A for absent devices and 0x02 for holes, block reads across spacers, writes
(read back, logged, refused where a GX refuses them), a read-only server, the MPPT that goes
away at night. Facts: shared/protocols/victron/README.md."""
import os
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_buses import BusSim  # noqa: E402

EX_FUNCTION, EX_ADDRESS, EX_VALUE, EX_GW_PATH = 0x01, 0x02, 0x03, 0x0A


class ModbusError(Exception):
    def __init__(self, code):
        super().__init__("exception 0x%02X" % code)
        self.code = code


class Client:
    """A minimal Modbus TCP client: one request at a time, MBAP transaction ids checked."""

    def __init__(self, addr, timeout=5.0):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.tid = 0

    def close(self):
        self.sock.close()

    def _recv(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise AssertionError("the simulator closed the connection")
            data += chunk
        return data

    def request(self, unit, pdu):
        self.tid = (self.tid + 1) & 0xFFFF
        self.sock.sendall(struct.pack(">HHHB", self.tid, 0, len(pdu) + 1, unit) + pdu)
        tid, proto, length, runit = struct.unpack(">HHHB", self._recv(7))
        body = self._recv(length - 1)
        if (tid, proto, runit) != (self.tid, 0, unit):
            raise AssertionError("reply header %r for request %d unit %d" % ((tid, proto, runit),
                                                                            self.tid, unit))
        if body[0] & 0x80:
            raise ModbusError(body[1])
        return body

    def read(self, unit, start, count, fn=3):
        body = self.request(unit, struct.pack(">BHH", fn, start, count))
        if body[0] != fn or body[1] != 2 * count:
            raise AssertionError("bad read reply %s" % body.hex())
        return list(struct.unpack(">%dH" % count, body[2:]))

    def write1(self, unit, reg, word):
        body = self.request(unit, struct.pack(">BHH", 6, reg, word))
        if body != struct.pack(">BHH", 6, reg, word):
            raise AssertionError("bad write reply %s" % body.hex())

    def write(self, unit, reg, words):
        pdu = struct.pack(">BHHB", 16, reg, len(words), 2 * len(words))
        body = self.request(unit, pdu + b"".join(struct.pack(">H", w) for w in words))
        if body != struct.pack(">BHH", 16, reg, len(words)):
            raise AssertionError("bad write reply %s" % body.hex())


def s16(v):
    return v - 0x10000 if v >= 0x8000 else v


def text(regs):
    return b"".join(struct.pack(">H", r) for r in regs).split(b"\0")[0].decode("latin-1")


class VictronSimTest(harness.StackTest):
    def start_gx(self, *args):
        sim = BusSim(["--protocol", "victron_gx", "--tcp", *args], self.dir)
        self.addCleanup(sim.stop)
        client = Client(sim.tcp[1])
        self.addCleanup(client.close)
        return sim, client

    def full_table(self, sim):
        """True when bms-sim serves Victron's whole table (the build embedded the CSV)."""
        return "register table attributes.csv" in sim.log_text()

    def assertException(self, code, fn, *args):
        with self.assertRaises(ModbusError) as cm:
            fn(*args)
        self.assertEqual(cm.exception.code, code, "want exception 0x%02X" % code)

    def test_ess1_layout_and_errors(self):
        sim, gx = self.start_gx()
        # The GX: serial (register 800, string[6]) and firmware (834 read in hex: v3.70).
        self.assertEqual(text(gx.read(100, 800, 6)), "c0619ab1f2e3")
        self.assertEqual(gx.read(100, 834, 2), [0x0370, 0])
        self.assertEqual(gx.read(0, 834, 1), [0x0370])  # unit 0 is instance 0 as well
        # Unit ids as the GX assigns them: the Multi on the VE.Bus port, the CAN BMS, the MPPT
        # on VE.Direct port 1, a grid meter.
        soc = gx.read(225, 266, 1)[0] / 10
        self.assertTrue(5 <= soc <= 100, soc)
        volts = gx.read(225, 259, 1)[0] / 100
        self.assertTrue(45 <= volts <= 58, volts)
        self.assertAlmostEqual(gx.read(100, 840, 1)[0] / 10, volts, delta=0.2)  # system view
        self.assertTrue(s16(gx.read(227, 23, 1)[0]) > 0)  # AC out L1 power
        self.assertEqual(gx.read(227, 24, 2), [0, 0])  # no L2, L3
        self.assertGreater(gx.read(226, 789, 1)[0], 0)  # PV power at noon
        grid = s16(gx.read(30, 2600, 1)[0])
        self.assertTrue(-5000 < grid < 5000, grid)
        self.assertEqual(len(gx.read(227, 12, 3, fn=4)), 3)  # function 4 reads as 3 does
        # 0x0A: no device of that service at that unit id.
        self.assertException(EX_GW_PATH, gx.read, 228, 12, 1)
        self.assertException(EX_GW_PATH, gx.read, 30, 266, 1)
        self.assertException(EX_GW_PATH, gx.read, 100, 2600, 1)
        # 0x02: an address no service has, also at a unit that has no device at all.
        self.assertException(EX_ADDRESS, gx.read, 225, 2, 1)
        self.assertException(EX_ADDRESS, gx.read, 99, 2, 1)
        # 0x03: more than 125 registers; 0x01: another function.
        self.assertException(EX_VALUE, gx.read, 227, 3, 126)
        self.assertException(EX_FUNCTION, gx.request, 227, struct.pack(">BHH", 5, 3, 0xFF00))
        if not self.full_table(sim):
            self.skipTest("the build has no attributes.csv: the core set alone")
        self.assertEqual(gx.read(227, 28, 1), [1])  # one phase
        self.assertTrue(gx.read(227, 15, 1)[0] / 10 > 200)  # AC out L1 voltage
        # Whole blocks of a service, spacers included; spacers read 0xFFFF.
        self.assertEqual(len(gx.read(227, 3, 119)), 119)
        self.assertEqual(len(gx.read(225, 256, 76)), 76)
        self.assertEqual(len(gx.read(225, 1282, 62)), 62)
        self.assertEqual(gx.read(226, 782, 2), [0xFFFF, 0xFFFF])
        self.assertEqual(gx.read(226, 777, 1)[0] > 0, True)  # PV current, computed
        # A request spanning a hole fails whole: 0x02.
        self.assertException(EX_ADDRESS, gx.read, 227, 240, 10)
        self.assertException(EX_ADDRESS, gx.read, 225, 330, 4)
        # settings and hub4 interleave at unit 100: one request reads both.
        self.assertEqual(len(gx.read(100, 2700, 25)), 25)
        # The CAN BMS is not at 226: a battery register there is 0x0A.
        self.assertException(EX_GW_PATH, gx.read, 226, 256, 1)

    def test_values_drift(self):
        _, gx = self.start_gx()
        seen = {gx.read(227, 23, 1)[0]}
        deadline = time.monotonic() + 10
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # the load drifts with time: poll until it moved
            seen.add(gx.read(227, 23, 1)[0])
        self.assertGreater(len(seen), 1, "AC output power never changed")

    def test_writes(self):
        sim, gx = self.start_gx()
        # A 32-bit setpoint as one function-16 write, two's complement, high word first.
        gx.write(227, 96, [0xFFFF, 0xFC18])
        self.assertEqual(gx.read(227, 96, 2), [0xFFFF, 0xFC18])
        self.assertEqual(s16(gx.read(227, 37, 1)[0]), -1000)  # the 16-bit twin reads it too
        # Half a 32-bit item: refused (a GX would merge it; a client must not rely on that).
        self.assertException(EX_ADDRESS, gx.write1, 227, 97, 0x0001)
        # A 16-bit setpoint, function 6.
        gx.write1(227, 37, 0x01F4)
        self.assertEqual(gx.read(227, 37, 1), [500])
        self.assertEqual(gx.read(227, 96, 2), [0, 500])
        # Read-only registers and absent devices.
        self.assertException(EX_ADDRESS, gx.write1, 227, 12, 1)
        self.assertException(EX_GW_PATH, gx.write1, 228, 37, 1)
        # DVCC max charge current, -1 = no limit.
        gx.write1(100, 2705, 50)
        self.assertEqual(gx.read(100, 2705, 1), [50])
        gx.write1(100, 2705, 0xFFFF)
        self.assertEqual(gx.read(100, 2705, 1), [0xFFFF])
        # The server made read-only: every write is 0x02, nothing changes.
        sim.command("readonly on")
        self.assertException(EX_ADDRESS, gx.write1, 100, 2705, 70)
        self.assertEqual(gx.read(100, 2705, 1), [0xFFFF])
        sim.command("readonly off")
        log = sim.command("writes")
        self.assertEqual(len(log), 8, log)
        self.assertRegex(log[0], r"^WRITE 1 unit=227 fn=16 reg=96 words=FFFF,FC18 ok "
                                 r"vebus/Hub4/L1/AcPowerSetpoint=-1000$")
        self.assertRegex(log[1], r"^WRITE 2 unit=227 fn=6 reg=97 words=0001 refused=02 ")
        self.assertIn("refused=02 a register that is not writable", log[3])
        self.assertIn("refused=0A", log[4])
        self.assertIn("settings/Settings/SystemSetup/MaxChargeCurrent=-1", log[6])
        self.assertIn("refused=02 the Modbus server is read-only", log[7])
        self.assertIn("WRITE 1 unit=227", sim.log_text())  # and on stderr
        sim.command("writes clear")
        self.assertEqual(sim.command("writes"), [])

    def test_read_only_server(self):
        sim, gx = self.start_gx("--read-only")
        self.assertException(EX_ADDRESS, gx.write1, 227, 33, 4)
        self.assertEqual(gx.read(227, 33, 1), [3])  # still on
        self.assertEqual(len(sim.command("writes")), 1)

    def test_night(self):
        sim, gx = self.start_gx("--start-hour", "12")
        self.assertGreater(gx.read(226, 789, 1)[0], 0)
        sim.command("night on")
        self.assertException(EX_GW_PATH, gx.read, 226, 789, 1)
        gx.read(225, 266, 1)  # the others stay
        self.assertIn("DEVICE 226 solarcharger absent", "\n".join(sim.command("devices")))
        sim.command("night off")
        gx.read(226, 789, 1)
        # By the clock: 23:00 is night, 12:00 is day.
        sim.command("night auto")
        sim.command("hour 23")
        self.assertException(EX_GW_PATH, gx.read, 226, 789, 1)
        sim.command("hour 12")
        self.assertGreater(gx.read(226, 789, 1)[0], 0)
        self.assertIn("went away (night)", sim.log_text())
        self.assertIn("is back (morning)", sim.log_text())

    def test_ess3_layout(self):
        sim, gx = self.start_gx("--layout", "ess3")
        out = gx.read(227, 23, 3)
        self.assertTrue(all(s16(v) > 0 for v in out), out)  # load on every phase
        self.assertGreater(gx.read(224, 789, 1)[0], 0)  # a second MPPT
        gx.read(30, 2600, 3)
        gx.read(20, 1052, 2)  # a PV inverter (AC-coupled), power in W
        self.assertIn("DEVICE 20 pvinverter present", "\n".join(sim.command("devices")))
        if self.full_table(sim):
            self.assertEqual(gx.read(227, 28, 1), [3])

    def test_offgrid_layout(self):
        sim, gx = self.start_gx("--layout", "offgrid")
        self.assertEqual(gx.read(100, 2902, 1), [3])  # ESS off
        self.assertException(EX_GW_PATH, gx.read, 100, 2716, 2)  # no hub4 service
        self.assertException(EX_GW_PATH, gx.read, 30, 2600, 1)  # no grid meter
        self.assertException(EX_GW_PATH, gx.read, 225, 266, 1)  # no CAN BMS ...
        gx.read(226, 266, 1)  # ... a SmartShunt on VE.Direct port 1
        gx.read(224, 789, 1)
        gx.read(223, 789, 1)
        if self.full_table(sim):
            self.assertException(EX_ADDRESS, gx.read, 100, 2700, 25)  # spans absent hub4
            level = gx.read(20, 3004, 1)[0] / 10  # a tank
            self.assertTrue(0 <= level <= 100, level)

    def test_register_table_option(self):
        path = os.path.join(self.dir, "attributes.csv")
        with open(path, "w") as f:
            f.write("com.victronenergy.system,/Serial,s,,800,string[6],1,R\n"
                    "com.victronenergy.battery,/Soc,d,%,266,uint16,10,R\n"
                    "com.victronenergy.battery,RESERVED,d,,267,reserved[2],1,R\n"
                    "com.victronenergy.battery,/Bogus,d,%,270,float32,10,R\n")
        sim, gx = self.start_gx("--register-table", path)
        self.assertEqual(len(gx.read(225, 266, 3)), 3)
        self.assertException(EX_ADDRESS, gx.read, 225, 259, 1)  # not in this table
        self.assertException(EX_ADDRESS, gx.read, 225, 270, 1)  # its line was skipped
        self.assertIn("attributes.csv:4: modbus type 'float32'", sim.log_text())
        self.assertIn("2 values, 2 services", sim.log_text())

    def test_bad_register_table(self):
        path = os.path.join(self.dir, "attributes.csv")
        with open(path, "w") as f:
            f.write("com.victronenergy.battery,/Soc,d,%,266,uint16,10,R\nnot,a,table\n")
        proc = harness.subprocess.run([harness.BMS_SIM, "--protocol", "victron_gx", "--tcp",
                                       "--register-table", path],
                                      stdin=harness.subprocess.DEVNULL, capture_output=True,
                                      timeout=harness.START_TIMEOUT)
        self.assertEqual(proc.returncode, 2)
        self.assertIn(b"register table: " + path.encode() + b":2: 3 fields where "
                      b"attributes.csv has 8", proc.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
