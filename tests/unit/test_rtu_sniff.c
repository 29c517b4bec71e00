/* SPDX-License-Identifier: MIT */
/* test_rtu_sniff.c - passive RTU listener: splitting overheard bytes into frames, pairing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "crc.h"
#include "rtu_sniff.h"

#define MAX_RECORDS 64
#define MAX_STREAM  4096
#define CHAR_S      (10.0 / 9600) /* one 8N1 character at 9600 baud */

/* A copy of one reported exchange (the callback's pointers die with the call). */
struct record {
    enum rtu_sniff_kind kind;
    bool paired;
    uint8_t slave, function, exception;
    uint16_t start, count;
    size_t n_registers;
    uint16_t registers[RTU_SNIFF_MAX_REGS];
    size_t frame_len;
    char line[1024];
};

struct records {
    size_t n;
    struct record r[MAX_RECORDS];
};

static void collect(const struct rtu_exchange *x, void *ud)
{
    struct records *rs = ud;

    assert_true(rs->n < MAX_RECORDS);
    struct record *r = &rs->r[rs->n++];
    memset(r, 0, sizeof(*r));
    r->kind = x->kind;
    r->paired = x->paired;
    r->slave = x->slave;
    r->function = x->function;
    r->exception = x->exception;
    r->start = x->start;
    r->count = x->count;
    r->n_registers = x->n_registers;
    assert_true(x->n_registers <= RTU_SNIFF_MAX_REGS);
    if (x->n_registers > 0)
        memcpy(r->registers, x->registers, x->n_registers * sizeof(uint16_t));
    r->frame_len = x->frame.len;
    /* The raw frame is a whole frame: its CRC checks. */
    assert_true(x->frame.len >= 5);
    uint16_t crc = crc16_modbus(x->frame.bytes, x->frame.len - 2);
    assert_int_equal(x->frame.bytes[x->frame.len - 2], crc & 0xFF);
    assert_int_equal(x->frame.bytes[x->frame.len - 1], crc >> 8);
    rtu_sniff_describe(x, r->line, sizeof(r->line));
}

/* Append the CRC (low byte first) to p[0..n); returns n + 2. */
static size_t with_crc(uint8_t *p, size_t n)
{
    uint16_t crc = crc16_modbus(p, n);
    p[n] = (uint8_t)crc;
    p[n + 1] = (uint8_t)(crc >> 8);
    return n + 2;
}

static size_t read_request(uint8_t *p, uint8_t slave, uint8_t fn, uint16_t start, uint16_t count)
{
    p[0] = slave;
    p[1] = fn;
    p[2] = (uint8_t)(start >> 8);
    p[3] = (uint8_t)start;
    p[4] = (uint8_t)(count >> 8);
    p[5] = (uint8_t)count;
    return with_crc(p, 6);
}

static size_t read_response(uint8_t *p, uint8_t slave, uint8_t fn, const uint16_t *regs, size_t n)
{
    p[0] = slave;
    p[1] = fn;
    p[2] = (uint8_t)(2 * n);
    for (size_t i = 0; i < n; i++) {
        p[3 + 2 * i] = (uint8_t)(regs[i] >> 8);
        p[4 + 2 * i] = (uint8_t)regs[i];
    }
    return with_crc(p, 3 + 2 * n);
}

static size_t exception(uint8_t *p, uint8_t slave, uint8_t fn, uint8_t code)
{
    p[0] = slave;
    p[1] = (uint8_t)(fn | 0x80);
    p[2] = code;
    return with_crc(p, 3);
}

/* An LP4V2 periodic block (47 registers from 0), a little different per slave. */
static void lp4v2_block(uint16_t regs[47], uint8_t slave)
{
    static const uint16_t cells[16] = {3280, 3285, 3279, 3282, 3288, 3276, 3281, 3283,
                                       3280, 3284, 3287, 3272, 3281, 3280, 3279, 3282};
    unsigned sum = 0;

    memset(regs, 0, 47 * sizeof(regs[0]));
    for (int i = 0; i < 16; i++) {
        regs[2 + i] = (uint16_t)(cells[i] + slave);
        sum += regs[2 + i];
    }
    regs[0] = (uint16_t)(sum / 10);
    regs[1] = (uint16_t)(65536 - 750 * slave); /* discharging, s16 */
    regs[18] = 21;
    regs[19] = 21;
    regs[20] = 20;
    regs[21] = 54;
    regs[22] = 100;
    regs[23] = 100;
    regs[24] = (uint16_t)(55 + slave);
    regs[30] = 1;
    regs[31] = 5493;
    regs[32] = 10752;
    regs[36] = 16;
    regs[37] = 1000;
    regs[46] = slave;
}

/* xorshift32: the noise is random but the same on every run. */
static uint32_t rng_state = 0x2545F491u;
static uint8_t rng_byte(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return (uint8_t)rng_state;
}

/*
 * A recorded bus: segments of bytes, each with the silence before it and the chunk size the
 * "driver" delivers it in. Times are what a reader would see at 9600 baud.
 */
struct segment {
    uint8_t bytes[256];
    size_t len;
    double silence_s; /* before the segment */
    size_t chunk;     /* delivered in chunks of this size (0: whole) */
    bool noise;
};

struct capture {
    struct segment seg[32];
    size_t n;
    size_t noise_bytes;
    uint8_t stream[MAX_STREAM]; /* all bytes back to back */
    size_t stream_len;
};

static struct segment *add(struct capture *c, double silence_s, size_t chunk)
{
    assert_true(c->n < 32);
    struct segment *g = &c->seg[c->n++];
    memset(g, 0, sizeof(*g));
    g->silence_s = silence_s;
    g->chunk = chunk;
    return g;
}

static void add_noise(struct capture *c, size_t n, double silence_s)
{
    struct segment *g = add(c, silence_s, 0);
    for (size_t i = 0; i < n; i++)
        g->bytes[i] = rng_byte();
    g->len = n;
    g->noise = true;
    c->noise_bytes += n;
}

/*
 * Two LP4V2 packs (0x01, 0x02) polled for their 47-register block, an identity read that
 * slave 2 refuses with exception 2, random noise between frames (some right against the next
 * frame, some before a silence), slave 1's response split into 7-byte chunks with no gaps.
 */
static void build_capture(struct capture *c)
{
    uint16_t regs[47];
    struct segment *g;

    memset(c, 0, sizeof(*c));
    rng_state = 0x2545F491u;
    add_noise(c, 5, 0.5); /* line noise before anything */
    g = add(c, 0.0, 0);   /* the request right after the noise: no gap to help */
    g->len = read_request(g->bytes, 0x01, 0x03, 0, 47);
    g = add(c, 0.012, 7); /* slave turnaround, then the response in many chunks */
    lp4v2_block(regs, 0x01);
    g->len = read_response(g->bytes, 0x01, 0x03, regs, 47);
    add_noise(c, 3, 0.0); /* noise glued to the end of the response */
    g = add(c, 0.2, 0);
    g->len = read_request(g->bytes, 0x02, 0x03, 0, 47);
    g = add(c, 0.015, 0);
    lp4v2_block(regs, 0x02);
    g->len = read_response(g->bytes, 0x02, 0x03, regs, 47);
    add_noise(c, 4, 0.1); /* noise after a silence, then silence again */
    g = add(c, 0.2, 3);
    g->len = read_request(g->bytes, 0x02, 0x03, 105, 23);
    g = add(c, 0.010, 0);
    g->len = exception(g->bytes, 0x02, 0x03, 0x02);
    add_noise(c, 6, 0.3);
    g = add(c, 0.0, 1);
    g->len = read_request(g->bytes, 0x01, 0x04, 10, 2);
    g = add(c, 0.008, 2);
    regs[0] = 0x0304; /* bytes that look like function codes inside the data */
    regs[1] = 0x0103;
    g->len = read_response(g->bytes, 0x01, 0x04, regs, 2);
    add_noise(c, 9, 0.0);

    for (size_t i = 0; i < c->n; i++) {
        assert_true(c->stream_len + c->seg[i].len <= MAX_STREAM);
        memcpy(c->stream + c->stream_len, c->seg[i].bytes, c->seg[i].len);
        c->stream_len += c->seg[i].len;
    }
}

/* Feed the capture as a reader would see it: chunks at the times they arrive. */
static void feed_timed(struct rtu_sniff *s, const struct capture *c, struct records *rs)
{
    double t = 1000.0;

    for (size_t i = 0; i < c->n; i++) {
        const struct segment *g = &c->seg[i];
        size_t chunk = g->chunk ? g->chunk : g->len;
        t += g->silence_s;
        for (size_t off = 0; off < g->len; off += chunk) {
            size_t k = g->len - off < chunk ? g->len - off : chunk;
            t += (double)k * CHAR_S;
            assert_true(rtu_sniff_feed(s, g->bytes + off, k, t, collect, rs) >= 0);
        }
    }
    t += 0.5;
    assert_true(rtu_sniff_flush(s, collect, rs) >= 0);
}

static void check_capture_records(const struct records *rs)
{
    uint16_t regs[47];

    assert_int_equal(rs->n, 8);
    /* slave 1: block read, paired */
    assert_int_equal(rs->r[0].kind, RTU_SNIFF_REQUEST);
    assert_int_equal(rs->r[0].slave, 0x01);
    assert_int_equal(rs->r[0].function, 0x03);
    assert_int_equal(rs->r[0].start, 0);
    assert_int_equal(rs->r[0].count, 47);
    assert_int_equal(rs->r[0].frame_len, 8);
    assert_int_equal(rs->r[1].kind, RTU_SNIFF_RESPONSE);
    assert_true(rs->r[1].paired);
    assert_int_equal(rs->r[1].slave, 0x01);
    assert_int_equal(rs->r[1].start, 0);
    assert_int_equal(rs->r[1].count, 47);
    assert_int_equal(rs->r[1].n_registers, 47);
    assert_int_equal(rs->r[1].frame_len, 99);
    lp4v2_block(regs, 0x01);
    assert_memory_equal(rs->r[1].registers, regs, sizeof(regs));
    /* slave 2: block read, paired, its own values */
    assert_int_equal(rs->r[2].kind, RTU_SNIFF_REQUEST);
    assert_int_equal(rs->r[2].slave, 0x02);
    assert_int_equal(rs->r[3].kind, RTU_SNIFF_RESPONSE);
    assert_int_equal(rs->r[3].slave, 0x02);
    assert_int_equal(rs->r[3].start, 0);
    assert_int_equal(rs->r[3].count, 47);
    lp4v2_block(regs, 0x02);
    assert_memory_equal(rs->r[3].registers, regs, sizeof(regs));
    /* slave 2 refuses the identity read */
    assert_int_equal(rs->r[4].kind, RTU_SNIFF_REQUEST);
    assert_int_equal(rs->r[4].start, 105);
    assert_int_equal(rs->r[4].count, 23);
    assert_int_equal(rs->r[5].kind, RTU_SNIFF_EXCEPTION);
    assert_true(rs->r[5].paired);
    assert_int_equal(rs->r[5].slave, 0x02);
    assert_int_equal(rs->r[5].function, 0x83);
    assert_int_equal(rs->r[5].exception, 2);
    assert_int_equal(rs->r[5].start, 105);
    assert_int_equal(rs->r[5].count, 23);
    assert_string_equal(rs->r[5].line, "slave 0x02 fn 0x83 exception 2 (illegal data address)");
    /* slave 1, input registers, data bytes that look like headers */
    assert_int_equal(rs->r[6].kind, RTU_SNIFF_REQUEST);
    assert_int_equal(rs->r[6].function, 0x04);
    assert_int_equal(rs->r[7].kind, RTU_SNIFF_RESPONSE);
    assert_int_equal(rs->r[7].start, 10);
    assert_int_equal(rs->r[7].count, 2);
    assert_int_equal(rs->r[7].registers[0], 0x0304);
    assert_int_equal(rs->r[7].registers[1], 0x0103);
    assert_string_equal(rs->r[7].line, "slave 0x01 fn 0x04 -> 2 registers from 10: 772 259");
}

static void check_capture_stats(const struct rtu_sniff *s, const struct capture *c)
{
    assert_int_equal(s->stats.frames, 8);
    assert_int_equal(s->stats.requests, 4);
    assert_int_equal(s->stats.responses, 3);
    assert_int_equal(s->stats.exceptions, 1);
    assert_int_equal(s->stats.paired, 4);
    assert_int_equal(s->stats.unpaired, 0);
    assert_int_equal(s->stats.noise_bytes, c->noise_bytes);
    assert_int_equal(s->stats.overflow_bytes, 0);
    assert_int_equal(s->len, 0);
}

static void test_rtu_sniff_capture_with_timing_splits_pairs_and_counts_noise(void **state)
{
    static struct capture c;
    static struct records rs;
    static struct rtu_sniff s;
    (void)state;

    build_capture(&c);
    memset(&rs, 0, sizeof(rs));
    rtu_sniff_init(&s, 9600);
    feed_timed(&s, &c, &rs);
    check_capture_records(&rs);
    check_capture_stats(&s, &c);
    assert_true(s.stats.gaps >= 5); /* the silences before requests and responses */
    assert_string_equal(rs.r[0].line, "slave 0x01 fn 0x03 read 47 registers from 0");
}

static void test_rtu_sniff_capture_byte_by_byte_without_gaps_gives_the_same_frames(void **state)
{
    static struct capture c;
    static struct records timed, bytes;
    static struct rtu_sniff s;
    (void)state;

    build_capture(&c);
    memset(&timed, 0, sizeof(timed));
    rtu_sniff_init(&s, 9600);
    feed_timed(&s, &c, &timed);

    /* Every byte read at the same instant: no timing help at all. */
    memset(&bytes, 0, sizeof(bytes));
    rtu_sniff_init(&s, 9600);
    for (size_t i = 0; i < c.stream_len; i++)
        assert_true(rtu_sniff_feed(&s, c.stream + i, 1, 5.0, collect, &bytes) >= 0);
    assert_int_equal(s.stats.gaps, 0);
    assert_true(rtu_sniff_flush(&s, collect, &bytes) >= 0);
    check_capture_records(&bytes);
    check_capture_stats(&s, &c);
    assert_int_equal(bytes.n, timed.n);
    for (size_t i = 0; i < bytes.n; i++)
        assert_string_equal(bytes.r[i].line, timed.r[i].line);
}

static void test_rtu_sniff_capture_in_one_chunk_without_timing_gives_the_same_frames(void **state)
{
    static struct capture c;
    static struct records rs;
    static struct rtu_sniff s;
    (void)state;

    build_capture(&c);
    memset(&rs, 0, sizeof(rs));
    rtu_sniff_init(&s, 0);
    assert_int_equal(rtu_sniff_feed(&s, c.stream, c.stream_len, 0.0, collect, &rs), 8);
    assert_int_equal(rtu_sniff_flush(&s, collect, &rs), 0);
    check_capture_records(&rs);
    check_capture_stats(&s, &c);
}

static void test_rtu_sniff_response_with_bad_crc_is_not_emitted(void **state)
{
    uint8_t stream[512];
    uint16_t regs[47];
    size_t n = 0, bad;
    struct records rs = {0};
    struct rtu_sniff s;
    (void)state;

    lp4v2_block(regs, 0x40);
    n += read_request(stream + n, 0x40, 0x03, 0, 47);
    bad = n;
    n += read_response(stream + n, 0x40, 0x03, regs, 47);
    stream[bad + 20] ^= 0x10; /* one bit flipped on the wire */
    n += read_request(stream + n, 0x40, 0x03, 0, 47);
    regs[24] = 77;
    n += read_response(stream + n, 0x40, 0x03, regs, 47);

    rtu_sniff_init(&s, 9600);
    for (size_t i = 0; i < n; i++)
        rtu_sniff_feed(&s, stream + i, 1, 0.0, collect, &rs);
    rtu_sniff_flush(&s, collect, &rs);
    assert_int_equal(rs.n, 3);
    assert_int_equal(rs.r[0].kind, RTU_SNIFF_REQUEST);
    assert_int_equal(rs.r[1].kind, RTU_SNIFF_REQUEST);
    assert_int_equal(rs.r[2].kind, RTU_SNIFF_RESPONSE);
    assert_int_equal(rs.r[2].registers[24], 77);
    assert_int_equal(s.stats.noise_bytes, 99);
    assert_true(s.stats.crc_errors >= 1);
    assert_int_equal(s.stats.paired, 1);
}

static void test_rtu_sniff_response_without_request_is_unpaired(void **state)
{
    uint8_t stream[256];
    uint16_t regs[47];
    size_t n;
    struct records rs = {0};
    struct rtu_sniff s;
    (void)state;

    lp4v2_block(regs, 0x40);
    n = read_response(stream, 0x40, 0x03, regs, 47);
    rtu_sniff_init(&s, 9600);
    assert_int_equal(rtu_sniff_feed(&s, stream, n, 1.0, collect, &rs), 1);
    assert_int_equal(rs.n, 1);
    assert_int_equal(rs.r[0].kind, RTU_SNIFF_UNPAIRED);
    assert_false(rs.r[0].paired);
    assert_int_equal(rs.r[0].start, 0);
    assert_int_equal(rs.r[0].count, 47);
    assert_memory_equal(rs.r[0].registers, regs, sizeof(regs));
    assert_int_equal(s.stats.unpaired, 1);
    assert_int_equal(s.stats.paired, 0);
    const char *head = "slave 0x40 fn 0x03 -> 47 registers (unpaired, start unknown): ";
    assert_memory_equal(rs.r[0].line, head, strlen(head));

    /* A response whose count differs from the request's is not its answer. */
    memset(&rs, 0, sizeof(rs));
    n = read_request(stream, 0x40, 0x03, 0, 46);
    n += read_response(stream + n, 0x40, 0x03, regs, 47);
    rtu_sniff_init(&s, 9600);
    assert_int_equal(rtu_sniff_feed(&s, stream, n, 1.0, collect, &rs), 2);
    assert_int_equal(rs.r[1].kind, RTU_SNIFF_UNPAIRED);
}

static void test_rtu_sniff_one_register_response_and_request_are_told_apart(void **state)
{
    /* A 7-byte response (one register) then the next 8-byte request, byte by byte: the
       response shape is tried first because a request for this slave is pending. */
    uint8_t stream[64];
    uint16_t v = 0x0308;
    size_t n = 0;
    struct records rs = {0};
    struct rtu_sniff s;
    (void)state;

    n += read_request(stream + n, 0x03, 0x03, 0x0302, 1);
    n += read_response(stream + n, 0x03, 0x03, &v, 1);
    n += read_request(stream + n, 0x03, 0x03, 0x0302, 1);
    n += read_response(stream + n, 0x03, 0x03, &v, 1);
    rtu_sniff_init(&s, 0);
    for (size_t i = 0; i < n; i++)
        rtu_sniff_feed(&s, stream + i, 1, 0.0, collect, &rs);
    rtu_sniff_flush(&s, collect, &rs);
    assert_int_equal(rs.n, 4);
    for (size_t i = 0; i < 4; i += 2) {
        assert_int_equal(rs.r[i].kind, RTU_SNIFF_REQUEST);
        assert_int_equal(rs.r[i].start, 0x0302);
        assert_int_equal(rs.r[i + 1].kind, RTU_SNIFF_RESPONSE);
        assert_int_equal(rs.r[i + 1].start, 0x0302);
        assert_int_equal(rs.r[i + 1].registers[0], 0x0308);
    }
    assert_int_equal(s.stats.noise_bytes, 0);
}

static void test_rtu_sniff_writes_are_paired(void **state)
{
    uint8_t stream[128], *p = stream;
    struct records rs = {0};
    struct rtu_sniff s;
    (void)state;

    /* 0x06 write register 5 = 100, and its echo */
    for (int k = 0; k < 2; k++) {
        uint8_t w[6] = {0x40, 0x06, 0x00, 0x05, 0x00, 0x64};
        memcpy(p, w, 6);
        p += with_crc(p, 6);
    }
    /* 0x10 write 3 registers from 0x20 = 1 2 3, and its response */
    uint8_t wm[13] = {0x40, 0x10, 0x00, 0x20, 0x00, 0x03, 0x06, 0, 1, 0, 2, 0, 3};
    memcpy(p, wm, 13);
    p += with_crc(p, 13);
    memcpy(p, wm, 6);
    p += with_crc(p, 6);
    rtu_sniff_init(&s, 0);
    rtu_sniff_feed(&s, stream, (size_t)(p - stream), 0.0, collect, &rs);
    rtu_sniff_flush(&s, collect, &rs);
    assert_int_equal(rs.n, 4);
    assert_int_equal(rs.r[0].kind, RTU_SNIFF_REQUEST);
    assert_string_equal(rs.r[0].line, "slave 0x40 fn 0x06 write register 5 = 100");
    assert_int_equal(rs.r[1].kind, RTU_SNIFF_RESPONSE);
    assert_string_equal(rs.r[1].line, "slave 0x40 fn 0x06 -> wrote register 5 = 100");
    assert_int_equal(rs.r[2].kind, RTU_SNIFF_REQUEST);
    assert_int_equal(rs.r[2].n_registers, 3);
    assert_string_equal(rs.r[2].line, "slave 0x40 fn 0x10 write 3 registers from 32: 1 2 3");
    assert_int_equal(rs.r[3].kind, RTU_SNIFF_RESPONSE);
    assert_true(rs.r[3].paired);
    assert_string_equal(rs.r[3].line, "slave 0x40 fn 0x10 -> wrote 3 registers from 32");
    assert_int_equal(s.stats.paired, 2);
    assert_int_equal(s.stats.noise_bytes, 0);
}

static void test_rtu_sniff_gap_drops_a_partial_frame_but_a_late_tail_survives(void **state)
{
    uint8_t req[8], rsp[128];
    uint16_t regs[47];
    size_t nrsp;
    struct records rs = {0};
    struct rtu_sniff s;
    (void)state;

    lp4v2_block(regs, 0x40);
    read_request(req, 0x40, 0x03, 0, 47);
    nrsp = read_response(rsp, 0x40, 0x03, regs, 47);
    rtu_sniff_init(&s, 9600);

    /* A response that stops half way (the pack reset): after the silence the next request
       starts new data, and the half response is noise. */
    rtu_sniff_feed(&s, req, 8, 1.000, collect, &rs);
    rtu_sniff_feed(&s, rsp, 50, 1.100, collect, &rs);
    assert_int_equal(rs.n, 1);
    rtu_sniff_feed(&s, req, 8, 2.000, collect, &rs);
    rtu_sniff_feed(&s, rsp, nrsp, 2.200, collect, &rs);
    assert_int_equal(rs.n, 3);
    assert_int_equal(rs.r[2].kind, RTU_SNIFF_RESPONSE);
    assert_int_equal(s.stats.noise_bytes, 50);

    /* The adapter hands over the response's last 9 bytes late, in two chunks 30 ms apart: a gap by
       the clock, but they complete the expected response, so it is kept. */
    rtu_sniff_feed(&s, req, 8, 3.000, collect, &rs);
    rtu_sniff_feed(&s, rsp, 90, 3.110, collect, &rs);
    rtu_sniff_feed(&s, rsp + 90, 5, 3.140, collect, &rs);
    assert_int_equal(rs.n, 4);
    rtu_sniff_feed(&s, rsp + 95, nrsp - 95, 3.170, collect, &rs);
    assert_int_equal(rs.n, 5);
    assert_int_equal(rs.r[4].kind, RTU_SNIFF_RESPONSE);
    assert_memory_equal(rs.r[4].registers, regs, sizeof(regs));
    assert_int_equal(s.stats.noise_bytes, 50);
}

static void count_bytes(const struct rtu_exchange *x, void *ud)
{
    *(size_t *)ud += x->frame.len;
}

static void test_rtu_sniff_random_bytes_are_all_accounted_for(void **state)
{
    static uint8_t junk[20000];
    size_t in_frames = 0;
    struct rtu_sniff s;
    (void)state;

    rng_state = 12345;
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = rng_byte();
    rtu_sniff_init(&s, 19200);
    double t = 0;
    for (size_t off = 0; off < sizeof(junk);) {
        size_t k = 1 + junk[off] % 300;
        if (k > sizeof(junk) - off)
            k = sizeof(junk) - off;
        assert_true(rtu_sniff_feed(&s, junk + off, k, t, count_bytes, &in_frames) >= 0);
        t += (junk[off] & 1) ? 0.0001 : 0.05;
        off += k;
        /* every byte is in a frame, counted as noise, or still buffered */
        assert_int_equal(in_frames + s.stats.noise_bytes + s.len, off);
    }
    rtu_sniff_flush(&s, count_bytes, &in_frames);
    assert_int_equal(s.len, 0);
    assert_int_equal(s.stats.overflow_bytes, 0);
    assert_int_equal(in_frames + s.stats.noise_bytes, sizeof(junk));
    assert_int_equal(s.stats.frames, s.stats.requests + s.stats.responses + s.stats.exceptions);
}

static void test_rtu_sniff_describe_cuts_long_lines_after_a_whole_value(void **state)
{
    uint16_t regs[4] = {5283, 1892, 3280, 65535};
    uint8_t raw[16] = {0};
    struct rtu_exchange x = {.kind = RTU_SNIFF_RESPONSE,
                             .paired = true,
                             .slave = 0x40,
                             .function = 0x03,
                             .start = 0,
                             .count = 4,
                             .registers = regs,
                             .n_registers = 4,
                             .frame = {raw, 13, 0.0}};
    char out[128];
    (void)state;

    size_t n = rtu_sniff_describe(&x, out, sizeof(out));
    assert_string_equal(out, "slave 0x40 fn 0x03 -> 4 registers from 0: 5283 1892 3280 65535");
    assert_int_equal(n, strlen(out));
    /* room for 54 characters: "1892" would leave none for the mark */
    n = rtu_sniff_describe(&x, out, 55);
    assert_string_equal(out, "slave 0x40 fn 0x03 -> 4 registers from 0: 5283 ...");
    assert_int_equal(n, strlen(out));
    assert_int_equal(rtu_sniff_describe(&x, out, 10), 9);
    assert_string_equal(out, "slave 0x4");
    assert_int_equal(rtu_sniff_describe(&x, NULL, 10), 0);
    x.kind = RTU_SNIFF_EXCEPTION;
    x.function = 0x83;
    x.exception = 2;
    rtu_sniff_describe(&x, out, sizeof(out));
    assert_string_equal(out, "slave 0x40 fn 0x83 exception 2 (illegal data address)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rtu_sniff_capture_with_timing_splits_pairs_and_counts_noise),
        cmocka_unit_test(test_rtu_sniff_capture_byte_by_byte_without_gaps_gives_the_same_frames),
        cmocka_unit_test(test_rtu_sniff_capture_in_one_chunk_without_timing_gives_the_same_frames),
        cmocka_unit_test(test_rtu_sniff_response_with_bad_crc_is_not_emitted),
        cmocka_unit_test(test_rtu_sniff_response_without_request_is_unpaired),
        cmocka_unit_test(test_rtu_sniff_one_register_response_and_request_are_told_apart),
        cmocka_unit_test(test_rtu_sniff_writes_are_paired),
        cmocka_unit_test(test_rtu_sniff_gap_drops_a_partial_frame_but_a_late_tail_survives),
        cmocka_unit_test(test_rtu_sniff_random_bytes_are_all_accounted_for),
        cmocka_unit_test(test_rtu_sniff_describe_cuts_long_lines_after_a_whole_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
