/* SPDX-License-Identifier: MIT */
/* bridge.c - discovery, availability and state publishing for every pack. */
#include "bridge.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ha.h"
#include "log.h"

#define TOPIC_MAX 512

struct bridge_pack {
    struct pack *p;
    char state_topic[TOPIC_MAX];
    char avail_topic[TOPIC_MAX];
    enum pack_avail avail;
    bool announced;          /* discovery published since the first poll outcome */
    struct pack_identity id; /* copy published in the device block */
    char *last_state;        /* latest state JSON, republished on (re)connect */
};

struct bridge {
    const struct config *cfg;
    struct sink sink;
    pthread_mutex_t lock;
    char status_topic[TOPIC_MAX];
    int expire_after;
    size_t n;
    struct bridge_pack packs[];
};

static void bridge_pub(struct bridge *b, const char *topic, const char *payload, int qos,
                       bool retain)
{
    b->sink.publish(b->sink.ctx, topic, payload, qos, retain);
}

struct bridge *bridge_new(const struct config *cfg, struct pack *packs, size_t n,
                          const char *client_id, struct sink sink)
{
    struct bridge *b = calloc(1, sizeof(*b) + n * sizeof(b->packs[0]));
    const char *base = cfg->mqtt.base_topic;

    if (!b)
        return NULL;
    b->cfg = cfg;
    b->sink = sink;
    b->n = n;
    pthread_mutex_init(&b->lock, NULL);
    bridge_format_status_topic(b->status_topic, sizeof(b->status_topic), cfg, client_id);
    /* HA marks an entity unavailable when no state came for this long: several poll
     * periods, so one slow or lost poll never blanks the dashboard. */
    double period = cfg->bus.poll_interval_s > cfg->bus.timeout_s ? cfg->bus.poll_interval_s
                                                                  : cfg->bus.timeout_s;
    b->expire_after = (int)ceil(5 * period);
    if (b->expire_after < 30)
        b->expire_after = 30;
    for (size_t i = 0; i < n; i++) {
        struct bridge_pack *bp = &b->packs[i];
        bp->p = &packs[i];
        bp->avail = PACK_UNKNOWN;
        snprintf(bp->state_topic, TOPIC_MAX, "%s/%s/state", base, packs[i].name);
        snprintf(bp->avail_topic, TOPIC_MAX, "%s/%s/availability", base, packs[i].name);
    }
    return b;
}

int bridge_format_status_topic(char *buf, size_t len, const struct config *cfg,
                               const char *client_id)
{
    return snprintf(buf, len, "%s/bridge/%s/status", cfg->mqtt.base_topic, client_id);
}

const char *bridge_status_topic(const struct bridge *b)
{
    return b->status_topic;
}

static void bridge_discovery(struct bridge *b, struct bridge_pack *bp)
{
    const char *prefix = b->cfg->mqtt.discovery_prefix;
    struct ha_pack_ctx ctx = {bp->p->name,     bp->state_topic, b->status_topic,
                              bp->avail_topic, &bp->id,         b->expire_after};
    char topic[TOPIC_MAX];

    for (size_t i = 0; i < bp->p->n_defs; i++) {
        const struct reading_def *d = &bp->p->defs[i];
        char *cfg = ha_discovery_config(&ctx, d);
        if (!cfg) {
            log_msg(LOG_LVL_ERROR, "pack %s: out of memory building discovery", bp->p->name);
            return;
        }
        ha_discovery_topic(topic, sizeof(topic), prefix, quantity_info(d->q)->component,
                           bp->p->name, d->key);
        bridge_pub(b, topic, cfg, 1, true);
        free(cfg);
    }
}

/* Remove the script's sensors that no longer exist as sensors (retired keys, and the
 * flags that are binary_sensors now) with an empty retained config. */
static void bridge_retire(struct bridge *b, struct bridge_pack *bp)
{
    char topic[TOPIC_MAX];

    for (size_t k = 0; lp4v2_original_sensor_keys[k]; k++) {
        const char *key = lp4v2_original_sensor_keys[k];
        int i = reading_find(bp->p->defs, bp->p->n_defs, key);
        if (i >= 0 && !quantity_is_binary(bp->p->defs[i].q))
            continue;
        ha_discovery_topic(topic, sizeof(topic), b->cfg->mqtt.discovery_prefix, "sensor",
                           bp->p->name, key);
        bridge_pub(b, topic, "", 1, true);
    }
}

static const char *bridge_avail_text(enum pack_avail a)
{
    return a == PACK_ONLINE ? "online" : "offline";
}

/* Everything a fresh session or a restarted HA needs. A pack's discovery waits for its
 * first poll, so that the device block already carries its model and firmware. */
static void bridge_publish_all(struct bridge *b, bool retire)
{
    bridge_pub(b, b->status_topic, "online", 1, true);
    for (size_t i = 0; i < b->n; i++) {
        struct bridge_pack *bp = &b->packs[i];
        if (retire)
            bridge_retire(b, bp);
        if (bp->announced)
            bridge_discovery(b, bp);
        bridge_pub(b, bp->avail_topic, bridge_avail_text(bp->avail), 1, true);
        if (bp->last_state && bp->avail == PACK_ONLINE)
            bridge_pub(b, bp->state_topic, bp->last_state, 0, false);
    }
}

void bridge_on_connect(struct bridge *b)
{
    pthread_mutex_lock(&b->lock);
    bridge_publish_all(b, true);
    pthread_mutex_unlock(&b->lock);
}

void bridge_on_ha_online(struct bridge *b)
{
    pthread_mutex_lock(&b->lock);
    bridge_publish_all(b, false);
    pthread_mutex_unlock(&b->lock);
}

/* First outcome of a pack's polls: announce it to HA. Lock held. */
static void bridge_announce(struct bridge *b, struct bridge_pack *bp)
{
    if (bp->announced)
        return;
    bp->announced = true;
    bridge_discovery(b, bp);
}

static struct bridge_pack *bridge_find(struct bridge *b, const struct pack *p)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->packs[i].p == p)
            return &b->packs[i];
    return NULL;
}

void bridge_pack_good(struct bridge *b, struct pack *p, const double *values)
{
    struct bridge_pack *bp = bridge_find(b, p);
    char *json = ha_state_json(p->defs, p->n_defs, values);

    if (!bp || !json) {
        free(json);
        return;
    }
    pthread_mutex_lock(&b->lock);
    free(bp->last_state);
    bp->last_state = json;
    bridge_announce(b, bp);
    if (bp->avail != PACK_ONLINE) {
        bp->avail = PACK_ONLINE;
        bridge_pub(b, bp->avail_topic, "online", 1, true);
    }
    bridge_pub(b, bp->state_topic, json, 0, false);
    pthread_mutex_unlock(&b->lock);
}

void bridge_pack_failed(struct bridge *b, struct pack *p)
{
    struct bridge_pack *bp = bridge_find(b, p);

    if (!bp)
        return;
    pthread_mutex_lock(&b->lock);
    bridge_announce(b, bp);
    if (p->failures >= (unsigned)b->cfg->bus.offline_after && bp->avail != PACK_OFFLINE) {
        bp->avail = PACK_OFFLINE;
        log_msg(LOG_LVL_WARNING, "pack %s: offline after %u failed polls in a row", p->name,
                p->failures);
        bridge_pub(b, bp->avail_topic, "offline", 1, true);
    }
    pthread_mutex_unlock(&b->lock);
}

void bridge_pack_identity(struct bridge *b, struct pack *p)
{
    struct bridge_pack *bp = bridge_find(b, p);

    if (!bp)
        return;
    pthread_mutex_lock(&b->lock);
    if (memcmp(&bp->id, &p->id, sizeof(bp->id)) != 0) {
        bp->id = p->id;
        if (bp->announced)
            bridge_discovery(b, bp);
    }
    pthread_mutex_unlock(&b->lock);
}

void bridge_free(struct bridge *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        free(b->packs[i].last_state);
    pthread_mutex_destroy(&b->lock);
    free(b);
}
