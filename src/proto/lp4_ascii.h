/* SPDX-License-Identifier: MIT */
/* lp4_ascii.h - EG4 LifePower4 ASCII protocol (CID1 0x4A): requests and reply decoding. */
#ifndef BMS_LP4_ASCII_H
#define BMS_LP4_ASCII_H

#include <stddef.h>
#include <stdint.h>

#include "reading.h"

/*
 * "LifePower4 Battery Communication Protocol" (EG4_LifePower4_Communication_Protocol.pdf),
 * protocols/README.md §3: ascii_frame.h frames with VER 0x20 and CID1 0x4A at 9600 8N1.
 * Packs answer at ADR 1..15 (DIP switches; 0 is the master). Requests carry no INFO
 * (LENID 0). Each reply describes one pack. This module is pure: it builds requests and
 * decodes the INFO of replies (as bytes, from af_decode); it does no I/O.
 */

#define LP4_ASCII_VER      0x20
#define LP4_ASCII_CID1     0x4A
#define LP4_ASCII_ADDR_MIN 1u
#define LP4_ASCII_ADDR_MAX 15u

#define LP4_ASCII_CMD_ANALOG       0x42 /* §2.1 get analog value, fixed point */
#define LP4_ASCII_CMD_ALARM        0x44 /* §2.2 get alarm information */
#define LP4_ASCII_CMD_MANUFACTURER 0x51 /* "get manufacturer info": listed, layout not given */

#define LP4_ASCII_REQUEST_LEN 18u /* characters of a request: no INFO */
#define LP4_ASCII_MAX_CELLS   16u /* cell_01..cell_16 */
#define LP4_ASCII_MAX_TEMPS   4u  /* temperature_01..04: the cell sensors */

/*
 * Write the request for cmd (LP4_ASCII_CMD_ANALOG or LP4_ASCII_CMD_ALARM) to the pack at adr
 * (1..15) into out, NUL-terminated. Returns LP4_ASCII_REQUEST_LEN (18); -EINVAL for another cmd
 * or adr; -ENOSPC if cap < 19. Examples (§2.1, §2.2): adr 1, 0x42 -> "~20014A420000FDA2\r";
 * adr 1, 0x44 -> "~20014A440000FDA0\r".
 */
int lp4_ascii_build_request(uint8_t adr, uint8_t cmd, char *out, size_t cap);

/*
 * The readings of one LifePower4 pack, in publishing order, keys as LP4V2's where the
 * quantity is the same. From 0x42 (§2.1): pack_voltage (V), pack_current (A, + = charge),
 * pack_power (W, derived), energy_charged_kwh / energy_discharged_kwh (kWh, the pack's own
 * cumulative counters, total_increasing), soc, soh (%), remaining_ah, full_capacity_ah (Ah),
 * cycle_count, cell_count, temperature_01..04 (°C, cell sensors), temperature_ambient,
 * temperature_mosfet, temperature_max, temperature_min (°C), cell_01..16_voltage (V),
 * cell_voltage_min/max (V), cell_voltage_delta_mv (mV), cell_lowest/highest (cell number;
 * all five from the cells, the pack's own max/min/difference fields are not used),
 * charged_ah_total / discharged_ah_total (Ah, cumulative), charging_hours_total /
 * discharging_hours_total (h), charge_count_total / discharge_count_total.
 * From 0x44 (§2.2): alarm_cell_voltage_low/high, alarm_temperature_low/high (any cell,
 * ambient or MOSFET sensor), alarm_pack_current, alarm_pack_voltage_low/high (problem,
 * from the state bytes); balancing (running), warning_cell_imbalance, error_charge_mos,
 * error_discharge_mos (balance event code); warning_<f> (problem) and protection_<f>
 * (safety) for cell_ov, cell_uv, pack_ov, pack_uv (voltage event code), charge_ot,
 * charge_ut, discharge_ot, discharge_ut, ambient_ot, ambient_ut, protection_mos_ot and
 * alarm_fire (temperature event code), charge_oc, discharge_oc, protection_discharge_oc2,
 * protection_discharge_sc, lockout_discharge_oc2, lockout_discharge_sc (current event
 * code), warning_low_capacity (SOC low); discharge_mos, charge_mos, charge_current_limiter
 * (running), heater (heat) from the FET status; status (enum standby / charging /
 * discharging) from the system status; cell_01..16_balancing (running). All SRC_DERIVED.
 */
extern const struct reading_def lp4_ascii_readings[];
extern const size_t lp4_ascii_n_readings;

/*
 * Set the readings that command cmd (LP4_ASCII_CMD_ANALOG or LP4_ASCII_CMD_ALARM) carries in
 * values[lp4_ascii_n_readings] to NaN (unknown): what the pack did not give this time (refused,
 * unanswered or not asked). Returns 0, or -EINVAL for another command (values untouched).
 */
int lp4_ascii_clear(uint8_t cmd, double *values);

/*
 * Decode the INFO of a 0x42 reply (§2.1) into values[0..lp4_ascii_n_readings); only the 0x42
 * readings are written (first set to NaN). INFO: DATA_FLAG, PACK group, M, M cell voltages
 * (s16 mV), N, N cell temperatures then ambient and MOSFET temperature (s16 0.1 K:
 * °C = (raw - 2731) / 10), current (s16 10 mA, + = charge), voltage (u16 10 mV), remaining
 * and full capacity (u16 10 mAh; the PDF says signed), cycles (u16), U = user-defined item count
 * (15 in the PDF), then U items in this order: SOC, SOH (u16 %), max, min cell voltage, difference
 * (mV), max, min cell temperature (0.1 K), cumulative charge, discharge (u32 0.01 Ah),
 * cumulative charge, discharge energy (u32 Wh), cumulative charge, discharge time (u32 h),
 * charge, discharge times (u16). Items past the U given are NaN; items past 15 are skipped.
 * Cells past 16 and temperatures past 4 are read and skipped.
 * Returns 0, or -EBADMSG (the 0x42 readings NaN) if INFO ends before the items U announces.
 */
int lp4_ascii_decode_analog(const uint8_t *info, size_t len, double *values);

/*
 * Decode the INFO of a 0x44 reply (§2.2) into values; only the 0x44 readings are written
 * (first set to NaN). INFO: DATA_FLAG, PACK group, M, M cell voltage states, N, N cell
 * temperature states, then ambient, MOSFET, pack current and pack voltage states (00 none,
 * 01 below the lower limit, 02 above the upper limit), U = user-defined item count (9 in
 * the PDF), then U items: balance event (1 byte), voltage event (1), temperature event (2),
 * current event (1), remaining capacity alarm (1), FET status (1), system status (1),
 * balance status (4, bit n = cell n + 1), reserved (1). Items past U are NaN.
 * Returns 0, or -EBADMSG (the 0x44 readings NaN) if INFO ends before the items U announces.
 */
int lp4_ascii_decode_alarm(const uint8_t *info, size_t len, double *values);

#endif
