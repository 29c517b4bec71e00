#!/usr/bin/env python3
"""bench/sniff_file.py - throughput of `bms2mqtt sniff --file` in MB/s.

Records a few seconds of a simulated RS-485 bus (bms-sim as the bus master polling four LP4V2
packs, with their identity reads and noise between frames) from its pty, as
`cat /dev/ttyUSB0 > bus.bin` records a real one, repeats the recording up to SIZE MiB, and
times `bms2mqtt sniff --file` over it for one protocol (lp4v2) and for every protocol at once
(auto): wall time, CPU time (user + system of the child) and MB/s by both. Prints only.

    bench/sniff_file.py [--size MIB] [--runs N] [--build DIR]

Needs python3 and a build with bms2mqtt and bms-sim (default: build-bench, made as run.sh
makes it when it does not exist).
"""
import argparse
import os
import re
import resource
import select
import shutil
import subprocess
import sys
import tempfile
import termios
import time
import tty

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)


def build(build_dir):
    if not os.path.isdir(build_dir):
        subprocess.run(["meson", "setup", build_dir, TOP, "--buildtype=release"], check=True,
                       stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", build_dir, "bms2mqtt", "bms-sim"], check=True,
                   stdout=subprocess.DEVNULL)


def record(sim_bin, workdir, seconds):
    """Bytes a master polling 4 packs puts on the bus in `seconds` (requests, replies, noise)."""
    link = os.path.join(workdir, "dev")
    os.mkdir(link)
    sim = subprocess.Popen([sim_bin, "--packs", "0", "--bus", "1,2,3,4", "--master", "20",
                            "--master-identity", "--noise", "--link", link],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    try:
        port = None
        for line in sim.stdout:
            parts = line.split()
            if parts[:1] == ["PTY"]:
                port = parts[2]
            if parts == ["READY"]:
                break
        if not port:
            raise SystemExit("sniff_file.py: bms-sim announced no pty")
        fd = os.open(port, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            tty.setraw(fd, termios.TCSANOW)
            data = bytearray()
            end = time.monotonic() + seconds
            while (left := end - time.monotonic()) > 0:
                if select.select([fd], [], [], left)[0]:
                    data += os.read(fd, 65536)
        finally:
            os.close(fd)
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    return bytes(data)


def run_sniff(daemon_bin, path, protocol):
    """(wall s, CPU s, frames printed) of one `sniff --file` run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    r = subprocess.run([daemon_bin, "sniff", "--file", path, "--protocol", protocol],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit("sniff_file.py: sniff failed (%d): %s" % (r.returncode, r.stderr))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    frames = len(re.findall(r"(?m)^\s*\d+ ", r.stdout))
    return wall, cpu, frames


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=float, default=16, help="MiB of recording (default 16)")
    ap.add_argument("--runs", type=int, default=3, help="runs per protocol; the best counts")
    ap.add_argument("--build", default=os.path.join(TOP, "build-bench"))
    args = ap.parse_args()

    build(args.build)
    daemon_bin = os.path.join(args.build, "bms2mqtt")
    sim_bin = os.path.join(args.build, "bms-sim")
    workdir = tempfile.mkdtemp(prefix="bms2mqtt-sniff-bench.")
    try:
        piece = record(sim_bin, workdir, 3.0)
        if len(piece) < 1000:
            raise SystemExit("sniff_file.py: the simulated master put only %d bytes on the bus"
                             % len(piece))
        path = os.path.join(workdir, "bus.bin")
        want = int(args.size * 1024 * 1024)
        with open(path, "wb") as f:
            n = 0
            while n < want:
                f.write(piece)
                n += len(piece)
        size = os.path.getsize(path)
        print("sniff --file: a %.1f MiB recording (%d bytes of a 4-pack bus with noise, "
              "repeated)" % (size / 1048576, len(piece)))
        print("%-10s %10s %10s %12s %12s %10s" % ("protocol", "wall s", "CPU s", "MB/s wall",
                                                  "MB/s CPU", "frames"))
        for proto in ("lp4v2", "auto"):
            best = min((run_sniff(daemon_bin, path, proto) for _ in range(args.runs)),
                       key=lambda r: r[1])
            wall, cpu, frames = best
            print("%-10s %10.3f %10.3f %12.1f %12.1f %10d"
                  % (proto, wall, cpu, size / 1e6 / wall, size / 1e6 / max(cpu, 1e-6), frames))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
