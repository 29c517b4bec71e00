/* SPDX-License-Identifier: MIT */
/* ha.c - Home Assistant MQTT discovery configs and pack state messages (jansson). */
#include "ha.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "version.h"

int ha_discovery_topic(char *buf, size_t len, const char *prefix, const char *component,
                       const char *pack, const char *key)
{
    return snprintf(buf, len, "%s/%s/%s_%s/config", prefix, component, pack, key);
}

void ha_default_entity_id(char *buf, size_t len, const char *component, const char *device,
                          const char *key)
{
    int n = snprintf(buf, len, "%s.%s_%s", component, device, key);
    size_t start = strlen(component) + 1;

    for (size_t i = start; n > 0 && i < (size_t)n && i < len; i++) {
        unsigned char ch = (unsigned char)buf[i];
        buf[i] = isalnum(ch) ? (char)tolower(ch) : '_';
    }
}

static json_t *ha_device(const struct ha_pack_ctx *ctx)
{
    const struct device_identity *id = ctx->id;
    json_t *dev;

    dev = json_pack("{s:[s],s:s,s:s,s:s}", "identifiers", ctx->pack, "name", ctx->device_name,
                    "manufacturer", ctx->manufacturer, "model",
                    id && id->model[0] ? id->model : ctx->model);
    if (dev && id && id->firmware[0])
        json_object_set_new(dev, "sw_version", json_string(id->firmware));
    if (dev && id && id->serial[0])
        json_object_set_new(dev, "serial_number", json_string(id->serial));
    return dev;
}

static void ha_set_str(json_t *o, const char *k, const char *v)
{
    if (v)
        json_object_set_new(o, k, json_string(v));
}

char *ha_discovery_config(const struct ha_pack_ctx *ctx, const struct reading_def *d)
{
    const struct quantity_info *qi = quantity_info(d->q);
    char uid[160], eid[200], tmpl[160];
    json_t *cfg;
    char *text = NULL;

    snprintf(uid, sizeof(uid), "%s_%s_%s", ctx->pack, d->key, ctx->uid_suffix);
    ha_default_entity_id(eid, sizeof(eid), qi->component, ctx->pack, d->key);
    if (d->group)
        snprintf(tmpl, sizeof(tmpl), "{{ value_json.%s[%u] }}", d->group, (unsigned)d->arg);
    else
        snprintf(tmpl, sizeof(tmpl), "{{ value_json.%s }}", d->key);
    cfg =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:[{s:s},{s:s}],s:s,s:i}", "name", d->name, "unique_id",
                  uid, "default_entity_id", eid, "state_topic", ctx->state_topic, "value_template",
                  tmpl, "availability", "topic", ctx->pub_topic, "topic", ctx->avail_topic,
                  "availability_mode", "all", "expire_after", ctx->expire_after);
    if (!cfg)
        return NULL;
    ha_set_str(cfg, "unit_of_measurement", qi->unit);
    ha_set_str(cfg, "device_class", qi->device_class);
    ha_set_str(cfg, "state_class", qi->state_class);
    ha_set_str(cfg, "icon", d->icon);
    if (quantity_is_binary(d->q)) {
        json_object_set_new(cfg, "payload_on", json_string("1"));
        json_object_set_new(cfg, "payload_off", json_string("0"));
    } else if (d->q == Q_ENUM) {
        json_t *opts = json_array();
        for (size_t k = 0; d->options && d->options[k]; k++)
            json_array_append_new(opts, json_string(d->options[k]));
        json_object_set_new(cfg, "options", opts);
    } else if (qi->unit) {
        json_object_set_new(cfg, "suggested_display_precision", json_integer(d->precision));
    }
    if (d->flags & READING_DIAGNOSTIC)
        json_object_set_new(cfg, "entity_category", json_string("diagnostic"));
    if (d->flags & READING_DISABLED)
        json_object_set_new(cfg, "enabled_by_default", json_false());
    json_object_set_new(cfg, "device", ha_device(ctx));
    json_object_set_new(cfg, "origin",
                        json_pack("{s:s,s:s}", "name", "bms2mqtt", "sw_version", BMS_VERSION));
    text = json_dumps(cfg, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(cfg);
    return text;
}

struct ha_state {
    const struct reading_def *defs;
    size_t n;
    json_t *obj;   /* members in table order */
    json_t **vals; /* vals[i]: the JSON value of defs[i] (borrowed from obj) */
    json_t **arrs; /* arrs[i]: the array holding it for grouped readings, else NULL */
    bool formatted;
    char *buf; /* last output */
    size_t cap;
};

struct ha_state *ha_state_new(const struct reading_def *defs, size_t n)
{
    struct ha_state *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->defs = defs;
    s->n = n;
    s->obj = json_object();
    s->vals = calloc(n ? n : 1, sizeof(*s->vals));
    s->arrs = calloc(n ? n : 1, sizeof(*s->arrs));
    s->cap = 4096;
    s->buf = malloc(s->cap);
    if (!s->obj || !s->vals || !s->arrs || !s->buf) {
        ha_state_free(s);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        s->vals[i] = json_null();
        if (!defs[i].group) {
            json_object_set_new_nocheck(s->obj, defs[i].key, s->vals[i]);
            continue;
        }
        /* A group is one array member, placed where its first reading stands. */
        s->arrs[i] = json_object_get(s->obj, defs[i].group);
        if (!s->arrs[i]) {
            s->arrs[i] = json_array();
            json_object_set_new_nocheck(s->obj, defs[i].group, s->arrs[i]);
        }
        while (json_array_size(s->arrs[i]) < defs[i].arg)
            json_array_append_new(s->arrs[i], json_null());
        if (json_array_size(s->arrs[i]) == defs[i].arg)
            json_array_append_new(s->arrs[i], s->vals[i]);
        else
            json_array_set_new(s->arrs[i], defs[i].arg, s->vals[i]);
    }
    return s;
}

/* Replace member i by a new value (only when its JSON type changes). */
static void ha_state_replace(struct ha_state *s, size_t i, json_t *v)
{
    s->vals[i] = v;
    if (s->arrs[i])
        json_array_set_new(s->arrs[i], s->defs[i].arg, v);
    else
        json_object_set_new_nocheck(s->obj, s->defs[i].key, v);
}

static void ha_state_set(struct ha_state *s, size_t i, double v)
{
    const struct reading_def *d = &s->defs[i];
    json_t *cur = s->vals[i];

    if (d->src == SRC_STRING)
        return; /* ha_state_set_text() */
    if (isnan(v)) {
        if (!json_is_null(cur))
            ha_state_replace(s, i, json_null());
        return;
    }
    if (d->q == Q_ENUM) {
        const char *text = reading_option(d, v);
        char unknown[32];
        /* A code the table does not know, as a driver gives it: -(code + 1). */
        if (v < 0) {
            snprintf(unknown, sizeof(unknown), "unknown (%.0f)", -v - 1);
            text = unknown;
        }
        if (!text)
            ha_state_replace(s, i, json_null());
        else if (!json_is_string(cur) || strcmp(json_string_value(cur), text) != 0)
            ha_state_replace(s, i, json_string(text));
        return;
    }
    if (quantity_is_binary(d->q) || d->precision == 0) {
        json_int_t iv = (json_int_t)llround(v);
        if (json_is_integer(cur))
            json_integer_set(cur, iv);
        else
            ha_state_replace(s, i, json_integer(iv));
        return;
    }
    /* Readings are kept unrounded (the bank adds them up); the state shows them at their
     * precision. */
    v = reading_round(v, d->precision);
    if (json_is_real(cur))
        json_real_set(cur, v);
    else
        ha_state_replace(s, i, json_real(v));
}

const char *ha_state_format(struct ha_state *s, const double *values)
{
    /* 10 significant digits print every value at its table precision without the
     * binary noise of doubles (53.12, not 53.119999999999997). */
    const size_t flags = JSON_COMPACT | JSON_REAL_PRECISION(10);
    size_t need;

    for (size_t i = 0; i < s->n; i++)
        ha_state_set(s, i, values[i]);
    need = json_dumpb(s->obj, s->buf, s->cap - 1, flags);
    if (need == 0)
        return NULL;
    if (need >= s->cap) {
        char *nb = realloc(s->buf, need + 1024);
        if (!nb)
            return NULL;
        s->buf = nb;
        s->cap = need + 1024;
        need = json_dumpb(s->obj, s->buf, s->cap - 1, flags);
    }
    s->buf[need] = '\0';
    s->formatted = true;
    return s->buf;
}

int ha_state_set_text(struct ha_state *s, size_t i, const char *text)
{
    json_t *v;

    if (i >= s->n)
        return -1;
    if (!text) {
        if (!json_is_null(s->vals[i]))
            ha_state_replace(s, i, json_null());
        return 0;
    }
    if (json_is_string(s->vals[i]) && strcmp(json_string_value(s->vals[i]), text) == 0)
        return 0;
    /* The reading's text is UTF-8 (reading_text): anything else is not published. */
    if (!(v = json_string(text)))
        return -1;
    ha_state_replace(s, i, v);
    return 0;
}

const char *ha_state_text(const struct ha_state *s)
{
    return s && s->formatted ? s->buf : NULL;
}

void ha_state_free(struct ha_state *s)
{
    if (!s)
        return;
    json_decref(s->obj);
    free(s->vals);
    free(s->arrs);
    free(s->buf);
    free(s);
}
