/* SPDX-License-Identifier: MIT */
/* test_ports.c - `port` values and line speeds: the loader and the links agree on them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <modbus/modbus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "config.h"
#include "link.h"
#include "url.h"

/* ---- url_parse ---------------------------------------------------------------------------- */

static void expect_url(const char *s, enum url_kind kind, const char *host, int port)
{
    struct url u;
    const char *why = "unset";

    if (url_parse(s, &u, &why) != 0)
        print_error("%s: %s\n", s, why);
    assert_int_equal(url_parse(s, &u, &why), 0);
    assert_int_equal(u.kind, kind);
    assert_string_equal(u.host, host);
    assert_int_equal(u.port, port);
    assert_int_equal(url_kind(s), kind);
}

static void expect_bad_url(const char *s, const char *why_expected)
{
    struct url u;
    const char *why = NULL;

    assert_int_equal(url_parse(s, &u, &why), -1);
    assert_non_null(why);
    assert_string_equal(why, why_expected);
    assert_int_equal(url_parse(s, &u, NULL), -1); /* why may be NULL */
}

static void test_url_devices_are_taken_as_they_are(void **state)
{
    (void)state;
    expect_url("/dev/ttyUSB0", URL_DEVICE, "", 0);
    expect_url("/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K-if00-port0", URL_DEVICE, "", 0);
    expect_url("ttyUSB0", URL_DEVICE, "", 0);
    expect_url("./pty://0", URL_DEVICE, "", 0); /* not a scheme: it starts with '.' */
    expect_url("", URL_DEVICE, "", 0);
}

static void test_url_tcp_and_modbus_tcp(void **state)
{
    (void)state;
    expect_url("tcp://192.168.1.50:4196", URL_TCP, "192.168.1.50", 4196);
    expect_url("tcp://bridge.lan:1", URL_TCP, "bridge.lan", 1);
    expect_url("TCP://Bridge_1.lan:65535", URL_TCP, "Bridge_1.lan", 65535);
    expect_url("tcp://[::1]:4196", URL_TCP, "::1", 4196);
    expect_url("tcp://[2001:db8::7]:04196", URL_TCP, "2001:db8::7", 4196);
    expect_url("modbus-tcp://gw.lan", URL_MODBUS_TCP, "gw.lan", URL_MODBUS_TCP_PORT);
    expect_url("modbus-tcp://gw.lan:1502", URL_MODBUS_TCP, "gw.lan", 1502);
    expect_url("Modbus-TCP://[fe80::1%eth0]", URL_MODBUS_TCP, "fe80::1%eth0", 502);
    expect_url("modbus-tcp://[fe80::1%eth0]:503", URL_MODBUS_TCP, "fe80::1%eth0", 503);
}

static void test_url_mistakes_are_named(void **state)
{
    static const char no_port[] = "has a port that is not a number in 1..65535";
    char long_port[300], long_host[300];

    (void)state;
    expect_bad_url("tcp://bridge.lan",
                   "has no port; write tcp://HOST:PORT, the TCP port the bridge listens on");
    expect_bad_url("tcp://bridge.lan:", no_port);
    expect_bad_url("tcp://bridge.lan:0", no_port);
    expect_bad_url("tcp://bridge.lan:65536", no_port);
    expect_bad_url("tcp://bridge.lan:000004196", no_port);
    expect_bad_url("tcp://bridge.lan:+4196", no_port);
    expect_bad_url("tcp://bridge.lan:4196 ", no_port);
    expect_bad_url("tcp://bridge.lan:4196/", no_port);
    expect_bad_url("tcp://[::1]", "has no port; write tcp://HOST:PORT, the TCP port the bridge "
                                  "listens on");
    expect_bad_url("tcp://[::1]4196", "has something after the host that is not ':PORT'");
    expect_bad_url("tcp://", "has no host");
    expect_bad_url("tcp://:4196", "has no host");
    expect_bad_url("modbus-tcp://", "has no host");
    expect_bad_url("modbus-tcp://:502", "has no host");
    expect_bad_url("tcp://a/b:1", "has something after the host that is not ':PORT'");
    expect_bad_url("tcp://bridge\tlan:1", "has a character that cannot be in a host name");
    expect_bad_url("tcp://::1:4196",
                   "has an IPv6 address without brackets; write it as [2001:db8::1]:PORT");
    expect_bad_url("tcp://fe80::1", "has an IPv6 address without brackets; write it as "
                                    "[2001:db8::1]:PORT");
    expect_bad_url("tcp://[::1:4196", "has an IPv6 address without its closing ']'");
    expect_bad_url("tcp://[::1 ]:4196", "has a character that cannot be in an IPv6 address");
    expect_bad_url("tcp://[10.0.0.1]:4196",
                   "has brackets around something that is not an IPv6 address");
    expect_bad_url("serial:///dev/ttyUSB0",
                   "has an unknown URL scheme; the known ones are tcp://HOST:PORT (a raw "
                   "RS-485-to-Ethernet bridge) and modbus-tcp://HOST[:PORT] (a Modbus TCP "
                   "gateway, port 502 by default)");
    memset(long_port, 'x', sizeof long_port);
    long_port[256] = '\0';
    expect_bad_url(long_port, "is longer than 255 characters");
    /* The longest value: its host (247 characters) fits. */
    memcpy(long_port, "tcp://", 6);
    long_port[253] = ':';
    long_port[254] = '1';
    long_port[255] = '\0';
    memset(long_host, 'x', 247);
    long_host[247] = '\0';
    expect_url(long_port, URL_TCP, long_host, 1);
    expect_bad_url(NULL, "is missing");
    assert_int_equal(url_kind(NULL), URL_DEVICE);
    assert_int_equal(url_kind("ftp://x"), URL_DEVICE);
}

/* ---- the links take what the loader accepts, and refuse the rest with its reason --------- */

/* Does the config loader accept `port` as a modbus_per_pack pack's port? */
static bool loader_accepts(const char *port)
{
    char yaml[600], err[512];
    struct config cfg;

    snprintf(yaml, sizeof yaml,
             "bus: {mode: modbus_per_pack, transport: mock}\npacks:\n  - name: p\n    port: '%s'\n",
             port);
    if (config_load_buffer(&cfg, "t.yaml", yaml, strlen(yaml), err, sizeof err) != 0)
        return false;
    config_free(&cfg);
    return true;
}

/* A link for port at baud: a Modbus bus's (modbus) or a raw line's. NULL with err set. */
static struct link *new_link(const char *port, int baud, bool modbus, char *err, size_t len)
{
    struct link_params p = {.port = port, .baud = baud, .timeout_s = 1.0, .modbus = modbus};

    err[0] = '\0';
    return link_new(&p, err, len);
}

static void test_links_agree_with_the_loader_on_ports(void **state)
{
    static const char *const ports[] = {
        "/dev/ttyUSB0",          "tcp://bridge.lan:4196",  "tcp://[::1]:4196",
        "tcp://bridge.lan",      "tcp://bridge.lan:99999", "tcp://:1",
        "modbus-tcp://gw.lan",   "modbus-tcp://[::1]:503", "modbus-tcp://gw.lan:0",
        "udp://bridge.lan:4196", "tcp://::1:4196",         "modbus-tcp://",
    };
    char err[320];

    (void)state;
    for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++) {
        struct url u;
        const char *why = NULL;
        bool ok = url_parse(ports[i], &u, &why) == 0;
        struct link *raw = new_link(ports[i], 9600, false, err, sizeof err);
        char raw_err[320];
        snprintf(raw_err, sizeof raw_err, "%s", err);
        struct link *mb = new_link(ports[i], 9600, true, err, sizeof err);

        assert_int_equal(loader_accepts(ports[i]), ok);
        if (!ok) {
            /* Both kinds of bus refuse it, for the reason the loader gives. */
            assert_null(raw);
            assert_null(mb);
            assert_string_equal(raw_err, why);
            assert_string_equal(err, why);
            continue;
        }
        /* A raw line takes devices and bridges; a Modbus bus takes gateways too. */
        assert_true((raw != NULL) == (u.kind != URL_MODBUS_TCP));
        assert_non_null(mb);
        if (raw)
            assert_string_equal(link_kind_name(raw), u.kind == URL_TCP ? "tcp-bridge" : "serial");
        assert_string_equal(link_kind_name(mb), u.kind == URL_TCP          ? "tcp-bridge"
                                                : u.kind == URL_MODBUS_TCP ? "modbus-tcp"
                                                                           : "modbus-rtu");
        assert_string_equal(mb->port, ports[i]);
        link_free(raw);
        link_free(mb);
    }
}

/* Every termios rate and a few that are none: the loader, the raw serial link and the
 * Modbus link accept the same ones. */
static void test_links_agree_with_the_loader_on_baud_rates(void **state)
{
    static const int rates[] = {
        -9600,   0,       30,      50,      75,      110,     134,     150,     200,
        300,     600,     1200,    1800,    2400,    4800,    9600,    14400,   19200,
        38400,   57600,   115200,  128000,  230400,  460800,  500000,  576000,  921600,
        1000000, 1152000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000, 4000001,
    };
    char err[320];
    size_t accepted = 0;

    (void)state;
    for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
        bool ok = config_baud_supported(rates[i]);
        struct link *raw = new_link("/dev/ttyUSB0", rates[i], false, err, sizeof err);
        struct link *mb = new_link("/dev/ttyUSB0", rates[i], true, err, sizeof err);

        assert_int_equal(link_baud_supported(rates[i]), ok);
        assert_int_equal(raw != NULL, ok);
        assert_int_equal(mb != NULL, ok);
        link_free(raw);
        link_free(mb);
        accepted += ok;
    }
    /* ... and that is the whole table. */
    assert_int_equal(accepted, link_baud_count());
    for (size_t i = 0; i < link_baud_count(); i++) {
        assert_true(config_baud_supported(link_baud_at(i)));
        if (i > 0)
            assert_true(link_baud_at(i) > link_baud_at(i - 1));
    }
    assert_int_equal(link_baud_at(link_baud_count()), 0);
}

/* ---- every rate of the table is really set, by us and by libmodbus --------------------- */

/* A pseudo-terminal: its peer's path in path[], and an fd on that peer to read settings. */
static int open_pty(char *path, size_t size, int *peer)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);

    if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0 || !ptsname(m))
        return -1;
    snprintf(path, size, "%s", ptsname(m));
    *peer = open(path, O_RDWR | O_NOCTTY);
    return *peer < 0 ? -1 : m;
}

static speed_t line_speed(int fd)
{
    struct termios t;

    assert_int_equal(tcgetattr(fd, &t), 0);
    return cfgetospeed(&t);
}

static void test_every_table_rate_is_set_on_a_port(void **state)
{
    char path[128];
    speed_t set[64];
    int peer = -1, m = open_pty(path, sizeof path, &peer);

    (void)state;
    if (m < 0)
        skip();
    assert_true(link_baud_count() <= sizeof set / sizeof set[0]);
    for (size_t i = 0; i < link_baud_count(); i++) {
        int baud = link_baud_at(i);
        char err[320];
        struct link *l = new_link(path, baud, false, err, sizeof err);
        modbus_t *ctx;
        speed_t ours;

        /* The raw link (active, pylontech, lp4_ascii, passive modes)... */
        assert_non_null(l);
        assert_int_equal(link_open(l), RESULT_OK);
        ours = line_speed(peer);
        link_free(l);
        /* ... and libmodbus (modbus_per_pack) set the same speed, not 9600 by default. */
        ctx = modbus_new_rtu(path, baud, 'N', 8, 1);
        assert_non_null(ctx);
        assert_int_equal(modbus_connect(ctx), 0);
        assert_int_equal(line_speed(peer), ours);
        modbus_close(ctx);
        modbus_free(ctx);
        /* A rate either layer did not know would come out as another's speed (libmodbus
         * falls back to 9600): every rate gets a speed of its own. */
        for (size_t j = 0; j < i; j++)
            assert_int_not_equal(set[j], ours);
        set[i] = ours;
        if (baud == 9600)
            assert_int_equal(ours, B9600);
    }
    close(peer);
    close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_devices_are_taken_as_they_are),
        cmocka_unit_test(test_url_tcp_and_modbus_tcp),
        cmocka_unit_test(test_url_mistakes_are_named),
        cmocka_unit_test(test_links_agree_with_the_loader_on_ports),
        cmocka_unit_test(test_links_agree_with_the_loader_on_baud_rates),
        cmocka_unit_test(test_every_table_rate_is_set_on_a_port),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
