/* SPDX-License-Identifier: MIT */
/* lp4v2.c - EG4 LifePower4 v2 / EG4-LL Modbus register map (vendor V01.06 §3). */
#include "lp4v2.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

static const char *const lp4v2_status_options[] = {
    "standby", "charging", "discharging", "protect", "charging_limit", NULL,
};
/* Register 25 low byte, V01.06 §3: 0x00 standby ... 0x08 charging limit. */
static const uint16_t lp4v2_status_codes[] = {0x00, 0x01, 0x02, 0x04, 0x08};

#define DIAG   (READING_DIAGNOSTIC)
#define HIDDEN (READING_DIAGNOSTIC | READING_DISABLED)

#define CELL(nn, n)                                                                                \
    {                                                                                              \
        "cell_" #nn "_voltage", "Cell " #n " voltage", Q_VOLTAGE, SRC_U16,                         \
            LP4V2_REG_CELL1 + (n)-1, 0, 3, 0.001, 0, "mdi:battery-outline", NULL, NULL             \
    }
#define TEMP(nn, n)                                                                                \
    {                                                                                              \
        "temperature_" #nn, "Temperature sensor " #n, Q_TEMPERATURE, SRC_BYTE_S8,                  \
            LP4V2_REG_TEMPS + ((n)-1) / 2, ((n)-1) % 2, 0, 1, 0, "mdi:thermometer", NULL, NULL     \
    }
#define FLAG(prefix, key, label, q, reg, bit, flags)                                               \
    {                                                                                              \
        prefix "_" key, label, q, SRC_BIT, reg, bit, 0, 1, flags, NULL, NULL, NULL                 \
    }
#define WARN(key, bit, label)                                                                      \
    FLAG("warning", key, label " warning", Q_PROBLEM, LP4V2_REG_WARNING, bit, 0)
#define PROT(key, bit, label)                                                                      \
    FLAG("protection", key, label " protection", Q_SAFETY, LP4V2_REG_PROTECTION, bit, 0)
#define BAL(nn, n)                                                                                 \
    FLAG("cell_" #nn, "balancing", "Cell " #n " balancing", Q_RUNNING, LP4V2_REG_BALANCE, (n)-1,   \
         DIAG)
#define RAW(nn, n)                                                                                 \
    {                                                                                              \
        "register_" #nn, "Register " #n, Q_RAW, SRC_U16, n, n, 0, 1, HIDDEN, "mdi:numeric", NULL,  \
            NULL, "registers"                                                                      \
    }
#define DERIVED(key, label, q, prec, icon)                                                         \
    {                                                                                              \
        key, label, q, SRC_DERIVED, 0, 0, prec, 1, 0, icon, NULL, NULL                             \
    }

// clang-format off
const struct reading_def lp4v2_readings[] = {
    {"pack_voltage", "Pack voltage", Q_VOLTAGE, SRC_U16, LP4V2_REG_VOLTAGE, 0, 2, 0.01, 0, "mdi:battery-outline", NULL, NULL},
    {"pack_current", "Pack current", Q_CURRENT, SRC_S16, LP4V2_REG_CURRENT, 0, 2, 0.01, 0, "mdi:current-dc", NULL, NULL},
    DERIVED("pack_power", "Pack power", Q_POWER, 0, "mdi:flash"),
    /* Integrated by the poller from pack_power (energy.c): the Energy dashboard's
     * "energy going in to / coming out of the battery". */
    DERIVED("energy_charged_kwh", "Energy charged", Q_ENERGY, 3, "mdi:battery-arrow-up"),
    DERIVED("energy_discharged_kwh", "Energy discharged", Q_ENERGY, 3, "mdi:battery-arrow-down"),
    {"soc", "State of charge", Q_SOC, SRC_U16, LP4V2_REG_SOC, 0, 0, 1, 0, NULL, NULL, NULL},
    {"soh", "State of health", Q_PERCENT, SRC_U16, LP4V2_REG_SOH, 0, 0, 1, 0, "mdi:battery-heart-variant", NULL, NULL},
    {"remaining_ah", "Remaining capacity", Q_CHARGE, SRC_U16, LP4V2_REG_REMAINING, 0, 0, 1, 0, "mdi:battery-clock", NULL, NULL},
    {"full_capacity_ah", "Full capacity", Q_CHARGE, SRC_U32, LP4V2_REG_FULL_CAP, 0, 1, 1.0 / 3600000.0, 0, "mdi:battery-clock", NULL, NULL},
    {"capacity_ah", "Design capacity", Q_CHARGE, SRC_U16, LP4V2_REG_DESIGN_CAP, 0, 1, 0.1, DIAG, "mdi:battery-clock", NULL, NULL},
    {"max_charge_current", "Maximum charging current", Q_CURRENT, SRC_U16, LP4V2_REG_MAX_CHARGE, 0, 0, 1, 0, "mdi:current-dc", NULL, NULL},
    {"cycle_count", "Cycle count", Q_COUNT, SRC_U32, LP4V2_REG_CYCLES, 0, 0, 1, 0, "mdi:counter", NULL, NULL},
    {"status", "Status", Q_ENUM, SRC_ENUM_LOW, LP4V2_REG_STATUS, 0, 0, 1, 0, "mdi:state-machine", lp4v2_status_options, lp4v2_status_codes},
    /* V01.06 names bit 15 of register 25 both "Active" and "Heat State-On". */
    {"heater", "Heater (unconfirmed: status bit 15)", Q_HEAT, SRC_BIT, LP4V2_REG_STATUS, 15, 0, 1, 0, NULL, NULL, NULL},
    {"temperature_pcb", "PCB temperature", Q_TEMPERATURE, SRC_S16, LP4V2_REG_TEMP_PCB, 0, 0, 1, 0, "mdi:chip", NULL, NULL},
    {"temperature_avg", "Average temperature", Q_TEMPERATURE, SRC_S16, LP4V2_REG_TEMP_AVG, 0, 0, 1, 0, "mdi:thermometer", NULL, NULL},
    {"temperature_max", "Maximum temperature", Q_TEMPERATURE, SRC_S16, LP4V2_REG_TEMP_MAX, 0, 0, 1, 0, "mdi:thermometer-high", NULL, NULL},
    TEMP(01, 1), TEMP(02, 2), TEMP(03, 3), TEMP(04, 4), TEMP(05, 5), TEMP(06, 6),
    CELL(01, 1), CELL(02, 2), CELL(03, 3), CELL(04, 4), CELL(05, 5), CELL(06, 6),
    CELL(07, 7), CELL(08, 8), CELL(09, 9), CELL(10, 10), CELL(11, 11), CELL(12, 12),
    CELL(13, 13), CELL(14, 14), CELL(15, 15), CELL(16, 16),
    DERIVED("cell_voltage_min", "Cell voltage min", Q_VOLTAGE, 3, "mdi:arrow-down-bold"),
    DERIVED("cell_voltage_max", "Cell voltage max", Q_VOLTAGE, 3, "mdi:arrow-up-bold"),
    DERIVED("cell_voltage_delta_mv", "Cell voltage delta", Q_VOLTAGE_MV, 0, "mdi:sine-wave"),
    DERIVED("cell_lowest", "Lowest cell", Q_NUMBER, 0, "mdi:numeric"),
    DERIVED("cell_highest", "Highest cell", Q_NUMBER, 0, "mdi:numeric"),
    {"cell_count", "Cell count", Q_NUMBER, SRC_U16, LP4V2_REG_CELL_COUNT, 0, 0, 1, DIAG, "mdi:numeric", NULL, NULL},
    /* Register 26, V01.06 §3 "Warning". */
    WARN("pack_ov", 0, "Pack overvoltage"), WARN("cell_ov", 1, "Cell overvoltage"),
    WARN("pack_uv", 2, "Pack undervoltage"), WARN("cell_uv", 3, "Cell undervoltage"),
    WARN("charge_oc", 4, "Charge overcurrent"), WARN("discharge_oc", 5, "Discharge overcurrent"),
    WARN("temp_anomaly", 6, "Abnormal ambient temperature"), WARN("mos_ot", 7, "MOSFET overheating"),
    WARN("charge_ot", 8, "Charge overtemperature"), WARN("discharge_ot", 9, "Discharge overtemperature"),
    WARN("charge_ut", 10, "Charge undertemperature"), WARN("discharge_ut", 11, "Discharge undertemperature"),
    WARN("low_capacity", 12, "Low capacity"), WARN("float_stopped", 13, "Float stopped"),
    /* Register 27, "Protection": as 26 but bit 13 is discharge short circuit. */
    PROT("pack_ov", 0, "Pack overvoltage"), PROT("cell_ov", 1, "Cell overvoltage"),
    PROT("pack_uv", 2, "Pack undervoltage"), PROT("cell_uv", 3, "Cell undervoltage"),
    PROT("charge_oc", 4, "Charge overcurrent"), PROT("discharge_oc", 5, "Discharge overcurrent"),
    PROT("temp_anomaly", 6, "Abnormal ambient temperature"), PROT("mos_ot", 7, "MOSFET overheating"),
    PROT("charge_ot", 8, "Charge overtemperature"), PROT("discharge_ot", 9, "Discharge overtemperature"),
    PROT("charge_ut", 10, "Charge undertemperature"), PROT("discharge_ut", 11, "Discharge undertemperature"),
    PROT("low_capacity", 12, "Low capacity"), PROT("discharge_sc", 13, "Discharge short circuit"),
    /* Register 28, "Error Code". */
    {"error_code", "Error code", Q_RAW, SRC_U16, LP4V2_REG_ERROR, 0, 0, 1, DIAG, "mdi:alert-octagon", NULL, NULL},
    FLAG("error", "voltage", "Voltage error", Q_PROBLEM, LP4V2_REG_ERROR, 0, 0),
    FLAG("error", "temperature", "Temperature error", Q_PROBLEM, LP4V2_REG_ERROR, 1, 0),
    FLAG("error", "current_flow", "Current flow error", Q_PROBLEM, LP4V2_REG_ERROR, 2, 0),
    FLAG("error", "cell_unbalance", "Cell unbalance error", Q_PROBLEM, LP4V2_REG_ERROR, 4, 0),
    /* Register 38, "Cell Balance Status": bit n = cell n+1. */
    BAL(01, 1), BAL(02, 2), BAL(03, 3), BAL(04, 4), BAL(05, 5), BAL(06, 6), BAL(07, 7), BAL(08, 8),
    BAL(09, 9), BAL(10, 10), BAL(11, 11), BAL(12, 12), BAL(13, 13), BAL(14, 14), BAL(15, 15), BAL(16, 16),
    RAW(00, 0), RAW(01, 1), RAW(02, 2), RAW(03, 3), RAW(04, 4), RAW(05, 5), RAW(06, 6), RAW(07, 7),
    RAW(08, 8), RAW(09, 9), RAW(10, 10), RAW(11, 11), RAW(12, 12), RAW(13, 13), RAW(14, 14),
    RAW(15, 15), RAW(16, 16), RAW(17, 17), RAW(18, 18), RAW(19, 19), RAW(20, 20), RAW(21, 21),
    RAW(22, 22), RAW(23, 23), RAW(24, 24), RAW(25, 25), RAW(26, 26), RAW(27, 27), RAW(28, 28),
    RAW(29, 29), RAW(30, 30), RAW(31, 31), RAW(32, 32), RAW(33, 33), RAW(34, 34), RAW(35, 35),
    RAW(36, 36), RAW(37, 37), RAW(38, 38), RAW(39, 39), RAW(40, 40), RAW(41, 41), RAW(42, 42),
    RAW(43, 43), RAW(44, 44), RAW(45, 45), RAW(46, 46),
};
// clang-format on

const size_t lp4v2_n_readings = sizeof(lp4v2_readings) / sizeof(lp4v2_readings[0]);

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

int lp4v2_decode(const uint16_t *regs, size_t nregs, double *values)
{
    bool all_zero = true;

    for (size_t i = 0; i < lp4v2_n_readings; i++)
        values[i] = NAN;
    if (nregs < LP4V2_DOC_COUNT)
        return -EPROTO;
    for (unsigned r = 0; r <= LP4V2_REG_TEMP_PCB; r++)
        all_zero = all_zero && regs[r] == 0;
    if (all_zero)
        return -ENODATA;

    pthread_once(&lp4v2_derived_once, lp4v2_find_derived);
    reading_decode_table(lp4v2_readings, lp4v2_n_readings, regs, nregs, values);
    lp4v2_cell_stats(regs, values);
    /* Power from the reported voltage and current: 10 mV x 10 mA = 1e-4 W. */
    lp4v2_set(values, D_POWER,
              regs[LP4V2_REG_VOLTAGE] * (double)(int16_t)regs[LP4V2_REG_CURRENT] * 1e-4);
    return 0;
}

/* Copy 2*nregs ASCII bytes, high byte first, keeping printable characters only. */
static void lp4v2_ascii(const uint16_t *regs, size_t nregs, char *out, size_t outlen)
{
    size_t k = 0;

    for (size_t i = 0; i < 2 * nregs && k + 1 < outlen; i++) {
        unsigned char ch = (unsigned char)(i % 2 == 0 ? regs[i / 2] >> 8 : regs[i / 2] & 0xFF);
        if (ch >= 0x20 && ch < 0x7F)
            out[k++] = (char)ch;
    }
    while (k > 0 && out[k - 1] == ' ')
        k--;
    out[k] = '\0';
    /* Leading padding is not part of the value either. */
    size_t lead = strspn(out, " ");
    memmove(out, out + lead, k - lead + 1);
}

void lp4v2_identity(const uint16_t *regs, size_t n, struct device_identity *id)
{
    memset(id, 0, sizeof(*id));
    if (n < LP4V2_ID_COUNT)
        return;
    lp4v2_ascii(regs + (LP4V2_REG_MODEL - LP4V2_ID_START), 12, id->model, sizeof(id->model));
    lp4v2_ascii(regs + (LP4V2_REG_FIRMWARE - LP4V2_ID_START), 3, id->firmware,
                sizeof(id->firmware));
    lp4v2_ascii(regs + (LP4V2_REG_SERIAL - LP4V2_ID_START), 8, id->serial, sizeof(id->serial));
}
