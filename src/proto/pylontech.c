/* SPDX-License-Identifier: MIT */
/* pylontech.c - Pylontech V3.3 requests and reply decoding into readings (README §3). */
#include "pylontech.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ascii_frame.h"
#include "cursor.h"

/* Indices into pylontech_readings, grouped by the command that fills them. */
enum {
    /* 0x42 */
    R_PACK_VOLTAGE,
    R_PACK_CURRENT,
    R_PACK_POWER,
    R_ENERGY_CHARGED,
    R_ENERGY_DISCHARGED,
    R_SOC,
    R_REMAINING,
    R_FULL,
    R_CYCLES,
    R_CELL_COUNT,
    R_TEMP1,
    R_CELL1 = R_TEMP1 + PYLONTECH_MAX_TEMPS,
    R_CELL_MIN = R_CELL1 + PYLONTECH_MAX_CELLS,
    R_CELL_MAX,
    R_CELL_DELTA,
    R_CELL_LOWEST,
    R_CELL_HIGHEST,
    /* 0x44 */
    R_ALARM_CELL_LOW,
    R_ALARM_CELL_HIGH,
    R_ALARM_TEMP_LOW,
    R_ALARM_TEMP_HIGH,
    R_ALARM_CHARGE_CURRENT,
    R_ALARM_PACK_LOW,
    R_ALARM_PACK_HIGH,
    R_ALARM_DISCHARGE_CURRENT,
    R_ALARM_OTHER,
    R_PROT_PACK_OV,
    R_PROT_CELL_UV,
    R_PROT_CHARGE_OC,
    R_PROT_DISCHARGE_OC,
    R_PROT_DISCHARGE_OT,
    R_PROT_CHARGE_OT,
    R_PROT_PACK_UV,
    R_CHARGE_MOS,
    R_DISCHARGE_MOS,
    R_CELL_ERROR,
    R_STATUS1,
    /* 0x92 */
    R_CHG_V_LIMIT = R_STATUS1 + 5,
    R_DIS_V_LIMIT,
    R_CHG_I_LIMIT,
    R_DIS_I_LIMIT,
    R_CHG_ENABLE,
    R_DIS_ENABLE,
    R_CHG_IMMEDIATELY,
    R_FULL_CHARGE_REQUEST,
    /* 0x47: twelve parameters in the order of §3.4 */
    R_SYS_FIRST,
    R_COUNT = R_SYS_FIRST + 12
};

/* The range of indices each decoder owns: [first, last). */
#define ANALOG_FIRST R_PACK_VOLTAGE
#define ANALOG_LAST  R_ALARM_CELL_LOW
#define ALARM_FIRST  R_ALARM_CELL_LOW
#define ALARM_LAST   R_CHG_V_LIMIT
#define MGMT_FIRST   R_CHG_V_LIMIT
#define MGMT_LAST    R_SYS_FIRST
#define SYS_FIRST    R_SYS_FIRST
#define SYS_LAST     R_COUNT

#define DIAG   (READING_DIAGNOSTIC)
#define HIDDEN (READING_DIAGNOSTIC | READING_DISABLED)

#define DEF(key, label, q, prec, flags, icon)                                                      \
    {                                                                                              \
        key, label, q, SRC_DERIVED, 0, 0, prec, 1, flags, icon, NULL, NULL                         \
    }
#define CELL(nn, n)                                                                                \
    [R_CELL1 + (n)-1] =                                                                            \
        DEF("cell_" #nn "_voltage", "Cell " #n " voltage", Q_VOLTAGE, 3, 0, "mdi:battery-outline")
#define TEMP(nn, n, where)                                                                         \
    [R_TEMP1 + (n)-1] = DEF("temperature_" #nn, "Temperature " #n " (" where ")", Q_TEMPERATURE,   \
                            1, 0, "mdi:thermometer")
#define STATUS(n)                                                                                  \
    [R_STATUS1 + (n)-1] =                                                                          \
        DEF("alarm_status_" #n, "Alarm status " #n, Q_RAW, 0, HIDDEN, "mdi:numeric")

// clang-format off
const struct reading_def pylontech_readings[] = {
    [R_PACK_VOLTAGE] = DEF("pack_voltage", "Pack voltage", Q_VOLTAGE, 3, 0, "mdi:battery-outline"),
    [R_PACK_CURRENT] = DEF("pack_current", "Pack current", Q_CURRENT, 1, 0, "mdi:current-dc"),
    [R_PACK_POWER] = DEF("pack_power", "Pack power", Q_POWER, 0, 0, "mdi:flash"),
    /* Integrated by the poller from pack_power (energy.c), as for LP4V2. */
    [R_ENERGY_CHARGED] = DEF("energy_charged_kwh", "Energy charged", Q_ENERGY, 3, 0, "mdi:battery-arrow-up"),
    [R_ENERGY_DISCHARGED] = DEF("energy_discharged_kwh", "Energy discharged", Q_ENERGY, 3, 0, "mdi:battery-arrow-down"),
    /* The protocol has no SoC: remaining / full capacity. */
    [R_SOC] = DEF("soc", "State of charge", Q_SOC, 1, 0, NULL),
    [R_REMAINING] = DEF("remaining_ah", "Remaining capacity", Q_CHARGE, 3, 0, "mdi:battery-clock"),
    [R_FULL] = DEF("full_capacity_ah", "Full capacity", Q_CHARGE, 3, 0, "mdi:battery-clock"),
    [R_CYCLES] = DEF("cycle_count", "Cycle count", Q_COUNT, 0, 0, "mdi:counter"),
    [R_CELL_COUNT] = DEF("cell_count", "Cell count", Q_NUMBER, 0, DIAG, "mdi:numeric"),
    TEMP(01, 1, "BMS board"), TEMP(02, 2, "cells 1-4"), TEMP(03, 3, "cells 5-8"),
    TEMP(04, 4, "cells 9-12"), TEMP(05, 5, "cells 13-16"), TEMP(06, 6, "MOSFET"),
    CELL(01, 1), CELL(02, 2), CELL(03, 3), CELL(04, 4), CELL(05, 5), CELL(06, 6),
    CELL(07, 7), CELL(08, 8), CELL(09, 9), CELL(10, 10), CELL(11, 11), CELL(12, 12),
    CELL(13, 13), CELL(14, 14), CELL(15, 15), CELL(16, 16),
    [R_CELL_MIN] = DEF("cell_voltage_min", "Cell voltage min", Q_VOLTAGE, 3, 0, "mdi:arrow-down-bold"),
    [R_CELL_MAX] = DEF("cell_voltage_max", "Cell voltage max", Q_VOLTAGE, 3, 0, "mdi:arrow-up-bold"),
    [R_CELL_DELTA] = DEF("cell_voltage_delta_mv", "Cell voltage delta", Q_VOLTAGE_MV, 0, 0, "mdi:sine-wave"),
    [R_CELL_LOWEST] = DEF("cell_lowest", "Lowest cell", Q_NUMBER, 0, 0, "mdi:numeric"),
    [R_CELL_HIGHEST] = DEF("cell_highest", "Highest cell", Q_NUMBER, 0, 0, "mdi:numeric"),
    /* §3.5 state bytes: 01 below the lower limit, 02 above the upper limit, F0 other. */
    [R_ALARM_CELL_LOW] = DEF("alarm_cell_voltage_low", "Cell voltage low alarm", Q_PROBLEM, 0, 0, "mdi:alert"),
    [R_ALARM_CELL_HIGH] = DEF("alarm_cell_voltage_high", "Cell voltage high alarm", Q_PROBLEM, 0, 0, "mdi:alert"),
    [R_ALARM_TEMP_LOW] = DEF("alarm_temperature_low", "Temperature low alarm", Q_PROBLEM, 0, 0, "mdi:thermometer-alert"),
    [R_ALARM_TEMP_HIGH] = DEF("alarm_temperature_high", "Temperature high alarm", Q_PROBLEM, 0, 0, "mdi:thermometer-alert"),
    [R_ALARM_CHARGE_CURRENT] = DEF("alarm_charge_current", "Charge current alarm", Q_PROBLEM, 0, 0, "mdi:alert"),
    [R_ALARM_PACK_LOW] = DEF("alarm_pack_voltage_low", "Pack voltage low alarm", Q_PROBLEM, 0, 0, "mdi:alert"),
    [R_ALARM_PACK_HIGH] = DEF("alarm_pack_voltage_high", "Pack voltage high alarm", Q_PROBLEM, 0, 0, "mdi:alert"),
    [R_ALARM_DISCHARGE_CURRENT] = DEF("alarm_discharge_current", "Discharge current alarm", Q_PROBLEM, 0, 0, "mdi:alert"),
    [R_ALARM_OTHER] = DEF("alarm_other_error", "Other error", Q_PROBLEM, 0, 0, "mdi:alert-octagon"),
    /* §3.5 status 1: protections tripped. Keys as LP4V2's protection_<flag>. */
    [R_PROT_PACK_OV] = DEF("protection_pack_ov", "Pack overvoltage protection", Q_SAFETY, 0, 0, NULL),
    [R_PROT_CELL_UV] = DEF("protection_cell_uv", "Cell undervoltage protection", Q_SAFETY, 0, 0, NULL),
    [R_PROT_CHARGE_OC] = DEF("protection_charge_oc", "Charge overcurrent protection", Q_SAFETY, 0, 0, NULL),
    [R_PROT_DISCHARGE_OC] = DEF("protection_discharge_oc", "Discharge overcurrent protection", Q_SAFETY, 0, 0, NULL),
    [R_PROT_DISCHARGE_OT] = DEF("protection_discharge_ot", "Discharge overtemperature protection", Q_SAFETY, 0, 0, NULL),
    [R_PROT_CHARGE_OT] = DEF("protection_charge_ot", "Charge overtemperature protection", Q_SAFETY, 0, 0, NULL),
    [R_PROT_PACK_UV] = DEF("protection_pack_uv", "Pack undervoltage protection", Q_SAFETY, 0, 0, NULL),
    /* §3.5 status 2. */
    [R_CHARGE_MOS] = DEF("charge_mos", "Charge MOSFET", Q_RUNNING, 0, DIAG, "mdi:electric-switch"),
    [R_DISCHARGE_MOS] = DEF("discharge_mos", "Discharge MOSFET", Q_RUNNING, 0, DIAG, "mdi:electric-switch"),
    /* §3.5 status 4 and 5: a cell voltage above 4.2 V or below 1 V. */
    [R_CELL_ERROR] = DEF("cell_voltage_error", "Cell voltage error", Q_PROBLEM, 0, 0, "mdi:battery-alert"),
    STATUS(1), STATUS(2), STATUS(3), STATUS(4), STATUS(5),
    /* §3.6: what the pack asks of the inverter. */
    [R_CHG_V_LIMIT] = DEF("charge_voltage_limit", "Charge voltage limit", Q_VOLTAGE, 2, 0, "mdi:battery-arrow-up"),
    [R_DIS_V_LIMIT] = DEF("discharge_voltage_limit", "Discharge voltage limit", Q_VOLTAGE, 2, 0, "mdi:battery-arrow-down"),
    [R_CHG_I_LIMIT] = DEF("charge_current_limit", "Charge current limit", Q_CURRENT, 1, 0, "mdi:current-dc"),
    [R_DIS_I_LIMIT] = DEF("discharge_current_limit", "Discharge current limit", Q_CURRENT, 1, 0, "mdi:current-dc"),
    [R_CHG_ENABLE] = DEF("charge_enable", "Charge enabled", Q_RUNNING, 0, 0, "mdi:battery-charging"),
    [R_DIS_ENABLE] = DEF("discharge_enable", "Discharge enabled", Q_RUNNING, 0, 0, "mdi:battery-minus"),
    [R_CHG_IMMEDIATELY] = DEF("charge_immediately", "Charge immediately request", Q_PROBLEM, 0, 0, "mdi:battery-alert"),
    [R_FULL_CHARGE_REQUEST] = DEF("full_charge_request", "Full charge request", Q_PROBLEM, 0, 0, "mdi:battery-sync"),
    /* §3.4, in its order. */
    [R_SYS_FIRST + 0] = DEF("cell_voltage_high_limit", "Cell voltage high limit", Q_VOLTAGE, 3, DIAG, NULL),
    [R_SYS_FIRST + 1] = DEF("cell_voltage_low_limit", "Cell voltage low limit", Q_VOLTAGE, 3, DIAG, NULL),
    [R_SYS_FIRST + 2] = DEF("cell_voltage_under_limit", "Cell undervoltage limit", Q_VOLTAGE, 3, DIAG, NULL),
    [R_SYS_FIRST + 3] = DEF("charge_temperature_high_limit", "Charge temperature high limit", Q_TEMPERATURE, 1, DIAG, NULL),
    [R_SYS_FIRST + 4] = DEF("charge_temperature_low_limit", "Charge temperature low limit", Q_TEMPERATURE, 1, DIAG, NULL),
    [R_SYS_FIRST + 5] = DEF("charge_current_max", "Charge current maximum", Q_CURRENT, 1, DIAG, NULL),
    [R_SYS_FIRST + 6] = DEF("pack_voltage_high_limit", "Pack voltage high limit", Q_VOLTAGE, 3, DIAG, NULL),
    [R_SYS_FIRST + 7] = DEF("pack_voltage_low_limit", "Pack voltage low limit", Q_VOLTAGE, 3, DIAG, NULL),
    [R_SYS_FIRST + 8] = DEF("pack_voltage_under_limit", "Pack undervoltage limit", Q_VOLTAGE, 3, DIAG, NULL),
    [R_SYS_FIRST + 9] = DEF("discharge_temperature_high_limit", "Discharge temperature high limit", Q_TEMPERATURE, 1, DIAG, NULL),
    [R_SYS_FIRST + 10] = DEF("discharge_temperature_low_limit", "Discharge temperature low limit", Q_TEMPERATURE, 1, DIAG, NULL),
    [R_SYS_FIRST + 11] = DEF("discharge_current_max", "Discharge current maximum", Q_CURRENT, 1, DIAG, NULL),
};
// clang-format on

const size_t pylontech_n_readings = sizeof(pylontech_readings) / sizeof(pylontech_readings[0]);

_Static_assert(sizeof(pylontech_readings) / sizeof(pylontech_readings[0]) == R_COUNT,
               "every reading index has a table entry");
_Static_assert(R_COUNT == PYLONTECH_N_READINGS, "PYLONTECH_N_READINGS matches the table");

/* §3.3: temperatures are 0.1 K with this offset: °C = (raw - 2731) / 10. */
#define PYLONTECH_KELVIN_OFFSET 2731
/* §3.3 user-defined items: full capacity, cycles, remaining 2, full capacity 2. */
#define PYLONTECH_USER_ITEMS_KNOWN 4u

/* A 16-bit capacity field that carries no value (§3.3, packs over 65 Ah). */
#define PYLONTECH_NOT_AVAILABLE 0xFFFFu

/* Alarm state bytes, §3.5. */
#define PYLONTECH_STATE_NORMAL 0x00
#define PYLONTECH_STATE_LOW    0x01
#define PYLONTECH_STATE_HIGH   0x02

int pylontech_build_request(uint8_t adr, uint8_t cmd, uint8_t module, char *out, size_t cap)
{
    switch (cmd) {
    case PYLONTECH_CMD_ANALOG:
    case PYLONTECH_CMD_ALARM:
        break;
    case PYLONTECH_CMD_MANAGEMENT:
    case PYLONTECH_CMD_SERIAL:
    case PYLONTECH_CMD_FIRMWARE:
        if (module == PYLONTECH_ALL_MODULES)
            return -EINVAL;
        break;
    case PYLONTECH_CMD_SYSTEM:
    case PYLONTECH_CMD_PROTOCOL:
    case PYLONTECH_CMD_MANUFACTURER:
        return af_encode(PYLONTECH_VER, adr, PYLONTECH_CID1, cmd, NULL, 0, out, cap);
    default:
        return -EINVAL;
    }
    return af_encode(PYLONTECH_VER, adr, PYLONTECH_CID1, cmd, &module, 1, out, cap);
}

/* Big-endian reads beyond cursor.h's; they fail (and mark the cursor bad) as it does. */
static int pylontech_s16(struct cursor *c, int *v)
{
    uint16_t w = 0;
    int r = cursor_u16be(c, &w);

    *v = w >= 0x8000u ? (int)w - 0x10000 : (int)w;
    return r;
}

static int pylontech_u24(struct cursor *c, uint32_t *v)
{
    const uint8_t *p = NULL;

    *v = 0;
    if (cursor_bytes(c, 3, &p) < 0)
        return -1;
    *v = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
    return 0;
}

static void pylontech_nan(double *values, int first, int last)
{
    for (int i = first; i < last; i++)
        values[i] = NAN;
}

static void pylontech_set(double *values, int i, double v)
{
    values[i] = v;
}

static double pylontech_celsius(int raw)
{
    return (raw - PYLONTECH_KELVIN_OFFSET) / 10.0;
}

/* One module block of a 0x42 reply (§3.3) into row v. Returns 0 or -EBADMSG. */
static int pylontech_analog_block(struct cursor *c, bool last, double *v)
{
    int32_t cells_mv[PYLONTECH_MAX_CELLS] = {0};
    int temp = 0, current = 0;
    struct cell_stats st;
    uint16_t voltage = 0, remaining = 0, full = 0, cycles = 0;
    uint32_t remaining2 = 0, full2 = 0;
    uint8_t m = 0, n = 0, user = 0;
    unsigned cells;

    pylontech_nan(v, ANALOG_FIRST, ANALOG_LAST);
    if (cursor_u8(c, &m) < 0 || (size_t)m * 2 > cursor_left(c))
        return -EBADMSG;
    for (unsigned k = 0; k < m; k++) {
        int mv = 0;
        pylontech_s16(c, &mv);
        if (k < PYLONTECH_MAX_CELLS)
            cells_mv[k] = mv;
    }
    if (cursor_u8(c, &n) < 0 || (size_t)n * 2 > cursor_left(c))
        return -EBADMSG;
    for (unsigned k = 0; k < n; k++) {
        pylontech_s16(c, &temp);
        if (k < PYLONTECH_MAX_TEMPS)
            pylontech_set(v, R_TEMP1 + (int)k, pylontech_celsius(temp));
    }
    pylontech_s16(c, &current);
    cursor_u16be(c, &voltage);
    cursor_u16be(c, &remaining);
    if (cursor_u8(c, &user) < 0 || (user > PYLONTECH_USER_ITEMS_KNOWN && !last))
        goto bad;
    if (user >= 1)
        cursor_u16be(c, &full);
    if (user >= 2)
        cursor_u16be(c, &cycles);
    if (user >= 3)
        pylontech_u24(c, &remaining2);
    if (user >= 4)
        pylontech_u24(c, &full2);
    if (c->bad)
        goto bad;

    cells = m < PYLONTECH_MAX_CELLS ? m : PYLONTECH_MAX_CELLS;
    for (unsigned k = 0; k < cells; k++)
        pylontech_set(v, R_CELL1 + (int)k, cells_mv[k] / 1000.0);
    if (reading_cell_stats(cells_mv, cells, &st) == 0) {
        pylontech_set(v, R_CELL_MIN, st.min_v);
        pylontech_set(v, R_CELL_MAX, st.max_v);
        pylontech_set(v, R_CELL_DELTA, st.delta_mv);
        pylontech_set(v, R_CELL_LOWEST, st.lowest);
        pylontech_set(v, R_CELL_HIGHEST, st.highest);
    }
    pylontech_set(v, R_CELL_COUNT, m);
    pylontech_set(v, R_PACK_CURRENT, current / 10.0);
    pylontech_set(v, R_PACK_VOLTAGE, voltage / 1000.0);
    /* From the unrounded reports: mV x 0.1 A = 1e-4 W. */
    pylontech_set(v, R_PACK_POWER, voltage * (double)current * 1e-4);

    /* §3.3: packs over 65 Ah send FFFF in the 16-bit fields ("not available") and the real
     * capacities in the 3-byte items; an FFFF without them stays unknown. */
    double rem_mah = user >= 3                              ? (double)remaining2
                     : remaining == PYLONTECH_NOT_AVAILABLE ? NAN
                                                            : (double)remaining;
    if (!isnan(rem_mah))
        pylontech_set(v, R_REMAINING, rem_mah / 1000.0);
    if (user >= 1) {
        double full_mah = user >= 4                         ? (double)full2
                          : full == PYLONTECH_NOT_AVAILABLE ? NAN
                                                            : (double)full;
        if (!isnan(full_mah))
            pylontech_set(v, R_FULL, full_mah / 1000.0);
        if (full_mah > 0 && !isnan(rem_mah)) {
            double soc = rem_mah / full_mah * 100.0;
            pylontech_set(v, R_SOC, soc > 100.0 ? 100.0 : soc);
        }
    }
    if (user >= 2)
        pylontech_set(v, R_CYCLES, cycles);
    /* Items past the fourth (allowed only in the last block) are not read. */
    return 0;
bad:
    pylontech_nan(v, ANALOG_FIRST, ANALOG_LAST);
    return -EBADMSG;
}

/* Fold a §3.5 state byte into the low / high / other flags. */
static void pylontech_state(uint8_t s, bool *low, bool *high, bool *other)
{
    if (s == PYLONTECH_STATE_LOW)
        *low = true;
    else if (s == PYLONTECH_STATE_HIGH)
        *high = true;
    else if (s != PYLONTECH_STATE_NORMAL)
        *other = true;
}

/* One module block of a 0x44 reply (§3.5) into row v. Returns 0 or -EBADMSG. */
static int pylontech_alarm_block(struct cursor *c, bool last, double *v)
{
    bool cell_low = false, cell_high = false, temp_low = false, temp_high = false;
    bool chg_low = false, chg_high = false, dis_low = false, dis_high = false;
    bool pack_low = false, pack_high = false, other = false;
    uint8_t m = 0, n = 0, s = 0, chg = 0, pack = 0, dis = 0, status[5] = {0};

    (void)last; /* blocks have a fixed layout once M and N are known */
    pylontech_nan(v, ALARM_FIRST, ALARM_LAST);
    if (cursor_u8(c, &m) < 0 || m > cursor_left(c))
        return -EBADMSG;
    for (unsigned k = 0; k < m; k++) {
        cursor_u8(c, &s);
        pylontech_state(s, &cell_low, &cell_high, &other);
    }
    if (cursor_u8(c, &n) < 0 || n > cursor_left(c))
        return -EBADMSG;
    for (unsigned k = 0; k < n; k++) {
        cursor_u8(c, &s);
        pylontech_state(s, &temp_low, &temp_high, &other);
    }
    cursor_u8(c, &chg);
    cursor_u8(c, &pack);
    cursor_u8(c, &dis);
    for (int k = 0; k < 5; k++)
        cursor_u8(c, &status[k]);
    if (c->bad)
        return -EBADMSG;
    pylontech_state(chg, &chg_low, &chg_high, &other);
    pylontech_state(pack, &pack_low, &pack_high, &other);
    pylontech_state(dis, &dis_low, &dis_high, &other);

    v[R_ALARM_CELL_LOW] = cell_low;
    v[R_ALARM_CELL_HIGH] = cell_high;
    v[R_ALARM_TEMP_LOW] = temp_low;
    v[R_ALARM_TEMP_HIGH] = temp_high;
    v[R_ALARM_CHARGE_CURRENT] = chg_low || chg_high;
    v[R_ALARM_PACK_LOW] = pack_low;
    v[R_ALARM_PACK_HIGH] = pack_high;
    v[R_ALARM_DISCHARGE_CURRENT] = dis_low || dis_high;
    v[R_ALARM_OTHER] = other;
    /* Status 1 (§3.5): bit 0 OV, 1 cell UV, 2 COC, 3 -, 4 DOC, 5 DOT, 6 COT, 7 UV. */
    v[R_PROT_PACK_OV] = (status[0] >> 0) & 1u;
    v[R_PROT_CELL_UV] = (status[0] >> 1) & 1u;
    v[R_PROT_CHARGE_OC] = (status[0] >> 2) & 1u;
    v[R_PROT_DISCHARGE_OC] = (status[0] >> 4) & 1u;
    v[R_PROT_DISCHARGE_OT] = (status[0] >> 5) & 1u;
    v[R_PROT_CHARGE_OT] = (status[0] >> 6) & 1u;
    v[R_PROT_PACK_UV] = (status[0] >> 7) & 1u;
    /* Status 2: bit 1 charge MOSFET, bit 2 discharge MOSFET. */
    v[R_CHARGE_MOS] = (status[1] >> 1) & 1u;
    v[R_DISCHARGE_MOS] = (status[1] >> 2) & 1u;
    /* Status 4 and 5: one bit per cell 1..16. */
    v[R_CELL_ERROR] = (status[3] | status[4]) != 0;
    for (int k = 0; k < 5; k++)
        v[R_STATUS1 + k] = status[k];
    return 0;
}

typedef int (*pylontech_block_fn)(struct cursor *c, bool last, double *v);

/*
 * The shared shape of 0x42 and 0x44 replies: a flag byte, then the command byte (one block)
 * or, for PYLONTECH_ALL_MODULES, the count of blocks. Fills rows 0.. and returns how many.
 */
static int pylontech_decode_blocks(const uint8_t *info, size_t len, uint8_t command,
                                   double values[][PYLONTECH_N_READINGS], unsigned max_modules,
                                   pylontech_block_fn block, int first, int last)
{
    struct cursor c = cursor_init(info, len);
    uint8_t flag = 0, second = 0;
    unsigned count, rows;

    if (values == NULL || max_modules == 0)
        return -EINVAL;
    if (cursor_u8(&c, &flag) < 0 || cursor_u8(&c, &second) < 0)
        goto bad;
    count = command == PYLONTECH_ALL_MODULES ? second : 1u;
    rows = count < max_modules ? count : max_modules;
    for (unsigned k = 0; k < rows; k++)
        if (block(&c, k + 1 == count, values[k]) < 0)
            goto bad;
    return (int)rows;
bad:
    for (unsigned k = 0; k < max_modules; k++)
        pylontech_nan(values[k], first, last);
    return -EBADMSG;
}

int pylontech_clear(uint8_t cmd, double *values)
{
    switch (cmd) {
    case PYLONTECH_CMD_ANALOG:
        pylontech_nan(values, ANALOG_FIRST, ANALOG_LAST);
        return 0;
    case PYLONTECH_CMD_ALARM:
        pylontech_nan(values, ALARM_FIRST, ALARM_LAST);
        return 0;
    case PYLONTECH_CMD_MANAGEMENT:
        pylontech_nan(values, MGMT_FIRST, MGMT_LAST);
        return 0;
    case PYLONTECH_CMD_SYSTEM:
        pylontech_nan(values, SYS_FIRST, SYS_LAST);
        return 0;
    default:
        return -EINVAL;
    }
}

void pylontech_copy(uint8_t cmd, double *dst, const double *src)
{
    int first, last;

    switch (cmd) {
    case PYLONTECH_CMD_ANALOG:
        first = ANALOG_FIRST, last = ANALOG_LAST;
        break;
    case PYLONTECH_CMD_ALARM:
        first = ALARM_FIRST, last = ALARM_LAST;
        break;
    case PYLONTECH_CMD_MANAGEMENT:
        first = MGMT_FIRST, last = MGMT_LAST;
        break;
    case PYLONTECH_CMD_SYSTEM:
        first = SYS_FIRST, last = SYS_LAST;
        break;
    default:
        return;
    }
    for (int i = first; i < last; i++)
        dst[i] = src[i];
}

int pylontech_decode_analog(const uint8_t *info, size_t len, uint8_t command,
                            double values[][PYLONTECH_N_READINGS], unsigned max_modules)
{
    return pylontech_decode_blocks(info, len, command, values, max_modules, pylontech_analog_block,
                                   ANALOG_FIRST, ANALOG_LAST);
}

int pylontech_decode_alarm(const uint8_t *info, size_t len, uint8_t command,
                           double values[][PYLONTECH_N_READINGS], unsigned max_modules)
{
    return pylontech_decode_blocks(info, len, command, values, max_modules, pylontech_alarm_block,
                                   ALARM_FIRST, ALARM_LAST);
}

int pylontech_decode_management(const uint8_t *info, size_t len, double *values)
{
    struct cursor c = cursor_init(info, len);
    uint8_t command = 0, status = 0;
    uint16_t chg_v = 0, dis_v = 0;
    int chg_i = 0, dis_i = 0;

    pylontech_nan(values, MGMT_FIRST, MGMT_LAST);
    cursor_u8(&c, &command);
    cursor_u16be(&c, &chg_v);
    cursor_u16be(&c, &dis_v);
    pylontech_s16(&c, &chg_i);
    pylontech_s16(&c, &dis_i);
    cursor_u8(&c, &status);
    if (c.bad)
        return -EBADMSG;
    pylontech_set(values, R_CHG_V_LIMIT, chg_v / 1000.0);
    pylontech_set(values, R_DIS_V_LIMIT, dis_v / 1000.0);
    pylontech_set(values, R_CHG_I_LIMIT, chg_i / 10.0);
    pylontech_set(values, R_DIS_I_LIMIT, dis_i / 10.0);
    values[R_CHG_ENABLE] = (status >> 7) & 1u;
    values[R_DIS_ENABLE] = (status >> 6) & 1u;
    /* Bits 5 and 4 are "charge immediately" 1 and 2; V3.3 suggests honouring both. */
    values[R_CHG_IMMEDIATELY] = (status & 0x30u) != 0;
    values[R_FULL_CHARGE_REQUEST] = (status >> 3) & 1u;
    return 0;
}

int pylontech_decode_system(const uint8_t *info, size_t len, double *values)
{
    /* How each of the twelve words of §3.4 scales. */
    enum { MV, TEMP, AMP };
    static const uint8_t kind[12] = {MV, MV, MV, TEMP, TEMP, AMP, MV, MV, MV, TEMP, TEMP, AMP};
    struct cursor c = cursor_init(info, len);
    int raw[12];
    uint8_t flag = 0;

    pylontech_nan(values, SYS_FIRST, SYS_LAST);
    cursor_u8(&c, &flag);
    /* Voltages as unsigned: 54 V is 54000 mV, past s16 (V3.3 calls every parameter signed). */
    for (int k = 0; k < 12; k++) {
        uint16_t w = 0;
        if (kind[k] == MV) {
            cursor_u16be(&c, &w);
            raw[k] = w;
        } else {
            pylontech_s16(&c, &raw[k]);
        }
    }
    if (c.bad)
        return -EBADMSG;
    for (int k = 0; k < 12; k++) {
        double v = kind[k] == MV     ? raw[k] / 1000.0
                   : kind[k] == TEMP ? pylontech_celsius(raw[k])
                                     : raw[k] / 10.0;
        pylontech_set(values, SYS_FIRST + k, v);
    }
    return 0;
}

/* Printable ASCII of p[0..n) into out, trimmed. Returns its length or -ENODATA. */
static int pylontech_ascii(const uint8_t *p, size_t n, char *out, size_t outlen)
{
    struct cursor c = cursor_init(p, n);
    size_t k = 0;
    uint8_t ch;

    while (k + 1 < outlen && cursor_u8(&c, &ch) == 0)
        if (ch >= 0x20 && ch < 0x7F && (k > 0 || ch != ' '))
            out[k++] = (char)ch;
    while (k > 0 && out[k - 1] == ' ')
        k--;
    out[k] = '\0';
    return k > 0 ? (int)k : -ENODATA;
}

int pylontech_decode_string(enum pylontech_string which, const uint8_t *info, size_t len, char *out,
                            size_t outlen)
{
    /* Where each text is in its reply's INFO: offset and size. */
    static const struct {
        size_t off, n;
    } field[] = {
        [PYLONTECH_STR_BATTERY_NAME] = {0, 10},  [PYLONTECH_STR_SOFTWARE] = {10, 2},
        [PYLONTECH_STR_MANUFACTURER] = {12, 20}, [PYLONTECH_STR_SERIAL] = {1, 16},
        [PYLONTECH_STR_FIRMWARE] = {1, 5},
    };
    struct cursor c = cursor_init(info, len);
    const uint8_t *p = NULL, *skip = NULL;
    int r;

    if (out == NULL || outlen == 0 || (unsigned)which >= sizeof(field) / sizeof(field[0]))
        return -EINVAL;
    out[0] = '\0';
    if (cursor_bytes(&c, field[which].off, &skip) < 0 || cursor_bytes(&c, field[which].n, &p) < 0)
        return -EBADMSG;
    switch (which) {
    case PYLONTECH_STR_SOFTWARE:
        r = snprintf(out, outlen, "%u.%u", p[0], p[1]);
        break;
    case PYLONTECH_STR_FIRMWARE:
        r = snprintf(out, outlen, "%u.%u/%u.%u.%u", p[0], p[1], p[2], p[3], p[4]);
        break;
    default:
        return pylontech_ascii(p, field[which].n, out, outlen);
    }
    if (r < 0)
        return -EINVAL;
    /* Truncated to outlen - 1 characters, which may leave none. */
    r = (int)strlen(out);
    return r > 0 ? r : -ENODATA;
}
