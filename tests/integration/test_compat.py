#!/usr/bin/env python3
"""Users of the eg4-battery script switch without losing history: a configuration in the
original form (a top-level `bus:` and `packs:`) gives exactly the discovery topics and HA
unique_ids it gave before the redesign of the daemon (drivers in a table, links behind an
interface, one publisher). golden/original_discovery.txt holds them as the daemon at commit
4d51ee5 published them for the configurations below (one per bus.mode of the original), one
line per config message: mode, topic, unique_id ("(removed)" for the empty retained configs
that retire the script's old entities)."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden",
                      "original_discovery.txt")


def original_config(mode, packs, port=None):
    """The original form: packs [(name, address, own port or None)]."""
    lines = ["bus:", "  mode: %s" % mode, "  transport: serial"]
    if port:
        lines.append("  port: %s" % port)
    lines += ["mqtt:", "  host: 127.0.0.1", "  port: 1883", "  discovery_prefix: homeassistant",
              "packs:"]
    for name, addr, own in packs:
        lines += ["  - name: %s" % name, "    address: %s" % addr]
        if own:
            lines += ["    port: %s" % own, "    baud: 9600"]
    lines.append("cell_count: 16")
    return "\n".join(lines) + "\n"


CONFIGS = {
    "modbus_per_pack": original_config("modbus_per_pack", [("lifepower4_1", "0x40", "/dev/ttyUSB0"),
                                                           ("lifepower4_2", "0x40", "/dev/ttyUSB1")]),
    "active": original_config("active", [("eg4_1", 1, None), ("eg4_2", 2, None)], "/dev/ttyUSB0"),
    "passive": original_config("passive", [("lifepower4_1", 1, None), ("lifepower4_2", 2, None)],
                               "/dev/ttyUSB0"),
    "pylontech": original_config("pylontech", [("us3000_2", 2, None), ("us3000_3", 3, None)],
                                 "/dev/ttyUSB0"),
    "lp4_ascii": original_config("lp4_ascii", [("lp4a_1", 1, None), ("lp4a_2", 2, None)],
                                 "/dev/ttyUSB0"),
}


class CompatTest(unittest.TestCase):
    def test_original_configs_keep_their_discovery_topics_and_unique_ids(self):
        got = set()
        with tempfile.TemporaryDirectory(prefix="bms2mqtt-compat-") as d:
            for mode, text in CONFIGS.items():
                path = os.path.join(d, "%s.yaml" % mode)
                with open(path, "w") as f:
                    f.write(text)
                r = subprocess.run([harness.BMS2MQTT, "--dry-run", "-C", path],
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual(r.returncode, 0, "%s: %s" % (mode, r.stderr))
                for line in r.stdout.splitlines():
                    topic, _, payload = line.partition(" ")
                    if topic.startswith("homeassistant/"):
                        uid = json.loads(payload)["unique_id"] if payload else "(removed)"
                        got.add("%s %s %s" % (mode, topic, uid))
        with open(GOLDEN) as f:
            want = set(f.read().splitlines())
        self.assertEqual(sorted(want - got)[:20], [], "discovery lost since the redesign")
        self.assertEqual(sorted(got - want)[:20], [], "discovery added to an original config")


if __name__ == "__main__":
    unittest.main(verbosity=2)
