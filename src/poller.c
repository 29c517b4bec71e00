/* SPDX-License-Identifier: MIT */
/* poller.c - per-bus threads that poll packs on schedule and hand results to the bridge. */
#include "poller.h"

#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "lp4v2.h"
#include "rtu_sniff.h"

struct poller_bus {
    struct poller *pl;
    size_t cap;          /* room in packs[] */
    struct pack **found; /* packs heard on a listened-to bus, not configured */
    size_t n_found;
    uint32_t unknown_logged[8]; /* slave ids already reported as not configured */
    struct pack **packs;
    size_t n;
    pthread_t thread;
    bool started;
};

struct poller {
    const struct config *cfg;
    struct bridge *bridge;
    bool once;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* CLOCK_MONOTONIC: stop requests and bus completion */
    bool stop;
    size_t done; /* buses that finished (with `once`) */
    size_t n_buses;
    struct poller_bus *buses;
    struct timespec t0;
};

static double poller_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *pack_port(const struct pack *p)
{
    return p->link ? p->link->port : p->raw ? p->raw->port : "(simulated)";
}

static const char *pack_what(const struct pack *p)
{
    return p->link ? p->link->what : p->raw ? p->raw->what : "simulated";
}

/* Opens of the pack's port so far: a change means a new connection. */
static unsigned long pack_opens(const struct pack *p)
{
    return p->link ? p->link->opens : p->raw ? p->raw->opens : 0;
}

static void poller_identify(struct pack *p, struct bridge *b, double now_s)
{
    enum mb_result r = p->driver->identify(p, now_s);

    if (r == MB_ERR_TIMEOUT || r == MB_ERR_IO || r == MB_ERR_OPEN)
        return; /* no answer at all: try again after the next good poll */
    p->need_identity = false;
    if (r != MB_OK) {
        log_msg(LOG_LVL_NOTICE,
                "pack %s: identity not readable (%s); polling without model, firmware and "
                "serial",
                p->name, pack_what(p));
        return;
    }
    log_msg(LOG_LVL_INFO, "pack %s: model '%s', firmware '%s', serial '%s'", p->name, p->id.model,
            p->id.firmware, p->id.serial);
    bridge_pack_identity(b, p);
}

/* Integrate the pack's power into its counters, and publish them with this poll. */
static void poller_energy(struct pack *p, double now_s)
{
    double c, d;
    double interval = p->energy_interval_s > 5.0 / 3 ? p->energy_interval_s : 5.0 / 3;

    if (p->idx_power < 0 || p->idx_charged < 0 || p->idx_discharged < 0)
        return;
    /* Integrate across up to three poll periods (never less than 5 s): a longer silence
     * is a gap in the data, not a period of constant power. */
    energy_update(&p->energy, now_s, p->values[p->idx_power], 3 * interval);
    energy_get(&p->energy, &c, &d);
    p->values[p->idx_charged] = reading_round(c, p->defs[p->idx_charged].precision);
    p->values[p->idx_discharged] = reading_round(d, p->defs[p->idx_discharged].precision);
}

static void poller_failed(struct pack *p, struct bridge *b, enum mb_result r)
{
    const char *cause = mb_result_name(r);
    bool same = strcmp(p->throttle.category, cause) == 0;
    const char *what = r == MB_ERR_ZERO ? "registers 0-18 all zero (an aggregated master map?); "
                                          "nothing published"
                       : p->link        ? p->link->what
                                        : "simulated";

    p->errors[r]++;
    p->failures++;
    if (log_complain(&p->throttle, cause)) {
        if (same)
            log_msg(LOG_LVL_WARNING,
                    "pack %s (slave 0x%02x on %s): still failing after %u polls: %s", p->name,
                    (unsigned)p->slave, pack_port(p), p->failures, what);
        else
            log_msg(LOG_LVL_WARNING, "pack %s (slave 0x%02x on %s): %s", p->name,
                    (unsigned)p->slave, pack_port(p), what);
    }
    bridge_pack_failed(b, p);
}

/* p->values hold a good reading: count it, integrate energy, publish. */
static void poller_good(struct pack *p, struct bridge *b, double now_s)
{
    poller_energy(p, now_s);
    unsigned had = log_release(&p->throttle);
    if (had)
        log_msg(LOG_LVL_NOTICE, "pack %s: answering again after %u failed polls", p->name, had);
    p->failures = 0;
    p->last_good_s = now_s;
    bridge_pack_good(b, p, p->values);
}

enum mb_result poller_poll_pack(struct pack *p, struct bridge *b, double now_s)
{
    enum mb_result r;

    p->polls++;
    r = p->driver->poll(p, p->values, now_s);
    if (pack_opens(p) != p->link_opens) {
        p->link_opens = pack_opens(p);
        p->need_identity = true; /* a new connection: the pack may have been swapped */
    }
    if (r != MB_OK) {
        poller_failed(p, b, r);
        return r;
    }
    if (p->need_identity && p->driver->identify)
        poller_identify(p, b, now_s);
    poller_good(p, b, now_s);
    return r;
}

static struct timespec poller_ts(double t)
{
    struct timespec ts;

    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Sleep until monotonic time `until` or a stop request. Returns true if stopping. */
static bool poller_sleep(struct poller *pl, double until)
{
    struct timespec ts = poller_ts(until);
    bool stop;

    pthread_mutex_lock(&pl->lock);
    /* Back to back (poll_interval_s 0) the deadline has passed already: no timed wait. */
    while (!pl->stop && until > poller_now())
        if (pthread_cond_timedwait(&pl->wake, &pl->lock, &ts) == ETIMEDOUT)
            break;
    stop = pl->stop;
    pthread_mutex_unlock(&pl->lock);
    return stop;
}

static bool poller_stopping(struct poller *pl)
{
    pthread_mutex_lock(&pl->lock);
    bool stop = pl->stop;
    pthread_mutex_unlock(&pl->lock);
    return stop;
}

/* ---- listen-only (bus.mode passive) ------------------------------------------------ */

struct poller_listen {
    struct poller_bus *bus;
    double now_s;
};

static struct pack *poller_pack_at(struct poller_bus *bus, uint8_t slave)
{
    for (size_t i = 0; i < bus->n; i++)
        if (bus->packs[i]->slave == slave)
            return bus->packs[i];
    return NULL;
}

#define POLLER_MAX_FOUND 32 /* packs a listener adds by itself, per bus */

/* The pack of a slave heard answering LP4V2 reads that no configured pack has: named
 * as the eg4-battery script named them, lifepower4_addr_<id in hex>. NULL past the limit
 * or when out of memory. */
static struct pack *poller_found_pack(struct poller_bus *bus, uint8_t slave, double now_s)
{
    struct pack *p = NULL, **found = NULL, **packs = NULL;
    char *name = malloc(32);

    if (bus->n_found < POLLER_MAX_FOUND && name && (p = calloc(1, sizeof(*p))) &&
        (found = realloc(bus->found, (bus->n_found + 1) * sizeof(*found))) &&
        (bus->found = found, packs = realloc(bus->packs, (bus->n + 1) * sizeof(*packs)))) {
        bus->packs = packs;
        snprintf(name, 32, "lifepower4_addr_%02x", slave);
        if (pack_setup(p, name, &lp4v2_driver, slave, bus->pl->cfg) == 0 &&
            bridge_add_pack(bus->pl->bridge, p) == 0) {
            p->raw = bus->packs[0]->raw;
            p->last_good_s = now_s;
            p->owned_name = name;
            bus->found[bus->n_found++] = p;
            bus->packs[bus->n++] = p;
            log_msg(LOG_LVL_NOTICE, "%s: slave 0x%02x answers LP4V2 reads; publishing it as %s",
                    p->raw->port, slave, name);
            return p;
        }
        pack_teardown(p);
    }
    free(p);
    free(name);
    return NULL;
}

/* A read that is not a pack's block, published raw by absolute register address. */
static void poller_heard_raw(struct poller_bus *bus, const struct rtu_exchange *x,
                             const struct pack *p)
{
    char name[32], json[2048];
    size_t off;

    if (p)
        snprintf(name, sizeof(name), "%s", p->name);
    else
        snprintf(name, sizeof(name), "lifepower4_addr_%02x", x->slave);
    off = (size_t)snprintf(json, sizeof(json), "{\"slave\":%u,\"function\":%u,\"registers\":{",
                           x->slave, x->function);
    for (size_t i = 0; i < x->n_registers && off + 24 < sizeof(json); i++)
        off += (size_t)snprintf(json + off, sizeof(json) - off, "%s\"%u\":%u", i ? "," : "",
                                (unsigned)(x->start + i), x->registers[i]);
    snprintf(json + off, sizeof(json) - off, "}}");
    bridge_publish_raw(bus->pl->bridge, name, json);
}

/* One exchange seen on the bus: an LP4V2 block read (start 0, 39 registers or more)
 * becomes the reading of the slave's pack (configured, or added on first sight); any
 * other register read is published raw. */
static void poller_heard(const struct rtu_exchange *x, void *ud)
{
    struct poller_listen *ls = ud;
    struct poller_bus *bus = ls->bus;
    struct pack *p;
    char line[200];

    if (log_enabled(LOG_LVL_DEBUG)) {
        rtu_sniff_describe(x, line, sizeof(line));
        log_msg(LOG_LVL_DEBUG, "%s: %s", bus->packs[0]->raw->port, line);
    }
    if (x->kind != RTU_SNIFF_RESPONSE || !x->paired || (x->function != 0x03 && x->function != 0x04))
        return;
    p = poller_pack_at(bus, x->slave);
    bool block = x->function == 0x03 && x->start == 0 && x->n_registers >= LP4V2_DOC_COUNT;
    if (!block) {
        poller_heard_raw(bus, x, p);
        return;
    }
    if (!p && !(p = poller_found_pack(bus, x->slave, ls->now_s))) {
        if (!(bus->unknown_logged[x->slave / 32] & (1u << (x->slave % 32))))
            log_msg(LOG_LVL_WARNING, "%s: slave 0x%02x answers LP4V2 reads but cannot be added",
                    bus->packs[0]->raw->port, x->slave);
        bus->unknown_logged[x->slave / 32] |= 1u << (x->slave % 32);
        return;
    }
    p->polls++;
    if (lp4v2_decode(x->registers, x->n_registers, p->values) < 0) {
        poller_failed(p, bus->pl->bridge, MB_ERR_ZERO);
        return;
    }
    poller_good(p, bus->pl->bridge, ls->now_s);
}

/* Packs the master has not read for offline_after poll periods are offline. */
static void poller_listen_stale(struct poller_bus *bus, double now_s)
{
    const struct config *cfg = bus->pl->cfg;
    double period = cfg->bus.poll_interval_s > 1 ? cfg->bus.poll_interval_s : 1;

    for (size_t i = 0; i < bus->n; i++) {
        struct pack *p = bus->packs[i];
        if (now_s - p->last_good_s < period * (p->failures + 1))
            continue;
        snprintf(p->raw->what, sizeof(p->raw->what), "not read by the bus master lately");
        poller_failed(p, bus->pl->bridge, MB_ERR_TIMEOUT);
    }
}

static bool poller_all_heard(const struct poller_bus *bus)
{
    for (size_t i = 0; i < bus->n; i++)
        if (bus->packs[i]->failures || !bus->packs[i]->polls)
            return false;
    return true;
}

/* Listen to a bus another master polls. The port is opened read-only: nothing is ever
 * written to it. */
static void poller_listen(struct poller_bus *bus)
{
    struct poller *pl = bus->pl;
    struct ser_link *l = bus->packs[0]->raw;
    struct poller_listen ls = {bus, 0};
    struct rtu_sniff sniff;
    uint8_t buf[256];
    double t0 = (double)pl->t0.tv_sec + pl->t0.tv_nsec / 1e9;

    /* With --once: until every pack has been heard, or three poll periods. */
    double once_until = poller_now() - t0 +
                        3 * (pl->cfg->bus.poll_interval_s > 5 ? pl->cfg->bus.poll_interval_s : 5);

    rtu_sniff_init(&sniff, (unsigned)l->baud);
    for (size_t i = 0; i < bus->n; i++)
        bus->packs[i]->last_good_s = poller_now() - t0;
    while (!poller_stopping(pl)) {
        ls.now_s = poller_now() - t0;
        if (pl->once && (poller_all_heard(bus) || ls.now_s > once_until))
            break;
        if (l->fd < 0 && ser_open(l) != MB_OK) {
            poller_listen_stale(bus, ls.now_s);
            if (poller_sleep(pl, poller_now() + 1))
                break;
            continue;
        }
        ssize_t n = ser_read(l, buf, sizeof(buf), 200);
        ls.now_s = poller_now() - t0;
        if (n > 0) {
            if (l->trace)
                log_hex(l->port, buf, (size_t)n);
            rtu_sniff_feed(&sniff, buf, (size_t)n, ls.now_s, poller_heard, &ls);
        } else if (n == 0) {
            /* The line went quiet: settle what waits for bytes that will not come. */
            rtu_sniff_flush(&sniff, poller_heard, &ls);
        }
        poller_listen_stale(bus, ls.now_s);
    }
    ser_close(l);
}

static void *poller_bus_thread(void *arg)
{
    struct poller_bus *bus = arg;
    struct poller *pl = bus->pl;
    double interval = pl->cfg->bus.poll_interval_s;
    double t0 = (double)pl->t0.tv_sec + pl->t0.tv_nsec / 1e9;
    double next = poller_now();

    if (pl->cfg->bus.mode == CONFIG_MODE_PASSIVE) {
        poller_listen(bus);
        goto done;
    }
    for (;;) {
        for (size_t i = 0; i < bus->n && !poller_stopping(pl); i++)
            poller_poll_pack(bus->packs[i], pl->bridge, poller_now() - t0);
        if (pl->once)
            break;
        /* Fixed cadence; after an overrun start the next cycle at once, without
         * trying to catch up on the missed ones. */
        next += interval;
        double now = poller_now();
        if (next < now)
            next = now;
        if (poller_sleep(pl, next))
            break;
    }
done:
    if (bus->packs[0]->link)
        mb_link_close(bus->packs[0]->link);
    if (bus->packs[0]->raw)
        ser_close(bus->packs[0]->raw);
    pthread_mutex_lock(&pl->lock);
    pl->done++;
    pthread_cond_broadcast(&pl->wake);
    pthread_mutex_unlock(&pl->lock);
    return NULL;
}

/* Packs share a bus when they share a port (link); simulated packs never share. */
static bool poller_same_bus(const struct pack *a, const struct pack *b)
{
    return (a->link && a->link == b->link) || (a->raw && a->raw == b->raw);
}

struct poller *poller_new(const struct config *cfg, struct pack *packs, size_t n, struct bridge *b,
                          bool once)
{
    struct poller *pl = calloc(1, sizeof(*pl));
    pthread_condattr_t ca;

    if (!pl)
        return NULL;
    pl->cfg = cfg;
    pl->bridge = b;
    pl->once = once;
    pl->buses = calloc(n ? n : 1, sizeof(*pl->buses));
    if (!pl->buses) {
        free(pl);
        return NULL;
    }
    pthread_mutex_init(&pl->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&pl->wake, &ca);
    pthread_condattr_destroy(&ca);
    clock_gettime(CLOCK_MONOTONIC, &pl->t0);
    for (size_t i = 0; i < n; i++) {
        struct poller_bus *bus = NULL;
        for (size_t k = 0; k < pl->n_buses && !bus; k++)
            if (poller_same_bus(pl->buses[k].packs[0], &packs[i]))
                bus = &pl->buses[k];
        if (!bus) {
            bus = &pl->buses[pl->n_buses++];
            bus->pl = pl;
            bus->packs = calloc(n, sizeof(*bus->packs));
            if (!bus->packs) {
                poller_free(pl);
                return NULL;
            }
        }
        bus->packs[bus->n++] = &packs[i];
    }
    return pl;
}

int poller_start(struct poller *pl)
{
    for (size_t k = 0; k < pl->n_buses; k++) {
        if (pthread_create(&pl->buses[k].thread, NULL, poller_bus_thread, &pl->buses[k]) != 0)
            return -1;
        pl->buses[k].started = true;
    }
    return 0;
}

void poller_request_stop(struct poller *pl)
{
    pthread_mutex_lock(&pl->lock);
    pl->stop = true;
    pthread_cond_broadcast(&pl->wake);
    pthread_mutex_unlock(&pl->lock);
}

bool poller_wait(struct poller *pl, double timeout_s)
{
    struct timespec until = poller_ts(poller_now() + timeout_s);
    bool done;

    pthread_mutex_lock(&pl->lock);
    for (;;) {
        done = pl->stop || (pl->once && pl->done == pl->n_buses);
        if (done)
            break;
        if (timeout_s <= 0)
            pthread_cond_wait(&pl->wake, &pl->lock);
        else if (pthread_cond_timedwait(&pl->wake, &pl->lock, &until) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&pl->lock);
    return done;
}

void poller_stop(struct poller *pl)
{
    if (!pl)
        return;
    poller_request_stop(pl);
    for (size_t k = 0; k < pl->n_buses; k++) {
        if (pl->buses[k].started)
            pthread_join(pl->buses[k].thread, NULL);
        pl->buses[k].started = false;
    }
}

void poller_free(struct poller *pl)
{
    if (!pl)
        return;
    for (size_t k = 0; k < pl->n_buses; k++) {
        for (size_t i = 0; i < pl->buses[k].n_found; i++) {
            free(pl->buses[k].found[i]->owned_name);
            pack_teardown(pl->buses[k].found[i]);
            free(pl->buses[k].found[i]);
        }
        free(pl->buses[k].found);
        free(pl->buses[k].packs);
    }
    free(pl->buses);
    pthread_mutex_destroy(&pl->lock);
    pthread_cond_destroy(&pl->wake);
    free(pl);
}
