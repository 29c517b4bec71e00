/* SPDX-License-Identifier: MIT */
/* test_victron_nocsv.c - a build without Victron's files: linked with the embedded data that
 * tools/embed_victron.py writes when given none, the daemon reads the overlay's core set. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "victron_table.h"

static void test_builtin_is_the_core_set(void **state)
{
    struct victron_table *t = NULL;
    char err[256];

    (void)state;
    assert_null(victron_embedded.attributes);
    assert_null(victron_embedded.descs);
    assert_null(victron_embedded.unitids);
    assert_int_equal(victron_table_builtin(NULL, &t, err, sizeof(err)), 0);
    assert_false(t->from_csv);
    assert_string_equal(t->source, "core set");
    assert_int_equal(t->n_values, victron_n_core);
    assert_int_equal(t->n_warnings, 0);
    /* The core set reads: battery SoC, a VE.Bus output power, a grid energy counter. */
    const struct victron_service *b = victron_table_service(t, "battery");
    assert_non_null(b);
    const struct reading_def *d = &b->map.defs[victron_service_find(b, 266)];
    uint16_t r[2] = {987, 0};
    assert_float_equal(reading_decode(d, r), 98.7, 1e-9);
    assert_false(d->flags & READING_DISABLED);
    assert_string_equal(d->name, "Soc"); /* no spreadsheet: the name comes from the path */
    const struct victron_service *v = victron_table_service(t, "vebus");
    d = &v->map.defs[victron_service_find(v, 23)];
    r[0] = 0xFFF6; /* -10 x 10 W */
    assert_float_equal(reading_decode(d, r), -100, 1e-9);
    const struct victron_service *g = victron_table_service(t, "grid");
    d = &g->map.defs[victron_service_find(g, 2636)];
    r[0] = 0, r[1] = 12345;
    assert_float_equal(reading_decode(d, r), 123.45, 1e-9);
    assert_null(victron_table_service(t, "gps")); /* not in the core set */
    /* Every allow-listed register is there to be written. */
    size_t allowed = 0;
    for (size_t s = 0; s < t->n_services; s++)
        for (size_t i = 0; i < t->services[s].map.n_defs; i++)
            allowed += t->services[s].allow[i] != NULL;
    assert_int_equal(allowed, victron_n_writes);
    victron_table_free(t);
}

static void test_scan_ids_without_unitid2di(void **state)
{
    uint8_t ids[64];
    size_t n = victron_scan_unitids(ids, 64);

    (void)state;
    assert_int_equal(n, victron_n_default_unitids);
    assert_int_equal(ids[0], 100);
    assert_int_equal(ids[1], 225);
    assert_int_equal(ids[5], 227);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_is_the_core_set),
        cmocka_unit_test(test_scan_ids_without_unitid2di),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
