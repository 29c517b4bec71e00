/* SPDX-License-Identifier: MIT */
/* fake_sink.c - a recording sink for unit tests (fake_sink.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_sink.h"

static int fake_publish(void *ctx, const char *topic, const char *payload, int qos, bool retain)
{
    struct fake *f = ctx;

    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 1024;
        f->m = realloc(f->m, f->cap * sizeof(*f->m));
        assert_non_null(f->m);
    }
    f->m[f->n].topic = strdup(topic);
    f->m[f->n].payload = strdup(payload);
    f->m[f->n].qos = qos;
    f->m[f->n].retain = retain;
    f->n++;
    if (f->budget > 0)
        f->budget--;
    if (f->on_state && strstr(topic, "/state"))
        f->on_state(f, topic, payload);
    return 0;
}

static bool fake_ready(void *ctx)
{
    return ((struct fake *)ctx)->budget != 0;
}

struct sink fake_sink(struct fake *f)
{
    struct sink s = {fake_publish, fake_ready, f};
    return s;
}

void fake_free(struct fake *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->m[i].topic);
        free(f->m[i].payload);
    }
    free(f->m);
    memset(f, 0, sizeof(*f));
}

/* Messages on topic from index `from`. */
size_t fake_count(const struct fake *f, size_t from, const char *topic)
{
    size_t n = 0;

    for (size_t i = from; i < f->n; i++)
        n += strcmp(f->m[i].topic, topic) == 0;
    return n;
}

/* Index of the last message on topic, or -1. */
long fake_last(const struct fake *f, const char *topic)
{
    for (size_t i = f->n; i-- > 0;)
        if (strcmp(f->m[i].topic, topic) == 0)
            return (long)i;
    return -1;
}

/* Discovery configs of device `name` from index `from` (non-empty ones). */
size_t fake_configs(const struct fake *f, size_t from, const char *name)
{
    char pat[96];
    size_t n = 0;

    snprintf(pat, sizeof(pat), "/%s_", name);
    for (size_t i = from; i < f->n; i++)
        n += strncmp(f->m[i].topic, "homeassistant/", 14) == 0 && strstr(f->m[i].topic, pat) &&
             strstr(f->m[i].topic, "/config") && f->m[i].payload[0];
    return n;
}

/* A number of the last state of `name`. */
double fake_state_value(const struct fake *f, const char *name, const char *key)
{
    char topic[128];

    snprintf(topic, sizeof(topic), "bms2mqtt/%s/state", name);
    long i = fake_last(f, topic);
    assert_true(i >= 0);
    json_t *j = json_loads(f->m[i].payload, 0, NULL);
    assert_non_null(j);
    json_t *v = json_object_get(j, key);
    double out = json_is_number(v) ? json_number_value(v) : NAN;
    json_decref(j);
    return out;
}
