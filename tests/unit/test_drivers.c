/* SPDX-License-Identifier: MIT */
/* test_drivers.c - the drivers over a scripted line (fake_link.h): LifePower4 v2 Modbus and
 * Pylontech ASCII polls, what the line does to them (stray bytes, noise, a reply cut short,
 * exceptions, refusals, echoes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "crc.h"
#include "device.h"
#include "driver.h"
#include "fake_link.h"
#include "lp4v2_regs.h"
#include "modbus_rtu.h"
#include "pylontech.h"

#define LP4V2_SLAVE 0x40
#define PYLON_ADR   0x02

/* A pack of `driver` at `slave` on a fresh fake link (echo as given), answered by simulated
 * packs of `protocol` at the same address. */
struct bench {
    struct config cfg;
    struct device dev;
    struct link *link;
    struct fake_sim sim;
};

static void bench_setup(struct bench *b, const struct driver *driver, const char *protocol,
                        unsigned slave, bool echo)
{
    struct link_params lp = {
        .baud = 9600, .timeout_s = 0.5, .echo = echo, .modbus = driver->wire == DRIVER_WIRE_MODBUS};

    memset(b, 0, sizeof(*b));
    b->cfg.cell_count = 16;
    b->cfg.bus.poll_interval_s = 1;
    assert_int_equal(device_setup(&b->dev, "p1", driver, (uint8_t)slave, &b->cfg, &b->cfg.bus), 0);
    assert_non_null(b->link = fake_link_new(&lp));
    b->dev.link = b->link;
    assert_int_equal(fake_sim_init(&b->sim, protocol, &slave, 1), 0);
    fake_link_respond(b->link, fake_sim_respond, &b->sim);
}

static void bench_teardown(struct bench *b)
{
    device_teardown(&b->dev);
    link_free(b->link);
}

static double value(const struct bench *b, const char *key)
{
    int i = reading_find(b->dev.defs, b->dev.n_defs, key);

    assert_true(i >= 0);
    return b->dev.values[i];
}

static enum result poll_once(struct bench *b)
{
    return b->dev.driver->poll(&b->dev, b->dev.values, 10.0);
}

/* The reply the simulated pack gives to the LP4V2 block read. */
static size_t lp4v2_block_reply(struct bench *b, uint8_t *out, size_t cap)
{
    uint8_t req[8];

    mb_build_read_request(LP4V2_SLAVE, LP4V2_BLOCK_START, LP4V2_BLOCK_COUNT, req);
    return fake_sim_respond(&b->sim, req, sizeof(req), out, cap);
}

/* ---- LifePower4 v2, Modbus RTU ---------------------------------------------------------- */

static void lp4v2_good_block(void **state)
{
    struct bench b;
    uint8_t want[8];
    size_t n = 0;

    (void)state;
    bench_setup(&b, &lp4v2_driver, "lp4v2", LP4V2_SLAVE, false);
    assert_int_equal(poll_once(&b), RESULT_OK);
    /* One request: the block read, as built by the codec. */
    mb_build_read_request(LP4V2_SLAVE, LP4V2_BLOCK_START, LP4V2_BLOCK_COUNT, want);
    assert_int_equal(fake_link_sent_count(b.link), 1);
    const uint8_t *sent = fake_link_sent(b.link, 0, &n);
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(sent, want, sizeof(want));
    /* The simulated pack's 16 cells near 3.30 V: a pack voltage of about 52.8 V. */
    assert_true(value(&b, "pack_voltage") > 45 && value(&b, "pack_voltage") < 60);
    assert_false(isnan(value(&b, "soc")));
    assert_string_equal(b.link->what, "");
    bench_teardown(&b);
}

/* The same block delivered one byte at a time through the link's framing. */
static void lp4v2_good_block_in_pieces(void **state)
{
    struct bench b;
    uint8_t reply[300];

    (void)state;
    bench_setup(&b, &lp4v2_driver, "lp4v2", LP4V2_SLAVE, false);
    struct fake_step s = {
        .reply = reply, .reply_len = lp4v2_block_reply(&b, reply, sizeof(reply)), .chunk = 1};
    assert_int_equal(s.reply_len, 5 + 2 * LP4V2_BLOCK_COUNT);
    fake_link_script(b.link, &s);
    assert_int_equal(poll_once(&b), RESULT_OK);
    assert_int_equal(fake_link_pending(b.link), 0);
    assert_true(value(&b, "pack_voltage") > 45);
    bench_teardown(&b);
}

static void lp4v2_exception(void **state)
{
    struct bench b;
    /* Exception 02 (illegal data address) to function 0x03: 0x83 0x02, CRC low byte first. */
    uint8_t exc[5] = {LP4V2_SLAVE, 0x83, 0x02};
    uint16_t crc = crc16_modbus(exc, 3);

    (void)state;
    exc[3] = (uint8_t)crc;
    exc[4] = (uint8_t)(crc >> 8);
    bench_setup(&b, &lp4v2_driver, "lp4v2", LP4V2_SLAVE, false);
    struct fake_step s = {.reply = exc, .reply_len = sizeof(exc), .chunk = 2};
    fake_link_script(b.link, &s);
    assert_int_equal(poll_once(&b), RESULT_REFUSED);
    assert_string_equal(b.link->what, "exception 2");
    /* The next poll is answered again. */
    assert_int_equal(poll_once(&b), RESULT_OK);
    bench_teardown(&b);
}

/* A late reply's tail, or noise, waits on the line before the request: dropped and counted,
 * never part of the answer. */
static void lp4v2_stray_before_request(void **state)
{
    struct bench b;
    static const uint8_t late[] = {0x40, 0x03, 0x5E, 0x14};

    (void)state;
    bench_setup(&b, &lp4v2_driver, "lp4v2", LP4V2_SLAVE, false);
    struct fake_step s = {.stray = late,
                          .stray_len = sizeof(late),
                          .respond = fake_sim_respond,
                          .ctx = &b.sim,
                          .chunk = 4};
    fake_link_script(b.link, &s);
    assert_int_equal(poll_once(&b), RESULT_OK);
    assert_int_equal(b.link->stray.total, sizeof(late));
    assert_true(value(&b, "pack_voltage") > 45);
    bench_teardown(&b);
}

static void lp4v2_reply_cut_short(void **state)
{
    struct bench b;
    uint8_t reply[300];

    (void)state;
    bench_setup(&b, &lp4v2_driver, "lp4v2", LP4V2_SLAVE, false);
    size_t n = lp4v2_block_reply(&b, reply, sizeof(reply));
    struct fake_step s = {.reply = reply, .reply_len = n / 2, .chunk = 4};
    fake_link_script(b.link, &s);
    assert_int_equal(poll_once(&b), RESULT_TIMEOUT);
    assert_string_equal(b.link->what, "reply cut short (timeout)");
    /* Nothing at all. */
    struct fake_step silent = {0};
    fake_link_script(b.link, &silent);
    assert_int_equal(poll_once(&b), RESULT_TIMEOUT);
    assert_string_equal(b.link->what, "no reply (timeout)");
    bench_teardown(&b);
}

/* A half-duplex adapter that hears the request: with echo set, the echo is checked and
 * discarded; without, the request heard back is refused, never decoded. */
static void lp4v2_echo(void **state)
{
    struct bench b;
    struct fake_step s = {.echo = true, .respond = fake_sim_respond, .chunk = 4};

    (void)state;
    bench_setup(&b, &lp4v2_driver, "lp4v2", LP4V2_SLAVE, true);
    s.ctx = &b.sim;
    fake_link_script(b.link, &s);
    assert_int_equal(poll_once(&b), RESULT_OK);
    assert_true(value(&b, "pack_voltage") > 45);
    /* Echo expected, none heard: the reply came instead. */
    struct fake_step none = {.respond = fake_sim_respond, .ctx = &b.sim};
    fake_link_script(b.link, &none);
    assert_int_equal(poll_once(&b), RESULT_IO);
    assert_non_null(strstr(b.link->what, "no echo"));
    /* A garbled echo (a collision). */
    static const uint8_t garbled[8] = {0x40, 0x03, 0x00, 0x00, 0xFF, 0x2F};
    struct fake_step coll = {.echo = true,
                             .echo_bytes = garbled,
                             .echo_len = sizeof(garbled),
                             .respond = fake_sim_respond,
                             .ctx = &b.sim};
    fake_link_script(b.link, &coll);
    assert_int_equal(poll_once(&b), RESULT_IO);
    assert_non_null(strstr(b.link->what, "echo differs at byte 5 of 8: sent 0x00 heard 0xff"));
    bench_teardown(&b);

    /* Echo heard, not expected. */
    bench_setup(&b, &lp4v2_driver, "lp4v2", LP4V2_SLAVE, false);
    s.ctx = &b.sim;
    fake_link_script(b.link, &s);
    assert_int_equal(poll_once(&b), RESULT_IO);
    assert_non_null(strstr(b.link->what, "heard the request itself"));
    bench_teardown(&b);
}

/* ---- Pylontech ASCII -------------------------------------------------------------------- */

/* The CID2 of a Pylontech request text ("~20 02 46 42 ..."). */
static unsigned cid2_of(const uint8_t *req, size_t n)
{
    unsigned v = 0;

    assert_true(n >= 9);
    assert_int_equal(sscanf((const char *)req + 7, "%2x", &v), 1);
    return v;
}

static unsigned sent_with_cid2(const struct link *l, size_t from, unsigned cid2)
{
    unsigned k = 0;

    for (size_t i = from; i < fake_link_sent_count(l); i++) {
        size_t n = 0;
        const uint8_t *req = fake_link_sent(l, i, &n);
        k += cid2_of(req, n) == cid2;
    }
    return k;
}

static void pylontech_refused_alarms(void **state)
{
    struct bench b;

    (void)state;
    bench_setup(&b, &pylontech_driver, "pylontech", PYLON_ADR, false);
    b.sim.packs[0].refused[PYLONTECH_CMD_ALARM / 8] |= 1u << (PYLONTECH_CMD_ALARM % 8);
    assert_int_equal(poll_once(&b), RESULT_OK);
    /* The analog values are there, the alarms unknown, never 0. */
    assert_true(value(&b, "pack_voltage") > 40);
    assert_true(isnan(value(&b, "alarm_cell_voltage_low")));
    assert_true(isnan(value(&b, "alarm_pack_voltage_high")));
    assert_int_equal(sent_with_cid2(b.link, 0, PYLONTECH_CMD_ALARM), 1);
    bench_teardown(&b);
}

/* A command refused DEVICE_REFUSALS_BEFORE_BACKOFF times in a row is asked only every
 * DEVICE_REFUSED_ASK_EVERY-th poll after that, and every poll again once it answers. */
static void pylontech_refusal_backoff(void **state)
{
    struct bench b;
    size_t mark;

    (void)state;
    bench_setup(&b, &pylontech_driver, "pylontech", PYLON_ADR, false);
    b.sim.packs[0].refused[PYLONTECH_CMD_ALARM / 8] |= 1u << (PYLONTECH_CMD_ALARM % 8);
    for (int i = 0; i < DEVICE_REFUSALS_BEFORE_BACKOFF; i++)
        assert_int_equal(poll_once(&b), RESULT_OK);
    assert_int_equal(sent_with_cid2(b.link, 0, PYLONTECH_CMD_ALARM),
                     DEVICE_REFUSALS_BEFORE_BACKOFF);
    mark = fake_link_sent_count(b.link);
    for (int i = 1; i < DEVICE_REFUSED_ASK_EVERY; i++)
        assert_int_equal(poll_once(&b), RESULT_OK);
    assert_int_equal(sent_with_cid2(b.link, mark, PYLONTECH_CMD_ALARM), 0);
    assert_int_equal(sent_with_cid2(b.link, mark, PYLONTECH_CMD_ANALOG),
                     DEVICE_REFUSED_ASK_EVERY - 1);
    assert_true(isnan(value(&b, "alarm_cell_voltage_low")));
    /* The 50th poll asks again; the pack answers now: asked on every poll after. */
    b.sim.packs[0].refused[PYLONTECH_CMD_ALARM / 8] = 0;
    mark = fake_link_sent_count(b.link);
    assert_int_equal(poll_once(&b), RESULT_OK);
    assert_int_equal(sent_with_cid2(b.link, mark, PYLONTECH_CMD_ALARM), 1);
    assert_false(isnan(value(&b, "alarm_cell_voltage_low")));
    mark = fake_link_sent_count(b.link);
    assert_int_equal(poll_once(&b), RESULT_OK);
    assert_int_equal(sent_with_cid2(b.link, mark, PYLONTECH_CMD_ALARM), 1);
    bench_teardown(&b);
}

/* Noise before a frame is dropped by the link's framing; the frame behind it is taken. */
static void pylontech_noise_before_frame(void **state)
{
    struct bench b;
    char req[32];
    uint8_t reply[4096];

    (void)state;
    bench_setup(&b, &pylontech_driver, "pylontech", PYLON_ADR, false);
    int n = pylontech_build_request(PYLON_ADR, PYLONTECH_CMD_ANALOG, PYLON_ADR, req, sizeof(req));
    assert_true(n > 0);
    memcpy(reply, "\x00\xff\r", 3);
    size_t len =
        fake_sim_respond(&b.sim, (const uint8_t *)req, (size_t)n, reply + 3, sizeof(reply) - 3);
    assert_true(len > 18);
    struct fake_step s = {.reply = reply, .reply_len = 3 + len, .chunk = 5};
    fake_link_script(b.link, &s);
    assert_int_equal(poll_once(&b), RESULT_OK);
    assert_true(value(&b, "pack_voltage") > 40);
    /* Cut short: the frame's CR never comes. */
    s.reply_len = 3 + len - 1;
    fake_link_script(b.link, &s);
    assert_int_equal(poll_once(&b), RESULT_TIMEOUT);
    assert_string_equal(b.link->what, "reply cut short (timeout)");
    bench_teardown(&b);
}

/* The ASCII request heard back without echo set is not taken for a reply (it would decode
 * as a frame with return code 0x42 and pass for a refusal). */
static void pylontech_echo_not_configured(void **state)
{
    struct bench b;
    struct fake_step s = {.echo = true, .respond = fake_sim_respond, .chunk = 7};

    (void)state;
    bench_setup(&b, &pylontech_driver, "pylontech", PYLON_ADR, false);
    s.ctx = &b.sim;
    fake_link_script(b.link, &s);
    assert_int_equal(poll_once(&b), RESULT_IO);
    assert_non_null(strstr(b.link->what, "heard the request itself"));
    assert_int_equal(b.dev.optional[0].refused, 0);
    bench_teardown(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lp4v2_good_block),
        cmocka_unit_test(lp4v2_good_block_in_pieces),
        cmocka_unit_test(lp4v2_exception),
        cmocka_unit_test(lp4v2_stray_before_request),
        cmocka_unit_test(lp4v2_reply_cut_short),
        cmocka_unit_test(lp4v2_echo),
        cmocka_unit_test(pylontech_refused_alarms),
        cmocka_unit_test(pylontech_refusal_backoff),
        cmocka_unit_test(pylontech_noise_before_frame),
        cmocka_unit_test(pylontech_echo_not_configured),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
