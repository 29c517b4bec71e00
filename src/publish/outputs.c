/* SPDX-License-Identifier: MIT */
/* outputs.c - the outputs beyond MQTT: JSON lines and the HTTP listener, fed by the publisher. */
#include "outputs.h"

#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "jsonl.h"
#include "log.h"
#include "snapshot.h"
#include "textbuf.h"
#include "version.h"

struct outputs {
    struct snap own;        /* the publisher thread's */
    bool changed;           /* own changed since the last commit */
    struct jsonl *jsonl;    /* NULL: no JSON lines */
    struct textbuf line;    /* the JSON line being written (kept: no allocation per poll) */
    struct snap_shared *sh; /* NULL: no listener */
    bool sh_ready;          /* sh is initialised */
    struct http *http;
    struct log_throttle oom;
};

int outputs_open(const struct config *cfg, bool daemon, struct outputs **out)
{
    struct outputs *o;
    char err[300];

    *out = NULL;
    if (!cfg->jsonl && !(daemon && cfg->http_listen))
        return 0;
    o = calloc(1, sizeof(*o));
    if (!o) {
        log_msg(LOG_LVL_ERROR, "out of memory");
        return -1;
    }
    snap_init(&o->own);
    tb_init(&o->line);
    if (cfg->jsonl) {
        o->jsonl = jsonl_open(cfg->jsonl, daemon, err, sizeof(err));
        if (!o->jsonl) {
            log_msg(LOG_LVL_ERROR, "jsonl: %s", err);
            outputs_close(o);
            return -1;
        }
        log_msg(LOG_LVL_INFO, "JSON lines go to %s",
                strcmp(cfg->jsonl, "-") == 0 ? "stdout" : cfg->jsonl);
    }
    if (daemon && cfg->http_listen) {
        o->sh = malloc(sizeof(*o->sh));
        if (!o->sh || snap_shared_init(o->sh) < 0) {
            log_msg(LOG_LVL_ERROR, "out of memory");
            outputs_close(o);
            return -1;
        }
        o->sh_ready = true;
        o->http = http_start(cfg->http_listen, o->sh, BMS_VERSION, err, sizeof(err));
        if (!o->http) {
            log_msg(LOG_LVL_ERROR, "%s", err);
            outputs_close(o);
            return -1;
        }
        log_msg(LOG_LVL_NOTICE, "http: listening on %s (/, /metrics, /api/v1/state)",
                cfg->http_listen);
    }
    *out = o;
    return 0;
}

/* The snapshot entry of p, added if new; NULL when out of memory (logged, throttled). */
static struct snap_dev *outputs_dev(struct outputs *o, const struct device *p)
{
    int i = snap_find(&o->own, p);

    if (i < 0)
        i = snap_add(&o->own, p);
    if (i < 0) {
        if (log_complain(&o->oom, "oom"))
            log_msg(LOG_LVL_ERROR, "outputs: out of memory adding device %s", p->name);
        return NULL;
    }
    o->changed = true;
    return &o->own.dev[i];
}

void outputs_add_device(struct outputs *o, const struct device *p)
{
    if (o)
        outputs_dev(o, p);
}

void outputs_outcome(struct outputs *o, const struct outputs_outcome *oc)
{
    struct snap_dev *d;
    bool good = oc->result == RESULT_OK && oc->values;

    if (!o || !(d = outputs_dev(o, oc->p)))
        return;
    double now_mono = snap_now_mono(), now_unix = snap_now_unix();
    d->avail = oc->avail;
    d->polls = oc->polls;
    if (oc->failed)
        memcpy(d->failed, oc->failed, sizeof(d->failed));
    d->failures = oc->failures;
    d->last_result = good ? RESULT_OK : oc->result;
    d->stray = oc->stray;
    if (oc->id)
        d->id = *oc->id;
    if (good) {
        memcpy(d->values, oc->values, d->n_defs * sizeof(double));
        d->has_values = true;
        d->last_good_mono = now_mono;
        d->last_good_unix = now_unix;
    }
    d->dirty = true;
    if (o->jsonl) {
        tb_clear(&o->line);
        jsonl_format(&o->line, d, now_unix, d->last_result, good ? oc->values : NULL);
        if (tb_ok(&o->line))
            jsonl_write(o->jsonl, o->line.buf, o->line.len);
        else if (log_complain(&o->oom, "oom"))
            log_msg(LOG_LVL_ERROR, "jsonl: out of memory formatting a line of %s", d->name);
    }
}

void outputs_commit(struct outputs *o, bool mqtt_connected, unsigned long published)
{
    if (!o || !o->sh)
        return;
    if (!o->changed && o->own.mqtt_connected == mqtt_connected && o->own.published == published)
        return;
    o->own.mqtt_connected = mqtt_connected;
    o->own.published = published;
    if (snap_publish(o->sh, &o->own) < 0) {
        if (log_complain(&o->oom, "oom"))
            log_msg(LOG_LVL_ERROR, "http: out of memory updating the snapshot");
        return; /* the marks stay: the next commit tries again */
    }
    o->changed = false;
}

void outputs_close(struct outputs *o)
{
    if (!o)
        return;
    http_stop(o->http);
    if (o->sh_ready)
        snap_shared_destroy(o->sh);
    free(o->sh);
    jsonl_close(o->jsonl);
    tb_free(&o->line);
    snap_free(&o->own);
    free(o);
}
