/* SPDX-License-Identifier: MIT */
/* listen.c - the listen-only bus (bus.mode passive): packs read from another master's traffic. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "publisher.h"
#include "log.h"
#include "poller_bus.h"
#include "sniff_proto.h"

struct poller_listen {
    struct poller_bus *bus;
    struct sniffer sn; /* the framer of what the bus master speaks (bus.protocol) */
    double now_s;
};

static struct device *poller_pack_at(struct poller_bus *bus, uint8_t addr)
{
    for (size_t i = 0; i < bus->n; i++)
        if (bus->packs[i]->slave == addr)
            return bus->packs[i];
    return NULL;
}

/* The readings a decoder starts a pack's row from (sniff_prior_fn). */
static const double *poller_prior(uint8_t addr, void *ud)
{
    struct device *p = poller_pack_at(ud, addr);

    return p ? p->values : NULL;
}

static void poller_values_unknown(struct device *p)
{
    for (size_t i = 0; i < p->n_defs; i++)
        p->values[i] = NAN;
}

#define POLLER_MAX_FOUND 32 /* packs a listener adds by itself, per bus */

/* The pack of an address heard answering that no configured pack has, named by the
 * protocol's pattern (LP4V2: lifepower4_addr_<id in hex>, as the eg4-battery script named
 * them). NULL past the limit or when out of memory. */
static struct device *poller_found_pack(struct poller_listen *ls, uint8_t addr)
{
    struct poller_bus *bus = ls->bus;
    const struct sniff_proto *proto = ls->sn.proto;
    struct device *p = NULL, **found = NULL, **packs = NULL;
    char *name = malloc(32);

    if (bus->n_found < POLLER_MAX_FOUND && name && (p = calloc(1, sizeof(*p))) &&
        (found = realloc(bus->found, (bus->n_found + 1) * sizeof(*found))) &&
        (bus->found = found, packs = realloc(bus->packs, (bus->n + 1) * sizeof(*packs)))) {
        bus->packs = packs;
        snprintf(name, 32, proto->found_fmt, (unsigned)addr);
        if (device_setup(p, name, proto->driver, addr, bus->pl->cfg, bus->packs[0]->bus) == 0 &&
            publisher_add_pack(bus->pl->pub, p) == 0) {
            p->link = bus->packs[0]->link;
            p->last_good_s = ls->now_s;
            p->owned_name = name;
            poller_values_unknown(p);
            bus->found[bus->n_found++] = p;
            bus->packs[bus->n++] = p;
            log_msg(LOG_LVL_NOTICE, "%s: %s 0x%02x answers %s reads; publishing it as %s",
                    p->link->port, proto->addr_word, addr, proto->short_name, name);
            return p;
        }
        device_teardown(p);
    }
    free(p);
    free(name);
    return NULL;
}

/* A reply that is no reading, published raw (Modbus register reads, by address). */
static void poller_heard_raw(struct poller_listen *ls, const struct sniff_heard *h)
{
    char name[32], json[2048];
    const struct device *p = poller_pack_at(ls->bus, h->addr);

    if (!ls->sn.proto->raw_json || ls->sn.proto->raw_json(h, json, sizeof(json)) == 0)
        return;
    if (p)
        snprintf(name, sizeof(name), "%s", p->name);
    else
        snprintf(name, sizeof(name), ls->sn.proto->found_fmt, (unsigned)h->addr);
    publisher_post_raw(ls->bus->pl->pub, name, json);
}

/* Merge the fields an identity reply gave into the pack's identity. */
static void poller_heard_identity(struct poller_listen *ls, struct device *p,
                                  const struct device_identity *id)
{
    struct device_identity was = p->id;

    if (id->model[0])
        memcpy(p->id.model, id->model, sizeof(p->id.model));
    if (id->firmware[0])
        memcpy(p->id.firmware, id->firmware, sizeof(p->id.firmware));
    if (id->serial[0])
        memcpy(p->id.serial, id->serial, sizeof(p->id.serial));
    if (memcmp(&was, &p->id, sizeof(was)) != 0) {
        log_msg(LOG_LVL_INFO, "pack %s: model '%s', firmware '%s', serial '%s'", p->name,
                p->id.model, p->id.firmware, p->id.serial);
        publisher_post_identity(ls->bus->pl->pub, p);
    }
}

/* One module of a decoded reply: the pack's reading, part of it, its identity, or a failure.
 * A pack nobody configured is added when a reading of it is first heard. */
static void poller_heard_module(struct poller_listen *ls, const struct sniff_module *m)
{
    struct poller_bus *bus = ls->bus;
    struct device *p = poller_pack_at(bus, m->addr);

    if (!p && m->what == SNIFF_READING && !(p = poller_found_pack(ls, m->addr))) {
        if (!(bus->unknown_logged[m->addr / 32] & (1u << (m->addr % 32))))
            log_msg(LOG_LVL_WARNING, "%s: %s 0x%02x answers %s reads but cannot be added",
                    bus->packs[0]->link->port, ls->sn.proto->addr_word, m->addr,
                    ls->sn.proto->short_name);
        bus->unknown_logged[m->addr / 32] |= 1u << (m->addr % 32);
        return;
    }
    if (!p)
        return;
    switch (m->what) {
    case SNIFF_READING:
        p->polls++;
        memcpy(p->values, m->values, p->n_defs * sizeof(*p->values));
        poller_good(p, bus->pl->pub, ls->now_s);
        break;
    case SNIFF_PARTIAL: /* alarms, limits: published with the pack's next reading */
        memcpy(p->values, m->values, p->n_defs * sizeof(*p->values));
        break;
    case SNIFF_IDENTITY:
        poller_heard_identity(ls, p, &m->id);
        break;
    case SNIFF_BAD:
        p->polls++;
        snprintf(p->link->what, sizeof(p->link->what), "heard a reply that does not decode");
        poller_failed(p, bus->pl->pub, m->cause);
        break;
    }
}

/* One frame heard on the bus: the replies the protocol's decoder understands become its
 * packs' readings; other register reads are published raw. */
static void poller_heard(const struct sniff_heard *h, void *ud)
{
    struct poller_listen *ls = ud;
    struct sniff_module mods[SNIFF_MAX_MODULES];
    char line[200];

    if (log_enabled(LOG_LVL_DEBUG)) {
        ls->sn.proto->describe(h, line, sizeof(line));
        log_msg(LOG_LVL_DEBUG, "%s: %s", ls->bus->packs[0]->link->port, line);
    }
    int n = sniffer_decode(&ls->sn, h, (unsigned)ls->bus->pl->cfg->cell_count, poller_prior,
                           ls->bus, mods);
    for (int i = 0; i < n; i++)
        poller_heard_module(ls, &mods[i]);
    poller_heard_raw(ls, h);
}

/* Packs the master has not read for offline_after poll periods are offline. */
static void poller_listen_stale(struct poller_bus *bus, double now_s)
{
    const struct config_bus *cb = bus->packs[0]->bus;
    double period = cb->poll_interval_s > 1 ? cb->poll_interval_s : 1;

    for (size_t i = 0; i < bus->n; i++) {
        struct device *p = bus->packs[i];
        if (now_s - p->last_good_s < period * (p->failures + 1))
            continue;
        snprintf(p->link->what, sizeof(p->link->what), "not read by the bus master lately");
        poller_failed(p, bus->pl->pub, RESULT_TIMEOUT);
    }
}

static bool poller_all_heard(const struct poller_bus *bus)
{
    for (size_t i = 0; i < bus->n; i++)
        if (bus->packs[i]->failures || !bus->packs[i]->polls)
            return false;
    return true;
}

/* Listen to a bus another master polls. The port is opened read-only: nothing is ever
 * written to it. */
void poller_listen(struct poller_bus *bus)
{
    struct poller *pl = bus->pl;
    struct link *l = bus->packs[0]->link;
    struct poller_listen ls = {.bus = bus};
    const struct config_bus *cb = bus->packs[0]->bus;
    const struct sniff_proto *proto = cb->driver->sniff;
    uint8_t buf[256];
    double t0 = (double)pl->t0.tv_sec + pl->t0.tv_nsec / 1e9;

    /* With --once: until every pack has been heard, or three poll periods. */
    double once_until = poller_now() - t0 + 3 * (cb->poll_interval_s > 5 ? cb->poll_interval_s : 5);

    if (!proto || sniffer_open(&ls.sn, proto, (unsigned)l->baud) < 0) {
        log_msg(LOG_LVL_ERROR, "%s: cannot start the listener (out of memory)", l->port);
        return;
    }
    for (size_t i = 0; i < bus->n; i++) {
        bus->packs[i]->last_good_s = poller_now() - t0;
        poller_values_unknown(bus->packs[i]);
    }
    while (!poller_stopping(pl)) {
        ls.now_s = poller_now() - t0;
        if (pl->once && (poller_all_heard(bus) || ls.now_s > once_until))
            break;
        if (link_open(l) != RESULT_OK) {
            poller_listen_stale(bus, ls.now_s);
            if (poller_sleep(pl, poller_now() + 1))
                break;
            continue;
        }
        ssize_t n = link_read(l, buf, sizeof(buf), 200);
        ls.now_s = poller_now() - t0;
        if (n > 0) {
            if (l->trace)
                log_hex(l->port, buf, (size_t)n);
            sniffer_feed(&ls.sn, buf, (size_t)n, ls.now_s, poller_heard, &ls);
        } else if (n == 0) {
            /* The line went quiet: settle what waits for bytes that will not come. */
            sniffer_flush(&ls.sn, poller_heard, &ls);
        }
        poller_listen_stale(bus, ls.now_s);
    }
    sniffer_close(&ls.sn);
    link_close(l);
}
