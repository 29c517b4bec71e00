#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/gx.py - a poll of a Victron GX: requests and CPU per poll.

Runs the release daemon with one victron_gx bus against bms-sim's simulated GX (Modbus TCP,
layout ess1 by default: the GX's own services at unit 100, a Multi, a CAN-bus BMS, an MPPT and
a grid meter) and a real local mosquitto, every second for a window, and prints:

  - the scan: requests it took (the first start, no scan cache);
  - requests per poll (mean, min, max; the first poll, which reads every block, left out);
  - CPU per poll of the bus thread (the driver: block reads, decoding, posting), from the
    daemon's own debug line "poll: N requests, X ms CPU" (CLOCK_THREAD_CPUTIME_ID);
  - CPU per poll of the whole daemon (the publisher formatting and publishing the devices'
    states included): delta of the on-CPU ns of every thread (/proc/<pid>/task/*/schedstat)
    over the window / polls.

It prints only; the figures go into the README by hand. A ratio, not a test: the request
count is asserted by the tests (tests/unit/test_victron_gx.c), CPU never is.

    bench/gx.py [SECONDS] [--layout ess1|ess3|offgrid] [--daemon PATH] [--build DIR]

Everything it starts (mosquitto, bms-sim, the daemon) it stops by pid. Needs python3,
mosquitto, meson and ninja (the release tree build-bench is set up when missing).
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_ns(pid):
    """ns on-CPU of every thread of pid (the first field of each task's schedstat)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except OSError:
            pass  # a thread that just ended
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("seconds", nargs="?", type=float, default=30.0)
    ap.add_argument("--layout", default="ess1")
    ap.add_argument("--daemon", help="bms2mqtt binary to measure (default: build-bench's)")
    ap.add_argument("--build", default=os.path.join(TOP, "build-bench"))
    args = ap.parse_args()

    if not os.path.exists(os.path.join(args.build, "build.ninja")):
        subprocess.run(["meson", "setup", args.build, TOP, "--buildtype=release"], check=True,
                       stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", args.build, "bms2mqtt", "bms-sim"], check=True,
                   stdout=subprocess.DEVNULL)
    daemon_bin = args.daemon or os.path.join(args.build, "bms2mqtt")
    sim_bin = os.path.join(args.build, "bms-sim")
    tmp = tempfile.mkdtemp(prefix="bms2mqtt-bench-gx-")
    procs = []
    try:
        port = free_port()
        with open(os.path.join(tmp, "mosquitto.conf"), "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n" % port)
        procs.append(subprocess.Popen(["mosquitto", "-c", os.path.join(tmp, "mosquitto.conf")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("gx.py: mosquitto did not start")
                time.sleep(0.05)
        sim = subprocess.Popen([sim_bin, "--protocol", "victron_gx", "--tcp", "--layout",
                                args.layout], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
        procs.append(sim)
        gx = None
        for line in sim.stdout:
            if line.startswith("TCP "):
                gx = line.split()[2]
            if line.strip() == "READY":
                break
        cfg = os.path.join(tmp, "bms2mqtt.yaml")
        with open(cfg, "w") as f:
            f.write("mqtt:\n  host: 127.0.0.1\n  port: %d\nbuses:\n  - name: gx\n"
                    "    mode: victron_gx\n    port: modbus-tcp://%s\n    poll_interval_s: 1\n"
                    "state_file: %s/bms2mqtt.json\n" % (port, gx, tmp))
        d = subprocess.Popen([daemon_bin, "-C", cfg, "--log-level", "debug"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        procs.append(d)
        polls, scan = [], [None]
        lock = threading.Lock()
        poll_rx = re.compile(r"bus gx: poll: (\d+) requests, ([\d.]+) ms CPU")
        scan_rx = re.compile(r"scan done: (\d+) devices in (\d+) requests")

        def read():
            for line in d.stderr:
                m = poll_rx.search(line)
                if m:
                    with lock:
                        polls.append((time.monotonic(), int(m.group(1)), float(m.group(2))))
                m = scan_rx.search(line)
                if m:
                    scan[0] = (int(m.group(1)), int(m.group(2)))

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + 60
        while True:
            with lock:
                if len(polls) >= 2:
                    break
            if time.monotonic() > deadline or d.poll() is not None:
                sys.exit("gx.py: the daemon did not poll the GX")
            time.sleep(0.1)
        t0, c0 = time.monotonic(), cpu_ns(d.pid)
        with lock:
            n0 = len(polls)
        time.sleep(args.seconds)
        t1, c1 = time.monotonic(), cpu_ns(d.pid)
        with lock:
            window = polls[n0:]
            steady = polls[1:]
        reqs = [p[1] for p in steady]
        cpus = [p[2] for p in steady]
        print("bench/gx.py: layout %s, %.0f s window, daemon %s" % (args.layout, t1 - t0,
                                                                     daemon_bin))
        if scan[0]:
            print("  scan:               %d devices in %d requests" % scan[0])
        print("  polls:              %d in the window (%d after the first)" % (len(window),
                                                                             len(steady)))
        print("  requests per poll:  mean %.2f, min %d, max %d (first poll: %d)" % (
            sum(reqs) / len(reqs), min(reqs), max(reqs), polls[0][1]))
        print("  bus thread CPU:     %.3f ms per poll (mean; max %.3f)" % (
            sum(cpus) / len(cpus), max(cpus)))
        if window:
            print("  daemon CPU:         %.3f ms per poll (all threads, schedstat, over %d "
                  "polls)" % ((c1 - c0) / 1e6 / len(window), len(window)))
    finally:
        for p in reversed(procs):
            stop(p)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
