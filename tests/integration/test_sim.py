#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# test_sim.py - bms-sim answers LP4V2 Modbus RTU requests on its ptys, paced, with faults.
"""Integration test of tools/bms-sim (stdlib only).

Needs BMS_SIM = path of the built bms-sim. Register numbers and scales follow the vendor's
"EG4-LL Battery MODBUS Protocol V01.06" table (shared/protocols/README.md section 1).
"""

import errno
import os
import select
import socket
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


def legacy_chk(data):
    """protocols/README.md section 2: (XOR of the bytes) XOR (their sum mod 256)."""
    x = 0
    for b in data:
        x ^= b
    return x ^ (sum(data) & 0xFF)


def legacy_request(addr, cmd=0x01):
    head = bytes([0x7E, addr, cmd, 0x00])
    return head + bytes([legacy_chk(head), 0x0D])


def legacy_groups(data):
    """Reply DATA as {id: [u16, ...]}, bounded by the data length."""
    groups, i = {}, 0
    while i + 2 <= len(data):
        gid, count = data[i], data[i + 1]
        end = i + 2 + 2 * count
        if end > len(data):
            raise AssertionError("group 0x%02x overruns DATA" % gid)
        groups[gid] = list(struct.unpack(">%dH" % count, data[i + 2:end]))
        i = end
    return groups


def ascii_chksum(chars):
    """protocols/README.md section 3: (~(sum of the characters) + 1) & 0xFFFF."""
    return (~sum(chars) + 1) & 0xFFFF


def ascii_lchksum(lenid):
    return (~((lenid >> 8 & 0xF) + (lenid >> 4 & 0xF) + (lenid & 0xF)) + 1) & 0xF


def ascii_request(adr, cid1, cid2, info=b"", ver=0x20):
    hexinfo = info.hex().upper().encode()
    length = ascii_lchksum(len(hexinfo)) << 12 | len(hexinfo)
    body = b"%02X%02X%02X%02X%04X" % (ver, adr, cid1, cid2, length) + hexinfo
    return b"~" + body + b"%04X" % ascii_chksum(body) + b"\r"


def ascii_parse(frame):
    """(ver, adr, cid1, cid2/rtn, info bytes) of a frame whose checks must all hold."""
    assert frame[:1] == b"~" and frame[-1:] == b"\r", frame
    body = frame[1:-1]
    assert len(body) >= 16 and len(body) % 2 == 0, frame
    assert body == body.upper() and all(c in b"0123456789ABCDEF" for c in body), frame
    assert int(body[-4:], 16) == ascii_chksum(body[:-4]), "CHKSUM of %r" % frame
    length = int(body[8:12], 16)
    lenid = length & 0xFFF
    assert length >> 12 == ascii_lchksum(lenid), "LCHKSUM of %r" % frame
    info = body[12:-4]
    assert len(info) == lenid, frame
    f = bytes.fromhex(body[:8].decode())
    return f[0], f[1], f[2], f[3], bytes.fromhex(info.decode())


def read_ascii(port, timeout=REPLY_TIMEOUT):
    """Read one frame up to its CR (b"" if none came)."""
    deadline = time.monotonic() + timeout
    got = b""
    while not got.endswith(b"\r"):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        got += port.read(1, left)
    return got


class Fields:
    """Big-endian fields read one after another from INFO."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n, signed=False):
        assert self.pos + n <= len(self.data), "INFO too short"
        v = int.from_bytes(self.data[self.pos:self.pos + n], "big", signed=signed)
        self.pos += n
        return v

    def done(self):
        return self.pos == len(self.data)


def pylon_module(f):
    """One module's analog data (Pylontech V3.3 section 3.3) from Fields."""
    ncells = f.take(1)
    m = {"cells": [f.take(2) for _ in range(ncells)]}
    m["temps"] = [(f.take(2) - 2731) / 10.0 for _ in range(f.take(1))]
    m["amps"] = f.take(2, signed=True) / 10.0
    m["mv"] = f.take(2)
    m["remain1"] = f.take(2)
    m["user"] = f.take(1)
    m["total1"] = f.take(2)
    m["cycles"] = f.take(2)
    if m["user"] == 4:
        m["remain2"] = f.take(3)
        m["total2"] = f.take(3)
    return m


def lp4_analog(info):
    """EG4 LifePower4 section 2.1 analog INFO as a dict."""
    f = Fields(info)
    a = {"flag": f.take(1), "group": f.take(1)}
    a["cells"] = [f.take(2) for _ in range(f.take(1))]
    ncell_temps = f.take(1)
    a["temps"] = [(f.take(2) - 2731) / 10.0 for _ in range(ncell_temps + 2)]
    a["amps"] = f.take(2, signed=True) / 100.0
    a["volts"] = f.take(2) / 100.0
    a["remain_ah"] = f.take(2, signed=True) / 100.0
    a["full_ah"] = f.take(2, signed=True) / 100.0
    a["cycles"] = f.take(2)
    a["user"] = f.take(1)
    for k in ("soc", "soh", "max_mv", "min_mv", "diff_mv", "max_t", "min_t"):
        a[k] = f.take(2)
    for k in ("chg_ah", "dis_ah", "chg_kwh", "dis_kwh", "chg_h", "dis_h"):
        a[k] = f.take(4)
    a["chg_n"] = f.take(2)
    a["dis_n"] = f.take(2)
    assert f.done(), "INFO longer than the analog data"
    return a


def rtu_frames(stream):
    """Split sniffed Modbus traffic into ('req', slave, bytes) and ('rsp', slave, bytes),
    skipping bytes that do not line up as a frame with a good CRC (noise)."""
    out, i = [], 0
    while i + 8 <= len(stream):
        if stream[i + 1] == 0x03 and crc_ok(stream[i:i + 8]):
            out.append(("req", stream[i], stream[i:i + 8]))
            i += 8
            continue
        n = 5 + stream[i + 2]
        if stream[i + 1] == 0x03 and i + n <= len(stream) and crc_ok(stream[i:i + n]):
            out.append(("rsp", stream[i], stream[i:i + n]))
            i += n
            continue
        i += 1
    return out


def parse_addr(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


class Sim:
    """A running bms-sim with a line reader on its stdout."""

    def __init__(self, *args):
        # The simulator's log goes to a file, shown when something goes wrong.
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([SIM, *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log)
        self.buf = b""
        self.ptys = {}
        self.tcp = {}     # --tcp: port number -> (host, tcp port), from the TCP lines
        self.slaves = {}  # pty -> [slave ids], from the SLAVES lines (--bus only)
        while True:
            line = self.line()
            if line == "READY":
                break
            parts = line.split()
            if len(parts) == 3 and parts[0] == "PTY":
                self.ptys[int(parts[1])] = parts[2]
            elif len(parts) == 3 and parts[0] == "TCP":
                self.tcp[int(parts[1])] = parse_addr(parts[2])
            elif (len(parts) == 3 and parts[0] == "SLAVES"
                  and (int(parts[1]) in self.ptys or int(parts[1]) in self.tcp)):
                self.slaves[int(parts[1])] = [int(x) for x in parts[2].split(",")]
            else:
                raise AssertionError("unexpected line before READY: %r" % line)

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

    def stats(self):
        """{'packs': {n: (requests, replies)}, 'ptys': {i: {key: value}}} from `stats`."""
        lines, answer = self.command("stats")
        if answer != "OK":
            raise AssertionError("stats: %s" % answer)
        packs, ptys = {}, {}
        for line in lines:
            parts = line.split()
            fields = dict(p.split("=", 1) for p in parts[2:] if "=" in p)
            if parts[0] == "STATS":
                packs[int(parts[1])] = (int(fields["requests"]), int(fields["replies"]))
            elif parts[0] == "PTYSTATS":
                fields["unplugged"] = "unplugged" in parts[2:]
                ptys[int(parts[1])] = fields
        return {"packs": packs, "ptys": ptys}

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


class TcpPort(Port):
    """The daemon's side of one --tcp bus: a TCP client, read and written like a pty."""

    def __init__(self, addr):  # pylint: disable=super-init-not-called
        self.sock = socket.create_connection(addr, timeout=REPLY_TIMEOUT)
        self.sock.setblocking(False)
        self.fd = self.sock.fileno()

    def close(self):
        self.sock.close()

    def write(self, data):
        self.sock.sendall(data)

    def read(self, want, timeout=REPLY_TIMEOUT):
        deadline = time.monotonic() + timeout
        got = b""
        while len(got) < want:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([self.sock], [], [], left)
            if r:
                chunk = self.sock.recv(4096)
                if not chunk:
                    break  # closed by the simulator
                got += chunk
        return got

    def closed_by_peer(self, timeout=REPLY_TIMEOUT):
        """True if the simulator closed this connection (EOF or reset) within `timeout`."""
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return False
        try:
            return self.sock.recv(100) == b""
        except ConnectionResetError:
            return True


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

    def test_refuse_a_command(self):
        """`refuse I CMD`: exception 01 for that function code, counted per command."""
        self.sim.command("refuse 1 3")
        reply = self.ports[1].transact(read_request(0, 47), 5)
        self.assertEqual(reply[:3], bytes([0x40, 0x83, 0x01]))
        self.sim.command("refuse 1 none")
        self.assertEqual(len(self.ports[1].transact(read_request(0, 47), 99)), 99)
        lines, _ = self.sim.command("stats")
        self.assertIn("STATS 1 requests=2 replies=2 commands=03:2", lines)
        self.assertTrue(self.sim.command("refuse 1 0x100")[1].startswith("ERR"))

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
        self.assertEqual([l for l in lines if l.startswith("STATS ")],
                         ["STATS 1 requests=2 replies=2 commands=03:2",
                          "STATS 2 requests=0 replies=0 commands=-"])
        # Then one PTYSTATS line per pty: its packs and the bytes it received (2 x 8, 8).
        self.assertEqual([l for l in lines if not l.startswith("STATS ")],
                         ["PTYSTATS 1 packs=1 rx=16 badreq=0", "PTYSTATS 2 packs=2 rx=8 badreq=0"])

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

    def test_bad_layouts(self):
        for args in (["--packs", "0"], ["--bus", "1,1"], ["--bus", "1,,"], ["--bus", "248"],
                     ["--slave", "0"], ["--protocol", "ascii"], ["--noise"],
                     ["--packs", "40", "--bus", ",".join(str(i) for i in range(1, 30))]):
            r = subprocess.run([SIM, *args], stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=5)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertEqual(r.stdout, b"", args)
        # legacy addresses run 0..255
        self.sim = Sim("--protocol", "eg4_legacy", "--packs", "1", "--slave", "0", "--bus", "255")
        self.assertEqual(self.sim.slaves, {1: [0], 2: [255]})

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


class SimBusTest(unittest.TestCase):
    """--bus: several slaves on one pty, each answering only its own id."""

    def setUp(self):
        if not SIM or not os.access(SIM, os.X_OK):
            self.skipTest("BMS_SIM is not set to the bms-sim binary")
        # pack 1 on pty 1 (slave 0x40); packs 2..5 = slaves 1..4 on pty 2; 6, 7 on pty 3
        self.sim = Sim("--packs", "1", "--bus", "1,2,3,4", "--bus", "0x10,7")
        self.ports = {i: Port(p) for i, p in self.sim.ptys.items()}

    def tearDown(self):
        for p in getattr(self, "ports", {}).values():
            p.close()
        if hasattr(self, "sim"):
            self.sim.stop()

    def read(self, pty, slave):
        reply = self.ports[pty].transact(read_request(0, 47, slave=slave), 99)
        self.assertEqual(len(reply), 99, reply.hex())
        self.assertTrue(crc_ok(reply), reply.hex())
        self.assertEqual(reply[:3], bytes([slave, 0x03, 94]))
        return struct.unpack(">47H", reply[3:-2])

    def test_layout(self):
        self.assertEqual(sorted(self.sim.ptys), [1, 2, 3])
        self.assertEqual(self.sim.slaves, {1: [SLAVE], 2: [1, 2, 3, 4], 3: [16, 7]})
        st = self.sim.stats()
        self.assertEqual(sorted(st["packs"]), [1, 2, 3, 4, 5, 6, 7])
        self.assertEqual({i: p["packs"] for i, p in st["ptys"].items()},
                         {1: "1", 2: "2,3,4,5", 3: "6,7"})

    def test_own_slave_answers_other_silent(self):
        regs = self.read(2, 2)
        self.assertEqual((regs[29] << 16) | regs[30], 12 + 3)  # pack 3 = slave 2 of the bus
        self.ports[2].write(read_request(0, 47, slave=9))
        self.assertEqual(self.ports[2].quiet(), b"")
        self.ports[2].write(read_request(0, 47, slave=SLAVE))  # the --packs pack's id
        self.assertEqual(self.ports[2].quiet(), b"")
        self.read(3, 16)
        self.read(1, SLAVE)
        st = self.sim.stats()["packs"]
        self.assertEqual(st[3], (1, 1))
        self.assertEqual(st[1], (1, 1))
        self.assertEqual(st[6], (1, 1))
        self.assertEqual(st[2], (0, 0))

    def test_slaves_back_to_back(self):
        """Two slaves polled one after the other, each reply paced at the wire speed."""
        t0 = time.monotonic()
        cycles = []
        for slave in (1, 4, 1, 4):
            regs = self.read(2, slave)
            cycles.append((regs[29] << 16) | regs[30])
        self.assertGreaterEqual(time.monotonic() - t0, 4 * 99 * 10 / 9600.0)
        self.assertEqual(cycles, [12 + 2, 12 + 5, 12 + 2, 12 + 5])

    def test_half_duplex(self):
        """A request arriving while a reply is in flight is dropped."""
        port = self.ports[2]
        port.write(read_request(0, 47, slave=1))
        time.sleep(0.03)  # the reply to slave 1 is on its way (107 ms at 9600 baud)
        port.write(read_request(0, 47, slave=2))
        got = port.read(99 * 2, timeout=0.6)
        self.assertEqual(len(got), 99, got.hex())
        self.assertEqual(got[0], 1)
        st = self.sim.stats()["packs"]
        self.assertEqual(st[2], (1, 1))
        self.assertEqual(st[3], (0, 0))

    def test_fault_by_pack_number(self):
        self.assertEqual(self.sim.command("fault 3 silence")[1], "OK")  # bus slave 2
        self.ports[2].write(read_request(0, 47, slave=2))
        self.assertEqual(self.ports[2].quiet(), b"")
        self.read(2, 1)
        self.read(2, 3)
        self.assertEqual(self.sim.command("fault 7 badcrc")[1], "OK")  # slave 7 on pty 3
        reply = self.ports[3].transact(read_request(0, 47, slave=7), 99)
        self.assertEqual(len(reply), 99)
        self.assertFalse(crc_ok(reply))
        self.assertTrue(self.sim.command("fault 8 silence")[1].startswith("ERR"))


class SimLegacyTest(unittest.TestCase):
    """--protocol legacy: 7E ADR CMD LEN DATA CHK 0D (protocols/README.md section 2)."""

    def setUp(self):
        if not SIM or not os.access(SIM, os.X_OK):
            self.skipTest("BMS_SIM is not set to the bms-sim binary")
        self.sim = Sim("--protocol", "eg4_legacy", "--packs", "1", "--bus", "0,2,4")
        self.ports = {i: Port(p) for i, p in self.sim.ptys.items()}

    def tearDown(self):
        for p in getattr(self, "ports", {}).values():
            p.close()
        if hasattr(self, "sim"):
            self.sim.stop()

    def status(self, pty, addr):
        reply = self.ports[pty].transact(legacy_request(addr), 94)
        self.assertEqual(len(reply), 94, reply.hex())
        self.assertEqual(reply[:4], bytes([0x7E, addr, 0x01, 88]))
        self.assertEqual(reply[-1], 0x0D)
        self.assertEqual(reply[-2], legacy_chk(reply[:-2]), reply.hex())
        return legacy_groups(reply[4:-2])

    def test_checksum_known_answers(self):
        """The rule of the test's own helper, against the captured requests."""
        for addr, chk in ((0, 0x00), (1, 0xFE), (2, 0xFC), (4, 0xF8), (8, 0xF0)):
            self.assertEqual(legacy_request(addr), bytes([0x7E, addr, 1, 0, chk, 0x0D]))

    def test_status_reply(self):
        self.assertEqual(self.sim.slaves, {1: [1], 2: [0, 2, 4]})
        # exactly the captured request bytes, default legacy address 1
        reply = self.ports[1].transact(bytes.fromhex("7E010100FE0D"), 94)
        self.assertEqual(len(reply), 94, reply.hex())
        self.assertEqual(reply[-2], legacy_chk(reply[:-2]))
        for pty, addr, pack in ((1, 1, 1), (2, 0, 2), (2, 4, 4)):
            g = self.status(pty, addr)
            self.assertEqual(sorted(g), list(range(1, 11)))
            self.assertEqual([len(g[i]) for i in range(1, 11)], [16, 1, 1, 1, 6, 5, 1, 1, 1, 1])
            for raw in g[1]:
                self.assertEqual(raw & 0xC000, 0xC000)  # real frames set bits 15 and 14
            cells = [raw & 0x3FFF for raw in g[1]]
            for mv in cells:
                self.assertTrue(3000 <= mv <= 3600, cells)
            self.assertLessEqual(max(cells) - min(cells), 15)
            amps = (30000 - g[2][0]) / 100.0
            self.assertLessEqual(abs(amps), 25.0)
            self.assertTrue(0 <= g[3][0] <= 10000)          # SoC x 100
            self.assertEqual(g[4][0], 10000)                # 100.00 Ah
            for t in g[5]:
                self.assertNotEqual(t >> 8, 0)              # flags in the high byte
                self.assertTrue(15 <= (t & 0xFF) - 50 <= 30, g[5])
            self.assertEqual(g[7][0], 12 + pack)            # cycles
            self.assertLess(abs(g[8][0] * 10 - sum(cells)), 1000)  # V x 100 vs cells
            self.assertEqual(g[9][0], 10000)                # SoH 100.00 %

    def test_firmware(self):
        reply = self.ports[2].transact(legacy_request(2, 0x33), 6 + 8)
        self.assertEqual(reply[:3], bytes([0x7E, 2, 0x33]))
        self.assertEqual(len(reply), 6 + reply[3])
        self.assertEqual(reply[-2], legacy_chk(reply[:-2]))
        self.assertTrue(reply[4:-2].decode("ascii").startswith("LP4-V"), reply)

    def test_bad_checksum_and_others_ignored(self):
        port = self.ports[1]
        port.write(bytes.fromhex("7E010100FF0D"))  # bad CHK
        self.assertEqual(port.quiet(), b"")
        port.write(legacy_request(2))  # not on pty 1
        self.assertEqual(port.quiet(), b"")
        port.write(legacy_request(1, 0x7A))  # a command the pack does not know
        self.assertEqual(port.quiet(), b"")
        # noise, then a good request: resynchronised
        reply = port.transact(b"\x00\x7e\x55" + legacy_request(1), 94)
        self.assertEqual(len(reply), 94)
        # the start of a long frame that never completes is given up after a quiet spell
        port.write(bytes([0x7E, 0x01, 0x01, 0xFF, 0x00]))
        self.assertEqual(port.quiet(0.15), b"")
        reply = port.transact(legacy_request(1), 94)
        self.assertEqual(len(reply), 94)
        st = self.sim.stats()
        self.assertGreaterEqual(int(st["ptys"][1]["badreq"]), 1)
        self.assertEqual(st["packs"][1], (3, 2))
        self.assertEqual(int(st["ptys"][2]["badreq"]), 0)

    def test_paced(self):
        t0 = time.monotonic()
        self.status(2, 2)
        self.assertGreaterEqual(time.monotonic() - t0, 94 * 10 / 9600.0)

    def test_faults(self):
        port = self.ports[2]
        self.sim.command("fault 3 badcrc")  # address 2 on pty 2
        reply = port.transact(legacy_request(2), 94)
        self.assertEqual(len(reply), 94)
        self.assertNotEqual(reply[-2], legacy_chk(reply[:-2]))
        self.sim.command("fault 3 exception")  # no exceptions here: silence
        port.write(legacy_request(2))
        self.assertEqual(port.quiet(), b"")
        self.sim.command("fault 3 truncate")
        self.assertEqual(len(port.transact(legacy_request(2), 94, timeout=0.5)), 47)
        self.sim.command("fault 3 wrongslave")
        reply = port.transact(legacy_request(2), 94)
        self.assertEqual(reply[1], 3)
        self.assertEqual(reply[-2], legacy_chk(reply[:-2]))
        self.sim.command("clear 3")
        self.status(2, 2)


class SimMasterTest(unittest.TestCase):
    """--master: the simulator plays the bus master; a listener only listens."""

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

    def listen(self, seconds):
        got, deadline = b"", time.monotonic() + seconds
        while time.monotonic() < deadline:
            got += self.port.read(1 << 16, timeout=deadline - time.monotonic())
        return got

    def test_listener_sees_pairs(self):
        self.sim = Sim("--master", "100", "--bus", "1,2")
        self.port = Port(self.sim.ptys[1])
        frames = rtu_frames(self.listen(1.5))
        # Each request (47 registers from 0) is followed by the same slave's 99-byte reply.
        pairs = [(a, b) for a, b in zip(frames, frames[1:]) if a[0] == "req" and b[0] == "rsp"]
        self.assertGreaterEqual(len(pairs), 6, frames)
        for req, rsp in pairs:
            self.assertEqual(req[2], read_request(0, 47, slave=req[1]))
            self.assertEqual(rsp[1], req[1])
            self.assertEqual(len(rsp[2]), 99)
        slaves = [req[1] for req, _ in pairs]
        self.assertEqual(set(slaves), {1, 2})
        self.assertTrue(all(a != b for a, b in zip(slaves, slaves[1:])), slaves)  # in turn
        # Paced: 107 bytes of request + reply take 111 ms at 9600 baud.
        self.assertLessEqual(len(pairs), int(1.5 / (107 * 10 / 9600.0)) + 1)
        # The listener never wrote: nothing received. Then one byte: counted.
        self.assertEqual(self.sim.stats()["ptys"][1]["rx"], "0")
        self.port.write(b"\x55")
        time.sleep(0.1)
        self.assertEqual(self.sim.stats()["ptys"][1]["rx"], "1")
        st = self.sim.stats()["packs"]
        self.assertGreaterEqual(min(st[1][1], st[2][1]), 3)

    def test_noise_and_silent_slave(self):
        self.sim = Sim("--master", "50", "--noise", "--bus", "1,2,3", "--fault", "2:silence")
        self.port = Port(self.sim.ptys[1])
        stream = self.listen(2.0)
        frames = rtu_frames(stream)
        reqs = {f[1] for f in frames if f[0] == "req"}
        rsps = {f[1] for f in frames if f[0] == "rsp"}
        self.assertEqual(reqs, {1, 2, 3})
        self.assertEqual(rsps, {1, 3})  # pack 2 (slave 2) is silent
        framed = sum(len(f[2]) for f in frames)
        self.assertGreater(len(stream), framed)  # some noise between exchanges
        self.assertEqual(self.sim.stats()["ptys"][1]["rx"], "0")

    def test_master_identity(self):
        self.sim = Sim("--master", "200", "--master-identity", "--packs", "0", "--bus", "1")
        self.port = Port(self.sim.ptys[1])
        ident = read_request(105, 23, slave=1)
        self.assertEqual(ident, bytes.fromhex("010300690017d5d8"))  # 01 03 0069 0017 CRC
        stream, deadline, i = b"", time.monotonic() + 3.0, -1
        while time.monotonic() < deadline:
            stream += self.port.read(1, timeout=deadline - time.monotonic())
            i = stream.find(ident)
            if i >= 0 and len(stream) >= i + 8 + 51:
                break
        self.assertGreaterEqual(i, 0, stream.hex())
        rsp = stream[i + 8:i + 8 + 51]
        self.assertEqual(len(rsp), 51, rsp.hex())
        self.assertTrue(crc_ok(rsp), rsp.hex())
        self.assertEqual(rsp[:3], bytes([1, 0x03, 46]))
        regs = struct.unpack(">23H", rsp[3:-2])
        self.assertEqual(ascii_regs(regs[12:15]), "V03R04")  # registers 117..119
        # The block read goes on every cycle; the identity read follows it every 5th cycle.
        stream += self.listen(2.5)
        block = read_request(0, 47, slave=1)
        reqs = [f[2] for f in rtu_frames(stream) if f[0] == "req"]
        self.assertTrue(set(reqs) <= {block, ident}, reqs)
        at = [k for k, r in enumerate(reqs) if r == ident]
        self.assertGreaterEqual(len(at), 2, reqs)
        for a, b in zip(at, at[1:]):
            self.assertEqual(b - a, 6, reqs)  # 5 block reads, then the identity read again
        for a in at:
            self.assertEqual(reqs[a - 1] if a else block, block)

    def test_master_identity_needs_master_and_modbus(self):
        for args in (["--master-identity"],
                     ["--master", "100", "--master-identity", "--protocol", "eg4_legacy"]):
            r = subprocess.run([SIM, *args], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=5)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(b"--master-identity", r.stderr)

    def test_legacy_master(self):
        self.sim = Sim("--master", "100", "--protocol", "eg4_legacy", "--bus", "1,2")
        self.port = Port(self.sim.ptys[1])
        stream = self.listen(1.0)
        seen = set()
        for addr in (1, 2):
            req = legacy_request(addr)
            i = stream.find(req)
            self.assertGreaterEqual(i, 0, stream.hex())
            rsp = stream[i + 6:i + 6 + 94]
            self.assertEqual(rsp[:4], bytes([0x7E, addr, 0x01, 88]), rsp.hex())
            self.assertEqual(rsp[-2], legacy_chk(rsp[:-2]))
            seen.add(addr)
        self.assertEqual(seen, {1, 2})


class SimUnplugTest(unittest.TestCase):
    """unplug / replug: a USB adapter pulled and plugged back under the same link."""

    def setUp(self):
        if not SIM or not os.access(SIM, os.X_OK):
            self.skipTest("BMS_SIM is not set to the bms-sim binary")
        self.dir = tempfile.TemporaryDirectory()
        self.sim = Sim("--packs", "2", "--link", self.dir.name)
        self.ports = []

    def tearDown(self):
        for p in self.ports:
            try:
                p.close()
            except OSError:
                pass
        self.sim.stop()
        self.dir.cleanup()

    def open(self, i):
        port = Port(os.path.join(self.dir.name, "pack%d" % i))
        self.ports.append(port)
        return port

    def block(self, port, slave=SLAVE):
        reply = port.transact(read_request(0, 47, slave=slave), 99)
        self.assertEqual(len(reply), 99)
        self.assertTrue(crc_ok(reply))

    def test_unplug_replug(self):
        link = os.path.join(self.dir.name, "pack1")
        old = self.open(1)
        self.block(old)
        self.assertEqual(self.sim.command("unplug 1"), ([], "OK"))
        self.assertFalse(os.path.lexists(link))
        r, _, _ = select.select([old.fd], [], [], REPLY_TIMEOUT)
        self.assertTrue(r)  # hang-up is readable ...
        try:
            data = os.read(old.fd, 100)
        except OSError as e:
            data = e.errno
        self.assertIn(data, (b"", errno.EIO))  # ... and reads fail
        self.assertTrue(self.sim.stats()["ptys"][1]["unplugged"])
        self.block(self.open(2))  # the other adapter is still there
        self.assertTrue(self.sim.command("unplug 1")[1].startswith("ERR"))

        lines, answer = self.sim.command("replug 1")
        self.assertEqual(answer, "OK")
        self.assertEqual(len(lines), 1)
        tag, idx, path = lines[0].split()
        self.assertEqual((tag, idx), ("PTY", "1"))
        self.assertEqual(os.readlink(link), path)
        self.block(self.open(1))  # the same link path works again
        self.assertTrue(self.sim.command("replug 1")[1].startswith("ERR"))
        self.assertTrue(self.sim.command("unplug 3")[1].startswith("ERR"))
        self.assertEqual(self.sim.stats()["packs"][1], (2, 2))


class SimTcpTest(unittest.TestCase):
    """--tcp: each bus is a TCP listener, as an RS-485-to-Ethernet bridge."""

    def setUp(self):
        if not SIM or not os.access(SIM, os.X_OK):
            self.skipTest("BMS_SIM is not set to the bms-sim binary")
        self.sim = None
        self.conns = []

    def tearDown(self):
        for c in self.conns:
            c.close()
        if self.sim:
            self.sim.stop()

    def start(self, *args):
        self.sim = Sim("--tcp", *args)
        return self.sim

    def connect(self, i):
        c = TcpPort(self.sim.tcp[i])
        self.conns.append(c)
        return c

    def block(self, conn, slave=SLAVE):
        t0 = time.monotonic()
        reply = conn.transact(read_request(0, 47, slave=slave), 99)
        self.assertEqual(len(reply), 99, reply.hex())
        self.assertTrue(crc_ok(reply), reply.hex())
        self.assertEqual(reply[:3], bytes([slave, 0x03, 94]))
        return time.monotonic() - t0

    def test_connect_request_reply(self):
        sim = self.start("--packs", "1", "--bus", "1,2")
        self.assertEqual(sim.ptys, {})
        self.assertEqual(sorted(sim.tcp), [1, 2])
        self.assertEqual(sim.slaves, {1: [SLAVE], 2: [1, 2]})
        ports = set()
        for host, port in sim.tcp.values():
            self.assertEqual(host, "127.0.0.1")
            self.assertTrue(0 < port < 65536)
            ports.add(port)
        self.assertEqual(len(ports), 2)
        elapsed = self.block(self.connect(1))
        self.assertGreater(elapsed, 0.09)  # paced as 99 bytes at 9600 baud (~107 ms)
        bus = self.connect(2)
        self.block(bus, 1)
        self.block(bus, 2)
        bus.write(read_request(0, 47, slave=3))  # no such slave on that bus: silence
        self.assertEqual(bus.quiet(), b"")
        st = sim.stats()
        self.assertEqual(st["packs"], {1: (1, 1), 2: (1, 1), 3: (1, 1)})
        self.assertEqual(int(st["ptys"][1]["rx"]), 8)

    def test_new_connection_replaces_the_old(self):
        self.start("--packs", "1")
        old = self.connect(1)
        self.block(old)
        new = self.connect(1)
        self.assertTrue(old.closed_by_peer())
        self.block(new)

    def test_legacy_over_tcp(self):
        self.start("--protocol", "eg4_legacy", "--packs", "1")
        reply = self.connect(1).transact(legacy_request(1), 94)
        self.assertEqual(len(reply), 94, reply.hex())
        self.assertEqual(reply[-2], legacy_chk(reply[:-2]))

    def test_pylontech_over_tcp(self):
        self.start("--protocol", "pylontech", "--bus", "2,3")
        conn = self.connect(1)
        conn.write(ascii_request(3, 0x46, 0x42, b"\x03"))
        _, adr, cid1, rtn, info = ascii_parse(read_ascii(conn))
        self.assertEqual((adr, cid1, rtn, info[1]), (3, 0x46, 0, 3))

    def test_unplug_replug_same_port(self):
        sim = self.start("--packs", "2")
        addr = sim.tcp[1]
        conn = self.connect(1)
        self.block(conn)
        self.assertEqual(sim.command("unplug 1"), ([], "OK"))
        self.assertTrue(conn.closed_by_peer())  # the bridge went away ...
        with self.assertRaises(OSError):        # ... and nobody listens there
            socket.create_connection(addr, timeout=REPLY_TIMEOUT).close()
        self.assertTrue(sim.stats()["ptys"][1]["unplugged"])
        self.block(self.connect(2))  # the other bridge is still there
        lines, answer = sim.command("replug 1")
        self.assertEqual(answer, "OK")
        self.assertEqual(lines, ["TCP 1 %s:%d" % addr])  # the same port again
        self.block(self.connect(1))
        self.assertEqual(sim.stats()["packs"][1], (2, 2))

    def test_refused_with_master(self):
        r = subprocess.run([SIM, "--tcp", "--master", "100"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stdout, b"")


class SimAsciiCodecTest(unittest.TestCase):
    """The test's own ASCII codec against the vendor PDFs' worked examples."""

    def test_known_answers(self):
        self.assertEqual(ascii_lchksum(18) << 12 | 18, 0xD012)  # both PDFs 2.3.2 / 1.3.2
        self.assertEqual(ascii_chksum(b"1203400456ABCEFE"), 0xFC71)  # not the V3.3 PDF's FC72
        self.assertEqual(ascii_request(2, 0x46, 0x42, b"\x02"), b"~20024642E00202FD33\r")
        self.assertEqual(ascii_request(1, 0x4A, 0x42), b"~20014A420000FDA2\r")
        self.assertEqual(ascii_request(1, 0x4A, 0x44), b"~20014A440000FDA0\r")
        # the LifePower4 PDF's analog reply (2.1), checksum D300
        example = (b"~20014A00A0CA0101100C540C810C810C820C810C810C810C810C820C820C820C820C820C82"
                   b"0C820C7E040BCD0BCD0BCD0BCD0BD70BD7000013FD0000271000000F000000640C820C54002E"
                   b"0BCD0BCD000000150000003C0000000A0000001D00000000000000000002001DD300\r")
        ver, adr, cid1, rtn, info = ascii_parse(example)
        self.assertEqual((ver, adr, cid1, rtn, len(info)), (0x20, 1, 0x4A, 0, 101))
        a = lp4_analog(info)
        self.assertEqual(a["cells"][0], 3156)
        self.assertEqual(a["temps"][0], 29.0)
        self.assertEqual((a["volts"], a["full_ah"], a["user"], a["soh"]), (51.17, 100.0, 15, 100))
        self.assertEqual((a["chg_ah"], a["dis_ah"], a["chg_kwh"], a["dis_kwh"]), (21, 60, 10, 29))
        self.assertEqual((a["chg_n"], a["dis_n"]), (2, 29))


class SimPylontechTest(unittest.TestCase):
    """--protocol pylontech: CID1 0x46, modules from address 2 (protocols/README.md section 3)."""

    def setUp(self):
        if not SIM or not os.access(SIM, os.X_OK):
            self.skipTest("BMS_SIM is not set to the bms-sim binary")
        self.sim = Sim("--protocol", "pylontech", "--packs", "1", "--bus", "2,3,4")
        self.ports = {i: Port(p) for i, p in self.sim.ptys.items()}

    def tearDown(self):
        for p in getattr(self, "ports", {}).values():
            p.close()
        if hasattr(self, "sim"):
            self.sim.stop()

    def ask(self, pty, adr, cid2, info=b"", rtn=0):
        self.ports[pty].write(ascii_request(adr, 0x46, cid2, info))
        reply = read_ascii(self.ports[pty])
        ver, radr, cid1, rrtn, rinfo = ascii_parse(reply)
        self.assertEqual((ver, radr, cid1, rrtn), (0x20, adr, 0x46, rtn), reply)
        return rinfo

    def check_module(self, m, pack):
        self.assertEqual(len(m["cells"]), 16)
        for mv in m["cells"]:
            self.assertTrue(3000 <= mv <= 3600, m["cells"])
        self.assertEqual(len(m["temps"]), 6)
        for c in m["temps"]:
            self.assertTrue(15.0 <= c <= 30.0, m["temps"])
        self.assertLessEqual(abs(m["amps"]), 25.0)
        self.assertLess(abs(m["mv"] - sum(m["cells"])), 1000)
        # 100 Ah > 65 Ah: user-defined 4, the 16-bit capacities FFFF, the 3-byte ones in mAh
        self.assertEqual((m["user"], m["remain1"], m["total1"]), (4, 0xFFFF, 0xFFFF))
        self.assertEqual(m["total2"], 100000)
        self.assertTrue(0 <= m["remain2"] <= 100000)
        self.assertEqual(m["cycles"], 12 + pack)

    def test_analog_module(self):
        self.assertEqual(self.sim.slaves, {1: [2], 2: [2, 3, 4]})
        info = self.ask(2, 2, 0x42, b"\x02")
        f = Fields(info)
        f.take(1)  # INFOFLAG
        self.assertEqual(f.take(1), 2)  # the command value: this module
        self.check_module(pylon_module(f), 2)
        self.assertTrue(f.done())
        f = Fields(self.ask(2, 4, 0x42, b"\x04"))
        f.take(2)
        self.check_module(pylon_module(f), 4)
        f = Fields(self.ask(1, 2, 0x42, b"\x02"))  # the --packs pty: pack 1 at address 2
        f.take(2)
        self.check_module(pylon_module(f), 1)

    def test_analog_all_modules(self):
        f = Fields(self.ask(2, 2, 0x42, b"\xff"))
        f.take(1)
        self.assertEqual(f.take(1), 3)  # the module count
        for pack in (2, 3, 4):
            self.check_module(pylon_module(f), pack)
        self.assertTrue(f.done())
        f = Fields(self.ask(1, 2, 0x42, b"\xff"))
        f.take(1)
        self.assertEqual(f.take(1), 1)
        self.check_module(pylon_module(f), 1)
        self.assertTrue(f.done())

    def test_alarms(self):
        for cmd, count in ((b"\x03", 1), (b"\xff", 3)):
            f = Fields(self.ask(2, 3, 0x44, cmd))
            f.take(1)  # DATAFLAG
            self.assertEqual(f.take(1), cmd[0] if count == 1 else 3)
            for _ in range(count):
                self.assertEqual(f.take(1), 16)
                self.assertEqual([f.take(1) for _ in range(16)], [0] * 16)
                self.assertEqual(f.take(1), 6)
                self.assertEqual([f.take(1) for _ in range(6 + 3)], [0] * 9)
                f.take(1)  # status 1
                self.assertEqual(f.take(1) & 0x06, 0x06)  # both MOSFETs on
                f.take(1)
                self.assertEqual((f.take(1), f.take(1)), (0, 0))  # no cell errors
            self.assertTrue(f.done())

    def test_other_commands(self):
        f = Fields(self.ask(2, 2, 0x47))
        f.take(1)
        limits = [f.take(2, signed=True) for _ in range(12)]
        self.assertTrue(f.done())
        self.assertEqual(limits[0], 3650)                     # cell high voltage, mV
        self.assertEqual((limits[3] - 2731) / 10.0, 50.0)     # charge high temperature
        self.assertGreater(limits[5], 0)                      # charge current limit, 0.1 A
        self.assertLess(limits[11], 0)                        # discharge, "with symbol"
        self.assertEqual(self.ask(2, 2, 0x4F), b"")           # the version is the reply's VER
        info = self.ask(2, 2, 0x51)
        self.assertEqual(len(info), 32)
        self.assertTrue(info[:10].startswith(b"LP4V2"), info)
        self.assertEqual(info[10:12], bytes([3, 4]))          # V03R04
        info = self.ask(2, 3, 0x92, b"\x03")
        self.assertEqual(len(info), 10)
        f = Fields(info)
        self.assertEqual(f.take(1), 3)
        chg_mv, dsg_mv = f.take(2), f.take(2)
        self.assertTrue(dsg_mv < chg_mv <= 58400)
        self.assertGreater(f.take(2, signed=True), 0)
        self.assertLess(f.take(2, signed=True), 0)
        self.assertEqual(f.take(1) & 0xC0, 0xC0)              # charge and discharge enabled
        info = self.ask(2, 4, 0x93, b"\x04")
        self.assertEqual(info[0], 4)
        self.assertTrue(info[1:].rstrip(b"\0").decode().startswith("LP4V2SIM"), info)
        self.assertEqual(len(info), 17)
        self.assertEqual(self.ask(2, 2, 0x96, b"\x02"), bytes([2, 3, 4, 3, 4, 0]))

    def test_return_codes(self):
        port = self.ports[2]
        good = ascii_request(2, 0x46, 0x42, b"\x02")
        port.write(good[:-5] + b"%04X\r" % ((int(good[-5:-1], 16) + 1) & 0xFFFF))
        self.assertEqual(ascii_parse(read_ascii(port)), (0x20, 2, 0x46, 0x02, b""))  # CHKSUM
        body = b"20024642" + b"%04X" % (((ascii_lchksum(2) + 1) & 0xF) << 12 | 2) + b"02"
        port.write(b"~" + body + b"%04X\r" % ascii_chksum(body))
        self.assertEqual(ascii_parse(read_ascii(port)), (0x20, 2, 0x46, 0x03, b""))  # LCHKSUM
        self.ask(2, 2, 0x61, rtn=0x04)                       # unknown CID2
        self.ask(2, 3, 0x42, b"\x02", rtn=0x06)              # command not matching ADR
        self.ask(2, 3, 0x42, rtn=0x05)                       # no command byte
        port.write(ascii_request(5, 0x46, 0x42, b"\x05"))    # no module 5 on this bus
        self.assertEqual(port.quiet(), b"")
        port.write(ascii_request(2, 0x4A, 0x42))             # a LifePower4 frame: not for us
        self.assertEqual(port.quiet(), b"")
        port.write(good.lower())                             # lower case is not a frame
        self.assertEqual(port.quiet(), b"")
        reply = port.transact(b"~~12\x00" + good, 1)        # resynchronised after noise
        self.assertTrue(reply)
        self.assertEqual(ascii_parse(reply + read_ascii(port))[3], 0)
        self.assertGreaterEqual(int(self.sim.stats()["ptys"][2]["badreq"]), 2)

    def test_faults(self):
        port = self.ports[2]
        self.assertEqual(self.sim.command("fault 3 exception"), ([], "OK"))
        self.ask(2, 3, 0x42, b"\x03", rtn=0x06)
        self.assertEqual(self.sim.command("fault 3 wrongslave"), ([], "OK"))
        port.write(ascii_request(3, 0x46, 0x42, b"\x03"))
        self.assertEqual(ascii_parse(read_ascii(port))[1], 4)
        self.assertEqual(self.sim.command("fault 3 badcrc"), ([], "OK"))
        port.write(ascii_request(3, 0x46, 0x42, b"\x03"))
        reply = read_ascii(port)
        self.assertTrue(all(c in b"0123456789ABCDEF" for c in reply[1:-1]), reply)
        self.assertNotEqual(int(reply[-5:-1], 16), ascii_chksum(reply[1:-5]))
        self.assertEqual(self.sim.command("fault 3 zeros"), ([], "OK"))
        f = Fields(self.ask(2, 3, 0x42, b"\x03"))
        f.take(2)
        m = pylon_module(f)
        self.assertEqual((m["cells"], m["user"]), ([0] * 16, 4))
        self.assertEqual(self.sim.command("fault 3 silence"), ([], "OK"))
        port.write(ascii_request(3, 0x46, 0x42, b"\x03"))
        self.assertEqual(port.quiet(), b"")


class SimLp4AsciiTest(unittest.TestCase):
    """--protocol lp4ascii: CID1 0x4A, ADR 1..15, requests without INFO."""

    def setUp(self):
        if not SIM or not os.access(SIM, os.X_OK):
            self.skipTest("BMS_SIM is not set to the bms-sim binary")
        self.sim = None
        self.ports = []

    def tearDown(self):
        for p in self.ports:
            p.close()
        if self.sim:
            self.sim.stop()

    def start(self, *args):
        self.sim = Sim("--protocol", "lp4_ascii", *args)
        return self.sim

    def ask(self, port, adr, cid2, info=b"", rtn=0):
        port.write(ascii_request(adr, 0x4A, cid2, info))
        reply = read_ascii(port)
        ver, radr, cid1, rrtn, rinfo = ascii_parse(reply)
        self.assertEqual((ver, radr, cid1, rrtn), (0x20, adr, 0x4A, rtn), reply)
        return rinfo

    def check_analog(self, a, pack):
        self.assertEqual(len(a["cells"]), 16)
        for mv in a["cells"]:
            self.assertTrue(3000 <= mv <= 3600, a["cells"])
        self.assertEqual(len(a["temps"]), 6)
        for c in a["temps"]:
            self.assertTrue(15.0 <= c <= 30.0, a["temps"])
        self.assertLessEqual(abs(a["amps"]), 25.0)
        self.assertLess(abs(a["volts"] * 1000 - sum(a["cells"])), 1000)
        self.assertEqual((a["full_ah"], a["cycles"], a["user"], a["soh"]), (100.0, 12 + pack, 15, 100))
        self.assertTrue(0 <= a["soc"] <= 100)
        self.assertLessEqual(abs(a["remain_ah"] - a["soc"]), 1.0)
        self.assertEqual((a["max_mv"], a["min_mv"]), (max(a["cells"]), min(a["cells"])))
        self.assertEqual(a["diff_mv"], a["max_mv"] - a["min_mv"])
        # lifetime totals: about one full capacity per cycle, energy at about 51 V
        cycles = 12 + pack
        self.assertTrue(cycles * 10000 <= a["dis_ah"] <= cycles * 10000 + 100, a)
        self.assertTrue(a["dis_ah"] <= a["chg_ah"] <= a["dis_ah"] + 10100, a)
        self.assertLess(abs(a["chg_kwh"] - a["chg_ah"] * 0.512), 2 + a["chg_ah"] * 0.01)
        self.assertGreaterEqual(a["chg_h"], 3 * cycles)
        self.assertGreaterEqual(a["chg_n"] + a["dis_n"], 2 * cycles)

    def test_analog_reply(self):
        sim = self.start("--packs", "1", "--bus", "1,2,15")
        self.assertEqual(sim.slaves, {1: [1], 2: [1, 2, 15]})
        bus = Port(sim.ptys[2])
        self.ports.append(bus)
        first = {}
        for adr, pack in ((1, 2), (2, 3), (15, 4)):
            info = self.ask(bus, adr, 0x42)
            self.assertEqual(len(info), 101)
            first[adr] = lp4_analog(info)
            self.check_analog(first[adr], pack)
        time.sleep(0.5)
        keys = ("chg_ah", "dis_ah", "chg_kwh", "dis_kwh", "chg_h", "dis_h", "chg_n", "dis_n")
        for adr, pack in ((1, 2), (2, 3), (15, 4)):
            a = lp4_analog(self.ask(bus, adr, 0x42))
            self.check_analog(a, pack)
            for k in keys:  # the totals never go back
                self.assertGreaterEqual(a[k], first[adr][k], k)

    def test_alarms_and_return_codes(self):
        sim = self.start("--packs", "1")
        port = Port(sim.ptys[1])
        self.ports.append(port)
        f = Fields(self.ask(port, 1, 0x44))
        self.assertEqual(len(f.data), 42)
        f.take(1)
        self.assertEqual((f.take(1), f.take(1)), (1, 16))
        self.assertEqual([f.take(1) for _ in range(16)], [0] * 16)
        self.assertEqual(f.take(1), 4)
        self.assertEqual([f.take(1) for _ in range(8)], [0] * 8)  # 4 cells, env, MOS, I, V
        self.assertEqual(f.take(1), 9)                             # user-defined
        f.take(1)                                                  # balance event
        self.assertEqual((f.take(1), f.take(2), f.take(1)), (0, 0, 0))  # V, T, I events
        f.take(1)
        self.assertEqual(f.take(1), 0x03)                          # both MOSFETs on
        self.assertIn(f.take(1), (0x01, 0x02, 0x08))               # system status
        f.take(4)
        self.assertEqual(f.take(1), 0)
        self.assertTrue(f.done())
        self.ask(port, 1, 0x42, b"\x01", rtn=0x05)  # requests carry no INFO
        self.ask(port, 1, 0x47, rtn=0x04)
        good = ascii_request(1, 0x4A, 0x42)
        port.write(good[:-5] + b"%04X\r" % ((int(good[-5:-1], 16) ^ 0x10)))
        self.assertEqual(ascii_parse(read_ascii(port)), (0x20, 1, 0x4A, 0x02, b""))
        port.write(ascii_request(2, 0x4A, 0x42))  # nobody at 2
        self.assertEqual(port.quiet(), b"")
        port.write(ascii_request(1, 0x46, 0x42, b"\x01"))  # a Pylontech frame
        self.assertEqual(port.quiet(), b"")

    def test_over_tcp(self):
        sim = self.start("--tcp", "--bus", "3")
        conn = TcpPort(sim.tcp[1])
        self.ports.append(conn)
        self.check_analog(lp4_analog(self.ask(conn, 3, 0x42)), 1)
        self.assertEqual(sim.command("unplug 1"), ([], "OK"))
        self.assertTrue(conn.closed_by_peer())
        lines, answer = sim.command("replug 1")
        self.assertEqual((lines, answer), (["TCP 1 %s:%d" % sim.tcp[1]], "OK"))
        conn = TcpPort(sim.tcp[1])
        self.ports.append(conn)
        self.check_analog(lp4_analog(self.ask(conn, 3, 0x42)), 1)

    def test_address_range(self):
        for bad in (("--bus", "0"), ("--bus", "16"), ("--slave", "16")):
            r = subprocess.run([SIM, "--protocol", "lp4_ascii", *bad], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
            self.assertEqual(r.returncode, 2, bad)


if __name__ == "__main__":
    unittest.main(verbosity=2)
