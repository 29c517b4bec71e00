#!/usr/bin/env python3
"""What a line does between requests: a reply that comes after its timeout is never taken
for the answer to the next request (serial port, TCP bridge, Modbus TCP gateway), and a
serial port is one master's alone."""
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_buses import BusSim, bus_config  # noqa: E402
from test_tcp import sample_registers  # noqa: E402

# Register 39 of the simulated image steps once per request the pack answers (bms-sim.md).
COUNTER = 39


class LateGateway:
    """A Modbus TCP server for one unit whose register 39 counts the replies it built; one
    reply can be made late. It serves requests in order, as a gateway to an RS-485 bus does,
    so a late reply keeps the next request waiting behind it."""

    def __init__(self, unit):
        self.unit, self.regs = unit, sample_registers()
        self.replies = 0
        self.late_s = 0.0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def late_once(self, seconds):
        with self.lock:
            self.late_s = seconds

    def count(self):
        with self.lock:
            return self.replies

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                while True:
                    req = b""
                    while len(req) < 12:
                        chunk = conn.recv(12 - len(req))
                        if not chunk:
                            break
                        req += chunk
                    if len(req) < 12:
                        break
                    tid, _, _, unit, fc, start, count = struct.unpack(">HHHBBHH", req)
                    with self.lock:
                        self.replies += 1
                        self.regs[COUNTER] = self.replies
                        data = b"".join(struct.pack(">H", r)
                                        for r in self.regs[start:start + count])
                        late, self.late_s = self.late_s, 0.0
                    if late:
                        time.sleep(late)  # the late reply itself, as a slow bus would make it
                    pdu = struct.pack(">BB", fc, len(data)) + data
                    try:
                        conn.sendall(struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu)
                    except OSError:
                        break

    def stop(self):
        self.sock.close()


class LinkTest(harness.StackTest):
    def start_bus_sim(self, *args):
        s = BusSim(list(args), self.dir)
        self.addCleanup(s.stop)
        self.sim = s
        return s

    def sim_requests(self, pack=1):
        for line in self.sim.command("stats"):
            parts = line.split()
            if parts[0] == "STATS" and parts[1] == str(pack):
                return int(dict(p.split("=", 1) for p in parts[2:])["requests"])
        self.fail("no STATS line for pack %d" % pack)

    def check_states_answer_their_requests(self, cap, pack, answered, make_late, n_after=5):
        """Every state carries register 39 of the reply to its own request: read right after a
        state arrives (the next poll is a second away), `answered()` has not moved on since
        that reply. One reply is made late (`make_late()`) after the first state."""
        topic = harness.state_topic(pack)

        def next_state(since, timeout=15):
            got = cap.wait_for(lambda m: m[1] == topic, timeout, since)
            self.assertTrue(got, "no state of %s%s" % (pack, self.diag()))
            return json.loads(got[2])["registers"][COUNTER], answered()

        # The first poll of a connection also reads the identity: start from the second.
        self.assertTrue(cap.wait_until(lambda items: [m for m in items if m[1] == topic][1:],
                                       15), "fewer than 2 states of %s%s" % (pack, self.diag()))
        mark = cap.mark()
        counter, count = next_state(mark)
        offset = counter - count
        make_late()
        for _ in range(n_after):
            mark = cap.mark()
            counter, count = next_state(mark)
            self.assertEqual(counter - offset, count,
                             "a state carried register 39 = %d, the reply to request %d, "
                             "published after request %d: one poll old%s"
                             % (counter, counter - offset, count, self.diag()))

    def test_late_reply_on_a_serial_port_never_shifts_later_states(self):
        broker = self.start_broker()
        cap = self.start_capture()
        sim = self.start_bus_sim("--packs", "1")
        cfg = self.write_config(bus_config(broker.port, "modbus_per_pack", None,
                                           [("late_1", "0x40", sim.port(1))],
                                           timeout_s=0.5, poll_interval_s=1.0))
        daemon = self.start_daemon(cfg)
        self.check_states_answer_their_requests(
            cap, "late_1", self.sim_requests, lambda: sim.fault(1, "late 700"))
        self.assertTrue(daemon.wait_line(r"late_1.*no reply|dropped \d+ stray byte", 5),
                        "the late reply was neither a timeout nor counted%s" % self.diag())
        self.assertTrue(daemon.wait_line(r"dropped \d+ stray byte\(s\) found before a request",
                                         5), "stray bytes not logged%s" % self.diag())

    def test_late_reply_over_a_tcp_bridge_never_shifts_later_states(self):
        broker = self.start_broker()
        cap = self.start_capture()
        sim = self.start_bus_sim("--tcp", "--packs", "1")
        cfg = self.write_config(bus_config(broker.port, "modbus_per_pack", None,
                                           [("late_1", "0x40", "tcp://%s" % sim.tcp[1])],
                                           timeout_s=0.5, poll_interval_s=1.0))
        daemon = self.start_daemon(cfg)
        self.check_states_answer_their_requests(
            cap, "late_1", self.sim_requests, lambda: sim.fault(1, "late 700"))
        self.assertTrue(daemon.wait_line(r"dropped \d+ stray byte\(s\) found before a request",
                                         5), "stray bytes not logged%s" % self.diag())

    def test_modbus_tcp_reply_to_an_earlier_transaction_is_dropped(self):
        """The late reply arrives while the next request waits: only its transaction id
        tells it apart."""
        broker = self.start_broker()
        cap = self.start_capture()
        gw = LateGateway(0x40)
        self.addCleanup(gw.stop)
        cfg = self.write_config(bus_config(broker.port, "modbus_per_pack", None,
                                           [("gw_1", "0x40", "modbus-tcp://127.0.0.1:%d"
                                             % gw.port)],
                                           timeout_s=0.5, poll_interval_s=1.0))
        daemon = self.start_daemon(cfg)
        self.check_states_answer_their_requests(cap, "gw_1", gw.count,
                                                lambda: gw.late_once(1.2))
        self.assertTrue(daemon.wait_line(r"dropped a reply to transaction \d+ while waiting", 5),
                        "the stale transaction was not reported%s" % self.diag())

    def test_a_second_master_on_a_port_is_told_the_port_is_busy(self):
        broker = self.start_broker()
        cap = self.start_capture()
        sim = self.start_bus_sim("--packs", "1")
        packs = [("busy_1", "0x40", sim.port(1))]
        first = self.start_daemon(self.write_config(
            bus_config(broker.port, "modbus_per_pack", None, packs, poll_interval_s=0.5),
            "first.yaml"))
        topic = harness.state_topic("busy_1")
        self.assertTrue(cap.wait_for(lambda m: m[1] == topic, 15), "no state%s" % self.diag())
        second = self.start_daemon(self.write_config(
            bus_config(broker.port, "modbus_per_pack", None,
                       [("busy_2", "0x40", sim.port(1))], poll_interval_s=0.5), "second.yaml"))
        self.assertTrue(second.wait_line(r"busy_2 .*port busy", 15),
                        "the second daemon did not say the port is busy%s" % self.diag())
        mark = cap.mark()
        # The first keeps every poll while the second is refused.
        got = cap.wait_until(lambda items: len([m for m in items[mark:] if m[1] == topic]) >= 6,
                             15)
        self.assertTrue(got, "the first daemon lost polls%s" % self.diag())
        self.assertEqual([l for l in first.lines() if "WARNING" in l or "ERROR" in l], [])
        self.assertEqual(cap.states("busy_2"), [])
        # The same for a raw line (legacy protocol): the second is refused at its first open.
        # (A sniffer is a second program on the port too: it is refused the same way.)
        r = subprocess.run([harness.BMS2MQTT, "sniff", "--port", sim.port(1),
                            "--seconds", "1"], capture_output=True, text=True,
                           timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("port busy", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
