/* SPDX-License-Identifier: MIT */
/* victron_gx.h - the GX driver's state, shared by its files (victron_gx_driver.c,
 * victron_write.c); not a public API. */
#ifndef BMS_VICTRON_GX_H
#define BMS_VICTRON_GX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "device.h"
#include "driver.h"
#include "ha_victron.h"
#include "inbox.h"
#include "log.h"
#include "victron_plan.h"
#include "victron_scan.h"
#include "victron_table.h"
#include "victron_write.h"

struct gx;

/* One device of a GX: a service at a unit id, published as a device of its own. */
struct gx_child {
    struct device dev; /* name "<bus>_<unit>_<service>", readings: its service's map */
    struct gx *gx;
    uint8_t unit;
    const struct victron_service *svc;
    struct ha_victron_dev hctx;     /* how HA sees it (dev.ha_ctx) */
    unsigned char *control;         /* per reading: enum ha_victron_control */
    struct ha_victron_range *range; /* per reading: a number's range */
    char **texts;                   /* per reading: the last text posted (strings) */
    double *write_at;               /* per reading: monotonic s of the last write, or -inf */
    bool answered;                  /* answered a request since it was found */
    bool absent;                    /* its last answer was 0x0A: offline */
    bool seen;                      /* this cycle: a block of it was read */
    bool gone;                      /* this cycle: it answered 0x0A */
    bool id_changed;                /* this cycle: its identity changed */
};

/* A command waiting for its register's next allowed write (one per register per second). */
struct gx_pending {
    struct gx_child *c;
    size_t def;
    char value[INBOX_VALUE_MAX];
};

#define GX_MAX_PENDING 16

/* The GX: the configured device's bus_state. Its bus thread owns all of it but `inbox`. */
struct gx {
    struct device *self;         /* the GX's configured device */
    struct ha_victron_dev hself; /* how HA sees the GX itself (self->ha_ctx) */
    const struct config_gx *cfg;
    struct victron_table *table;
    struct publisher *pub;
    const struct bus_loop *loop;
    struct inbox inbox; /* commands (HA command topics) from the publisher thread */
    char serial[33];    /* system register 800; "" until read */
    uint32_t firmware;  /* 834 << 16 | 835; 0 unknown */
    bool identified;    /* serial and firmware read on this connection */
    bool refused_other; /* the GX at the port is another one: nothing is published */
    unsigned long link_opens;
    struct gx_child **kids;
    size_t n_kids;
    struct victron_plan *plan;
    bool full_pass;            /* the next cycle reads every tier */
    bool rescan;               /* the next cycle scans again (the firmware changed) */
    struct victron_scan sweep; /* the background scan, when `sweeping` */
    bool sweeping;
    double last_sweep;     /* monotonic s of the last scan's end */
    char cache_path[4096]; /* "" when there is none */
    size_t refused_saved;  /* refused ranges in the cache file */
    unsigned phases;       /* AC phases of the inverter/chargers (writes' power rails) */
    double now;
    unsigned long scan_requests; /* probes of the last scan */
    unsigned cycle_requests;     /* requests of the current cycle */
    struct gx_pending pending[GX_MAX_PENDING];
    size_t n_pending;
    struct log_throttle complain;
};

/* Read `count` registers from `start` at unit id `unit` of gx's line (function 3). Returns
 * as regmap_read_fn (regmap.h), the exception in *ex. Counts the request. */
enum result gx_read_regs(struct gx *gx, uint8_t unit, uint16_t start, uint16_t count, uint16_t *out,
                         uint8_t *ex);

/* Post child c's readings as they are now (a good outcome). */
void gx_post_child(struct gx *gx, struct gx_child *c);

/* Take the commands of the inbox and write those whose register is due (one write per
 * register per second; a newer command for a register replaces one that waits): each checked
 * against its rail (refused ones never reach the wire), written, read back and republished,
 * logged old -> new (victron_write.c). Returns the monotonic time the next waiting one is due,
 * or INFINITY. */
double gx_serve_commands(struct gx *gx);

/* Child c's controls (HA number, select, switch) and their ranges under the bus's write: and
 * the GX's phases; called before c's first outcome is posted (victron_write.c). */
void gx_child_controls(struct gx *gx, struct gx_child *c);

#endif
