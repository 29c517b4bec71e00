/* SPDX-License-Identifier: MIT */
/* sink.h - where published messages go: the MQTT broker, or stdout for --dry-run. */
#ifndef BMS_SINK_H
#define BMS_SINK_H

#include <stdbool.h>

/*
 * Called only by the thread that owns the publisher (publisher.h): the publisher thread, or
 * the main thread in --dry-run.
 *
 * publish (required): send payload (NUL-terminated; "" removes a retained message) on topic
 * with the given QoS (0 or 1) and retain flag, without blocking on the network. Returns 0,
 * or -1 if the message was dropped (no session, or the client refused it).
 *
 * subscribe (optional): see below.
 *
 * ready (optional, NULL = always): true when a message handed to publish now would be sent:
 * a session is up and the client's queue is below its bound. While it is false the
 * publisher keeps what is due (the newest of each kind, so nothing grows) and hands it over
 * once it turns true again; a new session has everything published again anyway.
 */
struct sink {
    int (*publish)(void *ctx, const char *topic, const char *payload, int qos, bool retain);
    bool (*ready)(void *ctx);
    void *ctx;
    /* optional: subscribe to topic (a filter, QoS 1) in the current session; its messages
     * reach the owner (publisher_command()). Returns 0, or -1 without a session. */
    int (*subscribe)(void *ctx, const char *topic);
};

#endif
