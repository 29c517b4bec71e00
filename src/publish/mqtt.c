/* SPDX-License-Identifier: MIT */
/* mqtt.c - libmosquitto client on its own thread, reconnecting with backoff. */
#include "mqtt.h"

#include <errno.h>
#include <mosquitto.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "mqtt_tls.h"

#define MQTT_BACKOFF_MIN_S     1
#define MQTT_BACKOFF_MAX_S     60
#define MQTT_CONNECT_TIMEOUT_S 10 /* an attempt without a session by then has failed */
#define MQTT_STOP_WAIT_S       5  /* at most this long to deliver what is queued at exit */
#define MQTT_CAUSE_MAX         MQTT_TLS_WHY_MAX
#define MQTT_MIDS              65536 /* MQTT message ids are 16 bits */

struct mqtt {
    struct mosquitto *mosq;
    const struct config_mqtt *cfg;
    struct mqtt_callbacks cb;
    void *ud;
    unsigned long sessions; /* sessions established so far (MQTT thread) */
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
    pthread_mutex_t up_lock; /* with up_cond: mqtt_wait_connected() */
    pthread_cond_t up_cond;
    /* Why the current connection attempt failed, for the "cannot reach broker" line; each
     * keeps the first cause of its kind in the attempt. Written by the MQTT thread only. */
    struct mqtt_tls tls;          /* tls.why: the broker's certificate was not accepted */
    char why_net[MQTT_CAUSE_MAX]; /* the socket's error, a refusal, a timeout */
    char why_lib[MQTT_CAUSE_MAX]; /* the first error libmosquitto logged */
    _Atomic uint8_t *acked;       /* mqtt_track_acks(): a bit per message id */
    atomic_ulong mids_used;       /* message ids taken since tracking began */
};

/* True in the MQTT thread while the new session's first messages are published. */
static _Thread_local bool mqtt_in_connect;
/* True in the MQTT thread: only it records why an attempt failed. */
static _Thread_local bool mqtt_on_thread;

static double mqtt_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Record a cause in buf (one of m->why_*) unless it holds one already. */
static void mqtt_why(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mqtt_why(char *buf, const char *fmt, ...)
{
    va_list ap;

    if (buf[0])
        return;
    va_start(ap, fmt);
    vsnprintf(buf, MQTT_CAUSE_MAX, fmt, ap);
    va_end(ap);
}

/* errno values that say why a connection failed (others are not the network's doing). */
static bool mqtt_conn_errno(int e)
{
    return e == ECONNREFUSED || e == ECONNRESET || e == ECONNABORTED || e == ETIMEDOUT ||
           e == EHOSTUNREACH || e == ENETUNREACH || e == EHOSTDOWN || e == ENETDOWN;
}

static void mqtt_on_connect(struct mosquitto *mosq, void *ud, int rc)
{
    struct mqtt *m = ud;

    if (rc != 0) {
        /* libmosquitto ends the attempt after this; the cause goes into its log line. */
        mqtt_why(m->why_net, "the broker refused the connection: %s", mosquitto_connack_string(rc));
        return;
    }
    atomic_store(&m->outstanding, 0); /* what was queued in a lost session is gone */
    log_release(&m->complain);
    log_msg(LOG_LVL_NOTICE, "mqtt: connected to %s:%d%s", m->cfg->host, m->cfg->port,
            m->sessions++ ? " (reconnected)" : "");
    atomic_fetch_add(&m->mids_used, 1);
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
        pthread_mutex_lock(&m->up_lock);
        atomic_store(&m->connected, true);
        pthread_cond_broadcast(&m->up_cond);
        pthread_mutex_unlock(&m->up_lock);
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
    atomic_fetch_sub(&m->outstanding, 1);
    if (m->acked && mid > 0 && mid < MQTT_MIDS)
        atomic_fetch_or(&m->acked[mid >> 3], (uint8_t)(1u << (mid & 7)));
}

static void mqtt_on_disconnect(struct mosquitto *mosq, void *ud, int rc)
{
    struct mqtt *m = ud;

    (void)mosq;
    /* Also called when an attempt fails before its session: only a session is "lost". */
    if (rc != 0 && !atomic_load(&m->stop) && atomic_load(&m->connected))
        log_msg(LOG_LVL_WARNING, "mqtt: connection to %s:%d lost", m->cfg->host, m->cfg->port);
    atomic_store(&m->connected, false);
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

/*
 * libmosquitto's log, set only while an attempt is under way (it formats every message it
 * logs, publishes included). Its errors name TLS failures that reach us as a bare
 * MOSQ_ERR_TLS ("OpenSSL Error[0]: error:0A00010B:SSL routines::wrong version number"):
 * the first one of an attempt is kept, without the OpenSSL error code.
 */
static void mqtt_on_log(struct mosquitto *mosq, void *ud, int level, const char *str)
{
    struct mqtt *m = ud;
    const char *text = str;

    (void)mosq;
    if (!mqtt_on_thread)
        return;
    log_msg(LOG_LVL_DEBUG, "mqtt: libmosquitto: %s", str);
    if (!(level & MOSQ_LOG_ERR))
        return;
    if (strncmp(str, "OpenSSL Error", 13) == 0) {
        const char *reason = strrchr(str, ':');
        text = reason && reason[1] ? reason + 1 : str;
        const char *hint = "";
        if (strstr(text, "wrong version number") || strstr(text, "unexpected eof"))
            hint = " (is the port a TLS listener?)";
        else if (strstr(text, "certificate required"))
            hint = " (the broker wants a client certificate: mqtt.tls_cert_file)";
        mqtt_why(m->why_lib, "TLS: %s%s", text, hint);
        return;
    }
    if (strncmp(text, "Error: ", 7) == 0)
        text += 7;
    mqtt_why(m->why_lib, "%s", text);
}

struct mqtt *mqtt_new(const struct config_mqtt *cfg, const char *client_id, const char *will_topic,
                      const char *will_payload, const struct mqtt_callbacks *cb, void *ud)
{
    struct mqtt *m = calloc(1, sizeof(*m));
    pthread_condattr_t ca;
    size_t tlen;

    if (!m)
        return NULL;
    m->wake_fd = -1;
    mosquitto_lib_init();
    m->cfg = cfg;
    m->cb = *cb;
    m->ud = ud;
    m->complain.remind_every = 60;
    pthread_mutex_init(&m->up_lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->up_cond, &ca);
    pthread_condattr_destroy(&ca);
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
    /* Plain TCP, not mosquitto_threaded_set(): the library then writes a publish to the
     * socket in the publishing (bus) thread itself, so a poll costs no wake-up of the MQTT
     * thread, whose loop (mqtt_thread) watches only the socket. Writes are serialised
     * inside libmosquitto (its out-packet mutexes). With TLS that is not allowed: one
     * OpenSSL session must not write in one thread while it reads in another (it corrupts
     * the session and drops the connection). There mosquitto_threaded_set() makes
     * mosquitto_publish() only queue, and the MQTT thread alone writes (mqtt_publish_mid()
     * wakes it). */
    if (cfg->tls_ca_file)
        mosquitto_threaded_set(m->mosq, true);
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
    if (cfg->tls_ca_file && mqtt_tls_setup(&m->tls, m->mosq, cfg) < 0) {
        mqtt_free(m);
        return NULL;
    }
    return m;
}

int mqtt_track_acks(struct mqtt *m)
{
    m->acked = calloc(MQTT_MIDS / 8, sizeof(*m->acked));
    atomic_store(&m->mids_used, 0);
    return m->acked ? 0 : -1;
}

bool mqtt_acked(struct mqtt *m, int mid)
{
    /* Past 65535 message ids one may have been used twice: then nothing is sure. */
    if (!m->acked || mid <= 0 || mid >= MQTT_MIDS || atomic_load(&m->mids_used) >= MQTT_MIDS - 1)
        return false;
    return (atomic_load(&m->acked[mid >> 3]) >> (mid & 7)) & 1u;
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

/* Wait `s` seconds, or until mqtt_stop(). A wake-up for anything else (output left
 * from a lost session) does not end the wait early. */
static void mqtt_backoff_wait(struct mqtt *m, int s)
{
    double until = mqtt_now() + s;

    while (!atomic_load(&m->stop)) {
        double left = until - mqtt_now();
        struct pollfd pfd = {m->wake_fd, POLLIN, 0};
        if (left <= 0)
            return;
        if (poll(&pfd, 1, (int)(left * 1000) + 1) > 0)
            mqtt_drain_wake(m);
    }
}

static const char *mqtt_rc_text(int rc, int err)
{
    if (rc == MOSQ_ERR_ERRNO && err)
        return strerror(err);
    if (rc == MOSQ_ERR_EAI && err)
        return gai_strerror(err);
    return mosquitto_strerror(rc);
}

/*
 * The socket reported an error or hang-up before the session was up, and libmosquitto did
 * not end the attempt: during a TLS handshake it takes a failed write or read
 * (SSL_ERROR_SYSCALL) for "try again", and would retry it at every wake-up of a socket
 * that is ready for ever. Record the cause; the attempt is over.
 */
static int mqtt_dead_socket(struct mqtt *m, int sock, int err)
{
    int so_error = 0;
    socklen_t len = sizeof(so_error);

    if (getsockopt(sock, SOL_SOCKET, SO_ERROR, &so_error, &len) == 0 && so_error)
        mqtt_why(m->why_net, "%s", strerror(so_error));
    else if (mqtt_conn_errno(err))
        mqtt_why(m->why_net, "%s", strerror(err));
    else
        mqtt_why(m->why_net,
                 "the connection closed during the TLS handshake (is port %d a TLS "
                 "listener?)",
                 m->cfg->port);
    return MOSQ_ERR_CONN_LOST;
}

/*
 * One wait on the socket and the wake-up eventfd, then the library's read, write and
 * keepalive work. Before the session is up, `deadline` (monotonic s) bounds the attempt.
 * Returns a MOSQ_ERR_* code; anything but success ends the attempt or the session.
 */
static int mqtt_step(struct mqtt *m, double deadline)
{
    int sock = mosquitto_socket(m->mosq);
    bool up = atomic_load(&m->connected);
    bool hs_write, hs = mqtt_tls_handshaking(m->mosq, &hs_write);
    /* mosquitto_loop_misc() must run well within the keepalive to send PINGREQ in time. */
    int timeout_ms = m->cfg->keepalive * 1000 / 4;
    /* In the handshake OpenSSL, not mosquitto_want_write(), says whether it waits to write:
     * the library's flag stays set after the handshake's first write and would make a
     * writable socket wake the loop until the broker answers. */
    bool want_write = hs ? hs_write : mosquitto_want_write(m->mosq);
    struct pollfd pfd[2] = {
        {sock, (short)(POLLIN | (want_write ? POLLOUT : 0) | (up ? 0 : POLLRDHUP)), 0},
        {m->wake_fd, POLLIN, 0},
    };
    int rc = MOSQ_ERR_SUCCESS, err = 0;

    if (sock < 0)
        return MOSQ_ERR_NO_CONN;
    if (!up) {
        double left_ms = (deadline - mqtt_now()) * 1000;
        if (left_ms <= 0) {
            mqtt_why(m->why_net, "no answer from the broker within %d s", MQTT_CONNECT_TIMEOUT_S);
            return MOSQ_ERR_CONN_LOST;
        }
        if (left_ms < timeout_ms)
            timeout_ms = (int)left_ms + 1;
    }
    if (poll(pfd, 2, timeout_ms) < 0 && errno != EINTR) {
        mqtt_why(m->why_net, "poll: %s", strerror(errno));
        return MOSQ_ERR_ERRNO;
    }
    if (pfd[1].revents & POLLIN)
        mqtt_drain_wake(m);
    short rev = pfd[0].revents;
    /* The handshake moves on whichever way the socket became ready. */
    if (hs ? rev != 0 : (rev & (POLLIN | POLLHUP | POLLERR)) != 0) {
        errno = 0;
        rc = mosquitto_loop_read(m->mosq, 1);
        err = errno;
    }
    if (rc == MOSQ_ERR_SUCCESS)
        mqtt_after_read(m);
    if (rc == MOSQ_ERR_SUCCESS && !atomic_load(&m->connected) &&
        (rev & (POLLERR | POLLHUP | POLLRDHUP)) && mosquitto_socket(m->mosq) >= 0)
        return mqtt_dead_socket(m, sock, err);
    if (rc == MOSQ_ERR_SUCCESS && !mqtt_tls_handshaking(m->mosq, NULL) &&
        mosquitto_want_write(m->mosq)) {
        errno = 0;
        rc = mosquitto_loop_write(m->mosq, 1);
        err = errno;
    }
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_loop_misc(m->mosq);
    if (rc == MOSQ_ERR_ERRNO)
        mqtt_why(m->why_net, "%s", err ? strerror(err) : "socket error");
    return rc;
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
 * MQTT_STOP_WAIT_S in all. Without a session there is nothing to say: the socket of a
 * failed attempt is closed by mosquitto_destroy().
 */
static void mqtt_finish(struct mqtt *m)
{
    double deadline = mqtt_now() + MQTT_STOP_WAIT_S;

    if (!atomic_load(&m->connected))
        return;
    if (m->last_topic)
        mqtt_publish(m, m->last_topic, m->last_payload, 1, true);
    if (!mqtt_drain(m, deadline, mqtt_all_delivered))
        log_msg(LOG_LVL_WARNING, "mqtt: stopping with %ld message(s) not delivered",
                atomic_load(&m->outstanding));
    atomic_store(&m->connected, false);
    mosquitto_disconnect(m->mosq);
    mqtt_drain(m, deadline, mqtt_socket_closed);
}

/*
 * One connection: an attempt and, if it gets a session, the session until it ends.
 * Returns the MOSQ_ERR_* code that ended it (success when stopping); *had_session says
 * whether a session was up. libmosquitto's log is heard only during the attempt.
 */
static int mqtt_connection(struct mqtt *m, bool *had_session)
{
    double deadline = mqtt_now() + MQTT_CONNECT_TIMEOUT_S;
    int rc, err;

    m->tls.why[0] = m->why_net[0] = m->why_lib[0] = '\0';
    *had_session = false;
    mosquitto_log_callback_set(m->mosq, mqtt_on_log);
    errno = 0;
    rc = mosquitto_connect_async(m->mosq, m->cfg->host, m->cfg->port, m->cfg->keepalive);
    err = errno;
    /* A TLS connection's first write may have met the refusal already (a refused TCP
     * connection shows up on a later read only). */
    if (rc == MOSQ_ERR_ERRNO || rc == MOSQ_ERR_EAI)
        mqtt_why(m->why_net, "%s", mqtt_rc_text(rc, err));
    else if (mqtt_conn_errno(err))
        mqtt_why(m->why_net, "%s", strerror(err));
    while (rc == MOSQ_ERR_SUCCESS && !atomic_load(&m->stop)) {
        rc = mqtt_step(m, deadline);
        if (!*had_session && atomic_load(&m->connected)) {
            *had_session = true;
            mosquitto_log_callback_set(m->mosq, NULL);
        }
    }
    mosquitto_log_callback_set(m->mosq, NULL);
    return rc;
}

static void *mqtt_thread(void *arg)
{
    struct mqtt *m = arg;
    int backoff = MQTT_BACKOFF_MIN_S;

    mqtt_on_thread = true;
    while (!atomic_load(&m->stop)) {
        bool had_session;
        int rc = mqtt_connection(m, &had_session);
        if (atomic_load(&m->stop))
            break;
        atomic_store(&m->connected, false);
        /* A socket the library left open (a failed handshake, a timeout) is told so at
         * once; the next attempt closes it. */
        if (mosquitto_socket(m->mosq) >= 0)
            shutdown(mosquitto_socket(m->mosq), SHUT_RDWR);
        if (had_session)
            backoff = MQTT_BACKOFF_MIN_S;
        /* The most specific first: a TLS failure also ends in a socket error. */
        const char *cause = m->tls.why[0]   ? m->tls.why
                            : m->why_lib[0] ? m->why_lib
                            : m->why_net[0] ? m->why_net
                                            : mqtt_rc_text(rc, 0);
        char category[40]; /* its first characters: a change of cause is logged */
        size_t n = strnlen(cause, sizeof(category) - 1);
        memcpy(category, cause, n);
        category[n] = '\0';
        if (log_complain(&m->complain, category))
            log_msg(LOG_LVL_WARNING,
                    "mqtt: cannot reach broker %s:%d: %s; retrying in %d s (backoff up to %d s)",
                    m->cfg->host, m->cfg->port, cause, backoff, MQTT_BACKOFF_MAX_S);
        mqtt_backoff_wait(m, backoff);
        backoff = backoff * 2 > MQTT_BACKOFF_MAX_S ? MQTT_BACKOFF_MAX_S : backoff * 2;
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

int mqtt_publish_mid(struct mqtt *m, const char *topic, const char *payload, int qos, bool retain,
                     int *mid)
{
    if (!atomic_load(&m->connected) && !mqtt_in_connect)
        return -1;
    /* Counted before: a QoS 0 message may be written, and counted off, inside the call. */
    atomic_fetch_add(&m->outstanding, 1);
    atomic_fetch_add(&m->mids_used, 1);
    int rc = mosquitto_publish(m->mosq, mid, topic, (int)strlen(payload), payload, qos, retain);
    if (rc != MOSQ_ERR_SUCCESS)
        atomic_fetch_sub(&m->outstanding, 1);
    /* The library wrote what the socket took; a rest (a full socket buffer, a message
     * queued while a callback runs, anything with TLS) is the MQTT thread's to send. That
     * thread writes its own messages (a session's opening burst) at once, as they come:
     * an error there closes the socket, which its loop then sees. */
    if (rc == MOSQ_ERR_SUCCESS && mosquitto_want_write(m->mosq)) {
        if (mqtt_on_thread)
            mosquitto_loop_write(m->mosq, 1);
        else
            mqtt_wake(m);
    }
    return rc == MOSQ_ERR_SUCCESS ? 0 : -1;
}

int mqtt_publish(struct mqtt *m, const char *topic, const char *payload, int qos, bool retain)
{
    return mqtt_publish_mid(m, topic, payload, qos, retain, NULL);
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

bool mqtt_wait_connected(struct mqtt *m, double timeout_s)
{
    double until = mqtt_now() + timeout_s;
    struct timespec ts = {(time_t)until, (long)((until - (double)(time_t)until) * 1e9)};

    pthread_mutex_lock(&m->up_lock);
    while (!atomic_load(&m->connected))
        if (pthread_cond_timedwait(&m->up_cond, &m->up_lock, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&m->up_lock);
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
    pthread_cond_destroy(&m->up_cond);
    pthread_mutex_destroy(&m->up_lock);
    mqtt_tls_free(&m->tls);
    free(m->acked);
    free(m->ha_status_topic);
    free(m);
    mosquitto_lib_cleanup();
}
