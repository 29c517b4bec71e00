#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# harness.py - shared helpers of the bms2mqtt integration tests (stdlib only).
"""Processes the integration tests start, and how they wait for them.

A test builds its stack from these pieces, each started and stopped by its own pid:
  Broker   a real `mosquitto` on a free loopback port (config file in the test's temp dir)
  Capture  `mosquitto_sub -F '%t %p' -t '#'` read by a thread into (time, topic, payload)
  Sim      `bms-sim --packs N --link DIR`, its stdin kept open for fault commands
  Daemon   `bms2mqtt -C cfg.yaml`, its stderr read by a thread (and copied to a file)

Nothing here sleeps for a fixed time: every wait is on a condition variable fed by a
reader thread, on a process, or on a socket, each with a deadline.

Environment: BMS2MQTT, BMS_SIM, HA_CHECK (paths); fallbacks are the repository's build/
directory and ../shared/ha/ha_discovery_check.py next to the repository.
Set IT_KEEP=1 to keep each test's temp directory (configs, logs, captures), and
IT_BROKER_DEBUG=1 to have mosquitto log every packet.
"""

import json
import os
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BMS2MQTT = os.environ.get("BMS2MQTT") or os.path.join(REPO, "build", "bms2mqtt")
BMS_SIM = os.environ.get("BMS_SIM") or os.path.join(REPO, "build", "bms-sim")
HA_CHECK = os.environ.get("HA_CHECK") or os.path.normpath(
    os.path.join(REPO, "..", "shared", "ha", "ha_discovery_check.py"))

BASE = "bms2mqtt"             # mqtt.base_topic default
PREFIX = "homeassistant"      # mqtt.discovery_prefix
SENTINEL = "bms2mqtt-test/sentinel"
STOP_TIMEOUT = 5.0            # s a process gets after SIGTERM before SIGKILL
START_TIMEOUT = 10.0          # s for a broker / simulator / capture to come up


def state_topic(pack):
    return "%s/%s/state" % (BASE, pack)


def avail_topic(pack):
    return "%s/%s/availability" % (BASE, pack)


def discovery_topic(component, pack, key):
    return "%s/%s/%s_%s/config" % (PREFIX, component, pack, key)


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc, timeout=STOP_TIMEOUT, sig=signal.SIGTERM):
    """Stop one process we started: signal it, wait, SIGKILL if it does not exit.
    Returns its exit status."""
    if proc is None:
        return None
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def tail(text, lines=40):
    return "\n".join(text.splitlines()[-lines:])


class LineReader:
    """Reads a binary pipe line by line on a thread; lines are kept (and optionally copied
    to a file) and waited for through a condition variable."""

    def __init__(self, pipe, copy_path=None, parse=None):
        self.pipe = pipe
        self.parse = parse or (lambda t, line: (t, line))
        self.items = []
        self.closed = False
        self.cond = threading.Condition()
        self.copy = open(copy_path, "w", encoding="utf-8") if copy_path else None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for raw in iter(self.pipe.readline, b""):
                now = time.monotonic()
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                if self.copy:
                    self.copy.write(line + "\n")
                    self.copy.flush()
                item = self.parse(now, line)
                with self.cond:
                    self.items.append(item)
                    self.cond.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            with self.cond:
                self.closed = True
                self.cond.notify_all()

    def snapshot(self):
        with self.cond:
            return list(self.items)

    def wait_until(self, fn, timeout):
        """Wait until fn(items) is truthy; return its value, or None after `timeout` s.
        fn is called with the lock held and must be quick."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                value = fn(self.items)
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    return None
                self.cond.wait(left)

    def wait_for(self, pred, timeout, since=0):
        """The first item at index >= since for which pred(item) holds, waiting up to
        `timeout` s for it; None if none came."""
        def find(items):
            for i in range(since, len(items)):
                if pred(items[i]):
                    return (i, items[i])
            return None
        found = self.wait_until(find, timeout)
        return found[1] if found else None

    def join(self, timeout=STOP_TIMEOUT):
        self.thread.join(timeout)
        if self.copy:
            self.copy.close()
            self.copy = None


class Broker:
    """A mosquitto broker on 127.0.0.1:port, config and log in `workdir`.

    extra_listeners: [(port, [config lines])], more listeners on 127.0.0.1, each followed
    by its own lines (e.g. TLS: "certfile PATH", "keyfile PATH"). The broker then keeps
    the user it was started as, so that it can read key files in the test's temp dir."""

    def __init__(self, workdir, port=None, name="broker", extra_listeners=()):
        self.port = port or free_port()
        self.extra_ports = [p for p, _ in extra_listeners]
        self.conf = os.path.join(workdir, "%s-%d.conf" % (name, self.port))
        self.log_path = os.path.join(workdir, "%s-%d.log" % (name, self.port))
        with open(self.conf, "w") as f:
            f.write("listener %d 127.0.0.1\n" % self.port)
            for lport, lines in extra_listeners:
                f.write("listener %d 127.0.0.1\n" % lport)
                for line in lines:
                    f.write(line + "\n")
            if extra_listeners:
                # Started as root, mosquitto reads the listeners' key files only after
                # dropping to user "mosquitto"; this keeps the user it was started as.
                f.write("user %s\n" % pwd.getpwuid(os.getuid()).pw_name)
            f.write("allow_anonymous true\n")
            f.write("persistence false\n")
            # The capture subscribes with QoS 1 to everything: a daemon's discovery burst
            # (a GX, a dozen packs: over a thousand configs) must not overflow its queue
            # (1000 by default; "Outgoing messages are being dropped") on a slow machine.
            f.write("max_queued_messages 1000000\n")
            f.write("log_dest stderr\n")
            if os.environ.get("IT_BROKER_DEBUG"):
                f.write("log_type all\n")   # every packet, for chasing a failure
            else:
                f.write("log_type error\nlog_type warning\nlog_type notice\n"
                        "log_type information\n")
            f.write("connection_messages true\n")
        self.proc = subprocess.Popen(["mosquitto", "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.reader = LineReader(self.proc.stdout, self.log_path)
        for p in [self.port] + self.extra_ports:
            self._wait_listening(START_TIMEOUT, p)

    def _wait_listening(self, timeout, port=None):
        port = port or self.port
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return
            except OSError:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                raise AssertionError("mosquitto did not listen on port %d within %.0f s\n%s"
                                     % (port, timeout, self.log_text()))
            # Wait on the broker itself between attempts: an early exit ends the wait.
            try:
                self.proc.wait(timeout=min(0.02, left))
                raise AssertionError("mosquitto exited with %d before listening on %d\n%s"
                                     % (self.proc.returncode, port, self.log_text()))
            except subprocess.TimeoutExpired:
                pass

    def log_text(self):
        return "\n".join(line for _, line in self.reader.snapshot())

    def wait_line(self, pattern, timeout):
        """The first log line matching regex `pattern` (waiting up to `timeout` s)."""
        rx = re.compile(pattern)
        got = self.reader.wait_for(lambda item: rx.search(item[1]), timeout)
        return rx.search(got[1]) if got else None

    def stop(self):
        rc = stop_process(self.proc)
        self.reader.join()
        if self.proc.stdout:
            self.proc.stdout.close()
        return rc


class Capture:
    """Every message on the broker, as (monotonic time, topic, payload), in arrival order.

    Runs `mosquitto_sub -F '%t %p' -t '#'`: the format (not -v) prints an empty payload
    as "topic " rather than "(null)". Retained messages come first; ready() publishes a
    sentinel and waits for it, so that everything after the sentinel's index is live.
    """

    def __init__(self, port, workdir=None, name="capture"):
        self.port = port
        copy = os.path.join(workdir, "%s-%d.txt" % (name, port)) if workdir else None
        self.proc = subprocess.Popen(
            ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-q", "1",
             "-F", "%t %p", "-t", "#"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.reader = LineReader(self.proc.stdout, copy, self._parse)
        self.live_from = self.ready()

    @staticmethod
    def _parse(t, line):
        topic, _, payload = line.partition(" ")
        return (t, topic, payload)

    def ready(self, timeout=START_TIMEOUT):
        """Publish sentinels until one comes back (the subscription is in place); return
        the index after it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            token = uuid.uuid4().hex
            publish(self.port, SENTINEL, token)
            got = self.reader.wait_until(
                lambda items: next((i + 1 for i, m in enumerate(items)
                                    if m[1] == SENTINEL and m[2] == token), None), 0.25)
            if got:
                return got
            if self.proc.poll() is not None:
                break
        raise AssertionError("mosquitto_sub on port %d did not see its sentinel (exit %r)"
                             % (self.port, self.proc.poll()))

    # --- reading -------------------------------------------------------------------
    def messages(self, since=0):
        return self.reader.snapshot()[since:]

    def mark(self):
        """Index of the next message: pass as `since` to look only at what comes later."""
        return len(self.reader.snapshot())

    def wait_for(self, pred, timeout, since=0):
        """First message (t, topic, payload) at index >= since matching pred, or None."""
        return self.reader.wait_for(pred, timeout, since)

    def wait_until(self, fn, timeout):
        """Wait until fn(messages) is truthy (fn runs under the lock); its value or None."""
        return self.reader.wait_until(fn, timeout)

    def wait_topic(self, topic, payload=None, timeout=10.0, since=0):
        return self.wait_for(lambda m: m[1] == topic and (payload is None or m[2] == payload),
                             timeout, since)

    def quiet(self, pred, duration, since=0):
        """Wait `duration` s for a message matching pred; return it (None = none came).
        The bounded "nothing happened" wait: ends early when something does."""
        return self.wait_for(pred, duration, since)

    def of_topic(self, topic, since=0):
        return [m for m in self.messages(since) if m[1] == topic]

    def states(self, pack, since=0):
        return self.of_topic(state_topic(pack), since)

    def last_payload(self, topic, since=0):
        got = self.of_topic(topic, since)
        return got[-1][2] if got else None

    def last_configs(self, since=0):
        """{discovery topic: payload} keeping the last message of each topic."""
        out = {}
        for _, topic, payload in self.messages(since):
            if topic.startswith(PREFIX + "/") and topic.endswith("/config"):
                out[topic] = payload
        return out

    def lines(self, since=0):
        """'topic payload' lines (sentinels left out), the HA checker's input format."""
        return ["%s %s" % (topic, payload) for _, topic, payload in self.messages(since)
                if topic != SENTINEL]

    def stop(self):
        stop_process(self.proc)
        self.reader.join()
        if self.proc.stdout:
            self.proc.stdout.close()


def publish(port, topic, payload, retain=False, timeout=5.0):
    """One message through mosquitto_pub (QoS 1). Raises on failure."""
    cmd = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", topic,
           "-m", payload]
    if retain:
        cmd.append("-r")
    subprocess.run(cmd, check=True, timeout=timeout, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def retained(port, topic, timeout=5):
    """The retained payload of `topic` as a fresh subscriber sees it, or None."""
    r = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-C", "1",
                        "-W", str(int(timeout)), "-F", "%p", "-t", topic],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout + 5)
    if r.returncode != 0:
        return None
    return r.stdout.decode("utf-8", errors="replace").rstrip("\n")


class Sim:
    """bms-sim with N packs on ptys, linked as DIR/pack<i>; stdin takes fault commands."""

    def __init__(self, packs, link_dir, args=(), workdir=None, name="sim"):
        self.link_dir = link_dir
        self.log_path = os.path.join(workdir or link_dir, "%s.log" % name)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([BMS_SIM, "--packs", str(packs), "--link", link_dir,
                                      *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log)
        self.buf = b""
        self.ptys = {}
        while True:
            line = self.line(START_TIMEOUT)
            if line == "READY":
                break
            parts = line.split()
            if len(parts) != 3 or parts[0] != "PTY":
                raise AssertionError("bms-sim: unexpected line before READY: %r" % line)
            self.ptys[int(parts[1])] = parts[2]
        if len(self.ptys) != packs:
            raise AssertionError("bms-sim announced %d ptys, want %d" % (len(self.ptys), packs))

    def port(self, i):
        """The link the daemon opens for pack i (1-based)."""
        return os.path.join(self.link_dir, "pack%d" % i)

    def line(self, timeout):
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

    def command(self, cmd, timeout=5.0):
        """Send one stdin command and wait for its OK; returns the lines before it."""
        self.proc.stdin.write((cmd + "\n").encode())
        self.proc.stdin.flush()
        lines = []
        while True:
            line = self.line(timeout)
            if line == "OK":
                return lines
            if line.startswith("ERR"):
                raise AssertionError("bms-sim refused %r: %s" % (cmd, line))
            lines.append(line)

    def fault(self, i, kind):
        return self.command("fault %s %s" % (i, kind))

    def clear(self, i):
        return self.command("clear %s" % i)

    def log_text(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        stop_process(self.proc)
        for f in (self.proc.stdin, self.proc.stdout, self.log):
            try:
                f.close()
            except OSError:
                pass


class Daemon:
    """bms2mqtt -C cfg; stderr read line by line (and copied to <name>.stderr)."""

    def __init__(self, cfg_path, workdir, args=(), name="daemon", binary=None, env=None):
        self.stderr_path = os.path.join(workdir, "%s.stderr" % name)
        self.stdout_path = os.path.join(workdir, "%s.stdout" % name)
        self.out = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen([binary or BMS2MQTT, "-C", cfg_path, *args],
                                     stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=subprocess.PIPE,
                                     env=dict(os.environ, **env) if env else None)
        self.pid = self.proc.pid
        self.reader = LineReader(self.proc.stderr, self.stderr_path)

    def lines(self, since=0):
        return [line for _, line in self.reader.snapshot()[since:]]

    def stderr_text(self):
        return "\n".join(self.lines())

    def mark(self):
        return len(self.reader.snapshot())

    def wait_line(self, pattern, timeout, since=0):
        """The first stderr line (index >= since) matching regex `pattern`, as a match."""
        rx = re.compile(pattern)
        got = self.reader.wait_for(lambda item: rx.search(item[1]), timeout, since)
        return rx.search(got[1]) if got else None

    def client_id(self, timeout=5.0):
        m = self.wait_line(r"client id (\S+)", timeout)
        return m.group(1) if m else None

    def status_topic(self, timeout=5.0):
        cid = self.client_id(timeout)
        return "%s/bridge/%s/status" % (BASE, cid) if cid else None

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        rc = stop_process(self.proc, timeout, sig)
        self.reader.join()
        for f in (self.proc.stderr, self.out):
            try:
                f.close()
            except OSError:
                pass
        return rc


def config_text(mqtt_port, packs, timeout_s=0.5, poll_interval_s=1.0, baud=9600,
                cell_count=16):
    """A config in the original eg4-battery format. packs: [(name, port, address)]."""
    out = [
        "bus:",
        "  mode: modbus_per_pack",
        "  transport: serial",
        "  baud: %d" % baud,
        "  timeout_s: %s" % timeout_s,
        "  poll_interval_s: %s" % poll_interval_s,
        "mqtt:",
        "  host: 127.0.0.1",
        "  port: %d" % mqtt_port,
        '  username: ""',
        '  password: ""',
        "  discovery_prefix: %s" % PREFIX,
        "packs:",
    ]
    for name, port, address in packs:
        out += [
            "  - name: %s" % name,
            "    address: %s" % address,
            "    port: %s" % port,
            "    baud: %d" % baud,
        ]
    out.append("cell_count: %d" % cell_count)
    return "\n".join(out) + "\n"


def run_ha_check(lines, workdir, name="ha-input.txt"):
    """Run the HA discovery checker over 'topic payload' lines; (exit status, output)."""
    path = os.path.join(workdir, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    r = subprocess.run([sys.executable, HA_CHECK, path], capture_output=True, timeout=60)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", errors="replace")


def pack_name(i):
    return "lifepower4_%d" % i


class StackTest(unittest.TestCase):
    """A test case with a temp dir and helpers that start (and clean up) the stack."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="bms2mqtt-it-")
        if os.environ.get("IT_KEEP"):
            print("\n[%s] files in %s" % (self.id(), self.dir), file=sys.stderr)
        else:
            self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.daemons = []
        self.sim = None
        self.broker = None

    # --- pieces ------------------------------------------------------------------
    def start_broker(self, port=None, extra_listeners=()):
        b = Broker(self.dir, port, extra_listeners=extra_listeners)
        self.addCleanup(b.stop)
        self.broker = b
        return b

    def start_capture(self, port=None, name="capture"):
        c = Capture(port or self.broker.port, self.dir, name)
        self.addCleanup(c.stop)
        return c

    def start_sim(self, packs, args=()):
        s = Sim(packs, self.dir, args, workdir=self.dir)
        self.addCleanup(s.stop)
        self.sim = s
        return s

    def write_config(self, text, name="cfg.yaml"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def start_daemon(self, cfg_path, args=(), name=None, binary=None, env=None):
        """bms2mqtt (or `binary`) -C cfg_path args; env: variables added to its environment."""
        d = Daemon(cfg_path, self.dir, args, name or "daemon%d" % (len(self.daemons) + 1),
                   binary, env)
        self.addCleanup(d.stop)
        self.daemons.append(d)
        return d

    def stack(self, n_packs, poll_interval_s=1.0, timeout_s=0.5):
        """Broker, capture (subscribed before the daemon connects), simulator with n packs,
        config lifepower4_1..n on its links, and the daemon."""
        self.start_broker()
        cap = self.start_capture()
        sim = self.start_sim(n_packs)
        packs = [(pack_name(i), sim.port(i), "0x40") for i in range(1, n_packs + 1)]
        cfg = self.write_config(config_text(self.broker.port, packs, timeout_s,
                                            poll_interval_s))
        self.cfg_path = cfg
        daemon = self.start_daemon(cfg)
        return cap, sim, daemon

    def expected_configs(self, cfg_path):
        """The non-empty discovery topics the daemon publishes for this config, as its
        --dry-run prints them (same binary, same pack names)."""
        r = subprocess.run([BMS2MQTT, "--dry-run", "-C", cfg_path], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0, "--dry-run -C %s failed:\n%s" % (cfg_path, r.stderr))
        topics = set()
        for line in r.stdout.splitlines():
            topic, _, payload = line.partition(" ")
            if topic.startswith(PREFIX + "/") and topic.endswith("/config") and payload:
                topics.add(topic)
        self.assertTrue(topics, "--dry-run printed no discovery configs")
        return topics

    # --- diagnostics and waiting -------------------------------------------------
    def diag(self):
        """Log tails for assertion messages."""
        parts = []
        for d in self.daemons:
            parts.append("--- %s stderr (exit %r) ---\n%s"
                         % (os.path.basename(d.stderr_path), d.proc.poll(),
                            tail(d.stderr_text())))
        if self.sim:
            parts.append("--- bms-sim log ---\n%s" % tail(self.sim.log_text(), 15))
        if self.broker:
            parts.append("--- broker log ---\n%s" % tail(self.broker.log_text(), 15))
        return "\n" + "\n".join(parts)

    def expect(self, capture, pred, timeout, what, since=0):
        """Wait for a message matching pred or fail the test with `what` and the logs."""
        got = capture.wait_for(pred, timeout, since)
        if got is None:
            self.fail("%s: nothing within %.1f s%s" % (what, timeout, self.diag()))
        return got

    def expect_until(self, capture, fn, timeout, what):
        got = capture.wait_until(fn, timeout)
        if not got:
            self.fail("%s: not within %.1f s%s" % (what, timeout, self.diag()))
        return got

    def expect_topic(self, capture, topic, payload=None, timeout=10.0, since=0):
        what = "message %s%s" % (topic, "" if payload is None else " = %r" % payload)
        return self.expect(capture, lambda m: m[1] == topic and
                           (payload is None or m[2] == payload), timeout, what, since)

    def farewell(self, client_id, timeout=5.0):
        """How the broker saw client_id leave: "Client X disconnected." after a DISCONNECT;
        anything else ("closed its connection", "disconnected due to ...") means the
        connection was dropped (queued messages lost, the last will published).
        None if it did not leave within `timeout` s."""
        m = self.broker.wait_line(r"Client %s (disconnected|closed its connection).*$"
                                  % re.escape(client_id), timeout)
        return m.group(0) if m else None

    def expect_configs(self, capture, topics, timeout, since=0, what="discovery configs"):
        """Wait until every topic in `topics` got a non-empty message (index >= since)."""
        def complete(items):
            got = {m[1] for m in items[since:] if m[2] and m[1] in topics}
            return len(got) == len(topics)
        if not capture.wait_until(complete, timeout):
            got = {m[1] for m in capture.messages(since) if m[2] and m[1] in topics}
            missing = sorted(topics - got)
            self.fail("%s: %d of %d missing after %.1f s, e.g. %s%s"
                      % (what, len(missing), len(topics), timeout, missing[:3], self.diag()))

    def expect_states(self, capture, packs, count, timeout, since=0):
        """Wait until every pack published at least `count` states (index >= since)."""
        topics = {state_topic(p) for p in packs}

        def enough(items):
            n = {t: 0 for t in topics}
            for m in items[since:]:
                if m[1] in n:
                    n[m[1]] += 1
            return all(v >= count for v in n.values())
        return self.expect_until(capture, enough, timeout,
                                 "%d state(s) from each of %s" % (count, ", ".join(packs)))


def json_or_fail(test, payload, what):
    try:
        return json.loads(payload)
    except ValueError as e:
        test.fail("%s is not JSON (%s): %r" % (what, e, payload[:200]))
