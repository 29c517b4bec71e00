/* SPDX-License-Identifier: MIT */
/* victron_overlay.c - bms2mqtt's own knowledge of a Victron GX's registers (victron_overlay.h):
 * units, unit-text fixes, INTERNAL rows, the core set, the write allow-list, default unit ids.
 * Facts from shared/protocols/victron/README.md and Victron's register list (Rev 53). */
#include "victron_overlay.h"

#include <string.h>
#include <strings.h>

/* Unit texts of the CSV's unit column (attributes.csv, dbus_modbustcp v1.0.101) and the units
 * HA takes for them (sensor/const.py DEVICE_CLASS_UNITS, shared/ha/HA_RULES.md §3). */
static const struct {
    const char *text;
    enum quantity q;
} unit_table[] = {
    {"V", Q_VOLTAGE},
    {"V DC", Q_VOLTAGE},
    {"V AC", Q_VOLTAGE},
    {"A", Q_CURRENT},
    {"A DC", Q_CURRENT},
    {"A AC", Q_CURRENT},
    {"W", Q_POWER},
    {"W DC", Q_POWER},
    {"W AC", Q_POWER},
    {"kW", Q_POWER_KW},
    {"VA", Q_APPARENT_POWER},
    {"var", Q_REACTIVE_POWER},
    {"kWh", Q_ENERGY},
    {"Ah", Q_CHARGE},
    {"%", Q_PERCENT},
    {"Degrees celsius", Q_TEMPERATURE},
    {"Degrees centigrade", Q_TEMPERATURE},
    {"°C", Q_TEMPERATURE},
    {"Hz", Q_FREQUENCY},
    {"s", Q_DURATION},
    {"seconds", Q_DURATION},
    {"hour", Q_DURATION_H},
    {"hours", Q_DURATION_H},
    {"day", Q_DURATION_D},
    {"days", Q_DURATION_D},
    {"count", Q_COUNTER},
    {"RPM", Q_ROTATION},
    {"m/s", Q_SPEED},
    {"m", Q_DISTANCE},
    {"Decimal degrees", Q_ANGLE},
    {"Degrees", Q_ANGLE},
    {"kPa", Q_PRESSURE_KPA},
    {"hPa", Q_PRESSURE_HPA},
    {"m3", Q_VOLUME_STORAGE},
    {"W/m^2", Q_IRRADIANCE},
    {"lux", Q_ILLUMINANCE},
    {"ppm", Q_PPM},
    {"ug/m^3", Q_CONCENTRATION},
    /* Not units: a Unix time, an index. Published as plain numbers. */
    {"timestamp", Q_NUMBER},
    {"config_idx", Q_NUMBER},
};

enum quantity victron_unit_quantity(const char *unit, bool *known)
{
    if (known)
        *known = true;
    if (!unit || !*unit)
        return Q_NUMBER;
    for (size_t i = 0; i < sizeof(unit_table) / sizeof(unit_table[0]); i++)
        if (strcasecmp(unit_table[i].text, unit) == 0)
            return unit_table[i].q;
    if (known)
        *known = false;
    return Q_NUMBER;
}

/* The last component of a D-Bus path ("/Dc/Battery/Soc" -> "Soc"). */
static const char *path_leaf(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash ? slash + 1 : path;
}

enum quantity victron_item_quantity(const char *service, const char *path, const char *unit,
                                    bool *known)
{
    enum quantity q = victron_unit_quantity(unit, known);
    const char *leaf = path_leaf(path);

    if (q == Q_PERCENT && (strcmp(leaf, "Soc") == 0 || strcmp(leaf, "TargetSoc") == 0))
        return Q_SOC;
    if (q == Q_PERCENT && strcmp(leaf, "Humidity") == 0)
        return Q_HUMIDITY;
    if (q == Q_PPM && strcmp(leaf, "CO2") == 0)
        return Q_CO2;
    if (q == Q_CONCENTRATION && strcmp(leaf, "PM25") == 0)
        return Q_PM25;
    /* Counts kept in a device's history only grow (alarms, cycles, syncs). */
    if (q == Q_COUNTER && strncmp(path, "/History/", 9) == 0)
        return Q_COUNT;
    /* A power factor has no unit in the CSV (int16, scale 1000). */
    if (q == Q_NUMBER && strcmp(leaf, "PowerFactor") == 0)
        return Q_POWER_FACTOR;
    /* The battery capacity Dynamic ESS plans with is stored energy, not a counter. */
    if (q == Q_ENERGY && strcmp(service, "settings") == 0 && strcmp(leaf, "BatteryCapacity") == 0)
        return Q_ENERGY_STORAGE;
    return q;
}

const struct victron_unit_fix victron_unit_fixes[] = {
    {"pvinverter", 1052, "/Ac/Power", "kW", "W"},
    {"pvinverter", 1054, "/Ac/MaxPower", "kW", "W"},
    {"pvinverter", 1056, "/Ac/PowerLimit", "kW", "W"},
    /* The same D-Bus path as register 3816, which says kWh; range 0 to 42949672.95 (kWh). */
    {"evcharger", 3830, "/Session/Energy", "W", "kWh"},
};
const size_t victron_n_unit_fixes = sizeof(victron_unit_fixes) / sizeof(victron_unit_fixes[0]);

static const struct victron_internal internal_table[] = {
    {"solarcharger", "/Pv/I", SRC_S16, false, NULL}, /* spreadsheet: int16, scale 10, A DC */
    {"system", "/DateAndTime", SRC_U64, false, ""},  /* UTC time, s since 1970 */
    {"system", "/FirmwareVersion", SRC_U16, true, ""},
    {"genset", "/ErrorCode", SRC_U16, false, NULL},
    {"dcgenset", "/ErrorCode", SRC_U16, false, NULL},
};

const struct victron_internal *victron_internal_find(const char *service, const char *path)
{
    for (size_t i = 0; i < sizeof(internal_table) / sizeof(internal_table[0]); i++)
        if (strcmp(internal_table[i].service, service) == 0 &&
            strcmp(internal_table[i].path, path) == 0)
            return &internal_table[i];
    return NULL;
}

/* Enum labels of the core set, as the GX's table gives them. */
#define RELAY "0=Open;1=Closed"
#define INV_STATE                                                                                  \
    "0=Off;1=Low Power;2=Fault;3=Bulk;4=Absorption;5=Float;6=Storage;7=Equalize;8=Passthru;"       \
    "9=Inverting;10=Power assist;11=Power supply;252=External control"
#define INV_MODE "1=Charger Only;2=Inverter Only;3=On;4=Off"
#define ESS_MODE_RS                                                                                \
    "0=self-consumption (battery-life);1=self-consumption;2=Keep charged;3=External control"

// clang-format off
const struct victron_core victron_core_set[] = {
    /* battery (BMV, SmartShunt, CAN-bus BMS) */
    {"battery", "/Dc/0/Power", 256, "int32", 1, "W", false, true},
    {"battery", "/Dc/0/Voltage", 259, "uint16", 100, "V DC", false, true},
    {"battery", "/Dc/0/Current", 261, "int16", 10, "A DC", false, true},
    {"battery", "/Dc/0/Temperature", 262, "int16", 10, "Degrees celsius", false, true},
    {"battery", "/Soc", 266, "uint16", 10, "%", false, true},
    {"battery", "/Relay/0/State", 280, "uint16", 1, RELAY, true, true},
    /* vebus (Multi, Quattro) */
    {"vebus", "/Ac/ActiveIn/L1/P", 12, "int16", 0.1, "W", false, true},
    {"vebus", "/Ac/ActiveIn/L2/P", 13, "int16", 0.1, "W", false, true},
    {"vebus", "/Ac/ActiveIn/L3/P", 14, "int16", 0.1, "W", false, true},
    {"vebus", "/Ac/ActiveIn/CurrentLimit", 22, "int16", 10, "A", true, true},
    {"vebus", "/Ac/Out/L1/P", 23, "int16", 0.1, "W", false, true},
    {"vebus", "/Ac/Out/L2/P", 24, "int16", 0.1, "W", false, true},
    {"vebus", "/Ac/Out/L3/P", 25, "int16", 0.1, "W", false, true},
    {"vebus", "/State", 31, "uint16", 1, INV_STATE, false, true},
    {"vebus", "/Mode", 33, "uint16", 1, INV_MODE, true, true},
    {"vebus", "/Hub4/L1/AcPowerSetpoint", 37, "int16", 1, "W", true, false},
    {"vebus", "/Hub4/DisableCharge", 38, "uint16", 1, "0=Charge allowed;1=Charge disabled", true, false},
    {"vebus", "/Hub4/DisableFeedIn", 39, "uint16", 1, "0=Feed in allowed;1=Feed in disabled", true, false},
    {"vebus", "/Hub4/L2/AcPowerSetpoint", 40, "int16", 1, "W", true, false},
    {"vebus", "/Hub4/L3/AcPowerSetpoint", 41, "int16", 1, "W", true, false},
    {"vebus", "/Hub4/L1/AcPowerSetpoint", 96, "int32", 1, "W", true, false},
    {"vebus", "/Hub4/L2/AcPowerSetpoint", 98, "int32", 1, "W", true, false},
    {"vebus", "/Hub4/L3/AcPowerSetpoint", 100, "int32", 1, "W", true, false},
    /* solarcharger (MPPT) */
    {"solarcharger", "/State", 775, "uint16", 1,
     "0=Off;2=Fault;3=Bulk;4=Absorption;5=Float;6=Storage;7=Equalize;11=Other (Hub-1);252=Hub-1",
     false, true},
    {"solarcharger", "/History/Daily/0/Yield", 784, "uint16", 10, "kWh", false, true},
    {"solarcharger", "/Yield/Power", 789, "uint16", 10, "W", false, true},
    {"solarcharger", "/Yield/User", 790, "uint16", 10, "kWh", false, true},
    /* pvinverter (AC-coupled PV): the power is in W whatever the table's unit says */
    {"pvinverter", "/Ac/L1/Energy/Forward", 1030, "uint16", 100, "kWh", false, true},
    {"pvinverter", "/Ac/L2/Energy/Forward", 1034, "uint16", 100, "kWh", false, true},
    {"pvinverter", "/Ac/L3/Energy/Forward", 1038, "uint16", 100, "kWh", false, true},
    {"pvinverter", "/Ac/Power", 1052, "int32", 1, "W", true, true},
    /* grid (energy meter) */
    {"grid", "/Ac/L1/Power", 2600, "int16", 1, "W", false, true},
    {"grid", "/Ac/L2/Power", 2601, "int16", 1, "W", false, true},
    {"grid", "/Ac/L3/Power", 2602, "int16", 1, "W", false, true},
    {"grid", "/Ac/Energy/Forward", 2634, "uint32", 100, "kWh", false, true},
    {"grid", "/Ac/Energy/Reverse", 2636, "uint32", 100, "kWh", false, true},
    /* system (unit 100): the GX's serial, relays, totals */
    {"system", "/Serial", 800, "string[6]", 1, "", false, true},
    {"system", "/Relay/0/State", 806, "uint16", 1, RELAY, true, true},
    {"system", "/Relay/1/State", 807, "uint16", 1, RELAY, true, true},
    {"system", "/Ac/Consumption/L1/Power", 817, "uint16", 1, "W", false, true},
    {"system", "/Ac/Consumption/L2/Power", 818, "uint16", 1, "W", false, true},
    {"system", "/Ac/Consumption/L3/Power", 819, "uint16", 1, "W", false, true},
    {"system", "/Ac/Grid/L1/Power", 820, "int16", 1, "W", false, true},
    {"system", "/Ac/Grid/L2/Power", 821, "int16", 1, "W", false, true},
    {"system", "/Ac/Grid/L3/Power", 822, "int16", 1, "W", false, true},
    {"system", "/FirmwareVersion", 834, "INTERNAL[2]", 1, "", false, true},
    {"system", "/Dc/Battery/Voltage", 840, "uint16", 10, "V DC", false, true},
    {"system", "/Dc/Battery/Current", 841, "int16", 10, "A DC", false, true},
    {"system", "/Dc/Battery/Power", 842, "int16", 1, "W", false, true},
    {"system", "/Dc/Battery/Soc", 843, "uint16", 1, "%", false, true},
    {"system", "/Dc/Battery/State", 844, "uint16", 1, "0=idle;1=charging;2=discharging", false, true},
    {"system", "/Dc/Pv/Power", 850, "uint16", 1, "W", false, true},
    /* settings (unit 100): ESS and DVCC */
    {"settings", "/Settings/CGwacs/AcPowerSetPoint", 2700, "int16", 1, "W", true, false},
    {"settings", "/Settings/CGwacs/AcPowerSetPoint", 2703, "int16", 0.01, "W", true, false},
    {"settings", "/Settings/SystemSetup/MaxChargeCurrent", 2705, "int16", 1, "A", true, false},
    {"settings", "/Settings/SystemSetup/MaxChargeVoltage", 2710, "uint16", 10, "V", true, false},
    {"settings", "/Settings/CGwacs/BatteryLife/State", 2900, "uint16", 1,
     "0=BL disabled;1=Restarting;2=Self-consumption;3=Self-consumption;4=Self-consumption;"
     "5=Discharge disabled;6=Force charge;7=Sustain;9=Keep batteries charged;10=BL Disabled;"
     "11=BL Disabled (Low SoC)", true, true},
    {"settings", "/Settings/CGwacs/BatteryLife/MinimumSocLimit", 2901, "uint16", 10, "%", true, true},
    {"settings", "/Settings/CGwacs/Hub4Mode", 2902, "uint16", 1,
     "1=ESS with Phase Compensation;2=ESS without phase compensation;3=Disabled/External Control",
     true, true},
    /* hub4 (unit 100): the grid setpoint held in memory only */
    {"hub4", "/Overrides/Setpoint", 2716, "int32", 1, "W", true, false},
    /* multi (Multi RS) */
    {"multi", "/Ac/In/1/L1/P", 4506, "int16", 0.1, "W", false, true},
    {"multi", "/Ac/In/1/L2/P", 4507, "int16", 0.1, "W", false, true},
    {"multi", "/Ac/In/1/L3/P", 4508, "int16", 0.1, "W", false, true},
    {"multi", "/Ac/Out/L1/P", 4516, "int16", 0.1, "W", false, true},
    {"multi", "/Ac/Out/L2/P", 4517, "int16", 0.1, "W", false, true},
    {"multi", "/Ac/Out/L3/P", 4518, "int16", 0.1, "W", false, true},
    {"multi", "/Ac/In/1/CurrentLimit", 4522, "uint16", 10, "A", true, false},
    {"multi", "/Ac/In/2/CurrentLimit", 4523, "uint16", 10, "A", true, false},
    {"multi", "/Soc", 4529, "uint16", 10, "%", false, true},
    {"multi", "/State", 4530, "uint16", 1, INV_STATE, false, true},
    {"multi", "/Mode", 4531, "uint16", 1, INV_MODE, true, true},
    {"multi", "/Yield/Power", 4540, "uint16", 1, "W", false, true},
    {"multi", "/Yield/User", 4541, "uint16", 10, "kWh", false, true},
    {"multi", "/Settings/Ess/Mode", 4609, "uint16", 1, ESS_MODE_RS, true, true},
    {"multi", "/Ess/AcPowerSetpoint", 4610, "int32", 1, "W", true, false},
    {"multi", "/Ess/DisableFeedIn", 4612, "uint16", 1, "0=Feed-in enabled;1=Feed-in disabled", true, false},
    {"multi", "/Ess/DisableCharge", 4613, "uint16", 1, "0=Charge enabled;1=Charge disabled", true, false},
    {"multi", "/Settings/Ess/MinimumSocLimit", 4614, "uint16", 1, "%", true, false},
    /* acsystem (several Multi RS as one system) */
    {"acsystem", "/State", 4900, "uint16", 1, INV_STATE, false, true},
    {"acsystem", "/Ac/In/1/L1/P", 4907, "int16", 0.1, "W", false, true},
    {"acsystem", "/Ac/In/1/L2/P", 4908, "int16", 0.1, "W", false, true},
    {"acsystem", "/Ac/In/1/L3/P", 4909, "int16", 0.1, "W", false, true},
    {"acsystem", "/Ac/Out/L1/P", 4917, "int16", 0.1, "W", false, true},
    {"acsystem", "/Ac/Out/L2/P", 4918, "int16", 0.1, "W", false, true},
    {"acsystem", "/Ac/Out/L3/P", 4919, "int16", 0.1, "W", false, true},
    {"acsystem", "/Settings/Ess/Mode", 4921, "uint16", 1, ESS_MODE_RS, true, true},
    {"acsystem", "/Ess/AcPowerSetpoint", 4922, "int32", 1, "W", true, false},
    {"acsystem", "/Ess/DisableFeedIn", 4924, "uint16", 1, "0=Feed-in enabled;1=Feed-in disabled", true, false},
    {"acsystem", "/Ac/In/1/CurrentLimit", 4940, "uint16", 10, "A", true, false},
    {"acsystem", "/Ac/In/2/CurrentLimit", 4941, "uint16", 10, "A", true, false},
    /* inverter (VE.Direct inverters) */
    {"inverter", "/Ac/Out/L1/P", 3102, "int16", 0.1, "W AC", false, true},
    {"inverter", "/State", 3128, "uint16", 1,
     "0=Off;1=Low power mode (search mode);2=Fault;9=Inverting (on)", false, true},
};
// clang-format on
const size_t victron_n_core = sizeof(victron_core_set) / sizeof(victron_core_set[0]);

// clang-format off
const struct victron_write victron_writes[] = {
    /* VE.Bus: AC input current limit, switch position, ESS mode 3 setpoints and switches */
    {"vebus", "/Ac/ActiveIn/CurrentLimit", 22, VICTRON_RAIL_AC_CURRENT, false, false, "number"},
    {"vebus", "/Mode", 33, VICTRON_RAIL_MODE, false, false, "select"},
    {"vebus", "/Hub4/L1/AcPowerSetpoint", 37, VICTRON_RAIL_AC_POWER, false, true, "number"},
    {"vebus", "/Hub4/DisableCharge", 38, VICTRON_RAIL_SWITCH, false, false, "switch"},
    {"vebus", "/Hub4/DisableFeedIn", 39, VICTRON_RAIL_SWITCH, false, false, "switch"},
    {"vebus", "/Hub4/L2/AcPowerSetpoint", 40, VICTRON_RAIL_AC_POWER, false, true, "number"},
    {"vebus", "/Hub4/L3/AcPowerSetpoint", 41, VICTRON_RAIL_AC_POWER, false, true, "number"},
    {"vebus", "/Hub4/L1/AcPowerSetpoint", 96, VICTRON_RAIL_AC_POWER, false, true, "number"},
    {"vebus", "/Hub4/L2/AcPowerSetpoint", 98, VICTRON_RAIL_AC_POWER, false, true, "number"},
    {"vebus", "/Hub4/L3/AcPowerSetpoint", 100, VICTRON_RAIL_AC_POWER, false, true, "number"},
    /* system: the GX relays */
    {"system", "/Relay/0/State", 806, VICTRON_RAIL_SWITCH, false, false, "switch"},
    {"system", "/Relay/1/State", 807, VICTRON_RAIL_SWITCH, false, false, "switch"},
    /* settings: ESS grid setpoint (W; 2703 in 100 W steps), DVCC, ESS minimum SoC and mode */
    {"settings", "/Settings/CGwacs/AcPowerSetPoint", 2700, VICTRON_RAIL_AC_POWER, false, false, "number"},
    {"settings", "/Settings/CGwacs/AcPowerSetPoint", 2703, VICTRON_RAIL_AC_POWER, false, false, "number"},
    {"settings", "/Settings/SystemSetup/MaxChargeCurrent", 2705, VICTRON_RAIL_DC_CURRENT, true, false, "number"},
    {"settings", "/Settings/SystemSetup/MaxChargeVoltage", 2710, VICTRON_RAIL_DC_VOLTAGE, false, false, "number"},
    {"settings", "/Settings/CGwacs/BatteryLife/MinimumSocLimit", 2901, VICTRON_RAIL_SOC, false, false, "number"},
    {"settings", "/Settings/CGwacs/Hub4Mode", 2902, VICTRON_RAIL_MODE, false, false, "select"},
    /* hub4: the 32-bit grid setpoint (volatile) */
    {"hub4", "/Overrides/Setpoint", 2716, VICTRON_RAIL_AC_POWER, false, false, "number"},
    /* Multi RS: the same functions at their own registers */
    {"multi", "/Ac/In/1/CurrentLimit", 4522, VICTRON_RAIL_AC_CURRENT, false, false, "number"},
    {"multi", "/Ac/In/2/CurrentLimit", 4523, VICTRON_RAIL_AC_CURRENT, false, false, "number"},
    {"multi", "/Mode", 4531, VICTRON_RAIL_MODE, false, false, "select"},
    {"multi", "/Settings/Ess/Mode", 4609, VICTRON_RAIL_MODE, false, false, "select"},
    {"multi", "/Ess/AcPowerSetpoint", 4610, VICTRON_RAIL_AC_POWER, false, false, "number"},
    {"multi", "/Ess/DisableFeedIn", 4612, VICTRON_RAIL_SWITCH, false, false, "switch"},
    {"multi", "/Ess/DisableCharge", 4613, VICTRON_RAIL_SWITCH, false, false, "switch"},
    {"multi", "/Settings/Ess/MinimumSocLimit", 4614, VICTRON_RAIL_SOC, false, false, "number"},
    {"acsystem", "/Settings/Ess/Mode", 4921, VICTRON_RAIL_MODE, false, false, "select"},
    {"acsystem", "/Ess/AcPowerSetpoint", 4922, VICTRON_RAIL_AC_POWER, false, false, "number"},
    {"acsystem", "/Ess/DisableFeedIn", 4924, VICTRON_RAIL_SWITCH, false, false, "switch"},
    {"acsystem", "/Ac/In/1/CurrentLimit", 4940, VICTRON_RAIL_AC_CURRENT, false, false, "number"},
    {"acsystem", "/Ac/In/2/CurrentLimit", 4941, VICTRON_RAIL_AC_CURRENT, false, false, "number"},
};
// clang-format on
const size_t victron_n_writes = sizeof(victron_writes) / sizeof(victron_writes[0]);

const struct victron_write *victron_write_find(const char *service, uint16_t reg)
{
    for (size_t i = 0; i < victron_n_writes; i++)
        if (victron_writes[i].reg == reg && strcmp(victron_writes[i].service, service) == 0)
            return &victron_writes[i];
    return NULL;
}

const char *victron_rail_name(enum victron_rail r)
{
    static const char *const names[] = {
        [VICTRON_RAIL_AC_CURRENT] = "ac_current",
        [VICTRON_RAIL_DC_CURRENT] = "dc_current",
        [VICTRON_RAIL_DC_VOLTAGE] = "dc_voltage",
        [VICTRON_RAIL_AC_POWER] = "ac_power",
        [VICTRON_RAIL_SOC] = "soc",
        [VICTRON_RAIL_MODE] = "mode",
        [VICTRON_RAIL_SWITCH] = "switch",
    };

    return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}

const struct victron_unitid victron_default_unitids[] = {
    {100, 0},               /* system, settings, hub4, platform */
    {225, 512},             /* CAN-bus BMS */
    {226, 279},             /* Cerbo GX VE.Direct port 1 */
    {224, 278},             /* Cerbo GX VE.Direct port 2 */
    {223, 277},             /* Cerbo GX VE.Direct port 3 */
    {227, 276},             /* Cerbo GX VE.Bus port */
    {228, 275},             /* MultiPlus-II GX / EasySolar-II GX VE.Bus port */
    {229, 274},             /* their VE.Direct ports */
    {230, 273}, {242, 261}, /* Venus GX VE.Bus port */
    {243, 260},             /* Venus GX VE.Direct 2 */
    {245, 258},             /* CCGX VE.Direct 2, Venus GX VE.Direct 1 */
    {246, 257},             /* CCGX VE.Bus port */
    {247, 256},             /* CCGX VE.Direct 1 */
};
const size_t victron_n_default_unitids =
    sizeof(victron_default_unitids) / sizeof(victron_default_unitids[0]);
