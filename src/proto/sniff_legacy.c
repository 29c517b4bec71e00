/* SPDX-License-Identifier: MIT */
/* sniff_legacy.c - split overheard EG4 legacy traffic into 7E..0D frames and pair them. */
#include "sniff_legacy.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

void sniff_legacy_init(struct sniff_legacy *s)
{
    memset(s, 0, sizeof(*s));
}

static void consume(struct sniff_legacy *s, size_t k, bool noise)
{
    if (noise)
        sniff_noise_add(&s->noise, s->buf, k);
    memmove(s->buf, s->buf + k, s->len - k);
    s->len -= k;
}

static void report(struct sniff_legacy *s, const struct eg4_legacy_frame *f, size_t n, double t_s,
                   sniff_legacy_cb cb, void *ud)
{
    struct sniff_legacy_msg m = {.f = *f, .bytes = s->buf, .n = n, .t_s = t_s};

    s->stats.frames++;
    if (f->len == 0) {
        m.kind = SNIFF_LEGACY_REQUEST;
        s->stats.requests++;
        s->pending.valid = true;
        s->pending.addr = f->addr;
        s->pending.cmd = f->cmd;
    } else {
        s->stats.replies++;
        if (s->pending.valid && s->pending.addr == f->addr && s->pending.cmd == f->cmd) {
            m.kind = SNIFF_LEGACY_REPLY;
            s->stats.paired++;
        } else {
            m.kind = SNIFF_LEGACY_UNPAIRED;
        }
        s->pending.valid = false;
    }
    if (cb)
        cb(&m, ud);
}

/* Report what the buffer settles. flush: incomplete candidates are given up too. */
static int scan(struct sniff_legacy *s, bool flush, double t_s, sniff_legacy_cb cb, void *ud)
{
    int frames = 0;

    while (s->len > 0) {
        if (s->buf[0] != EG4_LEGACY_SOI) {
            const uint8_t *p = memchr(s->buf, EG4_LEGACY_SOI, s->len);
            consume(s, p ? (size_t)(p - s->buf) : s->len, true);
            continue;
        }
        int need = eg4_legacy_frame_length(s->buf, s->len);
        if (need == 0 || (size_t)need > s->len) {
            if (!flush)
                break;
            consume(s, 1, true); /* will not be completed: not a frame start */
            continue;
        }
        struct eg4_legacy_frame f;
        int rc = eg4_legacy_parse_frame(s->buf, (size_t)need, &f);
        if (rc < 0) {
            if (rc == -EBADMSG) /* 0x0D in place, CHK wrong: a corrupted frame */
                s->noise.bad_frames++;
            consume(s, 1, true);
            continue;
        }
        report(s, &f, (size_t)need, t_s, cb, ud);
        if (frames < INT_MAX)
            frames++;
        consume(s, (size_t)need, false);
    }
    return frames;
}

int sniff_legacy_feed(struct sniff_legacy *s, const uint8_t *buf, size_t n, double t_s,
                      sniff_legacy_cb cb, void *ud)
{
    int frames = 0;

    if (!s || (!buf && n > 0))
        return -1;
    while (n > 0) {
        size_t room = sizeof(s->buf) - s->len;
        if (room == 0) {
            /* A candidate's header promises at most EG4_LEGACY_FRAME_MAX bytes, so a full buffer
             * holds a complete one and scan() settles it; kept for safety. */
            consume(s, 1, true);
            continue;
        }
        size_t k = n < room ? n : room;
        memcpy(s->buf + s->len, buf, k);
        s->len += k;
        buf += k;
        n -= k;
        int f = scan(s, false, t_s, cb, ud);
        frames = frames > INT_MAX - f ? INT_MAX : frames + f;
    }
    return frames;
}

int sniff_legacy_flush(struct sniff_legacy *s, sniff_legacy_cb cb, void *ud)
{
    if (!s)
        return -1;
    return scan(s, true, NAN, cb, ud);
}

static const char *command_name(uint8_t cmd)
{
    switch (cmd) {
    case EG4_LEGACY_CMD_STATUS:
        return "status";
    case EG4_LEGACY_CMD_FIRMWARE:
        return "firmware";
    case EG4_LEGACY_CMD_HARDWARE:
        return "hardware version";
    default:
        return "command";
    }
}

size_t sniff_legacy_describe(const struct sniff_legacy_msg *m, char *out, size_t len)
{
    int n;

    if (!out || !len)
        return 0;
    if (m->kind == SNIFF_LEGACY_REQUEST)
        n = snprintf(out, len, "addr %u cmd 0x%02x %s request", m->f.addr, m->f.cmd,
                     command_name(m->f.cmd));
    else
        n = snprintf(out, len, "addr %u -> 0x%02x %s%s: %zu data bytes", m->f.addr, m->f.cmd,
                     command_name(m->f.cmd), m->kind == SNIFF_LEGACY_UNPAIRED ? " (unpaired)" : "",
                     m->f.len);
    if (n < 0) {
        out[0] = '\0';
        return 0;
    }
    return (size_t)n < len ? (size_t)n : len - 1;
}
