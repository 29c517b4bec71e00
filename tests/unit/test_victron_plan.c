/* SPDX-License-Identifier: MIT */
/* test_victron_plan.c - a GX's readings planned per unit id: the single-phase ESS layout in at
 * most 8 requests per poll, blocks that never span a hole, every reading in one tier. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "victron_plan.h"

/* bms-sim's ess1 layout (doc/bms-sim.md): the GX's own services at 100, a Multi at 227, a
 * CAN-bus BMS at 225, an MPPT at 226, a grid meter at 30. */
static const struct {
    uint8_t unit;
    const char *service;
} ess1[] = {
    {100, "system"}, {100, "settings"}, {100, "hub4"},         {100, "platform"},
    {227, "vebus"},  {225, "battery"},  {226, "solarcharger"}, {30, "grid"},
};

static size_t ess1_devices(const struct victron_table *t, struct victron_unit_service *out)
{
    size_t n = 0;

    for (size_t i = 0; i < sizeof(ess1) / sizeof(ess1[0]); i++) {
        const struct victron_service *s = victron_table_service(t, ess1[i].service);
        if (s)
            out[n++] = (struct victron_unit_service){ess1[i].unit, s};
    }
    return n;
}

static void quiet(void *ctx, const char *msg)
{
    (void)ctx;
    (void)msg;
}

static const struct victron_load_opts opts = {.warn = quiet};

/* True if register r of unit u is defined by a device of plan p at u (a reading or a
 * spacer). */
static bool defined_at(const struct victron_plan *p, uint8_t u, uint32_t r)
{
    for (size_t k = 0; k < p->n_devs; k++) {
        const struct regmap *m = &p->devs[k].svc->map;
        if (p->devs[k].unit != u)
            continue;
        for (size_t i = 0; i < m->n_defs + m->n_aux; i++) {
            const struct reading_def *d = i < m->n_defs ? &m->defs[i] : &m->aux[i - m->n_defs];
            if (r >= d->reg && r < (uint32_t)d->reg + reading_width(d))
                return true;
        }
    }
    return false;
}

/* The plan's invariants: blocks of at most 125 defined registers; every reading of every
 * device in exactly one tier, with its unit. Returns the blocks of tier 0. */
static size_t check_plan(struct victron_plan *p)
{
    struct regmap_range r[256];
    size_t total = 0;

    for (size_t k = 0; k < p->n_devs; k++)
        total += p->devs[k].svc->map.n_defs;
    size_t seen = 0;
    for (size_t k = 0; k < p->n_tiers; k++) {
        struct victron_tier *t = &p->tiers[k];
        size_t n = regmap_plan(t->st, REGMAP_POLL, r, 256);
        assert_true(n <= 256);
        if (k > 0)
            assert_int_equal(n, 1); /* a rotation tier is one block */
        for (size_t b = 0; b < n; b++) {
            assert_true(r[b].count >= 1 && r[b].count <= REGMAP_MAX_BLOCK);
            for (uint32_t reg = r[b].start; reg < (uint32_t)r[b].start + r[b].count; reg++)
                if (!defined_at(p, r[b].unit, reg))
                    fail_msg("tier %zu block unit %u %u+%u spans undefined register %u", k,
                             r[b].unit, r[b].start, r[b].count, reg);
        }
        for (size_t i = 0; i < t->map.n_defs; i++) {
            const struct victron_origin *o = &t->origin[i];
            assert_true(o->dev < p->n_devs);
            assert_int_equal(t->map.defs[i].unit, p->devs[o->dev].unit);
            assert_int_equal(t->map.defs[i].reg, p->devs[o->dev].svc->map.defs[o->def].reg);
        }
        seen += t->map.n_defs;
    }
    assert_int_equal(seen, total);
    return regmap_plan(p->tiers[0].st, REGMAP_POLL, NULL, 0);
}

/* Victron's table with the ess1 layout: 7 blocks every poll (about 400 registers), 9 in turn:
 * 8 requests a poll; planned service by service the same readings take 21. */
static void test_plan_ess1_in_eight_requests(void **state)
{
    struct victron_table *t;
    struct victron_unit_service devs[8];
    struct victron_plan *p;
    struct regmap_range r[16];
    char err[256];
    unsigned regs = 0, per_service = 0;

    (void)state;
    assert_int_equal(victron_table_builtin(&opts, &t, err, sizeof(err)), 0);
    if (!t->from_csv) {
        victron_table_free(t);
        skip();
    }
    size_t n = ess1_devices(t, devs);
    assert_int_equal(n, 8);
    assert_int_equal(victron_plan_build(devs, n, &p), 0);
    size_t live = check_plan(p);
    assert_int_equal(live, 7);
    assert_int_equal(p->n_tiers, 10);
    assert_true(live + (p->n_tiers > 1) <= 8);
    regmap_plan(p->tiers[0].st, REGMAP_POLL, r, 16);
    for (size_t b = 0; b < live; b++)
        regs += r[b].count;
    assert_true(regs >= 350 && regs <= 500);
    /* settings and hub4 interleave at unit 100: one block reads both. */
    bool both = false;
    for (size_t b = 0; b < live; b++)
        both = both || (r[b].unit == 100 && r[b].start == 2700 && r[b].count == 25);
    assert_true(both);
    /* The same readings planned service by service (a request never crosses a service). */
    for (size_t k = 0; k < n; k++) {
        struct regmap_state *st = regmap_state_new(&devs[k].svc->map);
        per_service += (unsigned)regmap_plan(st, REGMAP_POLL, NULL, 0);
        regmap_state_free(st);
    }
    assert_int_equal(per_service, 21);
    /* The rotation: tiers 1..9 in turn. */
    for (size_t k = 1; k < p->n_tiers; k++)
        assert_int_equal(victron_plan_next(p), k);
    assert_int_equal(victron_plan_next(p), 1);
    victron_plan_free(p);
    victron_table_free(t);
}

/* A build without the CSV: the core set alone, planned the same way. It knows no spacers, so
 * its blocks stop at every register it does not know: more of them, all read every poll. */
static void test_plan_core_set(void **state)
{
    struct victron_table *t;
    struct victron_unit_service devs[8];
    struct victron_plan *p;
    char err[256];

    (void)state;
    assert_int_equal(victron_table_core(&opts, &t, err, sizeof(err)), 0);
    size_t n = ess1_devices(t, devs);
    assert_int_equal(victron_plan_build(devs, n, &p), 0);
    size_t live = check_plan(p);
    assert_int_equal(p->n_tiers, 1);
    assert_true(live > 0 && live < 32);
    victron_plan_free(p);
    victron_table_free(t);
}

/* Refused ranges (a scan cache's) keep requests off them in every tier. */
static void test_plan_refused_ranges(void **state)
{
    struct victron_table *t;
    struct victron_unit_service devs[8];
    struct victron_plan *p;
    struct regmap_range r[16], got[4];
    char err[256];

    (void)state;
    assert_int_equal(victron_table_builtin(&opts, &t, err, sizeof(err)), 0);
    size_t n = ess1_devices(t, devs);
    assert_int_equal(victron_plan_build(devs, n, &p), 0);
    const struct regmap_range bad = {225, 266, 1};
    assert_int_equal(victron_plan_refuse(p, &bad), 0);
    assert_int_equal(victron_plan_refused(p, got, 4), 1);
    assert_int_equal(got[0].unit, 225);
    assert_int_equal(got[0].start, 266);
    size_t k = regmap_plan(p->tiers[0].st, REGMAP_POLL, r, 16);
    for (size_t b = 0; b < k; b++)
        assert_false(r[b].unit == 225 && r[b].start <= 266 && r[b].start + r[b].count > 266);
    victron_plan_free(p);
    victron_table_free(t);
}

static void test_plan_refuses_bad_device_lists(void **state)
{
    struct victron_table *t;
    struct victron_plan *p = (struct victron_plan *)&p;
    char err[256];

    (void)state;
    assert_int_equal(victron_table_core(&opts, &t, err, sizeof(err)), 0);
    const struct victron_service *bat = victron_table_service(t, "battery");
    struct victron_unit_service twice[] = {{225, bat}, {225, bat}};
    struct victron_unit_service zero[] = {{0, bat}};
    assert_int_equal(victron_plan_build(twice, 2, &p), -EINVAL);
    assert_null(p);
    assert_int_equal(victron_plan_build(zero, 1, &p), -EINVAL);
    /* No device at all: an empty plan. */
    assert_int_equal(victron_plan_build(NULL, 0, &p), 0);
    assert_int_equal(victron_plan_blocks(p, 0), 0);
    assert_int_equal(victron_plan_next(p), 0);
    victron_plan_free(p);
    victron_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_ess1_in_eight_requests),
        cmocka_unit_test(test_plan_core_set),
        cmocka_unit_test(test_plan_refused_ranges),
        cmocka_unit_test(test_plan_refuses_bad_device_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
