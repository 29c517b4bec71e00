/* SPDX-License-Identifier: MIT */
/* driver.h - the protocol drivers: how a pack is read, and what its readings are. */
#ifndef BMS_DRIVER_H
#define BMS_DRIVER_H

#include <stdbool.h>
#include <stddef.h>

#include "modbus_poll.h"
#include "reading.h"

struct device;

/*
 * A protocol driver. The contract, for every hook: do one pass, bounded in time (the
 * link's timeout plus the frames' own duration), never sleep beyond the line's silence,
 * never exit; report a failure by its cause and leave reconnecting to the next call.
 */
struct driver {
    const char *name;               /* "lp4v2" (Modbus RTU), "eg4-legacy" (7E..0D) */
    const char *model;              /* HA device model when the pack does not tell its own */
    const char *manufacturer;       /* HA device manufacturer */
    const char *label;              /* HA device name: "<label> <pack name>" */
    bool reports_energy;            /* the pack counts its own kWh: the daemon integrates none */
    const char *sim_proto;          /* the simulated packs that speak it (sim_line_proto) */
    const struct reading_def *defs; /* the readings, in publishing order */
    const size_t *n_defs;           /* how many (the table's own count) */
    /* The keys the eg4-battery script published as `sensor` for this kind of pack
     * (NULL-terminated): those no longer sensors get an empty retained config. */
    const char *const *retired_sensor_keys;
    /* required: read the pack once and decode into values[n_defs] (NaN = unknown).
     * now_s is the monotonic time, used by simulated packs. Returns RESULT_OK or the cause;
     * on failure nothing in values may be published. */
    enum result (*poll)(struct device *p, double *values, double now_s);
    /* optional: read model, firmware and serial into p->id. RESULT_OK, or the cause. */
    enum result (*identify)(struct device *p, double now_s);
    /* optional: the packs[0..n) of one line are set up; hang what they share off their
     * bus_state (a pack whose bus_state_owned is set frees it at teardown). 0, or -1 when
     * out of memory. */
    int (*bus_setup)(struct device **packs, size_t n);
};

/* EG4 LifePower4 v2 / EG4-LL over Modbus RTU (function 0x03, vendor map V01.06). */
extern const struct driver lp4v2_driver;

/* EG4 legacy 7E..0D protocol (commands 0x01 status, 0x33 firmware), protocols §2. */
extern const struct driver eg4_legacy_driver;

/* Pylontech RS485 V3.3 (ASCII frames, CID1 0x46): one pack per module address. */
extern const struct driver pylontech_driver;

/* EG4 LifePower4 ASCII protocol (CID1 0x4A, 9600 baud, addresses 1..15). */
extern const struct driver lp4_ascii_driver;

#endif
