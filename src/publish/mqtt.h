/* SPDX-License-Identifier: MIT */
/* mqtt.h - the MQTT client: connect, last will, reconnect with backoff, HA birth. */
#ifndef BMS_MQTT_H
#define BMS_MQTT_H

#include <stdatomic.h>
#include <stdbool.h>

#include "config.h"
#include "sink.h"

/*
 * One thread owns a client: it calls mqtt_new(), mqtt_run() and mqtt_free(), and every
 * other function here; libmosquitto's callbacks, and so these, run inside mqtt_run() on
 * that thread. No other thread touches the client (libmosquitto is not used in its
 * threaded mode). The owner's own work (publishing) is done in the callbacks below.
 */
struct mqtt_callbacks {
    /* A session is up: publish its opening messages (mqtt_publish() works from now on). */
    void (*on_connect)(void *ud);
    /* Home Assistant's birth message (<discovery_prefix>/status "online", not retained). */
    void (*on_ha_online)(void *ud);
    /* wake_fd became readable, or (after it returned true) the client's queue moved: do
     * the owner's work, which must read wake_fd. Returns true while it keeps messages
     * waiting for mqtt_ready(). Called in every state: attempt, session, backoff. */
    bool (*on_work)(void *ud);
    /* The session that on_connect opened has ended (connection lost, or refused by the
     * broker later); not called at the clean stop. May be NULL. */
    void (*on_disconnect)(void *ud);
    /* optional: a message on a topic the owner subscribed to (mqtt_subscribe()), payload
     * payload[0..len) (not NUL-terminated). */
    void (*on_message)(void *ud, const char *topic, const void *payload, size_t len);
};

struct mqtt;

/*
 * Create a client for cfg (host, port, protocol version, credentials, TLS, keepalive) with
 * client id `client_id`, whose last will is `will_payload` retained on `will_topic` (QoS 1); the
 * same message is published at a clean stop. mqtt_run() watches wake_fd (the owner's,
 * read by on_work) and ends when *stop is true (set it, then make wake_fd readable).
 * With TLS (CONFIG_MQTT_TLS(cfg)) the CA, certificate and key files are read now.
 * Nothing is connected until mqtt_run(). Returns NULL with a logged reason on failure: a
 * TLS file missing or unreadable (named with its config key), not PEM, or a key that does
 * not match its certificate or has a passphrase; out of memory.
 */
struct mqtt *mqtt_new(const struct config_mqtt *cfg, const char *client_id, const char *will_topic,
                      const char *will_payload, int wake_fd, const atomic_bool *stop,
                      const struct mqtt_callbacks *cb, void *ud);

/*
 * Run the client until *stop: connect, and whenever the connection fails or is lost retry
 * with exponential backoff (1 s doubling to 60 s, back to 1 s after a session), for as long
 * as it runs; broker trouble never ends the daemon. An attempt that has no session after
 * 10 s has failed. Every failure path waits out its backoff step (no CPU is used meanwhile)
 * and the next attempt starts when the step ends. Failures are logged (throttled) with
 * their cause: the socket's error, the broker's refusal, the TLS certificate's verify
 * result (unknown CA, host name mismatch, expired, ...) or libmosquitto's own error.
 * Then the clean stop: on_work once more; with a session, what the owner keeps waiting is
 * handed over, the last will's message published, everything queued written and every QoS
 * 1 message acknowledged (at most 5 s in all), then DISCONNECT (so the will is not fired).
 */
void mqtt_run(struct mqtt *m);

/* Subscribe to topic (a filter) with QoS 1 in the current session. Returns 0, or -1 without
 * a session or when the library refused it. A new session needs it again. */
int mqtt_subscribe(struct mqtt *m, const char *topic);

/* Sink over this client: mqtt_publish(), mqtt_ready() and mqtt_subscribe(). */
struct sink mqtt_sink(struct mqtt *m);

/*
 * Publish now (the library writes what the socket takes; the rest is written by
 * mqtt_run()). Returns 0, or -1 without a session or when the library refused it.
 */
int mqtt_publish(struct mqtt *m, const char *topic, const char *payload, int qos, bool retain);

/* mqtt_publish(), and the message id in *mid (when mid is not NULL) on success. */
int mqtt_publish_mid(struct mqtt *m, const char *topic, const char *payload, int qos, bool retain,
                     int *mid);

/*
 * True when a message published now would go out: a session is up and fewer than
 * MQTT_QUEUE_MAX messages wait in the client (QoS 0 not yet written, QoS 1 not yet
 * acknowledged, which libmosquitto keeps and resends across sessions). This bounds the
 * client's memory whatever the broker does. With MQTT 5, also fewer QoS 1 messages
 * unacknowledged than the broker's Receive Maximum: beyond it libmosquitto would hold a
 * QoS 1 message back while a QoS 0 one published after it went out first.
 */
#define MQTT_QUEUE_MAX 256
bool mqtt_ready(struct mqtt *m);

/*
 * Record the message ids the broker acknowledged (QoS 1) or that were written (QoS 0),
 * for mqtt_acked(); call before mqtt_run(). Costs 8 KiB. Returns 0, or -1 when out of
 * memory.
 */
int mqtt_track_acks(struct mqtt *m);

/*
 * True if message id `mid` (from mqtt_publish_mid() with QoS 1) was acknowledged by the
 * broker. Read it after mqtt_run(). False when tracking is off, and for every id once
 * more than 65534 ids were used (an id may then have served twice).
 */
bool mqtt_acked(struct mqtt *m, int mid);

/* True while a session is up (CONNACK accepted, no disconnect since). */
bool mqtt_connected(const struct mqtt *m);

/* Free the client (after mqtt_run(), or instead of it). NULL is allowed. */
void mqtt_free(struct mqtt *m);

#endif
