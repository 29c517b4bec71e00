#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# test_systemd.py - the daemon under a service manager: sd_notify, the watchdog, the journal,
# SIGHUP.
"""What systemd sees of bms2mqtt, without systemd: the test plays the service manager.

NOTIFY_SOCKET names an AF_UNIX datagram socket the test binds in its temp dir: READY=1 once
the buses run, STATUS= lines that follow the packs' availability and the broker, WATCHDOG=1
every half of WATCHDOG_USEC while every bus thread shows progress, RELOADING=1 and READY=1
around a reload, STOPPING=1 at the end.

A stuck bus: bms2mqtt-stall is the daemon built with tests/integration/stall_link.c, which
makes every exchange on the port named by $BMS_STALL_PORT block while the file
$BMS_STALL_FILE exists, as a thread stuck in the kernel would (nothing in the daemon's
links can be made to hang for real: every call on a line has a timeout, which is the
point). A pack that never answers is not stuck: its polls fail, within their timeouts.

JOURNAL_STREAM: the test gives the daemon a pipe as stderr and names that pipe's
device:inode in JOURNAL_STREAM, as systemd does for the journal's stream.
"""

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import unittest

import harness
from harness import BMS2MQTT, StackTest, pack_name, state_topic

STALL = os.environ.get("BMS2MQTT_STALL") or os.path.join(harness.REPO, "build",
                                                           "tests", "bms2mqtt-stall")
LEVEL_PREFIX = re.compile(r"^<([3-7])>")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


class NotifySocket:
    """The service manager's end of NOTIFY_SOCKET. Every datagram is kept as (monotonic
    time, {name: value}); waits are on a condition variable with deadlines."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.items = []
        self.cond = threading.Condition()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            fields = {}
            for line in data.decode("utf-8", errors="replace").split("\n"):
                name, _, value = line.partition("=")
                fields[name] = value
            with self.cond:
                self.items.append((time.monotonic(), fields))
                self.cond.notify_all()

    def mark(self):
        with self.cond:
            return len(self.items)

    def wait_for(self, pred, timeout, since=0):
        """The first datagram (index >= since) whose fields satisfy pred, or None."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for item in self.items[since:]:
                    if pred(item[1]):
                        return item
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def wait_count(self, name, n, timeout, since=0):
        """Wait until n datagrams (index >= since) carry `name`; their times, or None."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                times = [t for t, f in self.items[since:] if name in f]
                if len(times) >= n:
                    return times
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def values(self, name, since=0):
        with self.cond:
            return [(t, f[name]) for t, f in self.items[since:] if name in f]

    def close(self):
        self.stopping = True
        self.thread.join(2)
        self.sock.close()


def mock_config(port, packs=("p1",), poll_interval_s=1, extra=()):
    """Simulated packs on one bus (no serial port), broker 127.0.0.1:port."""
    out = [
        "bus:",
        "  mode: modbus_per_pack",
        "  transport: mock",
        "  poll_interval_s: %s" % poll_interval_s,
        "mqtt:",
        "  host: 127.0.0.1",
        "  port: %d" % port,
        "  discovery_prefix: %s" % harness.PREFIX,
    ]
    out += list(extra)
    out.append("packs:")
    for i, name in enumerate(packs):
        out += ["  - name: %s" % name, "    address: 0x%02x" % (0x40 + i)]
    return "\n".join(out) + "\n"


class SystemdTest(StackTest):
    def notify_socket(self):
        n = NotifySocket(os.path.join(self.dir, "notify.sock"))
        self.addCleanup(n.close)
        return n

    def env(self, **extra):
        env = dict(os.environ)
        for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM"):
            env.pop(name, None)
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def expect_notify(self, n, pred, timeout, what, since=0):
        got = n.wait_for(pred, timeout, since)
        if got is None:
            self.fail("%s: not received within %.0f s; got %r%s"
                      % (what, timeout, [f for _, f in n.items[since:]][-8:], self.diag()))
        return got

    def expect_line(self, d, pattern, timeout, what, since=0):
        m = d.wait_line(pattern, timeout, since)
        if m is None:
            self.fail("%s: no line matching %r within %.0f s%s"
                      % (what, pattern, timeout, self.diag()))
        return m

    # --- READY and STATUS ------------------------------------------------------------
    def test_ready_then_status_follows_packs_and_broker(self):
        """READY=1 once, after the start; STATUS= says how many packs are online and
        whether the broker is connected, changes when a pack goes offline and when the
        broker goes away, at most about once a second; STOPPING=1 at the end."""
        self.start_broker()
        cap = self.start_capture()
        sim = self.start_sim(2)
        packs = [(pack_name(i), sim.port(i), "0x40") for i in (1, 2)]
        cfg = self.write_config(harness.config_text(self.broker.port, packs, timeout_s=0.3))
        n = self.notify_socket()
        t0 = time.monotonic()
        d = self.start_daemon(cfg, env=self.env(NOTIFY_SOCKET=n.path))
        ready = self.expect_notify(n, lambda f: f.get("READY") == "1", 10, "READY=1")
        start = d.wait_line(r"bms2mqtt \S+: 2 pack\(s\)", 1)
        self.assertIsNotNone(start, "READY=1 came before the start line" + self.diag())
        self.expect_notify(n, lambda f: f.get("STATUS") == "2 packs online, 0 offline; "
                           "broker connected", 10, "STATUS with both packs online")
        self.expect_states(cap, [pack_name(1), pack_name(2)], 1, 10)

        sim.fault(2, "silence")
        self.expect_notify(n, lambda f: f.get("STATUS") == "1 pack online, 1 offline; "
                           "broker connected", 15, "STATUS with pack 2 offline")

        self.broker.stop()
        self.expect_notify(n, lambda f: f.get("STATUS") == "1 pack online, 1 offline; "
                           "broker disconnected", 10, "STATUS without the broker")

        self.assertEqual(d.stop(), 0, "exit status" + self.diag())
        self.expect_notify(n, lambda f: f.get("STOPPING") == "1", 5, "STOPPING=1")
        took = time.monotonic() - t0
        readies = [t for t, f in n.items if f.get("READY") == "1"]
        self.assertEqual(len(readies), 1, "READY=1 is sent once: %r" % n.items)
        self.assertGreaterEqual(readies[0], ready[0])
        statuses = n.values("STATUS")
        # At most about one a second (the limit is 1 s; the bound here only catches a flood).
        self.assertLessEqual(len(statuses), took + 2, "%d STATUS= in %.1f s: %r"
                             % (len(statuses), took, statuses))
        self.assertFalse(any(n.values("WATCHDOG")), "WATCHDOG=1 without WATCHDOG_USEC")

    # --- the watchdog ------------------------------------------------------------------
    def test_watchdog_pings_at_half_the_interval(self):
        """WATCHDOG_USEC=2 s: WATCHDOG=1 about every second."""
        self.start_broker()
        cfg = self.write_config(mock_config(self.broker.port))
        n = self.notify_socket()
        self.start_daemon(cfg, env=self.env(NOTIFY_SOCKET=n.path, WATCHDOG_USEC=2000000))
        self.expect_notify(n, lambda f: f.get("READY") == "1", 10, "READY=1")
        times = n.wait_count("WATCHDOG", 6, 15)
        self.assertIsNotNone(times, "fewer than 6 WATCHDOG=1 in 15 s: %r%s"
                             % (n.values("WATCHDOG"), self.diag()))
        gaps = [b - a for a, b in zip(times[1:], times[2:])]
        mean = sum(gaps) / len(gaps)
        self.assertTrue(0.6 < mean < 1.5, "pings every %.2f s on average, want about 1 s "
                        "(half of WATCHDOG_USEC): %r" % (mean, gaps))

    def test_watchdog_pid_of_another_process_means_no_watchdog(self):
        """WATCHDOG_PID names another process: the watchdog is not this daemon's."""
        self.start_broker()
        cfg = self.write_config(mock_config(self.broker.port))
        n = self.notify_socket()
        self.start_daemon(cfg, env=self.env(NOTIFY_SOCKET=n.path, WATCHDOG_USEC=2000000,
                                            WATCHDOG_PID=1))
        self.expect_notify(n, lambda f: f.get("READY") == "1", 10, "READY=1")
        self.expect_notify(n, lambda f: "STATUS" in f and "broker connected" in f["STATUS"],
                           10, "STATUS")
        self.assertIsNone(n.wait_for(lambda f: "WATCHDOG" in f, 2.5),
                          "WATCHDOG=1 though WATCHDOG_PID is not the daemon's pid")

    def test_stuck_bus_stops_the_pings_and_a_silent_pack_does_not(self):
        """Pack 1 never answers (every poll times out): the pings go on. The thread of
        pack 2's bus hangs in a call (stall_link.c): the pings stop once it has shown no
        sign of life for its bound (4 x timeout_s + 5 s here, more than WATCHDOG_USEC),
        the log and STATUS= name the bus; they resume when the call returns."""
        self.start_broker()
        cap = self.start_capture()
        sim = self.start_sim(2)
        sim.fault(1, "silence")
        packs = [(pack_name(i), sim.port(i), "0x40") for i in (1, 2)]
        cfg = self.write_config(harness.config_text(self.broker.port, packs, timeout_s=0.3))
        stall_file = os.path.join(self.dir, "stall")
        n = self.notify_socket()
        d = self.start_daemon(cfg, binary=STALL, env=self.env(
            NOTIFY_SOCKET=n.path, WATCHDOG_USEC=2000000, BMS_STALL_PORT=sim.port(2),
            BMS_STALL_FILE=stall_file))
        self.expect_notify(n, lambda f: f.get("STATUS") == "1 pack online, 1 offline; "
                           "broker connected", 15, "STATUS with the silent pack offline")
        mark = n.mark()
        self.assertIsNotNone(n.wait_count("WATCHDOG", 3, 6, mark),
                             "no pings while pack 1 times out%s" % self.diag())

        open(stall_file, "w").close()
        t_stall = time.monotonic()
        line = self.expect_line(d, r"watchdog: bus \S+ \(%s\) has shown no sign of life"
                                % re.escape(sim.port(2)), 30, "the stuck bus is logged")
        self.assertIn("error:", line.string)
        mark = n.mark()
        pings = n.values("WATCHDOG")
        last = pings[-1][0] if pings else 0
        self.assertGreater(last - t_stall, 4, "pings stopped %.1f s after the stall, before "
                           "the bus's bound (6.2 s) could pass" % (last - t_stall))
        late = n.wait_for(lambda f: "WATCHDOG" in f, 3.5, mark)
        self.assertIsNone(late, "WATCHDOG=1 while the bus is stuck" + self.diag())
        self.expect_notify(n, lambda f: "STATUS" in f and f["STATUS"].endswith(
            "(%s) stuck" % sim.port(2)), 3, "STATUS naming the stuck bus")
        # Pack 1's bus goes on meanwhile: its failures are still counted.
        polls_line = d.mark()

        mark = n.mark()
        os.unlink(stall_file)
        self.expect_line(d, r"watchdog: every bus and the publisher thread are alive again; "
                         r"pings resume", 10, "the recovery is logged")
        self.expect_notify(n, lambda f: f.get("WATCHDOG") == "1", 5, "WATCHDOG=1 again",
                           since=mark)
        self.expect_states(cap, [pack_name(2)], 1, 10, since=cap.mark())
        self.assertEqual(d.stop(), 0, "exit status" + self.diag())
        self.assertIsNotNone(d.wait_line(r"pack %s: \d+ polls, \d+ failed \(timeout"
                                         % pack_name(1), 1, polls_line),
                             "pack 1's timeouts are counted" + self.diag())

    def test_stuck_publisher_stops_the_pings(self):
        """The publisher thread hangs in its work (stall_link.c wraps publisher_service):
        the pings stop once it has shown no sign of life for WATCHDOG_USEC (2 s), the log
        and STATUS= say so; they resume, and states flow again, when the call returns."""
        self.start_broker()
        cap = self.start_capture()
        sim = self.start_sim(1)
        cfg = self.write_config(harness.config_text(self.broker.port,
                                                    [(pack_name(1), sim.port(1), "0x40")]))
        stall_file = os.path.join(self.dir, "stall-publisher")
        n = self.notify_socket()
        d = self.start_daemon(cfg, binary=STALL, env=self.env(
            NOTIFY_SOCKET=n.path, WATCHDOG_USEC=2000000, BMS_STALL_PUBLISHER_FILE=stall_file))
        self.expect_notify(n, lambda f: f.get("STATUS") == "1 pack online, 0 offline; "
                           "broker connected", 15, "STATUS with the pack online")
        self.expect_states(cap, [pack_name(1)], 1, 10)

        open(stall_file, "w").close()
        t_stall = time.monotonic()
        line = self.expect_line(d, r"watchdog: the MQTT publisher thread has shown no sign of "
                                r"life for \d+ s", 15, "the stuck publisher is logged")
        self.assertIn("error:", line.string)
        self.assertGreater(time.monotonic() - t_stall, 2, "logged before WATCHDOG_USEC passed")
        mark = n.mark()
        late = n.wait_for(lambda f: "WATCHDOG" in f, 2.5, mark)
        self.assertIsNone(late, "WATCHDOG=1 while the publisher is stuck" + self.diag())

        mark = n.mark()
        os.unlink(stall_file)
        self.expect_line(d, r"watchdog: every bus and the publisher thread are alive again; "
                         r"pings resume", 10, "the recovery is logged")
        self.expect_notify(n, lambda f: f.get("WATCHDOG") == "1", 5, "WATCHDOG=1 again",
                           since=mark)
        self.expect_states(cap, [pack_name(1)], 1, 10, since=cap.mark())
        self.assertEqual(d.stop(), 0, "exit status" + self.diag())

    # --- the journal -------------------------------------------------------------------
    def start_journal_daemon(self, cfg, journal_stream=None, args=()):
        """The daemon with a pipe of our own as stderr; JOURNAL_STREAM names that pipe
        (or is `journal_stream` when given). Returns (process, LineReader)."""
        r, w = os.pipe()
        st = os.fstat(w)
        env = self.env(JOURNAL_STREAM=journal_stream or "%d:%d" % (st.st_dev, st.st_ino))
        proc = subprocess.Popen([BMS2MQTT, "-C", cfg, *args], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=w, env=env)
        os.close(w)
        reader = harness.LineReader(os.fdopen(r, "rb"),
                                    os.path.join(self.dir, "journal-%d.stderr" % proc.pid))

        def stop():
            harness.stop_process(proc)
            reader.join()
            reader.pipe.close()
        self.addCleanup(stop)
        return proc, reader

    def test_journal_stream_gets_priority_prefixes_and_no_time(self):
        """stderr is the stream JOURNAL_STREAM names: every line starts with its syslog
        priority (<5> notice, <6> info, <4> warning, <3> error, <7> debug) and carries no
        time of its own."""
        port = harness.free_port()  # nobody listens: "cannot reach broker" is a warning
        cfg = self.write_config(mock_config(port))
        proc, reader = self.start_journal_daemon(cfg, args=["--log-level", "debug"])
        got = reader.wait_for(lambda item: item[1].startswith("<4>") and
                              "cannot reach broker" in item[1], 10)
        self.assertIsNotNone(got, "no <4> line for the broker%s"
                             % "\n".join(l for _, l in reader.snapshot()))
        for prefix, what in (("<6>pack p1: model", "info"), ("<7>", "debug")):
            self.assertIsNotNone(reader.wait_for(lambda item: item[1].startswith(prefix), 10),
                                 "no %s line %r:\n%s" % (what, prefix, "\n".join(
                                     l for _, l in reader.snapshot())))
        # An error: a reload with a bad configuration.
        with open(cfg, "a") as f:
            f.write("colour: red\n")
        proc.send_signal(signal.SIGHUP)
        got = reader.wait_for(lambda item: item[1].startswith("<3>SIGHUP: "), 10)
        self.assertIsNotNone(got, "no <3> line for the bad configuration")
        self.assertEqual(harness.stop_process(proc), 0)
        reader.join()
        lines = [line for _, line in reader.snapshot()]
        levels = {LEVEL_PREFIX.match(line).group(1) for line in lines if LEVEL_PREFIX.match(line)}
        self.assertEqual([line for line in lines if not LEVEL_PREFIX.match(line)], [],
                         "lines without a priority prefix")
        self.assertEqual([line for line in lines if TIMESTAMP.search(line)], [],
                         "lines with a time of their own")
        self.assertEqual(levels, {"3", "4", "5", "6", "7"}, "priorities seen")
        self.assertTrue(any(re.match(r"<5>bms2mqtt \S+: 1 pack\(s\)", line) for line in lines),
                        "the start line is a notice: %r" % lines[:5])
        self.assertTrue(any(line.startswith("<5>signal 15: stopping") for line in lines))

    def test_journal_stream_gets_a_bad_config_at_start_as_an_error(self):
        """A configuration refused at start is a <3> line with file:line:column."""
        cfg = self.write_config(mock_config(harness.free_port()) + "colour: red\n")
        proc, reader = self.start_journal_daemon(cfg)
        self.assertEqual(proc.wait(timeout=10), 1)
        reader.join()
        lines = [line for _, line in reader.snapshot()]
        self.assertEqual(len(lines), 1, lines)
        self.assertRegex(lines[0], r"^<3>%s:\d+:1: unknown key 'colour' at the top level"
                         % re.escape(cfg))

    def test_journal_stream_of_another_file_changes_nothing(self):
        """JOURNAL_STREAM names another file (stderr was redirected after systemd set it):
        the usual lines, with their time and level name."""
        cfg = self.write_config(mock_config(harness.free_port()))
        st = os.stat(cfg)
        proc, reader = self.start_journal_daemon(cfg, "%d:%d" % (st.st_dev, st.st_ino))
        got = reader.wait_for(lambda item: "cannot reach broker" in item[1], 10)
        self.assertIsNotNone(got)
        self.assertRegex(got[1], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} warning: mqtt: ")

    # --- SIGHUP ------------------------------------------------------------------------
    def test_sighup_with_a_good_config_applies_it_and_keeps_the_pid(self):
        """A second pack added to the file, then SIGHUP: the daemon stops cleanly (offline
        on its status topic, energy counters saved), executes itself again (same pid,
        same arguments) and publishes the new pack's discovery and states. systemd hears
        RELOADING=1 with MONOTONIC_USEC, then READY=1."""
        self.start_broker()
        cap = self.start_capture()
        state_file = os.path.join(self.dir, "state.json")
        extra = ["state_file: %s" % state_file]
        cfg = self.write_config(mock_config(self.broker.port, ["p1"], extra=extra))
        n = self.notify_socket()
        d = self.start_daemon(cfg, env=self.env(NOTIFY_SOCKET=n.path))
        status_topic = d.status_topic()
        self.expect_notify(n, lambda f: f.get("READY") == "1", 10, "READY=1")
        self.expect_states(cap, ["p1"], 2, 10)
        with open("/proc/%d/cmdline" % d.pid, "rb") as f:
            cmdline = f.read()

        self.write_config(mock_config(self.broker.port, ["p1", "p2"], extra=extra))
        mark, nmark, lmark = cap.mark(), n.mark(), d.mark()
        t_hup = time.monotonic()
        d.proc.send_signal(signal.SIGHUP)
        rel = self.expect_notify(n, lambda f: f.get("RELOADING") == "1", 10, "RELOADING=1",
                                 nmark)
        usec = int(rel[1].get("MONOTONIC_USEC", "0"))
        # CLOCK_MONOTONIC, which time.monotonic() reads on Linux: a generous bound.
        self.assertLess(abs(usec / 1e6 - t_hup), 5, "MONOTONIC_USEC %r" % rel[1])
        self.expect_notify(n, lambda f: f.get("READY") == "1", 15, "READY=1 after the reload",
                           nmark)
        self.assertIsNone(n.wait_for(lambda f: "STOPPING" in f, 0, nmark),
                          "STOPPING=1 during a reload")
        self.expect_line(d, r"SIGHUP: \S+ is good", 1, "the reload is logged", lmark)
        start = self.expect_line(d, r"bms2mqtt \S+: 2 pack\(s\).* client id (\S+)", 10,
                                 "the new run's start line", lmark)
        # The default client id follows the pack names: the new run has a new one.
        self.expect_topic(cap, status_topic, "offline", 10, since=mark)
        self.expect_topic(cap, "%s/bridge/%s/status" % (harness.BASE, start.group(1)), "online",
                          10, since=mark)
        self.expect_configs(cap, self.expected_configs(cfg), 15, since=mark,
                            what="discovery after the reload")
        self.expect_states(cap, ["p1", "p2"], 1, 15, since=mark)
        self.assertIsNone(d.proc.poll(), "the daemon exited" + self.diag())
        with open("/proc/%d/cmdline" % d.pid, "rb") as f:
            self.assertEqual(f.read(), cmdline, "the same arguments")
        with open(state_file) as f:
            self.assertIn("p1", json.load(f)["packs"], "energy counters saved")
        self.assertEqual(d.stop(), 0, "exit status" + self.diag())

    def test_sighup_with_a_bad_config_keeps_running(self):
        """A typo in the file, then SIGHUP: the error is logged with file:line:column and the
        daemon goes on with the configuration it has (same pid, states go on, no reload)."""
        self.start_broker()
        cap = self.start_capture()
        cfg = self.write_config(mock_config(self.broker.port, ["p1"]))
        n = self.notify_socket()
        d = self.start_daemon(cfg, env=self.env(NOTIFY_SOCKET=n.path))
        self.expect_notify(n, lambda f: f.get("READY") == "1", 10, "READY=1")
        self.expect_states(cap, ["p1"], 1, 10)
        text = mock_config(self.broker.port, ["p1"]).replace("poll_interval_s: 1",
                                                             "poll_interval_s: fast")
        self.write_config(text)
        lineno = text.splitlines().index("  poll_interval_s: fast") + 1
        nmark, lmark = n.mark(), d.mark()
        d.proc.send_signal(signal.SIGHUP)
        self.expect_line(d, r"error: SIGHUP: %s:%d:20: bus\.poll_interval_s must be a number "
                         r"of seconds, not 'fast'; still running" % (re.escape(cfg), lineno),
                         10, "the bad configuration is logged", lmark)
        mark = cap.mark()
        self.expect_states(cap, ["p1"], 2, 10, since=mark)
        self.assertIsNone(d.proc.poll(), "the daemon exited" + self.diag())
        self.assertEqual([f for _, f in n.items[nmark:] if "RELOADING" in f or "READY" in f],
                         [], "a reload was announced")
        self.assertFalse(any("stopping" in line for line in d.lines(lmark)))
        self.assertEqual(d.stop(), 0, "exit status" + self.diag())


if __name__ == "__main__":
    unittest.main(verbosity=2)
