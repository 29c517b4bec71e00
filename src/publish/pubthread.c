/* SPDX-License-Identifier: MIT */
/* pubthread.c - the publisher thread: the MQTT client's owner, publishing what the buses post. */
#include "pubthread.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "beat.h"
#include "log.h"
#include "mqtt.h"
#include "once.h"

enum pubthread_state {
    PUBTHREAD_STARTING,
    PUBTHREAD_RUNNING, /* the client exists: mqtt_run() */
    PUBTHREAD_FAILED,  /* no client: the thread has ended */
};

struct pubthread {
    const struct config *cfg;
    struct publisher *pub;
    const char *client_id;
    const struct device *packs;
    size_t n;
    bool once;
    bool report; /* written before `stop` is set, read by the thread after it sees it */
    atomic_bool stop;
    int once_rc; /* the ledger's verdict, written by the thread before it ends */
    pthread_t thread;
    pthread_mutex_t lock; /* state and session, with cond */
    pthread_cond_t cond;  /* CLOCK_MONOTONIC */
    enum pubthread_state state;
    bool session;                   /* a session was up */
    struct pubthread_status status; /* as of the thread's last look */
    struct mqtt *m;                 /* the client, while mqtt_run() runs (this thread's) */
    struct beat beat;               /* the thread's signs of life (mqtt_run() beats) */
};

/* Note the devices' availability and the broker's session for pubthread_status(): a copy
 * of a few counters under the lock, nothing published. */
static void pt_note_status(struct pubthread *t, int connected)
{
    struct publisher_counts c;

    publisher_counts(t->pub, &c);
    pthread_mutex_lock(&t->lock);
    t->status.online = c.online;
    t->status.offline = c.offline;
    t->status.waiting = c.waiting;
    t->status.packs_only = c.packs_only;
    if (connected >= 0)
        t->status.connected = connected;
    pthread_mutex_unlock(&t->lock);
}

static void pt_on_connect(void *ud)
{
    struct pubthread *t = ud;

    publisher_note_mqtt(t->pub, true);
    publisher_on_connect(t->pub);
    pthread_mutex_lock(&t->lock);
    t->session = true;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
    pt_note_status(t, 1);
}

static void pt_on_disconnect(void *ud)
{
    pt_note_status(ud, 0);
}

static void pt_on_ha_online(void *ud)
{
    struct pubthread *t = ud;

    publisher_on_ha_online(t->pub);
}

static void pt_on_message(void *ud, const char *topic, const void *payload, size_t len)
{
    struct pubthread *t = ud;

    publisher_command(t->pub, topic, payload, len);
}

static bool pt_on_work(void *ud)
{
    struct pubthread *t = ud;

    publisher_note_mqtt(t->pub, t->m && mqtt_connected(t->m));
    bool due = publisher_service(t->pub);
    pt_note_status(t, -1);
    return due;
}

static void pt_set_state(struct pubthread *t, enum pubthread_state s)
{
    pthread_mutex_lock(&t->lock);
    t->state = s;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

static void *pt_thread(void *arg)
{
    struct pubthread *t = arg;
    const struct mqtt_callbacks cb = {pt_on_connect, pt_on_ha_online, pt_on_work, pt_on_disconnect,
                                      pt_on_message};
    struct once *ledger = NULL;
    struct mqtt *m;

    beat_attach(&t->beat);
    m = mqtt_new(&t->cfg->mqtt, t->client_id, publisher_status_topic(t->pub), "offline",
                 publisher_wake_fd(t->pub), &t->stop, &cb, t);
    /* --once delivers each pack's state with QoS 1 and checks that the broker has it. */
    if (m && t->once && !(ledger = once_new(t->cfg, t->packs, t->n, t->pub, m)))
        log_msg(LOG_LVL_ERROR, "--once: out of memory");
    if (!m || (t->once && !ledger)) {
        mqtt_free(m);
        pt_set_state(t, PUBTHREAD_FAILED);
        return NULL;
    }
    publisher_set_sink(t->pub, ledger ? once_sink(ledger) : mqtt_sink(m));
    pt_note_status(t, 0);
    t->m = m;
    pt_set_state(t, PUBTHREAD_RUNNING);
    mqtt_run(m);
    t->m = NULL;
    publisher_note_energy(t->pub);
    if (ledger && t->report)
        t->once_rc = once_report(ledger);
    publisher_set_sink(t->pub, (struct sink){0});
    once_free(ledger);
    mqtt_free(m);
    beat_set(&t->beat, INT64_MAX); /* ended: never stuck */
    return NULL;
}

static void pt_free(struct pubthread *t)
{
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

struct pubthread *pubthread_start(const struct config *cfg, struct publisher *b,
                                  const char *client_id, const struct device *packs, size_t n,
                                  bool once)
{
    struct pubthread *t = calloc(1, sizeof(*t));
    pthread_condattr_t ca;
    enum pubthread_state s;

    if (!t)
        return NULL;
    t->cfg = cfg;
    t->pub = b;
    t->client_id = client_id;
    t->packs = packs;
    t->n = n;
    t->once = once;
    atomic_init(&t->stop, false);
    beat_set(&t->beat, beat_clock_ms());
    pthread_mutex_init(&t->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&t->thread, NULL, pt_thread, t) != 0) {
        log_msg(LOG_LVL_ERROR, "cannot start the publisher thread");
        pt_free(t);
        return NULL;
    }
    pthread_mutex_lock(&t->lock);
    while (t->state == PUBTHREAD_STARTING)
        pthread_cond_wait(&t->cond, &t->lock);
    s = t->state;
    pthread_mutex_unlock(&t->lock);
    if (s == PUBTHREAD_FAILED) {
        pthread_join(t->thread, NULL);
        pt_free(t);
        return NULL;
    }
    return t;
}

bool pubthread_wait_session(struct pubthread *t, double timeout_s)
{
    struct timespec ts;
    bool up;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)timeout_s;
    ts.tv_nsec += (long)((timeout_s - (double)(time_t)timeout_s) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&t->lock);
    while (!t->session)
        if (pthread_cond_timedwait(&t->cond, &t->lock, &ts) == ETIMEDOUT)
            break;
    up = t->session;
    pthread_mutex_unlock(&t->lock);
    return up;
}

void pubthread_status(struct pubthread *t, struct pubthread_status *out)
{
    pthread_mutex_lock(&t->lock);
    *out = t->status;
    pthread_mutex_unlock(&t->lock);
}

int pubthread_stop(struct pubthread *t, bool report)
{
    int rc;

    if (!t)
        return 0;
    t->report = report;
    atomic_store(&t->stop, true);
    publisher_wake(t->pub);
    pthread_join(t->thread, NULL);
    rc = t->once_rc;
    pt_free(t);
    return rc;
}

bool pubthread_stuck(const struct pubthread *t, double min_s, double *age_s)
{
    double age = (double)beat_age_ms(&t->beat, beat_clock_ms()) / 1000.0;

    *age_s = age;
    return age > min_s;
}
