#!/usr/bin/env python3
"""doc/readings.md must end with the output of `bms2mqtt --list-readings`."""
import os
import subprocess
import sys

exe, doc = sys.argv[1], sys.argv[2]
table = subprocess.run([exe, "--list-readings"], check=True, capture_output=True, text=True).stdout
with open(doc, encoding="utf-8") as f:
    text = f.read()
if not text.endswith(table):
    print(f"{doc} is out of date: regenerate its tables with `{os.path.basename(exe)} --list-readings`")
    sys.exit(1)
print("1 passed, 0 failed")
