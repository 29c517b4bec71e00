/* SPDX-License-Identifier: MIT */
/* eg4_legacy.h - EG4 legacy binary protocol (7E ... 0D frames): framing, checksum, decoding. */
#ifndef BMS_EG4_LEGACY_H
#define BMS_EG4_LEGACY_H

#include <stddef.h>
#include <stdint.h>

#include "reading.h"

/*
 * The protocol of the eg4-battery script's `active` mode (protocols/README.md §2),
 * 9600 8N1, one master polling packs by address:
 *
 *   +------+-----+-----+-----+-----------+-----+------+
 *   | 0x7E | ADR | CMD | LEN | DATA[LEN] | CHK | 0x0D |
 *   +------+-----+-----+-----+-----------+-----+------+
 *      0      1     2     3    4..LEN+3   LEN+4  LEN+5
 *
 * A request has LEN 0. CHK covers 0x7E through the last DATA byte. This module is pure:
 * it builds and checks bytes and decodes them into readings; it does no I/O.
 */

#define EG4_LEGACY_SOI 0x7E /* start of frame */
#define EG4_LEGACY_EOI 0x0D /* end of frame */

#define EG4_LEGACY_CMD_STATUS                                                                      \
    0x01 /* general status: the groups decoded by eg4_legacy_decode_status */
#define EG4_LEGACY_CMD_FIRMWARE 0x33 /* firmware string, ASCII */
#define EG4_LEGACY_CMD_HARDWARE 0x42 /* hardware version */

#define EG4_LEGACY_REQUEST_LEN 6u   /* bytes of a request frame */
#define EG4_LEGACY_FRAME_MIN   6u   /* header (4) + CHK + EOI: a frame with no DATA */
#define EG4_LEGACY_FRAME_MAX   261u /* LEN is one byte: 255 + 6 */
#define EG4_LEGACY_MAX_CELLS   16u  /* cells the readings table has (cell_01..cell_16) */

/*
 * The frame checksum over buf[0..n): (XOR of the bytes) XOR (their sum mod 256).
 * n counts 0x7E through the last DATA byte, i.e. LEN + 4 for a whole frame.
 * Source: protocols/README.md §2. The eg4-battery script's (0x100 - (addr + cmd + len))
 * & 0xFF agrees with it only for address 1, command 1.
 * Known answers: 7E 01 01 00 -> 0xFE, 7E 02 01 00 -> 0xFC, 7E 00 01 00 -> 0x00.
 * A weak check: a flipped bit that causes no carry in the sum changes the XOR and the sum
 * alike and cancels out, so about half of single-bit errors pass; decoders still bound
 * every read and callers should treat implausible values with suspicion.
 */
uint8_t eg4_legacy_checksum(const uint8_t *buf, size_t n);

/*
 * Write the request `7E addr cmd 00 CHK 0D` (no DATA) into out[0..6).
 * Returns the frame length, EG4_LEGACY_REQUEST_LEN (6). Never fails.
 * Example (protocols/README.md §2): addr 2, cmd 0x01 -> 7E 02 01 00 FC 0D.
 */
size_t eg4_legacy_build_request(uint8_t addr, uint8_t cmd, uint8_t out[6]);

/*
 * Streaming framer for a reply that arrives in pieces. buf[0..n) is what has been
 * received so far. Returns:
 *   > 0  the length of the whole frame (LEN + 6) once buf[0] is 0x7E and the 4-byte
 *        header is there; wait until n reaches it, then call eg4_legacy_parse_frame;
 *   0    buf[0] is 0x7E (or n is 0) but the header is incomplete: read more bytes;
 *   -1   buf[0] is not 0x7E: this is not the start of a frame; the caller drops one byte
 *        and calls again (resynchronising on line noise or a tail of an older reply).
 * Only the SOI is checked here; the length, EOI and checksum are eg4_legacy_parse_frame's job.
 */
int eg4_legacy_frame_length(const uint8_t *buf, size_t n);

/* One parsed frame. data points into the buffer given to eg4_legacy_parse_frame. */
struct eg4_legacy_frame {
    uint8_t addr;        /* ADR: the pack's address */
    uint8_t cmd;         /* CMD: the command being answered */
    const uint8_t *data; /* DATA, len bytes (valid while the frame buffer is) */
    size_t len;          /* LEN */
};

/*
 * Check the frame in buf[0..n) and fill *f. n must be exactly the frame's length
 * (as eg4_legacy_frame_length reported). Checks in this order, returning:
 *   0          a good frame; *f filled;
 *   -EPROTO    bad framing: buf[0] is not 0x7E, or the byte after CHK is not 0x0D;
 *   -EMSGSIZE  length mismatch: n < 6, or n != LEN + 6 (truncated or trailing bytes);
 *   -EBADMSG   CHK is not eg4_legacy_checksum(buf, LEN + 4).
 * On error *f is zeroed (data NULL). Framing and checksum: protocols/README.md §2.
 */
int eg4_legacy_parse_frame(const uint8_t *buf, size_t n, struct eg4_legacy_frame *f);

/*
 * The readings of a legacy pack, in publishing order. Keys keep the eg4-battery script's
 * active-mode names (so HA unique_ids "<pack>_<key>_eg4" survive): pack_voltage (V),
 * current (A, positive = charging), soc (%), capacity_ah (full capacity, Ah),
 * cycle_count, temperature_1..temperature_6 (°C), cell_01_voltage..cell_16_voltage (V),
 * cell_voltage_min/max (V), cell_voltage_delta_mv (mV), cell_lowest/highest (cell number),
 * alarm_current_over, alarm_voltage_high, alarm_voltage_low, alarm_temp_high_chg,
 * alarm_temp_low_chg (problem binary sensors). New: soh (%), pack_power (W = V x I),
 * energy_charged_kwh / energy_discharged_kwh (kWh; integrated by the daemon, left NaN
 * by the decoder). Every entry is SRC_DERIVED: eg4_legacy_decode_status fills them all.
 */
extern const struct reading_def eg4_legacy_readings[];
extern const size_t eg4_legacy_n_readings;

/*
 * Decode the DATA of a command 0x01 (general status) reply into
 * values[0..eg4_legacy_n_readings). DATA is groups `ID COUNT COUNT x u16 (big-endian)` with IDs
 * 0x01..0x0A in that order (protocols/README.md §2):
 *   01 cell voltages, mV (bits 15 and 14 masked: real packs set them as flags)
 *   02 current: A = (30000 - raw) / 100, positive = charging
 *   03 SoC = raw / 100 %          04 full capacity = raw / 100 Ah
 *   05 six temperatures: °C = low byte - 50 (the high byte carries flags)
 *   06 five alarm/status words    07 cycle count
 *   08 pack voltage = raw / 100 V 09 SoH = raw / 100 %     0A unknown, skipped
 * Decoding stops after group 0x0A: some related BMSes append groups 0x0B..0x11 whose
 * COUNT does not match their data, so nothing after 0x0A is read.
 * cell_count is the pack's number of cells; cells 1..min(cell_count, COUNT of group 01, 16)
 * are published and give the cell statistics (0 = as many as group 01 has). A group with
 * fewer words than a reading needs leaves that reading NaN; values are unrounded (the
 * state rounds them to each reading's precision); energy_* are always NaN.
 * Returns 0, or -EBADMSG (all values NaN) when DATA is not a well-formed status: a group's
 * COUNT runs past len, a group ID is out of order, or the data ends before group 0x0A.
 */
int eg4_legacy_decode_status(const uint8_t *data, size_t len, unsigned cell_count, double *values);

/*
 * Decode the DATA of a command 0x33 (firmware) reply: the printable ASCII characters
 * (0x20..0x7E) of data[0..len), other bytes (NUL padding) dropped, leading and trailing
 * spaces trimmed, truncated to outlen - 1 characters, NUL-terminated into out.
 * Returns the string's length (> 0); -ENODATA if no printable character remains (out is "");
 * -EINVAL if out is NULL or outlen is 0.
 */
int eg4_legacy_decode_firmware(const uint8_t *data, size_t len, char *out, size_t outlen);

#endif
