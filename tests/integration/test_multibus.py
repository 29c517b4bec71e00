#!/usr/bin/env python3
"""Several buses in one daemon, each with its own protocol, failing and recovering on its own:
EG4 packs over Modbus RTU on one bus and a Pylontech stack on another, in the `buses:` form
of the configuration; and the original form (`bus:` and `packs:`) still one bus."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_buses import BusSim  # noqa: E402


class MultiBusTest(harness.StackTest):
    def start_bus_sim(self, name, *args):
        d = os.path.join(self.dir, name)
        os.mkdir(d)
        s = BusSim(list(args), d)
        self.addCleanup(s.stop)
        return s, d

    def test_two_buses_two_protocols_each_on_its_own(self):
        broker = self.start_broker()
        cap = self.start_capture()
        rack, rack_dir = self.start_bus_sim("rack", "--packs", "0", "--bus", "1,2")
        stack, stack_dir = self.start_bus_sim("stack", "--protocol", "pylontech", "--packs", "0",
                                              "--bus", "2,3")
        text = """\
buses:
  - name: rack
    mode: modbus_per_pack
    port: {rack}
    timeout_s: 0.5
    poll_interval_s: 0.5
    packs:
      - {{name: pack1, address: 1}}
      - {{name: pack2, address: 2}}
  - name: stack
    mode: pylontech
    port: {stack}
    timeout_s: 0.5
    poll_interval_s: 0.5
    packs:
      - {{name: us3000_2, address: 2}}
      - {{name: us3000_3, address: 3}}
mqtt:
  host: 127.0.0.1
  port: {port}
""".format(rack=os.path.join(rack_dir, "pack1"), stack=os.path.join(stack_dir, "pack1"),
           port=broker.port)
        daemon = self.start_daemon(self.write_config(text))
        names = ("pack1", "pack2", "us3000_2", "us3000_3")
        self.expect_states(cap, names, 2, 30)
        for name in names:
            s = json.loads(cap.states(name)[-1][2])
            cells = [s["cell_%02d_voltage" % i] for i in range(1, 17)]
            self.assertAlmostEqual(s["pack_voltage"], sum(cells), delta=0.05, msg=name)
        # Each bus's devices are the HA devices of its protocol.
        configs = cap.last_configs()
        dev = json.loads(configs[harness.discovery_topic("sensor", "us3000_2", "soc")])["device"]
        self.assertEqual(dev["manufacturer"], "Pylontech")
        dev = json.loads(configs[harness.discovery_topic("sensor", "pack1", "soc")])["device"]
        self.assertEqual(dev["manufacturer"], "EG4 Electronics")
        # One bus goes away: its packs go offline, the other bus keeps its cadence.
        mark = cap.mark()
        stack.command("unplug 1")
        for name in ("us3000_2", "us3000_3"):
            self.expect_topic(cap, harness.avail_topic(name), "offline", 15, mark)
        self.expect_states(cap, ("pack1", "pack2"), 6, 15, mark)
        self.assertEqual([m for m in cap.messages(mark) if m[1] == harness.avail_topic("pack1")
                          and m[2] == "offline"], [])
        # ... and comes back on its own.
        mark = cap.mark()
        stack.command("replug 1")
        self.expect_states(cap, ("us3000_2", "us3000_3"), 1, 40, mark)
        self.assertIsNone(daemon.proc.poll())
        rc, out = harness.run_ha_check(cap.lines(), self.dir)
        self.assertTrue(out.strip().splitlines()[-1].endswith(" 0 problems"), out[-3000:])


if __name__ == "__main__":
    unittest.main(verbosity=2)
