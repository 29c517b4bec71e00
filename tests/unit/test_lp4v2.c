/* SPDX-License-Identifier: MIT */
/* test_lp4v2.c - decoding LP4V2 registers with the vendor's V01.06 map. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <string.h>

#include "crc.h"
#include "lp4v2.h"
#include "modbus_rtu.h"

/*
 * The register block of the eg4-battery script's `_mock_modbus_regs` (copied from a live
 * pack), at the centre of its random ranges: 16 cells, regs 18..24 = 21 21 20 54 100 100
 * 55, reg 30 = 1, regs 31/32 = 5493/10752, 36 = 16, 37 = 1000.
 */
static void sample_regs(uint16_t regs[47])
{
    static const uint16_t cells[16] = {3280, 3285, 3279, 3282, 3288, 3276, 3281, 3283,
                                       3280, 3284, 3287, 3272, 3281, 3280, 3279, 3282};
    unsigned sum = 0;

    memset(regs, 0, 47 * sizeof(regs[0]));
    for (int i = 0; i < 16; i++) {
        regs[2 + i] = cells[i];
        sum += cells[i];
    }
    regs[0] = (uint16_t)(sum / 10);
    regs[1] = (uint16_t)(30000 - 750); /* the script's biased current, s16 under V01.06 */
    regs[18] = 21;
    regs[19] = 21;
    regs[20] = 20;
    regs[21] = 54;
    regs[22] = 100;
    regs[23] = 100;
    regs[24] = 55;
    regs[30] = 1;
    regs[31] = 5493;
    regs[32] = 10752;
    regs[36] = 16;
    regs[37] = 1000;
    regs[46] = 5;
}

static double value(const double *v, const char *key)
{
    int i = reading_find(lp4v2_readings, lp4v2_n_readings, key);
    assert_true(i >= 0);
    return v[i];
}

static void test_lp4v2_original_sample_reads_soc55_soh100_remaining54_full100_pcb21(void **state)
{
    uint16_t regs[47];
    double v[512];
    (void)state;

    assert_true(lp4v2_n_readings < 512);
    sample_regs(regs);
    assert_int_equal(lp4v2_decode(regs, 47, v), 0);
    assert_float_equal(value(v, "soc"), 55, 0);
    assert_float_equal(value(v, "soh"), 100, 0);
    assert_float_equal(value(v, "remaining_ah"), 54, 0);
    assert_float_equal(value(v, "full_capacity_ah"), 100.0, 1e-9);
    assert_float_equal(value(v, "temperature_pcb"), 21, 0);
    /* Registers 19 = 21 and 20 = 20: the maximum is 19, the average 20, whatever the
     * vendor's labels say (protocols/README.md §1). */
    assert_float_equal(value(v, "temperature_max"), 21, 0);
    assert_float_equal(value(v, "temperature_avg"), 20, 0);
    assert_float_equal(value(v, "max_charge_current"), 100, 0);
    assert_float_equal(value(v, "cycle_count"), 1, 0);
    assert_float_equal(value(v, "capacity_ah"), 100.0, 1e-9);
    assert_float_equal(value(v, "cell_count"), 16, 0);
    assert_float_equal(value(v, "register_46"), 5, 0);
}

static void test_lp4v2_cells_and_statistics(void **state)
{
    uint16_t regs[47];
    double v[512];
    (void)state;

    sample_regs(regs);
    lp4v2_decode(regs, 47, v);
    assert_float_equal(value(v, "cell_01_voltage"), 3.280, 1e-9);
    assert_float_equal(value(v, "cell_16_voltage"), 3.282, 1e-9);
    assert_float_equal(value(v, "cell_voltage_min"), 3.272, 1e-9);
    assert_float_equal(value(v, "cell_voltage_max"), 3.288, 1e-9);
    assert_float_equal(value(v, "cell_voltage_delta_mv"), 16, 0);
    assert_float_equal(value(v, "cell_lowest"), 12, 0);
    assert_float_equal(value(v, "cell_highest"), 5, 0);
    assert_float_equal(value(v, "pack_voltage"), 52.49, 1e-9); /* sum of cells / 10 */
}

static void test_lp4v2_current_is_signed_10mA_and_power_follows(void **state)
{
    uint16_t regs[47];
    double v[512];
    (void)state;

    sample_regs(regs);
    regs[0] = 5300;            /* 53.00 V */
    regs[1] = (uint16_t)-1250; /* -12.50 A: discharging */
    lp4v2_decode(regs, 47, v);
    assert_float_equal(value(v, "pack_current"), -12.5, 1e-9);
    /* Unrounded (53.00 V x -12.50 A); the state shows it at precision 0: -663 W. */
    assert_float_equal(value(v, "pack_power"), -662.5, 1e-3);
    regs[1] = 1000;
    lp4v2_decode(regs, 47, v);
    assert_float_equal(value(v, "pack_current"), 10.0, 1e-9);
}

static void test_lp4v2_status_heater_and_flags(void **state)
{
    uint16_t regs[47];
    double v[512];
    (void)state;

    sample_regs(regs);
    regs[25] = 0x8002;          /* bit 15 + discharging */
    regs[26] = (1u << 12) | 1u; /* low capacity, pack OV warnings */
    regs[27] = 1u << 13;        /* discharge short circuit protection */
    regs[28] = 1u << 4;         /* cell unbalance */
    regs[38] = 1u << 15;        /* cell 16 balancing */
    lp4v2_decode(regs, 47, v);
    assert_float_equal(value(v, "status"), 2, 0); /* index of "discharging" */
    assert_float_equal(value(v, "heater"), 1, 0);
    assert_float_equal(value(v, "warning_pack_ov"), 1, 0);
    assert_float_equal(value(v, "warning_low_capacity"), 1, 0);
    assert_float_equal(value(v, "warning_float_stopped"), 0, 0);
    assert_float_equal(value(v, "protection_discharge_sc"), 1, 0);
    assert_float_equal(value(v, "protection_low_capacity"), 0, 0);
    assert_float_equal(value(v, "error_cell_unbalance"), 1, 0);
    assert_float_equal(value(v, "error_voltage"), 0, 0);
    assert_float_equal(value(v, "cell_16_balancing"), 1, 0);
    assert_float_equal(value(v, "cell_01_balancing"), 0, 0);
    regs[25] = 0x0003; /* not a documented status: unknown, not a wrong text */
    lp4v2_decode(regs, 47, v);
    assert_true(isnan(value(v, "status")));
}

static void test_lp4v2_temperature_sensors_are_bytes_high_first(void **state)
{
    uint16_t regs[47];
    double v[512];
    (void)state;

    sample_regs(regs);
    regs[33] = (22 << 8) | 23;
    regs[34] = (24 << 8) | 25;
    regs[35] = (0xF6 << 8) | 0; /* -10 °C, 0 °C */
    lp4v2_decode(regs, 47, v);
    assert_float_equal(value(v, "temperature_01"), 22, 0);
    assert_float_equal(value(v, "temperature_02"), 23, 0);
    assert_float_equal(value(v, "temperature_04"), 25, 0);
    assert_float_equal(value(v, "temperature_05"), -10, 0);
    assert_float_equal(value(v, "temperature_06"), 0, 0);
}

static void test_lp4v2_all_zero_master_block_is_refused(void **state)
{
    uint16_t regs[47];
    double v[512];
    (void)state;

    sample_regs(regs);
    memset(regs, 0, 19 * sizeof(regs[0]));
    assert_int_equal(lp4v2_decode(regs, 47, v), -ENODATA);
    assert_true(isnan(value(v, "soc")));
}

static void test_lp4v2_short_block_is_refused(void **state)
{
    uint16_t regs[47];
    double v[512];
    (void)state;

    sample_regs(regs);
    assert_int_equal(lp4v2_decode(regs, 38, v), -EPROTO);
    assert_int_equal(lp4v2_decode(regs, 39, v), 0);
    assert_true(isnan(value(v, "register_46")));
}

static void test_lp4v2_identity_strings(void **state)
{
    uint16_t id[23] = {0};
    const char *model = "LP4V2-48V-100AH";
    const char *fw = "V03R04";
    const char *sn = "2023A1B2C3D4E5F6";
    struct device_identity out;
    (void)state;

    for (size_t i = 0; i < strlen(model); i++)
        id[i / 2] |= (uint16_t)(i % 2 ? model[i] : model[i] << 8);
    for (size_t i = 0; i < 6; i++)
        id[12 + i / 2] |= (uint16_t)(i % 2 ? fw[i] : fw[i] << 8);
    for (size_t i = 0; i < 16; i++)
        id[15 + i / 2] |= (uint16_t)(i % 2 ? sn[i] : sn[i] << 8);
    lp4v2_identity(id, 23, &out);
    assert_string_equal(out.model, "LP4V2-48V-100AH");
    assert_string_equal(out.firmware, "V03R04");
    assert_string_equal(out.serial, "2023A1B2C3D4E5F6");
    lp4v2_identity(id, 22, &out);
    assert_string_equal(out.model, "");
}

static void test_lp4v2_unique_keys_of_the_script_survive(void **state)
{
    static const char *const kept[] = {
        "pack_voltage",
        "pack_current",
        "cell_01_voltage",
        "cell_16_voltage",
        "cell_voltage_min",
        "cell_voltage_max",
        "cell_voltage_delta_mv",
        "cell_lowest",
        "cell_highest",
        "temperature_pcb",
        "soc",
        "soh",
        "error_code",
        "cell_count",
        "capacity_ah",
        "remaining_ah",
        "cycle_count",
        "warning_pack_ov",
        "protection_discharge_sc",
        "register_00",
        "register_46",
        "temperature_01",
        "temperature_06",
        NULL,
    };
    (void)state;
    for (size_t i = 0; kept[i]; i++)
        assert_true(reading_find(lp4v2_readings, lp4v2_n_readings, kept[i]) >= 0);
    /* ... and keys only the script's wrong map had are gone. */
    assert_int_equal(reading_find(lp4v2_readings, lp4v2_n_readings, "max_current_limit"), -1);
    assert_int_equal(reading_find(lp4v2_readings, lp4v2_n_readings, "uptime_ds"), -1);
    /* Keys are unique. */
    for (size_t i = 0; i < lp4v2_n_readings; i++)
        assert_int_equal(reading_find(lp4v2_readings, lp4v2_n_readings, lp4v2_readings[i].key),
                         (int)i);
}

/* A good 47-register reply frame for slave 0x40 built around regs. */
static size_t build_reply(const uint16_t *regs, uint8_t *adu)
{
    size_t n = 0;
    adu[n++] = 0x40;
    adu[n++] = 0x03;
    adu[n++] = 94;
    for (int i = 0; i < 47; i++) {
        adu[n++] = (uint8_t)(regs[i] >> 8);
        adu[n++] = (uint8_t)regs[i];
    }
    uint16_t crc = crc16_modbus(adu, n);
    adu[n++] = (uint8_t)crc;
    adu[n++] = (uint8_t)(crc >> 8);
    return n;
}

static void test_modbus_response_checks(void **state)
{
    uint16_t regs[47], out[47];
    uint8_t adu[128], ex = 0;
    (void)state;

    sample_regs(regs);
    size_t n = build_reply(regs, adu);
    assert_int_equal(n, 99);
    assert_int_equal(mb_parse_read_response(adu, n, 0x40, 47, out, &ex), RESULT_OK);
    assert_memory_equal(out, regs, sizeof(regs));
    assert_int_equal(mb_parse_read_response(adu, n, 0x41, 47, out, &ex), RESULT_ADDRESS);
    assert_int_equal(mb_parse_read_response(adu, n, 0x40, 46, out, &ex), RESULT_LENGTH);
    assert_int_equal(mb_parse_read_response(adu, n - 1, 0x40, 47, out, &ex), RESULT_CRC);
    assert_int_equal(mb_parse_read_response(adu, 3, 0x40, 47, out, &ex), RESULT_LENGTH);
    adu[10] ^= 0x01;
    assert_int_equal(mb_parse_read_response(adu, n, 0x40, 47, out, &ex), RESULT_CRC);
    uint8_t e5[5] = {0x40, 0x83, 0x02};
    uint16_t crc = crc16_modbus(e5, 3);
    e5[3] = (uint8_t)crc;
    e5[4] = (uint8_t)(crc >> 8);
    assert_int_equal(mb_parse_read_response(e5, 5, 0x40, 47, out, &ex), RESULT_REFUSED);
    assert_int_equal(ex, 2);
}

/* A pack on a fake line for the map's passes: its registers 0..127, and the requests. */
struct fake_pack {
    uint16_t regs[LP4V2_IMAGE_SIZE];
    unsigned requests;
    uint16_t start[8], count[8];
    enum result answer; /* RESULT_OK, or what every request gets */
};

static enum result fake_pack_read(void *ctx, uint8_t unit, uint16_t start, uint16_t count,
                                  uint16_t *out, uint8_t *exception)
{
    struct fake_pack *f = ctx;

    assert_int_equal(unit, 0); /* the pack's own slave id */
    if (f->requests < 8) {
        f->start[f->requests] = start;
        f->count[f->requests] = count;
    }
    f->requests++;
    if (f->answer != RESULT_OK) {
        *exception = 2;
        return f->answer;
    }
    assert_true((unsigned)start + count <= LP4V2_IMAGE_SIZE);
    memcpy(out, &f->regs[start], count * sizeof(out[0]));
    return RESULT_OK;
}

static void test_lp4v2_poll_through_the_map_is_one_request_with_the_same_values(void **state)
{
    struct fake_pack f = {.requests = 0};
    double want[512], got[512];
    (void)state;

    sample_regs(f.regs);
    f.regs[25] = 0x8001;
    f.regs[33] = (22 << 8) | 0xF6;
    assert_int_equal(lp4v2_decode(f.regs, 47, want), 0);
    assert_int_equal(lp4v2_poll_map(NULL, fake_pack_read, &f, got), RESULT_OK);
    assert_int_equal(f.requests, 1);
    assert_int_equal(f.start[0], 0);
    assert_int_equal(f.count[0], 47);
    for (size_t i = 0; i < lp4v2_n_readings; i++) {
        if (isnan(want[i]))
            assert_true(isnan(got[i]));
        else
            assert_float_equal(got[i], want[i], 0);
    }
    assert_float_equal(value(got, "soc"), 55, 0);
    assert_float_equal(value(got, "full_capacity_ah"), 100.0, 1e-9);
    assert_float_equal(value(got, "cell_voltage_min"), 3.272, 1e-9);
    assert_float_equal(value(got, "status"), 1, 0);
    assert_float_equal(value(got, "heater"), 1, 0);
    assert_float_equal(value(got, "temperature_02"), -10, 0);
    assert_float_equal(value(got, "register_46"), 5, 0);
    /* The derived energy counters are the poller's: unknown here. */
    assert_true(isnan(value(got, "energy_charged_kwh")));

    /* The aggregated master map (0..18 all zero): RESULT_ZERO, nothing published. */
    memset(f.regs, 0, 19 * sizeof(f.regs[0]));
    assert_int_equal(lp4v2_poll_map(NULL, fake_pack_read, &f, got), RESULT_ZERO);
    assert_true(isnan(value(got, "soc")));

    /* A refused block is not split: one request, the poll fails as before. */
    f.requests = 0;
    f.answer = RESULT_REFUSED;
    assert_int_equal(lp4v2_poll_map(NULL, fake_pack_read, &f, got), RESULT_REFUSED);
    assert_int_equal(f.requests, 1);
    assert_true(isnan(value(got, "pack_voltage")));
    f.answer = RESULT_TIMEOUT;
    assert_int_equal(lp4v2_poll_map(NULL, fake_pack_read, &f, got), RESULT_TIMEOUT);
}

static void test_lp4v2_identify_through_the_map(void **state)
{
    struct fake_pack f = {.requests = 0};
    struct device_identity id = {"old", "old", "old"};
    const char *text = "LP4V2-48V-100AH\0\0\0\0\0\0\0\0\0V03R04"
                       "2023A1B2C3D4E5F6";
    (void)state;

    for (size_t i = 0; i < 46; i++)
        f.regs[105 + i / 2] |=
            (uint16_t)(i % 2 ? (unsigned char)text[i] : (unsigned char)text[i] << 8);
    assert_int_equal(lp4v2_identify_map(NULL, fake_pack_read, &f, &id), RESULT_OK);
    assert_int_equal(f.requests, 1);
    assert_int_equal(f.start[0], 105);
    assert_int_equal(f.count[0], 23);
    assert_string_equal(id.model, "LP4V2-48V-100AH");
    assert_string_equal(id.firmware, "V03R04");
    assert_string_equal(id.serial, "2023A1B2C3D4E5F6");
    f.answer = RESULT_REFUSED; /* bms-sim --no-identity */
    assert_int_equal(lp4v2_identify_map(NULL, fake_pack_read, &f, &id), RESULT_REFUSED);
    assert_string_equal(id.model, "LP4V2-48V-100AH"); /* untouched */
}

/* The generated map agrees with the register numbers the simulator uses (lp4v2_regs.h), and
 * passes the map check. */
static void test_lp4v2_map_matches_the_register_header(void **state)
{
    static const struct {
        const char *key;
        unsigned reg;
    } at[] = {
        {"pack_voltage", LP4V2_REG_VOLTAGE},
        {"pack_current", LP4V2_REG_CURRENT},
        {"cell_01_voltage", LP4V2_REG_CELL1},
        {"temperature_pcb", LP4V2_REG_TEMP_PCB},
        {"temperature_max", LP4V2_REG_TEMP_MAX},
        {"temperature_avg", LP4V2_REG_TEMP_AVG},
        {"remaining_ah", LP4V2_REG_REMAINING},
        {"max_charge_current", LP4V2_REG_MAX_CHARGE},
        {"soh", LP4V2_REG_SOH},
        {"soc", LP4V2_REG_SOC},
        {"status", LP4V2_REG_STATUS},
        {"warning_pack_ov", LP4V2_REG_WARNING},
        {"protection_pack_ov", LP4V2_REG_PROTECTION},
        {"error_code", LP4V2_REG_ERROR},
        {"cycle_count", LP4V2_REG_CYCLES},
        {"full_capacity_ah", LP4V2_REG_FULL_CAP},
        {"temperature_01", LP4V2_REG_TEMPS},
        {"cell_count", LP4V2_REG_CELL_COUNT},
        {"capacity_ah", LP4V2_REG_DESIGN_CAP},
        {"cell_01_balancing", LP4V2_REG_BALANCE},
    };
    char err[160] = "";
    (void)state;

    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        int k = reading_find(lp4v2_readings, lp4v2_n_readings, at[i].key);
        assert_true(k >= 0);
        assert_int_equal(lp4v2_readings[k].reg, at[i].reg);
    }
    assert_int_equal(lp4v2_map.defs, lp4v2_readings);
    assert_int_equal(lp4v2_map.n_defs, lp4v2_n_readings);
    assert_int_equal(lp4v2_map.n_aux, 3);
    assert_int_equal(lp4v2_map.aux[0].reg, LP4V2_REG_MODEL);
    assert_int_equal(lp4v2_map.aux[1].reg, LP4V2_REG_FIRMWARE);
    assert_int_equal(lp4v2_map.aux[2].reg, LP4V2_REG_SERIAL);
    assert_int_equal(regmap_check(&lp4v2_map, err, sizeof(err)), 0);
    assert_int_equal(lp4v2_map.split_budget, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lp4v2_original_sample_reads_soc55_soh100_remaining54_full100_pcb21),
        cmocka_unit_test(test_lp4v2_cells_and_statistics),
        cmocka_unit_test(test_lp4v2_current_is_signed_10mA_and_power_follows),
        cmocka_unit_test(test_lp4v2_status_heater_and_flags),
        cmocka_unit_test(test_lp4v2_temperature_sensors_are_bytes_high_first),
        cmocka_unit_test(test_lp4v2_all_zero_master_block_is_refused),
        cmocka_unit_test(test_lp4v2_short_block_is_refused),
        cmocka_unit_test(test_lp4v2_identity_strings),
        cmocka_unit_test(test_lp4v2_unique_keys_of_the_script_survive),
        cmocka_unit_test(test_modbus_response_checks),
        cmocka_unit_test(test_lp4v2_poll_through_the_map_is_one_request_with_the_same_values),
        cmocka_unit_test(test_lp4v2_identify_through_the_map),
        cmocka_unit_test(test_lp4v2_map_matches_the_register_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
