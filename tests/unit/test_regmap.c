/* SPDX-License-Identifier: MIT */
/* test_regmap.c - register maps: block planning, decoding every type, learning refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "regmap.h"

/* Generated at build time from tests/data/regmap_types.csv (tools/gen_regmap.py). */
extern const struct reading_def rmtest_readings[];
extern const size_t rmtest_n_readings;
extern const struct regmap rmtest_map;

/* ---- a fake device ------------------------------------------------------------------------ */

#define FAKE_LOG 512

/*
 * Registers 0..65535, the same at every unit that is present. A request that covers a refused
 * register, or is longer than max_len, gets exception 0x02 (as a GX answers a hole); a unit not
 * present gets 0x0A; request number timeout_at (1-based) times out.
 */
struct fake {
    uint16_t regs[65536];
    bool refused[65536];
    bool present[256];
    unsigned max_len;
    unsigned timeout_at;
    unsigned n;                        /* requests */
    struct regmap_range log[FAKE_LOG]; /* the first FAKE_LOG of them */
};

static struct fake dev;

static void fake_reset(void)
{
    memset(&dev, 0, sizeof(dev));
    for (unsigned u = 0; u < 256; u++)
        dev.present[u] = true;
    for (unsigned r = 0; r < 65536; r++)
        dev.regs[r] = (uint16_t)(r + 1000);
}

static enum result fake_read(void *ctx, uint8_t unit, uint16_t start, uint16_t count, uint16_t *out,
                             uint8_t *exception)
{
    struct fake *f = ctx;

    assert_in_range(count, 1, REGMAP_MAX_BLOCK);
    assert_true((uint32_t)start + count <= 65536u);
    if (f->n < FAKE_LOG)
        f->log[f->n] = (struct regmap_range){unit, start, count};
    if (++f->n == f->timeout_at)
        return RESULT_TIMEOUT;
    if (!f->present[unit]) {
        *exception = 0x0A;
        return RESULT_REFUSED;
    }
    if (f->max_len && count > f->max_len) {
        *exception = 0x02;
        return RESULT_REFUSED;
    }
    for (unsigned r = start; r < (unsigned)start + count; r++) {
        if (f->refused[r]) {
            *exception = 0x02;
            return RESULT_REFUSED;
        }
    }
    memcpy(out, &f->regs[start], count * sizeof(out[0]));
    return RESULT_OK;
}

/* ---- hand-made maps ----------------------------------------------------------------------- */

#define U16(k, r)                                                                                  \
    {                                                                                              \
        .key = k, .name = k, .q = Q_NUMBER, .src = SRC_U16, .reg = r                               \
    }
#define U16_AT(k, u, r)                                                                            \
    {                                                                                              \
        .key = k, .name = k, .q = Q_NUMBER, .src = SRC_U16, .reg = r, .unit = u                    \
    }
#define U16_SEG(k, r, s)                                                                           \
    {                                                                                              \
        .key = k, .name = k, .q = Q_NUMBER, .src = SRC_U16, .reg = r, .segment = s                 \
    }
#define U32(k, r)                                                                                  \
    {                                                                                              \
        .key = k, .name = k, .q = Q_NUMBER, .src = SRC_U32, .reg = r                               \
    }
#define SPACER(r, n, s)                                                                            \
    {                                                                                              \
        .src = SRC_RESERVED, .reg = r, .count = n, .segment = s                                    \
    }
#define IDSTR(k, r, n)                                                                             \
    {                                                                                              \
        .key = k, .src = SRC_STRING, .reg = r, .count = n, .flags = READING_IDENTITY               \
    }
#define MAP(d, a, skip, holes, budget)                                                             \
    {                                                                                              \
        .name = "test", .defs = d, .n_defs = sizeof(d) / sizeof(d[0]), .aux = a,                   \
        .n_aux = sizeof(a) / sizeof(a[0]), .max_skip = skip, .holes_readable = holes,              \
        .split_budget = budget                                                                     \
    }
#define MAP0(d, skip, holes, budget)                                                               \
    {                                                                                              \
        .name = "test", .defs = d, .n_defs = sizeof(d) / sizeof(d[0]), .max_skip = skip,           \
        .holes_readable = holes, .split_budget = budget                                            \
    }

static struct reading_def flat_defs[40];

/* 40 u16 entries at 0..39, each its own reading. */
static struct regmap flat_map(unsigned budget)
{
    static char keys[40][8];

    for (unsigned i = 0; i < 40; i++) {
        snprintf(keys[i], sizeof(keys[i]), "r%u", i);
        flat_defs[i] = (struct reading_def)U16(keys[i], (uint16_t)i);
    }
    return (struct regmap){.name = "flat",
                           .defs = flat_defs,
                           .n_defs = 40,
                           .max_skip = 16,
                           .split_budget = budget,
                           .recheck_every = 0};
}

/* The plan of `pass` of map equals want[0..n) (unit, start, count triples). */
static void assert_plan(const struct regmap *map, enum regmap_pass pass,
                        const struct regmap_range *want, size_t n)
{
    struct regmap_state *st = regmap_state_new(map);
    struct regmap_range got[64];

    assert_non_null(st);
    size_t k = regmap_plan(st, pass, got, 64);
    for (size_t i = 0; i < k && i < 64; i++)
        print_message("  block %zu: unit %u, %u registers from %u\n", i, got[i].unit, got[i].count,
                      got[i].start);
    assert_int_equal(k, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(got[i].unit, want[i].unit);
        assert_int_equal(got[i].start, want[i].start);
        assert_int_equal(got[i].count, want[i].count);
    }
    regmap_state_free(st);
}

/* ---- planning ----------------------------------------------------------------------------- */

static const struct reading_def gap_defs[] = {
    U16("a", 0), U16("b", 1), U16("c", 5), U16("d", 30), U32("e", 31),
};

static void test_plan_reads_across_small_gaps_only_where_holes_are_readable(void **state)
{
    const struct regmap readable = MAP0(gap_defs, 8, true, 0);
    const struct regmap holes = MAP0(gap_defs, 8, false, 0);
    const struct regmap_range want_readable[] = {{0, 0, 6}, {0, 30, 3}};
    const struct regmap_range want_holes[] = {{0, 0, 2}, {0, 5, 1}, {0, 30, 3}};
    (void)state;

    /* 2..4 undefined: read across (3 <= max_skip 8) when the device answers for them; 6..29
     * (24 registers) never. */
    assert_plan(&readable, REGMAP_POLL, want_readable, 2);
    /* A GX fails a request with an undefined register in it: never read across one. */
    assert_plan(&holes, REGMAP_POLL, want_holes, 3);
}

static const struct reading_def seg_defs[] = {
    U16_SEG("a", 0, 1),  U16_SEG("b", 4, 1),  U16_SEG("c", 5, 2),
    U16_SEG("d", 10, 1), U16_SEG("e", 11, 1),
};
static const struct reading_def seg_aux[] = {
    SPACER(1, 3, 1), /* 1..3: a GX's reserved spacers between a and b */
    SPACER(6, 4, 2), /* 6..9: trailing spacers of segment 2 */
};

static void test_plan_bridges_spacers_and_stops_at_segments(void **state)
{
    const struct regmap map = MAP(seg_defs, seg_aux, 16, false, 0);
    /* a, spacers, b in one request; c alone (another segment; its spacers are not worth
     * reading at the end of a request); d and e: segment 1 again after segment 2 (a GX's
     * settings and hub4 registers interleave). */
    const struct regmap_range want[] = {{0, 0, 5}, {0, 5, 1}, {0, 10, 2}};
    (void)state;

    assert_plan(&map, REGMAP_POLL, want, 3);
}

static struct reading_def long_defs[200];

static void test_plan_at_most_125_registers_and_never_splits_an_entry(void **state)
{
    static char keys[200][8];
    (void)state;

    for (unsigned i = 0; i < 200; i++) {
        snprintf(keys[i], sizeof(keys[i]), "r%u", i);
        long_defs[i] = (struct reading_def)U16(keys[i], (uint16_t)i);
    }
    const struct regmap flat = MAP0(long_defs, 16, false, 0);
    const struct regmap_range want_flat[] = {{0, 0, 125}, {0, 125, 75}};
    assert_plan(&flat, REGMAP_POLL, want_flat, 2);

    /* A 32-bit value at 124..125 does not fit the first request: it starts the second. */
    long_defs[124] = (struct reading_def)U32(keys[124], 124);
    const struct regmap with_u32 = {.name = "test", .defs = long_defs, .n_defs = 125};
    const struct regmap_range want_u32[] = {{0, 0, 124}, {0, 124, 2}};
    assert_plan(&with_u32, REGMAP_POLL, want_u32, 2);

    /* A map's own limit. */
    const struct regmap small = {.name = "test", .defs = long_defs, .n_defs = 20, .max_block = 8};
    const struct regmap_range want_small[] = {{0, 0, 8}, {0, 8, 8}, {0, 16, 4}};
    assert_plan(&small, REGMAP_POLL, want_small, 3);
}

static const struct reading_def unit_defs[] = {
    U16_AT("u2", 2, 5),
    U16_AT("u1b", 1, 7),
    U16_AT("u1a", 1, 6),
    U16_AT("u0", 0, 100),
};

static void test_plan_sorts_by_unit_and_address(void **state)
{
    const struct regmap map = MAP0(unit_defs, 16, false, 0);
    const struct regmap_range want[] = {{0, 100, 1}, {1, 6, 2}, {2, 5, 1}};
    (void)state;

    assert_plan(&map, REGMAP_POLL, want, 3);
}

static const struct reading_def pass_defs[] = {U16("a", 0), U16("b", 4), U16("c", 30)};
static const struct reading_def pass_aux[] = {IDSTR("model", 1, 3), IDSTR("serial", 31, 20)};

static void test_plan_passes_and_max_skip(void **state)
{
    const struct regmap map = MAP(pass_defs, pass_aux, 16, false, 0);
    /* The poll reads across the model (3 registers it does not need), not across the serial:
     * c is the end of the request and 31..50 are not needed. */
    const struct regmap_range want_poll[] = {{0, 0, 5}, {0, 30, 1}};
    const struct regmap_range want_id[] = {{0, 1, 3}, {0, 31, 20}};
    const struct regmap tight = MAP(pass_defs, pass_aux, 2, false, 0);
    const struct regmap_range want_tight[] = {{0, 0, 1}, {0, 4, 1}, {0, 30, 1}};
    (void)state;

    assert_plan(&map, REGMAP_POLL, want_poll, 2);
    assert_plan(&map, REGMAP_IDENTIFY, want_id, 2);
    assert_plan(&tight, REGMAP_POLL, want_tight, 3);
}

static void test_plan_avoids_refused_ranges_until_reset(void **state)
{
    const struct regmap map = flat_map(4);
    struct regmap_range got[8], held[4];
    const struct regmap_range five = {0, 5, 1}, bad = {0, 65535, 2};
    struct regmap_state *st = regmap_state_new(&map);
    (void)state;

    assert_non_null(st);
    assert_int_equal(regmap_plan(st, REGMAP_POLL, got, 8), 1);
    assert_int_equal(regmap_refuse(st, &five), 0);
    assert_int_equal(regmap_refused(st, held, 4), 1);
    assert_int_equal(held[0].start, 5);
    assert_int_equal(regmap_plan(st, REGMAP_POLL, got, 8), 2);
    assert_int_equal(got[0].start, 0);
    assert_int_equal(got[0].count, 5);
    assert_int_equal(got[1].start, 6);
    assert_int_equal(got[1].count, 34);
    assert_int_equal(regmap_refuse(st, &bad), -EINVAL);
    regmap_state_reset(st);
    assert_int_equal(regmap_refused(st, NULL, 0), 0);
    assert_int_equal(regmap_plan(st, REGMAP_POLL, got, 8), 1);
    regmap_state_free(st);
}

static void test_check_rejects_bad_maps(void **state)
{
    static const struct reading_def bad_bit[] = {
        {.key = "b", .q = Q_PROBLEM, .src = SRC_BIT, .reg = 1, .arg = 16}};
    static const struct reading_def spacer_in_defs[] = {SPACER(1, 2, 0)};
    static const struct reading_def seg_overlap[] = {U16_SEG("a", 1, 1), U16_SEG("b", 1, 2)};
    static const struct reading_def dup_key[] = {U16("a", 1), U16("a", 2)};
    static const struct reading_def too_long[] = {IDSTR("s", 0, 126)};
    const struct regmap maps[] = {
        MAP0(bad_bit, 0, false, 0),     MAP0(spacer_in_defs, 0, false, 0),
        MAP0(seg_overlap, 0, false, 0), MAP0(dup_key, 0, false, 0),
        MAP0(too_long, 0, false, 0),    MAP0(gap_defs, 0, false, 1),
    };
    char err[160];
    (void)state;

    for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
        err[0] = '\0';
        assert_int_equal(regmap_check(&maps[i], err, sizeof(err)), -1);
        print_message("  %s\n", err);
        assert_true(strncmp(err, "test", 4) == 0);
        assert_null(regmap_state_new(&maps[i]));
    }
    assert_int_equal(regmap_check(&rmtest_map, err, sizeof(err)), 0);
}

/* ---- decoding ----------------------------------------------------------------------------- */

static double val(const double *v, const char *key)
{
    int i = reading_find(rmtest_readings, rmtest_n_readings, key);
    assert_true(i >= 0);
    return v[i];
}

struct texts {
    char l1[64], a[64];
    unsigned calls;
};

static void put_text(void *ctx, const struct reading_def *d, const char *text)
{
    struct texts *t = ctx;

    t->calls++;
    snprintf(strcmp(d->key, "name_l1") == 0 ? t->l1 : t->a, 64, "%s", text);
}

/* Put the bytes b[0..n) into registers from r, high byte first. */
static void put_bytes(uint16_t *regs, unsigned r, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint16_t c = (unsigned char)b[i];
        regs[r + i / 2] = i % 2 ? (uint16_t)((regs[r + i / 2] & 0xFF00u) | c)
                                : (uint16_t)((regs[r + i / 2] & 0x00FFu) | c << 8);
    }
}

static void types_image(uint16_t *r)
{
    memset(r, 0, 40 * sizeof(r[0]));
    r[0] = 5240;                                          /* u16 / 100 */
    r[1] = (uint16_t)-100;                                /* s16 / 10 */
    r[2] = 0x0001, r[3] = 0x0002;                         /* u32 high word first: 0x00010002 */
    r[4] = 0x0002, r[5] = 0x0001;                         /* u32 low word first: 0x00010002 */
    r[6] = 0xFFFF, r[7] = 0xFFFE;                         /* s32 high first: -2 */
    r[8] = 0xFFFE, r[9] = 0xFFFF;                         /* s32 low first: -2 */
    r[10] = 0, r[11] = 0, r[12] = 0x6955, r[13] = 0xB900; /* u64: 1767225600 */
    r[14] = 5;                                            /* / 0.1: 50 W */
    r[15] = 7;                                            /* / -1: -7 Ah */
    r[16] = 25;                                           /* / -10: -2.5 Ah */
    r[17] = (uint16_t)(523456789u >> 16), r[18] = (uint16_t)(523456789u & 0xFFFF); /* / 1e7 */
    r[19] = 0xFFFF;                                                                /* na_ones u16 */
    r[20] = 0xFFFF, r[21] = 0xFFFF;                                                /* na_ones u32 */
    r[22] = 0x8000;                                                                /* na_min s16 */
    r[23] = 3;      /* enum 2-4 = Busy */
    r[24] = 0xA5FE; /* bit 3 set, high byte 165, low byte -2 */
    r[25] = 0x1234;
    r[26] = 0xFFFF, r[27] = 0xFFFF;      /* spacers */
    put_bytes(r, 28, "Caf\xE9\0Xyz", 8); /* Latin-1, cut at the NUL */
    put_bytes(r, 32, "A\0B\xE9  ", 6);   /* ASCII: NUL and é dropped, no cut */
}

static void test_decode_every_type(void **state)
{
    uint16_t r[40];
    double v[64];
    struct texts t = {.calls = 0};
    struct regmap_sink out = {.values = v, .text = put_text, .ctx = &t};
    (void)state;

    assert_true(rmtest_n_readings <= 64);
    for (size_t i = 0; i < rmtest_n_readings; i++)
        v[i] = 42;
    types_image(r);
    regmap_clear(&rmtest_map, REGMAP_POLL, &out);
    assert_true(isnan(val(v, "u16_v")));
    assert_float_equal(val(v, "derived_w"), 42, 0); /* the protocol's */
    regmap_decode(&rmtest_map, REGMAP_POLL, 0, 0, r, 40, &out);
    assert_float_equal(val(v, "u16_v"), 52.40, 1e-12);
    assert_float_equal(val(v, "s16_a"), -10.0, 1e-12);
    assert_float_equal(val(v, "u32_hi"), 65538, 0);
    assert_float_equal(val(v, "u32_lo"), 65538, 0);
    assert_float_equal(val(v, "s32_hi"), -2, 0);
    assert_float_equal(val(v, "s32_lo"), -2, 0);
    assert_float_equal(val(v, "u64_t"), 1767225600.0, 0);
    assert_float_equal(val(v, "w_tenth"), 50, 1e-9);
    assert_float_equal(val(v, "ah_neg1"), -7, 0);
    assert_float_equal(val(v, "ah_neg10"), -2.5, 1e-12);
    assert_float_equal(val(v, "deg_1e7"), 52.3456789, 1e-12);
    assert_true(isnan(val(v, "na_u16")));
    assert_true(isnan(val(v, "na_u32")));
    assert_true(isnan(val(v, "na_s16")));
    assert_float_equal(val(v, "state"), 2, 0); /* "Busy" */
    assert_float_equal(val(v, "flag_b3"), 1, 0);
    assert_float_equal(val(v, "byte_hi"), 165, 0);
    assert_float_equal(val(v, "byte_lo_s"), -2, 0);
    assert_float_equal(val(v, "raw_24"), 0xA5FE, 0);
    assert_float_equal(val(v, "raw_25"), 0x1234, 0);
    assert_float_equal(val(v, "derived_w"), 42, 0);
    assert_true(isnan(val(v, "other_unit"))); /* unit 225: not in this image */
    assert_int_equal(t.calls, 0);             /* the strings are read by identify */

    /* Not-available markers only when the whole value is the marker; other codes. */
    r[19] = 0xFFFE;
    r[20] = 0xFFFF, r[21] = 0x0000;
    r[22] = 0xFFFF;
    r[23] = 10;
    r[17] = (uint16_t)((uint32_t)-1234567890 >> 16), r[18] = (uint16_t)((uint32_t)-1234567890);
    r[10] = 0, r[11] = 1, r[12] = 0, r[13] = 0;
    regmap_decode(&rmtest_map, REGMAP_POLL, 0, 0, r, 40, &out);
    assert_float_equal(val(v, "na_u16"), 65534, 0);
    assert_float_equal(val(v, "na_u32"), 4294901760.0, 0);
    assert_float_equal(val(v, "na_s16"), -1, 0);
    assert_float_equal(val(v, "state"), 3, 0); /* 10 = "Error", as 5 */
    assert_float_equal(val(v, "deg_1e7"), -123.456789, 1e-12);
    assert_float_equal(val(v, "u64_t"), 4294967296.0, 0);
    r[23] = 7; /* no option: unknown, not a wrong text */
    regmap_decode(&rmtest_map, REGMAP_POLL, 0, 0, r, 40, &out);
    assert_true(isnan(val(v, "state")));

    /* Only entries wholly in the image: 0..2 has u16_v and s16_a, not u32_hi (2..3). */
    regmap_clear(&rmtest_map, REGMAP_POLL, &out);
    regmap_decode(&rmtest_map, REGMAP_POLL, 0, 0, r, 3, &out);
    assert_false(isnan(val(v, "s16_a")));
    assert_true(isnan(val(v, "u32_hi")));
    regmap_decode(&rmtest_map, REGMAP_POLL, 225, 0, r, 1, &out);
    assert_float_equal(val(v, "other_unit"), 52.40, 1e-12);

    /* Identify: the strings. */
    regmap_decode(&rmtest_map, REGMAP_IDENTIFY, 0, 28, r + 28, 7, &out);
    assert_int_equal(t.calls, 2);
    assert_string_equal(t.l1, "Caf\xC3\xA9"); /* é in UTF-8 */
    assert_string_equal(t.a, "AB");
}

static void test_reading_text_limits_and_source_text(void **state)
{
    const struct reading_def s = {.key = "s", .src = SRC_STRING, .reg = 0, .count = 4};
    uint16_t r[4] = {0};
    char out[8], src[96];
    (void)state;

    put_bytes(r, 0, " \xE9\xE9\xE9\xE9 ", 6);
    /* cap 6: " éé" fits (1 + 2 + 2 bytes and the NUL), a third é does not; trimmed. */
    assert_int_equal(reading_text(&s, r, out, 6), 4);
    assert_string_equal(out, "\xC3\xA9\xC3\xA9");
    assert_int_equal(reading_text(&s, r, out, 0), -1);
    const struct reading_def u = {.key = "u", .src = SRC_U16};
    assert_int_equal(reading_text(&u, r, out, sizeof(out)), -1);
    assert_string_equal(out, "");

    const struct reading_def lo = {.src = SRC_S32,
                                   .reg = 2716,
                                   .unit = 100,
                                   .divisor = -10,
                                   .flags = READING_LOW_WORD_FIRST | READING_NA_ONES};
    reading_source_text(&lo, src, sizeof(src));
    assert_string_equal(src, "unit 100 reg 2716 s32 low word first / -10 (0xFFFF: unknown)");
    const struct reading_def tenth = {.src = SRC_U16, .reg = 12, .divisor = 0.1};
    reading_source_text(&tenth, src, sizeof(src));
    assert_string_equal(src, "reg 12 u16 / 0.1");
    const struct reading_def str = {.src = SRC_STRING, .reg = 105, .count = 12};
    reading_source_text(&str, src, sizeof(src));
    assert_string_equal(src, "reg 105 string[12]");
    const struct reading_def low = {.src = SRC_U8, .reg = 25, .arg = 1, .divisor = 1};
    reading_source_text(&low, src, sizeof(src));
    assert_string_equal(src, "reg 25 low byte");
}

/* ---- reading through a fake device -------------------------------------------------------- */

static void test_refused_registers_are_learnt_then_planned_around(void **state)
{
    struct regmap map = flat_map(64);
    struct regmap_state *st = regmap_state_new(&map);
    struct regmap_range held[4];
    double v[40];
    struct regmap_sink out = {.values = v};
    (void)state;

    fake_reset();
    dev.refused[17] = dev.refused[30] = true;
    assert_int_equal(regmap_read(&map, st, REGMAP_POLL, fake_read, &dev, &out), RESULT_OK);
    const struct regmap_stats *s = regmap_stats(st);
    print_message("  first pass: %u requests (%u refused) to learn 2 refused registers of 40\n",
                  s->requests, s->refused);
    /* Halving: 1 for the block, 9 to find 17 in 0..19, 11 to find 30 in 20..39. */
    assert_int_equal(s->requests, 21);
    assert_int_equal(s->learnt, 2);
    for (unsigned i = 0; i < 40; i++) {
        if (i == 17 || i == 30)
            assert_true(isnan(v[i]));
        else
            assert_float_equal(v[i], 1000 + i, 0); /* read in this pass already */
    }
    assert_int_equal(regmap_refused(st, held, 4), 2);
    assert_int_equal(held[0].start, 17);
    assert_int_equal(held[1].start, 30);

    dev.n = 0;
    assert_int_equal(regmap_read(&map, st, REGMAP_POLL, fake_read, &dev, &out), RESULT_OK);
    print_message("  next passes: %u requests\n", s->requests);
    assert_int_equal(s->requests, 3); /* 0..16, 18..29, 31..39 */
    assert_int_equal(s->refused, 0);
    assert_int_equal(dev.log[1].start, 18);
    assert_int_equal(dev.log[1].count, 12);
    assert_float_equal(v[39], 1039, 0);

    /* What a caller persists comes back into a new state: no learning again. */
    struct regmap_state *again = regmap_state_new(&map);
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(regmap_refuse(again, &held[i]), 0);
    dev.n = 0;
    assert_int_equal(regmap_read(&map, again, REGMAP_POLL, fake_read, &dev, &out), RESULT_OK);
    assert_int_equal(dev.n, 3);
    regmap_state_free(again);

    /* Reset (a GX whose firmware changed): learn from scratch. */
    regmap_state_reset(st);
    dev.refused[30] = false;
    dev.n = 0;
    assert_int_equal(regmap_read(&map, st, REGMAP_POLL, fake_read, &dev, &out), RESULT_OK);
    assert_int_equal(regmap_refused(st, NULL, 0), 1);
    assert_float_equal(v[30], 1030, 0);
    regmap_state_free(st);
}

static void test_split_budget_bounds_each_pass_and_learning_goes_on(void **state)
{
    struct regmap map = flat_map(4);
    struct regmap_state *st = regmap_state_new(&map);
    double v[40];
    struct regmap_sink out = {.values = v};
    unsigned passes = 0, total = 0;
    (void)state;

    fake_reset();
    dev.refused[17] = dev.refused[30] = true;
    do {
        dev.n = 0;
        assert_int_equal(regmap_read(&map, st, REGMAP_POLL, fake_read, &dev, &out), RESULT_OK);
        const struct regmap_stats *s = regmap_stats(st);
        /* Never more than the plan's blocks and the budget (and no re-check here). */
        assert_true(s->requests <= s->blocks + 4);
        total += s->requests;
        passes++;
    } while (regmap_refused(st, NULL, 0) < 2 && passes < 20);
    print_message("  budget 4: %u passes, %u requests to learn both\n", passes, total);
    assert_true(passes < 20);
    /* The cuts left by the budget go once both sides answer: three requests again. */
    for (unsigned k = 0; k < 4; k++) {
        dev.n = 0;
        regmap_read(&map, st, REGMAP_POLL, fake_read, &dev, &out);
    }
    assert_int_equal(dev.n, 3);
    regmap_state_free(st);
}

static const struct reading_def spacer_defs[] = {U16("a", 0), U16("b", 3)};
static const struct reading_def spacer_aux[] = {SPACER(1, 2, 0)};

static void test_spacer_missing_on_older_firmware_is_learnt(void **state)
{
    const struct regmap map = MAP(spacer_defs, spacer_aux, 16, false, 8);
    struct regmap_state *st = regmap_state_new(&map);
    struct regmap_range held[2];
    double v[2];
    struct regmap_sink out = {.values = v};
    (void)state;

    /* Before a GX filled its holes with spacers, 1..2 was a hole: 0..3 fails with 0x02. */
    fake_reset();
    dev.refused[1] = dev.refused[2] = true;
    assert_int_equal(regmap_read(&map, st, REGMAP_POLL, fake_read, &dev, &out), RESULT_OK);
    assert_int_equal(regmap_stats(st)->requests, 3); /* 0..3, then 0 and 3 */
    assert_int_equal(regmap_refused(st, held, 2), 1);
    assert_int_equal(held[0].start, 1);
    assert_int_equal(held[0].count, 2);
    assert_float_equal(v[0], 1000, 0);
    assert_float_equal(v[1], 1003, 0);
    assert_int_equal(regmap_read(&map, st, REGMAP_POLL, fake_read, &dev, &out), RESULT_OK);
    assert_int_equal(regmap_stats(st)->requests, 2);
    regmap_state_free(st);
}

static void test_length_limit_is_learnt(void **state)
{
    struct regmap map = flat_map(8);
    struct regmap_state *st = regmap_state_new(&map);
    double v[40];
    struct regmap_sink out = {.values = v};
    (void)state;

    /* A device that refuses requests longer than 25 registers with 0x02. */
    fake_reset();
    dev.max_len = 25;
    assert_int_equal(regmap_read(&map, st, REGMAP_POLL, fake_read, &dev, &out), RESULT_OK);
    assert_int_equal(regmap_stats(st)->requests, 3); /* 0..39, 0..19, 20..39 */
    assert_int_equal(regmap_refused(st, NULL, 0), 0);
    assert_float_equal(v[39], 1039, 0);
    assert_int_equal(regmap_read(&map, st, REGMAP_POLL, fake_read, &dev, &out), RESULT_OK);
    assert_int_equal(regmap_stats(st)->requests, 2); /* at most 20 at a time */
    assert_int_equal(regmap_stats(st)->refused, 0);
    regmap_state_free(st);
}

static void test_recheck_finds_a_register_that_came_back(void **state)
{
    struct regmap map = flat_map(16);
    map.recheck_every = 3;
    struct regmap_state *st = regmap_state_new(&map);
    double v[40];
    struct regmap_sink out = {.values = v};
    unsigned passes = 0;
    (void)state;

    fake_reset();
    dev.refused[17] = true;
    regmap_read(&map, st, REGMAP_POLL, fake_read, &dev, &out);
    assert_int_equal(regmap_refused(st, NULL, 0), 1);
    dev.refused[17] = false; /* a firmware update */
    while (regmap_refused(st, NULL, 0) == 1 && passes < 10) {
        dev.n = 0;
        regmap_read(&map, st, REGMAP_POLL, fake_read, &dev, &out);
        passes++;
        assert_true(dev.n <= 3); /* two blocks and at most one re-check */
    }
    /* Learnt in pass 0, asked alone at the end of the third pass counting that one. */
    assert_int_equal(passes, 2);
    assert_float_equal(v[17], 1017, 0); /* the re-check's reply is used */
    dev.n = 0;
    regmap_read(&map, st, REGMAP_POLL, fake_read, &dev, &out);
    assert_int_equal(dev.n, 1);
    regmap_state_free(st);
}

static const struct reading_def two_unit_defs[] = {
    U16_AT("a", 1, 0),
    U16_AT("b", 1, 200),
    U16_AT("c", 2, 0),
    U16_AT("d", 2, 200),
};

static void test_absent_unit_and_failures(void **state)
{
    const struct regmap map = MAP0(two_unit_defs, 16, false, 8);
    struct regmap_state *st = regmap_state_new(&map);
    double v[4];
    struct regmap_sink out = {.values = v};
    (void)state;

    /* Unit 2 is not there (0x0A): its second block is not asked, nothing is learnt. */
    fake_reset();
    dev.present[2] = false;
    assert_int_equal(regmap_read(&map, st, REGMAP_POLL, fake_read, &dev, &out), RESULT_OK);
    assert_int_equal(dev.n, 3);
    assert_float_equal(v[0], 1000, 0);
    assert_float_equal(v[1], 1200, 0);
    assert_true(isnan(v[2]) && isnan(v[3]));
    assert_int_equal(regmap_refused(st, NULL, 0), 0);

    /* A unit that refuses everything teaches nothing (a device starting up). */
    fake_reset();
    for (unsigned r = 0; r < 65536; r++)
        dev.refused[r] = true;
    assert_int_equal(regmap_read(&map, st, REGMAP_POLL, fake_read, &dev, &out), RESULT_REFUSED);
    assert_int_equal(regmap_refused(st, NULL, 0), 0);
    assert_true(isnan(v[0]));

    /* A timeout ends the pass with its cause. */
    fake_reset();
    dev.timeout_at = 2;
    assert_int_equal(regmap_read(&map, st, REGMAP_POLL, fake_read, &dev, &out), RESULT_TIMEOUT);
    assert_int_equal(dev.n, 2);
    regmap_state_free(st);

    /* Without a state: the same plan, nothing kept. */
    fake_reset();
    assert_int_equal(regmap_read(&map, NULL, REGMAP_POLL, fake_read, &dev, &out), RESULT_OK);
    assert_int_equal(dev.n, 4);
    assert_float_equal(v[3], 1200, 0);
}

static void test_types_map_read_through_fake_device(void **state)
{
    struct regmap_state *st = regmap_state_new(&rmtest_map);
    double v[64];
    struct texts t = {.calls = 0};
    struct regmap_sink out = {.values = v, .text = put_text, .ctx = &t};
    (void)state;

    fake_reset();
    types_image(dev.regs);
    assert_int_equal(regmap_read(&rmtest_map, st, REGMAP_POLL, fake_read, &dev, &out), RESULT_OK);
    /* Unit 0: 0..25 (the spacers and strings are not needed); unit 225: register 0. */
    assert_int_equal(regmap_stats(st)->requests, 2);
    assert_int_equal(dev.log[0].count, 26);
    assert_int_equal(dev.log[1].unit, 225);
    assert_float_equal(val(v, "deg_1e7"), 52.3456789, 1e-12);
    assert_float_equal(val(v, "other_unit"), 52.40, 1e-12);
    dev.n = 0;
    assert_int_equal(regmap_read(&rmtest_map, st, REGMAP_IDENTIFY, fake_read, &dev, &out),
                     RESULT_OK);
    assert_int_equal(dev.n, 1); /* 28..34: both strings in one request */
    assert_string_equal(t.l1, "Caf\xC3\xA9");
    assert_string_equal(t.a, "AB");
    regmap_state_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_reads_across_small_gaps_only_where_holes_are_readable),
        cmocka_unit_test(test_plan_bridges_spacers_and_stops_at_segments),
        cmocka_unit_test(test_plan_at_most_125_registers_and_never_splits_an_entry),
        cmocka_unit_test(test_plan_sorts_by_unit_and_address),
        cmocka_unit_test(test_plan_passes_and_max_skip),
        cmocka_unit_test(test_plan_avoids_refused_ranges_until_reset),
        cmocka_unit_test(test_check_rejects_bad_maps),
        cmocka_unit_test(test_decode_every_type),
        cmocka_unit_test(test_reading_text_limits_and_source_text),
        cmocka_unit_test(test_refused_registers_are_learnt_then_planned_around),
        cmocka_unit_test(test_split_budget_bounds_each_pass_and_learning_goes_on),
        cmocka_unit_test(test_spacer_missing_on_older_firmware_is_learnt),
        cmocka_unit_test(test_length_limit_is_learnt),
        cmocka_unit_test(test_recheck_finds_a_register_that_came_back),
        cmocka_unit_test(test_absent_unit_and_failures),
        cmocka_unit_test(test_types_map_read_through_fake_device),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
