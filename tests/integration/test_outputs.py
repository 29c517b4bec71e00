#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# test_outputs.py - the outputs beyond MQTT: JSON lines, /metrics, /api/v1/state and the status
# page, through the real daemon against bms-sim and a real mosquitto.
"""The daemon's JSON lines (--jsonl, `jsonl:`) and its HTTP listener (--http, `http.listen`).

Each test starts its own mosquitto, bms-sim and bms2mqtt (harness.py) and stops them by pid.
promtool (Debian package prometheus) checks /metrics and headless Chromium (Debian chromium)
loads the status page; scripts/deps.sh installs both, and a test that needs one that is
missing skips, saying so.
"""

import calendar
import html.parser
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import BMS2MQTT, pack_name, state_topic, StackTest  # noqa: E402
from test_buses import BusSim, bus_config  # noqa: E402

CAUSES = ["open", "io", "timeout", "crc", "slave", "function", "length", "exception", "zero"]
HTTP_MAX_CONNECTIONS = 16  # src/publish/http.h
ISO = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})Z$")


def iso_to_unix(text):
    m = ISO.match(text)
    if not m:
        raise AssertionError("not ISO 8601 UTC with milliseconds: %r" % text)
    t = time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")
    return calendar.timegm(t) + int(m.group(7)) / 1000


def http_request(port, path, method="GET", host="127.0.0.1", body=None, timeout=10):
    """(status, {header: value} lower case, body bytes)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body)
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


LABELS = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """[(name, {label: value}, float)] of every sample."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$", line)
        if not m:
            raise AssertionError("not a sample line: %r" % line)
        out.append((m.group(1), dict(LABELS.findall(m.group(2) or "")), float(m.group(3))))
    return out


def samples(metrics, name, **labels):
    return [v for n, lab, v in metrics if n == name and all(lab.get(k) == w
                                                            for k, w in labels.items())]


def state_equal(state, readings):
    """The MQTT state (its members; registers as one array) says what the JSON line's
    readings {key: {value, unit}} say."""
    for key, value in state.items():
        if key == "registers":
            for i, r in enumerate(value):
                if readings.get("register_%02d" % i, {}).get("value") != r:
                    return False
            continue
        got = readings.get(key, {"value": object()})["value"]
        if value is None or got is None or isinstance(value, str):
            if got != value:
                return False
        elif abs(got - value) > 1e-9:
            return False
    return True


class PageParser(html.parser.HTMLParser):
    """What the status page shows: per device section its name, availability, key readings
    and the cell bars it draws."""

    def __init__(self):
        super().__init__()
        self.devices = {}
        self.cur = None
        self.in_avail = False
        self.scripts = 0
        self.external = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = (a.get("class") or "").split()
        if tag == "script":
            self.scripts += 1
        for k in ("src", "href"):
            if a.get(k) and re.match(r"^(https?:)?//", a[k]):
                self.external.append(a[k])
        if tag == "section" and "device" in cls:
            self.cur = {"avail": None, "cells": [], "keys": {}}
            self.devices[a.get("data-device")] = self.cur
        elif self.cur is not None and tag == "span" and "avail" in cls:
            self.in_avail = True
        elif self.cur is not None and tag == "rect" and "cell" in cls:
            self.cur["cells"].append((int(a["data-cell"]), float(a["data-volts"])))
        elif self.cur is not None and tag == "dd" and a.get("data-key"):
            self.cur["keys"][a["data-key"]] = ""
            self.key = a["data-key"]

    def handle_endtag(self, tag):
        if tag == "section":
            self.cur = None
        if tag == "span":
            self.in_avail = False
        if tag == "dd":
            self.key = None

    def handle_data(self, data):
        if self.cur is not None and self.in_avail:
            self.cur["avail"] = data.strip()
        if self.cur is not None and getattr(self, "key", None):
            self.cur["keys"][self.key] += data


class OutputsTest(StackTest):

    def outputs_stack(self, n_packs=2, args=(), extra="", poll_interval_s=0.5):
        """Broker, capture, bms-sim with n packs, and the daemon with `extra` config lines and
        `args`; returns (capture, sim, daemon, http port or None)."""
        self.start_broker()
        cap = self.start_capture()
        sim = self.start_sim(n_packs)
        packs = [(pack_name(i), sim.port(i), "0x40") for i in range(1, n_packs + 1)]
        text = harness.config_text(self.broker.port, packs, 0.5, poll_interval_s) + extra
        self.cfg_path = self.write_config(text)
        daemon = self.start_daemon(self.cfg_path, args)
        return cap, sim, daemon

    def http_stack(self, n_packs=2, args=()):
        port = harness.free_port()
        cap, sim, daemon = self.outputs_stack(n_packs, ("--http", "127.0.0.1:%d" % port,
                                                        *args))
        if not daemon.wait_line(r"http: listening on 127\.0\.0\.1:%d" % port, 10):
            self.fail("the daemon did not say it listens on %d%s" % (port, self.diag()))
        return cap, sim, daemon, port

    def get(self, port, path, want=200, **kw):
        status, headers, body = http_request(port, path, **kw)
        self.assertEqual(status, want, "GET %s: %d %r" % (path, status, body[:200]))
        return headers, body

    def metrics(self, port):
        headers, body = self.get(port, "/metrics")
        self.assertEqual(headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8")
        return body.decode("utf-8")

    def jsonl_lines(self, path):
        """The whole lines of a JSON lines file the daemon is still writing: a read of a
        regular file may see part of a write(2) in progress (a line of 2.5 KB spans pages),
        so the text after the last newline is that line's beginning and is left out. Every
        whole line must be one JSON object."""
        with open(path, encoding="utf-8") as f:
            text = f.read()
        return [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines()]

    def need(self, program, package):
        if not shutil.which(program):
            self.skipTest("%s is not installed (Debian package %s; scripts/deps.sh installs it)"
                          % (program, package))

    # ------------------------------------------------------------------------------
    def test_jsonl_lines_carry_the_polled_values(self):
        """--jsonl FILE: one line per pack per poll, each a JSON object with the time (ISO
        8601 UTC and Unix), device, bus, protocol, availability and every reading with its
        unit; the values are those the MQTT state of the same poll carries."""
        path = os.path.join(self.dir, "out.jsonl")
        with open(path, "w") as f:
            f.write('{"earlier": true}\n')  # appended to, never truncated
        packs = [pack_name(1), pack_name(2)]
        cap, sim, daemon = self.outputs_stack(2, ("--jsonl", path))
        # The line of a poll is written right after its state is published, on the same
        # thread: once 4 states came, the lines of the first 3 are in the file.
        self.expect_states(cap, packs, 4, 20)
        t_end = time.time()
        lines = self.jsonl_lines(path)
        self.assertEqual(lines[0], {"earlier": True})
        lines = lines[1:]
        for pack in packs:
            mine = [ln for ln in lines if ln["device"] == pack]
            self.assertGreaterEqual(len(mine), 3, "%s: %d lines" % (pack, len(mine)))
            for ln in mine:
                self.assertEqual(set(ln), {"time", "unix", "device", "bus", "protocol", "kind",
                                           "availability", "poll", "failures_in_row",
                                           "readings"})
                self.assertAlmostEqual(iso_to_unix(ln["time"]), ln["unix"], delta=0.0011)
                self.assertLess(abs(ln["unix"] - t_end), 60, "time %s is not now" % ln["time"])
                self.assertEqual((ln["bus"], ln["protocol"], ln["kind"]),
                                 ("bus", "lp4v2", "battery"))
                self.assertEqual((ln["availability"], ln["poll"]), ("online", "ok"))
                r = ln["readings"]
                for key, rd in r.items():
                    self.assertEqual(set(rd), {"value", "unit"}, key)
                self.assertEqual(r["pack_voltage"]["unit"], "V")
                self.assertEqual(r["temperature_pcb"]["unit"], "°C")
                self.assertEqual(r["soc"]["unit"], "%")
                self.assertIsNone(r["cell_count"]["unit"])
                cells = [r["cell_%02d_voltage" % i]["value"] for i in range(1, 17)]
                self.assertTrue(all(2.0 < c < 4.0 for c in cells), cells)
                self.assertAlmostEqual(r["pack_voltage"]["value"], sum(cells), delta=0.05)
                self.assertEqual(r["cell_count"]["value"], 16)
                self.assertEqual(r["full_capacity_ah"]["value"], 100)
            self.assertEqual([ln["unix"] for ln in mine], sorted(ln["unix"] for ln in mine))
            # Every state published (but the newest) has its line, with the same values.
            for _, _, payload in cap.states(pack)[:3]:
                state = json.loads(payload)
                self.assertTrue(any(state_equal(state, ln["readings"]) for ln in mine),
                                "%s: no JSON line with the values of state %s"
                                % (pack, payload[:200]))

    def test_jsonl_write_errors_never_stop_polling(self):
        """A JSON lines file on a full disk (/dev/full) and a stdout pipe nobody reads: the
        failure is logged, a few times only, and the states keep coming."""
        packs = [pack_name(1)]
        cap, sim, daemon = self.outputs_stack(1, ("--jsonl", "/dev/full"))
        self.expect_states(cap, packs, 6, 20)
        warned = [ln for ln in daemon.lines() if "jsonl /dev/full" in ln]
        self.assertTrue(warned and "No space left on device" in warned[0],
                        "no warning about the full disk" + self.diag())
        self.assertLessEqual(len(warned), 2, "logged every poll:\n%s" % "\n".join(warned))
        self.assertIsNone(daemon.proc.poll())
        daemon.stop()

        # stdout a pipe whose reader is gone: EPIPE, never SIGPIPE, never a stop.
        mark = cap.mark()
        proc = subprocess.Popen([BMS2MQTT, "-C", self.cfg_path, "--jsonl", "-"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        self.addCleanup(harness.stop_process, proc)
        proc.stdout.close()
        err = harness.LineReader(proc.stderr, os.path.join(self.dir, "epipe.stderr"))
        self.addCleanup(err.join)
        self.expect_states(cap, packs, 5, 20, since=mark)
        self.assertIsNone(proc.poll(), "the daemon ended: %r" % proc.poll())
        self.assertTrue(err.wait_for(lambda item: "Broken pipe" in item[1], 5),
                        "no warning about the broken pipe")
        self.assertEqual(harness.stop_process(proc), 0)
        err.join()
        proc.stderr.close()

        # stdout a pipe nobody reads, which fills after a dozen lines: the publisher never
        # waits for it (states go on, lines are dropped), and the lines that went in are whole.
        text = harness.config_text(self.broker.port, [(packs[0], sim.port(1), "0x40")], 0.5,
                                   0.1)
        proc = subprocess.Popen([BMS2MQTT, "-C", self.write_config(text, "fast.yaml"),
                                 "--jsonl", "-"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        self.addCleanup(harness.stop_process, proc)
        err = harness.LineReader(proc.stderr, os.path.join(self.dir, "stuck.stderr"))
        self.addCleanup(err.join)
        self.assertTrue(err.wait_for(lambda item: "the reader is not keeping up" in item[1], 30),
                        "the pipe never filled" + self.diag())
        self.expect_states(cap, packs, 10, 20, since=cap.mark())
        self.assertEqual(harness.stop_process(proc), 0)
        err.join()
        proc.stderr.close()
        lines = proc.stdout.read().decode().splitlines()
        proc.stdout.close()
        self.assertGreater(len(lines), 3)
        for ln in lines:
            self.assertEqual(json.loads(ln)["device"], packs[0])

    def test_metrics_pass_promtool_and_carry_the_labelled_values(self):
        """/metrics: promtool accepts it; each reading with device, bus and protocol labels;
        polls, failures by cause, stray bytes, MQTT state and messages, build info."""
        self.need("promtool", "prometheus")
        packs = [pack_name(1), pack_name(2)]
        cap, sim, daemon, port = self.http_stack(2)
        # The listener's copy follows a round of the publisher's work, a moment after its
        # states went out: once a 4th state came, the 3rd poll is in it.
        self.expect_states(cap, packs, 4, 20)
        text = self.metrics(port)
        path = os.path.join(self.dir, "metrics.txt")
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, "promtool check metrics:\n%s" % (r.stdout + r.stderr)
                         .decode(errors="replace"))
        m = parse_metrics(text)
        version = subprocess.run([BMS2MQTT, "--version"], capture_output=True, text=True,
                                 timeout=10).stdout.split()[1]
        self.assertEqual(samples(m, "bms2mqtt_build_info", version=version), [1])
        self.assertEqual(samples(m, "bms2mqtt_mqtt_connected"), [1])
        self.assertGreater(samples(m, "bms2mqtt_mqtt_messages_published_total")[0], 100)
        for i, pack in enumerate(packs, 1):
            lab = {"device": pack, "bus": "bus", "protocol": "lp4v2"}
            self.assertEqual(samples(m, "bms2mqtt_device_up", **lab), [1])
            self.assertGreaterEqual(samples(m, "bms2mqtt_polls_total", **lab)[0], 3)
            causes = {lb["cause"]: v for n, lb, v in m if n == "bms2mqtt_poll_failures_total"
                      and lb["device"] == pack}
            self.assertEqual(sorted(causes), sorted(CAUSES))
            self.assertEqual(samples(m, "bms2mqtt_cell_count_value", **lab), [16])
            self.assertEqual(samples(m, "bms2mqtt_full_capacity_amperehours", **lab), [100])
            self.assertEqual(samples(m, "bms2mqtt_cycle_count_total", **lab), [12 + i])
            cells = {lb["index"]: v for n, lb, v in m if n == "bms2mqtt_cell_voltage_volts"
                     and lb["device"] == pack}
            self.assertEqual(sorted(cells, key=int), [str(k) for k in range(1, 17)])
            volts = samples(m, "bms2mqtt_pack_voltage_volts", **lab)[0]
            self.assertAlmostEqual(volts, sum(cells.values()), delta=0.05)
            soc = samples(m, "bms2mqtt_soc_ratio", **lab)[0]
            self.assertTrue(0 <= soc <= 1, soc)
            self.assertEqual(len(samples(m, "bms2mqtt_status", **lab)), 1)
            last = samples(m, "bms2mqtt_last_good_poll_timestamp_seconds", **lab)[0]
            self.assertLess(abs(time.time() - last), 30)
            info = [lb for n, lb, _ in m if n == "bms2mqtt_device_info" and lb["device"] == pack]
            self.assertEqual((info[0]["model"], info[0]["serial"]),
                             ("LP4V2-48V-100AH", "LP4V2SIM%08d" % i))
        stray = [lb for n, lb, _ in m if n == "bms2mqtt_stray_bytes_total"]
        self.assertEqual(sorted(lb["port"] for lb in stray), sorted(sim.port(i) for i in (1, 2)))
        # HEAD: the headers, no body.
        status, headers, body = http_request(port, "/metrics", method="HEAD")
        self.assertEqual((status, body), (200, b""))
        self.assertTrue(headers["content-type"].startswith("text/plain; version=0.0.4"))

    def test_unknown_readings_are_absent_from_metrics_and_null_in_json(self):
        """A Pylontech module that refuses its alarm and limit commands: those readings are
        unknown, so /metrics has no sample of them (never 0) and the JSON says null."""
        self.need("promtool", "prometheus")
        broker = self.start_broker()
        cap = self.start_capture()
        sim = BusSim(["--protocol", "pylontech", "--baud", "115200", "--packs", "0", "--bus", "2",
                      "--refuse", "1:0x44", "--refuse", "1:0x92", "--refuse", "1:0x47"],
                     self.dir)
        self.addCleanup(sim.stop)
        self.sim = sim
        port = harness.free_port()
        jsonl = os.path.join(self.dir, "out.jsonl")
        text = bus_config(broker.port, "pylontech", os.path.join(self.dir, "pack1"),
                          [("us3000_2", 2, None)], poll_interval_s=0.3)
        text = text.replace("  baud: 9600\n", "")
        text += 'jsonl: %s\nhttp:\n  listen: "127.0.0.1:%d"\n' % (jsonl, port)
        daemon = self.start_daemon(self.write_config(text))
        got = cap.wait_until(lambda items: [m for m in items
                                            if m[1] == state_topic("us3000_2")][3:], 30)
        self.assertTrue(got, "fewer than 4 states" + self.diag())
        unknown = ["charge_voltage_limit", "discharge_current_limit", "alarm_cell_voltage_low"]
        state = json.loads(got[-1][2])
        for key in unknown:
            self.assertIsNone(state[key], key)
        text = self.metrics(port)
        r = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, (r.stdout + r.stderr).decode(errors="replace"))
        m = parse_metrics(text)
        names = {n for n, lb, _ in m if lb.get("device") == "us3000_2"}
        self.assertIn("bms2mqtt_pack_voltage_volts", names)
        for key in unknown:
            self.assertFalse([n for n in names if key in n],
                             "%s has a sample though the module never gave it" % key)
        doc = json.loads(self.get(port, "/api/v1/state")[1])
        readings = doc["devices"][0]["readings"]
        for key in unknown:
            self.assertIsNone(readings[key]["value"], key)
        self.assertGreater(readings["pack_voltage"]["value"], 40)
        lines = self.jsonl_lines(jsonl)
        self.assertTrue(lines)
        for ln in lines:
            for key in unknown:
                self.assertIsNone(ln["readings"][key]["value"], key)

    def test_state_document_follows_availability(self):
        """/api/v1/state: every pack with its availability, the age of its last good poll
        and its readings with units; a pack that falls silent turns offline there, its age
        grows, and /metrics drops its readings and says device_up 0."""
        packs = [pack_name(1), pack_name(2)]
        cap, sim, daemon, port = self.http_stack(2)
        self.expect_states(cap, packs, 2, 20)
        headers, body = self.get(port, "/api/v1/state")
        self.assertEqual(headers["content-type"], "application/json")
        doc = json.loads(body)
        self.assertTrue(doc["mqtt"]["connected"])
        self.assertEqual([d["name"] for d in doc["devices"]], packs)
        for i, d in enumerate(doc["devices"], 1):
            self.assertEqual(d["availability"], "online")
            self.assertEqual((d["bus"], d["protocol"], d["port"]), ("bus", "lp4v2", sim.port(i)))
            self.assertEqual(d["identity"]["serial"], "LP4V2SIM%08d" % i)
            self.assertLess(d["last_good_poll"]["age_s"], 5)
            self.assertAlmostEqual(iso_to_unix(d["last_good_poll"]["time"]),
                                   d["last_good_poll"]["unix"], delta=0.0011)
            self.assertEqual(d["readings"]["pack_voltage"]["unit"], "V")
            self.assertEqual(d["readings"]["cell_count"]["value"], 16)
            self.assertEqual(d["last_poll"], "ok")

        mark = cap.mark()
        sim.fault(2, "silence")
        self.expect_topic(cap, harness.avail_topic(packs[1]), "offline", 10, since=mark)
        self.expect_states(cap, [packs[0]], 1, 5, since=cap.mark())  # the publisher moved on
        doc = json.loads(self.get(port, "/api/v1/state")[1])
        d2 = doc["devices"][1]
        self.assertEqual(d2["availability"], "offline")
        self.assertEqual(d2["last_poll"], "timeout")
        self.assertGreaterEqual(d2["failures_in_row"], 3)
        self.assertGreaterEqual(d2["failed_polls"]["timeout"], 3)
        self.assertGreater(d2["last_good_poll"]["age_s"], 1.0)
        self.assertIsNotNone(d2["readings"]["pack_voltage"]["value"])  # the last good poll's
        m = parse_metrics(self.metrics(port))
        lab = {"device": packs[1], "bus": "bus", "protocol": "lp4v2"}
        self.assertEqual(samples(m, "bms2mqtt_device_up", **lab), [0])
        self.assertEqual(samples(m, "bms2mqtt_pack_voltage_volts", **lab), [])
        self.assertGreaterEqual(samples(m, "bms2mqtt_poll_failures_total", cause="timeout",
                                        **lab)[0], 3)
        self.assertEqual(len(samples(m, "bms2mqtt_pack_voltage_volts", device=packs[0])), 1)

    def test_status_page_in_headless_chromium(self):
        """The status page in headless Chromium: every pack with its availability and key
        readings, a bar per cell (as many as the pack has cells); no script (and a policy
        that would run none) and nothing loaded from elsewhere. (--dump-dom itself needs
        JavaScript on: the page's policy is what keeps scripts out.)"""
        self.need("chromium", "chromium")
        packs = [pack_name(1), pack_name(2), pack_name(3)]
        cap, sim, daemon, port = self.http_stack(3)
        self.expect_states(cap, packs, 2, 20)
        mark = cap.mark()
        sim.fault(3, "silence")
        self.expect_topic(cap, harness.avail_topic(packs[2]), "offline", 10, since=mark)
        self.expect_states(cap, [packs[0]], 1, 5, since=cap.mark())  # the publisher moved on
        headers, raw = self.get(port, "/")
        self.assertEqual(headers["content-type"], "text/html; charset=utf-8")
        self.assertIn("default-src 'none'", headers.get("content-security-policy", ""))
        self.assertNotIn(b"<script", raw)
        profile = os.path.join(self.dir, "chromium-profile")
        r = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                            "--disable-dev-shm-usage", "--no-first-run",
                            "--user-data-dir=" + profile,
                            "--dump-dom", "http://127.0.0.1:%d/" % port],
                           capture_output=True, timeout=120)
        dom = r.stdout.decode("utf-8", errors="replace")
        self.assertIn("</html>", dom, "chromium printed no page (exit %d): %s"
                      % (r.returncode, r.stderr.decode(errors="replace")[-2000:]))
        page = PageParser()
        page.feed(dom)
        self.assertEqual(page.scripts, 0)
        self.assertEqual(page.external, [])
        self.assertEqual(sorted(page.devices), packs, "devices shown: %s" % sorted(page.devices))
        state = {d["name"]: d for d in json.loads(self.get(port, "/api/v1/state")[1])["devices"]}
        for pack in packs:
            shown = page.devices[pack]
            self.assertEqual(shown["avail"], "offline" if pack == packs[2] else "online", pack)
            n_cells = state[pack]["readings"]["cell_count"]["value"]
            self.assertEqual(n_cells, 16)
            self.assertEqual(len(shown["cells"]), n_cells, "%s: %d cell bars" % (pack,
                                                                                len(shown["cells"])))
            self.assertEqual([c for c, _ in shown["cells"]], list(range(1, 17)))
            self.assertTrue(all(2.0 < v < 4.0 for _, v in shown["cells"]))
            for key in ("soc", "pack_voltage", "pack_current", "pack_power", "temperature_pcb"):
                self.assertIn(key, shown["keys"], "%s: no %s among the key readings"
                              % (pack, key))
            self.assertTrue(shown["keys"]["pack_voltage"].strip().endswith(" V"))

    def test_listener_refuses_bad_methods_and_bounds_requests(self):
        """Only GET and HEAD (405 with Allow otherwise), 404 for other paths, oversized
        requests refused, at most HTTP_MAX_CONNECTIONS at once; and while every connection
        is taken and held, the packs keep being polled and published."""
        packs = [pack_name(1)]
        cap, sim, daemon, port = self.http_stack(1)
        self.expect_states(cap, packs, 1, 20)
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            status, headers, _ = http_request(port, "/metrics", method=method, body=b"x=1")
            self.assertEqual(status, 405, method)
            self.assertEqual(headers.get("allow"), "GET, HEAD", method)
        self.get(port, "/nope", want=404)
        self.get(port, "/metrics/../etc/passwd", want=404)

        def raw(request):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                try:
                    s.sendall(request)
                    return s.recv(200)
                except (ConnectionResetError, BrokenPipeError):
                    return b""
        got = raw(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n")
        self.assertTrue(got == b"" or re.match(rb"HTTP/1\.[01] (413|414|431) ", got), got)
        got = raw(b"GET /" + b"a" * 65536 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(got == b"" or re.match(rb"HTTP/1\.[01] (413|414|431) ", got), got)

        held = [socket.create_connection(("127.0.0.1", port), timeout=5)
                for _ in range(HTTP_MAX_CONNECTIONS)]
        try:
            extra = socket.create_connection(("127.0.0.1", port), timeout=5)
            extra.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            extra.settimeout(1.0)
            try:
                early = extra.recv(100)
            except socket.timeout:
                early = None
            self.assertIsNone(early, "a connection beyond the limit was served: %r" % early)
            # The daemon polls and publishes on, whatever the listener does.
            self.expect_states(cap, packs, 2, 10, since=cap.mark())
        finally:
            for s in held:
                s.close()
        extra.settimeout(10)
        data = b""
        while True:
            chunk = extra.recv(65536)
            if not chunk:
                break
            data += chunk
        extra.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data[:100])
        self.get(port, "/metrics")

    def test_bad_listen_addresses_are_refused_at_start(self):
        """A bad http.listen is refused at load with file:line:column, a bad --http with
        status 2, and a port in use is named at start."""
        self.start_broker()
        text = harness.config_text(self.broker.port, [(pack_name(1), "/dev/null", "0x40")])
        cfg = self.write_config(text + "http:\n  listen: 127.0.0.1:99999\n")
        r = subprocess.run([BMS2MQTT, "-C", cfg], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        line = text.count("\n") + 2
        self.assertIn("%s:%d:11: http.listen '127.0.0.1:99999' port must be" % (cfg, line),
                      r.stderr)
        cfg = self.write_config(text + "http:\n  listen: localhost:9108\n")
        r = subprocess.run([BMS2MQTT, "-C", cfg], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s:%d:11: http.listen 'localhost:9108' is no IPv4 address" % (cfg, line),
                      r.stderr)
        cfg = self.write_config(text)
        r = subprocess.run([BMS2MQTT, "-C", cfg, "--http", "::1:9108"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--http '::1:9108' an IPv6 address goes in brackets", r.stderr)
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            port = busy.getsockname()[1]
            r = subprocess.run([BMS2MQTT, "-C", cfg, "--http", "127.0.0.1:%d" % port],
                               capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot listen on 127.0.0.1:%d: Address already in use" % port, r.stderr)

    def test_ipv6_listener(self):
        """http.listen "[::1]:PORT" in the config serves /metrics over IPv6."""
        try:
            with socket.socket(socket.AF_INET6) as s:
                s.bind(("::1", 0))
                port = s.getsockname()[1]
        except OSError as e:
            self.skipTest("no IPv6 loopback here: %s" % e)
        cap, sim, daemon = self.outputs_stack(1, (), 'http:\n  listen: "[::1]:%d"\n' % port)
        self.assertTrue(daemon.wait_line(r"http: listening on \[::1\]:%d" % port, 10),
                        self.diag())
        self.expect_states(cap, [pack_name(1)], 2, 20)
        status, _, body = http_request(port, "/metrics", host="::1")
        self.assertEqual(status, 200)
        self.assertIn(b'bms2mqtt_device_up{device="lifepower4_1"', body)

    def test_dry_run_with_outputs_configured(self):
        """--dry-run still prints what it would publish, writes the JSON lines (stdout here,
        whole lines between the others) and starts no listener."""
        port = harness.free_port()
        text = harness.config_text(1883, [(pack_name(i), "/dev/null", "0x4%d" % i)
                                          for i in (1, 2)])
        cfg = self.write_config(text + 'jsonl: "-"\nhttp:\n  listen: "127.0.0.1:%d"\n' % port)
        r = subprocess.run([BMS2MQTT, "--dry-run", "-C", cfg], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.splitlines()
        jl = [json.loads(ln) for ln in out if ln.startswith("{")]
        rest = [ln for ln in out if not ln.startswith("{")]
        self.assertEqual([j["device"] for j in jl], [pack_name(1), pack_name(2)])
        self.assertTrue(all(j["poll"] == "ok" for j in jl))
        self.assertTrue(any(ln.startswith(state_topic(pack_name(2)) + " {") for ln in rest))
        self.assertTrue(all(re.match(r"^\S+ ", ln) for ln in rest), rest[:3])
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
