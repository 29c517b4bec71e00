/* SPDX-License-Identifier: MIT */
/* fuzz_config.c - libFuzzer target: any bytes through config_load_buffer(), then config_free(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The address range of each mode (bms2mqtt.yaml(5), PACKS). */
static bool address_ok(const struct config *cfg, int a)
{
    switch (cfg->bus.mode) {
    case CONFIG_MODE_ACTIVE:
        return a >= 0 && a <= 15;
    case CONFIG_MODE_LP4_ASCII:
        return a >= 1 && a <= 15;
    case CONFIG_MODE_PYLONTECH:
        return a >= 2 && a <= 0x7D && (a & 0x0F) >= 2 && (a & 0x0F) <= 13;
    default:
        return a >= 1 && a <= 247;
    }
}

/* A port value the links will take: a device, or a URL of a known kind. */
static bool port_ok(const char *port)
{
    struct url u;

    return !port || (strlen(port) <= URL_MAX && url_parse(port, &u, NULL) == 0);
}

/* What a caller may rely on after a successful load; a violation is a loader bug. */
static void check_loaded(const struct config *cfg)
{
    if (!cfg->path || !cfg->mqtt.host || !cfg->mqtt.discovery_prefix || !cfg->mqtt.base_topic)
        abort();
    if (cfg->n_packs == 0 || !cfg->packs || cfg->cell_count < 1 || cfg->cell_count > 32)
        abort();
    if (cfg->mqtt.port < 1 || cfg->mqtt.port > 65535 || !config_baud_supported(cfg->bus.baud))
        abort();
    if (!(cfg->bus.timeout_s > 0) || !(cfg->bus.poll_interval_s >= 0) || !port_ok(cfg->bus.port))
        abort();
    if (cfg->n_packs > CONFIG_MAX_PACKS || strlen(cfg->mqtt.base_topic) >= CONFIG_TOPIC_MAX ||
        strlen(cfg->mqtt.discovery_prefix) >= CONFIG_TOPIC_MAX ||
        (cfg->mqtt.client_id && strlen(cfg->mqtt.client_id) >= CONFIG_TOPIC_MAX))
        abort();
    if (cfg->bus.mode != CONFIG_MODE_MODBUS_PER_PACK && url_kind(cfg->bus.port) == URL_MODBUS_TCP)
        abort();
    for (size_t i = 0; i < cfg->n_packs; i++) {
        const struct config_pack *p = &cfg->packs[i];
        size_t n = p->name ? strlen(p->name) : 0;

        if (n < 1 || n > 64 || !address_ok(cfg, p->address) || p->line < 1 || !port_ok(p->port))
            abort();
        if (!config_baud_supported(config_pack_baud(cfg, p)))
            abort();
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cfg->packs[j].name, p->name) == 0)
                abort();
        }
    }
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
    if (cfg.path || cfg.packs || cfg.n_packs || cfg.mqtt.host)
        abort();
    config_free(&cfg);
    return 0;
}
