/* SPDX-License-Identifier: MIT */
/* textbuf.c - a growing text buffer for the outputs beyond MQTT. */
#include "textbuf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tb_init(struct textbuf *t)
{
    memset(t, 0, sizeof(*t));
}

void tb_free(struct textbuf *t)
{
    free(t->buf);
    tb_init(t);
}

void tb_clear(struct textbuf *t)
{
    t->len = 0;
    t->failed = false;
    if (t->buf)
        t->buf[0] = '\0';
}

bool tb_ok(const struct textbuf *t)
{
    return !t->failed;
}

/* Room for `more` bytes and the NUL. */
static bool tb_reserve(struct textbuf *t, size_t more)
{
    size_t need, cap;
    char *nb;

    if (t->failed)
        return false;
    need = t->len + more + 1;
    if (need <= t->cap)
        return true;
    cap = t->cap ? t->cap : 256;
    while (cap < need)
        cap *= 2;
    nb = realloc(t->buf, cap);
    if (!nb) {
        t->failed = true;
        return false;
    }
    t->buf = nb;
    t->cap = cap;
    return true;
}

void tb_put(struct textbuf *t, const char *s, size_t n)
{
    if (!tb_reserve(t, n))
        return;
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

void tb_puts(struct textbuf *t, const char *s)
{
    tb_put(t, s, strlen(s));
}

void tb_printf(struct textbuf *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !tb_reserve(t, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(t->buf + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

void tb_json_string(struct textbuf *t, const char *s)
{
    static const char hex[] = "0123456789abcdef";

    if (!s) {
        tb_puts(t, "null");
        return;
    }
    tb_put(t, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        size_t run = 0;
        while (p[run] >= 0x20 && p[run] != '"' && p[run] != '\\')
            run++;
        if (run) {
            tb_put(t, (const char *)p, run);
            p += run - 1;
            continue;
        }
        switch (*p) {
        case '"':
            tb_put(t, "\\\"", 2);
            break;
        case '\\':
            tb_put(t, "\\\\", 2);
            break;
        case '\n':
            tb_put(t, "\\n", 2);
            break;
        case '\r':
            tb_put(t, "\\r", 2);
            break;
        case '\t':
            tb_put(t, "\\t", 2);
            break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
            tb_put(t, u, sizeof(u));
        }
        }
    }
    tb_put(t, "\"", 1);
}

void tb_html(struct textbuf *t, const char *s)
{
    for (; *s; s++) {
        size_t run = strcspn(s, "&<>\"'");
        if (run) {
            tb_put(t, s, run);
            s += run;
            if (!*s)
                return;
        }
        switch (*s) {
        case '&':
            tb_puts(t, "&amp;");
            break;
        case '<':
            tb_puts(t, "&lt;");
            break;
        case '>':
            tb_puts(t, "&gt;");
            break;
        case '"':
            tb_puts(t, "&quot;");
            break;
        default:
            tb_puts(t, "&#39;");
        }
    }
}

void tb_json_number(struct textbuf *t, double v, int decimals)
{
    char num[64];
    int n;

    if (!isfinite(v)) {
        tb_puts(t, "null");
        return;
    }
    if (decimals < 0)
        decimals = 0;
    if (decimals > 6)
        decimals = 6;
    n = snprintf(num, sizeof(num), "%.*f", decimals, v);
    if (n <= 0 || (size_t)n >= sizeof(num)) {
        /* Beyond what a reading holds: 17 significant digits are exact. */
        n = snprintf(num, sizeof(num), "%.17g", v);
    } else if (decimals > 0) {
        while (num[n - 1] == '0')
            n--;
        if (num[n - 1] == '.')
            n--;
    }
    num[n] = '\0';
    if (strcmp(num, "-0") == 0)
        strcpy(num, "0");
    tb_puts(t, num);
}

char *tb_take(struct textbuf *t, size_t *len)
{
    char *text;

    if (t->failed) {
        tb_free(t);
        return NULL;
    }
    if (!tb_reserve(t, 0)) {
        tb_free(t);
        return NULL;
    }
    text = t->buf;
    if (len)
        *len = t->len;
    tb_init(t);
    return text;
}
