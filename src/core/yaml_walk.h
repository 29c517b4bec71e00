/* SPDX-License-Identifier: MIT */
/* yaml_walk.h - a YAML document as a small tree of nodes with their positions, for the
 * configuration's schema (config.c): limits, scalar typing, messages and hints. */
#ifndef BMS_YAML_WALK_H
#define BMS_YAML_WALK_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The walker reads a document with libyaml's event parser and builds a tree of nodes, each
 * with the 1-based line and column where it starts. It knows nothing of the schema: which
 * keys exist, what they mean and which values they take is config.c's business. It refuses
 * what a configuration never is and what would cost more than a moment to read (a file too
 * large, nesting too deep, too many anchors, a second document), reports YAML syntax errors
 * at their position, and resolves aliases (*name) to the node of their anchor (&name).
 *
 * Every message is one line "name:line:column: what is wrong" (or "name: what is wrong"
 * without a position), cut to the caller's buffer and always NUL-terminated; user text
 * quoted in a message is cut to YW_EXCERPT_MAX bytes and its control characters are shown
 * as '?', so that a hostile value cannot forge log lines.
 */

/* User text quoted in a message is cut to this many bytes (plus "..."). */
#define YW_EXCERPT_MAX 40

/* A position in the document: 1-based line and column (column in bytes). */
struct yw_mark {
    size_t line, column;
};

enum yw_kind {
    YW_SCALAR,
    YW_SEQUENCE,
    YW_MAPPING,
};

/* A node of the tree. The tree owns every node; an alias is the node of its anchor. */
struct yw_node {
    enum yw_kind kind;
    struct yw_mark mark; /* where the node starts: its first character, anchor or tag */
    /* YW_SCALAR: the text (text[len] is a NUL; the text itself may hold NULs, from "\0"),
     * and whether it was plain (unquoted, not a block scalar): only plain scalars can be
     * null, as YAML 1.1 resolves them. */
    const char *text;
    size_t len;
    bool plain;
    /* YW_SEQUENCE: items[0..n). YW_MAPPING: n pairs, key k at items[2k], its value at
     * items[2k + 1], in document order (duplicate keys are kept: the schema refuses them). */
    struct yw_node **items;
    size_t n;
    struct yw_node *next_alloc; /* private: the list of every node, for yw_free() */
};

/* Where messages go: `name` (a path, or a buffer's name) prefixes them; err may be NULL. */
struct yw_errors {
    const char *name;
    char *err;
    size_t errlen;
};

/* What the walker refuses. */
struct yw_limits {
    size_t max_bytes;   /* the document's size; 0: no limit */
    size_t max_depth;   /* lists and mappings inside each other (the top-level one is 1) */
    size_t max_anchors; /* anchors (&name) in the whole stream */
    int depth_needed;   /* how deep the schema goes at most, said in the depth message */
};

/* A loaded document. */
struct yw_doc {
    const struct yw_node *root; /* NULL when the stream holds no document (empty, comments) */
    struct yw_node *nodes;      /* private: every node */
};

/*
 * Read text[0..len) (which need not be NUL-terminated) into *doc. Returns 0, or -1 with one
 * message in e: "name: larger than 1 MiB; a configuration is a few kilobytes" (over
 * max_bytes), a YAML syntax or encoding error at its position ("YAML syntax error: ...",
 * with a hint for tabs), "lists and mappings nested more than N deep", "more than N anchors
 * (&name)", an undefined alias, a duplicate anchor, "a second YAML document", or out of
 * memory. The whole stream is read before a second document is refused, so that a syntax
 * error anywhere is reported first. On failure *doc holds nothing (yw_free is still safe).
 */
int yw_load(struct yw_doc *doc, const char *text, size_t len, const struct yw_limits *limits,
            const struct yw_errors *e);

/* Free every node of *doc and zero it. Safe on a zeroed or freed doc. */
void yw_free(struct yw_doc *doc);

/* ---- messages ---- */

/* Write "name:line:column: message" to e and return -1, so that callers can
 * `return yw_fail(...)`. */
int yw_fail(const struct yw_errors *e, struct yw_mark mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Write "name: out of memory" to e and return -1. */
int yw_fail_oom(const struct yw_errors *e);

/* snprintf into err (errlen bytes), doing nothing when err is NULL or errlen 0. */
void yw_set_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* s[0..n) for a message: cut to YW_EXCERPT_MAX bytes (not inside a UTF-8 sequence, "..."
 * appended), control characters as '?'. Returns buf (size bytes, at least 8). */
const char *yw_excerpt(const char *s, size_t n, char *buf, size_t size);

/* A scalar's text through yw_excerpt(). */
const char *yw_text(const struct yw_node *n, char *buf, size_t size);

/* "a mapping", "a list", or the quoted scalar ('9600.0'), for "must be X, not Y" messages. */
const char *yw_describe(const struct yw_node *n, char *buf, size_t size);

/* " (a leading 0 makes YAML read it as octal)" when a scalar that looks decimal failed as
 * an integer only because of its leading 0 (09, 018); "" otherwise. */
const char *yw_octal_hint(const struct yw_node *n);

/*
 * The name of names[0..count) that the scalar `word` most likely misspells: at most 1 edit
 * (a letter wrong, missing, extra, or two letters swapped; case is ignored) for names of 4
 * characters or fewer, 2 for longer ones; the nearest wins, the first among equals. NULL
 * when none is that close. Names longer than 31 characters are never suggested.
 */
const char *yw_closest(const struct yw_node *word, const char *const *names, size_t count);

/* ---- scalars and mappings ---- */

/* True if n is absent (NULL) or a YAML 1.1 null: a plain "", "~", "null", "Null", "NULL". */
bool yw_is_null(const struct yw_node *n);

/* True if n is a scalar whose text is exactly `word`. */
bool yw_is(const struct yw_node *n, const char *word);

/*
 * A scalar as a YAML 1.1 integer, as PyYAML reads it: optional sign, then decimal, 0x hex,
 * 0o or leading-0 octal, or 0b binary, with '_' allowed between digits. Values beyond
 * +-2^40 saturate there (so a range check still refuses them). 0, or -1 if it is not one.
 */
int yw_int(const struct yw_node *n, long long *out);

/* A scalar as a number: any integer of yw_int(), or a finite decimal float (1.5, .5,
 * 1_000.0, 2e-1), read in the C locale whatever the process's. 0, or -1 if it is not one
 * (.inf, .nan and hex floats are not). */
int yw_number(const struct yw_node *n, double *out);

/* A scalar as a YAML 1.1 boolean: true/false, yes/no, on/off in any case. 0, or -1. */
int yw_bool(const struct yw_node *n, bool *out);

/* The value of the first key `key` of mapping `map`, or NULL when map is not a mapping,
 * has no such key, or its value is null. */
const struct yw_node *yw_get(const struct yw_node *map, const char *key);

/* The first key node `key` of mapping `map`, or NULL. */
const struct yw_node *yw_key(const struct yw_node *map, const char *key);

#endif
