/* SPDX-License-Identifier: MIT */
/* test_pylontech.c - Pylontech V3.3 requests and decoders against the PDF's example and known INFO.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "ascii_frame.h"
#include "pylontech.h"

/*
 * V3.3 PDF §4 "Example of a 74Ah battery": the reply to "~20024642E00202FD33\r" with the
 * CHKSUM its characters give (E27A; the PDF prints E1A2, which does not match them).
 */
static const char pdf_reply[] =
    "~20024600F07A11020F0D450D440D450D440D450D440D3E0D450D4A0D4A0D4B0D4A0D4A0D4A0D4A050BC30BC3"
    "0BC30BCD0BCD0000C725FFFF04FFFF000200CA58012110E27A\r";

/* A byte buffer the tests build INFO in. */
struct buf {
    uint8_t b[1024];
    size_t n;
};

static void put(struct buf *b, uint8_t v)
{
    assert_true(b->n < sizeof(b->b));
    b->b[b->n++] = v;
}

static void put16(struct buf *b, int v)
{
    put(b, (uint8_t)((unsigned)v >> 8));
    put(b, (uint8_t)((unsigned)v & 0xFFu));
}

static void put24(struct buf *b, uint32_t v)
{
    put(b, (uint8_t)(v >> 16));
    put16(b, (int)(v & 0xFFFFu));
}

/* One §3.3 module block: cells (mV), temperatures (°C x 10), current (0.1 A), voltage
 * (mV), remaining (mAh), user-defined count, full (mAh), cycles, remaining2/full2. */
struct block {
    unsigned m, n;
    int mv[16];
    int temp_dc[6];
    int current, voltage, remaining;
    unsigned user;
    int full, cycles;
    uint32_t remaining2, full2;
};

static void put_block(struct buf *b, const struct block *k)
{
    put(b, (uint8_t)k->m);
    for (unsigned i = 0; i < k->m; i++)
        put16(b, k->mv[i]);
    put(b, (uint8_t)k->n);
    for (unsigned i = 0; i < k->n; i++)
        put16(b, k->temp_dc[i] + 2731);
    put16(b, k->current);
    put16(b, k->voltage);
    put16(b, k->remaining);
    put(b, (uint8_t)k->user);
    if (k->user >= 1)
        put16(b, k->full);
    if (k->user >= 2)
        put16(b, k->cycles);
    if (k->user >= 3)
        put24(b, k->remaining2);
    if (k->user >= 4)
        put24(b, k->full2);
    for (unsigned i = 4; i < k->user; i++)
        put16(b, 0x5A5A);
}

/* A US2000-like block: user-defined 2, 15 cells, 5 temperatures, discharging 4 A (0xFFD8). */
static const struct block us2000 = {
    .m = 15,
    .n = 5,
    .mv = {3300, 3301, 3302, 3303, 3304, 3305, 3306, 3299, 3300, 3310, 3300, 3300, 3300, 3300,
           3300},
    .temp_dc = {251, 240, 239, -124, 238},
    .current = -40,
    .voltage = 49520,
    .remaining = 25000,
    .user = 2,
    .full = 50000,
    .cycles = 123,
};

/* A 16-cell US5000-like block with 6 temperatures and user-defined 4. */
static const struct block us5000 = {
    .m = 16,
    .n = 6,
    .mv = {3350, 3351, 3352, 3353, 3354, 3355, 3356, 3357, 3358, 3359, 3360, 3361, 3362, 3363, 3364,
           3340},
    .temp_dc = {300, 290, 291, 292, 293, 310},
    .current = 250,
    .voltage = 53600,
    .remaining = 0xFFFF,
    .user = 4,
    .full = 0xFFFF,
    .cycles = 7,
    .remaining2 = 80000,
    .full2 = 100000,
};

static int idx(const char *key)
{
    int i = reading_find(pylontech_readings, pylontech_n_readings, key);
    assert_true(i >= 0);
    return i;
}

static double val(const double *row, const char *key)
{
    return row[idx(key)];
}

static void fill(double rows[][PYLONTECH_N_READINGS], unsigned n, double v)
{
    for (unsigned k = 0; k < n; k++)
        for (size_t i = 0; i < PYLONTECH_N_READINGS; i++)
            rows[k][i] = v;
}

static void test_pylontech_requests_match_the_pdf_and_take_the_right_info(void **state)
{
    char out[32];
    uint8_t info[4];
    struct af_frame f;
    (void)state;

    /* §4: get analog value of the pack at address 2. */
    assert_int_equal(pylontech_build_request(2, PYLONTECH_CMD_ANALOG, 2, out, sizeof(out)), 20);
    assert_string_equal(out, "~20024642E00202FD33\r");

    static const struct {
        uint8_t cmd, module;
        int len;
    } cases[] = {
        {PYLONTECH_CMD_ANALOG, 0xFF, 20},        {PYLONTECH_CMD_ALARM, 0x05, 20},
        {PYLONTECH_CMD_ALARM, 0xFF, 20},         {PYLONTECH_CMD_MANAGEMENT, 0x05, 20},
        {PYLONTECH_CMD_SERIAL, 0x05, 20},        {PYLONTECH_CMD_FIRMWARE, 0x05, 20},
        {PYLONTECH_CMD_SYSTEM, 0x05, 18},        {PYLONTECH_CMD_MANUFACTURER, 0x05, 18},
        {PYLONTECH_CMD_PROTOCOL, 0x05, 18},      {PYLONTECH_CMD_MANAGEMENT, 0xFF, -EINVAL},
        {PYLONTECH_CMD_SERIAL, 0xFF, -EINVAL},   {PYLONTECH_CMD_FIRMWARE, 0xFF, -EINVAL},
        {0x94 /* set: not built */, 5, -EINVAL}, {0x45, 5, -EINVAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int n = pylontech_build_request(0x05, cases[i].cmd, cases[i].module, out, sizeof(out));
        assert_int_equal(n, cases[i].len);
        if (n < 0)
            continue;
        assert_int_equal(af_decode((const uint8_t *)out, (size_t)n, &f, info, sizeof(info)), 0);
        assert_int_equal(f.ver, PYLONTECH_VER);
        assert_int_equal(f.adr, 0x05);
        assert_int_equal(f.cid1, PYLONTECH_CID1);
        assert_int_equal(f.cid2, cases[i].cmd);
        assert_int_equal(f.info_len, n == 20 ? 1 : 0);
        if (n == 20)
            assert_int_equal(info[0], cases[i].module);
    }
    assert_int_equal(pylontech_build_request(2, PYLONTECH_CMD_ANALOG, 2, out, 20), -ENOSPC);
    /* §2.5.3: group 2's system request, ADR 0x22 with INFO 0xFF. */
    assert_int_equal(pylontech_build_request(0x22, PYLONTECH_CMD_ANALOG, PYLONTECH_ALL_MODULES, out,
                                             sizeof(out)),
                     20);
    assert_memory_equal(out, "~20224642E002FF", 15);
}

static void test_pylontech_analog_decodes_the_pdf_example_of_a_74ah_battery(void **state)
{
    double rows[2][PYLONTECH_N_READINGS];
    uint8_t info[AF_INFO_MAX];
    struct af_frame f;
    (void)state;

    assert_int_equal(
        af_decode((const uint8_t *)pdf_reply, strlen(pdf_reply), &f, info, sizeof(info)), 0);
    assert_int_equal(f.cid2, AF_RTN_OK);
    fill(rows, 2, 42.0);
    assert_int_equal(pylontech_decode_analog(f.info, f.info_len, 0x02, rows, 2), 1);
    const double *r = rows[0];

    /* §4's analysis table. */
    assert_float_equal(val(r, "cell_count"), 15, 0);
    assert_float_equal(val(r, "cell_01_voltage"), 3.397, 1e-9);
    assert_float_equal(val(r, "cell_02_voltage"), 3.396, 1e-9);
    assert_float_equal(val(r, "cell_07_voltage"), 3.390, 1e-9);
    assert_float_equal(val(r, "cell_11_voltage"), 3.403, 1e-9);
    assert_float_equal(val(r, "cell_15_voltage"), 3.402, 1e-9);
    assert_true(isnan(val(r, "cell_16_voltage")));
    assert_float_equal(val(r, "temperature_01"), 28.0, 1e-9); /* 0BC3H = 3011 */
    assert_float_equal(val(r, "temperature_03"), 28.0, 1e-9);
    assert_float_equal(val(r, "temperature_04"), 29.0, 1e-9); /* 0BCDH = 3021 */
    assert_float_equal(val(r, "temperature_05"), 29.0, 1e-9);
    assert_true(isnan(val(r, "temperature_06")));
    assert_float_equal(val(r, "pack_current"), 0.0, 0);
    assert_float_equal(val(r, "pack_voltage"), 50.981, 1e-9); /* C725H */
    assert_float_equal(val(r, "pack_power"), 0.0, 0);
    /* User-defined 4: the 16-bit fields read FFFF, the 3-byte ones are the capacity. */
    assert_float_equal(val(r, "remaining_ah"), 51.8, 1e-9);     /* 00CA58H */
    assert_float_equal(val(r, "full_capacity_ah"), 74.0, 1e-9); /* 012110H */
    assert_float_equal(val(r, "cycle_count"), 2, 0);
    assert_float_equal(val(r, "soc"), 70.0, 1e-9);
    assert_float_equal(val(r, "cell_voltage_min"), 3.390, 1e-9);
    assert_float_equal(val(r, "cell_voltage_max"), 3.403, 1e-9);
    assert_float_equal(val(r, "cell_voltage_delta_mv"), 13, 0);
    assert_float_equal(val(r, "cell_lowest"), 7, 0);
    assert_float_equal(val(r, "cell_highest"), 11, 0);
    assert_true(isnan(val(r, "energy_charged_kwh")));
    assert_true(isnan(val(r, "energy_discharged_kwh")));
    /* Only 0x42's readings are written; the second row is not touched. */
    assert_float_equal(val(r, "alarm_cell_voltage_low"), 42.0, 0);
    assert_float_equal(val(r, "charge_voltage_limit"), 42.0, 0);
    assert_float_equal(rows[1][0], 42.0, 0);
}

static void test_pylontech_analog_all_modules_reply_decodes_every_block(void **state)
{
    struct buf in = {.n = 0};
    double rows[PYLONTECH_MAX_MODULES][PYLONTECH_N_READINGS];
    (void)state;

    /* INFOFLAG, count 3, then three blocks of different layouts back to back. */
    put(&in, 0x11);
    put(&in, 3);
    put_block(&in, &us5000);
    put_block(&in, &us2000);
    put_block(&in, &us5000);
    fill(rows, PYLONTECH_MAX_MODULES, 42.0);
    assert_int_equal(
        pylontech_decode_analog(in.b, in.n, PYLONTECH_ALL_MODULES, rows, PYLONTECH_MAX_MODULES), 3);

    assert_float_equal(val(rows[0], "cell_count"), 16, 0);
    assert_float_equal(val(rows[0], "cell_16_voltage"), 3.340, 1e-9);
    assert_float_equal(val(rows[0], "cell_lowest"), 16, 0);
    assert_float_equal(val(rows[0], "cell_highest"), 15, 0);
    assert_float_equal(val(rows[0], "temperature_06"), 31.0, 1e-9);
    assert_float_equal(val(rows[0], "pack_current"), 25.0, 1e-9);
    assert_float_equal(val(rows[0], "pack_voltage"), 53.6, 1e-9);
    assert_float_equal(val(rows[0], "pack_power"), 1340, 1e-9);
    assert_float_equal(val(rows[0], "remaining_ah"), 80.0, 1e-9);
    assert_float_equal(val(rows[0], "full_capacity_ah"), 100.0, 1e-9);
    assert_float_equal(val(rows[0], "soc"), 80.0, 1e-9);
    assert_float_equal(val(rows[0], "cycle_count"), 7, 0);

    /* User-defined 2: the 16-bit capacities; -4000 mA = 0xFFD8 (§3.3's example). */
    assert_float_equal(val(rows[1], "cell_count"), 15, 0);
    assert_true(isnan(val(rows[1], "cell_16_voltage")));
    assert_true(isnan(val(rows[1], "temperature_06")));
    assert_float_equal(val(rows[1], "temperature_01"), 25.1, 1e-9);
    assert_float_equal(val(rows[1], "temperature_04"), -12.4, 1e-9); /* 2607 in §3.3 */
    assert_float_equal(val(rows[1], "pack_current"), -4.0, 1e-9);
    assert_float_equal(val(rows[1], "pack_power"), -198.08, 1e-3); /* 49.52 V x -4 A */
    assert_float_equal(val(rows[1], "remaining_ah"), 25.0, 1e-9);
    assert_float_equal(val(rows[1], "full_capacity_ah"), 50.0, 1e-9);
    assert_float_equal(val(rows[1], "soc"), 50.0, 1e-9);
    assert_float_equal(val(rows[1], "cycle_count"), 123, 0);
    assert_float_equal(val(rows[1], "cell_lowest"), 8, 0);
    assert_float_equal(val(rows[1], "cell_highest"), 10, 0);

    assert_float_equal(val(rows[2], "remaining_ah"), 80.0, 1e-9);
    assert_float_equal(rows[3][0], 42.0, 0);

    /* Room for two rows: the third block is not read. */
    fill(rows, PYLONTECH_MAX_MODULES, 42.0);
    assert_int_equal(pylontech_decode_analog(in.b, in.n, PYLONTECH_ALL_MODULES, rows, 2), 2);
    assert_float_equal(val(rows[1], "cycle_count"), 123, 0);
    assert_float_equal(rows[2][0], 42.0, 0);

    /* A count of 0 is a reply without modules. */
    const uint8_t none[] = {0x11, 0x00};
    assert_int_equal(pylontech_decode_analog(none, sizeof(none), PYLONTECH_ALL_MODULES, rows, 2),
                     0);
    /* For a single-module request the second byte is the address, not a count. */
    struct buf one = {.n = 0};
    put(&one, 0x11);
    put(&one, 0x03);
    put_block(&one, &us2000);
    assert_int_equal(pylontech_decode_analog(one.b, one.n, 0x03, rows, 1), 1);
    assert_float_equal(val(rows[0], "cycle_count"), 123, 0);
    assert_int_equal(pylontech_decode_analog(one.b, one.n, 0x03, rows, 0), -EINVAL);
    assert_int_equal(pylontech_decode_analog(one.b, one.n, 0x03, NULL, 1), -EINVAL);
}

static void test_pylontech_analog_truncated_or_unknown_layout_is_a_bad_message(void **state)
{
    struct buf in = {.n = 0};
    double rows[3][PYLONTECH_N_READINGS];
    (void)state;

    put(&in, 0x11);
    put(&in, 2);
    put_block(&in, &us2000);
    put_block(&in, &us5000);
    for (size_t n = 0; n < in.n; n++) {
        fill(rows, 3, 42.0);
        assert_int_equal(pylontech_decode_analog(in.b, n, PYLONTECH_ALL_MODULES, rows, 3),
                         -EBADMSG);
        for (unsigned k = 0; k < 3; k++) {
            assert_true(isnan(val(rows[k], "pack_voltage")));
            assert_true(isnan(val(rows[k], "cell_01_voltage")));
            assert_float_equal(val(rows[k], "alarm_status_1"), 42.0, 0); /* not 0x42's */
        }
    }
    assert_int_equal(pylontech_decode_analog(in.b, in.n, PYLONTECH_ALL_MODULES, rows, 3), 2);
    /* Trailing bytes after the last block are not read. */
    put(&in, 0xEE);
    assert_int_equal(pylontech_decode_analog(in.b, in.n, PYLONTECH_ALL_MODULES, rows, 3), 2);

    /* More user-defined items than known: only in the last block. */
    struct block odd = us2000;
    odd.user = 6;
    struct buf last = {.n = 0}, mid = {.n = 0};
    put(&last, 0x11);
    put(&last, 2);
    put_block(&last, &us2000);
    put_block(&last, &odd);
    assert_int_equal(pylontech_decode_analog(last.b, last.n, PYLONTECH_ALL_MODULES, rows, 3), 2);
    assert_float_equal(val(rows[1], "cycle_count"), 123, 0);
    put(&mid, 0x11);
    put(&mid, 2);
    put_block(&mid, &odd);
    put_block(&mid, &us2000);
    assert_int_equal(pylontech_decode_analog(mid.b, mid.n, PYLONTECH_ALL_MODULES, rows, 3),
                     -EBADMSG);
    /* The count claims more blocks than INFO holds. */
    last.b[1] = 3;
    assert_int_equal(pylontech_decode_analog(last.b, last.n, PYLONTECH_ALL_MODULES, rows, 3),
                     -EBADMSG);
}

static void test_pylontech_analog_capacity_edge_cases(void **state)
{
    double rows[1][PYLONTECH_N_READINGS];
    (void)state;

    /* No user-defined items: no full capacity, cycles or SoC. */
    struct block b = us2000;
    b.user = 0;
    struct buf in = {.n = 0};
    put(&in, 0x11);
    put(&in, 2);
    put_block(&in, &b);
    assert_int_equal(pylontech_decode_analog(in.b, in.n, 2, rows, 1), 1);
    assert_float_equal(val(rows[0], "remaining_ah"), 25.0, 1e-9);
    assert_true(isnan(val(rows[0], "full_capacity_ah")));
    assert_true(isnan(val(rows[0], "cycle_count")));
    assert_true(isnan(val(rows[0], "soc")));

    /* Full capacity 0: no SoC; remaining above full: SoC 100. */
    b.user = 2;
    b.full = 0;
    in.n = 0;
    put(&in, 0x11);
    put(&in, 2);
    put_block(&in, &b);
    assert_int_equal(pylontech_decode_analog(in.b, in.n, 2, rows, 1), 1);
    assert_true(isnan(val(rows[0], "soc")));
    b.full = 20000;
    in.n = 0;
    put(&in, 0x11);
    put(&in, 2);
    put_block(&in, &b);
    assert_int_equal(pylontech_decode_analog(in.b, in.n, 2, rows, 1), 1);
    assert_float_equal(val(rows[0], "soc"), 100.0, 0);

    /* FFFF in a 16-bit capacity without its 3-byte item is "not available" (§3.3): unknown,
     * and so is the SoC computed from it; never 65.535 Ah. */
    b = us2000;
    b.remaining = 0xFFFF;
    in.n = 0;
    put(&in, 0x11);
    put(&in, 2);
    put_block(&in, &b);
    assert_int_equal(pylontech_decode_analog(in.b, in.n, 2, rows, 1), 1);
    assert_true(isnan(val(rows[0], "remaining_ah")));
    assert_float_equal(val(rows[0], "full_capacity_ah"), 50.0, 1e-9);
    assert_true(isnan(val(rows[0], "soc")));
    b = us2000;
    b.full = 0xFFFF;
    in.n = 0;
    put(&in, 0x11);
    put(&in, 2);
    put_block(&in, &b);
    assert_int_equal(pylontech_decode_analog(in.b, in.n, 2, rows, 1), 1);
    assert_float_equal(val(rows[0], "remaining_ah"), 25.0, 1e-9);
    assert_true(isnan(val(rows[0], "full_capacity_ah")));
    assert_true(isnan(val(rows[0], "soc")));
    b = us2000;

    /* No cells: no cell statistics. */
    b.m = 0;
    in.n = 0;
    put(&in, 0x11);
    put(&in, 2);
    put_block(&in, &b);
    assert_int_equal(pylontech_decode_analog(in.b, in.n, 2, rows, 1), 1);
    assert_float_equal(val(rows[0], "cell_count"), 0, 0);
    assert_true(isnan(val(rows[0], "cell_voltage_min")));
    assert_true(isnan(val(rows[0], "cell_lowest")));
}

/* One §3.5 alarm block. */
static void put_alarm(struct buf *b, unsigned m, const uint8_t *cells, unsigned n,
                      const uint8_t *temps, uint8_t chg, uint8_t pack, uint8_t dis,
                      const uint8_t status[5])
{
    put(b, (uint8_t)m);
    for (unsigned i = 0; i < m; i++)
        put(b, cells[i]);
    put(b, (uint8_t)n);
    for (unsigned i = 0; i < n; i++)
        put(b, temps[i]);
    put(b, chg);
    put(b, pack);
    put(b, dis);
    for (unsigned i = 0; i < 5; i++)
        put(b, status[i]);
}

static void test_pylontech_alarm_decodes_states_and_status_bits(void **state)
{
    uint8_t cells[15] = {0}, temps[5] = {0};
    const uint8_t quiet[5] = {0, 0x06, 0, 0, 0};
    const uint8_t tripped[5] = {0x84, 0x02, 0x88, 0x00, 0x80};
    double rows[PYLONTECH_MAX_MODULES][PYLONTECH_N_READINGS];
    struct buf in = {.n = 0};
    (void)state;

    /* Module 1: cell 3 below its limit, cell 5 above, temperature 2 above, module voltage
     * below, UV and COC protections, charge MOSFET on, cell 16 voltage error. */
    cells[2] = 0x01;
    cells[4] = 0x02;
    temps[1] = 0x02;
    put(&in, 0x11); /* DATAFLAG */
    put(&in, 2);    /* count */
    put_alarm(&in, 15, cells, 5, temps, 0x00, 0x01, 0x00, tripped);
    /* Module 2: all normal except an F0H "other error" on the discharge current. */
    memset(cells, 0, sizeof(cells));
    memset(temps, 0, sizeof(temps));
    put_alarm(&in, 15, cells, 5, temps, 0x00, 0x00, 0xF0, quiet);

    fill(rows, PYLONTECH_MAX_MODULES, 42.0);
    assert_int_equal(
        pylontech_decode_alarm(in.b, in.n, PYLONTECH_ALL_MODULES, rows, PYLONTECH_MAX_MODULES), 2);
    const double *a = rows[0], *b = rows[1];
    assert_float_equal(val(a, "alarm_cell_voltage_low"), 1, 0);
    assert_float_equal(val(a, "alarm_cell_voltage_high"), 1, 0);
    assert_float_equal(val(a, "alarm_temperature_low"), 0, 0);
    assert_float_equal(val(a, "alarm_temperature_high"), 1, 0);
    assert_float_equal(val(a, "alarm_charge_current"), 0, 0);
    assert_float_equal(val(a, "alarm_pack_voltage_low"), 1, 0);
    assert_float_equal(val(a, "alarm_pack_voltage_high"), 0, 0);
    assert_float_equal(val(a, "alarm_discharge_current"), 0, 0);
    assert_float_equal(val(a, "alarm_other_error"), 0, 0);
    assert_float_equal(val(a, "protection_pack_uv"), 1, 0);   /* status 1 bit 7 */
    assert_float_equal(val(a, "protection_charge_oc"), 1, 0); /* bit 2 */
    assert_float_equal(val(a, "protection_pack_ov"), 0, 0);
    assert_float_equal(val(a, "protection_cell_uv"), 0, 0);
    assert_float_equal(val(a, "protection_discharge_oc"), 0, 0);
    assert_float_equal(val(a, "protection_discharge_ot"), 0, 0);
    assert_float_equal(val(a, "protection_charge_ot"), 0, 0);
    assert_float_equal(val(a, "charge_mos"), 1, 0); /* status 2 bit 1 */
    assert_float_equal(val(a, "discharge_mos"), 0, 0);
    assert_float_equal(val(a, "cell_voltage_error"), 1, 0); /* status 5 bit 7: cell 16 */
    assert_float_equal(val(a, "alarm_status_1"), 0x84, 0);
    assert_float_equal(val(a, "alarm_status_3"), 0x88, 0);
    assert_float_equal(val(a, "alarm_status_5"), 0x80, 0);
    /* Only 0x44's readings are written. */
    assert_float_equal(val(a, "pack_voltage"), 42.0, 0);

    assert_float_equal(val(b, "alarm_discharge_current"), 0, 0);
    assert_float_equal(val(b, "alarm_other_error"), 1, 0);
    assert_float_equal(val(b, "alarm_cell_voltage_low"), 0, 0);
    assert_float_equal(val(b, "charge_mos"), 1, 0);
    assert_float_equal(val(b, "discharge_mos"), 1, 0);
    assert_float_equal(val(b, "cell_voltage_error"), 0, 0);

    /* Every truncation is a bad message and leaves the alarm readings NaN. */
    for (size_t n = 0; n < in.n; n++) {
        fill(rows, 2, 42.0);
        assert_int_equal(pylontech_decode_alarm(in.b, n, PYLONTECH_ALL_MODULES, rows, 2), -EBADMSG);
        assert_true(isnan(val(rows[0], "alarm_cell_voltage_low")));
        assert_true(isnan(val(rows[1], "alarm_status_5")));
        assert_float_equal(val(rows[1], "pack_voltage"), 42.0, 0);
    }
    /* Single-module request: the second byte is the command value. */
    in.b[1] = 0x02;
    assert_int_equal(pylontech_decode_alarm(in.b, in.n, 0x02, rows, 1), 1);
    assert_float_equal(val(rows[0], "protection_pack_uv"), 1, 0);
}

static void test_pylontech_management_decodes_limits_and_flags(void **state)
{
    double v[PYLONTECH_N_READINGS];
    struct buf in = {.n = 0};
    (void)state;

    put(&in, 0x02);    /* command value */
    put16(&in, 53250); /* charge voltage limit, mV */
    put16(&in, 45000); /* discharge voltage limit */
    put16(&in, 250);   /* charge current limit, 0.1 A */
    put16(&in, -250);  /* discharge current limit, 0xFF06 */
    put(&in, 0xC0);    /* charge and discharge enabled */
    for (size_t i = 0; i < PYLONTECH_N_READINGS; i++)
        v[i] = 42.0;
    assert_int_equal(pylontech_decode_management(in.b, in.n, v), 0);
    assert_float_equal(val(v, "charge_voltage_limit"), 53.25, 1e-9);
    assert_float_equal(val(v, "discharge_voltage_limit"), 45.0, 1e-9);
    assert_float_equal(val(v, "charge_current_limit"), 25.0, 1e-9);
    assert_float_equal(val(v, "discharge_current_limit"), -25.0, 1e-9);
    assert_float_equal(val(v, "charge_enable"), 1, 0);
    assert_float_equal(val(v, "discharge_enable"), 1, 0);
    assert_float_equal(val(v, "charge_immediately"), 0, 0);
    assert_float_equal(val(v, "full_charge_request"), 0, 0);
    assert_float_equal(val(v, "pack_voltage"), 42.0, 0);

    /* Bit 5 (charge immediately 1) and bit 3 (full charge request); discharge stopped. */
    in.b[9] = 0xA8;
    assert_int_equal(pylontech_decode_management(in.b, in.n, v), 0);
    assert_float_equal(val(v, "charge_enable"), 1, 0);
    assert_float_equal(val(v, "discharge_enable"), 0, 0);
    assert_float_equal(val(v, "charge_immediately"), 1, 0);
    assert_float_equal(val(v, "full_charge_request"), 1, 0);
    /* Bit 4 alone (charge immediately 2). */
    in.b[9] = 0x10;
    assert_int_equal(pylontech_decode_management(in.b, in.n, v), 0);
    assert_float_equal(val(v, "charge_immediately"), 1, 0);
    assert_float_equal(val(v, "charge_enable"), 0, 0);

    for (size_t n = 0; n < in.n; n++) {
        assert_int_equal(pylontech_decode_management(in.b, n, v), -EBADMSG);
        assert_true(isnan(val(v, "charge_voltage_limit")));
        assert_true(isnan(val(v, "full_charge_request")));
    }
}

static void test_pylontech_system_parameters_decode_scaled(void **state)
{
    double v[PYLONTECH_N_READINGS];
    struct buf in = {.n = 0};
    const int words[12] = {3650,  3000,  2700,  2731 + 450, 2731,       1020,
                           54000, 48000, 45000, 2731 + 600, 2731 - 200, -1020};
    (void)state;

    put(&in, 0x11); /* INFOFLAG */
    for (int k = 0; k < 12; k++)
        put16(&in, words[k]);
    assert_int_equal(pylontech_decode_system(in.b, in.n, v), 0);
    assert_float_equal(val(v, "cell_voltage_high_limit"), 3.65, 1e-9);
    assert_float_equal(val(v, "cell_voltage_low_limit"), 3.0, 1e-9);
    assert_float_equal(val(v, "cell_voltage_under_limit"), 2.7, 1e-9);
    assert_float_equal(val(v, "charge_temperature_high_limit"), 45.0, 1e-9);
    assert_float_equal(val(v, "charge_temperature_low_limit"), 0.0, 1e-9);
    assert_float_equal(val(v, "charge_current_max"), 102.0, 1e-9);
    assert_float_equal(val(v, "pack_voltage_high_limit"), 54.0, 1e-9);
    assert_float_equal(val(v, "pack_voltage_low_limit"), 48.0, 1e-9);
    assert_float_equal(val(v, "pack_voltage_under_limit"), 45.0, 1e-9);
    assert_float_equal(val(v, "discharge_temperature_high_limit"), 60.0, 1e-9);
    assert_float_equal(val(v, "discharge_temperature_low_limit"), -20.0, 1e-9);
    assert_float_equal(val(v, "discharge_current_max"), -102.0, 1e-9);
    assert_true(pylontech_readings[idx("pack_voltage_low_limit")].flags & READING_DIAGNOSTIC);

    assert_int_equal(pylontech_decode_system(in.b, in.n - 1, v), -EBADMSG);
    assert_true(isnan(val(v, "cell_voltage_high_limit")));
    assert_int_equal(pylontech_decode_system(NULL, 0, v), -EBADMSG);
}

static void test_pylontech_identity_strings(void **state)
{
    char out[32];
    struct buf mf = {.n = 0};
    const char name[10] = "US2000B\0\0\0";
    const char maker[20] = "PYLON               ";
    (void)state;

    for (int i = 0; i < 10; i++)
        put(&mf, (uint8_t)name[i]);
    put(&mf, 0x01);
    put(&mf, 0x03);
    for (int i = 0; i < 20; i++)
        put(&mf, (uint8_t)maker[i]);
    assert_int_equal(mf.n, 32); /* §3.2 LENID 40H */
    assert_int_equal(
        pylontech_decode_string(PYLONTECH_STR_BATTERY_NAME, mf.b, mf.n, out, sizeof(out)), 7);
    assert_string_equal(out, "US2000B");
    assert_int_equal(pylontech_decode_string(PYLONTECH_STR_SOFTWARE, mf.b, mf.n, out, sizeof(out)),
                     3);
    assert_string_equal(out, "1.3");
    assert_int_equal(
        pylontech_decode_string(PYLONTECH_STR_MANUFACTURER, mf.b, mf.n, out, sizeof(out)), 5);
    assert_string_equal(out, "PYLON");
    assert_int_equal(
        pylontech_decode_string(PYLONTECH_STR_MANUFACTURER, mf.b, 31, out, sizeof(out)), -EBADMSG);
    assert_string_equal(out, "");

    const uint8_t sn[] = {0x02, 'P', 'P', 'T', 'A', 'P', '0', '1', '2',
                          '3',  '4', '5', '6', '7', '8', '9', '0'};
    assert_int_equal(
        pylontech_decode_string(PYLONTECH_STR_SERIAL, sn, sizeof(sn), out, sizeof(out)), 16);
    assert_string_equal(out, "PPTAP01234567890");
    assert_int_equal(pylontech_decode_string(PYLONTECH_STR_SERIAL, sn, sizeof(sn), out, 6), 5);
    assert_string_equal(out, "PPTAP");
    assert_int_equal(pylontech_decode_string(PYLONTECH_STR_SERIAL, sn, 16, out, sizeof(out)),
                     -EBADMSG);

    const uint8_t fw[] = {0x02, 0x01, 0x03, 0x02, 0x08, 0x00};
    assert_int_equal(
        pylontech_decode_string(PYLONTECH_STR_FIRMWARE, fw, sizeof(fw), out, sizeof(out)), 9);
    assert_string_equal(out, "1.3/2.8.0");
    assert_int_equal(pylontech_decode_string(PYLONTECH_STR_FIRMWARE, fw, sizeof(fw), out, 4), 3);
    assert_string_equal(out, "1.3");
    assert_int_equal(pylontech_decode_string(PYLONTECH_STR_FIRMWARE, fw, 5, out, sizeof(out)),
                     -EBADMSG);

    const uint8_t blank[17] = {0x02};
    assert_int_equal(
        pylontech_decode_string(PYLONTECH_STR_SERIAL, blank, sizeof(blank), out, sizeof(out)),
        -ENODATA);
    assert_int_equal(pylontech_decode_string(PYLONTECH_STR_SERIAL, sn, sizeof(sn), NULL, 4),
                     -EINVAL);
    assert_int_equal(pylontech_decode_string(PYLONTECH_STR_SERIAL, sn, sizeof(sn), out, 0),
                     -EINVAL);
    assert_int_equal(
        pylontech_decode_string((enum pylontech_string)99, sn, sizeof(sn), out, sizeof(out)),
        -EINVAL);
}

static void test_pylontech_readings_table_keys_and_quantities(void **state)
{
    static const char *const lp4v2_keys[] = {
        "pack_voltage",
        "pack_current",
        "pack_power",
        "soc",
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
        "temperature_06",
        "energy_charged_kwh",
        "energy_discharged_kwh",
        "protection_pack_ov",
        "protection_cell_uv",
    };
    (void)state;

    assert_int_equal(pylontech_n_readings, PYLONTECH_N_READINGS);
    for (size_t i = 0; i < sizeof(lp4v2_keys) / sizeof(lp4v2_keys[0]); i++)
        (void)idx(lp4v2_keys[i]);
    for (size_t i = 0; i < pylontech_n_readings; i++) {
        const struct reading_def *r = &pylontech_readings[i];
        assert_non_null(r->key);
        assert_non_null(r->name);
        assert_int_equal(r->src, SRC_DERIVED);
        for (size_t j = i + 1; j < pylontech_n_readings; j++)
            assert_string_not_equal(r->key, pylontech_readings[j].key);
    }
    assert_int_equal(pylontech_readings[idx("pack_current")].q, Q_CURRENT);
    assert_int_equal(pylontech_readings[idx("energy_charged_kwh")].q, Q_ENERGY);
    assert_int_equal(pylontech_readings[idx("soc")].q, Q_SOC);
    assert_int_equal(pylontech_readings[idx("temperature_01")].q, Q_TEMPERATURE);
    assert_int_equal(pylontech_readings[idx("alarm_cell_voltage_low")].q, Q_PROBLEM);
    assert_int_equal(pylontech_readings[idx("protection_pack_uv")].q, Q_SAFETY);
    assert_int_equal(pylontech_readings[idx("charge_enable")].q, Q_RUNNING);
    assert_int_equal(pylontech_readings[idx("charge_immediately")].q, Q_PROBLEM);
    assert_int_equal(pylontech_readings[idx("charge_current_limit")].q, Q_CURRENT);
    assert_int_equal(pylontech_readings[idx("cell_voltage_delta_mv")].q, Q_VOLTAGE_MV);
    assert_true(pylontech_readings[idx("alarm_status_1")].flags & READING_DISABLED);
}

/* pylontech_clear: exactly the readings of one command become unknown. */
static void test_pylontech_clear_makes_one_commands_readings_unknown(void **state)
{
    static const struct {
        uint8_t cmd;
        const char *inside, *outside;
    } cases[] = {
        {PYLONTECH_CMD_ANALOG, "pack_voltage", "alarm_cell_voltage_low"},
        {PYLONTECH_CMD_ALARM, "alarm_cell_voltage_low", "pack_voltage"},
        {PYLONTECH_CMD_ALARM, "charge_mos", "charge_enable"},
        {PYLONTECH_CMD_MANAGEMENT, "charge_enable", "charge_mos"},
        {PYLONTECH_CMD_MANAGEMENT, "charge_voltage_limit", "cell_voltage_high_limit"},
        {PYLONTECH_CMD_SYSTEM, "cell_voltage_high_limit", "charge_voltage_limit"},
    };
    double row[PYLONTECH_N_READINGS];
    (void)state;

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        for (size_t i = 0; i < PYLONTECH_N_READINGS; i++)
            row[i] = 0;
        assert_int_equal(pylontech_clear(cases[k].cmd, row), 0);
        assert_true(isnan(val(row, cases[k].inside)));
        assert_float_equal(val(row, cases[k].outside), 0, 0);
    }
    for (size_t i = 0; i < PYLONTECH_N_READINGS; i++)
        row[i] = 1;
    assert_int_equal(pylontech_clear(PYLONTECH_CMD_SERIAL, row), -EINVAL);
    for (size_t i = 0; i < PYLONTECH_N_READINGS; i++)
        assert_float_equal(row[i], 1, 0);

    /* pylontech_copy moves exactly one command's readings (a module's block of a 0xFF reply). */
    double src[PYLONTECH_N_READINGS];
    for (size_t i = 0; i < PYLONTECH_N_READINGS; i++)
        src[i] = 2;
    pylontech_copy(PYLONTECH_CMD_ALARM, row, src);
    assert_float_equal(val(row, "charge_mos"), 2, 0);
    assert_float_equal(val(row, "pack_voltage"), 1, 0);
    assert_float_equal(val(row, "charge_enable"), 1, 0);
    pylontech_copy(PYLONTECH_CMD_ANALOG, row, src);
    assert_float_equal(val(row, "pack_voltage"), 2, 0);
    assert_float_equal(val(row, "charge_voltage_limit"), 1, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pylontech_requests_match_the_pdf_and_take_the_right_info),
        cmocka_unit_test(test_pylontech_analog_decodes_the_pdf_example_of_a_74ah_battery),
        cmocka_unit_test(test_pylontech_analog_all_modules_reply_decodes_every_block),
        cmocka_unit_test(test_pylontech_analog_truncated_or_unknown_layout_is_a_bad_message),
        cmocka_unit_test(test_pylontech_analog_capacity_edge_cases),
        cmocka_unit_test(test_pylontech_alarm_decodes_states_and_status_bits),
        cmocka_unit_test(test_pylontech_management_decodes_limits_and_flags),
        cmocka_unit_test(test_pylontech_system_parameters_decode_scaled),
        cmocka_unit_test(test_pylontech_identity_strings),
        cmocka_unit_test(test_pylontech_readings_table_keys_and_quantities),
        cmocka_unit_test(test_pylontech_clear_makes_one_commands_readings_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
