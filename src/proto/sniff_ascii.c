/* SPDX-License-Identifier: MIT */
/* sniff_ascii.c - split overheard ASCII-frame traffic into frames and pair them. */
#include "sniff_ascii.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

void sniff_ascii_init(struct sniff_ascii *s, uint8_t cid1)
{
    memset(s, 0, sizeof(*s));
    s->cid1 = cid1;
}

/* Drop the first k buffered characters, recording them as noise when `noise`. */
static void consume(struct sniff_ascii *s, size_t k, bool noise)
{
    if (noise)
        sniff_noise_add(&s->noise, s->buf, k);
    memmove(s->buf, s->buf + k, s->len - k);
    s->len -= k;
}

/* Index of the first '~' in buf[from..len), or len. */
static size_t next_soi(const struct sniff_ascii *s, size_t from)
{
    const uint8_t *p = from < s->len ? memchr(s->buf + from, AF_SOI, s->len - from) : NULL;

    return p ? (size_t)(p - s->buf) : s->len;
}

/* Return codes: replies' CID2 (Pylontech V3.3 §2.5.2, LifePower4 §1.4.2). */
static bool is_reply(uint8_t cid2)
{
    return cid2 <= AF_RTN_DATA || cid2 == AF_RTN_ADR || cid2 == AF_RTN_INTERNAL;
}

/* Classify and pair the good frame f of flen characters, then report it. */
static void report(struct sniff_ascii *s, const struct af_frame *f, size_t flen, double t_s,
                   sniff_ascii_cb cb, void *ud)
{
    struct sniff_ascii_msg m = {.f = *f, .module = -1, .bytes = s->buf, .len = flen, .t_s = t_s};

    s->stats.frames++;
    if (!is_reply(f->cid2)) {
        m.kind = SNIFF_ASCII_REQUEST;
        m.command = f->cid2;
        m.module = f->info_len ? f->info[0] : -1;
        s->stats.requests++;
        s->pending.valid = true;
        s->pending.adr = f->adr;
        s->pending.cmd = f->cid2;
        s->pending.module = m.module;
    } else {
        s->stats.replies++;
        if (f->cid2 != AF_RTN_OK)
            s->stats.errors++;
        if (s->pending.valid && s->pending.adr == f->adr) {
            m.kind = SNIFF_ASCII_REPLY;
            m.command = s->pending.cmd;
            m.module = s->pending.module;
            s->stats.paired++;
        } else {
            m.kind = SNIFF_ASCII_UNPAIRED;
        }
        s->pending.valid = false; /* the master moves on after any reply */
    }
    if (cb)
        cb(&m, ud);
}

/* Report every frame the buffered characters settle; keep an unfinished one. */
static int scan(struct sniff_ascii *s, double t_s, sniff_ascii_cb cb, void *ud)
{
    int frames = 0;

    while (s->len > 0) {
        if (s->buf[0] != AF_SOI) {
            consume(s, next_soi(s, 0), true);
            continue;
        }
        int flen = af_frame_length(s->buf, s->len);
        if (flen == 0)
            break;
        if (flen < 0) { /* cut off by another '~', or too long: noise up to the next '~' */
            consume(s, next_soi(s, 1), true);
            continue;
        }
        struct af_frame f;
        int rc = af_decode(s->buf, (size_t)flen, &f, s->info, sizeof(s->info));
        if (rc < 0) {
            /* Only hex between '~' and CR is frame-shaped; binary runs are plain noise. */
            if (rc == AF_E_LCHKSUM || rc == AF_E_LENID || rc == AF_E_CHKSUM)
                s->noise.bad_frames++;
            consume(s, (size_t)flen, true);
            continue;
        }
        if (s->cid1 && f.cid1 != s->cid1) {
            s->stats.foreign++;
            s->noise.foreign++;
            consume(s, (size_t)flen, true);
            continue;
        }
        report(s, &f, (size_t)flen, t_s, cb, ud);
        if (frames < INT_MAX)
            frames++;
        consume(s, (size_t)flen, false);
    }
    return frames;
}

int sniff_ascii_feed(struct sniff_ascii *s, const uint8_t *buf, size_t n, double t_s,
                     sniff_ascii_cb cb, void *ud)
{
    int frames = 0;

    if (!s || (!buf && n > 0))
        return -1;
    while (n > 0) {
        /* scan() leaves at most one unfinished frame, shorter than AF_FRAME_MAX. */
        size_t room = sizeof(s->buf) - s->len;
        size_t k = n < room ? n : room;
        memcpy(s->buf + s->len, buf, k);
        s->len += k;
        buf += k;
        n -= k;
        int f = scan(s, t_s, cb, ud);
        frames = frames > INT_MAX - f ? INT_MAX : frames + f;
    }
    return frames;
}

int sniff_ascii_flush(struct sniff_ascii *s)
{
    if (!s)
        return -1;
    consume(s, s->len, true);
    return 0;
}

/* The commands of both protocols (Pylontech V3.3 §2.5.1, LifePower4 §1.4.2). */
static const char *command_name(uint8_t cmd)
{
    switch (cmd) {
    case 0x42:
        return "analog values";
    case 0x44:
        return "alarm info";
    case 0x47:
        return "system parameters";
    case 0x49:
        return "set system parameters";
    case 0x4D:
        return "get date and time";
    case 0x4E:
        return "set date and time";
    case 0x4F:
        return "protocol version";
    case 0x51:
        return "manufacturer info";
    case 0x92:
        return "charge/discharge management";
    case 0x93:
        return "serial number";
    case 0x96:
        return "software version";
    default:
        return "command";
    }
}

size_t sniff_ascii_describe(const struct sniff_ascii_msg *m, char *out, size_t len)
{
    int n;

    if (!out || !len)
        return 0;
    if (m->kind == SNIFF_ASCII_REQUEST) {
        n = snprintf(out, len, "adr 0x%02x cid1 0x%02x cmd 0x%02x %s", m->f.adr, m->f.cid1,
                     m->command, command_name(m->command));
        if (n >= 0 && (size_t)n < len && m->module >= 0)
            n += snprintf(out + n, len - (size_t)n, ", %s 0x%02x",
                          m->module == 0xFF ? "all modules" : "module", (unsigned)m->module);
    } else if (m->kind == SNIFF_ASCII_REPLY) {
        n = snprintf(out, len, "adr 0x%02x cid1 0x%02x -> 0x%02x %s: %s", m->f.adr, m->f.cid1,
                     m->command, command_name(m->command), af_rtn_text(m->f.cid2));
    } else {
        n = snprintf(out, len, "adr 0x%02x cid1 0x%02x -> reply (unpaired): %s", m->f.adr,
                     m->f.cid1, af_rtn_text(m->f.cid2));
    }
    if (n >= 0 && (size_t)n < len && m->kind != SNIFF_ASCII_REQUEST)
        n += m->f.cid2 == AF_RTN_OK
                 ? snprintf(out + n, len - (size_t)n, ", %zu bytes", m->f.info_len)
                 : snprintf(out + n, len - (size_t)n, " (0x%02x)", m->f.cid2);
    if (n < 0)
        out[0] = '\0';
    return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}
