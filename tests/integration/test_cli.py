#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# test_cli.py - bms2mqtt's command line: --version, --help, --dry-run, --once, config errors.
"""Integration tests of the bms2mqtt command line (stdlib only). Env: BMS2MQTT, BMS_SIM,
HA_CHECK (see harness.py for the fallbacks)."""

import json
import os
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import BMS2MQTT, pack_name, state_topic, StackTest  # noqa: E402

RUN_TIMEOUT = 10  # s any short-lived invocation gets


def run(*args, timeout=RUN_TIMEOUT, stdin=None):
    return subprocess.run([BMS2MQTT, *args], capture_output=True, timeout=timeout,
                          input=stdin, text=True)


def line_col(text, needle):
    """1-based line and column of the first `needle` in text."""
    for n, line in enumerate(text.splitlines(), 1):
        col = line.find(needle)
        if col >= 0:
            return n, col + 1
    raise AssertionError("%r not in the config" % needle)


class CliTest(StackTest):

    def config(self, packs=2, port=1883, edit=None, name="cfg.yaml"):
        """Original-format config, packs on ports that do not exist; edit(text) -> text."""
        text = harness.config_text(port, [(pack_name(i), "/nonexistent/ttyBMS%d" % i, "0x40")
                                          for i in range(1, packs + 1)])
        if edit:
            text = edit(text)
        return self.write_config(text, name), text

    def test_version(self):
        r = run("--version")
        self.assertEqual(r.returncode, 0, "--version exit status; stderr %r" % r.stderr)
        self.assertRegex(r.stdout.strip(), r"^bms2mqtt \d+\.\d+\.\d+$", "--version output")

    def test_help(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0, "--help exit status; stderr %r" % r.stderr)
        self.assertIn("--dry-run", r.stdout, "--help does not mention --dry-run")
        for command in ("sniff", "scan"):
            self.assertRegex(r.stdout, r"(?m)^  %s +\S" % command,
                             "--help does not list the %s command" % command)

    def test_dry_run_prints_valid_discovery_and_states(self):
        cfg, _ = self.config(packs=2)
        try:
            r = run("--dry-run", "-C", cfg, timeout=5)
        except subprocess.TimeoutExpired:
            self.fail("--dry-run did not finish within 5 s")
        self.assertEqual(r.returncode, 0, "--dry-run exit status; stderr:\n%s" % r.stderr)
        lines = r.stdout.splitlines()
        self.assertTrue(lines, "--dry-run printed nothing; stderr:\n%s" % r.stderr)
        for line in lines:
            self.assertRegex(line, r"^\S+ ", "not a 'topic payload' line: %r" % line[:120])
        topics = [line.split(" ", 1)[0] for line in lines]
        for i in (1, 2):
            p = pack_name(i)
            cfg_topic = harness.discovery_topic("sensor", p, "pack_voltage")
            self.assertIn(cfg_topic, topics, "no discovery config %s in the dry run" % cfg_topic)
            states = [line.split(" ", 1)[1] for line in lines
                      if line.split(" ", 1)[0] == state_topic(p)]
            self.assertEqual(len(states), 1, "%s: %d state lines, want 1" % (p, len(states)))
            s = json.loads(states[0])
            self.assertIsInstance(s.get("pack_voltage"), (int, float), "%s state" % p)
        chk = subprocess.run([sys.executable, harness.HA_CHECK], input=r.stdout,
                             capture_output=True, text=True, timeout=60)
        out = (chk.stdout + chk.stderr).strip()
        last = out.splitlines()[-1] if out else ""
        self.assertTrue(last.endswith(" 0 problems"),
                        "HA checker on the dry run must end with '0 problems' and no "
                        "warnings:\n%s" % harness.tail(out, 30))

    def test_dry_run_simulates_every_protocol(self):
        """Each bus.mode runs its real requests, frames and decoders against simulated packs:
        every pack has a state with its cells, and the bank adds them up."""
        modes = {
            "modbus_per_pack": (["0x40", "0x40"], True),
            "active": (["0", "1"], False),
            "pylontech": (["2", "3", "4"], False),
            "lp4_ascii": (["1", "2"], False),
        }
        for mode, (addresses, own_port) in modes.items():
            with self.subTest(mode=mode):
                lines = ["bus:", "  mode: %s" % mode]
                if not own_port:
                    lines.append("  port: /nonexistent/ttyBUS")
                lines.append("packs:")
                for i, a in enumerate(addresses, 1):
                    lines += ["  - name: %s_%d" % (mode, i), "    address: %s" % a]
                    if own_port:
                        lines.append("    port: /nonexistent/ttyBMS%d" % i)
                cfg = self.write_config("\n".join(lines) + "\n", "%s.yaml" % mode)
                r = run("--dry-run", "-C", cfg, timeout=10)
                self.assertEqual(r.returncode, 0, "%s: exit status; stderr:\n%s"
                                 % (mode, r.stderr))
                states = {}
                for line in r.stdout.splitlines():
                    topic, _, payload = line.partition(" ")
                    if topic.endswith("/state"):
                        states[topic] = json.loads(payload)
                for i in range(1, len(addresses) + 1):
                    s = states.get(state_topic("%s_%d" % (mode, i)))
                    self.assertIsNotNone(s, "%s: no state of pack %d; stderr:\n%s"
                                         % (mode, i, r.stderr))
                    cells = [s["cell_%02d_voltage" % k] for k in range(1, 17)]
                    self.assertTrue(all(isinstance(c, float) and 3.0 < c < 3.6 for c in cells),
                                    "%s: cells %s" % (mode, cells))
                    self.assertAlmostEqual(s["pack_voltage"], sum(cells), delta=0.05)
                bank = [v for t, v in states.items() if "/bank_" in t]
                self.assertEqual(len(bank), 1, "%s: no bank state" % mode)
                self.assertEqual(bank[0]["packs_online"], len(addresses))
                chk = subprocess.run([sys.executable, harness.HA_CHECK], input=r.stdout,
                                     capture_output=True, text=True, timeout=60)
                out = (chk.stdout + chk.stderr).strip()
                self.assertTrue(out.splitlines()[-1].endswith(" 0 problems"),
                                "%s: %s" % (mode, harness.tail(out, 20)))

    def test_unknown_key_names_its_line_and_column(self):
        bad = "  poll_intervall_s: 1.0"
        cfg, text = self.config(edit=lambda t: t.replace("  poll_interval_s: 1.0", bad))
        line, col = line_col(text, "poll_intervall_s")
        r = run("-C", cfg)
        self.assertNotEqual(r.returncode, 0, "a misspelt key was accepted")
        want = "cfg.yaml:%d:%d:" % (line, col)
        self.assertIn(want, r.stderr, "the error must point at the bad key (%s)" % want)

    def test_address_out_of_range_is_refused(self):
        cfg, text = self.config(edit=lambda t: t.replace("address: 0x40", "address: 300", 1))
        line, _ = line_col(text, "address: 300")
        r = run("-C", cfg)
        self.assertNotEqual(r.returncode, 0, "pack address 300 was accepted")
        self.assertRegex(r.stderr, r"cfg\.yaml:%d:\d+:" % line,
                         "the error must name line %d of the address" % line)

    def test_bad_port_url_is_refused_at_load_with_its_position(self):
        # Before, "tcp://HOST" without a port passed the loader and the daemon then died
        # with "out of memory".
        cfg, text = self.config(
            edit=lambda t: t.replace("/nonexistent/ttyBMS1", "tcp://127.0.0.1", 1))
        line, col = line_col(text, "tcp://127.0.0.1")
        r = run("-C", cfg)
        self.assertEqual(r.returncode, 1, "a tcp:// port without a TCP port was accepted")
        self.assertIn("cfg.yaml:%d:%d: packs[0].port 'tcp://127.0.0.1' has no port" % (line, col),
                      r.stderr)
        self.assertNotIn("out of memory", r.stderr)

    def test_once_publishes_one_state_per_pack_and_exits(self):
        self.start_broker()
        cap = self.start_capture()
        sim = self.start_sim(2)
        packs = [pack_name(1), pack_name(2)]
        cfg = self.write_config(harness.config_text(
            self.broker.port, [(p, sim.port(i), "0x40") for i, p in enumerate(packs, 1)]))
        d = self.start_daemon(cfg, ["--once"])
        try:
            rc = d.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.fail("--once still running after 15 s" + self.diag())
        self.assertEqual(rc, 0, "--once exit status" + self.diag())
        status = d.status_topic()
        self.assertIsNotNone(status, "no client id logged" + self.diag())
        # The status "offline" (the daemon's own, or its last will) comes last.
        self.expect_topic(cap, status, "offline", 5)
        cid = d.client_id()
        left = self.farewell(cid)
        problems = []
        for p in packs:
            n = len(cap.states(p))
            if n != 1:
                problems.append("%d states of %s reached the broker, want 1" % (n, p))
        configs = self.expected_configs(cfg)
        got = {m[1] for m in cap.messages() if m[2] and m[1] in configs}
        if got != configs:
            problems.append("%d of %d discovery configs never reached the broker"
                            % (len(configs - got), len(configs)))
        if left != "Client %s disconnected." % cid:
            problems.append("no clean DISCONNECT (queued messages dropped, last will "
                            "used); the broker logged %r" % left)
        self.assertEqual(problems, [], "--once exited 0 but:\n  " + "\n  ".join(problems)
                         + self.diag())


    def test_sigterm_while_once_shuts_down_is_harmless(self):
        """A SIGTERM while --once, its cycle done, says goodbye to the broker: exit status 0.
        The signal thread asks the poller to stop even then; it is joined before the poller is
        freed (ThreadSanitizer, in CI, caught it using the poller as it was freed)."""
        self.start_broker()
        self.start_capture()
        sim = self.start_sim(1)
        cfg = self.write_config(harness.config_text(self.broker.port,
                                                    [(pack_name(1), sim.port(1), "0x40")]))
        d = self.start_daemon(cfg, ["--once"])
        # The cycle's report: the bus threads are stopped, the publisher is finishing.
        self.assertIsNotNone(d.wait_line(r"pack %s: \d+ polls" % pack_name(1), 15),
                             "no poll report" + self.diag())
        d.proc.send_signal(signal.SIGTERM)
        try:
            rc = d.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.fail("--once still running 15 s after SIGTERM" + self.diag())
        self.assertEqual(rc, 0, "--once exit status" + self.diag())


if __name__ == "__main__":
    unittest.main(verbosity=2)
