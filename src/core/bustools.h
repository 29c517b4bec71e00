/* SPDX-License-Identifier: MIT */
/* bustools.h - `bms2mqtt sniff` and `bms2mqtt scan`: tools for people at the bus. */
#ifndef BMS_BUSTOOLS_H
#define BMS_BUSTOOLS_H

/*
 * `bms2mqtt sniff --port P [--protocol auto|lp4v2|eg4_legacy|pylontech|lp4_ascii] [--baud B]
 * [--seconds S]`: open P read-only (nothing is ever written), run the stream framer of each
 * protocol asked for (sniff_proto.h; auto = all of them) over what passes, and print one line
 * per frame to stdout, with the readings, alarms, limits or identity that replies carry
 * decoded below it. On stderr: the frames each protocol placed, and the bytes no framer could
 * place with a hint of what they look like (sniff_noise.h), at the end and every minute.
 * B defaults to 115200 for pylontech, else 9600; S is a number above 0 (default: until
 * SIGINT/SIGTERM). argv[0] is "sniff". Returns the exit status: 0, 1 when the port cannot be
 * opened or fails, 2 for a usage error (a bad or unknown option, a --baud that is not a whole
 * standard rate, a --seconds that is not a number above 0).
 */
int bustools_sniff(int argc, char **argv);

/*
 * `bms2mqtt scan --port P [--protocol NAME] [--baud B]... [--all]`: find what answers on P,
 * sending read requests only, in this order: LP4V2 Modbus (function 0x03, registers 0..46)
 * to slave ids 1..16 and 0x40 (--all: 1..247) at each baud rate (default 9600, 19200,
 * 115200); the legacy EG4 status request to addresses 0..15 at 9600; the Pylontech analog
 * request to addresses 2..9 (--all: 2..127) at 115200; the LifePower4 ASCII one to addresses
 * 1..15 at 9600. --protocol tries only one of them. Each attempt and its result go to stderr
 * as they happen. Each pack found is asked for its identity (LP4V2 registers 105..127;
 * Pylontech 0x51, 0x93, 0x96; legacy 0x33; LifePower4 ASCII 0x51). stdout gets a YAML
 * document: the packs found as comments, then a configuration for the first protocol found
 * that config_load accepts as it is. Returns 0 if something answered, 1 if nothing did or the
 * port cannot be opened, 2 for a usage error.
 */
int bustools_scan(int argc, char **argv);

#endif
