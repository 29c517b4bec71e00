#!/usr/bin/env python3
"""Buses reached over TCP: a Modbus TCP gateway (modbus-tcp://) and RS-485-to-Ethernet
bridges carrying the raw bytes (tcp://), including a bridge that goes away and comes back."""
import json
import os
import socket
import struct
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_buses import BusSim, bus_config  # noqa: E402


def sample_registers():
    """The eg4-battery script's sample pack (its _mock_modbus_regs at the centre of its
    ranges), registers 0..127 with an identity at 105..127."""
    regs = [0] * 128
    cells = [3280, 3285, 3279, 3282, 3288, 3276, 3281, 3283,
             3280, 3284, 3287, 3272, 3281, 3280, 3279, 3282]
    regs[2:18] = cells
    regs[0] = sum(cells) // 10
    regs[1] = 30000 - 750
    regs[18:25] = [21, 21, 20, 54, 100, 100, 55]
    regs[30], regs[31], regs[32], regs[36], regs[37] = 1, 5493, 10752, 16, 1000
    ident = b"GATEWAY-PACK".ljust(24, b" ") + b"V09R09" + b"GW00000000000042"
    for i in range(0, len(ident), 2):
        regs[105 + i // 2] = ident[i] << 8 | ident[i + 1]
    return regs


class ModbusTcpGateway:
    """A minimal Modbus TCP server (function 0x03 only) on a free loopback port."""

    def __init__(self, unit, regs):
        self.unit, self.regs = unit, regs
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                while True:
                    req = conn.recv(12)
                    if len(req) < 12:
                        break
                    tid, pid, length, unit, fc, start, count = struct.unpack(">HHHBBHH", req)
                    self.requests += 1
                    if unit != self.unit:
                        continue  # a gateway gets no answer from a missing unit
                    if fc != 3 or start + count > len(self.regs):
                        pdu = struct.pack(">BB", fc | 0x80, 2)
                    else:
                        data = b"".join(struct.pack(">H", r) for r in self.regs[start:start + count])
                        pdu = struct.pack(">BB", fc, len(data)) + data
                    conn.sendall(struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu)

    def stop(self):
        self.stopping = True
        self.sock.close()


class TcpTest(harness.StackTest):
    def test_modbus_tcp_gateway_reads_the_sample_pack(self):
        broker = self.start_broker()
        cap = self.start_capture()
        gw = ModbusTcpGateway(0x40, sample_registers())
        self.addCleanup(gw.stop)
        cfg = self.write_config(bus_config(broker.port, "modbus_per_pack", None,
                                           [("gw_1", "0x40", "modbus-tcp://127.0.0.1:%d" % gw.port)]))
        self.start_daemon(cfg)
        got = cap.wait_for(lambda m: m[1] == harness.state_topic("gw_1"), 15)
        self.assertTrue(got, "no state through the Modbus TCP gateway")
        s = json.loads(got[2])
        self.assertEqual((s["soc"], s["soh"], s["remaining_ah"]), (55, 100, 54))
        self.assertEqual(s["full_capacity_ah"], 100.0)
        self.assertEqual(s["temperature_pcb"], 21)
        self.assertEqual(s["pack_current"], 292.5)  # register 1 = 29250, s16 x 10 mA
        soc = cap.wait_for(lambda m: m[1] == harness.discovery_topic("sensor", "gw_1", "soc")
                           and m[2], 10)
        self.assertTrue(soc, "no discovery config for gw_1 soc")
        dev = json.loads(soc[2])
        self.assertEqual(dev["device"]["model"], "GATEWAY-PACK")
        self.assertEqual(dev["device"]["sw_version"], "V09R09")

    def start_bus_sim(self, *args):
        s = BusSim(list(args), self.dir)
        self.addCleanup(s.stop)
        return s

    def test_modbus_over_a_bridge_that_goes_away_and_comes_back(self):
        broker = self.start_broker()
        cap = self.start_capture()
        sim = self.start_bus_sim("--tcp", "--packs", "1")
        url = "tcp://%s" % sim.tcp[1]
        cfg = self.write_config(bus_config(broker.port, "modbus_per_pack", None,
                                           [("bridged_1", "0x40", url)]))
        daemon = self.start_daemon(cfg)
        got = cap.wait_for(lambda m: m[1] == harness.state_topic("bridged_1"), 15)
        self.assertTrue(got, "no state through the bridge")
        s = json.loads(got[2])
        cells = [s["cell_%02d_voltage" % i] for i in range(1, 17)]
        self.assertAlmostEqual(s["pack_voltage"], sum(cells), delta=0.05)
        mark = cap.mark()
        sim.command("unplug 1")
        self.assertTrue(cap.wait_topic(harness.avail_topic("bridged_1"), "offline", 15, mark),
                        "the pack stayed online with its bridge gone")
        mark = cap.mark()
        sim.command("replug 1")
        self.assertTrue(cap.wait_topic(harness.avail_topic("bridged_1"), "online", 40, mark),
                        "the pack did not come back with its bridge")
        self.assertTrue(cap.wait_for(lambda m: m[1] == harness.state_topic("bridged_1"), 10, mark))
        self.assertIsNone(daemon.proc.poll(), "the daemon exited")

    def test_legacy_packs_over_a_bridge(self):
        broker = self.start_broker()
        cap = self.start_capture()
        sim = self.start_bus_sim("--tcp", "--protocol", "eg4_legacy", "--packs", "0", "--bus", "1,2")
        url = "tcp://%s" % sim.tcp[1]
        cfg = self.write_config(bus_config(broker.port, "active", url,
                                           [("lb_1", 1, None), ("lb_2", 2, None)]))
        self.start_daemon(cfg)
        for name in ("lb_1", "lb_2"):
            got = cap.wait_for(lambda m, n=name: m[1] == harness.state_topic(n), 15)
            self.assertTrue(got, "no state of %s through the bridge" % name)
            self.assertTrue(0 <= json.loads(got[2])["soc"] <= 100)


if __name__ == "__main__":
    unittest.main(verbosity=2)
