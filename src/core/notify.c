/* SPDX-License-Identifier: MIT */
/* notify.c - the service manager's protocol (sd_notify(3)): ready, status, watchdog, reload. */
#include "notify.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "beat.h"
#include "log.h"

#define NOTIFY_STATUS_EVERY_MS 1000 /* STATUS= at most this often; checked this often */

struct notifier {
    const struct poller *pl;
    struct pubthread *pt;
    uint64_t watchdog_usec; /* WATCHDOG_USEC, 0 when the watchdog is off */
    pthread_t thread;
    pthread_mutex_t lock; /* stop, with cond */
    pthread_cond_t cond;  /* CLOCK_MONOTONIC */
    bool stop;
    /* The thread's own. */
    char status[256]; /* as last sent */
    bool stuck;       /* a bus was stuck at the last ping time: no pings */
};

void notify_send(const char *state)
{
    int rc = sd_notify(0, state);

    if (rc < 0)
        log_msg(LOG_LVL_DEBUG, "sd_notify: cannot tell the service manager '%s': %s", state,
                strerror(-rc));
}

void notify_reloading(const char *status)
{
    char msg[320];
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\nSTATUS=%s",
             (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u, status);
    notify_send(msg);
}

/* "3 packs online, 1 offline; broker connected", and the bus that is stuck. */
static void notifier_format(const struct pubthread_status *st, const char *stuck, char *buf,
                            size_t len)
{
    const char *noun = st->packs_only ? (st->online == 1 ? "pack" : "packs")
                                      : (st->online == 1 ? "device" : "devices");
    int n = snprintf(buf, len, "%u %s online, %u offline", st->online, noun, st->offline);

    if (n >= 0 && (size_t)n < len && st->waiting)
        n += snprintf(buf + n, len - (size_t)n, ", %u not polled yet", st->waiting);
    if (n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, "; broker %s",
                      st->connected ? "connected" : "disconnected");
    if (n >= 0 && (size_t)n < len && stuck)
        snprintf(buf + n, len - (size_t)n, "; %s stuck", stuck);
}

/* The watchdog's turn: ping unless a bus is stuck; log when that changes. `what` receives
 * the stuck bus ("" when none). */
static void notifier_watchdog(struct notifier *n, char *what, size_t len)
{
    double age = 0, min_s = (double)n->watchdog_usec / 1e6;
    bool stuck = poller_stuck(n->pl, min_s, what, len, &age);

    if (!stuck && n->pt && pubthread_stuck(n->pt, min_s, &age)) {
        stuck = true;
        snprintf(what, len, "the MQTT publisher thread");
    }
    if (stuck && !n->stuck)
        log_msg(LOG_LVL_ERROR,
                "watchdog: %s has shown no sign of life for %.0f s (stuck in a call); "
                "no more watchdog pings: the service manager will restart bms2mqtt",
                what, age);
    else if (!stuck && n->stuck)
        log_msg(LOG_LVL_NOTICE,
                "watchdog: every bus and the publisher thread are alive again; pings resume");
    n->stuck = stuck;
    if (!stuck) {
        what[0] = '\0';
        notify_send("WATCHDOG=1");
    }
}

/* Wait until monotonic `until_ms` or a stop; true when stopping. */
static bool notifier_wait(struct notifier *n, int64_t until_ms)
{
    struct timespec ts = {(time_t)(until_ms / 1000), (long)(until_ms % 1000) * 1000000L};
    bool stop;

    pthread_mutex_lock(&n->lock);
    while (!n->stop && beat_clock_ms() < until_ms)
        if (pthread_cond_timedwait(&n->cond, &n->lock, &ts) == ETIMEDOUT)
            break;
    stop = n->stop;
    pthread_mutex_unlock(&n->lock);
    return stop;
}

static void *notifier_thread(void *arg)
{
    struct notifier *n = arg;
    int64_t period_ms = (int64_t)(n->watchdog_usec / 2000u);
    int64_t next_ping = beat_clock_ms(), next_status = next_ping;
    char stuck[160] = "";

    if (n->watchdog_usec && period_ms < 1)
        period_ms = 1;
    for (;;) {
        int64_t now = beat_clock_ms();
        if (n->watchdog_usec && now >= next_ping) {
            notifier_watchdog(n, stuck, sizeof(stuck));
            next_ping += period_ms;
            if (next_ping <= now) /* late (a suspended machine): no burst of pings */
                next_ping = now + period_ms;
        }
        if (now >= next_status) {
            struct pubthread_status st;
            char text[sizeof(n->status)], msg[sizeof(n->status) + 8];
            pubthread_status(n->pt, &st);
            notifier_format(&st, stuck[0] ? stuck : NULL, text, sizeof(text));
            if (strcmp(text, n->status) != 0) {
                memcpy(n->status, text, sizeof(text));
                snprintf(msg, sizeof(msg), "STATUS=%s", text);
                notify_send(msg);
            }
            next_status = now + NOTIFY_STATUS_EVERY_MS;
        }
        int64_t until = next_status;
        if (n->watchdog_usec && next_ping < until)
            until = next_ping;
        if (notifier_wait(n, until))
            return NULL;
    }
}

struct notifier *notifier_start(const struct poller *pl, struct pubthread *pt)
{
    const char *sock = getenv("NOTIFY_SOCKET");
    struct notifier *n;
    pthread_condattr_t ca;
    uint64_t usec = 0;

    notify_send("READY=1");
    if (!sock || !*sock)
        return NULL;
    if (sd_watchdog_enabled(0, &usec) <= 0)
        usec = 0;
    if (!(n = calloc(1, sizeof(*n)))) {
        log_msg(LOG_LVL_ERROR, "out of memory starting the service notifier");
        return NULL;
    }
    n->pl = pl;
    n->pt = pt;
    n->watchdog_usec = usec;
    pthread_mutex_init(&n->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&n->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&n->thread, NULL, notifier_thread, n) != 0) {
        log_msg(LOG_LVL_ERROR, "cannot start the service notifier thread%s",
                usec ? ": no watchdog pings, the service manager will restart bms2mqtt" : "");
        pthread_cond_destroy(&n->cond);
        pthread_mutex_destroy(&n->lock);
        free(n);
        return NULL;
    }
    if (usec)
        log_msg(LOG_LVL_INFO,
                "watchdog: pinging the service manager every %.1f s while every "
                "bus shows progress",
                (double)usec / 2e6);
    return n;
}

void notifier_stop(struct notifier *n, bool stopping)
{
    if (stopping)
        notify_send("STOPPING=1\nSTATUS=stopping");
    if (!n)
        return;
    pthread_mutex_lock(&n->lock);
    n->stop = true;
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->lock);
    pthread_join(n->thread, NULL);
    pthread_cond_destroy(&n->cond);
    pthread_mutex_destroy(&n->lock);
    free(n);
}
