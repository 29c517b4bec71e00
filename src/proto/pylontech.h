/* SPDX-License-Identifier: MIT */
/* pylontech.h - Pylontech low-voltage RS485 protocol V3.3 (CID1 0x46): requests and decoding. */
#ifndef BMS_PYLONTECH_H
#define BMS_PYLONTECH_H

#include <stddef.h>
#include <stdint.h>

#include "reading.h"

/*
 * The commands of "PYLON low voltage Protocol RS485" V3.3 (2018-08-21), protocols/README.md
 * §3, carried in ascii_frame.h frames with VER 0x20 and CID1 0x46, 115200 8N1 by default.
 * Pack addresses start at 2 (the master); in multi-group mode ADR = 0x0n + 0x10 * group
 * (§2.5.3). This module is pure: it builds requests and decodes the INFO of replies (as
 * bytes, from af_decode) into readings; it does no I/O.
 *
 *   CID2  request INFO           reply INFO (after af_decode)                  decoder
 *   0x42  module (0xFF = all)    INFOFLAG, command or count, module blocks pylontech_decode_analog
 *   0x44  module (0xFF = all)    DATAFLAG, command or count, module blocks pylontech_decode_alarm
 *   0x47  none                   INFOFLAG, 12 x 2 bytes pylontech_decode_system 0x4F  none none
 * (the reply's VER is the version)         - 0x51  none                   name 10, software version
 * 2, maker 20         pylontech_decode_string 0x92  module                 command, 4 x 2 bytes,
 * status byte pylontech_decode_management 0x93 module                 command, 16 ASCII
 * pylontech_decode_string 0x96 module                 command, 2 + 3 version bytes
 * pylontech_decode_string
 *
 * "module" is one byte, the pack's address; V3.3 says it "should be matched with ADR".
 * Only 0x42 and 0x44 accept 0xFF (§2.5.3: ADR = 0x02 + 0x10 * group, INFO 0xFF): the reply
 * then carries, where the single reply echoes the command byte, the number of modules,
 * followed by that many module blocks back to back.
 */

#define PYLONTECH_VER  0x20
#define PYLONTECH_CID1 0x46

#define PYLONTECH_CMD_ANALOG       0x42 /* §3.3 get analog value, fixed point */
#define PYLONTECH_CMD_ALARM        0x44 /* §3.5 get alarm info */
#define PYLONTECH_CMD_SYSTEM       0x47 /* §3.4 get system parameter, fixed point */
#define PYLONTECH_CMD_PROTOCOL     0x4F /* §3.1 get protocol version */
#define PYLONTECH_CMD_MANUFACTURER 0x51 /* §3.2 get manufacturer info */
#define PYLONTECH_CMD_MANAGEMENT   0x92 /* §3.6 get charge/discharge management info */
#define PYLONTECH_CMD_SERIAL       0x93 /* §3.7 get module SN */
#define PYLONTECH_CMD_FIRMWARE     0x96 /* §3.10 get software version */

#define PYLONTECH_ALL_MODULES 0xFF /* module byte of a 0x42 / 0x44 request for every module */
#define PYLONTECH_ADDR_MASTER 0x02 /* the first pack (§2.5.3) */

#define PYLONTECH_MAX_CELLS   16u /* cell_01..cell_16 */
#define PYLONTECH_MAX_TEMPS   6u  /* temperature_01..06: BMS board, cells 1-4 .. 13-16, MOSFET */
#define PYLONTECH_MAX_MODULES 16u /* rows a caller needs at most for a 0xFF reply of one group */

/* Entries of pylontech_readings (a compile-time constant so callers can size value rows). */
#define PYLONTECH_N_READINGS 81u

/*
 * Write the request for command cmd to the pack at adr into out (af_encode, NUL-terminated),
 * with INFO per the table above: module for 0x42, 0x44, 0x92, 0x93, 0x96 (PYLONTECH_ALL_MODULES
 * only for 0x42 and 0x44); no INFO for 0x47, 0x4F, 0x51 (module ignored).
 * Returns the frame length (20 with INFO, 18 without); -EINVAL for another cmd or 0xFF
 * where it is not allowed; -ENOSPC if cap is too small (21 is enough).
 * Example (§4): adr 2, 0x42, module 2 -> "~20024642E00202FD33\r".
 */
int pylontech_build_request(uint8_t adr, uint8_t cmd, uint8_t module, char *out, size_t cap);

/*
 * The readings of one Pylontech module, in publishing order, keys as LP4V2's where the
 * quantity is the same. From 0x42 (§3.3): pack_voltage (V), pack_current (A, + = charge),
 * pack_power (W, derived), energy_charged_kwh / energy_discharged_kwh (kWh; integrated by
 * the daemon, always NaN here), soc (%, derived remaining / full x 100, limited to 0..100),
 * remaining_ah, full_capacity_ah (Ah), cycle_count, cell_count, temperature_01..06 (°C:
 * 1 BMS board, 2..5 cells 1-4, 5-8, 9-12, 13-15/16, 6 MOSFET), cell_01..16_voltage (V),
 * cell_voltage_min/max (V), cell_voltage_delta_mv (mV), cell_lowest/highest (cell number).
 * From 0x44 (§3.5): alarm_cell_voltage_low/high, alarm_temperature_low/high,
 * alarm_charge_current, alarm_pack_voltage_low/high, alarm_discharge_current,
 * alarm_other_error (problem: any state byte outside 00/01/02, e.g. F0H), protection_pack_ov,
 * protection_cell_uv, protection_charge_oc, protection_discharge_oc, protection_discharge_ot,
 * protection_charge_ot, protection_pack_uv (safety: status 1 bits 0,1,2,4,5,6,7),
 * charge_mos / discharge_mos (running, status 2 bits 1 / 2), cell_voltage_error (problem:
 * any bit of status 4/5), alarm_status_1..5 (raw, hidden). From 0x92 (§3.6):
 * charge_voltage_limit, discharge_voltage_limit (V), charge_current_limit,
 * discharge_current_limit (A), charge_enable, discharge_enable (running: on = allowed),
 * charge_immediately (problem: bit 5 or 4, the pack asks to be charged now),
 * full_charge_request (problem: bit 3). From 0x47 (§3.4, diagnostic): cell_voltage_high_limit,
 * cell_voltage_low_limit, cell_voltage_under_limit (V), charge_temperature_high_limit,
 * charge_temperature_low_limit (°C), charge_current_max (A), pack_voltage_high_limit,
 * pack_voltage_low_limit, pack_voltage_under_limit (V), discharge_temperature_high_limit,
 * discharge_temperature_low_limit (°C), discharge_current_max (A). All are SRC_DERIVED.
 */
extern const struct reading_def pylontech_readings[];
extern const size_t pylontech_n_readings; /* == PYLONTECH_N_READINGS */

/*
 * Set the readings that command cmd carries (PYLONTECH_CMD_ANALOG, _ALARM, _MANAGEMENT or _SYSTEM)
 * in values[PYLONTECH_N_READINGS] to NaN (unknown): what the pack did not give this time, because
 * it refused the command, did not answer it, or was not asked. Returns 0, or -EINVAL for a
 * command that carries no readings (values untouched).
 */
int pylontech_clear(uint8_t cmd, double *values);

/* Copy the readings that command cmd carries (as pylontech_clear) from src to dst, both
 * [PYLONTECH_N_READINGS]: a module's block of an all-modules reply into its own reading. Another
 * cmd copies nothing. */
void pylontech_copy(uint8_t cmd, double *dst, const double *src);

/*
 * Decode the INFO of a 0x42 reply (§3.3) into rows of readings; command is the module byte
 * of the request (the reply's second byte is that module's address, or for PYLONTECH_ALL_MODULES
 * the number of module blocks that follow). Module k of the reply goes to values[k]; only
 * the 0x42 readings of a row are written (first set to NaN), others are left alone. For a
 * 0xFF request the PDF does not name each block's address: blocks come in the pack's order
 * (in practice master first). Each block (§3.3): M, M cell voltages (s16 mV), N, N
 * temperatures (s16 0.1 K: °C = (raw - 2731) / 10), current (s16, 0.1 A, + = charge),
 * voltage (u16 mV), remaining capacity (u16 mAh), U = user-defined item count, then U items:
 * full capacity (u16 mAh), cycles (u16), remaining capacity 2 and full capacity 2 (u24 mAh;
 * used when present: U is 4 for packs over 65 Ah, whose 16-bit fields read FFFF). A 16-bit
 * capacity of FFFF without its 3-byte item is "not available": that reading (and the SoC
 * computed from it) stays NaN.
 * Cells past 16 and temperatures past 6 are read and skipped; U > 4 is only allowed in the
 * last block (its extra items have no known size and are skipped).
 * Returns the number of rows filled (0 if the reply holds no module; at most max_modules:
 * blocks past it are not read); -EINVAL if values is NULL or max_modules is 0; -EBADMSG
 * if INFO ends inside a block or U > 4 before the last block, in which case the 0x42
 * readings of rows 0..max_modules-1 are all NaN.
 */
int pylontech_decode_analog(const uint8_t *info, size_t len, uint8_t command,
                            double values[][PYLONTECH_N_READINGS], unsigned max_modules);

/*
 * Decode the INFO of a 0x44 reply (§3.5) like pylontech_decode_analog, into the 0x44 readings.
 * Each block: M, M cell states, N, N temperature states, charge current, module voltage and
 * discharge current states (00 normal, 01 below the lower limit, 02 above the upper limit,
 * F0 other error), status 1..5 (bit fields). Returns as pylontech_decode_analog.
 */
int pylontech_decode_alarm(const uint8_t *info, size_t len, uint8_t command,
                           double values[][PYLONTECH_N_READINGS], unsigned max_modules);

/*
 * Decode the INFO of a 0x92 reply (§3.6) into the 0x92 readings of values[PYLONTECH_N_READINGS]:
 * command byte, charge voltage limit, discharge voltage limit (u16 mV), charge current limit,
 * discharge current limit (s16 0.1 A), status (bit 7 charge enable, 6 discharge enable,
 * 5 and 4 charge immediately 1 and 2, 3 full charge request). Returns 0, or -EBADMSG (those
 * readings NaN) if INFO is shorter than 10 bytes.
 */
int pylontech_decode_management(const uint8_t *info, size_t len, double *values);

/*
 * Decode the INFO of a 0x47 reply (§3.4) into the 0x47 readings of values[PYLONTECH_N_READINGS]:
 * INFOFLAG, then 12 words: cell high / low / under voltage limit (u16 mV), charge high / low
 * temperature limit (s16 0.1 K, as in §3.3), charge current limit (s16 0.1 A), module high /
 * low / under voltage limit (u16 mV: V3.3 calls all of them signed, but 54 V does not fit),
 * discharge high / low temperature limit (s16 0.1 K), discharge current limit (s16 0.1 A). Returns
 * 0, or -EBADMSG (those readings NaN) if INFO is shorter than 25 bytes.
 */
int pylontech_decode_system(const uint8_t *info, size_t len, double *values);

/* The texts of the identity replies, for pylontech_decode_string. */
enum pylontech_string {
    PYLONTECH_STR_BATTERY_NAME, /* 0x51 §3.2: bytes 0..9, ASCII */
    PYLONTECH_STR_SOFTWARE,     /* 0x51 §3.2: bytes 10..11 as "hi.lo" */
    PYLONTECH_STR_MANUFACTURER, /* 0x51 §3.2: bytes 12..31, ASCII */
    PYLONTECH_STR_SERIAL,       /* 0x93 §3.7: bytes 1..16 (after the command byte), ASCII */
    PYLONTECH_STR_FIRMWARE,     /* 0x96 §3.10: bytes 1..5 as "M.m/A.B.C" (manufacture version
                             2 bytes / main line version 3 bytes) */
};

/*
 * Decode one text of an identity reply's INFO into out (outlen bytes, NUL-terminated,
 * truncated to fit). ASCII fields keep their printable characters (0x20..0x7E; NUL padding
 * and control bytes dropped) and are trimmed of spaces. Returns the text's length (> 0);
 * -ENODATA if nothing printable remains (out is ""); -EBADMSG if INFO is too short for the
 * field (out is ""); -EINVAL if out is NULL, outlen is 0 or which is unknown.
 */
int pylontech_decode_string(enum pylontech_string which, const uint8_t *info, size_t len, char *out,
                            size_t outlen);

#endif
