/* SPDX-License-Identifier: MIT */
/* poller_bus.h - internals shared by the poller and the listener (not a public API). */
#ifndef BMS_POLLER_BUS_H
#define BMS_POLLER_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "beat.h"
#include "poller.h"

struct poller_bus {
    struct poller *pl;
    struct device **found; /* packs heard on a listened-to bus, not configured */
    size_t n_found;
    uint32_t unknown_logged[8]; /* slave ids already reported as not configured */
    struct device **packs;
    size_t n;
    pthread_t thread;
    bool started;
    struct beat beat; /* the bus thread's signs of life, read by the watchdog (poller_stuck) */
    /* What the watchdog reads of the bus, set before the thread starts (a listening bus
     * reallocates `packs` as it finds packs). */
    const struct config_bus *cb;
    const char *port;
    bool kicked; /* under pl->lock: a driver that runs its bus has work (bus_loop kick) */
};

struct poller {
    const struct config *cfg;
    struct publisher *pub;
    bool once;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* CLOCK_MONOTONIC: stop requests and bus completion */
    bool stop;
    size_t done; /* buses that finished (with `once`) */
    size_t n_buses;
    struct poller_bus *buses;
    struct timespec t0;
};

/* Monotonic time in seconds. */
double poller_now(void);

/* Sleep until monotonic `until` or a stop request; true if stopping. */
bool poller_sleep(struct poller *pl, double until);

/* True once a stop was requested. */
bool poller_stopping(struct poller *pl);

/* A failed reading of p (cause r): counted, logged with throttling, posted to the publisher. */
void poller_failed(struct device *p, struct publisher *b, enum result r);

/* p->values hold a good reading taken at now_s: logged if it ends failures, posted. */
void poller_good(struct device *p, struct publisher *b, double now_s);

/*
 * Run a listen-only bus until a stop request (or, with `once`, until every pack was heard
 * or three poll periods passed): open the bus's port read-only, split what passes into the
 * frames of bus.protocol (sniff_proto.h), and turn the replies its decoder understands into
 * readings (a pack per address heard, configured or added), partial updates kept for the
 * next reading, and identities; other Modbus register reads are published raw.
 */
void poller_listen(struct poller_bus *bus);

#endif
