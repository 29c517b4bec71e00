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

/* The pack readings the bank is made of. */
enum bank_input {
    BANK_IN_VOLTAGE,    /* pack_voltage */
    BANK_IN_CURRENT,    /* pack_current */
    BANK_IN_POWER,      /* pack_power */
    BANK_IN_SOC,        /* soc */
    BANK_IN_REMAINING,  /* remaining_ah */
    BANK_IN_FULL,       /* full_capacity_ah */
    BANK_IN_DESIGN,     /* capacity_ah */
    BANK_IN_CELL_MIN,   /* cell_voltage_min */
    BANK_IN_CELL_MAX,   /* cell_voltage_max */
    BANK_IN_TEMP_MAX,   /* temperature_max */
    BANK_IN_CHARGED,    /* energy_charged_kwh */
    BANK_IN_DISCHARGED, /* energy_discharged_kwh */
    BANK_IN_COUNT,
};

/* One pack as the bank sees it. */
struct bank_member {
    int idx[BANK_IN_COUNT]; /* index of each input in the pack's values, -1 if it has none */
    const double *values;   /* latest good poll, NULL if the pack has none */
    bool online;            /* only online packs count, except for the energy counters */
};

/* Find the inputs in a pack's reading table (once, at start-up). */
void bank_member_bind(struct bank_member *m, const struct reading_def *defs, size_t n);

/*
 * Compute out[bank_n_readings] from n members. A reading a pack lacks or reports as NaN
 * is left out of that total; a total with no contribution is NaN. SoC falls back to the
 * design capacity, then to equal weights, when full capacity is unknown.
 */
void bank_compute(const struct bank_member *m, size_t n, double *out);

#endif
