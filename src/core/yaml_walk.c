/* SPDX-License-Identifier: MIT */
/* yaml_walk.c - libyaml events into a tree of nodes with positions; scalars, messages, hints. */
#include "yaml_walk.h"

#include <ctype.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define NAME_MAX_HINT 31 /* the longest name yw_closest() compares */

/* ---- messages ---------------------------------------------------------------------------- */

void yw_set_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int yw_fail(const struct yw_errors *e, struct yw_mark mark, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    yw_set_error(e->err, e->errlen, "%s:%zu:%zu: %s", e->name, mark.line, mark.column, msg);
    return -1;
}

int yw_fail_oom(const struct yw_errors *e)
{
    yw_set_error(e->err, e->errlen, "%s: out of memory", e->name);
    return -1;
}

const char *yw_excerpt(const char *s, size_t n, char *buf, size_t size)
{
    size_t cut = n > YW_EXCERPT_MAX ? YW_EXCERPT_MAX : n;
    size_t i;

    if (cut >= size)
        cut = size - 4;
    while (cut < n && cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    for (i = 0; i < cut; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (c < 0x20 || c == 0x7F) ? '?' : (char)c;
    }
    buf[i] = '\0';
    if (cut < n)
        snprintf(buf + i, size - i, "...");
    return buf;
}

const char *yw_text(const struct yw_node *n, char *buf, size_t size)
{
    return yw_excerpt(n->text, n->len, buf, size);
}

const char *yw_describe(const struct yw_node *n, char *buf, size_t size)
{
    char text[YW_EXCERPT_MAX + 8];

    if (n->kind == YW_MAPPING)
        return "a mapping";
    if (n->kind == YW_SEQUENCE)
        return "a list";
    snprintf(buf, size, "'%s'", yw_text(n, text, sizeof text));
    return buf;
}

const char *yw_octal_hint(const struct yw_node *n)
{
    const char *s = n->text;
    size_t len = n->len, i = (len > 0 && (s[0] == '-' || s[0] == '+'));

    if (n->kind != YW_SCALAR || len < i + 2 || s[i] != '0' ||
        strspn(s + i, "0123456789_") != len - i)
        return "";
    return " (a leading 0 makes YAML read it as octal)";
}

/* Optimal string alignment distance (a swap of two letters counts once), case-insensitive;
 * SIZE_MAX when a is far longer than b. b has at most NAME_MAX_HINT characters. */
static size_t edit_distance(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t rows[3][NAME_MAX_HINT + 1];
    size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];

    if (alen > 2 * blen + 2)
        return SIZE_MAX;
    for (size_t j = 0; j <= blen; j++)
        prev[j] = j;
    for (size_t i = 1; i <= alen; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= blen; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            size_t best = prev[j - 1] + (ca != cb);

            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                cb == tolower((unsigned char)a[i - 2]) && prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
        size_t *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[blen];
}

const char *yw_closest(const struct yw_node *word, const char *const *names, size_t count)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;

    if (!word || word->kind != YW_SCALAR)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        size_t len = strlen(names[i]);
        size_t limit = len <= 4 ? 1 : 2, d;

        if (len > NAME_MAX_HINT)
            continue;
        d = edit_distance(word->text, word->len, names[i], len);
        if (d <= limit && d < best_d) {
            best = names[i];
            best_d = d;
        }
    }
    return best;
}

/* ---- scalars ----------------------------------------------------------------------------- */

bool yw_is(const struct yw_node *n, const char *word)
{
    return n && n->kind == YW_SCALAR && n->len == strlen(word) && strcmp(n->text, word) == 0;
}

bool yw_is_null(const struct yw_node *n)
{
    if (!n)
        return true;
    if (n->kind != YW_SCALAR || !n->plain)
        return false;
    return n->len == 0 || yw_is(n, "~") || yw_is(n, "null") || yw_is(n, "Null") || yw_is(n, "NULL");
}

static int digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return 99;
}

/* Where the digits start and in which base: 0x hex, 0o or leading-0 octal, 0b binary. */
static size_t int_prefix(const char *s, size_t n, size_t i, int *base)
{
    *base = 10;
    if (s[i] != '0' || i + 1 >= n)
        return i;
    switch (s[i + 1]) {
    case 'x':
    case 'X':
        *base = 16;
        return i + 2;
    case 'o':
    case 'O':
        *base = 8;
        return i + 2;
    case 'b':
    case 'B':
        *base = 2;
        return i + 2;
    default:
        *base = 8; /* YAML 1.1: 017 is 15; the 0 itself counts as a digit */
        return i;
    }
}

static int parse_int(const char *s, size_t n, long long *out)
{
    size_t i = 0, digits = 0;
    bool neg = false;
    long long v = 0;
    int base;

    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    if (i >= n)
        return -1;
    i = int_prefix(s, n, i, &base);
    for (; i < n; i++) {
        int d = digit_value(s[i]);

        /* PyYAML: '_' may follow a base prefix, but a decimal must start with a digit. */
        if (s[i] == '_' && (digits > 0 || base != 10))
            continue;
        if (d >= base)
            return -1;
        if (v < (1LL << 40))
            v = v * base + d;
        digits++;
    }
    if (digits == 0)
        return -1;
    *out = neg ? -v : v;
    return 0;
}

int yw_int(const struct yw_node *n, long long *out)
{
    if (!n || n->kind != YW_SCALAR)
        return -1;
    return parse_int(n->text, n->len, out);
}

int yw_number(const struct yw_node *n, double *out)
{
    char buf[64], *end;
    size_t k = 0;
    long long iv;
    locale_t c_locale;

    if (!n || n->kind != YW_SCALAR)
        return -1;
    if (parse_int(n->text, n->len, &iv) == 0) {
        *out = (double)iv;
        return 0;
    }
    for (size_t i = 0; i < n->len; i++) {
        char c = n->text[i];

        if (c == '_')
            continue;
        /* Only a plain decimal: strtod would also take "inf", "nan" and hex floats. */
        if (c == '\0' || !strchr("0123456789+-.eE", c) || k + 1 >= sizeof buf)
            return -1;
        buf[k++] = c;
    }
    buf[k] = '\0';
    /* Parse in the C locale: a daemon started under de_DE must still read 1.5 as 1.5. */
    c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (c_locale == (locale_t)0)
        return -1;
    errno = 0;
    *out = strtod_l(buf, &end, c_locale);
    freelocale(c_locale);
    if (k == 0 || *end != '\0' || errno != 0 || !isfinite(*out))
        return -1;
    return 0;
}

int yw_bool(const struct yw_node *n, bool *out)
{
    static const char *const words[] = {"true", "false", "yes", "no", "on", "off"};

    if (!n || n->kind != YW_SCALAR)
        return -1;
    for (size_t i = 0; i < ARRAY_SIZE(words); i++) {
        if (n->len == strlen(words[i]) && strcasecmp(n->text, words[i]) == 0) {
            *out = i % 2 == 0;
            return 0;
        }
    }
    return -1;
}

const struct yw_node *yw_key(const struct yw_node *map, const char *key)
{
    if (!map || map->kind != YW_MAPPING)
        return NULL;
    for (size_t k = 0; k < map->n; k++)
        if (yw_is(map->items[2 * k], key))
            return map->items[2 * k];
    return NULL;
}

const struct yw_node *yw_get(const struct yw_node *map, const char *key)
{
    if (!map || map->kind != YW_MAPPING)
        return NULL;
    for (size_t k = 0; k < map->n; k++)
        if (yw_is(map->items[2 * k], key))
            return yw_is_null(map->items[2 * k + 1]) ? NULL : map->items[2 * k + 1];
    return NULL;
}

/* ---- building the tree ------------------------------------------------------------------- */

/* An open list or mapping, and how many items (keys and values) its array has and holds. */
struct open_node {
    struct yw_node *node;
    size_t count, cap;
};

struct anchor {
    char *name;
    struct yw_node *node;
};

/* State of one yw_load(). */
struct builder {
    const struct yw_errors *e;
    const struct yw_limits *limits;
    const char *text;
    size_t len;
    struct yw_doc *doc;
    struct open_node *open; /* limits->max_depth entries */
    size_t depth;           /* lists and mappings open, in any document */
    struct anchor *anchors; /* limits->max_anchors entries */
    size_t n_anchors;       /* anchors registered (first document) */
    size_t anchors_seen;    /* anchors met in the whole stream */
    int documents;
    struct yw_mark second; /* where a second document starts */
};

static struct yw_mark mark_of(yaml_mark_t m)
{
    return (struct yw_mark){m.line + 1, m.column + 1};
}

/* The line and column of a byte offset, for reader errors, which carry only the offset. */
static struct yw_mark offset_mark(const struct builder *b, size_t offset)
{
    struct yw_mark mark = {1, 1};

    for (size_t i = 0; i < offset && i < b->len; i++) {
        if (b->text[i] == '\n') {
            mark.line++;
            mark.column = 1;
        } else {
            mark.column++;
        }
    }
    return mark;
}

/* libyaml's words for a tab are "cannot start any token"; say what is actually wrong. */
static const char *tab_hint(const struct builder *b, yaml_mark_t mark)
{
    if (mark.index < b->len && b->text[mark.index] == '\t')
        return " (YAML does not allow tabs for indentation)";
    return "";
}

static int fail_syntax(const struct builder *b, const yaml_parser_t *parser)
{
    const char *problem = parser->problem ? parser->problem : "unknown error";
    const char *hint = tab_hint(b, parser->problem_mark);

    switch (parser->error) {
    case YAML_MEMORY_ERROR:
        return yw_fail_oom(b->e);
    case YAML_READER_ERROR:
        if (parser->problem_value >= 0)
            return yw_fail(b->e, offset_mark(b, parser->problem_offset), "%s (byte 0x%02X)",
                           problem, parser->problem_value);
        return yw_fail(b->e, offset_mark(b, parser->problem_offset), "%s", problem);
    default:
        if (parser->context)
            return yw_fail(b->e, mark_of(parser->problem_mark),
                           "YAML syntax error: %s (%s at line %zu, column %zu)%s", problem,
                           parser->context, parser->context_mark.line + 1,
                           parser->context_mark.column + 1, hint);
        return yw_fail(b->e, mark_of(parser->problem_mark), "YAML syntax error: %s%s", problem,
                       hint);
    }
}

static struct yw_node *new_node(struct builder *b, enum yw_kind kind, yaml_mark_t mark)
{
    struct yw_node *n = calloc(1, sizeof(*n));

    if (!n)
        return NULL;
    n->kind = kind;
    n->mark = mark_of(mark);
    n->next_alloc = b->doc->nodes;
    b->doc->nodes = n;
    return n;
}

/* Hang n under the open list or mapping, or make it the document's root. */
static int attach(struct builder *b, struct yw_node *n)
{
    struct open_node *top;

    if (b->depth == 0) {
        b->doc->root = n;
        return 0;
    }
    top = &b->open[b->depth - 1];
    if (top->count == top->cap) {
        size_t cap = top->cap ? top->cap * 2 : 4;
        struct yw_node **items = realloc(top->node->items, cap * sizeof(*items));

        if (!items)
            return yw_fail_oom(b->e);
        top->node->items = items;
        top->cap = cap;
    }
    top->node->items[top->count++] = n;
    top->node->n = top->node->kind == YW_MAPPING ? top->count / 2 : top->count;
    return 0;
}

static int register_anchor(struct builder *b, const yaml_char_t *name, struct yw_node *n)
{
    for (size_t i = 0; i < b->n_anchors; i++)
        if (strcmp(b->anchors[i].name, (const char *)name) == 0)
            return yw_fail(b->e, n->mark,
                           "YAML syntax error: found duplicate anchor &%s (first at line %zu, "
                           "column %zu)",
                           b->anchors[i].name, b->anchors[i].node->mark.line,
                           b->anchors[i].node->mark.column);
    b->anchors[b->n_anchors].name = strdup((const char *)name);
    if (!b->anchors[b->n_anchors].name)
        return yw_fail_oom(b->e);
    b->anchors[b->n_anchors++].node = n;
    return 0;
}

static const yaml_char_t *event_anchor(const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        return ev->data.scalar.anchor;
    case YAML_SEQUENCE_START_EVENT:
        return ev->data.sequence_start.anchor;
    case YAML_MAPPING_START_EVENT:
        return ev->data.mapping_start.anchor;
    default:
        return NULL;
    }
}

/* A scalar, list or mapping of the first document: a node, anchored and attached. */
static struct yw_node *add_node(struct builder *b, const yaml_event_t *ev)
{
    enum yw_kind kind = ev->type == YAML_SCALAR_EVENT           ? YW_SCALAR
                        : ev->type == YAML_SEQUENCE_START_EVENT ? YW_SEQUENCE
                                                                : YW_MAPPING;
    struct yw_node *n = new_node(b, kind, ev->start_mark);
    const yaml_char_t *anchor = event_anchor(ev);

    if (!n) {
        yw_fail_oom(b->e);
        return NULL;
    }
    if (kind == YW_SCALAR) {
        char *text = malloc(ev->data.scalar.length + 1);

        if (!text) {
            yw_fail_oom(b->e);
            return NULL;
        }
        memcpy(text, ev->data.scalar.value, ev->data.scalar.length);
        text[ev->data.scalar.length] = '\0';
        n->text = text;
        n->len = ev->data.scalar.length;
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    }
    /* Registered before its contents, as libyaml's loader does. */
    if ((anchor && register_anchor(b, anchor, n) != 0) || attach(b, n) != 0)
        return NULL;
    return n;
}

/* The alias's anchored node, attached where the alias is. */
static int add_alias(struct builder *b, const yaml_event_t *ev)
{
    for (size_t i = 0; i < b->n_anchors; i++)
        if (strcmp(b->anchors[i].name, (const char *)ev->data.alias.anchor) == 0)
            return attach(b, b->anchors[i].node);
    return yw_fail(b->e, mark_of(ev->start_mark), "YAML syntax error: found undefined alias");
}

/*
 * One event: the limits first (anchors, then depth, as the stream comes: stopping at the
 * first offending event keeps a hostile file cheap), then the tree, for the first document
 * only. Returns 0, 1 at the end of the stream, or -1 (message written).
 */
static int on_event(struct builder *b, const yaml_event_t *ev)
{
    bool build = b->documents == 1;
    bool start = ev->type == YAML_SEQUENCE_START_EVENT || ev->type == YAML_MAPPING_START_EVENT;

    if (event_anchor(ev) && ++b->anchors_seen > b->limits->max_anchors)
        return yw_fail(b->e, mark_of(ev->start_mark),
                       "more than %zu anchors (&name); a configuration needs a few at most",
                       b->limits->max_anchors);
    if (start && b->depth + 1 > b->limits->max_depth)
        return yw_fail(b->e, mark_of(ev->start_mark),
                       "lists and mappings nested more than %zu deep; a configuration needs %d "
                       "levels",
                       b->limits->max_depth, b->limits->depth_needed);
    switch (ev->type) {
    case YAML_STREAM_END_EVENT:
        return 1;
    case YAML_DOCUMENT_START_EVENT:
        if (++b->documents == 2)
            b->second = mark_of(ev->start_mark);
        return 0;
    case YAML_ALIAS_EVENT:
        return build ? add_alias(b, ev) : 0;
    case YAML_SCALAR_EVENT:
        return !build || add_node(b, ev) ? 0 : -1;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        struct yw_node *n = build ? add_node(b, ev) : NULL;

        if (build && !n)
            return -1;
        b->open[b->depth++] = (struct open_node){n, 0, 0};
        return 0;
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        if (b->depth > 0)
            b->depth--;
        return 0;
    default:
        return 0;
    }
}

void yw_free(struct yw_doc *doc)
{
    if (!doc)
        return;
    for (struct yw_node *n = doc->nodes, *next; n; n = next) {
        next = n->next_alloc;
        free(n->items);
        free((char *)n->text);
        free(n);
    }
    memset(doc, 0, sizeof(*doc));
}

/* "1 MiB", "64 KiB" or "1000 bytes". */
static const char *size_words(size_t n, char *buf, size_t size)
{
    if (n % (1024 * 1024) == 0)
        snprintf(buf, size, "%zu MiB", n / (1024 * 1024));
    else if (n % 1024 == 0)
        snprintf(buf, size, "%zu KiB", n / 1024);
    else
        snprintf(buf, size, "%zu bytes", n);
    return buf;
}

int yw_load(struct yw_doc *doc, const char *text, size_t len, const struct yw_limits *limits,
            const struct yw_errors *e)
{
    struct builder b = {
        .e = e, .limits = limits, .text = text ? text : "", .len = text ? len : 0, .doc = doc};
    yaml_parser_t parser;
    yaml_event_t ev;
    char words[32];
    int rc = 0;

    memset(doc, 0, sizeof(*doc));
    yw_set_error(e->err, e->errlen, "%s", "");
    if (limits->max_bytes && b.len > limits->max_bytes) {
        yw_set_error(e->err, e->errlen, "%s: larger than %s; a configuration is a few kilobytes",
                     e->name, size_words(limits->max_bytes, words, sizeof words));
        return -1;
    }
    b.open = calloc(limits->max_depth + 1, sizeof(*b.open));
    b.anchors = calloc(limits->max_anchors + 1, sizeof(*b.anchors));
    if (!b.open || !b.anchors || !yaml_parser_initialize(&parser)) {
        free(b.open);
        free(b.anchors);
        return yw_fail_oom(e);
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)b.text, b.len);
    while (rc == 0) {
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = fail_syntax(&b, &parser);
            break;
        }
        rc = on_event(&b, &ev);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    for (size_t i = 0; i < b.n_anchors; i++)
        free(b.anchors[i].name);
    free(b.anchors);
    free(b.open);
    /* PyYAML's safe_load refuses a second document; so do we, rather than ignore it. */
    if (rc > 0 && b.documents > 1)
        rc = yw_fail(e, b.second, "a second YAML document; the file must hold only one");
    if (rc < 0) {
        yw_free(doc);
        return -1;
    }
    return 0;
}
