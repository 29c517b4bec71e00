/* SPDX-License-Identifier: MIT */
/* test_discovery.c - HA discovery configs and state JSON of an LP4V2 pack. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ha.h"
#include "lp4v2.h"

static const struct device_identity ident = {"LP4V2-48V-100AH", "V03R04", "SN0001"};
static const struct ha_pack_ctx ctx = {
    "lifepower4_1",
    "bms2mqtt/lifepower4_1/state",
    "bms2mqtt/bridge/x/status",
    "bms2mqtt/lifepower4_1/availability",
    &ident,
    50,
    "eg4",
    "EG4 LifePower4 lifepower4_1",
    "EG4 Electronics",
    "LifePower4 v2 (Modbus)",
};

static json_t *config_of(const char *key)
{
    int i = reading_find(lp4v2_readings, lp4v2_n_readings, key);
    assert_true(i >= 0);
    char *text = ha_discovery_config(&ctx, &lp4v2_readings[i]);
    assert_non_null(text);
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(j);
    return j;
}

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void test_discovery_topic_keeps_the_script_layout(void **state)
{
    char t[128];
    (void)state;
    ha_discovery_topic(t, sizeof(t), "homeassistant", "sensor", "lifepower4_1", "soc");
    assert_string_equal(t, "homeassistant/sensor/lifepower4_1_soc/config");
}

static void test_discovery_voltage_sensor(void **state)
{
    json_t *j = config_of("pack_voltage");
    (void)state;
    assert_string_equal(str(j, "unique_id"), "lifepower4_1_pack_voltage_eg4");
    assert_string_equal(str(j, "name"), "Pack voltage");
    assert_string_equal(str(j, "unit_of_measurement"), "V");
    assert_string_equal(str(j, "device_class"), "voltage");
    assert_string_equal(str(j, "state_class"), "measurement");
    assert_string_equal(str(j, "state_topic"), "bms2mqtt/lifepower4_1/state");
    assert_string_equal(str(j, "value_template"), "{{ value_json.pack_voltage }}");
    assert_string_equal(str(j, "default_entity_id"), "sensor.lifepower4_1_pack_voltage");
    assert_string_equal(str(j, "availability_mode"), "all");
    assert_int_equal(json_array_size(json_object_get(j, "availability")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "expire_after")), 50);
    json_t *dev = json_object_get(j, "device");
    assert_string_equal(json_string_value(json_array_get(json_object_get(dev, "identifiers"), 0)),
                        "lifepower4_1");
    assert_string_equal(str(dev, "model"), "LP4V2-48V-100AH");
    assert_string_equal(str(dev, "sw_version"), "V03R04");
    assert_string_equal(str(dev, "serial_number"), "SN0001");
    assert_string_equal(str(json_object_get(j, "origin"), "name"), "bms2mqtt");
    json_decref(j);
}

static void test_discovery_charge_in_ah_has_no_device_class(void **state)
{
    json_t *j = config_of("remaining_ah");
    (void)state;
    assert_string_equal(str(j, "unit_of_measurement"), "Ah");
    assert_null(json_object_get(j, "device_class"));
    json_decref(j);
}

static void test_discovery_soc_is_battery_soh_is_plain_percent(void **state)
{
    json_t *soc = config_of("soc"), *soh = config_of("soh");
    (void)state;
    assert_string_equal(str(soc, "device_class"), "battery");
    assert_null(json_object_get(soh, "device_class"));
    assert_string_equal(str(soh, "unit_of_measurement"), "%");
    json_decref(soc);
    json_decref(soh);
}

static void test_discovery_cell_delta_is_millivolt_voltage(void **state)
{
    json_t *j = config_of("cell_voltage_delta_mv");
    (void)state;
    assert_string_equal(str(j, "unit_of_measurement"), "mV");
    assert_string_equal(str(j, "device_class"), "voltage");
    json_decref(j);
}

static void test_discovery_flags_are_binary_sensors(void **state)
{
    json_t *w = config_of("warning_cell_ov"), *p = config_of("protection_discharge_sc");
    json_t *h = config_of("heater");
    (void)state;
    assert_string_equal(str(w, "device_class"), "problem");
    assert_string_equal(str(w, "payload_on"), "1");
    assert_string_equal(str(w, "payload_off"), "0");
    assert_null(json_object_get(w, "unit_of_measurement"));
    assert_null(json_object_get(w, "state_class"));
    assert_string_equal(str(p, "device_class"), "safety");
    assert_string_equal(str(h, "device_class"), "heat");
    assert_non_null(strstr(str(h, "name"), "unconfirmed"));
    json_decref(w);
    json_decref(p);
    json_decref(h);
}

static void test_discovery_raw_registers_are_hidden_diagnostics(void **state)
{
    json_t *j = config_of("register_07");
    (void)state;
    assert_string_equal(str(j, "entity_category"), "diagnostic");
    assert_true(json_is_false(json_object_get(j, "enabled_by_default")));
    assert_string_equal(str(j, "unique_id"), "lifepower4_1_register_07_eg4");
    /* Raw registers travel as one array in the state message. */
    assert_string_equal(str(j, "value_template"), "{{ value_json.registers[7] }}");
    json_decref(j);
}

static void test_discovery_status_is_enum_with_options(void **state)
{
    json_t *j = config_of("status");
    (void)state;
    assert_string_equal(str(j, "device_class"), "enum");
    assert_int_equal(json_array_size(json_object_get(j, "options")), 5);
    assert_null(json_object_get(j, "state_class"));
    assert_null(json_object_get(j, "unit_of_measurement"));
    json_decref(j);
}

static void test_state_json_numbers_flags_enums_and_null(void **state)
{
    double *v = calloc(lp4v2_n_readings, sizeof(*v));
    (void)state;
    for (size_t i = 0; i < lp4v2_n_readings; i++)
        v[i] = NAN;
    /* Unrounded values are shown at each reading's precision. */
    v[reading_find(lp4v2_readings, lp4v2_n_readings, "pack_voltage")] = 53.1249;
    v[reading_find(lp4v2_readings, lp4v2_n_readings, "pack_power")] = -662.5;
    v[reading_find(lp4v2_readings, lp4v2_n_readings, "cell_01_voltage")] = 3.2806;
    v[reading_find(lp4v2_readings, lp4v2_n_readings, "soc")] = 55;
    v[reading_find(lp4v2_readings, lp4v2_n_readings, "status")] = 1;
    v[reading_find(lp4v2_readings, lp4v2_n_readings, "warning_pack_ov")] = 1;
    struct ha_state *s = ha_state_new(lp4v2_readings, lp4v2_n_readings);
    assert_non_null(s);
    assert_null(ha_state_text(s));
    const char *text = ha_state_format(s, v);
    assert_non_null(text);
    assert_ptr_equal(ha_state_text(s), text);
    assert_non_null(strstr(text, "\"pack_voltage\":53.12,"));
    assert_non_null(strstr(text, "\"cell_01_voltage\":3.281,"));
    assert_non_null(strstr(text, "\"soc\":55,"));
    assert_non_null(strstr(text, "\"pack_power\":-663,"));
    assert_non_null(strstr(text, "\"status\":\"charging\""));
    assert_non_null(strstr(text, "\"warning_pack_ov\":1,"));
    assert_non_null(strstr(text, "\"soh\":null"));
    assert_non_null(strstr(text, "\"registers\":[null,null,"));
    assert_null(strstr(text, "register_07"));
    /* Members in table order, and updated in place on the next poll (types may change). */
    static const char head[] = "{\"pack_voltage\":53.12,\"pack_current\":null,";
    assert_memory_equal(text, head, sizeof(head) - 1);
    v[reading_find(lp4v2_readings, lp4v2_n_readings, "pack_voltage")] = NAN;
    v[reading_find(lp4v2_readings, lp4v2_n_readings, "soh")] = 99;
    v[reading_find(lp4v2_readings, lp4v2_n_readings, "status")] = 2;
    text = ha_state_format(s, v);
    assert_non_null(strstr(text, "\"pack_voltage\":null,"));
    assert_non_null(strstr(text, "\"soh\":99,"));
    assert_non_null(strstr(text, "\"status\":\"discharging\""));
    ha_state_free(s);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discovery_topic_keeps_the_script_layout),
        cmocka_unit_test(test_discovery_voltage_sensor),
        cmocka_unit_test(test_discovery_charge_in_ah_has_no_device_class),
        cmocka_unit_test(test_discovery_soc_is_battery_soh_is_plain_percent),
        cmocka_unit_test(test_discovery_cell_delta_is_millivolt_voltage),
        cmocka_unit_test(test_discovery_flags_are_binary_sensors),
        cmocka_unit_test(test_discovery_raw_registers_are_hidden_diagnostics),
        cmocka_unit_test(test_discovery_status_is_enum_with_options),
        cmocka_unit_test(test_state_json_numbers_flags_enums_and_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
