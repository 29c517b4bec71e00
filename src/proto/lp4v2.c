/* SPDX-License-Identifier: MIT */
/* lp4v2.c - EG4 LifePower4 v2 / EG4-LL: the readings the map cannot give, and its passes. */
#include "lp4v2.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

/* The readings table lp4v2_readings and the map lp4v2_map are generated at build time from
 * lp4v2_map.csv (the vendor's facts and the evidence are there). */

#define ORIG_FLAGS(p)                                                                              \
    p "pack_ov", p "cell_ov", p "pack_uv", p "cell_uv", p "charge_oc", p "discharge_oc",           \
        p "temp_anomaly", p "mos_ot", p "charge_ot", p "discharge_ot", p "charge_ut",              \
        p "discharge_ut"

const char *const lp4v2_original_sensor_keys[] = {
    "pack_voltage",
    "pack_current",
    "cell_voltage_min",
    "cell_voltage_max",
    "cell_voltage_delta_mv",
    "cell_lowest",
    "cell_highest",
    "temperature_01",
    "temperature_02",
    "temperature_03",
    "temperature_04",
    "temperature_pcb",
    "soc",
    "soh",
    "heater",
    "max_current_limit",
    "error_code",
    "cell_count",
    "capacity_ah",
    "remaining_ah",
    "cycle_count",
    "battery_mode",
    "bms_version_hi",
    "bms_version_lo",
    "uptime_ds",
    ORIG_FLAGS("warning_"),
    "warning_low_capacity",
    "warning_other_error",
    ORIG_FLAGS("protection_"),
    "protection_float_stopped",
    "protection_discharge_sc",
    NULL,
};

/* The derived readings, found in the table once rather than by name on every poll. */
enum { D_POWER, D_CELL_MIN, D_CELL_MAX, D_CELL_DELTA, D_CELL_LOWEST, D_CELL_HIGHEST, D_COUNT };

static const char *const lp4v2_derived_keys[D_COUNT] = {
    "pack_power",  "cell_voltage_min", "cell_voltage_max", "cell_voltage_delta_mv",
    "cell_lowest", "cell_highest",
};
static int lp4v2_derived_idx[D_COUNT];
static pthread_once_t lp4v2_derived_once = PTHREAD_ONCE_INIT;

static void lp4v2_find_derived(void)
{
    for (int d = 0; d < D_COUNT; d++)
        lp4v2_derived_idx[d] =
            reading_find(lp4v2_readings, lp4v2_n_readings, lp4v2_derived_keys[d]);
}

static void lp4v2_set(double *values, int which, double v)
{
    int i = lp4v2_derived_idx[which];

    values[i] = v;
}

/* Cell statistics over the pack's cells (register 36 says how many). */
static void lp4v2_cell_stats(const uint16_t *regs, double *values)
{
    unsigned cells = regs[LP4V2_REG_CELL_COUNT];
    int32_t mv[LP4V2_CELLS];
    struct cell_stats st;

    if (cells < 1 || cells > LP4V2_CELLS)
        cells = LP4V2_CELLS;
    for (unsigned c = 0; c < cells; c++)
        mv[c] = regs[LP4V2_REG_CELL1 + c];
    reading_cell_stats(mv, cells, &st);
    lp4v2_set(values, D_CELL_MIN, st.min_v);
    lp4v2_set(values, D_CELL_MAX, st.max_v);
    lp4v2_set(values, D_CELL_DELTA, st.delta_mv);
    lp4v2_set(values, D_CELL_LOWEST, st.lowest);
    lp4v2_set(values, D_CELL_HIGHEST, st.highest);
}

/* The derived readings and the master-map check, from registers 0..38 of regs (after the map's
 * pass). Returns 0, or -ENODATA with values all NaN. */
static int lp4v2_finish(const uint16_t *regs, double *values)
{
    bool all_zero = true;

    for (unsigned r = 0; r <= LP4V2_REG_TEMP_PCB; r++)
        all_zero = all_zero && regs[r] == 0;
    if (all_zero) {
        for (size_t i = 0; i < lp4v2_n_readings; i++)
            values[i] = NAN;
        return -ENODATA;
    }
    pthread_once(&lp4v2_derived_once, lp4v2_find_derived);
    lp4v2_cell_stats(regs, values);
    /* Power from the reported voltage and current: 10 mV x 10 mA = 1e-4 W. */
    lp4v2_set(values, D_POWER,
              regs[LP4V2_REG_VOLTAGE] * (double)(int16_t)regs[LP4V2_REG_CURRENT] * 1e-4);
    return 0;
}

int lp4v2_decode(const uint16_t *regs, size_t nregs, double *values)
{
    struct regmap_sink sink = {.values = values};

    for (size_t i = 0; i < lp4v2_n_readings; i++)
        values[i] = NAN;
    if (nregs < LP4V2_DOC_COUNT)
        return -EPROTO;
    regmap_decode(&lp4v2_map, REGMAP_POLL, 0, LP4V2_BLOCK_START, regs, nregs, &sink);
    return lp4v2_finish(regs, values);
}

/* The registers of a poll as the map's pass reads them. */
struct lp4v2_capture {
    uint16_t regs[LP4V2_BLOCK_COUNT];
    size_t n; /* registers 0..n-1 were read */
};

static void lp4v2_capture_block(void *ctx, uint8_t unit, uint16_t start, const uint16_t *regs,
                                size_t n)
{
    struct lp4v2_capture *c = ctx;

    (void)unit;
    if (start == LP4V2_BLOCK_START && n <= LP4V2_BLOCK_COUNT) {
        memcpy(c->regs, regs, n * sizeof(regs[0]));
        c->n = n;
    }
}

enum result lp4v2_poll_map(struct regmap_state *st, regmap_read_fn read, void *ctx, double *values)
{
    struct lp4v2_capture cap = {.n = 0};
    struct regmap_sink sink = {.values = values, .block = lp4v2_capture_block, .ctx = &cap};
    enum result r;

    for (size_t i = 0; i < lp4v2_n_readings; i++)
        values[i] = NAN;
    r = regmap_read(&lp4v2_map, st, REGMAP_POLL, read, ctx, &sink);
    if (r != RESULT_OK)
        return r;
    if (cap.n < LP4V2_DOC_COUNT) /* the map reads 0..46 in one request: not reached */
        return RESULT_LENGTH;
    return lp4v2_finish(cap.regs, values) == -ENODATA ? RESULT_ZERO : RESULT_OK;
}

/* The map's identity strings into a struct device_identity. */
static void lp4v2_put_text(void *ctx, const struct reading_def *d, const char *text)
{
    reading_identity_set(ctx, d->key, text);
}

enum result lp4v2_identify_map(struct regmap_state *st, regmap_read_fn read, void *ctx,
                               struct device_identity *id)
{
    struct device_identity got;
    struct regmap_sink sink = {.text = lp4v2_put_text, .ctx = &got};
    enum result r;

    memset(&got, 0, sizeof(got));
    r = regmap_read(&lp4v2_map, st, REGMAP_IDENTIFY, read, ctx, &sink);
    if (r == RESULT_OK)
        *id = got;
    return r;
}

void lp4v2_identity(const uint16_t *regs, size_t n, struct device_identity *id)
{
    struct regmap_sink sink = {.text = lp4v2_put_text, .ctx = id};

    memset(id, 0, sizeof(*id));
    if (n < LP4V2_ID_COUNT)
        return;
    regmap_decode(&lp4v2_map, REGMAP_IDENTIFY, 0, LP4V2_ID_START, regs, n, &sink);
}
