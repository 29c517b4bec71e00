/* SPDX-License-Identifier: MIT */
/* test_victron_gx.c - the victron_gx driver in-process, over bms-sim's GX on a simulated line
 * and the publisher with a recording sink: what it finds, what one poll costs, what it
 * publishes (strings as text, enum codes the table does not know, nothing for 0x0A). */
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "device.h"
#include "driver.h"
#include "ha.h"
#include "link.h"
#include "publisher.h"
#include "sim.h"
#include "victron_table.h"

struct rec {
    char **topic, **payload;
    size_t n, cap;
};

static int rec_publish(void *ctx, const char *topic, const char *payload, int qos, bool retain)
{
    struct rec *r = ctx;

    (void)qos;
    (void)retain;
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 1024;
        r->topic = realloc(r->topic, r->cap * sizeof(char *));
        r->payload = realloc(r->payload, r->cap * sizeof(char *));
    }
    r->topic[r->n] = strdup(topic);
    r->payload[r->n] = strdup(payload);
    r->n++;
    return 0;
}

static void rec_free(struct rec *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->topic[i]);
        free(r->payload[i]);
    }
    free(r->topic);
    free(r->payload);
}

/* The last payload on topic from index `from`, or NULL. */
static const char *rec_last(const struct rec *r, size_t from, const char *topic)
{
    for (size_t i = r->n; i-- > from;)
        if (strcmp(r->topic[i], topic) == 0)
            return r->payload[i];
    return NULL;
}

/* A bus loop of `cycles` polls, the publisher served between them. */
struct loop_ctx {
    unsigned cycles, done;
    struct publisher *pub;
    double t;
};

static double l_now(void *ctx)
{
    return ((struct loop_ctx *)ctx)->t;
}

static bool l_sleep(void *ctx, double until)
{
    struct loop_ctx *l = ctx;

    publisher_service(l->pub);
    l->t = until;
    return ++l->done >= l->cycles;
}

static bool l_stopping(void *ctx)
{
    (void)ctx;
    return false;
}

static void l_kick(void *ctx)
{
    (void)ctx;
}

static void sim_out(const char *line)
{
    (void)line;
}

struct stack {
    struct config cfg;
    struct device dev;
    struct link *line;
    struct publisher *pub;
    struct rec rec;
};

static void stack_up(struct stack *s, const char *extra)
{
    char yaml[512], err[512];
    const unsigned unit = 100;

    snprintf(yaml, sizeof(yaml),
             "mqtt:\n  host: localhost\nbuses:\n  - name: gx\n    mode: victron_gx\n"
             "    transport: mock\n%s",
             extra);
    memset(s, 0, sizeof(*s));
    if (config_load_buffer(&s->cfg, "t.yaml", yaml, strlen(yaml), err, sizeof(err)) < 0)
        fail_msg("%s", err);
    assert_int_equal(
        device_setup(&s->dev, "gx", &victron_gx_driver, 100, &s->cfg, &s->cfg.buses[0]), 0);
    s->line = link_sim_new("victron_gx", &unit, 1, 1, err, sizeof(err));
    assert_non_null(s->line);
    s->dev.link = s->line;
    struct device *line[] = {&s->dev};
    assert_int_equal(victron_gx_driver.bus_setup(line, 1), 0);
    s->pub = publisher_new(&s->cfg, &s->dev, 1, "test", NULL, NULL);
    assert_non_null(s->pub);
    publisher_set_sink(s->pub, (struct sink){rec_publish, NULL, &s->rec, NULL});
    publisher_on_connect(s->pub);
}

static void stack_run(struct stack *s, unsigned cycles)
{
    struct loop_ctx l = {cycles, 0, s->pub, 0};
    const struct bus_loop loop = {l_now, l_sleep, l_stopping, l_kick, false, &l};

    victron_gx_driver.bus_run(&s->dev, s->pub, &loop);
    publisher_service(s->pub);
}

static void stack_down(struct stack *s)
{
    publisher_free(s->pub);
    device_teardown(&s->dev);
    link_free(s->line);
    config_free(&s->cfg);
    rec_free(&s->rec);
}

static json_t *state_of(const struct stack *s, size_t from, const char *device)
{
    char topic[128];

    snprintf(topic, sizeof(topic), "bms2mqtt/%s/state", device);
    const char *p = rec_last(&s->rec, from, topic);
    if (!p)
        fail_msg("no state of %s", device);
    return json_loads(p, 0, NULL);
}

/* Whether this build embeds Victron's attributes.csv (false: the overlay's core set alone, as
 * in a build from the source tree without ../shared, such as the Debian package's). */
static bool full_table(void)
{
    struct victron_table *t;
    char err[256];

    assert_int_equal(victron_table_builtin(&(struct victron_load_opts){0}, &t, err, sizeof(err)),
                     0);
    bool full = t->from_csv;
    victron_table_free(t);
    return full;
}

/* One scan, then polls of at most 8 requests (the first reads every block); every device
 * found is published, the GX's serial as text, nothing reads 65535. With the core set alone
 * the table has no platform service (7 devices), and it knows no register between its own, so
 * it cannot read across them: one block per run of known registers, 27 in all. */
static void test_gx_polls_in_eight_requests(void **state)
{
    static struct stack s;
    const bool full = full_table();
    const json_int_t most = full ? 8 : 27;

    (void)state;
    stack_up(&s, "");
    stack_run(&s, 12);
    json_t *gx = state_of(&s, 0, "gx");
    assert_int_equal(json_integer_value(json_object_get(gx, "devices")), full ? 8 : 7);
    assert_true(json_integer_value(json_object_get(gx, "requests")) <= most);
    assert_true(json_integer_value(json_object_get(gx, "scan_requests")) > 100);
    json_decref(gx);
    /* Each poll's request count, from every GX state: the first reads every block. */
    size_t polls = 0;
    for (size_t i = 0; i < s.rec.n; i++)
        if (strcmp(s.rec.topic[i], "bms2mqtt/gx/state") == 0) {
            json_t *j = json_loads(s.rec.payload[i], 0, NULL);
            json_int_t n = json_integer_value(json_object_get(j, "requests"));
            if (polls++ == 0)
                assert_true(n >= 8 && n <= (full ? 20 : most));
            else
                assert_true(n >= 1 && n <= most);
            json_decref(j);
        }
    assert_int_equal(polls, 12);
    json_t *sys = state_of(&s, 0, "gx_100_system");
    assert_string_equal(json_string_value(json_object_get(sys, "serial")), "c0619ab1f2e3");
    json_decref(sys);
    const char *devs[] = {"gx_227_vebus", "gx_225_battery", "gx_226_solarcharger", "gx_30_grid"};
    for (size_t k = 0; k < 4; k++) {
        json_t *st = state_of(&s, 0, devs[k]);
        const char *key;
        json_t *v;
        json_object_foreach(st, key, v)
        {
            if (json_is_number(v) && json_number_value(v) == 65535)
                fail_msg("%s %s reads 65535", devs[k], key);
        }
        json_decref(st);
    }
    assert_string_equal(rec_last(&s.rec, 0, "bms2mqtt/gx_227_vebus/availability"), "online");
    stack_down(&s);
}

/* A device that answers 0x0A after it answered is offline at once; it comes back. */
static void test_gx_device_away_is_offline(void **state)
{
    static struct stack s;
    const char *why = NULL;
    char night[] = "night", on[] = "on", off[] = "off";
    char *argv_on[] = {night, on}, *argv_off[] = {night, off};

    (void)state;
    stack_up(&s, "    units: [100, 226]\n");
    stack_run(&s, 2);
    assert_string_equal(rec_last(&s.rec, 0, "bms2mqtt/gx_226_solarcharger/availability"), "online");
    size_t from = s.rec.n;
    sim_proto_victron_gx.command(2, argv_on, sim_out, &why);
    stack_run(&s, 1);
    assert_string_equal(rec_last(&s.rec, from, "bms2mqtt/gx_226_solarcharger/availability"),
                        "offline");
    assert_null(rec_last(&s.rec, from, "bms2mqtt/gx_100_system/availability"));
    from = s.rec.n;
    sim_proto_victron_gx.command(2, argv_off, sim_out, &why);
    stack_run(&s, 1);
    assert_string_equal(rec_last(&s.rec, from, "bms2mqtt/gx_226_solarcharger/availability"),
                        "online");
    stack_down(&s);
}

/* The state of a string reading is its text; an enum code the table does not know, given as
 * -(code + 1), is "unknown (code)". */
static void test_state_texts_and_unknown_codes(void **state)
{
    static const char *const opts[] = {"Open", "Closed", NULL};
    static const uint16_t codes[] = {0, 1};
    const struct reading_def defs[] = {
        {"name", "Name", Q_TEXT, SRC_STRING, 0, 0, 0, 1, 0, NULL, NULL, NULL, NULL, 0, 8},
        {"relay", "Relay", Q_ENUM, SRC_U16, 8, 0, 0, 1, 0, NULL, opts, codes},
    };
    struct ha_state *st = ha_state_new(defs, 2);
    double v[2] = {NAN, 1};

    (void)state;
    assert_string_equal(ha_state_format(st, v), "{\"name\":null,\"relay\":\"Closed\"}");
    assert_int_equal(ha_state_set_text(st, 0, "MultiPlus"), 0);
    v[1] = -(7.0 + 1);
    assert_string_equal(ha_state_format(st, v),
                        "{\"name\":\"MultiPlus\",\"relay\":\"unknown (7)\"}");
    v[1] = NAN;
    assert_string_equal(ha_state_format(st, v), "{\"name\":\"MultiPlus\",\"relay\":null}");
    ha_state_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gx_polls_in_eight_requests),
        cmocka_unit_test(test_gx_device_away_is_offline),
        cmocka_unit_test(test_state_texts_and_unknown_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
