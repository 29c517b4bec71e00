/* SPDX-License-Identifier: MIT */
/* sink.h - where published messages go: the MQTT broker, or stdout for --dry-run. */
#ifndef BMS_SINK_H
#define BMS_SINK_H

#include <stdbool.h>

/*
 * publish (required): send payload (NUL-terminated; "" removes a retained message) on
 * topic with the given QoS (0 or 1) and retain flag. Called from any thread, possibly
 * with the bridge lock held; must not block on the network. Returns 0, or -1 if the
 * message was dropped (not connected): the bridge republishes what matters on connect.
 */
struct sink {
    int (*publish)(void *ctx, const char *topic, const char *payload, int qos, bool retain);
    void *ctx;
};

#endif
