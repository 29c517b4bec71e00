/* SPDX-License-Identifier: MIT */
/* fuzz_config.c - libFuzzer target: any bytes through config_load_buffer(), then config_free(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What a caller may rely on after a successful load; a violation is a loader bug. */
static void check_loaded(const struct config *cfg)
{
    if (!cfg->path || !cfg->mqtt.host || !cfg->mqtt.discovery_prefix || !cfg->mqtt.base_topic)
        abort();
    if (cfg->n_packs == 0 || !cfg->packs || cfg->cell_count < 1 || cfg->cell_count > 32)
        abort();
    if (cfg->mqtt.port < 1 || cfg->mqtt.port > 65535 || !config_baud_supported(cfg->bus.baud))
        abort();
    if (!(cfg->bus.timeout_s > 0) || !(cfg->bus.poll_interval_s >= 0))
        abort();
    for (size_t i = 0; i < cfg->n_packs; i++) {
        const struct config_pack *p = &cfg->packs[i];
        size_t n = p->name ? strlen(p->name) : 0;

        if (n < 1 || n > 64 || p->address < 1 || p->address > 247 || p->line < 1)
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
