#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""gen_regmap.py - turn a register map CSV into a C table of register definitions.

    gen_regmap.py --prefix NAME [--overlay FILE]... [--reading-h PATH] [-o OUT.c] MAP.csv

writes OUT.c (or stdout) defining, for src/proto/regmap.h:
    const struct reading_def NAME_readings[];   the published readings, in the CSV's order
    const size_t NAME_n_readings;
    const struct regmap NAME_map;               readings, unpublished entries, read settings
Errors name the file and line ("map.csv:12: unknown type 'u17' ...") and end with exit status 1.
Python 3 standard library only.

Input format
------------
UTF-8 text. Blank lines and lines starting with '#' are comments, except '#!' lines, which set
the map's read settings: '#! max_block = 125', 'max_skip', 'holes' (readable | fail),
'split_budget', 'recheck_every' (regmap.h explains each; defaults 125, 16, fail, 0, 0).
The first other line is a header naming the columns, in any order; then one row per entry,
fields separated by commas (CSV quoting allowed). Columns, all optional except key and type:

  key        JSON key and unique_id part: a-z, 0-9, '_', at most 40 bytes; unique
  name       HA entity name
  quantity   voltage, current, power, temperature, enum... (enum quantity of src/core/reading.h,
             without Q_, lower case); default 'raw'
  unit_id    Modbus unit id 0..255; 0 (default) = the device's own address
  address    first register, the PDU address (0-based), decimal or 0x hex
  type       u16 s16 u32 s32 u64 (also uint16 int16 uint32 int32 uint64); string[N] (N
             registers of text); reserved[N] (spacers that exist but carry nothing); bit[B]
             (bit B of the register, 0 = least significant); u8[hi] u8[lo] s8[hi] s8[lo] (a byte
             of the register); derived (computed by the protocol, no register)
  word_order high_first (default) or low_first, for 32- and 64-bit types
  divisor    value = raw / divisor (a GX's "scale factor" is one); default 1; never 0
  precision  decimals published, 0..6 (default 0)
  flags      words separated by spaces: diagnostic, disabled, writable, na_ones (0xFFFF in
             every register = unknown), na_min (signed minimum = unknown), identity (read once
             per connection), ascii (string of printable ASCII, other bytes dropped), aux (not
             a published reading: a string the driver keeps), view (may share registers with
             other entries: a raw copy; bits and bytes are views already)
  icon       mdi icon
  options    enum labels: 'code=label;code=label', a code may be 'lo-hi' (a GX's unit column
             has this form); labels repeat for codes that share them
  group      JSON array the reading is published in (its index: its place among the group's rows)
  segment    name of the segment (a GX service): one request never spans two
  path       the register's name in the device's documentation (a GX's D-Bus path)

Overlays (--overlay, in order): files of the same format whose header marks match columns with
a leading '=' (e.g. '=segment,=path,key,name,quantity'). Each overlay row sets its non-empty
cells on every base row with equal match columns, or drops them with a column 'drop' = 'yes';
a row that matches nothing is an error. Their '#!' lines override the base's.

Another format (a GX's attributes.csv: service, D-Bus path, type, unit or enum labels,
register, Modbus type, scale factor, access) needs only a reader that makes Row objects with
these columns (service -> segment, D-Bus path -> path, 'W' -> flag writable, uint16/int32/
string[N]/reserved[N] as they are, INTERNAL[4] -> u64, a blank or 0 scale factor -> divisor 1,
'code=label;...' -> options) and imports this module: apply_overlay(), check(quantities()),
emit_c(), as main() does.
"""
import argparse
import csv
import math
import os
import re
import sys

COLUMNS = ("key", "name", "quantity", "unit_id", "address", "type", "word_order", "divisor",
           "precision", "flags", "icon", "options", "group", "segment", "path")
FLAGS = {"diagnostic": "READING_DIAGNOSTIC", "disabled": "READING_DISABLED",
         "writable": "READING_WRITABLE", "na_ones": "READING_NA_ONES",
         "na_min": "READING_NA_MIN", "identity": "READING_IDENTITY", "ascii": "READING_ASCII",
         "aux": None, "view": None}
SETTINGS = {"max_block": 125, "max_skip": 16, "holes": "fail", "split_budget": 0,
            "recheck_every": 0}
SCALAR_TYPES = {"u16": ("SRC_U16", 1), "s16": ("SRC_S16", 1), "u32": ("SRC_U32", 2),
                "s32": ("SRC_S32", 2), "u64": ("SRC_U64", 4), "uint16": ("SRC_U16", 1),
                "int16": ("SRC_S16", 1), "uint32": ("SRC_U32", 2), "int32": ("SRC_S32", 2),
                "uint64": ("SRC_U64", 4)}
TYPE_HELP = ("u16, s16, u32, s32, u64, string[N], reserved[N], bit[B], u8[hi|lo], s8[hi|lo], "
             "derived")
MAX_BLOCK = 125
KEY_MAX = 40


class MapError(Exception):
    """Problems found in the input, each 'file:line: what'."""

    def __init__(self, problems):
        super().__init__("\n".join(problems))
        self.problems = problems


class Row:
    """One entry: its cells by column name, and where it was written."""

    def __init__(self, cells, where):
        self.cells = dict(cells)
        self.where = where  # "file:line"
        self.spec = None    # filled by check()

    def get(self, col):
        return self.cells.get(col, "").strip()


def quantities(reading_h):
    """The names of enum quantity in reading.h, lower case without Q_ -> C names."""
    with open(reading_h, encoding="utf-8") as f:
        text = f.read()
    body = re.search(r"enum quantity \{(.*?)\};", text, re.S)
    if not body:
        raise SystemExit(f"{reading_h}: no 'enum quantity' found")
    names = re.findall(r"^\s*(Q_[A-Z0-9_]+)\s*,", body.group(1), re.M)
    return {n[2:].lower(): n for n in names}


def read_rows(path, overlay=False):
    """Rows and '#!' settings of one file of our format. Raises MapError."""
    rows, settings, problems, header = [], {}, [], None
    with open(path, encoding="utf-8", newline="") as f:
        lines = f.read().splitlines()
    for lineno, line in enumerate(lines, 1):
        where = f"{path}:{lineno}"
        stripped = line.strip()
        if stripped.startswith("#!"):
            name, eq, value = stripped[2:].partition("=")
            name, value = name.strip(), value.strip()
            if not eq or name not in SETTINGS:
                problems.append(f"{where}: unknown setting '{stripped[2:].strip()}' "
                                f"(one of {', '.join(SETTINGS)}, as '#! name = value')")
            else:
                settings[name] = (value, where)
            continue
        if not stripped or stripped.startswith("#"):
            continue
        cells = next(csv.reader([line]))
        if header is None:
            header = [c.strip() for c in cells]
            known = COLUMNS + ("drop",) if overlay else COLUMNS
            for c in header:
                name = c[1:] if overlay and c.startswith("=") else c
                if name not in known:
                    problems.append(f"{where}: unknown column '{c}' (columns: {', '.join(known)})")
            if overlay and not any(c.startswith("=") for c in header):
                problems.append(f"{where}: an overlay's header marks its match columns with '=' "
                                "(e.g. '=path')")
            if len(set(header)) != len(header):
                problems.append(f"{where}: a column is named twice")
            continue
        if len(cells) > len(header):
            problems.append(f"{where}: {len(cells)} fields, the header has {len(header)}")
            continue
        rows.append(Row(zip(header, cells), where))
    if header is None:
        problems.append(f"{path}:1: no header line")
    if problems:
        raise MapError(problems)
    return rows, settings


def apply_overlay(rows, settings, overlay_rows, overlay_settings):
    """Apply one overlay to rows (in place; returns the rows kept). Raises MapError."""
    problems, dropped = [], set()
    for o in overlay_rows:
        match = {c[1:]: v.strip() for c, v in o.cells.items() if c.startswith("=")}
        hits = [r for r in rows if all(r.get(c) == v for c, v in match.items())]
        if not hits:
            what = ", ".join(f"{c} '{v}'" for c, v in match.items())
            problems.append(f"{o.where}: matches no row ({what})")
            continue
        drop = o.get("drop").lower()
        if drop not in ("", "yes", "no"):
            problems.append(f"{o.where}: drop must be 'yes' or 'no', not '{drop}'")
        for r in hits:
            if drop == "yes":
                dropped.add(id(r))
                continue
            for c, v in o.cells.items():
                if not c.startswith("=") and c != "drop" and v.strip():
                    r.cells[c] = v
            r.where = f"{r.where} (overlay {o.where})"
    if problems:
        raise MapError(problems)
    settings.update(overlay_settings)
    return [r for r in rows if id(r) not in dropped]


def parse_int(text, lo, hi, what, where, problems):
    try:
        v = int(text, 0)
    except ValueError:
        problems.append(f"{where}: {what} '{text}' is not a whole number")
        return None
    if not lo <= v <= hi:
        problems.append(f"{where}: {what} {v} outside {lo}..{hi}")
        return None
    return v


def parse_type(text, where, problems):
    """(src, width, arg, count) of a type cell, or None."""
    t = text.strip().lower()
    if t in SCALAR_TYPES:
        src, width = SCALAR_TYPES[t]
        return src, width, 0, 0
    if t == "derived":
        return "SRC_DERIVED", 0, 0, 0
    m = re.fullmatch(r"(string|reserved|bit|u8|s8)\[\s*([0-9a-z]+)\s*\]", t)
    if m:
        kind, n = m.groups()
        if kind in ("u8", "s8"):
            if n in ("hi", "lo"):
                return f"SRC_{kind.upper()}", 1, 0 if n == "hi" else 1, 0
        elif n.isdigit():
            n = int(n)
            if kind == "bit" and n <= 15:
                return "SRC_BIT", 1, n, 0
            if kind in ("string", "reserved") and 1 <= n <= MAX_BLOCK:
                return ("SRC_STRING" if kind == "string" else "SRC_RESERVED"), n, 0, n
        problems.append(f"{where}: bad type '{text}': string[N] and reserved[N] take 1..{MAX_BLOCK}"
                        " registers, bit[B] 0..15, u8/s8 [hi] or [lo]")
        return None
    problems.append(f"{where}: unknown type '{text}' ({TYPE_HELP})")
    return None


def parse_options(text, where, problems):
    """[(lo, hi, label)] of an options cell, or None."""
    out, seen = [], []
    for part in text.split(";"):
        code, eq, label = part.partition("=")
        code, label = code.strip(), label.strip()
        m = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", code)
        if not eq or not label or not m:
            problems.append(f"{where}: option '{part.strip()}' is not 'code=label' or "
                            "'lo-hi=label'")
            return None
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        if hi < lo or hi > 0xFFFFFFFF:
            problems.append(f"{where}: option codes '{code}' are not a range within 0..2^32-1")
            return None
        for a, b in seen:
            if lo <= b and a <= hi:
                problems.append(f"{where}: option code {code} is given twice")
                return None
        seen.append((lo, hi))
        out.append((lo, hi, label))
    return out


def check(rows, qnames):
    """Validate rows and fill each row's spec. Raises MapError with every problem found."""
    problems, keys, items, views, groups, segments = [], {}, [], {}, {}, {"": 0}
    for r in rows:
        w, p0 = r.where, len(problems)
        s = {"key": r.get("key"), "name": r.get("name"), "icon": r.get("icon"),
             "path": r.get("path"), "at": os.path.basename(w)}
        t = parse_type(r.get("type"), w, problems) if r.get("type") else None
        if not r.get("type"):
            problems.append(f"{w}: no type ({TYPE_HELP})")
        flags = r.get("flags").split()
        for fl in flags:
            if fl not in FLAGS:
                problems.append(f"{w}: unknown flag '{fl}' ({', '.join(FLAGS)})")
        s["flags"] = [FLAGS[f] for f in flags if FLAGS.get(f)]
        s["aux"] = "aux" in flags
        q = r.get("quantity").lower() or "raw"
        if q not in qnames:
            problems.append(f"{w}: unknown quantity '{q}' ({', '.join(qnames)})")
        s["q"] = qnames.get(q, "Q_RAW")
        s["unit"] = parse_int(r.get("unit_id") or "0", 0, 255, "unit_id", w, problems)
        s["precision"] = parse_int(r.get("precision") or "0", 0, 6, "precision", w, problems)
        divisor = r.get("divisor") or "1"
        try:
            s["divisor"] = float(divisor)
            if s["divisor"] == 0 or not math.isfinite(s["divisor"]):
                raise ValueError
        except ValueError:
            problems.append(f"{w}: divisor '{divisor}' is not a finite number other than 0")
        if t is None:
            continue
        s["src"], width, s["arg"], s["count"] = t
        s["width"] = width
        derived, reserved = s["src"] == "SRC_DERIVED", s["src"] == "SRC_RESERVED"
        if reserved:
            s["aux"] = True
        key = s["key"]
        if not reserved or key:
            if not re.fullmatch(r"[a-z0-9_]{1,%d}" % KEY_MAX, key):
                problems.append(f"{w}: key '{key}' is not 1..{KEY_MAX} of a-z, 0-9, '_'")
            elif key in keys:
                problems.append(f"{w}: key '{key}' repeats (first at {keys[key]})")
            else:
                keys[key] = w
        if s["aux"] and s["src"] not in ("SRC_STRING", "SRC_RESERVED"):
            problems.append(f"{w}: 'aux' entries are strings or reserved spacers only")
        order = r.get("word_order").lower() or "high_first"
        if order not in ("high_first", "low_first"):
            problems.append(f"{w}: word_order '{order}' is not high_first or low_first")
        elif order == "low_first":
            if width not in (2, 4) or s["src"] in ("SRC_STRING", "SRC_RESERVED"):
                problems.append(f"{w}: word_order applies to 32- and 64-bit types only")
            s["flags"].append("READING_LOW_WORD_FIRST")
        if "ascii" in flags and s["src"] != "SRC_STRING":
            problems.append(f"{w}: 'ascii' applies to strings only")
        if derived:
            s["reg"] = 0
            if r.get("address"):
                problems.append(f"{w}: a derived reading has no address")
        else:
            s["reg"] = (parse_int(r.get("address"), 0, 0xFFFF, "address", w, problems)
                        if r.get("address") else None)
            if not r.get("address"):
                problems.append(f"{w}: no address")
            elif s["reg"] is not None and s["reg"] + width > 0x10000:
                problems.append(f"{w}: registers {s['reg']}..{s['reg'] + width - 1} run past 65535")
        opts = parse_options(r.get("options"), w, problems) if r.get("options") else None
        s["options"] = opts
        if q == "enum" and not opts:
            problems.append(f"{w}: an enum needs options ('0=off;1=on')")
        if opts and q != "enum":
            problems.append(f"{w}: options need quantity enum, not '{q}'")
        if opts and s["src"] in ("SRC_STRING", "SRC_RESERVED", "SRC_BIT"):
            problems.append(f"{w}: options apply to integer types only")
        group = r.get("group")
        s["group"] = group or None
        if group:
            if s["src"] in ("SRC_BIT", "SRC_U8", "SRC_S8"):
                problems.append(f"{w}: bits and bytes cannot be published in a group")
            s["arg"] = groups.get(group, 0)
            groups[group] = s["arg"] + 1
            if s["arg"] > 255:
                problems.append(f"{w}: group '{group}' has more than 256 members")
        seg = r.get("segment")
        if seg not in segments:
            segments[seg] = len(segments)
        s["segment"] = segments[seg]
        if s["segment"] > 255:
            problems.append(f"{w}: more than 255 segments")
        r.spec = s
        if len(problems) > p0 or derived:
            continue
        view = "view" in flags or s["src"] in ("SRC_BIT", "SRC_U8", "SRC_S8")
        if view:
            vkey = (s["unit"], s["reg"], r.get("type").lower().replace(" ", ""), group or "")
            if vkey in views:
                problems.append(f"{w}: duplicate entry: {r.get('type')} at address {s['reg']} "
                                f"(unit {s['unit']}) is also at {views[vkey]}")
            views[vkey] = w
            continue
        lo, hi = s["reg"], s["reg"] + width - 1
        for other_lo, other_hi, unit, ow in items:
            if unit != s["unit"] or hi < other_lo or other_hi < lo:
                continue
            if other_lo == lo:
                problems.append(f"{w}: duplicate address {lo} (unit {unit}): also at {ow}")
            else:
                problems.append(f"{w}: registers {lo}..{hi} (unit {unit}) overlap registers "
                                f"{other_lo}..{other_hi} at {ow}")
            break
        items.append((lo, hi, s["unit"], w))
    if problems:
        raise MapError(problems)
    return segments


def c_string(text):
    if text is None or text == "":
        return "NULL"
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("\\%03o" % ord(ch))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def c_number(x):
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def emit_entry(s, prefix, idx, decls):
    """One designated initialiser for spec s; option tables go to decls."""
    f = [f".key = {c_string(s['key'])}", f".name = {c_string(s['name'])}", f".q = {s['q']}",
         f".src = {s['src']}"]
    if s["src"] != "SRC_DERIVED":
        f.append(f".reg = {s['reg']}")
    if s["arg"]:
        f.append(f".arg = {s['arg']}")
    f.append(f".precision = {s['precision']}")
    f.append(f".divisor = {c_number(s['divisor'])}")
    if s["flags"]:
        f.append(".flags = " + " | ".join(s["flags"]))
    if s["icon"]:
        f.append(f".icon = {c_string(s['icon'])}")
    opts = s["options"]
    if opts:
        labels = []
        for _, _, label in opts:
            if label not in labels:
                labels.append(label)
        name = f"{prefix}_options_{idx}"
        decls.append(f"static const char *const {name}[] = {{" +
                     ", ".join(c_string(x) for x in labels) + ", NULL};")
        f.append(f".options = {name}")
        simple = len(labels) == len(opts) and all(lo == hi <= 0xFFFF for lo, hi, _ in opts)
        if simple:
            decls.append(f"static const uint16_t {prefix}_codes_{idx}[] = {{" +
                         ", ".join(str(lo) for lo, _, _ in opts) + "};")
            f.append(f".option_codes = {prefix}_codes_{idx}")
        else:
            decls.append(f"static const struct reading_code {prefix}_codes_{idx}[] = {{" +
                         ", ".join(f"{{{lo}, {hi}, {labels.index(label)}}}"
                                   for lo, hi, label in opts) + "};")
            f.append(f".codes = {prefix}_codes_{idx}")
            f.append(f".n_codes = {len(opts)}")
    if s["group"]:
        f.append(f".group = {c_string(s['group'])}")
    if s["unit"]:
        f.append(f".unit = {s['unit']}")
    if s["count"]:
        f.append(f".count = {s['count']}")
    if s["segment"]:
        f.append(f".segment = {s['segment']}")
    if s["path"]:
        f.append(f".path = {c_string(s['path'])}")
    return "    {" + ", ".join(f) + "}, /* " + s["at"].replace("*/", "* /") + " */"


def settings_values(settings):
    """The read settings as numbers and booleans. Raises MapError."""
    out, problems = {}, []
    for name, default in SETTINGS.items():
        value, where = settings.get(name, (str(default), "default"))
        if name == "holes":
            if value not in ("readable", "fail"):
                problems.append(f"{where}: holes must be 'readable' or 'fail', not '{value}'")
            out[name] = value == "readable"
        else:
            hi = MAX_BLOCK if name == "max_block" else 0xFFFF
            out[name] = parse_int(value, 1 if name == "max_block" else 0, hi, name, where,
                                  problems)
            if name == "split_budget" and out[name] == 1:
                problems.append(f"{where}: split_budget is 0 (no splitting) or at least 2")
    if problems:
        raise MapError(problems)
    return out


def emit_c(rows, prefix, settings, sources):
    """The C file for checked rows."""
    decls, defs, aux = [], [], []
    for i, r in enumerate(rows):
        (aux if r.spec["aux"] else defs).append(emit_entry(r.spec, prefix, i, decls))
    v = settings_values(settings)
    names = ", ".join(os.path.basename(s) for s in sources)
    out = [f"/* Generated by tools/gen_regmap.py from {names}: do not edit; edit the CSV. */",
           "#include <stddef.h>", "#include <stdint.h>", "", '#include "regmap.h"', ""]
    out += decls + ([""] if decls else [])
    out.append(f"const struct reading_def {prefix}_readings[] = {{")
    out += defs or ["    {0}, /* no published readings */"]
    out += ["};", f"const size_t {prefix}_n_readings = {len(defs)};", ""]
    if aux:
        out += [f"static const struct reading_def {prefix}_aux[] = {{"] + aux + ["};", ""]
    out += [f"const struct regmap {prefix}_map = {{",
            f"    .name = {c_string(prefix)},",
            f"    .defs = {prefix}_readings,",
            f"    .n_defs = {len(defs)},",
            f"    .aux = {prefix + '_aux' if aux else 'NULL'},",
            f"    .n_aux = {len(aux)},",
            f"    .max_block = {v['max_block']},",
            f"    .max_skip = {v['max_skip']},",
            f"    .holes_readable = {'true' if v['holes'] else 'false'},",
            f"    .split_budget = {v['split_budget']},",
            f"    .recheck_every = {v['recheck_every']},",
            "};", ""]
    return "\n".join(out)


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="Register map CSV -> C table (regmap.h).")
    ap.add_argument("csv")
    ap.add_argument("--prefix", required=True, help="C name prefix, e.g. lp4v2")
    ap.add_argument("--overlay", action="append", default=[], help="overlay CSV (repeatable)")
    ap.add_argument("--reading-h", default=os.path.join(here, "..", "src", "core", "reading.h"))
    ap.add_argument("-o", "--output", help="C file to write (default: stdout)")
    a = ap.parse_args(argv)
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", a.prefix):
        ap.error("--prefix must be a C identifier in lower case")
    try:
        rows, settings = read_rows(a.csv)
        for path in a.overlay:
            orows, osettings = read_rows(path, overlay=True)
            rows = apply_overlay(rows, settings, orows, osettings)
        check(rows, quantities(a.reading_h))
        text = emit_c(rows, a.prefix, settings, [a.csv] + a.overlay)
    except MapError as e:
        for p in e.problems:
            print(p, file=sys.stderr)
        return 1
    except OSError as e:
        print(f"{e.filename}: {e.strerror}", file=sys.stderr)
        return 1
    if a.output:
        tmp = a.output + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, a.output)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
