/* SPDX-License-Identifier: MIT */
/* once.h - --once: every configured pack's state delivered with QoS 1, or said which not. */
#ifndef BMS_ONCE_H
#define BMS_ONCE_H

#include <stddef.h>

#include "config.h"
#include "device.h"
#include "mqtt.h"
#include "publisher.h"
#include "sink.h"

/* Exit statuses of --once besides 0 and the start-up errors (doc/bms2mqtt.8.md). */
#define ONCE_EXIT_BROKER 3 /* no session with the broker, or a state it did not acknowledge */
#define ONCE_EXIT_PACKS  4 /* what was polled was delivered, but a pack gave no state */

struct once;

/*
 * The delivery ledger of one --once run over client m for packs[0..n) (kept by
 * reference; their outcomes are asked of publisher pub). Its sink (once_sink()) hands
 * every message to m, each pack's state topic with QoS 1 and its message id noted. Turns
 * on mqtt_track_acks(m): call before mqtt_run(). Like the client, the ledger belongs to
 * the publisher thread. Returns NULL when out of memory.
 */
struct once *once_new(const struct config *cfg, const struct device *packs, size_t n,
                      const struct publisher *pub, struct mqtt *m);

/* The sink the publisher publishes through in a --once run. */
struct sink once_sink(struct once *o);

/*
 * After mqtt_run() (the broker's acknowledgements are all in): log an error naming each
 * pack whose state was not delivered and why (it did not answer its poll, or the broker
 * did not acknowledge its state), from the polls and failures the publisher had from it
 * last. Returns 0 when every pack's state was acknowledged, else ONCE_EXIT_BROKER if a
 * state that was published was not acknowledged, else ONCE_EXIT_PACKS.
 */
int once_report(struct once *o);

/* Free the ledger. NULL is allowed. */
void once_free(struct once *o);

#endif
