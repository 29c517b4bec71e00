/* SPDX-License-Identifier: MIT */
/* test_sniff_ascii.c - the ASCII-frame listener: framing, resync, pairing (Pylontech, LP4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sniff_ascii.h"

/* Pylontech V3.3 §4: the analog request of module 2, and its example reply (74 Ah battery)
 * with the CHKSUM its characters give (E27A; the PDF prints E1A2). */
static const char pylontech_req42[] = "~20024642E00202FD33\r";
static const char pylontech_rsp42[] =
    "~20024600F07A11020F0D450D440D450D440D450D440D3E0D450D4A0D4A0D4B0D4A0D4A0D4A0D4A050BC30BC3"
    "0BC30BCD0BCD0000C725FFFF04FFFF000200CA58012110E27A\r";
/* LifePower4 PDF §2.1: the analog request of pack 1 and its example reply. */
static const char lp4_req42[] = "~20014A420000FDA2\r";
static const char lp4_rsp42[] =
    "~20014A00A0CA0101100C540C810C810C820C810C810C810C810C820C820C820C820C820C820C820C7E04"
    "0BCD0BCD0BCD0BCD0BD70BD7000013FD0000271000000F000000640C820C54002E0BCD0BCD00000015"
    "0000003C0000000A0000001D00000000000000000002001DD300\r";

#define MAX_RECORDS 32

struct record {
    enum sniff_ascii_kind kind;
    uint8_t adr, cid1, cid2, command;
    int module;
    size_t info_len, len;
    uint8_t info0;
    char line[200];
};

struct records {
    size_t n;
    struct record r[MAX_RECORDS];
};

static void collect(const struct sniff_ascii_msg *m, void *ud)
{
    struct records *rs = ud;

    assert_true(rs->n < MAX_RECORDS);
    struct record *r = &rs->r[rs->n++];
    r->kind = m->kind;
    r->adr = m->f.adr;
    r->cid1 = m->f.cid1;
    r->cid2 = m->f.cid2;
    r->command = m->command;
    r->module = m->module;
    r->info_len = m->f.info_len;
    r->info0 = m->f.info_len ? m->f.info[0] : 0;
    r->len = m->len;
    assert_int_equal(m->bytes[0], '~');
    assert_int_equal(m->bytes[m->len - 1], '\r');
    sniff_ascii_describe(m, r->line, sizeof(r->line));
}

static struct sniff_ascii s;

static int feed(const char *text, struct records *rs)
{
    return sniff_ascii_feed(&s, (const uint8_t *)text, strlen(text), 1.0, collect, rs);
}

static void test_sniff_ascii_pairs_the_pdf_examples(void **state)
{
    struct records rs = {0};

    (void)state;
    sniff_ascii_init(&s, 0x46);
    assert_int_equal(feed(pylontech_req42, &rs), 1);
    assert_int_equal(feed(pylontech_rsp42, &rs), 1);
    assert_int_equal(rs.n, 2);
    assert_int_equal(rs.r[0].kind, SNIFF_ASCII_REQUEST);
    assert_int_equal(rs.r[0].adr, 2);
    assert_int_equal(rs.r[0].command, 0x42);
    assert_int_equal(rs.r[0].module, 2);
    assert_string_equal(rs.r[0].line, "adr 0x02 cid1 0x46 cmd 0x42 analog values, module 0x02");
    assert_int_equal(rs.r[1].kind, SNIFF_ASCII_REPLY);
    assert_int_equal(rs.r[1].command, 0x42);
    assert_int_equal(rs.r[1].module, 2);
    assert_int_equal(rs.r[1].cid2, 0x00);
    assert_int_equal(rs.r[1].info_len, 61); /* LENID 0x07A = 122 characters */
    assert_int_equal(rs.r[1].len, strlen(pylontech_rsp42));
    assert_string_equal(rs.r[1].line, "adr 0x02 cid1 0x46 -> 0x42 analog values: normal, 61 bytes");
    assert_int_equal(s.stats.paired, 1);
    assert_int_equal(s.noise.bytes, 0);

    /* LifePower4: the same framing with CID1 0x4A, requests without INFO. */
    memset(&rs, 0, sizeof(rs));
    sniff_ascii_init(&s, 0x4A);
    feed(lp4_req42, &rs);
    feed(lp4_rsp42, &rs);
    assert_int_equal(rs.n, 2);
    assert_int_equal(rs.r[0].module, -1);
    assert_string_equal(rs.r[0].line, "adr 0x01 cid1 0x4a cmd 0x42 analog values");
    assert_int_equal(rs.r[1].kind, SNIFF_ASCII_REPLY);
    assert_int_equal(rs.r[1].info_len, 101);
}

static void test_sniff_ascii_byte_by_byte_gives_the_same_frames(void **state)
{
    struct records one = {0}, bytes = {0};
    char stream[1024];

    (void)state;
    snprintf(stream, sizeof(stream), "%s%s%s%s", pylontech_req42, pylontech_rsp42, pylontech_req42,
             pylontech_rsp42);
    sniff_ascii_init(&s, 0x46);
    feed(stream, &one);
    sniff_ascii_init(&s, 0x46);
    for (size_t i = 0; stream[i]; i++)
        sniff_ascii_feed(&s, (const uint8_t *)stream + i, 1, NAN, collect, &bytes);
    assert_int_equal(one.n, 4);
    assert_int_equal(bytes.n, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(one.r[i].kind, bytes.r[i].kind);
        assert_string_equal(one.r[i].line, bytes.r[i].line);
    }
}

static void test_sniff_ascii_resyncs_after_noise_and_cut_frames(void **state)
{
    struct records rs = {0};
    static const uint8_t binary[] = {0x00, 0xFF, 0x7E, 0x12, 0x0D, 0x55}; /* 6 bytes */
    char cut[16];

    (void)state;
    sniff_ascii_init(&s, 0x46);
    sniff_ascii_feed(&s, binary, sizeof(binary), 0, collect, &rs);
    memcpy(cut, pylontech_req42, 9); /* a request cut off by the next frame's '~' */
    cut[9] = '\0';
    feed(cut, &rs);
    feed("xyz", &rs); /* text before a frame */
    feed(pylontech_req42, &rs);
    feed(pylontech_rsp42, &rs);
    assert_int_equal(rs.n, 2);
    assert_int_equal(rs.r[1].kind, SNIFF_ASCII_REPLY);
    /* Everything else is noise, each byte once: 6 + 9 + 3. The binary '~'..CR run is not
     * frame-shaped (not hex): no bad frame. */
    assert_int_equal(s.noise.bytes, 6 + 9 + 3);
    assert_int_equal(s.noise.bad_frames, 0);
    assert_int_equal(s.len, 0);
}

static void test_sniff_ascii_bad_checksum_is_a_bad_frame_never_reported(void **state)
{
    struct records rs = {0};
    char bad[sizeof(pylontech_rsp42)];

    (void)state;
    memcpy(bad, pylontech_rsp42, sizeof(bad));
    bad[strlen(bad) - 2] = bad[strlen(bad) - 2] == '0' ? '1' : '0'; /* last CHKSUM digit */
    sniff_ascii_init(&s, 0x46);
    feed(pylontech_req42, &rs);
    feed(bad, &rs);
    assert_int_equal(rs.n, 1);
    assert_int_equal(s.noise.bad_frames, 1);
    assert_int_equal(s.noise.bytes, strlen(bad));
    /* The next good reply is still paired: the bad one ended nothing. */
    feed(pylontech_rsp42, &rs);
    assert_int_equal(rs.n, 2);
    assert_int_equal(rs.r[1].kind, SNIFF_ASCII_REPLY);
}

static void test_sniff_ascii_other_cid1_is_foreign_and_replies_alone_are_unpaired(void **state)
{
    struct records rs = {0};

    (void)state;
    sniff_ascii_init(&s, 0x46);
    feed(lp4_req42, &rs);
    feed(lp4_rsp42, &rs);
    assert_int_equal(rs.n, 0);
    assert_int_equal(s.stats.foreign, 2);
    assert_int_equal(s.noise.foreign, 2);
    /* A reply with no request before it, then one from another ADR than the request's. */
    feed(pylontech_rsp42, &rs);
    assert_int_equal(rs.r[0].kind, SNIFF_ASCII_UNPAIRED);
    assert_int_equal(rs.r[0].command, 0);
    assert_string_equal(rs.r[0].line, "adr 0x02 cid1 0x46 -> reply (unpaired): normal, 61 bytes");
    char req3[32];
    assert_int_equal(af_encode(0x20, 3, 0x46, 0x42, (const uint8_t[]){3}, 1, req3, sizeof(req3)),
                     20);
    feed(req3, &rs);            /* module 3 */
    feed(pylontech_rsp42, &rs); /* ADR 2 answers */
    assert_int_equal(rs.n, 3);
    assert_int_equal(rs.r[1].module, 3);
    assert_int_equal(rs.r[2].kind, SNIFF_ASCII_UNPAIRED);
    /* Any CID1 with a listener for every one. */
    memset(&rs, 0, sizeof(rs));
    sniff_ascii_init(&s, 0);
    feed(lp4_req42, &rs);
    feed(pylontech_req42, &rs);
    assert_int_equal(rs.n, 2);
}

static void test_sniff_ascii_error_replies_and_all_modules_requests(void **state)
{
    struct records rs = {0};
    char rsp[64], req[64];
    uint8_t all = 0xFF;

    (void)state;
    sniff_ascii_init(&s, 0x46);
    assert_true(af_encode(0x20, 2, 0x46, 0x93, (const uint8_t[]){2}, 1, req, sizeof(req)) > 0);
    assert_true(af_encode(0x20, 2, 0x46, 0x04, NULL, 0, rsp, sizeof(rsp)) > 0);
    feed(req, &rs);
    feed(rsp, &rs);
    assert_int_equal(rs.r[1].kind, SNIFF_ASCII_REPLY);
    assert_int_equal(rs.r[1].cid2, 0x04);
    assert_int_equal(s.stats.errors, 1);
    assert_string_equal(rs.r[1].line,
                        "adr 0x02 cid1 0x46 -> 0x93 serial number: CID2 invalid (0x04)");
    assert_true(af_encode(0x20, 2, 0x46, 0x42, &all, 1, req, sizeof(req)) > 0);
    feed(req, &rs);
    assert_int_equal(rs.r[2].module, 0xFF);
    assert_string_equal(rs.r[2].line,
                        "adr 0x02 cid1 0x46 cmd 0x42 analog values, all modules 0xff");
}

static void test_sniff_ascii_flush_drops_an_unfinished_frame(void **state)
{
    struct records rs = {0};

    (void)state;
    sniff_ascii_init(&s, 0x46);
    feed("~2002464", &rs);
    assert_int_equal(s.len, 8);
    assert_int_equal(sniff_ascii_flush(&s), 0);
    assert_int_equal(s.len, 0);
    assert_int_equal(s.noise.bytes, 8);
    assert_int_equal(sniff_ascii_flush(NULL), -1);
    assert_int_equal(sniff_ascii_feed(NULL, NULL, 0, 0, NULL, NULL), -1);
    assert_int_equal(sniff_ascii_feed(&s, NULL, 1, 0, NULL, NULL), -1);
    /* A run of hex longer than any frame, without CR, is given up. */
    static uint8_t longrun[AF_FRAME_MAX + 10];
    memset(longrun, 'A', sizeof(longrun));
    longrun[0] = '~';
    assert_int_equal(sniff_ascii_feed(&s, longrun, sizeof(longrun), 0, NULL, NULL), 0);
    assert_true(s.len < AF_FRAME_MAX);
    feed(pylontech_req42, &rs);
    assert_int_equal(rs.n, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sniff_ascii_pairs_the_pdf_examples),
        cmocka_unit_test(test_sniff_ascii_byte_by_byte_gives_the_same_frames),
        cmocka_unit_test(test_sniff_ascii_resyncs_after_noise_and_cut_frames),
        cmocka_unit_test(test_sniff_ascii_bad_checksum_is_a_bad_frame_never_reported),
        cmocka_unit_test(test_sniff_ascii_other_cid1_is_foreign_and_replies_alone_are_unpaired),
        cmocka_unit_test(test_sniff_ascii_error_replies_and_all_modules_requests),
        cmocka_unit_test(test_sniff_ascii_flush_drops_an_unfinished_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
