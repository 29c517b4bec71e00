/* SPDX-License-Identifier: MIT */
/* victron_scan.c - a GX's devices found by one-register probes, and the scan cache. */
#include "victron_scan.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* The GX's own services: at unit 100 (device instance 0) only. */
static const char *const gx_own[] = {"system", "settings", "hub4", "platform", NULL};

/* What a VE.Bus or VE.Direct port, or the CAN-bus BMS, can be. */
static const char *const port_services[] = {
    "vebus",  "solarcharger", "battery",  "inverter",   "charger", "dcdc",
    "dcload", "dcsource",     "dcsystem", "alternator", NULL,
};

static bool in_list(const char *const *list, const char *name)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], name) == 0)
            return true;
    return false;
}

/* True if unit is one of unitid2di.csv's (a port's) other than 100. */
static bool port_unit(uint8_t unit)
{
    uint8_t ids[256];
    size_t n = victron_scan_unitids(ids, sizeof(ids));

    for (size_t i = 1; i < n && i < sizeof(ids); i++)
        if (ids[i] == unit)
            return true;
    return false;
}

void victron_scan_start(struct victron_scan *s, const struct victron_table *t, const uint8_t *units,
                        size_t n)
{
    memset(s, 0, sizeof(*s));
    s->t = t;
    if (units) {
        s->given = true;
        for (size_t i = 0; i < n; i++) {
            bool dup = false;
            for (size_t k = 0; k < s->n_units; k++)
                dup = dup || s->units[k] == units[i];
            if (units[i] >= 1 && units[i] <= 247 && !dup && s->n_units < sizeof(s->units))
                s->units[s->n_units++] = units[i];
        }
        return;
    }
    s->n_units = victron_scan_unitids(s->units, 248);
    if (s->n_units > 248)
        s->n_units = 248;
    for (unsigned u = 1; u <= VICTRON_SCAN_SMALL_LAST; u++) {
        bool dup = false;
        for (size_t k = 0; k < s->n_units; k++)
            dup = dup || s->units[k] == u;
        if (!dup && s->n_units < sizeof(s->units))
            s->units[s->n_units++] = (uint8_t)u;
    }
}

bool victron_scan_candidate(const struct victron_scan *s, uint8_t unit,
                            const struct victron_service *svc)
{
    if (unit == 100)
        return true;
    if (in_list(gx_own, svc->name))
        return false;
    if (s->given)
        return true;
    if (port_unit(unit))
        return in_list(port_services, svc->name);
    return strcmp(svc->name, "vebus") != 0;
}

unsigned long victron_scan_total(const struct victron_scan *s)
{
    unsigned long n = 0;

    for (size_t u = 0; u < s->n_units; u++)
        for (size_t k = 0; k < s->t->n_services; k++)
            n += victron_scan_candidate(s, s->units[u], &s->t->services[k]);
    return n;
}

enum result victron_scan_step(struct victron_scan *s, unsigned max, victron_probe_fn probe,
                              void *ctx)
{
    unsigned made = 0;

    while (!s->done && (max == 0 || made < max)) {
        if (s->unit_at >= s->n_units) {
            s->done = true;
            break;
        }
        if (s->svc_at >= s->t->n_services) {
            s->svc_at = 0;
            s->unit_at++;
            continue;
        }
        uint8_t unit = s->units[s->unit_at];
        const struct victron_service *svc = &s->t->services[s->svc_at];
        if (s->lacks[s->svc_at] || !victron_scan_candidate(s, unit, svc)) {
            s->svc_at++;
            continue;
        }
        uint8_t ex = 0;
        enum result r = probe(ctx, unit, svc->first_reg, &ex);
        s->requests++;
        made++;
        if (r != RESULT_OK && r != RESULT_REFUSED)
            return r;
        if (r == RESULT_OK) {
            if (s->n_found < VICTRON_SCAN_MAX_FOUND)
                s->found[s->n_found++] = (struct victron_unit_service){unit, svc};
            else
                log_msg(LOG_LVL_WARNING,
                        "victron scan: %s at unit %u left out: more than %d "
                        "devices",
                        svc->name, unit, VICTRON_SCAN_MAX_FOUND);
        } else if (ex == REGMAP_EX_ADDRESS) {
            s->lacks[s->svc_at] = true;
        }
        s->svc_at++;
    }
    return RESULT_OK;
}

/* ---- the cache --------------------------------------------------------------------------- */

int victron_cache_load(const char *path, const struct victron_table *t, struct victron_cache *c,
                       char *why, size_t cap)
{
    json_error_t jerr;
    json_t *root, *v;
    size_t i;

    memset(c, 0, sizeof(*c));
    if (access(path, F_OK) != 0 && errno == ENOENT)
        return 1;
    if (!(root = json_load_file(path, 0, &jerr))) {
        snprintf(why, cap, "%s: %s", path, jerr.text);
        return -1;
    }
    if (!json_is_object(root) || json_integer_value(json_object_get(root, "version")) != 1) {
        snprintf(why, cap, "%s: not a version 1 scan cache", path);
        json_decref(root);
        return -1;
    }
    snprintf(c->serial, sizeof(c->serial), "%s",
             json_string_value(json_object_get(root, "serial")) ?: "");
    c->firmware = (uint32_t)json_integer_value(json_object_get(root, "firmware"));
    c->scanned = json_number_value(json_object_get(root, "scanned"));
    json_array_foreach(json_object_get(root, "devices"), i, v)
    {
        json_int_t unit = json_integer_value(json_array_get(v, 0));
        const char *name = json_string_value(json_array_get(v, 1));
        const struct victron_service *svc = name ? victron_table_service(t, name) : NULL;
        if (svc && unit >= 1 && unit <= 247 && c->n_devs < VICTRON_SCAN_MAX_FOUND)
            c->devs[c->n_devs++] = (struct victron_unit_service){(uint8_t)unit, svc};
    }
    json_array_foreach(json_object_get(root, "refused"), i, v)
    {
        json_int_t unit = json_integer_value(json_array_get(v, 0));
        json_int_t start = json_integer_value(json_array_get(v, 1));
        json_int_t count = json_integer_value(json_array_get(v, 2));
        if (unit >= 1 && unit <= 247 && start >= 0 && count >= 1 && start + count <= 65536 &&
            c->n_refused < sizeof(c->refused) / sizeof(c->refused[0]))
            c->refused[c->n_refused++] =
                (struct regmap_range){(uint8_t)unit, (uint16_t)start, (uint16_t)count};
    }
    json_decref(root);
    return 0;
}

int victron_cache_save(const char *path, const struct victron_cache *c, char *why, size_t cap)
{
    json_t *root = json_object(), *devs = json_array(), *ref = json_array();
    char tmp[4200];
    int rc = -1;

    if (!root || !devs || !ref) {
        snprintf(why, cap, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < c->n_devs; i++)
        json_array_append_new(devs, json_pack("[i,s]", c->devs[i].unit, c->devs[i].svc->name));
    for (size_t i = 0; i < c->n_refused; i++)
        json_array_append_new(ref, json_pack("[i,i,i]", c->refused[i].unit, c->refused[i].start,
                                             c->refused[i].count));
    json_object_set_new(root, "version", json_integer(1));
    json_object_set_new(root, "serial", json_string(c->serial));
    json_object_set_new(root, "firmware", json_integer(c->firmware));
    json_object_set_new(root, "scanned", json_real(c->scanned));
    json_object_set(root, "devices", devs);
    json_object_set(root, "refused", ref);
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)getpid()) >= sizeof(tmp)) {
        snprintf(why, cap, "%s: path too long", path);
        goto out;
    }
    if (json_dump_file(root, tmp, JSON_INDENT(1) | JSON_PRESERVE_ORDER) != 0) {
        snprintf(why, cap, "%s: cannot write: %s", tmp, strerror(errno));
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        snprintf(why, cap, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    json_decref(devs);
    json_decref(ref);
    json_decref(root);
    return rc;
}
