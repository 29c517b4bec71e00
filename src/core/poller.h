/* SPDX-License-Identifier: MIT */
/* poller.h - the scheduler: one thread per bus, each polling its packs in turn. */
#ifndef BMS_POLLER_H
#define BMS_POLLER_H

#include <stdbool.h>
#include <stddef.h>

#include "publisher.h"
#include "config.h"
#include "device.h"

struct poller;

/*
 * Group packs[0..n) into buses (packs naming the same port share one bus and are polled
 * one after another; every other pack has a bus of its own) and prepare one thread per
 * bus. A bus polls each of its packs once per bus.poll_interval_s; a pack that does not
 * answer costs its own bus one response timeout and never delays another bus.
 * With `once`, every bus stops after one cycle. Every outcome is handed to publisher b
 * (publisher_post_*(); packs a listening bus finds by itself join it with
 * publisher_add_pack()). Returns NULL when out of memory.
 */
struct poller *poller_new(const struct config *cfg, struct device *packs, size_t n,
                          struct publisher *b, bool once);

/* Start the bus threads. Returns 0, or -1 if a thread could not be created. */
int poller_start(struct poller *pl);

/*
 * The watchdog's question: is a bus thread stuck in a call? Each bus thread beats
 * (beat.h) at every poll, every exchange on its line and every read of a listened-to line,
 * and counts as alive while it sleeps until its next cycle; a poll that fails (timeouts
 * included) is progress too. A bus is stuck when it has shown no life for longer than the
 * larger of min_s and the longest an exchange on it may take (4 x bus.timeout_s + 5 s).
 * Returns true for the first stuck bus, with "bus NAME (PORT)" in what (len bytes) and its
 * seconds without a sign of life in *age_s; false when every bus is alive or has ended.
 * Any thread, once poller_start() has returned.
 */
bool poller_stuck(const struct poller *pl, double min_s, char *what, size_t len, double *age_s);

/* Ask every bus to stop after its current exchange (async-signal context not allowed). */
void poller_request_stop(struct poller *pl);

/* Block until a stop was requested or, with `once`, every bus finished its cycle (returns
 * true), or until timeout_s seconds have passed (returns false; 0 = no timeout). */
bool poller_wait(struct poller *pl, double timeout_s);

/* Stop and join every bus thread, closing their ports. Safe if never started. */
void poller_stop(struct poller *pl);

/* Free a stopped poller. NULL is allowed. */
void poller_free(struct poller *pl);

/*
 * One poll of pack p (used by the bus threads and by --dry-run): ask the driver for its
 * readings, and hand the outcome to publisher b (publisher_post_good() or
 * publisher_post_failed(); it does not wait for the publisher); on a pack's first good poll
 * of a connection also read its identity (publisher_post_identity()). Failures are counted
 * in p->errors, logged with throttling, and never published as values. `now_s` is the
 * monotonic time of the poll (s; the simulated time for mock packs). Returns the result.
 */
enum result poller_poll_pack(struct device *p, struct publisher *b, double now_s);

#endif
