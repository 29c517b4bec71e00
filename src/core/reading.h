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
    /* Quantities of inverters, meters and sensors (a Victron GX's register table). */
    Q_TEXT,           /* a string register's text: no unit, no class */
    Q_FREQUENCY,      /* Hz, frequency, measurement */
    Q_APPARENT_POWER, /* VA, apparent_power, measurement */
    Q_REACTIVE_POWER, /* var, reactive_power, measurement */
    Q_POWER_KW,       /* kW, power, measurement */
    Q_POWER_FACTOR,   /* no unit (a ratio -1..1), power_factor, measurement */
    Q_ENERGY_STORAGE, /* kWh, energy_storage, measurement (a capacity, not a counter) */
    Q_DURATION,       /* s, duration, measurement */
    Q_DURATION_H,     /* h, duration, measurement */
    Q_DURATION_D,     /* d, duration, measurement */
    Q_COUNTER,        /* no unit, no class, measurement (counts that may go down) */
    Q_ROTATION,       /* rpm, no device class (HA has none), measurement */
    Q_SPEED,          /* m/s, speed, measurement */
    Q_DISTANCE,       /* m, distance, measurement (an altitude) */
    Q_ANGLE,          /* °, no device class (a course, a latitude), measurement */
    Q_PRESSURE_KPA,   /* kPa, pressure, measurement */
    Q_PRESSURE_HPA,   /* hPa, atmospheric_pressure, measurement */
    Q_VOLUME_STORAGE, /* m³, volume_storage, measurement (a tank's content or capacity) */
    Q_HUMIDITY,       /* %, humidity, measurement */
    Q_IRRADIANCE,     /* W/m², irradiance, measurement */
    Q_ILLUMINANCE,    /* lx, illuminance, measurement */
    Q_CO2,            /* ppm, carbon_dioxide, measurement */
    Q_PPM,            /* ppm, no device class, measurement */
    Q_PM25,           /* μg/m³, pm25, measurement */
    Q_CONCENTRATION,  /* μg/m³, no device class, measurement */
    Q_QUANTITY_COUNT, /* the number of quantities (not one) */
};

/*
 * How a reading is taken from a device's registers. A register is 16 bits, big-endian on the
 * wire (Modbus application protocol V1.1b3 §4.2); wider types span consecutive registers,
 * highest word first unless the reading has READING_LOW_WORD_FIRST. The raw number is divided
 * by the reading's divisor (see struct reading_def); a reading with options maps its raw code to
 * an option index instead.
 */
enum reading_src {
    SRC_U16,      /* one register, unsigned */
    SRC_S16,      /* one register, two's complement */
    SRC_U32,      /* two registers, unsigned */
    SRC_S32,      /* two registers, two's complement */
    SRC_U64,      /* four registers, unsigned (exact up to 2^53: a double holds the value) */
    SRC_U8,       /* byte `arg` of the register (0 = high byte, 1 = low byte), unsigned */
    SRC_S8,       /* byte `arg` of the register, as int8 */
    SRC_BIT,      /* bit `arg` (0 = least significant) of the register: 0 or 1 */
    SRC_STRING,   /* `count` registers of text, two characters each, first one in the high
                     byte: never a number (its value is NaN), reading_text() gives the text */
    SRC_RESERVED, /* `count` registers that exist but carry nothing (a GX's reserved spacers):
                     a read may cover them, nothing is decoded; only in a map's aux table */
    SRC_DERIVED,  /* computed by the protocol after the map pass (min, max, power...) */
};

/* Flags of a reading_def. */
#define READING_DIAGNOSTIC 0x1u /* entity_category diagnostic */
#define READING_DISABLED   0x2u /* enabled_by_default false */
/* The device accepts writes to the register(s) (a GX's "W" items). Nothing writes yet. */
#define READING_WRITABLE 0x4u
/* 32/64-bit types: the lowest word comes first (word order CDAB); default highest first. */
#define READING_LOW_WORD_FIRST 0x8u
/* Not available when every register of the reading reads 0xFFFF (a GX's reserved spacers and
 * retired registers, the "not implemented" value of many maps): the value is NaN, never 65535
 * or -1. Applies to every source that reads registers, bits and bytes included. */
#define READING_NA_ONES 0x10u
/* Not available when a signed value is its type's minimum (0x8000, 0x80000000): NaN. */
#define READING_NA_MIN 0x20u
/* Read once per connection by the driver's identify (model, firmware, serial), not each poll. */
#define READING_IDENTITY 0x40u
/* SRC_STRING: printable ASCII only; every other byte, NUL included, is dropped (LP4V2's
 * identity). Without it: Latin-1, cut at the first NUL, control characters dropped (a GX). */
#define READING_ASCII 0x80u

/* The longest reading key of any table (and of the retired keys of a driver), in bytes: the
 * config loader sizes its discovery-topic check by it (test_config checks every table). */
#define READING_KEY_MAX 40

/* Raw codes lo..hi (inclusive) that an enum reading shows as option `option` (an index in the
 * reading's options). For maps whose codes share labels or come in ranges (a GX: "5=...;
 * 10=..." with one text, "51-52=..."). */
struct reading_code {
    uint32_t lo, hi;
    uint16_t option;
};

/*
 * The static description of one reading. Tables of these are const, per protocol; a register
 * map (regmap.h) reads the ones whose src reads registers. Fields after `group` describe where
 * the registers are; positional initialisers that stop at `group` leave them 0 (unit id 0,
 * natural width, one segment, no path).
 */
struct reading_def {
    const char *key;  /* JSON key and unique_id part, e.g. "pack_voltage" */
    const char *name; /* HA entity name without the pack, e.g. "Pack voltage" */
    enum quantity q;
    enum reading_src src;
    uint16_t reg;      /* address of the (first) register: the PDU address, 0-based */
    uint8_t arg;       /* bit number or byte index; or the index in `group` */
    uint8_t precision; /* decimals in the state JSON and suggested_display_precision */
    /* value = raw / divisor in the quantity's unit; 0 is taken as 1. A divisor, as a GX's
     * "scale factor" is: 100 turns 5240 into 52.40 V, 0.1 turns 1 into 10 W, -10 turns 25 into
     * -2.5 Ah, 1e7 turns degrees x 1e7 into degrees. Unused by enums, bits and strings. */
    double divisor;
    unsigned flags;               /* READING_* */
    const char *icon;             /* mdi icon or NULL */
    const char *const *options;   /* Q_ENUM: NULL-terminated texts, index = stored value */
    const uint16_t *option_codes; /* Q_ENUM: raw code for each option (same length), or NULL
                                     when `codes` maps them */
    const char *group; /* published as element `arg` of the JSON array `group`, not as its
                          own member (raw registers: "registers": [r0, r1, ...]) */
    uint8_t unit;      /* Modbus unit id of the register; 0 = the device's own address */
    uint16_t count;    /* registers of SRC_STRING and SRC_RESERVED; 0 for the others (their
                          type says: reading_width()) */
    uint8_t segment;   /* a map's segment (a GX service): one request never spans two */
    const char *path;  /* the register's name in the device's documentation (a GX's D-Bus
                          path), or NULL */
    const struct reading_code *codes; /* Q_ENUM: code ranges -> options, or NULL */
    uint16_t n_codes;                 /* entries of codes */
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
    char name[65];     /* the device's own name, UTF-8 (a GX device's custom name), or "":
                          the HA device is then named by its configuration */
};

/*
 * Put `text` into the field of *id that `key` names: "model", "firmware" or "serial" (cut to
 * the field's size at a UTF-8 character boundary). Returns true, or false (nothing changed)
 * for any other key. Maps name their identity strings by these keys.
 */
bool reading_identity_set(struct device_identity *id, const char *key, const char *text);

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

/* The label of enum reading d's value v (an option index, reading_decode()), or NULL when v
 * is NaN, negative (a code the table does not know, as a driver gives it: -(code + 1)) or
 * past d's options. */
const char *reading_option(const struct reading_def *d, double v);

/* True if d is read from registers (its src is neither SRC_DERIVED nor SRC_RESERVED). */
bool reading_from_registers(const struct reading_def *d);

/* Registers d spans from d->reg: 1 for 16-bit and smaller sources, 2 for 32-bit, 4 for
 * SRC_U64, d->count for strings and reserved spacers; 0 for SRC_DERIVED. */
unsigned reading_width(const struct reading_def *d);

/*
 * The value of d from its registers r[0..reading_width(d)) (r[0] = register d->reg), in the
 * quantity's unit, unrounded (the state message rounds it to d->precision, ha.h), so that sums
 * such as the bank's come from the packs' own numbers. Binary readings give 0 or 1, enums the
 * option index. NaN (unknown) for: a code no option has, a not-available marker of d's flags,
 * SRC_STRING, SRC_RESERVED and SRC_DERIVED.
 */
double reading_decode(const struct reading_def *d, const uint16_t *r);

/*
 * The text of a SRC_STRING reading d from its registers r[0..d->count), as UTF-8 into
 * out[0..cap) (NUL-terminated, cut at a character boundary when it does not fit): two
 * characters per register, high byte first; Latin-1, ending at the first NUL, without control
 * characters, unless d has READING_ASCII (printable ASCII only, every other byte dropped);
 * leading and trailing spaces removed. Returns the text's length in bytes, or -1 (out = "")
 * when d is not a string or cap is 0.
 */
int reading_text(const struct reading_def *d, const uint16_t *r, char *out, size_t cap);

/*
 * Where d comes from, for people (the "source" column of `bms2mqtt --list-readings`):
 * "derived", "reg 24 u16", "reg 0 u16 / 100", "reg 25 bit 15", "reg 33 byte 0" (int8),
 * "reg 25 low byte", "reg 105 string[12]", "unit 225 reg 259 u32 low word first"... Writes
 * at most cap bytes (NUL-terminated); returns the length it needed (as snprintf).
 */
int reading_source_text(const struct reading_def *d, char *buf, size_t cap);

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
