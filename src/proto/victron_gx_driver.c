/* SPDX-License-Identifier: MIT */
/* victron_gx_driver.c - the victron_gx driver: a Victron GX over Modbus TCP, its devices found,
 * read per unit id in block reads, and published as devices of their own. Facts:
 * shared/protocols/victron/README.md; how it is done: doc/victron.md. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "driver_io.h"
#include "modbus_rtu.h"
#include "publisher.h"
#include "victron_gx.h"
#include "victron_names.h"

#define GX_UNIT            100 /* the GX's own services (device instance 0) */
#define GX_SERIAL_REG      800 /* system /Serial, string[6] */
#define GX_FIRMWARE_REG    834 /* system /FirmwareVersion: 834 in hex (0x0370 = v3.70), 835 beta */
#define GX_SCAN_CHUNK      64  /* probes of a scan between looks at a stop request */
#define GX_SWEEP_PER_CYCLE 16  /* probes of a background scan per poll */
#define GX_SWEEP_EVERY_S   86400 /* a background scan at least this often: new devices */

/* The GX's own readings (the HA device "Victron GX <bus>"): how its polls go. */
enum { GX_R_REQUESTS, GX_R_DEVICES, GX_R_DURATION, GX_R_SCAN };

// clang-format off
static const struct reading_def gx_readings[] = {
    [GX_R_REQUESTS] = {"requests", "Requests per poll", Q_NUMBER, SRC_DERIVED, 0, 0, 0, 1, READING_DIAGNOSTIC, "mdi:swap-horizontal"},
    [GX_R_DEVICES]  = {"devices", "Devices", Q_NUMBER, SRC_DERIVED, 0, 0, 0, 1, READING_DIAGNOSTIC, "mdi:devices"},
    [GX_R_DURATION] = {"poll_duration", "Poll duration", Q_DURATION, SRC_DERIVED, 0, 0, 3, 1, READING_DIAGNOSTIC, NULL},
    [GX_R_SCAN]     = {"scan_requests", "Scan requests", Q_NUMBER, SRC_DERIVED, 0, 0, 0, 1, READING_DIAGNOSTIC | READING_DISABLED, "mdi:magnify"},
};
// clang-format on
static const size_t gx_n_readings = sizeof(gx_readings) / sizeof(gx_readings[0]);

static double gx_unix_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec;
}

/* ---- the line ---------------------------------------------------------------------------- */

enum result gx_read_regs(struct gx *gx, uint8_t unit, uint16_t start, uint16_t count, uint16_t *out,
                         uint8_t *ex)
{
    uint8_t req[8], rsp[5 + 2 * REGMAP_MAX_BLOCK + 2];
    size_t len = 0;
    enum result r;

    *ex = 0;
    gx->cycle_requests++;
    mb_build_read_request(unit, start, count, req);
    r = drv_exchange(gx->self, req, sizeof(req), rsp, sizeof(rsp), &len, mb_rtu_frame_length,
                     gx->now);
    if (r != RESULT_OK)
        return r;
    r = mb_parse_read_response(rsp, len, unit, count, out, ex);
    if (r == RESULT_REFUSED)
        snprintf(drv_what(gx->self), DRV_WHAT_LEN, "unit %u, registers %u..%u: exception 0x%02X",
                 unit, start, start + count - 1, *ex);
    else if (r != RESULT_OK)
        snprintf(drv_what(gx->self), DRV_WHAT_LEN, "bad reply (%s)", result_name(r));
    return r;
}

static enum result gx_probe(void *ctx, uint8_t unit, uint16_t reg, uint8_t *ex)
{
    uint16_t v;

    return gx_read_regs(ctx, unit, reg, 1, &v, ex);
}

static struct gx_child *gx_child_at(const struct gx *gx, uint8_t unit,
                                    const struct victron_service *svc)
{
    for (size_t i = 0; i < gx->n_kids; i++)
        if (gx->kids[i]->unit == unit && gx->kids[i]->svc == svc)
            return gx->kids[i];
    return NULL;
}

static size_t gx_devices_at(const struct gx *gx, uint8_t unit)
{
    size_t n = 0;

    for (size_t i = 0; i < gx->n_kids; i++)
        n += gx->kids[i]->unit == unit;
    return n;
}

/* The map's read (regmap.h): 0x0A / 0x0B say the service of `start` is not at that unit. At a
 * unit with several devices the others may well be there: it reaches regmap as a plain
 * refusal, so that it does not skip the unit's other blocks. */
static enum result gx_map_read(void *ctx, uint8_t unit, uint16_t start, uint16_t count,
                               uint16_t *out, uint8_t *ex)
{
    struct gx *gx = ctx;
    enum result r = gx_read_regs(gx, unit, start, count, out, ex);

    if (r == RESULT_REFUSED && (*ex == REGMAP_EX_GW_PATH || *ex == REGMAP_EX_GW_TARGET)) {
        struct gx_child *c = gx_child_at(gx, unit, victron_table_owner(gx->table, start));
        if (c)
            c->gone = true;
        if (gx_devices_at(gx, unit) > 1)
            *ex = 0;
    }
    return r;
}

/* ---- identity ---------------------------------------------------------------------------- */

/* "v3.70" from registers 834 and 835 (834 read in hex; 835 the beta number). */
static void gx_firmware_text(uint32_t fw, char *out, size_t cap)
{
    unsigned hi = fw >> 16, beta = fw & 0xFFFF;

    if (!fw)
        snprintf(out, cap, "%s", "");
    else if (beta)
        snprintf(out, cap, "v%x.%02x~%u", hi >> 8, hi & 0xFF, beta);
    else
        snprintf(out, cap, "v%x.%02x", hi >> 8, hi & 0xFF);
}

/* Read the GX's serial and firmware (unit 100, registers 800 and 834). RESULT_OK, or why not. */
static enum result gx_identify(struct gx *gx)
{
    const struct victron_service *sys = victron_table_service(gx->table, "system");
    int i = sys ? victron_service_find(sys, GX_SERIAL_REG) : -1;
    uint16_t r[8];
    uint8_t ex;
    char serial[33];
    enum result res;

    if (i < 0 || sys->map.defs[i].src != SRC_STRING) {
        snprintf(drv_what(gx->self), DRV_WHAT_LEN,
                 "the register table has no system serial (800): cannot tell the GX");
        return RESULT_LENGTH;
    }
    const struct reading_def *d = &sys->map.defs[i];
    if ((res = gx_read_regs(gx, GX_UNIT, d->reg, d->count, r, &ex)) != RESULT_OK) {
        if (res == RESULT_REFUSED)
            snprintf(drv_what(gx->self), DRV_WHAT_LEN,
                     "no serial at unit 100, register 800 (exception 0x%02X): is it a GX with "
                     "its Modbus TCP server on?",
                     ex);
        return res;
    }
    reading_text(d, r, serial, sizeof(serial));
    if (!serial[0]) {
        snprintf(drv_what(gx->self), DRV_WHAT_LEN, "the GX gives an empty serial (register 800)");
        return RESULT_LENGTH;
    }
    if (gx->serial[0] && strcmp(gx->serial, serial) != 0) {
        if (!gx->refused_other)
            log_msg(LOG_LVL_ERROR,
                    "bus %s: %s now answers as GX %s, not %s: nothing of it is published (its "
                    "entities would be another GX's); restart bms2mqtt to publish it",
                    gx->self->bus->name, gx->self->link->port, serial, gx->serial);
        gx->refused_other = true;
        snprintf(drv_what(gx->self), DRV_WHAT_LEN, "another GX (serial %s) answers", serial);
        return RESULT_ADDRESS;
    }
    /* 834..835: firmware; 0x02 there: older than mid-2025 (README "Versions"). */
    res = gx_read_regs(gx, GX_UNIT, GX_FIRMWARE_REG, 2, r, &ex);
    if (res != RESULT_OK && res != RESULT_REFUSED)
        return res;
    uint32_t fw = res == RESULT_OK ? ((uint32_t)r[0] << 16 | r[1]) : 0;
    bool first = !gx->serial[0];
    if (first) /* constant from now on: the devices' discovery reads it */
        snprintf(gx->serial, sizeof(gx->serial), "%s", serial);
    if (!first && fw != gx->firmware) {
        log_msg(LOG_LVL_NOTICE, "bus %s: GX %s firmware changed (0x%08x -> 0x%08x): scanning again",
                gx->self->bus->name, serial, gx->firmware, fw);
        gx->rescan = true;
        /* What the old firmware refused says nothing of the new one. */
        victron_plan_free(gx->plan);
        gx->plan = NULL;
    }
    gx->firmware = fw;
    gx->identified = true;
    struct device_identity id = gx->self->id;
    reading_identity_set(&id, "serial", serial);
    gx_firmware_text(fw, id.firmware, sizeof(id.firmware));
    reading_identity_set(&id, "model", "GX device (Venus OS)");
    if (memcmp(&id, &gx->self->id, sizeof(id)) != 0) {
        gx->self->id = id;
        log_msg(LOG_LVL_INFO, "bus %s: GX serial %s, firmware %s", gx->self->bus->name, serial,
                id.firmware[0] ? id.firmware : "(older than v3.60: register 834 refused)");
        publisher_post_identity(gx->pub, gx->self);
    }
    return RESULT_OK;
}

/* ---- devices ----------------------------------------------------------------------------- */

static void gx_child_free(struct gx_child *c)
{
    if (!c)
        return;
    for (size_t i = 0; c->texts && i < c->dev.n_defs; i++)
        free(c->texts[i]);
    free(c->texts);
    free(c->control);
    free(c->range);
    free(c->write_at);
    free(c->dev.values);
    free(c->dev.owned_name);
    pthread_mutex_destroy(&c->hctx.lock);
    free(c);
}

/* A new device of the GX: `svc` at `unit`, added to the publisher. NULL when out of memory. */
static struct gx_child *gx_child_new(struct gx *gx, uint8_t unit, const struct victron_service *svc)
{
    struct gx_child *c = calloc(1, sizeof(*c));
    struct gx_child **kids = realloc(gx->kids, (gx->n_kids + 1) * sizeof(*kids));
    size_t n = svc->map.n_defs ? svc->map.n_defs : 1;
    char name[128];

    if (kids)
        gx->kids = kids;
    if (!c || !kids) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->hctx.lock, NULL);
    snprintf(name, sizeof(name), "%s_%u_%s", gx->self->name, unit, svc->name);
    c->gx = gx;
    c->unit = unit;
    c->svc = svc;
    c->dev.owned_name = strdup(name);
    c->dev.name = c->dev.owned_name;
    c->dev.driver = &victron_gx_driver;
    c->dev.kind = victron_service_kind(svc->name);
    c->dev.defs = svc->map.defs;
    c->dev.n_defs = svc->map.n_defs;
    c->dev.slave = unit;
    c->dev.bus = gx->self->bus;
    c->dev.link = gx->self->link;
    c->dev.throttle.remind_every = 360;
    c->dev.values = malloc(n * sizeof(double));
    c->texts = calloc(n, sizeof(char *));
    c->control = calloc(n, 1);
    c->range = calloc(n, sizeof(*c->range));
    c->write_at = malloc(n * sizeof(double));
    if (!c->dev.owned_name || !c->dev.values || !c->texts || !c->control || !c->range ||
        !c->write_at) {
        gx_child_free(c);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        c->dev.values[i] = NAN;
        c->write_at[i] = -INFINITY;
    }
    c->hctx.gx_name = gx->self->name;
    c->hctx.serial = gx->serial; /* known before any device is made; constant from then on */
    c->hctx.unit = unit;
    c->hctx.svc = svc;
    c->hctx.control = c->control;
    c->hctx.range = c->range;
    c->dev.ha_style = &ha_victron_dev_style;
    c->dev.ha_ctx = &c->hctx;
    c->dev.inbox = gx->cfg->write ? &gx->inbox : NULL;
    if (publisher_add_pack(gx->pub, &c->dev) < 0) {
        gx_child_free(c);
        return NULL;
    }
    gx->kids[gx->n_kids++] = c;
    log_msg(LOG_LVL_NOTICE, "bus %s: %s (%s) at unit %u: publishing it as %s", gx->self->bus->name,
            ha_victron_title(svc->name), svc->name, unit, name);
    return c;
}

/* Plan the reads of the devices known now, keeping what the GX refused. 0 or -1 (logged). */
static int gx_replan(struct gx *gx)
{
    struct victron_unit_service *devs = malloc((gx->n_kids ? gx->n_kids : 1) * sizeof(*devs));
    struct regmap_range kept[256];
    size_t n_kept = gx->plan ? victron_plan_refused(gx->plan, kept, 256) : 0;
    struct victron_plan *plan = NULL;
    int rc;

    if (!devs)
        return -1;
    for (size_t i = 0; i < gx->n_kids; i++)
        devs[i] = (struct victron_unit_service){gx->kids[i]->unit, gx->kids[i]->svc};
    rc = victron_plan_build(devs, gx->n_kids, &plan);
    free(devs);
    if (rc < 0) {
        log_msg(LOG_LVL_ERROR, "bus %s: cannot plan the reads: %s", gx->self->bus->name,
                strerror(-rc));
        return -1;
    }
    for (size_t i = 0; i < n_kept && i < 256; i++)
        victron_plan_refuse(plan, &kept[i]);
    victron_plan_free(gx->plan);
    gx->plan = plan;
    gx->full_pass = true;
    unsigned live = (unsigned)victron_plan_blocks(plan, 0);
    log_msg(LOG_LVL_INFO,
            "bus %s: %zu devices; %u block reads every poll and %zu more in turn (one per poll)",
            gx->self->bus->name, gx->n_kids, live, plan->n_tiers - 1);
    return 0;
}

/* Add the devices of found[0..n) that are not known yet. Returns how many were added. */
static size_t gx_adopt(struct gx *gx, const struct victron_unit_service *found, size_t n)
{
    size_t added = 0;

    for (size_t i = 0; i < n; i++)
        if (!gx_child_at(gx, found[i].unit, found[i].svc) &&
            gx_child_new(gx, found[i].unit, found[i].svc))
            added++;
    return added;
}

/* ---- the scan cache ---------------------------------------------------------------------- */

static void gx_cache_path(struct gx *gx)
{
    const char *dir = gx->cfg->state_dir ? gx->cfg->state_dir : getenv("STATE_DIRECTORY");

    gx->cache_path[0] = '\0';
    if (dir && *dir &&
        (size_t)snprintf(gx->cache_path, sizeof(gx->cache_path), "%s/bms2mqtt-gx-%s.json", dir,
                         gx->self->bus->name) >= sizeof(gx->cache_path))
        gx->cache_path[0] = '\0';
}

static void gx_cache_save(struct gx *gx, double scanned)
{
    struct victron_cache *c;
    char why[600];

    if (!gx->cache_path[0] || !(c = calloc(1, sizeof(*c))))
        return;
    snprintf(c->serial, sizeof(c->serial), "%s", gx->serial);
    c->firmware = gx->firmware;
    c->scanned = scanned;
    for (size_t i = 0; i < gx->n_kids && c->n_devs < VICTRON_SCAN_MAX_FOUND; i++)
        c->devs[c->n_devs++] = (struct victron_unit_service){gx->kids[i]->unit, gx->kids[i]->svc};
    if (gx->plan)
        c->n_refused = victron_plan_refused(gx->plan, c->refused, 256);
    if (c->n_refused > 256)
        c->n_refused = 256;
    if (victron_cache_save(gx->cache_path, c, why, sizeof(why)) < 0)
        log_msg(LOG_LVL_WARNING, "bus %s: scan cache not saved: %s", gx->self->bus->name, why);
    else
        gx->refused_saved = c->n_refused;
    free(c);
}

/* ---- finding the devices ----------------------------------------------------------------- */

static void gx_scan_start(struct gx *gx, struct victron_scan *s)
{
    victron_scan_start(s, gx->table, gx->cfg->n_units ? gx->cfg->units : NULL, gx->cfg->n_units);
}

/* A whole scan now (bounded by stop requests). RESULT_OK, or the link's failure. */
static enum result gx_scan(struct gx *gx)
{
    struct victron_scan *s = malloc(sizeof(*s));
    enum result r = RESULT_OK;

    if (!s)
        return RESULT_IO;
    gx_scan_start(gx, s);
    log_msg(LOG_LVL_NOTICE, "bus %s: scanning GX %s for devices (at most %lu requests)",
            gx->self->bus->name, gx->serial, victron_scan_total(s));
    while (!s->done && r == RESULT_OK && !gx->loop->stopping(gx->loop->ctx))
        r = victron_scan_step(s, GX_SCAN_CHUNK, gx_probe, gx);
    if (r == RESULT_OK && s->done) {
        gx->scan_requests = s->requests;
        log_msg(LOG_LVL_NOTICE, "bus %s: scan done: %zu devices in %lu requests",
                gx->self->bus->name, s->n_found, s->requests);
        gx_adopt(gx, s->found, s->n_found);
        gx->last_sweep = gx->now;
    } else if (r == RESULT_OK) {
        r = RESULT_TIMEOUT; /* stopping */
    }
    free(s);
    return r;
}

/*
 * The devices, before the first poll: the scan cache when it is this GX's with this firmware
 * (and no units are configured), else a scan; then the plan, with the ranges the firmware
 * refused. RESULT_OK, or the link's failure (tried again next cycle).
 */
static enum result gx_discover(struct gx *gx)
{
    struct victron_cache *c = calloc(1, sizeof(*c));
    char why[600];
    bool same = false;
    int rc = 1;
    enum result r = RESULT_OK;

    if (!c)
        return RESULT_IO;
    if (gx->cache_path[0] &&
        (rc = victron_cache_load(gx->cache_path, gx->table, c, why, sizeof(why))) < 0)
        log_msg(LOG_LVL_WARNING, "bus %s: scan cache ignored: %s", gx->self->bus->name, why);
    same = rc == 0 && strcmp(c->serial, gx->serial) == 0 && c->firmware == gx->firmware;
    if (same && !gx->cfg->n_units && c->n_devs && !gx->rescan) {
        log_msg(LOG_LVL_INFO, "bus %s: %zu devices of GX %s from the scan cache %s",
                gx->self->bus->name, c->n_devs, gx->serial, gx->cache_path);
        gx_adopt(gx, c->devs, c->n_devs);
        gx->last_sweep = gx->now - (gx_unix_now() - c->scanned);
    } else if ((r = gx_scan(gx)) != RESULT_OK) {
        free(c);
        return r;
    }
    gx->rescan = false;
    if (gx_replan(gx) < 0) {
        free(c);
        return RESULT_IO;
    }
    for (size_t i = 0; same && i < c->n_refused; i++)
        victron_plan_refuse(gx->plan, &c->refused[i]);
    gx_cache_save(gx, same && !gx->scan_requests ? c->scanned : gx_unix_now());
    free(c);
    if (!gx->n_kids)
        log_msg(LOG_LVL_WARNING, "bus %s: GX %s offers no device at the unit ids tried%s",
                gx->self->bus->name, gx->serial, gx->cfg->n_units ? " (units)" : "");
    return RESULT_OK;
}

/* The background scan: new devices (daily, or when a device went away: it may be back at
 * another unit id), a few probes per poll. */
static void gx_sweep(struct gx *gx)
{
    if (!gx->sweeping) {
        if (gx->now - gx->last_sweep < GX_SWEEP_EVERY_S)
            return;
        gx_scan_start(gx, &gx->sweep);
        gx->sweeping = true;
    }
    if (victron_scan_step(&gx->sweep, GX_SWEEP_PER_CYCLE, gx_probe, gx) != RESULT_OK)
        return; /* the link: next cycle */
    if (gx_adopt(gx, gx->sweep.found, gx->sweep.n_found)) {
        gx->sweep.n_found = 0;
        if (gx_replan(gx) == 0)
            gx_cache_save(gx, gx_unix_now());
    }
    gx->sweep.n_found = 0;
    if (gx->sweep.done) {
        gx->sweeping = false;
        gx->last_sweep = gx->now;
        gx_cache_save(gx, gx_unix_now());
    }
}

/* ---- one poll ---------------------------------------------------------------------------- */

struct gx_pass {
    struct gx *gx;
    struct victron_tier *tier;
};

/* A block read: the devices whose registers it holds answered; enum codes the table does not
 * know become "unknown (n)". */
static void gx_on_block(void *ctx, uint8_t unit, uint16_t start, const uint16_t *regs, size_t n)
{
    struct gx_pass *p = ctx;
    struct gx *gx = p->gx;
    const struct victron_service *last = NULL;

    for (size_t k = 0; k < n; k++) {
        const struct victron_service *svc = victron_table_owner(gx->table, (uint16_t)(start + k));
        struct gx_child *c;
        if (svc == last || !svc)
            continue;
        last = svc;
        if ((c = gx_child_at(gx, unit, svc)))
            c->seen = true;
    }
    const struct regmap *m = &p->tier->map;
    for (size_t i = 0; i < m->n_defs; i++) {
        const struct reading_def *d = &m->defs[i];
        unsigned w = reading_width(d);
        uint64_t code = 0;
        bool ones = true;
        if (d->q != Q_ENUM || d->unit != unit || d->reg < start || d->reg + w > start + n ||
            !isnan(p->tier->values[i]))
            continue;
        for (unsigned k = 0; k < w; k++) {
            code = code << 16 | regs[d->reg - start + k];
            ones = ones && regs[d->reg - start + k] == 0xFFFF;
        }
        /* 0 is what the GX reads for a value it does not have (README "Special values"): an
         * enum without a code 0 is unknown then, not "unknown (0)". */
        if (ones || code == 0 || code > UINT32_MAX)
            continue;
        struct gx_child *c = gx->kids[p->tier->origin[i].dev];
        if (ha_victron_unknown(&c->hctx, p->tier->origin[i].def, (uint32_t)code)) {
            log_msg(LOG_LVL_NOTICE,
                    "%s: %s (register %u) reads code %lu, which the register table does not "
                    "know: published as \"unknown (%lu)\"",
                    c->dev.name, d->path, d->reg, (unsigned long)code, (unsigned long)code);
            publisher_post_rediscover(gx->pub, &c->dev);
        }
        p->tier->values[i] = -(double)code - 1;
    }
}

/* A string reading's text: posted when it changed; names, serials and models are identity. */
static void gx_on_text(void *ctx, const struct reading_def *d, const char *text)
{
    struct gx_pass *p = ctx;
    size_t i = (size_t)(d - p->tier->map.defs);
    struct gx_child *c;
    size_t def;
    char *copy;

    if (i >= p->tier->map.n_defs)
        return;
    c = p->gx->kids[p->tier->origin[i].dev];
    def = p->tier->origin[i].def;
    if (c->texts[def] && strcmp(c->texts[def], text) == 0)
        return;
    if (!(copy = strdup(text)))
        return;
    free(c->texts[def]);
    c->texts[def] = copy;
    publisher_post_text(p->gx->pub, &c->dev, def, text);
    struct device_identity id = c->dev.id;
    if (strcmp(d->path, "/CustomName") == 0)
        snprintf(id.name, sizeof(id.name), "%s", text);
    else if (strcmp(d->path, "/Serial") == 0)
        reading_identity_set(&id, "serial", text);
    else if (strcmp(d->path, "/Model") == 0)
        reading_identity_set(&id, "model", text);
    if (memcmp(&id, &c->dev.id, sizeof(id)) != 0) {
        c->dev.id = id;
        c->id_changed = true;
    }
}

/* Read tier k: its readings into the devices'. RESULT_OK (also when the GX refused some), or
 * the link's failure. */
static enum result gx_read_tier(struct gx *gx, size_t k)
{
    struct victron_tier *t = &gx->plan->tiers[k];
    struct gx_pass p = {gx, t};
    const struct regmap_sink sink = {t->values, gx_on_text, gx_on_block, &p};
    enum result r;

    r = regmap_read(&t->map, t->st, REGMAP_POLL, gx_map_read, gx, &sink);
    if (r != RESULT_OK && r != RESULT_REFUSED)
        return r;
    for (size_t i = 0; i < t->map.n_defs; i++)
        gx->kids[t->origin[i].dev]->dev.values[t->origin[i].def] = t->values[i];
    return RESULT_OK;
}

void gx_post_child(struct gx *gx, struct gx_child *c)
{
    unsigned had = log_release(&c->dev.throttle);

    if (had || c->absent)
        log_msg(LOG_LVL_NOTICE, "%s: answering again", c->dev.name);
    c->dev.failures = 0;
    c->dev.last_good_s = gx->now;
    c->absent = false;
    c->answered = true;
    publisher_post_good(gx->pub, &c->dev, gx->now);
}

/* Each device's outcome of the cycle. */
static void gx_post_children(struct gx *gx)
{
    for (size_t i = 0; i < gx->n_kids; i++) {
        struct gx_child *c = gx->kids[i];
        if (c->id_changed) {
            publisher_post_identity(gx->pub, &c->dev);
            c->id_changed = false;
        }
        if (c->seen) {
            c->dev.polls++;
            if (!c->answered) /* before the publisher announces it */
                gx_child_controls(gx, c);
            gx_post_child(gx, c);
        } else if (c->gone) {
            /* 0x0A: the device is not there (switched off, away for the night, moved). */
            c->dev.polls++;
            c->dev.errors[RESULT_REFUSED]++;
            if (!c->absent && c->answered)
                log_msg(LOG_LVL_NOTICE,
                        "%s: the GX has no %s at unit %u any more (exception 0x0A): offline",
                        c->dev.name, c->svc->name, c->unit);
            c->dev.failures = c->dev.failures + 1 > (unsigned)c->dev.bus->offline_after
                                  ? c->dev.failures + 1
                                  : (unsigned)c->dev.bus->offline_after;
            if (c->answered && !c->absent && !gx->sweeping)
                gx->last_sweep = -INFINITY; /* look for it elsewhere */
            c->absent = true;
            publisher_post_failed(gx->pub, &c->dev, RESULT_REFUSED);
        } else if (c->answered && !c->absent) {
            gx_post_child(gx, c); /* none of its blocks this cycle: as it was */
        }
        c->seen = c->gone = false;
    }
}

/* The line failed (cause r): the GX and its devices did not answer this cycle. */
static void gx_failed(struct gx *gx, enum result r)
{
    struct device *d = gx->self;

    d->polls++;
    d->failures++;
    d->errors[r]++;
    if (log_complain(&d->throttle, result_name(r)))
        log_msg(LOG_LVL_WARNING, "bus %s: GX at %s: %s", d->bus->name, d->link->port,
                d->link->what[0] ? d->link->what : result_name(r));
    publisher_post_failed(gx->pub, d, r);
    for (size_t i = 0; i < gx->n_kids; i++) {
        struct gx_child *c = gx->kids[i];
        c->seen = c->gone = false;
        if (!c->answered)
            continue;
        c->dev.polls++;
        c->dev.failures++;
        c->dev.errors[r]++;
        publisher_post_failed(gx->pub, &c->dev, r);
    }
}

static double gx_cpu_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The AC phases of the inverter/chargers (register 28 of vebus: /Ac/NumberOfPhases). */
static void gx_phases(struct gx *gx)
{
    for (size_t i = 0; i < gx->n_kids; i++) {
        struct gx_child *c = gx->kids[i];
        int k = reading_find(c->dev.defs, c->dev.n_defs, "ac_number_of_phases");
        if (k >= 0 && isfinite(c->dev.values[k]) && c->dev.values[k] >= 1 && c->dev.values[k] <= 3)
            gx->phases = (unsigned)c->dev.values[k];
    }
}

/* One poll of the GX. */
static void gx_cycle(struct gx *gx)
{
    struct device *d = gx->self;
    double t0 = gx->loop->now(gx->loop->ctx), cpu0 = gx_cpu_s();
    enum result r;

    gx->now = t0;
    gx->cycle_requests = 0;
    if (d->link->opens != gx->link_opens) {
        gx->link_opens = d->link->opens;
        gx->identified = false;
    }
    if (!gx->identified && (r = gx_identify(gx)) != RESULT_OK) {
        gx_failed(gx, r);
        return;
    }
    if ((!gx->plan || gx->rescan) && (r = gx_discover(gx)) != RESULT_OK) {
        gx_failed(gx, r);
        return;
    }
    gx->cycle_requests = 0;
    size_t from = 0, to = 0, extra = victron_plan_next(gx->plan);
    if (gx->full_pass)
        to = gx->plan->n_tiers - 1;
    for (size_t k = from; k <= to; k++)
        if ((r = gx_read_tier(gx, k)) != RESULT_OK) {
            gx_failed(gx, r);
            return;
        }
    if (!gx->full_pass && extra && (r = gx_read_tier(gx, extra)) != RESULT_OK) {
        gx_failed(gx, r);
        return;
    }
    gx->full_pass = false;
    unsigned requests = gx->cycle_requests;
    gx_phases(gx);
    gx_post_children(gx);
    if (gx->plan && victron_plan_refused(gx->plan, NULL, 0) != gx->refused_saved)
        gx_cache_save(gx, gx_unix_now());
    gx->cycle_requests = 0;
    gx_sweep(gx);
    unsigned had = log_release(&d->throttle);
    if (had)
        log_msg(LOG_LVL_NOTICE, "bus %s: GX answering again after %u failed polls", d->bus->name,
                had);
    d->polls++;
    d->failures = 0;
    d->last_good_s = gx->now;
    d->values[GX_R_REQUESTS] = requests;
    d->values[GX_R_DEVICES] = (double)gx->n_kids;
    d->values[GX_R_DURATION] = gx->loop->now(gx->loop->ctx) - t0;
    d->values[GX_R_SCAN] = gx->scan_requests ? (double)gx->scan_requests : NAN;
    publisher_post_good(gx->pub, d, gx->now);
    log_msg(LOG_LVL_DEBUG, "bus %s: poll: %u requests, %.3f ms CPU", d->bus->name, requests,
            (gx_cpu_s() - cpu0) * 1e3);
}

/* ---- the bus ----------------------------------------------------------------------------- */

static void gx_run(struct device *d, struct publisher *pub, const struct bus_loop *loop)
{
    struct gx *gx = d->bus_state;
    double next;

    if (!gx)
        return;
    gx->pub = pub;
    gx->loop = loop;
    inbox_set_wake(&gx->inbox, loop->kick, loop->ctx);
    next = loop->now(loop->ctx);
    for (;;) {
        if (loop->stopping(loop->ctx))
            break;
        gx_cycle(gx);
        if (loop->once)
            break;
        next += d->bus->poll_interval_s;
        if (next < loop->now(loop->ctx))
            next = loop->now(loop->ctx);
        /* Between polls: commands, as they come (a kick) or when their register is due. */
        bool stop = false;
        while (!stop) {
            double due = gx_serve_commands(gx);
            if (loop->now(loop->ctx) >= next)
                break;
            stop = loop->sleep_until(loop->ctx, due < next ? due : next);
        }
        if (stop)
            break;
    }
    inbox_set_wake(&gx->inbox, NULL, NULL);
    link_close(d->link);
}

/* A remark of the parser on the build's embedded register table (victron_load_opts.warn). */
static void gx_builtin_note(void *ctx, const char *msg)
{
    const struct device *d = ctx;

    log_msg(LOG_LVL_INFO, "bus %s: built-in register table: %s", d->bus->name, msg);
}

/* The GX's state: the register table (the bus's register_table, or the build's), the scan
 * cache's path. -1 (logged) when the table cannot be loaded. */

static int gx_bus_setup(struct device **devices, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct device *d = devices[i];
        struct gx *gx = calloc(1, sizeof(*gx));
        char err[512];
        int rc;

        if (!gx)
            return -1;
        gx->self = d;
        gx->cfg = &d->bus->gx;
        gx->phases = 1;
        gx->complain.remind_every = 60;
        inbox_init(&gx->inbox);
        /* What the build's own copy of Victron's file holds is no fault the user can mend
         * (its line 730 gives a code twice): noted at info. A file of the user's own warns. */
        const struct victron_load_opts builtin = {gx_builtin_note, d};
        rc = gx->cfg->register_table
                 ? victron_table_load_file(gx->cfg->register_table, NULL, &gx->table, err,
                                           sizeof(err))
                 : victron_table_builtin(&builtin, &gx->table, err, sizeof(err));
        d->bus_state = gx; /* freed by gx_teardown, not by device_teardown's free() */
        gx->hself.gx_name = d->name;
        pthread_mutex_init(&gx->hself.lock, NULL);
        d->ha_style = &ha_victron_gx_style;
        d->ha_ctx = &gx->hself;
        if (rc < 0) {
            log_msg(LOG_LVL_ERROR, "bus %s: register table: %s", d->bus->name, err);
            return -1;
        }
        gx_cache_path(gx);
        log_msg(LOG_LVL_INFO, "bus %s: register table %s (%u values, %zu services)%s%s",
                d->bus->name, gx->table->source, gx->table->n_values, gx->table->n_services,
                gx->cache_path[0] ? "; scan cache " : "", gx->cache_path);
    }
    return 0;
}

static void gx_teardown(struct device *d)
{
    struct gx *gx = d->bus_state;

    if (!gx || d->driver != &victron_gx_driver || gx->self != d)
        return;
    for (size_t i = 0; i < gx->n_kids; i++)
        gx_child_free(gx->kids[i]);
    free(gx->kids);
    victron_plan_free(gx->plan);
    victron_table_free(gx->table);
    inbox_destroy(&gx->inbox);
    pthread_mutex_destroy(&gx->hself.lock);
    free(gx);
    d->bus_state = NULL;
}

const struct driver victron_gx_driver = {
    .name = "victron_gx",
    .title = "Victron GX (Modbus TCP)",
    .name_prefix = "gx",
    .wire = DRIVER_WIRE_MODBUS,
    .default_baud = 9600,
    .addr_min = 1,
    .addr_max = 247,
    .addr_default = GX_UNIT,
    .addr_rule = "1..247 (a Modbus unit id)",
    .kind = DEVICE_SYSTEM,
    .model = "GX device (Venus OS)",
    .manufacturer = "Victron Energy",
    .label = "Victron GX",
    .reports_energy = true,
    .defs = gx_readings,
    .n_defs = &gx_n_readings,
    .bus_setup = gx_bus_setup,
    .bus_run = gx_run,
    .teardown = gx_teardown,
};
