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
 * With TLS (cfg->tls_ca_file) the CA, certificate and key files are read now.
 * Nothing is connected until mqtt_start(). Returns NULL with a logged reason on
 * failure: a TLS file missing or unreadable (named with its config key), not PEM, or a
 * key that does not match its certificate or has a passphrase; out of memory.
 */
struct mqtt *mqtt_new(const struct config_mqtt *cfg, const char *client_id, const char *will_topic,
                      const char *will_payload, const struct mqtt_callbacks *cb, void *ud);

/*
 * Start the MQTT thread: it connects, and whenever the connection fails or is lost it
 * retries with exponential backoff (1 s doubling to 60 s, back to 1 s after a session),
 * for as long as it runs; broker trouble never ends the daemon. An attempt that has no
 * session after 10 s has failed. Every failure path waits out its backoff step (no CPU is
 * used meanwhile) and the next attempt starts when the step ends. Failures are logged
 * (throttled) with their cause: the socket's error, the broker's refusal, the TLS
 * certificate's verify result (unknown CA, host name mismatch, expired, ...) or
 * libmosquitto's own error. Returns 0 or -1 (thread not started).
 */
int mqtt_start(struct mqtt *m);

/* Sink over this client (mqtt_publish). */
struct sink mqtt_sink(struct mqtt *m);

/* Thread-safe publish; see struct sink. Returns 0, or -1 when not connected. */
int mqtt_publish(struct mqtt *m, const char *topic, const char *payload, int qos, bool retain);

/* mqtt_publish(), and the message id in *mid (when mid is not NULL) on success. */
int mqtt_publish_mid(struct mqtt *m, const char *topic, const char *payload, int qos, bool retain,
                     int *mid);

/*
 * Record the message ids the broker acknowledged (QoS 1) or that were written (QoS 0),
 * for mqtt_acked(); call before mqtt_start(). Costs 8 KiB. Returns 0, or -1 when out of
 * memory.
 */
int mqtt_track_acks(struct mqtt *m);

/*
 * True if message id `mid` (from mqtt_publish_mid() with QoS 1) was acknowledged by the
 * broker. Read it after mqtt_stop(). False when tracking is off, and for every id once
 * more than 65534 ids were used (an id may then have served twice).
 */
bool mqtt_acked(struct mqtt *m, int mid);

/* True while a session is established. */
bool mqtt_is_connected(struct mqtt *m);

/*
 * Wait up to timeout_s seconds for a session whose opening messages (status, discovery,
 * availability) are out. Returns true once it is up, false after the timeout.
 */
bool mqtt_wait_connected(struct mqtt *m, double timeout_s);

/*
 * Publish `last_payload` retained on `last_topic` if connected (the clean "offline"),
 * disconnect cleanly, and stop the thread. Returns when the thread has ended.
 */
void mqtt_stop(struct mqtt *m, const char *last_topic, const char *last_payload);

/* Free a stopped (or never started) client. NULL is allowed. */
void mqtt_free(struct mqtt *m);

#endif
