/* SPDX-License-Identifier: MIT */
/* reading.h - the readings model: named quantities with units, and how HA sees them. */
#ifndef BMS_READING_H
#define BMS_READING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * What a reading measures. Each quantity maps, in one table (reading.c), to its unit,
 * HA component, device_class and state_class, so that no other file names a unit.
 */
enum quantity {
    Q_VOLTAGE,     /* V, device_class voltage, measurement */
    Q_VOLTAGE_MV,  /* mV, voltage, measurement */
    Q_CURRENT,     /* A, current, measurement */
    Q_POWER,       /* W, power, measurement */
    Q_TEMPERATURE, /* °C, temperature, measurement */
    Q_SOC,         /* %, battery, measurement */
    Q_PERCENT,     /* %, no device class (SoH), measurement */
    Q_CHARGE,      /* Ah, no device class (HA has none for charge), measurement */
    Q_ENERGY,      /* kWh, energy, total_increasing (Energy dashboard counters) */
    Q_COUNT,       /* no unit, total_increasing (cycle count) */
    Q_NUMBER,      /* no unit, no class (indices, counts of cells) */
    Q_RAW,         /* raw register value: no unit, no class */
    Q_ENUM,        /* text from a fixed list: device_class enum with options */
    Q_PROBLEM,     /* binary_sensor problem: on = warning / error */
    Q_SAFETY,      /* binary_sensor safety: on = protection tripped */
    Q_HEAT,        /* binary_sensor heat: on = heater on */
    Q_RUNNING,     /* binary_sensor running: on = cell balancing */
};

/* How a reading is taken from a register image (see lp4v2.c for the map). */
enum reading_src {
    SRC_U16,      /* regs[reg] as unsigned, times scale */
    SRC_S16,      /* regs[reg] as two's complement, times scale */
    SRC_U32,      /* regs[reg] << 16 | regs[reg + 1], times scale */
    SRC_BYTE_S8,  /* byte `arg` (0 = high byte of regs[reg]) as int8, times scale */
    SRC_BIT,      /* bit `arg` of regs[reg]: 0 or 1 */
    SRC_ENUM_LOW, /* low byte of regs[reg], mapped to an index of `options` by value */
    SRC_DERIVED,  /* computed by the protocol after the table pass (min, max, power...) */
};

/* Flags of a reading_def. */
#define READING_DIAGNOSTIC 0x1u /* entity_category diagnostic */
#define READING_DISABLED   0x2u /* enabled_by_default false */

/* The longest reading key of any table (and of the retired keys of a driver), in bytes: the
 * config loader sizes its discovery-topic check by it (test_config checks every table). */
#define READING_KEY_MAX 40

/* The static description of one reading. Tables of these are const, per protocol. */
struct reading_def {
    const char *key;  /* JSON key and unique_id part, e.g. "pack_voltage" */
    const char *name; /* HA entity name without the pack, e.g. "Pack voltage" */
    enum quantity q;
    enum reading_src src;
    uint16_t reg;                 /* register number for the SRC_* above */
    uint8_t arg;                  /* bit number or byte index */
    uint8_t precision;            /* decimals in the state JSON and suggested_display_precision */
    double scale;                 /* raw * scale = value in the quantity's unit */
    unsigned flags;               /* READING_* */
    const char *icon;             /* mdi icon or NULL */
    const char *const *options;   /* Q_ENUM: NULL-terminated texts, index = stored value */
    const uint16_t *option_codes; /* Q_ENUM: raw code for each option (same length) */
    const char *group; /* published as element `arg` of the JSON array `group`, not as its
                          own member (raw registers: "registers": [r0, r1, ...]) */
};

/*
 * What a device says of itself, for the HA device block: each text NUL-terminated, "" when
 * the device did not give it (LP4V2: registers 105..127; Pylontech: 0x51, 0x93, 0x96;
 * EG4 legacy: 0x33).
 */
struct device_identity {
    char model[33];    /* e.g. "LP4V2-48V-100AH" */
    char firmware[33]; /* e.g. "V03R04" */
    char serial[33];   /* e.g. "LP4V2SIM00000001" */
};

/* Per-quantity HA metadata, from the one table in reading.c. */
struct quantity_info {
    const char *unit;         /* unit_of_measurement or NULL */
    const char *component;    /* "sensor" or "binary_sensor" */
    const char *device_class; /* HA device class or NULL */
    const char *state_class;  /* HA state class or NULL */
};

/* The metadata of quantity q. Never NULL for a valid q. */
const struct quantity_info *quantity_info(enum quantity q);

/* True if q is published as a binary_sensor (values 0 / 1). */
bool quantity_is_binary(enum quantity q);

/*
 * One pack's readings for one poll: values[i] belongs to defs[i], in the quantity's unit,
 * unrounded (precision applies when they are published); NaN = not available
 * (published as JSON null, which HA shows as unknown). Binary readings hold 0 or 1,
 * enum readings the option index.
 */
struct reading_set {
    const struct reading_def *defs;
    size_t n;
    double *values;
};

/* Index of `key` in defs[0..n), or -1. */
int reading_find(const struct reading_def *defs, size_t n, const char *key);

/*
 * Apply the table to a register image: for every def whose src is not SRC_DERIVED and
 * whose register(s) lie in regs[0..nregs), set values[i]; others are left untouched.
 * Scaling as in the def; values are not rounded (the state message rounds them to the def's
 * precision, ha.h), so that sums such as the bank's come from the packs' own numbers.
 */
void reading_decode_table(const struct reading_def *defs, size_t n, const uint16_t *regs,
                          size_t nregs, double *values);

/* Statistics of a pack's cells, as every protocol publishes them. */
struct cell_stats {
    double min_v, max_v; /* lowest and highest cell, V */
    double delta_mv;     /* their difference, mV */
    unsigned lowest;     /* 1-based number of the lowest cell (the first of equal ones) */
    unsigned highest;    /* and of the highest */
};

/*
 * Cell statistics over cells_mv[0..n) (mV). Returns 0, or -1 when n is 0 (*st untouched).
 * Strict comparisons name the first of equal cells, as the eg4-battery script did.
 */
int reading_cell_stats(const int32_t *cells_mv, size_t n, struct cell_stats *st);

/* Round v to `decimals` places (half away from zero). */
double reading_round(double v, int decimals);

#endif
