#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# test_mqtt.py - the MQTT client under broker trouble: backoff without CPU, TLS, --once.
"""The broker is down, refuses, or speaks TLS with a certificate the daemon does not trust;
--once must say whether every pack's state reached the broker.

Certificates are made with `openssl` in the test's temp dir: a CA, a server certificate
for 127.0.0.1 / localhost, one for another host name, and a second CA the server does not
use. A TLS broker is a mosquitto with a plain listener (for the capture) and a TLS one.
"""

import os
import re
import socket
import subprocess
import threading
import time
import unittest

import harness
from harness import BMS2MQTT, StackTest, pack_name, state_topic

CLK_TCK = os.sysconf("SC_CLK_TCK")
ONCE_CONNECT_WAIT_S = 10  # documented --once deadline for a session (doc/bms2mqtt.8.md)


def cpu_seconds(pid):
    """utime + stime of a process, from /proc/<pid>/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def openssl(workdir, *args):
    r = subprocess.run(["openssl", *args], cwd=workdir, capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        raise AssertionError("openssl %s failed:\n%s" % (" ".join(args), r.stderr))


class Certs:
    """A CA, server certificates signed by it, and a CA nobody uses (EC keys: fast)."""

    def __init__(self, workdir):
        self.dir = workdir
        self.ca, self.ca_key = self.path("ca.pem"), self.path("ca.key")
        self.other_ca = self.path("other-ca.pem")
        self.make_ca("ca", "bms2mqtt test CA")
        self.make_ca("other-ca", "bms2mqtt other CA")
        self.server = self.make_server("server", "localhost",
                                       "subjectAltName=DNS:localhost,IP:127.0.0.1")
        self.wrong_host = self.make_server("wronghost", "broker.example.org",
                                           "subjectAltName=DNS:broker.example.org")

    def path(self, name):
        return os.path.join(self.dir, name)

    def make_ca(self, name, cn):
        openssl(self.dir, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", name + ".key",
                "-out", name + ".pem", "-days", "2", "-subj", "/CN=" + cn)

    def make_server(self, name, cn, ext):
        with open(self.path(name + ".ext"), "w") as f:
            f.write(ext + "\n")
        openssl(self.dir, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn)
        openssl(self.dir, "x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey",
                "ca.key", "-CAcreateserial", "-out", name + ".pem", "-days", "2",
                "-extfile", name + ".ext")
        return (self.path(name + ".pem"), self.path(name + ".key"))


def tls_listener(port, cert):
    """extra_listeners entry: a TLS listener on port serving cert (path, key path)."""
    return (port, ["certfile %s" % cert[0], "keyfile %s" % cert[1]])


def mock_config(port, ca_file=None, n_packs=2, poll_interval_s=5, extra=()):
    """Built-in simulated packs (no serial port), broker 127.0.0.1:port, TLS with ca_file."""
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
    if ca_file:
        out.append("  tls_ca_file: %s" % ca_file)
    out += ["  " + line for line in extra]
    out.append("packs:")
    for i in range(1, n_packs + 1):
        out += ["  - name: %s" % pack_name(i), "    address: 0x%02x" % (0x3f + i)]
    return "\n".join(out) + "\n"


class Listener:
    """A TCP listener that accepts and at once closes every connection, counting them."""

    def __init__(self, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.accepts = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.close()
            with self.cond:
                self.accepts.append(time.monotonic())
                self.cond.notify_all()

    def count(self):
        with self.cond:
            return len(self.accepts)

    def wait_count(self, n, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.accepts) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(2)


class MqttTest(StackTest):
    def setUp(self):
        super().setUp()
        self.certs = Certs(self.dir)

    def start_tls_broker(self, tls_port=None, cert=None):
        """A broker with a plain listener (self.broker.port, for captures) and a TLS one."""
        tls_port = tls_port or harness.free_port()
        self.start_broker(extra_listeners=[tls_listener(tls_port, cert or self.certs.server)])
        return tls_port

    def run_once(self, cfg, timeout, name=None):
        """bms2mqtt --once; (exit status, seconds it took, daemon)."""
        t0 = time.monotonic()
        d = self.start_daemon(cfg, ["--once"], name)
        try:
            rc = d.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.fail("--once still running after %.0f s%s" % (timeout, self.diag()))
        took = time.monotonic() - t0
        d.reader.join()
        return rc, took, d

    # --- backoff and CPU -----------------------------------------------------------
    def test_backoff_uses_no_cpu_and_connects_when_the_broker_is_back(self):
        """TLS configured: a listener that accepts and closes, then nothing listening. Each
        failure waits out its backoff step (1, 2, 4, 8 s ...) without CPU; once a TLS
        broker listens, the daemon connects when the current step ends."""
        port = harness.free_port()
        cfg = self.write_config(mock_config(port, self.certs.ca))
        listener = Listener(port)
        self.addCleanup(listener.close)
        d = self.start_daemon(cfg)
        self.assertIsNotNone(d.client_id(5), "daemon did not start" + self.diag())
        # 1. Accept-and-close: attempts at about 0, 1 and 3 s in the first 4.5 s.
        t0, c0 = time.monotonic(), cpu_seconds(d.pid)
        self.assertTrue(listener.wait_count(1, 5), "no connection attempt" + self.diag())
        # The window measured: a fifth attempt within it (or a spin) ends the wait early.
        too_many = listener.wait_count(5, t0 + 4.5 - time.monotonic())
        window, cpu = time.monotonic() - t0, cpu_seconds(d.pid) - c0
        attempts = listener.count()
        self.assertFalse(too_many, "%d connection attempts in %.1f s: backoff 1, 2, 4 s allows "
                         "3%s" % (attempts, window, self.diag()))
        self.assertLess(cpu, 0.05 * window, "%.2f s CPU in %.1f s while the broker closes every "
                        "connection%s" % (cpu, window, self.diag()))
        # 2. Nothing listening: the next attempt (7 s after the start) is refused.
        listener.close()
        mark = d.mark()
        t1, c1 = time.monotonic(), cpu_seconds(d.pid)
        refused = d.wait_line(r"cannot reach broker .*Connection refused", 8, since=mark)
        if refused:
            time.sleep(1.0)  # after the refusal: the loop must be waiting, not spinning
        window, cpu = time.monotonic() - t1, cpu_seconds(d.pid) - c1
        self.assertLess(cpu, 0.05 * window, "%.2f s CPU in %.1f s with nothing listening on "
                        "the broker's port%s" % (cpu, window, self.diag()))
        self.assertIsNotNone(refused, "no 'cannot reach broker ... Connection refused' line"
                             + self.diag())
        # 3. A TLS broker on the port: the attempt after the current step (8 s) connects.
        mark = d.mark()
        t2 = time.monotonic()
        self.start_tls_broker(port)
        connected = d.wait_line(r"mqtt: connected to", 8 + 4, since=mark)
        took = time.monotonic() - t2
        self.assertIsNotNone(connected, "not connected %.1f s after the broker came back "
                             "(backoff step 8 s)%s" % (took, self.diag()))
        cap = self.start_capture()
        self.expect_topic(cap, state_topic(pack_name(1)), None, 10)

    # --- --once ----------------------------------------------------------------------
    def test_once_over_tls_delivers_every_state(self):
        """Three --once runs over TLS: each publishes every pack's state (QoS 1,
        acknowledged) and exits 0. With a dozen packs the broker's acknowledgements come in
        while the packs publish: one TLS session read and written by two threads at once
        breaks (caught under AddressSanitizer as a use after free in SSL_write)."""
        tls_port = self.start_tls_broker()
        cap = self.start_capture()
        n = 12
        cfg = self.write_config(mock_config(tls_port, self.certs.ca, n_packs=n))
        packs = [pack_name(i) for i in range(1, n + 1)]
        for run in range(1, 4):
            since = cap.mark()
            rc, took, d = self.run_once(cfg, ONCE_CONNECT_WAIT_S + 15, "once%d" % run)
            self.assertEqual(rc, 0, "run %d: --once exit status%s" % (run, self.diag()))
            self.expect_states(cap, packs, 1, 5, since=since)
            self.assertTrue(any("state of all %d pack(s) was delivered" % n in line
                                for line in d.lines()), "run %d: no delivery line%s"
                            % (run, self.diag()))

    def test_once_without_broker_fails_within_its_deadline(self):
        """Nothing listens: --once gives up after its documented wait and exits non-zero,
        saying the broker was not reachable."""
        port = harness.free_port()
        cfg = self.write_config(mock_config(port, self.certs.ca))
        rc, took, d = self.run_once(cfg, ONCE_CONNECT_WAIT_S + 20)
        self.assertNotEqual(rc, 0, "--once exited 0 with no broker" + self.diag())
        self.assertEqual(rc, 3, "--once exit status without a broker" + self.diag())
        self.assertLess(took, ONCE_CONNECT_WAIT_S + 5, "--once took %.1f s" % took)
        self.assertTrue(any(re.search(r"no session with broker 127\.0\.0\.1:%d" % port, line)
                            for line in d.lines()), "no 'no session with broker' line"
                        + self.diag())

    def test_once_names_the_pack_that_did_not_answer(self):
        """Pack 2 is silent: --once delivers pack 1's state, names pack 2 and exits
        non-zero."""
        self.start_broker()
        cap = self.start_capture()
        sim = self.start_sim(2)
        sim.fault(2, "silence")
        packs = [(pack_name(i), sim.port(i), "0x40") for i in (1, 2)]
        cfg = self.write_config(harness.config_text(self.broker.port, packs, timeout_s=0.3))
        rc, took, d = self.run_once(cfg, ONCE_CONNECT_WAIT_S + 15)
        self.assertEqual(rc, 4, "--once exit status with a silent pack" + self.diag())
        self.expect_states(cap, [pack_name(1)], 1, 5)
        self.assertEqual(cap.states(pack_name(2)), [], "a state of the silent pack")
        self.assertTrue(any(re.search(r"pack %s: no state to deliver: it did not answer"
                                      % pack_name(2), line) for line in d.lines()),
                        "the silent pack is not named" + self.diag())
        self.assertFalse(any("pack %s:" % pack_name(1) in line and "not delivered" in line
                             for line in d.lines()), "pack 1 reported undelivered"
                         + self.diag())

    # --- TLS errors --------------------------------------------------------------------
    def test_missing_tls_files_are_refused_at_start_by_name(self):
        for key in ("tls_ca_file", "tls_cert_file", "tls_key_file"):
            with self.subTest(key=key):
                files = {"tls_ca_file": self.certs.ca, "tls_cert_file": self.certs.server[0],
                         "tls_key_file": self.certs.server[1]}
                files[key] = os.path.join(self.dir, "no-such-%s.pem" % key)
                extra = ["%s: %s" % (k, v) for k, v in files.items() if k != "tls_ca_file"]
                cfg = self.write_config(mock_config(harness.free_port(), files["tls_ca_file"],
                                                    extra=extra), "cfg-%s.yaml" % key)
                r = subprocess.run([BMS2MQTT, "-C", cfg], capture_output=True, text=True,
                                   timeout=10, stdin=subprocess.DEVNULL)
                self.assertNotEqual(r.returncode, 0, "started without %s" % files[key])
                self.assertIn(files[key], r.stderr, "the message must name the file")
                self.assertIn(key, r.stderr, "the message must name the config key")
                self.assertIn("No such file", r.stderr)

    def expect_cause(self, d, pattern, what):
        line = d.wait_line(r"cannot reach broker .*(%s)" % pattern, 10)
        self.assertIsNotNone(line, "%s: no 'cannot reach broker' line naming it%s"
                             % (what, self.diag()))
        return line

    def test_host_name_mismatch_is_named(self):
        tls_port = self.start_tls_broker(cert=self.certs.wrong_host)
        d = self.start_daemon(self.write_config(mock_config(tls_port, self.certs.ca)))
        line = self.expect_cause(d, r"host ?name mismatch", "certificate for another host")
        self.assertIn("broker.example.org", line.string)

    def test_unknown_ca_is_named(self):
        tls_port = self.start_tls_broker()
        d = self.start_daemon(self.write_config(mock_config(tls_port, self.certs.other_ca)))
        line = self.expect_cause(d, r"unknown CA", "certificate of an unknown CA")
        self.assertIn("unable to get local issuer certificate", line.string)
        self.assertIn(self.certs.other_ca, line.string)


if __name__ == "__main__":
    unittest.main(verbosity=2)
