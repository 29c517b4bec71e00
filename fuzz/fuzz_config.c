/* SPDX-License-Identifier: MIT */
/* fuzz_config.c - libFuzzer target: any bytes through config_load_buffer(), then config_free(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "driver.h"
#include "url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A port value the links will take: a device, or a URL of a known kind. */
static bool port_ok(const char *port)
{
    struct url u;

    return !port || (strlen(port) <= URL_MAX && url_parse(port, &u, NULL) == 0);
}

static bool known_driver(const struct driver *dr)
{
    for (size_t i = 0; drivers[i]; i++)
        if (drivers[i] == dr)
            return true;
    return false;
}

static bool name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    return n >= 1 && n <= 64 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789_-") == n;
}

/* What a caller may rely on of one bus; a violation is a loader bug. */
static void check_bus(const struct config *cfg, const struct config_bus *b, size_t first)
{
    bool polls_modbus = b->driver && b->driver->wire == DRIVER_WIRE_MODBUS && !b->listen;
    bool own_ports = b->driver && b->driver->port_per_pack && !b->listen;

    if (!name_ok(b->name) || !b->mode || !known_driver(b->driver) || b->n_packs == 0)
        abort();
    if (b->listen && !b->driver->sniff)
        abort();
    if (!config_baud_supported(b->baud) || !(b->timeout_s > 0) || !(b->poll_interval_s >= 0) ||
        !port_ok(b->port) || b->read_chunk < 1 || b->offline_after < 1)
        abort();
    if (!polls_modbus && url_kind(b->port) == URL_MODBUS_TCP)
        abort();
    if (b->rs485_delay_before_ms < 0 || b->rs485_delay_before_ms > CONFIG_RS485_DELAY_MAX_MS ||
        b->rs485_delay_after_ms < 0 || b->rs485_delay_after_ms > CONFIG_RS485_DELAY_MAX_MS)
        abort();
    if (!b->rs485 && (b->rs485_delay_before_ms || b->rs485_delay_after_ms || !b->rs485_rts_on_send))
        abort();
    if (b->echo && b->listen)
        abort();
    if (b->packs != cfg->packs + first)
        abort();
    for (size_t i = 0; i < b->n_packs; i++) {
        const struct config_pack *p = &b->packs[i];
        const char *port = config_pack_port(p);

        if (p->bus != b || !name_ok(p->name) || !driver_addr_ok(b->driver, p->address) ||
            p->line < 1 || p->column < 1 || !port_ok(p->port))
            abort();
        if (!config_baud_supported(config_pack_baud(cfg, p)))
            abort();
        if (p->port && !own_ports && (!b->port || strcmp(p->port, b->port) != 0))
            abort();
        if (b->transport == CONFIG_TRANSPORT_SERIAL && !port)
            abort();
        if (b->rs485 && port && url_kind(port) != URL_DEVICE)
            abort();
    }
}

/* Every field of a and b alike (the strings and packs are the same ones). */
static bool same_bus(const struct config_bus *a, const struct config_bus *b)
{
    return a->name == b->name && a->mode == b->mode && a->driver == b->driver &&
           a->listen == b->listen && a->transport == b->transport && a->port == b->port &&
           a->baud == b->baud && a->read_chunk == b->read_chunk && a->timeout_s == b->timeout_s &&
           a->poll_interval_s == b->poll_interval_s && a->offline_after == b->offline_after &&
           a->rs485 == b->rs485 && a->rs485_rts_on_send == b->rs485_rts_on_send &&
           a->rs485_delay_before_ms == b->rs485_delay_before_ms &&
           a->rs485_delay_after_ms == b->rs485_delay_after_ms && a->echo == b->echo &&
           a->packs == b->packs && a->n_packs == b->n_packs && a->line == b->line &&
           a->column == b->column;
}

/* What a caller may rely on after a successful load; a violation is a loader bug. */
static void check_loaded(const struct config *cfg)
{
    size_t packs = 0;

    if (!cfg->path || !cfg->mqtt.host || !cfg->mqtt.discovery_prefix || !cfg->mqtt.base_topic)
        abort();
    if (cfg->n_packs == 0 || !cfg->packs || cfg->cell_count < 1 || cfg->cell_count > 32)
        abort();
    if (cfg->n_buses == 0 || cfg->n_buses > CONFIG_MAX_BUSES || !cfg->buses)
        abort();
    if (cfg->mqtt.port < 1 || cfg->mqtt.port > 65535)
        abort();
    if (cfg->n_packs > CONFIG_MAX_PACKS || strlen(cfg->mqtt.base_topic) >= CONFIG_TOPIC_MAX ||
        strlen(cfg->mqtt.discovery_prefix) >= CONFIG_TOPIC_MAX ||
        (cfg->mqtt.client_id && strlen(cfg->mqtt.client_id) >= CONFIG_TOPIC_MAX))
        abort();
    /* The transitional view is the first bus. */
    if (!same_bus(&cfg->bus, &cfg->buses[0]))
        abort();
    for (size_t k = 0; k < cfg->n_buses; k++) {
        check_bus(cfg, &cfg->buses[k], packs);
        packs += cfg->buses[k].n_packs;
        for (size_t j = 0; j < k; j++) {
            if (strcmp(cfg->buses[j].name, cfg->buses[k].name) == 0)
                abort();
            /* No port is two buses'. */
            for (size_t i = 0; i < cfg->buses[k].n_packs; i++)
                for (size_t q = 0; q < cfg->buses[j].n_packs; q++) {
                    const char *a = config_pack_port(&cfg->buses[k].packs[i]);
                    const char *b = config_pack_port(&cfg->buses[j].packs[q]);

                    if (a && b && strcmp(a, b) == 0)
                        abort();
                }
        }
    }
    if (packs != cfg->n_packs)
        abort();
    for (size_t i = 0; i < cfg->n_packs; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->packs[j].name, cfg->packs[i].name) == 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char prefix[] = "fuzz.yaml";
    struct config cfg;
    char err[256];

    if (config_load_buffer(&cfg, prefix, (const char *)data, size, err, sizeof err) == 0) {
        check_loaded(&cfg);
        config_free(&cfg);
        return 0;
    }
    /* A refusal is one terminated message naming the input, and leaves nothing behind. */
    if (memchr(err, '\0', sizeof err) == NULL || strncmp(err, prefix, sizeof prefix - 1) != 0)
        abort();
    if (cfg.path || cfg.packs || cfg.n_packs || cfg.buses || cfg.n_buses || cfg.mqtt.host)
        abort();
    config_free(&cfg);
    return 0;
}
