/* SPDX-License-Identifier: MIT */
/* test_energy.c - charge/discharge energy integration and the state file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "energy.h"

static void test_energy_constant_charge_for_one_hour_is_power_in_kwh(void **state)
{
    struct energy e;
    double c, d;
    (void)state;

    energy_init(&e);
    for (int t = 0; t <= 3600; t += 10)
        energy_update(&e, t, 1000.0, 30);
    energy_get(&e, &c, &d);
    assert_float_equal(c, 1.0, 1e-9);
    assert_float_equal(d, 0.0, 0);
    energy_destroy(&e);
}

static void test_energy_sign_change_is_split_not_cancelled(void **state)
{
    struct energy e;
    double c, d;
    (void)state;

    energy_init(&e);
    energy_update(&e, 0, 3600.0, 30);
    energy_update(&e, 10, -3600.0, 30); /* 10 s: half the trapezoid each way */
    energy_get(&e, &c, &d);
    assert_float_equal(c, 3600.0 / 2 * 10 / 3.6e6, 1e-12);
    assert_float_equal(d, 3600.0 / 2 * 10 / 3.6e6, 1e-12);
    energy_destroy(&e);
}

static void test_energy_gap_longer_than_limit_is_not_integrated(void **state)
{
    struct energy e;
    double c, d;
    (void)state;

    energy_init(&e);
    energy_update(&e, 0, 1000.0, 30);
    energy_update(&e, 100, 1000.0, 30); /* the pack was silent for 100 s */
    energy_update(&e, 110, 1000.0, 30);
    energy_get(&e, &c, &d);
    assert_float_equal(c, 1000.0 * 10 / 3.6e6, 1e-12);
    energy_update(&e, 120, NAN, 30); /* unknown power breaks the chain too */
    energy_update(&e, 130, 1000.0, 30);
    energy_get(&e, &c, &d);
    assert_float_equal(c, 1000.0 * 10 / 3.6e6, 1e-12);
    energy_destroy(&e);
}

static void test_energy_state_file_round_trip(void **state)
{
    char path[] = "/tmp/bms2mqtt-energy-XXXXXX";
    struct energy a, b, c2;
    struct energy *save[2] = {&a, &b}, *load[2] = {&c2, &b};
    const char *names[2] = {"pack_a", "pack_b"};
    char err[256];
    double c, d;
    (void)state;

    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    energy_init(&a);
    energy_init(&b);
    energy_init(&c2);
    energy_set(&a, 12.5, 3.25);
    energy_set(&b, 1, 2);
    assert_int_equal(energy_save(path, names, save, 2), 0);
    assert_int_equal(energy_load(path, names, load, 2, err, sizeof(err)), 0);
    energy_get(&c2, &c, &d);
    assert_float_equal(c, 12.5, 1e-12);
    assert_float_equal(d, 3.25, 1e-12);
    /* A malformed file is reported with its position, and nothing is set. */
    FILE *f = fopen(path, "w");
    fputs("{\"packs\": [", f);
    fclose(f);
    assert_int_equal(energy_load(path, names, load, 2, err, sizeof(err)), -1);
    assert_non_null(strstr(err, path));
    unlink(path);
    /* A missing file is a first start, not an error. */
    assert_int_equal(energy_load(path, names, load, 2, err, sizeof(err)), 0);
    energy_destroy(&a);
    energy_destroy(&b);
    energy_destroy(&c2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_energy_constant_charge_for_one_hour_is_power_in_kwh),
        cmocka_unit_test(test_energy_sign_change_is_split_not_cancelled),
        cmocka_unit_test(test_energy_gap_longer_than_limit_is_not_integrated),
        cmocka_unit_test(test_energy_state_file_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
