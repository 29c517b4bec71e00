#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# test_mqtt_options.py - mqtt.protocol_version (MQTT 5, 3.1), mqtt.tls_version, mqtt.tls_capath.
"""The MQTT options against a real mosquitto 2 (which speaks MQTT 5, 3.1.1 and 3.1, TLS 1.2
and 1.3).

MQTT 5: the broker logs each client's protocol ("p5"); everything the daemon does must work
as with 3.1.1: retained discovery before every state, the last will, QoS 1 acknowledgements
(--once). mosquitto tells MQTT 5 clients a Receive Maximum of 20 unacknowledged QoS 1
messages; a dozen packs' discovery is far more than that.

TLS: certificates from test_mqtt.Certs. A TLS server that speaks TLS 1.2 at most is a Python
ssl server (mosquitto 2 cannot be limited to 1.2): it records each handshake.
"""

import os
import re
import socket
import ssl
import subprocess
import threading
import time
import unittest
from unittest import mock

import harness
from harness import BMS2MQTT, StackTest, pack_name, state_topic
from test_mqtt import Certs, mock_config, tls_listener


def openssl_out(*args):
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("openssl %s failed:\n%s" % (" ".join(args), r.stderr))
    return r.stdout.strip()


def ca_directory(path, *ca_files):
    """A CA directory as OpenSSL looks certificates up: each one linked as <hash>.0."""
    os.makedirs(path, exist_ok=True)
    for ca in ca_files:
        h = openssl_out("x509", "-hash", "-noout", "-in", ca)
        os.symlink(ca, os.path.join(path, h + ".0"))
    return path


class Tls12Server:
    """Accepts TCP connections on a free loopback port and does a TLS handshake with TLS 1.2
    at most; records ("ok", version) or ("error", reason) per connection, then closes."""

    def __init__(self, cert):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert[0], cert[1])
        self.ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.results = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(5)
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    result = ("ok", tls.version())
            except (ssl.SSLError, OSError) as e:
                result = ("error", str(e))
                conn.close()
            with self.cond:
                self.results.append(result)
                self.cond.notify_all()

    def wait_result(self, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.results:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return self.results[0]

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(2)


class MqttOptionsTest(StackTest):
    def setUp(self):
        super().setUp()
        self.certs = Certs(self.dir)

    def start_tls_broker(self, cert=None):
        tls_port = harness.free_port()
        self.start_broker(extra_listeners=[tls_listener(tls_port, cert or self.certs.server)])
        return tls_port

    def expect_connected(self, d, what):
        if not d.wait_line(r"mqtt: connected to", 15):
            self.fail("%s: the daemon did not connect%s" % (what, self.diag()))

    # --- MQTT 5 ------------------------------------------------------------------------
    def test_mqtt5_discovery_states_and_will(self):
        """protocol_version 5: the broker sees an MQTT 5 client; every pack's discovery
        configs reach the broker (retained) before its first state, in a burst larger than
        the broker's Receive Maximum; the HA checker accepts them; a daemon killed without
        a goodbye leaves its last will "offline" on the status topic."""
        # The broker logs every packet: the order in which it received them. (Its
        # subscribers may see a QoS 0 state overtake QoS 1 configs it still queues for them.)
        with mock.patch.dict(os.environ, {"IT_BROKER_DEBUG": "1"}):
            self.start_broker()
        cap = self.start_capture()
        # About 140 configs per pack: far beyond the window of 20, and within the 1000
        # messages mosquitto queues for the capture.
        n = 4
        packs = [pack_name(i) for i in range(1, n + 1)]
        cfg = self.write_config(mock_config(self.broker.port, n_packs=n, poll_interval_s=2,
                                            extra=["protocol_version: 5"]))
        d = self.start_daemon(cfg)
        cid = d.client_id()
        line = self.broker.wait_line(r"New client connected from \S+ as %s \(p(\d)," % cid, 10)
        self.assertIsNotNone(line, "the broker did not log the daemon's connection" + self.diag())
        self.assertEqual(line.group(1), "5", "protocol the broker saw: " + line.group(0))
        configs = self.expected_configs(cfg)
        self.expect_configs(cap, configs, 20)
        self.expect_states(cap, packs, 2, 20)
        rx = re.compile(r"Received PUBLISH from %s \(d\d, q(\d), r\d, m\d+, '([^']+)'"
                        % re.escape(cid))
        received = [m.group(2) for m in map(rx.search, self.broker.log_text().splitlines()) if m]
        for p in packs:
            first_state = received.index(state_topic(p))
            mine = {t for t in configs if "/%s_" % p in t}
            late = mine - set(received[:first_state])
            self.assertEqual(late, set(), "pack %s: its state reached the broker before %d of "
                             "its %d discovery configs" % (p, len(late), len(mine)))
        rc, out = harness.run_ha_check(cap.lines(cap.live_from), self.dir)
        self.assertEqual(rc, 0, "HA discovery check failed:\n" + out)
        some = sorted(configs)[0]
        self.assertTrue(harness.retained(self.broker.port, some), "discovery not retained")
        status = d.status_topic()
        self.expect_topic(cap, status, "online", 5)
        mark = cap.mark()
        d.stop(sig=9)
        self.expect_topic(cap, status, "offline", 10, since=mark)

    def test_mqtt5_once_gets_every_acknowledgement(self):
        """--once over MQTT 5: each pack's state is published with QoS 1 and acknowledged."""
        self.start_broker()
        cap = self.start_capture()
        n = 12
        cfg = self.write_config(mock_config(self.broker.port, n_packs=n,
                                            extra=["protocol_version: 5"]))
        d = self.start_daemon(cfg, ["--once"])
        rc = d.proc.wait(timeout=30)
        d.reader.join()
        self.assertEqual(rc, 0, "--once over MQTT 5" + self.diag())
        self.assertTrue(any("state of all %d pack(s) was delivered" % n in line
                            for line in d.lines()), "no delivery line" + self.diag())
        self.expect_states(cap, [pack_name(i) for i in range(1, n + 1)], 1, 5)
        self.assertIsNotNone(self.broker.wait_line(r"as %s \(p5," % d.client_id(), 1))

    def test_mqtt31_is_spoken_when_asked(self):
        """protocol_version 3: MQTT 3.1 (the broker's p1), states arrive."""
        self.start_broker()
        cap = self.start_capture()
        cfg = self.write_config(mock_config(self.broker.port, extra=[
            "protocol_version: 3", "client_id: bms2mqtt-v31"]))
        self.start_daemon(cfg)
        self.assertIsNotNone(self.broker.wait_line(r"as bms2mqtt-v31 \(p1,", 10),
                             "no MQTT 3.1 connection" + self.diag())
        self.expect_states(cap, [pack_name(1)], 1, 10)

    # --- tls_version -------------------------------------------------------------------
    def test_tls_version_13_connects_to_mosquitto(self):
        """tls_version tlsv1.3 against mosquitto (TLS 1.2 and 1.3): connected, states."""
        tls_port = self.start_tls_broker()
        cap = self.start_capture()
        cfg = self.write_config(mock_config(tls_port, self.certs.ca,
                                            extra=["tls_version: tlsv1.3"]))
        d = self.start_daemon(cfg)
        self.expect_connected(d, "tls_version tlsv1.3")
        self.expect_states(cap, [pack_name(1)], 1, 10)

    def test_tls_version_13_refuses_a_tls12_server(self):
        """A server that speaks TLS 1.2 at most: with tls_version tlsv1.3 no handshake
        completes and the log says why; without tls_version the same server completes a
        TLS 1.2 handshake (so the refusal is the option's doing)."""
        server = Tls12Server(self.certs.server)
        self.addCleanup(server.close)
        cfg = self.write_config(mock_config(server.port, self.certs.ca,
                                            extra=["tls_version: tlsv1.3"]), "v13.yaml")
        d = self.start_daemon(cfg, name="v13")
        line = d.wait_line(r"cannot reach broker .*(protocol version|unsupported protocol)", 15)
        self.assertIsNotNone(line, "no 'cannot reach broker' line naming the TLS version"
                             + self.diag())
        self.assertIn("mqtt.tls_version", line.string)
        result = server.wait_result(5)
        self.assertIsNotNone(result, "no connection reached the server")
        self.assertEqual(result[0], "error", "a handshake completed: %r" % (result,))
        d.stop()

        server2 = Tls12Server(self.certs.server)
        self.addCleanup(server2.close)
        cfg = self.write_config(mock_config(server2.port, self.certs.ca), "default.yaml")
        self.start_daemon(cfg, name="default")
        result = server2.wait_result(10)
        self.assertEqual(result, ("ok", "TLSv1.2"), "without tls_version" + self.diag())

    # --- tls_capath --------------------------------------------------------------------
    def test_tls_capath_alone_verifies_the_broker(self):
        """tls_capath (a hashed CA directory) and no tls_ca_file: TLS with the broker's
        certificate checked against the directory; states arrive."""
        tls_port = self.start_tls_broker()
        cap = self.start_capture()
        capath = ca_directory(os.path.join(self.dir, "cas"), self.certs.other_ca, self.certs.ca)
        cfg = self.write_config(mock_config(tls_port, extra=["tls_capath: %s" % capath]))
        d = self.start_daemon(cfg)
        self.expect_connected(d, "tls_capath")
        self.expect_states(cap, [pack_name(1)], 1, 10)

    def test_tls_capath_without_the_broker_ca_names_it(self):
        tls_port = self.start_tls_broker()
        capath = ca_directory(os.path.join(self.dir, "other-cas"), self.certs.other_ca)
        cfg = self.write_config(mock_config(tls_port, extra=["tls_capath: %s" % capath]))
        d = self.start_daemon(cfg)
        line = d.wait_line(r"cannot reach broker .*unknown CA", 10)
        self.assertIsNotNone(line, "no 'unknown CA' line" + self.diag())
        self.assertIn("mqtt.tls_capath %s" % capath, line.string)

    def test_missing_tls_capath_is_refused_at_start(self):
        missing = os.path.join(self.dir, "no-such-dir")
        cfg = self.write_config(mock_config(harness.free_port(),
                                            extra=["tls_capath: %s" % missing]))
        r = subprocess.run([BMS2MQTT, "-C", cfg], capture_output=True, text=True, timeout=10,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("mqtt.tls_capath '%s': No such file or directory" % missing, r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
