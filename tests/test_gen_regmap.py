#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The register map generator (tools/gen_regmap.py): its output for every type, overlays, and
its errors, each with file:line.

    test_gen_regmap.py GEN_REGMAP.py READING.h TYPES.csv

Prints "N passed, M failed" last; exit status 1 on a failure.
"""
import os
import subprocess
import sys
import tempfile
import unittest

GEN, READING_H, TYPES = sys.argv[1:4]


def run(csv_text=None, path=None, overlays=(), prefix="t"):
    """(exit status, stdout, stderr) of the generator on csv_text (or the file at path)."""
    with tempfile.TemporaryDirectory() as d:
        if path is None:
            path = os.path.join(d, "map.csv")
            with open(path, "w", encoding="utf-8") as f:
                f.write(csv_text)
        args = [sys.executable, GEN, "--prefix", prefix, "--reading-h", READING_H, path]
        for k, text in enumerate(overlays):
            o = os.path.join(d, f"overlay{k}.csv")
            with open(o, "w", encoding="utf-8") as f:
                f.write(text)
            args += ["--overlay", o]
        p = subprocess.run(args, capture_output=True, text=True)
        # Name files by their base name, whatever the temporary directory.
        return p.returncode, p.stdout, p.stderr.replace(d + os.sep, "")


HEADER = "key,name,quantity,unit_id,address,type,word_order,divisor,precision,flags,options\n"


class TypesMap(unittest.TestCase):
    """The test map with every type (tests/data/regmap_types.csv), as test_regmap uses it."""

    @classmethod
    def setUpClass(cls):
        cls.rc, cls.out, cls.err = run(path=TYPES, prefix="rmtest")

    def line(self, key):
        lines = [l for l in self.out.splitlines() if f'.key = "{key}"' in l]
        self.assertEqual(len(lines), 1, key)
        return lines[0]

    def test_generates(self):
        self.assertEqual(self.rc, 0, self.err)
        self.assertEqual(self.err, "")
        self.assertIn("const struct reading_def rmtest_readings[] = {", self.out)
        self.assertIn("const size_t rmtest_n_readings = 22;", self.out)
        self.assertIn("const struct regmap rmtest_map = {", self.out)

    def test_types_and_word_order(self):
        self.assertIn(".src = SRC_U16, .reg = 0, .precision = 2, .divisor = 100,", self.line("u16_v"))
        self.assertIn(".src = SRC_S16, .reg = 1,", self.line("s16_a"))  # int16 spelling
        self.assertNotIn("LOW_WORD", self.line("u32_hi"))
        self.assertIn(".src = SRC_U32, .reg = 4,", self.line("u32_lo"))
        self.assertIn(".flags = READING_LOW_WORD_FIRST", self.line("u32_lo"))
        self.assertIn(".flags = READING_LOW_WORD_FIRST", self.line("s32_lo"))
        self.assertIn(".src = SRC_U64, .reg = 10,", self.line("u64_t"))
        self.assertIn(".src = SRC_BIT, .reg = 24, .arg = 3,", self.line("flag_b3"))
        self.assertIn(".src = SRC_U8, .reg = 24, .precision", self.line("byte_hi"))
        self.assertIn(".src = SRC_S8, .reg = 24, .arg = 1,", self.line("byte_lo_s"))
        self.assertIn(".src = SRC_STRING, .reg = 28,", self.line("name_l1"))
        self.assertIn(".count = 4", self.line("name_l1"))
        self.assertIn(".flags = READING_IDENTITY | READING_ASCII", self.line("name_a"))
        self.assertIn(".src = SRC_RESERVED, .reg = 26,", self.line("spacer"))
        self.assertIn(".src = SRC_DERIVED, .precision", self.line("derived_w"))

    def test_divisors_markers_units_segments(self):
        self.assertIn(".divisor = 0.1,", self.line("w_tenth"))
        self.assertIn(".flags = READING_WRITABLE", self.line("w_tenth"))
        self.assertIn(".divisor = -1,", self.line("ah_neg1"))
        self.assertIn(".divisor = -10,", self.line("ah_neg10"))
        self.assertIn(".divisor = 10000000,", self.line("deg_1e7"))
        self.assertIn(".flags = READING_NA_ONES", self.line("na_u32"))
        self.assertIn(".flags = READING_NA_MIN", self.line("na_s16"))
        self.assertIn(".unit = 225, .segment = 2, .path = \"/Dc/Battery/Voltage\"",
                      self.line("other_unit"))
        self.assertIn(".segment = 1, .path = \"/Dc/0/Voltage\"", self.line("u16_v"))
        self.assertIn(".group = \"regs\"", self.line("raw_25"))
        self.assertIn(".arg = 1,", self.line("raw_25"))  # its index in the group

    def test_enum_code_ranges_and_shared_labels(self):
        # "0=Off;1=On;2-4=Busy;5=Error;10=Error": four options, five code ranges.
        self.assertIn('rmtest_options_14[] = {"Off", "On", "Busy", "Error", NULL};', self.out)
        self.assertIn("rmtest_codes_14[] = {{0, 0, 0}, {1, 1, 1}, {2, 4, 2}, {5, 5, 3}, "
                      "{10, 10, 3}};", self.out)
        self.assertIn(".codes = rmtest_codes_14, .n_codes = 5", self.line("state"))

    def test_settings_and_aux(self):
        for text in (".max_skip = 4,", ".holes_readable = false,", ".split_budget = 16,",
                     ".recheck_every = 3,", ".aux = rmtest_aux,", ".n_aux = 3,"):
            self.assertIn(text, self.out)
        aux = self.out[self.out.index("rmtest_aux[] = {"):]
        self.assertIn('"name_l1"', aux)
        self.assertNotIn('"name_l1"', self.out[:self.out.index("rmtest_aux[] = {")])

    def test_simple_enum_codes(self):
        rc, out, err = run(HEADER + "s,S,enum,,0,u16,,,,,0=off;1=on;8=limit\n")
        self.assertEqual(rc, 0, err)
        self.assertIn("static const uint16_t t_codes_0[] = {0, 1, 8};", out)
        self.assertIn(".option_codes = t_codes_0", out)


class Errors(unittest.TestCase):
    """Each problem: one line 'file:line: what', exit status 1, no output."""

    def fails(self, rows, *expect, header=HEADER, overlays=()):
        rc, out, err = run(header + rows, overlays=overlays)
        self.assertEqual(rc, 1, out)
        self.assertEqual(out, "")
        for e in expect:
            self.assertIn(e, err)
        return err

    def test_bad_type(self):
        self.fails("a,A,,,0,u17,,,,,\n",
                   "map.csv:2: unknown type 'u17' (u16, s16, u32, s32, u64, string[N]")
        self.fails("a,A,,,0,string[0],,,,,\n", "map.csv:2: bad type 'string[0]'")
        self.fails("a,A,problem,,0,bit[16],,,,,\n", "map.csv:2: bad type 'bit[16]'")
        self.fails("a,A,,,0,u8[mid],,,,,\n", "map.csv:2: bad type 'u8[mid]'")
        self.fails("a,A,,,0,,,,,,\n", "map.csv:2: no type")

    def test_duplicate_address(self):
        self.fails("a,A,,,5,u16,,,,,\nb,B,,,5,s16,,,,,\n",
                   "map.csv:3: duplicate address 5 (unit 0): also at ")
        # The same address at another unit is another register.
        rc, _, err = run(HEADER + "a,A,,,5,u16,,,,,\nb,B,,2,5,s16,,,,,\n")
        self.assertEqual(rc, 0, err)

    def test_overlapping_registers(self):
        err = self.fails("a,A,,,5,u32,,,,,\nb,B,,,6,u16,,,,,\n",
                         "map.csv:3: registers 6..6 (unit 0) overlap registers 5..6 at ")
        self.assertIn("map.csv:2", err)
        self.fails("s,S,,,10,string[4],,,,aux,\nb,B,,,13,u32,,,,,\n",
                   "map.csv:3: registers 13..14 (unit 0) overlap registers 10..13")

    def test_views_may_share_registers_but_not_repeat(self):
        rows = ("w,W,raw,,26,u16,,,,,\nb0,B0,problem,,26,bit[0],,,,,\nb1,B1,problem,,26,bit[1],,,,,\n"
                "r,R,raw,,26,u16,,,,view,\n")
        rc, _, err = run(HEADER + rows)
        self.assertEqual(rc, 0, err)
        self.fails(rows + "b2,B2,problem,,26,bit[1],,,,,\n",
                   "map.csv:6: duplicate entry: bit[1] at address 26 (unit 0) is also at ")

    def test_other_problems(self):
        cases = [
            ("a,A,volts,,0,u16,,,,,\n", "map.csv:2: unknown quantity 'volts'"),
            ("a,A,enum,,0,u16,,,,,\n", "map.csv:2: an enum needs options"),
            ("a,A,enum,,0,u16,,,,,1:on\n", "map.csv:2: option '1:on' is not 'code=label'"),
            ("a,A,enum,,0,u16,,,,,1=on;1=off\n", "map.csv:2: option code 1 is given twice"),
            ("a,A,number,,0,u16,,,,,1=on\n", "map.csv:2: options need quantity enum"),
            ("Bad-Key,A,,,0,u16,,,,,\n", "map.csv:2: key 'Bad-Key' is not 1..40 of a-z"),
            ("a,A,,,0,u16,,,,,\na,B,,,1,u16,,,,,\n", "map.csv:3: key 'a' repeats (first at "),
            ("a,A,,,0,u16,low_first,,,,\n", "map.csv:2: word_order applies to 32- and 64-bit"),
            ("a,A,,,0,u16,,0,,,\n", "map.csv:2: divisor '0' is not a finite number other than 0"),
            ("a,A,,,0,u16,,,,shiny,\n", "map.csv:2: unknown flag 'shiny'"),
            ("a,A,,,70000,u16,,,,,\n", "map.csv:2: address 70000 outside 0..65535"),
            ("a,A,,,65535,u32,,,,,\n", "map.csv:2: registers 65535..65536 run past 65535"),
            ("a,A,,,0,u16,,,9,,\n", "map.csv:2: precision 9 outside 0..6"),
            ("a,A,,300,0,u16,,,,,\n", "map.csv:2: unit_id 300 outside 0..255"),
            ("a,A,,,0,u16,,,,aux,\n", "map.csv:2: 'aux' entries are strings or reserved"),
            ("a,A,,,,u16,,,,,\n", "map.csv:2: no address"),
            ("a,A,power,,3,derived,,,,,\n", "map.csv:2: a derived reading has no address"),
        ]
        for row, expect in cases:
            with self.subTest(row=row):
                self.fails(row, expect)

    def test_header_and_settings(self):
        self.fails("a,A,,,0,u16,,,,,\n", "map.csv:1: unknown column 'colour'",
                   header="key,name,colour\n")
        self.fails("", "map.csv:1: unknown setting 'max_skp = 3'", header="#! max_skp = 3\n" + HEADER)
        self.fails("", "map.csv:1: split_budget is 0 (no splitting) or at least 2",
                   header="#! split_budget = 1\n" + HEADER)
        self.fails("", "map.csv:1: holes must be 'readable' or 'fail'",
                   header="#! holes = maybe\n" + HEADER)

    def test_every_problem_is_reported(self):
        err = self.fails("a,A,,,0,u17,,,,,\nb,B,,,1,u16,,,,,\nc,C,,,1,u16,,,,,\n",
                         "map.csv:2: unknown type", "map.csv:4: duplicate address 1")
        self.assertEqual(len(err.strip().splitlines()), 2)


class Overlays(unittest.TestCase):
    """A base read from another format gets our names from an overlay (the GX's way)."""

    BASE = ("key,name,quantity,address,type,divisor,segment,path\n"
            "v_bat,,voltage,259,u16,100,battery,/Dc/0/Voltage\n"
            "v_sol,,voltage,771,u16,100,solarcharger,/Dc/0/Voltage\n"
            "i_bat,,current,261,s16,10,battery,/Dc/0/Current\n")

    def test_overlay_sets_cells_and_drops_rows(self):
        overlay = ("#! split_budget = 32\n"
                   "=segment,=path,key,name,precision,drop\n"
                   "battery,/Dc/0/Voltage,battery_voltage,Battery voltage,2,\n"
                   "battery,/Dc/0/Current,,,,yes\n")
        rc, out, err = run(self.BASE, overlays=[overlay])
        self.assertEqual(rc, 0, err)
        self.assertIn('.key = "battery_voltage", .name = "Battery voltage"', out)
        self.assertIn(".precision = 2,", out)
        self.assertIn('.key = "v_sol"', out)  # another segment: untouched
        self.assertNotIn("i_bat", out)
        self.assertIn(".split_budget = 32,", out)

    def test_overlay_row_matching_nothing_is_an_error(self):
        overlay = "=path,key\n/Dc/9/Voltage,x\n"
        rc, out, err = run(self.BASE, overlays=[overlay])
        self.assertEqual(rc, 1)
        self.assertIn("overlay0.csv:2: matches no row (path '/Dc/9/Voltage')", err)

    def test_overlay_needs_match_columns(self):
        rc, _, err = run(self.BASE, overlays=["path,key\n/Dc/0/Voltage,x\n"])
        self.assertEqual(rc, 1)
        self.assertIn("overlay0.csv:1: an overlay's header marks its match columns with '='", err)

    def test_overlay_result_is_checked(self):
        # Both voltages renamed to one key: the checked result says where.
        overlay = "=path,key\n/Dc/0/Voltage,voltage\n"
        rc, _, err = run(self.BASE, overlays=[overlay])
        self.assertEqual(rc, 1)
        self.assertIn("map.csv:3 (overlay overlay0.csv:2): key 'voltage' repeats", err)


if __name__ == "__main__":
    result = unittest.main(argv=[sys.argv[0], "-v"], exit=False).result
    failed = len(result.failures) + len(result.errors)
    print(f"{result.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
