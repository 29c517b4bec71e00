/* SPDX-License-Identifier: MIT */
/* mqtt.c - libmosquitto client run by its owner thread, reconnecting with backoff. */
#include "mqtt.h"

#include <errno.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "beat.h"
#include "log.h"
#include "mqtt_tls.h"

#define MQTT_BACKOFF_MIN_S     1
#define MQTT_BACKOFF_MAX_S     60
#define MQTT_CONNECT_TIMEOUT_S 10 /* an attempt without a session by then has failed */
#define MQTT_STOP_WAIT_S       5  /* at most this long to deliver what is queued at exit */
#define MQTT_CAUSE_MAX         MQTT_TLS_WHY_MAX
#define MQTT_MIDS              65536 /* MQTT message ids are 16 bits */
/* mosquitto_connect_async() resolves the broker's name in the calling thread; with no name
 * server answering, glibc's resolver takes timeout x attempts x servers: 5 x 2 x 3 = 30 s at
 * its defaults (resolv.conf(5)). */
#define MQTT_RESOLVE_MAX_S 30

/* Everything here belongs to the owner thread (mqtt.h): no locks, no atomics but `stop`. */
struct mqtt {
    struct mosquitto *mosq;
    const struct config_mqtt *cfg;
    struct mqtt_callbacks cb;
    void *ud;
    unsigned long sessions; /* sessions established so far */
    char *ha_status_topic;
    const atomic_bool *stop; /* the owner's: end mqtt_run() */
    int wake_fd;             /* the owner's: work for on_work */
    bool session;            /* CONNACK accepted, and no disconnect since */
    bool owner_waiting;      /* on_work keeps messages waiting for mqtt_ready() */
    bool session_pending;    /* CONNACK arrived: publish the session's opening messages */
    bool ha_online_pending;  /* HA's birth message arrived: publish everything again */
    unsigned qos0_queued;    /* QoS 0 published on this connection, not yet written */
    unsigned qos1_held;      /* QoS 1 published, not yet acknowledged (kept across sessions) */
    unsigned inflight_max;   /* MQTT 5: the broker's Receive Maximum (0 = no limit) */
    uint8_t *qos1;           /* a bit per message id: QoS 1 held */
    char *last_topic;        /* the will's message, published at a clean stop */
    char *last_payload;
    struct log_throttle complain;
    /* Why the current connection attempt failed, for the "cannot reach broker" line; each
     * keeps the first cause of its kind in the attempt. */
    struct mqtt_tls tls;          /* tls.why: the broker's certificate was not accepted */
    char why_net[MQTT_CAUSE_MAX]; /* the socket's error, a refusal, a timeout */
    char why_lib[MQTT_CAUSE_MAX]; /* the first error libmosquitto logged */
    uint8_t *acked;               /* mqtt_track_acks(): a bit per message id */
    unsigned long mids_used;      /* message ids taken since tracking began */
};

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

static void mqtt_on_connect(struct mosquitto *mosq, void *ud, int rc, int flags,
                            const mosquitto_property *props)
{
    struct mqtt *m = ud;
    uint16_t receive_max = 0;

    (void)flags;
    if (rc != 0) {
        /* libmosquitto ends the attempt after this; the cause goes into its log line. An
         * MQTT 5 broker answers with a reason code, an MQTT 3 broker with a CONNACK code. */
        mqtt_why(m->why_net, "the broker refused the connection: %s",
                 m->cfg->protocol_version == 5 ? mosquitto_reason_string(rc)
                                               : mosquitto_connack_string(rc));
        return;
    }
    /* MQTT 5: past the broker's Receive Maximum libmosquitto holds QoS 1 messages back,
     * and a QoS 0 state published after them would overtake them (mqtt_ready()). */
    if (props)
        mosquitto_property_read_int16(props, MQTT_PROP_RECEIVE_MAXIMUM, &receive_max, false);
    m->inflight_max = receive_max;
    if (receive_max)
        log_msg(LOG_LVL_DEBUG, "mqtt: the broker takes at most %u unacknowledged QoS 1 messages",
                (unsigned)receive_max);
    log_release(&m->complain);
    log_msg(LOG_LVL_NOTICE, "mqtt: connected to %s:%d%s", m->cfg->host, m->cfg->port,
            m->sessions++ ? " (reconnected)" : "");
    m->mids_used++;
    mosquitto_subscribe(mosq, NULL, m->ha_status_topic, 1);
    /* The opening messages go out after this callback returns (mqtt_after_read): inside
     * it libmosquitto would hold all of them in memory at once. */
    m->session_pending = true;
}

/* Work the callbacks asked for, done outside them so that each message is written as it
 * is published (inside a callback libmosquitto only queues). The session opens with
 * everything (status, discovery, availability, latest states); the owner publishes states
 * only after it, on this same thread, so no state reaches HA before its entity's
 * discovery. */
static void mqtt_after_read(struct mqtt *m)
{
    if (m->session_pending) {
        m->session_pending = false;
        m->session = true;
        if (m->cb.on_connect)
            m->cb.on_connect(m->ud);
        m->owner_waiting = true; /* what did not fit goes on when there is room */
    }
    if (m->ha_online_pending) {
        m->ha_online_pending = false;
        if (m->cb.on_ha_online)
            m->cb.on_ha_online(m->ud);
        m->owner_waiting = true;
    }
}

static bool mqtt_bit(const uint8_t *bits, int mid)
{
    return (bits[mid >> 3] >> (mid & 7)) & 1u;
}

/* QoS 0: the message was written; QoS 1: the broker acknowledged it. */
static void mqtt_on_publish(struct mosquitto *mosq, void *ud, int mid)
{
    struct mqtt *m = ud;

    (void)mosq;
    if (mid <= 0 || mid >= MQTT_MIDS)
        return;
    if (mqtt_bit(m->qos1, mid)) {
        m->qos1[mid >> 3] &= (uint8_t) ~(1u << (mid & 7));
        m->qos1_held--;
    } else if (m->qos0_queued) {
        m->qos0_queued--;
    }
    if (m->acked)
        m->acked[mid >> 3] |= (uint8_t)(1u << (mid & 7));
}

static void mqtt_on_disconnect(struct mosquitto *mosq, void *ud, int rc)
{
    struct mqtt *m = ud;

    (void)mosq;
    /* Also called when an attempt fails before its session: only a session is "lost". */
    if (rc != 0 && !atomic_load(m->stop) && m->session)
        log_msg(LOG_LVL_WARNING, "mqtt: connection to %s:%d lost", m->cfg->host, m->cfg->port);
    m->session = false;
}

static void mqtt_on_message(struct mosquitto *mosq, void *ud, const struct mosquitto_message *msg)
{
    struct mqtt *m = ud;

    (void)mosq;
    if (strcmp(msg->topic, m->ha_status_topic) != 0) {
        if (m->cb.on_message && msg->payloadlen >= 0)
            m->cb.on_message(m->ud, msg->topic, msg->payload, (size_t)msg->payloadlen);
        return;
    }
    if (!m->cb.on_ha_online)
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
        else if (strstr(text, "protocol version") || strstr(text, "unsupported protocol"))
            hint = m->cfg->tls_version ? " (the broker does not speak mqtt.tls_version or later)"
                                       : " (the broker speaks an older TLS version)";
        mqtt_why(m->why_lib, "TLS: %s%s", text, hint);
        return;
    }
    if (strncmp(text, "Error: ", 7) == 0)
        text += 7;
    mqtt_why(m->why_lib, "%s", text);
}

struct mqtt *mqtt_new(const struct config_mqtt *cfg, const char *client_id, const char *will_topic,
                      const char *will_payload, int wake_fd, const atomic_bool *stop,
                      const struct mqtt_callbacks *cb, void *ud)
{
    struct mqtt *m = calloc(1, sizeof(*m));
    size_t tlen;

    if (!m)
        return NULL;
    mosquitto_lib_init();
    m->cfg = cfg;
    m->cb = *cb;
    m->ud = ud;
    m->wake_fd = wake_fd;
    m->stop = stop;
    m->complain.remind_every = 60;
    tlen = strlen(cfg->discovery_prefix) + sizeof("/status");
    m->ha_status_topic = malloc(tlen);
    m->qos1 = calloc(MQTT_MIDS / 8, 1);
    m->last_topic = strdup(will_topic);
    m->last_payload = strdup(will_payload);
    m->mosq = mosquitto_new(client_id, true, m);
    if (!m->mosq || !m->ha_status_topic || !m->qos1 || !m->last_topic || !m->last_payload) {
        log_msg(LOG_LVL_ERROR, "mqtt: cannot create client: %s", strerror(errno));
        mqtt_free(m);
        return NULL;
    }
    snprintf(m->ha_status_topic, tlen, "%s/status", cfg->discovery_prefix);
    /* Not mosquitto_threaded_set(): only this client's owner thread calls the library, so
     * mosquitto_publish() writes to the socket at once (TLS included: reads and writes of
     * the OpenSSL session all happen on that thread) and mqtt_run() writes the rest. */
    /* No in-flight window: QoS 1 messages (discovery, availability) must leave in the
     * order they were published, before the QoS 0 state that follows them. */
    mosquitto_max_inflight_messages_set(m->mosq, 0);
    /* Before the will: an MQTT 5 will is sent in the MQTT 5 form. */
    mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION,
                         cfg->protocol_version == 3   ? MQTT_PROTOCOL_V31
                         : cfg->protocol_version == 5 ? MQTT_PROTOCOL_V5
                                                      : MQTT_PROTOCOL_V311);
    mosquitto_connect_v5_callback_set(m->mosq, mqtt_on_connect);
    mosquitto_disconnect_callback_set(m->mosq, mqtt_on_disconnect);
    mosquitto_message_callback_set(m->mosq, mqtt_on_message);
    mosquitto_publish_callback_set(m->mosq, mqtt_on_publish);
    if (cfg->username && cfg->username[0])
        mosquitto_username_pw_set(m->mosq, cfg->username, cfg->password);
    mosquitto_will_set(m->mosq, will_topic, (int)strlen(will_payload), will_payload, 1, true);
    if (CONFIG_MQTT_TLS(cfg) && mqtt_tls_setup(&m->tls, m->mosq, cfg) < 0) {
        mqtt_free(m);
        return NULL;
    }
    return m;
}

int mqtt_track_acks(struct mqtt *m)
{
    m->acked = calloc(MQTT_MIDS / 8, sizeof(*m->acked));
    m->mids_used = 0;
    return m->acked ? 0 : -1;
}

bool mqtt_acked(struct mqtt *m, int mid)
{
    /* Past 65535 message ids one may have been used twice: then nothing is sure. */
    if (!m->acked || mid <= 0 || mid >= MQTT_MIDS || m->mids_used >= MQTT_MIDS - 1)
        return false;
    return mqtt_bit(m->acked, mid);
}

/* The owner's work (mqtt_callbacks.on_work). */
static void mqtt_owner_work(struct mqtt *m)
{
    m->owner_waiting = m->cb.on_work ? m->cb.on_work(m->ud) : false;
}

/* The owner keeps messages waiting for room, and there is room now (acknowledgements came,
 * the socket took what was queued): its work goes on. */
static void mqtt_owner_room(struct mqtt *m)
{
    if (m->owner_waiting && mqtt_ready(m))
        mqtt_owner_work(m);
}

/* Wait `s` seconds, or until a stop. The owner's work is done as it comes (outcomes are
 * processed without a session) and does not end the wait early. */
static void mqtt_backoff_wait(struct mqtt *m, int s)
{
    double until = mqtt_now() + s;

    while (!atomic_load(m->stop)) {
        double left = until - mqtt_now();
        struct pollfd pfd = {m->wake_fd, POLLIN, 0};
        if (left <= 0)
            return;
        beat_sleep_until(beat_clock_ms() + (int64_t)(left * 1000) + 1);
        int ready = poll(&pfd, 1, (int)(left * 1000) + 1);
        beat();
        if (ready > 0)
            mqtt_owner_work(m);
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
    bool up = m->session;
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
    beat_sleep_until(beat_clock_ms() + timeout_ms);
    int ready = poll(pfd, 2, timeout_ms);
    beat();
    if (ready < 0 && errno != EINTR) {
        mqtt_why(m->why_net, "poll: %s", strerror(errno));
        return MOSQ_ERR_ERRNO;
    }
    bool woken = (pfd[1].revents & POLLIN) != 0;
    short rev = pfd[0].revents;
    /* The handshake moves on whichever way the socket became ready. */
    if (hs ? rev != 0 : (rev & (POLLIN | POLLHUP | POLLERR)) != 0) {
        errno = 0;
        rc = mosquitto_loop_read(m->mosq, 1);
        err = errno;
    }
    if (rc == MOSQ_ERR_SUCCESS)
        mqtt_after_read(m);
    /* The owner's work, also when the attempt or session ends here: outcomes are taken
     * (and kept due) without a session. */
    if (woken)
        mqtt_owner_work(m);
    if (rc == MOSQ_ERR_SUCCESS && !m->session && (rev & (POLLERR | POLLHUP | POLLRDHUP)) &&
        mosquitto_socket(m->mosq) >= 0)
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
    mqtt_owner_room(m);
    return rc;
}

/* Serve the socket (and the owner's work waiting for room) until done(m) or the deadline
 * (monotonic s); false on a dead socket. */
static bool mqtt_drain(struct mqtt *m, double deadline, bool (*done)(struct mqtt *m))
{
    while (!done(m)) {
        int sock = mosquitto_socket(m->mosq);
        double left = deadline - mqtt_now();
        struct pollfd pfd = {sock, (short)(POLLIN | (mosquitto_want_write(m->mosq) ? POLLOUT : 0)),
                             0};
        if (sock < 0 || left <= 0)
            return false;
        beat_sleep_until(beat_clock_ms() + (int64_t)(left * 1000) + 1);
        int ready = poll(&pfd, 1, (int)(left * 1000) + 1);
        beat();
        if (ready < 0 && errno != EINTR)
            return false;
        if ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) &&
            mosquitto_loop_read(m->mosq, 1) != MOSQ_ERR_SUCCESS)
            return false;
        if (mosquitto_want_write(m->mosq) && mosquitto_loop_write(m->mosq, 1) != MOSQ_ERR_SUCCESS)
            return false;
        mqtt_owner_room(m);
    }
    return true;
}

/* The owner has handed over everything (nothing waits for room). */
static bool mqtt_owner_done(struct mqtt *m)
{
    return !m->owner_waiting;
}

static bool mqtt_all_delivered(struct mqtt *m)
{
    return m->qos0_queued == 0 && m->qos1_held == 0 && !mosquitto_want_write(m->mosq);
}

static bool mqtt_socket_closed(struct mqtt *m)
{
    return mosquitto_socket(m->mosq) < 0;
}

/*
 * A clean stop: what the owner still keeps waiting for room, then the last message
 * (retained "offline"), then wait until everything queued is written and every QoS 1
 * message acknowledged, then DISCONNECT, so that the broker neither loses the burst in
 * flight nor fires the last will. Bounded by MQTT_STOP_WAIT_S in all. Without a session
 * there is nothing to say: the socket of a failed attempt is closed by mosquitto_destroy().
 */
static void mqtt_finish(struct mqtt *m)
{
    double deadline = mqtt_now() + MQTT_STOP_WAIT_S;

    if (!m->session)
        return;
    mqtt_drain(m, deadline, mqtt_owner_done);
    mqtt_publish(m, m->last_topic, m->last_payload, 1, true);
    if (!mqtt_drain(m, deadline, mqtt_all_delivered))
        log_msg(LOG_LVL_WARNING, "mqtt: stopping with %u message(s) not delivered",
                m->qos0_queued + m->qos1_held);
    m->session = false;
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
    m->qos0_queued = 0; /* a new connection drops the QoS 0 messages of the last one */
    mosquitto_log_callback_set(m->mosq, mqtt_on_log);
    errno = 0;
    /* The broker's name is resolved in this call, in this thread: the watchdog allows the
     * resolver its worst case (MQTT_RESOLVE_MAX_S). */
    beat_sleep_until(beat_clock_ms() + MQTT_RESOLVE_MAX_S * 1000);
    rc = mosquitto_connect_async(m->mosq, m->cfg->host, m->cfg->port, m->cfg->keepalive);
    err = errno;
    beat();
    /* A TLS connection's first write may have met the refusal already (a refused TCP
     * connection shows up on a later read only). */
    if (rc == MOSQ_ERR_ERRNO || rc == MOSQ_ERR_EAI)
        mqtt_why(m->why_net, "%s", mqtt_rc_text(rc, err));
    else if (mqtt_conn_errno(err))
        mqtt_why(m->why_net, "%s", strerror(err));
    while (rc == MOSQ_ERR_SUCCESS && !atomic_load(m->stop)) {
        rc = mqtt_step(m, deadline);
        if (!*had_session && m->session) {
            *had_session = true;
            mosquitto_log_callback_set(m->mosq, NULL);
        }
    }
    mosquitto_log_callback_set(m->mosq, NULL);
    return rc;
}

void mqtt_run(struct mqtt *m)
{
    int backoff = MQTT_BACKOFF_MIN_S;

    while (!atomic_load(m->stop)) {
        bool had_session;
        int rc = mqtt_connection(m, &had_session);
        if (atomic_load(m->stop))
            break;
        m->session = false;
        /* A socket the library left open (a failed handshake, a timeout) is told so at
         * once; the next attempt closes it. */
        if (mosquitto_socket(m->mosq) >= 0)
            shutdown(mosquitto_socket(m->mosq), SHUT_RDWR);
        if (had_session) {
            backoff = MQTT_BACKOFF_MIN_S;
            if (m->cb.on_disconnect)
                m->cb.on_disconnect(m->ud);
        }
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
    /* What was posted before the stop is processed, published if there is a session. */
    mqtt_owner_work(m);
    mqtt_finish(m);
}

int mqtt_publish_mid(struct mqtt *m, const char *topic, const char *payload, int qos, bool retain,
                     int *mid)
{
    int id = 0;

    if (!m->session)
        return -1;
    /* Counted before: a QoS 0 message may be written, and counted off, inside the call. */
    if (qos == 0)
        m->qos0_queued++;
    m->mids_used++;
    int rc = mosquitto_publish(m->mosq, &id, topic, (int)strlen(payload), payload, qos, retain);
    if (rc != MOSQ_ERR_SUCCESS && qos == 0 && m->qos0_queued)
        m->qos0_queued--;
    /* A QoS 1 message is the library's until the broker acknowledges it: also when only
     * its write failed (it is resent in the next session). Errors before it was stored
     * (invalid, out of memory) leave nothing held. */
    if (qos > 0 && id > 0 && id < MQTT_MIDS && !mqtt_bit(m->qos1, id) &&
        (rc == MOSQ_ERR_SUCCESS || rc == MOSQ_ERR_ERRNO || rc == MOSQ_ERR_CONN_LOST ||
         rc == MOSQ_ERR_NO_CONN)) {
        m->qos1[id >> 3] |= (uint8_t)(1u << (id & 7));
        m->qos1_held++;
    }
    /* A write error ends the connection at the next step of mqtt_run(). */
    if (rc == MOSQ_ERR_SUCCESS && mid)
        *mid = id;
    return rc == MOSQ_ERR_SUCCESS ? 0 : -1;
}

int mqtt_publish(struct mqtt *m, const char *topic, const char *payload, int qos, bool retain)
{
    return mqtt_publish_mid(m, topic, payload, qos, retain, NULL);
}

bool mqtt_ready(struct mqtt *m)
{
    return m->session && m->qos0_queued + m->qos1_held < MQTT_QUEUE_MAX &&
           (m->inflight_max == 0 || m->qos1_held < m->inflight_max);
}

static int mqtt_sink_publish(void *ctx, const char *topic, const char *payload, int qos,
                             bool retain)
{
    return mqtt_publish(ctx, topic, payload, qos, retain);
}

static bool mqtt_sink_ready(void *ctx)
{
    return mqtt_ready(ctx);
}

int mqtt_subscribe(struct mqtt *m, const char *topic)
{
    if (!m->session)
        return -1;
    m->mids_used++;
    return mosquitto_subscribe(m->mosq, NULL, topic, 1) == MOSQ_ERR_SUCCESS ? 0 : -1;
}

static int mqtt_sink_subscribe(void *ctx, const char *topic)
{
    return mqtt_subscribe(ctx, topic);
}

struct sink mqtt_sink(struct mqtt *m)
{
    struct sink s = {mqtt_sink_publish, mqtt_sink_ready, m, mqtt_sink_subscribe};
    return s;
}

void mqtt_free(struct mqtt *m)
{
    if (!m)
        return;
    if (m->mosq)
        mosquitto_destroy(m->mosq);
    mqtt_tls_free(&m->tls);
    free(m->acked);
    free(m->qos1);
    free(m->last_topic);
    free(m->last_payload);
    free(m->ha_status_topic);
    free(m);
    mosquitto_lib_cleanup();
}

bool mqtt_connected(const struct mqtt *m)
{
    return m->session;
}
