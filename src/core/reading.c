/* SPDX-License-Identifier: MIT */
/* reading.c - the one table of units and HA classes, and table-driven decoding. */
#include "reading.h"

#include <math.h>
#include <string.h>

/*
 * Units, device classes and state classes that Home Assistant accepts together
 * (HA sensor/const.py DEVICE_CLASS_UNITS and DEVICE_CLASS_STATE_CLASSES; see
 * shared HA_RULES.md §3-4). Charge in Ah has no HA device class.
 */
// clang-format off
static const struct quantity_info quantity_table[] = {
    [Q_VOLTAGE]     = {"V",   "sensor", "voltage",     "measurement"},
    [Q_VOLTAGE_MV]  = {"mV",  "sensor", "voltage",     "measurement"},
    [Q_CURRENT]     = {"A",   "sensor", "current",     "measurement"},
    [Q_POWER]       = {"W",   "sensor", "power",       "measurement"},
    [Q_TEMPERATURE] = {"°C",  "sensor", "temperature", "measurement"},
    [Q_SOC]         = {"%",   "sensor", "battery",     "measurement"},
    [Q_PERCENT]     = {"%",   "sensor", NULL,          "measurement"},
    [Q_CHARGE]      = {"Ah",  "sensor", NULL,          "measurement"},
    [Q_ENERGY]      = {"kWh", "sensor", "energy",      "total_increasing"},
    [Q_COUNT]       = {NULL,  "sensor", NULL,          "total_increasing"},
    [Q_NUMBER]      = {NULL,  "sensor", NULL,          NULL},
    [Q_RAW]         = {NULL,  "sensor", NULL,          NULL},
    [Q_ENUM]        = {NULL,  "sensor", "enum",        NULL},
    [Q_PROBLEM]     = {NULL,  "binary_sensor", "problem", NULL},
    [Q_SAFETY]      = {NULL,  "binary_sensor", "safety",  NULL},
    [Q_HEAT]        = {NULL,  "binary_sensor", "heat",    NULL},
    [Q_RUNNING]     = {NULL,  "binary_sensor", "running", NULL},
};
// clang-format on

const struct quantity_info *quantity_info(enum quantity q)
{
    return &quantity_table[q];
}

bool quantity_is_binary(enum quantity q)
{
    return q == Q_PROBLEM || q == Q_SAFETY || q == Q_HEAT || q == Q_RUNNING;
}

int reading_find(const struct reading_def *defs, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(defs[i].key, key) == 0)
            return (int)i;
    return -1;
}

int reading_cell_stats(const int32_t *cells_mv, size_t n, struct cell_stats *st)
{
    size_t lo = 0, hi = 0;

    if (n == 0)
        return -1;
    for (size_t k = 1; k < n; k++) {
        if (cells_mv[k] < cells_mv[lo])
            lo = k;
        if (cells_mv[k] > cells_mv[hi])
            hi = k;
    }
    st->min_v = cells_mv[lo] / 1000.0;
    st->max_v = cells_mv[hi] / 1000.0;
    st->delta_mv = cells_mv[hi] - cells_mv[lo];
    st->lowest = (unsigned)lo + 1;
    st->highest = (unsigned)hi + 1;
    return 0;
}

double reading_round(double v, int decimals)
{
    static const double pow10[] = {1, 10, 100, 1000, 10000, 100000, 1000000};

    if (decimals < 0 || decimals > 6 || !isfinite(v))
        return v;
    return round(v * pow10[decimals]) / pow10[decimals];
}

/* Number of registers a source reads from, starting at def->reg. */
static unsigned reading_span(const struct reading_def *d)
{
    return d->src == SRC_U32 ? 2 : 1;
}

static double reading_enum_index(const struct reading_def *d, unsigned code)
{
    for (size_t k = 0; d->options && d->options[k]; k++)
        if (d->option_codes[k] == code)
            return (double)k;
    return NAN;
}

void reading_decode_table(const struct reading_def *defs, size_t n, const uint16_t *regs,
                          size_t nregs, double *values)
{
    for (size_t i = 0; i < n; i++) {
        const struct reading_def *d = &defs[i];
        double raw;

        if (d->src == SRC_DERIVED || (size_t)d->reg + reading_span(d) > nregs)
            continue;
        uint16_t r = regs[d->reg];
        switch (d->src) {
        case SRC_U16:
            raw = r;
            break;
        case SRC_S16:
            raw = (int16_t)r;
            break;
        case SRC_U32:
            raw = (double)(((uint32_t)r << 16) | regs[d->reg + 1]);
            break;
        case SRC_BYTE_S8:
            raw = (int8_t)(d->arg == 0 ? r >> 8 : r & 0xFF);
            break;
        case SRC_BIT:
            values[i] = (r >> d->arg) & 1u;
            continue;
        case SRC_ENUM_LOW:
            values[i] = reading_enum_index(d, r & 0xFFu);
            continue;
        default:
            continue;
        }
        values[i] = raw * d->scale;
    }
}
