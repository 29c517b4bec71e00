/* SPDX-License-Identifier: MIT */
/* driver.h - the protocol drivers: everything the daemon asks of a protocol, in one table. */
#ifndef BMS_DRIVER_H
#define BMS_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reading.h"
#include "result.h"

struct device;
struct publisher;
struct sniff_proto;

/*
 * What the daemon lends a driver that runs its bus itself (driver.bus_run): the clock, the
 * sleep between polls and the stop. Every function takes ctx; sleep_until and stopping are
 * called by the bus thread only, kick by any thread.
 */
struct bus_loop {
    double (*now)(void *ctx); /* monotonic s (the time base of the device's posts) */
    /* Sleep until monotonic `until`, a stop request or a kick. Returns true if stopping. */
    bool (*sleep_until)(void *ctx, double until);
    bool (*stopping)(void *ctx); /* true once a stop was requested */
    /* Wake sleep_until now (something waits for the bus thread: a command). */
    void (*kick)(void *ctx);
    bool once; /* one cycle (--once, --dry-run), then return */
    void *ctx;
};

/* What a device is, for Home Assistant and for the totals: bank totals add battery packs
 * only. */
enum device_kind {
    DEVICE_BATTERY,       /* a battery pack (BMS) */
    DEVICE_INVERTER,      /* an inverter/charger (Multi, Quattro, inverter) */
    DEVICE_SOLAR_CHARGER, /* a solar charge controller (MPPT) or PV inverter */
    DEVICE_METER,         /* an energy meter (grid, AC load, genset) */
    DEVICE_SYSTEM,        /* a whole system's totals and settings (a GX's system service) */
    DEVICE_BANK,          /* the daemon's own totals over the battery packs */
    DEVICE_OTHER,         /* anything else (tanks, temperature sensors...) */
    DEVICE_KIND_COUNT,
};

/* Short name of a device kind: "battery", "inverter", "solar_charger", "meter", "system",
 * "bank", "other"; "?" out of range. */
const char *device_kind_name(enum device_kind k);

/* What a protocol's requests and replies are on the wire, and so which links carry them. */
enum driver_wire {
    /* Modbus RTU ADUs (slave id, PDU, CRC-16/MODBUS): carried by libmodbus RTU on a serial
     * port, framed by the daemon over an RS-485-to-Ethernet bridge, or turned into Modbus TCP
     * (MBAP, transaction ids) for a gateway. */
    DRIVER_WIRE_MODBUS,
    /* The protocol's own frames, carried as they are by a serial port or a bridge. */
    DRIVER_WIRE_FRAMES,
};

/*
 * A protocol driver: one const descriptor per protocol, in drivers[]. The configuration, the
 * poller, the listener, scan, sniff, --list-readings and --dry-run find everything they need
 * of a protocol here; none of them switches on the protocol.
 *
 * The contract of the hooks: do one pass, bounded in time (the link's timeout plus the
 * frames' own duration per exchange), never sleep beyond the line's silence, never exit;
 * report a failure by its cause (result.h) and leave reconnecting to the next call.
 */
struct driver {
    /* ---- names and configuration ---- */
    /* The protocol's one name: bus.mode and bus.protocol in the configuration, the
     * simulator's personality (bms-sim --protocol), `sniff --protocol`, the C prefix. */
    const char *name;
    /* NULL-terminated other bus.mode values meaning this driver (the eg4-battery script's
     * "modbus_per_pack", "active"), or NULL. */
    const char *const *aliases;
    /* The bus.mode value meaning "listen to this protocol, never transmit" ("passive",
     * the script's name, for LP4V2), or NULL. Listening to any protocol is also
     * bus.mode: passive with bus.protocol: <name>. */
    const char *listen_alias;
    const char *title;         /* for people: "EG4 LifePower4 v2 (Modbus RTU)" */
    const char *name_prefix;   /* names scan gives the packs it finds: "<prefix>_<address>" */
    enum driver_wire wire;     /* which links carry it */
    int default_baud;          /* bits/s when the configuration gives none */
    int addr_min, addr_max;    /* pack addresses (slave ids, ADR, DIP addresses) */
    int addr_default;          /* a pack's address when it gives none; -1: it must give one */
    bool (*addr_ok)(int addr); /* optional: finer than the range (Pylontech groups) */
    const char *addr_rule;     /* the accepted addresses in words, for messages */
    bool port_per_pack;        /* a pack may name a port of its own (a bus of its own) */

    /* ---- the devices it reads ---- */
    enum device_kind kind;
    const char *manufacturer;       /* HA device manufacturer */
    const char *model;              /* HA device model when the device does not tell its own */
    const char *label;              /* HA device name: "<label> <device name>" */
    bool reports_energy;            /* the device counts its own kWh: the daemon integrates none */
    const struct reading_def *defs; /* the readings, in publishing order */
    const size_t *n_defs;           /* how many (the table's own count) */
    /* The keys the eg4-battery script published as `sensor` for this kind of pack
     * (NULL-terminated): those no longer sensors get an empty retained config. */
    const char *const *retired_sensor_keys;

    /* ---- polling ---- */
    /* required (unless bus_run): read device d once and decode into values[n_defs] (NaN =
     * unknown). now_s is
     * the monotonic time (simulated lines step to it). Returns RESULT_OK or the cause; on
     * failure nothing in values may be published. */
    enum result (*poll)(struct device *d, double *values, double now_s);
    /* optional: read model, firmware and serial into d->id. RESULT_OK, or the cause. */
    enum result (*identify)(struct device *d, double now_s);
    /* optional: the devices[0..n) of one line are set up; hang what they share off their
     * bus_state (a device whose bus_state_owned is set frees it at teardown). 0, or -1
     * when out of memory. */
    int (*bus_setup)(struct device **devices, size_t n);
    /* optional: the driver runs the bus of configured device d itself (a Victron GX: one
     * device configured, the GX, whose devices the driver finds, adds to the publisher with
     * publisher_add_pack() and polls), posting every outcome to pub, until loop says stop
     * (or after one cycle with loop->once). Replaces poll for the poller; poll may be NULL. */
    void (*bus_run)(struct device *d, struct publisher *pub, const struct bus_loop *loop);
    /* optional: free what the driver hung off device d (device_teardown calls it first). */
    void (*teardown)(struct device *d);

    /* ---- listening (sniff, passive mode): framer, pairing, decoding of heard frames ---- */
    const struct sniff_proto *sniff;

    /* ---- scanning: which rates and addresses `bms2mqtt scan` tries ---- */
    const int *scan_bauds;        /* 0-terminated, in order */
    int scan_last, scan_last_all; /* addresses addr_min..scan_last; with --all ..scan_last_all
                                     (addr_ok applies) */
};

/* Every driver, NULL-terminated, in the order scan, sniff and --list-readings take them. */
extern const struct driver *const drivers[];

/*
 * The driver whose name, alias or listen alias is `mode`; *listen (may be NULL) tells whether
 * it was the listen alias. NULL when no driver has that name.
 */
const struct driver *driver_find(const char *mode, bool *listen);

/* True if addr is a valid address of a pack of driver dr. */
bool driver_addr_ok(const struct driver *dr, int addr);

/* EG4 LifePower4 v2 / EG4-LL over Modbus RTU (function 0x03, vendor map V01.06). */
extern const struct driver lp4v2_driver;

/* EG4 legacy 7E..0D protocol (commands 0x01 status, 0x33 firmware), protocols §2. */
extern const struct driver eg4_legacy_driver;

/* Pylontech RS485 V3.3 (ASCII frames, CID1 0x46): one device per module address. */
extern const struct driver pylontech_driver;

/* EG4 LifePower4 ASCII protocol (CID1 0x4A, 9600 baud, addresses 1..15). */
extern const struct driver lp4_ascii_driver;

/* Victron GX devices over Modbus TCP (victron_gx_driver.c, doc/victron.md). */
extern const struct driver victron_gx_driver;

#endif
