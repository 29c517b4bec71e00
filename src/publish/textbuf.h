/* SPDX-License-Identifier: MIT */
/* textbuf.h - a growing text buffer for the outputs beyond MQTT (JSON lines, HTTP pages). */
#ifndef BMS_TEXTBUF_H
#define BMS_TEXTBUF_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Text built piece by piece, always NUL-terminated once anything was added. Running out of
 * memory is sticky: every later call does nothing and tb_ok() turns false, so a renderer
 * checks once at the end. One owner; no locks.
 */
struct textbuf {
    char *buf;   /* the text (NULL before anything was added) */
    size_t len;  /* bytes of text, without the NUL */
    size_t cap;  /* bytes allocated */
    bool failed; /* an allocation failed: the text is incomplete */
};

/* An empty buffer (nothing allocated). */
void tb_init(struct textbuf *t);

/* Free the text and make t empty. */
void tb_free(struct textbuf *t);

/* Forget the text but keep the allocation (and clear a failure). */
void tb_clear(struct textbuf *t);

/* True unless an allocation failed since tb_init()/tb_clear(). */
bool tb_ok(const struct textbuf *t);

/* Append n bytes of s. */
void tb_put(struct textbuf *t, const char *s, size_t n);

/* Append the NUL-terminated s. */
void tb_puts(struct textbuf *t, const char *s);

/* Append printf-style text. */
void tb_printf(struct textbuf *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Append s as a JSON string: quoted, with '"', '\\' and control characters escaped (s is
 * UTF-8; bytes from 0x80 on are copied as they are). NULL appends null. */
void tb_json_string(struct textbuf *t, const char *s);

/* Append s escaped for HTML text and attribute values (& < > " '). */
void tb_html(struct textbuf *t, const char *s);

/* Append the number v as JSON with `decimals` places (0..6), trailing zeros dropped
 * (53.10 -> 53.1, 53.00 -> 53); null when v is not finite. */
void tb_json_number(struct textbuf *t, double v, int decimals);

/*
 * Hand the text over: returns the malloc'd NUL-terminated text (the caller frees it) and its
 * length in *len (may be NULL), and leaves t empty. NULL (t freed) if an allocation failed.
 */
char *tb_take(struct textbuf *t, size_t *len);

#endif
