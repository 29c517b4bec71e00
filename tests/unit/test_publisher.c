/* SPDX-License-Identifier: MIT */
/* test_publisher.c - the publisher over a fake sink: outcomes posted from bus threads, the
 * order of what is published, the bank's rounds, energy never above durable, the bound
 * while the sink is not ready, and the --once ledger's verdicts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "device.h"
#include "driver.h"
#include "energy_store.h"
#include "fake_sink.h"
#include "mqtt.h"
#include "once.h"
#include "publisher.h"

/* --- packs ------------------------------------------------------------------------ */

#define NPACKS 4

struct rig {
    struct config cfg;
    struct device packs[NPACKS];
    char names[NPACKS][16];
    size_t n;
    struct publisher *pub;
    struct fake f;
};

static int idx(const char *key)
{
    int i = reading_find(lp4v2_driver.defs, *lp4v2_driver.n_defs, key);
    assert_true(i >= 0);
    return i;
}

/* A reading of pack p: every value 1, the voltage v, the power w. */
static void rig_values(struct device *p, double v, double w)
{
    for (size_t i = 0; i < p->n_defs; i++)
        p->values[i] = 1;
    p->values[idx("pack_voltage")] = v;
    p->values[idx("pack_power")] = w;
}

static void rig_setup(struct rig *r, size_t n, const char *bank, struct energy_store *store)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(config_defaults(&r->cfg), 0);
    r->n = n;
    for (size_t i = 0; i < n; i++) {
        snprintf(r->names[i], sizeof(r->names[i]), "pack%zu", i + 1);
        assert_int_equal(device_setup(&r->packs[i], r->names[i], &lp4v2_driver, (uint8_t)(0x40 + i),
                                      &r->cfg, &r->cfg.bus),
                         0);
        rig_values(&r->packs[i], 50 + (double)i, 0);
    }
    r->pub = publisher_new(&r->cfg, r->packs, n, "test", bank, store);
    assert_non_null(r->pub);
    r->f.budget = -1;
    publisher_set_sink(r->pub, fake_sink(&r->f));
}

static void rig_free(struct rig *r)
{
    publisher_free(r->pub);
    for (size_t i = 0; i < r->n; i++)
        device_teardown(&r->packs[i]);
    config_free(&r->cfg);
    fake_free(&r->f);
}

/* A good poll of pack i, as its bus thread hands it over. */
static void rig_good(struct rig *r, size_t i, double t)
{
    r->packs[i].polls++;
    r->packs[i].failures = 0;
    publisher_post_good(r->pub, &r->packs[i], t);
}

static void rig_failed(struct rig *r, size_t i)
{
    r->packs[i].polls++;
    r->packs[i].failures++;
    publisher_post_failed(r->pub, &r->packs[i], RESULT_TIMEOUT);
}

/* --- tests ------------------------------------------------------------------------ */

static void test_publisher_session_opens_with_status_then_each_pack(void **state)
{
    struct rig r;
    (void)state;

    rig_setup(&r, 2, NULL, NULL);
    publisher_on_connect(r.pub);
    assert_true(r.f.n > 3);
    assert_string_equal(r.f.m[0].topic, "bms2mqtt/bridge/test/status");
    assert_string_equal(r.f.m[0].payload, "online");
    assert_true(r.f.m[0].retain);
    /* Not polled yet: no discovery (it waits for the identity), availability "offline". */
    assert_int_equal(fake_configs(&r.f, 0, "pack1"), 0);
    assert_int_equal(fake_count(&r.f, 0, "bms2mqtt/pack1/availability"), 1);
    assert_string_equal(r.f.m[fake_last(&r.f, "bms2mqtt/pack1/availability")].payload, "offline");
    assert_int_equal(fake_count(&r.f, 0, "bms2mqtt/pack1/state"), 0);
    rig_free(&r);
}

static void test_publisher_discovery_before_state_and_bank_once_per_round(void **state)
{
    struct rig r;
    size_t n_defs = *lp4v2_driver.n_defs;
    (void)state;

    rig_setup(&r, 3, "bank_t", NULL);
    publisher_on_connect(r.pub);
    size_t from = r.f.n;
    rig_good(&r, 0, 0);
    /* Posting publishes nothing: the owner does, in publisher_service(). */
    assert_int_equal(r.f.n, from);
    assert_false(publisher_service(r.pub));
    assert_int_equal(fake_configs(&r.f, from, "pack1"), n_defs);
    long state1 = fake_last(&r.f, "bms2mqtt/pack1/state");
    assert_true(state1 > 0);
    /* Every config of pack1 came before its state. */
    assert_int_equal(fake_configs(&r.f, (size_t)state1, "pack1"), 0);
    assert_string_equal(r.f.m[fake_last(&r.f, "bms2mqtt/pack1/availability")].payload, "online");
    assert_int_equal(fake_count(&r.f, 0, "bms2mqtt/bank_t/state"), 0);

    rig_good(&r, 1, 0);
    rig_good(&r, 2, 0);
    publisher_service(r.pub);
    /* Every pack had an outcome: one bank state, after its discovery. */
    assert_int_equal(fake_count(&r.f, 0, "bms2mqtt/bank_t/state"), 1);
    long bank = fake_last(&r.f, "bms2mqtt/bank_t/state");
    assert_int_equal(fake_configs(&r.f, (size_t)bank, "bank_t"), 0);
    assert_int_equal(fake_configs(&r.f, 0, "bank_t"), 13);
    assert_float_equal(fake_state_value(&r.f, "bank_t", "packs_online"), 3, 0);

    /* Two packs again: no new round yet; the third completes it (a failure counts). */
    rig_good(&r, 0, 1);
    rig_good(&r, 1, 1);
    publisher_service(r.pub);
    assert_int_equal(fake_count(&r.f, 0, "bms2mqtt/bank_t/state"), 1);
    rig_failed(&r, 2);
    publisher_service(r.pub);
    assert_int_equal(fake_count(&r.f, 0, "bms2mqtt/bank_t/state"), 2);
    /* One discovery per device in all. */
    assert_int_equal(fake_configs(&r.f, 0, "pack1"), n_defs);
    assert_int_equal(fake_configs(&r.f, 0, "bank_t"), 13);
    rig_free(&r);
}

static void test_publisher_post_wakes_the_owner_once_and_never_waits(void **state)
{
    struct rig r;
    uint64_t n = 0;
    struct pollfd pfd;
    (void)state;

    rig_setup(&r, 2, NULL, NULL);
    pfd.fd = publisher_wake_fd(r.pub);
    pfd.events = POLLIN;
    assert_int_equal(poll(&pfd, 1, 0), 0);
    for (int k = 0; k < 5; k++)
        rig_good(&r, 0, k);
    rig_failed(&r, 1);
    /* One wake-up for all six posts: the owner had not looked yet. */
    assert_int_equal(poll(&pfd, 1, 0), 1);
    assert_int_equal(read(pfd.fd, &n, sizeof(n)), sizeof(n));
    assert_int_equal(n, 1);
    publisher_wake(r.pub);
    publisher_service(r.pub);
    assert_int_equal(poll(&pfd, 1, 0), 0);
    /* The newest of the five readings is the state. */
    assert_float_equal(fake_state_value(&r.f, "pack1", "pack_voltage"), 50, 1e-9);
    rig_good(&r, 0, 6);
    assert_int_equal(poll(&pfd, 1, 0), 1);
    rig_free(&r);
}

/* --- outcomes from several bus threads at once ------------------------------------ */

#define POSTS 3000

struct poster {
    struct rig *r;
    size_t i;
    atomic_int *running;
};

/* A bus thread: POSTS good polls with the voltage counting up, a failure every 100th, and
 * its identity read once in a while. */
static void *poster_run(void *arg)
{
    struct poster *ps = arg;
    struct device *p = &ps->r->packs[ps->i];

    for (int k = 1; k <= POSTS; k++) {
        if (k % 100 == 0) {
            rig_failed(ps->r, ps->i);
            continue;
        }
        rig_values(p, k, 100);
        if (k % 500 == 1) {
            snprintf(p->id.serial, sizeof(p->id.serial), "SN%zu", ps->i);
            publisher_post_identity(ps->r->pub, p);
        }
        rig_good(ps->r, ps->i, k);
    }
    rig_values(p, POSTS + 1, 100); /* the last word */
    rig_good(ps->r, ps->i, POSTS + 1);
    atomic_fetch_sub(ps->running, 1);
    return NULL;
}

/* Each published state of `name` has a voltage at least that of the one before. */
static void check_monotonic(const struct fake *f, const char *name)
{
    char topic[64];
    double last = 0;

    snprintf(topic, sizeof(topic), "bms2mqtt/%s/state", name);
    for (size_t i = 0; i < f->n; i++) {
        if (strcmp(f->m[i].topic, topic) != 0)
            continue;
        json_t *j = json_loads(f->m[i].payload, 0, NULL);
        assert_non_null(j);
        double v = json_number_value(json_object_get(j, "pack_voltage"));
        json_decref(j);
        assert_true(v >= last);
        last = v;
    }
    assert_float_equal(last, POSTS + 1, 0);
}

static void test_publisher_outcomes_posted_from_several_threads(void **state)
{
    struct rig r;
    struct poster ps[NPACKS];
    pthread_t th[NPACKS];
    atomic_int running = NPACKS;
    (void)state;

    rig_setup(&r, NPACKS, "bank_t", NULL);
    publisher_on_connect(r.pub);
    for (size_t i = 0; i < NPACKS; i++) {
        ps[i] = (struct poster){&r, i, &running};
        assert_int_equal(pthread_create(&th[i], NULL, poster_run, &ps[i]), 0);
    }
    /* The owner: woken by the posts, as the publisher thread is. */
    while (atomic_load(&running) > 0) {
        struct pollfd pfd = {publisher_wake_fd(r.pub), POLLIN, 0};
        poll(&pfd, 1, 10);
        publisher_service(r.pub);
    }
    for (size_t i = 0; i < NPACKS; i++)
        pthread_join(th[i], NULL);
    publisher_service(r.pub);
    for (size_t i = 0; i < NPACKS; i++) {
        char serial[16], topic[96];
        check_monotonic(&r.f, r.names[i]);
        snprintf(topic, sizeof(topic), "bms2mqtt/%s/state", r.names[i]);
        assert_true(fake_count(&r.f, 0, topic) <= POSTS);
        snprintf(topic, sizeof(topic), "bms2mqtt/%s/availability", r.names[i]);
        assert_string_equal(r.f.m[fake_last(&r.f, topic)].payload, "online");
        /* Announced once, with the identity read before the first reading. */
        snprintf(serial, sizeof(serial), "\"SN%zu\"", i);
        snprintf(topic, sizeof(topic), "homeassistant/sensor/%s_pack_voltage/config", r.names[i]);
        assert_int_equal(fake_count(&r.f, 0, topic), 1);
        assert_non_null(strstr(r.f.m[fake_last(&r.f, topic)].payload, serial));
    }
    assert_true(fake_count(&r.f, 0, "bms2mqtt/bank_t/state") >= 1);
    rig_free(&r);
}

/* --- packs found at run time ------------------------------------------------------ */

struct finder {
    struct rig *r;
    struct device *p;
};

static void *finder_run(void *arg)
{
    struct finder *fd = arg;

    assert_int_equal(
        device_setup(fd->p, "found_42", &lp4v2_driver, 0x42, &fd->r->cfg, &fd->r->cfg.bus), 0);
    assert_int_equal(publisher_add_pack(fd->r->pub, fd->p), 0);
    rig_values(fd->p, 49, 0);
    fd->p->polls++;
    publisher_post_good(fd->r->pub, fd->p, 0);
    return NULL;
}

static void test_publisher_pack_found_by_a_bus_thread_is_announced_then_counted(void **state)
{
    struct rig r;
    struct device found;
    struct finder fd = {&r, &found};
    pthread_t th;
    (void)state;

    rig_setup(&r, 2, "bank_t", NULL);
    publisher_on_connect(r.pub);
    assert_int_equal(pthread_create(&th, NULL, finder_run, &fd), 0);
    pthread_join(th, NULL);
    publisher_service(r.pub);
    assert_int_equal(fake_configs(&r.f, 0, "found_42"), *lp4v2_driver.n_defs);
    assert_true(fake_last(&r.f, "bms2mqtt/found_42/state") >
                fake_last(&r.f, "homeassistant/sensor/found_42_pack_voltage/config"));
    /* It counts in the bank's rounds: the configured packs complete the first, ... */
    rig_good(&r, 0, 1);
    rig_good(&r, 1, 1);
    publisher_service(r.pub);
    assert_int_equal(fake_count(&r.f, 0, "bms2mqtt/bank_t/state"), 1);
    assert_float_equal(fake_state_value(&r.f, "bank_t", "packs_online"), 3, 0);
    /* ... and the next one waits for it too. */
    rig_good(&r, 0, 2);
    rig_good(&r, 1, 2);
    publisher_service(r.pub);
    assert_int_equal(fake_count(&r.f, 0, "bms2mqtt/bank_t/state"), 1);
    found.polls++;
    publisher_post_good(r.pub, &found, 2);
    publisher_service(r.pub);
    assert_int_equal(fake_count(&r.f, 0, "bms2mqtt/bank_t/state"), 2);
    rig_free(&r);
    device_teardown(&found);
}

/* --- availability ------------------------------------------------------------------ */

static void test_publisher_offline_after_failures_in_a_row_and_back(void **state)
{
    struct rig r;
    (void)state;

    rig_setup(&r, 1, NULL, NULL);
    publisher_on_connect(r.pub);
    rig_good(&r, 0, 0);
    publisher_service(r.pub);
    size_t from = r.f.n;
    rig_failed(&r, 0);
    publisher_service(r.pub);
    rig_failed(&r, 0);
    publisher_service(r.pub);
    assert_int_equal(fake_count(&r.f, from, "bms2mqtt/pack1/availability"), 0);
    rig_failed(&r, 0); /* the third in a row (bus.offline_after 3) */
    publisher_service(r.pub);
    assert_int_equal(fake_count(&r.f, from, "bms2mqtt/pack1/availability"), 1);
    assert_string_equal(r.f.m[fake_last(&r.f, "bms2mqtt/pack1/availability")].payload, "offline");
    /* No state while failing: a bad frame never becomes a value. */
    assert_int_equal(fake_count(&r.f, from, "bms2mqtt/pack1/state"), 0);
    rig_good(&r, 0, 1);
    publisher_service(r.pub);
    assert_string_equal(r.f.m[fake_last(&r.f, "bms2mqtt/pack1/availability")].payload, "online");
    assert_int_equal(fake_count(&r.f, from, "bms2mqtt/pack1/state"), 1);
    rig_free(&r);
}

/* expire_after of the first discovery config of `name` in f. */
static int fake_expire_after(const struct fake *f, const char *name)
{
    char pat[96];

    snprintf(pat, sizeof(pat), "/%s_", name);
    for (size_t i = 0; i < f->n; i++) {
        if (strncmp(f->m[i].topic, "homeassistant/", 14) || !strstr(f->m[i].topic, pat) ||
            !f->m[i].payload[0])
            continue;
        json_t *j = json_loads(f->m[i].payload, 0, NULL);
        assert_non_null(j);
        int v = (int)json_integer_value(json_object_get(j, "expire_after"));
        json_decref(j);
        return v;
    }
    fail_msg("no config of %s", name);
    return -1;
}

/* Devices on two buses: each follows its own bus's poll period and offline_after, and the
 * bank adds the battery packs only, not an inverter on the other bus. */
static void test_publisher_each_device_follows_its_bus_and_the_bank_adds_batteries(void **state)
{
    struct rig r;
    struct config_bus fast, slow;
    struct driver inverter = lp4v2_driver;
    (void)state;

    memset(&r, 0, sizeof(r));
    assert_int_equal(config_defaults(&r.cfg), 0);
    fast = slow = r.cfg.bus;
    fast.poll_interval_s = 5, fast.offline_after = 3;
    slow.poll_interval_s = 60, slow.offline_after = 1;
    inverter.kind = DEVICE_INVERTER;
    r.n = 3;
    const char *names[] = {"pack1", "pack2", "multi"};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(device_setup(&r.packs[i], names[i], i < 2 ? &lp4v2_driver : &inverter,
                                      (uint8_t)(0x40 + i), &r.cfg, i < 2 ? &fast : &slow),
                         0);
    for (size_t i = 0; i < 3; i++)
        rig_values(&r.packs[i], 50, 0);
    r.pub = publisher_new(&r.cfg, r.packs, r.n, "test", "bank_t", NULL);
    assert_non_null(r.pub);
    r.f.budget = -1;
    publisher_set_sink(r.pub, fake_sink(&r.f));
    publisher_on_connect(r.pub);

    rig_good(&r, 0, 0);
    rig_good(&r, 2, 0);
    publisher_service(r.pub);
    assert_int_equal(fake_expire_after(&r.f, "pack1"), 30);  /* 5 x 5 s, at least 30 */
    assert_int_equal(fake_expire_after(&r.f, "multi"), 300); /* 5 x 60 s */
    assert_int_equal(fake_count(&r.f, 0, "bms2mqtt/bank_t/state"), 0);
    /* The second battery pack completes the round; the inverter is not waited for. */
    rig_good(&r, 1, 0);
    publisher_service(r.pub);
    assert_int_equal(fake_count(&r.f, 0, "bms2mqtt/bank_t/state"), 1);
    assert_float_equal(fake_state_value(&r.f, "bank_t", "packs_online"), 2, 0);
    assert_int_equal(fake_expire_after(&r.f, "bank_t"), 30);

    /* offline_after 1 on the slow bus, 3 on the fast one. */
    size_t from = r.f.n;
    rig_failed(&r, 2);
    rig_failed(&r, 0);
    publisher_service(r.pub);
    assert_string_equal(r.f.m[fake_last(&r.f, "bms2mqtt/multi/availability")].payload, "offline");
    assert_int_equal(fake_count(&r.f, from, "bms2mqtt/pack1/availability"), 0);
    rig_free(&r);
}

static void test_publisher_new_identity_republishes_discovery(void **state)
{
    struct rig r;
    (void)state;

    rig_setup(&r, 1, NULL, NULL);
    publisher_on_connect(r.pub);
    rig_good(&r, 0, 0);
    publisher_service(r.pub);
    size_t from = r.f.n;
    snprintf(r.packs[0].id.serial, sizeof(r.packs[0].id.serial), "SWAPPED1");
    publisher_post_identity(r.pub, &r.packs[0]);
    publisher_service(r.pub);
    assert_int_equal(fake_configs(&r.f, from, "pack1"), *lp4v2_driver.n_defs);
    assert_non_null(strstr(r.f.m[r.f.n - 1].payload, "\"serial_number\":\"SWAPPED1\""));
    /* The same identity again: nothing. */
    from = r.f.n;
    publisher_post_identity(r.pub, &r.packs[0]);
    publisher_service(r.pub);
    assert_int_equal(r.f.n, from);
    rig_free(&r);
}

/* --- the sink not ready: bounded, and in order when it is ready again ------------- */

static void test_publisher_keeps_only_what_is_due_while_the_sink_is_not_ready(void **state)
{
    struct rig r;
    size_t n_defs = *lp4v2_driver.n_defs;
    (void)state;

    rig_setup(&r, 2, "bank_t", NULL);
    r.f.budget = 0; /* no session */
    publisher_on_connect(r.pub);
    for (int k = 1; k <= 1000; k++) {
        rig_values(&r.packs[0], k, 0);
        rig_good(&r, 0, k);
        rig_good(&r, 1, k);
        publisher_post_raw(r.pub, "pack1", "{\"registers\":{}}");
        assert_true(publisher_service(r.pub)); /* something stays due */
    }
    assert_int_equal(r.f.n, 0);
    /* Ready for 60 messages: the status, then pack1's first configs, and no state. */
    r.f.budget = 60;
    assert_true(publisher_service(r.pub));
    assert_int_equal(r.f.n, 60);
    assert_string_equal(r.f.m[0].topic, "bms2mqtt/bridge/test/status");
    assert_int_equal(fake_count(&r.f, 0, "bms2mqtt/pack1/state"), 0);
    /* A newer reading while pack1's discovery is half out. */
    rig_values(&r.packs[0], 2000, 0);
    rig_good(&r, 0, 2000);
    r.f.budget = -1;
    assert_false(publisher_service(r.pub));
    /* Each config once, the availability once, one state (the newest), raw reads dropped. */
    assert_int_equal(fake_configs(&r.f, 0, "pack1"), n_defs);
    assert_int_equal(fake_configs(&r.f, 0, "pack2"), n_defs);
    assert_int_equal(fake_count(&r.f, 0, "bms2mqtt/pack1/availability"), 1);
    assert_int_equal(fake_count(&r.f, 0, "bms2mqtt/pack1/state"), 1);
    assert_int_equal(fake_count(&r.f, 0, "bms2mqtt/pack1/raw"), 0);
    assert_float_equal(fake_state_value(&r.f, "pack1", "pack_voltage"), 2000, 0);
    assert_true(fake_last(&r.f, "bms2mqtt/pack1/state") >
                fake_last(&r.f, "homeassistant/sensor/pack1_pack_voltage/config"));
    assert_true(fake_count(&r.f, 0, "bms2mqtt/bank_t/state") <= 1);
    rig_free(&r);
}

static void test_publisher_raw_reads_wait_in_a_bounded_list(void **state)
{
    struct rig r;
    (void)state;

    rig_setup(&r, 1, NULL, NULL);
    publisher_on_connect(r.pub);
    for (int k = 0; k < 10 * PUBLISHER_RAW_MAX; k++)
        publisher_post_raw(r.pub, "pylontech_addr_07", "{\"registers\":{\"0\":1}}");
    publisher_service(r.pub);
    assert_int_equal(fake_count(&r.f, 0, "bms2mqtt/pylontech_addr_07/raw"), PUBLISHER_RAW_MAX);
    rig_free(&r);
}

/* --- energy ------------------------------------------------------------------------ */

struct durable_check {
    const char *path;
    unsigned checked;
};

/* The state file's counter of pack1 (kWh), 0 when there is none. */
static double durable_charged(const char *path)
{
    json_t *j = json_load_file(path, 0, NULL);
    double v = 0;

    if (j) {
        v = json_number_value(
            json_object_get(json_object_get(json_object_get(j, "packs"), "pack1"), "charged_kwh"));
        json_decref(j);
    }
    return v;
}

static void check_durable(struct fake *f, const char *topic, const char *payload)
{
    struct durable_check *dc = f->ud;

    if (strcmp(topic, "bms2mqtt/pack1/state") != 0)
        return;
    json_t *j = json_loads(payload, 0, NULL);
    assert_non_null(j);
    double published = json_number_value(json_object_get(j, "energy_charged_kwh"));
    json_decref(j);
    assert_true(published <= durable_charged(dc->path) + 1e-9);
    dc->checked++;
}

static void test_publisher_energy_is_never_published_above_durable(void **state)
{
    char dir[] = "/tmp/bms2mqtt-pub-XXXXXX", path[64], report[256];
    struct durable_check dc = {path, 0};
    struct rig r;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/state.json", dir);
    struct energy_store *s = energy_store_open(path, report, sizeof(report));
    assert_non_null(s);
    rig_setup(&r, 1, NULL, s);
    r.f.on_state = check_durable;
    r.f.ud = &dc;
    publisher_on_connect(r.pub);
    /* 36 kW for 120 s, one poll a second: 1.2 kWh, 10 Wh a poll (each one a save). */
    for (int t = 0; t <= 120; t++) {
        rig_values(&r.packs[0], 52, 36000);
        rig_good(&r, 0, t);
        publisher_service(r.pub);
    }
    assert_int_equal(dc.checked, 121);
    assert_float_equal(fake_state_value(&r.f, "pack1", "energy_charged_kwh"), 1.2, 1e-9);
    assert_float_equal(durable_charged(path), 1.2, 1e-9);
    /* At exit the counters are noted for the last save. */
    publisher_note_energy(r.pub);
    assert_int_equal(energy_store_sync(s), 0);
    rig_free(&r);
    energy_store_free(s);
    unlink(path);
    rmdir(dir);
}

static void test_publisher_energy_stays_at_durable_when_the_save_fails(void **state)
{
    char report[256];
    struct rig r;
    (void)state;

    /* A directory that does not exist: every save fails. */
    struct energy_store *s =
        energy_store_open("/nonexistent-bms2mqtt-dir/state.json", report, sizeof(report));
    assert_non_null(s);
    rig_setup(&r, 1, NULL, s);
    publisher_on_connect(r.pub);
    for (int t = 0; t <= 60; t++) {
        rig_values(&r.packs[0], 52, 36000);
        rig_good(&r, 0, t);
        publisher_service(r.pub);
    }
    assert_int_equal(fake_count(&r.f, 0, "bms2mqtt/pack1/state"), 61);
    assert_float_equal(fake_state_value(&r.f, "pack1", "energy_charged_kwh"), 0, 0);
    rig_free(&r);
    energy_store_free(s);
}

/* --- the --once ledger ------------------------------------------------------------- */

static void test_once_ledger_verdicts_come_from_the_outcomes(void **state)
{
    struct rig r;
    atomic_bool stop = false;
    const struct mqtt_callbacks cb = {NULL, NULL, NULL};
    (void)state;

    rig_setup(&r, 2, NULL, NULL);
    /* A client that never connects: nothing is delivered. */
    struct mqtt *m = mqtt_new(&r.cfg.mqtt, "test", "bms2mqtt/bridge/test/status", "offline",
                              publisher_wake_fd(r.pub), &stop, &cb, NULL);
    assert_non_null(m);
    struct once *o = once_new(&r.cfg, r.packs, r.n, r.pub, m);
    assert_non_null(o);
    publisher_set_sink(r.pub, once_sink(o));
    /* Nobody answered: the packs gave nothing to deliver. */
    rig_failed(&r, 0);
    rig_failed(&r, 1);
    publisher_service(r.pub);
    assert_int_equal(once_report(o), ONCE_EXIT_PACKS);
    /* pack1 answered, but there was no session to deliver its state in. */
    rig_good(&r, 0, 1);
    publisher_service(r.pub);
    assert_int_equal(once_report(o), ONCE_EXIT_BROKER);
    publisher_set_sink(r.pub, (struct sink){0});
    once_free(o);
    mqtt_free(m);
    rig_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_publisher_session_opens_with_status_then_each_pack),
        cmocka_unit_test(test_publisher_discovery_before_state_and_bank_once_per_round),
        cmocka_unit_test(test_publisher_post_wakes_the_owner_once_and_never_waits),
        cmocka_unit_test(test_publisher_outcomes_posted_from_several_threads),
        cmocka_unit_test(test_publisher_pack_found_by_a_bus_thread_is_announced_then_counted),
        cmocka_unit_test(test_publisher_offline_after_failures_in_a_row_and_back),
        cmocka_unit_test(test_publisher_each_device_follows_its_bus_and_the_bank_adds_batteries),
        cmocka_unit_test(test_publisher_new_identity_republishes_discovery),
        cmocka_unit_test(test_publisher_keeps_only_what_is_due_while_the_sink_is_not_ready),
        cmocka_unit_test(test_publisher_raw_reads_wait_in_a_bounded_list),
        cmocka_unit_test(test_publisher_energy_is_never_published_above_durable),
        cmocka_unit_test(test_publisher_energy_stays_at_durable_when_the_save_fails),
        cmocka_unit_test(test_once_ledger_verdicts_come_from_the_outcomes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
