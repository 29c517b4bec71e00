/* SPDX-License-Identifier: MIT */
/* snapshot.c - every device's latest outcome, and its copies between threads. */
#include "snapshot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "driver.h"
#include "link.h"

void snap_init(struct snap *s)
{
    memset(s, 0, sizeof(*s));
}

void snap_free(struct snap *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->dev[i].values);
    free(s->dev);
    snap_init(s);
}

/* Room for one more device. */
static bool snap_grow(struct snap *s)
{
    struct snap_dev *nd;
    size_t cap;

    if (s->n < s->cap)
        return true;
    cap = s->cap ? s->cap * 2 : 8;
    nd = realloc(s->dev, cap * sizeof(*nd));
    if (!nd)
        return false;
    s->dev = nd;
    s->cap = cap;
    return true;
}

int snap_add(struct snap *s, const struct device *p)
{
    struct snap_dev *d;

    if (!snap_grow(s))
        return -1;
    d = &s->dev[s->n];
    memset(d, 0, sizeof(*d));
    d->values = malloc((p->n_defs ? p->n_defs : 1) * sizeof(double));
    if (!d->values)
        return -1;
    for (size_t i = 0; i < p->n_defs; i++)
        d->values[i] = NAN;
    d->key = p;
    d->name = p->name;
    d->bus = p->bus && p->bus->name ? p->bus->name : "bus";
    d->protocol = p->driver->name;
    d->kind = device_kind_name(p->kind);
    d->port = p->link ? p->link->port : "";
    d->defs = p->defs;
    d->n_defs = p->n_defs;
    d->avail = DEVICE_UNKNOWN;
    d->last_result = RESULT_OK;
    d->dirty = true;
    return (int)s->n++;
}

int snap_find(const struct snap *s, const void *p)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->dev[i].key == p)
            return (int)i;
    return -1;
}

/* Copy device *src into *dst (which holds a copy of the same device, or is new: values
 * NULL). False when out of memory (dst unchanged). */
static bool snap_copy_dev(struct snap_dev *dst, const struct snap_dev *src)
{
    double *values = dst->values;

    if (!values) {
        values = malloc((src->n_defs ? src->n_defs : 1) * sizeof(double));
        if (!values)
            return false;
    }
    memcpy(values, src->values, src->n_defs * sizeof(double));
    *dst = *src;
    dst->values = values;
    dst->dirty = false;
    return true;
}

/* Copy src into dst: the devices dst lacks, and those (all: every) marked dirty in src.
 * clear_marks: clear the marks of what was copied. */
static int snap_copy(struct snap *dst, struct snap *src, bool every, bool clear_marks)
{
    int rc = 0;

    dst->mqtt_connected = src->mqtt_connected;
    dst->published = src->published;
    for (size_t i = 0; i < src->n; i++) {
        bool add = i >= dst->n;
        if (!add && !every && !src->dev[i].dirty)
            continue;
        if (add) {
            if (i > dst->n || !snap_grow(dst)) {
                rc = -1;
                break;
            }
            dst->dev[i].values = NULL;
        }
        if (!snap_copy_dev(&dst->dev[i], &src->dev[i])) {
            rc = -1;
            break;
        }
        if (add)
            dst->n++;
        if (clear_marks)
            src->dev[i].dirty = false;
    }
    if (rc == 0)
        dst->gen = src->gen; /* complete: a copy that failed half way is taken again */
    return rc;
}

int snap_shared_init(struct snap_shared *sh)
{
    snap_init(&sh->s);
    return pthread_mutex_init(&sh->lock, NULL) == 0 ? 0 : -1;
}

void snap_shared_destroy(struct snap_shared *sh)
{
    pthread_mutex_destroy(&sh->lock);
    snap_free(&sh->s);
}

int snap_publish(struct snap_shared *sh, struct snap *own)
{
    int rc;

    own->gen++;
    pthread_mutex_lock(&sh->lock);
    rc = snap_copy(&sh->s, own, false, true);
    pthread_mutex_unlock(&sh->lock);
    return rc;
}

int snap_take(struct snap_shared *sh, struct snap *mine)
{
    int rc = 0;

    pthread_mutex_lock(&sh->lock);
    if (sh->s.gen != mine->gen || sh->s.n != mine->n)
        rc = snap_copy(mine, &sh->s, true, false);
    pthread_mutex_unlock(&sh->lock);
    return rc;
}

bool snap_cell_voltage(const struct reading_def *d, unsigned *cell)
{
    const char *k = d->key;
    unsigned n = 0;
    size_t digits = 0;

    if ((d->q != Q_VOLTAGE && d->q != Q_VOLTAGE_MV) || strncmp(k, "cell_", 5) != 0)
        return false;
    for (k += 5; *k >= '0' && *k <= '9' && digits < 4; k++, digits++)
        n = n * 10 + (unsigned)(*k - '0');
    if (digits == 0 || strcmp(k, "_voltage") != 0)
        return false;
    if (cell)
        *cell = n;
    return true;
}

double snap_now_mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

double snap_now_unix(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}
