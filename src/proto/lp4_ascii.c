/* SPDX-License-Identifier: MIT */
/* lp4_ascii.c - EG4 LifePower4 ASCII requests and reply decoding into readings (README §3). */
#include "lp4_ascii.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "ascii_frame.h"
#include "cursor.h"

/* Indices into lp4_ascii_readings, grouped by the command that fills them. */
enum {
    /* 0x42 */
    R_PACK_VOLTAGE,
    R_PACK_CURRENT,
    R_PACK_POWER,
    R_ENERGY_CHARGED,
    R_ENERGY_DISCHARGED,
    R_SOC,
    R_SOH,
    R_REMAINING,
    R_FULL,
    R_CYCLES,
    R_CELL_COUNT,
    R_TEMP1,
    R_TEMP_AMBIENT = R_TEMP1 + LP4_ASCII_MAX_TEMPS,
    R_TEMP_MOSFET,
    R_TEMP_MAX,
    R_TEMP_MIN,
    R_CELL1,
    R_CELL_MIN = R_CELL1 + LP4_ASCII_MAX_CELLS,
    R_CELL_MAX,
    R_CELL_DELTA,
    R_CELL_LOWEST,
    R_CELL_HIGHEST,
    R_CHARGED_AH,
    R_DISCHARGED_AH,
    R_CHARGING_HOURS,
    R_DISCHARGING_HOURS,
    R_CHARGE_COUNT,
    R_DISCHARGE_COUNT,
    /* 0x44: state bytes */
    R_ALARM_CELL_LOW,
    R_ALARM_CELL_HIGH,
    R_ALARM_TEMP_LOW,
    R_ALARM_TEMP_HIGH,
    R_ALARM_CURRENT,
    R_ALARM_PACK_LOW,
    R_ALARM_PACK_HIGH,
    /* balance event code */
    R_BALANCING,
    R_WARN_IMBALANCE,
    R_ERR_CHARGE_MOS,
    R_ERR_DISCHARGE_MOS,
    /* voltage event code, bits 0..7 in order */
    R_VOLT_EVENT0,
    /* temperature event code, bits 0..13 in order */
    R_TEMP_EVENT0 = R_VOLT_EVENT0 + 8,
    /* current event code, bits 0..7 in order */
    R_CURR_EVENT0 = R_TEMP_EVENT0 + 14,
    R_WARN_LOW_CAPACITY = R_CURR_EVENT0 + 8,
    /* FET status code */
    R_DISCHARGE_MOS,
    R_CHARGE_MOS,
    R_CHARGE_LIMITER,
    R_HEATER,
    R_STATUS,
    R_BAL1,
    R_COUNT = R_BAL1 + LP4_ASCII_MAX_CELLS
};

#define ANALOG_FIRST R_PACK_VOLTAGE
#define ANALOG_LAST  R_ALARM_CELL_LOW
#define ALARM_FIRST  R_ALARM_CELL_LOW
#define ALARM_LAST   R_COUNT

static const char *const lp4_ascii_status_options[] = {"standby", "charging", "discharging", NULL};
/* System status code bits (§2.2): 3 standby, 1 charging, 0 discharging. */
static const uint16_t lp4_ascii_status_codes[] = {0x08, 0x02, 0x01};

#define DIAG (READING_DIAGNOSTIC)

#define DEF(key, label, q, prec, flags, icon)                                                      \
    {                                                                                              \
        key, label, q, SRC_DERIVED, 0, 0, prec, 1, flags, icon, NULL, NULL                         \
    }
#define CELL(nn, n)                                                                                \
    [R_CELL1 + (n)-1] =                                                                            \
        DEF("cell_" #nn "_voltage", "Cell " #n " voltage", Q_VOLTAGE, 3, 0, "mdi:battery-outline")
#define BAL(nn, n)                                                                                 \
    [R_BAL1 + (n)-1] =                                                                             \
        DEF("cell_" #nn "_balancing", "Cell " #n " balancing", Q_RUNNING, 0, DIAG, NULL)
#define TEMP(nn, n)                                                                                \
    [R_TEMP1 + (n)-1] =                                                                            \
        DEF("temperature_" #nn, "Temperature sensor " #n, Q_TEMPERATURE, 1, 0, "mdi:thermometer")
#define WARN(i, key, label) [i] = DEF("warning_" key, label " warning", Q_PROBLEM, 0, 0, NULL)
#define PROT(i, key, label) [i] = DEF("protection_" key, label " protection", Q_SAFETY, 0, 0, NULL)

// clang-format off
const struct reading_def lp4_ascii_readings[] = {
    [R_PACK_VOLTAGE] = DEF("pack_voltage", "Pack voltage", Q_VOLTAGE, 2, 0, "mdi:battery-outline"),
    [R_PACK_CURRENT] = DEF("pack_current", "Pack current", Q_CURRENT, 2, 0, "mdi:current-dc"),
    [R_PACK_POWER] = DEF("pack_power", "Pack power", Q_POWER, 0, 0, "mdi:flash"),
    /* The pack's own counters (§2.1 items 42, 43), not the daemon's integration. */
    [R_ENERGY_CHARGED] = DEF("energy_charged_kwh", "Energy charged", Q_ENERGY, 3, 0, "mdi:battery-arrow-up"),
    [R_ENERGY_DISCHARGED] = DEF("energy_discharged_kwh", "Energy discharged", Q_ENERGY, 3, 0, "mdi:battery-arrow-down"),
    [R_SOC] = DEF("soc", "State of charge", Q_SOC, 0, 0, NULL),
    [R_SOH] = DEF("soh", "State of health", Q_PERCENT, 0, 0, "mdi:battery-heart-variant"),
    [R_REMAINING] = DEF("remaining_ah", "Remaining capacity", Q_CHARGE, 2, 0, "mdi:battery-clock"),
    [R_FULL] = DEF("full_capacity_ah", "Full capacity", Q_CHARGE, 2, 0, "mdi:battery-clock"),
    [R_CYCLES] = DEF("cycle_count", "Cycle count", Q_COUNT, 0, 0, "mdi:counter"),
    [R_CELL_COUNT] = DEF("cell_count", "Cell count", Q_NUMBER, 0, DIAG, "mdi:numeric"),
    TEMP(01, 1), TEMP(02, 2), TEMP(03, 3), TEMP(04, 4),
    [R_TEMP_AMBIENT] = DEF("temperature_ambient", "Ambient temperature", Q_TEMPERATURE, 1, 0, "mdi:thermometer"),
    [R_TEMP_MOSFET] = DEF("temperature_mosfet", "MOSFET temperature", Q_TEMPERATURE, 1, 0, "mdi:chip"),
    [R_TEMP_MAX] = DEF("temperature_max", "Maximum temperature", Q_TEMPERATURE, 1, 0, "mdi:thermometer-high"),
    [R_TEMP_MIN] = DEF("temperature_min", "Minimum temperature", Q_TEMPERATURE, 1, 0, "mdi:thermometer-low"),
    CELL(01, 1), CELL(02, 2), CELL(03, 3), CELL(04, 4), CELL(05, 5), CELL(06, 6),
    CELL(07, 7), CELL(08, 8), CELL(09, 9), CELL(10, 10), CELL(11, 11), CELL(12, 12),
    CELL(13, 13), CELL(14, 14), CELL(15, 15), CELL(16, 16),
    [R_CELL_MIN] = DEF("cell_voltage_min", "Cell voltage min", Q_VOLTAGE, 3, 0, "mdi:arrow-down-bold"),
    [R_CELL_MAX] = DEF("cell_voltage_max", "Cell voltage max", Q_VOLTAGE, 3, 0, "mdi:arrow-up-bold"),
    [R_CELL_DELTA] = DEF("cell_voltage_delta_mv", "Cell voltage delta", Q_VOLTAGE_MV, 0, 0, "mdi:sine-wave"),
    [R_CELL_LOWEST] = DEF("cell_lowest", "Lowest cell", Q_NUMBER, 0, 0, "mdi:numeric"),
    [R_CELL_HIGHEST] = DEF("cell_highest", "Highest cell", Q_NUMBER, 0, 0, "mdi:numeric"),
    /* Q_CHARGE is a measurement in HA; these only grow, but Ah has no total class. */
    [R_CHARGED_AH] = DEF("charged_ah_total", "Charge in (cumulative)", Q_CHARGE, 2, 0, "mdi:battery-arrow-up"),
    [R_DISCHARGED_AH] = DEF("discharged_ah_total", "Charge out (cumulative)", Q_CHARGE, 2, 0, "mdi:battery-arrow-down"),
    [R_CHARGING_HOURS] = DEF("charging_hours_total", "Charging time (hours)", Q_COUNT, 0, DIAG, "mdi:timer-outline"),
    [R_DISCHARGING_HOURS] = DEF("discharging_hours_total", "Discharging time (hours)", Q_COUNT, 0, DIAG, "mdi:timer-outline"),
    [R_CHARGE_COUNT] = DEF("charge_count_total", "Charges", Q_COUNT, 0, DIAG, "mdi:counter"),
    [R_DISCHARGE_COUNT] = DEF("discharge_count_total", "Discharges", Q_COUNT, 0, DIAG, "mdi:counter"),
    /* §2.2 state bytes: 01 below the lower limit, 02 above the upper limit. */
    [R_ALARM_CELL_LOW] = DEF("alarm_cell_voltage_low", "Cell voltage low alarm", Q_PROBLEM, 0, 0, "mdi:alert"),
    [R_ALARM_CELL_HIGH] = DEF("alarm_cell_voltage_high", "Cell voltage high alarm", Q_PROBLEM, 0, 0, "mdi:alert"),
    [R_ALARM_TEMP_LOW] = DEF("alarm_temperature_low", "Temperature low alarm", Q_PROBLEM, 0, 0, "mdi:thermometer-alert"),
    [R_ALARM_TEMP_HIGH] = DEF("alarm_temperature_high", "Temperature high alarm", Q_PROBLEM, 0, 0, "mdi:thermometer-alert"),
    [R_ALARM_CURRENT] = DEF("alarm_pack_current", "Pack current alarm", Q_PROBLEM, 0, 0, "mdi:alert"),
    [R_ALARM_PACK_LOW] = DEF("alarm_pack_voltage_low", "Pack voltage low alarm", Q_PROBLEM, 0, 0, "mdi:alert"),
    [R_ALARM_PACK_HIGH] = DEF("alarm_pack_voltage_high", "Pack voltage high alarm", Q_PROBLEM, 0, 0, "mdi:alert"),
    /* Balance event code. */
    [R_BALANCING] = DEF("balancing", "Balancing", Q_RUNNING, 0, 0, "mdi:scale-balance"),
    [R_WARN_IMBALANCE] = DEF("warning_cell_imbalance", "Cell voltage difference warning", Q_PROBLEM, 0, 0, NULL),
    [R_ERR_CHARGE_MOS] = DEF("error_charge_mos", "Charge MOSFET fault", Q_PROBLEM, 0, 0, NULL),
    [R_ERR_DISCHARGE_MOS] = DEF("error_discharge_mos", "Discharge MOSFET fault", Q_PROBLEM, 0, 0, NULL),
    /* Voltage event code, bits 0..7. */
    WARN(R_VOLT_EVENT0 + 0, "cell_ov", "Cell overvoltage"), PROT(R_VOLT_EVENT0 + 1, "cell_ov", "Cell overvoltage"),
    WARN(R_VOLT_EVENT0 + 2, "cell_uv", "Cell undervoltage"), PROT(R_VOLT_EVENT0 + 3, "cell_uv", "Cell undervoltage"),
    WARN(R_VOLT_EVENT0 + 4, "pack_ov", "Pack overvoltage"), PROT(R_VOLT_EVENT0 + 5, "pack_ov", "Pack overvoltage"),
    WARN(R_VOLT_EVENT0 + 6, "pack_uv", "Pack undervoltage"), PROT(R_VOLT_EVENT0 + 7, "pack_uv", "Pack undervoltage"),
    /* Temperature event code, bits 0..13. */
    WARN(R_TEMP_EVENT0 + 0, "charge_ot", "Charge overtemperature"), PROT(R_TEMP_EVENT0 + 1, "charge_ot", "Charge overtemperature"),
    WARN(R_TEMP_EVENT0 + 2, "charge_ut", "Charge undertemperature"), PROT(R_TEMP_EVENT0 + 3, "charge_ut", "Charge undertemperature"),
    WARN(R_TEMP_EVENT0 + 4, "discharge_ot", "Discharge overtemperature"), PROT(R_TEMP_EVENT0 + 5, "discharge_ot", "Discharge overtemperature"),
    WARN(R_TEMP_EVENT0 + 6, "discharge_ut", "Discharge undertemperature"), PROT(R_TEMP_EVENT0 + 7, "discharge_ut", "Discharge undertemperature"),
    WARN(R_TEMP_EVENT0 + 8, "ambient_ot", "Ambient overtemperature"), PROT(R_TEMP_EVENT0 + 9, "ambient_ot", "Ambient overtemperature"),
    WARN(R_TEMP_EVENT0 + 10, "ambient_ut", "Ambient undertemperature"), PROT(R_TEMP_EVENT0 + 11, "ambient_ut", "Ambient undertemperature"),
    PROT(R_TEMP_EVENT0 + 12, "mos_ot", "MOSFET overheating"),
    [R_TEMP_EVENT0 + 13] = DEF("alarm_fire", "Fire alarm", Q_SAFETY, 0, 0, "mdi:fire-alert"),
    /* Current event code, bits 0..7. */
    WARN(R_CURR_EVENT0 + 0, "charge_oc", "Charge overcurrent"), PROT(R_CURR_EVENT0 + 1, "charge_oc", "Charge overcurrent"),
    WARN(R_CURR_EVENT0 + 2, "discharge_oc", "Discharge overcurrent"), PROT(R_CURR_EVENT0 + 3, "discharge_oc", "Discharge overcurrent"),
    PROT(R_CURR_EVENT0 + 4, "discharge_oc2", "Discharge level 2 overcurrent"),
    PROT(R_CURR_EVENT0 + 5, "discharge_sc", "Discharge short circuit"),
    [R_CURR_EVENT0 + 6] = DEF("lockout_discharge_oc2", "Discharge level 2 overcurrent lockout", Q_SAFETY, 0, 0, NULL),
    [R_CURR_EVENT0 + 7] = DEF("lockout_discharge_sc", "Short circuit lockout", Q_SAFETY, 0, 0, NULL),
    /* Remaining capacity alarm, bit 0. */
    WARN(R_WARN_LOW_CAPACITY, "low_capacity", "Low capacity"),
    /* FET status code. */
    [R_DISCHARGE_MOS] = DEF("discharge_mos", "Discharge MOSFET", Q_RUNNING, 0, DIAG, "mdi:electric-switch"),
    [R_CHARGE_MOS] = DEF("charge_mos", "Charge MOSFET", Q_RUNNING, 0, DIAG, "mdi:electric-switch"),
    [R_CHARGE_LIMITER] = DEF("charge_current_limiter", "Charge current limiter", Q_RUNNING, 0, DIAG, NULL),
    [R_HEATER] = DEF("heater", "Heater", Q_HEAT, 0, 0, NULL),
    [R_STATUS] = {"status", "Status", Q_ENUM, SRC_DERIVED, 0, 0, 0, 1, 0, "mdi:state-machine", lp4_ascii_status_options, lp4_ascii_status_codes, NULL},
    BAL(01, 1), BAL(02, 2), BAL(03, 3), BAL(04, 4), BAL(05, 5), BAL(06, 6), BAL(07, 7), BAL(08, 8),
    BAL(09, 9), BAL(10, 10), BAL(11, 11), BAL(12, 12), BAL(13, 13), BAL(14, 14), BAL(15, 15), BAL(16, 16),
};
// clang-format on

const size_t lp4_ascii_n_readings = sizeof(lp4_ascii_readings) / sizeof(lp4_ascii_readings[0]);

_Static_assert(sizeof(lp4_ascii_readings) / sizeof(lp4_ascii_readings[0]) == R_COUNT,
               "every reading index has a table entry");

/* §2.1: temperatures are 0.1 K with this offset: °C = (raw - 2731) / 10. */
#define LP4_ASCII_KELVIN_OFFSET 2731
/* User-defined items the PDF lists: 15 after 0x42's cycle count, 9 in 0x44. */
#define LP4_ASCII_ANALOG_ITEMS 15u
#define LP4_ASCII_ALARM_ITEMS  9u

int lp4_ascii_build_request(uint8_t adr, uint8_t cmd, char *out, size_t cap)
{
    if ((cmd != LP4_ASCII_CMD_ANALOG && cmd != LP4_ASCII_CMD_ALARM) || adr < LP4_ASCII_ADDR_MIN ||
        adr > LP4_ASCII_ADDR_MAX)
        return -EINVAL;
    return af_encode(LP4_ASCII_VER, adr, LP4_ASCII_CID1, cmd, NULL, 0, out, cap);
}

static int lp4_ascii_s16(struct cursor *c, int *v)
{
    uint16_t w = 0;
    int r = cursor_u16be(c, &w);

    *v = w >= 0x8000u ? (int)w - 0x10000 : (int)w;
    return r;
}

static int lp4_ascii_u32(struct cursor *c, uint32_t *v)
{
    uint16_t hi = 0, lo = 0;
    int r = cursor_u16be(c, &hi);

    if (r == 0)
        r = cursor_u16be(c, &lo);
    *v = (uint32_t)hi << 16 | lo;
    return r;
}

static void lp4_ascii_nan(double *values, int first, int last)
{
    for (int i = first; i < last; i++)
        values[i] = NAN;
}

static void lp4_ascii_set(double *values, int i, double v)
{
    values[i] = v;
}

static double lp4_ascii_celsius(int raw)
{
    return (raw - LP4_ASCII_KELVIN_OFFSET) / 10.0;
}

/* The user-defined items of a 0x42 reply, in order: how wide and where each goes. */
enum { IT_U16, IT_MV, IT_TEMP, IT_U32 };
static const struct {
    uint8_t kind;
    int idx;      /* reading, or -1: read and not published */
    double scale; /* raw x scale = value */
} lp4_ascii_items[LP4_ASCII_ANALOG_ITEMS] = {
    {IT_U16, R_SOC, 1},
    {IT_U16, R_SOH, 1},
    {IT_MV, -1, 0}, /* max, min cell voltage and difference: from the cells instead */
    {IT_MV, -1, 0},
    {IT_MV, -1, 0},
    {IT_TEMP, R_TEMP_MAX, 1},
    {IT_TEMP, R_TEMP_MIN, 1},
    {IT_U32, R_CHARGED_AH, 0.01},
    {IT_U32, R_DISCHARGED_AH, 0.01},
    {IT_U32, R_ENERGY_CHARGED, 0.001},
    {IT_U32, R_ENERGY_DISCHARGED, 0.001},
    {IT_U32, R_CHARGING_HOURS, 1},
    {IT_U32, R_DISCHARGING_HOURS, 1},
    {IT_U16, R_CHARGE_COUNT, 1},
    {IT_U16, R_DISCHARGE_COUNT, 1},
};

/* Read the user-defined items of a 0x42 reply into v. Returns 0, or -1 on a short INFO. */
static int lp4_ascii_analog_items(struct cursor *c, unsigned user, double *v)
{
    unsigned n = user < LP4_ASCII_ANALOG_ITEMS ? user : LP4_ASCII_ANALOG_ITEMS;

    for (unsigned k = 0; k < n; k++) {
        uint16_t w = 0;
        uint32_t d = 0;
        int s = 0;
        double x;

        switch (lp4_ascii_items[k].kind) {
        case IT_U32:
            lp4_ascii_u32(c, &d);
            x = d * lp4_ascii_items[k].scale;
            break;
        case IT_TEMP:
            lp4_ascii_s16(c, &s);
            x = lp4_ascii_celsius(s);
            break;
        case IT_MV:
            lp4_ascii_s16(c, &s);
            x = s;
            break;
        default:
            cursor_u16be(c, &w);
            x = w * lp4_ascii_items[k].scale;
            break;
        }
        if (c->bad)
            return -1;
        if (lp4_ascii_items[k].idx >= 0)
            lp4_ascii_set(v, lp4_ascii_items[k].idx, x);
    }
    /* Items past the fifteenth have no documented size; they are not read. */
    return 0;
}

int lp4_ascii_clear(uint8_t cmd, double *values)
{
    switch (cmd) {
    case LP4_ASCII_CMD_ANALOG:
        lp4_ascii_nan(values, ANALOG_FIRST, ANALOG_LAST);
        return 0;
    case LP4_ASCII_CMD_ALARM:
        lp4_ascii_nan(values, ALARM_FIRST, ALARM_LAST);
        return 0;
    default:
        return -EINVAL;
    }
}

int lp4_ascii_decode_analog(const uint8_t *info, size_t len, double *values)
{
    struct cursor c = cursor_init(info, len);
    int32_t cells_mv[LP4_ASCII_MAX_CELLS] = {0};
    int temp = 0, current = 0;
    struct cell_stats st;
    uint16_t voltage = 0, remaining = 0, full = 0, cycles = 0;
    uint8_t flag = 0, group = 0, m = 0, n = 0, user = 0;
    unsigned cells;

    lp4_ascii_nan(values, ANALOG_FIRST, ANALOG_LAST);
    cursor_u8(&c, &flag);
    cursor_u8(&c, &group);
    if (cursor_u8(&c, &m) < 0 || (size_t)m * 2 > cursor_left(&c))
        goto bad;
    for (unsigned k = 0; k < m; k++) {
        int mv = 0;
        lp4_ascii_s16(&c, &mv);
        if (k < LP4_ASCII_MAX_CELLS)
            cells_mv[k] = mv;
    }
    /* N counts the cell sensors; ambient and MOSFET follow them (§2.1 example: N = 4, six). */
    if (cursor_u8(&c, &n) < 0 || ((size_t)n + 2) * 2 > cursor_left(&c))
        goto bad;
    for (unsigned k = 0; k < n; k++) {
        lp4_ascii_s16(&c, &temp);
        if (k < LP4_ASCII_MAX_TEMPS)
            lp4_ascii_set(values, R_TEMP1 + (int)k, lp4_ascii_celsius(temp));
    }
    lp4_ascii_s16(&c, &temp);
    lp4_ascii_set(values, R_TEMP_AMBIENT, lp4_ascii_celsius(temp));
    lp4_ascii_s16(&c, &temp);
    lp4_ascii_set(values, R_TEMP_MOSFET, lp4_ascii_celsius(temp));
    lp4_ascii_s16(&c, &current);
    cursor_u16be(&c, &voltage);
    cursor_u16be(&c, &remaining);
    cursor_u16be(&c, &full);
    cursor_u16be(&c, &cycles);
    if (cursor_u8(&c, &user) < 0 || lp4_ascii_analog_items(&c, user, values) < 0)
        goto bad;

    cells = m < LP4_ASCII_MAX_CELLS ? m : LP4_ASCII_MAX_CELLS;
    for (unsigned k = 0; k < cells; k++)
        lp4_ascii_set(values, R_CELL1 + (int)k, cells_mv[k] / 1000.0);
    if (reading_cell_stats(cells_mv, cells, &st) == 0) {
        lp4_ascii_set(values, R_CELL_MIN, st.min_v);
        lp4_ascii_set(values, R_CELL_MAX, st.max_v);
        lp4_ascii_set(values, R_CELL_DELTA, st.delta_mv);
        lp4_ascii_set(values, R_CELL_LOWEST, st.lowest);
        lp4_ascii_set(values, R_CELL_HIGHEST, st.highest);
    }
    lp4_ascii_set(values, R_CELL_COUNT, m);
    lp4_ascii_set(values, R_PACK_CURRENT, current / 100.0);
    lp4_ascii_set(values, R_PACK_VOLTAGE, voltage / 100.0);
    /* From the unrounded reports: 10 mV x 10 mA = 1e-4 W. */
    lp4_ascii_set(values, R_PACK_POWER, voltage * (double)current * 1e-4);
    lp4_ascii_set(values, R_REMAINING, remaining / 100.0);
    lp4_ascii_set(values, R_FULL, full / 100.0);
    lp4_ascii_set(values, R_CYCLES, cycles);
    return 0;
bad:
    lp4_ascii_nan(values, ANALOG_FIRST, ANALOG_LAST);
    return -EBADMSG;
}

/* Fold a §2.2 state byte (00 none, 01 lower limit, 02 upper limit) into low / high. */
static void lp4_ascii_state(uint8_t s, bool *low, bool *high)
{
    if (s == 0x01)
        *low = true;
    else if (s == 0x02)
        *high = true;
}

/* values[first + b] = bit b of word, for b in [0, nbits). */
static void lp4_ascii_bits(double *values, int first, unsigned word, unsigned nbits)
{
    for (unsigned b = 0; b < nbits; b++)
        values[first + (int)b] = (word >> b) & 1u;
}

int lp4_ascii_decode_alarm(const uint8_t *info, size_t len, double *values)
{
    struct cursor c = cursor_init(info, len);
    bool cell_low = false, cell_high = false, temp_low = false, temp_high = false;
    bool cur_low = false, cur_high = false, pack_low = false, pack_high = false;
    uint8_t flag = 0, group = 0, m = 0, n = 0, s = 0, user = 0;
    uint8_t balance = 0, volt = 0, curr = 0, cap = 0, fet = 0, sys = 0;
    uint16_t temp_ev = 0, bal_hi = 0, bal_lo = 0;

    lp4_ascii_nan(values, ALARM_FIRST, ALARM_LAST);
    cursor_u8(&c, &flag);
    cursor_u8(&c, &group);
    if (cursor_u8(&c, &m) < 0 || m > cursor_left(&c))
        goto bad;
    for (unsigned k = 0; k < m; k++) {
        cursor_u8(&c, &s);
        lp4_ascii_state(s, &cell_low, &cell_high);
    }
    /* N cell temperature states, then ambient and MOSFET. */
    if (cursor_u8(&c, &n) < 0 || (size_t)n + 2 > cursor_left(&c))
        goto bad;
    for (unsigned k = 0; k < (unsigned)n + 2; k++) {
        cursor_u8(&c, &s);
        lp4_ascii_state(s, &temp_low, &temp_high);
    }
    cursor_u8(&c, &s);
    lp4_ascii_state(s, &cur_low, &cur_high);
    cursor_u8(&c, &s);
    lp4_ascii_state(s, &pack_low, &pack_high);
    if (cursor_u8(&c, &user) < 0)
        goto bad;
    /* The items in order; each is read only if U announces it. */
    if (user >= 1)
        cursor_u8(&c, &balance);
    if (user >= 2)
        cursor_u8(&c, &volt);
    if (user >= 3)
        cursor_u16be(&c, &temp_ev);
    if (user >= 4)
        cursor_u8(&c, &curr);
    if (user >= 5)
        cursor_u8(&c, &cap);
    if (user >= 6)
        cursor_u8(&c, &fet);
    if (user >= 7)
        cursor_u8(&c, &sys);
    if (user >= 8) {
        cursor_u16be(&c, &bal_hi);
        cursor_u16be(&c, &bal_lo);
    }
    if (c.bad)
        goto bad;
    /* Item 9 (reserved) and anything after it are not read. */

    values[R_ALARM_CELL_LOW] = cell_low;
    values[R_ALARM_CELL_HIGH] = cell_high;
    values[R_ALARM_TEMP_LOW] = temp_low;
    values[R_ALARM_TEMP_HIGH] = temp_high;
    values[R_ALARM_CURRENT] = cur_low || cur_high;
    values[R_ALARM_PACK_LOW] = pack_low;
    values[R_ALARM_PACK_HIGH] = pack_high;
    if (user >= 1) {
        values[R_BALANCING] = balance & 1u;
        values[R_WARN_IMBALANCE] = (balance >> 4) & 1u;
        values[R_ERR_CHARGE_MOS] = (balance >> 5) & 1u;
        values[R_ERR_DISCHARGE_MOS] = (balance >> 6) & 1u;
    }
    if (user >= 2)
        lp4_ascii_bits(values, R_VOLT_EVENT0, volt, 8);
    if (user >= 3)
        lp4_ascii_bits(values, R_TEMP_EVENT0, temp_ev, 14);
    if (user >= 4)
        lp4_ascii_bits(values, R_CURR_EVENT0, curr, 8);
    if (user >= 5)
        values[R_WARN_LOW_CAPACITY] = cap & 1u;
    if (user >= 6) {
        values[R_DISCHARGE_MOS] = fet & 1u;
        values[R_CHARGE_MOS] = (fet >> 1) & 1u;
        values[R_CHARGE_LIMITER] = (fet >> 2) & 1u;
        values[R_HEATER] = (fet >> 3) & 1u;
    }
    if (user >= 7) {
        /* Option indices of lp4_ascii_status_options; none of the three bits: unknown. */
        if (sys & 0x01u)
            values[R_STATUS] = 2;
        else if (sys & 0x02u)
            values[R_STATUS] = 1;
        else if (sys & 0x08u)
            values[R_STATUS] = 0;
    }
    if (user >= 8) {
        /* Four bytes, high byte first: bits 0..15 (in the low word) are cells 1..16. */
        lp4_ascii_bits(values, R_BAL1, bal_lo, LP4_ASCII_MAX_CELLS);
    }
    return 0;
bad:
    lp4_ascii_nan(values, ALARM_FIRST, ALARM_LAST);
    return -EBADMSG;
}
