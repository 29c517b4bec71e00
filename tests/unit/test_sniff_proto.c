/* SPDX-License-Identifier: MIT */
/* test_sniff_proto.c - the listening descriptors: heard exchanges decoded into readings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ascii_frame.h"
#include "crc.h"
#include "eg4_legacy.h"
#include "lp4_ascii.h"
#include "lp4v2.h"
#include "pylontech.h"
#include "sniff_proto.h"

/* What one feed heard and decoded, copied out of the callbacks. */
struct heard {
    size_t n;
    enum sniff_kind kind[16];
    uint8_t addr[16], command[16];
    char line[16][200];
    int n_mods[16];
    struct sniff_module mods[16][SNIFF_MAX_MODULES];
    double values[16][SNIFF_MAX_MODULES][200];
};

static struct heard H;
static struct sniffer SN;
static const double *prior_row; /* what the fake prior() gives for every address */

static const double *prior(uint8_t addr, void *ud)
{
    (void)addr;
    (void)ud;
    return prior_row;
}

static void collect(const struct sniff_heard *h, void *ud)
{
    struct sniffer *sn = ud;
    size_t i = H.n++;
    size_t nd = *sn->proto->driver->n_defs;

    assert_true(i < 16);
    assert_true(nd <= 200);
    H.kind[i] = h->kind;
    H.addr[i] = h->addr;
    H.command[i] = h->command;
    sn->proto->describe(h, H.line[i], sizeof(H.line[i]));
    H.n_mods[i] = sniffer_decode(sn, h, 16, prior, NULL, H.mods[i]);
    for (int k = 0; k < H.n_mods[i]; k++)
        if (H.mods[i][k].values) {
            memcpy(H.values[i][k], H.mods[i][k].values, nd * sizeof(double));
            H.mods[i][k].values = H.values[i][k];
        }
}

static void open_proto(const char *name)
{
    const struct sniff_proto *p = sniff_proto_find(name);

    assert_non_null(p);
    memset(&H, 0, sizeof(H));
    prior_row = NULL;
    assert_int_equal(sniffer_open(&SN, p, 9600), 0);
}

static void feed(const void *bytes, size_t n)
{
    sniffer_feed(&SN, bytes, n, 1.0, collect, &SN);
}

static double val(int frame, int mod, const char *key)
{
    int i = reading_find(SN.proto->driver->defs, *SN.proto->driver->n_defs, key);

    assert_true(i >= 0);
    return H.values[frame][mod][i];
}

/* ---- the table ---------------------------------------------------------------------- */

static void test_sniff_proto_table_names_every_protocol_of_the_daemon(void **state)
{
    static const char *const names[] = {"lp4v2", "eg4_legacy", "pylontech", "lp4_ascii"};

    (void)state;
    for (size_t i = 0; i < 4; i++) {
        const struct sniff_proto *p = sniff_proto_find(names[i]);
        assert_non_null(p);
        assert_ptr_equal(p, drivers[i]->sniff);
        assert_ptr_equal(p->driver, drivers[i]);
        assert_non_null(p->driver);
        assert_non_null(p->found_fmt);
        assert_true(p->init && p->feed && p->flush && p->noise && p->describe && p->decode);
    }
    assert_ptr_equal(sniff_proto_find("pylontech")->driver, &pylontech_driver);
    assert_null(sniff_proto_find("modbus"));
    assert_null(sniff_proto_find(NULL));
}

/* ---- Modbus RTU: LP4V2 ------------------------------------------------------------------ */

static size_t with_crc(uint8_t *p, size_t n)
{
    uint16_t crc = crc16_modbus(p, n);

    p[n] = (uint8_t)(crc & 0xFF);
    p[n + 1] = (uint8_t)(crc >> 8);
    return n + 2;
}

static size_t read_request(uint8_t *p, uint8_t slave, uint16_t start, uint16_t count)
{
    uint8_t q[] = {slave, 3, (uint8_t)(start >> 8), (uint8_t)start, 0, (uint8_t)count};

    memcpy(p, q, sizeof(q));
    return with_crc(p, 6);
}

static size_t read_response(uint8_t *p, uint8_t slave, const uint16_t *regs, size_t n)
{
    p[0] = slave;
    p[1] = 3;
    p[2] = (uint8_t)(2 * n);
    for (size_t i = 0; i < n; i++) {
        p[3 + 2 * i] = (uint8_t)(regs[i] >> 8);
        p[4 + 2 * i] = (uint8_t)regs[i];
    }
    return with_crc(p, 3 + 2 * n);
}

static void test_sniff_proto_lp4v2_block_identity_and_all_zero_map(void **state)
{
    uint8_t f[300];
    uint16_t regs[47] = {0}, id[23];
    size_t n;

    (void)state;
    open_proto("lp4v2");
    for (int i = 0; i < 16; i++)
        regs[2 + i] = 3300;
    regs[0] = 5280;
    regs[1] = 1000; /* +10 A */
    regs[24] = 55;
    regs[36] = 16;
    n = read_request(f, 0x40, 0, 47);
    feed(f, n);
    n = read_response(f, 0x40, regs, 47);
    feed(f, n);
    assert_int_equal(H.n, 2);
    assert_int_equal(H.n_mods[0], 0); /* a request carries no reading */
    assert_int_equal(H.n_mods[1], 1);
    assert_int_equal(H.mods[1][0].what, SNIFF_READING);
    assert_int_equal(H.mods[1][0].addr, 0x40);
    assert_float_equal(val(1, 0, "pack_voltage"), 52.8, 1e-9);
    assert_float_equal(val(1, 0, "soc"), 55, 1e-9);
    char line[200];
    sniff_summary(SN.proto, &H.mods[1][0], line, sizeof(line));
    assert_string_equal(line, "LP4V2 slave 0x40: 52.80 V +10.00 A SoC 55 % cells 3.300..3.300 V");

    /* The identity read, registers 105..127. */
    memset(id, 0, sizeof(id));
    id[0] = ('L' << 8) | 'P';
    id[1] = ('4' << 8) | 'V';
    id[12] = ('V' << 8) | '0';
    id[13] = ('3' << 8) | 'R';
    id[14] = ('0' << 8) | '4';
    id[15] = ('S' << 8) | 'N';
    n = read_request(f, 0x40, 105, 23);
    feed(f, n);
    n = read_response(f, 0x40, id, 23);
    feed(f, n);
    assert_int_equal(H.n_mods[3], 1);
    assert_int_equal(H.mods[3][0].what, SNIFF_IDENTITY);
    assert_string_equal(H.mods[3][0].id.model, "LP4V");
    assert_string_equal(H.mods[3][0].id.firmware, "V03R04");
    assert_string_equal(H.mods[3][0].id.serial, "SN");

    /* An all-zero map (aggregated master of some firmware): a bad reading, never data. */
    memset(regs, 0, sizeof(regs));
    n = read_request(f, 0x01, 0, 47);
    feed(f, n);
    n = read_response(f, 0x01, regs, 47);
    feed(f, n);
    assert_int_equal(H.mods[5][0].what, SNIFF_BAD);
    assert_int_equal(H.mods[5][0].cause, RESULT_ZERO);
    sniffer_close(&SN);
}

/* ---- EG4 legacy ------------------------------------------------------------------------- */

static size_t legacy_frame(uint8_t *out, uint8_t addr, uint8_t cmd, const uint8_t *d, size_t len)
{
    out[0] = 0x7E;
    out[1] = addr;
    out[2] = cmd;
    out[3] = (uint8_t)len;
    memcpy(out + 4, d, len);
    out[4 + len] = eg4_legacy_checksum(out, len + 4);
    out[5 + len] = 0x0D;
    return len + 6;
}

static void test_sniff_proto_legacy_status_and_firmware(void **state)
{
    uint8_t data[128], f[160], req[6];
    size_t n = 0;

    (void)state;
    open_proto("eg4_legacy");
    /* Groups 0x01..0x0A (README §2): 16 cells of 3300 mV with the flag bits set, current
     * 28000 (+20 A), SoC 5500, capacity 10000, temperatures 75 (25 °C), alarms, cycles 7,
     * voltage 5280, SoH 10000, one unknown word. */
    data[n++] = 0x01;
    data[n++] = 16;
    for (int i = 0; i < 16; i++) {
        data[n++] = 0xCC;
        data[n++] = 0xE4; /* 0xCCE4 & 0x3FFF = 3300 */
    }
    static const struct {
        uint8_t id, count;
        uint16_t v;
    } groups[] = {{2, 1, 28000}, {3, 1, 5500}, {4, 1, 10000}, {5, 6, 75}, {6, 5, 0},
                  {7, 1, 7},     {8, 1, 5280}, {9, 1, 10000}, {10, 1, 0}};
    for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
        data[n++] = groups[g].id;
        data[n++] = groups[g].count;
        for (int k = 0; k < groups[g].count; k++) {
            data[n++] = (uint8_t)(groups[g].v >> 8);
            data[n++] = (uint8_t)groups[g].v;
        }
    }
    eg4_legacy_build_request(3, 0x01, req);
    feed(req, 6);
    feed(f, legacy_frame(f, 3, 0x01, data, n));
    assert_int_equal(H.n, 2);
    assert_int_equal(H.n_mods[1], 1);
    assert_int_equal(H.mods[1][0].what, SNIFF_READING);
    assert_int_equal(H.mods[1][0].addr, 3);
    assert_float_equal(val(1, 0, "pack_voltage"), 52.8, 1e-9);
    assert_float_equal(val(1, 0, "current"), 20.0, 1e-9);
    char line[200];
    sniff_summary(SN.proto, &H.mods[1][0], line, sizeof(line));
    assert_string_equal(line,
                        "EG4 legacy addr 0x03: 52.80 V +20.00 A SoC 55 % cells 3.300..3.300 V");
    /* Firmware, even without its request: a legacy reply names its address and command. */
    feed(f, legacy_frame(f, 3, 0x33, (const uint8_t *)"LP4-V1.2", 8));
    assert_int_equal(H.kind[2], SNIFF_UNPAIRED);
    assert_int_equal(H.mods[2][0].what, SNIFF_IDENTITY);
    assert_string_equal(H.mods[2][0].id.firmware, "LP4-V1.2");
    /* A status that does not fit its frame: a bad reading. */
    feed(f, legacy_frame(f, 3, 0x01, data, 5));
    assert_int_equal(H.mods[3][0].what, SNIFF_BAD);
    sniffer_close(&SN);
}

/* ---- Pylontech -------------------------------------------------------------------------- */

struct buf {
    uint8_t b[1500];
    size_t n;
};

static void put(struct buf *b, unsigned v)
{
    b->b[b->n++] = (uint8_t)v;
}

static void put16(struct buf *b, unsigned v)
{
    put(b, (v >> 8) & 0xFF);
    put(b, v & 0xFF);
}

/* One §3.3 module block: 16 cells of mv, 6 temperatures of 25 °C, current (0.1 A), voltage
 * 16 x mv (mV), remaining 30000 mAh, user-defined 2: full 60000 mAh, cycles. */
static void pylontech_block(struct buf *b, unsigned mv, int current, unsigned cycles)
{
    put(b, 16);
    for (int i = 0; i < 16; i++)
        put16(b, mv);
    put(b, 6);
    for (int i = 0; i < 6; i++)
        put16(b, 2731 + 250);
    put16(b, (unsigned)current & 0xFFFF);
    put16(b, 16 * mv);
    put16(b, 30000);
    put(b, 2);
    put16(b, 60000);
    put16(b, cycles);
}

static void ascii(uint8_t adr, uint8_t cid2, const struct buf *info)
{
    char frame[AF_FRAME_MAX + 1];
    int n = af_encode(0x20, adr, PYLONTECH_CID1, cid2, info ? info->b : NULL, info ? info->n : 0,
                      frame, sizeof(frame));

    assert_true(n > 0);
    feed(frame, (size_t)n);
}

static void test_sniff_proto_pylontech_all_modules_reply_gives_each_module(void **state)
{
    struct buf req = {.n = 0}, rsp = {.n = 0};

    (void)state;
    open_proto("pylontech");
    put(&req, 0xFF);
    ascii(0x02, 0x42, &req);
    put(&rsp, 0x11); /* INFOFLAG */
    put(&rsp, 3);    /* three modules follow */
    pylontech_block(&rsp, 3300, 100, 10);
    pylontech_block(&rsp, 3310, -50, 11);
    pylontech_block(&rsp, 3320, 0, 12);
    ascii(0x02, 0x00, &rsp);
    assert_int_equal(H.n, 2);
    assert_string_equal(H.line[0], "adr 0x02 cid1 0x46 cmd 0x42 analog values, all modules 0xff");
    assert_int_equal(H.n_mods[1], 3);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(H.mods[1][k].what, SNIFF_READING);
        assert_int_equal(H.mods[1][k].addr, 2 + k); /* block k is module ADR + k */
        assert_float_equal(val(1, k, "pack_voltage"), 16 * (3300 + 10 * k) / 1000.0, 1e-9);
        assert_float_equal(val(1, k, "cycle_count"), 10 + k, 1e-9);
        assert_float_equal(val(1, k, "soc"), 50, 1e-9);
    }
    assert_float_equal(val(1, 1, "pack_current"), -5.0, 1e-9);
    /* Readings no 0x42 reply carries are unknown, not 0. */
    assert_true(isnan(val(1, 0, "charge_voltage_limit")));

    /* The group's alarms, also for all modules: partial updates of each module. */
    ascii(0x02, 0x44, &req);
    struct buf al = {.n = 0};
    put(&al, 0x00);
    put(&al, 2);
    for (int k = 0; k < 2; k++) {
        put(&al, 16);
        for (int i = 0; i < 16; i++)
            put(&al, k == 1 && i == 3 ? 0x01 : 0x00); /* module 3: cell 4 below its limit */
        put(&al, 6);
        for (int i = 0; i < 6; i++)
            put(&al, 0);
        put(&al, 0);
        put(&al, 0);
        put(&al, 0);
        for (int i = 0; i < 5; i++)
            put(&al, 0);
    }
    ascii(0x02, 0x00, &al);
    assert_int_equal(H.n_mods[3], 2);
    assert_int_equal(H.mods[3][1].what, SNIFF_PARTIAL);
    assert_int_equal(H.mods[3][1].addr, 3);
    assert_float_equal(val(3, 1, "alarm_cell_voltage_low"), 1, 1e-9);
    assert_float_equal(val(3, 0, "alarm_cell_voltage_low"), 0, 1e-9);
    sniffer_close(&SN);
}

static void test_sniff_proto_pylontech_single_module_management_and_identity(void **state)
{
    struct buf req = {.n = 0}, rsp = {.n = 0};
    double row[PYLONTECH_N_READINGS];

    (void)state;
    open_proto("pylontech");
    /* The pack's readings so far: a partial reply starts from them. */
    for (size_t i = 0; i < PYLONTECH_N_READINGS; i++)
        row[i] = 7.0;
    prior_row = row;
    put(&req, 0x05);
    ascii(0x05, 0x92, &req);
    put(&rsp, 0x05);
    put16(&rsp, 53250);
    put16(&rsp, 45000);
    put16(&rsp, 250);
    put16(&rsp, 0xFF06);
    put(&rsp, 0xC0);
    ascii(0x05, 0x00, &rsp);
    assert_int_equal(H.n_mods[1], 1);
    assert_int_equal(H.mods[1][0].what, SNIFF_PARTIAL);
    assert_int_equal(H.mods[1][0].addr, 5);
    assert_float_equal(val(1, 0, "charge_voltage_limit"), 53.25, 1e-9);
    assert_float_equal(val(1, 0, "soc"), 7.0, 1e-9); /* kept from prior */
    prior_row = NULL;

    /* The serial (0x93) becomes the module's identity. */
    ascii(0x05, 0x93, &req);
    struct buf sn = {.n = 0};
    put(&sn, 0x05);
    memcpy(sn.b + sn.n, "PPTBH02400000123", 16);
    sn.n += 16;
    ascii(0x05, 0x00, &sn);
    assert_int_equal(H.mods[3][0].what, SNIFF_IDENTITY);
    assert_string_equal(H.mods[3][0].id.serial, "PPTBH02400000123");
    char line[200];
    sniff_summary(SN.proto, &H.mods[3][0], line, sizeof(line));
    assert_string_equal(line, "Pylontech adr 0x05: serial PPTBH02400000123");

    /* An error reply and an unpaired reply carry no reading. */
    ascii(0x05, 0x42, &req);
    ascii(0x05, 0x04, NULL);
    assert_int_equal(H.kind[5], SNIFF_ERROR);
    assert_int_equal(H.n_mods[5], 0);
    ascii(0x05, 0x00, &rsp);
    assert_int_equal(H.kind[6], SNIFF_UNPAIRED);
    assert_int_equal(H.n_mods[6], 0);
    sniffer_close(&SN);
}

/* ---- LifePower4 ASCII ------------------------------------------------------------------- */

static void test_sniff_proto_lp4_ascii_pdf_example(void **state)
{
    /* LifePower4 PDF §2.1: request and reply of pack 1. */
    static const char req[] = "~20014A420000FDA2\r";
    static const char rsp[] =
        "~20014A00A0CA0101100C540C810C810C820C810C810C810C810C820C820C820C820C820C820C820C7E04"
        "0BCD0BCD0BCD0BCD0BD70BD7000013FD0000271000000F000000640C820C54002E0BCD0BCD00000015"
        "0000003C0000000A0000001D00000000000000000002001DD300\r";

    (void)state;
    open_proto("lp4_ascii");
    feed(req, strlen(req));
    feed(rsp, strlen(rsp));
    assert_int_equal(H.n_mods[1], 1);
    assert_int_equal(H.mods[1][0].what, SNIFF_READING);
    assert_int_equal(H.mods[1][0].addr, 1);
    assert_float_equal(val(1, 0, "pack_voltage"), 51.17, 1e-9); /* 13FDH x 10 mV */
    assert_float_equal(val(1, 0, "soc"), 0, 1e-9); /* the example's SOC item is 0000H */
    assert_float_equal(val(1, 0, "soh"), 100, 1e-9);
    assert_float_equal(val(1, 0, "cell_voltage_min"), 3.156, 1e-9);
    sniffer_close(&SN);
}

/* ---- the sniffer and the noise hint ----------------------------------------------------- */

static void test_sniff_proto_sniffer_counts_placed_bytes(void **state)
{
    static const char req[] = "~20014A420000FDA2\r";

    (void)state;
    open_proto("lp4_ascii");
    feed("noise", 5);
    feed(req, strlen(req));
    assert_int_equal(SN.frames, 1);
    assert_int_equal(SN.frame_bytes, strlen(req));
    assert_int_equal(SN.proto->noise(SN.state)->bytes, 5);
    sniffer_close(&SN);
    sniffer_close(&SN); /* twice is harmless */
}

static void test_sniff_noise_hint_tells_what_unframed_bytes_look_like(void **state)
{
    struct sniff_noise nz;
    char out[300];
    uint8_t zeros[40] = {0};

    (void)state;
    sniff_noise_reset(&nz);
    sniff_noise_hint(&nz, 0, "Modbus RTU", out, sizeof(out));
    assert_string_equal(out, "nothing");
    sniff_noise_add(&nz, zeros, sizeof(zeros));
    sniff_noise_add(&nz, (const uint8_t *)"\xff\x12", 2);
    sniff_noise_hint(&nz, 0, "Modbus RTU", out, sizeof(out));
    assert_non_null(strstr(out, "42 bytes, mostly 0x00/0xFF: wrong baud rate"));
    assert_non_null(strstr(out, " last: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 ff 12"));
    /* The same bytes among many good frames are stray noise. */
    sniff_noise_hint(&nz, 5000, "Modbus RTU", out, sizeof(out));
    assert_non_null(strstr(out, "stray bytes between good frames"));

    sniff_noise_reset(&nz);
    sniff_noise_add(&nz, (const uint8_t *)"hello world, this is text", 25);
    sniff_noise_hint(&nz, 0, "ASCII ~..CR", out, sizeof(out));
    assert_non_null(strstr(out, "printable ASCII without '~' or CR"));
    sniff_noise_add(&nz, (const uint8_t *)"~20\r", 4);
    sniff_noise_hint(&nz, 0, "ASCII ~..CR", out, sizeof(out));
    assert_non_null(strstr(out, "printable ASCII with '~'/CR"));
    nz.bad_frames = 3;
    sniff_noise_hint(&nz, 0, "Modbus RTU", out, sizeof(out));
    assert_non_null(strstr(out, "3 Modbus RTU frames with a bad check"));
    nz.foreign = 2;
    sniff_noise_hint(&nz, 0, "ASCII ~..CR", out, sizeof(out));
    assert_non_null(strstr(out, "2 good frames of another protocol"));

    sniff_noise_reset(&nz);
    sniff_noise_add(&nz, (const uint8_t *)"\x81\x92\xa3\xb4", 4);
    sniff_noise_hint(&nz, 0, "Modbus RTU", out, sizeof(out));
    assert_non_null(strstr(out, "binary that frames no known way"));
    /* Short outputs are cut, always terminated. */
    assert_int_equal(sniff_noise_hint(&nz, 0, "x", out, 8), 7);
    assert_int_equal(strlen(out), 7);
    assert_int_equal(sniff_noise_hint(&nz, 0, "x", NULL, 8), 0);
}

static void test_sniff_summary_shows_unknown_as_a_question_mark(void **state)
{
    const struct sniff_proto *p = sniff_proto_find("lp4_ascii");
    double v[200];
    struct sniff_module m = {.addr = 9, .what = SNIFF_READING, .values = v};
    char out[200];

    (void)state;
    for (size_t i = 0; i < *p->driver->n_defs; i++)
        v[i] = NAN;
    sniff_summary(p, &m, out, sizeof(out));
    assert_string_equal(out, "LP4 ASCII adr 0x09: ? V ? A SoC ? % cells ?..? V");
    m.what = SNIFF_BAD;
    m.cause = RESULT_LENGTH;
    sniff_summary(p, &m, out, sizeof(out));
    assert_string_equal(out, "LP4 ASCII adr 0x09: bad reading (length)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sniff_proto_table_names_every_protocol_of_the_daemon),
        cmocka_unit_test(test_sniff_proto_lp4v2_block_identity_and_all_zero_map),
        cmocka_unit_test(test_sniff_proto_legacy_status_and_firmware),
        cmocka_unit_test(test_sniff_proto_pylontech_all_modules_reply_gives_each_module),
        cmocka_unit_test(test_sniff_proto_pylontech_single_module_management_and_identity),
        cmocka_unit_test(test_sniff_proto_lp4_ascii_pdf_example),
        cmocka_unit_test(test_sniff_proto_sniffer_counts_placed_bytes),
        cmocka_unit_test(test_sniff_noise_hint_tells_what_unframed_bytes_look_like),
        cmocka_unit_test(test_sniff_summary_shows_unknown_as_a_question_mark),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
