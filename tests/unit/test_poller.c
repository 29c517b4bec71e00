/* SPDX-License-Identifier: MIT */
/* test_poller.c - the poller through the fake link and the publisher over a recording sink:
 * what a good poll, a first poll (identity), a silent pack and stray bytes become, and bus
 * threads that each poll their own line, a dead line never keeping the others' packs from
 * being published. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "device.h"
#include "driver.h"
#include "fake_link.h"
#include "fake_sink.h"
#include "lp4v2.h"
#include "modbus_rtu.h"
#include "poller.h"
#include "publisher.h"

#define MAXP 4

/* Packs on fake lines, a publisher over a recording sink. */
struct rig {
    struct config cfg;
    struct device packs[MAXP];
    char names[MAXP][16];
    size_t n;
    struct link *links[MAXP];
    size_t n_links;
    struct fake_sim sims[MAXP];
    struct publisher *pub;
    struct fake f;
};

static void rig_init(struct rig *r)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(config_defaults(&r->cfg), 0);
    r->cfg.cell_count = 16;
    r->cfg.bus.poll_interval_s = 1;
}

/* A line with LP4V2 packs at slaves[0..n) answered by simulated packs (none: silent). */
static struct link *rig_line(struct rig *r, const unsigned *slaves, unsigned n, bool answers)
{
    struct link_params lp = {.baud = 9600, .timeout_s = 0.5, .modbus = true};
    struct link *l = fake_link_new(&lp);
    size_t k = r->n_links;

    assert_non_null(l);
    r->links[r->n_links++] = l;
    assert_int_equal(fake_sim_init(&r->sims[k], "lp4v2", slaves, n), 0);
    fake_link_respond(l, answers ? fake_sim_respond : NULL, &r->sims[k]);
    l->shared = n > 1;
    for (unsigned i = 0; i < n; i++) {
        struct device *p = &r->packs[r->n];
        snprintf(r->names[r->n], sizeof(r->names[r->n]), "pack%zu", r->n + 1);
        assert_int_equal(device_setup(p, r->names[r->n], &lp4v2_driver, (uint8_t)slaves[i], &r->cfg,
                                      &r->cfg.bus),
                         0);
        p->link = l;
        r->n++;
    }
    return l;
}

static void rig_publisher(struct rig *r)
{
    r->pub = publisher_new(&r->cfg, r->packs, r->n, "test", NULL, NULL);
    assert_non_null(r->pub);
    r->f.budget = -1;
    publisher_set_sink(r->pub, fake_sink(&r->f));
    publisher_on_connect(r->pub);
}

static void rig_free(struct rig *r)
{
    publisher_free(r->pub);
    for (size_t i = 0; i < r->n; i++)
        device_teardown(&r->packs[i]);
    for (size_t i = 0; i < r->n_links; i++)
        link_free(r->links[i]);
    config_free(&r->cfg);
    fake_free(&r->f);
}

/* The serial number in the device block of pack `name`'s first discovery config, or "". */
static const char *config_serial(const struct fake *f, const char *name, char *out, size_t cap)
{
    char pat[64];

    out[0] = '\0';
    snprintf(pat, sizeof(pat), "/%s_", name);
    for (size_t i = 0; i < f->n; i++) {
        if (strncmp(f->m[i].topic, "homeassistant/", 14) || !strstr(f->m[i].topic, pat) ||
            !f->m[i].payload[0])
            continue;
        json_t *j = json_loads(f->m[i].payload, 0, NULL);
        const char *sn =
            json_string_value(json_object_get(json_object_get(j, "device"), "serial_number"));
        snprintf(out, cap, "%s", sn ? sn : "");
        json_decref(j);
        break;
    }
    return out;
}

/* A first good poll reads the identity once, and its discovery (with the serial) goes out
 * before the state that carries the values; the next poll asks for the block alone. */
static void test_first_poll_reads_the_identity_then_only_the_block(void **state)
{
    struct rig r;
    unsigned slave = 0x40;
    char serial[64];
    (void)state;

    rig_init(&r);
    struct link *l = rig_line(&r, &slave, 1, true);
    rig_publisher(&r);
    assert_int_equal(poller_poll_pack(&r.packs[0], r.pub, 1.0), RESULT_OK);
    /* The block read, then the identity read (registers 105.., function 0x03). */
    assert_int_equal(fake_link_sent_count(l), 2);
    size_t n;
    const uint8_t *id = fake_link_sent(l, 1, &n);
    assert_int_equal(n, 8);
    assert_int_equal(id[1], 0x03);
    assert_int_equal(id[2] << 8 | id[3], 105);
    assert_false(r.packs[0].need_identity);
    publisher_service(r.pub);
    assert_true(strncmp(config_serial(&r.f, "pack1", serial, sizeof(serial)), "LP4V2SIM", 8) == 0);
    long st = fake_last(&r.f, "bms2mqtt/pack1/state");
    assert_true(st > 0);
    assert_int_equal(fake_configs(&r.f, (size_t)st, "pack1"), 0); /* configs came first */
    double v = fake_state_value(&r.f, "pack1", "pack_voltage");
    assert_true(v > 45 && v < 60);

    assert_int_equal(poller_poll_pack(&r.packs[0], r.pub, 2.0), RESULT_OK);
    assert_int_equal(fake_link_sent_count(l), 3);
    assert_int_equal(r.packs[0].polls, 2);
    rig_free(&r);
}

/* A silent pack: each poll fails with "timeout", counted by cause; no state is published; it
 * goes offline after offline_after failures in a row and online again with its next answer. */
static void test_silent_pack_counts_timeouts_goes_offline_and_comes_back(void **state)
{
    struct rig r;
    unsigned slave = 0x40;
    (void)state;

    rig_init(&r);
    struct link *l = rig_line(&r, &slave, 1, false);
    rig_publisher(&r);
    for (int i = 0; i < 3; i++)
        assert_int_equal(poller_poll_pack(&r.packs[0], r.pub, 1.0 + i), RESULT_TIMEOUT);
    assert_int_equal(r.packs[0].errors[RESULT_TIMEOUT], 3);
    assert_int_equal(r.packs[0].failures, 3);
    assert_true(r.packs[0].need_identity); /* never answered: the identity waits */
    publisher_service(r.pub);
    assert_int_equal(fake_count(&r.f, 0, "bms2mqtt/pack1/state"), 0);
    assert_string_equal(r.f.m[fake_last(&r.f, "bms2mqtt/pack1/availability")].payload, "offline");

    fake_link_respond(l, fake_sim_respond, &r.sims[0]);
    assert_int_equal(poller_poll_pack(&r.packs[0], r.pub, 5.0), RESULT_OK);
    assert_int_equal(r.packs[0].failures, 0);
    publisher_service(r.pub);
    assert_int_equal(fake_count(&r.f, 0, "bms2mqtt/pack1/state"), 1);
    assert_string_equal(r.f.m[fake_last(&r.f, "bms2mqtt/pack1/availability")].payload, "online");
    rig_free(&r);
}

/* Bytes waiting on the line before a request (a late reply) are dropped and counted; the
 * poll reads the pack's own answer. */
static void test_stray_bytes_are_dropped_before_the_request(void **state)
{
    struct rig r;
    unsigned slave = 0x40;
    static const uint8_t late[] = {0x40, 0x03, 0x02, 0x12, 0x34, 0x00, 0x00};
    (void)state;

    rig_init(&r);
    struct link *l = rig_line(&r, &slave, 1, true);
    rig_publisher(&r);
    struct fake_step s = {
        .stray = late, .stray_len = sizeof(late), .respond = fake_sim_respond, .ctx = &r.sims[0]};
    fake_link_script(l, &s);
    assert_int_equal(poller_poll_pack(&r.packs[0], r.pub, 1.0), RESULT_OK);
    assert_int_equal(l->stray.total, sizeof(late));
    assert_true(
        r.packs[0].values[reading_find(r.packs[0].defs, r.packs[0].n_defs, "pack_voltage")] > 45);
    rig_free(&r);
}

/* Two lines, two bus threads: the packs of the answering line are published, the dead line's
 * pack only counts its failure; each thread used its own link only. */
static void test_each_bus_thread_polls_its_own_line(void **state)
{
    struct rig r;
    unsigned good[] = {1, 2}, dead = 3;
    (void)state;

    rig_init(&r);
    struct link *a = rig_line(&r, good, 2, true);
    struct link *b = rig_line(&r, &dead, 1, false);
    rig_publisher(&r);
    struct poller *pl = poller_new(&r.cfg, r.packs, r.n, r.pub, true);
    assert_non_null(pl);
    assert_int_equal(poller_start(pl), 0);
    assert_true(poller_wait(pl, 30));
    poller_stop(pl);
    poller_free(pl);
    publisher_service(r.pub);

    /* Line a: each pack's block and identity, addressed to its own slave id. */
    assert_int_equal(fake_link_sent_count(a), 4);
    for (size_t i = 0; i < 4; i++) {
        size_t n;
        assert_int_equal(fake_link_sent(a, i, &n)[0], good[i / 2]);
    }
    assert_int_equal(fake_link_sent_count(b), 1);
    assert_int_equal(fake_link_sent(b, 0, &(size_t){0})[0], dead);
    assert_int_equal(fake_count(&r.f, 0, "bms2mqtt/pack1/state"), 1);
    assert_int_equal(fake_count(&r.f, 0, "bms2mqtt/pack2/state"), 1);
    assert_int_equal(fake_count(&r.f, 0, "bms2mqtt/pack3/state"), 0);
    assert_int_equal(r.packs[2].errors[RESULT_TIMEOUT], 1);
    rig_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_poll_reads_the_identity_then_only_the_block),
        cmocka_unit_test(test_silent_pack_counts_timeouts_goes_offline_and_comes_back),
        cmocka_unit_test(test_stray_bytes_are_dropped_before_the_request),
        cmocka_unit_test(test_each_bus_thread_polls_its_own_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
