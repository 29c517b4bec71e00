/* SPDX-License-Identifier: MIT */
/* test_bank.c - totals over the packs of a bank. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "bank.h"
#include "lp4v2.h"
#include "lp4v2_regs.h"

static double *pack_values(double v, double i, double soc, double full, double cmin, double cmax,
                           double tmax, double charged)
{
    double *x = malloc(lp4v2_n_readings * sizeof(*x));
    for (size_t k = 0; k < lp4v2_n_readings; k++)
        x[k] = NAN;
#define SET(key, val) x[reading_find(lp4v2_readings, lp4v2_n_readings, key)] = (val)
    SET("pack_voltage", v);
    SET("pack_current", i);
    SET("pack_power", v * i);
    SET("soc", soc);
    SET("full_capacity_ah", full);
    SET("remaining_ah", soc * full / 100);
    SET("cell_voltage_min", cmin);
    SET("cell_voltage_max", cmax);
    SET("temperature_max", tmax);
    SET("energy_charged_kwh", charged);
    SET("energy_discharged_kwh", 0);
#undef SET
    return x;
}

static void bind(struct bank_member *m, const double *a, const double *b, bool on_a, bool on_b)
{
    bank_member_bind(&m[0], lp4v2_readings, lp4v2_n_readings);
    bank_member_bind(&m[1], lp4v2_readings, lp4v2_n_readings);
    m[0].values = a;
    m[0].online = on_a;
    m[1].values = b;
    m[1].online = on_b;
}

static double get(const double *out, const char *key)
{
    int i = reading_find(bank_readings, bank_n_readings, key);
    assert_true(i >= 0);
    return out[i];
}

static void test_bank_sums_currents_and_weights_soc_by_capacity(void **state)
{
    double *a = pack_values(53.0, 10, 50, 200, 3.300, 3.310, 25, 1.5);
    double *b = pack_values(53.2, -4, 80, 100, 3.290, 3.320, 28, 2.0);
    struct bank_member m[2];
    bind(m, a, b, true, true);
    double out[32];
    (void)state;

    assert_true(bank_n_readings <= 32);
    bank_compute(m, 2, out);
    assert_float_equal(get(out, "voltage"), 53.1, 1e-9);
    assert_float_equal(get(out, "current"), 6, 1e-9);
    assert_float_equal(get(out, "soc"), 60, 1e-9); /* (50*200 + 80*100) / 300 */
    assert_float_equal(get(out, "full_capacity_ah"), 300, 1e-9);
    assert_float_equal(get(out, "remaining_ah"), 180, 1e-9);
    assert_float_equal(get(out, "cell_voltage_min"), 3.290, 1e-9);
    assert_float_equal(get(out, "cell_voltage_max"), 3.320, 1e-9);
    assert_float_equal(get(out, "cell_voltage_delta_mv"), 30, 1e-9);
    assert_float_equal(get(out, "temperature_max"), 28, 1e-9);
    assert_float_equal(get(out, "packs_online"), 2, 0);
    assert_float_equal(get(out, "energy_charged_kwh"), 3.5, 1e-9);
    free(a);
    free(b);
}

static void test_bank_leaves_offline_packs_out_but_keeps_their_energy(void **state)
{
    double *a = pack_values(53.0, 10, 50, 100, 3.300, 3.310, 25, 1.5);
    double *b = pack_values(53.2, -4, 80, 100, 3.290, 3.320, 28, 2.0);
    struct bank_member m[2];
    bind(m, a, b, true, false);
    double out[32];
    (void)state;

    bank_compute(m, 2, out);
    assert_float_equal(get(out, "current"), 10, 1e-9);
    assert_float_equal(get(out, "soc"), 50, 1e-9);
    assert_float_equal(get(out, "packs_online"), 1, 0);
    assert_float_equal(get(out, "energy_charged_kwh"), 3.5, 1e-9);
    /* A pack never polled: its counter is unknown, so the sum is too (no false reset). */
    m[1].values = NULL;
    bank_compute(m, 2, out);
    assert_true(isnan(get(out, "energy_charged_kwh")));
    free(a);
    free(b);
}

/* Totals come from the packs' own numbers, not from what their states show rounded: three
 * packs of 51.51 V x -2.50 A = -128.775 W make -386.325 W (shown as -386), not 3 x -129. */
static void test_bank_adds_unrounded_pack_values(void **state)
{
    uint16_t regs[LP4V2_BLOCK_COUNT] = {0};
    double *v[3];
    struct bank_member m[3];
    double out[32];
    (void)state;

    regs[LP4V2_REG_VOLTAGE] = 5151;
    regs[LP4V2_REG_CURRENT] = (uint16_t)-250;
    regs[LP4V2_REG_CELL1] = 3219;
    regs[LP4V2_REG_CELL_COUNT] = 1;
    regs[LP4V2_REG_SOC] = 50;
    for (int k = 0; k < 3; k++) {
        v[k] = malloc(lp4v2_n_readings * sizeof(*v[k]));
        assert_int_equal(lp4v2_decode(regs, LP4V2_BLOCK_COUNT, v[k]), 0);
        bank_member_bind(&m[k], lp4v2_readings, lp4v2_n_readings);
        m[k].values = v[k];
        m[k].online = true;
    }
    bank_compute(m, 3, out);
    assert_float_equal(get(out, "power"), -386.325, 1e-6);
    for (int k = 0; k < 3; k++)
        free(v[k]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bank_sums_currents_and_weights_soc_by_capacity),
        cmocka_unit_test(test_bank_leaves_offline_packs_out_but_keeps_their_energy),
        cmocka_unit_test(test_bank_adds_unrounded_pack_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
