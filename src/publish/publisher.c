/* SPDX-License-Identifier: MIT */
/* publisher.c - discovery, availability and state publishing for every pack and the bank. */
#include "publisher.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bank.h"
#include "energy.h"
#include "ha.h"
#include "inbox.h"
#include "log.h"
#include "outputs.h"

#define TOPIC_MAX           CONFIG_TOPIC_MAX /* config_load() refuses topics that would not fit */
#define PUBLISHER_STATE_FMT "%s/%s/state"    /* base topic, device */

/*
 * One HA device: a pack, or the bank. Owned by the publisher thread. What is "due" waits
 * for the sink to be ready and is published by pub_flush() in this order: the retired
 * topics, the discovery configs, the availability, the state.
 */
struct pub_entity {
    const char *name;
    const struct reading_def *defs;
    size_t n_defs;
    const struct device *dev;   /* the device (NULL: the bank): its ha_style, when it has one */
    const char *model;          /* HA device model when the identity has none */
    const char *manufacturer;   /* HA device manufacturer */
    const char *label;          /* HA device name: "<label> <name>" */
    const char *const *retired; /* the script's sensor keys of this kind of device */
    char state_topic[TOPIC_MAX];
    char avail_topic[TOPIC_MAX];
    enum device_avail avail;
    int expire_after;          /* s: HA's expire_after for its states */
    bool announced;            /* had its first outcome: its discovery is published */
    struct device_identity id; /* copy published in the device block */
    struct ha_state *state;    /* the state JSON, formatted when it is published */
    double *values;            /* latest readings (a pack's good poll, the bank's totals) */
    bool has_values;
    bool retire_due;  /* retired topics from retire_at on */
    size_t retire_at; /* index in retired[] */
    bool disc_due;    /* discovery configs from disc_at on */
    size_t disc_at;   /* index in defs[] (or in the style's configs) */
    bool avail_due;
    bool state_due; /* published if the device is online then */
};

/*
 * A pack's mailbox: the newest outcome its bus thread posted, taken by the publisher. The
 * lock is held only to swap the readings buffer and copy the scalars (and the identity).
 */
struct pub_mailbox {
    pthread_mutex_t lock;
    double *good;        /* newest good readings not yet taken (good_pending) */
    double good_t;       /* monotonic s of that poll */
    bool good_pending;   /* `good` holds readings the publisher has not taken */
    unsigned long posts; /* good and failed outcomes posted so far */
    unsigned failures;   /* failed polls in a row at the newest outcome (0 after a good one) */
    enum result cause;   /* cause of the newest failure */
    unsigned long polls; /* the pack's polls at the newest post */
    bool id_pending;     /* `id` changed since the publisher took it */
    struct device_identity id;
    unsigned long failed[RESULT_COUNT]; /* the pack's failed polls by cause, at the newest post */
    unsigned long stray;                /* stray bytes on its line, at the newest post */
    char **texts;       /* n_defs: new texts of string readings, NULL where none (or NULL) */
    bool texts_pending; /* texts holds some */
    bool rediscover;    /* the device's discovery changed (ha_style): publish it again */
    atomic_bool dirty;  /* something was posted since the publisher last took it */
};

struct pub_pack {
    struct pub_entity ent;  /* publisher thread */
    struct pub_pack *next;  /* in b->packs (publisher thread) or b->added (add_lock) */
    const struct device *p; /* the pack: its name, readings table and driver only */
    struct pub_mailbox mb;
    double *post_buf;  /* the posting bus thread's: readings are copied here first */
    double *take_buf;  /* the publisher's: swapped with mb.good when taken */
    char **take_texts; /* the publisher's: swapped with mb.texts when taken (all NULL) */
    /* The rest: publisher thread only. */
    struct bank_member member;                  /* the pack's readings as the bank finds them */
    bool in_bank;                               /* a battery pack: counted in the bank */
    bool reported;                              /* had an outcome in the current bank round */
    unsigned long posts_seen;                   /* mb.posts when last taken */
    unsigned long polls;                        /* mb.polls when last taken */
    unsigned failures;                          /* mb.failures when last taken */
    unsigned long failed[RESULT_COUNT];         /* mb.failed when last taken */
    unsigned long stray;                        /* mb.stray when last taken */
    struct energy energy;                       /* charge / discharge counters */
    int idx_power, idx_charged, idx_discharged; /* in the readings, or -1: none integrated */
    int energy_slot;                            /* in b->store */
};

/* A raw register read waiting to be published (topic and payload follow the struct). */
struct pub_raw {
    struct pub_raw *next;
    const char *payload;
    char topic[];
};

struct publisher {
    const struct config *cfg;
    struct sink sink;
    struct energy_store *store;
    char status_topic[TOPIC_MAX];
    const char *base;
    bool has_bank;
    struct pub_entity bank;
    char bank_model[64];
    struct pub_pack *packs, *last; /* in order: configured packs, then those found */
    size_t n;                      /* devices in packs */
    size_t n_bank;                 /* of which battery packs, the bank's members */
    bool status_due;               /* the status topic's "online" */
    bool due; /* something may be due (pub_flush() clears it when all is out) */
    char command_filter[TOPIC_MAX]; /* "<base>/+/+/set" when a bus writes, else "" */
    struct log_throttle command_complain;
    struct log_throttle raw_complain;
    unsigned long raw_dropped_seen;
    struct outputs *out;     /* JSON lines, HTTP (NULL: none) */
    unsigned long published; /* messages the sink took */
    bool mqtt_connected;     /* as publisher_note_mqtt() last said */
    /* Shared with the bus threads. */
    int wake_fd;              /* eventfd: a post waits */
    atomic_bool wake_pending; /* the eventfd was written since the publisher last looked */
    pthread_mutex_t add_lock; /* added, raw list */
    struct pub_pack *added;   /* packs found at run time, not yet adopted (add_lock) */
    struct pub_raw *raw_head, **raw_tail;
    unsigned raw_n;
    unsigned long raw_dropped;
};

/* --- set-up -------------------------------------------------------------------------- */

/*
 * HA's expire_after (s) for the states of a device on bus `bus`: HA marks its entities
 * unavailable when no state came for this long. Several poll periods (or timeouts, when
 * longer), at least 30 s, so one slow or lost poll never blanks the dashboard.
 */
static int pub_expire_after(const struct config_bus *bus)
{
    double period = bus->poll_interval_s > bus->timeout_s ? bus->poll_interval_s : bus->timeout_s;
    int s = (int)ceil(5 * period);
    return s < 30 ? 30 : s;
}

static int pub_entity_init(struct pub_entity *d, const char *base, const char *name,
                           const struct reading_def *defs, size_t n_defs)
{
    d->name = name;
    d->defs = defs;
    d->n_defs = n_defs;
    d->avail = DEVICE_UNKNOWN;
    snprintf(d->state_topic, TOPIC_MAX, PUBLISHER_STATE_FMT, base, name);
    snprintf(d->avail_topic, TOPIC_MAX, "%s/%s/availability", base, name);
    d->state = ha_state_new(defs, n_defs);
    d->values = calloc(n_defs ? n_defs : 1, sizeof(double));
    return d->state && d->values ? 0 : -1;
}

static void pub_entity_free(struct pub_entity *d)
{
    ha_state_free(d->state);
    free(d->values);
}

/* Free the texts of a text table of n readings (and the table). */
static void pub_texts_free(char **t, size_t n)
{
    for (size_t i = 0; t && i < n; i++)
        free(t[i]);
    free(t);
}

static void pub_pack_free(struct pub_pack *bp)
{
    if (!bp)
        return;
    pub_texts_free(bp->mb.texts, bp->ent.n_defs);
    pub_texts_free(bp->take_texts, bp->ent.n_defs);
    pub_entity_free(&bp->ent);
    pthread_mutex_destroy(&bp->mb.lock);
    energy_destroy(&bp->energy);
    free(bp->mb.good);
    free(bp->post_buf);
    free(bp->take_buf);
    free(bp);
}

/* The publisher's record of pack p, with its energy counters started from the store. */
static struct pub_pack *pub_pack_new(struct publisher *b, const struct device *p)
{
    struct pub_pack *bp = calloc(1, sizeof(*bp));
    size_t n = p->n_defs ? p->n_defs : 1;

    if (!bp)
        return NULL;
    bp->p = p;
    pthread_mutex_init(&bp->mb.lock, NULL);
    atomic_init(&bp->mb.dirty, false);
    energy_init(&bp->energy);
    bp->mb.good = calloc(n, sizeof(double));
    bp->post_buf = calloc(n, sizeof(double));
    bp->take_buf = calloc(n, sizeof(double));
    bank_member_bind(&bp->member, p->defs, p->n_defs);
    bp->ent.model = p->driver->model;
    bp->ent.manufacturer = p->driver->manufacturer;
    bp->ent.label = p->driver->label;
    bp->ent.retired = p->driver->retired_sensor_keys;
    bp->ent.expire_after = pub_expire_after(p->bus ? p->bus : &b->cfg->bus);
    /* The bank adds the packs of battery drivers (BMSes read by the daemon); a GX's battery
     * service reports a bank the GX already totals (often these same packs): not added. */
    bp->in_bank = p->driver->kind == DEVICE_BATTERY;
    bp->ent.dev = p;
    for (size_t i = 0; i < p->n_defs && !bp->mb.texts; i++)
        if (p->defs[i].src == SRC_STRING) {
            bp->mb.texts = calloc(p->n_defs, sizeof(char *));
            bp->take_texts = calloc(p->n_defs, sizeof(char *));
            if (!bp->mb.texts || !bp->take_texts) {
                pub_pack_free(bp);
                return NULL;
            }
        }
    if (pub_entity_init(&bp->ent, b->base, p->name, p->defs, p->n_defs) < 0 || !bp->mb.good ||
        !bp->post_buf || !bp->take_buf) {
        pub_pack_free(bp);
        return NULL;
    }
    /* Energy counters integrated from the pack's power, unless its protocol reports its own
     * meters. */
    bp->idx_power = reading_find(p->defs, p->n_defs, "pack_power");
    bp->idx_charged = reading_find(p->defs, p->n_defs, "energy_charged_kwh");
    bp->idx_discharged = reading_find(p->defs, p->n_defs, "energy_discharged_kwh");
    if (p->driver->reports_energy || bp->idx_power < 0 || bp->idx_charged < 0 ||
        bp->idx_discharged < 0) {
        bp->idx_power = bp->idx_charged = bp->idx_discharged = -1;
    } else if (b->store) {
        double c, d;
        bp->energy_slot = energy_store_add(b->store, p->name, &c, &d);
        if (bp->energy_slot < 0) {
            pub_pack_free(bp);
            return NULL;
        }
        energy_set(&bp->energy, c, d);
    }
    return bp;
}

static void pub_append(struct publisher *b, struct pub_pack *bp)
{
    bp->next = NULL;
    if (b->last)
        b->last->next = bp;
    else
        b->packs = bp;
    b->last = bp;
    b->n++;
    b->n_bank += bp->in_bank;
    outputs_add_device(b->out, bp->p);
    if (bp->in_bank && bp->ent.expire_after > b->bank.expire_after)
        b->bank.expire_after = bp->ent.expire_after;
}

struct publisher *publisher_new(const struct config *cfg, struct device *packs, size_t n,
                                const char *client_id, const char *bank_name,
                                struct energy_store *store)
{
    struct publisher *b = calloc(1, sizeof(*b));

    if (!b)
        return NULL;
    b->cfg = cfg;
    b->store = store;
    b->base = cfg->mqtt.base_topic;
    b->raw_tail = &b->raw_head;
    b->raw_complain.remind_every = 60;
    atomic_init(&b->wake_pending, false);
    pthread_mutex_init(&b->add_lock, NULL);
    b->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (b->wake_fd < 0) {
        free(b);
        return NULL;
    }
    publisher_format_status_topic(b->status_topic, sizeof(b->status_topic), cfg, client_id);
    b->command_complain.remind_every = 60;
    for (size_t k = 0; k < cfg->n_buses; k++)
        if (cfg->buses[k].gx.write)
            snprintf(b->command_filter, sizeof(b->command_filter), "%s/+/+/set", b->base);
    for (size_t i = 0; i < n; i++) {
        struct pub_pack *bp = pub_pack_new(b, &packs[i]);
        if (!bp) {
            publisher_free(b);
            return NULL;
        }
        pub_append(b, bp);
        packs[i].publisher_slot = bp;
    }
    /* A bank of the battery packs (not of inverters or meters on other buses). */
    if (bank_name && b->n_bank >= 2) {
        b->has_bank = true;
        snprintf(b->bank_model, sizeof(b->bank_model), "Bank of %zu packs", b->n_bank);
        b->bank.model = b->bank_model;
        b->bank.manufacturer = "bms2mqtt";
        b->bank.label = "Battery bank";
        if (pub_entity_init(&b->bank, b->base, bank_name, bank_readings, bank_n_readings) < 0) {
            publisher_free(b);
            return NULL;
        }
    }
    return b;
}

void publisher_set_sink(struct publisher *b, struct sink sink)
{
    b->sink = sink;
}

void publisher_set_outputs(struct publisher *b, struct outputs *out)
{
    b->out = out;
    for (struct pub_pack *bp = b->packs; bp; bp = bp->next)
        outputs_add_device(out, bp->p);
}

void publisher_note_mqtt(struct publisher *b, bool connected)
{
    b->mqtt_connected = connected;
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

int publisher_wake_fd(const struct publisher *b)
{
    return b->wake_fd;
}

/* --- bus threads ----------------------------------------------------------------------- */

/* The pack's counters the outputs show, into its mailbox (under its lock). */
static void pub_post_counts(struct pub_pack *bp, const struct device *p)
{
    memcpy(bp->mb.failed, p->errors, sizeof(bp->mb.failed));
    bp->mb.stray = p->link ? p->link->stray.total : 0;
}

void publisher_wake(struct publisher *b)
{
    uint64_t one = 1;

    atomic_store(&b->wake_pending, true);
    ssize_t w = write(b->wake_fd, &one, sizeof(one));
    (void)w; /* a saturated counter only means a wake-up is pending already */
}

/* Something waits for the publisher: wake it unless a wake-up is pending already. */
static void pub_poke(struct publisher *b)
{
    uint64_t one = 1;

    if (atomic_exchange(&b->wake_pending, true))
        return;
    ssize_t w = write(b->wake_fd, &one, sizeof(one));
    (void)w;
}

void publisher_post_good(struct publisher *b, struct device *p, double now_s)
{
    struct pub_pack *bp = p->publisher_slot;
    double *buf;

    if (!bp)
        return;
    memcpy(bp->post_buf, p->values, p->n_defs * sizeof(double));
    pthread_mutex_lock(&bp->mb.lock);
    buf = bp->mb.good;
    bp->mb.good = bp->post_buf;
    bp->mb.good_t = now_s;
    bp->mb.good_pending = true;
    bp->mb.posts++;
    bp->mb.failures = 0;
    bp->mb.polls = p->polls;
    pub_post_counts(bp, p);
    pthread_mutex_unlock(&bp->mb.lock);
    bp->post_buf = buf;
    atomic_store(&bp->mb.dirty, true);
    pub_poke(b);
}

void publisher_post_failed(struct publisher *b, struct device *p, enum result cause)
{
    struct pub_pack *bp = p->publisher_slot;

    if (!bp)
        return;
    pthread_mutex_lock(&bp->mb.lock);
    bp->mb.posts++;
    bp->mb.failures = p->failures;
    bp->mb.cause = cause;
    bp->mb.polls = p->polls;
    pub_post_counts(bp, p);
    pthread_mutex_unlock(&bp->mb.lock);
    atomic_store(&bp->mb.dirty, true);
    pub_poke(b);
}

void publisher_post_identity(struct publisher *b, struct device *p)
{
    struct pub_pack *bp = p->publisher_slot;

    if (!bp)
        return;
    pthread_mutex_lock(&bp->mb.lock);
    bp->mb.id = p->id;
    bp->mb.id_pending = true;
    pthread_mutex_unlock(&bp->mb.lock);
    atomic_store(&bp->mb.dirty, true);
    pub_poke(b);
}

void publisher_post_text(struct publisher *b, struct device *p, size_t i, const char *text)
{
    struct pub_pack *bp = p->publisher_slot;
    char *copy, *old;

    /* A string reading gave the pack its text tables (pub_pack_new): mb.texts itself is
     * swapped by the publisher, under the lock. */
    if (!bp || i >= p->n_defs || p->defs[i].src != SRC_STRING || !text || !(copy = strdup(text)))
        return;
    pthread_mutex_lock(&bp->mb.lock);
    old = bp->mb.texts[i];
    bp->mb.texts[i] = copy;
    bp->mb.texts_pending = true;
    pthread_mutex_unlock(&bp->mb.lock);
    free(old);
    atomic_store(&bp->mb.dirty, true);
    pub_poke(b);
}

void publisher_post_rediscover(struct publisher *b, struct device *p)
{
    struct pub_pack *bp = p->publisher_slot;

    if (!bp)
        return;
    pthread_mutex_lock(&bp->mb.lock);
    bp->mb.rediscover = true;
    pthread_mutex_unlock(&bp->mb.lock);
    atomic_store(&bp->mb.dirty, true);
    pub_poke(b);
}

void publisher_post_raw(struct publisher *b, const char *name, const char *json)
{
    size_t tlen = (size_t)snprintf(NULL, 0, "%s/%s/raw", b->base, name) + 1;
    size_t plen = strlen(json) + 1;
    struct pub_raw *r = malloc(sizeof(*r) + tlen + plen);

    if (r) {
        snprintf(r->topic, tlen, "%s/%s/raw", b->base, name);
        memcpy(r->topic + tlen, json, plen);
        r->payload = r->topic + tlen;
        r->next = NULL;
    }
    pthread_mutex_lock(&b->add_lock);
    if (r && b->raw_n < PUBLISHER_RAW_MAX) {
        *b->raw_tail = r;
        b->raw_tail = &r->next;
        b->raw_n++;
        r = NULL;
    } else {
        b->raw_dropped++;
    }
    pthread_mutex_unlock(&b->add_lock);
    free(r);
    pub_poke(b);
}

int publisher_add_pack(struct publisher *b, struct device *p)
{
    struct pub_pack *bp = pub_pack_new(b, p);

    if (!bp)
        return -1;
    p->publisher_slot = bp;
    pthread_mutex_lock(&b->add_lock);
    bp->next = b->added;
    b->added = bp; /* newest first: pub_adopt() restores the order */
    pthread_mutex_unlock(&b->add_lock);
    pub_poke(b);
    return 0;
}

/* --- publishing (owner thread) --------------------------------------------------------- */

static bool pub_ready(struct publisher *b)
{
    return b->sink.publish && (!b->sink.ready || b->sink.ready(b->sink.ctx));
}

static void pub_pub(struct publisher *b, const char *topic, const char *payload, int qos,
                    bool retain)
{
    if (b->sink.publish(b->sink.ctx, topic, payload, qos, retain) == 0)
        b->published++;
}

static const char *pub_avail_text(enum device_avail a)
{
    return a == DEVICE_ONLINE ? "online" : "offline";
}

/* The next retired key of d at or after *at that must be removed (the script's keys that
 * are no sensor any more: gone, or binary_sensors now), or NULL. */
static const char *pub_next_retired(const struct pub_entity *d, size_t *at)
{
    for (; d->retired && d->retired[*at]; ++*at) {
        int i = reading_find(d->defs, d->n_defs, d->retired[*at]);
        if (i < 0 || quantity_is_binary(d->defs[i].q))
            return d->retired[*at];
    }
    return NULL;
}

/* The discovery configs d announces: one per reading, or the style's. */
static size_t pub_n_configs(const struct pub_entity *d)
{
    return d->dev && d->dev->ha_style ? d->dev->ha_style->n_configs(d->dev) : d->n_defs;
}

static bool pub_discovery_one(struct publisher *b, struct pub_entity *d, size_t i)
{
    const char *prefix = b->cfg->mqtt.discovery_prefix;
    bool bank = d == &b->bank;
    char devname[128], topic[TOPIC_MAX];
    struct ha_pack_ctx ctx = {
        .pack = d->name,
        .state_topic = d->state_topic,
        .pub_topic = b->status_topic,
        .avail_topic = d->avail_topic,
        .id = &d->id,
        .expire_after = d->expire_after,
        .uid_suffix = bank ? "bms2mqtt" : "eg4",
        .device_name = devname,
        .manufacturer = d->manufacturer,
        .model = d->model,
        .prefix = prefix,
        .base = b->base,
    };

    snprintf(devname, sizeof(devname), "%s %s", d->label, d->name);
    if (d->dev && d->dev->ha_style) {
        char *payload = NULL;
        int rc = d->dev->ha_style->config(d->dev, &ctx, i, topic, sizeof(topic), &payload);
        if (rc < 0) {
            log_msg(LOG_LVL_ERROR, "%s: out of memory building discovery", d->name);
            return false;
        }
        if (rc == 0)
            pub_pub(b, topic, payload, 1, true);
        free(payload);
        return true;
    }
    const struct reading_def *r = &d->defs[i];
    char *cfg = ha_discovery_config(&ctx, r);
    if (!cfg) {
        log_msg(LOG_LVL_ERROR, "%s: out of memory building discovery", d->name);
        return false;
    }
    ha_discovery_topic(topic, sizeof(topic), prefix, quantity_info(r->q)->component, d->name,
                       r->key);
    pub_pub(b, topic, cfg, 1, true);
    free(cfg);
    return true;
}

/* Publish what is due for d, in order, while the sink is ready. Returns false when the
 * sink stopped being ready with something of d still due. */
static bool pub_entity_flush(struct publisher *b, struct pub_entity *d)
{
    char topic[TOPIC_MAX];
    const char *key;

    while (d->retire_due) {
        if (!(key = pub_next_retired(d, &d->retire_at))) {
            d->retire_due = false;
            break;
        }
        if (!pub_ready(b))
            return false;
        ha_discovery_topic(topic, sizeof(topic), b->cfg->mqtt.discovery_prefix, "sensor", d->name,
                           key);
        pub_pub(b, topic, "", 1, true);
        d->retire_at++;
    }
    while (d->disc_due) {
        if (d->disc_at >= pub_n_configs(d)) {
            d->disc_due = false;
            break;
        }
        if (!pub_ready(b))
            return false;
        if (!pub_discovery_one(b, d, d->disc_at++))
            d->disc_due = false; /* out of memory: the next session tries again */
    }
    if (d->avail_due) {
        if (!pub_ready(b))
            return false;
        pub_pub(b, d->avail_topic, pub_avail_text(d->avail), 1, true);
        d->avail_due = false;
    }
    if (d->state_due) {
        if (d->avail == DEVICE_ONLINE && d->has_values) {
            if (!pub_ready(b))
                return false;
            const char *json = ha_state_format(d->state, d->values);
            if (json)
                pub_pub(b, d->state_topic, json, 0, false);
            else
                log_msg(LOG_LVL_ERROR, "%s: out of memory formatting the state", d->name);
        }
        d->state_due = false;
    }
    return true;
}

/*
 * Publish everything due while the sink is ready: the status, then each pack (in the order
 * they became known), then the bank. Normally it all goes at once, so messages leave in the
 * order they became due; when the sink is not ready what stays due is the newest of each
 * kind, and a device's state never leaves before its discovery.
 */
static void pub_flush(struct publisher *b)
{
    if (!b->due)
        return;
    if (b->status_due) {
        if (!pub_ready(b))
            return;
        pub_pub(b, b->status_topic, "online", 1, true);
        b->status_due = false;
    }
    for (struct pub_pack *bp = b->packs; bp; bp = bp->next)
        if (!pub_entity_flush(b, &bp->ent))
            return;
    if (b->has_bank && !pub_entity_flush(b, &b->bank))
        return;
    b->due = false;
}

/* Everything a fresh session (retire: the retired topics too) or a restarted HA needs. A
 * device's discovery waits for its first outcome, so that the device block already
 * carries its model and firmware. */
static void pub_entity_all_due(struct pub_entity *d, bool retire)
{
    if (retire) {
        d->retire_due = true;
        d->retire_at = 0;
    }
    if (d->announced) {
        d->disc_due = true;
        d->disc_at = 0;
    }
    d->avail_due = true;
    d->state_due = true;
}

static void pub_all_due(struct publisher *b, bool retire)
{
    b->status_due = true;
    for (struct pub_pack *bp = b->packs; bp; bp = bp->next)
        pub_entity_all_due(&bp->ent, retire);
    if (b->has_bank)
        pub_entity_all_due(&b->bank, retire);
    b->due = true;
    pub_flush(b);
}

void publisher_on_connect(struct publisher *b)
{
    /* Commands first: none is lost between the session's start and the subscription. */
    if (b->command_filter[0] && b->sink.subscribe &&
        b->sink.subscribe(b->sink.ctx, b->command_filter) != 0)
        log_msg(LOG_LVL_WARNING, "mqtt: cannot subscribe to %s: commands will not arrive",
                b->command_filter);
    pub_all_due(b, true);
}

void publisher_command(struct publisher *b, const char *topic, const void *payload, size_t len)
{
    size_t base = strlen(b->base), n = strlen(topic);
    const char *dev = topic + base + 1, *slash;
    struct inbox_cmd c = {0};
    struct pub_pack *bp;
    int def;

    /* <base>/<device>/<key>/set */
    if (n < base + 6 || strncmp(topic, b->base, base) != 0 || topic[base] != '/' ||
        strcmp(topic + n - 4, "/set") != 0 || !(slash = strchr(dev, '/')) || slash >= topic + n - 4)
        return;
    for (bp = b->packs; bp; bp = bp->next)
        if (strlen(bp->ent.name) == (size_t)(slash - dev) &&
            strncmp(bp->ent.name, dev, (size_t)(slash - dev)) == 0)
            break;
    char key[READING_KEY_MAX + 1];
    size_t klen = (size_t)(topic + n - 4 - (slash + 1));
    if (!bp || !bp->p->inbox || klen > READING_KEY_MAX) {
        log_msg(LOG_LVL_INFO, "command on %s: no device takes commands there; ignored", topic);
        return;
    }
    memcpy(key, slash + 1, klen);
    key[klen] = '\0';
    def = reading_find(bp->ent.defs, bp->ent.n_defs, key);
    if (def < 0 || len >= sizeof(c.value) || memchr(payload, '\0', len)) {
        log_msg(LOG_LVL_WARNING, "command on %s: %s; ignored", topic,
                def < 0 ? "no such reading" : "not a value (too long, or a NUL in it)");
        return;
    }
    c.dev = (struct device *)bp->p;
    c.def = (size_t)def;
    memcpy(c.value, payload, len);
    c.value[len] = '\0';
    if (inbox_push(bp->p->inbox, &c) != 0 && log_complain(&b->command_complain, "full"))
        log_msg(LOG_LVL_WARNING,
                "command on %s dropped: %d commands wait for bus %s already (is the GX "
                "answering?)",
                topic, INBOX_MAX, bp->p->bus ? bp->p->bus->name : "?");
}

void publisher_on_ha_online(struct publisher *b)
{
    pub_all_due(b, false);
}

/* d's discovery, from its first config (its first outcome, or a new identity). */
static void pub_discovery_due(struct publisher *b, struct pub_entity *d)
{
    d->announced = true;
    d->disc_due = true;
    d->disc_at = 0;
    b->due = true;
    pub_flush(b);
}

/* First outcome of a device: announce it to HA. */
static void pub_announce(struct publisher *b, struct pub_entity *d)
{
    if (!d->announced)
        pub_discovery_due(b, d);
}

static void pub_set_avail(struct publisher *b, struct pub_entity *d, enum device_avail a)
{
    if (d->avail == a)
        return;
    d->avail = a;
    d->avail_due = true;
    b->due = true;
    pub_flush(b);
}

/* A device answered: announce it if new and mark it online. */
static void pub_online(struct publisher *b, struct pub_entity *d)
{
    pub_announce(b, d);
    pub_set_avail(b, d, DEVICE_ONLINE);
}

static void pub_state_due(struct publisher *b, struct pub_entity *d)
{
    d->state_due = true;
    b->due = true;
    pub_flush(b);
}

/*
 * The bank is published once per round: when every pack has had an outcome (good or
 * failed) since the last bank state, so its totals come from one cycle.
 */
static void pub_bank_round(struct publisher *b, struct pub_pack *done)
{
    unsigned online = 0;
    size_t i = 0;

    if (!b->has_bank || !done->in_bank)
        return;
    done->reported = true;
    for (struct pub_pack *bp = b->packs; bp; bp = bp->next)
        if (bp->in_bank && !bp->reported)
            return;
    struct bank_member m[b->n_bank];
    for (struct pub_pack *bp = b->packs; bp; bp = bp->next) {
        if (!bp->in_bank)
            continue;
        bp->reported = false;
        m[i] = bp->member;
        m[i].values = bp->ent.has_values ? bp->ent.values : NULL;
        m[i].online = bp->ent.avail == DEVICE_ONLINE;
        online += m[i].online;
        i++;
    }
    if (!online) {
        pub_set_avail(b, &b->bank, DEVICE_OFFLINE);
        return;
    }
    bank_compute(m, i, b->bank.values);
    b->bank.has_values = true;
    pub_online(b, &b->bank);
    pub_state_due(b, &b->bank);
}

/*
 * Integrate the pack's power into its counters and put them in values: never above what
 * the state file holds, which is written first when they rise by a published step
 * (energy_store.h).
 */
static void pub_energy(struct publisher *b, struct pub_pack *bp, double *values, double t_s)
{
    double c, d;
    double period = (bp->p->bus ? bp->p->bus : &b->cfg->bus)->poll_interval_s;
    double interval = period > 5.0 / 3 ? period : 5.0 / 3;
    int pc, pd;

    if (bp->idx_power < 0)
        return;
    /* Integrate across up to three poll periods (never less than 5 s): a longer silence
     * is a gap in the data, not a period of constant power. */
    energy_update(&bp->energy, t_s, values[bp->idx_power], 3 * interval);
    energy_get(&bp->energy, &c, &d);
    pc = bp->ent.defs[bp->idx_charged].precision;
    pd = bp->ent.defs[bp->idx_discharged].precision;
    /* A failed save is logged by the store; the values stay at the durable ones. */
    energy_store_commit(b->store, bp->energy_slot, &c, &d, pc > pd ? pc : pd);
    values[bp->idx_charged] = reading_round(c, pc);
    values[bp->idx_discharged] = reading_round(d, pd);
}

/* A good poll whose readings are in bp->take_buf, taken at t_s. */
static void pub_good(struct publisher *b, struct pub_pack *bp, double t_s)
{
    double *v = bp->take_buf;

    pub_energy(b, bp, v, t_s);
    bp->take_buf = bp->ent.values;
    bp->ent.values = v;
    bp->ent.has_values = true;
    pub_online(b, &bp->ent);
    pub_bank_round(b, bp);
    pub_state_due(b, &bp->ent);
}

/* A failed poll, the newest outcome: availability "offline" after offline_after. */
static void pub_failed(struct publisher *b, struct pub_pack *bp, enum result cause)
{
    pub_announce(b, &bp->ent);
    const struct config_bus *bus = bp->p->bus ? bp->p->bus : &b->cfg->bus;
    if (bp->failures >= (unsigned)bus->offline_after && bp->ent.avail != DEVICE_OFFLINE) {
        log_msg(LOG_LVL_WARNING, "%s %s: offline after %u failed polls in a row (%s)",
                device_noun(bp->p), bp->ent.name, bp->failures, result_name(cause));
        pub_set_avail(b, &bp->ent, DEVICE_OFFLINE);
    }
    pub_bank_round(b, bp);
}

static void pub_identity(struct publisher *b, struct pub_pack *bp, const struct device_identity *id)
{
    if (memcmp(&bp->ent.id, id, sizeof(*id)) == 0)
        return;
    bp->ent.id = *id;
    if (bp->ent.announced)
        pub_discovery_due(b, &bp->ent);
}

/* Tell the outputs (JSON lines, HTTP) of an outcome just processed: a good poll (RESULT_OK;
 * its readings are the entity's now), or a failed one. */
static void pub_output(struct publisher *b, struct pub_pack *bp, enum result r)
{
    struct outputs_outcome oc = {
        .p = bp->p,
        .result = r,
        .values = r == RESULT_OK ? bp->ent.values : NULL,
        .avail = bp->ent.avail,
        .polls = bp->polls,
        .failed = bp->failed,
        .failures = r == RESULT_OK ? 0 : bp->failures,
        .stray = bp->stray,
        .id = &bp->ent.id,
    };

    if (b->out)
        outputs_outcome(b->out, &oc);
}

/* New texts of string readings, taken: into the state (published with the next state). */
static void pub_texts(struct publisher *b, struct pub_pack *bp)
{
    for (size_t i = 0; i < bp->ent.n_defs; i++) {
        if (!bp->take_texts[i])
            continue;
        if (ha_state_set_text(bp->ent.state, i, bp->take_texts[i]) < 0)
            log_msg(LOG_LVL_ERROR, "%s: out of memory keeping a text", bp->ent.name);
        free(bp->take_texts[i]);
        bp->take_texts[i] = NULL;
    }
    pub_state_due(b, &bp->ent);
}

/* Take pack bp's mailbox and process what it holds: identity first (the discovery of the
 * first outcome carries it), then the newest good poll, then a failure that followed it. */
static void pub_take(struct publisher *b, struct pub_pack *bp)
{
    struct device_identity id;
    bool good, id_new, texts = false, rediscover;
    double t = 0;
    unsigned long posts;
    enum result cause;

    pthread_mutex_lock(&bp->mb.lock);
    good = bp->mb.good_pending;
    if (good) {
        double *v = bp->mb.good;
        bp->mb.good = bp->take_buf;
        bp->take_buf = v;
        t = bp->mb.good_t;
        bp->mb.good_pending = false;
    }
    id_new = bp->mb.id_pending;
    if (id_new)
        id = bp->mb.id;
    bp->mb.id_pending = false;
    rediscover = bp->mb.rediscover;
    bp->mb.rediscover = false;
    if (bp->mb.texts_pending) {
        char **taken = bp->mb.texts;
        bp->mb.texts = bp->take_texts;
        bp->take_texts = taken;
        bp->mb.texts_pending = false;
        texts = true;
    }
    posts = bp->mb.posts;
    bp->failures = bp->mb.failures;
    cause = bp->mb.cause;
    bp->polls = bp->mb.polls;
    memcpy(bp->failed, bp->mb.failed, sizeof(bp->failed));
    bp->stray = bp->mb.stray;
    pthread_mutex_unlock(&bp->mb.lock);

    if (id_new)
        pub_identity(b, bp, &id);
    if (rediscover && bp->ent.announced)
        pub_discovery_due(b, &bp->ent);
    if (texts)
        pub_texts(b, bp);
    if (posts == bp->posts_seen)
        return;
    bp->posts_seen = posts;
    if (good) {
        pub_good(b, bp, t);
        pub_output(b, bp, RESULT_OK);
    }
    if (bp->failures) {
        pub_failed(b, bp, cause);
        pub_output(b, bp, cause);
    }
}

/* Packs added by bus threads since the last look join the list, in the order added. */
static void pub_adopt(struct publisher *b)
{
    struct pub_pack *list, *rev = NULL;

    pthread_mutex_lock(&b->add_lock);
    list = b->added;
    b->added = NULL;
    pthread_mutex_unlock(&b->add_lock);
    while (list) {
        struct pub_pack *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    while (rev) {
        struct pub_pack *next = rev->next;
        pub_append(b, rev);
        rev = next;
    }
}

/* Publish the raw reads that wait (best effort: without a ready sink they are dropped, as
 * states are without a session). Reads dropped because the list was full are logged. */
static void pub_raws(struct publisher *b)
{
    struct pub_raw *r;
    unsigned long dropped;

    pthread_mutex_lock(&b->add_lock);
    r = b->raw_head;
    b->raw_head = NULL;
    b->raw_tail = &b->raw_head;
    b->raw_n = 0;
    dropped = b->raw_dropped;
    pthread_mutex_unlock(&b->add_lock);
    while (r) {
        struct pub_raw *next = r->next;
        if (pub_ready(b))
            pub_pub(b, r->topic, r->payload, 0, false);
        free(r);
        r = next;
    }
    if (dropped != b->raw_dropped_seen) {
        if (log_complain(&b->raw_complain, "raw"))
            log_msg(LOG_LVL_WARNING,
                    "raw register reads dropped: %lu so far (more than %d waited for the "
                    "publisher)",
                    dropped, PUBLISHER_RAW_MAX);
        b->raw_dropped_seen = dropped;
    }
}

bool publisher_service(struct publisher *b)
{
    uint64_t n;

    /* The eventfd first, then the flag, then the mailboxes: a post after the flag was
     * cleared writes the eventfd again, so none is missed. */
    ssize_t r = read(b->wake_fd, &n, sizeof(n));
    (void)r; /* EAGAIN: nothing was posted since the last look */
    atomic_store(&b->wake_pending, false);
    pub_adopt(b);
    for (struct pub_pack *bp = b->packs; bp; bp = bp->next)
        if (atomic_exchange(&bp->mb.dirty, false))
            pub_take(b, bp);
    pub_raws(b);
    pub_flush(b);
    outputs_commit(b->out, b->mqtt_connected, b->published);
    return b->due;
}

void publisher_pack_outcomes(const struct publisher *b, const struct device *p,
                             unsigned long *polls, unsigned *failures)
{
    const struct pub_pack *bp = p->publisher_slot;

    (void)b;
    *polls = bp ? bp->polls : 0;
    *failures = bp ? bp->failures : 0;
}

void publisher_note_energy(struct publisher *b)
{
    double c, d;

    for (struct pub_pack *bp = b->packs; bp; bp = bp->next) {
        if (!b->store || bp->idx_power < 0)
            continue;
        energy_get(&bp->energy, &c, &d);
        energy_store_note(b->store, bp->energy_slot, c, d);
    }
}

void publisher_free(struct publisher *b)
{
    if (!b)
        return;
    pub_adopt(b);
    while (b->packs) {
        struct pub_pack *next = b->packs->next;
        pub_pack_free(b->packs);
        b->packs = next;
    }
    while (b->raw_head) {
        struct pub_raw *next = b->raw_head->next;
        free(b->raw_head);
        b->raw_head = next;
    }
    pub_entity_free(&b->bank);
    pthread_mutex_destroy(&b->add_lock);
    if (b->wake_fd >= 0)
        close(b->wake_fd);
    free(b);
}

void publisher_counts(const struct publisher *b, struct publisher_counts *out)
{
    *out = (struct publisher_counts){.packs_only = true};
    for (const struct pub_pack *bp = b->packs; bp; bp = bp->next) {
        out->online += bp->ent.avail == DEVICE_ONLINE;
        out->offline += bp->ent.avail == DEVICE_OFFLINE;
        out->waiting += bp->ent.avail == DEVICE_UNKNOWN;
        out->packs_only = out->packs_only && bp->in_bank;
    }
}
