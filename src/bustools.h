/* SPDX-License-Identifier: MIT */
/* bustools.h - `bms2mqtt sniff` and `bms2mqtt scan`: tools for people at the bus. */
#ifndef BMS_BUSTOOLS_H
#define BMS_BUSTOOLS_H

/*
 * `bms2mqtt sniff --port P [--baud B] [--seconds S]`: open P read-only (nothing is ever
 * written), split the traffic into Modbus RTU frames (rtu_sniff.h) and print one line per
 * frame to stdout, the LP4V2 block reads decoded (pack voltage, current, SoC, cells).
 * Runs until SIGINT/SIGTERM or S seconds. argv[0] is "sniff". Returns the exit status:
 * 0, 1 when the port cannot be opened, 2 for a usage error.
 */
int bustools_sniff(int argc, char **argv);

/*
 * `bms2mqtt scan --port P [--baud B]... [--all]`: find what answers on P. For each baud
 * rate (default 9600, 19200, 115200) it sends the LP4V2 read (function 0x03, registers
 * 0..46) to slave ids 1..16 and 0x40 (with --all, 1..247), and at 9600 baud the legacy
 * EG4 status request to addresses 0..15, the Pylontech analog request to addresses 2..9
 * (--all: 2..127) at 115200 baud, and the LifePower4 ASCII one to addresses 1..15 at 9600.
 * It only reads. Prints what answered and a `packs:` config snippet for it. Returns 0 if something
 * answered, 1 if nothing did or the port cannot be opened, 2 for a usage error.
 */
int bustools_scan(int argc, char **argv);

#endif
