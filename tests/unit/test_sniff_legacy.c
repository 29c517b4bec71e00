/* SPDX-License-Identifier: MIT */
/* test_sniff_legacy.c - the EG4 legacy listener: 7E..0D framing, resync, pairing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "sniff_legacy.h"

#define MAX_RECORDS 32

struct record {
    enum sniff_legacy_kind kind;
    uint8_t addr, cmd;
    size_t len, n;
    bool flushed; /* reported by a flush (t_s NaN) */
    char line[160];
};

struct records {
    size_t n;
    struct record r[MAX_RECORDS];
};

static void collect(const struct sniff_legacy_msg *m, void *ud)
{
    struct records *rs = ud;

    assert_true(rs->n < MAX_RECORDS);
    struct record *r = &rs->r[rs->n++];
    r->kind = m->kind;
    r->addr = m->f.addr;
    r->cmd = m->f.cmd;
    r->len = m->f.len;
    r->n = m->n;
    r->flushed = isnan(m->t_s);
    assert_int_equal(m->bytes[0], 0x7E);
    assert_int_equal(m->bytes[m->n - 1], 0x0D);
    sniff_legacy_describe(m, r->line, sizeof(r->line));
}

/* A whole reply frame from addr for cmd with data[0..len), checksum per README §2. */
static size_t reply(uint8_t *out, uint8_t addr, uint8_t cmd, const uint8_t *data, size_t len)
{
    out[0] = 0x7E;
    out[1] = addr;
    out[2] = cmd;
    out[3] = (uint8_t)len;
    memcpy(out + 4, data, len);
    out[4 + len] = eg4_legacy_checksum(out, len + 4);
    out[5 + len] = 0x0D;
    return len + 6;
}

/* README §2: real requests of addresses 1 and 2. */
static const uint8_t req1[] = {0x7E, 0x01, 0x01, 0x00, 0xFE, 0x0D};
static const uint8_t req2[] = {0x7E, 0x02, 0x01, 0x00, 0xFC, 0x0D};

static struct sniff_legacy s;

static void test_sniff_legacy_pairs_requests_and_replies(void **state)
{
    struct records rs = {0};
    uint8_t rsp[64];
    size_t n = reply(rsp, 1, 0x33, (const uint8_t *)"LP4-V1.2", 8);

    (void)state;
    sniff_legacy_init(&s);
    assert_int_equal(sniff_legacy_feed(&s, req1, sizeof(req1), 1, collect, &rs), 1);
    assert_int_equal(sniff_legacy_feed(&s, rsp, n, 1, collect, &rs), 1); /* other command */
    assert_int_equal(rs.n, 2);
    assert_int_equal(rs.r[0].kind, SNIFF_LEGACY_REQUEST);
    assert_string_equal(rs.r[0].line, "addr 1 cmd 0x01 status request");
    assert_int_equal(rs.r[1].kind, SNIFF_LEGACY_UNPAIRED); /* 0x33 does not answer 0x01 */
    assert_string_equal(rs.r[1].line, "addr 1 -> 0x33 firmware (unpaired): 8 data bytes");
    uint8_t fw[6];
    eg4_legacy_build_request(1, 0x33, fw);
    sniff_legacy_feed(&s, fw, sizeof(fw), 2, collect, &rs);
    sniff_legacy_feed(&s, rsp, n, 2, collect, &rs);
    assert_int_equal(rs.r[3].kind, SNIFF_LEGACY_REPLY);
    assert_string_equal(rs.r[3].line, "addr 1 -> 0x33 firmware: 8 data bytes");
    assert_int_equal(s.stats.paired, 1);
    assert_int_equal(s.stats.frames, 4);
    assert_int_equal(s.noise.bytes, 0);
}

static void test_sniff_legacy_byte_by_byte_and_one_chunk_agree(void **state)
{
    struct records one = {0}, bytes = {0};
    uint8_t stream[256], data[88];
    size_t n = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7); /* includes 0x7E and 0x0D inside the data */
    memcpy(stream, req2, 6);
    n = 6 + reply(stream + 6, 2, 0x01, data, sizeof(data));
    sniff_legacy_init(&s);
    sniff_legacy_feed(&s, stream, n, 0, collect, &one);
    sniff_legacy_init(&s);
    for (size_t i = 0; i < n; i++)
        sniff_legacy_feed(&s, stream + i, 1, 0, collect, &bytes);
    assert_int_equal(one.n, 2);
    assert_int_equal(bytes.n, 2);
    assert_int_equal(bytes.r[1].kind, SNIFF_LEGACY_REPLY);
    assert_int_equal(bytes.r[1].len, 88);
    assert_string_equal(one.r[1].line, bytes.r[1].line);
}

static void test_sniff_legacy_resyncs_after_noise_and_bad_checksums(void **state)
{
    struct records rs = {0};
    uint8_t buf[64];
    static const uint8_t noise[] = {0x00, 0xFF, 0x55}; /* no 0x7E */

    (void)state;
    sniff_legacy_init(&s);
    sniff_legacy_feed(&s, noise, sizeof(noise), 0, collect, &rs);
    /* A request with a wrong CHK: 0x0D in place, so a bad frame. */
    memcpy(buf, req1, 6);
    buf[4] ^= 0x01;
    sniff_legacy_feed(&s, buf, 6, 0, collect, &rs);
    sniff_legacy_feed(&s, req2, 6, 0, collect, &rs);
    assert_int_equal(rs.n, 1);
    assert_int_equal(rs.r[0].addr, 2);
    assert_int_equal(s.noise.bytes, 3 + 6);
    assert_int_equal(s.noise.bad_frames, 1);
}

static void
test_sniff_legacy_flush_gives_up_a_false_start_and_finds_the_frames_behind_it(void **state)
{
    struct records rs = {0};
    /* A stray 0x7E whose "LEN" promises 240 bytes, then a real exchange of 12 bytes. */
    static const uint8_t stray[] = {0x7E, 0x05, 0x01, 0xF0};
    uint8_t rsp[16];
    size_t n = reply(rsp, 2, 0x01, (const uint8_t *)"\x01\x00", 2);

    (void)state;
    sniff_legacy_init(&s);
    sniff_legacy_feed(&s, stray, sizeof(stray), 0, collect, &rs);
    sniff_legacy_feed(&s, req2, 6, 0, collect, &rs);
    sniff_legacy_feed(&s, rsp, n, 0, collect, &rs);
    assert_int_equal(rs.n, 0); /* waiting for the 246 bytes the stray header promised */
    assert_int_equal(sniff_legacy_flush(&s, collect, &rs), 2);
    assert_int_equal(rs.n, 2);
    assert_true(rs.r[0].flushed);
    assert_int_equal(rs.r[1].kind, SNIFF_LEGACY_REPLY);
    assert_int_equal(s.noise.bytes, sizeof(stray));
    assert_int_equal(s.len, 0);
    assert_int_equal(sniff_legacy_flush(NULL, NULL, NULL), -1);
    assert_int_equal(sniff_legacy_feed(NULL, req1, 6, 0, NULL, NULL), -1);
}

static void test_sniff_legacy_never_loses_memory_safety_on_a_flood(void **state)
{
    struct records rs = {0};
    uint8_t flood[3000];

    (void)state;
    for (size_t i = 0; i < sizeof(flood); i++)
        flood[i] = i % 4 == 0 ? 0x7E : 0xFF; /* headers that promise 261-byte frames */
    sniff_legacy_init(&s);
    sniff_legacy_feed(&s, flood, sizeof(flood), 0, collect, &rs);
    assert_true(s.len <= SNIFF_LEGACY_BUF);
    sniff_legacy_flush(&s, collect, &rs);
    assert_int_equal(rs.n, 0);
    assert_int_equal(s.noise.bytes, sizeof(flood));
    sniff_legacy_feed(&s, req1, 6, 0, collect, &rs);
    assert_int_equal(rs.n, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sniff_legacy_pairs_requests_and_replies),
        cmocka_unit_test(test_sniff_legacy_byte_by_byte_and_one_chunk_agree),
        cmocka_unit_test(test_sniff_legacy_resyncs_after_noise_and_bad_checksums),
        cmocka_unit_test(
            test_sniff_legacy_flush_gives_up_a_false_start_and_finds_the_frames_behind_it),
        cmocka_unit_test(test_sniff_legacy_never_loses_memory_safety_on_a_flood),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
