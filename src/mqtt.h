/* SPDX-License-Identifier: MIT */
/* mqtt.h - the MQTT client: connect, last will, reconnect with backoff, HA birth. */
#ifndef BMS_MQTT_H
#define BMS_MQTT_H

#include <stdbool.h>

#include "config.h"
#include "sink.h"

/* Called from the MQTT thread. */
struct mqtt_callbacks {
    void (*on_connect)(void *ud);                /* a session is up: publish everything */
    void (*on_ha_status)(void *ud, bool online); /* <discovery_prefix>/status arrived */
};

struct mqtt;

/*
 * Create a client for cfg (host, port, credentials, TLS, keepalive) with client id
 * `client_id`, whose last will is `will_payload` retained on `will_topic` (QoS 1).
 * Nothing is connected until mqtt_start(). Returns NULL with a logged reason on
 * failure (bad TLS files, out of memory).
 */
struct mqtt *mqtt_new(const struct config_mqtt *cfg, const char *client_id, const char *will_topic,
                      const char *will_payload, const struct mqtt_callbacks *cb, void *ud);

/*
 * Start the MQTT thread: it connects, and whenever the connection fails or is lost it
 * retries with exponential backoff (1 s doubling to 60 s), for as long as it runs;
 * broker trouble never ends the daemon. Returns 0 or -1 (thread not started).
 */
int mqtt_start(struct mqtt *m);

/* Sink over this client (mqtt_publish). */
struct sink mqtt_sink(struct mqtt *m);

/* Thread-safe publish; see struct sink. Returns 0, or -1 when not connected. */
int mqtt_publish(struct mqtt *m, const char *topic, const char *payload, int qos, bool retain);

/* True while a session is established. */
bool mqtt_is_connected(struct mqtt *m);

/*
 * Publish `last_payload` retained on `last_topic` if connected (the clean "offline"),
 * disconnect cleanly, and stop the thread. Returns when the thread has ended.
 */
void mqtt_stop(struct mqtt *m, const char *last_topic, const char *last_payload);

/* Free a stopped (or never started) client. NULL is allowed. */
void mqtt_free(struct mqtt *m);

#endif
