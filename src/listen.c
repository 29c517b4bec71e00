/* SPDX-License-Identifier: MIT */
/* listen.c - the listen-only bus (bus.mode passive): packs read from another master's traffic. */
#include <stdio.h>
#include <stdlib.h>

#include "bridge.h"
#include "log.h"
#include "lp4v2.h"
#include "poller_bus.h"
#include "rtu_sniff.h"

struct poller_listen {
    struct poller_bus *bus;
    double now_s;
};

static struct pack *poller_pack_at(struct poller_bus *bus, uint8_t slave)
{
    for (size_t i = 0; i < bus->n; i++)
        if (bus->packs[i]->slave == slave)
            return bus->packs[i];
    return NULL;
}

#define POLLER_MAX_FOUND 32 /* packs a listener adds by itself, per bus */

/* The pack of a slave heard answering LP4V2 reads that no configured pack has: named
 * as the eg4-battery script named them, lifepower4_addr_<id in hex>. NULL past the limit
 * or when out of memory. */
static struct pack *poller_found_pack(struct poller_bus *bus, uint8_t slave, double now_s)
{
    struct pack *p = NULL, **found = NULL, **packs = NULL;
    char *name = malloc(32);

    if (bus->n_found < POLLER_MAX_FOUND && name && (p = calloc(1, sizeof(*p))) &&
        (found = realloc(bus->found, (bus->n_found + 1) * sizeof(*found))) &&
        (bus->found = found, packs = realloc(bus->packs, (bus->n + 1) * sizeof(*packs)))) {
        bus->packs = packs;
        snprintf(name, 32, "lifepower4_addr_%02x", slave);
        if (pack_setup(p, name, &lp4v2_driver, slave, bus->pl->cfg) == 0 &&
            pack_energy_attach(p, bus->pl->store) == 0 &&
            bridge_add_pack(bus->pl->bridge, p) == 0) {
            p->raw = bus->packs[0]->raw;
            p->last_good_s = now_s;
            p->owned_name = name;
            bus->found[bus->n_found++] = p;
            bus->packs[bus->n++] = p;
            log_msg(LOG_LVL_NOTICE, "%s: slave 0x%02x answers LP4V2 reads; publishing it as %s",
                    p->raw->port, slave, name);
            return p;
        }
        pack_teardown(p);
    }
    free(p);
    free(name);
    return NULL;
}

/* A read that is not a pack's block, published raw by absolute register address. */
static void poller_heard_raw(struct poller_bus *bus, const struct rtu_exchange *x,
                             const struct pack *p)
{
    char name[32], json[2048];
    size_t off;

    if (p)
        snprintf(name, sizeof(name), "%s", p->name);
    else
        snprintf(name, sizeof(name), "lifepower4_addr_%02x", x->slave);
    off = (size_t)snprintf(json, sizeof(json), "{\"slave\":%u,\"function\":%u,\"registers\":{",
                           x->slave, x->function);
    for (size_t i = 0; i < x->n_registers && off + 24 < sizeof(json); i++)
        off += (size_t)snprintf(json + off, sizeof(json) - off, "%s\"%u\":%u", i ? "," : "",
                                (unsigned)(x->start + i), x->registers[i]);
    snprintf(json + off, sizeof(json) - off, "}}");
    bridge_publish_raw(bus->pl->bridge, name, json);
}

/* One exchange seen on the bus: an LP4V2 block read (start 0, 39 registers or more)
 * becomes the reading of the slave's pack (configured, or added on first sight); any
 * other register read is published raw. */
static void poller_heard(const struct rtu_exchange *x, void *ud)
{
    struct poller_listen *ls = ud;
    struct poller_bus *bus = ls->bus;
    struct pack *p;
    char line[200];

    if (log_enabled(LOG_LVL_DEBUG)) {
        rtu_sniff_describe(x, line, sizeof(line));
        log_msg(LOG_LVL_DEBUG, "%s: %s", bus->packs[0]->raw->port, line);
    }
    if (x->kind != RTU_SNIFF_RESPONSE || !x->paired || (x->function != 0x03 && x->function != 0x04))
        return;
    p = poller_pack_at(bus, x->slave);
    bool block = x->function == 0x03 && x->start == 0 && x->n_registers >= LP4V2_DOC_COUNT;
    if (!block) {
        poller_heard_raw(bus, x, p);
        return;
    }
    if (!p && !(p = poller_found_pack(bus, x->slave, ls->now_s))) {
        if (!(bus->unknown_logged[x->slave / 32] & (1u << (x->slave % 32))))
            log_msg(LOG_LVL_WARNING, "%s: slave 0x%02x answers LP4V2 reads but cannot be added",
                    bus->packs[0]->raw->port, x->slave);
        bus->unknown_logged[x->slave / 32] |= 1u << (x->slave % 32);
        return;
    }
    p->polls++;
    if (lp4v2_decode(x->registers, x->n_registers, p->values) < 0) {
        poller_failed(p, bus->pl->bridge, MB_ERR_ZERO);
        return;
    }
    poller_good(p, bus->pl->bridge, ls->now_s);
}

/* Packs the master has not read for offline_after poll periods are offline. */
static void poller_listen_stale(struct poller_bus *bus, double now_s)
{
    const struct config *cfg = bus->pl->cfg;
    double period = cfg->bus.poll_interval_s > 1 ? cfg->bus.poll_interval_s : 1;

    for (size_t i = 0; i < bus->n; i++) {
        struct pack *p = bus->packs[i];
        if (now_s - p->last_good_s < period * (p->failures + 1))
            continue;
        snprintf(p->raw->what, sizeof(p->raw->what), "not read by the bus master lately");
        poller_failed(p, bus->pl->bridge, MB_ERR_TIMEOUT);
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
    struct ser_link *l = bus->packs[0]->raw;
    struct poller_listen ls = {bus, 0};
    struct rtu_sniff sniff;
    uint8_t buf[256];
    double t0 = (double)pl->t0.tv_sec + pl->t0.tv_nsec / 1e9;

    /* With --once: until every pack has been heard, or three poll periods. */
    double once_until = poller_now() - t0 +
                        3 * (pl->cfg->bus.poll_interval_s > 5 ? pl->cfg->bus.poll_interval_s : 5);

    rtu_sniff_init(&sniff, (unsigned)l->baud);
    for (size_t i = 0; i < bus->n; i++)
        bus->packs[i]->last_good_s = poller_now() - t0;
    while (!poller_stopping(pl)) {
        ls.now_s = poller_now() - t0;
        if (pl->once && (poller_all_heard(bus) || ls.now_s > once_until))
            break;
        if (l->fd < 0 && ser_open(l) != MB_OK) {
            poller_listen_stale(bus, ls.now_s);
            if (poller_sleep(pl, poller_now() + 1))
                break;
            continue;
        }
        ssize_t n = ser_read(l, buf, sizeof(buf), 200);
        ls.now_s = poller_now() - t0;
        if (n > 0) {
            if (l->trace)
                log_hex(l->port, buf, (size_t)n);
            rtu_sniff_feed(&sniff, buf, (size_t)n, ls.now_s, poller_heard, &ls);
        } else if (n == 0) {
            /* The line went quiet: settle what waits for bytes that will not come. */
            rtu_sniff_flush(&sniff, poller_heard, &ls);
        }
        poller_listen_stale(bus, ls.now_s);
    }
    ser_close(l);
}
