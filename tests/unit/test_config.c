/* SPDX-License-Identifier: MIT */
/* test_config.c - config loading: the original format, YAML 1.1 values, every refusal. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

/* The smallest valid head: mock transport needs no serial ports. Lines 1-3. */
#define MOCK_BUS "bus:\n  mode: modbus_per_pack\n  transport: mock\n"

/*
 * The original eg4-battery config as its bring-up checklist shows it, with the indentation
 * the checklist lost put back, and the bus and mqtt sections its load_config() required.
 */
static const char original_example[] = "bus:\n"
                                       "  mode: modbus_per_pack\n"
                                       "  transport: serial\n"
                                       "  baud: 9600\n"
                                       "  read_chunk: 512\n"
                                       "  timeout_s: 1.5\n"
                                       "  poll_interval_s: 10\n"
                                       "mqtt:\n"
                                       "  host: 192.168.1.20\n"
                                       "  port: 1883\n"
                                       "  username: homeassistant\n"
                                       "  password: s3cret\n"
                                       "  discovery_prefix: homeassistant\n"
                                       "packs:\n"
                                       "- name: lifepower4_N\n"
                                       "  address: 0x40\n"
                                       "  port: /dev/serial/by-id/usb-FTDI_...-if00-port0\n"
                                       "  baud: 9600\n"
                                       "cell_count: 16\n";

static int load(struct config *cfg, const char *yaml, char *err, size_t errlen)
{
    return config_load_buffer(cfg, "t.yaml", yaml, strlen(yaml), err, errlen);
}

/* Load `yaml`, which must be accepted; the caller frees *cfg. */
static void load_ok(struct config *cfg, const char *yaml)
{
    char err[512];
    int rc = load(cfg, yaml, err, sizeof err);

    if (rc != 0)
        print_error("unexpected error: %s\n", err);
    assert_int_equal(rc, 0);
    assert_string_equal(err, "");
}

/* Load `yaml`, which must be refused with exactly `message`, leaving the config zeroed. */
static void expect_error(const char *yaml, const char *message)
{
    struct config cfg;
    char err[512];

    memset(&cfg, 0xA5, sizeof cfg); /* "need not be initialised" */
    assert_int_equal(load(&cfg, yaml, err, sizeof err), -1);
    assert_string_equal(err, message);
    assert_null(cfg.path);
    assert_null(cfg.packs);
    assert_null(cfg.mqtt.host);
    assert_int_equal(cfg.n_packs, 0);
}

/* For libyaml's own wording, which we do not control: check the position and our prefix. */
static void expect_error_prefix(const char *yaml, const char *prefix)
{
    struct config cfg;
    char err[512];

    assert_int_equal(load(&cfg, yaml, err, sizeof err), -1);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        print_error("got: %s\n", err);
    assert_true(strncmp(err, prefix, strlen(prefix)) == 0);
}

/* ---- accepted configs ------------------------------------------------------------------- */

static void test_config_loads_original_example_unchanged(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, original_example);
    assert_string_equal(cfg.path, "t.yaml");
    assert_int_equal(cfg.bus.mode, CONFIG_MODE_MODBUS_PER_PACK);
    assert_int_equal(cfg.bus.transport, CONFIG_TRANSPORT_SERIAL);
    assert_null(cfg.bus.port);
    assert_int_equal(cfg.bus.baud, 9600);
    assert_int_equal(cfg.bus.read_chunk, 512);
    assert_true(cfg.bus.timeout_s == 1.5);
    assert_true(cfg.bus.poll_interval_s == 10.0);
    assert_string_equal(cfg.mqtt.host, "192.168.1.20");
    assert_int_equal(cfg.mqtt.port, 1883);
    assert_string_equal(cfg.mqtt.username, "homeassistant");
    assert_string_equal(cfg.mqtt.password, "s3cret");
    assert_string_equal(cfg.mqtt.discovery_prefix, "homeassistant");
    assert_int_equal(cfg.n_packs, 1);
    assert_string_equal(cfg.packs[0].name, "lifepower4_N");
    assert_int_equal(cfg.packs[0].address, 0x40);
    assert_string_equal(cfg.packs[0].port, "/dev/serial/by-id/usb-FTDI_...-if00-port0");
    assert_int_equal(cfg.packs[0].baud, 9600);
    assert_int_equal(cfg.packs[0].line, 15);
    assert_int_equal(cfg.packs[0].column, 9);
    assert_int_equal(cfg.cell_count, 16);
    config_free(&cfg);
}

static void test_config_loads_three_indented_packs_in_file_order(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, "bus:\n"
                  "  mode: modbus_per_pack\n"
                  "packs:\n"
                  "  - name: lifepower4_1\n"
                  "    port: /dev/ttyUSB0\n"
                  "  - name: lifepower4_2\n"
                  "    port: /dev/ttyUSB1\n"
                  "    baud: 19200\n"
                  "  - {name: lifepower4_3, port: /dev/ttyUSB2, address: 0x41}\n");
    assert_int_equal(cfg.n_packs, 3);
    assert_string_equal(cfg.packs[0].name, "lifepower4_1");
    assert_string_equal(cfg.packs[1].name, "lifepower4_2");
    assert_string_equal(cfg.packs[2].name, "lifepower4_3");
    assert_int_equal(cfg.packs[2].address, 0x41);
    assert_int_equal(cfg.packs[1].line, 6);
    assert_int_equal(cfg.packs[1].column, 11);
    assert_int_equal(config_pack_baud(&cfg, &cfg.packs[0]), 9600);
    assert_int_equal(config_pack_baud(&cfg, &cfg.packs[1]), 19200);
    config_free(&cfg);
}

static void test_config_loads_active_and_passive_modes_with_shared_port(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, "bus:\n  mode: active\n  port: /dev/ttyUSB0\n"
                  "packs:\n  - {name: a, address: 1}\n  - {name: b, address: 2}\n");
    assert_int_equal(cfg.bus.mode, CONFIG_MODE_ACTIVE);
    assert_string_equal(cfg.bus.port, "/dev/ttyUSB0");
    assert_null(cfg.packs[0].port);
    config_free(&cfg);
    load_ok(&cfg, "bus:\n  mode: passive\n  port: /dev/ttyUSB0\n  baud: 19200\n"
                  "  read_chunk: 4096\npacks:\n  - name: a\n");
    assert_int_equal(cfg.bus.mode, CONFIG_MODE_PASSIVE);
    assert_int_equal(cfg.bus.read_chunk, 4096);
    config_free(&cfg);
}

static void test_config_defaults_match_header(void **state)
{
    struct config cfg;

    (void)state;
    assert_int_equal(config_defaults(&cfg), 0);
    assert_null(cfg.path);
    assert_int_equal(cfg.bus.mode, CONFIG_MODE_MODBUS_PER_PACK);
    assert_int_equal(cfg.bus.transport, CONFIG_TRANSPORT_SERIAL);
    assert_null(cfg.bus.port);
    assert_int_equal(cfg.bus.baud, 9600);
    assert_int_equal(cfg.bus.read_chunk, 512);
    assert_true(cfg.bus.timeout_s == 1.5);
    assert_true(cfg.bus.poll_interval_s == 10.0);
    assert_int_equal(cfg.bus.offline_after, 3);
    assert_string_equal(cfg.mqtt.host, "localhost");
    assert_int_equal(cfg.mqtt.port, 1883);
    assert_null(cfg.mqtt.username);
    assert_null(cfg.mqtt.password);
    assert_string_equal(cfg.mqtt.discovery_prefix, "homeassistant");
    assert_string_equal(cfg.mqtt.base_topic, "bms2mqtt");
    assert_null(cfg.mqtt.client_id);
    assert_int_equal(cfg.mqtt.keepalive, 60);
    assert_null(cfg.mqtt.tls_ca_file);
    assert_null(cfg.mqtt.tls_cert_file);
    assert_null(cfg.mqtt.tls_key_file);
    assert_false(cfg.mqtt.tls_insecure);
    assert_null(cfg.packs);
    assert_int_equal(cfg.n_packs, 0);
    assert_int_equal(cfg.cell_count, 16);
    config_free(&cfg);
}

static void test_config_minimal_file_gets_every_default(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, MOCK_BUS "packs:\n  - name: p1\n");
    assert_int_equal(cfg.bus.transport, CONFIG_TRANSPORT_MOCK);
    assert_string_equal(cfg.mqtt.host, "localhost");
    assert_int_equal(cfg.mqtt.port, 1883);
    assert_string_equal(cfg.mqtt.base_topic, "bms2mqtt");
    assert_null(cfg.mqtt.client_id);
    assert_int_equal(cfg.bus.offline_after, 3);
    assert_int_equal(cfg.packs[0].address, 0x40);
    assert_null(cfg.packs[0].port);
    assert_int_equal(cfg.packs[0].baud, 0);
    assert_int_equal(config_pack_baud(&cfg, &cfg.packs[0]), 9600);
    config_free(&cfg);
}

static void test_config_loads_every_new_key(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, "bus:\n"
                  "  mode: modbus_per_pack\n"
                  "  transport: mock\n"
                  "  offline_after: 5\n"
                  "mqtt:\n"
                  "  base_topic: home/bms\n"
                  "  client_id: bms2mqtt-garage\n"
                  "  keepalive: 30\n"
                  "  tls_ca_file: /etc/ssl/ca.pem\n"
                  "  tls_cert_file: /etc/bms2mqtt/client.pem\n"
                  "  tls_key_file: /etc/bms2mqtt/client.key\n"
                  "  tls_insecure: yes\n"
                  "packs:\n"
                  "  - name: p1\n");
    assert_int_equal(cfg.bus.offline_after, 5);
    assert_string_equal(cfg.mqtt.base_topic, "home/bms");
    assert_string_equal(cfg.mqtt.client_id, "bms2mqtt-garage");
    assert_int_equal(cfg.mqtt.keepalive, 30);
    assert_string_equal(cfg.mqtt.tls_ca_file, "/etc/ssl/ca.pem");
    assert_string_equal(cfg.mqtt.tls_cert_file, "/etc/bms2mqtt/client.pem");
    assert_string_equal(cfg.mqtt.tls_key_file, "/etc/bms2mqtt/client.key");
    assert_true(cfg.mqtt.tls_insecure);
    assert_int_equal(cfg.mqtt.port, 8883);
    config_free(&cfg);
}

static void test_config_mqtt_port_defaults_to_8883_only_with_tls(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, MOCK_BUS "mqtt:\n  tls_ca_file: ca.pem\n  port: 1884\npacks: [{name: p}]\n");
    assert_int_equal(cfg.mqtt.port, 1884);
    config_free(&cfg);
    load_ok(&cfg, MOCK_BUS "mqtt:\n  port: 1883\npacks: [{name: p}]\n");
    assert_int_equal(cfg.mqtt.port, 1883);
    config_free(&cfg);
}

static void test_config_hex_address_parses(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, MOCK_BUS "packs:\n  - name: p1\n    address: 0x41\n");
    assert_int_equal(cfg.packs[0].address, 0x41);
    config_free(&cfg);
}

static int address_of(const char *literal)
{
    char yaml[256], err[512];
    struct config cfg;
    int address;

    snprintf(yaml, sizeof yaml, MOCK_BUS "packs:\n  - name: p1\n    address: %s\n", literal);
    if (load(&cfg, yaml, err, sizeof err) != 0) {
        print_error("%s: %s\n", literal, err);
        return -1;
    }
    address = cfg.packs[0].address;
    config_free(&cfg);
    return address;
}

static void test_config_integers_follow_yaml_1_1(void **state)
{
    (void)state;
    assert_int_equal(address_of("64"), 64);
    assert_int_equal(address_of("+64"), 64);
    assert_int_equal(address_of("0x4a"), 0x4A);
    assert_int_equal(address_of("0X4A"), 0x4A);
    assert_int_equal(address_of("0o17"), 15);
    assert_int_equal(address_of("017"), 15);
    assert_int_equal(address_of("0b101"), 5);
    assert_int_equal(address_of("1_0"), 10);
    assert_int_equal(address_of("0x_4_0"), 0x40);
    assert_int_equal(address_of("\"0x40\""), 0x40);
    assert_int_equal(address_of("'12'"), 12);
}

static void test_config_leading_zero_with_nine_is_not_an_integer(void **state)
{
    (void)state;
    expect_error(MOCK_BUS "packs:\n  - name: p1\n    address: 09\n",
                 "t.yaml:6:14: packs[0].address must be an integer, not '09' (a leading 0 makes "
                 "YAML read it as octal)");
}

static void test_config_seconds_accept_integers_and_floats(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, "bus:\n  mode: modbus_per_pack\n  transport: mock\n  timeout_s: 2\n"
                  "  poll_interval_s: 0\npacks: [{name: p}]\n");
    assert_true(cfg.bus.timeout_s == 2.0);
    assert_true(cfg.bus.poll_interval_s == 0.0);
    config_free(&cfg);
    load_ok(&cfg, "bus:\n  mode: modbus_per_pack\n  transport: mock\n  timeout_s: .5\n"
                  "  poll_interval_s: 1_0.25\npacks: [{name: p}]\n");
    assert_true(cfg.bus.timeout_s == 0.5);
    assert_true(cfg.bus.poll_interval_s == 10.25);
    config_free(&cfg);
    load_ok(&cfg, "bus:\n  mode: modbus_per_pack\n  transport: mock\n  timeout_s: 2.5e-1\n"
                  "  poll_interval_s: 0x10\npacks: [{name: p}]\n");
    assert_true(cfg.bus.timeout_s == 0.25);
    assert_true(cfg.bus.poll_interval_s == 16.0);
    config_free(&cfg);
}

static void test_config_infinite_timeout_is_refused(void **state)
{
    (void)state;
    expect_error(MOCK_BUS "  timeout_s: .inf\npacks: [{name: p}]\n",
                 "t.yaml:4:14: bus.timeout_s must be a number of seconds, not '.inf'");
}

static void test_config_booleans_accept_yes_no_on_off(void **state)
{
    static const struct {
        const char *word;
        bool value;
    } cases[] = {{"true", true}, {"False", false}, {"YES", true},
                 {"no", false},  {"On", true},     {"off", false}};
    char yaml[256];

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct config cfg;

        snprintf(yaml, sizeof yaml, MOCK_BUS "mqtt:\n  tls_insecure: %s\npacks: [{name: p}]\n",
                 cases[i].word);
        load_ok(&cfg, yaml);
        assert_int_equal(cfg.mqtt.tls_insecure, cases[i].value);
        config_free(&cfg);
    }
    expect_error(MOCK_BUS "mqtt:\n  tls_insecure: maybe\npacks: [{name: p}]\n",
                 "t.yaml:5:17: mqtt.tls_insecure must be true or false, not 'maybe'");
}

static void test_config_null_optional_keys_are_absent(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, MOCK_BUS "  port: ~\n  baud:\n"
                           "mqtt:\n  username: null\n  password: \"\"\n  client_id:\n"
                           "  host: ~\n"
                           "packs:\n  - name: p1\n    port: ''\n    address: ~\n");
    assert_null(cfg.bus.port);
    assert_int_equal(cfg.bus.baud, 9600);
    assert_null(cfg.mqtt.username);
    assert_string_equal(cfg.mqtt.password, "");
    assert_null(cfg.mqtt.client_id);
    assert_string_equal(cfg.mqtt.host, "localhost");
    assert_null(cfg.packs[0].port);
    assert_int_equal(cfg.packs[0].address, 0x40);
    config_free(&cfg);
}

static void test_config_quoted_tilde_is_a_string(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, MOCK_BUS "mqtt:\n  password: \"~\"\npacks: [{name: p}]\n");
    assert_string_equal(cfg.mqtt.password, "~");
    config_free(&cfg);
}

static void test_config_pack_baud_zero_means_bus_baud(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, MOCK_BUS "  baud: 19200\npacks:\n  - {name: p1, baud: 0}\n");
    assert_int_equal(config_pack_baud(&cfg, &cfg.packs[0]), 19200);
    config_free(&cfg);
}

static void test_config_pack_name_of_64_characters_is_accepted(void **state)
{
    char yaml[256];
    struct config cfg;

    (void)state;
    snprintf(yaml, sizeof yaml, MOCK_BUS "packs:\n  - name: %.64s\n",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    load_ok(&cfg, yaml);
    assert_int_equal(strlen(cfg.packs[0].name), 64);
    config_free(&cfg);
}

static void test_config_serial_per_pack_needs_no_port_with_mock_transport(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, MOCK_BUS "packs:\n  - name: p1\n  - name: p2\n");
    assert_int_equal(cfg.n_packs, 2);
    config_free(&cfg);
}

/* ---- refusals, each at its line and column ---------------------------------------------- */

static void test_config_unknown_key_names_line_and_column(void **state)
{
    (void)state;
    expect_error(MOCK_BUS "  colour: red\npacks: [{name: p}]\n",
                 "t.yaml:4:3: unknown key 'colour' in bus");
}

static void test_config_unknown_key_suggests_close_match(void **state)
{
    (void)state;
    expect_error(MOCK_BUS "packs:\n  - name: p1\n    adress: 0x41\n",
                 "t.yaml:6:5: unknown key 'adress' in packs[0] (did you mean 'address'?)");
    expect_error(MOCK_BUS "mqtt:\n  Host: broker\npacks: [{name: p}]\n",
                 "t.yaml:5:3: unknown key 'Host' in mqtt (did you mean 'host'?)");
    expect_error(MOCK_BUS "  timeuot_s: 2\npacks: [{name: p}]\n",
                 "t.yaml:4:3: unknown key 'timeuot_s' in bus (did you mean 'timeout_s'?)");
}

static void test_config_misplaced_key_names_its_section(void **state)
{
    (void)state;
    /* The checklist's example as printed: the pack's keys lost their indentation. */
    expect_error(MOCK_BUS "packs:\n- name: lifepower4_N\naddress: 0x40\n",
                 "t.yaml:6:1: unknown key 'address' at the top level (that key belongs in packs "
                 "entries; check the indentation)");
    expect_error(MOCK_BUS "  keepalive: 30\npacks: [{name: p}]\n",
                 "t.yaml:4:3: unknown key 'keepalive' in bus (that key belongs in mqtt; check the "
                 "indentation)");
    expect_error(MOCK_BUS "port: /dev/ttyUSB0\npacks: [{name: p}]\n",
                 "t.yaml:4:1: unknown key 'port' at the top level (that key belongs in bus, mqtt "
                 "or packs entries; check the indentation)");
}

static void test_config_long_unknown_key_is_cut_in_message(void **state)
{
    (void)state;
    expect_error(MOCK_BUS "  xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx: 1\n",
                 "t.yaml:4:3: unknown key 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' in bus");
}

static void test_config_control_characters_are_masked_in_message(void **state)
{
    (void)state;
    expect_error("bus:\n  mode: \"a\\x1b[2Jb\"\n",
                 "t.yaml:2:9: unknown bus.mode 'a?[2Jb' (valid: modbus_per_pack, active, "
                 "passive, pylontech, lp4_ascii)");
}

static void test_config_mapping_where_scalar_expected_is_refused(void **state)
{
    (void)state;
    expect_error(MOCK_BUS "  baud:\n    rate: 9600\npacks: [{name: p}]\n",
                 "t.yaml:5:5: bus.baud must be an integer, not a mapping");
    expect_error(MOCK_BUS "  port: [/dev/ttyUSB0]\npacks: [{name: p}]\n",
                 "t.yaml:4:9: bus.port must be a string, not a list");
    expect_error(MOCK_BUS "mqtt:\n  tls_insecure: {a: 1}\npacks: [{name: p}]\n",
                 "t.yaml:5:17: mqtt.tls_insecure must be true or false, not a mapping");
}

static void test_config_section_of_wrong_type_is_refused(void **state)
{
    (void)state;
    expect_error("bus: modbus\n", "t.yaml:1:6: bus must be a mapping of 'key: value' lines, not "
                                  "'modbus'");
    expect_error(MOCK_BUS "packs:\n  name: p1\n",
                 "t.yaml:5:3: packs must be a list of '- name: ...' entries, not a mapping");
    expect_error(MOCK_BUS "packs:\n  - p1\n",
                 "t.yaml:5:5: packs[0] must be a mapping of 'key: value' lines, not 'p1'");
    expect_error("- bus\n- packs\n",
                 "t.yaml:1:1: the configuration must be a mapping of 'key: value' lines, not a "
                 "list");
}

static void test_config_non_scalar_key_is_refused(void **state)
{
    (void)state;
    expect_error("? [a, b]\n: 1\n",
                 "t.yaml:1:3: a key at the top level must be a word, not a list");
}

static void test_config_non_integer_is_refused(void **state)
{
    (void)state;
    expect_error(MOCK_BUS "packs:\n  - name: p1\n    address: forty\n",
                 "t.yaml:6:14: packs[0].address must be an integer, not 'forty'");
    expect_error(MOCK_BUS "  baud: 9600.0\npacks: [{name: p}]\n",
                 "t.yaml:4:9: bus.baud must be an integer, not '9600.0'");
    expect_error(MOCK_BUS "  read_chunk: 1:30\npacks: [{name: p}]\n",
                 "t.yaml:4:15: bus.read_chunk must be an integer, not '1:30'");
}

static void test_config_address_outside_1_to_247_is_refused(void **state)
{
    (void)state;
    expect_error(MOCK_BUS "packs:\n  - name: p1\n    address: 0\n",
                 "t.yaml:6:14: packs[0].address must be in 1..247, not 0");
    expect_error(MOCK_BUS "packs:\n  - name: p1\n    address: 248\n",
                 "t.yaml:6:14: packs[0].address must be in 1..247, not 248");
    expect_error(MOCK_BUS "packs:\n  - name: p1\n    address: 0x100\n",
                 "t.yaml:6:14: packs[0].address must be in 1..247, not 0x100");
    expect_error(MOCK_BUS "packs:\n  - name: p1\n    address: -0x40\n",
                 "t.yaml:6:14: packs[0].address must be in 1..247, not -0x40");
    expect_error(MOCK_BUS "packs:\n  - name: p1\n    address: 99999999999999999999999\n",
                 "t.yaml:6:14: packs[0].address must be in 1..247, not 99999999999999999999999");
}

static void test_config_unknown_mode_lists_valid_modes(void **state)
{
    (void)state;
    expect_error("bus:\n  mode: rtu\npacks: [{name: p}]\n",
                 "t.yaml:2:9: unknown bus.mode 'rtu' (valid: modbus_per_pack, active, passive, "
                 "pylontech, lp4_ascii)");
}

static void test_config_unknown_transport_is_refused(void **state)
{
    (void)state;
    expect_error("bus:\n  mode: active\n  transport: tcp\npacks: [{name: p}]\n",
                 "t.yaml:3:14: unknown bus.transport 'tcp' (valid: serial, mock)");
}

static void test_config_passive_bus_protocol_names_what_the_master_speaks(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, "bus:\n  mode: passive\n  port: /dev/x\npacks: [{name: p}]\n");
    assert_int_equal(cfg.bus.protocol, CONFIG_PROTOCOL_LP4V2); /* the default: as before */
    assert_int_equal(cfg.bus.baud, 9600);
    config_free(&cfg);
    load_ok(&cfg, "bus:\n  protocol: pylontech\n  mode: passive\n  port: /dev/x\n"
                  "packs: [{name: p, address: 2}]\n");
    assert_int_equal(cfg.bus.protocol, CONFIG_PROTOCOL_PYLONTECH);
    assert_int_equal(cfg.bus.baud, 115200); /* a Pylontech bus's own rate */
    assert_string_equal(config_protocol_name(cfg.bus.protocol), "pylontech");
    config_free(&cfg);
    load_ok(&cfg, "bus:\n  mode: passive\n  protocol: eg4_legacy\n  port: /dev/x\n"
                  "packs: [{name: p}]\n");
    assert_int_equal(cfg.bus.protocol, CONFIG_PROTOCOL_EG4_LEGACY);
    config_free(&cfg);
    load_ok(&cfg, "bus:\n  mode: passive\n  protocol: lp4_ascii\n  port: /dev/x\n"
                  "packs: [{name: p}]\n");
    assert_int_equal(cfg.bus.protocol, CONFIG_PROTOCOL_LP4_ASCII);
    config_free(&cfg);
    expect_error("bus:\n  mode: passive\n  protocol: modbus\n  port: /dev/x\n"
                 "packs: [{name: p}]\n",
                 "t.yaml:3:13: unknown bus.protocol 'modbus' (valid: lp4v2, eg4_legacy, "
                 "pylontech, lp4_ascii)");
    expect_error("bus:\n  mode: active\n  protocol: pylontech\n  port: /dev/x\n"
                 "packs: [{name: p}]\n",
                 "t.yaml:3:13: bus.protocol is only used in passive mode (bus.mode is active)");
}

static void test_config_baud_not_a_termios_rate_is_refused(void **state)
{
    (void)state;
    expect_error(MOCK_BUS "  baud: 9601\npacks: [{name: p}]\n",
                 "t.yaml:4:9: bus.baud 9601 is not a standard serial rate (e.g. 9600, 19200, "
                 "115200)");
    expect_error(MOCK_BUS "  baud: 0\npacks: [{name: p}]\n",
                 "t.yaml:4:9: bus.baud 0 is not a standard serial rate (e.g. 9600, 19200, "
                 "115200)");
    expect_error(MOCK_BUS "packs:\n  - name: p1\n    baud: 14400\n",
                 "t.yaml:6:11: packs[0].baud 14400 is not a standard serial rate (e.g. 9600, "
                 "19200, 115200)");
}

static void test_config_baud_supported_matches_termios_rates(void **state)
{
    (void)state;
    assert_true(config_baud_supported(50));
    assert_true(config_baud_supported(9600));
    assert_true(config_baud_supported(19200));
    assert_true(config_baud_supported(115200));
    assert_true(config_baud_supported(921600));
    assert_true(config_baud_supported(4000000));
    assert_false(config_baud_supported(0));
    assert_false(config_baud_supported(-9600));
    assert_false(config_baud_supported(14400));
    assert_false(config_baud_supported(4000001));
}

static void test_config_duplicate_pack_name_points_at_second(void **state)
{
    (void)state;
    expect_error(MOCK_BUS "packs:\n  - name: p1\n  - name: p2\n  - name: p1\n",
                 "t.yaml:7:11: duplicate pack name 'p1' (first used at line 5)");
}

static void test_config_per_pack_serial_pack_without_port_is_refused(void **state)
{
    (void)state;
    expect_error("bus:\n"
                 "  mode: modbus_per_pack\n"
                 "packs:\n"
                 "  - name: p1\n"
                 "    port: /dev/ttyUSB0\n"
                 "  - name: p2\n"
                 "    address: 0x41\n",
                 "t.yaml:6:5: packs[1] 'p2' has no port; modbus_per_pack mode with serial "
                 "transport needs a port for every pack");
    expect_error("bus:\n  mode: modbus_per_pack\n  port: /dev/ttyUSB0\npacks:\n  - name: p1\n"
                 "    port: ''\n",
                 "t.yaml:5:5: packs[0] 'p1' has no port; modbus_per_pack mode with serial "
                 "transport needs a port for every pack (bus.port is only used in active and "
                 "passive modes)");
    expect_error("bus:\n  mode: modbus_per_pack\npacks:\n  - name: p1\n    port: ''\n",
                 "t.yaml:4:5: packs[0] 'p1' has no port; modbus_per_pack mode with serial "
                 "transport needs a port for every pack");
}

static void test_config_shared_bus_needs_port_and_distinct_addresses(void **state)
{
    (void)state;
    expect_error("bus:\n  mode: active\npacks:\n  - name: a\n",
                 "t.yaml:1:1: bus.port is required in active mode with serial transport");
    expect_error("bus:\n  mode: passive\n  port: /dev/ttyUSB0\npacks:\n  - name: a\n"
                 "  - name: b\n",
                 "t.yaml:6:5: packs[1] 'b' has address 0x40 like 'a' (line 5); packs on a "
                 "shared bus need distinct addresses");
}

/* Pylontech stacks talk at 115200 baud unless told otherwise; the others at 9600. */
static void test_config_pylontech_mode_defaults_to_115200_baud(void **state)
{
    struct config cfg;
    char err[256];

    (void)state;
    assert_int_equal(load(&cfg,
                          "bus:\n  mode: pylontech\n  port: /dev/ttyUSB0\npacks:\n"
                          "  - {name: m2, address: 2}\n  - {name: m3, address: 3}\n",
                          err, sizeof err),
                     0);
    assert_int_equal(cfg.bus.baud, 115200);
    config_free(&cfg);
    assert_int_equal(load(&cfg,
                          "bus:\n  mode: pylontech\n  port: /dev/ttyUSB0\n  baud: 9600\npacks:\n"
                          "  - {name: m2, address: 2}\n",
                          err, sizeof err),
                     0);
    assert_int_equal(cfg.bus.baud, 9600);
    config_free(&cfg);
    assert_int_equal(load(&cfg,
                          "bus:\n  mode: lp4_ascii\n  port: /dev/ttyUSB0\npacks:\n"
                          "  - {name: p1, address: 1}\n",
                          err, sizeof err),
                     0);
    assert_int_equal(cfg.bus.baud, 9600);
    config_free(&cfg);
}

/* modbus_per_pack packs that name one port form one RS-485 bus. */
static void test_config_packs_on_one_port_share_baud_and_need_distinct_ids(void **state)
{
    struct config cfg;
    char err[256];

    (void)state;
    assert_int_equal(load(&cfg,
                          "bus:\n  mode: modbus_per_pack\npacks:\n"
                          "  - {name: a, address: 1, port: /dev/ttyUSB0}\n"
                          "  - {name: b, address: 2, port: /dev/ttyUSB0}\n",
                          err, sizeof err),
                     0);
    config_free(&cfg);
    expect_error("bus:\n  mode: modbus_per_pack\npacks:\n"
                 "  - {name: a, address: 1, port: /dev/ttyUSB0}\n"
                 "  - {name: b, address: 1, port: /dev/ttyUSB0}\n",
                 "t.yaml:5:5: packs[1] 'b' has address 0x01 like 'a' (line 4) on the same port; "
                 "packs on one bus need distinct addresses");
    expect_error("bus:\n  mode: modbus_per_pack\npacks:\n"
                 "  - {name: a, address: 1, port: /dev/ttyUSB0}\n"
                 "  - {name: b, address: 2, port: /dev/ttyUSB0, baud: 19200}\n",
                 "t.yaml:5:5: packs[1] 'b' is on the port of 'a' (line 4) at another baud rate; "
                 "one bus has one baud rate");
}

static void test_config_bad_pack_name_is_refused(void **state)
{
    char yaml[256];

    (void)state;
    expect_error(MOCK_BUS "packs:\n  - name: pack one\n",
                 "t.yaml:5:11: packs[0].name 'pack one' may only contain letters, digits, '_' "
                 "and '-' (it becomes part of MQTT topics and Home Assistant ids)");
    expect_error(MOCK_BUS "packs:\n  - name: pack/1\n",
                 "t.yaml:5:11: packs[0].name 'pack/1' may only contain letters, digits, '_' "
                 "and '-' (it becomes part of MQTT topics and Home Assistant ids)");
    expect_error(MOCK_BUS "packs:\n  - name: \"\"\n",
                 "t.yaml:5:11: packs[0].name must not be empty");
    expect_error(MOCK_BUS "packs:\n  - name:\n", "t.yaml:5:5: packs[0].name needs a value");
    expect_error(MOCK_BUS "packs:\n  - address: 1\n",
                 "t.yaml:5:5: missing required key 'name' in packs[0]");
    snprintf(yaml, sizeof yaml, MOCK_BUS "packs:\n  - name: %.65s\n",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    expect_error(yaml, "t.yaml:5:11: packs[0].name is longer than 64 characters");
}

static void test_config_mqtt_port_outside_1_to_65535_is_refused(void **state)
{
    (void)state;
    expect_error(MOCK_BUS "mqtt:\n  port: 0\npacks: [{name: p}]\n",
                 "t.yaml:5:9: mqtt.port must be in 1..65535, not 0");
    expect_error(MOCK_BUS "mqtt:\n  port: 65536\npacks: [{name: p}]\n",
                 "t.yaml:5:9: mqtt.port must be in 1..65535, not 65536");
}

static void test_config_timeout_must_be_positive(void **state)
{
    (void)state;
    expect_error(MOCK_BUS "  timeout_s: 0\npacks: [{name: p}]\n",
                 "t.yaml:4:14: bus.timeout_s must be greater than 0, not 0");
    expect_error(MOCK_BUS "  timeout_s: -1.5\npacks: [{name: p}]\n",
                 "t.yaml:4:14: bus.timeout_s must be greater than 0, not -1.5");
}

static void test_config_negative_poll_interval_is_refused(void **state)
{
    (void)state;
    expect_error(MOCK_BUS "  poll_interval_s: -1\npacks: [{name: p}]\n",
                 "t.yaml:4:20: bus.poll_interval_s must not be negative, not -1");
    expect_error(MOCK_BUS "  poll_interval_s: 86401\npacks: [{name: p}]\n",
                 "t.yaml:4:20: bus.poll_interval_s must be at most 86400 seconds, not 86401");
}

static void test_config_other_ranges_are_enforced(void **state)
{
    (void)state;
    expect_error(MOCK_BUS "  read_chunk: 0\npacks: [{name: p}]\n",
                 "t.yaml:4:15: bus.read_chunk must be in 1..65536, not 0");
    expect_error(MOCK_BUS "  read_chunk: 65537\npacks: [{name: p}]\n",
                 "t.yaml:4:15: bus.read_chunk must be in 1..65536, not 65537");
    expect_error(MOCK_BUS "packs: [{name: p}]\ncell_count: 0\n",
                 "t.yaml:5:13: cell_count must be in 1..32, not 0");
    expect_error(MOCK_BUS "packs: [{name: p}]\ncell_count: 33\n",
                 "t.yaml:5:13: cell_count must be in 1..32, not 33");
    expect_error(MOCK_BUS "mqtt:\n  keepalive: 4\npacks: [{name: p}]\n",
                 "t.yaml:5:14: mqtt.keepalive must be in 5..3600, not 4");
    expect_error(MOCK_BUS "mqtt:\n  keepalive: 3601\npacks: [{name: p}]\n",
                 "t.yaml:5:14: mqtt.keepalive must be in 5..3600, not 3601");
    expect_error(MOCK_BUS "  offline_after: 0\npacks: [{name: p}]\n",
                 "t.yaml:4:18: bus.offline_after must be in 1..1000, not 0");
}

static void test_config_bad_mqtt_strings_are_refused(void **state)
{
    (void)state;
    expect_error(MOCK_BUS "mqtt:\n  host: \"\"\npacks: [{name: p}]\n",
                 "t.yaml:5:9: mqtt.host must not be empty");
    expect_error(MOCK_BUS "mqtt:\n  host: \"broker\\0evil\"\npacks: [{name: p}]\n",
                 "t.yaml:5:9: mqtt.host contains a NUL character");
    expect_error(MOCK_BUS "mqtt:\n  base_topic: bms/#\npacks: [{name: p}]\n",
                 "t.yaml:5:15: mqtt.base_topic must not contain the MQTT wildcards '+' or '#'");
    expect_error(MOCK_BUS "mqtt:\n  client_id: bms+1\npacks: [{name: p}]\n",
                 "t.yaml:5:14: mqtt.client_id must not contain the MQTT wildcards '+' or '#'");
}

static void test_config_tls_client_certificate_needs_key_and_ca(void **state)
{
    (void)state;
    expect_error(MOCK_BUS "mqtt:\n  tls_ca_file: ca.pem\n  tls_cert_file: c.pem\n"
                          "packs: [{name: p}]\n",
                 "t.yaml:6:18: mqtt.tls_cert_file needs mqtt.tls_key_file as well");
    expect_error(MOCK_BUS "mqtt:\n  tls_key_file: c.key\npacks: [{name: p}]\n",
                 "t.yaml:5:17: mqtt.tls_key_file needs mqtt.tls_cert_file as well");
    expect_error(MOCK_BUS "mqtt:\n  tls_cert_file: c.pem\n  tls_key_file: c.key\n"
                          "packs: [{name: p}]\n",
                 "t.yaml:5:18: mqtt.tls_cert_file needs mqtt.tls_ca_file (which is what enables "
                 "TLS)");
}

static void test_config_empty_or_missing_packs_is_refused(void **state)
{
    (void)state;
    expect_error(MOCK_BUS "packs: []\n", "t.yaml:4:8: packs is empty; list at least one pack");
    expect_error(MOCK_BUS "packs:\n", "t.yaml:4:1: packs is empty; list at least one pack");
    expect_error(MOCK_BUS, "t.yaml:1:1: missing required key 'packs' at the top level");
}

static void test_config_missing_bus_or_mode_is_refused(void **state)
{
    (void)state;
    expect_error("packs: [{name: p}]\n", "t.yaml:1:1: missing required key 'bus' at the top level");
    expect_error("packs: [{name: p}]\nbus:\n  transport: mock\n",
                 "t.yaml:2:1: missing required key 'mode' in bus");
    expect_error("bus:\npacks: [{name: p}]\n", "t.yaml:1:1: missing required key 'mode' in bus");
    expect_error("bus:\n  mode:\npacks: [{name: p}]\n", "t.yaml:2:3: bus.mode needs a value");
}

static void test_config_empty_document_is_refused(void **state)
{
    (void)state;
    expect_error("", "t.yaml:1:1: missing required key 'bus' at the top level");
    expect_error("# nothing but a comment\n",
                 "t.yaml:1:1: missing required key 'bus' at the top level");
}

static void test_config_duplicate_key_is_refused(void **state)
{
    (void)state;
    expect_error(MOCK_BUS "  mode: active\npacks: [{name: p}]\n",
                 "t.yaml:4:3: duplicate key 'mode' in bus (first at line 2)");
    expect_error(MOCK_BUS "packs: [{name: p}]\nbus: {mode: active}\n",
                 "t.yaml:5:1: duplicate key 'bus' at the top level (first at line 1)");
    expect_error(MOCK_BUS "packs:\n  - name: p\n    name: q\n",
                 "t.yaml:6:5: duplicate key 'name' in packs[0] (first at line 5)");
}

static void test_config_yaml_syntax_error_reports_position(void **state)
{
    (void)state;
    expect_error_prefix("bus:\n  mode: modbus_per_pack\n transport: mock\n",
                        "t.yaml:3:2: YAML syntax error: ");
    expect_error_prefix("bus:\n  mode: active\n  port: \"/dev/tty\n",
                        "t.yaml:4:1: YAML syntax error: ");
    expect_error_prefix("bus: [a\n", "t.yaml:2:1: YAML syntax error: ");
    expect_error_prefix("bus: *nowhere\n", "t.yaml:1:6: YAML syntax error: ");
    expect_error("bus:\n\tmode: active\n",
                 "t.yaml:2:1: YAML syntax error: found character that cannot start any token "
                 "(while scanning for the next token at line 2, column 1) (YAML does not allow "
                 "tabs for indentation)");
}

static void test_config_invalid_utf8_is_refused(void **state)
{
    (void)state;
    expect_error_prefix("bus:\n  mode: \"a\xc3\"\n", "t.yaml:2:12: invalid trailing UTF-8 octet");
}

static void test_config_second_document_is_refused(void **state)
{
    (void)state;
    expect_error(MOCK_BUS "packs: [{name: p}]\n---\nbus: {mode: active}\n",
                 "t.yaml:5:1: a second YAML document; the file must hold only one");
}

static void test_config_error_is_cut_to_buffer_and_terminated(void **state)
{
    const char *yaml = MOCK_BUS "  colour: red\n";
    struct config cfg;
    char err[16];

    (void)state;
    memset(err, 'x', sizeof err);
    assert_int_equal(load(&cfg, yaml, err, sizeof err), -1);
    assert_string_equal(err, "t.yaml:4:3: unk");
    assert_int_equal(load(&cfg, yaml, NULL, 0), -1);
}

static void test_config_free_is_safe_twice_and_on_zeroed(void **state)
{
    struct config cfg;

    (void)state;
    memset(&cfg, 0, sizeof cfg);
    config_free(&cfg);
    load_ok(&cfg, original_example);
    config_free(&cfg);
    assert_null(cfg.path);
    assert_null(cfg.packs);
    assert_int_equal(cfg.n_packs, 0);
    config_free(&cfg);
    config_free(NULL);
}

static void test_config_mode_names(void **state)
{
    (void)state;
    assert_string_equal(config_mode_name(CONFIG_MODE_MODBUS_PER_PACK), "modbus_per_pack");
    assert_string_equal(config_mode_name(CONFIG_MODE_ACTIVE), "active");
    assert_string_equal(config_mode_name(CONFIG_MODE_PASSIVE), "passive");
}

static void test_config_aliases_are_followed(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, "bus: {mode: modbus_per_pack, transport: mock}\n"
                  "packs:\n  - {name: a, port: &p /dev/ttyUSB0}\n  - {name: b, port: *p}\n");
    assert_string_equal(cfg.packs[1].port, "/dev/ttyUSB0");
    config_free(&cfg);
}

/* ---- files ------------------------------------------------------------------------------ */

static void test_config_load_reads_a_file(void **state)
{
    char path[] = "/tmp/test_config_XXXXXX";
    struct config cfg;
    char err[512];
    int fd = mkstemp(path);

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, original_example, strlen(original_example)),
                     (ssize_t)strlen(original_example));
    close(fd);
    assert_int_equal(config_load(&cfg, path, err, sizeof err), 0);
    assert_string_equal(cfg.path, path);
    assert_string_equal(cfg.packs[0].name, "lifepower4_N");
    config_free(&cfg);
    unlink(path);
}

static void test_config_load_error_in_file_is_prefixed_with_path(void **state)
{
    static const char yaml[] = MOCK_BUS "packs:\n  - name: p1\n    adress: 1\n";
    char path[] = "/tmp/test_config_XXXXXX", expected[640];
    struct config cfg;
    char err[512];
    int fd = mkstemp(path);

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    close(fd);
    assert_int_equal(config_load(&cfg, path, err, sizeof err), -1);
    snprintf(expected, sizeof expected,
             "%s:6:5: unknown key 'adress' in packs[0] (did you mean 'address'?)", path);
    assert_string_equal(err, expected);
    assert_null(cfg.path);
    unlink(path);
}

static void test_config_load_unreadable_path_reports_strerror(void **state)
{
    struct config cfg;
    char err[512], expected[512];

    (void)state;
    assert_int_equal(config_load(&cfg, "/nonexistent/bms2mqtt.yaml", err, sizeof err), -1);
    snprintf(expected, sizeof expected, "/nonexistent/bms2mqtt.yaml: %s", strerror(ENOENT));
    assert_string_equal(err, expected);
    assert_null(cfg.path);
    assert_int_equal(config_load(&cfg, "/tmp", err, sizeof err), -1);
    snprintf(expected, sizeof expected, "/tmp: %s", strerror(EISDIR));
    assert_string_equal(err, expected);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_loads_original_example_unchanged),
        cmocka_unit_test(test_config_loads_three_indented_packs_in_file_order),
        cmocka_unit_test(test_config_loads_active_and_passive_modes_with_shared_port),
        cmocka_unit_test(test_config_defaults_match_header),
        cmocka_unit_test(test_config_minimal_file_gets_every_default),
        cmocka_unit_test(test_config_loads_every_new_key),
        cmocka_unit_test(test_config_mqtt_port_defaults_to_8883_only_with_tls),
        cmocka_unit_test(test_config_hex_address_parses),
        cmocka_unit_test(test_config_integers_follow_yaml_1_1),
        cmocka_unit_test(test_config_leading_zero_with_nine_is_not_an_integer),
        cmocka_unit_test(test_config_seconds_accept_integers_and_floats),
        cmocka_unit_test(test_config_infinite_timeout_is_refused),
        cmocka_unit_test(test_config_booleans_accept_yes_no_on_off),
        cmocka_unit_test(test_config_null_optional_keys_are_absent),
        cmocka_unit_test(test_config_quoted_tilde_is_a_string),
        cmocka_unit_test(test_config_pack_baud_zero_means_bus_baud),
        cmocka_unit_test(test_config_pack_name_of_64_characters_is_accepted),
        cmocka_unit_test(test_config_serial_per_pack_needs_no_port_with_mock_transport),
        cmocka_unit_test(test_config_unknown_key_names_line_and_column),
        cmocka_unit_test(test_config_unknown_key_suggests_close_match),
        cmocka_unit_test(test_config_misplaced_key_names_its_section),
        cmocka_unit_test(test_config_long_unknown_key_is_cut_in_message),
        cmocka_unit_test(test_config_control_characters_are_masked_in_message),
        cmocka_unit_test(test_config_mapping_where_scalar_expected_is_refused),
        cmocka_unit_test(test_config_section_of_wrong_type_is_refused),
        cmocka_unit_test(test_config_non_scalar_key_is_refused),
        cmocka_unit_test(test_config_non_integer_is_refused),
        cmocka_unit_test(test_config_address_outside_1_to_247_is_refused),
        cmocka_unit_test(test_config_unknown_mode_lists_valid_modes),
        cmocka_unit_test(test_config_unknown_transport_is_refused),
        cmocka_unit_test(test_config_passive_bus_protocol_names_what_the_master_speaks),
        cmocka_unit_test(test_config_baud_not_a_termios_rate_is_refused),
        cmocka_unit_test(test_config_baud_supported_matches_termios_rates),
        cmocka_unit_test(test_config_duplicate_pack_name_points_at_second),
        cmocka_unit_test(test_config_per_pack_serial_pack_without_port_is_refused),
        cmocka_unit_test(test_config_shared_bus_needs_port_and_distinct_addresses),
        cmocka_unit_test(test_config_packs_on_one_port_share_baud_and_need_distinct_ids),
        cmocka_unit_test(test_config_pylontech_mode_defaults_to_115200_baud),
        cmocka_unit_test(test_config_bad_pack_name_is_refused),
        cmocka_unit_test(test_config_mqtt_port_outside_1_to_65535_is_refused),
        cmocka_unit_test(test_config_timeout_must_be_positive),
        cmocka_unit_test(test_config_negative_poll_interval_is_refused),
        cmocka_unit_test(test_config_other_ranges_are_enforced),
        cmocka_unit_test(test_config_bad_mqtt_strings_are_refused),
        cmocka_unit_test(test_config_tls_client_certificate_needs_key_and_ca),
        cmocka_unit_test(test_config_empty_or_missing_packs_is_refused),
        cmocka_unit_test(test_config_missing_bus_or_mode_is_refused),
        cmocka_unit_test(test_config_empty_document_is_refused),
        cmocka_unit_test(test_config_duplicate_key_is_refused),
        cmocka_unit_test(test_config_yaml_syntax_error_reports_position),
        cmocka_unit_test(test_config_invalid_utf8_is_refused),
        cmocka_unit_test(test_config_second_document_is_refused),
        cmocka_unit_test(test_config_error_is_cut_to_buffer_and_terminated),
        cmocka_unit_test(test_config_free_is_safe_twice_and_on_zeroed),
        cmocka_unit_test(test_config_mode_names),
        cmocka_unit_test(test_config_aliases_are_followed),
        cmocka_unit_test(test_config_load_reads_a_file),
        cmocka_unit_test(test_config_load_error_in_file_is_prefixed_with_path),
        cmocka_unit_test(test_config_load_unreadable_path_reports_strerror),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
