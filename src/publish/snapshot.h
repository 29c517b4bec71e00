/* SPDX-License-Identifier: MIT */
/* snapshot.h - every device's latest outcome as the outputs beyond MQTT show it. */
#ifndef BMS_SNAPSHOT_H
#define BMS_SNAPSHOT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "device.h"
#include "reading.h"
#include "result.h"

/*
 * One device in a snapshot. The strings and the readings table belong to the device (its
 * config, driver and link) and stay valid for the daemon's life; `values` belongs to the
 * snapshot.
 */
struct snap_dev {
    const void *key;                /* the struct device it shows (for lookups only) */
    const char *name;               /* device name (config or found on a listened bus) */
    const char *bus;                /* its bus's name ("bus" in the original form) */
    const char *protocol;           /* its driver's name: "lp4v2", "pylontech"... */
    const char *kind;               /* device_kind_name(): "battery", "inverter"... */
    const char *port;               /* its line as configured: "/dev/ttyUSB0", "tcp://..." */
    const struct reading_def *defs; /* its readings table */
    size_t n_defs;
    double *values;                     /* n_defs readings of the last good poll, in each
                                           quantity's unit; NaN = unknown (all NaN before the
                                           first good poll) */
    bool has_values;                    /* a good poll was seen */
    enum device_avail avail;            /* as published on MQTT: unknown, online, offline */
    double last_good_mono;              /* monotonic s of the last good poll (has_values) */
    double last_good_unix;              /* the same as Unix time, s */
    unsigned long polls;                /* polls attempted so far */
    unsigned long failed[RESULT_COUNT]; /* failed polls so far by cause ([RESULT_OK] is 0) */
    unsigned failures;                  /* failed polls in a row at the newest outcome */
    enum result last_result;            /* of the newest outcome (RESULT_OK before any) */
    unsigned long stray;                /* stray bytes dropped on its line so far */
    struct device_identity id;          /* model, firmware, serial ("" when not read) */
    bool dirty;                         /* changed since it was last copied (snap_publish) */
};

/* Every device (in the order they became known: configured, then found) and the daemon's
 * own state. */
struct snap {
    struct snap_dev *dev;
    size_t n, cap;
    bool mqtt_connected;     /* an MQTT session is up */
    unsigned long published; /* MQTT messages handed to the client so far */
    unsigned long gen;       /* bumped by every snap_publish() into a shared snapshot */
};

/* An empty snapshot. */
void snap_init(struct snap *s);

/* Free what s holds and make it empty. */
void snap_free(struct snap *s);

/*
 * Add device p (set up: name, readings table, driver, bus and link stay valid for the
 * daemon's life), availability unknown, every reading unknown. Returns its index, or -1
 * when out of memory.
 */
int snap_add(struct snap *s, const struct device *p);

/* The index of the device whose key is p, or -1. */
int snap_find(const struct snap *s, const void *p);

/*
 * A snapshot another thread reads: the owner (the publisher thread) publishes into it, the
 * reader (the HTTP listener) takes a copy out of it; each holds the lock only to copy.
 */
struct snap_shared {
    pthread_mutex_t lock;
    struct snap s;
};

/* Set up sh (empty). Returns 0, or -1 when the lock cannot be made. */
int snap_shared_init(struct snap_shared *sh);

/* Free what sh holds. No thread may use it any more. */
void snap_shared_destroy(struct snap_shared *sh);

/*
 * Copy the owner's snapshot `own` into sh under its lock: the daemon's state, new devices,
 * and the devices marked dirty (whose marks are then cleared). Returns 0, or -1 when out of
 * memory (sh keeps what it had; the marks stay, so the next call tries again).
 */
int snap_publish(struct snap_shared *sh, struct snap *own);

/*
 * Copy sh into `mine` under its lock if it changed since mine was taken (its gen). Returns
 * 0, or -1 when out of memory (mine may then hold fewer devices than sh).
 */
int snap_take(struct snap_shared *sh, struct snap *mine);

/* True if d's key looks like a cell voltage: "cell_<number>_voltage" (the drivers' naming),
 * with the cell's number in *cell (may be NULL). */
bool snap_cell_voltage(const struct reading_def *d, unsigned *cell);

/* Monotonic and Unix time now, in s. */
double snap_now_mono(void);
double snap_now_unix(void);

#endif
