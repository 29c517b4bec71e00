#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# test_daemon.py - bms2mqtt against a real mosquitto and simulated packs on ptys.
"""Integration tests of the running daemon (stdlib only).

Each test starts its own mosquitto on a free loopback port, a capture subscribed to '#',
bms-sim with N packs on ptys, and bms2mqtt with a config in the original eg4-battery
format, and stops them all by pid afterwards. Env: BMS2MQTT, BMS_SIM, HA_CHECK.
"""

import json
import os
import re
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import (avail_topic, discovery_topic, pack_name, state_topic,  # noqa: E402
                     StackTest)

MODEL = "LP4V2-48V-100AH"
FIRMWARE = "V03R04"
ANY = object()     # not checked
ABSENT = object()  # the key must not be in the config


def serial(i):
    return "LP4V2SIM%08d" % i


CELL_KEYS = ["cell_%02d_voltage" % n for n in range(1, 17)]

# key: (component, unit, device_class, state_class, extra members that must match)
EXPECTED = {
    "pack_voltage": ("sensor", "V", "voltage", "measurement", {}),
    "pack_current": ("sensor", "A", "current", "measurement", {}),
    "soc": ("sensor", "%", "battery", "measurement", {}),
    "soh": ("sensor", "%", ABSENT, "measurement", {}),
    "remaining_ah": ("sensor", "Ah", ABSENT, "measurement", {}),
    "full_capacity_ah": ("sensor", "Ah", ABSENT, "measurement", {}),
    "cell_voltage_delta_mv": ("sensor", "mV", "voltage", "measurement", {}),
    "temperature_pcb": ("sensor", "°C", "temperature", "measurement", {}),
    "cycle_count": ("sensor", ABSENT, ABSENT, "total_increasing", {}),
    "register_00": ("sensor", ABSENT, ABSENT, ANY,
                    {"entity_category": "diagnostic", "enabled_by_default": False}),
    "warning_pack_ov": ("binary_sensor", ABSENT, "problem", ABSENT,
                        {"payload_on": "1", "payload_off": "0"}),
    "protection_discharge_sc": ("binary_sensor", ABSENT, "safety", ABSENT,
                                {"payload_on": "1", "payload_off": "0"}),
    "heater": ("binary_sensor", ABSENT, "heat", ABSENT, {"payload_on": "1", "payload_off": "0"}),
}
for _k in CELL_KEYS:
    EXPECTED[_k] = ("sensor", "V", "voltage", "measurement", {})

# Sensor configs of the original script that must be emptied (retained "") on connect.
RETIRED = ["heater", "warning_pack_ov", "uptime_ds"]

FAILURE_WORDS = re.compile(r"no reply|fail|offline|timeout|bad CRC|malformed|exception|"
                           r"another slave|all zero", re.I)


class DaemonTest(StackTest):

    # ------------------------------------------------------------------------------
    def test_discovery_configs_and_states(self):
        """3 packs: every pack's discovery configs are right for HA, states are plausible
        and consistent, retired sensor topics are emptied, and the HA checker is happy."""
        packs = [pack_name(i) for i in (1, 2, 3)]
        cap, sim, daemon = self.stack(3)
        self.expect_states(cap, packs, 2, 15)
        # States are QoS 0 and may overtake the QoS 1 discovery burst: wait for all of it.
        expected = self.expected_configs(self.cfg_path)
        self.expect_configs(cap, expected, 10)
        status = daemon.status_topic()
        self.assertIsNotNone(status, "daemon never logged its client id" + self.diag())
        self.assertEqual(cap.last_payload(status), "online",
                         "bridge status %s is not 'online'" % status)

        configs = cap.last_configs()
        self.assertEqual({t for t, pl in configs.items() if pl}, expected,
                         "the daemon's discovery topics differ from its --dry-run's")
        all_unique = {}
        for i, pack in enumerate(packs, 1):
            # Every non-empty config of this pack: unique_id <pack>_<key>_eg4, no pack name
            # in the entity name, same availability, device and origin.
            rx = re.compile(r"^%s/(sensor|binary_sensor)/%s_(.+)/config$"
                            % (harness.PREFIX, re.escape(pack)))
            mine = {}
            for topic, payload in configs.items():
                m = rx.match(topic)
                if m and payload:
                    mine[m.group(2)] = (m.group(1), json.loads(payload))
            self.assertGreater(len(mine), 50, "%s: only %d discovery configs" % (pack, len(mine)))
            for key, (component, c) in sorted(mine.items()):
                where = "%s config of %s/%s" % (component, pack, key)
                self.assertEqual(c.get("unique_id"), "%s_%s_eg4" % (pack, key),
                                 "%s: unique_id" % where)
                self.assertNotIn(c["unique_id"], all_unique,
                                 "%s: unique_id also used by %s" % (where,
                                                                   all_unique.get(c["unique_id"])))
                all_unique[c["unique_id"]] = where
                self.assertIsInstance(c.get("name"), str, "%s: name" % where)
                self.assertNotIn(pack, c["name"], "%s: the entity name repeats the pack name "
                                 "(HA prefixes the device name)" % where)
                self.assertEqual(c.get("state_topic"), state_topic(pack), "%s: state_topic" % where)
                if key.startswith("register_"):
                    # Raw registers travel as one array: register_07 reads registers[7].
                    want = "value_json.registers[%d]" % int(key[len("register_"):])
                else:
                    want = "value_json.%s " % key
                self.assertIn(want, c.get("value_template", ""), "%s: value_template" % where)
                self.assertEqual([a.get("topic") for a in c.get("availability", [])],
                                 [status, avail_topic(pack)],
                                 "%s: availability must list the bridge status and the pack "
                                 "availability topics" % where)
                self.assertEqual(c.get("availability_mode"), "all", "%s: availability_mode" % where)
                exp = c.get("expire_after")
                self.assertTrue(isinstance(exp, int) and not isinstance(exp, bool) and exp > 0,
                                "%s: expire_after must be a positive int, got %r" % (where, exp))
                dev = c.get("device", {})
                self.assertEqual(dev.get("identifiers"), [pack], "%s: device identifiers" % where)
                self.assertTrue(dev.get("manufacturer"), "%s: device manufacturer" % where)
                self.assertEqual(dev.get("model"), MODEL, "%s: device model" % where)
                self.assertEqual(dev.get("sw_version"), FIRMWARE, "%s: device sw_version" % where)
                self.assertEqual(dev.get("serial_number"), serial(i),
                                 "%s: device serial_number" % where)
                self.assertEqual(c.get("origin", {}).get("name"), "bms2mqtt",
                                 "%s: origin.name" % where)

            for key, (component, unit, dclass, sclass, extra) in EXPECTED.items():
                topic = discovery_topic(component, pack, key)
                self.assertIn(topic, configs, "no discovery config %s" % topic)
                self.assertTrue(configs[topic], "discovery config %s is empty" % topic)
                c = json.loads(configs[topic])
                for member, want in (("unit_of_measurement", unit), ("device_class", dclass),
                                     ("state_class", sclass), *extra.items()):
                    if want is ANY:
                        continue
                    if want is ABSENT:
                        self.assertNotIn(member, c, "%s: must have no %s (has %r)"
                                         % (topic, member, c.get(member)))
                    else:
                        self.assertEqual(c.get(member), want, "%s: %s" % (topic, member))

            # The original script's sensors that are gone or now binary_sensors: emptied.
            for key in RETIRED:
                topic = discovery_topic("sensor", pack, key)
                got = cap.of_topic(topic)
                self.assertTrue(got, "retired topic %s got no message" % topic)
                self.assertEqual(got[-1][2], "", "retired topic %s must get an empty payload, "
                                 "last was %r" % (topic, got[-1][2][:80]))

            # States: plausible, consistent with the vendor map and the simulator.
            options = json.loads(configs[discovery_topic("sensor", pack, "status")])["options"]
            states = cap.states(pack)
            for _, _, payload in states:
                s = harness.json_or_fail(self, payload, "state of %s" % pack)
                self.check_state(pack, s, options)

        rc, out = harness.run_ha_check(cap.lines(), self.dir)
        last = out.strip().splitlines()[-1] if out.strip() else ""
        self.assertTrue(last.endswith(" 0 problems"),
                        "HA checker (exit %d) must end with '0 problems' and no warnings:\n%s"
                        % (rc, harness.tail(out, 30)))
        self.assertEqual(rc, 0, "HA checker exit status\n" + harness.tail(out, 30))

    def check_state(self, pack, s, options):
        w = "state of %s" % pack
        cells = [s[k] for k in CELL_KEYS]
        for k, v in zip(CELL_KEYS, cells):
            self.assertIsInstance(v, (int, float), "%s: %s = %r" % (w, k, v))
            self.assertTrue(2.0 <= v <= 4.0, "%s: %s = %r is not a LiFePO4 cell voltage"
                            % (w, k, v))
        self.assertAlmostEqual(s["pack_voltage"], sum(cells), delta=0.05,
                               msg="%s: pack_voltage %r vs sum of cells %.3f"
                               % (w, s["pack_voltage"], sum(cells)))
        regs = s.get("registers")
        self.assertIsInstance(regs, list, "%s: registers must be an array" % w)
        self.assertEqual(len(regs), 47, "%s: registers 0..46" % w)
        self.assertAlmostEqual(regs[0] / 100, s["pack_voltage"], delta=1e-9,
                               msg="%s: register 0 is the pack voltage in 10 mV" % w)
        self.assertEqual([r / 1000 for r in regs[2:18]], cells,
                         "%s: registers 2-17 are the cells in mV" % w)
        self.assertTrue(0 <= s["soc"] <= 100, "%s: soc %r" % (w, s["soc"]))
        self.assertEqual(s["soh"], 100, "%s: soh" % w)
        self.assertEqual(s["full_capacity_ah"], 100.0, "%s: full_capacity_ah" % w)
        self.assertEqual(s["capacity_ah"], 100.0, "%s: capacity_ah" % w)
        self.assertEqual(s["cell_count"], 16, "%s: cell_count" % w)
        self.assertTrue(10 <= s["temperature_pcb"] <= 40, "%s: temperature_pcb %r"
                        % (w, s["temperature_pcb"]))
        self.assertIn(s["status"], options, "%s: status not among the options" % w)
        flags = {k: v for k, v in s.items() if k.startswith(("warning_", "protection_"))}
        self.assertGreaterEqual(len(flags), 28, "%s: warning_/protection_ keys missing" % w)
        for k, v in flags.items():
            self.assertIn(v, (0, 1), "%s: %s = %r, must be 0 or 1" % (w, k, v))
        self.assertEqual(s["cell_voltage_delta_mv"], round((max(cells) - min(cells)) * 1000),
                         "%s: cell_voltage_delta_mv vs cells max %.3f min %.3f"
                         % (w, max(cells), min(cells)))

    # ------------------------------------------------------------------------------
    def test_silent_pack_goes_offline_and_back_while_others_keep_cadence(self):
        """A pack that stops answering goes offline after 3 failed polls and comes back;
        the other packs keep their 1 s cadence; the failure is logged a few times only."""
        p1, p2, p3 = (pack_name(i) for i in (1, 2, 3))
        cap, sim, daemon = self.stack(3, poll_interval_s=1.0, timeout_s=0.5)
        for p in (p1, p2, p3):
            self.expect_topic(cap, avail_topic(p), "online", 10)
        self.expect_states(cap, [p1, p2, p3], 1, 10)
        # Fault right after a pack 2 state, so no poll of pack 2 is in flight.
        self.expect(cap, lambda m: m[1] == state_topic(p2), 3, "a fresh state of %s" % p2,
                    since=cap.mark())
        err_mark = daemon.mark()
        sim.fault(2, "silence")
        t_fault = time.monotonic()
        since = cap.mark()

        off = self.expect_topic(cap, avail_topic(p2), "offline", 6, since=since)
        took = off[0] - t_fault
        self.assertLess(took, 5.0, "%s went offline %.1f s after it fell silent (3 polls of "
                        "1 s + 0.5 s timeout)" % (p2, took))
        self.assertGreater(took, 1.5, "%s went offline after only %.1f s: fewer than 3 failed "
                           "polls?" % (p2, took))
        # Keep it silent for 3 more polls (clocked by pack 1's states): the log must not
        # grow with every failed poll.
        self.expect_until(cap, lambda items: sum(1 for m in items if m[1] == state_topic(p1)
                                                 and m[0] > off[0]) >= 3,
                          5, "3 more states of %s while %s is offline" % (p1, p2))
        no_state = [m for m in cap.messages(since) if m[1] == state_topic(p2)]
        self.assertEqual(no_state, [], "%s published a state while silent" % p2)

        t_clear = time.monotonic()
        sim.clear(2)
        back = cap.mark()
        self.expect_topic(cap, avail_topic(p2), "online", 4, since=back)
        self.expect_states(cap, [p2], 2, 4, since=back)

        # Packs 1 and 3 kept their cadence through the whole fault.
        for p in (p1, p3):
            times = [m[0] for m in cap.states(p)]
            before = [t for t in times if t <= t_fault]
            window = before[-1:] + [t for t in times if t_fault < t <= t_clear] + [t_clear]
            gaps = [b - a for a, b in zip(window, window[1:])]
            self.assertGreaterEqual(len(window), 5, "%s: too few states during the fault" % p)
            self.assertLessEqual(max(gaps), 1.5, "%s: a %.2f s gap between states while %s "
                                 "was silent (gaps %s)"
                                 % (p, max(gaps), p2, ["%.2f" % g for g in gaps]))

        # Throttled logging: a handful of lines for a run of failed polls.
        again = daemon.wait_line(r"pack %s: answering again after (\d+) failed polls" % p2, 3,
                                 since=err_mark)
        self.assertIsNotNone(again, "no 'answering again' line for %s" % p2 + self.diag())
        failed = int(again.group(1))
        self.assertGreaterEqual(failed, 5, "only %d failed polls of %s" % (failed, p2))
        lines = [line for line in daemon.lines(err_mark)
                 if p2 in line and FAILURE_WORDS.search(line) and "answering again" not in line]
        self.assertGreaterEqual(len(lines), 1, "the failure of %s was never logged" % p2)
        self.assertLessEqual(len(lines), 3, "%d log lines about %s for %d failed polls (not "
                             "throttled):\n%s" % (len(lines), p2, failed, "\n".join(lines)))
        others = [line for line in daemon.lines(err_mark)
                  if (p1 in line or p3 in line) and FAILURE_WORDS.search(line)]
        self.assertEqual(others, [], "failures logged for the healthy packs")

    # ------------------------------------------------------------------------------
    def test_bad_frames_are_never_published(self):
        """Every kind of bad reply makes the poll fail: no state while it lasts, the pack
        goes offline, and it comes back once the replies are good again."""
        p = pack_name(1)
        cap, sim, daemon = self.stack(1, poll_interval_s=0.5, timeout_s=0.3)
        self.expect_topic(cap, avail_topic(p), "online", 10)
        for fault in ("badcrc 1", "truncate", "garbage", "exception 4", "wrongslave", "zeros"):
            with self.subTest(fault=fault):
                # Right after a good state: no poll is in flight when the fault starts.
                self.expect(cap, lambda m: m[1] == state_topic(p), 3,
                            "a state before fault %s" % fault, since=cap.mark())
                since = cap.mark()
                sim.fault(1, fault)
                self.expect_topic(cap, avail_topic(p), "offline", 4, since=since)
                # One more poll under the fault after going offline.
                self.assertIsNone(cap.quiet(lambda m: m[1] == state_topic(p), 0.6, since),
                                  "a state was published during fault %r" % fault)
                bad = cap.states(p, since)
                self.assertEqual(bad, [], "fault %r: %d state(s) published from bad replies, "
                                 "first %r" % (fault, len(bad), bad[:1]))
                back = cap.mark()
                sim.clear(1)
                self.expect_topic(cap, avail_topic(p), "online", 3, since=back)
                self.assertIsNone(daemon.proc.poll(), "daemon exited during fault %r%s"
                                  % (fault, self.diag()))
        self.expect_states(cap, [p], 1, 2, since=cap.mark())
        self.assertIsNone(daemon.proc.poll(), "daemon exited" + self.diag())

    # ------------------------------------------------------------------------------
    def test_broker_restart_recovery(self):
        """The broker goes away and comes back on the same port: the daemon reconnects and
        publishes its status, discovery and states again, without exiting."""
        packs = [pack_name(1), pack_name(2)]
        cap, sim, daemon = self.stack(2)
        self.expect_states(cap, packs, 1, 10)
        status = daemon.status_topic()
        port = self.broker.port
        mark = daemon.mark()
        cap.stop()
        self.broker.stop()
        self.assertIsNotNone(daemon.wait_line(r"connection to .* lost|cannot reach broker", 5,
                                              since=mark),
                             "daemon did not notice the broker going away" + self.diag())
        self.start_broker(port)
        cap2 = self.start_capture(port, "capture2")
        self.expect_topic(cap2, status, "online", 20)
        for p in packs:
            self.expect_topic(cap2, discovery_topic("sensor", p, "pack_voltage"), None, 20)
        self.expect_configs(cap2, self.expected_configs(self.cfg_path), 10,
                            what="discovery configs on the new broker")
        self.expect_states(cap2, packs, 1, 20, since=cap2.live_from)
        self.assertIsNone(daemon.proc.poll(), "daemon exited" + self.diag())
        connected = [line for line in daemon.lines() if "mqtt: connected" in line]
        self.assertEqual(len(connected), 2, "want 2 'connected' lines:\n" + "\n".join(connected))

    # ------------------------------------------------------------------------------
    def test_ha_birth_republishes_discovery(self):
        """A live homeassistant/status 'online' makes the daemon publish every discovery
        config of every pack again."""
        packs = [pack_name(1), pack_name(2)]
        cap, sim, daemon = self.stack(2)
        self.expect_states(cap, packs, 1, 10)
        before = self.expected_configs(self.cfg_path)
        self.expect_configs(cap, before, 10)
        cap2 = self.start_capture(name="capture2")
        live = cap2.live_from   # retained configs came before this index
        self.assertEqual({m[1] for m in cap2.messages()[:live] if m[1] in before}, before,
                         "a new subscriber did not get every config as retained")
        self.assertEqual([m for m in cap2.messages(live) if m[1] in before], [],
                         "configs arrived live before the HA birth message")
        harness.publish(self.broker.port, "%s/status" % harness.PREFIX, "online")
        self.expect_configs(cap2, before, 5, since=live,
                            what="discovery republished after the HA birth message")
        for p in packs:
            self.assertTrue(any(m[1].startswith("%s/sensor/%s_" % (harness.PREFIX, p))
                                for m in cap2.messages(live)), "no configs again for %s" % p)

    # ------------------------------------------------------------------------------
    def test_burst_beyond_the_client_queue_goes_on_without_a_poll(self):
        """At most 256 messages wait in the MQTT client: a burst of more (the discovery of
        three packs, 423 configs, republished for an HA birth) goes on as the broker
        acknowledges, not at the next poll (30 s away)."""
        packs = [pack_name(1), pack_name(2), pack_name(3)]
        cap, sim, daemon = self.stack(3, poll_interval_s=30)
        self.expect_states(cap, packs, 1, 10)
        configs = self.expected_configs(self.cfg_path)
        self.assertGreater(len(configs), 256)
        self.expect_configs(cap, configs, 10)
        since = cap.mark()
        harness.publish(self.broker.port, "%s/status" % harness.PREFIX, "online")
        self.expect_configs(cap, configs, 10, since=since,
                            what="discovery republished after the HA birth message")
        self.expect_topic(cap, daemon.status_topic(), "online", 5, since=since)

    # ------------------------------------------------------------------------------
    def test_sigterm_publishes_offline_and_exits(self):
        """SIGTERM: exit 0 within 3 s, leaving the retained bridge status 'offline'."""
        cap, sim, daemon = self.stack(1)
        self.expect_states(cap, [pack_name(1)], 1, 10)
        status = daemon.status_topic()
        daemon.proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        try:
            rc = daemon.proc.wait(timeout=3)
        except Exception:
            self.fail("daemon still running 3 s after SIGTERM" + self.diag())
        self.assertEqual(rc, 0, "exit status after SIGTERM (%.1f s)%s"
                         % (time.monotonic() - t0, self.diag()))
        self.expect_topic(cap, status, "offline", 3)
        self.assertEqual(cap.last_payload(status), "offline", "last bridge status message")
        self.assertEqual(harness.retained(self.broker.port, status), "offline",
                         "retained bridge status for a new subscriber")

    # ------------------------------------------------------------------------------
    def test_sigterm_during_a_burst_flushes_then_disconnects_cleanly(self):
        """SIGTERM while discovery is being republished: what the daemon queued still
        reaches the broker, then its own 'offline', then a DISCONNECT (no last will)."""
        packs = [pack_name(i) for i in range(1, 7)]   # ~850 retained configs to resend
        cap, sim, daemon = self.stack(len(packs))
        self.expect_states(cap, packs, 1, 10)
        status = daemon.status_topic()
        configs = self.expected_configs(self.cfg_path)
        self.expect_configs(cap, configs, 10)
        since = cap.mark()
        harness.publish(self.broker.port, "%s/status" % harness.PREFIX, "online")
        self.expect(cap, lambda m: m[1] in configs, 5, "the republished discovery", since)
        daemon.proc.send_signal(signal.SIGTERM)
        try:
            rc = daemon.proc.wait(timeout=3)
        except Exception:
            self.fail("daemon still running 3 s after SIGTERM" + self.diag())
        self.assertEqual(rc, 0, "exit status after SIGTERM" + self.diag())
        left = self.farewell(daemon.client_id())
        self.expect_topic(cap, status, "offline", 3, since=since)
        again = {m[1] for m in cap.messages(since) if m[1] in configs}
        problems = []
        if len(again) != len(configs):
            problems.append("%d of %d republished discovery configs never reached the broker"
                            % (len(configs) - len(again), len(configs)))
        if left != "Client %s disconnected." % daemon.client_id():
            problems.append("no clean DISCONNECT; the broker logged %r (so the 'offline' "
                            "seen may be the last will)" % left)
        self.assertEqual(problems, [], "SIGTERM during a burst:\n  " + "\n  ".join(problems)
                         + self.diag())

    # ------------------------------------------------------------------------------
    def test_one_thread_owns_the_mqtt_client(self):
        """Every libmosquitto call, from mosquitto_new() to mosquitto_destroy(), comes from one
        thread (not the main one): the bus threads hand their polls over, they never publish
        themselves, and the client is not in libmosquitto's threaded mode."""
        binary = os.environ.get("BMS2MQTT_MOSQ_OWNER")
        if not binary:
            self.skipTest("BMS2MQTT_MOSQ_OWNER not set (run through meson test)")
        calls = os.path.join(self.dir, "mosq-calls.txt")
        packs = [pack_name(1), pack_name(2)]
        self.start_broker()
        cap = self.start_capture()
        sim = self.start_sim(2)
        cfg = self.write_config(harness.config_text(
            self.broker.port, [(p, sim.port(i), "0x40") for i, p in enumerate(packs, 1)],
            0.5, 0.2))
        daemon = self.start_daemon(cfg, binary=binary,
                                   env=dict(os.environ, BMS_MOSQ_CALLS=calls))
        self.expect_states(cap, packs, 5, 20)
        harness.publish(self.broker.port, "%s/status" % harness.PREFIX, "online")
        self.expect_states(cap, packs, 2, 10, since=cap.mark())
        daemon.proc.send_signal(signal.SIGTERM)
        self.assertEqual(daemon.proc.wait(timeout=10), 0, "exit status" + self.diag())
        with open(calls) as f:
            seen = [line.split() for line in f.read().splitlines()]
        functions = {fn for fn, _ in seen}
        for fn in ("mosquitto_new", "mosquitto_publish", "mosquitto_loop_read",
                   "mosquitto_disconnect", "mosquitto_destroy"):
            self.assertIn(fn, functions, "no call of %s noted" % fn)
        self.assertNotIn("mosquitto_threaded_set", functions, "threaded mode")
        threads = {int(tid) for _, tid in seen}
        self.assertEqual(len(threads), 1, "libmosquitto called from %d threads:\n%s"
                         % (len(threads), "\n".join(" ".join(c) for c in seen)))
        self.assertNotEqual(threads.pop(), daemon.pid, "libmosquitto called from the main thread")

    # ------------------------------------------------------------------------------
    def test_two_daemons_do_not_knock_each_other_off(self):
        """Two daemons with different packs on one broker: distinct client ids, both stay
        connected and publish."""
        self.start_broker()
        cap = self.start_capture()
        sim = self.start_sim(2)
        d = []
        for i in (1, 2):
            cfg = self.write_config(harness.config_text(
                self.broker.port, [(pack_name(i), sim.port(i), "0x40")]), "cfg%d.yaml" % i)
            d.append(self.start_daemon(cfg))
        topics = [x.status_topic() for x in d]
        self.assertNotIn(None, topics, "a daemon never logged its client id" + self.diag())
        self.assertNotEqual(topics[0], topics[1], "both daemons use the same client id")
        packs = [pack_name(1), pack_name(2)]
        self.expect_states(cap, packs, 1, 10)
        start = time.monotonic()
        since = cap.mark()
        # 3 s of running together (bounded wait for something that must not happen:
        # one of them losing its session shows as its status going offline).
        lost = cap.quiet(lambda m: m[1] in topics and m[2] != "online", 3.0, since)
        self.assertIsNone(lost, "a bridge status changed while both ran: %r" % (lost,))
        end = time.monotonic()
        for p in packs:
            times = [start] + [m[0] for m in cap.states(p, since)] + [end]
            gaps = [b - a for a, b in zip(times, times[1:])]
            self.assertGreaterEqual(len(times), 4, "%s: too few states in 3 s" % p)
            self.assertLessEqual(max(gaps), 1.5, "%s: states stopped for %.2f s" % (p, max(gaps)))
        for t in topics:
            self.assertEqual(cap.last_payload(t), "online", "%s is not online" % t)
            self.assertEqual(harness.retained(self.broker.port, t), "online",
                             "retained %s" % t)
        for x in d:
            self.assertIsNone(x.proc.poll(), "a daemon exited" + self.diag())
            n = len([line for line in x.lines() if "mqtt: connected" in line])
            self.assertEqual(n, 1, "%s connected %d times (session taken over?)%s"
                             % (os.path.basename(x.stderr_path), n, self.diag()))
        self.assertNotIn("already connected", self.broker.log_text(),
                         "the broker closed a session for a duplicate client id")


if __name__ == "__main__":
    unittest.main(verbosity=2)
