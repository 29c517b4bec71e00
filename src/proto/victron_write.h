/* SPDX-License-Identifier: MIT */
/* victron_write.h - writes to a GX: the guard rails and the encoding of a value (pure), and the
 * Modbus write requests and replies. */
#ifndef BMS_VICTRON_WRITE_H
#define BMS_VICTRON_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ha_victron.h"
#include "reading.h"
#include "result.h"
#include "victron_overlay.h"

/*
 * The HA control that reading d, on the write allow-list as w, becomes under the bus's `write:`
 * gx: a number, select or switch (w->component) when writes are on and w's rail is configured
 * (ac_current: ac_current_max_a; dc_current: dc_current_max_a; dc_voltage: dc_voltage_profile;
 * ac_power: ac_voltage and ac_current_max_a; soc, mode, switch: nothing more), and a select is
 * an enum; else HA_VICTRON_SENSOR (read only). w may be NULL (not on the list: a sensor).
 */
enum ha_victron_control victron_control_of(const struct reading_def *d,
                                           const struct victron_write *w,
                                           const struct config_gx *gx);

/*
 * The range of w's rail under gx, in the reading's unit, into *lo..*hi:
 *   ac_current  0 .. ac_current_max_a (A)
 *   dc_current  0 .. dc_current_max_a (A), and -1 ("no limit") where w->no_limit
 *   dc_voltage  cells x 2.50 .. cells x 3.65 (V; LiFePO4, dc_voltage_profile)
 *   ac_power    -P .. +P with P = ac_voltage x ac_current_max_a x phases (W; one phase for a
 *               phase's setpoint, w->per_phase; `phases` of the system otherwise, at least 1)
 *   soc         0 .. 100 (%)
 *   mode        0 .. 65535 (the register's codes: victron_write_encode checks the code)
 *   switch      0 .. 1
 * Returns false (lo, hi untouched) when the rail is not configured.
 */
bool victron_rail_range(const struct victron_write *w, const struct config_gx *gx, unsigned phases,
                        double *lo, double *hi);

/* A value ready for the wire. */
struct victron_encoded {
    uint16_t words[2]; /* high word first */
    unsigned n;        /* 1 (function 6) or 2 (function 16: a 32-bit item written whole) */
    double value;      /* the value the register will hold, in the reading's unit */
};

/*
 * Check command `text` (an HA number "-200.5", an option "On", a switch payload "1"/"0"/"ON"/
 * "OFF") for reading d, allow-listed as w, against its rail under gx with `phases`, and encode
 * it as the register's own type: round(value x scale) (rounded half away from zero, never
 * truncated), two's complement for negatives, 32-bit items as two words high word first, an
 * enum's code as it is. Nothing is clamped: a value outside the rail, one that rounds outside
 * it, one its type cannot hold, a value between -1 and 0 where -1 means "no limit", an option
 * the register does not have, or text that is no number are refused. Returns 0, or -1 with
 * why[0..cap) saying why (for the log: "-6000 W is outside -4600 .. 4600 W (ac_power)").
 * Pure.
 */
int victron_write_encode(const struct reading_def *d, const struct victron_write *w,
                         const struct config_gx *gx, unsigned phases, const char *text,
                         struct victron_encoded *out, char *why, size_t cap);

/*
 * The RTU ADU of a write of e to register `reg` at unit id `unit` into req (at least 13 bytes):
 * function 6 for one word, 16 for two. Returns its length.
 */
size_t victron_write_request(uint8_t unit, uint16_t reg, const struct victron_encoded *e,
                             uint8_t *req);

/*
 * Check the reply rsp[0..len) (an RTU ADU, CRC included) to the write req[0..req_len).
 * RESULT_OK (the echo of function 6 or 16), RESULT_REFUSED with *exception set, or RESULT_CRC,
 * RESULT_ADDRESS, RESULT_FUNCTION, RESULT_LENGTH (an echo that is not the request's). Pure.
 */
enum result victron_write_reply(const uint8_t *req, size_t req_len, const uint8_t *rsp, size_t len,
                                uint8_t *exception);

#endif
