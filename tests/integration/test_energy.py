#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# test_energy.py - the energy counters survive a crash of the daemon.
"""Energy counters (total_increasing kWh) against bms-sim and a real mosquitto.

HA takes a total_increasing counter that falls as a meter reset and counts it again. The
daemon writes its state file before it publishes a higher counter, so no value published
after a SIGKILL and a restart is below one published before. Env: BMS2MQTT, BMS_SIM.
"""

import glob
import json
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import StackTest, config_text, pack_name, state_topic  # noqa: E402

KEYS = ("energy_charged_kwh", "energy_discharged_kwh")
PACK = pack_name(1)


def energies(messages):
    """(charged, discharged) of each state message of PACK, in arrival order."""
    out = []
    for _, topic, payload in messages:
        if topic == state_topic(PACK):
            s = json.loads(payload)
            if all(isinstance(s.get(k), (int, float)) for k in KEYS):
                out.append(tuple(s[k] for k in KEYS))
    return out


class EnergyTest(StackTest):

    def energy_stack(self):
        """Broker, capture, one simulated pack with a steady current (pack id 3 of bms-sim's
        swing: about 1 kW charging for its first two minutes), and a config polling it every
        0.2 s with its state file in this test's directory."""
        self.start_broker()
        cap = self.start_capture()
        sim = self.start_sim(1, ["--seed-offset", "2"])
        os.mkdir(os.path.join(self.dir, "state"))
        self.state_file = os.path.join(self.dir, "state", "bms2mqtt.json")
        text = config_text(self.broker.port, [(PACK, sim.port(1), "0x40")], timeout_s=0.5,
                           poll_interval_s=0.2)
        self.cfg_path = self.write_config(text + "state_file: %s\n" % self.state_file)
        return cap

    def wait_energy(self, cap, since, what, pred, timeout=60):
        """Wait until pred(list of (charged, discharged) since index `since`) holds."""
        return self.expect_until(cap, lambda items: pred(energies(items[since:])), timeout, what)

    def test_counters_survive_sigkill(self):
        """Published counters never fall across a SIGKILL and a restart, and the restarted
        daemon resumes from what it had published, not from 0."""
        cap = self.energy_stack()
        live = cap.live_from
        self.start_daemon(self.cfg_path)
        self.wait_energy(cap, live, "a first energy reading", lambda e: e)
        first = energies(cap.messages(live))[0]
        # Three published steps (1 Wh each) of the sum: saves happened while running.
        self.wait_energy(cap, live, "energy counters rising by 3 Wh",
                         lambda e: sum(e[-1]) >= sum(first) + 0.003)

        self.daemons[0].stop(sig=signal.SIGKILL)
        self.assertEqual(self.daemons[0].proc.returncode, -signal.SIGKILL)
        restart = cap.ready()  # the killed daemon's messages are all in before this index
        before = energies(cap.messages(live))
        top = tuple(max(v[k] for v in before) for k in (0, 1))
        self.assertGreater(sum(top), 0)

        self.start_daemon(self.cfg_path)
        # Until the counters rise by one more step after the restart: integration goes on.
        self.wait_energy(cap, restart, "energy counters after the restart",
                         lambda e: e and sum(e[-1]) >= sum(top) + 0.001)
        after = energies(cap.messages(restart))
        for k, key in enumerate(KEYS):
            self.assertGreaterEqual(
                after[0][k], top[k],
                "%s: the restarted daemon published %r, below %r published before the "
                "SIGKILL (a meter reset for HA)%s" % (key, after[0][k], top[k], self.diag()))
            low = [v[k] for v in after if v[k] < top[k]]
            self.assertFalse(low, "%s fell below %r after the restart: %r" % (key, top[k], low))
        # And never a step back anywhere, across both runs.
        seq = before + after
        for k, key in enumerate(KEYS):
            drops = [(a[k], b[k]) for a, b in zip(seq, seq[1:]) if b[k] < a[k]]
            self.assertFalse(drops, "%s fell: %r" % (key, drops[:5]))

        # The state file holds at least what was published, at the published resolution.
        with open(self.state_file, encoding="utf-8") as f:
            saved = json.load(f)["packs"][PACK]
        self.assertGreaterEqual(round(saved["charged_kwh"], 3), max(v[0] for v in seq))
        self.assertGreaterEqual(round(saved["discharged_kwh"], 3), max(v[1] for v in seq))

    def test_corrupt_state_file_is_kept_aside_and_reported(self):
        """A state file that is not JSON is renamed aside with a warning naming both files;
        the daemon starts from 0 and saves a new one, the corrupt one untouched."""
        cap = self.energy_stack()
        garbage = '{"version": 1, "packs": {"%s": {"charged_kwh": 12.' % PACK
        with open(self.state_file, "w", encoding="utf-8") as f:
            f.write(garbage)
        daemon = self.start_daemon(self.cfg_path)
        m = daemon.wait_line(r"warning: energy state file (\S+) is not JSON.*renamed to "
                             r"(\S+);.*start from 0", 10)
        self.assertIsNotNone(m, "no warning about the corrupt state file" + self.diag())
        self.assertEqual(m.group(1), self.state_file)
        aside = m.group(2)
        self.assertEqual(glob.glob(self.state_file + ".corrupt-*"), [aside])
        with open(aside, encoding="utf-8") as f:
            self.assertEqual(f.read(), garbage)
        # Counting goes on from 0 into a new state file.
        self.wait_energy(cap, cap.live_from, "energy counters above 0",
                         lambda e: e and sum(e[-1]) >= 0.001)
        with open(self.state_file, encoding="utf-8") as f:
            self.assertIn(PACK, json.load(f)["packs"])
        with open(aside, encoding="utf-8") as f:
            self.assertEqual(f.read(), garbage)


if __name__ == "__main__":
    unittest.main()
