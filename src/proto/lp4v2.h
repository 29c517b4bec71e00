/* SPDX-License-Identifier: MIT */
/* lp4v2.h - EG4 LifePower4 v2 / EG4-LL Modbus register map decoded into readings. */
#ifndef BMS_LP4V2_H
#define BMS_LP4V2_H

#include <stddef.h>
#include <stdint.h>

#include "lp4v2_regs.h"
#include "reading.h"
#include "regmap.h"

/*
 * The readings of one LP4V2 pack, in publishing order. Keys keep the eg4-battery
 * script's names wherever the quantity exists in both (so HA unique_ids
 * "<pack>_<key>_eg4" survive), now read from the vendor's registers (V01.06 §3):
 * pack_voltage (V), pack_current (A), cell_01..16_voltage (V), cell_voltage_min/max (V),
 * cell_voltage_delta_mv (mV), cell_lowest/highest (cell number), temperature_pcb (°C),
 * soc/soh (%), remaining_ah/capacity_ah (Ah), cycle_count, cell_count, error_code,
 * warning_<flag>, protection_<flag>, temperature_01..06 (°C), register_00..46 (raw).
 * New: pack_power (W), temperature_avg/max (°C), max_charge_current (A),
 * full_capacity_ah (Ah), status (enum), heater, error_<flag>, cell_NN_balancing.
 */
extern const struct reading_def lp4v2_readings[];
extern const size_t lp4v2_n_readings;

/*
 * The pack's register map (generated from lp4v2_map.csv): the readings above that come from
 * registers 0..46 (one request each poll) and the identity strings model (105..116), firmware
 * (117..119) and serial (120..127), one request at identify. A refused block is not split.
 */
extern const struct regmap lp4v2_map;

/*
 * One poll through the map: registers 0..46 with read(ctx, ...) (unit 0 = the pack's own slave
 * id), decoded into values[lp4v2_n_readings] as lp4v2_decode() does. st: the pack's
 * regmap_state (made once per pack with regmap_state_new(&lp4v2_map)), or NULL for a
 * one-off read (a state is then built and checked for this pass alone). Returns RESULT_OK;
 * RESULT_ZERO when registers 0..18 are all zero (values all NaN); or read's failure
 * (RESULT_REFUSED for an exception), with values all NaN.
 */
enum result lp4v2_poll_map(struct regmap_state *st, regmap_read_fn read, void *ctx, double *values);

/*
 * The identity through the map: registers 105..127 with read(ctx, ...) into *id (as
 * lp4v2_identity()). st as for lp4v2_poll_map(). Returns RESULT_OK, or read's failure with
 * *id untouched.
 */
enum result lp4v2_identify_map(struct regmap_state *st, regmap_read_fn read, void *ctx,
                               struct device_identity *id);

/*
 * Decode the periodic block (holding registers 0..nregs-1, nregs >= 39; normally 47)
 * into values[lp4v2_n_readings]: table entries first, then the derived ones (cell
 * min/max/delta over the pack's cell count from register 36, pack power = V x I).
 * Readings whose registers are missing are set to NaN.
 * Returns 0; -EPROTO if nregs < 39 (the documented map needs 0..38); -ENODATA if
 * registers 0..18 are all zero (the aggregated master map of some EG4-LL firmware,
 * which must not be published as data). values is left all NaN on error.
 */
int lp4v2_decode(const uint16_t *regs, size_t nregs, double *values);

/*
 * Decode registers 105..127 (regs[0] = register 105, n >= 23) into *id. Characters
 * are taken high byte first; NULs, padding spaces and non-printable bytes are
 * dropped. With n < 23 the identity is left empty.
 */
void lp4v2_identity(const uint16_t *regs, size_t n, struct device_identity *id);

/*
 * Every key the eg4-battery script published as an HA `sensor` in modbus_per_pack mode
 * (NULL-terminated). Keys of this list that are no longer published as sensors get an
 * empty retained config on their old topic, which removes the stale entity from HA.
 */
extern const char *const lp4v2_original_sensor_keys[];

#endif
