#!/usr/bin/env python3
"""What a line does between requests: a reply that comes after its timeout is never taken
for the answer to the next request (serial port, TCP bridge, Modbus TCP gateway), and a
serial port is one master's alone. The echo of a half-duplex adapter: checked and discarded
when the bus expects it, a clear failure when expected and absent or present and not
expected. Kernel RS-485 mode on a port without it: a clear failure.

The per-bus settings are the bus keys `echo: true` and `rs485: true`."""
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


class LinkBase(harness.StackTest):
    def start_bus_sim(self, *args):
        s = BusSim(list(args), self.dir)
        self.addCleanup(s.stop)
        self.sim = s
        return s


class LinkTest(LinkBase):
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


def with_bus_key(text, key):
    """The config text with `key` added to its bus."""
    return text.replace("  transport: serial\n", "  transport: serial\n  %s\n" % key, 1)


class EchoTest(LinkBase):
    """bms-sim --echo hears every request back before its reply, as a half-duplex adapter
    that echoes does. Replies in 4-byte pieces, as USB adapters deliver them."""

    def echo_stack(self, sim_echo, daemon_echo, proto="modbus_per_pack", sim_proto="lp4v2",
                   address="0x40", name="echo_1"):
        broker = self.start_broker()
        cap = self.start_capture()
        args = ["--packs", "1", "--chunk", "4", "--protocol", sim_proto]
        if sim_proto == "pylontech":
            args += ["--slave", address]
        sim = self.start_bus_sim(*(args + (["--echo"] if sim_echo else [])))
        baud = 115200 if sim_proto == "pylontech" else 9600
        # modbus_per_pack names a port per pack, the other modes one for the bus.
        per_pack = proto == "modbus_per_pack"
        text = bus_config(broker.port, proto, None if per_pack else sim.port(1),
                          [(name, address, sim.port(1) if per_pack else None)],
                          baud=baud, timeout_s=0.5, poll_interval_s=0.5)
        if daemon_echo:
            text = with_bus_key(text, "echo: true")
        daemon = self.start_daemon(self.write_config(text))
        return cap, sim, daemon

    def test_echo_expected_and_heard_is_discarded(self):
        cap, sim, daemon = self.echo_stack(True, True)
        self.expect_states(cap, ["echo_1"], 3, 20)
        state = json.loads(cap.last_payload(harness.state_topic("echo_1")))
        self.assertIsNotNone(state.get("pack_voltage"), state)
        bad = [l for l in daemon.lines() if " warning: " in l or " error: " in l]
        self.assertEqual(bad, [], "warnings with a working echo%s" % self.diag())

    def test_echo_expected_and_heard_on_an_ascii_line(self):
        cap, sim, daemon = self.echo_stack(True, True, "pylontech", "pylontech", "2", "py_1")
        self.expect_states(cap, ["py_1"], 2, 20)
        bad = [l for l in daemon.lines() if " warning: " in l or " error: " in l]
        self.assertEqual(bad, [], "warnings with a working echo%s" % self.diag())

    def test_echo_expected_but_absent_is_a_clear_failure(self):
        cap, sim, daemon = self.echo_stack(False, True)
        self.assertTrue(daemon.wait_line(r"echo_1 .*no echo: a reply came where the echo", 15),
                        "no clear 'no echo' failure%s" % self.diag())
        self.assertEqual(cap.states("echo_1"), [])

    def test_echo_present_but_not_configured_fails_recognisably(self):
        cap, sim, daemon = self.echo_stack(True, False)
        self.assertTrue(daemon.wait_line(r"echo_1 .*heard the request itself where its reply "
                                         r"should be .*turn echo on", 15),
                        "the echo was not recognised%s" % self.diag())
        self.assertEqual(cap.states("echo_1"), [])

    def test_echo_present_but_not_configured_on_an_ascii_line(self):
        """Without the check the echoed request would decode as a reply with return code
        0x42 and pass for a refusal."""
        cap, sim, daemon = self.echo_stack(True, False, "pylontech", "pylontech", "2", "py_1")
        self.assertTrue(daemon.wait_line(r"py_1 .*heard the request itself", 15),
                        "the echo was not recognised%s" % self.diag())
        self.assertEqual(cap.states("py_1"), [])


class ChunkTest(LinkBase):
    """Replies handed over a byte at a time, or on a 16 ms latency timer, to two packs on one
    bus: every state comes, and nothing is dropped as stray or cut short on the way."""

    def check_chunks(self, *chunk_args):
        broker = self.start_broker()
        cap = self.start_capture()
        sim = self.start_bus_sim("--bus", "1,2", *chunk_args)
        packs = [("ch_1", "1", sim.port(1)), ("ch_2", "2", sim.port(1))]
        cfg = self.write_config(bus_config(broker.port, "modbus_per_pack", None, packs,
                                           timeout_s=0.5, poll_interval_s=0.3))
        daemon = self.start_daemon(cfg)
        self.expect_states(cap, ["ch_1", "ch_2"], 6, 30)
        bad = [l for l in daemon.lines() if " warning: " in l or " error: " in l]
        self.assertEqual(bad, [], "warnings%s" % self.diag())
        return daemon

    def test_one_byte_at_a_time(self):
        self.check_chunks("--chunk", "1")

    def test_on_a_latency_timer(self):
        daemon = self.check_chunks("--chunk-ms", "16")
        self.assertTrue(daemon.wait_line(r"hands replies over every 16\.0 ms", 5),
                        "the latency timer was not recognised%s" % self.diag())


class Rs485Test(LinkBase):
    def test_rs485_mode_on_a_port_without_it_names_the_port_and_the_error(self):
        broker = self.start_broker()
        cap = self.start_capture()
        sim = self.start_bus_sim("--packs", "1")
        for mode, address in (("modbus_per_pack", "0x40"), ("active", "1")):
            per_pack = mode == "modbus_per_pack"
            text = bus_config(broker.port, mode, None if per_pack else sim.port(1),
                              [("rs_1", address, sim.port(1) if per_pack else None)],
                              poll_interval_s=0.5)
            cfg = self.write_config(with_bus_key(text, "rs485: true"), "%s.yaml" % mode)
            daemon = self.start_daemon(cfg)
            m = daemon.wait_line(r"rs_1 .*: (\S+): no kernel RS-485 mode: ioctl TIOCGRS485 failed "
                                 r"with ENOTTY", 15)
            self.assertTrue(m, "no clear RS-485 failure%s" % self.diag())
            self.assertEqual(os.path.realpath(m.group(1)), os.path.realpath(sim.port(1)))
            daemon.stop()
        self.assertEqual(cap.states("rs_1"), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
