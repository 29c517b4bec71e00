/* SPDX-License-Identifier: MIT */
/* poller.c - per-bus threads that poll packs on schedule and hand results to the publisher. */
#include "poller.h"

#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "poller_bus.h"

double poller_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *pack_port(const struct device *p)
{
    return p->link->port;
}

static const char *pack_what(const struct device *p)
{
    return p->link->what;
}

/* Opens of the pack's port so far: a change means a new connection. */
static unsigned long pack_opens(const struct device *p)
{
    return p->link->opens;
}

static void poller_identify(struct device *p, struct publisher *b, double now_s)
{
    enum result r = p->driver->identify(p, now_s);

    if (r == RESULT_TIMEOUT || r == RESULT_IO || r == RESULT_OPEN)
        return; /* no answer at all: try again after the next good poll */
    p->need_identity = false;
    if (r != RESULT_OK) {
        log_msg(LOG_LVL_NOTICE,
                "pack %s: identity not readable (%s); polling without model, firmware and "
                "serial",
                p->name, pack_what(p));
        return;
    }
    log_msg(LOG_LVL_INFO, "pack %s: model '%s', firmware '%s', serial '%s'", p->name, p->id.model,
            p->id.firmware, p->id.serial);
    publisher_post_identity(b, p);
}

void poller_failed(struct device *p, struct publisher *b, enum result r)
{
    const char *cause = result_name(r);
    bool same = strcmp(p->throttle.category, cause) == 0;
    const char *what = r == RESULT_ZERO ? "registers 0-18 all zero (an aggregated master map?); "
                                          "nothing published"
                                        : pack_what(p);

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
    publisher_post_failed(b, p, r);
}

/* p->values hold a good reading: count it and hand it to the publisher (which integrates
 * the energy counters from its power and time). */
void poller_good(struct device *p, struct publisher *b, double now_s)
{
    unsigned had = log_release(&p->throttle);
    if (had)
        log_msg(LOG_LVL_NOTICE, "pack %s: answering again after %u failed polls", p->name, had);
    p->failures = 0;
    p->last_good_s = now_s;
    publisher_post_good(b, p, now_s);
}

enum result poller_poll_pack(struct device *p, struct publisher *b, double now_s)
{
    enum result r;

    beat();
    p->polls++;
    r = p->driver->poll(p, p->values, now_s);
    if (pack_opens(p) != p->link_opens) {
        p->link_opens = pack_opens(p);
        p->need_identity = true; /* a new connection: the pack may have been swapped */
    }
    if (r != RESULT_OK) {
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
bool poller_sleep(struct poller *pl, double until)
{
    struct timespec ts = poller_ts(until);
    bool stop;

    /* Asleep on purpose: alive until then, for the watchdog. */
    beat_sleep_until((int64_t)(until * 1000) + 1);
    pthread_mutex_lock(&pl->lock);
    /* Back to back (poll_interval_s 0) the deadline has passed already: no timed wait. */
    while (!pl->stop && until > poller_now())
        if (pthread_cond_timedwait(&pl->wake, &pl->lock, &ts) == ETIMEDOUT)
            break;
    stop = pl->stop;
    pthread_mutex_unlock(&pl->lock);
    beat();
    return stop;
}

bool poller_stopping(struct poller *pl)
{
    pthread_mutex_lock(&pl->lock);
    bool stop = pl->stop;
    pthread_mutex_unlock(&pl->lock);
    return stop;
}

/* ---- a bus its driver runs (driver.h bus_run) ---- */

static double poller_bus_now(void *ctx)
{
    struct poller *pl = ((struct poller_bus *)ctx)->pl;

    return poller_now() - ((double)pl->t0.tv_sec + pl->t0.tv_nsec / 1e9);
}

/* Until `until` (in poller_bus_now's time), a stop, or a kick. */
static bool poller_bus_sleep(void *ctx, double until)
{
    struct poller_bus *bus = ctx;
    struct poller *pl = bus->pl;
    double abs_until = until + ((double)pl->t0.tv_sec + pl->t0.tv_nsec / 1e9);
    struct timespec ts = poller_ts(abs_until);
    bool stop;

    pthread_mutex_lock(&pl->lock);
    while (!pl->stop && !bus->kicked && abs_until > poller_now())
        if (pthread_cond_timedwait(&pl->wake, &pl->lock, &ts) == ETIMEDOUT)
            break;
    bus->kicked = false;
    stop = pl->stop;
    pthread_mutex_unlock(&pl->lock);
    return stop;
}

static bool poller_bus_stopping(void *ctx)
{
    return poller_stopping(((struct poller_bus *)ctx)->pl);
}

static void poller_bus_kick(void *ctx)
{
    struct poller_bus *bus = ctx;

    pthread_mutex_lock(&bus->pl->lock);
    bus->kicked = true;
    pthread_cond_broadcast(&bus->pl->wake);
    pthread_mutex_unlock(&bus->pl->lock);
}

static void *poller_bus_thread(void *arg)
{
    struct poller_bus *bus = arg;
    struct poller *pl = bus->pl;
    const struct config_bus *cb = bus->packs[0]->bus;
    double interval = cb->poll_interval_s;
    double t0 = (double)pl->t0.tv_sec + pl->t0.tv_nsec / 1e9;
    double next = poller_now();

    beat_attach(&bus->beat);
    if (bus->packs[0]->driver->bus_run) {
        const struct bus_loop loop = {poller_bus_now,  poller_bus_sleep, poller_bus_stopping,
                                      poller_bus_kick, pl->once,         bus};
        bus->packs[0]->driver->bus_run(bus->packs[0], pl->pub, &loop);
        goto done;
    }
    if (cb->listen && bus->packs[0]->link->read_only) {
        /* (Simulated packs have no master to listen to: they are polled.) */
        poller_listen(bus);
        goto done;
    }
    for (;;) {
        for (size_t i = 0; i < bus->n && !poller_stopping(pl); i++)
            poller_poll_pack(bus->packs[i], pl->pub, poller_now() - t0);
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
    link_close(bus->packs[0]->link);
    beat_attach(NULL);
    beat_set(&bus->beat, INT64_MAX); /* ended: not stuck */
    pthread_mutex_lock(&pl->lock);
    pl->done++;
    pthread_cond_broadcast(&pl->wake);
    pthread_mutex_unlock(&pl->lock);
    return NULL;
}

/* Packs share a bus when they share a port (link); simulated packs never share. */
static bool poller_same_bus(const struct device *a, const struct device *b)
{
    return a->link == b->link;
}

struct poller *poller_new(const struct config *cfg, struct device *packs, size_t n,
                          struct publisher *b, bool once)
{
    struct poller *pl = calloc(1, sizeof(*pl));
    pthread_condattr_t ca;

    if (!pl)
        return NULL;
    pl->cfg = cfg;
    pl->pub = b;
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
        pl->buses[k].cb = pl->buses[k].packs[0]->bus;
        pl->buses[k].port = pl->buses[k].packs[0]->link->port;
        beat_set(&pl->buses[k].beat, beat_clock_ms());
        if (pthread_create(&pl->buses[k].thread, NULL, poller_bus_thread, &pl->buses[k]) != 0)
            return -1;
        pl->buses[k].started = true;
    }
    return 0;
}

/* The longest one exchange on a bus's line may take (link_exchange(): connect, write and
 * reply each bounded by the response timeout), with a margin. */
static double poller_exchange_bound_s(const struct config_bus *cb)
{
    return 4 * cb->timeout_s + 5;
}

bool poller_stuck(const struct poller *pl, double min_s, char *what, size_t len, double *age_s)
{
    int64_t now = beat_clock_ms();

    for (size_t k = 0; k < pl->n_buses; k++) {
        const struct poller_bus *bus = &pl->buses[k];
        const struct config_bus *cb = bus->cb;
        double bound = poller_exchange_bound_s(cb);
        double age = (double)beat_age_ms(&bus->beat, now) / 1000.0;

        if (!bus->started || age <= (bound > min_s ? bound : min_s))
            continue;
        snprintf(what, len, "bus %s (%s)", cb->name ? cb->name : "bus", bus->port);
        *age_s = age;
        return true;
    }
    return false;
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
            device_teardown(pl->buses[k].found[i]);
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
