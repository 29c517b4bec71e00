/* SPDX-License-Identifier: MIT */
/* test_config_gx.c - a victron_gx bus in the configuration: its keys, defaults and refusals
 * (file:line:column). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "driver.h"

#define HEAD "mqtt:\n  host: localhost\nbuses:\n"
/* Lines 4-6: a GX bus. */
#define GX "  - name: gx\n    mode: victron_gx\n    port: modbus-tcp://192.168.1.20\n"

static int load(struct config *cfg, const char *yaml, char *err, size_t errlen)
{
    return config_load_buffer(cfg, "t.yaml", yaml, strlen(yaml), err, errlen);
}

static void load_ok(struct config *cfg, const char *yaml)
{
    char err[512];
    int rc = load(cfg, yaml, err, sizeof err);

    if (rc != 0)
        print_error("unexpected error: %s\n", err);
    assert_int_equal(rc, 0);
}

static void expect_error(const char *yaml, const char *message)
{
    struct config cfg;
    char err[512];

    assert_int_equal(load(&cfg, yaml, err, sizeof err), -1);
    assert_string_equal(err, message);
}

/* The example, beside a battery bus: the GX is one pack named as its bus. */
static void test_gx_bus_loads_with_every_key(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, HEAD GX "    poll_interval_s: 5\n    units: [100, 225, 227]\n"
                          "    register_table: /opt/attributes.csv\n"
                          "    write:\n      ac_current_max_a: 39\n      dc_current_max_a: 100\n"
                          "      dc_voltage_profile: 16s\n      ac_voltage: 230\n"
                          "  - name: packs\n    mode: lp4v2\n    port: /dev/ttyUSB0\n"
                          "    packs:\n      - {name: p1}\n"
                          "state_file: /var/lib/bms2mqtt/bms2mqtt.json\n");
    assert_int_equal(cfg.n_buses, 2);
    assert_ptr_equal(cfg.buses[0].driver, &victron_gx_driver);
    assert_int_equal(cfg.buses[0].n_packs, 1);
    assert_string_equal(cfg.buses[0].packs[0].name, "gx");
    assert_int_equal(cfg.buses[0].packs[0].address, 100);
    assert_ptr_equal(cfg.buses[0].packs[0].bus, &cfg.buses[0]);
    assert_int_equal(cfg.n_packs, 2);
    assert_string_equal(cfg.packs[1].name, "p1");
    const struct config_gx *gx = &cfg.buses[0].gx;
    assert_int_equal(gx->n_units, 3);
    assert_int_equal(gx->units[2], 227);
    assert_string_equal(gx->register_table, "/opt/attributes.csv");
    assert_true(gx->write);
    assert_true(gx->ac_current_max_a == 39);
    assert_true(gx->dc_current_max_a == 100);
    assert_int_equal(gx->dc_cells, 16);
    assert_true(gx->ac_voltage == 230);
    assert_string_equal(gx->state_dir, "/var/lib/bms2mqtt");
    assert_false(cfg.buses[1].gx.write);
    config_free(&cfg);
}

/* Defaults: scan, read-only, every 5 s; 0 means 1 s; port 502. */
static void test_gx_defaults(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, HEAD GX);
    assert_true(cfg.buses[0].poll_interval_s == 5);
    assert_int_equal(cfg.buses[0].gx.n_units, 0);
    assert_false(cfg.buses[0].gx.write);
    assert_null(cfg.buses[0].gx.register_table);
    assert_null(cfg.buses[0].gx.state_dir);
    config_free(&cfg);
    load_ok(&cfg, HEAD GX "    poll_interval_s: 0\n    write:\n");
    assert_true(cfg.buses[0].poll_interval_s == 1);
    assert_true(cfg.buses[0].gx.write); /* an empty write: soc, mode and switch rails */
    assert_true(cfg.buses[0].gx.ac_current_max_a == 0);
    config_free(&cfg);
    /* The original form too. */
    load_ok(&cfg, "bus:\n  mode: victron_gx\n  port: modbus-tcp://gx.local:5020\n");
    assert_int_equal(cfg.n_packs, 1);
    assert_string_equal(cfg.packs[0].name, "bus");
    config_free(&cfg);
}

static void test_gx_refusals(void **state)
{
    (void)state;
    expect_error(HEAD GX "    units: [100, 0]\n",
                 "t.yaml:7:18: buses[0].units[1] is 0: a GX answers unit 0 as unit 100 (the "
                 "system device); write 100");
    expect_error(HEAD GX "    units: [248]\n",
                 "t.yaml:7:13: buses[0].units[0] must be in 1..247 (a Modbus unit id), not 248");
    expect_error(HEAD GX "    units: [225, 225]\n",
                 "t.yaml:7:18: buses[0].units[1]: unit 225 is listed twice");
    expect_error(HEAD GX "    units: 100\n",
                 "t.yaml:7:12: buses[0].units must be a list of unit ids, e.g. [100, 225, 227], "
                 "not '100'");
    expect_error(HEAD GX "    units: []\n",
                 "t.yaml:7:12: buses[0].units is empty; list unit ids or leave the key out to "
                 "let bms2mqtt scan");
    expect_error(HEAD GX "    write:\n      dc_voltage_profile: 15s\n",
                 "t.yaml:8:27: buses[0].write.dc_voltage_profile must be 4s, 8s or 16s (LiFePO4 "
                 "cells in series), not '15s'");
    expect_error(HEAD GX "    write:\n      ac_voltage: 240\n",
                 "t.yaml:8:19: buses[0].write.ac_voltage must be 120 or 230 (V per phase), not "
                 "'240'");
    expect_error(HEAD GX "    write:\n      ac_current_max_a: 0\n",
                 "t.yaml:8:25: buses[0].write.ac_current_max_a must be above 0 and at most 1000 "
                 "A, not 0");
    expect_error(HEAD GX "    write:\n      dc_current_max_a: lots\n",
                 "t.yaml:8:25: buses[0].write.dc_current_max_a must be a number (A), not 'lots'");
    expect_error(HEAD GX "    write:\n      ac_current_max: 30\n",
                 "t.yaml:8:7: unknown key 'ac_current_max' in buses[0].write (did you mean "
                 "'ac_current_max_a'?)");
    expect_error(HEAD GX "    write:\n      ac_voltage: 230\n      ac_voltage: 120\n",
                 "t.yaml:9:7: duplicate key 'ac_voltage' in buses[0].write (first at line 8)");
    expect_error(HEAD GX "    write: yes\n",
                 "t.yaml:7:12: buses[0].write must be a mapping of rails (ac_current_max_a, "
                 "dc_current_max_a, dc_voltage_profile, ac_voltage), not 'yes'");
    expect_error(HEAD GX "    packs:\n      - {name: p}\n",
                 "t.yaml:7:5: buses[0].packs: a victron_gx bus finds the GX's devices itself; "
                 "remove packs (buses[0].units picks unit ids)");
    expect_error(HEAD "  - name: gx\n    mode: victron_gx\n    port: /dev/ttyUSB0\n",
                 "t.yaml:6:11: buses[0].port '/dev/ttyUSB0': a GX is reached over Modbus TCP: "
                 "give modbus-tcp://HOST[:PORT] (port 502 unless given)");
    expect_error(HEAD "  - name: b\n    mode: lp4v2\n    port: /dev/ttyUSB0\n    units: [1]\n"
                      "    packs: [{name: p}]\n",
                 "t.yaml:7:5: buses[0].units is only used in victron_gx mode (buses[0].mode is "
                 "lp4v2)");
    expect_error(HEAD "  - name: b\n    mode: lp4v2\n    port: /dev/ttyUSB0\n",
                 "t.yaml:4:5: missing required key 'packs' in buses[0]");
    expect_error(HEAD GX "  - name: b\n    mode: lp4v2\n    port: /dev/ttyUSB0\n"
                         "    packs: [{name: gx_227_vebus}]\n",
                 "t.yaml:10:20: pack name 'gx_227_vebus' may be the name of a device of "
                 "victron_gx bus 'gx' (line 4), which are named gx_<unit id>_<service>; rename "
                 "the pack");
    expect_error(HEAD "  - name: b\n    mode: lp4v2\n    port: /dev/ttyUSB0\n"
                      "    packs: [{name: gx}]\n" GX,
                 "t.yaml:8:5: bus name 'gx' of a victron_gx bus is also the name of pack 'gx' "
                 "(line 7); the GX is published under its bus's name: rename one of them");
    expect_error("bus:\n  mode: victron_gx\n  port: modbus-tcp://gx\npacks:\n  - {name: p}\n",
                 "t.yaml:4:1: packs: a victron_gx bus finds the GX's devices itself; remove "
                 "packs (bus.units picks unit ids)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gx_bus_loads_with_every_key),
        cmocka_unit_test(test_gx_defaults),
        cmocka_unit_test(test_gx_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
