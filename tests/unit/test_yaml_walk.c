/* SPDX-License-Identifier: MIT */
/* test_yaml_walk.c - the YAML walker on its own: tree and positions, limits, scalars, hints. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yaml_walk.h"

static const struct yw_limits limits = {
    .max_bytes = 4096, .max_depth = 4, .max_anchors = 3, .depth_needed = 3};

/* Load `text` with `limits`; on failure the message is in err. */
static int load(struct yw_doc *doc, const char *text, char *err, size_t errlen)
{
    struct yw_errors e = {.name = "w.yaml", .err = err, .errlen = errlen};

    return yw_load(doc, text, strlen(text), &limits, &e);
}

static void load_ok(struct yw_doc *doc, const char *text)
{
    char err[512];

    if (load(doc, text, err, sizeof err) != 0)
        print_error("unexpected error: %s\n", err);
    assert_string_equal(err, "");
}

static void expect_error(const char *text, const char *message)
{
    struct yw_doc doc;
    char err[512];

    assert_int_equal(load(&doc, text, err, sizeof err), -1);
    assert_string_equal(err, message);
    assert_null(doc.root);
    assert_null(doc.nodes);
    yw_free(&doc);
}

static void expect_mark(const struct yw_node *n, size_t line, size_t column)
{
    assert_non_null(n);
    assert_int_equal(n->mark.line, line);
    assert_int_equal(n->mark.column, column);
}

/* ---- the tree ---------------------------------------------------------------------------- */

static void test_yaml_walk_nodes_carry_line_and_column(void **state)
{
    struct yw_doc doc;
    const struct yw_node *root, *list, *item;

    (void)state;
    load_ok(&doc, "top: 1\n"
                  "list:\n"
                  "  - {a: x, b: 'y'}\n"
                  "  - \"q\"\n"
                  "  -   plain\n");
    root = doc.root;
    assert_int_equal(root->kind, YW_MAPPING);
    assert_int_equal(root->n, 2);
    expect_mark(root, 1, 1);
    expect_mark(root->items[0], 1, 1); /* key "top" */
    expect_mark(root->items[1], 1, 6); /* its value */
    assert_true(yw_is(root->items[1], "1"));
    list = yw_get(root, "list");
    assert_int_equal(list->kind, YW_SEQUENCE);
    assert_int_equal(list->n, 3);
    expect_mark(list, 3, 3);
    item = list->items[0];
    assert_int_equal(item->kind, YW_MAPPING);
    expect_mark(item, 3, 5); /* the '{' */
    expect_mark(yw_get(item, "b"), 3, 15);
    assert_true(yw_get(item, "a")->plain);
    assert_false(yw_get(item, "b")->plain);
    expect_mark(list->items[1], 4, 5);
    assert_false(list->items[1]->plain);
    expect_mark(list->items[2], 5, 7);
    assert_true(yw_is(list->items[2], "plain"));
    expect_mark(yw_key(root, "list"), 2, 1);
    assert_null(yw_key(root, "nothing"));
    assert_null(yw_get(list, "a")); /* not a mapping */
    yw_free(&doc);
    yw_free(&doc); /* safe twice */
}

static void test_yaml_walk_keeps_duplicate_keys_and_nul_characters(void **state)
{
    struct yw_doc doc;

    (void)state;
    load_ok(&doc, "a: 1\na: 2\nb: \"x\\0y\"\nc:\n");
    assert_int_equal(doc.root->n, 4);
    assert_true(yw_is(yw_get(doc.root, "a"), "1")); /* the first one */
    assert_int_equal(yw_get(doc.root, "b")->len, 3);
    assert_memory_equal(yw_get(doc.root, "b")->text, "x\0y", 4);
    assert_null(yw_get(doc.root, "c")); /* null value */
    assert_non_null(yw_key(doc.root, "c"));
    yw_free(&doc);
}

static void test_yaml_walk_empty_stream_has_no_root(void **state)
{
    struct yw_doc doc;

    (void)state;
    load_ok(&doc, "");
    assert_null(doc.root);
    yw_free(&doc);
    load_ok(&doc, "# only a comment\n");
    assert_null(doc.root);
    yw_free(&doc);
}

static void test_yaml_walk_alias_is_the_anchored_node(void **state)
{
    struct yw_doc doc;

    (void)state;
    load_ok(&doc, "a: &p /dev/ttyUSB0\nb: *p\nc: &m {k: v}\nd: *m\n");
    assert_ptr_equal(yw_get(doc.root, "a"), yw_get(doc.root, "b"));
    assert_ptr_equal(yw_get(doc.root, "c"), yw_get(doc.root, "d"));
    expect_mark(yw_get(doc.root, "b"), 1, 4); /* where the anchor is */
    yw_free(&doc);
    /* A list that holds itself is a cycle in the tree, not an endless copy. */
    load_ok(&doc, "a: &l [1, *l]\n");
    assert_ptr_equal(yw_get(doc.root, "a")->items[1], yw_get(doc.root, "a"));
    yw_free(&doc);
}

/* ---- refusals ----------------------------------------------------------------------------- */

static void test_yaml_walk_alias_errors(void **state)
{
    (void)state;
    expect_error("a: *nowhere\n", "w.yaml:1:4: YAML syntax error: found undefined alias");
    expect_error("a: &x 1\nb: &x 2\n",
                 "w.yaml:2:4: YAML syntax error: found duplicate anchor &x (first at line 1, "
                 "column 4)");
}

static void test_yaml_walk_depth_limit_names_the_first_level_too_deep(void **state)
{
    struct yw_doc doc;

    (void)state;
    load_ok(&doc, "a: [[[1]]]\n"); /* 4 levels: the limit */
    yw_free(&doc);
    expect_error("a: [[[[1]]]]\n",
                 "w.yaml:1:7: lists and mappings nested more than 4 deep; a configuration needs 3 "
                 "levels");
    /* The depth of a second document counts too, and is reported before that document. */
    expect_error("a: 1\n---\n- - - - - 1\n",
                 "w.yaml:3:9: lists and mappings nested more than 4 deep; a configuration needs 3 "
                 "levels");
}

static void test_yaml_walk_anchor_limit(void **state)
{
    struct yw_doc doc;

    (void)state;
    load_ok(&doc, "[&a 1, &b 2, &c 3]\n");
    yw_free(&doc);
    expect_error("[&a 1, &b 2, &c 3, &d 4]\n",
                 "w.yaml:1:20: more than 3 anchors (&name); a configuration needs a few at most");
}

static void test_yaml_walk_size_limit(void **state)
{
    char *text = malloc(4098);
    struct yw_doc doc;
    char err[256];

    (void)state;
    assert_non_null(text);
    memset(text, '#', 4097);
    text[4097] = '\0';
    assert_int_equal(load(&doc, text, err, sizeof err), -1);
    assert_string_equal(err, "w.yaml: larger than 4 KiB; a configuration is a few kilobytes");
    text[4096] = '\0';
    load_ok(&doc, text);
    yw_free(&doc);
    free(text);
}

static void test_yaml_walk_second_document_after_syntax(void **state)
{
    (void)state;
    expect_error("a: 1\n---\nb: 2\n",
                 "w.yaml:2:1: a second YAML document; the file must hold only one");
    /* A syntax error in the second document is reported as such. */
    expect_error("a: 1\n---\nb: [1\n",
                 "w.yaml:4:1: YAML syntax error: did not find expected ',' or ']' (while "
                 "parsing a flow sequence at line 3, column 4)");
}

static void test_yaml_walk_syntax_errors_have_positions_and_hints(void **state)
{
    (void)state;
    expect_error("a:\n\tb: 1\n",
                 "w.yaml:2:1: YAML syntax error: found character that cannot start any token "
                 "(while scanning for the next token at line 2, column 1) (YAML does not allow "
                 "tabs for indentation)");
    expect_error("a: \"x\xc3\"\n", "w.yaml:1:7: invalid trailing UTF-8 octet (byte 0x22)");
}

/* ---- scalars ----------------------------------------------------------------------------- */

/* The first item of a flow list `text`. */
static const struct yw_node *scalar(struct yw_doc *doc, const char *text)
{
    char yaml[128];

    snprintf(yaml, sizeof yaml, "[%s]\n", text);
    load_ok(doc, yaml);
    return doc->root->items[0];
}

static void test_yaml_walk_integers_are_yaml_1_1(void **state)
{
    static const struct {
        const char *text;
        long long value;
    } good[] = {{"64", 64},
                {"-5", -5},
                {"0x4a", 0x4A},
                {"0o17", 15},
                {"017", 15},
                {"0b101", 5},
                {"1_000", 1000},
                {"0x_40", 0x40},
                {"'12'", 12},
                {"+0", 0},
                {"99999999999999999", 1LL << 40}};
    static const char *const bad[] = {"09", "1.5", "x", "_1", "1:30", "''", "0x", "-"};
    struct yw_doc doc;
    long long v;

    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(yw_int(scalar(&doc, good[i].text), &v), 0);
        /* Beyond 2^40 the value only has to stay beyond it, for the range checks. */
        bool ok = v == good[i].value || (good[i].value == 1LL << 40 && v >= good[i].value);

        if (!ok)
            print_error("%s read as %lld\n", good[i].text, v);
        assert_true(ok);
        yw_free(&doc);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (yw_int(scalar(&doc, bad[i]), &v) == 0)
            print_error("%s read as %lld\n", bad[i], v);
        assert_int_equal(yw_int(doc.root->items[0], &v), -1);
        yw_free(&doc);
    }
    assert_string_equal(yw_octal_hint(scalar(&doc, "09")), " (a leading 0 makes YAML read it as "
                                                           "octal)");
    yw_free(&doc);
    assert_string_equal(yw_octal_hint(scalar(&doc, "19")), "");
    yw_free(&doc);
}

static void test_yaml_walk_numbers_booleans_nulls(void **state)
{
    static const char *const nulls[] = {"~", "null", "Null", "NULL", ""};
    struct yw_doc doc;
    double d;
    bool b;

    (void)state;
    assert_int_equal(yw_number(scalar(&doc, "2.5e-1"), &d), 0);
    assert_true(d == 0.25);
    yw_free(&doc);
    assert_int_equal(yw_number(scalar(&doc, "1_0.5"), &d), 0);
    assert_true(d == 10.5);
    yw_free(&doc);
    assert_int_equal(yw_number(scalar(&doc, "0x10"), &d), 0);
    assert_true(d == 16.0);
    yw_free(&doc);
    assert_int_equal(yw_number(scalar(&doc, ".inf"), &d), -1);
    yw_free(&doc);
    assert_int_equal(yw_number(scalar(&doc, "0x1p3"), &d), -1);
    yw_free(&doc);
    assert_int_equal(yw_bool(scalar(&doc, "On"), &b), 0);
    assert_true(b);
    yw_free(&doc);
    assert_int_equal(yw_bool(scalar(&doc, "NO"), &b), 0);
    assert_false(b);
    yw_free(&doc);
    assert_int_equal(yw_bool(scalar(&doc, "maybe"), &b), -1);
    yw_free(&doc);
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++) {
        char yaml[32];

        snprintf(yaml, sizeof yaml, "a: %s\nb: '%s'\n", nulls[i], nulls[i]);
        load_ok(&doc, yaml);
        assert_true(yw_is_null(doc.root->items[1]));
        assert_false(yw_is_null(doc.root->items[3])); /* quoted: a string */
        yw_free(&doc);
    }
    assert_true(yw_is_null(NULL));
}

/* ---- messages and hints ------------------------------------------------------------------ */

static void test_yaml_walk_excerpts_are_cut_and_masked(void **state)
{
    char buf[YW_EXCERPT_MAX + 8];
    char long_text[60];

    (void)state;
    assert_string_equal(yw_excerpt("a\x1b[2J\x7f", 6, buf, sizeof buf), "a?[2J?");
    memset(long_text, 'x', sizeof long_text);
    assert_int_equal(strlen(yw_excerpt(long_text, sizeof long_text, buf, sizeof buf)),
                     YW_EXCERPT_MAX + 3);
    /* Not inside a UTF-8 sequence: "é" is 2 bytes across the cut. */
    memset(long_text, 'x', sizeof long_text);
    memcpy(long_text + YW_EXCERPT_MAX - 1, "\xc3\xa9", 2);
    yw_excerpt(long_text, sizeof long_text, buf, sizeof buf);
    assert_int_equal(strlen(buf), YW_EXCERPT_MAX - 1 + 3);
}

static void test_yaml_walk_describe_names_the_kind(void **state)
{
    struct yw_doc doc;
    char buf[64];

    (void)state;
    load_ok(&doc, "[{a: 1}, [1], 9600.0]\n");
    assert_string_equal(yw_describe(doc.root->items[0], buf, sizeof buf), "a mapping");
    assert_string_equal(yw_describe(doc.root->items[1], buf, sizeof buf), "a list");
    assert_string_equal(yw_describe(doc.root->items[2], buf, sizeof buf), "'9600.0'");
    yw_free(&doc);
}

static void test_yaml_walk_closest_name_is_a_near_typo(void **state)
{
    static const char *const names[] = {"mode",      "port",    "baud",
                                        "timeout_s", "address", "rs485_delay_before_ms"};
    static const struct {
        const char *word, *expect;
    } cases[] = {
        {"adress", "address"},
        {"Adress", "address"},
        {"timeuot_s", "timeout_s"},
        {"prot", "port"},
        {"mod", "mode"},
        {"baudrate", NULL},
        {"colour", NULL},
        {"rs485_delay_befor_ms", "rs485_delay_before_ms"},
        {"pt", NULL},
        {"timeout", "timeout_s"},
    };
    struct yw_doc doc;

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = yw_closest(scalar(&doc, cases[i].word), names, 6);

        if (cases[i].expect)
            assert_string_equal(got, cases[i].expect);
        else if (got)
            fail_msg("%s: suggested %s", cases[i].word, got);
        yw_free(&doc);
    }
}

static void test_yaml_walk_fail_writes_one_terminated_line(void **state)
{
    struct yw_errors e = {.name = "f.yaml"};
    char err[16];

    (void)state;
    e.err = err;
    e.errlen = sizeof err;
    memset(err, 'x', sizeof err);
    assert_int_equal(yw_fail(&e, (struct yw_mark){3, 7}, "%s", "something wrong"), -1);
    assert_string_equal(err, "f.yaml:3:7: som");
    e.err = NULL;
    assert_int_equal(yw_fail(&e, (struct yw_mark){1, 1}, "x"), -1);
    e.err = err;
    assert_int_equal(yw_fail_oom(&e), -1);
    assert_string_equal(err, "f.yaml: out of ");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yaml_walk_nodes_carry_line_and_column),
        cmocka_unit_test(test_yaml_walk_keeps_duplicate_keys_and_nul_characters),
        cmocka_unit_test(test_yaml_walk_empty_stream_has_no_root),
        cmocka_unit_test(test_yaml_walk_alias_is_the_anchored_node),
        cmocka_unit_test(test_yaml_walk_alias_errors),
        cmocka_unit_test(test_yaml_walk_depth_limit_names_the_first_level_too_deep),
        cmocka_unit_test(test_yaml_walk_anchor_limit),
        cmocka_unit_test(test_yaml_walk_size_limit),
        cmocka_unit_test(test_yaml_walk_second_document_after_syntax),
        cmocka_unit_test(test_yaml_walk_syntax_errors_have_positions_and_hints),
        cmocka_unit_test(test_yaml_walk_integers_are_yaml_1_1),
        cmocka_unit_test(test_yaml_walk_numbers_booleans_nulls),
        cmocka_unit_test(test_yaml_walk_excerpts_are_cut_and_masked),
        cmocka_unit_test(test_yaml_walk_describe_names_the_kind),
        cmocka_unit_test(test_yaml_walk_closest_name_is_a_near_typo),
        cmocka_unit_test(test_yaml_walk_fail_writes_one_terminated_line),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
