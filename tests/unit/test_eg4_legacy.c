/* SPDX-License-Identifier: MIT */
/* test_eg4_legacy.c - the EG4 legacy 7E ... 0D protocol: checksum, framing, status decoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "eg4_legacy.h"

/* A byte buffer the tests build frames in. */
struct buf {
    uint8_t b[EG4_LEGACY_FRAME_MAX + 64];
    size_t n;
};

static void put(struct buf *b, uint8_t v)
{
    assert_true(b->n < sizeof(b->b));
    b->b[b->n++] = v;
}

/* Append group `id` with `count` big-endian words, as the script's MockActiveTransport.grp(). */
static void group(struct buf *b, uint8_t id, const uint16_t *w, unsigned count)
{
    put(b, id);
    put(b, (uint8_t)count);
    for (unsigned k = 0; k < count; k++) {
        put(b, (uint8_t)(w[k] >> 8));
        put(b, (uint8_t)(w[k] & 0xFF));
    }
}

/* Wrap DATA into a whole frame with a correct checksum (the script's mock sent 0x00). */
static void frame(struct buf *out, uint8_t addr, uint8_t cmd, const struct buf *data)
{
    out->n = 0;
    put(out, EG4_LEGACY_SOI);
    put(out, addr);
    put(out, cmd);
    put(out, (uint8_t)data->n);
    for (size_t i = 0; i < data->n; i++)
        put(out, data->b[i]);
    put(out, eg4_legacy_checksum(out->b, out->n));
    put(out, EG4_LEGACY_EOI);
}

/* Cells 1..16 in mV; cell 3 carries bits 15 and 14, cell 12 bit 15, as real packs send. */
static const uint16_t sample_cells_mv[16] = {3280, 3285, 3301, 3282, 3288, 3276, 3281, 3283,
                                             3280, 3284, 3287, 3262, 3281, 3280, 3279, 3282};

/*
 * The DATA of a status reply with known values: current raw `current_raw`, SoC 50.00 %,
 * full capacity 100.00 Ah, temperatures 25 -5 30 31 0 -50 °C with flags in the high bytes,
 * alarm word 2 = bits 3 and 5 (current_over, voltage_low), 42 cycles, 52.80 V, SoH 99.50 %.
 */
static void sample_status(struct buf *d, uint16_t current_raw)
{
    uint16_t cells[16];
    const uint16_t temps[6] = {0x0100 | 75, 0x8000 | 45, 80, 0xFF00 | 81, 50, 0};
    const uint16_t alarms[5] = {0xFFFF, 0x0028, 0x1234, 0, 0};
    const uint16_t current[1] = {current_raw}, soc[1] = {5000}, cap[1] = {10000};
    const uint16_t cycles[1] = {42}, volts[1] = {5280}, soh[1] = {9950}, unknown[2] = {7, 8};

    memcpy(cells, sample_cells_mv, sizeof(cells));
    cells[2] |= 0xC000;
    cells[11] |= 0x8000;
    d->n = 0;
    group(d, 0x01, cells, 16);
    group(d, 0x02, current, 1);
    group(d, 0x03, soc, 1);
    group(d, 0x04, cap, 1);
    group(d, 0x05, temps, 6);
    group(d, 0x06, alarms, 5);
    group(d, 0x07, cycles, 1);
    group(d, 0x08, volts, 1);
    group(d, 0x09, soh, 1);
    group(d, 0x0A, unknown, 2);
}

static int idx(const char *key)
{
    int i = reading_find(eg4_legacy_readings, eg4_legacy_n_readings, key);
    assert_true(i >= 0);
    return i;
}

static double value(const double *v, const char *key)
{
    return v[idx(key)];
}

static void assert_all_nan(const double *v)
{
    for (size_t i = 0; i < eg4_legacy_n_readings; i++)
        assert_true(isnan(v[i]));
}

static void test_eg4_legacy_checksum_is_xor_of_bytes_xor_their_sum(void **state)
{
    const uint8_t req1[] = {0x7E, 0x01, 0x01, 0x00};
    const uint8_t one[] = {0x5A};
    const uint8_t two[] = {0x80, 0x80};         /* XOR 0x00, sum 0x100 -> 0x00 */
    const uint8_t three[] = {0x01, 0x02, 0x04}; /* XOR 0x07, sum 0x07 */
    (void)state;

    assert_int_equal(eg4_legacy_checksum(req1, 4), 0xFE);
    assert_int_equal(eg4_legacy_checksum(one, 1), 0x00); /* x ^ x */
    assert_int_equal(eg4_legacy_checksum(two, 2), 0x00);
    assert_int_equal(eg4_legacy_checksum(three, 3), 0x00);
    assert_int_equal(eg4_legacy_checksum(NULL, 0), 0x00);
}

static void test_eg4_legacy_request_known_answers_for_addresses_0_1_2_4_8(void **state)
{
    /* protocols/README.md §2: real requests seen on the bus. */
    static const struct {
        uint8_t addr;
        uint8_t frame[6];
    } known[] = {
        {0, {0x7E, 0x00, 0x01, 0x00, 0x00, 0x0D}}, {1, {0x7E, 0x01, 0x01, 0x00, 0xFE, 0x0D}},
        {2, {0x7E, 0x02, 0x01, 0x00, 0xFC, 0x0D}}, {4, {0x7E, 0x04, 0x01, 0x00, 0xF8, 0x0D}},
        {8, {0x7E, 0x08, 0x01, 0x00, 0xF0, 0x0D}},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        uint8_t out[6];
        memset(out, 0xAA, sizeof(out));
        assert_int_equal(eg4_legacy_build_request(known[i].addr, EG4_LEGACY_CMD_STATUS, out), 6);
        assert_memory_equal(out, known[i].frame, 6);
    }
}

static void test_eg4_legacy_original_formula_agrees_only_for_address_1(void **state)
{
    (void)state;

    for (unsigned addr = 0; addr < 256; addr++) {
        uint8_t out[6];
        /* encode_eg4_request() of the eg4-battery script, command 1, length 0. */
        uint8_t original = (uint8_t)((0x100 - (addr + EG4_LEGACY_CMD_STATUS + 0)) & 0xFF);

        eg4_legacy_build_request((uint8_t)addr, EG4_LEGACY_CMD_STATUS, out);
        if (addr == 1)
            assert_int_equal(out[4], original);
        else
            assert_int_not_equal(out[4], original);
    }
}

static void test_eg4_legacy_parse_accepts_a_built_reply_and_points_at_its_data(void **state)
{
    struct buf d, f;
    struct eg4_legacy_frame fr;
    (void)state;

    sample_status(&d, 28750);
    frame(&f, 3, EG4_LEGACY_CMD_STATUS, &d);
    assert_int_equal(eg4_legacy_frame_length(f.b, f.n), (int)f.n);
    assert_int_equal(eg4_legacy_parse_frame(f.b, f.n, &fr), 0);
    assert_int_equal(fr.addr, 3);
    assert_int_equal(fr.cmd, EG4_LEGACY_CMD_STATUS);
    assert_int_equal(fr.len, d.n);
    assert_ptr_equal(fr.data, f.b + 4);
    assert_memory_equal(fr.data, d.b, d.n);

    /* A request is a frame too (LEN 0). */
    uint8_t req[6];
    eg4_legacy_build_request(8, EG4_LEGACY_CMD_FIRMWARE, req);
    assert_int_equal(eg4_legacy_parse_frame(req, 6, &fr), 0);
    assert_int_equal(fr.addr, 8);
    assert_int_equal(fr.cmd, EG4_LEGACY_CMD_FIRMWARE);
    assert_int_equal(fr.len, 0);
}

static void test_eg4_legacy_status_decodes_known_values(void **state)
{
    struct buf d, f;
    struct eg4_legacy_frame fr;
    double v[128];
    (void)state;

    assert_true(eg4_legacy_n_readings <= 128);
    sample_status(&d, 28750);
    frame(&f, 1, EG4_LEGACY_CMD_STATUS, &d);
    assert_int_equal(eg4_legacy_parse_frame(f.b, f.n, &fr), 0);
    assert_int_equal(eg4_legacy_decode_status(fr.data, fr.len, 16, v), 0);

    /* Cells: bits 15/14 masked away, so cell 3 is 3.301 V and cell 12 3.262 V. */
    char key[32];
    for (int c = 1; c <= 16; c++) {
        snprintf(key, sizeof(key), "cell_%02d_voltage", c);
        assert_float_equal(value(v, key), sample_cells_mv[c - 1] / 1000.0, 1e-9);
    }
    assert_float_equal(value(v, "cell_voltage_min"), 3.262, 1e-9);
    assert_float_equal(value(v, "cell_voltage_max"), 3.301, 1e-9);
    assert_float_equal(value(v, "cell_voltage_delta_mv"), 39, 0);
    assert_float_equal(value(v, "cell_lowest"), 12, 0);
    assert_float_equal(value(v, "cell_highest"), 3, 0);

    /* 30000 - 28750 = 1250 -> +12.50 A, charging. */
    assert_float_equal(value(v, "current"), 12.5, 1e-9);
    assert_float_equal(value(v, "pack_voltage"), 52.8, 1e-9);
    assert_float_equal(value(v, "pack_power"), 660, 0);
    assert_float_equal(value(v, "soc"), 50.0, 1e-9);
    assert_float_equal(value(v, "capacity_ah"), 100.0, 1e-9);
    assert_float_equal(value(v, "cycle_count"), 42, 0);
    assert_float_equal(value(v, "soh"), 99.5, 1e-9);

    /* Low byte - 50; the high byte's flags do not leak into the value. */
    assert_float_equal(value(v, "temperature_1"), 25, 0);
    assert_float_equal(value(v, "temperature_2"), -5, 0);
    assert_float_equal(value(v, "temperature_3"), 30, 0);
    assert_float_equal(value(v, "temperature_4"), 31, 0);
    assert_float_equal(value(v, "temperature_5"), 0, 0);
    assert_float_equal(value(v, "temperature_6"), -50, 0);

    /* Second word of group 06 = 0x0028: bits 3 and 5. The first word (0xFFFF) is not used. */
    assert_float_equal(value(v, "alarm_current_over"), 1, 0);
    assert_float_equal(value(v, "alarm_voltage_high"), 0, 0);
    assert_float_equal(value(v, "alarm_voltage_low"), 1, 0);
    assert_float_equal(value(v, "alarm_temp_high_chg"), 0, 0);
    assert_float_equal(value(v, "alarm_temp_low_chg"), 0, 0);

    /* The daemon integrates energy; the decoder never sets it. */
    assert_true(isnan(value(v, "energy_charged_kwh")));
    assert_true(isnan(value(v, "energy_discharged_kwh")));
}

static void test_eg4_legacy_current_above_30000_is_discharging(void **state)
{
    struct buf d;
    double v[128];
    (void)state;

    sample_status(&d, 31000);
    assert_int_equal(eg4_legacy_decode_status(d.b, d.n, 16, v), 0);
    assert_float_equal(value(v, "current"), -10.0, 1e-9);
    assert_float_equal(value(v, "pack_power"), -528, 0);

    sample_status(&d, 30000);
    assert_int_equal(eg4_legacy_decode_status(d.b, d.n, 16, v), 0);
    assert_float_equal(value(v, "current"), 0.0, 0);
}

static void test_eg4_legacy_cell_count_limits_cells_and_statistics(void **state)
{
    struct buf d;
    double v[128];
    (void)state;

    /* An 8-cell configuration: cells 9..16 (with the 3.262 V minimum) are not the pack's. */
    sample_status(&d, 28750);
    assert_int_equal(eg4_legacy_decode_status(d.b, d.n, 8, v), 0);
    assert_float_equal(value(v, "cell_08_voltage"), 3.283, 1e-9);
    assert_true(isnan(value(v, "cell_09_voltage")));
    assert_true(isnan(value(v, "cell_16_voltage")));
    assert_float_equal(value(v, "cell_voltage_min"), 3.276, 1e-9);
    assert_float_equal(value(v, "cell_lowest"), 6, 0);
    assert_float_equal(value(v, "cell_voltage_delta_mv"), 25, 0);

    /* 0 = as many as group 01 carries (16). */
    assert_int_equal(eg4_legacy_decode_status(d.b, d.n, 0, v), 0);
    assert_float_equal(value(v, "cell_lowest"), 12, 0);

    /* A group 01 with 4 cells under a 16-cell configuration: statistics over those 4. */
    const uint16_t four[4] = {3300, 3290, 3310, 3305};
    const uint16_t one[1] = {1}, temps[6] = {0};
    struct buf e = {.n = 0};
    group(&e, 0x01, four, 4);
    for (uint8_t id = 0x02; id <= 0x0A; id++)
        group(&e, id, id == 0x05 ? temps : one, id == 0x05 ? 6 : 1);
    assert_int_equal(eg4_legacy_decode_status(e.b, e.n, 16, v), 0);
    assert_float_equal(value(v, "cell_04_voltage"), 3.305, 1e-9);
    assert_true(isnan(value(v, "cell_05_voltage")));
    assert_float_equal(value(v, "cell_highest"), 3, 0);
    assert_float_equal(value(v, "cell_lowest"), 2, 0);
    assert_float_equal(value(v, "cell_voltage_delta_mv"), 20, 0);
}

static void test_eg4_legacy_appended_groups_with_lying_counts_are_not_read(void **state)
{
    struct buf d, f;
    struct eg4_legacy_frame fr;
    double v[128], ref[128];
    const uint16_t w[2] = {0xDEAD, 0xBEEF};
    (void)state;

    sample_status(&d, 28750);
    assert_int_equal(eg4_legacy_decode_status(d.b, d.n, 16, ref), 0);
    /* Groups 0x0B..0x11 claiming 200 words each while two follow. */
    for (uint8_t id = 0x0B; id <= 0x11; id++) {
        put(&d, id);
        put(&d, 200);
        put(&d, (uint8_t)(w[0] >> 8));
        put(&d, (uint8_t)w[0]);
        put(&d, (uint8_t)(w[1] >> 8));
        put(&d, (uint8_t)w[1]);
    }
    frame(&f, 1, EG4_LEGACY_CMD_STATUS, &d);
    assert_int_equal(eg4_legacy_parse_frame(f.b, f.n, &fr), 0);
    assert_int_equal(eg4_legacy_decode_status(fr.data, fr.len, 16, v), 0);
    for (size_t i = 0; i < eg4_legacy_n_readings; i++) {
        if (isnan(ref[i]))
            assert_true(isnan(v[i]));
        else
            assert_float_equal(v[i], ref[i], 0);
    }
    assert_float_equal(value(v, "soh"), 99.5, 1e-9);
}

static void test_eg4_legacy_script_mock_reply_with_short_groups_decodes(void **state)
{
    /*
     * The shape MockActiveTransport sends: four temperatures, two alarm words, groups 09
     * and 0A empty. Readings without data stay NaN (unknown) rather than being invented.
     */
    struct buf d = {.n = 0}, f;
    struct eg4_legacy_frame fr;
    double v[128];
    const uint16_t current[1] = {30000 - 500}, soc[1] = {50 * 100}, cap[1] = {5000};
    const uint16_t temps[4] = {75, 72, 78, 75}, alarms[2] = {0, 0}, cycles[1] = {43};
    const uint16_t volts[1] = {5248};
    (void)state;

    group(&d, 0x01, sample_cells_mv, 16);
    group(&d, 0x02, current, 1);
    group(&d, 0x03, soc, 1);
    group(&d, 0x04, cap, 1);
    group(&d, 0x05, temps, 4);
    group(&d, 0x06, alarms, 2);
    group(&d, 0x07, cycles, 1);
    group(&d, 0x08, volts, 1);
    group(&d, 0x09, NULL, 0);
    group(&d, 0x0A, NULL, 0);
    frame(&f, 1, EG4_LEGACY_CMD_STATUS, &d);

    /* The script sent checksum 0x00, which a checked parser refuses. */
    f.b[f.n - 2] = 0x00;
    assert_int_equal(eg4_legacy_parse_frame(f.b, f.n, &fr), -EBADMSG);
    f.b[f.n - 2] = eg4_legacy_checksum(f.b, f.n - 2);
    assert_int_equal(eg4_legacy_parse_frame(f.b, f.n, &fr), 0);

    assert_int_equal(eg4_legacy_decode_status(fr.data, fr.len, 16, v), 0);
    assert_float_equal(value(v, "current"), 5.0, 1e-9);
    assert_float_equal(value(v, "capacity_ah"), 50.0, 1e-9);
    assert_float_equal(value(v, "temperature_3"), 28, 0);
    assert_float_equal(value(v, "temperature_4"), 25, 0);
    assert_true(isnan(value(v, "temperature_5")));
    assert_true(isnan(value(v, "temperature_6")));
    assert_float_equal(value(v, "alarm_current_over"), 0, 0);
    assert_float_equal(value(v, "alarm_temp_low_chg"), 0, 0);
    assert_true(isnan(value(v, "soh")));
    assert_float_equal(value(v, "pack_voltage"), 52.48, 1e-9);
    assert_float_equal(value(v, "cycle_count"), 43, 0);

    /* One alarm word only: the alarms are unknown, not "off". */
    struct buf e = {.n = 0};
    const uint16_t w1[1] = {0xFFFF}, none[6] = {0};
    for (uint8_t id = 0x01; id <= 0x0A; id++)
        group(&e, id, id == 0x06 ? w1 : none, id == 0x06 ? 1 : 0);
    assert_int_equal(eg4_legacy_decode_status(e.b, e.n, 16, v), 0);
    assert_true(isnan(value(v, "alarm_current_over")));
    assert_true(isnan(value(v, "cell_voltage_min")));
    assert_true(isnan(value(v, "pack_power")));
}

static void test_eg4_legacy_truncated_status_and_count_past_len_are_bad_messages(void **state)
{
    struct buf d;
    double v[128];
    (void)state;

    sample_status(&d, 28750);
    /* Every prefix ends inside a group or before group 0x0A. */
    for (size_t n = 0; n < d.n; n++) {
        assert_int_equal(eg4_legacy_decode_status(d.b, n, 16, v), -EBADMSG);
        assert_all_nan(v);
    }
    /* Group 01 claims 255 cells: 510 bytes, far past LEN. Refused before any is read. */
    d.b[1] = 0xFF;
    assert_int_equal(eg4_legacy_decode_status(d.b, d.n, 16, v), -EBADMSG);
    assert_all_nan(v);
    /* Group 0A (the last) claims one word more than is there. */
    sample_status(&d, 28750);
    d.b[d.n - 5] = 3;
    assert_int_equal(d.b[d.n - 6], 0x0A);
    assert_int_equal(eg4_legacy_decode_status(d.b, d.n, 16, v), -EBADMSG);
    assert_all_nan(v);
}

static void test_eg4_legacy_group_order_and_missing_groups_are_bad_messages(void **state)
{
    struct buf d = {.n = 0};
    double v[128];
    const uint16_t w[6] = {1, 2, 3, 4, 5, 6};
    const uint8_t swapped[10] = {0x01, 0x03, 0x02, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A};
    (void)state;

    for (int i = 0; i < 10; i++)
        group(&d, swapped[i], w, 1);
    assert_int_equal(eg4_legacy_decode_status(d.b, d.n, 16, v), -EBADMSG);
    assert_all_nan(v);

    /* Group 05 missing: 06 arrives where 05 belongs. */
    d.n = 0;
    for (uint8_t id = 0x01; id <= 0x0A; id++)
        if (id != 0x05)
            group(&d, id, w, 1);
    assert_int_equal(eg4_legacy_decode_status(d.b, d.n, 16, v), -EBADMSG);

    /* Groups 01..09 only: the data ends before 0x0A. */
    d.n = 0;
    for (uint8_t id = 0x01; id <= 0x09; id++)
        group(&d, id, w, 1);
    assert_int_equal(eg4_legacy_decode_status(d.b, d.n, 16, v), -EBADMSG);

    /* Starting at 0x00 or 0x02 is not a status reply either. */
    d.n = 0;
    group(&d, 0x00, w, 1);
    for (uint8_t id = 0x01; id <= 0x0A; id++)
        group(&d, id, w, 1);
    assert_int_equal(eg4_legacy_decode_status(d.b, d.n, 16, v), -EBADMSG);
    assert_int_equal(eg4_legacy_decode_status(d.b + 4, d.n - 4, 16, v), 0);
    assert_int_equal(eg4_legacy_decode_status(d.b + 8, d.n - 8, 16, v), -EBADMSG);
}

static void test_eg4_legacy_empty_data_is_a_bad_message(void **state)
{
    double v[128];
    const uint8_t one[1] = {0x01};
    (void)state;

    assert_int_equal(eg4_legacy_decode_status(NULL, 0, 16, v), -EBADMSG);
    assert_all_nan(v);
    assert_int_equal(eg4_legacy_decode_status(one, 0, 16, v), -EBADMSG);
    assert_int_equal(eg4_legacy_decode_status(one, 1, 16, v), -EBADMSG);
}

static void test_eg4_legacy_parse_rejects_truncation_bad_soi_eoi_and_checksum(void **state)
{
    struct buf d, f;
    struct eg4_legacy_frame fr;
    (void)state;

    sample_status(&d, 28750);
    frame(&f, 1, EG4_LEGACY_CMD_STATUS, &d);

    /* Truncated anywhere, including the empty buffer and the bare header. */
    for (size_t n = 0; n < f.n; n++) {
        assert_int_equal(eg4_legacy_parse_frame(f.b, n, &fr), -EMSGSIZE);
        assert_null(fr.data);
    }
    /* A stray byte after the frame. */
    put(&f, 0x00);
    assert_int_equal(eg4_legacy_parse_frame(f.b, f.n, &fr), -EMSGSIZE);
    f.n--;

    f.b[0] = 0x7F;
    assert_int_equal(eg4_legacy_parse_frame(f.b, f.n, &fr), -EPROTO);
    assert_int_equal(eg4_legacy_parse_frame(f.b, 1, &fr), -EPROTO);
    f.b[0] = EG4_LEGACY_SOI;

    f.b[f.n - 1] = 0x0A;
    assert_int_equal(eg4_legacy_parse_frame(f.b, f.n, &fr), -EPROTO);
    f.b[f.n - 1] = EG4_LEGACY_EOI;

    f.b[f.n - 2] ^= 0x01;
    assert_int_equal(eg4_legacy_parse_frame(f.b, f.n, &fr), -EBADMSG);
    f.b[f.n - 2] ^= 0x01;

    /*
     * One flipped bit in ADR, CMD or DATA. XOR-with-sum is a weak check: flipping bit k
     * changes the XOR by 1 << k, and the sum by the same amount as an XOR whenever no
     * carry or borrow occurs, so about half of all single-bit errors pass. The parser
     * refuses exactly the ones whose checksum differs; both kinds occur.
     */
    unsigned caught = 0, missed = 0;
    for (size_t i = 1; i < f.n - 2; i++) {
        if (i == 3)
            continue; /* LEN: a length mismatch, tested below */
        for (int bit = 0; bit < 8; bit++) {
            f.b[i] ^= (uint8_t)(1u << bit);
            bool differs = eg4_legacy_checksum(f.b, f.n - 2) != f.b[f.n - 2];
            assert_int_equal(eg4_legacy_parse_frame(f.b, f.n, &fr), differs ? -EBADMSG : 0);
            caught += differs;
            missed += !differs;
            f.b[i] ^= (uint8_t)(1u << bit);
        }
    }
    assert_true(caught > 0);
    assert_true(missed > 0);
    f.b[3]++;
    assert_int_equal(eg4_legacy_parse_frame(f.b, f.n, &fr), -EMSGSIZE);
    f.b[3]--;
    assert_int_equal(eg4_legacy_parse_frame(f.b, f.n, &fr), 0);
}

static void test_eg4_legacy_framer_reports_lengths_as_the_header_arrives(void **state)
{
    const uint8_t hdr[4] = {0x7E, 0x01, 0x01, 0x5A};
    const uint8_t noise[1] = {0x0D};
    (void)state;

    assert_int_equal(eg4_legacy_frame_length(NULL, 0), 0);
    for (size_t n = 1; n < 4; n++)
        assert_int_equal(eg4_legacy_frame_length(hdr, n), 0);
    assert_int_equal(eg4_legacy_frame_length(hdr, 4), 0x5A + 6);
    assert_int_equal(eg4_legacy_frame_length(noise, 1), -1);
}

static void test_eg4_legacy_framer_fed_byte_by_byte_finds_frames_after_noise(void **state)
{
    struct buf d, f1, f2, fw, stream = {.n = 0};
    struct eg4_legacy_frame fr;
    uint8_t rx[EG4_LEGACY_FRAME_MAX];
    size_t have = 0, dropped = 0, found = 0;
    uint8_t addrs[3] = {0}, cmds[3] = {0};
    const uint8_t garbage[] = {0x00, 0x0D, 0x55, 0xFE};
    (void)state;

    sample_status(&d, 28750);
    frame(&f1, 2, EG4_LEGACY_CMD_STATUS, &d);
    sample_status(&d, 31000);
    frame(&f2, 4, EG4_LEGACY_CMD_STATUS, &d);
    struct buf ver = {.n = 0};
    memcpy(ver.b, "V1.9 \0\0", 7);
    ver.n = 7;
    frame(&fw, 4, EG4_LEGACY_CMD_FIRMWARE, &ver);

    for (size_t i = 0; i < sizeof(garbage); i++)
        put(&stream, garbage[i]);
    for (size_t i = 0; i < f1.n; i++)
        put(&stream, f1.b[i]);
    for (size_t i = 0; i < f2.n; i++)
        put(&stream, f2.b[i]);
    put(&stream, 0x33); /* a stray byte between replies */
    for (size_t i = 0; i < fw.n; i++)
        put(&stream, fw.b[i]);

    /* What a reader loop does: append a byte, then frame whatever is complete. */
    for (size_t i = 0; i < stream.n; i++) {
        assert_true(have < sizeof(rx));
        rx[have++] = stream.b[i];
        for (;;) {
            int len = eg4_legacy_frame_length(rx, have);
            if (len < 0) {
                memmove(rx, rx + 1, --have);
                dropped++;
                continue;
            }
            if (len == 0 || have < (size_t)len)
                break;
            assert_int_equal(eg4_legacy_parse_frame(rx, (size_t)len, &fr), 0);
            assert_true(found < 3);
            addrs[found] = fr.addr;
            cmds[found] = fr.cmd;
            found++;
            have -= (size_t)len;
            memmove(rx, rx + len, have);
        }
    }
    assert_int_equal(found, 3);
    assert_int_equal(dropped, sizeof(garbage) + 1);
    assert_int_equal(have, 0);
    assert_int_equal(addrs[0], 2);
    assert_int_equal(addrs[1], 4);
    assert_int_equal(cmds[2], EG4_LEGACY_CMD_FIRMWARE);
}

static void test_eg4_legacy_firmware_is_printable_ascii_trimmed(void **state)
{
    char out[16];
    const uint8_t padded[] = {' ', 'V', '2', '.', '0', '1', ' ', 'b', 0x00, ' ', 0x00, 0x00};
    const uint8_t nuls[] = {0x00, 0x00, ' ', 0x00};
    const uint8_t longer[] = "LP4-48V-100AH-FW-2.17";
    (void)state;

    assert_int_equal(eg4_legacy_decode_firmware(padded, sizeof(padded), out, sizeof(out)), 7);
    assert_string_equal(out, "V2.01 b");
    assert_int_equal(eg4_legacy_decode_firmware(nuls, sizeof(nuls), out, sizeof(out)), -ENODATA);
    assert_string_equal(out, "");
    assert_int_equal(eg4_legacy_decode_firmware(NULL, 0, out, sizeof(out)), -ENODATA);
    /* Truncated to the buffer, still terminated. */
    assert_int_equal(eg4_legacy_decode_firmware(longer, sizeof(longer) - 1, out, 8), 7);
    assert_string_equal(out, "LP4-48V");
    assert_int_equal(eg4_legacy_decode_firmware(longer, 4, out, 0), -EINVAL);
    assert_int_equal(eg4_legacy_decode_firmware(longer, 4, NULL, 8), -EINVAL);
}

static void test_eg4_legacy_readings_keep_the_script_keys(void **state)
{
    /* The active-mode keys of the eg4-battery script (_FIELD_META and its decoder). */
    static const char *const original[] = {
        "pack_voltage",
        "current",
        "soc",
        "capacity_ah",
        "cycle_count",
        "cell_voltage_min",
        "cell_voltage_max",
        "cell_voltage_delta_mv",
        "cell_lowest",
        "cell_highest",
        "alarm_current_over",
        "alarm_voltage_high",
        "alarm_voltage_low",
        "alarm_temp_high_chg",
        "alarm_temp_low_chg",
        "temperature_1",
        "temperature_6",
        "cell_01_voltage",
        "cell_16_voltage",
    };
    (void)state;

    for (size_t i = 0; i < sizeof(original) / sizeof(original[0]); i++)
        (void)idx(original[i]);
    /* No zero-padded temperatures here: those are LP4V2's keys. */
    assert_int_equal(reading_find(eg4_legacy_readings, eg4_legacy_n_readings, "temperature_01"),
                     -1);
    assert_int_equal(reading_find(eg4_legacy_readings, eg4_legacy_n_readings, "pack_current"), -1);

    for (size_t i = 0; i < eg4_legacy_n_readings; i++) {
        const struct reading_def *r = &eg4_legacy_readings[i];
        assert_non_null(r->key);
        assert_non_null(r->name);
        assert_int_equal(r->src, SRC_DERIVED);
        for (size_t j = i + 1; j < eg4_legacy_n_readings; j++)
            assert_string_not_equal(r->key, eg4_legacy_readings[j].key);
    }
    const struct reading_def *c = &eg4_legacy_readings[idx("cell_07_voltage")];
    assert_int_equal(c->q, Q_VOLTAGE);
    assert_int_equal(c->precision, 3);
    assert_int_equal(eg4_legacy_readings[idx("cell_voltage_delta_mv")].q, Q_VOLTAGE_MV);
    assert_int_equal(eg4_legacy_readings[idx("current")].q, Q_CURRENT);
    assert_int_equal(eg4_legacy_readings[idx("soc")].q, Q_SOC);
    assert_int_equal(eg4_legacy_readings[idx("soh")].q, Q_PERCENT);
    assert_int_equal(eg4_legacy_readings[idx("capacity_ah")].q, Q_CHARGE);
    assert_int_equal(eg4_legacy_readings[idx("temperature_3")].q, Q_TEMPERATURE);
    assert_int_equal(eg4_legacy_readings[idx("cycle_count")].q, Q_COUNT);
    assert_int_equal(eg4_legacy_readings[idx("pack_power")].q, Q_POWER);
    assert_int_equal(eg4_legacy_readings[idx("energy_charged_kwh")].q, Q_ENERGY);
    assert_int_equal(eg4_legacy_readings[idx("alarm_temp_low_chg")].q, Q_PROBLEM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eg4_legacy_checksum_is_xor_of_bytes_xor_their_sum),
        cmocka_unit_test(test_eg4_legacy_request_known_answers_for_addresses_0_1_2_4_8),
        cmocka_unit_test(test_eg4_legacy_original_formula_agrees_only_for_address_1),
        cmocka_unit_test(test_eg4_legacy_parse_accepts_a_built_reply_and_points_at_its_data),
        cmocka_unit_test(test_eg4_legacy_status_decodes_known_values),
        cmocka_unit_test(test_eg4_legacy_current_above_30000_is_discharging),
        cmocka_unit_test(test_eg4_legacy_cell_count_limits_cells_and_statistics),
        cmocka_unit_test(test_eg4_legacy_appended_groups_with_lying_counts_are_not_read),
        cmocka_unit_test(test_eg4_legacy_script_mock_reply_with_short_groups_decodes),
        cmocka_unit_test(test_eg4_legacy_truncated_status_and_count_past_len_are_bad_messages),
        cmocka_unit_test(test_eg4_legacy_group_order_and_missing_groups_are_bad_messages),
        cmocka_unit_test(test_eg4_legacy_empty_data_is_a_bad_message),
        cmocka_unit_test(test_eg4_legacy_parse_rejects_truncation_bad_soi_eoi_and_checksum),
        cmocka_unit_test(test_eg4_legacy_framer_reports_lengths_as_the_header_arrives),
        cmocka_unit_test(test_eg4_legacy_framer_fed_byte_by_byte_finds_frames_after_noise),
        cmocka_unit_test(test_eg4_legacy_firmware_is_printable_ascii_trimmed),
        cmocka_unit_test(test_eg4_legacy_readings_keep_the_script_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
