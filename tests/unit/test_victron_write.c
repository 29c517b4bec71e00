/* SPDX-License-Identifier: MIT */
/* test_victron_write.c - writes to a GX: the guard rails, the encoding of a value (two's
 * complement, 32-bit items whole, rounding, no clamping) and the Modbus write frames. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "crc.h"
#include "victron_table.h"
#include "victron_write.h"

static void quiet(void *ctx, const char *msg)
{
    (void)ctx;
    (void)msg;
}

static const struct victron_load_opts opts = {.warn = quiet};
static struct victron_table *table;

/* The example: 39 A grid connection, 100 A battery cabling, 16 cells, 230 V. */
static const struct config_gx rails = {
    .write = true,
    .ac_current_max_a = 39,
    .dc_current_max_a = 100,
    .dc_cells = 16,
    .ac_voltage = 230,
};

static int setup(void **state)
{
    char err[256];

    (void)state;
    return victron_table_core(&opts, &table, err, sizeof(err));
}

static int teardown(void **state)
{
    (void)state;
    victron_table_free(table);
    return 0;
}

struct item {
    const struct reading_def *d;
    const struct victron_write *w;
};

static struct item item(const char *service, uint16_t reg)
{
    const struct victron_service *s = victron_table_service(table, service);
    int i = s ? victron_service_find(s, reg) : -1;

    if (i < 0)
        fail_msg("no %s %u", service, reg);
    return (struct item){&s->map.defs[i], s->allow[i]};
}

/* Encode text for (service, reg) under rails, with phases; returns the result. */
static int enc(const char *service, uint16_t reg, const struct config_gx *g, unsigned phases,
               const char *text, struct victron_encoded *e, char *why)
{
    struct item it = item(service, reg);

    why[0] = '\0';
    return victron_write_encode(it.d, it.w, g, phases, text, e, why, 256);
}

static void test_rails(void **state)
{
    double lo, hi;
    struct config_gx off = {.write = true};

    (void)state;
    assert_true(victron_rail_range(item("vebus", 22).w, &rails, 1, &lo, &hi));
    assert_true(lo == 0 && hi == 39);
    assert_true(victron_rail_range(item("settings", 2705).w, &rails, 1, &lo, &hi));
    assert_true(lo == -1 && hi == 100); /* -1: no limit */
    assert_true(victron_rail_range(item("settings", 2710).w, &rails, 1, &lo, &hi));
    assert_true(fabs(lo - 40.0) < 1e-9 && fabs(hi - 58.4) < 1e-9);
    /* The system's setpoint: x phases; a phase's own: x 1. */
    assert_true(victron_rail_range(item("settings", 2700).w, &rails, 3, &lo, &hi));
    assert_true(lo == -26910 && hi == 26910);
    assert_true(victron_rail_range(item("vebus", 37).w, &rails, 3, &lo, &hi));
    assert_true(lo == -8970 && hi == 8970);
    assert_true(victron_rail_range(item("settings", 2901).w, &rails, 1, &lo, &hi));
    assert_true(lo == 0 && hi == 100);
    /* A rail left out of write: gives no control; soc, mode and switch need no limit. */
    assert_false(victron_rail_range(item("vebus", 22).w, &off, 1, &lo, &hi));
    assert_false(victron_rail_range(item("settings", 2700).w, &off, 1, &lo, &hi));
    assert_int_equal(victron_control_of(item("vebus", 22).d, item("vebus", 22).w, &off),
                     HA_VICTRON_SENSOR);
    assert_int_equal(victron_control_of(item("vebus", 33).d, item("vebus", 33).w, &off),
                     HA_VICTRON_SELECT);
    assert_int_equal(victron_control_of(item("system", 806).d, item("system", 806).w, &off),
                     HA_VICTRON_SWITCH);
    assert_int_equal(victron_control_of(item("vebus", 22).d, item("vebus", 22).w, &rails),
                     HA_VICTRON_NUMBER);
    /* write: absent: nothing is a control; not on the list: never. */
    const struct config_gx none = {0};
    assert_int_equal(victron_control_of(item("vebus", 33).d, item("vebus", 33).w, &none),
                     HA_VICTRON_SENSOR);
    assert_int_equal(victron_control_of(item("battery", 266).d, NULL, &rails), HA_VICTRON_SENSOR);
}

static void test_encoding(void **state)
{
    struct victron_encoded e;
    char why[256];

    (void)state;
    /* A negative int16 setpoint: two's complement, function 6. */
    assert_int_equal(enc("settings", 2700, &rails, 1, "-200", &e, why), 0);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.words[0], 0xFF38);
    /* A 32-bit setpoint: both words, high first (one function-16 write). */
    assert_int_equal(enc("hub4", 2716, &rails, 1, "-6000", &e, why), 0);
    assert_int_equal(e.n, 2);
    assert_int_equal(e.words[0], 0xFFFF);
    assert_int_equal(e.words[1], 0xE890);
    assert_int_equal(enc("vebus", 96, &rails, 1, "1500", &e, why), 0);
    assert_int_equal(e.words[0], 0x0000);
    assert_int_equal(e.words[1], 1500);
    /* Scale 10: 16.25 A -> 162.5 -> 163 (rounded, not truncated): 16.3 A. */
    assert_int_equal(enc("vebus", 22, &rails, 1, "16.25", &e, why), 0);
    assert_int_equal(e.words[0], 163);
    assert_true(fabs(e.value - 16.3) < 1e-9);
    /* Scale 0.01 (100 W steps): -250 W -> -2.5 -> -3: -300 W. */
    assert_int_equal(enc("settings", 2703, &rails, 1, "-250", &e, why), 0);
    assert_int_equal(e.words[0], 0xFFFD);
    assert_true(e.value == -300);
    /* DVCC: -1 is "no limit", -0.5 is refused (it would round to -1). */
    assert_int_equal(enc("settings", 2705, &rails, 1, "-1", &e, why), 0);
    assert_int_equal(e.words[0], 0xFFFF);
    assert_int_equal(enc("settings", 2705, &rails, 1, "-0.5", &e, why), -1);
    assert_non_null(strstr(why, "-1 means no limit"));
    /* Charge voltage 16s: 55.2 V at scale 10. */
    assert_int_equal(enc("settings", 2710, &rails, 1, "55.2", &e, why), 0);
    assert_int_equal(e.words[0], 552);
    /* Options and switches by their codes. */
    assert_int_equal(enc("vebus", 33, &rails, 1, "Inverter Only", &e, why), 0);
    assert_int_equal(e.words[0], 2);
    assert_int_equal(enc("vebus", 33, &rails, 1, "4", &e, why), 0);
    assert_int_equal(e.words[0], 4);
    assert_int_equal(enc("system", 806, &rails, 1, "ON", &e, why), 0);
    assert_int_equal(e.words[0], 1);
    assert_int_equal(enc("system", 807, &rails, 1, "0", &e, why), 0);
    assert_int_equal(e.words[0], 0);
}

/* Refused, nothing clamped. */
static void test_refusals(void **state)
{
    struct victron_encoded e;
    struct config_gx off = {.write = true};
    char why[256];

    (void)state;
    assert_int_equal(enc("vebus", 22, &rails, 1, "39.5", &e, why), -1);
    assert_string_equal(why, "39.5 A is outside 0 .. 39 A (ac_current)");
    assert_int_equal(enc("settings", 2700, &rails, 1, "-9000", &e, why), -1);
    assert_string_equal(why, "-9000 W is outside -8970 .. 8970 W (ac_power)");
    assert_int_equal(enc("settings", 2700, &rails, 3, "-9000", &e, why), 0); /* 3 phases */
    /* 8960 W in 100 W steps rounds to 9000 W, outside the rail. */
    assert_int_equal(enc("settings", 2703, &rails, 1, "8960", &e, why), -1);
    assert_non_null(strstr(why, "rounds to 9000 W"));
    assert_int_equal(enc("settings", 2710, &rails, 1, "59", &e, why), -1);
    assert_int_equal(enc("settings", 2901, &rails, 1, "101", &e, why), -1);
    assert_int_equal(enc("vebus", 33, &rails, 1, "Turbo", &e, why), -1);
    assert_int_equal(enc("vebus", 33, &rails, 1, "7", &e, why), -1);
    assert_int_equal(enc("system", 806, &rails, 1, "2", &e, why), -1);
    assert_int_equal(enc("vebus", 22, &rails, 1, "ten", &e, why), -1);
    assert_int_equal(enc("vebus", 22, &rails, 1, "nan", &e, why), -1);
    assert_int_equal(enc("vebus", 22, &rails, 1, "", &e, why), -1);
    assert_int_equal(enc("vebus", 22, &off, 1, "10", &e, why), -1);
    assert_non_null(strstr(why, "not configured"));
}

static void test_frames(void **state)
{
    struct victron_encoded one = {{0xFF38, 0}, 1, -200}, two = {{0xFFFF, 0xE890}, 2, -6000};
    uint8_t req[16], rsp[16], ex;
    size_t n;

    (void)state;
    n = victron_write_request(100, 2700, &one, req);
    assert_int_equal(n, 8);
    const uint8_t want1[] = {100, 6, 0x0A, 0x8C, 0xFF, 0x38};
    assert_memory_equal(req, want1, sizeof(want1));
    assert_int_equal(crc16_modbus(req, 6), req[6] | req[7] << 8);
    n = victron_write_request(100, 2716, &two, req);
    assert_int_equal(n, 13);
    const uint8_t want2[] = {100, 16, 0x0A, 0x9C, 0, 2, 4, 0xFF, 0xFF, 0xE8, 0x90};
    assert_memory_equal(req, want2, sizeof(want2));
    /* The echo of function 16: address and quantity. */
    memcpy(rsp, req, 6);
    uint16_t crc = crc16_modbus(rsp, 6);
    rsp[6] = (uint8_t)crc;
    rsp[7] = (uint8_t)(crc >> 8);
    assert_int_equal(victron_write_reply(req, n, rsp, 8, &ex), RESULT_OK);
    rsp[7] ^= 1;
    assert_int_equal(victron_write_reply(req, n, rsp, 8, &ex), RESULT_CRC);
    /* Exception 0x02: a read-only server, or a register not writable. */
    const uint8_t exc[] = {100, 0x90, 0x02};
    memcpy(rsp, exc, 3);
    crc = crc16_modbus(rsp, 3);
    rsp[3] = (uint8_t)crc;
    rsp[4] = (uint8_t)(crc >> 8);
    assert_int_equal(victron_write_reply(req, n, rsp, 5, &ex), RESULT_REFUSED);
    assert_int_equal(ex, 0x02);
    rsp[0] = 99;
    crc = crc16_modbus(rsp, 3);
    rsp[3] = (uint8_t)crc;
    rsp[4] = (uint8_t)(crc >> 8);
    assert_int_equal(victron_write_reply(req, n, rsp, 5, &ex), RESULT_ADDRESS);
    assert_int_equal(victron_write_reply(req, n, rsp, 3, &ex), RESULT_LENGTH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rails),
        cmocka_unit_test(test_encoding),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_frames),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
