/* SPDX-License-Identifier: MIT */
/* publisher.c - discovery, availability and state publishing for every pack and the bank. */
#include "publisher.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bank.h"
#include "ha.h"
#include "log.h"

#define TOPIC_MAX           CONFIG_TOPIC_MAX /* config_load() refuses topics that would not fit */
#define PUBLISHER_STATE_FMT "%s/%s/state"    /* base topic, device */

/* One HA device: a pack, or the bank. */
struct publisher_entity {
    const char *name;
    const struct reading_def *defs;
    size_t n_defs;
    const char *model;          /* HA device model when the identity has none */
    const char *manufacturer;   /* HA device manufacturer */
    const char *label;          /* HA device name: "<label> <name>" */
    const char *const *retired; /* the script's sensor keys of this kind of device */
    char state_topic[TOPIC_MAX];
    char avail_topic[TOPIC_MAX];
    enum device_avail avail;
    bool announced;             /* discovery published since the first poll outcome */
    struct device_identity id;  /* copy published in the device block */
    struct ha_state *state;     /* latest state JSON, republished on (re)connect */
    pthread_mutex_t state_lock; /* serialises formatting and sending of `state` */
};

struct publisher_device {
    struct publisher_entity dev;
    struct device *p;
    double *last_values;       /* latest good poll, for the bank; NULL before the first */
    bool has_values;           /* last_values holds a poll */
    struct bank_member member; /* the pack's readings as the bank finds them */
    bool reported;             /* had an outcome in the current bank round */
};

struct publisher {
    const struct config *cfg;
    struct sink sink;
    pthread_mutex_t lock;
    char status_topic[TOPIC_MAX];
    int expire_after;
    bool has_bank;
    struct publisher_entity bank;
    double *bank_values;
    char bank_model[64];
    const char *base;
    size_t n, cap;
    struct publisher_device **packs; /* each allocated on its own: addresses stay valid */
};

static void pub_pub(struct publisher *b, const char *topic, const char *payload, int qos,
                    bool retain)
{
    b->sink.publish(b->sink.ctx, topic, payload, qos, retain);
}

static int pub_dev_init(struct publisher_entity *d, const char *base, const char *name,
                        const struct reading_def *defs, size_t n_defs)
{
    d->name = name;
    d->defs = defs;
    d->n_defs = n_defs;
    d->avail = DEVICE_UNKNOWN;
    snprintf(d->state_topic, TOPIC_MAX, PUBLISHER_STATE_FMT, base, name);
    snprintf(d->avail_topic, TOPIC_MAX, "%s/%s/availability", base, name);
    d->state = ha_state_new(defs, n_defs);
    pthread_mutex_init(&d->state_lock, NULL);
    return d->state ? 0 : -1;
}

/* Make pack p known to the bridge. Lock held (or not yet shared). */
static int pub_attach(struct publisher *b, struct device *p)
{
    struct publisher_device *bp;

    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 8;
        struct publisher_device **np = realloc(b->packs, cap * sizeof(*np));
        if (!np)
            return -1;
        b->packs = np;
        b->cap = cap;
    }
    if (!(bp = calloc(1, sizeof(*bp))))
        return -1;
    bp->p = p;
    bp->last_values = calloc(p->n_defs, sizeof(double));
    bank_member_bind(&bp->member, p->defs, p->n_defs);
    bp->dev.model = p->driver->model;
    bp->dev.manufacturer = p->driver->manufacturer;
    bp->dev.label = p->driver->label;
    bp->dev.retired = p->driver->retired_sensor_keys;
    if (pub_dev_init(&bp->dev, b->base, p->name, p->defs, p->n_defs) < 0 || !bp->last_values) {
        ha_state_free(bp->dev.state);
        free(bp->last_values);
        free(bp);
        return -1;
    }
    b->packs[b->n++] = bp;
    p->publisher_slot = bp;
    return 0;
}

struct publisher *publisher_new(const struct config *cfg, struct device *packs, size_t n,
                                const char *client_id, const char *bank_name, struct sink sink)
{
    struct publisher *b = calloc(1, sizeof(*b));

    if (!b)
        return NULL;
    b->cfg = cfg;
    b->sink = sink;
    b->base = cfg->mqtt.base_topic;
    pthread_mutex_init(&b->lock, NULL);
    publisher_format_status_topic(b->status_topic, sizeof(b->status_topic), cfg, client_id);
    /* HA marks an entity unavailable when no state came for this long: several poll
     * periods, so one slow or lost poll never blanks the dashboard. */
    double period = cfg->bus.poll_interval_s > cfg->bus.timeout_s ? cfg->bus.poll_interval_s
                                                                  : cfg->bus.timeout_s;
    b->expire_after = (int)ceil(5 * period);
    if (b->expire_after < 30)
        b->expire_after = 30;
    for (size_t i = 0; i < n; i++) {
        if (pub_attach(b, &packs[i]) < 0) {
            publisher_free(b);
            return NULL;
        }
    }
    if (bank_name && n >= 2) {
        b->has_bank = true;
        snprintf(b->bank_model, sizeof(b->bank_model), "Bank of %zu packs", n);
        b->bank.model = b->bank_model;
        b->bank.manufacturer = "bms2mqtt";
        b->bank.label = "Battery bank";
        b->bank_values = calloc(bank_n_readings, sizeof(double));
        if (pub_dev_init(&b->bank, b->base, bank_name, bank_readings, bank_n_readings) < 0 ||
            !b->bank_values) {
            publisher_free(b);
            return NULL;
        }
    }
    return b;
}

int publisher_format_status_topic(char *buf, size_t len, const struct config *cfg,
                                  const char *client_id)
{
    return snprintf(buf, len, "%s/bridge/%s/status", cfg->mqtt.base_topic, client_id);
}

int publisher_format_state_topic(char *buf, size_t len, const struct config *cfg,
                                 const char *device)
{
    return snprintf(buf, len, PUBLISHER_STATE_FMT, cfg->mqtt.base_topic, device);
}

const char *publisher_status_topic(const struct publisher *b)
{
    return b->status_topic;
}

static void pub_discovery(struct publisher *b, struct publisher_entity *d)
{
    const char *prefix = b->cfg->mqtt.discovery_prefix;
    bool bank = d == &b->bank;
    char devname[128], topic[TOPIC_MAX];
    struct ha_pack_ctx ctx = {
        d->name,         d->state_topic,  b->status_topic,           d->avail_topic,
        &d->id,          b->expire_after, bank ? "bms2mqtt" : "eg4", devname,
        d->manufacturer, d->model,
    };

    snprintf(devname, sizeof(devname), "%s %s", d->label, d->name);
    for (size_t i = 0; i < d->n_defs; i++) {
        const struct reading_def *r = &d->defs[i];
        char *cfg = ha_discovery_config(&ctx, r);
        if (!cfg) {
            log_msg(LOG_LVL_ERROR, "%s: out of memory building discovery", d->name);
            return;
        }
        ha_discovery_topic(topic, sizeof(topic), prefix, quantity_info(r->q)->component, d->name,
                           r->key);
        pub_pub(b, topic, cfg, 1, true);
        free(cfg);
    }
}

/* Remove the script's sensors that no longer exist as sensors (retired keys, and the
 * flags that are binary_sensors now) with an empty retained config. */
static void pub_retire(struct publisher *b, struct publisher_entity *d)
{
    char topic[TOPIC_MAX];

    for (size_t k = 0; d->retired && d->retired[k]; k++) {
        const char *key = d->retired[k];
        int i = reading_find(d->defs, d->n_defs, key);
        if (i >= 0 && !quantity_is_binary(d->defs[i].q))
            continue;
        ha_discovery_topic(topic, sizeof(topic), b->cfg->mqtt.discovery_prefix, "sensor", d->name,
                           key);
        pub_pub(b, topic, "", 1, true);
    }
}

static const char *pub_avail_text(enum device_avail a)
{
    return a == DEVICE_ONLINE ? "online" : "offline";
}

/* A device's discovery (once it was announced), availability and latest state. */
static void pub_dev_publish(struct publisher *b, struct publisher_entity *d)
{
    if (d->announced)
        pub_discovery(b, d);
    pub_pub(b, d->avail_topic, pub_avail_text(d->avail), 1, true);
    pthread_mutex_lock(&d->state_lock);
    if (ha_state_text(d->state) && d->avail == DEVICE_ONLINE)
        pub_pub(b, d->state_topic, ha_state_text(d->state), 0, false);
    pthread_mutex_unlock(&d->state_lock);
}

/* Everything a fresh session or a restarted HA needs. A pack's discovery waits for its
 * first poll, so that the device block already carries its model and firmware. */
static void pub_publish_all(struct publisher *b, bool retire)
{
    pub_pub(b, b->status_topic, "online", 1, true);
    for (size_t i = 0; i < b->n; i++) {
        if (retire)
            pub_retire(b, &b->packs[i]->dev);
        pub_dev_publish(b, &b->packs[i]->dev);
    }
    if (b->has_bank)
        pub_dev_publish(b, &b->bank);
}

void publisher_on_connect(struct publisher *b)
{
    pthread_mutex_lock(&b->lock);
    pub_publish_all(b, true);
    pthread_mutex_unlock(&b->lock);
}

void publisher_on_ha_online(struct publisher *b)
{
    pthread_mutex_lock(&b->lock);
    pub_publish_all(b, false);
    pthread_mutex_unlock(&b->lock);
}

/* First outcome of a device: announce it to HA. Lock held. */
static void pub_announce(struct publisher *b, struct publisher_entity *d)
{
    if (d->announced)
        return;
    d->announced = true;
    pub_discovery(b, d);
}

static void pub_set_avail(struct publisher *b, struct publisher_entity *d, enum device_avail a)
{
    if (d->avail == a)
        return;
    d->avail = a;
    pub_pub(b, d->avail_topic, pub_avail_text(a), 1, true);
}

/* A device answered: announce it if new and mark it online (b->lock held). */
static void pub_dev_online(struct publisher *b, struct publisher_entity *d)
{
    pub_announce(b, d);
    pub_set_avail(b, d, DEVICE_ONLINE);
}

/*
 * Format and send a device's state from values[d->n_defs]. Only d->state_lock is taken,
 * so packs on different buses format and send at the same time; the lock order is
 * b->lock before state_lock wherever both are held.
 */
static void pub_dev_send_state(struct publisher *b, struct publisher_entity *d,
                               const double *values)
{
    pthread_mutex_lock(&d->state_lock);
    const char *json = ha_state_format(d->state, values);
    if (json)
        pub_pub(b, d->state_topic, json, 0, false);
    else
        log_msg(LOG_LVL_ERROR, "%s: out of memory formatting the state", d->name);
    pthread_mutex_unlock(&d->state_lock);
}

/*
 * The bank is published once per round: when every pack has had an outcome (good or
 * failed) since the last bank state, so its totals come from one cycle. Lock held.
 */
static void pub_bank_round(struct publisher *b, struct publisher_device *done)
{
    struct bank_member m[b->n];
    unsigned online = 0;

    if (!b->has_bank)
        return;
    done->reported = true;
    for (size_t i = 0; i < b->n; i++)
        if (!b->packs[i]->reported)
            return;
    for (size_t i = 0; i < b->n; i++) {
        struct publisher_device *bp = b->packs[i];
        bp->reported = false;
        m[i] = bp->member;
        m[i].values = bp->has_values ? bp->last_values : NULL;
        m[i].online = bp->dev.avail == DEVICE_ONLINE;
        online += m[i].online;
    }
    if (!online) {
        pub_set_avail(b, &b->bank, DEVICE_OFFLINE);
        return;
    }
    bank_compute(m, b->n, b->bank_values);
    pub_dev_online(b, &b->bank);
    pub_dev_send_state(b, &b->bank, b->bank_values);
}

int publisher_add_pack(struct publisher *b, struct device *p)
{
    pthread_mutex_lock(&b->lock);
    int rc = pub_attach(b, p);
    pthread_mutex_unlock(&b->lock);
    return rc;
}

void publisher_publish_raw(struct publisher *b, const char *name, const char *json)
{
    char topic[TOPIC_MAX];

    snprintf(topic, sizeof(topic), "%s/%s/raw", b->base, name);
    pub_pub(b, topic, json, 0, false);
}

void publisher_pack_good(struct publisher *b, struct device *p, const double *values)
{
    struct publisher_device *bp = p->publisher_slot;

    if (!bp)
        return;
    pthread_mutex_lock(&b->lock);
    memcpy(bp->last_values, values, p->n_defs * sizeof(double));
    bp->has_values = true;
    pub_dev_online(b, &bp->dev);
    pub_bank_round(b, bp);
    pthread_mutex_unlock(&b->lock);
    pub_dev_send_state(b, &bp->dev, values);
}

void publisher_pack_failed(struct publisher *b, struct device *p)
{
    struct publisher_device *bp = p->publisher_slot;

    if (!bp)
        return;
    pthread_mutex_lock(&b->lock);
    pub_announce(b, &bp->dev);
    if (p->failures >= (unsigned)b->cfg->bus.offline_after && bp->dev.avail != DEVICE_OFFLINE) {
        log_msg(LOG_LVL_WARNING, "pack %s: offline after %u failed polls in a row", p->name,
                p->failures);
        pub_set_avail(b, &bp->dev, DEVICE_OFFLINE);
    }
    pub_bank_round(b, bp);
    pthread_mutex_unlock(&b->lock);
}

void publisher_pack_identity(struct publisher *b, struct device *p)
{
    struct publisher_device *bp = p->publisher_slot;

    if (!bp)
        return;
    pthread_mutex_lock(&b->lock);
    if (memcmp(&bp->dev.id, &p->id, sizeof(bp->dev.id)) != 0) {
        bp->dev.id = p->id;
        if (bp->dev.announced)
            pub_discovery(b, &bp->dev);
    }
    pthread_mutex_unlock(&b->lock);
}

void publisher_free(struct publisher *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++) {
        ha_state_free(b->packs[i]->dev.state);
        pthread_mutex_destroy(&b->packs[i]->dev.state_lock);
        free(b->packs[i]->last_values);
        free(b->packs[i]);
    }
    free(b->packs);
    ha_state_free(b->bank.state);
    if (b->has_bank)
        pthread_mutex_destroy(&b->bank.state_lock);
    free(b->bank_values);
    pthread_mutex_destroy(&b->lock);
    free(b);
}
