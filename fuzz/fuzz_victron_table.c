/* SPDX-License-Identifier: MIT */
/* fuzz_victron_table.c - libFuzzer target: a GX's attributes.csv parser over arbitrary text. */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "regmap.h"
#include "victron_table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(void *ctx, const char *msg)
{
    (void)ctx;
    if (!msg || strlen(msg) > 1024)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct victron_load_opts opts = {.warn = quiet};
    struct victron_table *t = NULL;
    char err[256];
    uint16_t regs[REGMAP_MAX_BLOCK];
    double values[4096];

    if (victron_table_parse((const char *)data, size, "fuzz.csv", &opts, &t, err, sizeof(err)) <
        0) {
        if (t || strncmp(err, "fuzz.csv", 8) != 0)
            abort(); /* a refusal names the file, and gives no table */
        return 0;
    }
    /* Every map is sound; keys fit; every register has at most one owner; decoding an image of
     * the input's bytes is safe. */
    for (size_t i = 0; i < REGMAP_MAX_BLOCK; i++)
        regs[i] = (uint16_t)(size ? data[(2 * i) % size] << 8 | data[(2 * i + 1) % size] : 0);
    for (size_t s = 0; s < t->n_services; s++) {
        const struct victron_service *svc = &t->services[s];
        if (regmap_check(&svc->map, err, sizeof(err)) < 0)
            abort();
        for (size_t i = 0; i < svc->map.n_defs; i++) {
            const struct reading_def *d = &svc->map.defs[i];
            if (strlen(d->key) == 0 || strlen(d->key) > READING_KEY_MAX)
                abort();
            if (victron_table_owner(t, d->reg) != svc || victron_service_find(svc, d->reg) < 0)
                abort();
        }
        if (svc->map.n_defs <= sizeof(values) / sizeof(values[0])) {
            struct regmap_sink sink = {.values = values};
            regmap_decode(&svc->map, REGMAP_POLL, 0, svc->first_reg, regs, REGMAP_MAX_BLOCK, &sink);
        }
    }
    victron_table_free(t);
    return 0;
}
