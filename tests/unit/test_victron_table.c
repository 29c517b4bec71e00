/* SPDX-License-Identifier: MIT */
/* test_victron_table.c - a GX's register table: Victron's attributes.csv (when the build has
 * it), the overlay's core set alone, and crafted files with faults. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "regmap.h"
#include "victron_table.h"

#ifndef VICTRON_CSV
#define VICTRON_CSV "../shared/protocols/victron/attributes.csv"
#endif

/* Warnings of the last load, one per line. */
static char warnings[16384];
static unsigned n_warned;

static void collect(void *ctx, const char *msg)
{
    size_t n = strlen(warnings);

    (void)ctx;
    snprintf(warnings + n, sizeof(warnings) - n, "%s\n", msg);
    n_warned++;
}

static const struct victron_load_opts opts = {.warn = collect};
static const struct victron_load_opts opts_no_descs = {.warn = collect, .no_descs = true};

static struct victron_table *parse(const char *text, const struct victron_load_opts *o, char *err,
                                   size_t cap)
{
    struct victron_table *t = NULL;

    warnings[0] = '\0';
    n_warned = 0;
    if (victron_table_parse(text, strlen(text), "x.csv", o, &t, err, cap) < 0)
        return NULL;
    return t;
}

/* The real table, or NULL (the test is skipped) when ../shared has none. */
static struct victron_table *real(void)
{
    struct victron_table *t = NULL;
    char err[256];
    struct stat st;

    if (stat(VICTRON_CSV, &st) < 0 || !S_ISREG(st.st_mode))
        return NULL;
    warnings[0] = '\0';
    n_warned = 0;
    if (victron_table_load_file(VICTRON_CSV, &opts, &t, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    return t;
}

/* The reading of `service` at register reg. */
static const struct reading_def *def_at(const struct victron_table *t, const char *service,
                                        uint16_t reg)
{
    const struct victron_service *s = victron_table_service(t, service);
    int i = s ? victron_service_find(s, reg) : -1;

    if (i < 0)
        fail_msg("no %s register %u", service, reg);
    return &s->map.defs[i];
}

static const char *option_of(const struct reading_def *d, uint16_t raw)
{
    double v = reading_decode(d, &raw);

    return isnan(v) ? NULL : d->options[(int)v];
}

/* ---- Victron's own table ---- */

static void test_real_counts(void **state)
{
    struct victron_table *t = real();

    (void)state;
    if (!t)
        skip();
    /* shared/protocols/victron/README.md: 949 values, 54 spacer rows, 33 services, 152 W. */
    assert_int_equal(t->n_lines, 1003);
    assert_int_equal(t->n_values, 949);
    assert_int_equal(t->n_reserved, 54);
    assert_int_equal(t->n_services, 33);
    assert_int_equal(t->n_writable, 152);
    assert_int_equal(t->n_skipped, 0);
    assert_int_equal(t->n_readings, 950); /* 834..835 firmware: one row, two readings */
    assert_true(t->from_csv);
    /* One warning: Victron's line for alternator 4113 gives code 201 twice. */
    assert_int_equal(t->n_warnings, 1);
    assert_non_null(strstr(warnings, "attributes.csv:730: enum code 201"));
    unsigned w = 0, v = 0;
    for (size_t s = 0; s < t->n_services; s++) {
        w += t->services[s].n_writable;
        v += t->services[s].n_values;
        assert_int_equal(t->services[s].index, s);
    }
    assert_int_equal(w, 152);
    assert_int_equal(v, 950);
    const struct victron_service *vebus = victron_table_service(t, "vebus");
    assert_int_equal(vebus->n_values, 142);
    assert_int_equal(vebus->n_writable, 49);
    assert_int_equal(victron_table_service(t, "battery")->n_values, 106);
    assert_int_equal(victron_table_service(t, "settings")->n_writable, 36);
    victron_table_free(t);
}

static void test_real_addresses(void **state)
{
    struct victron_table *t = real();

    (void)state;
    if (!t)
        skip();
    /* Every address belongs to exactly one service, and the lookup says which. */
    unsigned covered = 0;
    for (uint32_t r = 0; r < 65536; r++) {
        const struct victron_service *owner = NULL;
        for (size_t s = 0; s < t->n_services; s++) {
            const struct regmap *m = &t->services[s].map;
            for (size_t i = 0; i < m->n_defs + m->n_aux; i++) {
                const struct reading_def *d = i < m->n_defs ? &m->defs[i] : &m->aux[i - m->n_defs];
                if (r >= d->reg && r < (uint32_t)d->reg + reading_width(d)) {
                    assert_null(owner == &t->services[s] ? NULL : owner);
                    owner = &t->services[s];
                }
                assert_int_equal(d->segment, t->services[s].index);
                assert_int_equal(d->unit, 0);
            }
        }
        assert_ptr_equal(victron_table_owner(t, (uint16_t)r), owner);
        covered += owner != NULL;
    }
    assert_true(covered > 1000);
    assert_string_equal(victron_table_owner(t, 3)->name, "vebus");
    assert_string_equal(victron_table_owner(t, 259)->name, "battery");
    assert_string_equal(victron_table_owner(t, 2709)->name, "hub4");
    assert_string_equal(victron_table_owner(t, 2710)->name, "settings");
    assert_string_equal(victron_table_owner(t, 5819)->name, "platform");
    assert_null(victron_table_owner(t, 2));
    assert_null(victron_table_owner(t, 5820));
    /* A scan probes a service's first register. */
    assert_int_equal(victron_table_service(t, "system")->first_reg, 800);
    assert_int_equal(victron_table_service(t, "battery")->first_reg, 256);
    victron_table_free(t);
}

static void test_real_decoding(void **state)
{
    struct victron_table *t = real();
    uint16_t r[4];

    (void)state;
    if (!t)
        skip();
    /* Negative int16, scale 10: battery current. */
    const struct reading_def *d = def_at(t, "battery", 261);
    assert_int_equal(d->src, SRC_S16);
    r[0] = 0xFF9C;
    assert_float_equal(reading_decode(d, r), -10.0, 1e-9);
    assert_int_equal(d->q, Q_CURRENT);
    assert_int_equal(d->precision, 1);
    /* int32, high word first: battery power -1000 W. */
    d = def_at(t, "battery", 256);
    r[0] = 0xFFFF, r[1] = 0xFC18;
    assert_float_equal(reading_decode(d, r), -1000.0, 1e-9);
    assert_int_equal(d->q, Q_POWER);
    /* uint32, scale 100: grid energy 100000 -> 1000.00 kWh, a total_increasing counter. */
    d = def_at(t, "grid", 2634);
    r[0] = 0x0001, r[1] = 0x86A0;
    assert_float_equal(reading_decode(d, r), 1000.0, 1e-9);
    assert_string_equal(quantity_info(d->q)->state_class, "total_increasing");
    /* Scale 0.1: one count is 10 W. */
    d = def_at(t, "vebus", 12);
    r[0] = 150;
    assert_float_equal(reading_decode(d, r), 1500.0, 1e-9);
    /* Scale -10 and -1: consumed Ah is negative. */
    d = def_at(t, "battery", 265);
    r[0] = 125;
    assert_float_equal(reading_decode(d, r), -12.5, 1e-9);
    d = def_at(t, "battery", 330);
    r[0] = 0, r[1] = 25;
    assert_float_equal(reading_decode(d, r), -25.0, 1e-9);
    /* Scale 1e7: GPS degrees, negative longitude. */
    d = def_at(t, "gps", 2800);
    r[0] = 0x1F33, r[1] = 0x3415; /* 523449365 */
    assert_float_equal(reading_decode(d, r), 52.3449365, 1e-9);
    d = def_at(t, "gps", 2802);
    uint32_t lon = (uint32_t)-46123456;
    r[0] = (uint16_t)(lon >> 16), r[1] = (uint16_t)lon;
    assert_float_equal(reading_decode(d, r), -4.6123456, 1e-9);
    assert_int_equal(d->q, Q_ANGLE);
    /* Strings: Latin-1, high byte first, cut at the first NUL. */
    d = def_at(t, "system", 800);
    assert_int_equal(d->src, SRC_STRING);
    assert_int_equal(d->count, 6);
    uint16_t s[8] = {0x6330, 0x3631, 0x3961, 0x6231, 0x6632, 0x6533};
    char text[64];
    assert_int_equal(reading_text(d, s, text, sizeof(text)), 12);
    assert_string_equal(text, "c0619ab1f2e3");
    d = def_at(t, "battery", 1336);
    uint16_t name[8] = {0x4361, 0x6EE9, 0x0041, 0x4243}; /* "Can\xe9" NUL "ABC" */
    reading_text(d, name, text, sizeof(text));
    assert_string_equal(text, "Can\xc3\xa9");
    /* The auxiliary voltages: int16 scale 10 as the CSV says, not the sheet's uint16 x100. */
    d = def_at(t, "dcsource", 4202);
    assert_int_equal(d->src, SRC_S16);
    r[0] = 126;
    assert_float_equal(reading_decode(d, r), 12.6, 1e-9);
    assert_int_equal(def_at(t, "dcload", 4302)->src, SRC_S16);
    assert_float_equal(def_at(t, "dcsystem", 4402)->divisor, 10, 0);
    /* PV inverter powers are W whatever the unit text says. */
    assert_int_equal(def_at(t, "pvinverter", 1052)->q, Q_POWER);
    assert_int_equal(def_at(t, "pvinverter", 1054)->q, Q_POWER);
    assert_int_equal(def_at(t, "pvinverter", 1056)->q, Q_POWER);
    /* INTERNAL rows. */
    d = def_at(t, "solarcharger", 777);
    assert_int_equal(d->src, SRC_S16);
    assert_float_equal(d->divisor, 10, 0);
    assert_int_equal(def_at(t, "system", 830)->src, SRC_U64);
    assert_int_equal(def_at(t, "system", 834)->src, SRC_U16);
    assert_int_equal(def_at(t, "system", 835)->src, SRC_U16);
    assert_int_equal(def_at(t, "system", 834)->q, Q_NUMBER); /* not the CSV's "A DC" */
    /* 0xFFFF on an unsigned register is never a value. */
    d = def_at(t, "battery", 266);
    r[0] = 0xFFFF;
    assert_true(isnan(reading_decode(d, r)));
    assert_int_equal(d->q, Q_SOC);
    /* ...but -1 on a signed setting is: "no limit". */
    d = def_at(t, "settings", 2705);
    assert_float_equal(reading_decode(d, r), -1.0, 0);
    victron_table_free(t);
}

static void test_real_spacers(void **state)
{
    struct victron_table *t = real();

    (void)state;
    if (!t)
        skip();
    /* Spacers are never readings: only in aux, and a block of 0xFFFF gives no value. */
    const struct victron_service *sc = victron_table_service(t, "solarcharger");
    for (size_t s = 0; s < t->n_services; s++) {
        const struct regmap *m = &t->services[s].map;
        for (size_t i = 0; i < m->n_defs; i++)
            assert_int_not_equal(m->defs[i].src, SRC_RESERVED);
        for (size_t i = 0; i < m->n_aux; i++)
            assert_int_equal(m->aux[i].src, SRC_RESERVED);
    }
    assert_int_equal(victron_service_find(sc, 782), -1); /* retired alarms, now reserved[2] */
    uint16_t regs[23];
    double values[200];
    for (size_t i = 0; i < 23; i++)
        regs[i] = 0xFFFF;
    for (size_t i = 0; i < sc->map.n_defs; i++)
        values[i] = 12345;
    struct regmap_sink sink = {.values = values};
    regmap_decode(&sc->map, REGMAP_POLL, 0, 771, regs, 23, &sink);
    for (size_t i = 0; i < sc->map.n_defs; i++) {
        const struct reading_def *d = &sc->map.defs[i];
        if (d->reg < 771 || d->reg > 793)
            continue;
        if (d->src == SRC_S16)
            assert_float_equal(values[i], -1.0 / (d->divisor ? d->divisor : 1), 1e-9);
        else
            assert_true(isnan(values[i]));
    }
    victron_table_free(t);
}

/* Keys: readable, unique per service, a-z 0-9 _, at most READING_KEY_MAX. */
static void check_keys(const struct victron_table *t)
{
    for (size_t s = 0; s < t->n_services; s++) {
        const struct regmap *m = &t->services[s].map;
        char err[256];
        assert_int_equal(regmap_check(m, err, sizeof(err)), 0);
        for (size_t i = 0; i < m->n_defs; i++) {
            const char *k = m->defs[i].key;
            assert_true(strlen(k) >= 1 && strlen(k) <= READING_KEY_MAX);
            assert_int_equal(strspn(k, "abcdefghijklmnopqrstuvwxyz0123456789_"), strlen(k));
            assert_true(m->defs[i].name && m->defs[i].name[0]);
            for (size_t j = 0; j < i; j++) {
                assert_string_not_equal(k, m->defs[j].key);
                assert_string_not_equal(m->defs[i].name, m->defs[j].name);
            }
        }
    }
}

static void test_real_keys_and_names(void **state)
{
    struct victron_table *t = real();

    (void)state;
    if (!t)
        skip();
    check_keys(t);
    assert_string_equal(def_at(t, "battery", 259)->key, "dc_0_voltage");
    assert_string_equal(def_at(t, "vebus", 12)->key, "ac_active_in_l1_p");
    assert_string_equal(def_at(t, "settings", 2902)->key, "cgwacs_hub4_mode");
    assert_string_equal(def_at(t, "grid", 2603)->key, "ac_l1_energy_forward");
    assert_string_equal(def_at(t, "grid", 2622)->key, "ac_l1_energy_forward_2622");
    assert_string_equal(def_at(t, "vebus", 37)->key, "hub4_l1_ac_power_setpoint");
    assert_string_equal(def_at(t, "vebus", 96)->key, "hub4_l1_ac_power_setpoint_96");
    assert_string_equal(def_at(t, "system", 834)->key, "firmware_version");
    assert_string_equal(def_at(t, "system", 835)->key, "firmware_version_835");
    /* Too long: leading components go. */
    assert_string_equal(def_at(t, "vebus", 208)->key, "droop_mode_parameters_qmax_value");
    if (victron_embedded.descs) {
        /* Names from the spreadsheet; a repeated one gets its register. */
        assert_string_equal(def_at(t, "battery", 259)->name, "Battery voltage");
        assert_string_equal(def_at(t, "grid", 2638)->name, "Grid L1 - Power (reg 2638)");
    }
    victron_table_free(t);
    /* Without descriptions: names from the path. */
    char err[256];
    assert_int_equal(victron_table_load_file(VICTRON_CSV, &opts_no_descs, &t, err, sizeof(err)), 0);
    assert_string_equal(def_at(t, "battery", 259)->name, "Dc 0 voltage");
    assert_string_equal(def_at(t, "vebus", 12)->name, "Ac active in L1 P");
    check_keys(t);
    victron_table_free(t);
}

static void test_real_enums(void **state)
{
    struct victron_table *t = real();

    (void)state;
    if (!t)
        skip();
    /* Ranges, and Victron's code 201 given twice: the first label wins. */
    const struct reading_def *d = def_at(t, "alternator", 4113);
    assert_int_equal(d->q, Q_ENUM);
    assert_string_equal(option_of(d, 201), "DCDC converter fail");
    assert_string_equal(option_of(d, 205), "DCDC error");
    assert_string_equal(option_of(d, 51), "Battery disconnect request");
    assert_string_equal(option_of(d, 52), "Battery disconnect request");
    assert_string_equal(option_of(d, 60), "Battery requested disconnection");
    assert_null(option_of(d, 50)); /* a code the table does not know */
    /* Repeated labels are one option. */
    d = def_at(t, "settings", 2900);
    assert_string_equal(option_of(d, 2), "Self-consumption");
    assert_true(reading_decode(d, (uint16_t[]){2}) == reading_decode(d, (uint16_t[]){4}));
    size_t n = 0;
    while (d->options[n])
        n++;
    assert_int_equal(n, 9); /* 11 codes, 9 labels */
    /* A leading space before a code. */
    d = def_at(t, "vebus", 69);
    assert_string_equal(option_of(d, 1), "AC input ignored");
    /* int16 enum. */
    d = def_at(t, "system", 826);
    assert_string_equal(option_of(d, 240), "Not connected");
    assert_string_equal(def_at(t, "system", 806)->options[1], "Closed");
    victron_table_free(t);
}

static void test_real_overlay(void **state)
{
    struct victron_table *t = real();

    (void)state;
    if (!t)
        skip();
    /* The core set is shown by default, everything else is not. */
    size_t enabled = 0, allowed = 0;
    for (size_t s = 0; s < t->n_services; s++) {
        const struct victron_service *svc = &t->services[s];
        for (size_t i = 0; i < svc->map.n_defs; i++) {
            const struct reading_def *d = &svc->map.defs[i];
            enabled += !(d->flags & READING_DISABLED);
            if (svc->allow[i]) {
                allowed++;
                assert_true(d->flags & READING_WRITABLE);
                assert_int_equal(svc->allow[i]->reg, d->reg);
                assert_string_equal(svc->allow[i]->path, d->path);
            }
        }
    }
    size_t core_enabled = 0;
    for (size_t i = 0; i < victron_n_core; i++)
        core_enabled += victron_core_set[i].enabled;
    assert_int_equal(enabled, core_enabled + 1); /* 834 gives 834 and 835 */
    assert_int_equal(allowed, victron_n_writes);
    assert_false(def_at(t, "battery", 266)->flags & READING_DISABLED);
    assert_true(def_at(t, "battery", 1282)->flags & READING_DISABLED);
    /* Writable in the CSV but not allowed: PV inverter power, VE.Bus reset. */
    const struct victron_service *pv = victron_table_service(t, "pvinverter");
    assert_true(def_at(t, "pvinverter", 1052)->flags & READING_WRITABLE);
    assert_null(pv->allow[victron_service_find(pv, 1052)]);
    const struct victron_service *vb = victron_table_service(t, "vebus");
    assert_null(vb->allow[victron_service_find(vb, 62)]);
    const struct victron_write *w = vb->allow[victron_service_find(vb, 22)];
    assert_int_equal(w->rail, VICTRON_RAIL_AC_CURRENT);
    w = victron_table_service(t, "settings")
            ->allow[victron_service_find(victron_table_service(t, "settings"), 2705)];
    assert_int_equal(w->rail, VICTRON_RAIL_DC_CURRENT);
    assert_true(w->no_limit);
    /* Every core row agrees with Victron's table on path, type and scale. */
    for (size_t i = 0; i < victron_n_core; i++) {
        const struct victron_core *c = &victron_core_set[i];
        const struct reading_def *d = def_at(t, c->service, c->reg);
        assert_string_equal(d->path, c->path);
        assert_float_equal(d->divisor, c->scale, 0);
    }
    victron_table_free(t);
}

/* The build embeds the CSV it was configured with and reads it as a run-time file. */
static void test_builtin(void **state)
{
    struct victron_table *t = NULL;
    char err[256];

    (void)state;
    assert_int_equal(victron_table_builtin(&opts, &t, err, sizeof(err)), 0);
    if (victron_embedded.attributes) {
        assert_true(t->from_csv);
        assert_int_equal(t->n_values, 949);
    } else {
        assert_false(t->from_csv);
    }
    check_keys(t);
    victron_table_free(t);
    uint8_t ids[64];
    size_t n = victron_scan_unitids(ids, 64);
    assert_true(n >= 10 && n <= 64);
    assert_int_equal(ids[0], 100);
    for (size_t i = 1; i < n; i++)
        assert_int_not_equal(ids[i], 100);
}

/* ---- the overlay alone (a build without the CSV) ---- */

static void test_core_alone(void **state)
{
    struct victron_table *t = NULL;
    char err[256];
    const struct victron_embedded none = {0};

    (void)state;
    warnings[0] = '\0';
    n_warned = 0;
    assert_int_equal(victron_table_from(&none, &opts, &t, err, sizeof(err)), 0);
    assert_false(t->from_csv);
    assert_int_equal(n_warned, 0);
    assert_int_equal(t->n_values, victron_n_core);
    check_keys(t);
    /* The core set reads right: type, scale, quantity. */
    const struct reading_def *d = def_at(t, "battery", 266);
    uint16_t r[2] = {655};
    assert_float_equal(reading_decode(d, r), 65.5, 1e-9);
    assert_int_equal(d->q, Q_SOC);
    assert_string_equal(d->key, "soc");
    d = def_at(t, "battery", 261);
    r[0] = 0xFF9C;
    assert_float_equal(reading_decode(d, r), -10.0, 1e-9);
    d = def_at(t, "vebus", 23);
    r[0] = 123;
    assert_float_equal(reading_decode(d, r), 1230, 1e-9);
    d = def_at(t, "grid", 2634);
    r[0] = 1, r[1] = 0;
    assert_float_equal(reading_decode(d, r), 655.36, 1e-9);
    assert_int_equal(d->q, Q_ENERGY);
    d = def_at(t, "pvinverter", 1052);
    assert_int_equal(d->q, Q_POWER);
    d = def_at(t, "system", 806);
    assert_string_equal(option_of(d, 1), "Closed");
    assert_string_equal(def_at(t, "vebus", 96)->key, "hub4_l1_ac_power_setpoint_96");
    /* Every core row, with its flags; every allow-list entry. */
    size_t allowed = 0;
    for (size_t i = 0; i < victron_n_core; i++) {
        const struct victron_core *c = &victron_core_set[i];
        d = def_at(t, c->service, c->reg);
        assert_int_equal(!(d->flags & READING_DISABLED), c->enabled);
        assert_int_equal(!!(d->flags & READING_WRITABLE), c->writable);
    }
    for (size_t s = 0; s < t->n_services; s++)
        for (size_t i = 0; i < t->services[s].map.n_defs; i++)
            allowed += t->services[s].allow[i] != NULL;
    assert_int_equal(allowed, victron_n_writes);
    for (size_t i = 0; i < victron_n_writes; i++) {
        const struct victron_write *w = &victron_writes[i];
        d = def_at(t, w->service, w->reg);
        assert_string_equal(d->path, w->path);
        assert_true(d->flags & READING_WRITABLE);
    }
    victron_table_free(t);
}

/* Units of the overlay: what HA takes for each unit text. */
static void test_units(void **state)
{
    bool known;

    (void)state;
    assert_int_equal(victron_unit_quantity("V DC", &known), Q_VOLTAGE);
    assert_int_equal(victron_unit_quantity("A AC", &known), Q_CURRENT);
    assert_int_equal(victron_unit_quantity("Degrees celsius", &known), Q_TEMPERATURE);
    assert_int_equal(victron_unit_quantity("Degrees Celsius", &known), Q_TEMPERATURE);
    assert_int_equal(victron_unit_quantity("Hz", &known), Q_FREQUENCY);
    assert_int_equal(victron_unit_quantity("VA", &known), Q_APPARENT_POWER);
    assert_int_equal(victron_unit_quantity("seconds", &known), Q_DURATION);
    assert_int_equal(victron_unit_quantity("kWh", &known), Q_ENERGY);
    assert_true(known);
    assert_int_equal(victron_unit_quantity("furlongs", &known), Q_NUMBER);
    assert_false(known);
    assert_int_equal(victron_item_quantity("battery", "/Soc", "%", NULL), Q_SOC);
    assert_int_equal(
        victron_item_quantity("settings", "/Settings/CGwacs/MaxChargePercentage", "%", NULL),
        Q_PERCENT);
    assert_int_equal(victron_item_quantity("battery", "/History/ChargeCycles", "count", NULL),
                     Q_COUNT);
    assert_int_equal(
        victron_item_quantity("settings", "/Settings/DynamicEss/BatteryCapacity", "kWh", NULL),
        Q_ENERGY_STORAGE);
    /* HA's rules: units with their device classes and state classes. */
    assert_string_equal(quantity_info(Q_FREQUENCY)->unit, "Hz");
    assert_string_equal(quantity_info(Q_FREQUENCY)->device_class, "frequency");
    assert_string_equal(quantity_info(Q_APPARENT_POWER)->unit, "VA");
    assert_string_equal(quantity_info(Q_DURATION)->device_class, "duration");
    assert_string_equal(quantity_info(Q_ENERGY)->state_class, "total_increasing");
    assert_string_equal(quantity_info(Q_ENERGY_STORAGE)->state_class, "measurement");
    assert_null(quantity_info(Q_CHARGE)->device_class);
    char key[64];
    assert_int_equal(victron_key_from_path("battery", "/Dc/0/Voltage", key, sizeof(key)), 12);
    assert_string_equal(key, "dc_0_voltage");
    victron_key_from_path("settings", "/Settings/CGwacs/BatteryLife/MinimumSocLimit", key,
                          sizeof(key));
    assert_string_equal(key, "cgwacs_battery_life_minimum_soc_limit");
    victron_key_from_path("temperature", "/PM25", key, sizeof(key));
    assert_string_equal(key, "pm25");
    assert_int_equal(victron_key_from_path("x", "/", key, sizeof(key)), 0);
}

/* ---- crafted files ---- */

#define L(s, p, unit, reg, type, scale, acc)                                                       \
    "com.victronenergy." s "," p ",d," unit "," reg "," type "," scale "," acc "\n"

static void test_refused(void **state)
{
    char err[256];

    (void)state;
    assert_null(parse(L("battery", "/Soc", "%", "266", "uint16", "10", "R") "one,two,three\n",
                      &opts, err, sizeof(err)));
    assert_string_equal(err, "x.csv:2: 3 fields where attributes.csv has 8 (service,path,type,"
                             "unit,register,modbus type,scale,access)");
    assert_null(parse("\n\n" L("battery", "/Soc", "%", "266", "uint16", "10",
                               "R") "com.victronenergy.battery,/A,d,0=a,b,267,uint16,1,R\n",
                      &opts, err, sizeof(err)));
    assert_true(strncmp(err, "x.csv:4: 9 fields", 17) == 0);
    assert_null(parse("", &opts, err, sizeof(err)));
    assert_string_equal(err, "x.csv: no register item (is it a GX's attributes.csv?)");
    assert_null(
        parse(L("battery", "RESERVED", "", "3", "reserved[2]", "1", "R"), &opts, err, sizeof(err)));
    assert_non_null(strstr(err, "no register item"));
    /* A NUL byte. */
    struct victron_table *t = NULL;
    const char nul[] = "com.victronenergy.battery,/Soc,d,%,266,uint16,10,R\nab\0c\n";
    assert_int_equal(
        victron_table_parse(nul, sizeof(nul) - 1, "x.csv", &opts, &t, err, sizeof(err)), -1);
    assert_null(t);
    assert_string_equal(err, "x.csv:2: a NUL byte: not a text file");
    /* A file that is not there. */
    assert_int_equal(
        victron_table_load_file("/nonexistent/attributes.csv", &opts, &t, err, sizeof(err)), -1);
    assert_string_equal(err, "/nonexistent/attributes.csv: No such file or directory");
}

static void test_skipped(void **state)
{
    char err[256];
    struct victron_table *t =
        parse(L("battery", "/Soc", "%", "266", "uint16", "10", "R")          /* 1 */
              L("battery", "/Soc2", "%", "267", "float32", "10", "R")        /* 2 unknown type */
              L("battery", "/Bad", "%", "65536", "uint16", "1", "R")         /* 3 register */
              L("battery", "/Bad", "%", "x1", "uint16", "1", "R")            /* 4 register */
              L("battery", "/Scale", "%", "268", "uint16", "ten", "R")       /* 5 scale */
              L("battery", "/Wide", "", "65535", "uint32", "1", "R")         /* 6 past 65535 */
              L("battery", "/Over", "V", "265", "int32", "1", "R")           /* 7 overlaps 266 */
              "org.example.battery,/X,d,,270,uint16,1,R\n"                   /* 8 service */
              L("battery", "NoSlash", "", "271", "uint16", "1", "R")         /* 9 path */
              L("battery", "/Str", "", "272", "string[0]", "1", "R")         /* 10 width */
              L("battery", "/Str", "", "272", "string[126]", "1", "R")       /* 11 width */
              L("battery", "/In", "", "280", "INTERNAL[3]", "1", "R")        /* 12 internal */
              L("battery", "/Acc", "V DC", "290", "uint16", "100", "X")      /* 13 access: kept */
              L("battery", "/Unit", "furlongs", "291", "uint16", "1", "R")   /* 14 unit: kept */
              L("battery", "/Unit2", "furlongs", "292", "uint16", "1", "R"), /* 15 warned once */
              &opts, err, sizeof(err));

    (void)state;
    assert_non_null(t);
    assert_int_equal(t->n_values, 4);
    assert_int_equal(t->n_skipped, 11);
    assert_int_equal(t->n_warnings, 14); /* 13, and the overlay's core rows not there */
    assert_int_equal(n_warned, 14);
    assert_non_null(strstr(warnings, "x.csv:2: modbus type 'float32' is not uint16"));
    assert_non_null(strstr(warnings, "x.csv:3: register '65536' is not a number 0..65535; line "
                                     "skipped\n"));
    assert_non_null(strstr(warnings, "x.csv:4: register 'x1'"));
    assert_non_null(strstr(warnings, "x.csv:5: scale factor 'ten' is not a number; line skipped"));
    assert_non_null(strstr(warnings, "x.csv:6: register 65535 + 2 registers runs past"));
    assert_non_null(strstr(warnings,
                           "x.csv:7: registers 265..266 overlap /Soc (registers 266..266) "
                           "of line 1; line skipped"));
    assert_non_null(strstr(warnings, "x.csv:8: service 'org.example.battery'"));
    assert_non_null(strstr(warnings, "x.csv:9: path 'NoSlash'"));
    assert_non_null(strstr(warnings, "x.csv:10: modbus type 'string[0]'"));
    assert_non_null(strstr(warnings, "x.csv:11: modbus type 'string[126]'"));
    assert_non_null(strstr(warnings, "x.csv:12: INTERNAL[3] of /In is not known"));
    assert_non_null(strstr(warnings, "x.csv:13: access 'X' is neither R nor W; read as R\n"));
    assert_non_null(strstr(warnings, "x.csv:14: unit 'furlongs' of /Unit is not known"));
    assert_null(strstr(warnings, "x.csv:15:"));
    const struct reading_def *d = def_at(t, "battery", 290);
    assert_false(d->flags & READING_WRITABLE);
    assert_int_equal(d->q, Q_VOLTAGE);
    assert_int_equal(def_at(t, "battery", 291)->q, Q_NUMBER);
    /* A skipped line is a hole: nothing covers its registers. */
    assert_null(victron_table_owner(t, 265));
    assert_null(victron_table_owner(t, 267));
    /* The core rows the table lacks are warned of by the overlay, not here. */
    victron_table_free(t);
}

static void test_enum_faults(void **state)
{
    char err[256];
    struct victron_table *t =
        parse(L("alternator", "/ErrorCode", "12=High;13=Low;12=Again;20-25=Range;22=Inside", "4113",
                "uint16", "1", "R") L("alternator", "/Mode", "1=On;oops;x=y;4=Off;5-3=Backwards;;",
                                      "4119", "uint16", "1", "W")
                  L("alternator", "/Label", "7=;8=Eight", "4120", "uint16", "1", "R")
                      L("alternator", "/None", "a=b;c=d", "4121", "uint16", "1", "R"),
              &opts, err, sizeof(err));

    (void)state;
    assert_non_null(t);
    assert_int_equal(t->n_skipped, 0);
    /* One warning per line and kind: code 12 twice (22 inside 20-25 is the same line). */
    assert_non_null(strstr(warnings, "x.csv:1: enum code 12 of /ErrorCode is given twice; the "
                                     "first label wins\n"));
    assert_null(strstr(warnings, "code 22"));
    const struct reading_def *d = def_at(t, "alternator", 4113);
    assert_string_equal(option_of(d, 12), "High");
    assert_string_equal(option_of(d, 22), "Range");
    assert_string_equal(option_of(d, 25), "Range");
    assert_null(option_of(d, 26));
    assert_non_null(strstr(warnings, "x.csv:2: enum piece 'oops' of /Mode is not code=label; "
                                     "dropped\n"));
    d = def_at(t, "alternator", 4119);
    assert_string_equal(option_of(d, 4), "Off");
    assert_null(option_of(d, 5));
    /* An empty label is the code. */
    d = def_at(t, "alternator", 4120);
    assert_string_equal(option_of(d, 7), "7");
    /* No piece at all: a number. */
    assert_non_null(strstr(warnings, "x.csv:4: enum piece 'a=b'"));
    assert_non_null(strstr(warnings, "x.csv:4: enum labels of /None give no code=label; read as a "
                                     "number\n"));
    assert_int_equal(def_at(t, "alternator", 4121)->q, Q_NUMBER);
    victron_table_free(t);
}

static void test_crafted_layouts(void **state)
{
    char err[256];
    /* CRLF line ends, blanks around fields, blank and zero scales, INTERNAL widths, a spacer
     * and the same path twice. */
    struct victron_table *t =
        parse("com.victronenergy.grid , /Ac/L1/Power ,d, W ,2600, int16 ,,R\r\n"
              "\r\n"
              "com.victronenergy.grid,/Ac/L1/Power,d,W,2638,int32,0,R\r\n"
              "com.victronenergy.grid,RESERVED,d,,2639,reserved[1],1,R\r\n" /* overlaps 2638 */
              "com.victronenergy.grid,RESERVED,d,,2601,reserved[3],1,R\r\n"
              "com.victronenergy.grid.ttyUSB0,/Ac/Frequency,d,Hz,2644,uint16,100,R\r\n"
              "com.victronenergy.foo,/Counter,d,,10,INTERNAL[2],1,R\r\n"
              "com.victronenergy.foo,/Time,d,,12,INTERNAL[4],1,R\r\n"
              "com.victronenergy.foo,/Foo/Bar/ThisIsAVeryLongComponentName/AndAnotherOne/End,d,,20,"
              "uint16,1,R\r\n"
              "com.victronenergy.foo,/Foo,d,,21,uint16,-1,R\r\n",
              &opts_no_descs, err, sizeof(err));

    (void)state;
    assert_non_null(t);
    assert_int_equal(t->n_services, 2);
    assert_int_equal(t->n_reserved, 1);
    assert_int_equal(t->n_skipped, 1);
    assert_non_null(strstr(warnings, "x.csv:4: registers 2639..2639 overlap /Ac/L1/Power"));
    const struct reading_def *d = def_at(t, "grid", 2600);
    assert_string_equal(d->key, "ac_l1_power");
    assert_float_equal(d->divisor, 1, 0);
    d = def_at(t, "grid", 2638);
    assert_string_equal(d->key, "ac_l1_power_2638");
    assert_string_equal(d->name, "Ac L1 power (reg 2638)");
    assert_float_equal(d->divisor, 1, 0);
    assert_int_equal(def_at(t, "grid", 2644)->q, Q_FREQUENCY);
    assert_string_equal(victron_table_owner(t, 2603)->name, "grid");
    assert_int_equal(victron_table_service(t, "grid")->map.n_aux, 1);
    assert_int_equal(def_at(t, "foo", 10)->src, SRC_U32);
    assert_int_equal(def_at(t, "foo", 12)->src, SRC_U64);
    d = def_at(t, "foo", 20);
    assert_true(strlen(d->key) <= READING_KEY_MAX);
    assert_string_equal(d->key,
                        "this_is_a_very_long_component_name_and_another_one_end" +
                            strlen("this_is_a_very_long_component_name_and_another_one_end") -
                            strlen(d->key));
    d = def_at(t, "foo", 21);
    uint16_t r[1] = {7};
    assert_float_equal(reading_decode(d, r), -7, 0);
    /* The overlay's core rows the table lacks: one warning; those it has are shown. */
    assert_non_null(strstr(warnings, "overlay: 91 register(s) of the core set are not in the "
                                     "table (battery 256, battery 259, battery 261, battery 262, "
                                     "...): left out\n"));
    assert_non_null(strstr(warnings, "overlay: grid register 2601: the table has RESERVED (line 5) "
                                     "where the overlay expects /Ac/L2/Power"));
    assert_false(def_at(t, "grid", 2600)->flags & READING_DISABLED);
    assert_true(def_at(t, "grid", 2638)->flags & READING_DISABLED);
    victron_table_free(t);
}

/* Where the CSV and the overlay disagree, the CSV is read and the overlay's row left out. */
static void test_overlay_disagrees(void **state)
{
    char err[256];
    struct victron_table *t =
        parse(L("vebus", "/Ac/ActiveIn/CurrentLimit", "A", "22", "uint16", "1", "W")
                  L("vebus", "/Mode", "1=Charger Only;2=Inverter Only;3=On;4=Off", "33", "uint16",
                    "1", "R") L("vebus", "/Something/Else", "W", "37", "int16", "1", "W"),
              &opts, err, sizeof(err));

    (void)state;
    assert_non_null(t);
    const struct victron_service *vb = victron_table_service(t, "vebus");
    assert_non_null(strstr(warnings, "overlay: vebus register 22: the table has "
                                     "/Ac/ActiveIn/CurrentLimit (line 1) where the overlay expects "
                                     "/Ac/ActiveIn/CurrentLimit of another type or scale"));
    assert_null(vb->allow[victron_service_find(vb, 22)]);
    assert_true(def_at(t, "vebus", 22)->flags & READING_DISABLED);
    assert_non_null(strstr(warnings, "overlay: vebus register 33 (/Mode) is not writable in the "
                                     "table: not writable\n"));
    assert_null(vb->allow[victron_service_find(vb, 33)]);
    assert_false(def_at(t, "vebus", 33)->flags & READING_DISABLED);
    assert_non_null(strstr(warnings, "overlay: vebus register 37: the table has /Something/Else"));
    assert_null(vb->allow[victron_service_find(vb, 37)]);
    victron_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_counts),
        cmocka_unit_test(test_real_addresses),
        cmocka_unit_test(test_real_decoding),
        cmocka_unit_test(test_real_spacers),
        cmocka_unit_test(test_real_keys_and_names),
        cmocka_unit_test(test_real_enums),
        cmocka_unit_test(test_real_overlay),
        cmocka_unit_test(test_builtin),
        cmocka_unit_test(test_core_alone),
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_skipped),
        cmocka_unit_test(test_enum_faults),
        cmocka_unit_test(test_crafted_layouts),
        cmocka_unit_test(test_overlay_disagrees),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
