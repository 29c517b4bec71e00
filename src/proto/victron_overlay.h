/* SPDX-License-Identifier: MIT */
/* victron_overlay.h - what bms2mqtt itself knows of a Victron GX's registers, beside Victron's
 * own register table: units for Home Assistant, fixes of the table's unit texts, the core set
 * a build without the table still reads, and the registers it may write. */
#ifndef BMS_VICTRON_OVERLAY_H
#define BMS_VICTRON_OVERLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reading.h"

/*
 * The overlay is C data (src/proto/victron_overlay.c), written by the project; doc/victron.md
 * explains each table. Victron's attributes.csv stays the authority on addresses, types, scale
 * factors and writability: where the two disagree, the overlay's entry is left out with a
 * warning (victron_table.h), never the CSV's.
 */

/* The quantity a unit text of the CSV's unit column gives ("V DC" -> Q_VOLTAGE, "kWh" ->
 * Q_ENERGY, "Degrees celsius" -> Q_TEMPERATURE...), compared without case. `*known` (may be
 * NULL) is set false for a text the overlay does not know (the reading is then published
 * without a unit, Q_NUMBER). An empty text gives Q_NUMBER and known. */
enum quantity victron_unit_quantity(const char *unit, bool *known);

/*
 * The quantity of a value item of service `service` (the service type: "battery") at D-Bus path
 * `path` with unit text `unit`, where the path says more than the unit: a state of charge
 * ("/Soc", "%") is Q_SOC, "/History/ChargeCycles" ("count") Q_COUNT, "/Humidity" ("%")
 * Q_HUMIDITY, "/CO2" Q_CO2, "/PM25" Q_PM25, a power factor Q_POWER_FACTOR, a battery capacity
 * in kWh Q_ENERGY_STORAGE. Otherwise victron_unit_quantity(unit, known).
 */
enum quantity victron_item_quantity(const char *service, const char *path, const char *unit,
                                    bool *known);

/*
 * A fix of the CSV's unit text at one register: the PV inverter powers 1052/1054/1056 say "kW"
 * but hold W (shared/protocols/victron/README.md; hass-victron #133, #167). Applied only while
 * the CSV still gives `wrong`, so a corrected table is left alone.
 */
struct victron_unit_fix {
    const char *service; /* service type, e.g. "pvinverter" */
    uint16_t reg;
    const char *path;
    const char *wrong; /* the unit text the CSV gives */
    const char *right; /* the unit text that holds */
};

/* The unit fixes, n_fixes of them. */
extern const struct victron_unit_fix victron_unit_fixes[];
extern const size_t victron_n_unit_fixes;

/*
 * What an INTERNAL[N] row is: the GX computes these values itself (README "Scaling and data
 * types"): 777 PV current int16, 830 system time uint64 s, 834..835 firmware version and beta
 * number (two uint16), 3214 and 5202 genset error codes uint16.
 */
struct victron_internal {
    const char *service;
    const char *path;
    enum reading_src src; /* of each word group: SRC_S16, SRC_U16, SRC_U64... */
    bool per_word;        /* one uint16 item per register (834 firmware, 835 beta) */
    const char *unit;     /* the unit text that holds ("" none: the CSV's "A DC" at 830/834 is
                             not theirs), or NULL to keep the CSV's */
};

/*
 * The overlay's entry for an INTERNAL row of `service` at `path`, or NULL. An INTERNAL row the
 * overlay does not know is read by its width: 1 register uint16, 2 uint32, 4 uint64.
 */
const struct victron_internal *victron_internal_find(const char *service, const char *path);

/*
 * One register of the core set: the readings a user looks at (battery SoC, voltage, current,
 * power, temperature; AC input and output power per phase; PV power and yield; grid power and
 * energy; states; ESS mode; relays) and every register of the write allow-list, with the type
 * and scale a build without Victron's CSV reads them by. The fields have the CSV's meaning
 * (victron_table.h); `enabled`: HA shows the reading by default (the others are announced
 * with enabled_by_default false).
 */
struct victron_core {
    const char *service; /* service type, "battery" */
    const char *path;    /* D-Bus path, "/Soc" */
    uint16_t reg;
    const char *type; /* Victron's Modbus type: "uint16", "int32", "string[6]", "INTERNAL[2]" */
    double scale;     /* scale factor: value = register / scale */
    const char *unit; /* the unit column: "V DC", or enum labels "0=Open;1=Closed" */
    bool writable;    /* the GX accepts writes ("W") */
    bool enabled;     /* shown by default */
};

extern const struct victron_core victron_core_set[];
extern const size_t victron_n_core;

/*
 * The guard rails of writes (the issue's `write:` configuration): which configured limit bounds
 * a write allow-listed register. Enforcement is the driver's; this is the data.
 */
enum victron_rail {
    VICTRON_RAIL_AC_CURRENT, /* A: 0 .. write.ac_current_max_a */
    VICTRON_RAIL_DC_CURRENT, /* A: 0 .. write.dc_current_max_a (-1 = no limit where allowed) */
    VICTRON_RAIL_DC_VOLTAGE, /* V: cells x 2.50 .. cells x 3.65 (write.dc_voltage_profile) */
    VICTRON_RAIL_AC_POWER,   /* W: +- write.ac_voltage x write.ac_current_max_a x phases */
    VICTRON_RAIL_SOC,        /* %: 0 .. 100 */
    VICTRON_RAIL_MODE,       /* one of the register's enum codes (HA select) */
    VICTRON_RAIL_SWITCH,     /* 0 or 1 (HA switch) */
};

/* The rail's name for logs and docs: "ac_current", "dc_current", "dc_voltage", "ac_power",
 * "soc", "mode", "switch"; "?" out of range. */
const char *victron_rail_name(enum victron_rail r);

/* One register of the write allow-list. Only these may ever be written; each is also a row of
 * the core set (its type and scale). */
struct victron_write {
    const char *service;
    const char *path;
    uint16_t reg;
    enum victron_rail rail;
    bool no_limit;         /* -1 is a valid value meaning "no limit" (DVCC max charge current) */
    bool per_phase;        /* VICTRON_RAIL_AC_POWER: one phase's setpoint (x 1 phase), else the
                              system's (x its phases) */
    const char *component; /* the HA entity it becomes: "number", "select" or "switch" */
};

extern const struct victron_write victron_writes[];
extern const size_t victron_n_writes;

/* The allow-list entry of register `reg` of `service`, or NULL. */
const struct victron_write *victron_write_find(const char *service, uint16_t reg);

/* A unit id the GX maps to a device instance (unitid2di.csv). */
struct victron_unitid {
    uint8_t unit;
    uint16_t instance;
};

/* The unit ids a build without unitid2di.csv knows (README "Unit id = device instance": 100,
 * the CAN-bus BMS 225, the VE.Bus and VE.Direct ports of a Cerbo GX, Venus GX and CCGX). */
extern const struct victron_unitid victron_default_unitids[];
extern const size_t victron_n_default_unitids;

#endif
