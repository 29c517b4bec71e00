/* SPDX-License-Identifier: MIT */
/* bank.c - totals over the packs of one daemon. */
#include "bank.h"

#include <math.h>

#define BANK(key, label, q, prec, icon)                                                            \
    {                                                                                              \
        key, label, q, SRC_DERIVED, 0, 0, prec, 1, 0, icon, NULL, NULL                             \
    }

// clang-format off
const struct reading_def bank_readings[] = {
    BANK("voltage", "Voltage", Q_VOLTAGE, 2, "mdi:battery-outline"),
    BANK("current", "Current", Q_CURRENT, 2, "mdi:current-dc"),
    BANK("power", "Power", Q_POWER, 0, "mdi:flash"),
    BANK("soc", "State of charge", Q_SOC, 0, NULL),
    BANK("remaining_ah", "Remaining capacity", Q_CHARGE, 0, "mdi:battery-clock"),
    BANK("full_capacity_ah", "Full capacity", Q_CHARGE, 1, "mdi:battery-clock"),
    BANK("cell_voltage_min", "Cell voltage min", Q_VOLTAGE, 3, "mdi:arrow-down-bold"),
    BANK("cell_voltage_max", "Cell voltage max", Q_VOLTAGE, 3, "mdi:arrow-up-bold"),
    BANK("cell_voltage_delta_mv", "Cell voltage delta", Q_VOLTAGE_MV, 0, "mdi:sine-wave"),
    BANK("temperature_max", "Maximum temperature", Q_TEMPERATURE, 0, "mdi:thermometer-high"),
    BANK("packs_online", "Packs online", Q_NUMBER, 0, "mdi:battery-sync"),
    BANK("energy_charged_kwh", "Energy charged", Q_ENERGY, 3, "mdi:battery-arrow-up"),
    BANK("energy_discharged_kwh", "Energy discharged", Q_ENERGY, 3, "mdi:battery-arrow-down"),
};
// clang-format on

const size_t bank_n_readings = sizeof(bank_readings) / sizeof(bank_readings[0]);

enum { B_V, B_I, B_P, B_SOC, B_REM, B_FULL, B_CMIN, B_CMAX, B_DELTA, B_TMAX, B_ONLINE, B_EC, B_ED };

static const char *const bank_input_keys[BANK_IN_COUNT] = {
    [BANK_IN_VOLTAGE] = "pack_voltage",       [BANK_IN_CURRENT] = "pack_current",
    [BANK_IN_POWER] = "pack_power",           [BANK_IN_SOC] = "soc",
    [BANK_IN_REMAINING] = "remaining_ah",     [BANK_IN_FULL] = "full_capacity_ah",
    [BANK_IN_DESIGN] = "capacity_ah",         [BANK_IN_CELL_MIN] = "cell_voltage_min",
    [BANK_IN_CELL_MAX] = "cell_voltage_max",  [BANK_IN_TEMP_MAX] = "temperature_max",
    [BANK_IN_CHARGED] = "energy_charged_kwh", [BANK_IN_DISCHARGED] = "energy_discharged_kwh",
};

void bank_member_bind(struct bank_member *m, const struct reading_def *defs, size_t n)
{
    for (int k = 0; k < BANK_IN_COUNT; k++)
        m->idx[k] = reading_find(defs, n, bank_input_keys[k]);
    /* The legacy protocol keeps the eg4-battery script's name for the pack current. */
    if (m->idx[BANK_IN_CURRENT] < 0)
        m->idx[BANK_IN_CURRENT] = reading_find(defs, n, "current");
}

static double member_value(const struct bank_member *m, enum bank_input in)
{
    int i = m->idx[in];
    return i < 0 || !m->values ? NAN : m->values[i];
}

/* Sum of `key` over the online members; NaN without contribution. With `all`, over every
 * member, and NaN unless every member has it. */
static double bank_sum(const struct bank_member *m, size_t n, enum bank_input key, bool all,
                       unsigned *count)
{
    double sum = 0;
    unsigned k = 0;

    for (size_t i = 0; i < n; i++) {
        double v = member_value(&m[i], key);
        if (all && isnan(v))
            return NAN; /* a counter not known yet: a partial sum would look like a reset */
        if ((all || m[i].online) && !isnan(v)) {
            sum += v;
            k++;
        }
    }
    if (count)
        *count = k;
    return k ? sum : NAN;
}

static double bank_extreme(const struct bank_member *m, size_t n, enum bank_input key, int sign)
{
    double best = NAN;

    for (size_t i = 0; i < n; i++) {
        double v = member_value(&m[i], key);
        if (m[i].online && !isnan(v) && (isnan(best) || sign * (v - best) > 0))
            best = v;
    }
    return best;
}

/* SoC weighted by capacity: a 200 Ah pack at 50 % holds twice what a 100 Ah one does. */
static double bank_soc(const struct bank_member *m, size_t n)
{
    static const int weights[] = {BANK_IN_FULL, BANK_IN_DESIGN, -1};
    double num = 0, den = 0;

    for (size_t w = 0; w <= 2; w++) {
        num = den = 0;
        for (size_t i = 0; i < n; i++) {
            double soc = member_value(&m[i], BANK_IN_SOC);
            double cap = weights[w] >= 0 ? member_value(&m[i], weights[w]) : 1;
            if (!m[i].online || isnan(soc))
                continue;
            if (isnan(cap) || cap <= 0)
                break; /* this weighting is incomplete: try the next */
            num += soc * cap;
            den += cap;
        }
        if (den > 0)
            return num / den;
    }
    return NAN;
}

void bank_compute(const struct bank_member *m, size_t n, double *out)
{
    unsigned nv = 0, online = 0;

    for (size_t i = 0; i < n; i++)
        online += m[i].online && m[i].values;
    out[B_V] = bank_sum(m, n, BANK_IN_VOLTAGE, false, &nv);
    out[B_V] = nv ? out[B_V] / nv : NAN;
    out[B_I] = bank_sum(m, n, BANK_IN_CURRENT, false, NULL);
    out[B_P] = bank_sum(m, n, BANK_IN_POWER, false, NULL);
    out[B_SOC] = bank_soc(m, n);
    out[B_REM] = bank_sum(m, n, BANK_IN_REMAINING, false, NULL);
    out[B_FULL] = bank_sum(m, n, BANK_IN_FULL, false, NULL);
    out[B_CMIN] = bank_extreme(m, n, BANK_IN_CELL_MIN, -1);
    out[B_CMAX] = bank_extreme(m, n, BANK_IN_CELL_MAX, +1);
    out[B_DELTA] = (out[B_CMAX] - out[B_CMIN]) * 1000;
    out[B_TMAX] = bank_extreme(m, n, BANK_IN_TEMP_MAX, +1);
    out[B_ONLINE] = online;
    /* Counters of offline packs still count: the sums must never go down. */
    out[B_EC] = bank_sum(m, n, BANK_IN_CHARGED, true, NULL);
    out[B_ED] = bank_sum(m, n, BANK_IN_DISCHARGED, true, NULL);
}
