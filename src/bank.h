/* SPDX-License-Identifier: MIT */
/* bank.h - totals over the packs of one daemon: a battery bank as one HA device. */
#ifndef BMS_BANK_H
#define BMS_BANK_H

#include <stddef.h>

#include "reading.h"

/*
 * The bank's readings, in publishing order: voltage (V, mean of the packs), current (A,
 * sum), power (W, sum), soc (%, weighted by each pack's full capacity), remaining_ah and
 * full_capacity_ah (Ah, sums), cell_voltage_min/max (V) and cell_voltage_delta_mv (mV)
 * over every cell of the bank, temperature_max (°C), packs_online, and
 * energy_charged_kwh / energy_discharged_kwh (kWh, sums of the packs' counters).
 */
extern const struct reading_def bank_readings[];
extern const size_t bank_n_readings;

/* One pack as the bank sees it: its reading table and latest values. */
struct bank_member {
    const struct reading_def *defs;
    size_t n_defs;
    const double *values; /* latest good poll, NULL if the pack has none */
    bool online;          /* only online packs count, except for the energy counters */
};

/*
 * Compute out[bank_n_readings] from n members. Members' readings are found by key
 * (pack_voltage, pack_current, pack_power, soc, remaining_ah, full_capacity_ah,
 * capacity_ah, cell_voltage_min/max, temperature_max, energy_*): a key a pack lacks or
 * reports as NaN is left out of that total. A total with no contribution is NaN.
 * SoC falls back to the design capacity, then to equal weights, when full capacity is
 * unknown.
 */
void bank_compute(const struct bank_member *m, size_t n, double *out);

#endif
