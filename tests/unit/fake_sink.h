/* SPDX-License-Identifier: MIT */
/* fake_sink.h - a sink (sink.h) that records every message, for unit tests of the publisher
 * and the poller. Failed checks fail the running cmocka test. */
#ifndef BMS_FAKE_SINK_H
#define BMS_FAKE_SINK_H

#include <stdbool.h>
#include <stddef.h>

#include "sink.h"

/* One message the publisher handed to the sink (copies). */
struct msg {
    char *topic;
    char *payload;
    int qos;
    bool retain;
};

/* The recorded messages; ready while `budget` is not 0. Zero it, then set budget. */
struct fake {
    struct msg *m;
    size_t n, cap;
    long budget; /* messages it takes before it is not ready; -1 = always ready */
    /* called at every state message, NULL: none (the energy test checks each) */
    void (*on_state)(struct fake *f, const char *topic, const char *payload);
    void *ud;
};

/* The sink recording into f. */
struct sink fake_sink(struct fake *f);

/* Free what f recorded and zero it. */
void fake_free(struct fake *f);

/* Messages on `topic` from index `from`. */
size_t fake_count(const struct fake *f, size_t from, const char *topic);

/* Index of the last message on `topic`, or -1. */
long fake_last(const struct fake *f, const char *topic);

/* Non-empty discovery configs (homeassistant/...) of device `name` from index `from`. */
size_t fake_configs(const struct fake *f, size_t from, const char *name);

/* The number `key` of the last state of device `name` (topic bms2mqtt/<name>/state); NaN
 * when it is null or absent. Fails the test when there is no state. */
double fake_state_value(const struct fake *f, const char *name, const char *key);

#endif
