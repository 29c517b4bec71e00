/* SPDX-License-Identifier: MIT */
/* energy.c - charge and discharge energy counters, and their state file. */
#include "energy.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void energy_init(struct energy *e)
{
    memset(e, 0, sizeof(*e));
    pthread_mutex_init(&e->lock, NULL);
}

void energy_destroy(struct energy *e)
{
    pthread_mutex_destroy(&e->lock);
}

static double energy_pos(double w)
{
    return w > 0 ? w : 0;
}

void energy_update(struct energy *e, double t_s, double power_w, double max_gap_s)
{
    pthread_mutex_lock(&e->lock);
    if (isnan(power_w)) {
        e->have_last = false;
    } else {
        double dt = t_s - e->last_t;
        if (e->have_last && dt > 0 && dt <= max_gap_s) {
            /* Trapezoid of each direction separately, so a sign change between the two
             * samples is split between the counters instead of cancelling out. */
            e->charged_kwh += (energy_pos(e->last_w) + energy_pos(power_w)) / 2 * dt / 3.6e6;
            e->discharged_kwh += (energy_pos(-e->last_w) + energy_pos(-power_w)) / 2 * dt / 3.6e6;
        }
        e->last_t = t_s;
        e->last_w = power_w;
        e->have_last = true;
    }
    pthread_mutex_unlock(&e->lock);
}

void energy_break(struct energy *e)
{
    pthread_mutex_lock(&e->lock);
    e->have_last = false;
    pthread_mutex_unlock(&e->lock);
}

void energy_get(struct energy *e, double *charged_kwh, double *discharged_kwh)
{
    pthread_mutex_lock(&e->lock);
    *charged_kwh = e->charged_kwh;
    *discharged_kwh = e->discharged_kwh;
    pthread_mutex_unlock(&e->lock);
}

void energy_set(struct energy *e, double charged_kwh, double discharged_kwh)
{
    pthread_mutex_lock(&e->lock);
    if (charged_kwh >= 0)
        e->charged_kwh = charged_kwh;
    if (discharged_kwh >= 0)
        e->discharged_kwh = discharged_kwh;
    pthread_mutex_unlock(&e->lock);
}

int energy_save(const char *path, const char *const *names, struct energy *const *e, size_t n)
{
    json_t *packs = json_object();
    json_t *root = json_pack("{s:i,s:o}", "version", 1, "packs", packs);
    char tmp[4096];
    int rc = -1, fd;

    if (!root)
        return -1;
    for (size_t i = 0; i < n; i++) {
        double c, d;
        energy_get(e[i], &c, &d);
        json_object_set_new(packs, names[i],
                            json_pack("{s:f,s:f}", "charged_kwh", c, "discharged_kwh", d));
    }
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        goto out;
    if (json_dumpfd(root, fd, JSON_INDENT(2)) < 0 || fsync(fd) < 0) {
        int e2 = errno;
        close(fd);
        unlink(tmp);
        errno = e2 ? e2 : EIO;
        goto out;
    }
    close(fd);
    rc = rename(tmp, path);
    if (rc < 0)
        unlink(tmp);
out:
    json_decref(root);
    return rc;
}

int energy_load(const char *path, const char *const *names, struct energy *const *e, size_t n,
                char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root;

    if (access(path, F_OK) < 0 && errno == ENOENT)
        return 0;
    root = json_load_file(path, 0, &jerr);
    if (!root) {
        snprintf(err, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        return -1;
    }
    json_t *packs = json_object_get(root, "packs");
    if (!json_is_object(packs)) {
        snprintf(err, errlen, "%s: no \"packs\" object", path);
        json_decref(root);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_object_get(packs, names[i]);
        json_t *c = json_object_get(p, "charged_kwh"), *d = json_object_get(p, "discharged_kwh");
        energy_set(e[i], json_is_number(c) ? json_number_value(c) : -1,
                   json_is_number(d) ? json_number_value(d) : -1);
    }
    json_decref(root);
    return 0;
}
