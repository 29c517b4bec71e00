#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# test_sim.py - bms-sim answers LP4V2 Modbus RTU requests on its ptys, paced, with faults.
"""Integration test of tools/bms-sim (stdlib only).

Needs BMS_SIM = path of the built bms-sim. Register numbers and scales follow the vendor's
"EG4-LL Battery MODBUS Protocol V01.06" table (shared/protocols/README.md section 1).
"""

import os
import select
import struct
import subprocess
import sys
import tempfile
import termios
import time
import tty
import unittest

SIM = os.environ.get("BMS_SIM", "")
SLAVE = 0x40
LINE_TIMEOUT = 5.0   # s to wait for a protocol line from the simulator
REPLY_TIMEOUT = 2.0  # s to wait for a reply that must come
SILENCE = 0.3        # s of quiet that counts as "no answer"


def crc16_modbus(data):
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def frame(body):
    """Body plus CRC, low byte first."""
    return bytes(body) + struct.pack("<H", crc16_modbus(body))


def crc_ok(data):
    return len(data) >= 4 and struct.unpack("<H", data[-2:])[0] == crc16_modbus(data[:-2])


def read_request(start, count, slave=SLAVE):
    return frame(struct.pack(">BBHH", slave, 0x03, start, count))


def ascii_regs(regs):
    raw = b"".join(struct.pack(">H", r) for r in regs)
    return raw.rstrip(b"\0 ").decode("ascii")


class Sim:
    """A running bms-sim with a line reader on its stdout."""

    def __init__(self, *args):
        # The simulator's log goes to a file, shown when something goes wrong.
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([SIM, *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log)
        self.buf = b""
        self.ptys = {}
        while True:
            line = self.line()
            if line == "READY":
                break
            parts = line.split()
            if len(parts) != 3 or parts[0] != "PTY":
                raise AssertionError("unexpected line before READY: %r" % line)
            self.ptys[int(parts[1])] = parts[2]

    def line(self, timeout=LINE_TIMEOUT):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no line from bms-sim within %.1f s\n%s"
                                     % (timeout, self.log_text()))
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise AssertionError("bms-sim closed stdout (exit %r)\n%s"
                                         % (self.proc.poll(), self.log_text()))
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def log_text(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def command(self, cmd):
        """Send a stdin command; return the lines before its final OK/ERR and that answer."""
        self.proc.stdin.write((cmd + "\n").encode())
        self.proc.stdin.flush()
        lines = []
        while True:
            line = self.line()
            if line == "OK" or line.startswith("ERR"):
                return lines, line
            lines.append(line)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.log):
            try:
                f.close()
            except OSError:
                pass


class Port:
    """The daemon's side of one pty: raw, flushed."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        termios.tcflush(self.fd, termios.TCIOFLUSH)

    def close(self):
        os.close(self.fd)

    def write(self, data):
        os.write(self.fd, data)

    def read(self, want, timeout=REPLY_TIMEOUT):
        """Read until `want` bytes came or `timeout` passed; return what came."""
        deadline = time.monotonic() + timeout
        got = b""
        while len(got) < want:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                got += os.read(self.fd, 512)
        return got

    def quiet(self, timeout=SILENCE):
        """Return whatever arrives within `timeout` (b"" = silence)."""
        return self.read(1, timeout)

    def transact(self, request, want, timeout=REPLY_TIMEOUT):
        self.write(request)
        return self.read(want, timeout)


class SimTest(unittest.TestCase):
    def setUp(self):
        if not SIM or not os.access(SIM, os.X_OK):
            self.skipTest("BMS_SIM is not set to the bms-sim binary")
        self.sim = Sim("--packs", "2")
        self.ports = {i: Port(p) for i, p in self.sim.ptys.items()}

    def tearDown(self):
        for p in getattr(self, "ports", {}).values():
            p.close()
        if hasattr(self, "sim"):
            self.sim.stop()

    def block(self, pack):
        """The periodic 47-register read: vendor 1.3.2 gives 3 + 94 + 2 = 99 bytes."""
        reply = self.ports[pack].transact(read_request(0, 47), 99)
        self.assertEqual(len(reply), 99, reply.hex())
        self.assertTrue(crc_ok(reply), reply.hex())
        self.assertEqual(reply[:3], bytes([SLAVE, 0x03, 94]))
        return struct.unpack(">47H", reply[3:-2])

    def test_ready_lines(self):
        self.assertEqual(sorted(self.sim.ptys), [1, 2])
        for path in self.sim.ptys.values():
            self.assertTrue(os.path.exists(path), path)

    def test_block_read_is_plausible(self):
        for pack in (1, 2):
            regs = self.block(pack)
            cells = regs[2:18]
            for mv in cells:
                self.assertTrue(3000 <= mv <= 3600, cells)
            self.assertTrue(3 <= max(cells) - min(cells) <= 15, cells)
            # reg 0 in 10 mV within 1 V of the sum of the cells
            self.assertLess(abs(regs[0] * 10 - sum(cells)), 1000)
            current = struct.unpack(">h", struct.pack(">H", regs[1]))[0] / 100.0
            self.assertLessEqual(abs(current), 25.0)
            self.assertTrue(15 <= regs[18] <= 30)             # PCB temperature
            self.assertTrue(0 <= regs[24] <= 100)             # SoC
            self.assertEqual(regs[23], 100)                   # SoH
            self.assertLessEqual(abs(regs[21] - regs[24]), 1)  # remaining Ah = SoC % of 100 Ah
            self.assertEqual(regs[22], 100)                   # max charging current
            status = regs[25]
            self.assertEqual(status & 0x8000, 0)
            self.assertEqual(status & 0xFF, 1 if current > 0 else 2 if current < 0 else 0)
            self.assertEqual((regs[29] << 16) | regs[30], 12 + pack)  # cycles
            self.assertEqual(((regs[31] << 16) | regs[32]) / 3600000.0, 100.0)  # full capacity
            temps = [b for r in regs[33:36] for b in (r >> 8, r & 0xFF)]
            for t in temps:
                self.assertTrue(15 <= t <= 30, temps)
            self.assertEqual(regs[36], 16)    # cell count
            self.assertEqual(regs[37], 1000)  # design capacity 100.0 Ah
            self.assertTrue(any(regs[39:47]), regs[39:47])

    def test_identity_read(self):
        serials = set()
        for pack in (1, 2):
            reply = self.ports[pack].transact(read_request(105, 23), 51)
            self.assertEqual(len(reply), 51, reply.hex())
            self.assertTrue(crc_ok(reply))
            self.assertEqual(reply[:3], bytes([SLAVE, 0x03, 46]))
            regs = struct.unpack(">23H", reply[3:-2])
            self.assertEqual(ascii_regs(regs[0:12]), "LP4V2-48V-100AH")
            self.assertEqual(ascii_regs(regs[12:15]), "V03R04")
            serial = ascii_regs(regs[15:23])
            self.assertEqual(len(serial), 16)
            self.assertTrue(serial.startswith("LP4V2SIM"), serial)
            serials.add(serial)
        self.assertEqual(len(serials), 2)

    def test_other_slave_is_ignored(self):
        port = self.ports[1]
        port.write(read_request(0, 47, slave=0x41))
        self.assertEqual(port.quiet(), b"")
        self.block(1)

    def test_bad_crc_and_garbage_are_skipped(self):
        port = self.ports[1]
        bad = bytearray(read_request(0, 47))
        bad[-1] ^= 0xFF
        port.write(bytes(bad))
        self.assertEqual(port.quiet(), b"")
        # Garbage in front of a good request: the sim resynchronises and answers it.
        reply = port.transact(b"\x01\x02\xff\x40\x03" + read_request(0, 47), 99)
        self.assertEqual(len(reply), 99)
        self.assertTrue(crc_ok(reply))

    def test_protocol_exceptions(self):
        port = self.ports[1]
        reply = port.transact(read_request(120, 10), 5)  # beyond register 127
        self.assertEqual(reply, frame([SLAVE, 0x83, 0x02]))
        reply = port.transact(frame([SLAVE, 0x06, 0x00, 0x01, 0x00, 0x02]), 5)
        self.assertEqual(reply, frame([SLAVE, 0x86, 0x01]))

    def test_silence_fault_and_clear(self):
        self.assertEqual(self.sim.command("fault 1 silence")[1], "OK")
        self.ports[1].write(read_request(0, 47))
        self.assertEqual(self.ports[1].quiet(), b"")
        self.block(2)
        self.assertEqual(self.sim.command("clear 1")[1], "OK")
        self.block(1)

    def test_badcrc_fault(self):
        self.assertEqual(self.sim.command("fault 2 badcrc 1")[1], "OK")
        reply = self.ports[2].transact(read_request(0, 47), 99)
        self.assertEqual(len(reply), 99)
        self.assertFalse(crc_ok(reply))
        self.block(1)

    def test_exception_fault(self):
        self.assertEqual(self.sim.command("fault * exception")[1], "OK")
        for pack in (1, 2):
            reply = self.ports[pack].transact(read_request(0, 47), 5)
            self.assertEqual(reply, frame([SLAVE, 0x83, 0x04]))
            self.assertEqual(self.ports[pack].quiet(0.05), b"")
        self.assertEqual(self.sim.command("fault 1 exception 2")[1], "OK")
        self.assertEqual(self.ports[1].transact(read_request(0, 47), 5),
                         frame([SLAVE, 0x83, 0x02]))

    def test_other_faults(self):
        port = self.ports[1]
        self.sim.command("fault 1 wrongslave")
        reply = port.transact(read_request(0, 47), 99)
        self.assertEqual(reply[0], SLAVE + 1)
        self.assertTrue(crc_ok(reply))
        self.sim.command("fault 1 zeros")
        reply = port.transact(read_request(0, 47), 99)
        self.assertTrue(crc_ok(reply))
        regs = struct.unpack(">47H", reply[3:-2])
        self.assertEqual(regs[0:19], (0,) * 19)
        self.assertEqual(regs[36], 16)
        self.sim.command("fault 1 truncate")
        reply = port.transact(read_request(0, 47), 99, timeout=0.5)
        self.assertEqual(len(reply), 49)
        self.sim.command("fault 1 slow 300")
        t0 = time.monotonic()
        reply = port.transact(read_request(0, 47), 99)
        self.assertEqual(len(reply), 99)
        self.assertGreaterEqual(time.monotonic() - t0, 0.3 + 99 * 10 / 9600)

    def test_bad_commands(self):
        self.assertTrue(self.sim.command("fault 3 silence")[1].startswith("ERR"))
        self.assertTrue(self.sim.command("fault 1 melt")[1].startswith("ERR"))
        self.assertTrue(self.sim.command("fault 1 badcrc 0")[1].startswith("ERR"))
        self.assertTrue(self.sim.command("jump")[1].startswith("ERR"))

    def test_stats(self):
        self.block(1)
        self.block(1)
        self.ports[2].write(read_request(0, 47, slave=0x41))  # not ours: not counted
        self.assertEqual(self.ports[2].quiet(), b"")
        lines, answer = self.sim.command("stats")
        self.assertEqual(answer, "OK")
        self.assertEqual(lines, ["STATS 1 requests=2 replies=2", "STATS 2 requests=0 replies=0"])

    def test_reply_takes_wire_time(self):
        """99 bytes at 9600 baud, 10 bits each: >= 103 ms from the request's write."""
        wire = 99 * 10 / 9600.0
        times = []
        for _ in range(5):
            t0 = time.monotonic()
            reply = self.ports[1].transact(read_request(0, 47), 99)
            times.append(time.monotonic() - t0)
            self.assertEqual(len(reply), 99)
        print("\n  reply times (ms): %s" % " ".join("%.1f" % (t * 1000) for t in times),
              file=sys.stderr)
        self.assertGreaterEqual(min(times), wire)
        self.assertLess(max(times), wire + 0.5)

    def test_port_reopen(self):
        """The daemon closing and reopening its port must not upset the sim."""
        self.block(1)
        for _ in range(3):
            self.ports[1].close()
            self.ports[1] = Port(self.sim.ptys[1])
            self.block(1)

    def test_quit(self):
        self.assertEqual(self.sim.command("quit")[1], "OK")
        self.assertEqual(self.sim.proc.wait(timeout=5), 0)


class SimOptionsTest(unittest.TestCase):
    def setUp(self):
        if not SIM or not os.access(SIM, os.X_OK):
            self.skipTest("BMS_SIM is not set to the bms-sim binary")
        self.sim = None
        self.port = None

    def tearDown(self):
        if self.port:
            self.port.close()
        if self.sim:
            self.sim.stop()

    def test_no_identity_and_closed_stdin(self):
        self.sim = Sim("--no-identity", "--slave", "0x01", "--baud", "19200")
        self.sim.proc.stdin.close()  # end of stdin is not a reason to exit
        self.port = Port(self.sim.ptys[1])
        reply = self.port.transact(read_request(105, 23, slave=1), 5)
        self.assertEqual(reply, frame([0x01, 0x83, 0x02]))
        reply = self.port.transact(read_request(0, 47, slave=1), 99)
        self.assertEqual(len(reply), 99)
        self.assertTrue(crc_ok(reply))
        self.assertIsNone(self.sim.proc.poll())

    def test_link_dir_and_start_fault(self):
        with tempfile.TemporaryDirectory() as d:
            self.sim = Sim("--packs", "2", "--link", d, "--fault", "2:silence",
                           "--chunk", "16", "--seed-offset", "10")
            for i in (1, 2):
                link = os.path.join(d, "pack%d" % i)
                self.assertEqual(os.readlink(link), self.sim.ptys[i])
            self.port = Port(os.path.join(d, "pack1"))
            t0 = time.monotonic()
            reply = self.port.transact(read_request(120, 8), 21)
            self.assertGreaterEqual(time.monotonic() - t0, 21 * 10 / 9600.0)  # chunked, paced
            self.assertTrue(crc_ok(reply))
            self.assertEqual(ascii_regs(struct.unpack(">8H", reply[3:-2])), "LP4V2SIM00000011")
            port2 = Port(os.path.join(d, "pack2"))
            try:
                port2.write(read_request(0, 47))
                self.assertEqual(port2.quiet(), b"")  # --fault 2:silence
            finally:
                port2.close()
            self.sim.stop()
            self.assertFalse(os.path.lexists(os.path.join(d, "pack1")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
