/* SPDX-License-Identifier: MIT */
/* reading.c - the one table of units and HA classes, and table-driven decoding. */
#include "reading.h"

#include <math.h>
#include <stdio.h>
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
    [Q_TEXT]           = {NULL,      "sensor", NULL,                   NULL},
    [Q_FREQUENCY]      = {"Hz",      "sensor", "frequency",            "measurement"},
    [Q_APPARENT_POWER] = {"VA",      "sensor", "apparent_power",       "measurement"},
    [Q_REACTIVE_POWER] = {"var",     "sensor", "reactive_power",       "measurement"},
    [Q_POWER_KW]       = {"kW",      "sensor", "power",                "measurement"},
    [Q_POWER_FACTOR]   = {NULL,      "sensor", "power_factor",         "measurement"},
    [Q_ENERGY_STORAGE] = {"kWh",     "sensor", "energy_storage",       "measurement"},
    [Q_DURATION]       = {"s",       "sensor", "duration",             "measurement"},
    [Q_DURATION_H]     = {"h",       "sensor", "duration",             "measurement"},
    [Q_DURATION_D]     = {"d",       "sensor", "duration",             "measurement"},
    [Q_COUNTER]        = {NULL,      "sensor", NULL,                   "measurement"},
    [Q_ROTATION]       = {"rpm",     "sensor", NULL,                   "measurement"},
    [Q_SPEED]          = {"m/s",     "sensor", "speed",                "measurement"},
    [Q_DISTANCE]       = {"m",       "sensor", "distance",             "measurement"},
    [Q_ANGLE]          = {"°",       "sensor", NULL,                   "measurement"},
    [Q_PRESSURE_KPA]   = {"kPa",     "sensor", "pressure",             "measurement"},
    [Q_PRESSURE_HPA]   = {"hPa",     "sensor", "atmospheric_pressure", "measurement"},
    [Q_VOLUME_STORAGE] = {"m³",      "sensor", "volume_storage",       "measurement"},
    [Q_HUMIDITY]       = {"%",       "sensor", "humidity",             "measurement"},
    [Q_IRRADIANCE]     = {"W/m²",    "sensor", "irradiance",           "measurement"},
    [Q_ILLUMINANCE]    = {"lx",      "sensor", "illuminance",          "measurement"},
    [Q_CO2]            = {"ppm",     "sensor", "carbon_dioxide",       "measurement"},
    [Q_PPM]            = {"ppm",     "sensor", NULL,                   "measurement"},
    [Q_PM25]           = {"μg/m³",   "sensor", "pm25",                 "measurement"},
    [Q_CONCENTRATION]  = {"μg/m³",   "sensor", NULL,                   "measurement"},
};
_Static_assert(sizeof(quantity_table) / sizeof(quantity_table[0]) == Q_QUANTITY_COUNT,
               "one row per quantity");
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

const char *reading_option(const struct reading_def *d, double v)
{
    if (!(v >= 0) || !d->options)
        return NULL;
    for (size_t k = 0; d->options[k]; k++)
        if (k == (size_t)v)
            return d->options[k];
    return NULL;
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

bool reading_from_registers(const struct reading_def *d)
{
    return d->src != SRC_DERIVED && d->src != SRC_RESERVED;
}

unsigned reading_width(const struct reading_def *d)
{
    switch (d->src) {
    case SRC_U32:
    case SRC_S32:
        return 2;
    case SRC_U64:
        return 4;
    case SRC_STRING:
    case SRC_RESERVED:
        return d->count;
    case SRC_DERIVED:
        return 0;
    default:
        return 1;
    }
}

/* The option index of raw code `code` of enum reading d, or NaN when no option has it. */
static double reading_enum_index(const struct reading_def *d, int64_t code)
{
    if (d->codes) {
        for (size_t k = 0; k < d->n_codes; k++)
            if (code >= d->codes[k].lo && code <= d->codes[k].hi)
                return d->codes[k].option;
        return NAN;
    }
    for (size_t k = 0; d->options && d->option_codes && d->options[k]; k++)
        if (d->option_codes[k] == code)
            return (double)k;
    return NAN;
}

/* The registers r[0..w) as one unsigned number, in d's word order. */
static uint64_t reading_words(const struct reading_def *d, const uint16_t *r, unsigned w)
{
    uint64_t u = 0;

    for (unsigned k = 0; k < w; k++)
        u = u << 16 | r[d->flags & READING_LOW_WORD_FIRST ? w - 1 - k : k];
    return u;
}

double reading_decode(const struct reading_def *d, const uint16_t *r)
{
    unsigned w = reading_width(d);
    bool na_min = d->flags & READING_NA_MIN;
    uint64_t u;
    int64_t code;

    if (!reading_from_registers(d) || d->src == SRC_STRING || w == 0 || w > 4)
        return NAN;
    if (d->flags & READING_NA_ONES) {
        bool ones = true;
        for (unsigned k = 0; k < w; k++)
            ones = ones && r[k] == 0xFFFFu;
        if (ones)
            return NAN;
    }
    u = reading_words(d, r, w);
    switch (d->src) {
    case SRC_S16:
        if (na_min && u == 0x8000u)
            return NAN;
        code = (int16_t)(uint16_t)u;
        break;
    case SRC_S32:
        if (na_min && u == 0x80000000u)
            return NAN;
        code = (int32_t)(uint32_t)u;
        break;
    case SRC_U8:
        code = d->arg == 0 ? (int64_t)(u >> 8) : (int64_t)(u & 0xFFu);
        break;
    case SRC_S8:
        code = (int8_t)(uint8_t)(d->arg == 0 ? u >> 8 : u & 0xFFu);
        if (na_min && code == INT8_MIN)
            return NAN;
        break;
    case SRC_BIT:
        return d->arg < 16 ? (double)((u >> d->arg) & 1u) : NAN;
    case SRC_U64:
        if (d->options)
            return u > UINT32_MAX ? NAN : reading_enum_index(d, (int64_t)u);
        return (double)u / (d->divisor != 0 ? d->divisor : 1);
    default: /* SRC_U16, SRC_U32 */
        code = (int64_t)u;
        break;
    }
    if (d->options)
        return reading_enum_index(d, code);
    return (double)code / (d->divisor != 0 ? d->divisor : 1);
}

/* Append the character of Latin-1 code c to out[*k..) as UTF-8, leaving room for the NUL of
 * out[0..cap). False, with nothing written, when it does not fit. */
static bool reading_put_latin1(unsigned char c, char *out, size_t cap, size_t *k)
{
    size_t need = c < 0x80 ? 1 : 2;

    if (*k + need >= cap)
        return false;
    if (c < 0x80) {
        out[(*k)++] = (char)c;
    } else {
        out[(*k)++] = (char)(0xC0 | c >> 6);
        out[(*k)++] = (char)(0x80 | (c & 0x3F));
    }
    return true;
}

int reading_text(const struct reading_def *d, const uint16_t *r, char *out, size_t cap)
{
    bool ascii = d->flags & READING_ASCII;
    size_t k = 0, end;

    if (cap == 0)
        return -1;
    out[0] = '\0';
    if (d->src != SRC_STRING)
        return -1;
    for (size_t i = 0; i < 2u * d->count; i++) {
        unsigned char c = (unsigned char)(i % 2 == 0 ? r[i / 2] >> 8 : r[i / 2] & 0xFF);
        if (c == 0 && !ascii)
            break;
        /* Printable ASCII; Latin-1 adds 0xA0..0xFF (C1 controls 0x80..0x9F are dropped). */
        if (((c >= 0x20 && c < 0x7F) || (!ascii && c >= 0xA0)) &&
            !reading_put_latin1(c, out, cap, &k))
            break;
    }
    out[k] = '\0';
    /* Padding spaces on either side are not part of the value. */
    end = k;
    while (end > 0 && out[end - 1] == ' ')
        end--;
    out[end] = '\0';
    size_t lead = strspn(out, " ");
    memmove(out, out + lead, end - lead + 1);
    return (int)(end - lead);
}

int reading_source_text(const struct reading_def *d, char *buf, size_t cap)
{
    static const char *const type[] = {
        [SRC_U16] = "u16", [SRC_S16] = "s16", [SRC_U32] = "u32",
        [SRC_S32] = "s32", [SRC_U64] = "u64",
    };
    char unit[16] = "", what[40];
    double div = d->divisor != 0 ? d->divisor : 1;

    if (d->src == SRC_DERIVED)
        return snprintf(buf, cap, "derived");
    if (d->unit)
        snprintf(unit, sizeof(unit), "unit %u ", d->unit);
    switch (d->src) {
    case SRC_BIT:
        snprintf(what, sizeof(what), "bit %u", d->arg);
        break;
    case SRC_S8:
        snprintf(what, sizeof(what), "byte %u", d->arg);
        break;
    case SRC_U8:
        snprintf(what, sizeof(what), "%s byte", d->arg == 0 ? "high" : "low");
        break;
    case SRC_STRING:
    case SRC_RESERVED:
        snprintf(what, sizeof(what), "%s[%u]", d->src == SRC_STRING ? "string" : "reserved",
                 d->count);
        break;
    default:
        snprintf(what, sizeof(what), "%s%s", type[d->src],
                 d->flags & READING_LOW_WORD_FIRST ? " low word first" : "");
        if (div != 1 && !d->options)
            snprintf(what + strlen(what), sizeof(what) - strlen(what), " / %.15g", div);
    }
    return snprintf(buf, cap, "%sreg %u %s%s%s", unit, d->reg, what,
                    d->flags & READING_NA_ONES ? " (0xFFFF: unknown)" : "",
                    d->flags & READING_NA_MIN ? " (minimum: unknown)" : "");
}

bool reading_identity_set(struct device_identity *id, const char *key, const char *text)
{
    char *field = !key                           ? NULL
                  : strcmp(key, "model") == 0    ? id->model
                  : strcmp(key, "firmware") == 0 ? id->firmware
                  : strcmp(key, "serial") == 0   ? id->serial
                                                 : NULL;
    size_t cap = sizeof(id->model), n = strlen(text);

    _Static_assert(sizeof(id->model) == sizeof(id->firmware) &&
                       sizeof(id->model) == sizeof(id->serial),
                   "identity fields of one size");

    if (!field)
        return false;
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80) /* inside a character */
            n--;
    }
    memcpy(field, text, n);
    field[n] = '\0';
    return true;
}
