/* SPDX-License-Identifier: MIT */
/* test_victron_scan.c - finding a GX's devices: the probe order and count, what 0x0A, 0x02 and
 * a link failure do, given unit ids, the scan cache. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "victron_scan.h"

static void quiet(void *ctx, const char *msg)
{
    (void)ctx;
    (void)msg;
}

static const struct victron_load_opts opts = {.warn = quiet};

/* A simulated GX: the devices it has, a service its firmware lacks, a probe that fails. */
struct fake {
    const struct victron_table *t;
    struct {
        uint8_t unit;
        const char *service;
    } has[8];
    size_t n_has;
    const char *lacks; /* service whose first register answers 0x02 everywhere */
    unsigned long probes;
    unsigned long fail_at; /* probe number that times out (once), 0 none */
    uint8_t first_unit;    /* unit of the first probe */
    unsigned long probes_of_lacking;
    unsigned long own_elsewhere; /* the GX's own services probed at another unit */
};

static enum result fake_probe(void *ctx, uint8_t unit, uint16_t reg, uint8_t *ex)
{
    struct fake *f = ctx;
    const struct victron_service *svc = victron_table_owner(f->t, reg);

    if (!f->probes)
        f->first_unit = unit;
    f->probes++;
    assert_non_null(svc);
    assert_int_equal(reg, svc->first_reg);
    assert_int_not_equal(unit, 0);
    if (f->fail_at && f->probes == f->fail_at) {
        f->fail_at = 0;
        f->probes--; /* asked again */
        return RESULT_TIMEOUT;
    }
    if ((!strcmp(svc->name, "system") || !strcmp(svc->name, "settings")) && unit != 100)
        f->own_elsewhere++;
    if (f->lacks && strcmp(svc->name, f->lacks) == 0) {
        f->probes_of_lacking++;
        *ex = 0x02;
        return RESULT_REFUSED;
    }
    for (size_t i = 0; i < f->n_has; i++)
        if (f->has[i].unit == unit && strcmp(f->has[i].service, svc->name) == 0)
            return RESULT_OK;
    *ex = 0x0A;
    return RESULT_REFUSED;
}

static struct fake ess1(const struct victron_table *t)
{
    struct fake f = {.t = t,
                     .has = {{100, "system"},
                             {100, "settings"},
                             {100, "hub4"},
                             {227, "vebus"},
                             {225, "battery"},
                             {226, "solarcharger"},
                             {30, "grid"},
                             {20, "pvinverter"}},
                     .n_has = 8};
    return f;
}

static bool found(const struct victron_scan *s, uint8_t unit, const char *service)
{
    for (size_t i = 0; i < s->n_found; i++)
        if (s->found[i].unit == unit && strcmp(s->found[i].svc->name, service) == 0)
            return true;
    return false;
}

/* The default order finds every device in a bounded number of one-register probes. */
static void test_scan_finds_every_device(void **state)
{
    struct victron_table *t;
    static struct victron_scan s;
    char err[256];

    (void)state;
    assert_int_equal(victron_table_builtin(&opts, &t, err, sizeof(err)), 0);
    struct fake f = ess1(t);
    victron_scan_start(&s, t, NULL, 0);
    unsigned long total = victron_scan_total(&s);
    assert_int_equal(victron_scan_step(&s, 0, fake_probe, &f), RESULT_OK);
    assert_true(s.done);
    assert_int_equal(f.first_unit, 100);
    assert_int_equal(s.requests, total);
    assert_int_equal(f.probes, total);
    assert_int_equal(f.own_elsewhere, 0);
    assert_int_equal(s.n_found, f.n_has);
    for (size_t i = 0; i < f.n_has; i++)
        assert_true(found(&s, f.has[i].unit, f.has[i].service));
    /* Bounded: unit 100 with every service, the ports with theirs, 1..63 with the rest. */
    assert_true(total < 2500);
    printf("scan of the ess1 layout: %lu requests, %zu devices (%zu services)\n", total, s.n_found,
           t->n_services);
    victron_table_free(t);
}

/* 0x02 at unit 100: the firmware lacks that register; the service is not probed again. A link
 * failure ends a step and the next asks the same probe again. */
static void test_scan_lacking_register_and_link_failure(void **state)
{
    struct victron_table *t;
    static struct victron_scan s;
    char err[256];

    (void)state;
    assert_int_equal(victron_table_builtin(&opts, &t, err, sizeof(err)), 0);
    struct fake f = ess1(t);
    /* A service of the table that the layout has not (tank in Victron's table; the core set
     * alone has fewer services). */
    for (size_t k = 0; k < t->n_services && !f.lacks; k++) {
        f.lacks = t->services[k].name;
        for (size_t i = 0; i < f.n_has; i++)
            if (strcmp(f.has[i].service, f.lacks) == 0)
                f.lacks = NULL;
    }
    assert_non_null(f.lacks);
    f.fail_at = 40;
    victron_scan_start(&s, t, NULL, 0);
    unsigned long total = victron_scan_total(&s);
    assert_int_equal(victron_scan_step(&s, 0, fake_probe, &f), RESULT_TIMEOUT);
    assert_false(s.done);
    assert_int_equal(f.probes, 39);
    while (!s.done)
        assert_int_equal(victron_scan_step(&s, 100, fake_probe, &f), RESULT_OK);
    assert_int_equal(f.probes_of_lacking, 1);
    assert_true(f.probes < total);
    assert_int_equal(s.n_found, f.n_has);
    victron_table_free(t);
}

/* Given unit ids: those alone, every service at each but the GX's own (100 only). */
static void test_scan_given_units(void **state)
{
    struct victron_table *t;
    static struct victron_scan s;
    const uint8_t units[] = {225, 100, 225, 0};
    char err[256];

    (void)state;
    assert_int_equal(victron_table_builtin(&opts, &t, err, sizeof(err)), 0);
    struct fake f = ess1(t);
    victron_scan_start(&s, t, units, sizeof(units));
    assert_int_equal(s.n_units, 2); /* repeats and 0 left out */
    assert_int_equal(victron_scan_step(&s, 0, fake_probe, &f), RESULT_OK);
    assert_int_equal(f.own_elsewhere, 0);
    assert_true(found(&s, 225, "battery"));
    assert_true(found(&s, 100, "system"));
    assert_false(found(&s, 227, "vebus"));
    assert_true(f.probes <= 2 * t->n_services);
    victron_table_free(t);
}

/* The cache: written and read back; services the table lacks and bad entries left out. */
static void test_scan_cache_round_trip(void **state)
{
    struct victron_table *t;
    static struct victron_cache c, back;
    char err[256], path[] = "/tmp/test_victron_scan_XXXXXX", file[64], why[512];

    (void)state;
    assert_int_equal(victron_table_builtin(&opts, &t, err, sizeof(err)), 0);
    assert_non_null(mkdtemp(path));
    snprintf(file, sizeof(file), "%s/cache.json", path);
    assert_int_equal(victron_cache_load(file, t, &back, why, sizeof(why)), 1);
    snprintf(c.serial, sizeof(c.serial), "c0619ab1f2e3");
    c.firmware = 0x03700000;
    c.scanned = 1767000000;
    c.devs[c.n_devs++] = (struct victron_unit_service){100, victron_table_service(t, "system")};
    c.devs[c.n_devs++] = (struct victron_unit_service){227, victron_table_service(t, "vebus")};
    c.refused[c.n_refused++] = (struct regmap_range){227, 130, 8};
    assert_int_equal(victron_cache_save(file, &c, why, sizeof(why)), 0);
    assert_int_equal(victron_cache_load(file, t, &back, why, sizeof(why)), 0);
    assert_string_equal(back.serial, "c0619ab1f2e3");
    assert_int_equal(back.firmware, 0x03700000);
    assert_int_equal(back.n_devs, 2);
    assert_ptr_equal(back.devs[1].svc, victron_table_service(t, "vebus"));
    assert_int_equal(back.devs[1].unit, 227);
    assert_int_equal(back.n_refused, 1);
    assert_int_equal(back.refused[0].count, 8);
    /* A service this table lacks, a unit out of range, a range past 65535: left out. */
    FILE *fp = fopen(file, "w");
    fputs("{\"version\": 1, \"serial\": \"x\", \"firmware\": 1, \"scanned\": 0,"
          " \"devices\": [[100, \"system\"], [100, \"teleporter\"], [0, \"vebus\"]],"
          " \"refused\": [[227, 65535, 2], [227, 5, 1]]}",
          fp);
    fclose(fp);
    assert_int_equal(victron_cache_load(file, t, &back, why, sizeof(why)), 0);
    assert_int_equal(back.n_devs, 1);
    assert_int_equal(back.n_refused, 1);
    fp = fopen(file, "w");
    fputs("not json", fp);
    fclose(fp);
    assert_int_equal(victron_cache_load(file, t, &back, why, sizeof(why)), -1);
    assert_non_null(strstr(why, file));
    unlink(file);
    rmdir(path);
    victron_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_finds_every_device),
        cmocka_unit_test(test_scan_lacking_register_and_link_failure),
        cmocka_unit_test(test_scan_given_units),
        cmocka_unit_test(test_scan_cache_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
