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

#include "bank.h"
#include "config.h"
#include "driver.h"

/* The smallest valid head: mock transport needs no serial ports. Lines 1-3. */
#define MOCK_BUS "bus:\n  mode: modbus_per_pack\n  transport: mock\n"

/* How messages name each mode's addresses. */
#define MODBUS_IDS          "1..247 (a Modbus slave id)"
#define LEGACY_ADDRESSES    "0..15 (the pack's DIP-switch address; 0 is one)"
#define LP4_ASCII_ADDRESSES "1..15 (the pack's DIP-switch address)"
#define PYLONTECH_ADDRESSES                                                                        \
    "0x02..0x0D plus 0x10 times the group 0..7 (the module's ADR: module 2..13, 2 being the "      \
    "group's master)"
/* Every bus.mode of the driver table, as the message for an unknown one lists them. */
#define VALID_MODES                                                                                \
    "lp4v2, modbus_per_pack, passive, eg4_legacy, active, pylontech, lp4_ascii, victron_gx"
/* The rates of the serial layer, as messages list them. */
#define BAUD_LIST                                                                                  \
    "110, 300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, "         \
    "500000, 576000, 921600, 1000000, 1152000, 1500000, 2500000, 3000000, 3500000 or 4000000"

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
    assert_ptr_equal(cfg.bus.driver, &lp4v2_driver);
    assert_false(cfg.bus.listen);
    assert_string_equal(cfg.bus.mode, "modbus_per_pack");
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
    assert_ptr_equal(cfg.bus.driver, &eg4_legacy_driver);
    assert_false(cfg.bus.listen);
    assert_string_equal(cfg.bus.mode, "active");
    assert_string_equal(cfg.bus.port, "/dev/ttyUSB0");
    assert_null(cfg.packs[0].port);
    config_free(&cfg);
    load_ok(&cfg, "bus:\n  mode: passive\n  port: /dev/ttyUSB0\n  baud: 19200\n"
                  "  read_chunk: 4096\npacks:\n  - name: a\n");
    assert_ptr_equal(cfg.bus.driver, &lp4v2_driver);
    assert_true(cfg.bus.listen);
    assert_string_equal(cfg.bus.mode, "passive");
    assert_int_equal(cfg.bus.read_chunk, 4096);
    config_free(&cfg);
}

static void test_config_defaults_match_header(void **state)
{
    struct config cfg;

    (void)state;
    assert_int_equal(config_defaults(&cfg), 0);
    assert_null(cfg.path);
    assert_ptr_equal(cfg.bus.driver, &lp4v2_driver);
    assert_false(cfg.bus.listen);
    assert_string_equal(cfg.bus.mode, "modbus_per_pack");
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
    assert_int_equal(cfg.mqtt.protocol_version, 4);
    assert_null(cfg.mqtt.tls_ca_file);
    assert_null(cfg.mqtt.tls_capath);
    assert_null(cfg.mqtt.tls_cert_file);
    assert_null(cfg.mqtt.tls_key_file);
    assert_null(cfg.mqtt.tls_version);
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
                 "t.yaml:2:9: unknown bus.mode 'a?[2Jb' (valid: " VALID_MODES ")");
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
                 "t.yaml:6:14: packs[0].address must be in " MODBUS_IDS " in modbus_per_pack "
                 "mode, not 0");
    expect_error(MOCK_BUS "packs:\n  - name: p1\n    address: 248\n",
                 "t.yaml:6:14: packs[0].address must be in " MODBUS_IDS " in modbus_per_pack "
                 "mode, not 248");
    expect_error(MOCK_BUS "packs:\n  - name: p1\n    address: 0x100\n",
                 "t.yaml:6:14: packs[0].address must be in " MODBUS_IDS " in modbus_per_pack "
                 "mode, not 0x100");
    expect_error(MOCK_BUS "packs:\n  - name: p1\n    address: -0x40\n",
                 "t.yaml:6:14: packs[0].address must be in " MODBUS_IDS " in modbus_per_pack "
                 "mode, not -0x40");
    expect_error(MOCK_BUS "packs:\n  - name: p1\n    address: 99999999999999999999999\n",
                 "t.yaml:6:14: packs[0].address must be in " MODBUS_IDS " in modbus_per_pack "
                 "mode, not 99999999999999999999999");
}

static void test_config_unknown_mode_lists_valid_modes(void **state)
{
    (void)state;
    expect_error("bus:\n  mode: rtu\npacks: [{name: p}]\n",
                 "t.yaml:2:9: unknown bus.mode 'rtu' (valid: " VALID_MODES ")");
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
    assert_ptr_equal(cfg.bus.driver, &lp4v2_driver); /* the default: as before */
    assert_true(cfg.bus.listen);
    assert_int_equal(cfg.bus.baud, 9600);
    config_free(&cfg);
    load_ok(&cfg, "bus:\n  protocol: pylontech\n  mode: passive\n  port: /dev/x\n"
                  "packs: [{name: p, address: 2}]\n");
    assert_ptr_equal(cfg.bus.driver, &pylontech_driver);
    assert_true(cfg.bus.listen);
    assert_int_equal(cfg.bus.baud, 115200); /* a Pylontech bus's own rate */
    assert_string_equal(cfg.bus.mode, "passive");
    config_free(&cfg);
    /* The addresses are those of the protocol listened to: a legacy pack must give its. */
    load_ok(&cfg, "bus:\n  mode: passive\n  protocol: eg4_legacy\n  port: /dev/x\n"
                  "packs: [{name: p, address: 0}]\n");
    assert_ptr_equal(cfg.bus.driver, &eg4_legacy_driver);
    config_free(&cfg);
    expect_error("bus:\n  mode: passive\n  protocol: eg4_legacy\n  port: /dev/x\n"
                 "packs: [{name: p}]\n",
                 "t.yaml:5:9: packs[0] 'p' has no address; passive mode (protocol eg4_legacy) "
                 "needs one in " LEGACY_ADDRESSES);
    load_ok(&cfg, "bus:\n  mode: passive\n  protocol: lp4_ascii\n  port: /dev/x\n"
                  "packs: [{name: p, address: 15}]\n");
    assert_ptr_equal(cfg.bus.driver, &lp4_ascii_driver);
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
                 "t.yaml:4:9: bus.baud 9601 is not a rate bms2mqtt can set on a serial port "
                 "(" BAUD_LIST ")");
    expect_error(MOCK_BUS "  baud: 0\npacks: [{name: p}]\n",
                 "t.yaml:4:9: bus.baud 0 is not a rate bms2mqtt can set on a serial port "
                 "(" BAUD_LIST ")");
    expect_error(MOCK_BUS "packs:\n  - name: p1\n    baud: 14400\n",
                 "t.yaml:6:11: packs[0].baud 14400 is not a rate bms2mqtt can set on a serial "
                 "port (" BAUD_LIST ")");
}

/* The loader accepts exactly the rates the serial layer and libmodbus set: 30 never was a
 * rate; 50 and 2000000 are termios rates that libmodbus quietly sets as 9600. */
static void test_config_baud_is_what_the_serial_layer_sets(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, MOCK_BUS "  baud: 300\npacks:\n  - {name: p1, baud: 500000}\n");
    assert_int_equal(cfg.bus.baud, 300);
    assert_int_equal(config_pack_baud(&cfg, &cfg.packs[0]), 500000);
    config_free(&cfg);
    load_ok(&cfg, MOCK_BUS "  baud: 500000\npacks:\n  - {name: p1, baud: 9600}\n");
    assert_int_equal(cfg.bus.baud, 500000);
    assert_int_equal(config_pack_baud(&cfg, &cfg.packs[0]), 9600);
    config_free(&cfg);
    load_ok(&cfg, MOCK_BUS "  baud: 110\npacks:\n  - {name: p1, baud: 4000000}\n");
    config_free(&cfg);
    expect_error(MOCK_BUS "  baud: 30\npacks: [{name: p}]\n",
                 "t.yaml:4:9: bus.baud 30 is not a rate bms2mqtt can set on a serial port "
                 "(" BAUD_LIST ")");
    expect_error(MOCK_BUS "packs:\n  - {name: p1, baud: 30}\n",
                 "t.yaml:5:22: packs[0].baud 30 is not a rate bms2mqtt can set on a serial port "
                 "(" BAUD_LIST ")");
    expect_error(MOCK_BUS "  baud: 50\npacks: [{name: p}]\n",
                 "t.yaml:4:9: bus.baud 50 is not a rate bms2mqtt can set on a serial port "
                 "(" BAUD_LIST ")");
    expect_error(MOCK_BUS "packs:\n  - {name: p1, baud: 2000000}\n",
                 "t.yaml:5:22: packs[0].baud 2000000 is not a rate bms2mqtt can set on a serial "
                 "port (" BAUD_LIST ")");
}

static void test_config_baud_supported_matches_termios_rates(void **state)
{
    (void)state;
    assert_true(config_baud_supported(110));
    assert_true(config_baud_supported(300));
    assert_true(config_baud_supported(9600));
    assert_true(config_baud_supported(19200));
    assert_true(config_baud_supported(115200));
    assert_true(config_baud_supported(500000));
    assert_true(config_baud_supported(921600));
    assert_true(config_baud_supported(4000000));
    assert_false(config_baud_supported(30));
    assert_false(config_baud_supported(50));
    assert_false(config_baud_supported(1800));
    assert_false(config_baud_supported(2000000));
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
    struct config cfg;

    (void)state;
    expect_error("bus:\n"
                 "  mode: modbus_per_pack\n"
                 "packs:\n"
                 "  - name: p1\n"
                 "    port: /dev/ttyUSB0\n"
                 "  - name: p2\n"
                 "    address: 0x41\n",
                 "t.yaml:6:5: packs[1] 'p2' has no port; modbus_per_pack mode with serial "
                 "transport needs bus.port or a port for every pack");
    expect_error("bus:\n  mode: modbus_per_pack\npacks:\n  - name: p1\n    port: ''\n",
                 "t.yaml:4:5: packs[0] 'p1' has no port; modbus_per_pack mode with serial "
                 "transport needs bus.port or a port for every pack");
    /* A pack without a port of its own is on bus.port (as in the buses form). */
    load_ok(&cfg, "bus:\n  mode: modbus_per_pack\n  port: /dev/ttyUSB0\npacks:\n  - name: p1\n"
                  "    port: ''\n  - {name: p2, port: /dev/ttyUSB1}\n");
    assert_null(cfg.packs[0].port);
    assert_string_equal(config_pack_port(&cfg.packs[0]), "/dev/ttyUSB0");
    assert_string_equal(config_pack_port(&cfg.packs[1]), "/dev/ttyUSB1");
    config_free(&cfg);
}

static void test_config_shared_bus_needs_port_and_distinct_addresses(void **state)
{
    (void)state;
    expect_error("bus:\n  mode: active\npacks:\n  - {name: a, address: 1}\n",
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
                 "t.yaml:5:18: mqtt.tls_cert_file needs mqtt.tls_ca_file or mqtt.tls_capath "
                 "(which is what enables TLS)");
}

static void test_config_mqtt_protocol_version(void **state)
{
    static const struct {
        const char *text;
        int level;
    } cases[] = {
        {"3", 3}, {"3.1", 3}, {"\"3.1.1\"", 4}, {"3.1.1", 4}, {"4", 4}, {"5", 5}, {"5.0", 5},
    };
    struct config cfg;
    char yaml[256];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(yaml, sizeof yaml, MOCK_BUS "mqtt:\n  protocol_version: %s\npacks: [{name: p}]\n",
                 cases[i].text);
        load_ok(&cfg, yaml);
        assert_int_equal(cfg.mqtt.protocol_version, cases[i].level);
        config_free(&cfg);
    }
    expect_error(MOCK_BUS "mqtt:\n  protocol_version: 6\npacks: [{name: p}]\n",
                 "t.yaml:5:21: mqtt.protocol_version must be 3 (MQTT 3.1), 3.1.1 (the default) or "
                 "5, not '6'");
    expect_error(MOCK_BUS "mqtt:\n  protocol_version: v5\npacks: [{name: p}]\n",
                 "t.yaml:5:21: mqtt.protocol_version must be 3 (MQTT 3.1), 3.1.1 (the default) or "
                 "5, not 'v5'");
    expect_error(MOCK_BUS "mqtt:\n  protocol_version: [5]\npacks: [{name: p}]\n",
                 "t.yaml:5:21: mqtt.protocol_version must be 3, 3.1.1 or 5, not a list");
}

static void test_config_tls_capath_enables_tls(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, MOCK_BUS "mqtt:\n  tls_capath: /etc/ssl/certs\npacks: [{name: p}]\n");
    assert_string_equal(cfg.mqtt.tls_capath, "/etc/ssl/certs");
    assert_null(cfg.mqtt.tls_ca_file);
    assert_int_equal(cfg.mqtt.port, 8883);
    config_free(&cfg);
    load_ok(&cfg, MOCK_BUS "mqtt:\n  tls_capath: certs\n  tls_ca_file: ca.pem\n"
                           "  tls_cert_file: c.pem\n  tls_key_file: c.key\npacks: [{name: p}]\n");
    assert_string_equal(cfg.mqtt.tls_capath, "certs");
    assert_string_equal(cfg.mqtt.tls_ca_file, "ca.pem");
    config_free(&cfg);
    load_ok(&cfg, MOCK_BUS "mqtt:\n  tls_capath: certs\n  tls_cert_file: c.pem\n"
                           "  tls_key_file: c.key\npacks: [{name: p}]\n");
    assert_string_equal(cfg.mqtt.tls_cert_file, "c.pem");
    config_free(&cfg);
    expect_error(MOCK_BUS "mqtt:\n  tls_capath: \"\"\npacks: [{name: p}]\n",
                 "t.yaml:5:15: mqtt.tls_capath must not be empty");
}

static void test_config_tls_version(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, MOCK_BUS "mqtt:\n  tls_ca_file: ca.pem\n  tls_version: tlsv1.3\n"
                           "packs: [{name: p}]\n");
    assert_string_equal(cfg.mqtt.tls_version, "tlsv1.3");
    config_free(&cfg);
    load_ok(&cfg, MOCK_BUS "mqtt:\n  tls_capath: certs\n  tls_version: tlsv1.2\n"
                           "packs: [{name: p}]\n");
    assert_string_equal(cfg.mqtt.tls_version, "tlsv1.2");
    config_free(&cfg);
    expect_error(MOCK_BUS "mqtt:\n  tls_ca_file: ca.pem\n  tls_version: tlsv1.1\n"
                          "packs: [{name: p}]\n",
                 "t.yaml:6:16: mqtt.tls_version must be tlsv1.2 or tlsv1.3, not 'tlsv1.1'");
    expect_error(MOCK_BUS "mqtt:\n  tls_ca_file: ca.pem\n  tls_version: TLSv1.3\n"
                          "packs: [{name: p}]\n",
                 "t.yaml:6:16: mqtt.tls_version must be tlsv1.2 or tlsv1.3, not 'TLSv1.3'");
    expect_error(MOCK_BUS "mqtt:\n  tls_version: tlsv1.3\npacks: [{name: p}]\n",
                 "t.yaml:5:16: mqtt.tls_version needs mqtt.tls_ca_file or mqtt.tls_capath (which "
                 "is what enables TLS)");
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

/* bus.mode is kept as written (for the startup log), as the driver table spells it. */
static void test_config_mode_names(void **state)
{
    static const struct {
        const char *mode;
        const struct driver *driver;
        bool listen;
    } cases[] = {
        {"modbus_per_pack", &lp4v2_driver, false}, {"lp4v2", &lp4v2_driver, false},
        {"passive", &lp4v2_driver, true},          {"active", &eg4_legacy_driver, false},
        {"eg4_legacy", &eg4_legacy_driver, false}, {"pylontech", &pylontech_driver, false},
        {"lp4_ascii", &lp4_ascii_driver, false},
    };
    char yaml[256];

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct config cfg;

        snprintf(yaml, sizeof yaml,
                 "bus: {mode: %s, transport: mock}\npacks: [{name: p, address: 2}]\n",
                 cases[i].mode);
        load_ok(&cfg, yaml);
        assert_string_equal(cfg.bus.mode, cases[i].mode);
        assert_ptr_equal(cfg.bus.driver, cases[i].driver);
        assert_int_equal(cfg.bus.listen, cases[i].listen);
        assert_int_equal(cfg.n_buses, 1);
        assert_string_equal(cfg.buses[0].name, "bus");
        config_free(&cfg);
    }
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

/* ---- ports: devices and URLs, as the links will take them -------------------------------- */

/* The error of a pack whose port is `port` (quoted, at line 6, column 11), or "" if it
 * loads. */
static const char *pack_port_error(const char *port, char *err, size_t errlen)
{
    char yaml[512];
    struct config cfg;

    snprintf(yaml, sizeof yaml, MOCK_BUS "packs:\n  - name: p1\n    port: '%s'\n", port);
    if (load(&cfg, yaml, err, errlen) == 0) {
        config_free(&cfg);
        err[0] = '\0';
    }
    return err;
}

static void test_config_tcp_url_needs_host_and_port(void **state)
{
    static const char bad_port[] = "has a port that is not a number in 1..65535";
    char err[512], expected[512];
    static const struct {
        const char *port, *why;
    } cases[] = {
        {"tcp://bridge.lan", "has no port; write tcp://HOST:PORT, the TCP port the bridge "
                             "listens on"},
        {"tcp://bridge.lan:", bad_port},
        {"tcp://bridge.lan:0", bad_port},
        {"tcp://bridge.lan:65536", bad_port},
        {"tcp://bridge.lan:http", bad_port},
        {"tcp://bridge.lan:4196/", bad_port},
        {"tcp://bridge.lan:-1", bad_port},
        {"tcp://:4196", "has no host"},
        {"tcp://", "has no host"},
        {"tcp://user@bridge.lan:4196", "has something after the host that is not ':PORT'"},
        {"tcp://bridge lan:4196", "has a character that cannot be in a host name"},
        {"tcp://::1:4196", "has an IPv6 address without brackets; write it as [2001:db8::1]:PORT"},
        {"tcp://[::1:4196", "has an IPv6 address without its closing ']'"},
        {"tcp://[]:4196", "has no host"},
        {"tcp://[bridge.lan]:4196", "has brackets around something that is not an IPv6 address"},
        {"modbus-tcp://", "has no host"},
        {"modbus-tcp://gw.lan:", bad_port},
        {"modbus-tcp://gw.lan:70000", bad_port},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(expected, sizeof expected, "t.yaml:6:11: packs[0].port '%s' %s", cases[i].port,
                 cases[i].why);
        assert_string_equal(pack_port_error(cases[i].port, err, sizeof err), expected);
    }
}

static void test_config_unknown_url_scheme_is_refused(void **state)
{
    static const char *const ports[] = {"udp://bridge.lan:4196", "http://gw.lan",
                                        "rtu:///dev/ttyUSB0", "modbus://gw.lan:502"};
    char err[512], expected[512];

    (void)state;
    for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++) {
        snprintf(expected, sizeof expected,
                 "t.yaml:6:11: packs[0].port '%s' has an unknown URL scheme; the known ones are "
                 "tcp://HOST:PORT (a raw RS-485-to-Ethernet bridge) and modbus-tcp://HOST[:PORT] "
                 "(a Modbus TCP gateway, port 502 by default)",
                 ports[i]);
        assert_string_equal(pack_port_error(ports[i], err, sizeof err), expected);
    }
    expect_error("bus:\n  mode: active\n  port: ser2net://bridge:4196\npacks: [{name: a, "
                 "address: 1}]\n",
                 "t.yaml:3:9: bus.port 'ser2net://bridge:4196' has an unknown URL scheme; the "
                 "known ones are tcp://HOST:PORT (a raw RS-485-to-Ethernet bridge) and "
                 "modbus-tcp://HOST[:PORT] (a Modbus TCP gateway, port 502 by default)");
}

static void test_config_good_urls_and_devices_are_accepted(void **state)
{
    static const char *const ports[] = {
        "tcp://bridge.lan:4196",       "tcp://192.168.1.50:1",
        "tcp://[::1]:65535",           "TCP://bridge.lan:4196",
        "modbus-tcp://gw.lan",         "modbus-tcp://gw.lan:1502",
        "modbus-tcp://[fe80::1%eth0]", "/dev/ttyUSB0",
        "/dev/serial/by-id/x:y",       "ttyUSB0",
    };
    char err[512];

    (void)state;
    for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++) {
        if (pack_port_error(ports[i], err, sizeof err)[0])
            print_error("%s: %s\n", ports[i], err);
        assert_string_equal(err, "");
    }
}

static void test_config_port_longer_than_links_hold_is_refused(void **state)
{
    char port[300], err[512];

    (void)state;
    memset(port, 'x', sizeof port);
    memcpy(port, "/dev/", 5);
    port[255] = '\0';
    assert_string_equal(pack_port_error(port, err, sizeof err), "");
    port[255] = 'x';
    port[256] = '\0';
    assert_string_equal(pack_port_error(port, err, sizeof err),
                        "t.yaml:6:11: packs[0].port '/dev/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' "
                        "is longer than 255 characters");
}

/* modbus-tcp:// is polled as a Modbus master, pack by pack: only in modbus_per_pack mode. */
static void test_config_modbus_tcp_bus_port_outside_modbus_per_pack_is_refused(void **state)
{
    static const char *const modes[] = {"active", "passive", "pylontech", "lp4_ascii"};
    char yaml[256], expected[512];
    struct config cfg;

    (void)state;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        snprintf(yaml, sizeof yaml,
                 "bus:\n  mode: %s\n  port: modbus-tcp://gw.lan:502\npacks:\n"
                 "  - {name: a, address: 2}\n",
                 modes[i]);
        snprintf(expected, sizeof expected,
                 "t.yaml:3:9: bus.port 'modbus-tcp://gw.lan:502' is a Modbus TCP gateway, which "
                 "only modbus_per_pack mode polls; %s mode needs a serial device or "
                 "tcp://HOST:PORT (a raw RS-485-to-Ethernet bridge)",
                 modes[i]);
        expect_error(yaml, expected);
        /* The same bus through a raw bridge works. */
        snprintf(yaml, sizeof yaml,
                 "bus:\n  mode: %s\n  port: tcp://bridge.lan:4196\npacks:\n"
                 "  - {name: a, address: 2}\n",
                 modes[i]);
        load_ok(&cfg, yaml);
        config_free(&cfg);
    }
    load_ok(&cfg, "bus:\n  mode: modbus_per_pack\npacks:\n  - {name: a, port: modbus-tcp://gw}\n");
    assert_string_equal(cfg.packs[0].port, "modbus-tcp://gw");
    config_free(&cfg);
}

/* ---- addresses: each protocol's own range ------------------------------------------------- */

/* Load one pack at `address` (a YAML literal, or NULL for none) on a bus of `mode`. The pack
 * entry is line 5, its address at column 24. Returns the address, or -1 with err set. */
static int mode_address(const char *mode, const char *address, char *err, size_t errlen)
{
    char yaml[256];
    struct config cfg;
    int got;

    if (address)
        snprintf(yaml, sizeof yaml,
                 "bus:\n  mode: %s\n  port: /dev/ttyUSB0\npacks:\n"
                 "  - {name: a, address: %s, port: /dev/ttyUSB0}\n",
                 mode, address);
    else
        snprintf(yaml, sizeof yaml,
                 "bus:\n  mode: %s\n  port: /dev/ttyUSB0\npacks:\n"
                 "  - {name: a, port: /dev/ttyUSB0}\n",
                 mode);
    if (load(&cfg, yaml, err, errlen) != 0)
        return -1;
    got = cfg.packs[0].address;
    config_free(&cfg);
    return got;
}

static void expect_address_refused(const char *mode, const char *address, const char *range)
{
    char err[512], expected[512];

    snprintf(expected, sizeof expected,
             "t.yaml:5:24: packs[0].address must be in %s in %s mode, not %s", range, mode,
             address);
    assert_int_equal(mode_address(mode, address, err, sizeof err), -1);
    assert_string_equal(err, expected);
}

static void expect_address_missing(const char *mode, const char *range)
{
    char err[512], expected[512];

    snprintf(expected, sizeof expected,
             "t.yaml:5:5: packs[0] 'a' has no address; %s mode needs one in %s", mode, range);
    assert_int_equal(mode_address(mode, NULL, err, sizeof err), -1);
    assert_string_equal(err, expected);
}

static void test_config_modbus_addresses_are_slave_ids_default_0x40(void **state)
{
    char err[512];

    (void)state;
    assert_int_equal(mode_address("modbus_per_pack", "1", err, sizeof err), 1);
    assert_int_equal(mode_address("modbus_per_pack", "247", err, sizeof err), 247);
    assert_int_equal(mode_address("modbus_per_pack", NULL, err, sizeof err), 0x40);
    assert_int_equal(mode_address("passive", "247", err, sizeof err), 247);
    assert_int_equal(mode_address("passive", NULL, err, sizeof err), 0x40);
    expect_address_refused("modbus_per_pack", "0", MODBUS_IDS);
    expect_address_refused("passive", "0", MODBUS_IDS);
    expect_address_refused("passive", "248", MODBUS_IDS);
}

/* The legacy protocol's DIP range is 0..15, and 0 is an address there (scan prints it). */
static void test_config_legacy_addresses_are_0_to_15(void **state)
{
    char err[512];

    (void)state;
    assert_int_equal(mode_address("active", "0", err, sizeof err), 0);
    assert_int_equal(mode_address("active", "0x00", err, sizeof err), 0);
    assert_int_equal(mode_address("active", "15", err, sizeof err), 15);
    expect_address_refused("active", "16", LEGACY_ADDRESSES);
    expect_address_refused("active", "0x40", LEGACY_ADDRESSES);
    expect_address_refused("active", "-1", LEGACY_ADDRESSES);
    expect_address_missing("active", LEGACY_ADDRESSES);
}

static void test_config_lp4_ascii_addresses_are_1_to_15(void **state)
{
    char err[512];

    (void)state;
    assert_int_equal(mode_address("lp4_ascii", "1", err, sizeof err), 1);
    assert_int_equal(mode_address("lp4_ascii", "15", err, sizeof err), 15);
    expect_address_refused("lp4_ascii", "0", LP4_ASCII_ADDRESSES);
    expect_address_refused("lp4_ascii", "16", LP4_ASCII_ADDRESSES);
    expect_address_refused("lp4_ascii", "0x40", LP4_ASCII_ADDRESSES);
    expect_address_missing("lp4_ascii", LP4_ASCII_ADDRESSES);
}

/* Pylontech V3.3 §2.5.3: ADR = module 2..13 + 0x10 x group 0..7. */
static void test_config_pylontech_addresses_are_module_plus_group(void **state)
{
    static const char *const good[] = {"2", "3", "0x0D", "0x12", "0x22", "0x37", "0x72", "0x7D"};
    static const char *const bad[] = {"0",    "1",    "0x0E", "0x0F", "0x10", "0x11",
                                      "0x1E", "0x7E", "0x82", "0xFF", "256"};
    char err[512];

    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (mode_address("pylontech", good[i], err, sizeof err) < 0)
            print_error("%s: %s\n", good[i], err);
        assert_int_equal(mode_address("pylontech", good[i], err, sizeof err),
                         (int)strtol(good[i], NULL, 0));
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_address_refused("pylontech", bad[i], PYLONTECH_ADDRESSES);
    expect_address_missing("pylontech", PYLONTECH_ADDRESSES);
}

/* The range is the mode's even when the packs come before the bus in the file. */
static void test_config_address_range_follows_mode_given_later(void **state)
{
    (void)state;
    expect_error("packs:\n  - {name: a, address: 0x40}\nbus:\n  mode: lp4_ascii\n"
                 "  port: /dev/ttyUSB0\n",
                 "t.yaml:2:24: packs[0].address must be in " LP4_ASCII_ADDRESSES
                 " in lp4_ascii mode, "
                 "not 0x40");
}

/* ---- input limits ------------------------------------------------------------------------- */

/* `unit` repeated to fill `size` bytes, NUL-terminated; the caller frees it. */
static char *repeated(const char *unit, size_t size)
{
    size_t n = strlen(unit);
    char *buf = malloc(size + 1);

    assert_non_null(buf);
    for (size_t i = 0; i < size; i++)
        buf[i] = unit[i % n];
    buf[size] = '\0';
    return buf;
}

/* 1 MB of nesting is refused at the 33rd level, not after minutes inside libyaml. */
static void test_config_deep_nesting_is_refused_at_once(void **state)
{
    static const struct {
        const char *unit, *message;
    } cases[] = {
        {"[", "t.yaml:1:33: lists and mappings nested more than 32 deep; a configuration needs "
              "5 levels"},
        {"{", "t.yaml:1:33: lists and mappings nested more than 32 deep; a configuration needs "
              "5 levels"},
        {"- ", "t.yaml:1:65: lists and mappings nested more than 32 deep; a configuration "
               "needs 5 levels"},
        {"[{", "t.yaml:1:33: lists and mappings nested more than 32 deep; a configuration needs "
               "5 levels"},
        {"a: [", "t.yaml:1:65: lists and mappings nested more than 32 deep; a configuration "
                 "needs 5 levels"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *yaml = repeated(cases[i].unit, 1000 * 1000);

        expect_error(yaml, cases[i].message);
        free(yaml);
    }
}

static void test_config_nesting_limit_is_32_levels(void **state)
{
    char yaml[128];

    (void)state;
    /* The top-level mapping is level 1: 31 lists inside bus make 32, read as usual. */
    snprintf(yaml, sizeof yaml, "bus: %.31s1%.31s\n", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
             "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
    expect_error(yaml, "t.yaml:1:6: bus must be a mapping of 'key: value' lines, not a list");
    snprintf(yaml, sizeof yaml, "bus: %.32s1%.32s\n", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
             "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
    expect_error(yaml, "t.yaml:1:37: lists and mappings nested more than 32 deep; a "
                       "configuration needs 5 levels");
}

/* libyaml's loader compares every anchor and alias with every anchor before it. */
static void test_config_anchors_are_limited(void **state)
{
    char yaml[4096];
    size_t used;

    (void)state;
    used = (size_t)snprintf(yaml, sizeof yaml, MOCK_BUS "packs: [{name: p}]\nx: [");
    for (int i = 0; i < 100; i++)
        used += (size_t)snprintf(yaml + used, sizeof yaml - used, "&a%d 1, ", i);
    snprintf(yaml + used, sizeof yaml - used, "*a99]\n");
    expect_error(yaml, "t.yaml:5:1: unknown key 'x' at the top level");
    used = (size_t)snprintf(yaml, sizeof yaml, MOCK_BUS "packs: [{name: p}]\nx: [");
    for (int i = 0; i < 101; i++)
        used += (size_t)snprintf(yaml + used, sizeof yaml - used, "&a%d 1, ", i);
    snprintf(yaml + used, sizeof yaml - used, "1]\n");
    /* "x: [" (4), then 100 anchors before the 101st: "&aN 1, " (7) x 10, "&aNN 1, " (8) x 90. */
    expect_error(yaml, "t.yaml:5:795: more than 100 anchors (&name); a configuration needs a few "
                       "at most");
}

static void test_config_file_over_1_mib_is_refused(void **state)
{
    char *yaml = repeated("#", 1024 * 1024 + 1);
    char path[] = "/tmp/test_config_XXXXXX", expected[640], err[512];
    struct config cfg;
    int fd;

    (void)state;
    memcpy(yaml, MOCK_BUS "packs: [{name: p}]\n", strlen(MOCK_BUS "packs: [{name: p}]\n"));
    expect_error(yaml, "t.yaml: larger than 1 MiB; a configuration is a few kilobytes");
    /* The same through a file; and 1 MiB itself is still read whole. */
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, yaml, 1024 * 1024 + 1), 1024 * 1024 + 1);
    assert_int_equal(config_load(&cfg, path, err, sizeof err), -1);
    snprintf(expected, sizeof expected, "%s: larger than 1 MiB; a configuration is a few kilobytes",
             path);
    assert_string_equal(err, expected);
    assert_null(cfg.path);
    assert_int_equal(ftruncate(fd, 1024 * 1024), 0);
    assert_int_equal(config_load(&cfg, path, err, sizeof err), 0);
    assert_string_equal(cfg.packs[0].name, "p");
    config_free(&cfg);
    close(fd);
    unlink(path);
    free(yaml);
}

static void test_config_more_than_256_packs_is_refused(void **state)
{
    size_t size = 64 + 257 * 24, used;
    char *yaml = malloc(size);
    struct config cfg;

    (void)state;
    assert_non_null(yaml);
    used = (size_t)snprintf(yaml, size, MOCK_BUS "packs:\n");
    for (int i = 0; i < 256; i++)
        used += (size_t)snprintf(yaml + used, size - used, "  - {name: p%d}\n", i);
    load_ok(&cfg, yaml);
    assert_int_equal(cfg.n_packs, 256);
    config_free(&cfg);
    snprintf(yaml + used, size - used, "  - {name: p256}\n");
    expect_error(yaml, "t.yaml:261:5: more than 256 packs; bms2mqtt reads at most 256");
    free(yaml);
}

/* ---- topics: every one the daemon builds fits its buffers --------------------------------- */

/* Load with mqtt `key` set to n copies of 'b' (line 5, column 3 + strlen(key) + 2), packs
 * `packs` (a flow list), and `extra` mqtt lines after it. */
static int load_long_mqtt(const char *key, size_t n, const char *extra, const char *packs,
                          char *err, size_t errlen)
{
    char *value = repeated("b", n), yaml[2048];
    struct config cfg;
    int rc;

    snprintf(yaml, sizeof yaml, MOCK_BUS "mqtt:\n  %s: %s\n%spacks: %s\n", key, value, extra,
             packs);
    free(value);
    rc = load(&cfg, yaml, err, errlen);
    if (rc == 0)
        config_free(&cfg);
    return rc;
}

static void test_config_base_topic_too_long_for_topics_is_refused(void **state)
{
    char err[512];

    (void)state;
    /* The issue's 508 characters: state and availability topics would have been cut to one. */
    assert_int_equal(load_long_mqtt("base_topic", 508, "", "[{name: p}]", err, sizeof err), -1);
    assert_string_equal(err, "t.yaml:5:15: mqtt.base_topic is too long: it makes the topic "
                             "<base_topic>/<pack name>/availability 523 characters long, more "
                             "than the 511 bms2mqtt allows; use at most 496 characters");
    /* The status topic with the default client id (up to 81 characters). */
    assert_int_equal(load_long_mqtt("base_topic", 415, "", "[{name: p}]", err, sizeof err), 0);
    assert_int_equal(load_long_mqtt("base_topic", 416, "", "[{name: p}]", err, sizeof err), -1);
    assert_string_equal(err, "t.yaml:5:15: mqtt.base_topic is too long: it makes the topic "
                             "<base_topic>/bridge/<client_id>/status 512 characters long, more "
                             "than the 511 bms2mqtt allows; use at most 415 characters");
    /* With a short client id, the longest pack name decides. */
    assert_int_equal(
        load_long_mqtt("base_topic", 433, "  client_id: c\n",
                       "[{name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}]",
                       err, sizeof err),
        0);
    assert_int_equal(
        load_long_mqtt("base_topic", 434, "  client_id: c\n",
                       "[{name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}]",
                       err, sizeof err),
        -1);
    assert_string_equal(err, "t.yaml:5:15: mqtt.base_topic is too long: it makes the topic "
                             "<base_topic>/<pack name>/availability 512 characters long, more "
                             "than the 511 bms2mqtt allows; use at most 433 characters");
}

static void test_config_client_id_too_long_for_status_topic_is_refused(void **state)
{
    char err[512];

    (void)state;
    assert_int_equal(load_long_mqtt("client_id", 488, "", "[{name: p}]", err, sizeof err), 0);
    assert_int_equal(load_long_mqtt("client_id", 489, "", "[{name: p}]", err, sizeof err), -1);
    assert_string_equal(err, "t.yaml:5:14: mqtt.client_id is too long: it makes the topic "
                             "<base_topic>/bridge/<client_id>/status 512 characters long, more "
                             "than the 511 bms2mqtt allows; use at most 488 characters");
}

static void test_config_discovery_prefix_too_long_is_refused(void **state)
{
    char err[512];

    (void)state;
    assert_int_equal(load_long_mqtt("discovery_prefix", 447, "", "[{name: p}]", err, sizeof err),
                     0);
    assert_int_equal(load_long_mqtt("discovery_prefix", 448, "", "[{name: p}]", err, sizeof err),
                     -1);
    assert_string_equal(err, "t.yaml:5:21: mqtt.discovery_prefix is too long: it makes the topic "
                             "<discovery_prefix>/binary_sensor/<pack name>_<reading>/config 512 "
                             "characters long, more than the 511 bms2mqtt allows; use at most "
                             "447 characters");
    /* Two packs: the bank's default name, bank_<8 hex digits>, is the longest. */
    assert_int_equal(
        load_long_mqtt("discovery_prefix", 436, "", "[{name: p}, {name: q}]", err, sizeof err), -1);
    assert_int_equal(
        load_long_mqtt("discovery_prefix", 435, "", "[{name: p}, {name: q}]", err, sizeof err), 0);
}

static void test_config_topic_parts_refuse_wildcards_and_nul(void **state)
{
    (void)state;
    expect_error(MOCK_BUS "mqtt:\n  discovery_prefix: ha/+\npacks: [{name: p}]\n",
                 "t.yaml:5:21: mqtt.discovery_prefix must not contain the MQTT wildcards '+' or "
                 "'#'");
    expect_error(MOCK_BUS "mqtt:\n  base_topic: \"bms\\0x\"\npacks: [{name: p}]\n",
                 "t.yaml:5:15: mqtt.base_topic contains a NUL character");
    expect_error(MOCK_BUS "packs: [{name: p}]\nbank_name: \"b#1\"\n",
                 "t.yaml:5:12: bank_name 'b#1' may only contain letters, digits, '_' and '-' (it "
                 "becomes part of MQTT topics and Home Assistant ids)");
}

/* The discovery-topic check assumes no reading key is longer than READING_KEY_MAX: every
 * driver of the table. */
static void test_config_reading_keys_fit_the_topic_check(void **state)
{
    (void)state;
    for (size_t d = 0; drivers[d]; d++) {
        for (size_t i = 0; i < *drivers[d]->n_defs; i++)
            assert_in_range(strlen(drivers[d]->defs[i].key), 1, READING_KEY_MAX);
        for (size_t i = 0; drivers[d]->retired_sensor_keys && drivers[d]->retired_sensor_keys[i];
             i++)
            assert_in_range(strlen(drivers[d]->retired_sensor_keys[i]), 1, READING_KEY_MAX);
    }
    for (size_t i = 0; i < bank_n_readings; i++)
        assert_in_range(strlen(bank_readings[i].key), 1, READING_KEY_MAX);
}

/* ---- the eg4-battery script's own config --------------------------------------------------- */

/*
 * Every key the eg4-battery script's load_config() read (its BusConfig, MQTTConfig,
 * PackConfig and cell_count), with the values its bring-up checklist shows: the mode is
 * filled in per test. The script's file itself is not copied here, only its keys.
 */
static const char script_config_fmt[] = "bus:\n"
                                        "  mode: %s\n"
                                        "  transport: serial\n"
                                        "  port: %s\n"
                                        "  baud: 9600\n"
                                        "  read_chunk: 512\n"
                                        "  timeout_s: 1.5\n"
                                        "  poll_interval_s: 10.0\n"
                                        "mqtt:\n"
                                        "  host: 192.168.1.20\n"
                                        "  port: 1883\n"
                                        "  username: homeassistant\n"
                                        "  password: s3cret\n"
                                        "  discovery_prefix: homeassistant\n"
                                        "packs:\n"
                                        "- name: lifepower4_1\n"
                                        "  address: %s\n"
                                        "  port: %s\n"
                                        "  baud: 9600\n"
                                        "- name: lifepower4_2\n"
                                        "  address: %s\n"
                                        "  port: %s\n"
                                        "  baud: 9600\n"
                                        "- name: lifepower4_3\n"
                                        "  address: %s\n"
                                        "  port: %s\n"
                                        "  baud: 9600\n"
                                        "cell_count: 16\n";

/* FNV-1a over the pack names with their NULs, as main.c makes the default client id and
 * bank name: HA entities depend on it. */
static uint32_t names_hash(const struct config *cfg)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < cfg->n_packs; i++)
        for (const char *s = cfg->packs[i].name;; s++) {
            h = (h ^ (uint8_t)*s) * 16777619u;
            if (!*s)
                break;
        }
    return h;
}

/* The settings every mode of the script's file must load to, as before the buses form. */
static void expect_script_settings(const struct config *cfg, const char *port)
{
    assert_int_equal(cfg->n_buses, 1);
    assert_string_equal(cfg->buses[0].name, "bus");
    assert_int_equal(cfg->buses[0].line, 1);
    assert_int_equal(cfg->buses[0].column, 1);
    assert_int_equal(cfg->buses[0].transport, CONFIG_TRANSPORT_SERIAL);
    if (port)
        assert_string_equal(cfg->buses[0].port, port);
    else
        assert_null(cfg->buses[0].port);
    assert_int_equal(cfg->buses[0].baud, 9600);
    assert_int_equal(cfg->buses[0].read_chunk, 512);
    assert_true(cfg->buses[0].timeout_s == 1.5);
    assert_true(cfg->buses[0].poll_interval_s == 10.0);
    assert_int_equal(cfg->buses[0].offline_after, 3);
    assert_false(cfg->buses[0].rs485);
    assert_false(cfg->buses[0].echo);
    assert_string_equal(cfg->mqtt.host, "192.168.1.20");
    assert_int_equal(cfg->mqtt.port, 1883);
    assert_string_equal(cfg->mqtt.username, "homeassistant");
    assert_string_equal(cfg->mqtt.password, "s3cret");
    assert_string_equal(cfg->mqtt.discovery_prefix, "homeassistant");
    assert_string_equal(cfg->mqtt.base_topic, "bms2mqtt");
    assert_null(cfg->mqtt.client_id);
    assert_int_equal(cfg->cell_count, 16);
    assert_true(cfg->bank);
    assert_null(cfg->bank_name);
    assert_null(cfg->state_file);
    assert_int_equal(cfg->n_packs, 3);
    assert_ptr_equal(cfg->buses[0].packs, cfg->packs);
    assert_int_equal(cfg->buses[0].n_packs, 3);
    for (size_t i = 0; i < 3; i++) {
        char name[32];

        snprintf(name, sizeof name, "lifepower4_%zu", i + 1);
        assert_string_equal(cfg->packs[i].name, name);
        assert_int_equal(cfg->packs[i].baud, 9600);
        assert_int_equal(cfg->packs[i].line, 16 + 4 * (int)i);
        assert_int_equal(cfg->packs[i].column, 9);
        assert_ptr_equal(cfg->packs[i].bus, &cfg->buses[0]);
        assert_int_equal(config_pack_baud(cfg, &cfg->packs[i]), 9600);
    }
    /* The default client id and bank name keep their hash: the same HA entities. */
    assert_int_equal(names_hash(cfg), 0xe86d0ed1u);
    /* The transitional view is the one bus. */
    assert_string_equal(cfg->bus.name, "bus");
    assert_ptr_equal(cfg->bus.driver, cfg->buses[0].driver);
    assert_int_equal(cfg->bus.listen, cfg->buses[0].listen);
    assert_ptr_equal(cfg->bus.port, cfg->buses[0].port);
    assert_int_equal(cfg->bus.baud, 9600);
    assert_true(cfg->bus.timeout_s == 1.5);
    assert_true(cfg->bus.poll_interval_s == 10.0);
    assert_ptr_equal(cfg->bus.packs, cfg->packs);
}

static void test_config_script_config_loads_to_the_same_settings(void **state)
{
    static const char *const ports[] = {
        "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K0001-if00-port0",
        "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K0002-if00-port0",
        "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K0003-if00-port0",
    };
    char yaml[2048];
    struct config cfg;

    (void)state;
    /* modbus_per_pack: one adapter per pack at 0x40; the script's shared port "" unused. */
    snprintf(yaml, sizeof yaml, script_config_fmt, "modbus_per_pack", "\"\"", "0x40", ports[0],
             "0x40", ports[1], "0x40", ports[2]);
    load_ok(&cfg, yaml);
    expect_script_settings(&cfg, NULL);
    assert_ptr_equal(cfg.buses[0].driver, &lp4v2_driver);
    assert_false(cfg.buses[0].listen);
    assert_string_equal(cfg.buses[0].mode, "modbus_per_pack");
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(cfg.packs[i].address, 0x40);
        assert_string_equal(cfg.packs[i].port, ports[i]);
        assert_string_equal(config_pack_port(&cfg.packs[i]), ports[i]);
    }
    config_free(&cfg);
    /* active: the legacy protocol on the shared port; the packs repeat it. */
    snprintf(yaml, sizeof yaml, script_config_fmt, "active", "/dev/ttyUSB0", "1", "/dev/ttyUSB0",
             "2", "/dev/ttyUSB0", "3", "/dev/ttyUSB0");
    load_ok(&cfg, yaml);
    expect_script_settings(&cfg, "/dev/ttyUSB0");
    assert_ptr_equal(cfg.buses[0].driver, &eg4_legacy_driver);
    assert_false(cfg.buses[0].listen);
    assert_string_equal(cfg.buses[0].mode, "active");
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(cfg.packs[i].address, (int)i + 1);
        assert_string_equal(cfg.packs[i].port, "/dev/ttyUSB0");
    }
    config_free(&cfg);
    /* passive: listening to Modbus RTU on the shared port. */
    snprintf(yaml, sizeof yaml, script_config_fmt, "passive", "/dev/ttyUSB0", "0x01",
             "/dev/ttyUSB0", "0x02", "/dev/ttyUSB0", "0x03", "/dev/ttyUSB0");
    load_ok(&cfg, yaml);
    expect_script_settings(&cfg, "/dev/ttyUSB0");
    assert_ptr_equal(cfg.buses[0].driver, &lp4v2_driver);
    assert_true(cfg.buses[0].listen);
    assert_string_equal(cfg.buses[0].mode, "passive");
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(cfg.packs[i].address, (int)i + 1);
        assert_string_equal(cfg.packs[i].port, "/dev/ttyUSB0");
    }
    config_free(&cfg);
}

/* ---- the buses form ------------------------------------------------------------------------ */

/* The redesign issue's example: two buses, two protocols, one daemon. */
static const char two_buses[] =
    "buses:\n"
    "  - name: rack\n"
    "    mode: modbus_per_pack\n"
    "    port: /dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0\n"
    "    baud: 9600\n"
    "    timeout_s: 1.0\n"
    "    poll_interval_s: 5\n"
    "    packs:\n"
    "      - {name: pack1, address: 1}\n"
    "      - {name: pack2, address: 2}\n"
    "  - name: stack\n"
    "    mode: pylontech\n"
    "    port: tcp://10.0.0.7:4196\n"
    "    packs:\n"
    "      - {name: us3000_1, address: 2}\n"
    "mqtt:\n"
    "  host: broker.lan\n";

static void test_config_buses_form_two_protocols(void **state)
{
    struct config cfg;
    const struct config_bus *rack, *stack;

    (void)state;
    load_ok(&cfg, two_buses);
    assert_int_equal(cfg.n_buses, 2);
    rack = &cfg.buses[0];
    stack = &cfg.buses[1];
    assert_string_equal(rack->name, "rack");
    assert_string_equal(rack->mode, "modbus_per_pack");
    assert_ptr_equal(rack->driver, &lp4v2_driver);
    assert_false(rack->listen);
    assert_string_equal(rack->port,
                        "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0");
    assert_int_equal(rack->baud, 9600);
    assert_true(rack->timeout_s == 1.0);
    assert_true(rack->poll_interval_s == 5.0);
    assert_int_equal(rack->line, 2);
    assert_int_equal(rack->column, 5);
    assert_int_equal(rack->n_packs, 2);
    assert_ptr_equal(rack->packs, &cfg.packs[0]);
    assert_string_equal(stack->name, "stack");
    assert_ptr_equal(stack->driver, &pylontech_driver);
    assert_string_equal(stack->port, "tcp://10.0.0.7:4196");
    assert_int_equal(stack->baud, 115200); /* the driver's own rate */
    assert_true(stack->timeout_s == 1.5);  /* defaults are per bus, not inherited */
    assert_true(stack->poll_interval_s == 10.0);
    assert_int_equal(stack->line, 11);
    assert_int_equal(stack->n_packs, 1);
    assert_ptr_equal(stack->packs, &cfg.packs[2]);
    /* Every pack of every bus, in file order, each knowing its bus. */
    assert_int_equal(cfg.n_packs, 3);
    assert_string_equal(cfg.packs[0].name, "pack1");
    assert_string_equal(cfg.packs[1].name, "pack2");
    assert_string_equal(cfg.packs[2].name, "us3000_1");
    assert_ptr_equal(cfg.packs[1].bus, rack);
    assert_ptr_equal(cfg.packs[2].bus, stack);
    assert_int_equal(cfg.packs[2].address, 2);
    assert_int_equal(config_pack_baud(&cfg, &cfg.packs[2]), 115200);
    assert_int_equal(config_pack_baud(&cfg, &cfg.packs[0]), 9600);
    assert_string_equal(config_pack_port(&cfg.packs[0]), rack->port);
    assert_string_equal(config_pack_port(&cfg.packs[2]), "tcp://10.0.0.7:4196");
    assert_null(cfg.packs[0].port);
    assert_int_equal(cfg.packs[0].line, 9);
    /* The transitional view is the first bus. */
    assert_string_equal(cfg.bus.name, "rack");
    assert_ptr_equal(cfg.bus.driver, &lp4v2_driver);
    assert_ptr_equal(cfg.bus.port, rack->port);
    assert_true(cfg.bus.poll_interval_s == 5.0);
    assert_string_equal(cfg.mqtt.host, "broker.lan");
    config_free(&cfg);
    assert_null(cfg.buses);
    assert_int_equal(cfg.n_buses, 0);
}

static void test_config_buses_form_passive_bus_with_protocol(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, "buses:\n  - name: heard\n    mode: passive\n    protocol: pylontech\n"
                  "    port: /dev/ttyUSB0\n    packs: [{name: m2, address: 2}]\n");
    assert_ptr_equal(cfg.buses[0].driver, &pylontech_driver);
    assert_true(cfg.buses[0].listen);
    assert_string_equal(cfg.buses[0].mode, "passive");
    assert_int_equal(cfg.buses[0].baud, 115200);
    config_free(&cfg);
    expect_error("buses:\n  - name: s\n    mode: pylontech\n    protocol: pylontech\n"
                 "    port: /dev/ttyUSB0\n    packs: [{name: m2, address: 2}]\n",
                 "t.yaml:4:15: buses[0].protocol is only used in passive mode (buses[0].mode is "
                 "pylontech)");
}

static void test_config_buses_need_unique_valid_names(void **state)
{
    (void)state;
    expect_error("buses:\n  - mode: active\n    port: /dev/x\n    packs: [{name: a, address: 1}]\n",
                 "t.yaml:2:5: missing required key 'name' in buses[0]");
    expect_error("buses:\n  - name:\n    mode: active\n",
                 "t.yaml:2:5: buses[0].name needs a value");
    expect_error("buses:\n  - name: rack one\n",
                 "t.yaml:2:11: buses[0].name 'rack one' may only contain letters, digits, '_' "
                 "and '-'");
    expect_error("buses:\n"
                 "  - name: a\n"
                 "    mode: active\n"
                 "    port: /dev/x\n"
                 "    packs: [{name: p1, address: 1}]\n"
                 "  - name: a\n"
                 "    mode: active\n"
                 "    port: /dev/y\n"
                 "    packs: [{name: p2, address: 1}]\n",
                 "t.yaml:6:11: duplicate bus name 'a' (first used at line 2)");
}

/* One form or the other, refused at the second one. */
static void test_config_buses_and_bus_do_not_mix(void **state)
{
    static const char bus_item[] =
        "  - {name: a, mode: active, port: /dev/x, packs: [{name: p, address: 1}]}\n";
    char yaml[512];

    (void)state;
    snprintf(yaml, sizeof yaml, "bus:\n  mode: active\nbuses:\n%s", bus_item);
    expect_error(yaml, "t.yaml:3:1: buses and bus (line 1) are two forms of the bus settings; use "
                       "either buses (a list of buses, each with its packs) or the original bus "
                       "and packs, not both");
    snprintf(yaml, sizeof yaml, "buses:\n%spacks: [{name: q}]\n", bus_item);
    expect_error(yaml, "t.yaml:3:1: packs and buses (line 1) are two forms of the bus settings; "
                       "use either buses (a list of buses, each with its packs) or the original "
                       "bus and packs, not both");
    snprintf(yaml, sizeof yaml, "packs: [{name: q}]\nbuses:\n%s", bus_item);
    expect_error(yaml, "t.yaml:2:1: buses and packs (line 1) are two forms of the bus settings; "
                       "use either buses (a list of buses, each with its packs) or the original "
                       "bus and packs, not both");
}

static void test_config_buses_unknown_mode_lists_the_driver_table(void **state)
{
    (void)state;
    expect_error("buses:\n  - name: a\n    mode: modbus\n",
                 "t.yaml:3:11: unknown buses[0].mode 'modbus' (valid: " VALID_MODES ")");
    expect_error("buses:\n  - name: a\n    mode: passive\n    protocol: active\n",
                 "t.yaml:4:15: unknown buses[0].protocol 'active' (valid: lp4v2, eg4_legacy, "
                 "pylontech, lp4_ascii)");
}

/* Each driver's range, default and rule, through the table, in the buses form. */
static void test_config_buses_addresses_follow_each_driver(void **state)
{
    char yaml[256], err[512], expected[512], address[32];
    struct config cfg;

    (void)state;
    for (size_t d = 0; drivers[d]; d++) {
        const struct driver *dr = drivers[d];
        const int cases[] = {dr->addr_min, dr->addr_max, dr->addr_min - 1, dr->addr_max + 1};

        if (dr->bus_run)
            continue; /* a GX bus has no packs (test_config_gx.c) */

        /* No address: the driver's default, or an error naming its rule. */
        snprintf(yaml, sizeof yaml,
                 "buses:\n  - name: b\n    mode: %s\n    port: /dev/ttyUSB0\n    packs:\n"
                 "      - {name: p}\n",
                 dr->name);
        if (dr->addr_default >= 0) {
            load_ok(&cfg, yaml);
            assert_int_equal(cfg.packs[0].address, dr->addr_default);
            config_free(&cfg);
        } else {
            snprintf(expected, sizeof expected,
                     "t.yaml:6:9: buses[0].packs[0] 'p' has no address; %s mode needs one in %s",
                     dr->name, dr->addr_rule);
            expect_error(yaml, expected);
        }
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            snprintf(address, sizeof address, "%d", cases[i]);
            snprintf(yaml, sizeof yaml,
                     "buses:\n  - name: b\n    mode: %s\n    port: /dev/ttyUSB0\n    packs:\n"
                     "      - {name: p, address: %s}\n",
                     dr->name, address);
            if (i < 2) {
                assert_int_equal(load(&cfg, yaml, err, sizeof err), 0);
                assert_int_equal(cfg.packs[0].address, cases[i]);
                assert_true(driver_addr_ok(dr, cases[i]));
                config_free(&cfg);
                continue;
            }
            snprintf(expected, sizeof expected,
                     "t.yaml:6:28: buses[0].packs[0].address must be in %s in %s mode, not %s",
                     dr->addr_rule, dr->name, address);
            expect_error(yaml, expected);
        }
    }
}

/* Pack names are Home Assistant ids: unique across buses. */
static void test_config_buses_pack_names_unique_across_buses(void **state)
{
    (void)state;
    expect_error("buses:\n"
                 "  - {name: a, mode: active, port: /dev/x, packs: [{name: p, address: 1}]}\n"
                 "  - {name: b, mode: active, port: /dev/y, packs: [{name: p, address: 1}]}\n",
                 "t.yaml:3:58: duplicate pack name 'p' (first used at line 2)");
}

static void test_config_buses_do_not_share_a_port(void **state)
{
    struct config cfg;

    (void)state;
    expect_error("buses:\n"
                 "  - {name: a, mode: active, port: /dev/x, packs: [{name: p, address: 1}]}\n"
                 "  - {name: b, mode: pylontech, port: /dev/x, packs: [{name: q, address: 2}]}\n",
                 "t.yaml:3:38: buses[1].port '/dev/x' is also a port of bus 'a' (line 2); two "
                 "buses cannot share a port: put their packs on one bus");
    /* A modbus_per_pack pack's own port is one of its bus's ports. */
    expect_error("buses:\n"
                 "  - {name: a, mode: active, port: /dev/x, packs: [{name: p, address: 1}]}\n"
                 "  - name: b\n"
                 "    mode: modbus_per_pack\n"
                 "    packs: [{name: q, port: /dev/y}, {name: r, port: /dev/x}]\n",
                 "t.yaml:5:54: buses[1].packs[1].port '/dev/x' is also a port of bus 'a' (line "
                 "2); two buses cannot share a port: put their packs on one bus");
    /* Simulated buses have no ports to share. */
    load_ok(&cfg, "buses:\n"
                  "  - {name: a, mode: active, transport: mock, packs: [{name: p, address: 1}]}\n"
                  "  - {name: b, mode: lp4_ascii, transport: mock, packs: [{name: q, address: "
                  "1}]}\n");
    assert_int_equal(cfg.n_buses, 2);
    config_free(&cfg);
}

static void test_config_buses_shapes_are_checked(void **state)
{
    (void)state;
    expect_error("buses:\n", "t.yaml:1:1: buses is empty; list at least one bus");
    expect_error("buses: []\n", "t.yaml:1:8: buses is empty; list at least one bus");
    expect_error("buses: {name: a}\n",
                 "t.yaml:1:8: buses must be a list of '- name: ...' entries, not a mapping");
    expect_error("buses: [rack]\n",
                 "t.yaml:1:9: buses[0] must be a mapping of 'key: value' lines, not 'rack'");
    expect_error("buses:\n  - {name: a, mode: active, port: /dev/x}\n",
                 "t.yaml:2:5: missing required key 'packs' in buses[0]");
    expect_error("buses:\n  - {name: a, mode: active, port: /dev/x, packs: []}\n",
                 "t.yaml:2:50: buses[0].packs is empty; list at least one pack");
    expect_error("buses:\n  - {name: a, mode: active, port: /dev/x, packs: [{name: p}]}\n",
                 "t.yaml:2:51: buses[0].packs[0] 'p' has no address; active mode needs one "
                 "in " LEGACY_ADDRESSES);
    expect_error("buses:\n  - {name: a, mode: active, packs: [{name: p, address: 1}]}\n",
                 "t.yaml:2:5: buses[0].port is required in active mode with serial transport");
}

static void test_config_buses_hints_name_the_buses_entries(void **state)
{
    (void)state;
    expect_error("buses:\n"
                 "  - {name: a, mode: active, port: /dev/x, packs: [{name: p, address: 1}]}\n"
                 "port: /dev/x\n",
                 "t.yaml:3:1: unknown key 'port' at the top level (that key belongs in buses "
                 "entries, mqtt or packs entries; check the indentation)");
    expect_error("buses:\n  - {name: a, mdoe: active}\n",
                 "t.yaml:2:15: unknown key 'mdoe' in buses[0] (did you mean 'mode'?)");
    expect_error("buses:\n  - {name: a, mode: active, packs: [{name: p, adress: 1}]}\n",
                 "t.yaml:2:47: unknown key 'adress' in buses[0].packs[0] (did you mean "
                 "'address'?)");
}

static void test_config_buses_are_limited(void **state)
{
    size_t size = 128 + 400 * 80, used;
    char *yaml = malloc(size);
    struct config cfg;

    (void)state;
    assert_non_null(yaml);
    used = (size_t)snprintf(yaml, size, "buses:\n");
    for (int i = 0; i < 64; i++)
        used += (size_t)snprintf(yaml + used, size - used,
                                 "  - {name: b%d, mode: lp4v2, transport: mock, packs: [{name: "
                                 "p%d}]}\n",
                                 i, i);
    load_ok(&cfg, yaml);
    assert_int_equal(cfg.n_buses, 64);
    config_free(&cfg);
    snprintf(yaml + used, size - used,
             "  - {name: b64, mode: lp4v2, transport: mock, packs: [{name: p64}]}\n");
    expect_error(yaml, "t.yaml:66:5: more than 64 buses; bms2mqtt reads at most 64");
    /* 256 packs in all, whichever bus they are on. */
    used = (size_t)snprintf(yaml, size,
                            "buses:\n  - name: a\n    mode: lp4v2\n    transport: mock\n"
                            "    packs:\n");
    for (int i = 0; i < 200; i++)
        used += (size_t)snprintf(yaml + used, size - used, "      - {name: a%d}\n", i);
    used += (size_t)snprintf(yaml + used, size - used,
                             "  - name: b\n    mode: lp4v2\n    transport: mock\n    packs:\n");
    for (int i = 0; i < 56; i++)
        used += (size_t)snprintf(yaml + used, size - used, "      - {name: b%d}\n", i);
    load_ok(&cfg, yaml);
    assert_int_equal(cfg.n_packs, 256);
    assert_int_equal(cfg.buses[1].n_packs, 56);
    config_free(&cfg);
    snprintf(yaml + used, size - used, "      - {name: b56}\n");
    expect_error(yaml, "t.yaml:266:9: more than 256 packs; bms2mqtt reads at most 256");
    free(yaml);
}

/* ---- RS-485 and echo -------------------------------------------------------------------- */

static void test_config_rs485_and_echo_keys(void **state)
{
    struct config cfg;

    (void)state;
    load_ok(&cfg, MOCK_BUS "packs: [{name: p}]\n");
    assert_false(cfg.buses[0].rs485);
    assert_true(cfg.buses[0].rs485_rts_on_send);
    assert_int_equal(cfg.buses[0].rs485_delay_before_ms, 0);
    assert_int_equal(cfg.buses[0].rs485_delay_after_ms, 0);
    assert_false(cfg.buses[0].echo);
    config_free(&cfg);
    load_ok(&cfg, "bus:\n  mode: active\n  port: /dev/ttyAMA0\n  rs485: true\n"
                  "  rs485_rts_on_send: false\n  rs485_delay_before_ms: 5\n"
                  "  rs485_delay_after_ms: 100\n  echo: yes\npacks: [{name: a, address: 1}]\n");
    assert_true(cfg.buses[0].rs485);
    assert_false(cfg.buses[0].rs485_rts_on_send);
    assert_int_equal(cfg.buses[0].rs485_delay_before_ms, 5);
    assert_int_equal(cfg.buses[0].rs485_delay_after_ms, 100);
    assert_true(cfg.buses[0].echo);
    assert_true(cfg.bus.rs485 && cfg.bus.echo); /* the transitional view too */
    config_free(&cfg);
    /* Per bus in the buses form; an echo over a raw bridge is the RS-485 side's. */
    load_ok(&cfg, "buses:\n"
                  "  - {name: hat, mode: lp4_ascii, port: /dev/ttyS0, rs485: on, "
                  "rs485_delay_after_ms: 0x02, packs: [{name: a, address: 1}]}\n"
                  "  - {name: net, mode: pylontech, port: 'tcp://b:1', echo: true, packs: "
                  "[{name: m, address: 2}]}\n");
    assert_true(cfg.buses[0].rs485);
    assert_int_equal(cfg.buses[0].rs485_delay_after_ms, 2);
    assert_false(cfg.buses[0].echo);
    assert_false(cfg.buses[1].rs485);
    assert_true(cfg.buses[1].echo);
    config_free(&cfg);
}

static void test_config_rs485_and_echo_refusals(void **state)
{
    (void)state;
    expect_error(MOCK_BUS "  rs485: 1\npacks: [{name: p}]\n",
                 "t.yaml:4:10: bus.rs485 must be true or false, not '1'");
    expect_error(MOCK_BUS "  echo: [x]\npacks: [{name: p}]\n",
                 "t.yaml:4:9: bus.echo must be true or false, not a list");
    expect_error(MOCK_BUS "  rs485: true\n  rs485_delay_before_ms: 101\npacks: [{name: p}]\n",
                 "t.yaml:5:26: bus.rs485_delay_before_ms must be in 0..100, not 101");
    expect_error(MOCK_BUS "  rs485: true\n  rs485_delay_after_ms: -1\npacks: [{name: p}]\n",
                 "t.yaml:5:25: bus.rs485_delay_after_ms must be in 0..100, not -1");
    expect_error(MOCK_BUS "  rs485: true\n  rs485_delay_after_ms: 1.5\npacks: [{name: p}]\n",
                 "t.yaml:5:25: bus.rs485_delay_after_ms must be an integer, not '1.5'");
    expect_error(MOCK_BUS "  rs485_rts_on_send: maybe\npacks: [{name: p}]\n",
                 "t.yaml:4:22: bus.rs485_rts_on_send must be true or false, not 'maybe'");
    /* The details of RS-485 mode need it on. */
    expect_error(MOCK_BUS "  rs485_delay_after_ms: 5\npacks: [{name: p}]\n",
                 "t.yaml:4:25: bus.rs485_delay_after_ms is only used with bus.rs485: true");
    expect_error(MOCK_BUS "  rs485: false\n  rs485_rts_on_send: false\npacks: [{name: p}]\n",
                 "t.yaml:5:22: bus.rs485_rts_on_send is only used with bus.rs485: true");
    /* RS-485 mode is a serial port's. */
    expect_error("bus:\n  mode: active\n  port: tcp://bridge:4196\n  rs485: true\n"
                 "packs: [{name: a, address: 1}]\n",
                 "t.yaml:4:10: bus.rs485: true sets up a serial port's RS-485 transceiver, and "
                 "bus.port 'tcp://bridge:4196' is a network port (the bridge or gateway drives "
                 "its own)");
    expect_error("bus:\n  mode: modbus_per_pack\n  rs485: true\npacks:\n"
                 "  - {name: a, port: /dev/ttyUSB0}\n  - {name: b, port: 'modbus-tcp://gw'}\n",
                 "t.yaml:3:10: bus.rs485: true sets up a serial port's RS-485 transceiver, and "
                 "packs[1].port 'modbus-tcp://gw' is a network port (the bridge or gateway "
                 "drives its own)");
    /* A listener never transmits; a Modbus TCP gateway sends no echo. */
    expect_error("bus:\n  mode: passive\n  port: /dev/x\n  echo: true\npacks: [{name: a}]\n",
                 "t.yaml:4:9: bus.echo: true is for a bus that transmits; in passive mode it only "
                 "listens");
    expect_error("buses:\n  - {name: g, mode: lp4v2, port: 'modbus-tcp://gw', echo: true, packs: "
                 "[{name: a}]}\n",
                 "t.yaml:2:59: buses[0].echo: true does not apply to buses[0].port "
                 "'modbus-tcp://gw', a Modbus TCP gateway (it sends no echo back)");
}

/* A shared bus's packs are on its port: a pack's own port may only repeat it. */
static void test_config_shared_bus_pack_port_must_be_the_bus_port(void **state)
{
    struct config cfg;

    (void)state;
    expect_error("bus:\n  mode: active\n  port: /dev/ttyUSB0\npacks:\n"
                 "  - {name: a, address: 1, port: /dev/ttyUSB1}\n",
                 "t.yaml:5:33: packs[0].port '/dev/ttyUSB1' is not bus.port: in active mode every "
                 "pack is on the bus's port; put packs on another port in a bus of their own "
                 "(buses:)");
    /* A Modbus bus that polls may be reached through a gateway as a whole. */
    load_ok(&cfg, "bus:\n  mode: modbus_per_pack\n  port: modbus-tcp://gw\npacks:\n"
                  "  - {name: a, address: 1}\n  - {name: b, address: 2}\n");
    assert_string_equal(config_pack_port(&cfg.packs[1]), "modbus-tcp://gw");
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
        cmocka_unit_test(test_config_baud_is_what_the_serial_layer_sets),
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
        cmocka_unit_test(test_config_mqtt_protocol_version),
        cmocka_unit_test(test_config_tls_capath_enables_tls),
        cmocka_unit_test(test_config_tls_version),
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
        cmocka_unit_test(test_config_tcp_url_needs_host_and_port),
        cmocka_unit_test(test_config_unknown_url_scheme_is_refused),
        cmocka_unit_test(test_config_good_urls_and_devices_are_accepted),
        cmocka_unit_test(test_config_port_longer_than_links_hold_is_refused),
        cmocka_unit_test(test_config_modbus_tcp_bus_port_outside_modbus_per_pack_is_refused),
        cmocka_unit_test(test_config_modbus_addresses_are_slave_ids_default_0x40),
        cmocka_unit_test(test_config_legacy_addresses_are_0_to_15),
        cmocka_unit_test(test_config_lp4_ascii_addresses_are_1_to_15),
        cmocka_unit_test(test_config_pylontech_addresses_are_module_plus_group),
        cmocka_unit_test(test_config_address_range_follows_mode_given_later),
        cmocka_unit_test(test_config_deep_nesting_is_refused_at_once),
        cmocka_unit_test(test_config_nesting_limit_is_32_levels),
        cmocka_unit_test(test_config_anchors_are_limited),
        cmocka_unit_test(test_config_file_over_1_mib_is_refused),
        cmocka_unit_test(test_config_more_than_256_packs_is_refused),
        cmocka_unit_test(test_config_base_topic_too_long_for_topics_is_refused),
        cmocka_unit_test(test_config_client_id_too_long_for_status_topic_is_refused),
        cmocka_unit_test(test_config_discovery_prefix_too_long_is_refused),
        cmocka_unit_test(test_config_topic_parts_refuse_wildcards_and_nul),
        cmocka_unit_test(test_config_reading_keys_fit_the_topic_check),
        cmocka_unit_test(test_config_script_config_loads_to_the_same_settings),
        cmocka_unit_test(test_config_buses_form_two_protocols),
        cmocka_unit_test(test_config_buses_form_passive_bus_with_protocol),
        cmocka_unit_test(test_config_buses_need_unique_valid_names),
        cmocka_unit_test(test_config_buses_and_bus_do_not_mix),
        cmocka_unit_test(test_config_buses_unknown_mode_lists_the_driver_table),
        cmocka_unit_test(test_config_buses_addresses_follow_each_driver),
        cmocka_unit_test(test_config_buses_pack_names_unique_across_buses),
        cmocka_unit_test(test_config_buses_do_not_share_a_port),
        cmocka_unit_test(test_config_buses_shapes_are_checked),
        cmocka_unit_test(test_config_buses_hints_name_the_buses_entries),
        cmocka_unit_test(test_config_buses_are_limited),
        cmocka_unit_test(test_config_rs485_and_echo_keys),
        cmocka_unit_test(test_config_rs485_and_echo_refusals),
        cmocka_unit_test(test_config_shared_bus_pack_port_must_be_the_bus_port),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
