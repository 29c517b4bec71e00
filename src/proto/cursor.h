/* SPDX-License-Identifier: MIT */
/* cursor.h - bounds-checked reader over a received byte buffer. */
#ifndef BMS_CURSOR_H
#define BMS_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Every protocol parser reads through a cursor. Each read checks that the bytes
 * exist before it touches them; on a short buffer it returns -1 and sets `bad`,
 * and every later read fails too, so a parser may check once at the end.
 */
struct cursor {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    bool bad;
};

/* A cursor over buf[0..len). */
static inline struct cursor cursor_init(const uint8_t *buf, size_t len)
{
    struct cursor c = {buf, len, 0, false};
    return c;
}

/* Bytes left to read (0 once the cursor went bad). */
static inline size_t cursor_left(const struct cursor *c)
{
    return c->bad ? 0 : c->len - c->pos;
}

/* Read one byte into *v. Returns 0, or -1 (cursor bad) if none is left. */
static inline int cursor_u8(struct cursor *c, uint8_t *v)
{
    if (c->bad || c->len - c->pos < 1) {
        c->bad = true;
        return -1;
    }
    *v = c->buf[c->pos++];
    return 0;
}

/* Read a big-endian 16-bit word into *v. Returns 0, or -1 (cursor bad). */
static inline int cursor_u16be(struct cursor *c, uint16_t *v)
{
    if (c->bad || c->len - c->pos < 2) {
        c->bad = true;
        return -1;
    }
    *v = (uint16_t)((c->buf[c->pos] << 8) | c->buf[c->pos + 1]);
    c->pos += 2;
    return 0;
}

/* Point *p at the next n bytes and skip them. Returns 0, or -1 (cursor bad). */
static inline int cursor_bytes(struct cursor *c, size_t n, const uint8_t **p)
{
    if (c->bad || c->len - c->pos < n) {
        c->bad = true;
        return -1;
    }
    *p = c->buf + c->pos;
    c->pos += n;
    return 0;
}

#endif
