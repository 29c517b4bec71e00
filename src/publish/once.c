/* SPDX-License-Identifier: MIT */
/* once.c - --once: every configured pack's state delivered with QoS 1, or said which not. */
#include "once.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

#define ONCE_TOPIC_MAX 512
#define ONCE_MIDS      4 /* a state published again in a new session: any one delivered */

struct once_pack {
    char topic[ONCE_TOPIC_MAX]; /* the pack's state topic */
    int mids[ONCE_MIDS];        /* message ids of its states (0 = none), newest last */
    unsigned published;         /* states handed to the client */
};

/* The publisher thread's, like the client. */
struct once {
    struct mqtt *m;
    const struct publisher *pub;
    const struct device *packs;
    size_t n;
    struct once_pack *slots;
};

struct once *once_new(const struct config *cfg, const struct device *packs, size_t n,
                      const struct publisher *pub, struct mqtt *m)
{
    struct once *o = calloc(1, sizeof(*o));

    if (!o)
        return NULL;
    o->m = m;
    o->pub = pub;
    o->packs = packs;
    o->n = n;
    o->slots = calloc(n ? n : 1, sizeof(*o->slots));
    if (!o->slots || mqtt_track_acks(m) < 0) {
        once_free(o);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        publisher_format_state_topic(o->slots[i].topic, ONCE_TOPIC_MAX, cfg, packs[i].name);
    return o;
}

static int once_publish(void *ctx, const char *topic, const char *payload, int qos, bool retain)
{
    struct once *o = ctx;
    struct once_pack *slot = NULL;
    int mid = 0;

    for (size_t i = 0; i < o->n && !slot; i++)
        if (strcmp(o->slots[i].topic, topic) == 0)
            slot = &o->slots[i];
    if (!slot)
        return mqtt_publish(o->m, topic, payload, qos, retain);
    if (mqtt_publish_mid(o->m, topic, payload, 1, retain, &mid) < 0)
        return -1;
    memmove(slot->mids, slot->mids + 1, (ONCE_MIDS - 1) * sizeof(slot->mids[0]));
    slot->mids[ONCE_MIDS - 1] = mid;
    slot->published++;
    return 0;
}

static bool once_ready(void *ctx)
{
    const struct once *o = ctx;

    return mqtt_ready(o->m);
}

struct sink once_sink(struct once *o)
{
    struct sink s = {once_publish, once_ready, o};
    return s;
}

int once_report(struct once *o)
{
    int rc = 0;

    for (size_t i = 0; i < o->n; i++) {
        const struct once_pack *slot = &o->slots[i];
        const struct device *p = &o->packs[i];
        unsigned long polls;
        unsigned failures;
        bool acked = false;
        for (int k = 0; k < ONCE_MIDS; k++)
            acked = acked || (slot->mids[k] && mqtt_acked(o->m, slot->mids[k]));
        if (acked)
            continue;
        if (slot->published) {
            log_msg(LOG_LVL_ERROR,
                    "--once: pack %s: state not delivered (the broker did not "
                    "acknowledge it)",
                    p->name);
            rc = ONCE_EXIT_BROKER;
            continue;
        }
        publisher_pack_outcomes(o->pub, p, &polls, &failures);
        if (polls && !failures)
            log_msg(LOG_LVL_ERROR,
                    "--once: pack %s: state not delivered (the connection to the "
                    "broker was lost)",
                    p->name);
        else
            log_msg(LOG_LVL_ERROR, "--once: pack %s: no state to deliver: %s", p->name,
                    polls ? "it did not answer its poll" : "it was not polled (or heard)");
        if (polls && !failures)
            rc = ONCE_EXIT_BROKER;
        else if (rc == 0)
            rc = ONCE_EXIT_PACKS;
    }
    if (rc == 0)
        log_msg(LOG_LVL_NOTICE, "--once: the state of all %zu pack(s) was delivered", o->n);
    return rc;
}

void once_free(struct once *o)
{
    if (!o)
        return;
    free(o->slots);
    free(o);
}
