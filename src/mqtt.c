/* SPDX-License-Identifier: MIT */
/* mqtt.c - libmosquitto client on its own thread, reconnecting with backoff. */
#include "mqtt.h"

#include <errno.h>
#include <mosquitto.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define MQTT_BACKOFF_MIN_S 1
#define MQTT_BACKOFF_MAX_S 60
#define MQTT_STOP_WAIT_S   5 /* at most this long to deliver what is queued at exit */

struct mqtt {
    struct mosquitto *mosq;
    const struct config_mqtt *cfg;
    struct mqtt_callbacks cb;
    void *ud;
    char *ha_status_topic;
    pthread_t thread;
    bool started;
    atomic_bool stop;
    atomic_bool connected;
    atomic_long outstanding; /* published in this session, not yet written (QoS 0) or
                                acknowledged (QoS 1): what a clean stop waits for */
    int wake_fd;             /* eventfd: stop requests, and output left to the thread */
    bool session_pending;    /* CONNACK arrived: publish the session's opening messages */
    bool ha_online_pending;  /* HA's birth message arrived: publish everything again */
    const char *last_topic;  /* published by the thread when it stops */
    const char *last_payload;
    struct log_throttle complain;
};

/* True in the MQTT thread while the new session's first messages are published. */
static _Thread_local bool mqtt_in_connect;

static void mqtt_on_connect(struct mosquitto *mosq, void *ud, int rc)
{
    struct mqtt *m = ud;

    if (rc != 0) {
        if (log_complain(&m->complain, "refused"))
            log_msg(LOG_LVL_ERROR, "mqtt: broker %s:%d refused the connection: %s", m->cfg->host,
                    m->cfg->port, mosquitto_connack_string(rc));
        return;
    }
    atomic_store(&m->outstanding, 0); /* what was queued in a lost session is gone */
    unsigned failures = log_release(&m->complain);
    log_msg(LOG_LVL_NOTICE, "mqtt: connected to %s:%d%s", m->cfg->host, m->cfg->port,
            failures ? " (reconnected)" : "");
    mosquitto_subscribe(mosq, NULL, m->ha_status_topic, 1);
    /* The opening messages go out after this callback returns (mqtt_after_read): inside
     * it libmosquitto would hold all of them in memory at once. */
    m->session_pending = true;
}

/* Work the callbacks asked for, done outside them so that each message is written as it
 * is published. The session opens with everything (status, discovery, availability,
 * latest states) published from this thread; only then may the pollers publish, so that
 * no state reaches HA before its entity's discovery. */
static void mqtt_after_read(struct mqtt *m)
{
    if (m->session_pending) {
        m->session_pending = false;
        mqtt_in_connect = true;
        if (m->cb.on_connect)
            m->cb.on_connect(m->ud);
        mqtt_in_connect = false;
        atomic_store(&m->connected, true);
    }
    if (m->ha_online_pending) {
        m->ha_online_pending = false;
        if (m->cb.on_ha_status)
            m->cb.on_ha_status(m->ud, true);
    }
}

/* QoS 0: the message was written; QoS 1: the broker acknowledged it. */
static void mqtt_on_publish(struct mosquitto *mosq, void *ud, int mid)
{
    struct mqtt *m = ud;

    (void)mosq;
    (void)mid;
    atomic_fetch_sub(&m->outstanding, 1);
}

static void mqtt_on_disconnect(struct mosquitto *mosq, void *ud, int rc)
{
    struct mqtt *m = ud;

    (void)mosq;
    atomic_store(&m->connected, false);
    if (rc != 0 && !atomic_load(&m->stop))
        log_msg(LOG_LVL_WARNING, "mqtt: connection to %s:%d lost", m->cfg->host, m->cfg->port);
}

static void mqtt_on_message(struct mosquitto *mosq, void *ud, const struct mosquitto_message *msg)
{
    struct mqtt *m = ud;

    (void)mosq;
    if (strcmp(msg->topic, m->ha_status_topic) != 0 || !m->cb.on_ha_status)
        return;
    /* A retained birth arrives right after subscribing, when everything has just been
     * published: only a live birth message means that HA restarted. */
    if (msg->retain)
        return;
    bool online = msg->payloadlen == 6 && memcmp(msg->payload, "online", 6) == 0;
    log_msg(LOG_LVL_INFO, "mqtt: Home Assistant is %s", online ? "online" : "offline");
    if (online)
        m->ha_online_pending = true; /* republished by mqtt_after_read */
}

struct mqtt *mqtt_new(const struct config_mqtt *cfg, const char *client_id, const char *will_topic,
                      const char *will_payload, const struct mqtt_callbacks *cb, void *ud)
{
    struct mqtt *m = calloc(1, sizeof(*m));
    size_t tlen;

    if (!m)
        return NULL;
    m->wake_fd = -1;
    mosquitto_lib_init();
    m->cfg = cfg;
    m->cb = *cb;
    m->ud = ud;
    m->complain.remind_every = 60;
    tlen = strlen(cfg->discovery_prefix) + sizeof("/status");
    m->ha_status_topic = malloc(tlen);
    m->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    m->mosq = mosquitto_new(client_id, true, m);
    if (!m->mosq || !m->ha_status_topic || m->wake_fd < 0) {
        log_msg(LOG_LVL_ERROR, "mqtt: cannot create client: %s", strerror(errno));
        mqtt_free(m);
        return NULL;
    }
    snprintf(m->ha_status_topic, tlen, "%s/status", cfg->discovery_prefix);
    /* Not mosquitto_threaded_set(): the library then writes a publish to the socket in
     * the publishing (bus) thread itself, so a poll costs no wake-up of the MQTT thread,
     * whose loop (mqtt_thread) watches only the socket. Writes are serialised inside
     * libmosquitto (its out-packet mutexes). */
    /* No in-flight window: QoS 1 messages (discovery, availability) must leave in the
     * order they were published, before the QoS 0 state that follows them. */
    mosquitto_max_inflight_messages_set(m->mosq, 0);
    mosquitto_connect_callback_set(m->mosq, mqtt_on_connect);
    mosquitto_disconnect_callback_set(m->mosq, mqtt_on_disconnect);
    mosquitto_message_callback_set(m->mosq, mqtt_on_message);
    mosquitto_publish_callback_set(m->mosq, mqtt_on_publish);
    if (cfg->username && cfg->username[0])
        mosquitto_username_pw_set(m->mosq, cfg->username, cfg->password);
    mosquitto_will_set(m->mosq, will_topic, (int)strlen(will_payload), will_payload, 1, true);
    if (cfg->tls_ca_file) {
        int rc = mosquitto_tls_set(m->mosq, cfg->tls_ca_file, NULL, cfg->tls_cert_file,
                                   cfg->tls_key_file, NULL);
        if (rc == MOSQ_ERR_SUCCESS)
            rc = mosquitto_tls_insecure_set(m->mosq, cfg->tls_insecure);
        if (rc != MOSQ_ERR_SUCCESS) {
            log_msg(LOG_LVL_ERROR, "mqtt: TLS set-up failed: %s", mosquitto_strerror(rc));
            mqtt_free(m);
            return NULL;
        }
    }
    return m;
}

static void mqtt_wake(struct mqtt *m)
{
    uint64_t one = 1;
    ssize_t w = write(m->wake_fd, &one, sizeof(one));
    (void)w; /* the counter saturating only means a wake-up is pending already */
}

static void mqtt_drain_wake(struct mqtt *m)
{
    uint64_t n;
    ssize_t r = read(m->wake_fd, &n, sizeof(n));
    (void)r;
}

/* Wait up to `s` seconds, or until mqtt_stop() wakes us. */
static void mqtt_backoff_wait(struct mqtt *m, int s)
{
    struct pollfd pfd = {m->wake_fd, POLLIN, 0};

    if (poll(&pfd, 1, s * 1000) > 0)
        mqtt_drain_wake(m);
}

static const char *mqtt_rc_text(int rc)
{
    return rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc);
}

/* One wait on the socket and the wake-up eventfd, then the library's read, write and
 * keepalive work. Returns a MOSQ_ERR_* code; anything but success means no session. */
static int mqtt_step(struct mqtt *m)
{
    int sock = mosquitto_socket(m->mosq);
    /* mosquitto_loop_misc() must run well within the keepalive to send PINGREQ in time. */
    int timeout_ms = m->cfg->keepalive * 1000 / 4;
    struct pollfd pfd[2] = {
        {sock, (short)(POLLIN | (mosquitto_want_write(m->mosq) ? POLLOUT : 0)), 0},
        {m->wake_fd, POLLIN, 0},
    };
    int rc = MOSQ_ERR_SUCCESS;

    if (sock < 0)
        return MOSQ_ERR_NO_CONN;
    if (poll(pfd, 2, timeout_ms) < 0 && errno != EINTR)
        return MOSQ_ERR_ERRNO;
    if (pfd[1].revents & POLLIN)
        mqtt_drain_wake(m);
    if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))
        rc = mosquitto_loop_read(m->mosq, 1);
    if (rc == MOSQ_ERR_SUCCESS)
        mqtt_after_read(m);
    if (rc == MOSQ_ERR_SUCCESS && mosquitto_want_write(m->mosq))
        rc = mosquitto_loop_write(m->mosq, 1);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_loop_misc(m->mosq);
    return rc;
}

static double mqtt_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Serve the socket until done(m) or the deadline (monotonic s); false on a dead socket. */
static bool mqtt_drain(struct mqtt *m, double deadline, bool (*done)(struct mqtt *m))
{
    while (!done(m)) {
        int sock = mosquitto_socket(m->mosq);
        double left = deadline - mqtt_now();
        struct pollfd pfd = {sock, (short)(POLLIN | (mosquitto_want_write(m->mosq) ? POLLOUT : 0)),
                             0};
        if (sock < 0 || left <= 0)
            return false;
        if (poll(&pfd, 1, (int)(left * 1000) + 1) < 0 && errno != EINTR)
            return false;
        if ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) &&
            mosquitto_loop_read(m->mosq, 1) != MOSQ_ERR_SUCCESS)
            return false;
        if (mosquitto_want_write(m->mosq) && mosquitto_loop_write(m->mosq, 1) != MOSQ_ERR_SUCCESS)
            return false;
    }
    return true;
}

static bool mqtt_all_delivered(struct mqtt *m)
{
    return atomic_load(&m->outstanding) <= 0 && !mosquitto_want_write(m->mosq);
}

static bool mqtt_socket_closed(struct mqtt *m)
{
    return mosquitto_socket(m->mosq) < 0;
}

/*
 * A clean stop: the last message (retained "offline"), then wait until everything
 * queued is written and every QoS 1 message acknowledged, then DISCONNECT, so that the
 * broker neither loses the burst in flight nor fires the last will. Bounded by
 * MQTT_STOP_WAIT_S in all.
 */
static void mqtt_finish(struct mqtt *m)
{
    double deadline = mqtt_now() + MQTT_STOP_WAIT_S;

    if (atomic_load(&m->connected)) {
        if (m->last_topic)
            mqtt_publish(m, m->last_topic, m->last_payload, 1, true);
        if (!mqtt_drain(m, deadline, mqtt_all_delivered))
            log_msg(LOG_LVL_WARNING, "mqtt: stopping with %ld message(s) not delivered",
                    atomic_load(&m->outstanding));
    }
    atomic_store(&m->connected, false);
    mosquitto_disconnect(m->mosq);
    mqtt_drain(m, deadline, mqtt_socket_closed);
}

static void *mqtt_thread(void *arg)
{
    struct mqtt *m = arg;
    int backoff = MQTT_BACKOFF_MIN_S;
    int rc = mosquitto_connect_async(m->mosq, m->cfg->host, m->cfg->port, m->cfg->keepalive);

    while (!atomic_load(&m->stop)) {
        if (rc == MOSQ_ERR_SUCCESS)
            rc = mqtt_step(m);
        if (rc == MOSQ_ERR_SUCCESS) {
            if (atomic_load(&m->connected))
                backoff = MQTT_BACKOFF_MIN_S;
            continue;
        }
        if (atomic_load(&m->stop))
            break;
        atomic_store(&m->connected, false);
        if (log_complain(&m->complain, "down"))
            log_msg(LOG_LVL_WARNING,
                    "mqtt: cannot reach broker %s:%d: %s; retrying (backoff up to %d s)",
                    m->cfg->host, m->cfg->port, mqtt_rc_text(rc), MQTT_BACKOFF_MAX_S);
        mqtt_backoff_wait(m, backoff);
        backoff = backoff * 2 > MQTT_BACKOFF_MAX_S ? MQTT_BACKOFF_MAX_S : backoff * 2;
        if (!atomic_load(&m->stop))
            rc = mosquitto_reconnect_async(m->mosq);
    }
    mqtt_finish(m);
    return NULL;
}

int mqtt_start(struct mqtt *m)
{
    if (pthread_create(&m->thread, NULL, mqtt_thread, m) != 0)
        return -1;
    m->started = true;
    return 0;
}

int mqtt_publish(struct mqtt *m, const char *topic, const char *payload, int qos, bool retain)
{
    if (!atomic_load(&m->connected) && !mqtt_in_connect)
        return -1;
    /* Counted before: a QoS 0 message may be written, and counted off, inside the call. */
    atomic_fetch_add(&m->outstanding, 1);
    int rc = mosquitto_publish(m->mosq, NULL, topic, (int)strlen(payload), payload, qos, retain);
    if (rc != MOSQ_ERR_SUCCESS)
        atomic_fetch_sub(&m->outstanding, 1);
    /* The library wrote what the socket took; a rest (a full socket buffer, or a message
     * queued while a callback runs) is the MQTT thread's to send. */
    if (rc == MOSQ_ERR_SUCCESS && mosquitto_want_write(m->mosq))
        mqtt_wake(m);
    return rc == MOSQ_ERR_SUCCESS ? 0 : -1;
}

static int mqtt_sink_publish(void *ctx, const char *topic, const char *payload, int qos,
                             bool retain)
{
    return mqtt_publish(ctx, topic, payload, qos, retain);
}

struct sink mqtt_sink(struct mqtt *m)
{
    struct sink s = {mqtt_sink_publish, m};
    return s;
}

bool mqtt_is_connected(struct mqtt *m)
{
    return atomic_load(&m->connected);
}

void mqtt_stop(struct mqtt *m, const char *last_topic, const char *last_payload)
{
    if (!m || !m->started)
        return;
    m->last_topic = last_topic;
    m->last_payload = last_payload;
    atomic_store(&m->stop, true);
    mqtt_wake(m);
    pthread_join(m->thread, NULL);
    m->started = false;
}

void mqtt_free(struct mqtt *m)
{
    if (!m)
        return;
    if (m->mosq)
        mosquitto_destroy(m->mosq);
    if (m->wake_fd >= 0)
        close(m->wake_fd);
    free(m->ha_status_topic);
    free(m);
    mosquitto_lib_cleanup();
}
