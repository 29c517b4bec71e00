/* SPDX-License-Identifier: MIT */
/* test_outputs.c - the outputs beyond MQTT: JSON lines, metrics, the state document, the status
 * page, the snapshot between threads, the listening address and the config keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "api_state.h"
#include "config.h"
#include "device.h"
#include "driver.h"
#include "http_addr.h"
#include "jsonl.h"
#include "link.h"
#include "metrics.h"
#include "outjson.h"
#include "snapshot.h"
#include "status_page.h"
#include "textbuf.h"

static const char *const modes[] = {"idle", "charging", NULL};

/* A small readings table: what the renderers must handle. */
static const struct reading_def defs[] = {
    {"pack_voltage", "Pack voltage", Q_VOLTAGE, SRC_DERIVED, 0, 0, 2},
    {"pack_current", "Pack current", Q_CURRENT, SRC_DERIVED, 0, 0, 2},
    {"soc", "State of charge", Q_SOC, SRC_DERIVED, 0, 0, 0},
    {"cell_01_voltage", "Cell 1 voltage", Q_VOLTAGE, SRC_DERIVED, 0, 0, 3},
    {"cell_02_voltage", "Cell 2 voltage", Q_VOLTAGE, SRC_DERIVED, 0, 0, 3},
    {"cell_03_voltage", "Cell 3 voltage", Q_VOLTAGE, SRC_DERIVED, 0, 0, 3},
    {"cell_voltage_delta_mv", "Cell voltage delta", Q_VOLTAGE_MV, SRC_DERIVED, 0, 0, 0},
    {"energy_charged_kwh", "Energy charged", Q_ENERGY, SRC_DERIVED, 0, 0, 3},
    {"cell_count", "Cell count", Q_NUMBER, SRC_DERIVED, 0, 0, 0},
    {"status", "Status", Q_ENUM, SRC_DERIVED, 0, 0, 0, 0, 0, NULL, modes},
    {"warning_cell_ov", "Cell overvoltage warning", Q_PROBLEM, SRC_DERIVED},
    {"charge_voltage_limit", "Charge voltage limit", Q_VOLTAGE, SRC_DERIVED, 0, 0, 2},
};
#define N_DEFS (sizeof(defs) / sizeof(defs[0]))
enum { I_V, I_A, I_SOC, I_C1, I_C2, I_C3, I_DELTA, I_E, I_CC, I_ST, I_W, I_LIM };

static const struct reading_def meter_defs[] = {
    {"ac_power", "AC power", Q_POWER, SRC_DERIVED, 0, 0, 0},
};

static const struct driver batt_driver = {.name = "fakebms", .kind = DEVICE_BATTERY};
static const struct driver meter_driver = {.name = "fakemeter", .kind = DEVICE_METER};

struct fixture {
    struct config_bus bus;
    struct link link;
    struct device pack, meter;
    struct snap s;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->bus.name = "bus1";
    snprintf(f->link.port, sizeof(f->link.port), "/dev/ttyUSB0");
    f->pack = (struct device){.name = "pack1",
                              .defs = defs,
                              .n_defs = N_DEFS,
                              .driver = &batt_driver,
                              .bus = &f->bus,
                              .link = &f->link};
    f->meter = (struct device){.name = "meter<1>",
                               .defs = meter_defs,
                               .n_defs = 1,
                               .driver = &meter_driver,
                               .bus = &f->bus,
                               .link = &f->link};
    snap_init(&f->s);
    assert_int_equal(snap_add(&f->s, &f->pack), 0);
    assert_int_equal(snap_add(&f->s, &f->meter), 1);
    struct snap_dev *d = &f->s.dev[0];
    double v[N_DEFS] = {
        [I_V] = 9.901, [I_A] = -1.234, [I_SOC] = 55.4, [I_C1] = 3.3, [I_C2] = 3.301, [I_C3] = 3.302,
        [I_DELTA] = 2, [I_E] = 1.5,    [I_CC] = 3,     [I_ST] = 1,   [I_W] = 0,      [I_LIM] = NAN};
    memcpy(d->values, v, sizeof(v));
    d->has_values = true;
    d->avail = DEVICE_ONLINE;
    d->polls = 7;
    d->failed[RESULT_TIMEOUT] = 2;
    d->last_good_unix = 1714564800.25;
    d->last_good_mono = 100;
    snprintf(d->id.model, sizeof(d->id.model), "M<x>");
    f->s.dev[1].avail = DEVICE_OFFLINE; /* never answered */
    f->s.mqtt_connected = true;
    f->s.published = 42;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    snap_free(&f->s);
    free(f);
    return 0;
}

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j)
        fail_msg("not JSON (%s at %d): %s", e.text, e.position, text);
    return j;
}

/* --- text ------------------------------------------------------------------------------- */

static void test_json_strings_and_numbers(void **state)
{
    struct textbuf t;
    (void)state;
    tb_init(&t);
    tb_json_string(&t, "a\"b\\c\n\x01é");
    tb_puts(&t, " ");
    tb_json_number(&t, 53.10, 2);
    tb_puts(&t, " ");
    tb_json_number(&t, 53.0, 2);
    tb_puts(&t, " ");
    tb_json_number(&t, NAN, 2);
    tb_puts(&t, " ");
    tb_json_number(&t, -0.0001, 2);
    assert_string_equal(t.buf, "\"a\\\"b\\\\c\\n\\u0001é\" 53.1 53 null 0");
    tb_free(&t);
}

static void test_reading_values_as_json(void **state)
{
    struct textbuf t;
    (void)state;
    tb_init(&t);
    outjson_value(&t, &defs[I_V], 9.9049);
    tb_puts(&t, ",");
    outjson_value(&t, &defs[I_ST], 1);
    tb_puts(&t, ",");
    outjson_value(&t, &defs[I_ST], 7); /* a code no option has */
    tb_puts(&t, ",");
    outjson_value(&t, &defs[I_W], 1);
    tb_puts(&t, ",");
    outjson_value(&t, &defs[I_LIM], NAN);
    assert_string_equal(t.buf, "9.9,\"charging\",null,1,null");
    tb_free(&t);
}

/* --- JSON lines ---------------------------------------------------------------------------- */

static void test_jsonl_line_of_a_good_poll(void **state)
{
    struct fixture *f = *state;
    struct textbuf t;
    tb_init(&t);
    jsonl_format(&t, &f->s.dev[0], 1714564800.25, RESULT_OK, f->s.dev[0].values);
    assert_true(tb_ok(&t));
    assert_int_equal(t.buf[t.len - 1], '\n');
    assert_null(memchr(t.buf, '\n', t.len - 1)); /* one line */
    json_t *j = parse(t.buf);
    assert_string_equal(json_string_value(json_object_get(j, "time")), "2024-05-01T12:00:00.250Z");
    assert_true(fabs(json_number_value(json_object_get(j, "unix")) - 1714564800.25) < 1e-6);
    assert_string_equal(json_string_value(json_object_get(j, "device")), "pack1");
    assert_string_equal(json_string_value(json_object_get(j, "bus")), "bus1");
    assert_string_equal(json_string_value(json_object_get(j, "protocol")), "fakebms");
    assert_string_equal(json_string_value(json_object_get(j, "availability")), "online");
    assert_string_equal(json_string_value(json_object_get(j, "poll")), "ok");
    json_t *r = json_object_get(j, "readings");
    assert_int_equal(json_object_size(r), N_DEFS);
    json_t *v = json_object_get(r, "pack_voltage");
    assert_true(fabs(json_number_value(json_object_get(v, "value")) - 9.9) < 1e-9);
    assert_string_equal(json_string_value(json_object_get(v, "unit")), "V");
    /* Unknown is null, never 0; a reading without a unit has unit null. */
    assert_true(json_is_null(json_object_get(json_object_get(r, "charge_voltage_limit"), "value")));
    assert_true(json_is_null(json_object_get(json_object_get(r, "cell_count"), "unit")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "status"), "value")),
                        "charging");
    json_decref(j);
    tb_free(&t);
}

static void test_jsonl_line_of_a_failed_poll_has_every_reading_null(void **state)
{
    struct fixture *f = *state;
    struct textbuf t;
    const char *key;
    json_t *v;
    tb_init(&t);
    jsonl_format(&t, &f->s.dev[0], 1714564800, RESULT_TIMEOUT, NULL);
    json_t *j = parse(t.buf);
    assert_string_equal(json_string_value(json_object_get(j, "poll")), "timeout");
    json_object_foreach(json_object_get(j, "readings"), key, v)
    {
        assert_true(json_is_null(json_object_get(v, "value")));
    }
    json_decref(j);
    tb_free(&t);
}

static char *read_all(const char *path)
{
    FILE *fp = fopen(path, "r");
    static char buf[65536];
    size_t n = fp ? fread(buf, 1, sizeof(buf) - 1, fp) : 0;
    if (fp)
        fclose(fp);
    buf[n] = '\0';
    return buf;
}

static void test_jsonl_file_is_appended_line_by_line(void **state)
{
    char path[] = "/tmp/test_outputs_XXXXXX", err[200];
    int fd = mkstemp(path);
    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "old\n", 4), 4);
    close(fd);
    struct jsonl *j = jsonl_open(path, true, err, sizeof(err));
    assert_non_null(j);
    jsonl_write(j, "{\"a\":1}\n", 8);
    jsonl_write(j, "{\"a\":2}\n", 8);
    jsonl_close(j);
    assert_string_equal(read_all(path), "old\n{\"a\":1}\n{\"a\":2}\n");
    unlink(path);
    assert_null(jsonl_open("/nonexistent-dir/x.jsonl", true, err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent-dir/x.jsonl: No such file or directory"));
}

static void test_jsonl_write_errors_drop_lines_and_go_on(void **state)
{
    char err[200];
    (void)state;
    struct jsonl *j = jsonl_open("/dev/full", true, err, sizeof(err));
    assert_non_null(j);
    for (int i = 0; i < 5; i++)
        jsonl_write(j, "{}\n", 3);
    assert_int_equal(jsonl_dropped(j), 5);
    jsonl_close(j);
}

/* A file that takes only part of a line (here: the file size limit, as a full disk would)
 * keeps whole lines only. */
static void test_jsonl_half_line_is_cut_off(void **state)
{
    char path[] = "/tmp/test_outputs_XXXXXX", err[200], line[61];
    struct rlimit saved, small;
    int fd = mkstemp(path);
    (void)state;
    assert_true(fd >= 0);
    close(fd);
    memset(line, 'x', 59);
    line[59] = '\n';
    line[60] = '\0';
    signal(SIGXFSZ, SIG_IGN);
    struct jsonl *j = jsonl_open(path, true, err, sizeof(err));
    assert_non_null(j);
    getrlimit(RLIMIT_FSIZE, &saved);
    small = saved;
    small.rlim_cur = 100;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    jsonl_write(j, line, 60); /* fits */
    jsonl_write(j, line, 60); /* 40 bytes would fit: cut off again */
    setrlimit(RLIMIT_FSIZE, &saved);
    assert_int_equal(jsonl_dropped(j), 1);
    jsonl_write(j, "{}\n", 3);
    jsonl_close(j);
    char want[80];
    snprintf(want, sizeof(want), "%s{}\n", line);
    assert_string_equal(read_all(path), want);
    unlink(path);
}

/* A pipe nobody reads any more (EPIPE), and one that is full: lines are dropped, the writer
 * never blocks; a long line the pipe takes in part is finished before the next. */
static void test_jsonl_pipes_never_block(void **state)
{
    int p[2], saved = dup(STDOUT_FILENO);
    char err[200], *big = malloc(200000);
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    memset(big, 'x', 200000);
    big[199999] = '\n';

    assert_int_equal(pipe(p), 0);
    dup2(p[1], STDOUT_FILENO);
    close(p[1]);
    struct jsonl *j = jsonl_open("-", true, err, sizeof(err));
    assert_non_null(j);
    jsonl_write(j, big, 200000); /* fills the pipe: the rest is kept */
    jsonl_write(j, "{}\n", 3);   /* waits behind it: dropped */
    assert_int_equal(jsonl_dropped(j), 1);
    /* The reader takes everything: the rest goes out first, then new lines. */
    size_t got = 0;
    char *in = malloc(300000);
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    for (int round = 0; round < 100 && got < 200003; round++) {
        ssize_t r;
        while ((r = read(p[0], in + got, 300000 - got)) > 0)
            got += (size_t)r;
        jsonl_write(j, "{}\n", 3);
    }
    assert_true(got >= 200003);
    assert_memory_equal(in, big, 200000);
    assert_memory_equal(in + 200000, "{}\n", 3);
    close(p[0]); /* the reader is gone */
    unsigned long before = jsonl_dropped(j);
    jsonl_write(j, "{}\n", 3);
    assert_int_equal(jsonl_dropped(j), before + 1);
    jsonl_close(j);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    free(in);
    free(big);
}

/* --- metrics ------------------------------------------------------------------------------ */

static void check_name(const struct reading_def *d, const char *name, const char *index,
                       bool counter, double scale)
{
    struct metric_name m;
    assert_true(metrics_reading(d, &m));
    assert_string_equal(m.name, name);
    assert_string_equal(m.index, index);
    assert_int_equal(m.counter, counter);
    assert_true(fabs(m.scale - scale) < 1e-12);
}

static void test_metric_names_follow_prometheus_conventions(void **state)
{
    (void)state;
    check_name(&defs[I_V], "bms2mqtt_pack_voltage_volts", "", false, 1);
    check_name(&defs[I_A], "bms2mqtt_pack_current_amperes", "", false, 1);
    check_name(&defs[I_SOC], "bms2mqtt_soc_ratio", "", false, 0.01);
    check_name(&defs[I_C1], "bms2mqtt_cell_voltage_volts", "1", false, 1);
    check_name(&defs[I_DELTA], "bms2mqtt_cell_voltage_delta_volts", "", false, 0.001);
    check_name(&defs[I_E], "bms2mqtt_energy_charged_joules_total", "", true, 3.6e6);
    check_name(&defs[I_CC], "bms2mqtt_cell_count_value", "", false, 1);
    const struct reading_def temp = {"temperature_06", "T6", Q_TEMPERATURE, SRC_DERIVED};
    check_name(&temp, "bms2mqtt_temperature_celsius", "6", false, 1);
    const struct reading_def ah = {"remaining_ah", "Remaining", Q_CHARGE, SRC_DERIVED};
    check_name(&ah, "bms2mqtt_remaining_amperehours", "", false, 1);
    const struct reading_def cycles = {"cycle_count", "Cycles", Q_COUNT, SRC_DERIVED};
    check_name(&cycles, "bms2mqtt_cycle_count_total", "", true, 1);
    const struct reading_def text = {"serial", "Serial", Q_TEXT, SRC_STRING};
    struct metric_name m;
    assert_false(metrics_reading(&text, &m));
}

/* Every family once, its samples together; the names as check_name() says. */
static void check_exposition(const char *text)
{
    char seen[64][160];
    size_t n_seen = 0;
    char current[160] = "";

    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        char name[160];
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (strncmp(line, "# TYPE ", 7) == 0) {
            sscanf(line + 7, "%159s", name);
            for (size_t k = 0; k < n_seen; k++)
                assert_string_not_equal(seen[k], name);
            assert_true(n_seen < 64);
            snprintf(seen[n_seen++], sizeof(seen[0]), "%s", name);
            snprintf(current, sizeof(current), "%s", name);
        } else if (line[0] != '#') {
            size_t nl = strcspn(line, "{ ");
            snprintf(name, sizeof(name), "%.*s", (int)nl, line);
            assert_string_equal(name, current);
        }
        line += len + (end ? 1 : 0);
    }
}

static void test_metrics_leave_unknown_and_offline_readings_out(void **state)
{
    struct fixture *f = *state;
    struct textbuf t;
    tb_init(&t);
    metrics_render(&t, &f->s, "9.9");
    assert_true(tb_ok(&t));
    check_exposition(t.buf);
    const char *lbl = "{device=\"pack1\",bus=\"bus1\",protocol=\"fakebms\"";
    char want[300];
    snprintf(want, sizeof(want), "bms2mqtt_pack_voltage_volts%s} 9.9\n", lbl);
    assert_non_null(strstr(t.buf, want));
    snprintf(want, sizeof(want), "bms2mqtt_cell_voltage_volts%s,index=\"2\"} 3.301\n", lbl);
    assert_non_null(strstr(t.buf, want));
    snprintf(want, sizeof(want), "bms2mqtt_soc_ratio%s} 0.55\n", lbl);
    assert_non_null(strstr(t.buf, want));
    snprintf(want, sizeof(want), "bms2mqtt_status%s,state=\"charging\"} 1\n", lbl);
    assert_non_null(strstr(t.buf, want));
    snprintf(want, sizeof(want), "bms2mqtt_energy_charged_joules_total%s} 5400000\n", lbl);
    assert_non_null(strstr(t.buf, want));
    snprintf(want, sizeof(want), "bms2mqtt_poll_failures_total%s,cause=\"timeout\"} 2\n", lbl);
    assert_non_null(strstr(t.buf, want));
    assert_non_null(strstr(t.buf, "bms2mqtt_mqtt_connected 1\n"));
    assert_non_null(strstr(t.buf, "bms2mqtt_mqtt_messages_published_total 42\n"));
    assert_non_null(strstr(t.buf, "bms2mqtt_build_info{version=\"9.9\"} 1\n"));
    assert_non_null(
        strstr(t.buf, "bms2mqtt_stray_bytes_total{bus=\"bus1\",port=\"/dev/ttyUSB0\"} 0\n"));
    /* Unknown: no sample at all (not 0); the offline meter's readings neither. */
    assert_null(strstr(t.buf, "charge_voltage_limit"));
    assert_null(strstr(t.buf, "bms2mqtt_ac_power_watts"));
    assert_non_null(strstr(t.buf, "bms2mqtt_device_up{device=\"meter<1>\",bus=\"bus1\","
                                  "protocol=\"fakemeter\"} 0\n"));
    tb_free(&t);
}

/* --- the state document and the page ----------------------------------------------------- */

static void test_state_document(void **state)
{
    struct fixture *f = *state;
    struct textbuf t;
    tb_init(&t);
    api_state_render(&t, &f->s, "9.9", 1714564802.25, 102);
    json_t *j = parse(t.buf);
    json_t *devs = json_object_get(j, "devices");
    assert_int_equal(json_array_size(devs), 2);
    json_t *p = json_array_get(devs, 0);
    assert_string_equal(json_string_value(json_object_get(p, "availability")), "online");
    json_t *good = json_object_get(p, "last_good_poll");
    assert_true(fabs(json_number_value(json_object_get(good, "age_s")) - 2) < 1e-9);
    json_t *r = json_object_get(p, "readings");
    assert_true(json_is_null(json_object_get(json_object_get(r, "charge_voltage_limit"), "value")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r, "cell_01_voltage"), "unit")), "V");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(p, "failed_polls"), "timeout")), 2);
    json_t *m = json_array_get(devs, 1);
    assert_string_equal(json_string_value(json_object_get(m, "availability")), "offline");
    assert_true(json_is_null(json_object_get(m, "last_good_poll")));
    assert_true(json_is_null(
        json_object_get(json_object_get(json_object_get(m, "readings"), "ac_power"), "value")));
    assert_true(json_is_true(json_object_get(json_object_get(j, "mqtt"), "connected")));
    json_decref(j);
    tb_free(&t);
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void test_status_page_draws_a_bar_per_cell_only_where_there_are_cells(void **state)
{
    struct fixture *f = *state;
    struct textbuf t;
    tb_init(&t);
    status_page_render(&t, &f->s, "9.9", 1714564802.25, 102);
    assert_true(tb_ok(&t));
    assert_int_equal(count(t.buf, "<rect class=\"cell"), 3);
    assert_int_equal(count(t.buf, "<svg"), 1); /* the meter has no cells */
    assert_int_equal(count(t.buf, "<section class=\"device"), 2);
    assert_non_null(strstr(t.buf, "<span class=\"avail online\">online</span>"));
    assert_non_null(strstr(t.buf, "<span class=\"avail offline\">offline</span>"));
    assert_non_null(strstr(t.buf, "meter&lt;1&gt;")); /* names and identities escaped */
    assert_non_null(strstr(t.buf, "M&lt;x&gt;"));
    assert_null(strstr(t.buf, "<script"));
    assert_null(strstr(t.buf, "src="));
    assert_non_null(strstr(t.buf, "2.0 s</span> ago"));
    tb_free(&t);
}

/* --- the snapshot between threads --------------------------------------------------------- */

static void test_snapshot_copies_what_changed(void **state)
{
    struct fixture *f = *state;
    struct snap_shared sh;
    struct snap mine;
    assert_int_equal(snap_shared_init(&sh), 0);
    snap_init(&mine);
    assert_int_equal(snap_publish(&sh, &f->s), 0);
    assert_false(f->s.dev[0].dirty);
    assert_int_equal(snap_take(&sh, &mine), 0);
    assert_int_equal(mine.n, 2);
    assert_true(mine.dev[0].values != f->s.dev[0].values);
    assert_true(mine.dev[0].values[I_C2] == 3.301);
    /* A change reaches the copy only once published. */
    f->s.dev[0].values[I_C2] = 3.2;
    f->s.dev[0].dirty = true;
    assert_int_equal(snap_take(&sh, &mine), 0);
    assert_true(mine.dev[0].values[I_C2] == 3.301);
    assert_int_equal(snap_publish(&sh, &f->s), 0);
    assert_int_equal(snap_take(&sh, &mine), 0);
    assert_true(mine.dev[0].values[I_C2] == 3.2);
    snap_free(&mine);
    snap_shared_destroy(&sh);
}

/* --- the listening address, and the keys ------------------------------------------------- */

static void test_listen_addresses(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len;
    const char *why;
    static const char *const good[] = {"127.0.0.1:9108", "0.0.0.0:1", "[::1]:9108", "[::]:65535"};
    static const char *const bad[] = {
        "localhost:9108", "127.0.0.1", "127.0.0.1:0",  "127.0.0.1:65536", "::1:9108",    "[::1]",
        "[nonsense]:1",   ":9108",     "127.0.0.1:9x", "[::1]9108",       "1.2.3.4.5:80"};
    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(http_addr_parse(good[i], &ss, &len, &why), 0);
    assert_int_equal(http_addr_parse("[::1]:9108", &ss, &len, &why), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 9108);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        if (http_addr_parse(bad[i], &ss, &len, &why) == 0)
            fail_msg("'%s' was accepted", bad[i]);
        assert_non_null(why);
    }
}

static const char base_cfg[] = "bus:\n"
                               "  mode: modbus_per_pack\n"
                               "  transport: mock\n"
                               "packs:\n"
                               "  - name: p1\n";

static void test_config_keys(void **state)
{
    struct config cfg;
    char err[512], text[512];
    (void)state;
    snprintf(text, sizeof(text), "%sjsonl: /var/log/b.jsonl\nhttp:\n  listen: \"[::1]:9108\"\n",
             base_cfg);
    assert_int_equal(config_load_buffer(&cfg, "c.yaml", text, strlen(text), err, sizeof(err)), 0);
    assert_string_equal(cfg.jsonl, "/var/log/b.jsonl");
    assert_string_equal(cfg.http_listen, "[::1]:9108");
    config_free(&cfg);
    assert_int_equal(
        config_load_buffer(&cfg, "c.yaml", base_cfg, strlen(base_cfg), err, sizeof(err)), 0);
    assert_null(cfg.jsonl);
    assert_null(cfg.http_listen);
    config_free(&cfg);
    snprintf(text, sizeof(text), "%shttp:\n  listen: 127.0.0.1:99999\n", base_cfg);
    assert_int_equal(config_load_buffer(&cfg, "c.yaml", text, strlen(text), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "c.yaml:7:11: http.listen '127.0.0.1:99999' port must be"));
    snprintf(text, sizeof(text), "%shttp:\n  lisen: 127.0.0.1:9108\n", base_cfg);
    assert_int_equal(config_load_buffer(&cfg, "c.yaml", text, strlen(text), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "c.yaml:7:3: unknown key 'lisen'"));
    assert_non_null(strstr(err, "did you mean 'listen'"));
    snprintf(text, sizeof(text), "%shttp:\n", base_cfg);
    assert_int_equal(config_load_buffer(&cfg, "c.yaml", text, strlen(text), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "c.yaml:6:1: missing required key 'listen'"));
    snprintf(text, sizeof(text), "%sjsonl: \"\"\n", base_cfg);
    assert_int_equal(config_load_buffer(&cfg, "c.yaml", text, strlen(text), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "c.yaml:6:8: jsonl must not be empty"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_strings_and_numbers),
        cmocka_unit_test(test_reading_values_as_json),
        cmocka_unit_test_setup_teardown(test_jsonl_line_of_a_good_poll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jsonl_line_of_a_failed_poll_has_every_reading_null,
                                        setup, teardown),
        cmocka_unit_test(test_jsonl_file_is_appended_line_by_line),
        cmocka_unit_test(test_jsonl_write_errors_drop_lines_and_go_on),
        cmocka_unit_test(test_jsonl_half_line_is_cut_off),
        cmocka_unit_test(test_jsonl_pipes_never_block),
        cmocka_unit_test(test_metric_names_follow_prometheus_conventions),
        cmocka_unit_test_setup_teardown(test_metrics_leave_unknown_and_offline_readings_out, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_state_document, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_status_page_draws_a_bar_per_cell_only_where_there_are_cells, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_copies_what_changed, setup, teardown),
        cmocka_unit_test(test_listen_addresses),
        cmocka_unit_test(test_config_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
