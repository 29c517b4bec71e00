/* SPDX-License-Identifier: MIT */
/* fuzz_regmap.c - libFuzzer target: register map decoding and reading over arbitrary input. */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lp4v2.h"
#include "regmap.h"

/* The test map with every type (tests/data/regmap_types.csv), generated at build time. */
extern const struct regmap rmtest_map;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort unless text is NUL-terminated UTF-8 within REGMAP_MAX_BLOCK * 4 bytes. */
static void check_text(void *ctx, const struct reading_def *d, const char *text)
{
    size_t n = strnlen(text, 4 * REGMAP_MAX_BLOCK + 1);

    (void)ctx;
    if (n > 4u * d->count)
        abort();
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x80 &&
            (c < 0xC2 || c > 0xC3 || i + 1 >= n || ((unsigned char)text[i + 1] & 0xC0) != 0x80))
            abort(); /* Latin-1 gives two-byte sequences only */
        if (c >= 0x80)
            i++;
        else if (c < 0x20 || c == 0x7F)
            abort();
    }
}

/* A device whose every answer comes from the input: one byte says how it answers, the
 * registers come from the input too (zero once it runs out). */
struct script {
    const uint8_t *d;
    size_t n, at;
};

static uint8_t next(struct script *s)
{
    return s->at < s->n ? s->d[s->at++] : 0;
}

static enum result scripted_read(void *ctx, uint8_t unit, uint16_t start, uint16_t count,
                                 uint16_t *out, uint8_t *exception)
{
    struct script *s = ctx;
    uint8_t how = next(s);

    (void)unit;
    if (count < 1 || count > REGMAP_MAX_BLOCK || (uint32_t)start + count > 65536u)
        abort(); /* the reader never asks for that */
    switch (how % 8) {
    case 5:
        *exception = 0x02;
        return RESULT_REFUSED;
    case 6:
        *exception = how & 0x80 ? 0x0A : 0x04;
        return RESULT_REFUSED;
    case 7:
        return how & 0x80 ? RESULT_TIMEOUT : RESULT_CRC;
    default:
        for (uint16_t i = 0; i < count; i++)
            out[i] = (uint16_t)(next(s) << 8 | next(s));
        return RESULT_OK;
    }
}

static void check_values(const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (isinf(v[i]))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint16_t regs[2 * REGMAP_MAX_BLOCK];
    double values[512];
    struct regmap_sink out = {.values = values, .text = check_text};

    if (size < 4 || rmtest_map.n_defs > 512 || lp4v2_map.n_defs > 512)
        return 0;
    /* The decoder on an arbitrary image at an arbitrary place. */
    uint8_t unit = data[0] & 0x80 ? 225 : 0;
    uint16_t start = (uint16_t)((data[1] & 0x7F) | (data[2] == 0xFF ? 0xFF80 : 0));
    enum regmap_pass pass = data[0] & 1 ? REGMAP_IDENTIFY : REGMAP_POLL;
    size_t n = (size - 3) / 2 > 2 * REGMAP_MAX_BLOCK ? 2 * REGMAP_MAX_BLOCK : (size - 3) / 2;
    if ((size_t)start + n > 65536u)
        n = 65536u - start;
    for (size_t i = 0; i < n; i++)
        regs[i] = (uint16_t)(data[3 + 2 * i] << 8 | data[4 + 2 * i]);
    for (size_t i = 0; i < 512; i++)
        values[i] = NAN;
    regmap_decode(&rmtest_map, pass, unit, start, regs, n, &out);
    check_values(values, rmtest_map.n_defs);
    regmap_decode(&lp4v2_map, pass, 0, start, regs, n, &out);
    check_values(values, lp4v2_map.n_defs);

    /* Passes over the test map against a device scripted by the input: the planner, the
     * splitting and the learning never ask for more than their budget allows. */
    struct regmap_state *st = regmap_state_new(&rmtest_map);
    struct script s = {data, size, 3};
    if (!st)
        abort();
    for (unsigned k = 0; k < 6 && s.at < s.n; k++) {
        enum regmap_pass p = k % 3 == 2 ? REGMAP_IDENTIFY : REGMAP_POLL;
        regmap_read(&rmtest_map, st, p, scripted_read, &s, &out);
        const struct regmap_stats *stats = regmap_stats(st);
        if (stats->requests > stats->blocks + rmtest_map.split_budget + 1)
            abort();
        check_values(values, rmtest_map.n_defs);
    }
    regmap_state_free(st);
    return 0;
}
