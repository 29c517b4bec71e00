/* SPDX-License-Identifier: MIT */
/* device.h - one device at run time (a pack, a module...): its link, readings and health. */
#ifndef BMS_DEVICE_H
#define BMS_DEVICE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "driver.h"
#include "link.h"
#include "log.h"
#include "regmap.h"

struct ha_style;
struct inbox;

/* Availability of a pack as HA sees it. */
enum device_avail {
    DEVICE_UNKNOWN, /* not polled yet: published as offline */
    DEVICE_ONLINE,
    DEVICE_OFFLINE,
};

/*
 * Commands that complete a poll beside its main one (Pylontech alarms 0x44 and limits 0x92,
 * LifePower4 ASCII alarms 0x44). One the pack refuses (a return code or exception) or leaves
 * unanswered DEVICE_REFUSALS_BEFORE_BACKOFF times in a row is then asked only every
 * DEVICE_REFUSED_ASK_EVERY-th poll, so that an unsupported command costs no bus time; its
 * readings are unknown (NaN) whenever it did not answer in the current poll.
 */
#define DEVICE_MAX_OPTIONAL            4
#define DEVICE_REFUSALS_BEFORE_BACKOFF 3
#define DEVICE_REFUSED_ASK_EVERY       50

struct device_optional {
    unsigned refused; /* refusals or silences in a row */
    unsigned skipped; /* polls it was not asked since its last try, while backed off */
};

/* Whether the optional command o tracks is asked this poll: always until it was refused or
 * unanswered DEVICE_REFUSALS_BEFORE_BACKOFF times in a row, then every
 * DEVICE_REFUSED_ASK_EVERY-th poll (counted here). */
bool device_optional_due(struct device_optional *o);

/* Count outcome r of the command o tracks: an answer ends a backoff; a refusal
 * (RESULT_REFUSED: a return code, an exception) or silence (RESULT_TIMEOUT) counts towards
 * one; anything else (a damaged reply) changes nothing. Returns 1 when r ends a backoff, -1
 * when r begins one, 0 otherwise (the caller logs the first two). */
int device_optional_note(struct device_optional *o, enum result r);

/*
 * A device on a bus. The poller thread of its bus owns all of it but the constant fields (name,
 * readings table, driver, bus), which the publisher reads too; the publisher gets everything
 * else in the posts of publisher.h.
 */
struct device {
    const char *name;               /* = cfg->name */
    const struct reading_def *defs; /* reading table of the pack's protocol */
    size_t n_defs;
    const struct driver *driver;    /* its protocol */
    enum device_kind kind;          /* what it is: driver->kind, or per device where the driver
                                       reads several kinds (a GX: by service) */
    const struct config_bus *bus;   /* its bus's settings (poll period, timeout, offline_after) */
    struct link *link;              /* the line of its bus (shared by the devices on it) */
    unsigned cell_count;            /* cells per pack where the protocol does not say (legacy) */
    uint8_t slave;                  /* its address on that line (slave id, unit id, ADR) */
    unsigned long link_opens;       /* link->opens at the last poll: a change is a new connection */
    void *bus_state;                /* what the driver shares between the packs of its line */
    bool bus_state_owned;           /* this pack frees bus_state (device_teardown) */
    struct regmap_state *map_state; /* what the register map reader remembers of this device
                                       (regmap.h: its plan, refused ranges), made by its driver
                                       at the first poll; freed at teardown */
    struct device_identity id;      /* from registers 105..127; empty until read */
    bool need_identity;             /* read the identity on the next good poll */
    double last_good_s;             /* monotonic s of the last good reading (listening) */
    void *publisher_slot;           /* the publisher's record of this pack (its mailbox) */
    char *owned_name;               /* name allocated for a pack found at run time, or NULL */
    unsigned failures;              /* consecutive failed polls */
    unsigned long polls;            /* polls attempted */
    unsigned long errors[RESULT_COUNT];                   /* failed polls by cause */
    struct log_throttle throttle;                         /* failure logging */
    struct device_optional optional[DEVICE_MAX_OPTIONAL]; /* by the driver's own numbering */
    double *values; /* scratch: n_defs readings of the current poll */
    /* How Home Assistant sees the device when it is not a battery pack (a GX's devices,
     * ha.h struct ha_style), with the style's own data; NULL: a pack's discovery. Set before
     * the device reaches the publisher, constant from then on. */
    const struct ha_style *ha_style;
    const void *ha_ctx;
    struct inbox *inbox; /* where commands for it go (inbox.h; HA command topics), or NULL */
};

/*
 * Set up pack p (zeroed first) named `name` (kept by reference) read with `driver` at
 * `slave` on `bus` (kept by reference), with the cell count of cfg and the poll period of bus.
 * Every reading starts unknown (NaN). Returns 0, or -1 when out of memory (device_teardown() still
 * frees what was set up).
 */
int device_setup(struct device *p, const char *name, const struct driver *driver, uint8_t slave,
                 const struct config *cfg, const struct config_bus *bus);

/* What log lines call device p: "pack" for a battery pack, "device" for any other kind (a GX's
 * inverter, meter, system...). A static string. */
const char *device_noun(const struct device *p);

/* Free what device_setup() and a simulated pack allocated. */
void device_teardown(struct device *p);

#endif
