/* SPDX-License-Identifier: MIT */
/* test_lp4_ascii.c - EG4 LifePower4 ASCII requests and decoders against the PDF's examples. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <string.h>

#include "ascii_frame.h"
#include "lp4_ascii.h"

/* LifePower4 PDF §2.1 and §2.2: the example replies of pack 1, as printed. */
static const char rsp42[] =
    "~20014A00A0CA0101100C540C810C810C820C810C810C810C810C820C820C820C820C820C820C820C7E04"
    "0BCD0BCD0BCD0BCD0BD70BD7000013FD0000271000000F000000640C820C54002E0BCD0BCD00000015"
    "0000003C0000000A0000001D00000000000000000002001DD300\r";
static const char rsp44[] = "~20014A0070540101100000000000000000000000000000000004000000000000"
                            "00000900000000000103000000000000EDC4\r";

static size_t info_of(const char *frame, uint8_t *info, size_t cap)
{
    struct af_frame f;

    assert_int_equal(af_decode((const uint8_t *)frame, strlen(frame), &f, info, cap), 0);
    assert_int_equal(f.cid1, LP4_ASCII_CID1);
    assert_int_equal(f.cid2, AF_RTN_OK);
    return f.info_len;
}

static int idx(const char *key)
{
    int i = reading_find(lp4_ascii_readings, lp4_ascii_n_readings, key);
    assert_true(i >= 0);
    return i;
}

static double val(const double *v, const char *key)
{
    return v[idx(key)];
}

static void fill(double *v, double x)
{
    for (size_t i = 0; i < lp4_ascii_n_readings; i++)
        v[i] = x;
}

static void test_lp4_ascii_requests_are_the_pdf_examples(void **state)
{
    char out[32];
    (void)state;

    assert_int_equal(lp4_ascii_build_request(1, LP4_ASCII_CMD_ANALOG, out, sizeof(out)), 18);
    assert_string_equal(out, "~20014A420000FDA2\r"); /* 7E 32 30 30 31 34 41 34 32 ... 0D */
    assert_int_equal(lp4_ascii_build_request(1, LP4_ASCII_CMD_ALARM, out, sizeof(out)), 18);
    assert_string_equal(out, "~20014A440000FDA0\r");
    assert_int_equal(lp4_ascii_build_request(15, LP4_ASCII_CMD_ANALOG, out, sizeof(out)), 18);
    assert_memory_equal(out, "~200F4A420000", 13);
    assert_int_equal(lp4_ascii_build_request(0, LP4_ASCII_CMD_ANALOG, out, sizeof(out)), -EINVAL);
    assert_int_equal(lp4_ascii_build_request(16, LP4_ASCII_CMD_ANALOG, out, sizeof(out)), -EINVAL);
    assert_int_equal(lp4_ascii_build_request(1, 0x47, out, sizeof(out)), -EINVAL);
    assert_int_equal(lp4_ascii_build_request(1, LP4_ASCII_CMD_ALARM, out, 18), -ENOSPC);
}

static void test_lp4_ascii_analog_decodes_the_pdf_example(void **state)
{
    uint8_t info[AF_INFO_MAX];
    double *v = test_malloc(lp4_ascii_n_readings * sizeof(double));
    (void)state;

    size_t n = info_of(rsp42, info, sizeof(info));
    assert_int_equal(n, 101);
    fill(v, 42.0);
    assert_int_equal(lp4_ascii_decode_analog(info, n, v), 0);

    /* §2.1's "Response data parse". */
    assert_float_equal(val(v, "cell_count"), 16, 0);
    assert_float_equal(val(v, "cell_01_voltage"), 3.156, 1e-9);
    assert_float_equal(val(v, "cell_02_voltage"), 3.201, 1e-9);
    assert_float_equal(val(v, "cell_04_voltage"), 3.202, 1e-9);
    assert_float_equal(val(v, "cell_16_voltage"), 3.198, 1e-9);
    assert_float_equal(val(v, "temperature_01"), 29.0, 1e-9);
    assert_float_equal(val(v, "temperature_04"), 29.0, 1e-9);
    assert_float_equal(val(v, "temperature_ambient"), 30.0, 1e-9);
    assert_float_equal(val(v, "temperature_mosfet"), 30.0, 1e-9);
    assert_float_equal(val(v, "pack_current"), 0.0, 0);
    assert_float_equal(val(v, "pack_voltage"), 51.17, 1e-9);
    assert_float_equal(val(v, "pack_power"), 0.0, 0);
    assert_float_equal(val(v, "remaining_ah"), 0.0, 0);
    assert_float_equal(val(v, "full_capacity_ah"), 100.0, 1e-9);
    assert_float_equal(val(v, "cycle_count"), 0, 0);
    assert_float_equal(val(v, "soc"), 0, 0);
    assert_float_equal(val(v, "soh"), 100, 0);
    /* Max 3202 mV, min 3156 mV, difference 46 mV, as the pack reports them too. */
    assert_float_equal(val(v, "cell_voltage_max"), 3.202, 1e-9);
    assert_float_equal(val(v, "cell_voltage_min"), 3.156, 1e-9);
    assert_float_equal(val(v, "cell_voltage_delta_mv"), 46, 0);
    assert_float_equal(val(v, "cell_lowest"), 1, 0);
    assert_float_equal(val(v, "cell_highest"), 4, 0);
    assert_float_equal(val(v, "temperature_max"), 29.0, 1e-9);
    assert_float_equal(val(v, "temperature_min"), 29.0, 1e-9);
    assert_float_equal(val(v, "charged_ah_total"), 0.21, 1e-9);       /* 00000015H */
    assert_float_equal(val(v, "discharged_ah_total"), 0.6, 1e-9);     /* 0000003CH */
    assert_float_equal(val(v, "energy_charged_kwh"), 0.01, 1e-9);     /* 0000000AH */
    assert_float_equal(val(v, "energy_discharged_kwh"), 0.029, 1e-9); /* 0000001DH */
    assert_float_equal(val(v, "charging_hours_total"), 0, 0);
    assert_float_equal(val(v, "discharging_hours_total"), 0, 0);
    assert_float_equal(val(v, "charge_count_total"), 2, 0);
    assert_float_equal(val(v, "discharge_count_total"), 29, 0);
    /* The alarm readings are not 0x42's. */
    assert_float_equal(val(v, "warning_low_capacity"), 42.0, 0);
    assert_float_equal(val(v, "cell_16_balancing"), 42.0, 0);
    test_free(v);
}

static void test_lp4_ascii_analog_discharging_and_fewer_items(void **state)
{
    uint8_t info[AF_INFO_MAX];
    double *v = test_malloc(lp4_ascii_n_readings * sizeof(double));
    (void)state;

    size_t n = info_of(rsp42, info, sizeof(info));
    /* Current is at 3 + 32 + 1 + 12: -10.00 A = FC18H. */
    const size_t cur = 3 + 32 + 1 + 12;
    assert_int_equal(info[cur], 0x00);
    info[cur] = 0xFC;
    info[cur + 1] = 0x18;
    assert_int_equal(lp4_ascii_decode_analog(info, n, v), 0);
    assert_float_equal(val(v, "pack_current"), -10.0, 1e-9);
    assert_float_equal(val(v, "pack_power"), -511.7, 1e-3); /* 51.17 V x -10 A */

    /* User-defined 2: SOC and SOH only; the rest NaN, and the INFO may end there. */
    const size_t user = cur + 10;
    assert_int_equal(info[user], 15);
    info[user] = 2;
    assert_int_equal(lp4_ascii_decode_analog(info, user + 1 + 4, v), 0);
    assert_float_equal(val(v, "soh"), 100, 0);
    assert_true(isnan(val(v, "temperature_max")));
    assert_true(isnan(val(v, "energy_charged_kwh")));
    assert_true(isnan(val(v, "discharge_count_total")));
    assert_float_equal(val(v, "cycle_count"), 0, 0);
    /* More than the 15 known items: the known ones are read, the rest is not. */
    info[user] = 17;
    assert_int_equal(lp4_ascii_decode_analog(info, n, v), 0);
    assert_float_equal(val(v, "discharge_count_total"), 29, 0);
    test_free(v);
}

static void test_lp4_ascii_analog_truncated_info_is_a_bad_message(void **state)
{
    uint8_t info[AF_INFO_MAX];
    double *v = test_malloc(lp4_ascii_n_readings * sizeof(double));
    (void)state;

    size_t n = info_of(rsp42, info, sizeof(info));
    for (size_t k = 0; k < n; k++) {
        fill(v, 42.0);
        assert_int_equal(lp4_ascii_decode_analog(info, k, v), -EBADMSG);
        assert_true(isnan(val(v, "pack_voltage")));
        assert_true(isnan(val(v, "cell_01_voltage")));
        assert_true(isnan(val(v, "temperature_01")));
        assert_true(isnan(val(v, "energy_charged_kwh")));
        assert_float_equal(val(v, "heater"), 42.0, 0);
    }
    /* M claims more cells than INFO has. */
    info[2] = 0xFF;
    assert_int_equal(lp4_ascii_decode_analog(info, n, v), -EBADMSG);
    test_free(v);
}

static void test_lp4_ascii_alarm_decodes_the_pdf_example(void **state)
{
    uint8_t info[AF_INFO_MAX];
    double *v = test_malloc(lp4_ascii_n_readings * sizeof(double));
    (void)state;

    size_t n = info_of(rsp44, info, sizeof(info));
    assert_int_equal(n, 42);
    fill(v, 42.0);
    assert_int_equal(lp4_ascii_decode_alarm(info, n, v), 0);
    /* No state alarms, no events; remaining capacity alarm 01H (SOC low: the analog
     * example's SOC is 0 %); FET status 03H: both MOSFETs on. */
    static const char *const off[] = {
        "alarm_cell_voltage_low",  "alarm_cell_voltage_high",
        "alarm_temperature_low",   "alarm_temperature_high",
        "alarm_pack_current",      "alarm_pack_voltage_low",
        "alarm_pack_voltage_high", "balancing",
        "warning_cell_imbalance",  "error_charge_mos",
        "error_discharge_mos",     "warning_cell_ov",
        "protection_pack_uv",      "warning_charge_ot",
        "protection_mos_ot",       "alarm_fire",
        "warning_charge_oc",       "lockout_discharge_sc",
        "charge_current_limiter",  "heater",
        "cell_01_balancing",       "cell_16_balancing",
    };
    for (size_t i = 0; i < sizeof(off) / sizeof(off[0]); i++)
        assert_float_equal(val(v, off[i]), 0, 0);
    assert_float_equal(val(v, "warning_low_capacity"), 1, 0);
    assert_float_equal(val(v, "discharge_mos"), 1, 0);
    assert_float_equal(val(v, "charge_mos"), 1, 0);
    assert_true(isnan(val(v, "status"))); /* system status 00H: none of its bits */
    assert_float_equal(val(v, "pack_voltage"), 42.0, 0);
    test_free(v);
}

static void test_lp4_ascii_alarm_decodes_every_event_bit(void **state)
{
    uint8_t info[64];
    size_t n = 0;
    double *v = test_malloc(lp4_ascii_n_readings * sizeof(double));
    (void)state;

    info[n++] = 0x01; /* DATA_FLAG */
    info[n++] = 0x01; /* PACK group */
    info[n++] = 16;
    for (int k = 0; k < 16; k++)
        info[n++] = k == 1 ? 0x01 : 0x00; /* cell 2 below its lower limit */
    info[n++] = 4;
    for (int k = 0; k < 6; k++)
        info[n++] = k == 5 ? 0x02 : 0x00; /* MOSFET temperature above its limit */
    info[n++] = 0x00;                     /* pack current */
    info[n++] = 0x02;                     /* pack voltage above */
    info[n++] = 9;                        /* user-defined */
    info[n++] = 0x71;                     /* balancing, imbalance, both MOS faults */
    info[n++] = 0x82;                     /* cell OV protection, pack UV protection */
    info[n++] = 0x30;                     /* temperature event high byte: bits 12, 13 */
    info[n++] = 0x01;                     /* low byte: charge high temperature alarm */
    info[n++] = 0xA0;                     /* output short circuit protection and lockout */
    info[n++] = 0x00;                     /* remaining capacity */
    info[n++] = 0x0C;                     /* charge current limiter, heater */
    info[n++] = 0x02;                     /* charging */
    info[n++] = 0x00;                     /* balance status: cells 1 and 16 */
    info[n++] = 0x00;
    info[n++] = 0x80;
    info[n++] = 0x01;
    info[n++] = 0x00; /* reserved */

    assert_int_equal(lp4_ascii_decode_alarm(info, n, v), 0);
    assert_float_equal(val(v, "alarm_cell_voltage_low"), 1, 0);
    assert_float_equal(val(v, "alarm_cell_voltage_high"), 0, 0);
    assert_float_equal(val(v, "alarm_temperature_high"), 1, 0);
    assert_float_equal(val(v, "alarm_temperature_low"), 0, 0);
    assert_float_equal(val(v, "alarm_pack_voltage_high"), 1, 0);
    assert_float_equal(val(v, "alarm_pack_current"), 0, 0);
    assert_float_equal(val(v, "balancing"), 1, 0);
    assert_float_equal(val(v, "warning_cell_imbalance"), 1, 0);
    assert_float_equal(val(v, "error_charge_mos"), 1, 0);
    assert_float_equal(val(v, "error_discharge_mos"), 1, 0);
    assert_float_equal(val(v, "warning_cell_ov"), 0, 0);
    assert_float_equal(val(v, "protection_cell_ov"), 1, 0);
    assert_float_equal(val(v, "protection_pack_uv"), 1, 0);
    assert_float_equal(val(v, "warning_pack_uv"), 0, 0);
    assert_float_equal(val(v, "warning_charge_ot"), 1, 0);
    assert_float_equal(val(v, "protection_charge_ot"), 0, 0);
    assert_float_equal(val(v, "protection_ambient_ut"), 0, 0);
    assert_float_equal(val(v, "protection_mos_ot"), 1, 0);
    assert_float_equal(val(v, "alarm_fire"), 1, 0);
    assert_float_equal(val(v, "protection_discharge_sc"), 1, 0);
    assert_float_equal(val(v, "lockout_discharge_sc"), 1, 0);
    assert_float_equal(val(v, "lockout_discharge_oc2"), 0, 0);
    assert_float_equal(val(v, "warning_low_capacity"), 0, 0);
    assert_float_equal(val(v, "discharge_mos"), 0, 0);
    assert_float_equal(val(v, "charge_mos"), 0, 0);
    assert_float_equal(val(v, "charge_current_limiter"), 1, 0);
    assert_float_equal(val(v, "heater"), 1, 0);
    assert_float_equal(val(v, "status"), 1, 0); /* "charging" */
    assert_string_equal(lp4_ascii_readings[idx("status")].options[1], "charging");
    assert_float_equal(val(v, "cell_01_balancing"), 1, 0);
    assert_float_equal(val(v, "cell_02_balancing"), 0, 0);
    assert_float_equal(val(v, "cell_16_balancing"), 1, 0);

    /* Every truncation is a bad message; the 0x44 readings are then all NaN. */
    for (size_t k = 0; k + 1 < n; k++) {
        assert_int_equal(lp4_ascii_decode_alarm(info, k, v), -EBADMSG);
        assert_true(isnan(val(v, "alarm_cell_voltage_low")));
        assert_true(isnan(val(v, "cell_16_balancing")));
    }
    /* The reserved byte is not read. */
    assert_int_equal(lp4_ascii_decode_alarm(info, n - 1, v), 0);

    /* User-defined 0: the state alarms only. */
    info[3 + 16 + 1 + 6 + 2] = 0;
    assert_int_equal(lp4_ascii_decode_alarm(info, 3 + 16 + 1 + 6 + 3, v), 0);
    assert_float_equal(val(v, "alarm_cell_voltage_low"), 1, 0);
    assert_true(isnan(val(v, "balancing")));
    assert_true(isnan(val(v, "heater")));
    assert_true(isnan(val(v, "status")));
    test_free(v);
}

static void test_lp4_ascii_readings_table_keys_and_quantities(void **state)
{
    static const char *const shared[] = {
        "pack_voltage",
        "pack_current",
        "pack_power",
        "soc",
        "soh",
        "remaining_ah",
        "full_capacity_ah",
        "cycle_count",
        "cell_count",
        "cell_01_voltage",
        "cell_16_voltage",
        "cell_voltage_min",
        "cell_voltage_max",
        "cell_voltage_delta_mv",
        "cell_lowest",
        "cell_highest",
        "temperature_01",
        "temperature_04",
        "temperature_max",
        "energy_charged_kwh",
        "energy_discharged_kwh",
        "heater",
        "status",
        "warning_low_capacity",
        "protection_discharge_sc",
        "protection_mos_ot",
        "cell_01_balancing",
    };
    (void)state;

    for (size_t i = 0; i < sizeof(shared) / sizeof(shared[0]); i++)
        (void)idx(shared[i]);
    for (size_t i = 0; i < lp4_ascii_n_readings; i++) {
        const struct reading_def *r = &lp4_ascii_readings[i];
        assert_non_null(r->key);
        assert_non_null(r->name);
        assert_int_equal(r->src, SRC_DERIVED);
        for (size_t j = i + 1; j < lp4_ascii_n_readings; j++)
            assert_string_not_equal(r->key, lp4_ascii_readings[j].key);
    }
    assert_int_equal(lp4_ascii_readings[idx("energy_charged_kwh")].q, Q_ENERGY);
    assert_int_equal(lp4_ascii_readings[idx("energy_discharged_kwh")].q, Q_ENERGY);
    assert_int_equal(lp4_ascii_readings[idx("charged_ah_total")].q, Q_CHARGE);
    assert_int_equal(lp4_ascii_readings[idx("discharged_ah_total")].q, Q_CHARGE);
    assert_int_equal(lp4_ascii_readings[idx("warning_cell_ov")].q, Q_PROBLEM);
    assert_int_equal(lp4_ascii_readings[idx("protection_cell_ov")].q, Q_SAFETY);
    assert_int_equal(lp4_ascii_readings[idx("alarm_fire")].q, Q_SAFETY);
    assert_int_equal(lp4_ascii_readings[idx("heater")].q, Q_HEAT);
    assert_int_equal(lp4_ascii_readings[idx("cell_05_balancing")].q, Q_RUNNING);
    assert_int_equal(lp4_ascii_readings[idx("status")].q, Q_ENUM);
    assert_int_equal(lp4_ascii_readings[idx("temperature_mosfet")].q, Q_TEMPERATURE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lp4_ascii_requests_are_the_pdf_examples),
        cmocka_unit_test(test_lp4_ascii_analog_decodes_the_pdf_example),
        cmocka_unit_test(test_lp4_ascii_analog_discharging_and_fewer_items),
        cmocka_unit_test(test_lp4_ascii_analog_truncated_info_is_a_bad_message),
        cmocka_unit_test(test_lp4_ascii_alarm_decodes_the_pdf_example),
        cmocka_unit_test(test_lp4_ascii_alarm_decodes_every_event_bit),
        cmocka_unit_test(test_lp4_ascii_readings_table_keys_and_quantities),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
